// The software RSS against the Microsoft RSS specification's verification vectors and against
// DPDK's rte_softrss, an independent bit-by-bit Toeplitz implementation.
#include "dataplane/port/rss.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <rte_thash.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/common/rss_key.h"

namespace ilb::dp {
namespace {

constexpr const std::array<uint8_t, 40>& kMicrosoftKey = ilb::test::kMicrosoftRssKey;

struct Vector {
  const char* dst_ip;
  uint16_t dst_port;
  const char* src_ip;
  uint16_t src_port;
  uint32_t ipv4_only;
  uint32_t ipv4_tcp;
};

constexpr std::array<Vector, 5> kVectors = {{
    {"161.142.100.80", 1766, "66.9.149.187", 2794, 0x323e8fc2, 0x51ccc178},
    {"65.69.140.83", 4739, "199.92.111.2", 14230, 0xd718262a, 0xc626b0ea},
    {"12.22.207.184", 38024, "24.19.198.95", 12898, 0xd2d0a5de, 0x5c2b394a},
    {"209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xafc7327f},
    {"202.188.127.2", 1303, "153.39.163.191", 44251, 0x5d1809c5, 0x10e828a2},
}};

uint32_t ip(const char* text) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, text, &a), 1) << text;
  return a.s_addr;
}

// rte_softrss over the same tuple; it takes host-order words and reads the key as bytes.
uint32_t reference_hash(const uint8_t* key, uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                        uint16_t dst_port, bool with_ports) {
  rte_ipv4_tuple t{};
  t.src_addr = ntohl(src_ip);
  t.dst_addr = ntohl(dst_ip);
  t.sport = ntohs(src_port);
  t.dport = ntohs(dst_port);
  return rte_softrss(reinterpret_cast<uint32_t*>(&t),
                     with_ports ? RTE_THASH_V4_L4_LEN : RTE_THASH_V4_L3_LEN, key);
}

std::vector<uint16_t> spread(size_t reta_size, uint16_t queues) {
  std::vector<uint16_t> reta(reta_size);
  for (size_t i = 0; i < reta_size; ++i) reta[i] = static_cast<uint16_t>(i % queues);
  return reta;
}

TEST(Rss, MatchesTheMicrosoftVerificationVectors) {
  Rss rss;
  std::string err;
  ASSERT_TRUE(rss.init(kMicrosoftKey.data(), kMicrosoftKey.size(), spread(128, 4), err)) << err;
  for (const Vector& v : kVectors) {
    const uint32_t src = ip(v.src_ip);
    const uint32_t dst = ip(v.dst_ip);
    const uint16_t sport = htons(v.src_port);
    const uint16_t dport = htons(v.dst_port);
    EXPECT_EQ(rss.hash_v4_ports(src, dst, sport, dport), v.ipv4_tcp) << v.dst_ip;
    EXPECT_EQ(rss.hash_v4(src, dst), v.ipv4_only) << v.dst_ip;
    // The table itself is checked against DPDK so that a mistyped row cannot pass unnoticed.
    EXPECT_EQ(reference_hash(kMicrosoftKey.data(), src, dst, sport, dport, true), v.ipv4_tcp)
        << v.dst_ip;
    EXPECT_EQ(reference_hash(kMicrosoftKey.data(), src, dst, sport, dport, false), v.ipv4_only)
        << v.dst_ip;
  }
}

TEST(Rss, HashesEqualDpdkSoftrssForRandomKeysAndTuples) {
  std::mt19937 rng(7);
  // 40 bytes is the usual key; i40e reports 52.
  for (size_t key_length : {size_t{16}, size_t{40}, size_t{52}}) {
    std::vector<uint8_t> key(key_length);
    for (size_t i = 0; i < key_length; ++i) key[i] = static_cast<uint8_t>(rng());
    Rss rss;
    std::string err;
    ASSERT_TRUE(rss.init(key.data(), key_length, spread(512, 8), err)) << err;
    for (int i = 0; i < 2000; ++i) {
      const uint32_t src = rng();
      const uint32_t dst = rng();
      const auto sport = static_cast<uint16_t>(rng());
      const auto dport = static_cast<uint16_t>(rng());
      ASSERT_EQ(rss.hash_v4_ports(src, dst, sport, dport),
                reference_hash(key.data(), src, dst, sport, dport, true))
          << key_length << " " << i;
      ASSERT_EQ(rss.hash_v4(src, dst), reference_hash(key.data(), src, dst, 0, 0, false))
          << key_length << " " << i;
    }
  }
}

TEST(Rss, PortTablePathEqualsTheDirectHash) {
  std::mt19937 rng(11);
  // An identity RETA of 65536 entries makes reply_queue() return the low 16 bits of the hash, all
  // that the port table keeps.
  std::vector<uint16_t> identity(Rss::kMaxRetaSize);
  for (size_t i = 0; i < identity.size(); ++i) identity[i] = static_cast<uint16_t>(i);
  Rss rss;
  std::string err;
  ASSERT_TRUE(rss.init(kMicrosoftKey.data(), kMicrosoftKey.size(), identity, err)) << err;
  for (int i = 0; i < 20000; ++i) {
    const uint32_t backend = rng();
    const uint32_t snat = rng();
    const auto backend_port = static_cast<uint16_t>(rng());
    const auto snat_port = static_cast<uint16_t>(rng());
    const uint32_t base = rss.reply_base(backend, backend_port, snat);
    const uint32_t direct =
        reference_hash(kMicrosoftKey.data(), backend, snat, backend_port, snat_port, true);
    ASSERT_EQ(rss.reply_queue(base, snat_port), direct & 0xffff) << i;
  }
  // Every port, for one reply tuple.
  const uint32_t backend = ip("10.0.0.21");
  const uint32_t snat = ip("10.0.0.101");
  const uint16_t backend_port = htons(80);
  const uint32_t base = rss.reply_base(backend, backend_port, snat);
  for (uint32_t p = 0; p < 65536; ++p) {
    const auto port = static_cast<uint16_t>(p);
    ASSERT_EQ(
        rss.reply_queue(base, port),
        reference_hash(kMicrosoftKey.data(), backend, snat, backend_port, port, true) & 0xffff)
        << p;
  }
}

TEST(Rss, RetaIndexIsTheLowBitsOfTheHash) {
  std::vector<uint16_t> reta = spread(128, 8);
  reta[0x78] = 6;
  Rss rss;
  std::string err;
  ASSERT_TRUE(rss.init(kMicrosoftKey.data(), kMicrosoftKey.size(), reta, err)) << err;
  EXPECT_EQ(rss.queue(0x51ccc178), 6) << "0x51ccc178 & 127 is 0x78";
  EXPECT_EQ(rss.queue(0x80), 0);
  EXPECT_EQ(rss.queue(0xffffff81), 1);
  EXPECT_TRUE(rss.reaches(7));
  EXPECT_FALSE(rss.reaches(8));
}

TEST(Rss, RejectsShortKeysAndRetasThatAreNotPowersOfTwo) {
  Rss rss;
  std::string err;
  EXPECT_FALSE(rss.init(kMicrosoftKey.data(), 15, spread(128, 2), err));
  EXPECT_FALSE(rss.init(kMicrosoftKey.data(), 40, spread(100, 2), err));
  EXPECT_FALSE(rss.init(kMicrosoftKey.data(), 40, {}, err));
  EXPECT_FALSE(rss.init(kMicrosoftKey.data(), 40, spread(2 * Rss::kMaxRetaSize, 2), err));
  EXPECT_TRUE(rss.init(kMicrosoftKey.data(), 40, spread(1, 1), err)) << err;
  EXPECT_EQ(rss.queue(0xdeadbeef), 0);
}

}  // namespace
}  // namespace ilb::dp

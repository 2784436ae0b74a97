#include "dataplane/conntrack/conn_table.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rte_byteorder.h>
#include <rte_memory.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace ilb::dp {
namespace {

const uint32_t kSnat = rte_cpu_to_be_32(0x0a000065);

Conn make_conn(uint32_t n, uint64_t deadline) {
  Conn c{};
  c.client_ip = rte_cpu_to_be_32(0x0a000000 + n);
  c.vip = rte_cpu_to_be_32(0x0a000064);
  c.client_port = rte_cpu_to_be_16(static_cast<uint16_t>(10000 + n % 50000));
  c.vport = rte_cpu_to_be_16(80);
  c.snat_ip = kSnat;
  c.snat_port = rte_cpu_to_be_16(static_cast<uint16_t>(1024 + n));
  c.backend_ip = rte_cpu_to_be_32(0x0a000015);
  c.backend_port = rte_cpu_to_be_16(80);
  c.backend_id = 1;
  c.proto = IPPROTO_TCP;
  c.state = TcpState::kSynSent;
  c.deadline_tsc = deadline;
  return c;
}

TEST(ConnTable, BothDirectionsFindTheSameConnection) {
  ConnTable t;
  std::string err;
  ASSERT_TRUE(t.init("ct_both", 1024, {kSnat}, SOCKET_ID_ANY, err)) << err;
  const Conn c = make_conn(1, 100);
  const int64_t idx = t.insert(client_key(c), backend_key(c), c);
  ASSERT_GE(idx, 0);
  uint32_t got = 0;
  Dir dir{};
  ASSERT_TRUE(t.lookup(client_key(c), got, dir));
  EXPECT_EQ(got, idx);
  EXPECT_EQ(dir, Dir::kFromClient);
  ASSERT_TRUE(t.lookup(backend_key(c), got, dir));
  EXPECT_EQ(got, idx);
  EXPECT_EQ(dir, Dir::kFromBackend);
  EXPECT_EQ(t.at(got).client_port, c.client_port);
  EXPECT_EQ(t.size(), 1u);
}

TEST(ConnTable, BulkLookupReportsHitsAndMisses) {
  ConnTable t;
  std::string err;
  ASSERT_TRUE(t.init("ct_bulk", 1024, {kSnat}, SOCKET_ID_ANY, err)) << err;
  std::vector<FlowKey> keys;
  for (uint32_t i = 0; i < 32; ++i) {
    const Conn c = make_conn(i, 100);
    if (i % 2 == 0) {
      ASSERT_GE(t.insert(client_key(c), backend_key(c), c), 0);
    }
    keys.push_back(i % 4 == 0 ? backend_key(c) : client_key(c));
  }
  const FlowKey* ptrs[32];
  for (uint32_t i = 0; i < 32; ++i) ptrs[i] = &keys[i];
  uint32_t idx[32];
  Dir dir[32];
  uint32_t hashes[32];
  const uint64_t hits = t.lookup_bulk(ptrs, 32, idx, dir, hashes);
  for (uint32_t i = 0; i < 32; ++i) {
    EXPECT_EQ(((hits >> i) & 1) != 0, i % 2 == 0) << i;
    // Hit or not, each key says how it was looked up, and a client key brings its hash.
    EXPECT_EQ(dir[i], i % 4 == 0 ? Dir::kFromBackend : Dir::kFromClient) << i;
    if (dir[i] == Dir::kFromClient) {
      EXPECT_EQ(hashes[i], ConnTable::hash(keys[i])) << i;
    }
    if (i % 2 == 0) {
      EXPECT_EQ(t.at(idx[i]).client_ip, make_conn(i, 0).client_ip);
    }
  }
}

// The worker inserts a new connection under the hash its missed lookup computed: such keys must
// be found by every later lookup and leave nothing behind when removed, round after round.
TEST(ConnTable, KeysInsertedUnderTheLookupsHashAreFoundAndRemoved) {
  ConnTable t;
  std::string err;
  ASSERT_TRUE(t.init("ct_hashed", 1024, {kSnat}, SOCKET_ID_ANY, err)) << err;
  for (uint32_t round = 0; round < 3; ++round) {
    std::vector<FlowKey> keys;
    for (uint32_t i = 0; i < 1024; ++i) keys.push_back(client_key(make_conn(round * 1024 + i, 1)));
    for (uint32_t base = 0; base < 1024; base += 32) {
      const FlowKey* ptrs[32];
      for (uint32_t i = 0; i < 32; ++i) ptrs[i] = &keys[base + i];
      uint32_t idx[32];
      Dir dir[32];
      uint32_t hashes[32];
      ASSERT_EQ(t.lookup_bulk(ptrs, 32, idx, dir, hashes), 0u);
      for (uint32_t i = 0; i < 32; ++i) {
        const Conn c = make_conn(round * 1024 + base + i, 1);
        ASSERT_GE(t.insert(keys[base + i], hashes[i], backend_key(c), c), 0) << base + i;
      }
      ASSERT_EQ(t.lookup_bulk(ptrs, 32, idx, dir, hashes), 0xffffffffu) << base;
    }
    EXPECT_EQ(t.size(), 1024u);
    for (uint32_t i = 0; i < 1024; ++i) {
      uint32_t idx = 0;
      Dir dir{};
      ASSERT_TRUE(t.lookup(keys[i], idx, dir)) << i;
      t.remove(idx);
      ASSERT_FALSE(t.lookup(keys[i], idx, dir)) << i;
    }
    EXPECT_EQ(t.size(), 0u);
  }
}

TEST(ConnTable, FullTableRejectsNewConnectionsAndKeepsOldOnes) {
  ConnTable t;
  std::string err;
  ASSERT_TRUE(t.init("ct_full", 1024, {kSnat}, SOCKET_ID_ANY, err)) << err;
  for (uint32_t i = 0; i < 1024; ++i) {
    const Conn c = make_conn(i, 100);
    ASSERT_GE(t.insert(client_key(c), backend_key(c), c), 0) << i;
  }
  const Conn extra = make_conn(5000, 100);
  EXPECT_LT(t.insert(client_key(extra), backend_key(extra), extra), 0);
  uint32_t idx = 0;
  Dir dir{};
  EXPECT_TRUE(t.lookup(client_key(make_conn(7, 0)), idx, dir));
  EXPECT_FALSE(t.lookup(client_key(extra), idx, dir));
}

TEST(ConnTable, ExpiryRemovesOnlyDeadConnectionsWithBoundedWork) {
  ConnTable t;
  std::string err;
  ASSERT_TRUE(t.init("ct_expire", 1024, {kSnat}, SOCKET_ID_ANY, err)) << err;
  for (uint32_t i = 0; i < 100; ++i) {
    const Conn c = make_conn(i, i < 50 ? 10 : 1000);
    ASSERT_GE(t.insert(client_key(c), backend_key(c), c), 0);
  }
  std::set<uint32_t> expired;
  // A budget of 16 examines 16 records per call: 1024 records need 64 calls for one full pass.
  for (int call = 0; call < 63; ++call) {
    t.expire(500, 16, [&](const Conn& c) { expired.insert(rte_be_to_cpu_32(c.client_ip)); });
  }
  EXPECT_EQ(expired.size(), 50u);
  EXPECT_EQ(t.size(), 50u);
  uint32_t idx = 0;
  Dir dir{};
  EXPECT_FALSE(t.lookup(backend_key(make_conn(3, 0)), idx, dir));
  EXPECT_TRUE(t.lookup(backend_key(make_conn(60, 0)), idx, dir));
  size_t calls_before = expired.size();
  t.expire(500, 1, [&](const Conn&) { ++calls_before; });
  EXPECT_EQ(calls_before, 50u) << "live connections must not expire";
}

TEST(ConnTable, FreedRecordsAreReused) {
  ConnTable t;
  std::string err;
  ASSERT_TRUE(t.init("ct_reuse", 1024, {kSnat}, SOCKET_ID_ANY, err)) << err;
  for (uint32_t round = 0; round < 5; ++round) {
    for (uint32_t i = 0; i < 1024; ++i) {
      const Conn c = make_conn(i, 10);
      ASSERT_GE(t.insert(client_key(c), backend_key(c), c), 0) << round << " " << i;
    }
    for (int call = 0; call < 64; ++call) t.expire(100, 16, [](const Conn&) {});
    ASSERT_EQ(t.size(), 0u);
  }
}

// A reply is found through its SNAT port, and only if the rest of its tuple is the
// connection's: another backend (or port, or protocol) sending to the same SNAT port misses.
TEST(ConnTable, ReplyMustMatchTheWholeBackendTuple) {
  ConnTable t;
  std::string err;
  ASSERT_TRUE(t.init("ct_tuple", 64, {kSnat}, SOCKET_ID_ANY, err)) << err;
  const Conn c = make_conn(1, 100);
  ASSERT_GE(t.insert(client_key(c), backend_key(c), c), 0);
  uint32_t idx = 0;
  Dir dir{};
  FlowKey other = backend_key(c);
  other.src_ip = rte_cpu_to_be_32(0x0a000016);
  EXPECT_FALSE(t.lookup(other, idx, dir));
  other = backend_key(c);
  other.src_port = rte_cpu_to_be_16(8080);
  EXPECT_FALSE(t.lookup(other, idx, dir));
  other = backend_key(c);
  other.proto = IPPROTO_UDP;
  EXPECT_FALSE(t.lookup(other, idx, dir));
  const FlowKey* ptrs[1] = {&other};
  Dir dirs[1];
  uint32_t hash = 0;
  EXPECT_EQ(t.lookup_bulk(ptrs, 1, &idx, dirs, &hash), 0u);
}

TEST(ConnTable, ASnatPortBelongsToOneConnectionAtATime) {
  ConnTable t;
  std::string err;
  ASSERT_TRUE(t.init("ct_port", 64, {kSnat}, SOCKET_ID_ANY, err)) << err;
  const Conn first = make_conn(1, 100);
  const int64_t idx = t.insert(client_key(first), backend_key(first), first);
  ASSERT_GE(idx, 0);
  Conn second = make_conn(2, 100);
  second.snat_port = first.snat_port;
  EXPECT_LT(t.insert(client_key(second), backend_key(second), second), 0);
  uint32_t got = 0;
  Dir dir{};
  EXPECT_FALSE(t.lookup(client_key(second), got, dir)) << "a refused insert leaves no key";
  t.remove(static_cast<uint32_t>(idx));
  EXPECT_FALSE(t.lookup(backend_key(first), got, dir));
  ASSERT_GE(t.insert(client_key(second), backend_key(second), second), 0);
  ASSERT_TRUE(t.lookup(backend_key(second), got, dir));
  EXPECT_EQ(t.at(got).client_ip, second.client_ip);
}

TEST(ConnTable, RefusesASnatAddressItWasNotGiven) {
  ConnTable t;
  std::string err;
  ASSERT_TRUE(t.init("ct_addr", 64, {kSnat}, SOCKET_ID_ANY, err)) << err;
  Conn c = make_conn(1, 100);
  c.snat_ip = rte_cpu_to_be_32(0x0a000066);
  EXPECT_LT(t.insert(client_key(c), backend_key(c), c), 0);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.init("ct_none", 64, {}, SOCKET_ID_ANY, err));
}

// Several SNAT addresses: each has its own row of ports, so the same port number on two
// addresses names two different connections.
TEST(ConnTable, SamePortOnTwoSnatAddressesNamesTwoConnections) {
  ConnTable t;
  std::string err;
  const uint32_t second_snat = rte_cpu_to_be_32(0x0a000066);
  ASSERT_TRUE(t.init("ct_two", 64, {second_snat, kSnat}, SOCKET_ID_ANY, err)) << err;
  const Conn a = make_conn(1, 100);
  Conn b = make_conn(2, 100);
  b.snat_ip = second_snat;
  b.snat_port = a.snat_port;
  ASSERT_GE(t.insert(client_key(a), backend_key(a), a), 0);
  ASSERT_GE(t.insert(client_key(b), backend_key(b), b), 0);
  uint32_t got = 0;
  Dir dir{};
  ASSERT_TRUE(t.lookup(backend_key(b), got, dir));
  EXPECT_EQ(t.at(got).client_ip, b.client_ip);
  ASSERT_TRUE(t.lookup(backend_key(a), got, dir));
  EXPECT_EQ(t.at(got).client_ip, a.client_ip);
}

// The port map's row is found by a binary search over the sorted addresses: with any number of
// them, every address finds its own row, and an address below, between or above them none.
TEST(ConnTable, EachOfManySnatAddressesHasItsOwnRow) {
  std::mt19937_64 rng(7);
  for (const uint32_t count : {1u, 2u, 3u, 7u, 8u, 9u, 160u, 255u}) {
    std::set<uint32_t> picked;
    while (picked.size() < count) picked.insert(static_cast<uint32_t>(rng() % 100000) * 2 + 10);
    std::vector<uint32_t> addresses;  // every other value, in random order, so gaps lie between
    for (uint32_t a : picked) addresses.push_back(a);
    std::shuffle(addresses.begin(), addresses.end(), rng);
    ConnTable t;
    std::string err;
    ASSERT_TRUE(t.init("ct_rows" + std::to_string(count), 1024, addresses, SOCKET_ID_ANY, err))
        << err;
    for (uint32_t i = 0; i < count; ++i) {
      Conn c = make_conn(i, 100);
      c.snat_ip = addresses[i];
      ASSERT_GE(t.insert(client_key(c), backend_key(c), c), 0) << count << " " << i;
    }
    for (uint32_t i = 0; i < count; ++i) {
      Conn c = make_conn(i, 100);
      c.snat_ip = addresses[i];
      uint32_t got = 0;
      ASSERT_TRUE(t.lookup_reply(backend_key(c), got)) << count << " " << i;
      EXPECT_EQ(t.at(got).snat_ip, addresses[i]);
      EXPECT_EQ(t.at(got).client_ip, c.client_ip);
    }
    for (const uint32_t other : {*picked.begin() - 1, *picked.rbegin() + 1, *picked.begin() + 1,
                                 uint32_t{0}, UINT32_MAX}) {
      Conn c = make_conn(5000, 100);
      c.snat_ip = other;
      EXPECT_LT(t.insert(client_key(c), backend_key(c), c), 0) << count << " " << other;
    }
    EXPECT_EQ(t.size(), count);
  }
}

// Random client tuples, each with its own SNAT port: `n` of them need n / 64,512 + 1 addresses.
std::vector<Conn> random_conns(uint32_t n, uint64_t seed, std::vector<uint32_t>& snat_addresses) {
  std::mt19937_64 rng(seed);
  std::vector<Conn> out;
  for (uint32_t i = 0; i < n; ++i) {
    Conn c = make_conn(0, 100);
    const uint64_t x = rng();
    c.client_ip = static_cast<uint32_t>(x);
    c.client_port = static_cast<uint16_t>(x >> 32);
    const uint32_t row = i / 64512;
    c.snat_ip = rte_cpu_to_be_32(0x0b000000 + row);
    c.snat_port = rte_cpu_to_be_16(static_cast<uint16_t>(1024 + i % 64512));
    if (row == snat_addresses.size()) snat_addresses.push_back(c.snat_ip);
    out.push_back(c);
  }
  return out;
}

// The hash has no extension buckets; its cuckoo displacement must still place every flow when the
// capacity leaves DPDK's power-of-two bucket count 5 % to spare, and 98 % of them when it leaves
// nothing. Whatever is refused is refused cleanly: every accepted flow is still found.
TEST(ConnTable, RandomFlowsFillTheCapacity) {
  for (const uint32_t capacity : {60000u, 65536u}) {
    std::vector<uint32_t> addresses;
    const std::vector<Conn> conns = random_conns(capacity, capacity, addresses);
    ConnTable t;
    std::string err;
    ASSERT_TRUE(
        t.init("ct_fill" + std::to_string(capacity), capacity, addresses, SOCKET_ID_ANY, err))
        << err;
    std::vector<int64_t> idx;
    for (const Conn& c : conns) idx.push_back(t.insert(client_key(c), backend_key(c), c));
    if (capacity <= 65536 * 95 / 100) {
      EXPECT_EQ(t.size(), capacity);
    } else {
      EXPECT_GE(t.size(), capacity * 98 / 100);
    }
    for (size_t i = 0; i < conns.size(); ++i) {
      uint32_t got = 0;
      Dir dir{};
      EXPECT_EQ(t.lookup(client_key(conns[i]), got, dir), idx[i] >= 0) << i;
      if (idx[i] >= 0) {
        EXPECT_EQ(got, idx[i]);
      }
    }
    Conn extra = make_conn(70000, 100);
    extra.snat_ip = addresses[0];
    EXPECT_LT(t.insert(client_key(extra), backend_key(extra), extra), 0);
  }
}

}  // namespace
}  // namespace ilb::dp

// SnatPorts: disjoint worker shares, FIFO reuse, and ports chosen so that the backend's replies
// reach the worker's own RX queue, checked against DPDK's rte_softrss rather than ilb's own hash.
#include "dataplane/conntrack/snat_ports.h"

#include <gtest/gtest.h>
#include <rte_byteorder.h>
#include <rte_memory.h>
#include <rte_thash.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "dataplane/port/rss.h"
#include "tests/unit/common/rss_key.h"

namespace ilb::dp {
namespace {

constexpr const std::array<uint8_t, 40>& kKey = ilb::test::kMicrosoftRssKey;

const uint32_t kSnat1 = rte_cpu_to_be_32(0x0a000065);
const uint32_t kSnat2 = rte_cpu_to_be_32(0x0a000066);
const uint32_t kBackend = rte_cpu_to_be_32(0x0a000015);
const uint16_t kHttp = rte_cpu_to_be_16(80);

std::vector<uint16_t> spread(size_t reta_size, uint16_t queues) {
  std::vector<uint16_t> reta(reta_size);
  for (size_t i = 0; i < reta_size; ++i) reta[i] = static_cast<uint16_t>(i % queues);
  return reta;
}

// The queue the NIC delivers backend_ip:backend_port -> snat_ip:snat_port to, computed bit by bit
// by DPDK (all arguments in network order).
uint16_t reply_queue(const std::vector<uint16_t>& reta, uint32_t backend_ip, uint16_t backend_port,
                     uint32_t snat_ip, uint16_t snat_port) {
  rte_ipv4_tuple t{};
  t.src_addr = rte_be_to_cpu_32(backend_ip);
  t.dst_addr = rte_be_to_cpu_32(snat_ip);
  t.sport = rte_be_to_cpu_16(backend_port);
  t.dport = rte_be_to_cpu_16(snat_port);
  const uint32_t hash =
      rte_softrss(reinterpret_cast<uint32_t*>(&t), RTE_THASH_V4_L4_LEN, kKey.data());
  return reta[hash & (reta.size() - 1)];
}

std::vector<uint16_t> drain(SnatPorts& s) {
  std::vector<uint16_t> ports;
  uint32_t a;
  uint16_t p;
  uint8_t i;
  while (s.alloc(a, p, i)) ports.push_back(rte_be_to_cpu_16(p));
  return ports;
}

TEST(SnatPorts, WorkersGetDisjointPortsAndFifoReuse) {
  std::string err;
  const std::vector<uint32_t> addrs{rte_cpu_to_be_32(0x0a000065)};
  SnatPorts w0, w1;
  ASSERT_TRUE(w0.init(addrs, 1024, 1033, 0, 2, SOCKET_ID_ANY, err)) << err;
  ASSERT_TRUE(w1.init(addrs, 1024, 1033, 1, 2, SOCKET_ID_ANY, err)) << err;
  std::set<uint16_t> seen;
  for (SnatPorts* w : {&w0, &w1}) {
    uint32_t a;
    uint16_t port;
    uint8_t i;
    while (w->alloc(a, port, i)) {
      EXPECT_TRUE(seen.insert(rte_be_to_cpu_16(port)).second) << "port handed out twice";
    }
  }
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(*seen.begin(), 1024);
  EXPECT_EQ(*seen.rbegin(), 1033);

  SnatPorts w;
  ASSERT_TRUE(w.init(addrs, 2000, 2002, 0, 1, SOCKET_ID_ANY, err)) << err;
  uint32_t a;
  uint16_t p1, p2, p3, p4;
  uint8_t i;
  ASSERT_TRUE(w.alloc(a, p1, i));
  ASSERT_TRUE(w.alloc(a, p2, i));
  EXPECT_EQ(rte_be_to_cpu_16(p1), 2000);
  EXPECT_EQ(rte_be_to_cpu_16(p2), 2001);
  w.release(i, p1);
  ASSERT_TRUE(w.alloc(a, p3, i));
  EXPECT_EQ(rte_be_to_cpu_16(p3), 2002) << "a released port goes to the back of the queue";
  ASSERT_TRUE(w.alloc(a, p4, i));
  EXPECT_EQ(rte_be_to_cpu_16(p4), 2000);
  EXPECT_FALSE(w.alloc(a, p4, i));
}

TEST(SnatPorts, SteeredPortsReplyOnTheWorkersQueue) {
  std::mt19937 rng(3);
  for (size_t reta_size : {size_t{128}, size_t{512}}) {
    for (uint16_t queues : {uint16_t{1}, uint16_t{2}, uint16_t{4}, uint16_t{8}}) {
      const std::vector<uint16_t> reta = spread(reta_size, queues);
      Rss rss;
      std::string err;
      ASSERT_TRUE(rss.init(kKey.data(), kKey.size(), reta, err)) << err;
      // One worker per queue, as the dataplane runs them.
      for (uint16_t worker = 0; worker < queues; ++worker) {
        SnatPorts s;
        ASSERT_TRUE(s.init({kSnat1, kSnat2}, 1024, 65535, worker, queues, SOCKET_ID_ANY, err));
        std::set<std::pair<uint32_t, uint16_t>> in_use;
        int on_queue = 0;
        const int kAllocs = 300;
        for (int n = 0; n < kAllocs; ++n) {
          const uint32_t backend = rte_cpu_to_be_32(0x0a000100 + rng() % 16);
          const uint16_t backend_port = rte_cpu_to_be_16(static_cast<uint16_t>(8000 + rng() % 4));
          uint32_t address;
          uint16_t port;
          uint8_t index;
          const SnatSteer r =
              s.alloc_for_reply(backend, backend_port, &rss, worker, address, port, index);
          ASSERT_NE(r, SnatSteer::kNoPort);
          EXPECT_EQ(address, index == 0 ? kSnat1 : kSnat2);
          EXPECT_EQ((rte_be_to_cpu_16(port) - 1024) % queues, worker) << "not this worker's share";
          EXPECT_TRUE(in_use.insert({address, port}).second) << "port handed out twice";
          if (r == SnatSteer::kOnQueue) {
            ++on_queue;
            EXPECT_EQ(reply_queue(reta, backend, backend_port, address, port), worker)
                << reta_size << " entries, " << queues << " queues, port "
                << rte_be_to_cpu_16(port);
          }
        }
        // Missing every one of 64 candidates has probability (7/8)^64 = 2e-4 with 8 queues.
        EXPECT_GE(on_queue, kAllocs - 2) << reta_size << " entries, " << queues << " queues";
      }
    }
  }
}

// The FIFO of a share starting at 3000 holds 3000, 3001, ...: how many ports after 3000 the
// first one is whose reply reaches a different queue than port 3000's.
uint16_t first_port_elsewhere(const std::vector<uint16_t>& reta) {
  const uint16_t first_queue = reply_queue(reta, kBackend, kHttp, kSnat1, rte_cpu_to_be_16(3000));
  uint16_t k = 1;
  while (reply_queue(reta, kBackend, kHttp, kSnat1, rte_cpu_to_be_16(3000 + k)) == first_queue) {
    ++k;
  }
  return k;
}

TEST(SnatPorts, PassedOverPortsGoToTheBackInTheirOrder) {
  const std::vector<uint16_t> reta = spread(128, 4);
  Rss rss;
  std::string err;
  ASSERT_TRUE(rss.init(kKey.data(), kKey.size(), reta, err)) << err;
  // The first port whose reply reaches a different queue than port 3000's: that queue is wanted.
  const uint16_t k = first_port_elsewhere(reta);
  ASSERT_LT(k, SnatPorts::kSteerCandidates);
  const uint16_t wanted = reply_queue(reta, kBackend, kHttp, kSnat1, rte_cpu_to_be_16(3000 + k));

  SnatPorts s;
  ASSERT_TRUE(s.init({kSnat1}, 3000, 3099, 0, 1, SOCKET_ID_ANY, err)) << err;
  uint32_t address;
  uint16_t port;
  uint8_t index;
  ASSERT_EQ(s.alloc_for_reply(kBackend, kHttp, &rss, wanted, address, port, index),
            SnatSteer::kOnQueue);
  EXPECT_EQ(rte_be_to_cpu_16(port), 3000 + k);
  std::vector<uint16_t> expected;
  for (uint16_t p = 3000 + k + 1; p <= 3099; ++p) expected.push_back(p);
  for (uint16_t p = 3000; p < 3000 + k; ++p) expected.push_back(p);
  EXPECT_EQ(drain(s), expected) << "passed-over ports are reused after every other free port";
}

TEST(SnatPorts, FallsBackToTheOldestPortWhenNoCandidateFits) {
  const std::vector<uint16_t> reta = spread(128, 4);
  Rss rss;
  std::string err;
  ASSERT_TRUE(rss.init(kKey.data(), kKey.size(), reta, err)) << err;
  const uint16_t k = first_port_elsewhere(reta);
  const uint16_t wanted = reply_queue(reta, kBackend, kHttp, kSnat1, rte_cpu_to_be_16(3000 + k));

  SnatPorts s;
  ASSERT_TRUE(s.init({kSnat1}, 3000, 3099, 0, 1, SOCKET_ID_ANY, err)) << err;
  uint32_t address;
  uint16_t port;
  uint8_t index;
  // A bound of k candidates stops just short of the first fitting port.
  EXPECT_EQ(s.alloc_for_reply(kBackend, kHttp, &rss, wanted, address, port, index, k),
            SnatSteer::kAnyQueue);
  EXPECT_EQ(rte_be_to_cpu_16(port), 3000);
  // A queue no RETA entry points at, and an unknown RSS, take the oldest port too.
  EXPECT_EQ(s.alloc_for_reply(kBackend, kHttp, &rss, 4, address, port, index),
            SnatSteer::kAnyQueue);
  EXPECT_EQ(rte_be_to_cpu_16(port), 3001);
  EXPECT_EQ(s.alloc_for_reply(kBackend, kHttp, nullptr, wanted, address, port, index),
            SnatSteer::kAnyQueue);
  EXPECT_EQ(rte_be_to_cpu_16(port), 3002);
  // The fall-back did not reorder the FIFO.
  std::vector<uint16_t> expected;
  for (uint16_t p = 3003; p <= 3099; ++p) expected.push_back(p);
  EXPECT_EQ(drain(s), expected);
  EXPECT_EQ(s.alloc_for_reply(kBackend, kHttp, &rss, wanted, address, port, index),
            SnatSteer::kNoPort);
}

TEST(SnatPorts, SteeredPortsAreNeverSharedWhileInUseAndAreReusedAfterRelease) {
  const std::vector<uint16_t> reta = spread(128, 4);
  Rss rss;
  std::string err;
  ASSERT_TRUE(rss.init(kKey.data(), kKey.size(), reta, err)) << err;
  const uint32_t kWorkers = 4;
  const uint32_t kWorker = 2;
  SnatPorts s;
  ASSERT_TRUE(s.init({kSnat1, kSnat2}, 5000, 5399, kWorker, kWorkers, SOCKET_ID_ANY, err)) << err;
  const uint64_t share = s.available();
  ASSERT_EQ(share, 2u * 100u);

  std::mt19937 rng(5);
  std::map<std::pair<uint32_t, uint16_t>, uint8_t> in_use;
  std::set<std::pair<uint32_t, uint16_t>> ever_released;
  size_t reused = 0;
  for (int n = 0; n < 20000; ++n) {
    if (in_use.empty() || rng() % 5 < 3) {
      const uint32_t backend = rte_cpu_to_be_32(0x0a000100 + rng() % 4);
      uint32_t address;
      uint16_t port;
      uint8_t index;
      const SnatSteer r =
          s.alloc_for_reply(backend, kHttp, &rss, kWorker % 4, address, port, index, 1 + rng() % 8);
      if (in_use.size() == share) {
        ASSERT_EQ(r, SnatSteer::kNoPort) << "all ports are in use";
        continue;
      }
      ASSERT_NE(r, SnatSteer::kNoPort) << "a port is free";
      ASSERT_EQ((rte_be_to_cpu_16(port) - 5000) % kWorkers, kWorker);
      ASSERT_TRUE(in_use.emplace(std::make_pair(address, port), index).second)
          << "port " << rte_be_to_cpu_16(port) << " handed out twice";
      reused += ever_released.count({address, port});
    } else {
      auto it = in_use.begin();
      std::advance(it, rng() % in_use.size());
      s.release(it->second, it->first.second);
      ever_released.insert(it->first);
      in_use.erase(it);
    }
    ASSERT_EQ(s.available() + in_use.size(), share);
  }
  EXPECT_GT(reused, 0u) << "released ports come back";
  for (const auto& [key, index] : in_use) s.release(index, key.second);
  EXPECT_EQ(s.available(), share);
}

// Prints what a steered allocation costs next to a plain one, for one worker of 8 with one SNAT
// address and 16 backends, at several numbers of open connections; no assertion on time.
//
// For one backend and SNAT address, only 1/8 of the worker's ports reply on its queue, and
// backends whose reply hashes agree in the RETA bits compete for the same ports; so the share of
// steered connections falls as connections per backend approach 65536 / (workers * queues).
TEST(SnatPorts, SteeringCostAndHitRateByLoad) {
  const uint16_t kQueues = 8;
  const std::vector<uint16_t> reta = spread(128, kQueues);
  Rss rss;
  std::string err;
  ASSERT_TRUE(rss.init(kKey.data(), kKey.size(), reta, err)) << err;
  std::vector<uint32_t> backends;
  for (uint32_t b = 0; b < 16; ++b) backends.push_back(rte_cpu_to_be_32(0x0a000100 + b));
  for (size_t open_limit : {size_t{500}, size_t{2000}, size_t{4000}}) {
    for (bool steered : {false, true}) {
      SnatPorts s;
      ASSERT_TRUE(s.init({kSnat1}, 1024, 65535, 3, kQueues, SOCKET_ID_ANY, err)) << err;
      std::deque<uint16_t> open;
      const int kAllocs = 100000;
      int on_queue = 0;
      const auto start = std::chrono::steady_clock::now();
      for (int n = 0; n < kAllocs; ++n) {
        uint32_t address;
        uint16_t port;
        uint8_t index;
        if (steered) {
          on_queue += s.alloc_for_reply(backends[n & 15], kHttp, &rss, 3, address, port, index) ==
                      SnatSteer::kOnQueue;
        } else {
          ASSERT_TRUE(s.alloc(address, port, index));
        }
        open.push_back(port);
        if (open.size() > open_limit) {
          s.release(0, open.front());
          open.pop_front();
        }
      }
      const double ns =
          std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
              .count() /
          kAllocs;
      if (steered) {
        std::printf(
            "%zu open: steered alloc + release %.1f ns, %.2f candidates per allocation, %.2f%% "
            "of replies on the worker's queue\n",
            open_limit, ns, static_cast<double>(s.candidates()) / kAllocs,
            100.0 * on_queue / kAllocs);
      } else {
        std::printf("%zu open: plain alloc + release %.1f ns\n", open_limit, ns);
      }
      if (steered && open_limit == 500) {
        EXPECT_GE(on_queue, kAllocs * 99 / 100) << "far below capacity nearly every reply fits";
      }
    }
  }
}

}  // namespace
}  // namespace ilb::dp

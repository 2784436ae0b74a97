// ilb-bench-pipeline: what one dataplane worker's burst function costs, with no NIC and no wire.
//
// The EAL runs in this process (no hugepages and no PCI unless asked), and a WorkerContext is
// built the way the dataplane's unit tests build one: a config encoded by the control plane's slot
// encoder and validated by ActiveConfig::build, a neighbour table that knows every backend, a
// connection table and SNAT ports sized for the run. Frames are written into mbufs before the
// clock starts; the clock (rte_rdtsc) covers only the process_burst() calls, and what they
// transmit is freed after it stops. So the figures are the worker's parse, lookup, tracking and
// rewrite, without the frame copy, the mbuf free or a driver's RX/TX.
//
// Three things are measured: the cycles per packet of established flows picked at random among F
// tracked ones (both directions mixed), the cycles per new connection (a SYN of a fresh tuple,
// insert included) in a table that already holds F flows, and the EAL heap that
// ConnTable::init() takes per connection of capacity.
#include <arpa/inet.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_tcp.h>
#include <sched.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "controlplane/publish/slot_codec.h"
#include "controlplane/publish/snapshot.h"
#include "dataplane/abi/ilb_abi.h"
#include "dataplane/agent/active_config.h"
#include "dataplane/conntrack/conn_table.h"
#include "dataplane/worker/worker.h"
#include "tools/bench/bench_report.h"

namespace {

using ilb::bench::fixed;
using ilb::bench::human_bytes;
namespace dp = ilb::dp;
namespace cp = ilb::cp;
namespace abi = ilb::abi;

constexpr uint16_t kBurst = 32;
constexpr uint32_t kBackends = 16;
constexpr uint32_t kPortsPerAddress = 65535 - 1024 + 1;  // SNAT ports 1024-65535
// 60 bytes: the smallest Ethernet frame, 64 on the wire with its FCS. A TCP header without
// options and 6 bytes of payload fill it.
constexpr uint16_t kPayload = 6;
constexpr uint16_t kFrameLen =
    sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_tcp_hdr) + kPayload;
static_assert(kFrameLen == 60);
constexpr uint8_t kOurMac[6] = {0x02, 0, 0, 0, 0, 0x02};
constexpr uint8_t kClientMac[6] = {0x02, 0, 0, 0, 0, 0x10};
constexpr uint8_t kBackendMac[6] = {0x02, 0, 0, 0, 1, 0};  // the worker does not check it
constexpr uint32_t kSynTimeoutS = 5;
constexpr uint32_t kEstTimeoutS = 100;
// Every process_burst() call gets this time stamp: deadlines are then known exactly, and the new
// connections of a round (SYN timeout) expire without touching established flows.
constexpr uint64_t kNow = 1'000'000;

// Addresses in network order: the VIP is 10.0.0.100, backends 10.0.0.21 onwards, SNAT addresses
// 10.0.2.1 onwards, clients 172.16.0.0 onwards.
uint32_t ip(uint32_t host_order) {
  return htonl(host_order);
}
uint32_t vip() {
  return ip(0x0a000064);
}
uint32_t backend_ip(uint32_t i) {
  return ip(0x0a000015 + i);
}
uint32_t snat_ip(uint32_t i) {
  return ip(0x0a000201 + i);
}

struct Tuple {
  uint32_t src_ip;  // network order
  uint32_t dst_ip;
  uint16_t src_port;  // network order
  uint16_t dst_port;
};

// The client side of connection number i (network order): 2^15 ports per client address.
Tuple client_tuple(uint64_t i) {
  return {ip(0xac100000 + static_cast<uint32_t>(i >> 15)), vip(),
          htons(static_cast<uint16_t>(1024 + (i & 0x7fff))), htons(80)};
}

// Writes a 60-byte TCP frame to us with full, correct checksums into a fresh mbuf. The pool is
// sized for every frame of a round, so running out is a bug of this benchmark.
rte_mbuf* make_frame(rte_mempool* pool, const uint8_t* src_mac, const Tuple& t, uint8_t flags,
                     bool checksums_offloaded) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (m == nullptr) {
    std::cerr << "ilb-bench-pipeline: mbuf pool empty\n";
    std::exit(2);
  }
  uint8_t p[kFrameLen]{};
  auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
  std::memcpy(&eth->dst_addr, kOurMac, 6);
  std::memcpy(&eth->src_addr, src_mac, 6);
  eth->ether_type = htons(RTE_ETHER_TYPE_IPV4);
  auto* iph = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
  iph->version_ihl = 0x45;
  iph->total_length = htons(kFrameLen - sizeof(rte_ether_hdr));
  iph->time_to_live = 64;
  iph->next_proto_id = IPPROTO_TCP;
  iph->src_addr = t.src_ip;
  iph->dst_addr = t.dst_ip;
  auto* tcp = reinterpret_cast<rte_tcp_hdr*>(iph + 1);
  tcp->src_port = t.src_port;
  tcp->dst_port = t.dst_port;
  tcp->sent_seq = htonl(1000);
  tcp->recv_ack = htonl(2000);
  tcp->data_off = 0x50;
  tcp->tcp_flags = flags;
  tcp->rx_win = htons(65535);
  tcp->cksum = rte_ipv4_udptcp_cksum(iph, tcp);
  iph->hdr_checksum = rte_ipv4_cksum(iph);
  std::memcpy(rte_pktmbuf_append(m, kFrameLen), p, kFrameLen);
  // As a NIC with RX checksum offload (which the dataplane enables where the port has it) marks
  // them; without the flags the worker verifies them in software (of TCP, only SYN, FIN and RST
  // segments unless --verify-all-l4).
  m->ol_flags = checksums_offloaded ? RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD : 0;
  return m;
}

// One TCP service, 10.0.0.100:80, over kBackends backends on the port's own subnet, with a
// full-size table.
cp::Snapshot snapshot() {
  cp::Snapshot s;
  cp::SnapshotService svc;
  svc.name = "bench";
  svc.vip = vip();
  svc.port = 80;
  svc.tcp_syn_timeout_s = kSynTimeoutS;
  svc.tcp_est_timeout_s = kEstTimeoutS;
  svc.tcp_fin_timeout_s = 10;
  svc.udp_timeout_s = 30;
  svc.table.resize(abi::kMaxTableSize);
  for (uint32_t i = 0; i < svc.table.size(); ++i) svc.table[i] = 1 + i % kBackends;
  s.services.push_back(svc);
  for (uint32_t b = 0; b < kBackends; ++b) {
    s.backends.push_back(
        {b + 1, 0, backend_ip(b), 8080, abi::AdminState::kEnabled, abi::Health::kUp, 1});
  }
  return s;
}

// One worker and everything it reads, as the dataplane's unit tests set it up.
class Pipeline {
 public:
  ~Pipeline() {
    dp::ActiveConfig::destroy(cfg_);
    rte_ring_free(w_.to_main);
    rte_ring_free(w_.resolve);
    rte_ring_free(w_.from_main);
    rte_free(w_.counters);
  }

  bool init(const std::string& name, uint32_t capacity, bool verify_all_l4, std::string& err) {
    std::memcpy(shared_.ports[0].mac, kOurMac, 6);
    shared_.verify_all_l4_checksums = verify_all_l4;
    shared_.ports[0].address = ip(0x0a000002);
    shared_.ports[0].netmask = ip(0xffffff00);
    const uint32_t addresses = (capacity + kPortsPerAddress - 1) / kPortsPerAddress;
    if (addresses > 255) {
      err = "more than 255 SNAT addresses needed";
      return false;
    }
    for (uint32_t i = 0; i < addresses; ++i) shared_.snat_addresses.push_back(snat_ip(i));
    std::sort(shared_.snat_addresses.begin(), shared_.snat_addresses.end());
    shared_.tsc_hz = rte_get_tsc_hz();
    if (!shared_.neighbours.init(name + "_nb", 64, SOCKET_ID_ANY, err)) return false;
    for (uint32_t b = 0; b < kBackends; ++b) {
      uint8_t mac[6];
      std::memcpy(mac, kBackendMac, 6);
      mac[5] = static_cast<uint8_t>(b);
      shared_.neighbours.update(backend_ip(b), mac);
    }
    w_.shared = &shared_;
    w_.counters =
        static_cast<dp::WorkerCounters*>(rte_zmalloc("bench_ctr", sizeof(dp::WorkerCounters), 64));
    const unsigned ring_flags = RING_F_SP_ENQ | RING_F_SC_DEQ;
    w_.to_main = rte_ring_create((name + "_tm").c_str(), 64, SOCKET_ID_ANY, ring_flags);
    w_.resolve = rte_ring_create((name + "_rs").c_str(), 64, SOCKET_ID_ANY, ring_flags);
    w_.from_main = rte_ring_create((name + "_fm").c_str(), 64, SOCKET_ID_ANY, ring_flags);
    if (w_.counters == nullptr || w_.to_main == nullptr || w_.resolve == nullptr ||
        w_.from_main == nullptr) {
      err = "out of EAL memory for the worker's counters and rings";
      return false;
    }
    if (!w_.conns.init(name + "_ct", capacity, shared_.snat_addresses, SOCKET_ID_ANY, err)) {
      return false;
    }
    if (!w_.snat.init(shared_.snat_addresses, 1024, 65535, 0, 1, SOCKET_ID_ANY, err)) return false;
    const std::vector<uint8_t> slot = cp::encode_slot(snapshot(), 1);
    cfg_ = dp::ActiveConfig::build(slot.data(), slot.size(), 1, err);
    return cfg_ != nullptr;
  }

  struct Timing {
    uint64_t cycles = 0;     // in the bursts that were not interrupted
    uint32_t packets = 0;    // in those bursts
    uint32_t preempted = 0;  // bursts left out
  };

  // Runs `in` through process_burst() in bursts of kBurst, timing each burst. A burst that took
  // longer than `limit` cycles was interrupted (on a shared machine: the scheduler ran something
  // else) and is left out of the timing. What the worker transmits is collected in `tx`, which
  // must have room for 3 * in.size().
  Timing run(std::vector<rte_mbuf*>& in, std::vector<rte_mbuf*>& tx, uint32_t& n_tx,
             uint64_t limit = UINT64_MAX) {
    Timing t;
    uint16_t sent = 0;
    const auto n = static_cast<uint32_t>(in.size());
    for (uint32_t i = 0; i < n; i += kBurst) {
      const auto count = static_cast<uint16_t>(std::min<uint32_t>(kBurst, n - i));
      const uint64_t t0 = rte_rdtsc();
      dp::process_burst(w_, *cfg_, in.data() + i, count, tx.data(), &sent, kNow);
      const uint64_t cycles = rte_rdtsc() - t0;
      if (cycles > limit) {
        ++t.preempted;
        continue;
      }
      t.cycles += cycles;
      t.packets += count;
    }
    n_tx = sent;
    return t;
  }

  dp::WorkerContext& worker() { return w_; }

 private:
  dp::SharedState shared_;
  dp::WorkerContext w_;
  dp::ActiveConfig* cfg_ = nullptr;
};

// Both sides of a tracked connection as packets carry them (network order).
struct Flow {
  Tuple from_client;
  Tuple from_backend;
};

struct PhaseResult {
  double median = 0;  // TSC cycles per packet, median of the rounds
  double min = 0;
  double max = 0;
  uint64_t packets = 0;    // over all rounds
  uint64_t forwarded = 0;  // of them, transmitted by the worker
  uint64_t preempted = 0;  // bursts left out of the timing, over all rounds
};

PhaseResult summarize(std::vector<double> per_round, uint64_t packets, uint64_t forwarded,
                      uint64_t preempted) {
  PhaseResult r;
  std::sort(per_round.begin(), per_round.end());
  const size_t n = per_round.size();
  if (n != 0) {
    r.median = n % 2 == 1 ? per_round[n / 2] : (per_round[n / 2 - 1] + per_round[n / 2]) / 2;
    r.min = per_round.front();
    r.max = per_round.back();
  }
  r.packets = packets;
  r.forwarded = forwarded;
  r.preempted = preempted;
  return r;
}

dp::FlowKey key_of(const Tuple& t) {
  dp::FlowKey k;
  k.src_ip = t.src_ip;
  k.dst_ip = t.dst_ip;
  k.src_port = t.src_port;
  k.dst_port = t.dst_port;
  k.proto = IPPROTO_TCP;
  return k;
}

void free_all(std::vector<rte_mbuf*>& v, uint32_t n) {
  rte_pktmbuf_free_bulk(v.data(), n);
}

// Sends one packet per flow from each side in turn (SYN, SYN-ACK, ACK), as a handshake would, so
// that every flow ends up established. Returns false with `err` set if any packet was not sent.
bool create_flows(Pipeline& p, rte_mempool* pool, uint64_t count, std::vector<Flow>& flows,
                  std::string& err) {
  flows.resize(count);
  std::vector<rte_mbuf*> in;
  std::vector<rte_mbuf*> tx(3 * kBurst);
  uint32_t n_tx = 0;
  for (int step = 0; step < 3; ++step) {
    for (uint64_t i = 0; i < count; i += kBurst) {
      in.clear();
      const uint64_t end = std::min<uint64_t>(count, i + kBurst);
      for (uint64_t j = i; j < end; ++j) {
        if (step == 0) flows[j].from_client = client_tuple(j);
        rte_mbuf* m = nullptr;
        if (step == 1) {
          m = make_frame(pool, kBackendMac, flows[j].from_backend,
                         RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, true);
        } else {
          m = make_frame(pool, kClientMac, flows[j].from_client,
                         step == 0 ? RTE_TCP_SYN_FLAG : RTE_TCP_ACK_FLAG, true);
        }
        in.push_back(m);
      }
      p.run(in, tx, n_tx);
      free_all(tx, n_tx);
      if (n_tx != in.size()) {
        err = "handshake step " + std::to_string(step) + " forwarded " + std::to_string(n_tx) +
              " of " + std::to_string(in.size()) + " packets";
        return false;
      }
      if (step != 0) continue;
      for (uint64_t j = i; j < end; ++j) {
        const dp::FlowKey k = key_of(flows[j].from_client);
        uint32_t idx = 0;
        dp::Dir dir{};
        if (!p.worker().conns.lookup(k, idx, dir)) {
          err = "a created connection is not in the table";
          return false;
        }
        const dp::Conn& c = p.worker().conns.at(idx);
        flows[j].from_backend = {c.backend_ip, c.snat_ip, c.backend_port, c.snat_port};
      }
    }
  }
  for (const Flow& f : flows) {
    const dp::FlowKey k = key_of(f.from_client);
    uint32_t idx = 0;
    dp::Dir dir{};
    if (!p.worker().conns.lookup(k, idx, dir) ||
        p.worker().conns.at(idx).state != dp::TcpState::kEstablished) {
      err = "a connection is not established after its handshake";
      return false;
    }
  }
  return true;
}

// Runs one untimed warm-up round (caches, branch predictors, first use of SNAT ports), then
// `rounds` timed ones (a round's figure leaves out bursts that took over 100 us: no burst of 32
// packets costs that much, a time slice given to another process does), each round once with
// checksums flagged good by the NIC (result 0) and once without (result 1), interleaved so that
// both see the same cache state. `fill(in, offload)` writes a round's frames; `after()` runs after
// every round, untimed.
template <typename Fill, typename After>
std::array<PhaseResult, 2> measure(Pipeline& p, uint32_t rounds, uint32_t packets, Fill&& fill,
                                   After&& after) {
  std::vector<rte_mbuf*> in;
  std::vector<rte_mbuf*> tx(3 * packets);
  std::array<std::vector<double>, 2> per_round;
  std::array<uint64_t, 2> forwarded{};
  std::array<uint64_t, 2> preempted{};
  const uint64_t limit = rte_get_tsc_hz() / 10000;  // 100 us
  for (uint32_t r = 0; r <= rounds; ++r) {
    for (const bool offload : {true, false}) {
      in.clear();
      fill(in, offload);
      uint32_t n_tx = 0;
      const Pipeline::Timing t = p.run(in, tx, n_tx, limit);
      free_all(tx, n_tx);
      after();
      if (r == 0 || t.packets == 0) continue;
      const size_t i = offload ? 0 : 1;
      forwarded[i] += n_tx;
      preempted[i] += t.preempted;
      per_round[i].push_back(static_cast<double>(t.cycles) / t.packets);
    }
  }
  const uint64_t total = uint64_t{rounds} * packets;
  return {summarize(per_round[0], total, forwarded[0], preempted[0]),
          summarize(per_round[1], total, forwarded[1], preempted[1])};
}

// Which side the established flows' packets come from: both (each packet's side at random, as
// a one-armed balancer's queue delivers them), or one side only (to see what each direction's
// lookup costs: the clients' goes through the hash, the backends' through the SNAT port map).
enum class Sides { kBoth, kClients, kBackends };

// Established flows: ACKs of flows picked at random, each from the side `sides` says.
std::array<PhaseResult, 2> measure_established(Pipeline& p, rte_mempool* pool,
                                               const std::vector<Flow>& flows, uint32_t rounds,
                                               uint32_t packets, Sides sides,
                                               std::mt19937_64& rng) {
  const auto fill = [&](std::vector<rte_mbuf*>& in, bool offload) {
    for (uint32_t i = 0; i < packets; ++i) {
      const uint64_t x = rng();
      const Flow& f = flows[x % flows.size()];
      const bool from_backend = sides == Sides::kBoth ? (x >> 63) != 0 : sides == Sides::kBackends;
      in.push_back(make_frame(pool, from_backend ? kBackendMac : kClientMac,
                              from_backend ? f.from_backend : f.from_client, RTE_TCP_ACK_FLAG,
                              offload));
    }
  };
  return measure(p, rounds, packets, fill, [] {});
}

// New connections: SYNs of tuples never seen before. After each round they are expired (they are
// the only records whose SYN deadline has passed), so the table holds the same established flows
// at the start of every round and never fills.
std::array<PhaseResult, 2> measure_new(Pipeline& p, rte_mempool* pool, uint64_t first_tuple,
                                       uint32_t rounds, uint32_t packets, std::string& err) {
  dp::WorkerContext& w = p.worker();
  const uint32_t established = w.conns.size();
  uint64_t next_tuple = first_tuple;
  const auto fill = [&](std::vector<rte_mbuf*>& in, bool offload) {
    for (uint32_t i = 0; i < packets; ++i) {
      in.push_back(
          make_frame(pool, kClientMac, client_tuple(next_tuple++), RTE_TCP_SYN_FLAG, offload));
    }
  };
  const auto expire = [&] {
    dp::expire_step(w, kNow + (kSynTimeoutS + 1) * rte_get_tsc_hz(), w.conns.capacity());
    if (w.conns.size() != established) {
      err = "expiring the new connections left " + std::to_string(w.conns.size()) +
            " records, expected " + std::to_string(established);
    }
  };
  return measure(p, rounds, packets, fill, expire);
}

// The EAL heap in use on every socket, allocator headers and padding included.
uint64_t heap_allocated() {
  uint64_t total = 0;
  for (unsigned i = 0; i < rte_socket_count(); ++i) {
    rte_malloc_socket_stats st{};
    if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &st) == 0) {
      total += st.heap_allocsz_bytes;
    }
  }
  return total;
}

uint64_t pow2_at_least(uint64_t x) {
  uint64_t p = 1;
  while (p < x) p <<= 1;
  return p;
}

// The capacity an operator would give a table for `flows` connections with `headroom` to spare.
uint64_t capacity_for(uint64_t flows, double headroom) {
  return flows + static_cast<uint64_t>(static_cast<double>(flows) * headroom);
}

// The SNAT addresses a table of `capacity` connections needs (ports 1024-65535 on each).
uint32_t addresses_for(uint64_t capacity) {
  return static_cast<uint32_t>((capacity + kPortsPerAddress - 1) / kPortsPerAddress);
}

// What ConnTable::init(capacity) should allocate, from the record sizes and from how DPDK 22.11's
// rte_hash (cuckoo, one writer, no extension buckets) sizes its arrays for `capacity` keys (the
// client side only; replies are found through the SNAT port map): 64-byte buckets of 8 entries
// for the keys rounded up to a power of two, one 32-byte key slot (16-byte FlowKey + 8-byte data,
// aligned to 16) per key plus one, and a ring of free key-slot indices, 4 bytes each; plus the port
// map, 65,536 4-byte record numbers per SNAT address. Allocator headers and padding are not
// counted.
std::vector<std::pair<std::string, uint64_t>> estimate(uint64_t capacity) {
  const uint64_t keys = capacity;
  const uint64_t buckets = pow2_at_least(keys) / 8;
  const uint64_t slots = keys + 1;
  return {
      {"Conn records (64 B each)", capacity * sizeof(dp::Conn)},
      {"free-record stack (4 B each)", capacity * sizeof(uint32_t)},
      {"rte_hash buckets (64 B, 8 keys each)", buckets * 64},
      {"rte_hash key slots (32 B per key)", slots * 32},
      {"rte_hash free-slot ring (4 B per key)", pow2_at_least(slots) * 4},
      {"SNAT port map (256 KiB per SNAT address)", uint64_t{addresses_for(capacity)} * 65536 * 4},
  };
}

uint64_t estimate_total(uint64_t capacity) {
  uint64_t total = 0;
  for (const auto& [name, bytes] : estimate(capacity)) total += bytes;
  return total;
}

// The smallest difference between two back-to-back rte_rdtsc() calls: what the clock itself adds
// to every timed round (once per round of thousands of packets here).
uint64_t rdtsc_overhead() {
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t a = rte_rdtsc();
    const uint64_t b = rte_rdtsc();
    best = std::min(best, b - a);
  }
  return best;
}

int first_usable_cpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) return c;
  }
  return 0;
}

// What a cache miss costs on this machine, to read the figures above by: loads from random lines
// of a buffer as large as the largest connection table, each one's address taken from the one
// before (the latency of one miss), and in groups of 32 independent ones issued together (a
// burst's prefetches: the cost per miss when they overlap).
struct MemoryCost {
  uint64_t bytes = 0;  // 0: not measured (no memory for the buffer)
  double dependent = 0;
  double grouped = 0;
};

MemoryCost measure_memory(uint64_t bytes, std::mt19937_64& rng) {
  MemoryCost r;
  constexpr uint64_t kWords = 64 / sizeof(uint32_t);
  const uint64_t lines = bytes / 64;
  if (lines < 2 || lines > UINT32_MAX) return r;
  auto* buf = static_cast<uint32_t*>(rte_malloc("bench_memory_cost", lines * 64, 64));
  if (buf == nullptr) return r;
  // Sattolo's shuffle makes `next` one cycle through every line: the chase never settles into a
  // loop small enough to stay in a cache.
  std::vector<uint32_t> next(lines);
  std::iota(next.begin(), next.end(), 0);
  for (uint64_t i = lines - 1; i > 0; --i) std::swap(next[i], next[rng() % i]);
  for (uint64_t x = 0; x < lines; ++x) buf[x * kWords] = next[x];
  const uint64_t n = std::min<uint64_t>(lines, uint64_t{1} << 20) / 32 * 32;
  uint32_t at = 0;
  uint64_t t0 = rte_rdtsc();
  for (uint64_t i = 0; i < n; ++i) at = buf[uint64_t{at} * kWords];
  r.dependent = static_cast<double>(rte_rdtsc() - t0) / static_cast<double>(n);
  for (uint64_t i = 0; i < n; ++i) next[i] = static_cast<uint32_t>(rng() % lines);
  uint64_t sum = at;
  t0 = rte_rdtsc();
  for (uint64_t i = 0; i < n; i += 32) {
    for (uint64_t k = 0; k < 32; ++k) rte_prefetch0(&buf[uint64_t{next[i + k]} * kWords]);
    for (uint64_t k = 0; k < 32; ++k) sum += buf[uint64_t{next[i + k]} * kWords];
  }
  r.grouped = static_cast<double>(rte_rdtsc() - t0) / static_cast<double>(n);
  asm volatile("" : : "r"(sum));  // the loads are the point: keep them
  rte_free(buf);
  r.bytes = lines * 64;
  return r;
}

std::string with_commas(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string cell(const PhaseResult& r, uint64_t hz) {
  std::string s = fixed(r.median, 1) + "  (" + fixed(r.min, 1) + "-" + fixed(r.max, 1) + "; " +
                  fixed(r.median * 1e9 / static_cast<double>(hz), 1) + " ns)";
  if (r.preempted != 0) {
    s += "  " + std::to_string(r.preempted) + (r.preempted == 1 ? " burst" : " bursts") +
         " interrupted";
  }
  if (r.forwarded != r.packets) {
    s += "  forwarded " + std::to_string(r.forwarded) + " of " + std::to_string(r.packets);
  }
  return s;
}

nlohmann::json to_json(const PhaseResult& r, uint64_t flows, bool offload) {
  return {{"flows", flows},
          {"checksums", offload ? "nic" : "software"},
          {"cycles_median", r.median},
          {"cycles_min", r.min},
          {"cycles_max", r.max},
          {"packets", r.packets},
          {"forwarded", r.forwarded},
          {"bursts_interrupted", r.preempted}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ilb-bench-pipeline: a worker's process_burst() cycles and memory, no NIC"};
  std::vector<uint64_t> flow_counts = {1000, 100000, 1000000};
  uint32_t rounds = 9;
  uint32_t bursts = 256;
  uint64_t mem_conns = 10000000;
  bool huge = false;
  uint64_t eal_mb = 0;
  uint64_t seed = 1;
  double headroom = 1.0;
  bool verify_all_l4 = false;
  std::string sides_name = "both";
  std::string json_path;
  app.add_option("--flows", flow_counts, "established flows to spread packets over (a list)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{50000000}));
  app.add_option("--rounds", rounds, "timed rounds per measurement (the median is reported)")
      ->check(CLI::Range(1u, 1000u));
  app.add_option("--bursts", bursts, "bursts of 32 packets per round")
      ->check(CLI::Range(1u, 1000u));
  app.add_option("--mem-conns", mem_conns,
                 "connection-table capacity for the memory measurement (0 = skip it)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{100000000}));
  app.add_flag("--huge", huge, "give the EAL hugepages (default: --no-huge)");
  app.add_option("--eal-mem", eal_mb, "EAL memory in MiB (0 = enough for the largest table)");
  app.add_option("--seed", seed, "seed of the random flow choice");
  app.add_option("--headroom", headroom,
                 "table capacity beyond the flows, as a fraction of them (1 = twice the flows)")
      ->check(CLI::Range(0.0, 10.0));
  app.add_flag("--verify-all-l4", verify_all_l4,
               "verify every TCP segment's checksum in software, as verify_l4_checksums = \"all\" "
               "(default: SYN, FIN and RST segments only)");
  app.add_option("--sides", sides_name,
                 "where established flows' packets come from: both (at random), clients, backends")
      ->check(CLI::IsMember({"both", "clients", "backends"}));
  app.add_option("--json", json_path, "also write the result as JSON to this file");
  CLI11_PARSE(app, argc, argv);
  const Sides sides = sides_name == "clients"    ? Sides::kClients
                      : sides_name == "backends" ? Sides::kBackends
                                                 : Sides::kBoth;

  const ilb::bench::MachineInfo machine = ilb::bench::machine_info();
  const uint32_t packets = bursts * kBurst;
  const uint64_t max_flows = *std::max_element(flow_counts.begin(), flow_counts.end());
  const uint64_t pool_size = 2 * uint64_t{packets} + 2048;
  // Without hugepages the EAL needs all of its memory up front (-m). With them it takes pages as
  // the tables need them and gives them back, and --in-memory leaves no files in hugetlbfs.
  const bool fixed_memory = !huge || eal_mb != 0;
  if (eal_mb == 0) {
    const uint64_t table = std::max(estimate_total(mem_conns),
                                    estimate_total(capacity_for(max_flows, headroom) + packets));
    eal_mb = (table + table / 8 + pool_size * 2560) / (1 << 20) + 256;
  }

  const int cpu = first_usable_cpu();
  const std::string prefix = "ilb-bench-" + std::to_string(getpid());
  std::vector<std::string> args = {
      "ilb-bench-pipeline", "--lcores",      "0@" + std::to_string(cpu),
      "--no-pci",           "--file-prefix", prefix,
      "--log-level",        "lib.*:error",   "--no-telemetry"};
  if (fixed_memory) {
    args.push_back("-m");
    args.push_back(std::to_string(eal_mb));
  }
  args.push_back(huge ? "--in-memory" : "--no-huge");
  std::vector<char*> eal_argv;
  for (auto& a : args) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::cerr << "ilb-bench-pipeline: EAL init failed ("
              << (fixed_memory ? std::to_string(eal_mb) + " MiB" : "memory on demand")
              << (huge ? ", hugepages" : ", no hugepages") << ")\n";
    return 2;
  }
  const uint64_t hz = rte_get_tsc_hz();
  const uint64_t overhead = rdtsc_overhead();
  rte_mempool* pool = rte_pktmbuf_pool_create("bench_pool", static_cast<unsigned>(pool_size), 256,
                                              0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (pool == nullptr) {
    std::cerr << "ilb-bench-pipeline: no mbuf pool\n";
    return 2;
  }

  std::mt19937_64 rng(seed);
  std::vector<std::pair<std::string, std::string>> est_rows;
  std::vector<std::pair<std::string, std::string>> new_rows;
  std::vector<std::pair<std::string, std::string>> setup_rows;
  nlohmann::json est_json = nlohmann::json::array();
  nlohmann::json new_json = nlohmann::json::array();
  nlohmann::json setup_json = nlohmann::json::array();
  int status = 0;
  for (const uint64_t f : flow_counts) {
    // The new connections of a round are added to the f established ones, so they get room too.
    const auto capacity = static_cast<uint32_t>(capacity_for(f, headroom) + packets + 1024);
    // How full the hash's buckets are with the f flows: what an insert's cost depends on.
    const double fill = static_cast<double>(f) / static_cast<double>(pow2_at_least(capacity));
    std::string err;
    auto p = std::make_unique<Pipeline>();
    if (!p->init("p" + std::to_string(f), capacity, verify_all_l4, err)) {
      std::cerr << "ilb-bench-pipeline: " << f << " flows: " << err << "\n";
      status = 2;
      continue;
    }
    std::vector<Flow> flows;
    const double t0 = ilb::bench::now_seconds();
    if (!create_flows(*p, pool, f, flows, err)) {
      std::cerr << "ilb-bench-pipeline: " << f << " flows: " << err << "\n";
      status = 2;
      continue;
    }
    const double setup_s = ilb::bench::now_seconds() - t0;
    const std::string fs = with_commas(f);
    setup_rows.push_back({fs + " flows: handshakes through the worker",
                          ilb::bench::human_seconds(setup_s) + ", " +
                              std::to_string(p->worker().shared->snat_addresses.size()) +
                              " SNAT addresses, table capacity " + with_commas(capacity) +
                              ", hash buckets " + fixed(100 * fill, 0) + " % full"});
    setup_json.push_back({{"flows", f},
                          {"seconds", setup_s},
                          {"capacity", capacity},
                          {"hash_fill", fill},
                          {"snat_addresses", p->worker().shared->snat_addresses.size()}});
    const std::array<PhaseResult, 2> est =
        measure_established(*p, pool, flows, rounds, packets, sides, rng);
    const std::array<PhaseResult, 2> nc = measure_new(*p, pool, f, rounds, packets, err);
    if (!err.empty()) {
      std::cerr << "ilb-bench-pipeline: " << f << " flows: " << err << "\n";
      status = 2;
    }
    for (const bool offload : {true, false}) {
      const std::string how = offload         ? ", checksums by the NIC"
                              : verify_all_l4 ? ", checksums in software, all"
                                              : ", checksums in software";
      const size_t i = offload ? 0 : 1;
      est_rows.push_back({fs + " flows" + how, cell(est[i], hz)});
      est_json.push_back(to_json(est[i], f, offload));
      new_rows.push_back({"table of " + fs + " flows" + how, cell(nc[i], hz)});
      new_json.push_back(to_json(nc[i], f, offload));
    }
  }
  rte_mempool_free(pool);
  const MemoryCost miss =
      measure_memory(estimate_total(capacity_for(max_flows, headroom) + packets), rng);

  std::vector<std::pair<std::string, std::string>> mem_rows;
  nlohmann::json mem_json = nullptr;
  if (mem_conns != 0) {
    const uint64_t before = heap_allocated();
    std::string err;
    auto table = std::make_unique<dp::ConnTable>();
    std::vector<uint32_t> addresses;
    for (uint32_t i = 0; i < addresses_for(mem_conns); ++i) addresses.push_back(snat_ip(i));
    const bool ok =
        table->init("bench_mem", static_cast<uint32_t>(mem_conns), addresses, SOCKET_ID_ANY, err);
    const uint64_t after = heap_allocated();
    table.reset();
    const uint64_t est = estimate_total(mem_conns);
    if (!ok) {
      std::cerr << "ilb-bench-pipeline: ConnTable::init(" << mem_conns << "): " << err
                << " (try --eal-mem or a smaller --mem-conns)\n";
      mem_json = {{"capacity", mem_conns}, {"error", err}};
      status = 2;
    } else {
      const uint64_t used = after - before;
      const double per = static_cast<double>(used) / static_cast<double>(mem_conns);
      mem_rows.push_back({"ConnTable::init(" + with_commas(mem_conns) + "), EAL heap",
                          human_bytes(used) + " (" + with_commas(used) + " B)"});
      mem_rows.push_back({"per connection (both directions)", fixed(per, 1) + " B"});
      mem_rows.push_back({"estimate from sizes",
                          fixed(static_cast<double>(est) / static_cast<double>(mem_conns), 1) +
                              " B per connection"});
      nlohmann::json parts = nlohmann::json::object();
      for (const auto& [name, bytes] : estimate(mem_conns)) {
        mem_rows.push_back(
            {"  " + name,
             fixed(static_cast<double>(bytes) / static_cast<double>(mem_conns), 1) + " B"});
        parts[name] = bytes;
      }
      mem_json = {{"capacity", mem_conns},
                  {"heap_bytes", used},
                  {"bytes_per_conn", per},
                  {"estimate_bytes", est},
                  {"estimate_parts", parts}};
    }
  }

  std::cout << "ilb-bench-pipeline: " << rounds << " rounds of " << packets
            << " packets (60-byte TCP frames written before the clock starts, not timed), "
            << (huge ? "hugepages" : "no hugepages") << ", EAL "
            << (fixed_memory ? std::to_string(eal_mb) + " MiB" : "memory on demand")
            << ", lcore 0 on CPU " << cpu << "\n"
            << "machine: " << ilb::bench::machine_line(machine) << "\n";
  std::vector<std::pair<std::string, std::string>> rows;
  rows.push_back(
      {"Established flows" +
           std::string(sides == Sides::kBoth ? "" : ", from the " + sides_name + " only") +
           ": TSC cycles per packet, median (min-max; ns)",
       ""});
  rows.insert(rows.end(), est_rows.begin(), est_rows.end());
  rows.push_back({"New connections: TSC cycles per SYN of a fresh tuple, insert included", ""});
  rows.insert(rows.end(), new_rows.begin(), new_rows.end());
  if (!mem_rows.empty()) {
    rows.push_back({"Memory per tracked connection", ""});
    rows.insert(rows.end(), mem_rows.begin(), mem_rows.end());
  }
  rows.push_back({"Setup", ""});
  rows.push_back({"TSC", fixed(static_cast<double>(hz) / 1e9, 3) + " GHz"});
  rows.push_back(
      {"rte_rdtsc() back to back", std::to_string(overhead) + " cycles, once per round"});
  rows.insert(rows.end(), setup_rows.begin(), setup_rows.end());
  if (miss.bytes != 0) {
    auto ns = [hz](double cycles) { return fixed(cycles * 1e9 / static_cast<double>(hz), 1); };
    rows.push_back({"a load from a random line of " + human_bytes(miss.bytes),
                    fixed(miss.dependent, 1) + " cycles (" + ns(miss.dependent) +
                        " ns) when it waits for the one before, " + fixed(miss.grouped, 1) + " (" +
                        ns(miss.grouped) + " ns) each in groups of 32"});
  }
  ilb::bench::print_table(rows);

  nlohmann::json doc = {
      {"benchmark", "pipeline"},
      {"machine", ilb::bench::to_json(machine)},
      {"params",
       {{"flows", flow_counts},
        {"rounds", rounds},
        {"bursts", bursts},
        {"packets_per_round", packets},
        {"frame_bytes", kFrameLen},
        {"frames_timed", false},
        {"mem_conns", mem_conns},
        {"headroom", headroom},
        {"sides", sides_name},
        {"verify_all_l4_checksums", verify_all_l4},
        {"hugepages", huge},
        {"eal_mb", fixed_memory ? eal_mb : 0},
        {"cpu", cpu},
        {"seed", seed}}},
      {"results",
       {{"tsc_hz", hz},
        {"rdtsc_overhead_cycles", overhead},
        {"established", est_json},
        {"new_connections", new_json},
        {"memory", mem_json},
        {"setup", setup_json},
        {"memory_cost", miss.bytes == 0 ? nlohmann::json(nullptr)
                                        : nlohmann::json{{"buffer_bytes", miss.bytes},
                                                         {"dependent_load_cycles", miss.dependent},
                                                         {"grouped_load_cycles", miss.grouped}}}}},
  };
  ilb::bench::emit_json(doc, json_path);

  const std::string runtime_dir = rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  std::error_code ec;
  std::filesystem::remove_all(runtime_dir, ec);
  return status;
}

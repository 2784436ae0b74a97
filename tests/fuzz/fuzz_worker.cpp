// libFuzzer target for the worker: the input is a program of steps that drives two workers the way
// their ports and loops would. Steps put frames on a worker's pending burst — a client's packet to
// a service (or to one of ilb's other addresses, from ordinary or impossible sources), a packet of
// a connection either worker tracks in either direction (the backend's side sent to either
// worker, so replies are handed over), an ICMP error quoting a tracked connection, an ARP request,
// an echo request or raw bytes — each optionally corrupted (bytes changed, length changed,
// checksums made right again afterwards, the NIC's checksum and RSS flags claimed). Other steps
// run a pending burst (process_burst), take hand-overs (process_handoffs), advance time, run the
// housekeeping sweep (expiry, probes of cut connections), learn or change a neighbour's MAC, and
// swap the config in force between four snapshots: all backends up; backends disabled, down or
// cut; backends removed or moved and a service with no backend left; no services at all. An input
// runs a one-armed dataplane or a two-armed one (a second port, 10.1.0.0/24, on whose subnet one
// backend lives; frames arrive on either port), each port with an MTU of 576 to 2000 bytes.
//
// After every step that ran the workers it checks what the rest of ilb relies on:
// - every frame a worker transmits leaves through one of ilb's ports, from that port's MAC, is
//   IPv4 from one of ilb's own addresses (a port's, a SNAT address, a VIP), never to one of them,
//   never to a group MAC; a frame from a SNAT address leaves through the port that reaches its
//   destination; when every
//   frame that went in was well formed, every frame that comes out parses with every checksum
//   verified, and a translated ICMP error goes to the sender of the datagram it quotes; a frame
//   sent on is rewritten by its own connection (the record its output finds has the input's
//   tuple on its other side); a frame sent on fits the MTU of its port, and every MSS option of
//   a SYN sent on fits it too;
// - each table's records agree with its keys (both keys find the record), with the worker's SNAT
//   ports (ports in use = records; each record's port in the worker's own share) and with the
//   active-connection counters (per worker and per backend: the records not in TIME_WAIT);
// - at the end of the input, once everything pending has run and every record has expired, the
//   tables are empty, every SNAT port and every mbuf is back, and the counters are back at zero.
// Each input starts from new tables and SNAT pools and the same neighbours, so a finding replays
// from its input alone.
#include <fuzzer/FuzzedDataProvider.h>
#include <netinet/in.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "dataplane/abi/ilb_abi.h"
#include "dataplane/agent/active_config.h"
#include "dataplane/packet/packet.h"
#include "dataplane/port/rss.h"
#include "dataplane/worker/worker.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_eal.h"
#include "tests/unit/common/rss_key.h"
#include "tests/unit/dataplane/dp_test_util.h"

namespace {

namespace abi = ilb::abi;
namespace dp = ilb::dp;
namespace pkt = ilb::dp::pkt;
using ilb::dp::test::ip;

constexpr uint8_t kOurMac[6] = {0x02, 0, 0, 0, 0, 0x02};
constexpr uint8_t kOurMac2[6] = {0x02, 0, 0, 0, 0, 0x03};  // the second port's
constexpr uint8_t kGatewayMac[6] = {0x02, 0, 0, 0, 0, 0x01};
constexpr uint16_t kWorkers = 2;
constexpr uint16_t kBurst = 32;
constexpr uint16_t kSnatPortMin = 1024;
constexpr uint16_t kSnatPortMax = 1103;              // 80 ports: 40 per worker and address
constexpr uint32_t kCapacity[kWorkers] = {32, 128};  // worker 0 fills its table, 1 its ports
constexpr uint32_t kBackends = 8;                    // ids 1..7
constexpr uint64_t kHz = 1000;                       // ticks per second

// What the harness knows of a frame, in its mbuf's private area. Every mbuf starts each input
// and goes back to the pool as {true, false}: a frame ilb builds in an mbuf of its own (a second
// reset, a probe) must be well formed whatever went in.
struct Priv {
  bool well_formed;  // built well formed by the harness (and not damaged), or ilb's own
  bool has_key;      // parsed as TCP/UDP when queued: `key` is its tuple as it came in
  dp::FlowKey key;
};
constexpr uint16_t kPrivSize = RTE_ALIGN(sizeof(Priv), RTE_MBUF_PRIV_ALIGN);

Priv& priv(rte_mbuf* m) {
  return *static_cast<Priv*>(rte_mbuf_to_priv(m));
}

void clear_priv(rte_mempool* /*mp*/, void* /*opaque*/, void* obj, unsigned /*idx*/) {
  priv(static_cast<rte_mbuf*>(obj)) = Priv{true, false, {}};
}

struct Target {
  uint32_t ip;
  uint16_t port;
  uint8_t proto;
};

struct World {
  rte_mempool* pool = nullptr;
  dp::SharedState shared;
  std::array<dp::WorkerContext, kWorkers> w;
  std::array<rte_ring*, kWorkers> handoff{};  // handoff[j]: frames for worker j
  std::array<uint64_t, kWorkers> ports_free{};
  std::array<dp::ActiveConfig*, 4> configs{};
  dp::Rss rss;
  std::vector<uint32_t> our_addresses;  // the port's, the SNAT addresses, every VIP
  std::vector<Target> targets;          // where new clients' packets go
  std::vector<uint32_t> sources;        // where they come from
  std::vector<uint32_t> resolved;       // backends whose MAC the neighbour table has
};

World* g = nullptr;

ilb::cp::SnapshotService service(const char* name, const char* vip, uint16_t port,
                                 abi::Protocol proto, abi::Scheduler sched,
                                 std::vector<uint32_t> table, bool reset_untracked = false) {
  ilb::cp::SnapshotService s;
  s.name = name;
  s.vip = ip(vip);
  s.port = port;
  s.protocol = proto;
  s.scheduler = sched;
  s.tcp_syn_timeout_s = 5;
  s.tcp_est_timeout_s = 100;
  s.tcp_fin_timeout_s = 10;
  s.udp_timeout_s = 30;
  s.reset_untracked = reset_untracked;
  s.table = std::move(table);
  return s;
}

ilb::cp::SnapshotBackend backend(uint32_t id, uint32_t svc, const char* addr, uint16_t port,
                                 abi::AdminState admin = abi::AdminState::kEnabled,
                                 abi::Health health = abi::Health::kUp, bool reset = false) {
  ilb::cp::SnapshotBackend b;
  b.id = id;
  b.service_index = svc;
  b.address = ip(addr);
  b.port = port;
  b.admin = admin;
  b.health = health;
  b.weight = id;
  b.reset_flows = reset;
  return b;
}

// The four configs the input switches between.
std::array<ilb::cp::Snapshot, 4> snapshots() {
  using abi::Protocol;
  using abi::Scheduler;
  std::array<ilb::cp::Snapshot, 4> s;
  // 0: everything up.
  s[0].services = {
      service("web", "10.0.0.100", 80, Protocol::kTcp, Scheduler::kMaglev, {1, 2, 1, 2, 1, 2, 2},
              true),
      service("dns", "10.0.0.100", 53, Protocol::kUdp, Scheduler::kWrr, {3, 4, 3, 4, 3, 4, 4}),
      service("db", "10.0.0.103", 3306, Protocol::kTcp, Scheduler::kWlc, {5, 6}),
      service("cache", "10.0.0.103", 11211, Protocol::kUdp, Scheduler::kSource, {7})};
  s[0].backends = {backend(1, 0, "10.0.0.21", 80),   backend(2, 0, "10.0.0.22", 8080),
                   backend(3, 1, "10.0.0.23", 53),   backend(4, 1, "10.0.0.24", 53),
                   backend(5, 2, "10.0.0.25", 3306), backend(6, 2, "172.16.0.6", 3306),
                   backend(7, 3, "10.1.0.27", 11211)};
  // 1: backend 1 disabled, 3 down (still in its table), 5 cut (on_backend_down = "reset").
  s[1] = s[0];
  s[1].services[0].table = {2, 2, 2, 2, 2, 2, 2};
  s[1].services[2].table = {6};
  s[1].backends[0].admin = abi::AdminState::kDisabled;
  s[1].backends[2].health = abi::Health::kDown;
  s[1].backends[4] =
      backend(5, 2, "10.0.0.25", 3306, abi::AdminState::kEnabled, abi::Health::kDown, true);
  // 2: backend 2 removed, 6 moved to another address, "cache" left without a backend.
  s[2] = s[0];
  s[2].services[0].table = {1, 1, 1, 1, 1, 1, 1};
  s[2].services[3].table = {};
  s[2].backends = {s[0].backends[0],
                   s[0].backends[2],
                   s[0].backends[3],
                   s[0].backends[4],
                   backend(6, 2, "10.0.0.26", 3306),
                   s[0].backends[6]};
  // 3: no services at all.
  return s;
}

// Each input starts with new, empty tables and SNAT pools: the order in which records and ports
// are handed out (a LIFO free list, a FIFO of ports) is then the same whenever the input runs.
void fresh_tables() {
  std::string err;
  for (uint16_t j = 0; j < kWorkers; ++j) {
    dp::WorkerContext& w = g->w[j];
    w.conns.~ConnTable();
    new (&w.conns) dp::ConnTable();
    ILB_FUZZ_CHECK(w.conns.init("fw_conn" + std::to_string(j), kCapacity[j],
                                g->shared.snat_addresses, SOCKET_ID_ANY, err),
                   "connection table init");
    w.snat.~SnatPorts();
    new (&w.snat) dp::SnatPorts();
    ILB_FUZZ_CHECK(w.snat.init(g->shared.snat_addresses, kSnatPortMin, kSnatPortMax, j, kWorkers,
                               SOCKET_ID_ANY, err),
                   "snat ports init");
    g->ports_free[j] = w.snat.available();
  }
}

void init_world() {
  g = new World();
  g->pool = rte_pktmbuf_pool_create("fw_pool", 1023, 0, kPrivSize, RTE_MBUF_DEFAULT_BUF_SIZE,
                                    SOCKET_ID_ANY);
  ILB_FUZZ_CHECK(g->pool != nullptr, "the mbuf pool is created");
  dp::SharedState& sh = g->shared;
  std::memcpy(sh.ports[0].mac, kOurMac, 6);
  sh.ports[0].address = ip("10.0.0.2");
  sh.ports[0].netmask = ip("255.255.255.0");
  sh.ports[0].gateway = ip("10.0.0.1");
  sh.ports[1].port_id = 1;
  std::memcpy(sh.ports[1].mac, kOurMac2, 6);
  sh.ports[1].address = ip("10.1.0.2");
  sh.ports[1].netmask = ip("255.255.255.0");
  sh.port_index[1] = 1;
  sh.snat_addresses = {ip("10.0.0.101"), ip("10.0.0.102")};
  std::sort(sh.snat_addresses.begin(), sh.snat_addresses.end());
  sh.tsc_hz = kHz;
  sh.workers = kWorkers;
  sh.snat_port_min = kSnatPortMin;
  // Client-side ICMP errors go round the workers where RSS is off, as in the dataplane.
  sh.icmp_round_offset = dp::register_icmp_round_field();
  ILB_FUZZ_CHECK(sh.icmp_round_offset >= 0, "the round's mbuf field registered");
  std::string err;
  ILB_FUZZ_CHECK(sh.neighbours.init("fw_neigh", 64, SOCKET_ID_ANY, err), "neighbours init");
  std::vector<uint16_t> reta(128);
  for (size_t i = 0; i < reta.size(); ++i) reta[i] = static_cast<uint16_t>(i % kWorkers);
  ILB_FUZZ_CHECK(g->rss.init(ilb::test::kMicrosoftRssKey.data(), ilb::test::kMicrosoftRssKey.size(),
                             reta, err),
                 "rss init");
  for (uint16_t j = 0; j < kWorkers; ++j) {
    g->handoff[j] = rte_ring_create(("fw_ho" + std::to_string(j)).c_str(), 64, SOCKET_ID_ANY,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ);
    ILB_FUZZ_CHECK(g->handoff[j] != nullptr, "hand-over ring created");
  }
  for (uint16_t j = 0; j < kWorkers; ++j) {
    dp::WorkerContext& w = g->w[j];
    const std::string n = std::to_string(j);
    w.index = j;
    w.shared = &sh;
    w.pool = g->pool;
    w.counters =
        static_cast<dp::WorkerCounters*>(rte_zmalloc("fw_ctr", sizeof(dp::WorkerCounters), 64));
    w.to_main =
        rte_ring_create(("fw_tm" + n).c_str(), 64, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    w.resolve =
        rte_ring_create(("fw_rs" + n).c_str(), 64, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    ILB_FUZZ_CHECK(w.counters != nullptr && w.to_main != nullptr && w.resolve != nullptr,
                   "worker rings and counters");
    for (uint16_t k = 0; k < kWorkers; ++k) {
      if (k == j) continue;
      w.handoff_to[k] = g->handoff[k];
      w.handoff_from[k] = g->handoff[j];
    }
  }
  const auto snaps = snapshots();
  for (size_t i = 0; i < snaps.size(); ++i) {
    const std::vector<uint8_t> slot = ilb::dp::test::encode(snaps[i], i + 1);
    g->configs[i] = dp::ActiveConfig::build(slot.data(), slot.size(), i + 1, err);
    ILB_FUZZ_CHECK(g->configs[i] != nullptr, "the harness's snapshots are valid");
  }
  g->our_addresses = {sh.ports[0].address, sh.ports[1].address, ip("10.0.0.100"), ip("10.0.0.103")};
  g->our_addresses.insert(g->our_addresses.end(), sh.snat_addresses.begin(),
                          sh.snat_addresses.end());
  std::sort(g->our_addresses.begin(), g->our_addresses.end());
  const uint32_t vip = ip("10.0.0.100");
  const uint32_t vip2 = ip("10.0.0.103");
  g->targets = {{vip, 80, IPPROTO_TCP},
                {vip, 53, IPPROTO_UDP},
                {vip2, 3306, IPPROTO_TCP},
                {vip2, 11211, IPPROTO_UDP},
                {vip, 81, IPPROTO_TCP},
                {vip, 80, IPPROTO_UDP},
                {ip("10.0.0.2"), 80, IPPROTO_TCP},
                {ip("10.0.0.101"), 1030, IPPROTO_TCP},
                {ip("10.0.0.102"), 1031, IPPROTO_UDP},
                {ip("10.0.0.55"), 80, IPPROTO_TCP}};
  // Ordinary clients first (on the subnet, and beyond the gateway), then addresses no client can
  // have: ilb's own, 0.0.0.0, loopback, multicast, broadcast.
  g->sources = {ip("10.0.0.10"), ip("10.0.0.11"),  ip("192.168.7.7"), ip("10.0.0.12"),
                ip("10.1.0.10"), ip("10.0.0.100"), ip("10.0.0.101"),  ip("10.0.0.2"),
                ip("0.0.0.0"),   ip("127.0.0.1"),  ip("224.0.0.1"),   ip("255.255.255.255")};
  // 10.0.0.24 and 10.0.0.26 are never resolved: their flows wait for the main lcore's ARP, which
  // the harness does not answer (the neighbour table has no removal, and each input must start
  // from the same table).
  g->resolved = {ip("10.0.0.21"), ip("10.0.0.22"), ip("10.0.0.23"),
                 ip("10.0.0.25"), ip("10.1.0.27"), sh.ports[0].gateway};
}

bool ours(uint32_t a) {
  return std::binary_search(g->our_addresses.begin(), g->our_addresses.end(), a);
}

const dp::ActiveConfig& config();

// Whether `a` is ilb's under the config in force (a VIP of an earlier config is any host's now).
bool ours_now(uint32_t a) {
  for (uint32_t i = 0; i < g->shared.n_ports; ++i) {
    if (a == g->shared.ports[i].address) return true;
  }
  return std::binary_search(g->shared.snat_addresses.begin(), g->shared.snat_addresses.end(), a) ||
         config().is_vip(a);
}

// The MAC a host is reached at: its own on a port's subnet, else the gateway's.
void mac_of(uint32_t host, uint8_t mac[6]) {
  dp::Route r;
  if (!dp::route(g->shared, host, r) || r.next_hop != host) {
    std::memcpy(mac, kGatewayMac, 6);
    return;
  }
  const uint8_t last = static_cast<uint8_t>(rte_be_to_cpu_32(host) & 0xff);
  const uint8_t m[6] = {0x02, 0, 0, 0, 0, last};
  std::memcpy(mac, m, 6);
}

void reset_neighbours() {
  uint8_t mac[6];
  for (const uint32_t host : g->resolved) {
    mac_of(host, mac);  // the gateway's own address gives kGatewayMac
    g->shared.neighbours.update(host, mac);
  }
}

// ---- the checks ----

// The frame a failed check was about, in hex on stderr (for the finding's report).
void print_frame(const uint8_t* f, uint32_t len) {
  std::fprintf(stderr, "frame out, %u bytes:", len);
  for (uint32_t i = 0; i < len && i < 128; ++i)
    std::fprintf(stderr, "%s%02x", i % 16 ? " " : "\n  ", f[i]);
  std::fprintf(stderr, "\n");
}

// ILB_FUZZ_CHECK about the frame `f` (`len` bytes), printed first when the check fails.
#define OUT_CHECK(cond, what)         \
  do {                                \
    if (!(cond)) print_frame(f, len); \
    ILB_FUZZ_CHECK(cond, what);       \
  } while (0)

void check_output(rte_mbuf* m) {
  const auto* f = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  OUT_CHECK(m->nb_segs == 1 && len >= pkt::kMinFrameLen - 26, "a frame out has headers");
  OUT_CHECK(m->port < g->shared.n_ports, "every frame out leaves through one of ilb's ports");
  const dp::PortInfo& port = g->shared.ports[m->port];
  OUT_CHECK(std::memcmp(f + 6, port.mac, 6) == 0, "every frame out is from its port's MAC");
  OUT_CHECK((f[0] & 1) == 0, "no frame out goes to a group (broadcast, multicast) MAC");
  OUT_CHECK(f[12] == 0x08 && f[13] == 0x00, "every frame out is IPv4");
  uint32_t src = 0;
  uint32_t dst = 0;
  std::memcpy(&src, f + 26, 4);
  std::memcpy(&dst, f + 30, 4);
  OUT_CHECK(ours(src), "every packet out is from one of ilb's addresses");
  OUT_CHECK(!ours_now(dst), "no packet out is to one of ilb's addresses");
  // From a SNAT address: a packet towards a backend (forwarded, a probe, a translated ICMP
  // error) — unless it answers its sender where the sender's frame came in (an echo reply, a
  // reset for an untracked segment).
  // (Also an answer: ilb's own "fragmentation needed" to the sender of a datagram too big to
  // send on, which quotes that datagram as sent to ilb: to the address the error comes from.)
  const bool too_big_answer = f[23] == IPPROTO_ICMP && len >= 62 && f[34] == 3 && f[35] == 4 &&
                              std::memcmp(f + 58, f + 26, 4) == 0;
  const bool answer = (f[23] == IPPROTO_ICMP && len > 34 && f[34] == 0) || too_big_answer ||
                      (f[23] == IPPROTO_TCP && len > 47 && (f[47] & RTE_TCP_RST_FLAG) != 0);
  if (!answer &&
      std::binary_search(g->shared.snat_addresses.begin(), g->shared.snat_addresses.end(), src)) {
    dp::Route r;
    OUT_CHECK(dp::route(g->shared, dst, r) && r.port == m->port,
              "a packet towards a backend leaves through the port that reaches it");
  }
  const uint32_t d = rte_be_to_cpu_32(dst);
  OUT_CHECK(d != 0 && (d >> 24) != 127 && d < 0xe0000000,
            "no packet out is to 0.0.0.0, loopback, multicast or broadcast");
  if (!priv(m).well_formed) return;
  pkt::Parsed p;
  const pkt::Kind kind = pkt::parse(f, len, p);
  OUT_CHECK(kind == pkt::Kind::kL4 || kind == pkt::Kind::kIcmp,
            "a well-formed frame in gives frames out with every checksum right");
  if (!answer) {
    OUT_CHECK(p.ip_total_len <= port.mtu, "a frame sent on fits its port's MTU");
  }
  if (kind == pkt::Kind::kL4 && p.proto == IPPROTO_TCP && (p.tcp_flags & RTE_TCP_SYN_FLAG) != 0) {
    const uint8_t* tcp = f + p.l4_offset;
    const uint32_t header_len = static_cast<uint32_t>(tcp[12] >> 4) * 4;
    for (uint32_t at = 20; at < header_len && tcp[at] != 0;) {
      if (tcp[at] == 1 || at + 1 >= header_len) {
        ++at;
        continue;
      }
      const uint8_t opt_len = tcp[at + 1];
      if (opt_len < 2 || at + opt_len > header_len) break;
      if (tcp[at] == 2 && opt_len == 4) {
        OUT_CHECK((tcp[at + 2] << 8 | tcp[at + 3]) <= pkt::mss_for_mtu(port.mtu),
                  "every MSS option of a SYN sent on fits its port's MTU");
      }
      at += opt_len;
    }
  }
  if (kind == pkt::Kind::kIcmp && p.icmp_type != 0) {
    pkt::IcmpQuote q;
    OUT_CHECK(pkt::parse_icmp_error(f, p, q), "an ICMP error out still quotes a datagram");
    OUT_CHECK(q.src_ip == p.dst_ip, "an ICMP error goes to the quoted datagram's sender");
  }
}

// A TCP/UDP frame worker `j` sent on (not a reset: those are ilb's answers) must be the frame it
// received, rewritten by the connection that tuple belongs to: the record its output tuple finds
// is the one whose other side is the input tuple. Checked only in steps where no connection
// ended: once one has, a newer connection may legitimately have the frame's output tuple (a
// client's SYN on the same tuple after a reset; with the SNAT ports nearly all in use, the same
// port back to the same backend for another client). The stale-record bug this was written for
// also returns a SNAT port twice, which check_tables() sees.
void check_forwarded(rte_mbuf* m, uint16_t j, bool removals) {
  const Priv& in = priv(m);
  const auto* f = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  pkt::ParseOptions lax;
  lax.verify_ip_checksum = lax.verify_l4_checksum = false;
  pkt::Parsed p;
  if (!in.has_key || pkt::parse(f, len, p, lax) != pkt::Kind::kL4) return;
  if (p.proto == IPPROTO_TCP && (p.tcp_flags & RTE_TCP_RST_FLAG) != 0) return;
  dp::FlowKey back{};  // the tuple of the output's replies
  back.src_ip = p.dst_ip;
  back.dst_ip = p.src_ip;
  back.src_port = p.dst_port;
  back.dst_port = p.src_port;
  back.proto = p.proto;
  const dp::ConnTable& t = g->w[j].conns;
  uint32_t idx = 0;
  dp::Dir dir = dp::Dir::kFromClient;
  if (removals || !t.lookup(back, idx, dir)) return;
  const dp::FlowKey expected =
      dir == dp::Dir::kFromBackend ? dp::client_key(t.at(idx)) : dp::backend_key(t.at(idx));
  if (std::memcmp(&expected, &in.key, sizeof(expected)) != 0) {
    auto tuple = [](const char* what, const dp::FlowKey& k) {
      std::fprintf(stderr, "%s %08x:%u -> %08x:%u proto %u\n", what, rte_be_to_cpu_32(k.src_ip),
                   rte_be_to_cpu_16(k.src_port), rte_be_to_cpu_32(k.dst_ip),
                   rte_be_to_cpu_16(k.dst_port), k.proto);
    };
    tuple("in:      ", in.key);
    tuple("expected:", expected);
  }
  OUT_CHECK(std::memcmp(&expected, &in.key, sizeof(expected)) == 0,
            "a forwarded frame is its own connection's, rewritten (not another's)");
}

// Checks and frees what a step of worker `j` transmitted (`forwards`: frames it received may be
// among them; `removals_before`: its table's removal count when the step began).
void drain_tx(rte_mbuf** tx, uint16_t n, uint16_t j, bool forwards, uint64_t removals_before) {
  const bool removals = g->w[j].conns.removals() != removals_before;
  for (uint16_t i = 0; i < n; ++i) {
    check_output(tx[i]);
    if (forwards) check_forwarded(tx[i], j, removals);
    priv(tx[i]) = Priv{true, false, {}};
    rte_pktmbuf_free(tx[i]);
  }
}

void check_tables() {
  for (uint16_t j = 0; j < kWorkers; ++j) {
    dp::WorkerContext& w = g->w[j];
    uint32_t live = 0;
    int64_t active = 0;
    std::array<int64_t, kBackends> per_backend{};
    for (uint32_t i = 0; i < w.conns.capacity(); ++i) {
      const dp::Conn& c = w.conns.at(i);
      if (c.deadline_tsc == 0) continue;
      ++live;
      uint32_t idx = 0;
      dp::Dir dir = dp::Dir::kFromBackend;
      ILB_FUZZ_CHECK(
          w.conns.lookup(dp::client_key(c), idx, dir) && idx == i && dir == dp::Dir::kFromClient,
          "a record's client key finds it");
      ILB_FUZZ_CHECK(w.conns.lookup_reply(dp::backend_key(c), idx) && idx == i,
                     "a record's backend key finds it");
      ILB_FUZZ_CHECK(dp::snat_port_owner(g->shared, c.snat_port) == j,
                     "a record's SNAT port is in its worker's share");
      ILB_FUZZ_CHECK(c.backend_id > 0 && c.backend_id < kBackends, "a record names a backend");
      ILB_FUZZ_CHECK((c.client_mac[0] & 1) == 0 && (c.backend_mac[0] & 1) == 0,
                     "a record's next hops are unicast MACs");
      ILB_FUZZ_CHECK(!ours(c.client_ip) && !ours(c.backend_ip),
                     "no record has one of ilb's addresses as its client or backend");
      if (c.state != dp::TcpState::kTimeWait) {
        ++active;
        ++per_backend[c.backend_id];
      }
    }
    ILB_FUZZ_CHECK(live == w.conns.size(), "the table's size is its records in use");
    if (w.snat.available() + live != g->ports_free[j]) {
      std::fprintf(stderr, "worker %u: %llu ports free, %u records, %llu ports in all\n", j,
                   static_cast<unsigned long long>(w.snat.available()), live,
                   static_cast<unsigned long long>(g->ports_free[j]));
    }
    ILB_FUZZ_CHECK(w.snat.available() + live == g->ports_free[j],
                   "every SNAT port in use belongs to one record");
    if (static_cast<int64_t>(w.counters->active_conns.get()) != active) {
      std::fprintf(stderr, "worker %u: active counter %lld, %lld records not in TIME_WAIT\n", j,
                   static_cast<long long>(w.counters->active_conns.get()),
                   static_cast<long long>(active));
    }
    ILB_FUZZ_CHECK(static_cast<int64_t>(w.counters->active_conns.get()) == active,
                   "the active-connection counter is the records not in TIME_WAIT");
    for (uint32_t id = 1; id < kBackends; ++id) {
      ILB_FUZZ_CHECK(
          static_cast<int64_t>(w.counters->backends[id].active_conns.get()) == per_backend[id],
          "a backend's active-connection counter is its records not in TIME_WAIT");
    }
  }
}

// ---- building frames ----

rte_mbuf* l4_frame(const uint8_t src_mac[6], uint32_t src, uint32_t dst, uint16_t sport,
                   uint16_t dport, uint8_t proto, FuzzedDataProvider& in) {
  ilb::dp::test::FrameSpec f{};
  std::memcpy(f.dst_mac, kOurMac, 6);
  std::memcpy(f.src_mac, src_mac, 6);
  f.src_ip = src;
  f.dst_ip = dst;
  f.src_port = sport;
  f.dst_port = dport;
  f.proto = proto;
  // Mostly the flags of a real exchange; any byte at all otherwise.
  static constexpr uint8_t kFlags[] = {RTE_TCP_SYN_FLAG,
                                       RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG,
                                       RTE_TCP_ACK_FLAG,
                                       RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG,
                                       RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG,
                                       RTE_TCP_RST_FLAG,
                                       RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG};
  const uint8_t pick = in.ConsumeIntegralInRange<uint8_t>(0, sizeof(kFlags));
  f.tcp_flags = pick < sizeof(kFlags) ? kFlags[pick] : in.ConsumeIntegral<uint8_t>();
  // Mostly small; now and then longer than a port's MTU (576 to 2000), with or without DF.
  f.payload = in.ConsumeIntegralInRange<uint8_t>(0, 7) != 0
                  ? in.ConsumeIntegralInRange<uint16_t>(0, 48)
                  : in.ConsumeIntegralInRange<uint16_t>(500, 1900);
  f.dont_fragment = in.ConsumeBool();
  // An MSS option (any value) now and then, for the clamping of SYNs.
  if (in.ConsumeIntegralInRange<uint8_t>(0, 3) == 0) f.mss = in.ConsumeIntegral<uint16_t>();
  f.seq = in.ConsumeIntegral<uint32_t>();
  f.ack = in.ConsumeIntegral<uint32_t>();
  return ilb::dp::test::make_frame(g->pool, f);
}

// A live record of worker `j`, chosen by the input; null when the table is empty.
const dp::Conn* pick_conn(uint16_t j, FuzzedDataProvider& in) {
  dp::WorkerContext& w = g->w[j];
  if (w.conns.size() == 0) return nullptr;
  uint32_t k = in.ConsumeIntegralInRange<uint32_t>(0, w.conns.size() - 1);
  for (uint32_t i = 0; i < w.conns.capacity(); ++i) {
    const dp::Conn& c = w.conns.at(i);
    if (c.deadline_tsc != 0 && k-- == 0) return &c;
  }
  return nullptr;
}

// An ICMP error (type 3 or 11) about the datagram `quoted` (a kL4 frame, freed here) from `from`.
rte_mbuf* icmp_error(rte_mbuf* quoted, uint32_t from, FuzzedDataProvider& in) {
  const auto* qf = rte_pktmbuf_mtod(quoted, const uint8_t*);
  pkt::Parsed qp;
  const pkt::Kind kind = pkt::parse(qf, rte_pktmbuf_data_len(quoted), qp);
  rte_mbuf* m = nullptr;
  if (kind == pkt::Kind::kL4) {
    uint8_t from_mac[6];
    mac_of(from, from_mac);
    uint8_t buf[pkt::kMaxIcmpErrorLen];
    const uint32_t len = pkt::build_icmp_unreachable(buf, qf, qp, from_mac, from,
                                                     in.ConsumeIntegralInRange<uint8_t>(0, 15));
    if (in.ConsumeBool()) {  // time exceeded instead (type 11, code 0)
      auto* icmp = reinterpret_cast<rte_icmp_hdr*>(buf + qp.l3_offset + 20);
      icmp->icmp_type = 11;
      icmp->icmp_code = 0;
      icmp->icmp_cksum = 0;
      const auto* l3 = reinterpret_cast<const rte_ipv4_hdr*>(buf + qp.l3_offset);
      const uint16_t icmp_len = static_cast<uint16_t>(rte_be_to_cpu_16(l3->total_length) - 20);
      icmp->icmp_cksum = static_cast<uint16_t>(~rte_raw_cksum(icmp, icmp_len));
    }
    m = rte_pktmbuf_alloc(g->pool);
    if (m != nullptr) std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(len)), buf, len);
  }
  rte_pktmbuf_free(quoted);
  return m;
}

// An ICMP echo request from `src` to `dst`, eight bytes of payload.
rte_mbuf* echo_request(uint32_t src, uint32_t dst) {
  rte_mbuf* m = rte_pktmbuf_alloc(g->pool);
  if (m == nullptr) return nullptr;
  constexpr uint16_t kLen = 14 + 20 + 8 + 8;
  uint8_t* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, kLen));
  std::memset(f, 0, kLen);
  std::memcpy(f, kOurMac, 6);
  mac_of(src, f + 6);
  f[12] = 0x08;
  auto* l3 = reinterpret_cast<rte_ipv4_hdr*>(f + 14);
  l3->version_ihl = 0x45;
  l3->total_length = rte_cpu_to_be_16(kLen - 14);
  l3->time_to_live = 64;
  l3->next_proto_id = IPPROTO_ICMP;
  l3->src_addr = src;
  l3->dst_addr = dst;
  l3->hdr_checksum = rte_ipv4_cksum(l3);
  auto* icmp = reinterpret_cast<rte_icmp_hdr*>(l3 + 1);
  icmp->icmp_type = RTE_IP_ICMP_ECHO_REQUEST;
  icmp->icmp_ident = rte_cpu_to_be_16(7);
  icmp->icmp_cksum = static_cast<uint16_t>(~rte_raw_cksum(icmp, 16));
  return m;
}

// Damages a frame the way the input says: bytes changed, the length changed, and afterwards
// perhaps the IPv4 and TCP/UDP checksums made right again, so that the damage reaches the code
// behind the checksum checks. Returns whether anything was changed.
bool damage(rte_mbuf* m, FuzzedDataProvider& in) {
  bool changed = false;
  const uint8_t edits = in.ConsumeIntegralInRange<uint8_t>(0, 4);
  for (uint8_t e = 0; e < edits && rte_pktmbuf_data_len(m) != 0; ++e) {
    const uint16_t len = rte_pktmbuf_data_len(m);
    const uint16_t at = in.ConsumeIntegralInRange<uint16_t>(0, static_cast<uint16_t>(len - 1));
    rte_pktmbuf_mtod(m, uint8_t*)[at] = in.ConsumeIntegral<uint8_t>();
    changed = true;
  }
  if (in.ConsumeIntegralInRange<uint8_t>(0, 7) == 0) {
    const uint16_t len = rte_pktmbuf_data_len(m);
    const uint16_t to = in.ConsumeIntegralInRange<uint16_t>(0, 200);
    if (to < len) {
      rte_pktmbuf_trim(m, static_cast<uint16_t>(len - to));
    } else if (char* tail = rte_pktmbuf_append(m, static_cast<uint16_t>(to - len))) {
      std::memset(tail, in.ConsumeIntegral<uint8_t>(), to - len);
    }
    changed = true;
  }
  if (changed && in.ConsumeBool()) {
    uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
    const uint32_t len = rte_pktmbuf_data_len(m);
    if (len >= 34 && f[12] == 0x08 && f[13] == 0x00) {
      auto* l3 = reinterpret_cast<rte_ipv4_hdr*>(f + 14);
      const uint32_t ihl = (l3->version_ihl & 0x0f) * 4u;
      const uint32_t total = rte_be_to_cpu_16(l3->total_length);
      if (ihl >= 20 && 14 + ihl <= len) {
        l3->hdr_checksum = 0;
        l3->hdr_checksum = static_cast<uint16_t>(~rte_raw_cksum(l3, ihl));
      }
      const uint32_t l4_min = l3->next_proto_id == IPPROTO_TCP ? 20 : 8;
      if (ihl == 20 && total >= ihl + l4_min && 14 + total <= len &&
          (l3->next_proto_id == IPPROTO_TCP || l3->next_proto_id == IPPROTO_UDP)) {
        uint8_t* l4 = f + 14 + ihl;
        uint16_t* sum =
            reinterpret_cast<uint16_t*>(l4 + (l3->next_proto_id == IPPROTO_TCP ? 16 : 6));
        *sum = 0;
        *sum = rte_ipv4_udptcp_cksum(l3, l4);
      }
    }
  }
  return changed;
}

// Puts a frame on worker `j`'s pending burst, first damaged and flagged as the input says.
struct Pending {
  std::array<rte_mbuf*, kBurst> m{};
  uint16_t n = 0;
};
std::array<Pending, kWorkers> g_pending;
uint64_t g_now = 1;
uint32_t g_config = 0;

void run_burst(uint16_t j);

void enqueue(uint16_t j, rte_mbuf* m, bool built_well, FuzzedDataProvider& in) {
  if (m == nullptr) return;
  // The port it came in on, and to that port's MAC where it was built to ilb's.
  m->port = 0;
  if (g->shared.n_ports > 1 && in.ConsumeBool()) {
    m->port = 1;
    uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
    if (rte_pktmbuf_data_len(m) >= 6 && std::memcmp(f, kOurMac, 6) == 0) {
      std::memcpy(f, kOurMac2, 6);
    }
  }
  const uint8_t how = in.ConsumeIntegral<uint8_t>();
  bool ok = built_well;
  if ((how & 1) != 0 && damage(m, in)) ok = false;
  // What a NIC may claim: checksums verified good (then ilb does not verify them itself), and
  // the RSS hash it computed (right, or a wrong one: a NIC that hashes differently).
  if ((how & 2) != 0) m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
  if ((how & 4) != 0) {
    m->ol_flags |= RTE_MBUF_F_RX_RSS_HASH;
    pkt::Parsed p;
    const auto* f = rte_pktmbuf_mtod(m, const uint8_t*);
    m->hash.rss = (how & 8) != 0 && pkt::parse(f, rte_pktmbuf_data_len(m), p) == pkt::Kind::kL4
                      ? g->rss.hash_v4_ports(p.src_ip, p.dst_ip, p.src_port, p.dst_port)
                      : in.ConsumeIntegral<uint32_t>();
  }
  Priv& pv = priv(m);
  pv.well_formed = ok;
  pkt::Parsed p;
  pkt::ParseOptions lax;
  lax.verify_ip_checksum = lax.verify_l4_checksum = false;
  pv.has_key = pkt::parse(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), p, lax) ==
               pkt::Kind::kL4;
  pv.key = dp::FlowKey{};
  if (pv.has_key) {
    pv.key.src_ip = p.src_ip;
    pv.key.dst_ip = p.dst_ip;
    pv.key.src_port = p.src_port;
    pv.key.dst_port = p.dst_port;
    pv.key.proto = p.proto;
  }
  Pending& q = g_pending[j];
  q.m[q.n++] = m;
  if (q.n == kBurst) run_burst(j);
}

rte_mbuf* alloc_raw(FuzzedDataProvider& in) {
  rte_mbuf* m = rte_pktmbuf_alloc(g->pool);
  if (m == nullptr) return nullptr;
  const std::vector<uint8_t> bytes =
      in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<uint16_t>(0, 256));
  char* d = rte_pktmbuf_append(m, static_cast<uint16_t>(bytes.size()));
  if (d != nullptr && !bytes.empty()) {
    std::memcpy(d, bytes.data(), bytes.size());
    if (bytes.size() >= 6 && in.ConsumeBool()) std::memcpy(d, kOurMac, 6);
  }
  return m;
}

// ---- running the workers ----

const dp::ActiveConfig& config() {
  return *g->configs[g_config];
}

// Room for a burst, each packet of which may add a frame of ilb's own, and the sweep's probes.
constexpr uint16_t kTxRoom = kBurst * 2 + 16;

void run_burst(uint16_t j) {
  Pending& q = g_pending[j];
  rte_mbuf* tx[kTxRoom];
  uint16_t n_tx = 0;
  const uint64_t removals = g->w[j].conns.removals();
  dp::process_burst(g->w[j], config(), q.m.data(), q.n, tx, &n_tx, g_now);
  q.n = 0;
  drain_tx(tx, n_tx, j, true, removals);
}

void run_handoffs(uint16_t j, uint16_t max) {
  rte_mbuf* tx[kTxRoom];
  uint16_t n_tx = 0;
  const uint64_t removals = g->w[j].conns.removals();
  dp::process_handoffs(g->w[j], config(), max, tx, &n_tx, g_now);
  drain_tx(tx, n_tx, j, true, removals);
}

void run_sweep(uint16_t j, uint32_t budget, uint16_t probes) {
  rte_mbuf* tx[kTxRoom];
  uint16_t n_tx = 0;
  dp::sweep_step(g->w[j], config(), g_now, budget, tx, &n_tx, probes);
  drain_tx(tx, n_tx, j, false, 0);
}

// What the main lcore would do with the workers' rings: ARP frames and resolution requests.
void serve_main_rings() {
  for (dp::WorkerContext& w : g->w) {
    void* obj = nullptr;
    while (rte_ring_sc_dequeue(w.to_main, &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
    while (rte_ring_sc_dequeue(w.resolve, &obj) == 0) {
      const auto addr = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(obj));
      ILB_FUZZ_CHECK(!ours(addr) && addr != 0, "a worker asks to resolve only other hosts");
    }
  }
}

// Runs everything still pending, expires every record, and checks that all is given back.
void finish_input() {
  for (int round = 0; round < 4; ++round) {
    for (uint16_t j = 0; j < kWorkers; ++j) {
      if (g_pending[j].n != 0) run_burst(j);
      run_handoffs(j, 256);
    }
  }
  for (uint16_t j = 0; j < kWorkers; ++j) {
    ILB_FUZZ_CHECK(rte_ring_count(g->handoff[j]) == 0, "hand-overs all taken");
  }
  serve_main_rings();
  check_tables();
  for (dp::WorkerContext& w : g->w) {
    dp::expire_step(w, UINT64_MAX, w.conns.capacity());
  }
  check_tables();
  for (uint16_t j = 0; j < kWorkers; ++j) {
    dp::WorkerContext& w = g->w[j];
    ILB_FUZZ_CHECK(w.conns.size() == 0, "every record expires");
    ILB_FUZZ_CHECK(w.snat.available() == g->ports_free[j], "every SNAT port comes back");
    std::memset(static_cast<void*>(w.counters), 0, sizeof(dp::WorkerCounters));
    w.rr_cursor.fill(0);
    w.rss_agrees.fill(0);
  }
  ILB_FUZZ_CHECK(rte_mempool_avail_count(g->pool) == g->pool->size,
                 "every mbuf comes back to the pool (none leaked, none freed twice)");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  ilb::fuzz::start_eal("fuzz_worker");
  init_world();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  fresh_tables();
  rte_mempool_obj_iter(g->pool, clear_priv, nullptr);
  g_now = 1;
  g_config = 0;
  g->shared.n_ports = in.ConsumeBool() ? 2 : 1;
  for (dp::PortInfo& port : g->shared.ports) {
    port.mtu = in.ConsumeBool() ? 1500 : in.ConsumeIntegralInRange<uint16_t>(576, 2000);
  }
  reset_neighbours();
  // RSS known (replies steered to their worker's queue), or not (every reply may be handed over).
  const bool steer = in.ConsumeBool();
  g->shared.ports[0].rss = steer ? &g->rss : nullptr;
  g->shared.ports[0].rss_tcp_ports = steer;
  g->shared.ports[0].rss_udp_ports = steer && in.ConsumeBool();
  g->shared.ports[1].rss = g->shared.ports[0].rss;  // both NICs hash alike
  g->shared.ports[1].rss_tcp_ports = g->shared.ports[0].rss_tcp_ports;
  g->shared.ports[1].rss_udp_ports = g->shared.ports[0].rss_udp_ports;
  // Replies the workers make up themselves unlimited, or a budget of a few a second (so that
  // the paths that drop them run too; the end of the input checks that every mbuf came back).
  for (dp::WorkerContext& w : g->w) w.replies.configure(in.ConsumeBool() ? 0 : 20, kHz);
  for (int step = 0; step < 1024 && in.remaining_bytes() > 0; ++step) {
    const uint16_t j = in.ConsumeIntegralInRange<uint16_t>(0, kWorkers - 1);
    const uint8_t op = in.ConsumeIntegralInRange<uint8_t>(0, 12);
    switch (op) {
      case 0: {  // a client's packet to a service, or to another of ilb's addresses
        const uint32_t src =
            g->sources[in.ConsumeIntegralInRange<size_t>(0, g->sources.size() - 1)];
        const Target& t = g->targets[in.ConsumeIntegralInRange<size_t>(0, g->targets.size() - 1)];
        uint8_t mac[6];
        mac_of(src, mac);
        if (in.ConsumeIntegralInRange<uint8_t>(0, 15) == 0) mac[0] |= 1;  // a group source MAC
        const auto sport = static_cast<uint16_t>(40000 + in.ConsumeIntegralInRange<uint16_t>(0, 7));
        enqueue(j, l4_frame(mac, src, t.ip, sport, t.port, t.proto, in), true, in);
        break;
      }
      case 1:    // a tracked connection's packet from its client
      case 2: {  // from its backend, to either worker
        const dp::Conn* c = pick_conn(j, in);
        if (c == nullptr) break;
        const bool client = op == 1;
        const uint16_t to = client ? j : in.ConsumeIntegralInRange<uint16_t>(0, kWorkers - 1);
        rte_mbuf* m =
            client ? l4_frame(c->client_mac, c->client_ip, c->vip, rte_be_to_cpu_16(c->client_port),
                              rte_be_to_cpu_16(c->vport), c->proto, in)
                   : l4_frame(c->backend_mac, c->backend_ip, c->snat_ip,
                              rte_be_to_cpu_16(c->backend_port), rte_be_to_cpu_16(c->snat_port),
                              c->proto, in);
        enqueue(to, m, true, in);
        break;
      }
      case 3: {  // an ICMP error about a tracked connection's datagram, from either side
        const dp::Conn* c = pick_conn(j, in);
        if (c == nullptr) break;
        const uint16_t to = in.ConsumeIntegralInRange<uint16_t>(0, kWorkers - 1);
        rte_mbuf* m = nullptr;
        if (in.ConsumeBool()) {  // the backend (or a router on its way) about ilb's datagram
          m = icmp_error(
              l4_frame(kOurMac, c->snat_ip, c->backend_ip, rte_be_to_cpu_16(c->snat_port),
                       rte_be_to_cpu_16(c->backend_port), c->proto, in),
              in.ConsumeBool() ? c->backend_ip : g->shared.ports[0].gateway, in);
        } else {  // the client's side, about ilb's datagram from the VIP
          m = icmp_error(l4_frame(kOurMac, c->vip, c->client_ip, rte_be_to_cpu_16(c->vport),
                                  rte_be_to_cpu_16(c->client_port), c->proto, in),
                         c->client_ip, in);
        }
        enqueue(to, m, true, in);
        break;
      }
      case 4: {  // an ARP request for one of ilb's addresses (or another host's)
        rte_mbuf* m = rte_pktmbuf_alloc(g->pool);
        if (m == nullptr) break;
        uint8_t mac[6];
        const uint32_t asker = ilb::dp::test::ip("10.0.0.10");
        mac_of(asker, mac);
        const uint32_t target = in.ConsumeBool()
                                    ? g->our_addresses[in.ConsumeIntegralInRange<size_t>(
                                          0, g->our_addresses.size() - 1)]
                                    : ilb::dp::test::ip("10.0.0.77");
        uint8_t buf[pkt::kMinFrameLen];
        pkt::build_arp_request(buf, mac, asker, target);
        std::memcpy(rte_pktmbuf_append(m, sizeof(buf)), buf, sizeof(buf));
        enqueue(j, m, true, in);
        break;
      }
      case 5: {  // an echo request
        const uint32_t src =
            g->sources[in.ConsumeIntegralInRange<size_t>(0, g->sources.size() - 1)];
        const uint32_t dst =
            g->our_addresses[in.ConsumeIntegralInRange<size_t>(0, g->our_addresses.size() - 1)];
        enqueue(j, echo_request(src, dst), true, in);
        break;
      }
      case 6:  // raw bytes
        enqueue(j, alloc_raw(in), false, in);
        break;
      case 7:
        if (g_pending[j].n != 0) run_burst(j);
        break;
      case 8:
        run_handoffs(j, in.ConsumeIntegralInRange<uint16_t>(1, 64));
        break;
      case 9:  // time passes: up to 5 minutes, past every timeout the configs have
        g_now += in.ConsumeIntegralInRange<uint64_t>(0, 300 * kHz);
        break;
      case 10:
        run_sweep(j, in.ConsumeIntegralInRange<uint32_t>(1, 160),
                  in.ConsumeIntegralInRange<uint16_t>(0, 16));
        break;
      case 11:
        g_config = in.ConsumeIntegralInRange<uint32_t>(0, g->configs.size() - 1);
        break;
      case 12: {  // a backend's MAC changes (the unresolved ones stay so: see reset_neighbours)
        const uint32_t host =
            g->resolved[in.ConsumeIntegralInRange<size_t>(0, g->resolved.size() - 1)];
        uint8_t mac[6];
        mac_of(host, mac);
        mac[4] = in.ConsumeIntegral<uint8_t>();
        g->shared.neighbours.update(host, mac);
        break;
      }
    }
    serve_main_rings();
    check_tables();
  }
  finish_input();
  return 0;
}

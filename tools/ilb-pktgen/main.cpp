// ilb-pktgen: a DPDK traffic generator and backend reflector in one process, for measuring ilb
// without real servers. It sits on the other end of ilb's wire (net_memif, or any DPDK port),
// plays a range of client addresses that open TCP or UDP flows toward a VIP and the backend
// addresses ilb forwards them to, and reports what came back: packets and bits per second each
// way, new connections per second, losses and latency percentiles, as a table and as JSON.
//
// One lcore does everything (receive, reflect, generate, transmit): what is measured is ilb, and
// a generator that only writes headers and a reflector that only swaps them cost far less per
// packet than a balancer that looks each one up. With --queues N it polls N queue pairs and sends
// each frame on the queue a hash of its addresses and ports names (queue_for()), as a NIC's RSS
// would spread them over N workers of the balancer; its replies, whose tuples differ, mostly
// arrive at another worker than the one that owns their connection. Every frame is checked where it
// arrives (checksums, addresses, ports, payload), so a run is also a correctness test: --check
// makes the exit status say whether anything was wrong or lost.
//
// A run has three phases. With --packets-per-flow 0 (flows stay open: the forwarding test) the
// flows are opened first, as fast as --cps allows, and their opening rate is reported; then data
// is sent for --duration; then the generator stops and waits (--drain) for what is in flight.
// With --packets-per-flow N, flows open, carry N echoes, close and reopen on a new tuple for the
// whole --duration (the connection-rate test).
#include <arpa/inet.h>
#include <poll.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/config/dp_config.h"
#include "dataplane/port/port.h"
#include "dataplane/worker/worker.h"
#include "tools/bench/bench_report.h"
#include "tools/ilb-pktgen/traffic.h"

namespace {

namespace dp = ilb::dp;
using ilb::bench::fixed;
using ilb::pktgen::LatencyHistogram;
using ilb::pktgen::Traffic;
using ilb::pktgen::TrafficCounters;

constexpr uint16_t kBurst = 32;
constexpr uint32_t kRxBursts = 8;
constexpr uint32_t kTxCapacity = 4 * kBurst;
constexpr uint32_t kFcs = 4;
constexpr uint64_t kQuietMs = 50;  // the wire counts as quiet after this long without a frame
constexpr uint16_t kMaxQueues = 16;
// A transmit queue that takes no frame for this long is given up on: its frames are freed and
// counted (tx_abandoned), so that the other queues keep receiving and sending. It happens when
// the peer polls fewer queues than --queues.
constexpr uint64_t kStuckMs = 1000;

volatile std::sig_atomic_t g_signal = 0;
void on_signal(int sig) {
  g_signal = sig;
}

struct Options {
  std::string device;
  unsigned lcore = 0;
  uint16_t queues = 1;
  bool no_huge = false;
  unsigned memory_mb = 512;
  std::string file_prefix;
  std::vector<std::string> eal;
  std::string mac;
  std::string vip;
  uint16_t vport = 80;
  std::string proto = "tcp";
  std::string clients = "10.1.0.0/16";
  std::string client_ports = "1024-65535";
  std::vector<std::string> backends;
  uint16_t backend_port = 0;
  std::vector<std::string> snat;
  uint32_t flows = 1000;
  uint32_t packets_per_flow = 0;
  double rate = 0;  // data packets (and all other generated frames) per second; 0 = no limit
  double cps = 0;   // new flows per second; 0 = no limit
  unsigned size = 64;
  std::string duration = "10s";
  std::string timeout = "1s";
  std::string drain = "5s";
  std::string arp_timeout = "10s";
  std::string open_timeout = "60s";
  uint32_t mbufs = 16383;
  std::string json_path;
  bool check = false;
  bool loopback = false;
  bool hold = false;
};

// Returns once standard input has ended (or a signal arrived), discarding what it reads. Nothing
// polls the port meanwhile, so the other end may stop first: a DPDK 22.11 memif peer that is still
// polling when its peer goes away can read a ring its control thread has just unmapped.
void hold_until_stdin_ends() {
  char buf[256];
  while (g_signal == 0) {
    pollfd in{0, POLLIN, 0};
    const int r = poll(&in, 1, 100);
    if (r < 0 && errno != EINTR) return;
    if (r > 0 && read(0, buf, sizeof(buf)) <= 0) return;
  }
}

uint32_t parse_ip_or_throw(const std::string& text, const char* what) {
  uint32_t n = 0;
  if (!dp::parse_ipv4(text, n)) {
    throw CLI::ValidationError(what, "'" + text + "' is not an IPv4 address");
  }
  return ntohl(n);
}

// The devices behind `queues` (one, or one per queue where the port was split), each once.
std::vector<uint16_t> device_ids(const std::vector<dp::PortQueue>& queues) {
  std::vector<uint16_t> ids;
  for (const dp::PortQueue& q : queues) {
    if (std::find(ids.begin(), ids.end(), q.port_id) == ids.end()) ids.push_back(q.port_id);
  }
  return ids;
}

// A token bucket without a bucket: how many more events `rate` per second allows at `now`,
// given `done` since `start`, at most `cap` (rate 0: `cap`).
uint32_t allowance(double rate, uint64_t start, uint64_t now, uint64_t hz, uint64_t done,
                   uint32_t cap) {
  if (rate <= 0) return cap;
  const double due = static_cast<double>(now - start) * rate / static_cast<double>(hz);
  if (due <= static_cast<double>(done)) return 0;
  return static_cast<uint32_t>(std::min<double>(cap, due - static_cast<double>(done)));
}

// Port-level totals: every frame this process put on the wire or took off it.
struct WireCounters {
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;  // with FCS
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_too_big = 0;    // multi-segment or larger than a frame we can answer in place
  uint64_t tx_abandoned = 0;  // freed unsent: their queue took nothing for kStuckMs
};

class Generator {
 public:
  // `io`: the queues to poll and send on (several devices when the port was split per queue).
  Generator(std::vector<dp::PortQueue> io, rte_mempool* pool, Traffic& traffic)
      : io_(std::move(io)),
        queues_(static_cast<uint16_t>(io_.size())),
        pool_(pool),
        traffic_(traffic),
        stuck_ticks_(kStuckMs * rte_get_tsc_hz() / 1000) {}

  // One pass of the loop: receive and answer what has arrived (up to kRxBursts bursts), then,
  // only if the receive queue ran dry, generate up to `gen_budget` frames (opening at most
  // `open_budget` flows), transmit. Receiving first keeps the loop closed: a generator that
  // sent faster than it reads would overflow its own receive ring, and the losses would be its
  // own, not the balancer's. Returns frames generated and flows opened.
  void poll(uint64_t now, uint32_t gen_budget, uint32_t open_budget, uint32_t& generated,
            uint32_t& opened) {
    generated = opened = 0;
    bool drained = false;
    for (uint32_t i = 0; i < kRxBursts && most_pending() + kBurst <= kTxCapacity; ++i) {
      const bool full = receive(now) == kBurst;
      flush();
      if (!full) {
        drained = true;
        break;
      }
    }
    if (drained && most_pending() < kBurst && gen_budget > 0) {
      generate(now, gen_budget, open_budget, generated, opened);
    }
    flush();
    traffic_.expire(now, 64);
  }

  // Sends one frame built by `build` (ARP requests); false if no mbuf was free.
  template <typename Build>
  bool send_one(Build build) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    if (m == nullptr) return false;
    const uint32_t len = build(rte_pktmbuf_mtod(m, uint8_t*));
    m->data_len = static_cast<uint16_t>(len);
    m->pkt_len = len;
    queue(m);
    flush();
    return true;
  }

  const WireCounters& wire() const { return wire_; }

  ~Generator() {
    for (uint16_t q = 0; q < queues_; ++q) {
      for (uint32_t i = 0; i < pending_[q]; ++i) rte_pktmbuf_free(tx_[q][i]);
    }
  }

 private:
  // Receives a burst from every queue; returns the largest burst (kBurst: more may be waiting).
  uint16_t receive(uint64_t now) {
    uint16_t most = 0;
    for (uint16_t q = 0; q < queues_; ++q) most = std::max(most, receive(q, now));
    return most;
  }

  uint16_t receive(uint16_t q, uint64_t now) {
    rte_mbuf* rx[kBurst];
    const uint16_t n = rte_eth_rx_burst(io_[q].port_id, io_[q].queue, rx, kBurst);
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = rx[i];
      ++wire_.rx_packets;
      wire_.rx_bytes += m->pkt_len + kFcs;
      if (m->nb_segs != 1 || rte_pktmbuf_tailroom(m) + m->data_len < Traffic::kMaxFrame) {
        ++wire_.rx_too_big;
        rte_pktmbuf_free(m);
        continue;
      }
      uint32_t len = m->data_len;
      if (traffic_.receive(rte_pktmbuf_mtod(m, uint8_t*), len, now) == Traffic::Verdict::kReply) {
        m->data_len = static_cast<uint16_t>(len);
        m->pkt_len = len;
        queue(m);
      } else {
        rte_pktmbuf_free(m);
      }
    }
    return n;
  }

  void generate(uint64_t now, uint32_t budget, uint32_t open_budget, uint32_t& generated,
                uint32_t& opened) {
    rte_mbuf* ms[kBurst];
    const uint32_t want = std::min<uint32_t>(budget, kBurst);
    if (rte_pktmbuf_alloc_bulk(pool_, ms, want) != 0) return;
    uint32_t used = 0;
    for (; used < want; ++used) {
      bool was_open = false;
      const uint32_t len =
          traffic_.next(rte_pktmbuf_mtod(ms[used], uint8_t*), now, opened < open_budget, was_open);
      if (len == 0) break;
      ms[used]->data_len = static_cast<uint16_t>(len);
      ms[used]->pkt_len = len;
      queue(ms[used]);
      opened += was_open ? 1 : 0;
    }
    generated = used;
    if (used < want) rte_pktmbuf_free_bulk(ms + used, want - used);
  }

  void queue(rte_mbuf* m) {
    const uint16_t q =
        ilb::pktgen::queue_for(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len, queues_);
    tx_[q][pending_[q]++] = m;
  }

  uint32_t most_pending() const {
    return *std::max_element(pending_.begin(), pending_.begin() + queues_);
  }

  // Transmits what is queued; what the port does not take stays queued, in order, for the next
  // pass (the generator waits rather than dropping its own frames) — unless the queue has taken
  // nothing for kStuckMs: nobody drains it, and waiting would stop every queue.
  void flush() {
    for (uint16_t q = 0; q < queues_; ++q) {
      if (pending_[q] == 0) continue;
      rte_mbuf** tx = tx_[q].data();
      const uint16_t sent =
          rte_eth_tx_burst(io_[q].port_id, io_[q].queue, tx, static_cast<uint16_t>(pending_[q]));
      for (uint16_t i = 0; i < sent; ++i) {
        ++wire_.tx_packets;
        wire_.tx_bytes += tx[i]->pkt_len + kFcs;
      }
      std::memmove(tx, tx + sent, (pending_[q] - sent) * sizeof(rte_mbuf*));
      pending_[q] -= sent;
      if (sent != 0 || pending_[q] == 0) {
        stuck_since_[q] = 0;
      } else if (stuck_since_[q] == 0) {
        stuck_since_[q] = rte_rdtsc();
      } else if (rte_rdtsc() - stuck_since_[q] > stuck_ticks_) {
        abandon(q);
      }
    }
  }

  void abandon(uint16_t q) {
    if (!warned_[q]) {
      warned_[q] = true;
      std::cerr << "ilb-pktgen: queue " << q << " took no frame for " << kStuckMs
                << " ms; its frames are dropped from now on (does the peer poll " << queues_
                << " queues? give it as many as --queues)" << std::endl;
    }
    rte_pktmbuf_free_bulk(tx_[q].data(), pending_[q]);
    wire_.tx_abandoned += pending_[q];
    pending_[q] = 0;
    stuck_since_[q] = 0;
  }

  std::vector<dp::PortQueue> io_;
  uint16_t queues_;
  rte_mempool* pool_;
  Traffic& traffic_;
  // Per queue: a receive pass starts only while every queue has room for kBurst more, and then
  // takes up to kBurst frames from each of the queues, whose replies may all go to one queue.
  std::array<std::array<rte_mbuf*, kTxCapacity + kMaxQueues * kBurst>, kMaxQueues> tx_;
  std::array<uint32_t, kMaxQueues> pending_{};
  std::array<uint64_t, kMaxQueues> stuck_since_{};  // TSC of the first pass that sent nothing
  std::array<bool, kMaxQueues> warned_{};
  uint64_t stuck_ticks_;
  WireCounters wire_;
};

nlohmann::json latency_json(const LatencyHistogram& h, double us_per_tick) {
  auto us = [&](double ticks) { return std::round(ticks * us_per_tick * 100) / 100; };
  return {{"samples", h.count()},
          {"mean_us", us(h.mean())},
          {"p50_us", us(static_cast<double>(h.quantile(0.5)))},
          {"p99_us", us(static_cast<double>(h.quantile(0.99)))},
          {"p999_us", us(static_cast<double>(h.quantile(0.999)))},
          {"max_us", us(static_cast<double>(h.max()))}};
}

nlohmann::json counters_json(const TrafficCounters& c) {
  return {{"syn_sent", c.syn_sent},
          {"connected", c.connected},
          {"connect_timeouts", c.connect_timeouts},
          {"retransmits", c.retransmits},
          {"data_sent", c.data_sent},
          {"data_echoed", c.data_echoed},
          {"fin_sent", c.fin_sent},
          {"closed", c.closed},
          {"close_timeouts", c.close_timeouts},
          {"client_resets", c.client_resets},
          {"backend_syns", c.backend_syns},
          {"backend_data", c.backend_data},
          {"backend_resets", c.backend_resets},
          {"arp_replies", c.arp_replies},
          {"bad_frames", c.bad_frames},
          {"bad_rewrite", c.bad_rewrite},
          {"stale", c.stale},
          {"foreign", c.foreign}};
}

struct Snapshot {
  uint64_t tsc = 0;
  WireCounters wire;
  TrafficCounters traffic;
};

int run(const Options& o) {
  // Addresses and ranges first, so that a typo is reported before the EAL starts.
  ilb::pktgen::TrafficConfig tc;
  tc.proto = o.proto == "udp" ? ilb::pktgen::Proto::kUdp : ilb::pktgen::Proto::kTcp;
  tc.vip = parse_ip_or_throw(o.vip, "--vip");
  tc.vport = o.vport;
  uint32_t net = 0;
  uint8_t prefix = 0;
  if (!dp::parse_ipv4_prefix(o.clients, net, prefix) || prefix < 8 || prefix > 32) {
    throw CLI::ValidationError("--clients", "'" + o.clients + "' is not a.b.c.d/n with n 8..32");
  }
  // A /32 is one address; otherwise the network and broadcast addresses are left out.
  tc.client_base = ntohl(net) + (prefix >= 31 ? 0 : 1);
  tc.client_count = prefix >= 31 ? (prefix == 32 ? 1 : 2) : (1u << (32 - prefix)) - 2;
  unsigned pmin = 0;
  unsigned pmax = 0;
  char dash = 0;
  if (std::sscanf(o.client_ports.c_str(), "%u%c%u", &pmin, &dash, &pmax) != 3 || dash != '-' ||
      pmin == 0 || pmin > pmax || pmax > 65535) {
    throw CLI::ValidationError("--client-ports", "'" + o.client_ports + "' is not MIN-MAX");
  }
  tc.client_port_min = static_cast<uint16_t>(pmin);
  tc.client_port_max = static_cast<uint16_t>(pmax);
  for (const std::string& b : o.backends) tc.backends.push_back(parse_ip_or_throw(b, "--backends"));
  for (const std::string& s : o.snat) tc.snat.push_back(parse_ip_or_throw(s, "--snat"));
  tc.backend_port = o.backend_port;
  tc.flows = o.flows;
  tc.packets_per_flow = o.packets_per_flow;
  tc.frame_len = static_cast<uint16_t>(o.size - kFcs);
  tc.loopback = o.loopback;
  const uint64_t duration_ms = ilb::bench::parse_duration_ms(o.duration);
  const uint64_t timeout_ms = ilb::bench::parse_duration_ms(o.timeout);
  const uint64_t drain_ms = ilb::bench::parse_duration_ms(o.drain);
  const uint64_t arp_ms = ilb::bench::parse_duration_ms(o.arp_timeout);
  const uint64_t open_ms = ilb::bench::parse_duration_ms(o.open_timeout);
  dp::PortConfig pc;
  pc.name = "wire";
  pc.device = o.device;
  if (!o.mac.empty()) {
    if (!dp::parse_mac(o.mac, pc.mac)) throw CLI::ValidationError("--mac", "bad MAC " + o.mac);
    pc.has_mac = true;
  }

  // The dataplane's own EAL command line, for one lcore and one port.
  dp::DataplaneConfig eal;
  eal.main_lcore = o.lcore;
  eal.worker_lcores.clear();
  eal.memory_mb = o.memory_mb;
  eal.no_huge = o.no_huge;
  eal.file_prefix =
      o.file_prefix.empty() ? "ilb-pktgen-" + std::to_string(getpid()) : o.file_prefix;
  eal.eal_args = o.eal;
  eal.ports = {pc};
  std::vector<std::string> args = dp::eal_arguments(eal, "ilb-pktgen");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    std::cerr << "ilb-pktgen: EAL initialisation failed: " << rte_strerror(rte_errno) << "\n";
    return 2;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  rte_mempool* pool = rte_pktmbuf_pool_create(
      "pktgen_pool", o.mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
  if (pool == nullptr) {
    std::cerr << "ilb-pktgen: cannot create the mbuf pool: " << rte_strerror(rte_errno) << "\n";
    return 2;
  }
  dp::PortInfo info;
  std::string error;
  dp::resolve_default_mtu(pc);
  std::vector<dp::PortQueue> queues;
  if (!dp::start_port(pc, o.queues, 1024, 1024, pool, info, queues, error)) {
    std::cerr << "ilb-pktgen: " << error << "\n";
    return 2;
  }
  std::copy(info.mac, info.mac + 6, tc.mac.begin());
  const uint64_t hz = rte_get_tsc_hz();
  tc.timeout_ticks = timeout_ms * hz / 1000;

  int status = 0;
  {
    Traffic traffic(tc);
    Generator gen(queues, pool, traffic);
    uint32_t generated = 0;
    uint32_t opened = 0;

    // Wait for the link: a memif client that connected before its server started forwarding
    // would otherwise fill its ring with frames nobody reads.
    const uint64_t link_start = rte_rdtsc();
    rte_eth_link link{};
    while (g_signal == 0 && rte_eth_link_get_nowait(info.port_id, &link) == 0 &&
           link.link_status != RTE_ETH_LINK_UP) {
      if (rte_rdtsc() - link_start > arp_ms * hz / 1000) {
        std::cerr << "ilb-pktgen: the link of " << o.device << " is still down after "
                  << o.arp_timeout;
        // Measured with DPDK 22.11: a memif client that asks for more ring pairs than the
        // server has queues never sees its link come up.
        if (o.queues > 1) std::cerr << " (does the peer have " << o.queues << " queues?)";
        std::cerr << "\n";
        status = 2;
        break;
      }
      rte_delay_us_sleep(10'000);
    }

    // Learn the balancer's MAC from the VIP's ARP reply, asking every 200 ms. A loopback wire
    // answers no ARP and returns every frame whatever its address: ours will do.
    if (o.loopback) traffic.set_peer(tc.mac);
    const uint64_t arp_start = rte_rdtsc();
    uint64_t next_ask = arp_start;
    while (status == 0 && !traffic.peer_known() && g_signal == 0) {
      const uint64_t now = rte_rdtsc();
      if (now - arp_start > arp_ms * hz / 1000) {
        std::cerr << "ilb-pktgen: no ARP reply for the VIP " << o.vip << " within " << o.arp_timeout
                  << ": is ilb-dataplane running on the other end of " << o.device << "?\n";
        status = 2;
        break;
      }
      if (now >= next_ask) {
        gen.send_one([&](uint8_t* buf) { return traffic.arp_request(buf); });
        next_ask = now + hz / 5;
      }
      gen.poll(now, 0, 0, generated, opened);
    }

    // Opening phase (flows that stay open): no data until every flow is open.
    const bool churn = o.packets_per_flow != 0;
    double open_seconds = 0;
    uint64_t opened_total = 0;
    if (status == 0 && !churn) {
      traffic.set_data_enabled(false);
      const uint64_t start = rte_rdtsc();
      uint64_t now = start;
      while (traffic.open_flows() < o.flows && g_signal == 0) {
        now = rte_rdtsc();
        if (now - start > open_ms * hz / 1000) {
          std::cerr << "ilb-pktgen: only " << traffic.open_flows() << " of " << o.flows
                    << " flows open after " << o.open_timeout << "\n";
          status = 1;
          break;
        }
        const uint32_t opens = allowance(o.cps, start, now, hz, opened_total, kBurst);
        gen.poll(now, opens, opens, generated, opened);
        opened_total += opened;
      }
      open_seconds = static_cast<double>(now - start) / static_cast<double>(hz);
      traffic.set_data_enabled(true);
    }

    // Measuring phase.
    Snapshot begin{rte_rdtsc(), gen.wire(), traffic.counters()};
    Snapshot end = begin;
    if (status == 0) {
      const uint64_t start = begin.tsc;
      const uint64_t stop = start + duration_ms * hz / 1000;
      uint64_t sent = 0;
      uint64_t opens_done = 0;
      uint64_t now = start;
      while (now < stop && g_signal == 0) {
        now = rte_rdtsc();
        const uint32_t budget = allowance(o.rate, start, now, hz, sent, kBurst);
        const uint32_t opens = allowance(o.cps, start, now, hz, opens_done, kBurst);
        gen.poll(now, budget, opens, generated, opened);
        sent += generated;
        opens_done += opened;
      }
      end = Snapshot{rte_rdtsc(), gen.wire(), traffic.counters()};
    }

    // Drain: no new data; wait for what is in flight and close every TCP flow.
    traffic.begin_close(rte_rdtsc());
    const uint64_t drain_start = rte_rdtsc();
    bool drained = false;
    while (rte_rdtsc() - drain_start < drain_ms * hz / 1000 && g_signal == 0) {
      const TrafficCounters& c = traffic.counters();
      // Past the timeout every flow has been closed; what has not come back by then is lost.
      const bool lost_for_sure = rte_rdtsc() - drain_start > tc.timeout_ticks;
      if ((c.data_echoed + c.bad_rewrite >= c.data_sent || lost_for_sure) && traffic.settled()) {
        drained = true;
        break;
      }
      gen.poll(rte_rdtsc(), kBurst, 0, generated, opened);
    }
    // Linger until the wire has been quiet for a moment: the balancer is still forwarding the
    // last ACKs to the backends, and a port that has gone away would make it count them as
    // transmit failures.
    const uint64_t linger_start = rte_rdtsc();
    uint64_t last_rx = gen.wire().rx_packets;
    uint64_t quiet_since = linger_start;
    while (g_signal == 0) {
      const uint64_t now = rte_rdtsc();
      if (now - quiet_since > kQuietMs * hz / 1000 || now - linger_start > hz) break;
      gen.poll(now, 0, 0, generated, opened);
      if (gen.wire().rx_packets != last_rx) {
        last_rx = gen.wire().rx_packets;
        quiet_since = now;
      }
    }

    // Report.
    const TrafficCounters& c = traffic.counters();
    const double secs = static_cast<double>(end.tsc - begin.tsc) / static_cast<double>(hz);
    auto per_s = [&](uint64_t a, uint64_t b) {
      return secs > 0 ? static_cast<double>(b - a) / secs : 0.0;
    };
    const double tx_pps = per_s(begin.wire.tx_packets, end.wire.tx_packets);
    const double rx_pps = per_s(begin.wire.rx_packets, end.wire.rx_packets);
    const double tx_bps = 8 * per_s(begin.wire.tx_bytes, end.wire.tx_bytes);
    const double rx_bps = 8 * per_s(begin.wire.rx_bytes, end.wire.rx_bytes);
    const double data_pps = per_s(begin.traffic.data_sent, end.traffic.data_sent);
    const double echo_pps = per_s(begin.traffic.data_echoed, end.traffic.data_echoed);
    const double conn_ps = per_s(begin.traffic.connected, end.traffic.connected);
    const uint64_t lost = c.data_sent > c.data_echoed ? c.data_sent - c.data_echoed : 0;
    const double us_per_tick = 1e6 / static_cast<double>(hz);
    const auto machine = ilb::bench::machine_info();

    std::vector<std::pair<std::string, std::string>> rows{
        {"ilb-pktgen", ""},
        {"machine", ilb::bench::machine_line(machine)},
        {"wire", o.device},
        {"traffic", o.proto + " to " + o.vip + ":" + std::to_string(o.vport) + ", " +
                        std::to_string(o.flows) + " flows, " + std::to_string(o.size) +
                        " B frames, " +
                        (churn ? std::to_string(o.packets_per_flow) + " packets per flow"
                               : std::string("flows stay open"))},
    };
    if (!churn) {
      rows.push_back({"opening: flows/s", fixed(open_seconds > 0 ? o.flows / open_seconds : 0, 0) +
                                              " (" + fixed(open_seconds, 2) + " s for " +
                                              std::to_string(o.flows) + ")"});
    }
    rows.insert(
        rows.end(),
        {{"measured", fixed(secs, 2) + " s"},
         {"sent: Mpps / Gbit/s", fixed(tx_pps / 1e6, 3) + " / " + fixed(tx_bps / 1e9, 3)},
         {"received (what the other end forwarded)",
          fixed(rx_pps / 1e6, 3) + " Mpps / " + fixed(rx_bps / 1e9, 3) + " Gbit/s"},
         {"data offered / echoed: Mpps",
          fixed(data_pps / 1e6, 3) + " / " + fixed(echo_pps / 1e6, 3)},
         {"new connections/s", fixed(conn_ps, 0)},
         {"round trip p50 / p99 / p999",
          fixed(static_cast<double>(traffic.latency().quantile(0.5)) * us_per_tick, 1) + " / " +
              fixed(static_cast<double>(traffic.latency().quantile(0.99)) * us_per_tick, 1) +
              " / " +
              fixed(static_cast<double>(traffic.latency().quantile(0.999)) * us_per_tick, 1) +
              " us"},
         {"lost data packets (whole run)", std::to_string(lost)},
         {"frames abandoned (a queue nobody drained)", std::to_string(gen.wire().tx_abandoned)},
         {"errors (bad frames, rewrites, resets)", std::to_string(c.errors())},
         {"SYN/FIN retransmissions", std::to_string(c.retransmits)},
         {"closed cleanly at the end", drained ? "yes" : "NO (drain time ran out)"},
         {"connect / close timeouts",
          std::to_string(c.connect_timeouts) + " / " + std::to_string(c.close_timeouts)}});
    ilb::bench::print_table(rows);

    nlohmann::json doc{{"benchmark", "ilb-pktgen"},
                       {"machine", ilb::bench::to_json(machine)},
                       {"config",
                        {{"device", o.device},
                         {"proto", o.proto},
                         {"vip", o.vip},
                         {"vport", o.vport},
                         {"flows", o.flows},
                         {"packets_per_flow", o.packets_per_flow},
                         {"frame_size", o.size},
                         {"rate_pps", o.rate},
                         {"cps", o.cps},
                         {"duration_s", static_cast<double>(duration_ms) / 1000}}},
                       {"opening",
                        {{"seconds", open_seconds},
                         {"flows_per_s", open_seconds > 0 ? o.flows / open_seconds : 0}}},
                       {"measured",
                        {{"seconds", secs},
                         {"tx_pps", tx_pps},
                         {"rx_pps", rx_pps},
                         {"tx_bps", tx_bps},
                         {"rx_bps", rx_bps},
                         {"data_offered_pps", data_pps},
                         {"data_echoed_pps", echo_pps},
                         {"new_connections_per_s", conn_ps}}},
                       {"latency", latency_json(traffic.latency(), us_per_tick)},
                       {"connect_latency", latency_json(traffic.connect_latency(), us_per_tick)},
                       {"counters", counters_json(c)},
                       {"wire",
                        {{"tx_packets", gen.wire().tx_packets},
                         {"rx_packets", gen.wire().rx_packets},
                         {"rx_too_big", gen.wire().rx_too_big},
                         {"tx_abandoned", gen.wire().tx_abandoned}}},
                       {"lost_data_packets", lost},
                       {"drained", drained},
                       {"errors", c.errors()}};
    ilb::bench::emit_json(doc, o.json_path);

    if (o.check && status == 0) {
      std::vector<std::string> problems;
      if (c.errors() != 0) problems.push_back(std::to_string(c.errors()) + " errors");
      if (lost != 0) problems.push_back(std::to_string(lost) + " data packets lost");
      if (c.connect_timeouts + c.close_timeouts != 0) problems.push_back("timeouts");
      if (c.data_echoed == 0) problems.push_back("no data came back");
      if (gen.wire().rx_too_big != 0) problems.push_back("oversized frames received");
      if (gen.wire().tx_abandoned != 0) {
        problems.push_back(std::to_string(gen.wire().tx_abandoned) +
                           " frames abandoned on a queue the wire did not drain");
      }
      if (!drained) problems.push_back("flows still open or packets in flight after --drain");
      for (const std::string& p : problems) std::cerr << "ilb-pktgen: check failed: " << p << "\n";
      if (!problems.empty()) status = 1;
    }
  }
  if (o.hold) {
    std::cout.flush();
    std::cerr << "ilb-pktgen: holding the port until standard input ends" << std::endl;
    hold_until_stdin_ends();
  }
  for (uint16_t id : device_ids(queues)) dp::stop_port(id);
  rte_eal_cleanup();
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"ilb-pktgen: traffic generator and backend reflector for ilb"};
  app.add_option("--device", o.device, "DPDK port: vdev string or PCI address")->required();
  app.add_option("--lcore", o.lcore, "EAL lcore (and CPU) to run on");
  app.add_option("--queues", o.queues,
                 "queue pairs to poll and spread frames over by their tuples' hash (as RSS "
                 "would), one per worker of the balancer")
      ->check(CLI::Range(uint16_t{1}, kMaxQueues));
  app.add_flag("--no-huge", o.no_huge, "run the EAL without hugepages");
  app.add_option("--memory", o.memory_mb, "EAL memory in MB");
  app.add_option("--file-prefix", o.file_prefix, "EAL file prefix (default ilb-pktgen-PID)");
  app.add_option("--eal", o.eal, "extra EAL argument (repeatable)");
  app.add_option("--mac", o.mac, "our MAC address (default: the port's)");
  app.add_option("--vip", o.vip, "the service's virtual IP")->required();
  app.add_option("--vport", o.vport, "the service's port");
  app.add_option("--proto", o.proto, "tcp or udp")->check(CLI::IsMember({"tcp", "udp"}));
  app.add_option("--clients", o.clients, "client addresses, a.b.c.d/n");
  app.add_option("--client-ports", o.client_ports, "client ports, MIN-MAX");
  app.add_option("--backends", o.backends, "backend addresses to answer for")
      ->required()
      ->delimiter(',');
  app.add_option("--backend-port", o.backend_port, "expected backend port (0: any)");
  app.add_option("--snat", o.snat, "ilb's SNAT addresses, checked at the backends")->delimiter(',');
  app.add_option("--flows", o.flows, "concurrent flows")->check(CLI::Range(1u, 100'000'000u));
  app.add_option("--packets-per-flow", o.packets_per_flow,
                 "data packets before a flow closes and reopens (0: flows stay open)");
  app.add_option("--rate", o.rate, "generated frames per second (0: as fast as possible)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--cps", o.cps, "new flows per second (0: as fast as possible)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--size", o.size, "data frame size in bytes, with FCS")
      ->check(CLI::Range(64u, 1518u));
  app.add_option("--duration", o.duration, "measuring time (250ms, 10s, 2m)");
  app.add_option("--timeout", o.timeout, "unanswered SYN or FIN after this long: counted");
  app.add_option("--drain", o.drain, "time to wait for packets in flight at the end");
  app.add_option("--arp-timeout", o.arp_timeout,
                 "time to wait for the link and for the VIP's ARP reply");
  app.add_option("--open-timeout", o.open_timeout, "time allowed for opening every flow");
  app.add_option("--mbufs", o.mbufs, "mbuf pool size");
  app.add_option("--json", o.json_path, "also write the JSON result to this file");
  app.add_flag("--loopback", o.loopback,
               "the other end returns every frame unchanged (dpdk-testpmd io forwarding): "
               "measure the wire's ceiling");
  app.add_flag("--check", o.check,
               "exit 1 if any frame was wrong, lost or timed out (correctness runs)");
  app.add_flag("--hold", o.hold,
               "after the run, keep the port open (not polled) until standard input ends, so the "
               "other end can stop first");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "ilb-pktgen: " << e.what() << "\n";
    return 2;
  }
}

// A worker lcore: polls its RX queue, tracks connections and rewrites packets (full NAT),
// transmits on its TX queue. It owns its connection table and SNAT ports outright; it shares only
// read-only state (the active config through RCU, the neighbour table) and single-producer /
// single-consumer rings with the main lcore and the other workers. No locks, no allocation, no
// system calls, no logging, no exceptions on this path.
//
// With several workers, RSS spreads client flows over the RX queues, and the worker whose queue
// receives a client's SYN owns the connection. Its SNAT port comes from the worker's own share of
// the port range (SnatPorts: port p belongs to worker (p - min) % workers), so the owner of a
// backend's reply is known from the reply's destination port alone. A reply that the NIC delivers
// to another worker's queue is handed to the owner through a single-producer / single-consumer
// ring (one per ordered pair of workers), so correctness never depends on the NIC steering
// replies to the right queue.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "dataplane/agent/active_config.h"
#include "dataplane/agent/neighbours.h"
#include "dataplane/config/dp_config.h"
#include "dataplane/conntrack/conn_table.h"
#include "dataplane/conntrack/snat_ports.h"
#include "dataplane/worker/counters.h"
#include "dataplane/worker/reply_limiter.h"

struct rte_mbuf;
namespace ilb::dp {
class Rss;
}
struct rte_mempool;
struct rte_ring;
struct rte_rcu_qsbr;

namespace ilb::dp {

struct PortInfo {
  uint16_t port_id = 0;
  uint8_t mac[6]{};
  uint32_t address = 0;  // network order
  uint32_t netmask = 0;  // network order
  uint32_t gateway = 0;  // network order, 0 = none
  uint16_t mtu = 1500;   // largest IPv4 datagram the port carries (PortConfig::mtu)
  // The port's RSS, when it could be read and there are several workers: new connections whose
  // backend is reached through this port get SNAT ports whose replies the NIC delivers to their
  // own worker's queue. Null otherwise.
  const Rss* rss = nullptr;
  bool rss_tcp_ports = false;  // the NIC hashes TCP ports (else steering TCP cannot work)
  bool rss_udp_ports = false;
};

// Where a worker receives and sends one port's frames. Usually the port's device and the
// worker's own queue of it; where the port is one device per queue (port_devices()), that
// queue's device and its only queue.
struct PortQueue {
  uint16_t port_id = 0;
  uint16_t queue = 0;
};

// DPDK port ids below this map to ilb's port index through SharedState::port_index.
inline constexpr uint16_t kPortIdSlots = 64;

// The only things shared between workers and the main lcore.
struct SharedState {
  std::atomic<ActiveConfig*> config{nullptr};
  std::atomic<bool> stop{false};
  rte_rcu_qsbr* qsbr = nullptr;
  NeighbourTable neighbours;
  // The ports, in configuration order (one-armed: one; two-armed: clients' and backends' sides).
  // A connection leaves towards its client through the port its first packet came in on, and
  // towards its backend through the port whose subnet holds the backend, else the one with a
  // gateway (route()).
  std::array<PortInfo, kMaxDataplanePorts> ports{};
  uint32_t n_ports = 1;
  std::array<uint8_t, kPortIdSlots> port_index{};  // DPDK port id -> index into `ports`
  std::vector<uint32_t> snat_addresses;            // network order, sorted
  uint64_t tsc_hz = 0;
  uint32_t workers = 1;                  // how many workers share the SNAT port space
  uint16_t snat_port_min = 0;            // host order: the first port of every worker's share
  uint32_t idle_sleep_us = 0;            // DataplaneConfig::idle_sleep_us
  bool verify_all_l4_checksums = false;  // DataplaneConfig::verify_all_l4_checksums
  // Offset of the mbuf dynamic field (register_icmp_round_field()) that says how many more
  // workers a client-side ICMP error handed over may still visit looking for its connection; -1
  // when not registered (such errors then go to no other worker unless RSS names the owner).
  int icmp_round_offset = -1;
};

// Registers SharedState::icmp_round_offset's mbuf field (after EAL initialisation; the same
// offset every time in a process). Returns the offset, or -1 with rte_errno set.
int register_icmp_round_field();

// The index into SharedState::ports of DPDK port `port_id` (a frame's `port` field); 0 for an
// id that is none of ours (frames built by tests and benchmarks).
inline uint32_t port_index_of(const SharedState& s, uint16_t port_id) {
  return port_id < kPortIdSlots ? s.port_index[port_id] : 0;
}

// Where a frame to `ip` leaves: the port whose subnet holds it, with `ip` itself as next hop;
// else the first port with a gateway, through it. False when no port reaches it.
struct Route {
  uint32_t port = 0;      // index into SharedState::ports
  uint32_t next_hop = 0;  // network order
};
bool route(const SharedState& s, uint32_t ip, Route& out);

struct WorkerContext {
  uint32_t index = 0;  // worker number = RX/TX queue = RCU thread id
  unsigned lcore = 0;
  SharedState* shared = nullptr;
  ConnTable conns;
  SnatPorts snat;
  rte_ring* to_main = nullptr;    // ARP frames for the main lcore (worker produces)
  rte_ring* resolve = nullptr;    // next-hop addresses to resolve (worker produces)
  rte_ring* from_main = nullptr;  // frames the main lcore wants sent (worker consumes)
  WorkerCounters* counters = nullptr;
  rte_mempool* pool = nullptr;  // for frames the worker originates (resets); may be null in tests
  // Hand-over rings, indexed by the other worker: handoff_to[j] carries frames this worker
  // received for worker j (this worker produces), handoff_from[j] the frames worker j received
  // for this one (this worker consumes). Null on the diagonal and with a single worker.
  std::array<rte_ring*, kMaxWorkers> handoff_to{};
  std::array<rte_ring*, kMaxWorkers> handoff_from{};
  // Per port: whether the NIC's hash of the first SYN with one agreed with the port's RSS: 0 not
  // checked yet, 1 agreed, -1 disagreed (the device does not hash the way we compute: no steering).
  std::array<int8_t, kMaxDataplanePorts> rss_agrees{};
  // Per port (index into SharedState::ports): where this worker polls and transmits.
  std::array<PortQueue, kMaxDataplanePorts> io{};
  // Whether the frames process_burst() is working on came through hand-over rings.
  bool in_handoffs = false;
  // Per service index: where this worker is in the service's wrr sequence, and where its wlc
  // scan starts (so that ties rotate). Worker-private, like everything the scheduler counts.
  std::array<uint32_t, abi::kMaxServices> rr_cursor{};
  // The budget for replies the worker makes up itself (DataplaneConfig::reply_rate_limit);
  // unlimited until configured.
  ReplyLimiter replies;
};

// The worker that owns the SNAT port `port_be` (network order): the one whose share it is in.
uint32_t snat_port_owner(const SharedState& s, uint16_t port_be);

// rte_eal_remote_launch entry point; `arg` is a WorkerContext*.
int worker_main(void* arg);

// Processes one received burst: every mbuf is either appended to `tx` (count in/out `*n_tx`) with
// its `port` field set to the DPDK port it is to leave through,
// handed to the worker that owns its connection, or freed, and a packet may add one frame of the
// worker's own (the second reset of a cut connection), so `tx` must have room for 2 * n more
// frames. Exposed for tests and benchmarks that feed mbufs straight in.
void process_burst(WorkerContext& w, const ActiveConfig& cfg, rte_mbuf** pkts, uint16_t n,
                   rte_mbuf** tx, uint16_t* n_tx, uint64_t now_tsc);

// One housekeeping step: expires up to `budget` connection records.
void expire_step(WorkerContext& w, uint64_t now_tsc, uint32_t budget);

// The worker loop's housekeeping step: expire_step(), and for each live TCP connection examined
// whose backend `cfg` cuts (disabled, removed, drain deadline passed, on_backend_down = "reset"),
// a probe that makes one side answer, so that the connection is reset on both sides at once
// instead of at its next packet (see probe_cut_connection in worker.cpp). Appends at most
// `max_probes` frames to `tx` (count in/out `*n_tx`); needs WorkerContext::pool for them.
void sweep_step(WorkerContext& w, const ActiveConfig& cfg, uint64_t now_tsc, uint32_t budget,
                rte_mbuf** tx, uint16_t* n_tx, uint16_t max_probes);

// Processes up to `max` frames other workers handed to this one, like process_burst() (same rule
// for the size of `tx`). Returns how many frames were taken from the rings.
uint16_t process_handoffs(WorkerContext& w, const ActiveConfig& cfg, uint16_t max, rte_mbuf** tx,
                          uint16_t* n_tx, uint64_t now_tsc);

}  // namespace ilb::dp

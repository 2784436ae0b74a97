// A worker lcore: polls its RX queue, tracks connections and rewrites packets (full NAT),
// transmits on its TX queue. It owns its connection table and SNAT ports outright; it shares only
// read-only state (the active config through RCU, the neighbour table) and single-producer /
// single-consumer rings with the main lcore. No locks, no allocation, no system calls, no
// logging, no exceptions on this path.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "dataplane/agent/active_config.h"
#include "dataplane/agent/neighbours.h"
#include "dataplane/conntrack/conn_table.h"
#include "dataplane/conntrack/snat_ports.h"
#include "dataplane/worker/counters.h"

struct rte_mbuf;
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
};

// The only things shared between workers and the main lcore.
struct SharedState {
  std::atomic<ActiveConfig*> config{nullptr};
  std::atomic<bool> stop{false};
  rte_rcu_qsbr* qsbr = nullptr;
  NeighbourTable neighbours;
  PortInfo port;
  std::vector<uint32_t> snat_addresses;  // network order, sorted
  uint64_t tsc_hz = 0;
};

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
};

// rte_eal_remote_launch entry point; `arg` is a WorkerContext*.
int worker_main(void* arg);

// Processes one received burst: every mbuf is either appended to `tx` (count in/out `*n_tx`) or
// freed, and a packet may add one frame of the worker's own (the second reset of a cut
// connection), so `tx` must have room for 2 * n more frames. Exposed for tests and benchmarks
// that feed mbufs straight in.
void process_burst(WorkerContext& w, const ActiveConfig& cfg, rte_mbuf** pkts, uint16_t n,
                   rte_mbuf** tx, uint16_t* n_tx, uint64_t now_tsc);

// One housekeeping step: expires up to `budget` connection records.
void expire_step(WorkerContext& w, uint64_t now_tsc, uint32_t budget);

}  // namespace ilb::dp

// ARP on the main lcore. Workers hand every ARP frame to the main lcore through a ring; the agent
// answers requests for addresses ilb owns (port addresses, SNAT addresses, VIPs), learns senders'
// MAC addresses into the neighbour table, and resolves the next hops the config needs (backends
// on a port's subnet, the gateway for the rest) ahead of traffic, refreshing them on a timer.
// Frames it sends are handed to a worker, which owns the TX queues. With several ports, an owned
// address is answered for on the port whose subnet holds it, or on every port when none does.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dataplane/config/dp_config.h"

struct rte_mempool;

namespace ilb::dp {

struct SharedState;
struct WorkerContext;
class ActiveConfig;

class ArpAgent {
 public:
  ArpAgent(SharedState& shared, std::vector<WorkerContext*> workers, rte_mempool* pool,
           const DataplaneConfig& cfg);

  // Installs the static neighbours. Main lcore.
  void init();
  // Handles queued ARP frames and resolve requests, sends due ARP requests. Main lcore.
  void poll(uint64_t now_ns, const ActiveConfig* cfg);

 private:
  struct Entry {
    uint64_t last_request_ns = 0;
    uint64_t last_reply_ns = 0;
  };
  void want(uint32_t ip);
  void send_request(uint32_t ip, uint64_t now_ns);
  bool owned(uint32_t ip, const ActiveConfig* cfg) const;
  // Whether a request for owned address `ip` that came in on port `port` (an index) is answered.
  bool answers_on(uint32_t ip, uint32_t port) const;
  void want_gateways();

  SharedState& shared_;
  std::vector<WorkerContext*> workers_;
  rte_mempool* pool_;
  uint64_t refresh_ns_;
  std::vector<StaticNeighbour> static_;
  std::unordered_set<uint32_t> static_ips_;
  std::unordered_map<uint32_t, Entry> wanted_;
  uint64_t config_gen_ = 0;
  bool table_full_logged_ = false;
};

}  // namespace ilb::dp

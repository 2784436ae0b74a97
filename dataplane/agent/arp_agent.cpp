#include "dataplane/agent/arp_agent.h"

#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>

#include "dataplane/agent/active_config.h"
#include "dataplane/packet/packet.h"
#include "dataplane/worker/worker.h"

namespace ilb::dp {
namespace {

constexpr uint64_t kRetryNs = 1'000'000'000;  // unresolved next hops: one request per second
constexpr unsigned kBurst = 32;

}  // namespace

ArpAgent::ArpAgent(SharedState& shared, std::vector<WorkerContext*> workers, rte_mempool* pool,
                   const DataplaneConfig& cfg)
    : shared_(shared),
      workers_(std::move(workers)),
      pool_(pool),
      refresh_ns_(uint64_t{cfg.neighbour_refresh_s} * 1'000'000'000),
      static_(cfg.static_neighbours) {}

void ArpAgent::init() {
  for (const StaticNeighbour& n : static_) {
    shared_.neighbours.update(n.address, n.mac.data());
    static_ips_.insert(n.address);
  }
  want_gateways();
}

void ArpAgent::want_gateways() {
  for (uint32_t i = 0; i < shared_.n_ports; ++i) {
    if (shared_.ports[i].gateway != 0) want(shared_.ports[i].gateway);
  }
}

void ArpAgent::want(uint32_t ip) {
  if (static_ips_.count(ip) == 0) wanted_.try_emplace(ip);
}

bool ArpAgent::owned(uint32_t ip, const ActiveConfig* cfg) const {
  for (uint32_t i = 0; i < shared_.n_ports; ++i) {
    if (ip == shared_.ports[i].address) return true;
  }
  return std::binary_search(shared_.snat_addresses.begin(), shared_.snat_addresses.end(), ip) ||
         (cfg != nullptr && cfg->is_vip(ip));
}

bool ArpAgent::answers_on(uint32_t ip, uint32_t port) const {
  const auto on_link = [&](uint32_t i) {
    const PortInfo& p = shared_.ports[i];
    return (ip & p.netmask) == (p.address & p.netmask);
  };
  if (on_link(port)) return true;
  for (uint32_t i = 0; i < shared_.n_ports; ++i) {
    if (on_link(i)) return false;
  }
  return true;
}

void ArpAgent::send_request(uint32_t ip, uint64_t now_ns) {
  wanted_[ip].last_request_ns = now_ns;
  Route r;
  if (!route(shared_, ip, r) || r.next_hop != ip) return;  // not on any port's link
  const PortInfo& port = shared_.ports[r.port];
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (m == nullptr) return;
  auto* buf = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, pkt::kMinFrameLen));
  if (buf == nullptr) {
    rte_pktmbuf_free(m);
    return;
  }
  pkt::build_arp_request(buf, port.mac, port.address, ip);
  m->port = port.port_id;
  if (rte_ring_sp_enqueue(workers_[0]->from_main, m) != 0) rte_pktmbuf_free(m);
}

void ArpAgent::poll(uint64_t now_ns, const ActiveConfig* cfg) {
  if (cfg != nullptr && cfg->generation() != config_gen_) {
    config_gen_ = cfg->generation();
    // Next hops of backends that left the config are no longer refreshed.
    std::unordered_map<uint32_t, Entry> previous;
    previous.swap(wanted_);
    want_gateways();
    for (uint32_t id = 1; id < abi::kMaxBackends; ++id) {
      const BackendEntry& b = cfg->backend(id);
      Route r;
      if (b.admin != 0 && route(shared_, b.address, r)) want(r.next_hop);
    }
    for (auto& [ip, e] : wanted_) {
      if (auto it = previous.find(ip); it != previous.end()) e = it->second;
    }
  }

  for (WorkerContext* w : workers_) {
    void* objs[kBurst];
    unsigned n = rte_ring_sc_dequeue_burst(w->resolve, objs, kBurst, nullptr);
    for (unsigned i = 0; i < n; ++i) {
      const auto ip = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(objs[i]));
      want(ip);
      Entry& e = wanted_[ip];
      if (static_ips_.count(ip) == 0 && now_ns - e.last_request_ns > kRetryNs) {
        send_request(ip, now_ns);
      }
    }

    n = rte_ring_sc_dequeue_burst(w->to_main, objs, kBurst, nullptr);
    for (unsigned i = 0; i < n; ++i) {
      auto* m = static_cast<rte_mbuf*>(objs[i]);
      uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
      const pkt::ArpInfo info = pkt::arp_info(frame);
      const uint32_t in = port_index_of(shared_, m->port);
      const bool for_us = owned(info.target_ip, cfg) && answers_on(info.target_ip, in);
      // Only next hops ilb needs are learnt (clients are answered at the MAC their packets came
      // from), so hosts that merely ARP for a VIP cannot fill the table; and only from the port
      // that reaches them, so a host on another segment cannot claim a backend's address.
      Route r;
      if (auto it = wanted_.find(info.sender_ip); it != wanted_.end() &&
                                                  route(shared_, info.sender_ip, r) &&
                                                  r.next_hop == info.sender_ip && r.port == in) {
        if (shared_.neighbours.update(info.sender_ip, info.sender_mac)) {
          it->second.last_reply_ns = now_ns;
        } else if (!table_full_logged_) {
          table_full_logged_ = true;
          RTE_LOG(ERR, USER1, "neighbour table full: cannot learn more next hops\n");
        }
      }
      if (info.op == 1 && for_us) {
        pkt::make_arp_reply(frame, shared_.ports[in].mac);
        if (rte_ring_sp_enqueue(w->from_main, m) == 0) continue;
      }
      rte_pktmbuf_free(m);
    }
  }

  for (auto& [ip, e] : wanted_) {
    const bool resolved = e.last_reply_ns != 0;
    const uint64_t due = resolved ? e.last_reply_ns + refresh_ns_ : e.last_request_ns + kRetryNs;
    if (now_ns >= due && now_ns - e.last_request_ns > kRetryNs) send_request(ip, now_ns);
  }
}

}  // namespace ilb::dp

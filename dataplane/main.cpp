// ilb-dataplane: the DPDK primary process. The main lcore runs the config agent, ARP and the
// stats export; each worker lcore polls one queue of every port. Everything is allocated before the
// workers start; shutdown on SIGINT/SIGTERM stops the workers, then the port (which flushes and
// closes pcap files), then the EAL.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/agent/arp_agent.h"
#include "dataplane/agent/config_agent.h"
#include "dataplane/agent/stats_export.h"
#include "dataplane/config/dp_config.h"
#include "dataplane/port/kernel_share.h"
#include "dataplane/port/port.h"
#include "dataplane/port/rss.h"
#include "dataplane/worker/worker.h"

namespace {

volatile std::sig_atomic_t g_signal = 0;

void on_signal(int sig) {
  g_signal = sig;
}

constexpr unsigned kRingSize = 1024;
// A hand-over ring holds a few bursts: the owner drains it every loop iteration.
constexpr unsigned kHandoffRingSize = 1024;
constexpr uint64_t kExportIntervalNs = 100'000'000;

int fail(const std::string& msg) {
  std::fprintf(stderr, "ilb-dataplane: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ilb;
  using namespace ilb::dp;

  CLI::App app{"ilb-dataplane: DPDK full-NAT layer-4 load balancer dataplane"};
  std::string config_path;
  bool no_huge = false;
  std::vector<std::string> port_overrides;
  app.add_option("-c,--config", config_path, "ilb TOML configuration file")->required();
  app.add_flag("--no-huge", no_huge, "run without hugepages (EAL --no-huge)");
  app.add_option("--port", port_overrides,
                 "NAME=DEVICE: replace the EAL device string of port NAME");
  CLI11_PARSE(app, argc, argv);

  DataplaneFile file;
  try {
    file = load_dataplane_file(config_path);
  } catch (const ConfigError& e) {
    return fail(e.what());
  }
  DataplaneConfig& cfg = file.dataplane;
  if (no_huge) cfg.no_huge = true;
  for (const std::string& o : port_overrides) {
    const auto eq = o.find('=');
    auto it = std::find_if(cfg.ports.begin(), cfg.ports.end(),
                           [&](const PortConfig& p) { return p.name == o.substr(0, eq); });
    if (eq == std::string::npos || it == cfg.ports.end()) {
      return fail("--port " + o + ": expected NAME=DEVICE with NAME a port of the config");
    }
    it->device = o.substr(eq + 1);
    if (it->share_with_kernel && (!device_name(it->device).starts_with("net_af_xdp") ||
                                  it->device.find("xdp_prog=") != std::string::npos)) {
      return fail("--port " + o + ": port " + it->name +
                  " shares its interface with the kernel, which needs a net_af_xdp device "
                  "without an xdp_prog= of its own");
    }
    for (const PortConfig& other : cfg.ports) {
      if (&other != &*it && device_name(other.device) == device_name(it->device)) {
        return fail("--port " + o + ": port " + other.name + " already uses device " +
                    device_name(it->device));
      }
    }
  }
  const auto workers_n = static_cast<uint32_t>(cfg.worker_lcores.size());
  // Ports that share their interface with the kernel run ilb's own XDP program.
  for (PortConfig& p : cfg.ports) {
    if (!p.share_with_kernel) continue;
    const std::string program = kernel_share_program_path();
    if (access(program.c_str(), R_OK) != 0) {
      return fail("port " + p.name + ": share_with_kernel needs " + program +
                  ", which is not there (install it beside ilb-dataplane)");
    }
    bool removed = false;
    std::string why;
    if (!KernelShare::remove_leftover(kernel_interface(p.device), removed, why)) {
      return fail("port " + p.name + ": " + why);
    }
    if (removed) {
      std::fprintf(stderr, "ilb-dataplane: port %s: removed the XDP program a previous run left\n",
                   p.name.c_str());
    }
    p.device += ",xdp_prog=" + program;
  }

  if (std::string why; !check_port_devices(cfg, why)) return fail(why);
  std::vector<std::string> eal_args = eal_arguments(cfg, argv[0]);
  std::vector<char*> eal_argv;
  for (std::string& a : eal_args) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    return fail(std::string("EAL initialisation failed: ") + rte_strerror(rte_errno));
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const int socket = static_cast<int>(rte_socket_id());

  for (PortConfig& p : cfg.ports) resolve_default_mtu(p);
  const uint32_t mbuf_size = mbuf_buffer_size(cfg);
  if (std::string why; !check_mbuf_buffer_size(cfg, mbuf_size, why)) return fail(why);
  rte_mempool* pool = rte_pktmbuf_pool_create("ilb_mbufs", cfg.mbuf_count, 256, 0,
                                              static_cast<uint16_t>(mbuf_size), socket);
  if (pool == nullptr) {
    return fail("mbuf pool of " + std::to_string(cfg.mbuf_count) + " buffers of " +
                std::to_string(mbuf_size) + " bytes: " + rte_strerror(rte_errno) +
                " (raise memory_mb, or lower mbuf_count)");
  }

  auto shared = std::make_unique<SharedState>();
  shared->tsc_hz = rte_get_tsc_hz();
  shared->snat_addresses = cfg.snat_addresses;
  shared->workers = workers_n;
  shared->snat_port_min = cfg.snat_port_min;
  shared->idle_sleep_us = cfg.idle_sleep_us;
  shared->verify_all_l4_checksums = cfg.verify_all_l4_checksums;
  std::sort(shared->snat_addresses.begin(), shared->snat_addresses.end());
  if (workers_n > 1) {
    shared->icmp_round_offset = register_icmp_round_field();
    if (shared->icmp_round_offset < 0) {
      return fail(std::string("registering an mbuf field: ") + rte_strerror(rte_errno));
    }
  }
  std::string error;
  if (!shared->neighbours.init("ilb_neigh", 4096, socket, error)) return fail(error);
  const size_t qsbr_size = rte_rcu_qsbr_get_memsize(workers_n);
  shared->qsbr =
      static_cast<rte_rcu_qsbr*>(rte_zmalloc("ilb_qsbr", qsbr_size, RTE_CACHE_LINE_SIZE));
  if (shared->qsbr == nullptr || rte_rcu_qsbr_init(shared->qsbr, workers_n) != 0) {
    return fail("RCU QSBR initialisation failed");
  }

  // Ports started so far, stopped on every way out; where each worker polls and sends on them
  // (by port, then worker), and every DPDK device behind them.
  shared->n_ports = 0;
  std::vector<std::vector<PortQueue>> port_queues(cfg.ports.size());
  std::vector<std::vector<uint16_t>> port_device_ids(cfg.ports.size());
  auto stop_ports = [&] {
    for (uint32_t i = 0; i < shared->n_ports; ++i) {
      for (uint16_t id : port_device_ids[i]) stop_port(id);
    }
  };
  // With several workers, steer replies by RSS where the port tells us how it hashes; the
  // hand-over rings cover whatever still lands elsewhere.
  std::vector<std::unique_ptr<Rss>> rss;
  for (const PortConfig& pc : cfg.ports) {
    const uint32_t index = shared->n_ports;
    PortInfo& pi = shared->ports[index];
    if (!start_port(pc, static_cast<uint16_t>(workers_n), cfg.rx_desc, cfg.tx_desc, pool, pi,
                    port_queues[index], error)) {
      stop_ports();
      return fail(error);
    }
    ++shared->n_ports;
    for (const PortQueue& q : port_queues[index]) {
      std::vector<uint16_t>& ids = port_device_ids[index];
      if (std::find(ids.begin(), ids.end(), q.port_id) == ids.end()) ids.push_back(q.port_id);
    }
    for (uint16_t id : port_device_ids[index]) {
      if (id >= kPortIdSlots) {
        stop_ports();
        return fail("port " + pc.name + ": DPDK port id " + std::to_string(id) + " is beyond the " +
                    std::to_string(kPortIdSlots) + " ilb handles");
      }
      shared->port_index[id] = static_cast<uint8_t>(index);
    }
    if (port_device_ids[index].size() > 1) {
      std::printf(
          "ilb-dataplane: port %s: one %s device per worker's queue; replies are not steered by "
          "RSS, workers hand them over\n",
          pc.name.c_str(), device_name(pc.device).c_str());
    } else if (workers_n > 1) {
      std::string why;
      auto r = std::make_unique<Rss>();
      if (read_rss(pi.port_id, *r, pi.rss_tcp_ports, pi.rss_udp_ports, why)) {
        pi.rss = r.get();
        rss.push_back(std::move(r));
      } else {
        std::printf(
            "ilb-dataplane: port %s: replies are not steered by RSS (%s); workers hand "
            "them over\n",
            pc.name.c_str(), why.c_str());
      }
    }
  }

  std::vector<std::unique_ptr<WorkerContext>> contexts;
  std::vector<WorkerContext*> workers;
  for (uint32_t i = 0; i < workers_n; ++i) {
    auto w = std::make_unique<WorkerContext>();
    w->index = i;
    // Workers start their wrr sequences at different places, so they do not move in step.
    w->rr_cursor.fill(i * 7919);
    w->replies.configure(cfg.reply_rate_limit, shared->tsc_hz);
    w->lcore = cfg.worker_lcores[i];
    w->shared = shared.get();
    w->pool = pool;
    for (uint32_t p = 0; p < shared->n_ports; ++p) w->io[p] = port_queues[p][i];
    const std::string n = std::to_string(i);
    const int wsock = static_cast<int>(rte_lcore_to_socket_id(w->lcore));
    w->to_main = rte_ring_create(("ilb_to_main" + n).c_str(), kRingSize, wsock,
                                 RING_F_SP_ENQ | RING_F_SC_DEQ);
    w->resolve = rte_ring_create(("ilb_resolve" + n).c_str(), kRingSize, wsock,
                                 RING_F_SP_ENQ | RING_F_SC_DEQ);
    w->from_main = rte_ring_create(("ilb_from_main" + n).c_str(), kRingSize, wsock,
                                   RING_F_SP_ENQ | RING_F_SC_DEQ);
    w->counters = static_cast<WorkerCounters*>(
        rte_zmalloc_socket("ilb_counters", sizeof(WorkerCounters), 64, wsock));
    if (w->to_main == nullptr || w->resolve == nullptr || w->from_main == nullptr ||
        w->counters == nullptr) {
      stop_ports();
      return fail("out of memory for worker " + n);
    }
    if (!w->conns.init("ilb_conn" + n, cfg.conn_capacity, cfg.snat_addresses, wsock, error) ||
        !w->snat.init(cfg.snat_addresses, cfg.snat_port_min, cfg.snat_port_max, i, workers_n, wsock,
                      error)) {
      stop_ports();
      return fail(error);
    }
    workers.push_back(w.get());
    contexts.push_back(std::move(w));
  }
  // One hand-over ring per ordered pair of workers, on the consumer's socket.
  for (WorkerContext* from : workers) {
    for (WorkerContext* to : workers) {
      if (from == to) continue;
      const std::string name =
          "ilb_handoff" + std::to_string(from->index) + "_" + std::to_string(to->index);
      rte_ring* ring = rte_ring_create(name.c_str(), kHandoffRingSize,
                                       static_cast<int>(rte_lcore_to_socket_id(to->lcore)),
                                       RING_F_SP_ENQ | RING_F_SC_DEQ);
      if (ring == nullptr) {
        stop_ports();
        return fail("out of memory for hand-over ring " + name);
      }
      from->handoff_to[to->index] = ring;
      to->handoff_from[from->index] = ring;
    }
  }

  // The addresses the shared interfaces' XDP programs hand to ilb: kept equal to ShareSet's.
  std::vector<std::unique_ptr<KernelShare>> shares;
  for (const PortConfig& p : cfg.ports) {
    if (!p.share_with_kernel) continue;
    auto share = std::make_unique<KernelShare>();
    if (!share->attach(kernel_interface(p.device), error)) {
      stop_ports();
      return fail("port " + p.name + ": " + error);
    }
    shares.push_back(std::move(share));
  }
  std::vector<uint32_t> own = shared->snat_addresses;
  for (uint32_t i = 0; i < shared->n_ports; ++i) own.push_back(shared->ports[i].address);
  ShareSet share_set(own);
  const ActiveConfig* share_cfg = nullptr;  // the config share_set's VIPs are from
  std::vector<uint32_t> synced;             // what every map holds; empty: to be synced
  auto sync_shares = [&](const ActiveConfig* active, uint64_t now) {
    if (shares.empty()) return;
    if (active != share_cfg) {
      share_cfg = active;
      std::vector<std::pair<uint32_t, uint32_t>> vips;
      for (uint32_t i = 0; active != nullptr && i < active->service_count(); ++i) {
        const ServiceEntry& s = active->service(i);
        vips.emplace_back(s.vip, std::max({s.tcp_syn_timeout_s, s.tcp_est_timeout_s,
                                           s.tcp_fin_timeout_s, s.udp_timeout_s}));
      }
      share_set.set_vips(now, vips);
    }
    std::vector<uint32_t> addresses = share_set.at(now);
    if (addresses == synced) return;
    bool ok = true;
    for (const auto& share : shares) {
      std::string why;
      if (!share->sync(addresses, why)) {
        RTE_LOG(ERR, USER1, "%s\n", why.c_str());
        ok = false;
      }
    }
    // A failed update is tried again at the next call.
    synced = ok ? std::move(addresses) : std::vector<uint32_t>{};
  };
  sync_shares(nullptr, monotonic_ns());

  StatsExport stats;
  std::vector<StatsExport::PortSpec> exported;
  for (uint32_t i = 0; i < shared->n_ports; ++i) {
    exported.push_back(
        {cfg.ports[i].name, port_device_ids[i], kernel_interface(cfg.ports[i].device)});
  }
  if (!stats.init(file.instance, workers_n, cfg.conn_capacity, exported, error)) {
    stop_ports();
    return fail(error);
  }
  ConfigAgent agent(file.instance, *shared, stats);
  ArpAgent arp(*shared, workers, pool, cfg);
  arp.init();

  for (WorkerContext* w : workers) {
    if (rte_eal_remote_launch(worker_main, w, w->lcore) != 0) {
      // Workers already running use memory freed on return: stop them first.
      shared->stop.store(true, std::memory_order_relaxed);
      rte_eal_mp_wait_lcore();
      stop_ports();
      return fail("cannot launch worker on lcore " + std::to_string(w->lcore));
    }
  }
  for (uint32_t i = 0; i < shared->n_ports; ++i) {
    const PortInfo& pi = shared->ports[i];
    RTE_LOG(INFO, USER1, "ilb-dataplane instance %s: port %s (%02x:%02x:%02x:%02x:%02x:%02x)\n",
            file.instance.c_str(), cfg.ports[i].name.c_str(), pi.mac[0], pi.mac[1], pi.mac[2],
            pi.mac[3], pi.mac[4], pi.mac[5]);
  }
  RTE_LOG(INFO, USER1, "%u port(s), %u worker(s); waiting for the control plane\n", shared->n_ports,
          workers_n);

  uint64_t last_export = 0;
  while (g_signal == 0) {
    const uint64_t now = monotonic_ns();
    stats.beat(now);
    agent.poll();
    arp.poll(now, shared->config.load(std::memory_order_acquire));
    sync_shares(shared->config.load(std::memory_order_acquire), now);
    if (now - last_export >= kExportIntervalNs) {
      last_export = now;
      stats.export_counters(workers, shared->config.load(std::memory_order_acquire));
    }
    // The main lcore does housekeeping only; it need not spin.
    usleep(1000);
  }

  RTE_LOG(INFO, USER1, "signal %d: stopping\n", static_cast<int>(g_signal));
  shared->stop.store(true, std::memory_order_relaxed);
  rte_eal_mp_wait_lcore();
  stats.export_counters(workers, shared->config.load(std::memory_order_acquire));
  stats.stopped();
  agent.shutdown();
  stop_ports();
  contexts.clear();
  rte_free(shared->qsbr);
  shared.reset();
  rte_mempool_free(pool);
  rte_eal_cleanup();
  return 0;
}

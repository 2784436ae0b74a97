#include "dataplane/agent/stats_export.h"

#include <net/if.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "dataplane/agent/active_config.h"
#include "dataplane/worker/worker.h"

namespace ilb::dp {
namespace {

uint64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

template <typename T>
void store(T& field, uint64_t v) {
  std::atomic_ref<T>(field).store(static_cast<T>(v), std::memory_order_relaxed);
}

// Interface `name`'s state in this network namespace: up when administratively up and running
// (carrier on), down otherwise, unknown when it cannot be asked.
abi::Link kernel_link(const std::string& name) {
  ifreq ifr{};
  if (name.size() >= sizeof(ifr.ifr_name)) return abi::Link::kUnknown;
  std::memcpy(ifr.ifr_name, name.c_str(), name.size());
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return abi::Link::kUnknown;
  const int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
  close(fd);
  if (rc != 0) return abi::Link::kUnknown;
  const auto up = static_cast<unsigned>(IFF_UP | IFF_RUNNING);
  return (static_cast<unsigned>(ifr.ifr_flags) & up) == up ? abi::Link::kUp : abi::Link::kDown;
}

// A line of /sys/class/net/<name>/<attribute>, or "" (absent, or the device does not say).
std::string sysfs_net(const std::string& name, const char* attribute) {
  std::ifstream in("/sys/class/net/" + name + "/" + attribute);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  return line;
}

}  // namespace

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

static_assert(kMaxDataplanePorts <= abi::kMaxPorts, "every port has a PortStats slot");

bool StatsExport::init(const std::string& instance, uint32_t workers, uint64_t conn_capacity,
                       const std::vector<PortSpec>& ports, std::string& error) {
  if (ports.size() > abi::kMaxPorts) {
    error = "more ports than the stat region holds";
    return false;
  }
  const uint64_t size = abi::stat_region_bytes();
  if (!region_.map(abi::stat_shm_name(instance), abi::ShmRegion::Mode::kCreate, size, error)) {
    return false;
  }
  // A new dataplane starts from zero: readers see a new boot id and fresh counters.
  std::memset(region_.data(), 0, region_.size());
  auto& h = header();
  uint64_t boot_id = 0;
  while (boot_id == 0) {
    if (getrandom(&boot_id, sizeof(boot_id), 0) != sizeof(boot_id)) boot_id = realtime_ns();
  }
  h.lcore_offset = sizeof(abi::StatHeader);
  h.port_offset = h.lcore_offset + abi::kMaxLcores * sizeof(abi::LcoreStats);
  h.service_offset = h.port_offset + abi::kMaxPorts * sizeof(abi::PortStats);
  h.backend_offset = h.service_offset + abi::kMaxServices * sizeof(abi::ServiceStats);
  h.worker_count = workers;
  h.port_count = static_cast<uint32_t>(ports.size());
  auto* port_stats = region_.at<abi::PortStats>(h.port_offset);
  ports_.clear();
  for (size_t i = 0; i < ports.size(); ++i) {
    std::strncpy(port_stats[i].name, ports[i].name.c_str(), abi::kNameLen - 1);
    ports_.push_back(Port{ports[i]});
  }
  h.start_time_ns = realtime_ns();
  h.conn_capacity = conn_capacity;
  h.tsc_hz = rte_get_tsc_hz();
  h.common.abi_major = abi::kAbiMajor;
  h.common.abi_minor = abi::kAbiMinor;
  h.common.header_size = sizeof(abi::StatHeader);
  h.common.boot_id = boot_id;
  h.common.region_size = size;
  h.common.sizeof_a = sizeof(abi::LcoreStats);
  h.common.sizeof_b = sizeof(abi::PortStats);
  h.common.sizeof_c = sizeof(abi::ServiceStats);
  h.common.sizeof_d = sizeof(abi::BackendStats);
  h.common.writer_pid = static_cast<uint32_t>(getpid());
  std::atomic_ref<uint64_t>(h.common.magic).store(abi::kStatMagic, std::memory_order_release);
  return true;
}

void StatsExport::beat(uint64_t now_ns) {
  header().heartbeat_ns.store(now_ns, std::memory_order_release);
}

void StatsExport::stopped() {
  header().heartbeat_ns.store(0, std::memory_order_release);
}

void StatsExport::export_link(abi::PortStats& out, Port& port) {
  rte_eth_link link{};
  auto state = abi::Link::kUnknown;
  uint32_t speed = 0;
  bool full_duplex = false;
  const char* port_name = port.spec.name.c_str();
  const std::string& iface = port.spec.kernel_iface;
  if (!iface.empty()) {
    // The driver's link is fixed; the kernel's interface has the real one. Its speed is read
    // only when the link comes up (a file read; the state itself is one ioctl per export).
    state = kernel_link(iface);
    // Also while the speed is unknown: a NIC may report it a moment after its carrier.
    if (state == abi::Link::kUp &&
        (port.last_known != abi::Link::kUp || port.kernel_speed_mbps == 0)) {
      const long mbps = std::strtol(sysfs_net(iface, "speed").c_str(), nullptr, 10);
      port.kernel_speed_mbps = mbps > 0 && mbps < INT32_MAX ? static_cast<uint32_t>(mbps) : 0;
      port.kernel_full_duplex = sysfs_net(iface, "duplex") == "full";
    }
    if (state == abi::Link::kUp) {
      speed = port.kernel_speed_mbps;
      full_duplex = port.kernel_full_duplex;
    }
  } else if (!port.spec.port_ids.empty() &&
             rte_eth_link_get_nowait(port.spec.port_ids.front(), &link) == 0) {
    state = link.link_status == RTE_ETH_LINK_UP ? abi::Link::kUp : abi::Link::kDown;
    if (state == abi::Link::kUp) {
      speed = link.link_speed != RTE_ETH_SPEED_NUM_UNKNOWN ? link.link_speed : 0;
      full_duplex = link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
    }
  }
  // Frames sent while the link is down are lost: counted as tx_full where the driver's queue
  // stalls (memif, most NICs), as sent where the kernel drops them (net_af_xdp, net_af_packet).
  // This log line and the port's link state say when. Only moves between up and down count; a
  // moment when the state cannot be read (unknown) is exported as such and changes nothing.
  if (state != abi::Link::kUnknown && state != port.last_known) {
    if (state == abi::Link::kUp && speed == 0) {
      RTE_LOG(INFO, USER1, "port %s: link up\n", port_name);
    } else if (state == abi::Link::kUp) {
      RTE_LOG(INFO, USER1, "port %s: link up, %u Mbit/s, %s duplex\n", port_name, speed,
              full_duplex ? "full" : "half");
    } else if (state == abi::Link::kDown) {
      RTE_LOG(WARNING, USER1, "port %s: link down\n", port_name);
    }
    // The first state seen is where the count starts, not a change.
    if (port.last_known != abi::Link::kUnknown) ++port.link_changes;
    port.last_known = state;
  }
  store(out.link, static_cast<uint64_t>(state));
  store(out.link_speed_mbps, speed);
  store(out.link_full_duplex, full_duplex ? 1 : 0);
  store(out.link_changes, port.link_changes);
}

void StatsExport::export_counters(const std::vector<WorkerContext*>& workers,
                                  const ActiveConfig* cfg) {
  auto& h = header();
  auto* lcores = region_.at<abi::LcoreStats>(h.lcore_offset);
  uint64_t drops[static_cast<size_t>(abi::Drop::kCount)] = {};
  uint64_t handoff_packets = 0;
  uint64_t handoff_drops = 0;
  uint64_t steered = 0;
  uint64_t unsteered = 0;
  uint64_t untracked_resets = 0;
  uint64_t icmp_translated = 0;
  uint64_t martians = 0;
  uint64_t replies_limited = 0;
  uint64_t mss_clamped = 0;
  const uint64_t now = monotonic_ns();
  last_loops_.resize(workers.size(), 0);
  last_moved_ns_.resize(workers.size(), 0);
  for (size_t i = 0; i < workers.size() && i < abi::kMaxLcores; ++i) {
    const WorkerContext& w = *workers[i];
    const WorkerCounters& c = *w.counters;
    abi::LcoreStats& l = lcores[i];
    store(l.lcore_id, w.lcore);
    store(l.is_worker, 1);
    if (c.loops.get() != last_loops_[i]) {
      last_loops_[i] = c.loops.get();
      last_moved_ns_[i] = now;
    }
    store(l.heartbeat_ns, last_moved_ns_[i]);
    store(l.loops, c.loops.get());
    store(l.busy_loops, c.busy_loops.get());
    store(l.busy_cycles, c.busy_cycles.get());
    store(l.rx_packets, c.rx_packets.get());
    store(l.tx_packets, c.tx_packets.get());
    store(l.active_conns, c.active_conns.get());
    for (size_t d = 0; d < std::size(drops); ++d) drops[d] += c.drops[d].get();
    handoff_packets += c.handoff_out.get();
    handoff_drops += c.handoff_drops.get();
    steered += c.steered.get();
    unsteered += c.unsteered.get();
    untracked_resets += c.untracked_resets.get();
    icmp_translated += c.icmp_errors_translated.get();
    martians += c.martians.get();
    replies_limited += c.replies_limited.get();
    mss_clamped += c.mss_clamped.get();
  }
  for (size_t d = 0; d < std::size(drops); ++d) store(h.drops[d], drops[d]);
  store(h.handoff_packets, handoff_packets);
  store(h.handoff_drops, handoff_drops);
  store(h.steered_conns, steered);
  store(h.unsteered_conns, unsteered);
  store(h.untracked_resets, untracked_resets);
  store(h.icmp_errors_translated, icmp_translated);
  store(h.martian_drops, martians);
  store(h.replies_limited, replies_limited);
  store(h.mss_clamped, mss_clamped);

  auto* port_stats = region_.at<abi::PortStats>(h.port_offset);
  for (size_t i = 0; i < ports_.size(); ++i) {
    abi::PortStats& out = port_stats[i];
    rte_eth_stats sum{};
    // All of the port's devices or none: a sum missing one would make the counters go back.
    bool read = !ports_[i].spec.port_ids.empty();
    for (uint16_t id : ports_[i].spec.port_ids) {
      rte_eth_stats st{};
      if (rte_eth_stats_get(id, &st) != 0) {
        read = false;
        break;
      }
      sum.ipackets += st.ipackets;
      sum.opackets += st.opackets;
      sum.imissed += st.imissed;
      sum.rx_nombuf += st.rx_nombuf;
      sum.oerrors += st.oerrors;
      sum.ibytes += st.ibytes;
      sum.obytes += st.obytes;
      sum.ierrors += st.ierrors;
    }
    if (read) {
      store(out.rx_packets, sum.ipackets);
      store(out.tx_packets, sum.opackets);
      store(out.rx_dropped, sum.imissed + sum.rx_nombuf);
      store(out.tx_errors, sum.oerrors);
      store(out.rx_bytes, sum.ibytes);
      store(out.tx_bytes, sum.obytes);
      store(out.rx_errors, sum.ierrors);
    }
    export_link(out, ports_[i]);
  }

  auto* backends = region_.at<abi::BackendStats>(h.backend_offset);
  auto* services = region_.at<abi::ServiceStats>(h.service_offset);
  abi::ServiceStats svc_sum[abi::kMaxServices] = {};
  for (uint32_t id = 1; id < abi::kMaxBackends; ++id) {
    abi::BackendStats b{};
    for (const WorkerContext* w : workers) {
      const BackendCounters& c = w->counters->backends[id];
      b.new_conns += c.new_conns.get();
      b.active_conns += c.active_conns.get();
      b.packets_in += c.packets_in.get();
      b.packets_out += c.packets_out.get();
      b.bytes_in += c.bytes_in.get();
      b.bytes_out += c.bytes_out.get();
      b.resets += c.resets.get();
      b.cut_probes += c.cut_probes.get();
    }
    store(backends[id].new_conns, b.new_conns);
    store(backends[id].active_conns, b.active_conns);
    store(backends[id].packets_in, b.packets_in);
    store(backends[id].packets_out, b.packets_out);
    store(backends[id].bytes_in, b.bytes_in);
    store(backends[id].bytes_out, b.bytes_out);
    store(backends[id].resets, b.resets);
    store(backends[id].cut_probes, b.cut_probes);
    if (cfg != nullptr && cfg->backend(id).admin != 0) {
      abi::ServiceStats& s = svc_sum[cfg->backend(id).service_index];
      s.new_conns += b.new_conns;
      s.active_conns += b.active_conns;
      s.packets_in += b.packets_in;
      s.packets_out += b.packets_out;
      s.bytes_in += b.bytes_in;
      s.bytes_out += b.bytes_out;
    }
  }
  const uint32_t n_services = cfg != nullptr ? cfg->service_count() : 0;
  for (uint32_t i = 0; i < abi::kMaxServices; ++i) {
    abi::ServiceStats& out = services[i];
    if (i >= n_services) {
      store(out.valid, 0);
      continue;
    }
    const ServiceEntry& se = cfg->service(i);
    uint64_t no_backend = 0;
    for (const WorkerContext* w : workers) no_backend += w->counters->service_no_backend[i].get();
    store(out.valid, 0);
    store(out.vip, se.vip);
    store(out.port, se.port);
    store(out.protocol, se.protocol);
    store(out.new_conns, svc_sum[i].new_conns);
    store(out.packets_in, svc_sum[i].packets_in);
    store(out.packets_out, svc_sum[i].packets_out);
    store(out.bytes_in, svc_sum[i].bytes_in);
    store(out.bytes_out, svc_sum[i].bytes_out);
    store(out.active_conns, svc_sum[i].active_conns);
    store(out.no_backend_drops, no_backend);
    store(out.valid, 1);
  }
}

}  // namespace ilb::dp

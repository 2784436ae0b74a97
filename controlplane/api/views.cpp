#include "controlplane/api/views.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace ilb::cp {

namespace {

std::string bounded_string(const char* text, size_t capacity) {
  return std::string(text, strnlen(text, capacity));
}

}  // namespace

const char* protocol_name(abi::Protocol p) {
  return p == abi::Protocol::kUdp ? "udp" : "tcp";
}
const char* scheduler_name(abi::Scheduler s) {
  switch (s) {
    case abi::Scheduler::kSource:
      return "source";
    case abi::Scheduler::kWrr:
      return "wrr";
    case abi::Scheduler::kWlc:
      return "wlc";
    case abi::Scheduler::kMaglev:
      break;
  }
  return "maglev";
}

nlohmann::json dataplane_json(const StatReader& stat) {
  using nlohmann::json;
  if (!stat.valid()) return json{{"running", false}};
  const auto& h = stat.header();
  char boot_id[24];
  std::snprintf(boot_id, sizeof(boot_id), "%016" PRIx64, h.common.boot_id);
  const uint64_t age = stat.heartbeat_age_ms();
  json dp{
      {"running", stat.running()},
      {"pid", h.common.writer_pid},
      {"boot_id", boot_id},
      {"applied_gen", h.applied_gen.load(std::memory_order_acquire)},
      {"acked_gen", h.acked_gen.load(std::memory_order_acquire)},
      {"rejected_gen", h.rejected_gen.load(std::memory_order_acquire)},
      {"reject_reason", bounded_string(h.reject_reason, sizeof(h.reject_reason))},
      {"heartbeat_age_ms", age == UINT64_MAX ? json(nullptr) : json(age)},
      {"workers", h.worker_count},
  };
  json lcores = json::array();
  for (uint32_t i = 0; i < abi::kMaxLcores; ++i) {
    const auto& l = stat.lcore(i);
    // Only lcores the dataplane runs have ever beaten or looped.
    if (load_counter(l.heartbeat_ns) == 0 && load_counter(l.loops) == 0) continue;
    lcores.push_back(json{{"lcore", l.lcore_id},
                          {"worker", l.is_worker != 0},
                          {"loops", load_counter(l.loops)},
                          {"busy_loops", load_counter(l.busy_loops)},
                          {"busy_cycles", load_counter(l.busy_cycles)},
                          {"rx_packets", load_counter(l.rx_packets)},
                          {"tx_packets", load_counter(l.tx_packets)},
                          {"active_conns", load_counter(l.active_conns)}});
  }
  dp["lcores"] = std::move(lcores);
  // busy_cycles / tsc_hz: seconds spent on non-empty polls (0 from a dataplane before minor 3).
  dp["tsc_hz"] = load_counter(h.tsc_hz);
  json ports = json::array();
  for (uint32_t i = 0; i < std::min(h.port_count, abi::kMaxPorts); ++i) {
    const auto& p = stat.port(i);
    ports.push_back(json{{"name", bounded_string(p.name, sizeof(p.name))},
                         {"rx_packets", load_counter(p.rx_packets)},
                         {"tx_packets", load_counter(p.tx_packets)},
                         {"rx_dropped", load_counter(p.rx_dropped)},
                         {"tx_errors", load_counter(p.tx_errors)},
                         {"rx_bytes", load_counter(p.rx_bytes)},
                         {"tx_bytes", load_counter(p.tx_bytes)},
                         {"rx_errors", load_counter(p.rx_errors)},
                         {"link", link_name(load_counter(p.link))},
                         {"speed_mbps", load_counter(p.link_speed_mbps)},
                         {"full_duplex", load_counter(p.link_full_duplex) == 1},
                         {"link_changes", load_counter(p.link_changes)}});
  }
  dp["ports"] = std::move(ports);
  json drops = json::object();
  for (size_t i = 0; i < static_cast<size_t>(abi::Drop::kCount); ++i) {
    drops[abi::kDropNames[i]] = load_counter(h.drops[i]);
  }
  drops["martian"] = load_counter(h.martian_drops);
  dp["drops"] = std::move(drops);
  dp["handoff"] = json{{"packets", load_counter(h.handoff_packets)},
                       {"drops", load_counter(h.handoff_drops)},
                       {"steered_conns", load_counter(h.steered_conns)},
                       {"unsteered_conns", load_counter(h.unsteered_conns)}};
  dp["replies"] = json{{"untracked_resets", load_counter(h.untracked_resets)},
                       {"icmp_errors_translated", load_counter(h.icmp_errors_translated)},
                       {"limited", load_counter(h.replies_limited)}};
  dp["mss_clamped"] = load_counter(h.mss_clamped);
  return dp;
}

nlohmann::json status_json(const DaemonInfo& info, const State& state, const StatReader& stat) {
  return nlohmann::json{
      {"instance", info.instance},
      {"config_path", info.config_path},
      {"pid", info.pid},
      {"uptime_s", info.uptime_s},
      {"published_gen", info.published_gen},
      {"checks", {{"probes", info.probes}, {"failed", info.probes_failed}}},
      {"hooks",
       {{"configured", info.hook_configured},
        {"ran", info.hooks_ran},
        {"failed", info.hooks_failed},
        {"dropped", info.hooks_dropped},
        {"queued", info.hooks_queued}}},
      {"state_file", {{"path", info.state_file}, {"write_errors", info.state_file_errors}}},
      {"dataplane", dataplane_json(stat)},
      {"services", state.services().size()},
      {"backends", state.backend_count()},
      {"backends_up", state.backends_up()}};
}

nlohmann::json services_json(const State& state, const StatReader& stat) {
  auto out = nlohmann::json::array();
  for (const auto& s : state.services()) {
    const auto& c = s.config;
    const abi::ServiceStats* st =
        stat.valid() ? stat.find_service(c.vip, c.port, c.protocol) : nullptr;
    auto counter = [&](const uint64_t abi::ServiceStats::*field) -> uint64_t {
      return st != nullptr ? load_counter(st->*field) : 0;
    };
    out.push_back(nlohmann::json{{"name", c.name},
                                 {"vip", address_text(c.vip)},
                                 {"port", c.port},
                                 {"protocol", protocol_name(c.protocol)},
                                 {"scheduler", scheduler_name(c.scheduler)},
                                 {"backends", s.backends.size()},
                                 {"backends_up", backends_up(s)},
                                 {"mode", service_mode_name(s.mode)},
                                 {"active_conns", counter(&abi::ServiceStats::active_conns)},
                                 {"new_conns", counter(&abi::ServiceStats::new_conns)},
                                 {"packets_in", counter(&abi::ServiceStats::packets_in)},
                                 {"packets_out", counter(&abi::ServiceStats::packets_out)}});
  }
  return out;
}

nlohmann::json backends_json(const ServiceState& service, const StatReader& stat, TimePoint now) {
  auto out = nlohmann::json::array();
  auto seconds_until = [&](TimePoint t) -> nlohmann::json {
    if (t <= now) return nullptr;
    return std::chrono::duration_cast<std::chrono::seconds>(t - now).count() + 1;
  };
  const auto& c = service.config;
  for (const auto& b : service.backends) {
    nlohmann::json drain_left = nullptr;
    if (draining(b) && c.drain_timeout_s > 0) {
      drain_left = seconds_until(b.draining_since + std::chrono::seconds(c.drain_timeout_s));
      if (drain_left.is_null()) drain_left = 0;
    }
    nlohmann::json ramp = nullptr;
    if (b.ramp_start != TimePoint{} && c.slow_start_s > 0) {
      ramp = static_cast<int>(100 * slow_start_factor(now - b.ramp_start, c.slow_start_s));
    }
    const abi::BackendStats* st = stat.valid() ? &stat.backend(b.id) : nullptr;
    auto counter = [&](const uint64_t abi::BackendStats::*field) -> uint64_t {
      return st != nullptr ? load_counter(st->*field) : 0;
    };
    out.push_back(
        nlohmann::json{{"id", b.id},
                       {"address", address_text(b.config.address)},
                       {"port", b.config.port},
                       {"weight", b.config.weight},
                       {"serving_weight", b.selected_weight},
                       {"state", lifecycle_name(service, b, now)},
                       {"admin", admin_name(b.admin)},
                       {"health", health_name(b.health)},
                       {"backup", b.config.backup},
                       {"zone", b.config.zone},
                       {"held_s", b.damper.holding(now) ? seconds_until(b.damper.hold_until())
                                                        : nlohmann::json(nullptr)},
                       {"ramp_pct", ramp},
                       {"drain_left_s", drain_left},
                       {"reset_flows", State::reset_flows(service, b, now)},
                       {"last_check", b.last_check},
                       {"active_conns", counter(&abi::BackendStats::active_conns)},
                       {"new_conns", counter(&abi::BackendStats::new_conns)},
                       {"packets_in", counter(&abi::BackendStats::packets_in)},
                       {"packets_out", counter(&abi::BackendStats::packets_out)},
                       {"bytes_in", counter(&abi::BackendStats::bytes_in)},
                       {"bytes_out", counter(&abi::BackendStats::bytes_out)},
                       {"resets", counter(&abi::BackendStats::resets)},
                       {"cut_probes", counter(&abi::BackendStats::cut_probes)}});
  }
  return out;
}

}  // namespace ilb::cp

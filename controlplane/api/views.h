// The JSON documents the API returns, built from the daemon's state and the dataplane's stat
// region. Field names are part of the interface ilbctl and operators' scripts rely on.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "controlplane/publish/stat_reader.h"
#include "controlplane/state/state.h"

namespace ilb::cp {

struct DaemonInfo {
  std::string instance;
  std::string config_path;
  uint32_t pid = 0;
  uint64_t uptime_s = 0;
  double start_time_unix_s = 0;  // when the daemon started, seconds since the Unix epoch
  uint64_t published_gen = 0;
  uint64_t probes = 0;         // health probes completed
  uint64_t probes_failed = 0;  // of which failed (refused, timed out, bad reply, ...)
  bool hook_configured = false;
  uint64_t hooks_ran = 0;
  uint64_t hooks_failed = 0;
  uint64_t hooks_dropped = 0;
  size_t hooks_queued = 0;
  std::string state_file;  // "" = none
  uint64_t state_file_errors = 0;
};

// {"running": false} when no valid stat region is mapped; otherwise generations, heartbeat,
// lcores, ports and drop counters.
nlohmann::json dataplane_json(const StatReader& stat);
nlohmann::json status_json(const DaemonInfo& info, const State& state, const StatReader& stat);
nlohmann::json services_json(const State& state, const StatReader& stat);
nlohmann::json backends_json(const ServiceState& service, const StatReader& stat,
                             TimePoint now = SteadyClock::now());

const char* protocol_name(abi::Protocol p);    // "tcp", "udp"
const char* scheduler_name(abi::Scheduler s);  // "maglev", "source"

}  // namespace ilb::cp

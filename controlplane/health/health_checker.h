// Runs every backend's health check from one asio event loop and turns raw probe results into
// health state (unknown / up / down) with rise/fall hysteresis. It knows nothing about admin
// state, scheduling or shared memory: it reports transitions through a callback.
#pragma once

#include <asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "controlplane/config/model.h"
#include "controlplane/health/probe.h"
#include "dataplane/abi/ilb_abi.h"

namespace ilb::cp {

// One thing to check. `key` is the caller's stable identity for it (the backend id).
struct CheckTarget {
  uint32_t key = 0;
  std::string service;   // the service's name, for exec checks' environment
  uint32_t address = 0;  // IPv4, network order
  uint16_t port = 0;     // the backend's port (the check's own port override is in `check`)
  HealthCheckConfig check;
  abi::Health initial = abi::Health::kUnknown;  // state to resume from (control-plane restart)
};

struct HealthEvent {
  uint32_t key = 0;
  abi::Health from = abi::Health::kUnknown;
  abi::Health to = abi::Health::kUnknown;  // == from when only the agent's advice changed
  std::string reason;  // last probe's result, e.g. "connect: connection refused", "HTTP 503"
  std::optional<AgentAdvice> advice;  // the agent's latest well-formed advice (agent checks)
  bool advice_changed = false;
};

class HealthChecker {
 public:
  using Callback = std::function<void(const HealthEvent&)>;

  // All probes and timers run on `io`; `on_change` is called on `io`'s thread for every state
  // transition (unknown->up on the first success, unknown->down on the first failure, then
  // up->down after `fall` consecutive failures and down->up after `rise` consecutive successes),
  // and whenever an agent's advice changes. An agent probe that fails keeps the last advice.
  HealthChecker(asio::io_context& io, Callback on_change);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Replaces the set of targets. Targets whose key, address, port and check are unchanged keep
  // their state and schedule; new ones start at `initial` with their first probe after a random
  // jitter within one interval; removed ones are cancelled (no callback).
  void set_targets(const std::vector<CheckTarget>& targets);

  abi::Health health(uint32_t key) const;
  // The most recent probe result text for `key` ("" if none yet).
  std::string last_result(uint32_t key) const;

  // Probes completed since construction, and how many of them failed.
  uint64_t probes_completed() const;
  uint64_t probes_failed() const;

  // Cancels every probe and timer; no callback is called afterwards.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ilb::cp

// The control plane's model of what should be running: the configured services and backends, each
// backend with a stable id, an operator's admin state (enabled / draining / disabled) and a health
// state (unknown / up / down) kept apart, and the last check result. It is the single source of
// every snapshot.
//
// Ids are what the dataplane's connection entries refer to, so they must survive reloads and
// control-plane restarts: a backend keeps its id for as long as its identity (service vip, port,
// protocol, backend address, port) stays in the configuration, and a restarted control plane
// takes ids, admin state and health over from the last published snapshot. New ids are handed out
// round-robin so that a just-removed backend's id is not immediately given to another backend.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "controlplane/config/model.h"
#include "controlplane/health/health_checker.h"
#include "controlplane/health/probe.h"
#include "controlplane/publish/snapshot.h"
#include "controlplane/state/lifecycle.h"
#include "controlplane/tables/maglev.h"

namespace ilb::cp {

struct BackendKey {
  uint32_t vip = 0;
  uint16_t vport = 0;
  abi::Protocol protocol = abi::Protocol::kTcp;
  uint32_t address = 0;
  uint16_t port = 0;
  auto operator<=>(const BackendKey&) const = default;
};

struct BackendState {
  uint32_t id = 0;
  BackendConfig config;
  abi::AdminState admin = abi::AdminState::kEnabled;
  abi::Health health = abi::Health::kUnknown;  // as the health checks see it
  std::string last_check;                      // most recent probe result, "" before the first
  std::optional<AgentAdvice> advice;           // the agent's latest word (agent checks only)

  // Lifecycle bookkeeping, driven by evaluate().
  FlapDamper damper;
  TimePoint draining_since{};    // when admin draining (or the agent's drain) began
  TimePoint ramp_start{};        // slow start began; {} = none
  bool ramp_armed = false;       // the next time it serves, it ramps (it was known not to serve)
  bool serving = false;          // takes new connections as of the last evaluate()
  bool held = false;             // up but held down by dampening as of the last evaluate()
  uint32_t selected_weight = 0;  // its weight in the last evaluate()'s selection
};

struct ServiceState {
  ServiceConfig config;  // config.backends mirrors `backends` (same order)
  std::vector<BackendState> backends;
  ServiceMode mode = ServiceMode::kNone;  // as of the last evaluate()
  bool zone_local = false;
  bool evaluated = false;  // evaluate() has run since the service appeared
};

// A change worth telling an operator's hook about that only the lifecycle sees: a backend held
// down by dampening, or a service switching between primaries, backups, fail-open and nothing.
struct LifecycleEvent {
  std::string service;
  uint32_t backend_id = 0;  // 0 for a service-level event
  std::string kind;         // "hold" or "service"
  std::string from;
  std::string to;
  std::string reason;
};

enum class AdminChange { kChanged, kUnchanged, kNoService, kNoBackend };

class State {
 public:
  // Remembers the ids, admin state and health of a snapshot published by a previous control
  // plane, to be taken over by the next apply_config() for the same backends.
  void seed_from_snapshot(const Snapshot& recovered);
  // The same from a state file's entries. Call before seed_from_snapshot(): when both know a
  // backend, the snapshot wins (its ids are the ones the dataplane's connections refer to).
  void seed(const BackendKey& key, uint32_t id, abi::AdminState admin, abi::Health health);

  // Throws ilb::ConfigError if `config` cannot be expressed within the ABI limits (service,
  // backend and table-entry counts, table and name sizes) or has duplicate backends.
  static void check_limits(const Config& config);

  // Replaces the configuration as a whole, or throws (check_limits) and changes nothing.
  // Backends with an unchanged identity keep id, admin state, health and last result; new ones
  // start enabled with unknown health (up when the service has no health check); removed ones
  // vanish.
  void apply_config(const Config& config);

  const Config& config() const { return config_; }
  const std::vector<ServiceState>& services() const { return services_; }
  const ServiceState* find_service(std::string_view name) const;

  AdminChange set_admin(std::string_view service, uint32_t address, uint16_t port,
                        abi::AdminState admin, TimePoint now = SteadyClock::now());
  // Records a health transition for backend `id`; returns false for an unknown id.
  bool set_health(uint32_t id, abi::Health health, std::string last_check,
                  TimePoint now = SteadyClock::now());
  // Records an agent's advice; returns true if it differs from the previous one.
  bool set_advice(uint32_t id, std::optional<AgentAdvice> advice,
                  TimePoint now = SteadyClock::now());

  // Recomputes which backends serve and with what weight as of `now` (dampening holds, slow
  // start ramps, drain deadlines, backups, zones, fail-open) and returns the changes a hook
  // should hear about. Call after every change and at next_deadline().
  std::vector<LifecycleEvent> evaluate(TimePoint now);
  // The next moment evaluate() would give a different answer without any other change, if any.
  std::optional<TimePoint> next_deadline(TimePoint now) const;
  // Whether the backend's existing connections should be cut as of `now`.
  static bool reset_flows(const ServiceState& service, const BackendState& b, TimePoint now);
  // Records a probe result without a transition.
  void set_last_check(uint32_t id, std::string last_check);
  const BackendState* find_backend(uint32_t id) const;

  // What the health checker should probe: every backend of a service with a health check,
  // starting from its current health.
  std::vector<CheckTarget> check_targets() const;

  // The full snapshot as of the last evaluate(): a backend gets Maglev slots with its selected
  // weight; every backend is listed with its states so the dataplane can treat existing flows of
  // draining, disabled and down backends correctly.
  Snapshot build_snapshot(TableBuilder& builder, TimePoint now = SteadyClock::now()) const;

  size_t backend_count() const;
  size_t backends_up() const;

 private:
  uint32_t allocate_id(const std::vector<bool>& used);

  Config config_;
  std::vector<ServiceState> services_;
  struct Seed {
    uint32_t id;
    abi::AdminState admin;
    abi::Health health;
  };
  std::map<BackendKey, Seed> seeds_;
  uint32_t next_id_ = 1;
  bool applied_once_ = false;  // backends that appear later (reloads) ramp on their first up
};

BackendKey backend_key(const ServiceConfig& service, const BackendConfig& backend);
// Draining by the operator or by the backend's agent.
bool draining(const BackendState& b);
// One word for where a backend is in its life as of the last evaluate(): "serving", "ramping"
// (slow start), "standby" (up, but a backup or another zone's while others serve), "held"
// (dampening), "draining", "disabled", "down", "unknown".
const char* lifecycle_name(const ServiceState& s, const BackendState& b, TimePoint now);
// How many of the service's backends pass their health checks.
size_t backends_up(const ServiceState& s);
// Enabled, up, not held down by dampening, not drained by its agent, with a weight.
bool eligible(const BackendState& b, TimePoint now = SteadyClock::now());
std::string address_text(uint32_t network_order);           // "10.0.0.1"
std::string backend_name(uint32_t address, uint16_t port);  // "10.0.0.1:3306"
const char* admin_name(abi::AdminState a);                  // "enabled", "draining", "disabled"
const char* health_name(abi::Health h);                     // "unknown", "up", "down"

}  // namespace ilb::cp

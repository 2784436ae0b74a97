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
#include "controlplane/publish/snapshot.h"
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
  abi::Health health = abi::Health::kUnknown;
  std::string last_check;  // most recent probe result, "" before the first
};

struct ServiceState {
  ServiceConfig config;  // config.backends mirrors `backends` (same order)
  std::vector<BackendState> backends;
};

enum class AdminChange { kChanged, kUnchanged, kNoService, kNoBackend };

class State {
 public:
  // Remembers the ids, admin state and health of a snapshot published by a previous control
  // plane, to be taken over by the next apply_config() for the same backends.
  void seed_from_snapshot(const Snapshot& recovered);

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
                        abi::AdminState admin);
  // Records a health transition for backend `id`; returns false for an unknown id.
  bool set_health(uint32_t id, abi::Health health, std::string last_check);
  // Records a probe result without a transition.
  void set_last_check(uint32_t id, std::string last_check);
  const BackendState* find_backend(uint32_t id) const;

  // What the health checker should probe: every backend of a service with a health check,
  // starting from its current health.
  std::vector<CheckTarget> check_targets() const;

  // The full snapshot. A backend gets Maglev slots only when it is enabled, up and weighted;
  // every backend is listed with its states so the dataplane can treat existing flows of
  // draining, disabled and down backends correctly.
  Snapshot build_snapshot(TableBuilder& builder) const;

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
};

BackendKey backend_key(const ServiceConfig& service, const BackendConfig& backend);
bool eligible(const BackendState& b);
std::string address_text(uint32_t network_order);           // "10.0.0.1"
std::string backend_name(uint32_t address, uint16_t port);  // "10.0.0.1:3306"
const char* admin_name(abi::AdminState a);                  // "enabled", "draining", "disabled"
const char* health_name(abi::Health h);                     // "unknown", "up", "down"

}  // namespace ilb::cp

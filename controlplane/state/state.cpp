#include "controlplane/state/state.h"

#include <arpa/inet.h>

#include <algorithm>
#include <set>
#include <utility>

#include "dataplane/config/config_error.h"

namespace ilb::cp {

BackendKey backend_key(const ServiceConfig& service, const BackendConfig& backend) {
  return BackendKey{service.vip, service.port, service.protocol, backend.address, backend.port};
}

bool eligible(const BackendState& b, TimePoint now) {
  return b.admin == abi::AdminState::kEnabled && b.health == abi::Health::kUp &&
         !b.damper.holding(now) && !(b.advice && b.advice->drain) && b.config.weight > 0;
}

bool draining(const BackendState& b) {
  return b.admin == abi::AdminState::kDraining ||
         (b.admin == abi::AdminState::kEnabled && b.advice && b.advice->drain);
}

const char* lifecycle_name(const ServiceState& s, const BackendState& b, TimePoint now) {
  if (b.admin == abi::AdminState::kDisabled) return "disabled";
  if (draining(b)) return "draining";
  if (b.health == abi::Health::kUnknown) return "unknown";
  if (b.health == abi::Health::kDown)
    return s.mode == ServiceMode::kFailOpen ? "fail_open" : "down";
  if (b.damper.holding(now)) return "held";
  if (b.selected_weight == 0) return "standby";
  if (b.ramp_start != TimePoint{}) return "ramping";
  return "serving";
}

namespace {

// The weight a serving backend gets at `now`: configured, scaled by its agent's percentage and
// its slow-start ramp, never rounded down to nothing.
uint32_t effective_weight(const ServiceConfig& service, const BackendState& b, TimePoint now) {
  double w = b.config.weight;
  if (b.advice && b.advice->weight_pct) w = w * *b.advice->weight_pct / 100.0;
  if (w <= 0) return 0;
  if (b.ramp_start != TimePoint{}) w *= slow_start_factor(now - b.ramp_start, service.slow_start_s);
  return std::max<uint32_t>(1, static_cast<uint32_t>(w + 0.5));
}

Selection select_at(const ServiceState& s, const std::string& zone, TimePoint now) {
  std::vector<Candidate> candidates(s.backends.size());
  std::vector<uint32_t> configured(s.backends.size());
  for (size_t i = 0; i < s.backends.size(); ++i) {
    const BackendState& b = s.backends[i];
    Candidate& c = candidates[i];
    c.serving = eligible(b, now);
    c.weight = c.serving ? effective_weight(s.config, b, now) : 0;
    c.serving = c.serving && c.weight > 0;
    c.enabled = b.admin == abi::AdminState::kEnabled && b.config.weight > 0;
    c.unknown = c.enabled && b.health == abi::Health::kUnknown;
    c.backup = b.config.backup;
    c.local = !zone.empty() && b.config.zone == zone;
    configured[i] = b.config.weight;
  }
  return select_backends(s.config, candidates, configured);
}

}  // namespace

std::string address_text(uint32_t network_order) {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{};
  a.s_addr = network_order;
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

std::string backend_name(uint32_t address, uint16_t port) {
  return address_text(address) + ":" + std::to_string(port);
}

const char* admin_name(abi::AdminState a) {
  switch (a) {
    case abi::AdminState::kEnabled:
      return "enabled";
    case abi::AdminState::kDraining:
      return "draining";
    case abi::AdminState::kDisabled:
      return "disabled";
  }
  return "invalid";
}

const char* health_name(abi::Health h) {
  switch (h) {
    case abi::Health::kUnknown:
      return "unknown";
    case abi::Health::kUp:
      return "up";
    case abi::Health::kDown:
      return "down";
  }
  return "invalid";
}

void State::seed_from_snapshot(const Snapshot& recovered) {
  // Two seeds must never share an id: a snapshot's ids displace state-file seeds holding them.
  std::vector<bool> in_snapshot(abi::kMaxBackends, false);
  for (const auto& b : recovered.backends) {
    if (b.id < abi::kMaxBackends) in_snapshot[b.id] = true;
  }
  std::erase_if(seeds_, [&](const auto& kv) { return in_snapshot[kv.second.id]; });
  for (const auto& b : recovered.backends) {
    if (b.service_index >= recovered.services.size()) continue;
    const auto& s = recovered.services[b.service_index];
    seed(BackendKey{s.vip, s.port, s.protocol, b.address, b.port}, b.id, b.admin, b.health);
  }
}

void State::seed(const BackendKey& key, uint32_t id, abi::AdminState admin, abi::Health health) {
  if (id == 0 || id >= abi::kMaxBackends) return;
  seeds_[key] = Seed{id, admin, health};
  if (id >= next_id_) next_id_ = id + 1 < abi::kMaxBackends ? id + 1 : 1;
}

void State::check_limits(const Config& config) {
  auto fail = [&](uint32_t line, const std::string& key, const std::string& msg) {
    throw ConfigError(config.path, line, line > 0 ? 1 : 0, key, msg);
  };
  if (config.services.size() > abi::kMaxServices) {
    fail(0, "service", "at most " + std::to_string(abi::kMaxServices) + " services are supported");
  }
  uint64_t backends = 0;
  uint64_t entries = 0;
  std::set<BackendKey> keys;
  for (const auto& s : config.services) {
    if (s.name.size() >= abi::kNameLen) {
      fail(s.line, "service.name",
           "at most " + std::to_string(abi::kNameLen - 1) + " characters are supported");
    }
    if (s.table_size == 0 || s.table_size > abi::kMaxTableSize) {
      fail(s.line, "service.table_size", "expected 1.." + std::to_string(abi::kMaxTableSize));
    }
    entries += s.table_size;
    backends += s.backends.size();
    for (const auto& b : s.backends) {
      if (!keys.insert(backend_key(s, b)).second) {
        fail(b.line, "service.backend",
             "duplicate backend " + backend_name(b.address, b.port) + " in service " + s.name);
      }
    }
  }
  if (backends >= abi::kMaxBackends) {
    fail(0, "service.backend",
         "at most " + std::to_string(abi::kMaxBackends - 1) + " backends are supported in total");
  }
  if (entries > abi::kMaxTableEntries) {
    fail(0, "service.table_size",
         "the sum of all table sizes must not exceed " + std::to_string(abi::kMaxTableEntries));
  }
}

uint32_t State::allocate_id(const std::vector<bool>& used) {
  for (uint32_t tries = 0; tries < abi::kMaxBackends; ++tries) {
    uint32_t id = next_id_;
    next_id_ = next_id_ + 1 < abi::kMaxBackends ? next_id_ + 1 : 1;
    if (!used[id]) return id;
  }
  // check_limits() bounds the backend count below kMaxBackends, so a free id always exists.
  throw std::logic_error("State::allocate_id: no free backend id despite check_limits");
}

void State::apply_config(const Config& config) {
  check_limits(config);

  std::map<BackendKey, const BackendState*> current;
  for (const auto& s : services_) {
    for (const auto& b : s.backends) current[backend_key(s.config, b.config)] = &b;
  }

  // First pass: every backend that keeps an id (from the running state or a recovery seed).
  std::vector<ServiceState> next(config.services.size());
  std::vector<bool> used(abi::kMaxBackends, false);
  used[0] = true;
  std::vector<BackendState*> fresh;
  for (size_t i = 0; i < config.services.size(); ++i) {
    const auto& sc = config.services[i];
    next[i].config = sc;
    next[i].backends.resize(sc.backends.size());
    for (size_t j = 0; j < sc.backends.size(); ++j) {
      BackendState& b = next[i].backends[j];
      b.config = sc.backends[j];
      const BackendKey key = backend_key(sc, b.config);
      if (auto it = current.find(key); it != current.end()) {
        const BackendState& old = *it->second;
        BackendConfig config = b.config;
        b = old;
        b.config = config;
      } else if (auto seed = seeds_.find(key); seed != seeds_.end() && !used[seed->second.id]) {
        b.id = seed->second.id;
        b.admin = seed->second.admin;
        b.health = seed->second.health;
        b.last_check = "recovered from the previous control plane";
      } else {
        fresh.push_back(&b);
        continue;
      }
      used[b.id] = true;
    }
  }
  for (BackendState* b : fresh) {
    b->id = allocate_id(used);
    used[b->id] = true;
    // A backend added to a running service joins a warm pool: it ramps like one coming back.
    b->ramp_armed = applied_once_;
  }
  for (auto& s : next) {
    for (auto& b : s.backends) {
      if (check_of(s.config, b.config).type == CheckType::kNone) {
        b.health = abi::Health::kUp;
        b.last_check = "no health check";
      }
    }
  }

  // A service that keeps its name keeps its last mode, so a reload does not report it again.
  for (auto& s : next) {
    if (const ServiceState* old = find_service(s.config.name)) {
      s.mode = old->mode;
      s.zone_local = old->zone_local;
      s.evaluated = old->evaluated;
    }
  }

  config_ = config;
  services_ = std::move(next);
  seeds_.clear();
  applied_once_ = true;
}

const ServiceState* State::find_service(std::string_view name) const {
  for (const auto& s : services_) {
    if (s.config.name == name) return &s;
  }
  return nullptr;
}

AdminChange State::set_admin(std::string_view service, uint32_t address, uint16_t port,
                             abi::AdminState admin, TimePoint now) {
  for (auto& s : services_) {
    if (s.config.name != service) continue;
    for (auto& b : s.backends) {
      if (b.config.address == address && b.config.port == port) {
        if (b.admin == admin) return AdminChange::kUnchanged;
        const bool was_draining = draining(b);
        b.admin = admin;
        if (draining(b) && !was_draining) b.draining_since = now;
        return AdminChange::kChanged;
      }
    }
    return AdminChange::kNoBackend;
  }
  return AdminChange::kNoService;
}

bool State::set_health(uint32_t id, abi::Health health, std::string last_check, TimePoint now) {
  for (auto& s : services_) {
    for (auto& b : s.backends) {
      if (b.id == id) {
        if (b.health == abi::Health::kUp && health == abi::Health::kDown) {
          b.damper.on_down(now, s.config.dampening);
        }
        b.health = health;
        b.last_check = std::move(last_check);
        return true;
      }
    }
  }
  return false;
}

bool State::set_advice(uint32_t id, std::optional<AgentAdvice> advice, TimePoint now) {
  for (auto& s : services_) {
    for (auto& b : s.backends) {
      if (b.id != id) continue;
      if (b.advice == advice) return false;
      const bool was_draining = draining(b);
      b.advice = advice;
      if (draining(b) && !was_draining) b.draining_since = now;
      return true;
    }
  }
  return false;
}

std::vector<LifecycleEvent> State::evaluate(TimePoint now) {
  std::vector<LifecycleEvent> events;
  for (auto& s : services_) {
    for (auto& b : s.backends) {
      const bool serving = eligible(b, now);
      if (serving && !b.serving && b.ramp_armed && s.config.slow_start_s > 0) b.ramp_start = now;
      if (b.ramp_start != TimePoint{} &&
          now - b.ramp_start >= std::chrono::seconds(s.config.slow_start_s)) {
        b.ramp_start = {};  // at full weight
      }
      if (!serving) {
        b.ramp_start = {};
        // Known not to serve (down, held, drained, disabled): its next start ramps. A backend
        // whose health is still unknown has never carried traffic from this control plane.
        b.ramp_armed = b.ramp_armed || b.health != abi::Health::kUnknown ||
                       b.admin != abi::AdminState::kEnabled;
      }
      const bool held = b.health == abi::Health::kUp && b.damper.holding(now);
      if (held && !b.held) {
        events.push_back(LifecycleEvent{
            s.config.name, b.id, "hold", "up", "held",
            "went down " + std::to_string(b.damper.recent_downs()) + " times within " +
                std::to_string(s.config.dampening.window_s) + " s: held down for " +
                std::to_string(b.damper.hold().count()) + " s"});
      } else if (!held && b.held && b.health == abi::Health::kUp) {
        events.push_back(LifecycleEvent{s.config.name, b.id, "hold", "held", "up", "hold ended"});
      }
      b.held = held;
      b.serving = serving;
    }
    const Selection sel = select_at(s, config_.controlplane.zone, now);
    for (size_t i = 0; i < s.backends.size(); ++i) s.backends[i].selected_weight = sel.weights[i];
    if (!s.evaluated || sel.mode != s.mode) {
      if (s.evaluated || sel.mode != ServiceMode::kPrimaries) {
        events.push_back(LifecycleEvent{
            s.config.name, 0, "service", s.evaluated ? service_mode_name(s.mode) : "",
            service_mode_name(sel.mode),
            std::to_string(sel.chosen()) + " of " + std::to_string(s.backends.size()) +
                " backends take new connections"});
      }
      s.mode = sel.mode;
      s.evaluated = true;
    }
    s.zone_local = sel.zone_local;
  }
  return events;
}

std::optional<TimePoint> State::next_deadline(TimePoint now) const {
  std::optional<TimePoint> next;
  auto consider = [&](TimePoint t) {
    if (t > now && (!next || t < *next)) next = t;
  };
  for (const auto& s : services_) {
    for (const auto& b : s.backends) {
      if (b.health == abi::Health::kUp && b.damper.holding(now)) consider(b.damper.hold_until());
      if (b.ramp_start != TimePoint{}) {
        const auto end = b.ramp_start + std::chrono::seconds(s.config.slow_start_s);
        consider(std::min(end, now + slow_start_step(s.config.slow_start_s)));
      }
      if (draining(b) && s.config.drain_timeout_s > 0) {
        consider(b.draining_since + std::chrono::seconds(s.config.drain_timeout_s));
      }
    }
  }
  return next;
}

bool State::reset_flows(const ServiceState& service, const BackendState& b, TimePoint now) {
  if (b.admin == abi::AdminState::kDisabled) return true;
  if (service.config.on_backend_down == OnBackendDown::kReset &&
      (b.health == abi::Health::kDown || (b.health == abi::Health::kUp && b.damper.holding(now)))) {
    return true;
  }
  return draining(b) && service.config.drain_timeout_s > 0 &&
         now - b.draining_since >= std::chrono::seconds(service.config.drain_timeout_s);
}

void State::set_last_check(uint32_t id, std::string last_check) {
  for (auto& s : services_) {
    for (auto& b : s.backends) {
      if (b.id == id) b.last_check = std::move(last_check);
    }
  }
}

const BackendState* State::find_backend(uint32_t id) const {
  for (const auto& s : services_) {
    for (const auto& b : s.backends) {
      if (b.id == id) return &b;
    }
  }
  return nullptr;
}

std::vector<CheckTarget> State::check_targets() const {
  std::vector<CheckTarget> targets;
  for (const auto& s : services_) {
    for (const auto& b : s.backends) {
      if (check_of(s.config, b.config).type == CheckType::kNone) continue;
      targets.push_back(CheckTarget{b.id, s.config.name, b.config.address, b.config.port,
                                    check_of(s.config, b.config), b.health});
    }
  }
  return targets;
}

Snapshot State::build_snapshot(TableBuilder& builder, TimePoint now) const {
  std::vector<TableRequest> requests(services_.size());
  std::vector<Selection> selections;
  selections.reserve(services_.size());
  for (size_t i = 0; i < services_.size(); ++i) {
    requests[i].table_size = services_[i].config.table_size;
    switch (services_[i].config.scheduler) {
      case abi::Scheduler::kWrr:
        requests[i].kind = TableKind::kWrr;
        break;
      case abi::Scheduler::kWlc:
        requests[i].kind = TableKind::kWlc;
        break;
      case abi::Scheduler::kMaglev:
      case abi::Scheduler::kSource:
        requests[i].kind = TableKind::kMaglev;
        break;
    }
    const Selection& sel =
        selections.emplace_back(select_at(services_[i], config_.controlplane.zone, now));
    for (size_t j = 0; j < services_[i].backends.size(); ++j) {
      const auto& b = services_[i].backends[j];
      if (sel.weights[j] > 0) {
        requests[i].backends.push_back(
            MaglevBackend{b.id, sel.weights[j], backend_name(b.config.address, b.config.port)});
      }
    }
  }
  const auto& tables = builder.build(requests);

  Snapshot snap;
  snap.services.reserve(services_.size());
  for (size_t i = 0; i < services_.size(); ++i) {
    const auto& c = services_[i].config;
    SnapshotService s;
    s.name = c.name;
    s.vip = c.vip;
    s.port = c.port;
    s.protocol = c.protocol;
    s.scheduler = c.scheduler;
    s.tcp_syn_timeout_s = c.tcp_syn_timeout_s;
    s.tcp_est_timeout_s = c.tcp_established_timeout_s;
    s.tcp_fin_timeout_s = c.tcp_fin_timeout_s;
    s.udp_timeout_s = c.udp_timeout_s;
    s.reset_untracked = c.untracked_tcp == UntrackedTcp::kReset;
    if (!requests[i].backends.empty()) s.table = tables[i];
    snap.services.push_back(std::move(s));
    for (size_t j = 0; j < services_[i].backends.size(); ++j) {
      const BackendState& b = services_[i].backends[j];
      // The dataplane sees what the lifecycle decided: a held backend is down, one its agent
      // drains is draining, cut connections are flagged, and the weight is the share it gets
      // now (what wlc divides by).
      const abi::Health health =
          b.health == abi::Health::kUp && b.damper.holding(now) ? abi::Health::kDown : b.health;
      const abi::AdminState admin = draining(b) ? abi::AdminState::kDraining : b.admin;
      SnapshotBackend sb{b.id,   static_cast<uint32_t>(i), b.config.address, b.config.port, admin,
                         health, selections[i].weights[j]};
      sb.reset_flows = reset_flows(services_[i], b, now);
      snap.backends.push_back(sb);
    }
  }
  return snap;
}

size_t State::backend_count() const {
  size_t n = 0;
  for (const auto& s : services_) n += s.backends.size();
  return n;
}

size_t backends_up(const ServiceState& s) {
  return static_cast<size_t>(std::count_if(s.backends.begin(), s.backends.end(), [](const auto& b) {
    return b.health == abi::Health::kUp;
  }));
}

size_t State::backends_up() const {
  size_t n = 0;
  for (const auto& s : services_) n += cp::backends_up(s);
  return n;
}

}  // namespace ilb::cp

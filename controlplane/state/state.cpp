#include "controlplane/state/state.h"

#include <arpa/inet.h>

#include <set>
#include <utility>

#include "dataplane/config/config_error.h"

namespace ilb::cp {

BackendKey backend_key(const ServiceConfig& service, const BackendConfig& backend) {
  return BackendKey{service.vip, service.port, service.protocol, backend.address, backend.port};
}

bool eligible(const BackendState& b) {
  return b.admin == abi::AdminState::kEnabled && b.health == abi::Health::kUp &&
         b.config.weight > 0;
}

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
  seeds_.clear();
  for (const auto& b : recovered.backends) {
    if (b.service_index >= recovered.services.size()) continue;
    const auto& s = recovered.services[b.service_index];
    seeds_[BackendKey{s.vip, s.port, s.protocol, b.address, b.port}] =
        Seed{b.id, b.admin, b.health};
    if (b.id >= next_id_) next_id_ = b.id + 1 < abi::kMaxBackends ? b.id + 1 : 1;
  }
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
        b.id = it->second->id;
        b.admin = it->second->admin;
        b.health = it->second->health;
        b.last_check = it->second->last_check;
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
  }
  for (auto& s : next) {
    if (s.config.health_check.type == CheckType::kNone) {
      for (auto& b : s.backends) {
        b.health = abi::Health::kUp;
        b.last_check = "no health check";
      }
    }
  }

  config_ = config;
  services_ = std::move(next);
  seeds_.clear();
}

const ServiceState* State::find_service(std::string_view name) const {
  for (const auto& s : services_) {
    if (s.config.name == name) return &s;
  }
  return nullptr;
}

AdminChange State::set_admin(std::string_view service, uint32_t address, uint16_t port,
                             abi::AdminState admin) {
  for (auto& s : services_) {
    if (s.config.name != service) continue;
    for (auto& b : s.backends) {
      if (b.config.address == address && b.config.port == port) {
        if (b.admin == admin) return AdminChange::kUnchanged;
        b.admin = admin;
        return AdminChange::kChanged;
      }
    }
    return AdminChange::kNoBackend;
  }
  return AdminChange::kNoService;
}

bool State::set_health(uint32_t id, abi::Health health, std::string last_check) {
  for (auto& s : services_) {
    for (auto& b : s.backends) {
      if (b.id == id) {
        b.health = health;
        b.last_check = std::move(last_check);
        return true;
      }
    }
  }
  return false;
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
    if (s.config.health_check.type == CheckType::kNone) continue;
    for (const auto& b : s.backends) {
      targets.push_back(
          CheckTarget{b.id, b.config.address, b.config.port, s.config.health_check, b.health});
    }
  }
  return targets;
}

Snapshot State::build_snapshot(TableBuilder& builder) const {
  std::vector<TableRequest> requests(services_.size());
  for (size_t i = 0; i < services_.size(); ++i) {
    requests[i].table_size = services_[i].config.table_size;
    for (const auto& b : services_[i].backends) {
      if (eligible(b)) {
        requests[i].backends.push_back(
            MaglevBackend{b.id, b.config.weight, backend_name(b.config.address, b.config.port)});
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
    if (!requests[i].backends.empty()) s.table = tables[i];
    snap.services.push_back(std::move(s));
    for (const auto& b : services_[i].backends) {
      snap.backends.push_back(SnapshotBackend{b.id, static_cast<uint32_t>(i), b.config.address,
                                              b.config.port, b.admin, b.health, b.config.weight});
    }
  }
  return snap;
}

size_t State::backend_count() const {
  size_t n = 0;
  for (const auto& s : services_) n += s.backends.size();
  return n;
}

size_t State::backends_up() const {
  size_t n = 0;
  for (const auto& s : services_) {
    for (const auto& b : s.backends) n += b.health == abi::Health::kUp ? 1 : 0;
  }
  return n;
}

}  // namespace ilb::cp

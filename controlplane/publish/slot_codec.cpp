#include "controlplane/publish/slot_codec.h"

#include <cstring>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace ilb::cp {

namespace {

bool valid_protocol(uint8_t p) {
  return p == static_cast<uint8_t>(abi::Protocol::kTcp) ||
         p == static_cast<uint8_t>(abi::Protocol::kUdp);
}
bool valid_scheduler(uint8_t s) {
  return s >= static_cast<uint8_t>(abi::Scheduler::kMaglev) &&
         s <= static_cast<uint8_t>(abi::Scheduler::kWlc);
}
bool valid_admin(uint8_t a) {
  return a >= static_cast<uint8_t>(abi::AdminState::kEnabled) &&
         a <= static_cast<uint8_t>(abi::AdminState::kDisabled);
}
bool valid_health(uint8_t h) {
  return h <= static_cast<uint8_t>(abi::Health::kDown);
}

// Maps backend id -> service index; fails on a duplicate or out-of-range id.
template <typename Backends>
bool index_backends(const Backends& backends, std::unordered_map<uint32_t, uint32_t>& owner,
                    std::string& error) {
  for (const auto& b : backends) {
    if (b.id == 0 || b.id >= abi::kMaxBackends) {
      error = "backend id " + std::to_string(b.id) + " out of range";
      return false;
    }
    if (!owner.emplace(b.id, b.service_index).second) {
      error = "duplicate backend id " + std::to_string(b.id);
      return false;
    }
  }
  return true;
}

}  // namespace

void validate_snapshot(const Snapshot& s) {
  if (s.services.size() > abi::kMaxServices) {
    throw std::invalid_argument("too many services: " + std::to_string(s.services.size()));
  }
  if (s.backends.size() >= abi::kMaxBackends) {
    throw std::invalid_argument("too many backends: " + std::to_string(s.backends.size()));
  }
  std::string error;
  std::unordered_map<uint32_t, uint32_t> owner;
  if (!index_backends(s.backends, owner, error)) throw std::invalid_argument(error);
  for (const auto& b : s.backends) {
    if (b.service_index >= s.services.size()) {
      throw std::invalid_argument("backend " + std::to_string(b.id) + " has service index " +
                                  std::to_string(b.service_index));
    }
  }
  uint64_t entries = 0;
  for (uint32_t i = 0; i < s.services.size(); ++i) {
    const auto& svc = s.services[i];
    if (svc.name.size() >= abi::kNameLen) {
      throw std::invalid_argument("service name too long: " + svc.name);
    }
    if (svc.table.size() > abi::kMaxTableSize) {
      throw std::invalid_argument("table of " + svc.name + " too large");
    }
    entries += svc.table.size();
    for (uint32_t id : svc.table) {
      auto it = owner.find(id);
      if (it == owner.end() || it->second != i) {
        throw std::invalid_argument("table of " + svc.name + " names backend " +
                                    std::to_string(id) + " that is not one of its backends");
      }
    }
  }
  if (entries > abi::kMaxTableEntries) {
    throw std::invalid_argument("too many table entries: " + std::to_string(entries));
  }
}

uint64_t encoded_size(const Snapshot& s) {
  uint64_t entries = 0;
  for (const auto& svc : s.services) entries += svc.table.size();
  return sizeof(abi::SlotHeader) + s.services.size() * sizeof(abi::ServiceRecord) +
         s.backends.size() * sizeof(abi::BackendRecord) + entries * sizeof(uint32_t);
}

uint64_t encode_slot_payload(const Snapshot& s, uint8_t* slot) {
  auto* header = reinterpret_cast<abi::SlotHeader*>(slot);
  const uint64_t services_offset = sizeof(abi::SlotHeader);
  const uint64_t backends_offset = services_offset + s.services.size() * sizeof(abi::ServiceRecord);
  const uint64_t tables_offset = backends_offset + s.backends.size() * sizeof(abi::BackendRecord);

  auto* services = reinterpret_cast<abi::ServiceRecord*>(slot + services_offset);
  auto* tables = reinterpret_cast<uint32_t*>(slot + tables_offset);
  uint32_t table_pos = 0;
  for (size_t i = 0; i < s.services.size(); ++i) {
    const auto& in = s.services[i];
    abi::ServiceRecord r{};
    r.vip = in.vip;
    r.port = in.port;
    r.protocol = static_cast<uint8_t>(in.protocol);
    r.scheduler = static_cast<uint8_t>(in.scheduler);
    r.table_offset = table_pos;
    r.table_size = static_cast<uint32_t>(in.table.size());
    r.tcp_syn_timeout_s = in.tcp_syn_timeout_s;
    r.tcp_est_timeout_s = in.tcp_est_timeout_s;
    r.tcp_fin_timeout_s = in.tcp_fin_timeout_s;
    r.udp_timeout_s = in.udp_timeout_s;
    r.flags = in.reset_untracked ? uint32_t{abi::kServiceResetUntracked} : 0u;
    std::memcpy(r.name, in.name.data(), in.name.size());
    std::memcpy(&services[i], &r, sizeof(r));
    if (!in.table.empty()) {
      std::memcpy(tables + table_pos, in.table.data(), in.table.size() * sizeof(uint32_t));
    }
    table_pos += r.table_size;
  }
  auto* backends = reinterpret_cast<abi::BackendRecord*>(slot + backends_offset);
  for (size_t i = 0; i < s.backends.size(); ++i) {
    const auto& in = s.backends[i];
    abi::BackendRecord r{};
    r.id = in.id;
    r.service_index = in.service_index;
    r.address = in.address;
    r.port = in.port;
    r.admin = static_cast<uint8_t>(in.admin);
    r.health = static_cast<uint8_t>(in.health);
    r.weight = in.weight;
    r.flags = in.reset_flows ? abi::kBackendResetFlows : 0;
    std::memcpy(&backends[i], &r, sizeof(r));
  }
  header->service_count = static_cast<uint32_t>(s.services.size());
  header->backend_count = static_cast<uint32_t>(s.backends.size());
  header->table_entries = table_pos;
  header->flags = 0;
  header->services_offset = services_offset;
  header->backends_offset = backends_offset;
  header->tables_offset = tables_offset;
  header->payload_end = tables_offset + uint64_t{table_pos} * sizeof(uint32_t);
  return header->payload_end;
}

std::vector<uint8_t> encode_slot(const Snapshot& s, uint64_t generation) {
  std::vector<uint8_t> slot(encoded_size(s));
  const uint64_t end = encode_slot_payload(s, slot.data());
  auto* h = reinterpret_cast<abi::SlotHeader*>(slot.data());
  h->generation.store(generation, std::memory_order_relaxed);
  h->checksum = abi::fnv1a64(slot.data() + sizeof(abi::SlotHeader), end - sizeof(abi::SlotHeader));
  slot.resize(end);
  return slot;
}

bool decode_slot(const uint8_t* slot, uint64_t slot_size, Snapshot& out, std::string& error) {
  if (slot_size < sizeof(abi::SlotHeader)) {
    error = "slot smaller than its header";
    return false;
  }
  abi::SlotHeader h;
  std::memcpy(static_cast<void*>(&h), slot, sizeof(h));
  if (h.service_count > abi::kMaxServices || h.backend_count >= abi::kMaxBackends ||
      h.table_entries > abi::kMaxTableEntries) {
    error = "slot counts exceed the ABI limits";
    return false;
  }
  const uint64_t services_end = h.services_offset + uint64_t{h.service_count} * 64;
  const uint64_t backends_end = h.backends_offset + uint64_t{h.backend_count} * 32;
  const uint64_t tables_end = h.tables_offset + uint64_t{h.table_entries} * 4;
  if (h.services_offset < sizeof(abi::SlotHeader) || h.services_offset > slot_size ||
      h.backends_offset > slot_size || h.tables_offset > slot_size || h.payload_end > slot_size ||
      services_end > h.payload_end || backends_end > h.payload_end || tables_end > h.payload_end ||
      h.tables_offset % 4 != 0) {
    error = "slot offsets out of bounds";
    return false;
  }
  const uint64_t sum =
      abi::fnv1a64(slot + sizeof(abi::SlotHeader), h.payload_end - sizeof(abi::SlotHeader));
  if (sum != h.checksum) {
    error = "slot checksum mismatch";
    return false;
  }

  Snapshot s;
  s.backends.reserve(h.backend_count);
  for (uint32_t i = 0; i < h.backend_count; ++i) {
    abi::BackendRecord r;
    std::memcpy(&r, slot + h.backends_offset + uint64_t{i} * sizeof(r), sizeof(r));
    if (r.service_index >= h.service_count || !valid_admin(r.admin) || !valid_health(r.health)) {
      error = "backend record " + std::to_string(i) + " is invalid";
      return false;
    }
    s.backends.push_back(SnapshotBackend{
        r.id, r.service_index, r.address, r.port, static_cast<abi::AdminState>(r.admin),
        static_cast<abi::Health>(r.health), r.weight, (r.flags & abi::kBackendResetFlows) != 0});
  }
  std::unordered_map<uint32_t, uint32_t> owner;
  if (!index_backends(s.backends, owner, error)) return false;

  s.services.reserve(h.service_count);
  for (uint32_t i = 0; i < h.service_count; ++i) {
    abi::ServiceRecord r;
    std::memcpy(&r, slot + h.services_offset + uint64_t{i} * sizeof(r), sizeof(r));
    if (!valid_protocol(r.protocol) || !valid_scheduler(r.scheduler) ||
        std::memchr(r.name, 0, sizeof(r.name)) == nullptr || r.table_size > abi::kMaxTableSize ||
        (r.flags & ~abi::kKnownServiceFlags) != 0 ||
        ((r.flags & abi::kServiceResetUntracked) != 0 &&
         r.protocol != static_cast<uint8_t>(abi::Protocol::kTcp)) ||
        uint64_t{r.table_offset} + r.table_size > h.table_entries) {
      error = "service record " + std::to_string(i) + " is invalid";
      return false;
    }
    SnapshotService svc;
    svc.name = r.name;
    svc.vip = r.vip;
    svc.port = r.port;
    svc.protocol = static_cast<abi::Protocol>(r.protocol);
    svc.scheduler = static_cast<abi::Scheduler>(r.scheduler);
    svc.tcp_syn_timeout_s = r.tcp_syn_timeout_s;
    svc.tcp_est_timeout_s = r.tcp_est_timeout_s;
    svc.tcp_fin_timeout_s = r.tcp_fin_timeout_s;
    svc.udp_timeout_s = r.udp_timeout_s;
    svc.reset_untracked = (r.flags & abi::kServiceResetUntracked) != 0;
    svc.table.resize(r.table_size);
    if (r.table_size > 0) {
      std::memcpy(svc.table.data(), slot + h.tables_offset + uint64_t{r.table_offset} * 4,
                  uint64_t{r.table_size} * 4);
    }
    for (uint32_t id : svc.table) {
      auto it = owner.find(id);
      if (it == owner.end() || it->second != i) {
        error = "table of service " + std::to_string(i) + " names an unknown backend";
        return false;
      }
    }
    s.services.push_back(std::move(svc));
  }
  out = std::move(s);
  return true;
}

}  // namespace ilb::cp

#include "dataplane/agent/active_config.h"

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

#include "dataplane/config/dp_config.h"

namespace ilb::dp {
namespace {

struct ServiceKey {
  uint32_t vip;
  uint16_t port;
  uint8_t protocol;
  uint8_t pad;
};
static_assert(sizeof(ServiceKey) == 8);

// The service table's hash: CRC32-C, computed inline by find_service() (every new connection
// looks its service up) instead of through rte_hash's function pointer.
uint32_t service_hash(const ServiceKey& key) {
  return rte_hash_crc(&key, sizeof(key), 0);
}

// What of the dataplane's own has `address` ("a SNAT address of the dataplane", "the address of
// port 0"), or "" when nothing does.
std::string owner_of(const OwnAddresses& own, uint32_t address) {
  if (std::find(own.snat.begin(), own.snat.end(), address) != own.snat.end()) {
    return "a SNAT address of the dataplane";
  }
  for (size_t i = 0; i < own.ports.size(); ++i) {
    if (own.ports[i] == address) return "the address of port " + std::to_string(i);
  }
  return "";
}

bool in_bounds(uint64_t offset, uint64_t count, uint64_t size, uint64_t limit) {
  if (count != 0 && size > (UINT64_MAX - offset) / count) return false;
  return offset + count * size <= limit;
}

std::atomic<uint64_t> g_hash_serial{0};

}  // namespace

ActiveConfig::~ActiveConfig() {
  if (service_hash_ != nullptr) rte_hash_free(service_hash_);
  rte_free(services_);
  rte_free(backends_);
  rte_free(tables_);
}

void ActiveConfig::destroy(ActiveConfig* cfg) {
  delete cfg;
}

ActiveConfig* ActiveConfig::build(const uint8_t* slot, uint64_t slot_len, uint64_t generation,
                                  std::string& error, const OwnAddresses& own) {
  auto fail = [&error](std::string why) -> ActiveConfig* {
    error = std::move(why);
    return nullptr;
  };
  if (slot_len < sizeof(abi::SlotHeader)) return fail("slot smaller than its header");
  abi::SlotHeader h;
  std::memcpy(static_cast<void*>(&h), slot, sizeof(h));
  const uint64_t gen = h.generation.load(std::memory_order_relaxed);
  if (gen != generation) {
    return fail("slot holds generation " + std::to_string(gen) + ", expected " +
                std::to_string(generation));
  }
  if (h.payload_end < sizeof(abi::SlotHeader) || h.payload_end > slot_len) {
    return fail("payload_end out of bounds");
  }
  if (abi::fnv1a64(slot + sizeof(abi::SlotHeader), h.payload_end - sizeof(abi::SlotHeader)) !=
      h.checksum) {
    return fail("checksum mismatch");
  }
  if (h.service_count > abi::kMaxServices) return fail("too many services");
  if (h.backend_count > abi::kMaxBackends) return fail("too many backends");
  if (h.table_entries > abi::kMaxTableEntries) return fail("too many table entries");
  if (h.flags != 0) return fail("unknown slot flags");
  if (!in_bounds(h.services_offset, h.service_count, sizeof(abi::ServiceRecord), h.payload_end) ||
      !in_bounds(h.backends_offset, h.backend_count, sizeof(abi::BackendRecord), h.payload_end) ||
      !in_bounds(h.tables_offset, h.table_entries, sizeof(uint32_t), h.payload_end) ||
      h.services_offset < sizeof(abi::SlotHeader) || h.backends_offset < sizeof(abi::SlotHeader) ||
      h.tables_offset < sizeof(abi::SlotHeader)) {
    return fail("section offsets out of bounds");
  }

  auto* cfg = new (std::nothrow) ActiveConfig();
  if (cfg == nullptr) return fail("out of memory");
  cfg->generation_ = generation;
  cfg->service_count_ = h.service_count;
  cfg->services_ = static_cast<ServiceEntry*>(
      rte_zmalloc("ilb_services", sizeof(ServiceEntry) * std::max(h.service_count, 1u), 64));
  cfg->backends_ = static_cast<BackendEntry*>(
      rte_zmalloc("ilb_backends", sizeof(BackendEntry) * abi::kMaxBackends, 64));
  cfg->tables_ = static_cast<uint32_t*>(
      rte_zmalloc("ilb_tables", sizeof(uint32_t) * std::max(h.table_entries, 1u), 64));
  if (cfg->services_ == nullptr || cfg->backends_ == nullptr || cfg->tables_ == nullptr) {
    delete cfg;
    return fail("out of hugepage memory for the config");
  }
  auto reject = [&](std::string why) -> ActiveConfig* {
    delete cfg;
    return fail(std::move(why));
  };

  std::memcpy(cfg->tables_, slot + h.tables_offset, sizeof(uint32_t) * h.table_entries);

  for (uint32_t i = 0; i < h.backend_count; ++i) {
    abi::BackendRecord b;
    std::memcpy(&b, slot + h.backends_offset + i * sizeof(b), sizeof(b));
    const std::string where = "backend record " + std::to_string(i) + ": ";
    if (b.id == 0 || b.id >= abi::kMaxBackends) return reject(where + "id out of range");
    if (cfg->backends_[b.id].admin != 0) return reject(where + "duplicate id");
    if (b.service_index >= h.service_count) return reject(where + "service_index out of range");
    if (b.address == 0 || b.port == 0) return reject(where + "address or port is zero");
    if (const std::string owner = owner_of(own, b.address); !owner.empty()) {
      return reject(where + "address " + format_ipv4(b.address) + " is " + owner);
    }
    if (b.admin < 1 || b.admin > 3) return reject(where + "bad admin state");
    if (b.health > 2) return reject(where + "bad health state");
    if ((b.flags & ~abi::kBackendResetFlows) != 0) return reject(where + "unknown flag bits");
    BackendEntry& e = cfg->backends_[b.id];
    e.address = b.address;
    e.port = b.port;
    e.admin = b.admin;
    e.health = b.health;
    e.service_index = b.service_index;
    e.weight = b.weight;
    e.flags = b.flags;
  }

  rte_hash_parameters params{};
  const std::string hash_name =
      "ilb_svc_" + std::to_string(g_hash_serial.fetch_add(1, std::memory_order_relaxed));
  params.name = hash_name.c_str();
  params.entries = std::max<uint32_t>(64, h.service_count * 2);
  params.key_len = sizeof(ServiceKey);
  params.hash_func = rte_hash_crc;  // service_hash()
  params.socket_id = SOCKET_ID_ANY;
  cfg->service_hash_ = rte_hash_create(&params);
  if (cfg->service_hash_ == nullptr) {
    return reject(std::string("rte_hash_create: ") + rte_strerror(rte_errno));
  }

  for (uint32_t i = 0; i < h.service_count; ++i) {
    abi::ServiceRecord s;
    std::memcpy(&s, slot + h.services_offset + i * sizeof(s), sizeof(s));
    const std::string where = "service record " + std::to_string(i) + ": ";
    if (s.vip == 0 || s.port == 0) return reject(where + "vip or port is zero");
    if (const std::string owner = owner_of(own, s.vip); !owner.empty()) {
      return reject(where + "VIP " + format_ipv4(s.vip) + " is " + owner);
    }
    if (s.protocol != static_cast<uint8_t>(abi::Protocol::kTcp) &&
        s.protocol != static_cast<uint8_t>(abi::Protocol::kUdp)) {
      return reject(where + "bad protocol");
    }
    if (s.scheduler < static_cast<uint8_t>(abi::Scheduler::kMaglev) ||
        s.scheduler > static_cast<uint8_t>(abi::Scheduler::kWlc)) {
      return reject(where + "bad scheduler");
    }
    if (std::memchr(s.name, '\0', sizeof(s.name)) == nullptr) {
      return reject(where + "name not terminated");
    }
    if ((s.flags & ~abi::kKnownServiceFlags) != 0) return reject(where + "unknown flag bits");
    if ((s.flags & abi::kServiceResetUntracked) != 0 &&
        s.protocol != static_cast<uint8_t>(abi::Protocol::kTcp)) {
      return reject(where + "untracked-TCP reset on a UDP service");
    }
    if (s.table_size > abi::kMaxTableSize ||
        !in_bounds(s.table_offset, s.table_size, 1, h.table_entries)) {
      return reject(where + "table out of bounds");
    }
    for (uint32_t j = 0; j < s.table_size; ++j) {
      const uint32_t id = cfg->tables_[s.table_offset + j];
      if (id == 0 || id >= abi::kMaxBackends || cfg->backends_[id].admin == 0 ||
          cfg->backends_[id].service_index != i) {
        return reject(where + "table entry " + std::to_string(j) +
                      " names a backend that is not one of the service's");
      }
    }
    if (s.tcp_syn_timeout_s == 0 || s.tcp_est_timeout_s == 0 || s.tcp_fin_timeout_s == 0 ||
        s.udp_timeout_s == 0) {
      return reject(where + "zero timeout");
    }
    ServiceEntry& e = cfg->services_[i];
    e.vip = s.vip;
    e.port = s.port;
    e.protocol = s.protocol;
    e.scheduler = s.scheduler;
    e.table_size = s.table_size;
    e.table = cfg->tables_ + s.table_offset;
    e.tcp_syn_timeout_s = s.tcp_syn_timeout_s;
    e.tcp_est_timeout_s = s.tcp_est_timeout_s;
    e.tcp_fin_timeout_s = s.tcp_fin_timeout_s;
    e.udp_timeout_s = s.udp_timeout_s;
    e.flags = s.flags;
    std::memcpy(e.name, s.name, sizeof(e.name));

    const ServiceKey key{s.vip, s.port, s.protocol, 0};
    if (rte_hash_lookup(cfg->service_hash_, &key) >= 0) {
      return reject(where + "duplicate vip:port/protocol");
    }
    if (rte_hash_add_key_data(cfg->service_hash_, &key,
                              reinterpret_cast<void*>(static_cast<uintptr_t>(i))) != 0) {
      return reject(where + "service hash full");
    }
    cfg->vips_.push_back(s.vip);
  }
  std::sort(cfg->vips_.begin(), cfg->vips_.end());
  cfg->vips_.erase(std::unique(cfg->vips_.begin(), cfg->vips_.end()), cfg->vips_.end());
  for (uint32_t id = 1; id < abi::kMaxBackends; ++id) {
    const BackendEntry& b = cfg->backends_[id];
    if (b.admin != 0 && cfg->is_vip(b.address)) {
      return reject("backend " + std::to_string(id) + ": address " + format_ipv4(b.address) +
                    " is a VIP");
    }
  }
  for (uint32_t id = 1; id < abi::kMaxBackends; ++id) {
    const BackendEntry& b = cfg->backends_[id];
    if (b.admin != 0 &&
        (cfg->services_[b.service_index].flags & abi::kServiceResetUntracked) != 0) {
      cfg->reset_backends_.push_back(uint64_t{rte_be_to_cpu_32(b.address)} << 16 | b.port);
    }
  }
  std::sort(cfg->reset_backends_.begin(), cfg->reset_backends_.end());
  return cfg;
}

int32_t ActiveConfig::find_service(uint32_t vip, uint16_t port, uint8_t protocol) const {
  const ServiceKey key{vip, port, protocol, 0};
  void* data = nullptr;
  if (rte_hash_lookup_with_hash_data(service_hash_, &key, service_hash(key), &data) < 0) return -1;
  return static_cast<int32_t>(reinterpret_cast<uintptr_t>(data));
}

bool ActiveConfig::resets_untracked_from(uint32_t address, uint16_t port_be) const {
  const uint64_t key = uint64_t{rte_be_to_cpu_32(address)} << 16 | rte_be_to_cpu_16(port_be);
  return std::binary_search(reset_backends_.begin(), reset_backends_.end(), key);
}

bool ActiveConfig::is_vip(uint32_t ip) const {
  return std::binary_search(vips_.begin(), vips_.end(), ip);
}

}  // namespace ilb::dp

// The dataplane's immutable view of one applied snapshot. Built by the config agent on the main
// lcore from an untrusted slot copy (every count, offset and table entry is checked), published to
// workers through an atomic pointer and freed only after an RCU grace period. Workers never see a
// half-built or half-freed config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/abi/ilb_abi.h"

struct rte_hash;

namespace ilb::dp {

struct ServiceEntry {
  uint32_t vip = 0;   // network order
  uint16_t port = 0;  // host order
  uint8_t protocol = 0;
  uint8_t scheduler = 0;
  uint32_t table_size = 0;
  const uint32_t* table = nullptr;  // backend ids, table_size entries
  uint32_t tcp_syn_timeout_s = 0;
  uint32_t tcp_est_timeout_s = 0;
  uint32_t tcp_fin_timeout_s = 0;
  uint32_t udp_timeout_s = 0;
  uint32_t flags = 0;  // abi::ServiceFlag bits
  char name[abi::kNameLen]{};
};

struct BackendEntry {
  uint32_t address = 0;  // network order
  uint16_t port = 0;     // host order
  uint8_t admin = 0;     // abi::AdminState; 0 = no backend with this id
  uint8_t health = 0;
  uint32_t service_index = 0;
  uint32_t weight = 0;
  uint8_t flags = 0;  // abi::BackendFlag bits
};

// The addresses the dataplane itself owns, from its own configuration (network order). A
// snapshot may name none of them as a VIP or a backend: replies to a VIP that is a SNAT address
// would be taken for a connection's replies, and the dataplane drops packets that claim to come
// from its own addresses. The control plane refuses such a file, but the dataplane may run on
// another file (or another version of it), so it checks again.
struct OwnAddresses {
  std::vector<uint32_t> snat;   // [dataplane] snat_addresses
  std::vector<uint32_t> ports;  // the ports' addresses
};

class ActiveConfig {
 public:
  // Validates the snapshot copied out of a ctl slot (`slot` holds `slot_len` bytes starting with
  // the SlotHeader) and builds the config. Returns nullptr with `error` set on any invalid field,
  // including a VIP or backend at one of `own` or a backend at one of the snapshot's VIPs.
  static ActiveConfig* build(const uint8_t* slot, uint64_t slot_len, uint64_t generation,
                             std::string& error, const OwnAddresses& own = {});
  static void destroy(ActiveConfig* cfg);

  uint64_t generation() const { return generation_; }
  uint32_t service_count() const { return service_count_; }
  const ServiceEntry& service(uint32_t index) const { return services_[index]; }

  // Returns the index of the service for (vip, port, protocol), or -1. vip network order,
  // port host order. Safe to call concurrently from workers.
  int32_t find_service(uint32_t vip, uint16_t port, uint8_t protocol) const;
  // True if `ip` (network order) is a VIP of this snapshot.
  bool is_vip(uint32_t ip) const;
  // True if `address`:`port` (network order both) is a backend of a service that answers
  // untracked TCP with a reset (abi::kServiceResetUntracked).
  bool resets_untracked_from(uint32_t address, uint16_t port_be) const;

  // Backend by id; admin == 0 when the id is not in the snapshot.
  const BackendEntry& backend(uint32_t id) const {
    return backends_[id < abi::kMaxBackends ? id : 0];
  }
  const std::vector<uint32_t>& vips() const { return vips_; }

 private:
  ActiveConfig() = default;
  ~ActiveConfig();

  uint64_t generation_ = 0;
  uint32_t service_count_ = 0;
  ServiceEntry* services_ = nullptr;      // rte_malloc'd, service_count_ entries
  BackendEntry* backends_ = nullptr;      // rte_malloc'd, kMaxBackends entries indexed by id
  uint32_t* tables_ = nullptr;            // rte_malloc'd, all services' tables
  rte_hash* service_hash_ = nullptr;      // (vip, port, proto) -> service index
  std::vector<uint32_t> vips_;            // distinct VIPs, sorted
  std::vector<uint64_t> reset_backends_;  // address << 16 | port (host order), sorted
};

}  // namespace ilb::dp

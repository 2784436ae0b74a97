#include "dataplane/agent/neighbours.h"

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>

#include <cstring>

namespace ilb::dp {
namespace {

constexpr uint64_t kValid = 1ULL << 63;

uint64_t pack(const uint8_t mac[6]) {
  uint64_t v = 0;
  std::memcpy(&v, mac, 6);
  return v | kValid;
}

}  // namespace

NeighbourTable::~NeighbourTable() {
  if (hash_ != nullptr) rte_hash_free(hash_);
}

bool NeighbourTable::init(const std::string& name, uint32_t entries, int socket,
                          std::string& error) {
  rte_hash_parameters params{};
  params.name = name.c_str();
  params.entries = entries;
  params.key_len = sizeof(uint32_t);
  params.hash_func = rte_hash_crc;
  params.socket_id = socket;
  params.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF;
  hash_ = rte_hash_create(&params);
  if (hash_ == nullptr) {
    error = "rte_hash_create " + name + ": " + rte_strerror(rte_errno);
    return false;
  }
  return true;
}

bool NeighbourTable::lookup(uint32_t ip, uint8_t mac[6]) const {
  // The hash computed inline, as the table's hash_func would (a worker looks up the next hop of
  // every new connection).
  void* data = nullptr;
  if (rte_hash_lookup_with_hash_data(hash_, &ip, rte_hash_crc_4byte(ip, 0), &data) < 0) {
    return false;
  }
  const auto v = reinterpret_cast<uintptr_t>(data);
  if ((v & kValid) == 0) return false;
  std::memcpy(mac, &v, 6);
  return true;
}

bool NeighbourTable::update(uint32_t ip, const uint8_t mac[6]) {
  return rte_hash_add_key_data(hash_, &ip,
                               reinterpret_cast<void*>(static_cast<uintptr_t>(pack(mac)))) == 0;
}

uint32_t NeighbourTable::count() const {
  return static_cast<uint32_t>(rte_hash_count(hash_));
}

}  // namespace ilb::dp

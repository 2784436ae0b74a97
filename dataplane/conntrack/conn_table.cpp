#include "dataplane/conntrack/conn_table.h"

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <cstring>

namespace ilb::dp {

namespace {
constexpr size_t kPorts = 65536;
}

ConnTable::~ConnTable() {
  if (hash_ != nullptr) rte_hash_free(hash_);
  rte_free(conns_);
  rte_free(free_);
  rte_free(port_map_);
}

bool ConnTable::init(const std::string& name, uint32_t capacity,
                     const std::vector<uint32_t>& snat_addresses, int socket, std::string& error) {
  if (snat_addresses.empty() || snat_addresses.size() > 255) {
    error = "a connection table needs 1 to 255 SNAT addresses";
    return false;
  }
  snat_addresses_ = snat_addresses;
  std::sort(snat_addresses_.begin(), snat_addresses_.end());
  port_map_ = static_cast<uint32_t*>(rte_zmalloc_socket(
      "ilb_conn_ports", sizeof(uint32_t) * kPorts * snat_addresses_.size(), 64, socket));
  if (port_map_ == nullptr) {
    error = "out of memory for the SNAT port map of " + name;
    return false;
  }
  rte_hash_parameters params{};
  params.name = name.c_str();
  // One key per connection (the client side). No extendable-bucket table: it would cost as much
  // memory again as the buckets themselves (13 B per connection at 10 M), and DPDK's cuckoo
  // displacement fills the buckets to 100 % of `capacity` whenever that is at most 95 % of the
  // power of two above it (which is where DPDK rounds the bucket count), and to 98 % of it in the
  // worst case, measured with random tuples. A key that finds both its buckets full is refused as
  // a full table is: counted, and established flows are left alone.
  params.entries = capacity;
  params.key_len = sizeof(FlowKey);
  params.hash_func = rte_hash_crc;  // what hash() computes: every call here passes its value
  params.socket_id = socket;
  hash_ = rte_hash_create(&params);
  if (hash_ == nullptr) {
    error = "rte_hash_create " + name + ": " + rte_strerror(rte_errno);
    return false;
  }
  conns_ = static_cast<Conn*>(rte_zmalloc_socket("ilb_conns", sizeof(Conn) * capacity, 64, socket));
  free_ = static_cast<uint32_t*>(
      rte_malloc_socket("ilb_conn_free", sizeof(uint32_t) * capacity, 64, socket));
  if (conns_ == nullptr || free_ == nullptr) {
    error = "out of memory for " + std::to_string(capacity) + " connections";
    return false;
  }
  // Hand out low indices first: the stack's top is index 0.
  for (uint32_t i = 0; i < capacity; ++i) free_[i] = capacity - 1 - i;
  free_top_ = capacity;
  capacity_ = capacity;
  return true;
}

uint32_t* ConnTable::port_slot(uint32_t snat_ip, uint16_t snat_port_be) const {
  // Usually a handful of addresses, but a table of 10 M connections needs 160: binary search,
  // without branches (conditional moves): the replies of a burst come to the addresses in random
  // order, and a branching search would mispredict about every other step for each of them.
  // `base` ends at the last address <= snat_ip (or the first address, when all are greater).
  if (snat_addresses_.empty()) return nullptr;
  const uint32_t* base = snat_addresses_.data();
  for (size_t n = snat_addresses_.size(); n > 1;) {
    const size_t half = n / 2;
    base = base[half] <= snat_ip ? base + half : base;
    n -= half;
  }
  if (*base != snat_ip) return nullptr;
  const auto row = static_cast<size_t>(base - snat_addresses_.data());
  return port_map_ + row * kPorts + rte_be_to_cpu_16(snat_port_be);
}

bool ConnTable::reply_in_slot(uint32_t slot, const FlowKey& key, uint32_t& idx) const {
  if (slot == 0) return false;
  const FlowKey expected = backend_key(conns_[slot - 1]);
  if (std::memcmp(&expected, &key, sizeof(key)) != 0) return false;
  idx = slot - 1;
  return true;
}

bool ConnTable::lookup_reply(const FlowKey& key, uint32_t& idx) const {
  const uint32_t* slot = port_slot(key.dst_ip, key.dst_port);
  return slot != nullptr && reply_in_slot(*slot, key, idx);
}

uint32_t ConnTable::hash(const FlowKey& key) {
  return rte_hash_crc(&key, sizeof(key), 0);
}

uint64_t ConnTable::lookup_bulk(const FlowKey* const* keys, uint32_t n, uint32_t* idx, Dir* dir,
                                uint32_t* hashes) const {
  // Replies are found through the port map, the rest in one bulk hash lookup. With millions of
  // connections every step is a cache miss, so the steps are staged across the burst: prefetch
  // the replies' port-map entries, do the hash lookup meanwhile, prefetch the records they name,
  // and only then compare tuples.
  const FlowKey* client_keys[RTE_HASH_LOOKUP_BULK_MAX];
  hash_sig_t client_hashes[RTE_HASH_LOOKUP_BULK_MAX];
  uint8_t client_pos[RTE_HASH_LOOKUP_BULK_MAX];
  const uint32_t* slots[RTE_HASH_LOOKUP_BULK_MAX];
  uint8_t reply_pos[RTE_HASH_LOOKUP_BULK_MAX];
  uint32_t n_client = 0;
  uint32_t n_reply = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (const uint32_t* slot = port_slot(keys[i]->dst_ip, keys[i]->dst_port)) {
      rte_prefetch0(slot);
      slots[n_reply] = slot;
      reply_pos[n_reply++] = static_cast<uint8_t>(i);
      dir[i] = Dir::kFromBackend;
    } else {
      hashes[i] = hash(*keys[i]);
      client_pos[n_client] = static_cast<uint8_t>(i);
      client_hashes[n_client] = hashes[i];
      client_keys[n_client++] = keys[i];
      dir[i] = Dir::kFromClient;
    }
  }
  uint64_t hits = 0;
  if (n_client != 0) {
    void* data[RTE_HASH_LOOKUP_BULK_MAX];
    uint64_t client_hits = 0;
    rte_hash_lookup_with_hash_bulk_data(hash_, reinterpret_cast<const void**>(client_keys),
                                        client_hashes, n_client, &client_hits, data);
    for (uint64_t m = client_hits; m != 0; m &= m - 1) {
      const uint32_t k = static_cast<uint32_t>(__builtin_ctzll(m));
      const uint32_t i = client_pos[k];
      idx[i] = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(data[k]));
      rte_prefetch0(&conns_[idx[i]]);
      hits |= uint64_t{1} << i;
    }
  }
  for (uint32_t k = 0; k < n_reply; ++k) {
    if (*slots[k] != 0) rte_prefetch0(&conns_[*slots[k] - 1]);
  }
  for (uint32_t k = 0; k < n_reply; ++k) {
    const uint32_t i = reply_pos[k];
    if (reply_in_slot(*slots[k], *keys[i], idx[i])) hits |= uint64_t{1} << i;
  }
  return hits;
}

bool ConnTable::lookup(const FlowKey& key, uint32_t& idx, Dir& dir) const {
  if (port_slot(key.dst_ip, key.dst_port) != nullptr) {
    if (!lookup_reply(key, idx)) return false;
    dir = Dir::kFromBackend;
    return true;
  }
  void* data = nullptr;
  if (rte_hash_lookup_with_hash_data(hash_, &key, hash(key), &data) < 0) return false;
  idx = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(data));
  dir = Dir::kFromClient;
  return true;
}

void ConnTable::prefetch_free(uint32_t n) const {
  n = std::min({n, free_top_, uint32_t{32}});
  for (uint32_t k = 1; k <= n; ++k) rte_prefetch0_write(&conns_[free_[free_top_ - k]]);
}

int64_t ConnTable::insert(const FlowKey& from_client, uint32_t client_hash,
                          const FlowKey& from_backend, const Conn& conn) {
  if (free_top_ == 0) return -1;
  uint32_t* slot = port_slot(from_backend.dst_ip, from_backend.dst_port);
  if (slot == nullptr || *slot != 0) return -1;
  const uint32_t idx = free_[free_top_ - 1];
  if (rte_hash_add_key_with_hash_data(hash_, &from_client, client_hash,
                                      reinterpret_cast<void*>(uintptr_t{idx})) != 0) {
    return -1;
  }
  *slot = idx + 1;
  --free_top_;
  conns_[idx] = conn;
  ++used_;
  return idx;
}

void ConnTable::remove(uint32_t idx) {
  Conn& c = conns_[idx];
  if (c.deadline_tsc == 0) return;
  const FlowKey ck = client_key(c);
  rte_hash_del_key_with_hash(hash_, &ck, hash(ck));
  if (uint32_t* slot = port_slot(c.snat_ip, c.snat_port); slot != nullptr && *slot == idx + 1) {
    *slot = 0;
  }
  c.deadline_tsc = 0;
  free_[free_top_++] = idx;
  --used_;
  ++removals_;
}

}  // namespace ilb::dp

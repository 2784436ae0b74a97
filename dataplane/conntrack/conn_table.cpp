#include "dataplane/conntrack/conn_table.h"

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

namespace ilb::dp {

FlowKey client_key(const Conn& c) {
  FlowKey k;
  k.src_ip = c.client_ip;
  k.dst_ip = c.vip;
  k.src_port = c.client_port;
  k.dst_port = c.vport;
  k.proto = c.proto;
  return k;
}

FlowKey backend_key(const Conn& c) {
  FlowKey k;
  k.src_ip = c.backend_ip;
  k.dst_ip = c.snat_ip;
  k.src_port = c.backend_port;
  k.dst_port = c.snat_port;
  k.proto = c.proto;
  return k;
}

ConnTable::~ConnTable() {
  if (hash_ != nullptr) rte_hash_free(hash_);
  rte_free(conns_);
  rte_free(free_);
}

bool ConnTable::init(const std::string& name, uint32_t capacity, int socket, std::string& error) {
  rte_hash_parameters params{};
  params.name = name.c_str();
  // Two keys per connection. The extendable-bucket table guarantees every key fits.
  params.entries = capacity * 2;
  params.key_len = sizeof(FlowKey);
  params.hash_func = rte_hash_crc;
  params.socket_id = socket;
  params.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
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

uint64_t ConnTable::lookup_bulk(const FlowKey* const* keys, uint32_t n, uint32_t* idx,
                                Dir* dir) const {
  void* data[RTE_HASH_LOOKUP_BULK_MAX];
  uint64_t hits = 0;
  if (n == 0) return 0;
  rte_hash_lookup_bulk_data(
      hash_, reinterpret_cast<const void**>(const_cast<const FlowKey**>(keys)), n, &hits, data);
  for (uint64_t m = hits; m != 0; m &= m - 1) {
    const uint32_t i = static_cast<uint32_t>(__builtin_ctzll(m));
    const auto v = reinterpret_cast<uintptr_t>(data[i]);
    idx[i] = static_cast<uint32_t>(v >> 1);
    dir[i] = static_cast<Dir>(v & 1);
  }
  return hits;
}

bool ConnTable::lookup(const FlowKey& key, uint32_t& idx, Dir& dir) const {
  void* data = nullptr;
  if (rte_hash_lookup_data(hash_, &key, &data) < 0) return false;
  const auto v = reinterpret_cast<uintptr_t>(data);
  idx = static_cast<uint32_t>(v >> 1);
  dir = static_cast<Dir>(v & 1);
  return true;
}

int64_t ConnTable::insert(const FlowKey& from_client, const FlowKey& from_backend,
                          const Conn& conn) {
  if (free_top_ == 0) return -1;
  const uint32_t idx = free_[free_top_ - 1];
  const auto v = static_cast<uintptr_t>(idx) << 1;
  if (rte_hash_add_key_data(hash_, &from_client, reinterpret_cast<void*>(v)) != 0) return -1;
  if (rte_hash_add_key_data(hash_, &from_backend, reinterpret_cast<void*>(v | 1)) != 0) {
    rte_hash_del_key(hash_, &from_client);
    return -1;
  }
  --free_top_;
  conns_[idx] = conn;
  ++used_;
  return idx;
}

void ConnTable::remove(uint32_t idx) {
  Conn& c = conns_[idx];
  if (c.deadline_tsc == 0) return;
  const FlowKey ck = client_key(c);
  const FlowKey bk = backend_key(c);
  rte_hash_del_key(hash_, &ck);
  rte_hash_del_key(hash_, &bk);
  c.deadline_tsc = 0;
  free_[free_top_++] = idx;
  --used_;
}

}  // namespace ilb::dp

// Per-worker connection tracking. One table per worker lcore, preallocated at start, used by that
// lcore only: no locks. Each connection is one 64-byte Conn record. The client side's 5-tuple is
// the key of an rte_hash (one bulk lookup per burst). The backend side needs no hash at all: a
// SNAT address:port belongs to at most one connection at a time (SnatPorts hands each out once),
// so a reply finds its connection by indexing a per-SNAT-address array of 65,536 record numbers
// with its destination port, then checking the whole tuple. One key per connection instead of
// two halves the hash memory and makes reply lookups an array load. The hash has no extension
// buckets, so all of it is about 124 B per connection of capacity at 10 M (ilb-bench-pipeline
// itemises it); cuckoo displacement still places every key while the capacity is at most 95 % of
// the power of two DPDK rounds the buckets to, and 98 % of the keys beyond that.
// Records carry everything needed to rewrite packets, so flows survive any config swap. Expiry
// walks the record array with a bounded budget per call, whatever the table size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/config/dp_config.h"

struct rte_hash;

namespace ilb::dp {

// A 5-tuple exactly as it appears in a packet (network order). Padding is always zero.
struct FlowKey {
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint8_t proto = 0;
  uint8_t pad[3]{};
};
static_assert(sizeof(FlowKey) == 16);

enum class TcpState : uint8_t {
  kSynSent = 1,  // client SYN forwarded
  kSynAck = 2,   // backend answered SYN-ACK
  kEstablished = 3,
  kClosing = 4,   // FIN seen from one side
  kTimeWait = 5,  // FIN seen from both sides, or RST
  kUdp = 6,
};

enum class Dir : uint8_t { kFromClient = 0, kFromBackend = 1 };

struct Conn {
  uint32_t client_ip;  // network order
  uint32_t vip;
  uint32_t snat_ip;
  uint32_t backend_ip;
  uint16_t client_port;  // network order
  uint16_t vport;
  uint16_t snat_port;
  uint16_t backend_port;
  uint32_t backend_id;
  uint8_t proto;
  TcpState state;
  // Bit 0: FIN from client, bit 1: FIN from backend; bits 2-4: the port (index into the
  // dataplane's ports) towards the client, bits 5-7: towards the backend (see sides()).
  uint8_t fin_and_sides;
  uint8_t snat_index;      // which SNAT address, for returning the port
  uint64_t deadline_tsc;   // 0 = record free
  uint8_t client_mac[6];   // next hop towards the client: the source MAC of its first packet
  uint8_t backend_mac[6];  // next hop towards the backend
  uint32_t syn_timeout_s;
  uint32_t fin_timeout_s;
  uint32_t est_timeout_s;  // established TCP, or UDP idle
};
static_assert(sizeof(Conn) == 64);

// The ports a connection's packets leave through, towards its client and towards its backend
// (both 0 on a one-armed dataplane), packed into Conn::fin_and_sides.
inline constexpr uint32_t kFinBits = 3;
static_assert(kMaxDataplanePorts <= 8, "a side's port index has three bits");
inline uint8_t sides(uint32_t client_port, uint32_t backend_port) {
  return static_cast<uint8_t>((client_port & 7) << 2 | (backend_port & 7) << 5);
}
inline uint32_t client_side(const Conn& c) {
  return (c.fin_and_sides >> 2) & 7;
}
inline uint32_t backend_side(const Conn& c) {
  return c.fin_and_sides >> 5;
}

class ConnTable {
 public:
  ConnTable() = default;
  ~ConnTable();
  ConnTable(const ConnTable&) = delete;
  ConnTable& operator=(const ConnTable&) = delete;

  // Preallocates `capacity` connections on `socket`, for connections whose SNAT address is one
  // of `snat_addresses` (network order, at most 255). `name` must be unique in the process.
  bool init(const std::string& name, uint32_t capacity, const std::vector<uint32_t>& snat_addresses,
            int socket, std::string& error);

  uint32_t capacity() const { return capacity_; }
  uint32_t size() const { return used_; }
  // How many connections remove() has taken out so far. A lookup's result is stale once this
  // has changed: the record may be free, or hold a newer connection.
  uint64_t removals() const { return removals_; }

  // Looks up `n` (<= 64) keys. For each hit i, bit i of the returned mask is set and `idx[i]`
  // names the connection. For every key, hit or not, `dir[i]` says which side it was looked up
  // as: kFromBackend for a key to one of the table's SNAT addresses (found through the port map),
  // else kFromClient, and then `hashes[i]` is hash(*keys[i]), so that a miss that opens a
  // connection is not hashed twice.
  uint64_t lookup_bulk(const FlowKey* const* keys, uint32_t n, uint32_t* idx, Dir* dir,
                       uint32_t* hashes) const;
  bool lookup(const FlowKey& key, uint32_t& idx, Dir& dir) const;
  // lookup() for a backend-side key only: no hash lookup, just the port map and a compare.
  bool lookup_reply(const FlowKey& key, uint32_t& idx) const;

  // Prefetches, for writing, the records the next `n` insert() calls will take (at most 32).
  void prefetch_free(uint32_t n) const;

  // Adds a connection under both keys. Returns its index, or -1 when the table is full (or the
  // backend key's SNAT address:port is taken or not one of the table's addresses).
  // `client_hash` must be hash(from_client).
  int64_t insert(const FlowKey& from_client, uint32_t client_hash, const FlowKey& from_backend,
                 const Conn& conn);
  int64_t insert(const FlowKey& from_client, const FlowKey& from_backend, const Conn& conn) {
    return insert(from_client, hash(from_client), from_backend, conn);
  }

  // The hash of a client-side key, as the table's rte_hash computes it (CRC32-C).
  static uint32_t hash(const FlowKey& key);

  Conn& at(uint32_t idx) { return conns_[idx]; }
  const Conn& at(uint32_t idx) const { return conns_[idx]; }

  // Examines up to `budget` records after the last one examined; every record whose deadline is
  // before `now_tsc` is passed to `on_expire(const Conn&)` and then removed, every other record
  // in use to `on_live(const Conn&)`.
  template <typename Expired, typename Live>
  void sweep(uint64_t now_tsc, uint32_t budget, Expired&& on_expire, Live&& on_live) {
    for (uint32_t i = 0; i < budget && capacity_ != 0; ++i) {
      const Conn& c = conns_[cursor_];
      const uint32_t idx = cursor_;
      cursor_ = cursor_ + 1 == capacity_ ? 0 : cursor_ + 1;
      if (c.deadline_tsc == 0) continue;
      if (c.deadline_tsc < now_tsc) {
        on_expire(c);
        remove(idx);
      } else {
        on_live(c);
      }
    }
  }

  // sweep() for expiry alone.
  template <typename F>
  void expire(uint64_t now_tsc, uint32_t budget, F&& on_expire) {
    sweep(now_tsc, budget, on_expire, [](const Conn&) {});
  }

  // Removes the connection at `idx` (both keys) and returns its record to the free list.
  void remove(uint32_t idx);

 private:
  // Where the connection whose backend key is `key` would be in port_map_, or nullptr when the
  // key's destination is not one of our SNAT addresses.
  uint32_t* port_slot(uint32_t snat_ip, uint16_t snat_port_be) const;
  // Whether the port-map entry `slot` (record + 1, 0 = none) holds the connection whose reply
  // tuple is `key`; sets `idx` to it if so.
  bool reply_in_slot(uint32_t slot, const FlowKey& key, uint32_t& idx) const;

  rte_hash* hash_ = nullptr;
  std::vector<uint32_t> snat_addresses_;  // sorted; position = row of port_map_
  uint32_t* port_map_ = nullptr;          // [address row][port, host order]: record + 1, 0 = none
  Conn* conns_ = nullptr;
  uint32_t* free_ = nullptr;  // stack of free record indices
  uint32_t free_top_ = 0;
  uint32_t capacity_ = 0;
  uint32_t used_ = 0;
  uint32_t cursor_ = 0;
  uint64_t removals_ = 0;
};

// The key of a connection's client side (client -> VIP) and backend side (backend -> SNAT), as
// the packets of each direction carry it. Inline: the worker builds one per packet.
inline FlowKey client_key(const Conn& c) {
  FlowKey k;
  k.src_ip = c.client_ip;
  k.dst_ip = c.vip;
  k.src_port = c.client_port;
  k.dst_port = c.vport;
  k.proto = c.proto;
  return k;
}

inline FlowKey backend_key(const Conn& c) {
  FlowKey k;
  k.src_ip = c.backend_ip;
  k.dst_ip = c.snat_ip;
  k.src_port = c.backend_port;
  k.dst_port = c.snat_port;
  k.proto = c.proto;
  return k;
}

}  // namespace ilb::dp

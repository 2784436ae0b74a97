// IPv4 neighbour (ARP) table. The main lcore is its only writer; workers read it lock-free
// (rte_hash with RW_CONCURRENCY_LF: a lookup never waits for the writer). The MAC address is
// packed into the 64-bit data word, so updating an entry is one atomic store and a reader never
// sees half an address. Entries are never deleted, only refreshed: the set of next hops a
// balancer talks to is small and stable (backends and a gateway).
#pragma once

#include <cstdint>
#include <string>

struct rte_hash;

namespace ilb::dp {

class NeighbourTable {
 public:
  NeighbourTable() = default;
  ~NeighbourTable();
  NeighbourTable(const NeighbourTable&) = delete;
  NeighbourTable& operator=(const NeighbourTable&) = delete;

  bool init(const std::string& name, uint32_t entries, int socket, std::string& error);

  // Any lcore. `ip` network order. False when unknown.
  bool lookup(uint32_t ip, uint8_t mac[6]) const;

  // Main lcore only. False when the table is full.
  bool update(uint32_t ip, const uint8_t mac[6]);

  uint32_t count() const;

 private:
  rte_hash* hash_ = nullptr;
};

}  // namespace ilb::dp

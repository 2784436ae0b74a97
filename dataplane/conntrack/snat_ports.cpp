#include "dataplane/conntrack/snat_ports.h"

#include <rte_byteorder.h>
#include <rte_malloc.h>

namespace ilb::dp {

SnatPorts::~SnatPorts() {
  for (Pool& p : pools_) rte_free(p.ring);
}

bool SnatPorts::init(const std::vector<uint32_t>& addresses, uint16_t port_min, uint16_t port_max,
                     uint32_t worker, uint32_t workers, int socket, std::string& error) {
  if (addresses.empty() || addresses.size() > 255 || port_min > port_max || workers == 0 ||
      worker >= workers) {
    error = "bad SNAT port configuration";
    return false;
  }
  for (uint32_t a : addresses) {
    Pool pool;
    pool.address = a;
    const uint32_t range = static_cast<uint32_t>(port_max) - port_min + 1;
    pool.ring = static_cast<uint16_t*>(
        rte_malloc_socket("ilb_snat_ports", sizeof(uint16_t) * (range / workers + 1), 64, socket));
    if (pool.ring == nullptr) {
      error = "out of memory for SNAT ports";
      return false;
    }
    for (uint32_t p = port_min + worker; p <= port_max; p += workers) {
      pool.ring[pool.count++] = rte_cpu_to_be_16(static_cast<uint16_t>(p));
    }
    pool.size = range / workers + 1;
    pools_.push_back(pool);
  }
  return true;
}

bool SnatPorts::alloc(uint32_t& address, uint16_t& port_be, uint8_t& index) {
  for (size_t tries = 0; tries < pools_.size(); ++tries) {
    Pool& p = pools_[next_pool_];
    const uint32_t i = next_pool_;
    next_pool_ = next_pool_ + 1 == pools_.size() ? 0 : next_pool_ + 1;
    if (p.count == 0) continue;
    port_be = p.ring[p.head];
    p.head = p.head + 1 == p.size ? 0 : p.head + 1;
    --p.count;
    address = p.address;
    index = static_cast<uint8_t>(i);
    return true;
  }
  return false;
}

void SnatPorts::release(uint8_t index, uint16_t port_be) {
  if (index >= pools_.size()) return;
  Pool& p = pools_[index];
  if (p.count == p.size) return;
  uint32_t tail = p.head + p.count;
  if (tail >= p.size) tail -= p.size;
  p.ring[tail] = port_be;
  ++p.count;
}

uint64_t SnatPorts::available() const {
  uint64_t n = 0;
  for (const Pool& p : pools_) n += p.count;
  return n;
}

}  // namespace ilb::dp

#include "dataplane/conntrack/snat_ports.h"

#include <rte_byteorder.h>
#include <rte_malloc.h>

#include <algorithm>

#include "dataplane/port/rss.h"

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

SnatPorts::Pool* SnatPorts::next_pool(uint8_t& index) {
  for (size_t tries = 0; tries < pools_.size(); ++tries) {
    const uint32_t i = next_pool_;
    next_pool_ = next_pool_ + 1 == pools_.size() ? 0 : next_pool_ + 1;
    if (pools_[i].count == 0) continue;
    index = static_cast<uint8_t>(i);
    return &pools_[i];
  }
  return nullptr;
}

bool SnatPorts::alloc(uint32_t& address, uint16_t& port_be, uint8_t& index) {
  Pool* p = next_pool(index);
  if (p == nullptr) return false;
  address = p->address;
  port_be = p->pop();
  return true;
}

SnatSteer SnatPorts::alloc_for_reply(uint32_t backend_ip, uint16_t backend_port, const Rss* rss,
                                     uint16_t queue, uint32_t& address, uint16_t& port_be,
                                     uint8_t& index, uint32_t max_candidates) {
  Pool* p = next_pool(index);
  if (p == nullptr) return SnatSteer::kNoPort;
  address = p->address;
  if (rss != nullptr && rss->reaches(queue)) {
    const uint32_t base = rss->reply_base(backend_ip, backend_port, p->address);
    const uint32_t n = std::min(max_candidates, p->count);
    for (uint32_t k = 0; k < n; ++k) {
      if (rss->reply_queue(base, p->ring[p->at(k)]) != queue) continue;
      // The k ports passed over go to the back in their order; pop then push keeps the count, so
      // a full ring cannot overflow.
      for (uint32_t s = 0; s < k; ++s) p->push(p->pop());
      port_be = p->pop();
      candidates_ += k + 1;
      return SnatSteer::kOnQueue;
    }
    candidates_ += n;
  }
  port_be = p->pop();
  return SnatSteer::kAnyQueue;
}

void SnatPorts::release(uint8_t index, uint16_t port_be) {
  if (index >= pools_.size()) return;
  Pool& p = pools_[index];
  if (p.count == p.size) return;
  p.push(port_be);
}

uint64_t SnatPorts::available() const {
  uint64_t n = 0;
  for (const Pool& p : pools_) n += p.count;
  return n;
}

}  // namespace ilb::dp

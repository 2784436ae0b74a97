// Local SNAT ports of one worker. Each worker owns a disjoint share of every SNAT address's port
// range (ports p with (p - min) % workers == worker), so two workers never hand out the same
// address:port and no coordination is needed. Free ports are kept in FIFO order: a port that was
// just released is reused as late as possible, which keeps clear of the backend's TIME_WAIT.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ilb::dp {

class SnatPorts {
 public:
  SnatPorts() = default;
  ~SnatPorts();
  SnatPorts(const SnatPorts&) = delete;
  SnatPorts& operator=(const SnatPorts&) = delete;

  // `addresses` in network order (at most 255). Ports [port_min, port_max] host order.
  bool init(const std::vector<uint32_t>& addresses, uint16_t port_min, uint16_t port_max,
            uint32_t worker, uint32_t workers, int socket, std::string& error);

  // Takes a free address:port (port returned in network order). False when all are in use.
  bool alloc(uint32_t& address, uint16_t& port_be, uint8_t& index);
  // Returns a port taken with alloc().
  void release(uint8_t index, uint16_t port_be);

  // Total free ports over all addresses.
  uint64_t available() const;

 private:
  struct Pool {
    uint32_t address = 0;
    uint16_t* ring = nullptr;  // capacity `size` ports, FIFO
    uint32_t size = 0;
    uint32_t head = 0;   // next to hand out
    uint32_t count = 0;  // free ports in the ring
  };
  std::vector<Pool> pools_;
  uint32_t next_pool_ = 0;
};

}  // namespace ilb::dp

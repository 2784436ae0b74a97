// Local SNAT ports of one worker. Each worker owns a disjoint share of every SNAT address's port
// range (ports p with (p - min) % workers == worker), so two workers never hand out the same
// address:port and no coordination is needed. Free ports are kept in FIFO order: a port that was
// just released is reused as late as possible, which keeps clear of the backend's TIME_WAIT.
//
// When the port's RSS is known, alloc_for_reply() looks a bounded number of ports into the FIFO
// for one whose reply tuple the NIC hashes to the worker's own RX queue, so replies need no
// hand-over between workers. The ports it passes over go to the back in their order, as if just
// released: each is reused later, never earlier, than plain FIFO order would reuse it. The ports
// behind them move up by as many places; no choice that only takes fitting ports can avoid that.
// A fitting port is found after about `queues` candidates on average; when none of the bounded
// candidates fits, the oldest free port is taken as alloc() would. For one backend and SNAT
// address only 1/queues of the share fits (backends whose reply hashes agree in the RETA bits
// share those ports), so about 65536 / (workers * queues) open connections per backend and SNAT
// address can be steered per worker; more fall back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ilb::dp {

class Rss;

// Where the replies to a port taken with alloc_for_reply() arrive.
enum class SnatSteer : uint8_t {
  kNoPort,    // every port is in use; nothing was taken
  kOnQueue,   // on the wanted RX queue
  kAnyQueue,  // on whatever queue the NIC picks: no RSS view, or no candidate fitted
};

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
  // How many free ports alloc_for_reply() examines before it gives up on steering. With q queues
  // spread evenly over the RETA, no fitting port is found with probability (1 - 1/q)^64:
  // 2e-4 for 8 queues, 1.6% for 16.
  static constexpr uint32_t kSteerCandidates = 64;

  // Like alloc(), for a connection to backend_ip:backend_port (network order), preferring a port
  // whose reply the NIC delivers to RX `queue` under `rss`. `rss` may be null when the port's RSS
  // is unknown, or when it hashes this protocol on addresses only (then no port choice helps).
  // Costs one hash of the reply tuple plus, per candidate, a table load, an XOR and a RETA load;
  // the ports passed over are moved to the back of the FIFO.
  SnatSteer alloc_for_reply(uint32_t backend_ip, uint16_t backend_port, const Rss* rss,
                            uint16_t queue, uint32_t& address, uint16_t& port_be, uint8_t& index,
                            uint32_t max_candidates = kSteerCandidates);

  // Returns a port taken with alloc() or alloc_for_reply().
  void release(uint8_t index, uint16_t port_be);

  // Total free ports over all addresses.
  uint64_t available() const;
  // Ports alloc_for_reply() has examined so far: its cost, for the worker's counters.
  uint64_t candidates() const { return candidates_; }

 private:
  struct Pool {
    uint32_t address = 0;
    uint16_t* ring = nullptr;  // capacity `size` ports, FIFO
    uint32_t size = 0;
    uint32_t head = 0;   // next to hand out
    uint32_t count = 0;  // free ports in the ring

    uint32_t at(uint32_t k) const { return head + k >= size ? head + k - size : head + k; }
    uint16_t pop() {
      const uint16_t port = ring[head];
      head = at(1);
      --count;
      return port;
    }
    void push(uint16_t port) {
      ring[at(count)] = port;
      ++count;
    }
  };

  // The next pool in round-robin order that has a free port, or null when all are empty.
  Pool* next_pool(uint8_t& index);

  std::vector<Pool> pools_;
  uint32_t next_pool_ = 0;
  uint64_t candidates_ = 0;
};

}  // namespace ilb::dp

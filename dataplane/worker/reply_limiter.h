// Caps the packets a worker makes up on its own in answer to others: refusals (RST|ACK to a SYN,
// ICMP port unreachable to a datagram) when a service has no backend, resets for untracked TCP
// segments, echo replies. Each of those costs an attacker one spoofed packet, so without a cap a
// flood turns ilb into a reflector at the flood's rate and spends the worker's transmit budget on
// it. A token bucket per worker, in TSC cycles, with plain arithmetic (no atomics: the worker owns
// it). Replies that belong to a tracked connection (the two resets of a cut connection, the
// probes that trigger them, translated ICMP errors) are not counted: tracked connections bound
// them already.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ilb::dp {

class ReplyLimiter {
 public:
  // `per_second` replies a second on average, with bursts of up to a tenth of that (at least one)
  // after a quiet spell; 0 = unlimited (the default, until configured).
  void configure(uint32_t per_second, uint64_t tsc_hz) {
    cost_ = 0;
    if (per_second == 0 || tsc_hz == 0) return;
    cost_ = std::max<uint64_t>(tsc_hz / per_second, 1);
    capacity_ = cost_ * std::max<uint32_t>(per_second / 10, 1);
    credit_ = capacity_;
    last_ = 0;
  }

  // Whether a reply may be sent at `now_tsc`; if so, it is counted against the budget.
  bool allow(uint64_t now_tsc) {
    if (cost_ == 0) return true;
    if (now_tsc > last_) {
      const uint64_t gained = now_tsc - last_;
      credit_ = gained >= capacity_ - credit_ ? capacity_ : credit_ + gained;
      last_ = now_tsc;
    }
    if (credit_ < cost_) return false;
    credit_ -= cost_;
    return true;
  }

 private:
  uint64_t cost_ = 0;      // cycles of credit one reply takes; 0 = unlimited
  uint64_t capacity_ = 0;  // the most credit that accumulates: the burst
  uint64_t credit_ = 0;
  uint64_t last_ = 0;  // when credit_ was last topped up
};

}  // namespace ilb::dp

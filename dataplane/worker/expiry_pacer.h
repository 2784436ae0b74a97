// How many connection records a worker's expiry sweep examines per poll-loop iteration. A fixed
// number per iteration made the sweep's cost follow the loop rate instead of the table: under load
// a worker with 2 M records streamed through all of them every half second and spent a quarter of
// its cycles on it. The pacer hands out records in proportion to the time that passed, so that the
// sweep covers the whole table once per period (a record expires at most about one period after
// its deadline), and never more than a fixed number per iteration, so the work of one iteration
// stays bounded whatever the table size. A loop too slow to keep up makes the pass take longer;
// the shortfall is not carried over.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ilb::dp {

class ExpiryPacer {
 public:
  // `capacity` records per `period_tsc` cycles, at most `max_per_call` per call, starting at
  // `now_tsc`. A period of 0 is taken as 1 cycle.
  ExpiryPacer(uint32_t capacity, uint64_t period_tsc, uint32_t max_per_call, uint64_t now_tsc)
      : capacity_(capacity),
        period_(std::max<uint64_t>(period_tsc, 1)),
        max_(max_per_call),
        last_(now_tsc) {}

  // The records to examine now: those owed for the time since the last call.
  uint32_t budget(uint64_t now_tsc) {
    // At most one period counts, so the product stays far from overflow (conn_capacity is at most
    // 10^8 < 2^27 records, a period of a second under 2^34 cycles).
    const uint64_t elapsed = std::min(now_tsc - last_, period_);
    last_ = now_tsc;
    owed_ += elapsed * capacity_;
    const uint64_t n = owed_ / period_;
    if (n > max_) {
      owed_ = 0;
      return max_;
    }
    owed_ -= n * period_;
    return static_cast<uint32_t>(n);
  }

 private:
  uint64_t capacity_;
  uint64_t period_;
  uint32_t max_;
  uint64_t last_;
  uint64_t owed_ = 0;  // records owed, times period_
};

}  // namespace ilb::dp

// A log-linear latency histogram: exact below 32 ticks, then 16 buckets per power of two (at most
// 6.25 % apart), fixed size, no allocation after construction; recording is an index computation
// and an increment, cheap enough for every packet.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace ilb::pktgen {

class LatencyHistogram {
 public:
  static constexpr uint32_t kLinear = 32;
  static constexpr uint32_t kSubBits = 4;
  static constexpr uint32_t kBuckets = kLinear + (64 - 5) * (1u << kSubBits);

  void record(uint64_t ticks) {
    ++buckets_[index(ticks)];
    ++count_;
    sum_ += ticks;
    max_ = std::max(max_, ticks);
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The value below which a fraction `q` (0..1) of the samples lie: the midpoint of the bucket
  // holding that sample (exact in the linear range; the maximum itself for q = 1). 0 when empty.
  uint64_t quantile(double q) const {
    if (count_ == 0) return 0;
    const auto rank = static_cast<uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
    if (rank >= count_) return max_;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < kBuckets; ++i) {
      seen += buckets_[i];
      if (seen >= rank) return std::min(midpoint(i), max_);
    }
    return max_;
  }

  static uint32_t index(uint64_t v) {
    if (v < kLinear) return static_cast<uint32_t>(v);
    const uint32_t e = 63 - static_cast<uint32_t>(std::countl_zero(v));  // >= 5
    const auto sub = static_cast<uint32_t>(v >> (e - kSubBits)) & ((1u << kSubBits) - 1);
    return kLinear + (e - 5) * (1u << kSubBits) + sub;
  }

 private:
  static uint64_t midpoint(uint32_t i) {
    if (i < kLinear) return i;
    const uint32_t e = (i - kLinear) / (1u << kSubBits) + 5;
    const uint32_t sub = (i - kLinear) % (1u << kSubBits);
    const uint64_t width = uint64_t{1} << (e - kSubBits);
    const uint64_t low = (uint64_t{(1u << kSubBits) + sub}) << (e - kSubBits);
    return low + width / 2;
  }

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace ilb::pktgen

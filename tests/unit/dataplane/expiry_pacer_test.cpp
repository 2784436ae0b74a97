#include "dataplane/worker/expiry_pacer.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace ilb::dp {
namespace {

// Called every `step` cycles for `periods` periods; returns the records handed out in all.
uint64_t sweep(ExpiryPacer& pacer, uint64_t& now, uint64_t step, uint64_t span,
               uint32_t* largest = nullptr) {
  uint64_t total = 0;
  for (const uint64_t end = now + span; now < end;) {
    now += step;
    const uint32_t n = pacer.budget(now);
    if (largest != nullptr && n > *largest) *largest = n;
    total += n;
  }
  return total;
}

TEST(ExpiryPacer, CoversTheTableOncePerPeriodWhateverTheLoopRate) {
  constexpr uint64_t kPeriod = 1'000'000;
  for (const uint64_t step : {1ull, 7ull, 1000ull, 6'399ull}) {  // up to 63.99 a call
    const uint64_t start = 5;
    uint64_t now = start;
    ExpiryPacer pacer(10'000, kPeriod, 64, now);
    const uint64_t total = sweep(pacer, now, step, 3 * kPeriod);
    // About three periods: three passes, in proportion to the cycles that really passed.
    EXPECT_NEAR(static_cast<double>(total), static_cast<double>(now - start) * 10'000 / kPeriod,
                1.0)
        << "step " << step;
  }
}

TEST(ExpiryPacer, NeverExceedsItsBoundAndDropsWhatItCannotCatchUp) {
  constexpr uint64_t kPeriod = 1'000'000;
  uint64_t now = 0;
  // 10 M records per period, called every 1,000 cycles: 10,000 owed per call, 64 allowed.
  ExpiryPacer pacer(10'000'000, kPeriod, 64, now);
  uint32_t largest = 0;
  EXPECT_EQ(sweep(pacer, now, 1000, kPeriod, &largest), 64u * 1000);
  EXPECT_EQ(largest, 64u);
  // Then a fast loop: the debt was not carried, so it gets the plain rate (10 per 1-cycle call)
  // only up to the bound again.
  EXPECT_EQ(pacer.budget(now + 1), 10u);
}

TEST(ExpiryPacer, ALongStallCountsAsOnePeriodAtMost) {
  uint64_t now = 100;
  ExpiryPacer pacer(1000, 1000, 100'000, now);
  EXPECT_EQ(pacer.budget(now + 1'000'000'000'000), 1000u);
  EXPECT_EQ(pacer.budget(now + 1'000'000'000'000), 0u);
}

TEST(ExpiryPacer, AnIdleFastLoopGetsNothingMostCalls) {
  uint64_t now = 0;
  ExpiryPacer pacer(100, 1'000'000, 64, now);
  uint32_t nonzero = 0;
  for (int i = 0; i < 1000; ++i) nonzero += pacer.budget(now += 100) != 0;
  EXPECT_EQ(nonzero, 10u);  // 100 cycles of 1,000,000 per call: one record every 100 calls
}

}  // namespace
}  // namespace ilb::dp

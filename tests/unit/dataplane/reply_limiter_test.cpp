#include "dataplane/worker/reply_limiter.h"

#include <gtest/gtest.h>

namespace ilb::dp {
namespace {

constexpr uint64_t kHz = 1'000'000;  // one tick a microsecond

// How many of `n` replies asked for at `now` are allowed.
int allowed(ReplyLimiter& r, uint64_t now, int n) {
  int ok = 0;
  for (int i = 0; i < n; ++i) ok += r.allow(now) ? 1 : 0;
  return ok;
}

TEST(ReplyLimiter, UnconfiguredOrZeroIsUnlimited) {
  ReplyLimiter r;
  EXPECT_EQ(allowed(r, 5, 100000), 100000);
  r.configure(0, kHz);
  EXPECT_EQ(allowed(r, 5, 100000), 100000);
}

TEST(ReplyLimiter, BurstOfATenthThenTheRate) {
  ReplyLimiter r;
  r.configure(1000, kHz);  // one reply every 1000 ticks, bursts of 100
  const uint64_t t0 = 5'000'000'000;
  EXPECT_EQ(allowed(r, t0, 1000), 100) << "a full bucket: a tenth of a second's worth";
  EXPECT_EQ(allowed(r, t0 + 999, 10), 0);
  EXPECT_EQ(allowed(r, t0 + 1000, 10), 1);
  EXPECT_EQ(allowed(r, t0 + 51'000, 100), 50);
  EXPECT_EQ(allowed(r, t0 + 10'000'000, 1000), 100) << "credit never exceeds the burst";
  // A steady second at twice the rate gets the rate.
  int ok = 0;
  for (uint64_t t = t0 + 20'000'000; t < t0 + 21'000'000; t += 500) ok += r.allow(t) ? 1 : 0;
  EXPECT_NEAR(ok, 1000 + 100, 2) << "the rate, plus the burst saved up before";
}

TEST(ReplyLimiter, ClockGoingBackwardsGivesNoCredit) {
  ReplyLimiter r;
  r.configure(10, kHz);  // bursts of 1
  EXPECT_TRUE(r.allow(1'000'000'000));
  EXPECT_FALSE(r.allow(500));
  EXPECT_FALSE(r.allow(1'000'000'000));
  EXPECT_TRUE(r.allow(1'000'100'000));
}

TEST(ReplyLimiter, RateAboveTheClockStillLimits) {
  ReplyLimiter r;
  r.configure(100, 10);  // a coarse clock: at least one tick per reply
  EXPECT_EQ(allowed(r, 1000, 50), 10);
}

}  // namespace
}  // namespace ilb::dp

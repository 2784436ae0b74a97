// Its own test program: these tests lower the process's open-files limit.
#include "controlplane/health/fd_limit.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <vector>

#include "controlplane/health/health_checker.h"
#include "tests/unit/health/loopback.h"

namespace ilb::cp {
namespace {

rlimit current() {
  rlimit l{};
  getrlimit(RLIMIT_NOFILE, &l);
  return l;
}

// Lowers the soft limit to `soft` for the test; false when the hard limit is below what the test
// needs.
bool lower_soft_limit(rlim_t soft, rlim_t needed_hard) {
  rlimit l = current();
  if (l.rlim_max < needed_hard) return false;
  l.rlim_cur = soft;
  return setrlimit(RLIMIT_NOFILE, &l) == 0;
}

TEST(FdLimit, RaisesTheSoftLimitToTheHardOneOnlyWhenShort) {
  if (!lower_soft_limit(128, 2048)) GTEST_SKIP() << "hard open-files limit below 2048";
  FdLimit l = raise_open_file_limit(100);
  EXPECT_EQ(l.before, 128u);
  EXPECT_EQ(l.now, 128u) << "enough already: left alone";
  l = raise_open_file_limit(1000);
  EXPECT_EQ(l.before, 128u);
  EXPECT_EQ(l.now, l.hard);
  EXPECT_EQ(current().rlim_cur, current().rlim_max);
  EXPECT_EQ(sockets_needed(10000), 10256u);
}

TEST(FdLimit, CheckerRaisesTheLimitForManyTargets) {
  if (!lower_soft_limit(512, 2048)) GTEST_SKIP() << "hard open-files limit below 2048";
  asio::io_context io;
  HealthChecker checker(io, [](const HealthEvent&) {});
  std::vector<CheckTarget> targets;
  for (uint32_t key = 1; key <= 40; ++key) {
    targets.push_back(test::loopback_target(key, CheckType::kNone, 80));
  }
  checker.set_targets(targets);
  EXPECT_EQ(current().rlim_cur, 512u) << "backends without checks need no sockets";
  for (uint32_t key = 41; key <= 400; ++key) {
    targets.push_back(test::loopback_target(key, CheckType::kTcp, 9));
  }
  checker.set_targets(targets);
  EXPECT_EQ(current().rlim_cur, current().rlim_max) << "360 checked backends and the reserve";
  checker.stop();
}

}  // namespace
}  // namespace ilb::cp

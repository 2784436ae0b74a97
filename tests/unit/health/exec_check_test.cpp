#include "controlplane/health/exec_check.h"

#include <gtest/gtest.h>

#include <optional>

#include "tests/unit/process/process_test_util.h"

namespace ilb::cp {
namespace {

using namespace std::chrono_literals;
using test::run_until;

struct Check {
  asio::io_context io;
  std::shared_ptr<ExecProbe> probe;
  std::optional<ProbeResult> result;
  int calls = 0;

  Check(std::vector<std::string> command, std::vector<std::pair<std::string, std::string>> env = {},
        std::chrono::milliseconds timeout = 5000ms) {
    probe = std::make_shared<ExecProbe>(io, std::move(command), std::move(env), timeout);
    probe->start([this](ProbeResult r) {
      ++calls;
      result = std::move(r);
    });
  }
  bool finish() {
    return run_until(
        io, [this] { return result.has_value(); }, 10000ms);
  }
};

std::vector<std::pair<std::string, std::string>> backend_env() {
  return {{"ILB_BACKEND_ADDRESS", "10.0.0.7"},
          {"ILB_BACKEND_PORT", "3306"},
          {"ILB_CHECK_PORT", "9200"},
          {"ILB_SERVICE", "mysql-ro"}};
}

TEST(ExecCheck, ExitZeroIsUp) {
  Check check({"/bin/true"});
  EXPECT_EQ(check.calls, 0);
  ASSERT_TRUE(check.finish());
  EXPECT_TRUE(check.result->ok);
  EXPECT_EQ(check.result->reason, "exit 0");
  EXPECT_FALSE(check.result->advice.has_value());
}

TEST(ExecCheck, NonZeroExitIsDownWithTheCommandsFirstLine) {
  Check check({"/bin/sh", "-c", "echo 'Seconds_Behind_Master: 120' >&2; exit 1"});
  ASSERT_TRUE(check.finish());
  EXPECT_FALSE(check.result->ok);
  EXPECT_EQ(check.result->reason, "exit 1: Seconds_Behind_Master: 120");
}

TEST(ExecCheck, CommandSeesTheBackendInItsEnvironment) {
  test::TempDir dir;
  const std::string script = dir.script(
      "check.sh",
      "[ \"$ILB_BACKEND_ADDRESS:$ILB_BACKEND_PORT:$ILB_CHECK_PORT:$ILB_SERVICE\" = "
      "\"10.0.0.7:3306:9200:mysql-ro\" ] || { echo \"wrong env: $ILB_BACKEND_ADDRESS\"; exit 1; }");
  Check good({script}, backend_env());
  ASSERT_TRUE(good.finish());
  EXPECT_TRUE(good.result->ok) << good.result->reason;

  auto env = backend_env();
  env[0].second = "10.0.0.8";
  Check bad({script}, env);
  ASSERT_TRUE(bad.finish());
  EXPECT_FALSE(bad.result->ok);
  EXPECT_EQ(bad.result->reason, "exit 1: wrong env: 10.0.0.8");
}

TEST(ExecCheck, HangingCommandIsDownAtTheTimeout) {
  Check check({"/bin/sleep", "100"}, {}, 200ms);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(check.finish());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3000ms);
  EXPECT_FALSE(check.result->ok);
  EXPECT_EQ(check.result->reason, "killed after 200 ms timeout");
}

TEST(ExecCheck, MissingCommandIsDown) {
  Check check({"/usr/local/bin/ilb-no-such-check"});
  ASSERT_TRUE(check.finish());
  EXPECT_FALSE(check.result->ok);
  EXPECT_EQ(check.result->reason, "spawn: No such file or directory");
}

TEST(ExecCheck, CancelKillsTheCommandAndReportsNothing) {
  test::TempDir dir;
  const std::string pidfile = dir.file("pid");
  const std::string script = dir.script("check.sh", "echo $$ > " + pidfile + "\n/bin/sleep 100\n");
  Check check({script});
  pid_t pid = -1;
  ASSERT_TRUE(run_until(check.io, [&] {
    const std::string text = test::read_file(pidfile);
    if (text.empty() || text.back() != '\n') return false;
    pid = std::stoi(text);
    return test::running_in_group(pid) == 2;
  }));
  check.probe->cancel();
  check.probe->cancel();
  EXPECT_TRUE(test::wait_for([&] { return test::running_in_group(pid) == 0; }));
  EXPECT_TRUE(run_until(
      check.io, [&] { return !test::process_exists(pid); }, 3000ms));
  check.io.restart();
  check.io.run_for(50ms);
  EXPECT_EQ(check.calls, 0);
}

TEST(ExecCheck, DroppedProbeStillReports) {
  Check check({"/bin/false"});
  check.probe.reset();
  ASSERT_TRUE(check.finish());
  EXPECT_FALSE(check.result->ok);
  EXPECT_EQ(check.result->reason, "exit 1");
}

}  // namespace
}  // namespace ilb::cp

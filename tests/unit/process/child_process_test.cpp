#include "controlplane/process/child_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <asio/steady_timer.hpp>
#include <optional>

#include "tests/unit/process/process_test_util.h"

namespace ilb::cp {
namespace {

using namespace std::chrono_literals;
using test::run_until;
using End = ChildResult::End;

// Runs one command to completion on a fresh io_context.
struct Command {
  asio::io_context io;
  std::optional<ChildResult> result;
  std::shared_ptr<ChildProcess> child;
  int calls = 0;

  Command(const std::vector<std::string>& argv, ChildProcess::Env env = {},
          std::chrono::milliseconds timeout = 5000ms) {
    child = ChildProcess::start(io, argv, env, timeout, [this](const ChildResult& r) {
      ++calls;
      result = r;
    });
  }
  bool finish(std::chrono::milliseconds limit = 10000ms) {
    return run_until(
        io, [this] { return result.has_value(); }, limit);
  }
};

TEST(ChildProcess, ExitZeroIsReportedAsExited) {
  Command run({"/bin/true"});
  ASSERT_TRUE(run.finish());
  EXPECT_EQ(run.result->end, End::kExited);
  EXPECT_EQ(run.result->code, 0);
  EXPECT_TRUE(run.result->succeeded());
  EXPECT_EQ(run.result->describe(), "exit 0");
}

TEST(ChildProcess, NonZeroExitDescribesFirstOutputLine) {
  Command run({"/bin/sh", "-c", "echo; echo 'replica lag 42 s'; echo more >&2; exit 2"});
  ASSERT_TRUE(run.finish());
  EXPECT_EQ(run.result->end, End::kExited);
  EXPECT_EQ(run.result->code, 2);
  EXPECT_FALSE(run.result->succeeded());
  EXPECT_EQ(run.result->describe(), "exit 2: replica lag 42 s");
  EXPECT_EQ(run.result->output, "\nreplica lag 42 s\nmore\n");
}

TEST(ChildProcess, FalseExitsWithOne) {
  Command run({"/bin/false"});
  ASSERT_TRUE(run.finish());
  EXPECT_EQ(run.result->describe(), "exit 1");
}

TEST(ChildProcess, StderrIsCapturedWithStdout) {
  Command run({"/bin/sh", "-c", "echo out; echo err >&2"});
  ASSERT_TRUE(run.finish());
  EXPECT_EQ(run.result->output, "out\nerr\n");
}

TEST(ChildProcess, EnvironmentIsParentsPlusExtraWithOverrides) {
  ::setenv("ILB_TEST_PARENT", "from-parent", 1);
  ::setenv("ILB_TEST_OVERRIDE", "old", 1);
  Command run({"/bin/sh", "-c",
               "echo \"$ILB_TEST_PARENT|$ILB_TEST_OVERRIDE|$ILB_TEST_EXTRA\"; "
               "env | grep -c '^ILB_TEST_OVERRIDE='"},
              {{"ILB_TEST_OVERRIDE", "new"}, {"ILB_TEST_EXTRA", "a b=c"}});
  ASSERT_TRUE(run.finish());
  ::unsetenv("ILB_TEST_PARENT");
  ::unsetenv("ILB_TEST_OVERRIDE");
  EXPECT_EQ(run.result->output, "from-parent|new|a b=c\n1\n");
}

TEST(ChildProcess, StdinIsDevNull) {
  Command run({"/bin/sh", "-c", "cat; echo \"cat=$?\"; readlink /proc/self/fd/0"});
  ASSERT_TRUE(run.finish());
  EXPECT_EQ(run.result->output, "cat=0\n/dev/null\n");
}

TEST(ChildProcess, OnlyStdioIsInherited) {
  // The pipe's read end and the pidfd are close-on-exec; the child sees fds 0, 1, 2 (and the
  // one `ls` opens for the directory itself).
  Command run({"/bin/sh", "-c", "ls /proc/self/fd | wc -l"});
  ASSERT_TRUE(run.finish());
  EXPECT_EQ(run.result->output, "4\n");
}

TEST(ChildProcess, MegabyteOfOutputIsBoundedAndDoesNotBlock) {
  Command run({"/bin/sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' x; echo; exit 3"});
  ASSERT_TRUE(run.finish());
  EXPECT_EQ(run.result->end, End::kExited);
  EXPECT_EQ(run.result->code, 3);
  EXPECT_EQ(run.result->output, std::string(ChildProcess::kMaxOutput, 'x'));
  const std::string reason = run.result->describe();
  EXPECT_EQ(reason.rfind("exit 3: xxxx", 0), 0u) << reason;
  EXPECT_LT(reason.size(), 140u);
}

TEST(ChildProcess, SignalDeathIsReported) {
  Command run({"/bin/sh", "-c", "kill -TERM $$"});
  ASSERT_TRUE(run.finish());
  EXPECT_EQ(run.result->end, End::kSignaled);
  EXPECT_EQ(run.result->code, SIGTERM);
  EXPECT_EQ(run.result->describe(), "signal 15");
}

TEST(ChildProcess, SigpipeIsDefaultInChildEvenIfParentIgnoresIt) {
  struct sigaction old {};
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  Command run({"/bin/sh", "-c", "grep SigIgn /proc/self/status"});
  ASSERT_TRUE(run.finish());
  ::sigaction(SIGPIPE, &old, nullptr);
  // SIGPIPE is signal 13: bit 12 of the ignored mask must be clear.
  const std::string line = run.result->output;
  ASSERT_EQ(line.rfind("SigIgn:", 0), 0u);
  const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
  EXPECT_EQ(mask & (1ull << (SIGPIPE - 1)), 0u);
}

TEST(ChildProcess, TimeoutKillsTheWholeProcessGroup) {
  test::TempDir dir;
  const std::string script = dir.script("hang.sh", "/bin/sleep 100 &\necho \"$!\"\nwait\n");
  Command run({script}, {}, 300ms);
  const pid_t pgid = run.child->pid();
  ASSERT_GT(pgid, 0);
  ASSERT_TRUE(run.finish());
  EXPECT_EQ(run.result->end, End::kTimedOut);
  EXPECT_EQ(run.result->describe(), "killed after 300 ms timeout");
  EXPECT_GE(run.result->elapsed, 300ms);
  EXPECT_LT(run.result->elapsed, 3000ms);
  // The background sleep printed its pid before the kill.
  const pid_t grandchild = std::stoi(run.result->output);
  EXPECT_TRUE(test::wait_for([&] { return !test::process_running(grandchild); }));
  EXPECT_TRUE(test::wait_for([&] { return test::running_in_group(pgid) == 0; }));
  // The script itself was reaped, not left a zombie.
  EXPECT_FALSE(test::process_exists(pgid));
}

TEST(ChildProcess, BackgroundProcessDoesNotHoldUpTheResult) {
  // The command exits at once but leaves a sleep holding the output pipe open. The result must
  // not wait for the pipe's end.
  Command run({"/bin/sh", "-c", "/bin/sleep 30 & echo started"}, {}, 20000ms);
  const pid_t pgid = run.child->pid();
  ASSERT_TRUE(run.finish(5000ms));
  EXPECT_EQ(run.result->describe(), "exit 0");
  EXPECT_EQ(run.result->output, "started\n");
  EXPECT_LT(run.result->elapsed, 5000ms);
  ::kill(-pgid, SIGKILL);  // the test's own cleanup of what the command left behind
}

TEST(ChildProcess, MissingBinaryIsSpawnFailureReportedLater) {
  Command run({"/nonexistent/ilb-no-such-binary", "x"});
  EXPECT_EQ(run.calls, 0);  // never from inside start()
  EXPECT_EQ(run.child->pid(), -1);
  ASSERT_TRUE(run.finish());
  EXPECT_EQ(run.calls, 1);
  EXPECT_EQ(run.result->end, End::kSpawnFailed);
  EXPECT_EQ(run.result->code, ENOENT);
  EXPECT_EQ(run.result->describe(), "spawn: No such file or directory");
}

TEST(ChildProcess, NonExecutableFileIsSpawnFailure) {
  test::TempDir dir;
  const std::string path = dir.file("plain");
  std::ofstream(path) << "not a program\n";
  Command run({path});
  ASSERT_TRUE(run.finish());
  EXPECT_EQ(run.result->end, End::kSpawnFailed);
  EXPECT_EQ(run.result->describe(), "spawn: Permission denied");
}

TEST(ChildProcess, RelativeOrEmptyCommandIsRejected) {
  Command relative({"sleep", "1"});
  ASSERT_TRUE(relative.finish());
  EXPECT_EQ(relative.result->end, End::kSpawnFailed);
  EXPECT_EQ(relative.result->describe(), "spawn: 'sleep' is not an absolute path");

  Command empty({});
  ASSERT_TRUE(empty.finish());
  EXPECT_EQ(empty.result->end, End::kSpawnFailed);
  EXPECT_EQ(empty.result->describe(), "spawn: empty command");
}

TEST(ChildProcess, DoneIsCalledExactlyOnceAndNeverInsideStart) {
  Command run({"/bin/true"});
  EXPECT_EQ(run.calls, 0);
  ASSERT_TRUE(run.finish());
  // Command the loop dry: nothing may report a second time.
  run.io.restart();
  run.io.run_for(50ms);
  EXPECT_EQ(run.calls, 1);
}

TEST(ChildProcess, CancelKillsAndReapsWithoutCallingDone) {
  Command run({"/bin/sleep", "100"});
  const pid_t pid = run.child->pid();
  ASSERT_TRUE(test::process_running(pid));
  run.io.poll();
  run.child->cancel();
  run.child->cancel();  // a second cancel is harmless
  // Reaped either at once or by the exit handler as soon as the kill lands: no zombie left.
  EXPECT_TRUE(run_until(
      run.io, [&] { return !test::process_exists(pid); }, 3000ms));
  run.io.restart();
  run.io.run_for(50ms);
  EXPECT_EQ(run.calls, 0);
}

TEST(ChildProcess, CancelKillsGrandchildren) {
  test::TempDir dir;
  const std::string script = dir.script("tree.sh", "/bin/sleep 100 &\n/bin/sleep 100\n");
  Command run({script});
  const pid_t pgid = run.child->pid();
  // Wait until both sleeps are running in the command's group.
  ASSERT_TRUE(run_until(run.io, [&] { return test::running_in_group(pgid) >= 3; }));
  run.child->cancel();
  EXPECT_TRUE(test::wait_for([&] { return test::running_in_group(pgid) == 0; }));
  EXPECT_TRUE(run_until(
      run.io, [&] { return !test::process_exists(pgid); }, 3000ms));
  EXPECT_EQ(run.calls, 0);
}

TEST(ChildProcess, DroppedPointerStillReports) {
  Command run({"/bin/sh", "-c", "exit 4"});
  run.child.reset();
  ASSERT_TRUE(run.finish());
  EXPECT_EQ(run.result->describe(), "exit 4");
}

TEST(ChildProcess, DestroyingTheIoContextKillsAndReaps) {
  pid_t pid = -1;
  bool called = false;
  {
    asio::io_context io;
    pid = ChildProcess::start(io, {"/bin/sleep", "100"}, {}, 60000ms, [&](const ChildResult&) {
            called = true;
          })->pid();
    ASSERT_TRUE(test::process_running(pid));
    io.poll();
  }
  EXPECT_FALSE(test::process_exists(pid));
  EXPECT_FALSE(called);
}

TEST(ChildProcess, EventLoopStaysResponsiveWhileChildRuns) {
  asio::io_context io;
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::duration> timer_at;
  std::optional<std::chrono::steady_clock::duration> child_at;
  asio::steady_timer timer(io, 100ms);
  timer.async_wait(
      [&](const std::error_code&) { timer_at = std::chrono::steady_clock::now() - t0; });
  auto child = ChildProcess::start(io, {"/bin/sleep", "1"}, {}, 5000ms, [&](const ChildResult&) {
    child_at = std::chrono::steady_clock::now() - t0;
  });
  ASSERT_TRUE(run_until(
      io, [&] { return child_at.has_value(); }, 5000ms));
  ASSERT_TRUE(timer_at.has_value());
  EXPECT_LT(*timer_at, 500ms);
  EXPECT_GE(*child_at, 1000ms);
}

TEST(ChildProcess, ManyChildrenAtOnceAreEachReported) {
  asio::io_context io;
  std::vector<int> codes;
  std::vector<std::shared_ptr<ChildProcess>> children;
  for (int i = 0; i < 20; ++i) {
    children.push_back(ChildProcess::start(io, {"/bin/sh", "-c", "exit " + std::to_string(i)}, {},
                                           5000ms,
                                           [&](const ChildResult& r) { codes.push_back(r.code); }));
  }
  ASSERT_TRUE(run_until(
      io, [&] { return codes.size() == 20; }, 10000ms));
  std::sort(codes.begin(), codes.end());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(codes[size_t(i)], i);
  for (const auto& c : children) EXPECT_FALSE(test::process_exists(c->pid()));
}

TEST(ChildResult, DescribeCoversEveryEnd) {
  ChildResult r;
  r.end = End::kExited;
  r.code = 7;
  EXPECT_EQ(r.describe(), "exit 7");
  r.output = "\r\n  \nbad\tthing\r\nsecond\n";
  EXPECT_EQ(r.describe(), "exit 7: bad?thing");
  r.end = End::kSignaled;
  r.code = 9;
  EXPECT_EQ(r.describe(), "signal 9");
  r.end = End::kTimedOut;
  r.timeout = 1000ms;
  EXPECT_EQ(r.describe(), "killed after 1000 ms timeout");
  r.end = End::kSpawnFailed;
  r.output = "No such file or directory";
  EXPECT_EQ(r.describe(), "spawn: No such file or directory");
}

}  // namespace
}  // namespace ilb::cp

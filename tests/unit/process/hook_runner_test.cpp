#include "controlplane/process/hook_runner.h"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/unit/process/process_test_util.h"

namespace ilb::cp {
namespace {

using namespace std::chrono_literals;
using test::run_until;

HookEvent event(std::string backend, std::string old_state, std::string new_state,
                std::string reason = "check") {
  HookEvent e;
  e.instance = "edge1";
  e.service = "mysql-rw";
  e.backend = std::move(backend);
  e.kind = "health";
  e.old_state = std::move(old_state);
  e.new_state = std::move(new_state);
  e.reason = std::move(reason);
  return e;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

struct Finished {
  HookEvent event;
  ChildResult result;
};

// "2026-11-25T17:17:46.123Z": '0' in the shape stands for any digit.
bool is_rfc3339_millis(const std::string& text) {
  constexpr std::string_view kShape = "0000-00-00T00:00:00.000Z";
  if (text.size() != kShape.size()) return false;
  for (size_t i = 0; i < kShape.size(); ++i) {
    const bool ok = kShape[i] == '0' ? (text[i] >= '0' && text[i] <= '9') : text[i] == kShape[i];
    if (!ok) return false;
  }
  return true;
}

TEST(HookRunner, HooksRunInSubmissionOrderWithTheEventInTheEnvironment) {
  test::TempDir dir;
  const std::string log = dir.file("events.log");
  // Each hook sleeps a little before writing, so hooks that overlapped would interleave.
  const std::string hook =
      dir.script("hook.sh",
                 "/bin/sleep 0.05\n"
                 "echo \"$ILB_EVENT|$ILB_INSTANCE|$ILB_SERVICE|$ILB_BACKEND|$ILB_BACKEND_ADDRESS|"
                 "$ILB_BACKEND_PORT|$ILB_OLD_STATE|$ILB_NEW_STATE|$ILB_REASON|$ILB_TIME\" >> " +
                     log);
  asio::io_context io;
  std::vector<Finished> finished;
  HookRunner runner(io, {hook}, 5000ms, [&](const HookEvent& e, const ChildResult& r) {
    finished.push_back({e, r});
  });
  runner.submit(event("10.0.0.1:3306", "up", "down", "connect: connection refused"));
  runner.submit(event("10.0.0.2:3306", "down", "up", "HTTP 200"));
  HookEvent admin = event("10.0.0.1:3306", "active", "draining", "api: drain");
  admin.kind = "admin";
  runner.submit(admin);
  EXPECT_TRUE(runner.running());
  EXPECT_EQ(runner.queued(), 2u);

  ASSERT_TRUE(run_until(
      io, [&] { return runner.ran() == 3; }, 10000ms));
  EXPECT_EQ(runner.failed(), 0u);
  EXPECT_EQ(runner.queued(), 0u);
  EXPECT_FALSE(runner.running());
  ASSERT_EQ(finished.size(), 3u);
  EXPECT_EQ(finished[0].event.backend, "10.0.0.1:3306");
  EXPECT_EQ(finished[2].event.kind, "admin");
  EXPECT_EQ(finished[1].result.describe(), "exit 0");

  const auto got = lines(test::read_file(log));
  ASSERT_EQ(got.size(), 3u);
  const std::vector<std::string> expected = {
      "health|edge1|mysql-rw|10.0.0.1:3306|10.0.0.1|3306|up|down|connect: connection refused|",
      "health|edge1|mysql-rw|10.0.0.2:3306|10.0.0.2|3306|down|up|HTTP 200|",
      "admin|edge1|mysql-rw|10.0.0.1:3306|10.0.0.1|3306|active|draining|api: drain|",
  };
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(got[i].rfind(expected[i], 0), 0u) << got[i];
    EXPECT_TRUE(is_rfc3339_millis(got[i].substr(expected[i].size()))) << got[i];
  }
}

TEST(HookRunner, HangingHookIsKilledAtItsTimeoutAndTheNextOneRuns) {
  test::TempDir dir;
  const std::string log = dir.file("ran.log");
  const std::string hook = dir.script("hook.sh",
                                      "if [ \"$ILB_NEW_STATE\" = hang ]; then /bin/sleep 100; fi\n"
                                      "echo \"$ILB_NEW_STATE\" >> " +
                                          log);
  asio::io_context io;
  std::vector<Finished> finished;
  HookRunner runner(io, {hook}, 300ms, [&](const HookEvent& e, const ChildResult& r) {
    finished.push_back({e, r});
  });
  runner.submit(event("10.0.0.1:80", "up", "hang"));
  runner.submit(event("10.0.0.1:80", "hang", "up"));
  ASSERT_TRUE(run_until(
      io, [&] { return runner.ran() == 2; }, 10000ms));
  EXPECT_EQ(runner.failed(), 1u);
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_EQ(finished[0].result.end, ChildResult::End::kTimedOut);
  EXPECT_EQ(finished[0].result.describe(), "killed after 300 ms timeout");
  EXPECT_EQ(finished[1].result.describe(), "exit 0");
  EXPECT_EQ(test::read_file(log), "up\n");
}

TEST(HookRunner, FailingHooksAreCounted) {
  asio::io_context io;
  std::vector<std::string> reasons;
  HookRunner failing(
      io, {"/bin/sh", "-c", "echo 'pager unreachable'; exit 3"}, 5000ms,
      [&](const HookEvent&, const ChildResult& r) { reasons.push_back(r.describe()); });
  HookRunner missing(
      io, {"/nonexistent/ilb-hook"}, 5000ms,
      [&](const HookEvent&, const ChildResult& r) { reasons.push_back(r.describe()); });
  failing.submit(event("10.0.0.1:80", "up", "down"));
  ASSERT_TRUE(run_until(io, [&] { return failing.ran() == 1; }));
  missing.submit(event("10.0.0.1:80", "up", "down"));
  ASSERT_TRUE(run_until(io, [&] { return missing.ran() == 1; }));
  EXPECT_EQ(failing.failed(), 1u);
  EXPECT_EQ(missing.failed(), 1u);
  EXPECT_EQ(reasons, (std::vector<std::string>{"exit 3: pager unreachable",
                                               "spawn: No such file or directory"}));
}

TEST(HookRunner, QueueOverflowDropsNewEventsAndCountsThem) {
  asio::io_context io;
  int done_calls = 0;
  HookRunner runner(io, {"/bin/sleep", "100"}, 60000ms,
                    [&](const HookEvent&, const ChildResult&) { ++done_calls; });
  // The first event's hook starts at once; the next 1024 wait; 5 more do not fit.
  for (size_t i = 0; i < 1 + HookRunner::kMaxQueued + 5; ++i) {
    runner.submit(event("10.0.0.1:80", "up", "down", std::to_string(i)));
  }
  EXPECT_TRUE(runner.running());
  EXPECT_EQ(runner.queued(), HookRunner::kMaxQueued);
  EXPECT_EQ(runner.dropped(), 5u);
  runner.stop();
  EXPECT_EQ(runner.queued(), 0u);
  EXPECT_FALSE(runner.running());
  runner.submit(event("10.0.0.1:80", "down", "up"));  // ignored after stop()
  EXPECT_EQ(runner.queued(), 0u);
  io.run_for(50ms);
  EXPECT_EQ(done_calls, 0);
  EXPECT_EQ(runner.ran(), 0u);
}

TEST(HookRunner, StopKillsTheRunningHook) {
  test::TempDir dir;
  const std::string pidfile = dir.file("pid");
  const std::string hook = dir.script("hook.sh", "echo $$ > " + pidfile + "\n/bin/sleep 100\n");
  asio::io_context io;
  int done_calls = 0;
  pid_t pid = -1;
  {
    HookRunner runner(io, {hook}, 60000ms,
                      [&](const HookEvent&, const ChildResult&) { ++done_calls; });
    runner.submit(event("10.0.0.1:80", "up", "down"));
    ASSERT_TRUE(run_until(io, [&] {
      const std::string text = test::read_file(pidfile);
      if (text.empty() || text.back() != '\n') return false;
      pid = std::stoi(text);
      return test::running_in_group(pid) == 2;  // the script and its sleep
    }));
  }  // the destructor stops the runner
  EXPECT_TRUE(test::wait_for([&] { return test::running_in_group(pid) == 0; }));
  EXPECT_TRUE(run_until(
      io, [&] { return !test::process_exists(pid); }, 3000ms));
  EXPECT_EQ(done_calls, 0);
}

TEST(HookRunner, EmptyCommandMeansHooksAreOff) {
  asio::io_context io;
  int done_calls = 0;
  HookRunner runner(io, {}, 1000ms, [&](const HookEvent&, const ChildResult&) { ++done_calls; });
  runner.submit(event("10.0.0.1:80", "up", "down"));
  EXPECT_FALSE(runner.running());
  EXPECT_EQ(runner.queued(), 0u);
  io.run_for(50ms);
  EXPECT_EQ(runner.ran(), 0u);
  EXPECT_EQ(done_calls, 0);
}

TEST(HookRunner, OnDoneMayDestroyTheRunner) {
  asio::io_context io;
  std::unique_ptr<HookRunner> runner;
  int done_calls = 0;
  runner = std::make_unique<HookRunner>(io, std::vector<std::string>{"/bin/true"}, 5000ms,
                                        [&](const HookEvent&, const ChildResult&) {
                                          ++done_calls;
                                          runner.reset();
                                        });
  runner->submit(event("10.0.0.1:80", "up", "down"));
  runner->submit(event("10.0.0.1:80", "down", "up"));
  ASSERT_TRUE(run_until(io, [&] { return runner == nullptr; }));
  io.run_for(100ms);
  EXPECT_EQ(done_calls, 1);
}

TEST(HookRunner, EventsSubmittedFromOnDoneStillRunOneAtATime) {
  test::TempDir dir;
  const std::string log = dir.file("log");
  // Each hook notes its start and end; overlapping hooks would interleave the lines.
  const std::string hook =
      dir.script("hook.sh", "echo \"start $ILB_REASON\" >> " + log +
                                "\n/bin/sleep 0.05\necho \"end $ILB_REASON\" >> " + log);
  asio::io_context io;
  HookRunner* self = nullptr;
  HookRunner runner(io, {hook}, 5000ms, [&](const HookEvent& e, const ChildResult&) {
    if (e.reason == "1") {
      self->submit(event("10.0.0.1:80", "up", "down", "3"));
      self->submit(event("10.0.0.1:80", "up", "down", "4"));
    }
  });
  self = &runner;
  runner.submit(event("10.0.0.1:80", "up", "down", "1"));
  runner.submit(event("10.0.0.1:80", "up", "down", "2"));
  ASSERT_TRUE(run_until(
      io, [&] { return runner.ran() == 4; }, 10000ms));
  EXPECT_EQ(test::read_file(log),
            "start 1\nend 1\nstart 2\nend 2\nstart 3\nend 3\nstart 4\nend 4\n");
}

TEST(HookRunner, EnvironmentSplitsBackendAndStampsTime) {
  HookEvent e = event("192.168.1.20:11211", "up", "down", "timeout after 500 ms");
  e.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1764091066123));
  const ChildProcess::Env env = HookRunner::environment(e);
  auto get = [&](const std::string& name) {
    for (const auto& [k, v] : env) {
      if (k == name) return v;
    }
    return std::string("<missing>");
  };
  EXPECT_EQ(get("ILB_EVENT"), "health");
  EXPECT_EQ(get("ILB_BACKEND_ADDRESS"), "192.168.1.20");
  EXPECT_EQ(get("ILB_BACKEND_PORT"), "11211");
  EXPECT_EQ(get("ILB_REASON"), "timeout after 500 ms");
  EXPECT_EQ(get("ILB_TIME"), "2025-11-25T17:17:46.123Z");
  EXPECT_EQ(env.size(), 10u);
}

}  // namespace
}  // namespace ilb::cp

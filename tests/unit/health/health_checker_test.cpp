#include "controlplane/health/health_checker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "tests/unit/health/loopback.h"

namespace ilb::cp {
namespace {

using namespace test;
using abi::Health;

struct Seen {
  HealthEvent event;
  size_t requests_served = 0;  // requests the watched HTTP server had answered at that moment
};

class HealthCheckerTest : public ::testing::Test {
 protected:
  bool wait_for_events(size_t n, std::chrono::milliseconds limit = 5000ms) {
    return run_until(
        io_, [&] { return seen_.size() >= n; }, limit);
  }

  std::vector<HealthEvent> events_for(uint32_t key) const {
    std::vector<HealthEvent> out;
    for (const Seen& s : seen_) {
      if (s.event.key == key) out.push_back(s.event);
    }
    return out;
  }

  asio::io_context io_;
  const HttpServer* watched_ = nullptr;
  std::vector<Seen> seen_;
  HealthChecker checker_{io_, [this](const HealthEvent& e) {
                           seen_.push_back({e, watched_ ? watched_->requests().size() : 0});
                         }};
};

CheckTarget http_target(uint32_t key, uint16_t port, uint32_t rise = 2, uint32_t fall = 3) {
  CheckTarget t = loopback_target(key, CheckType::kHttp, port);
  t.check.rise = rise;
  t.check.fall = fall;
  return t;
}

// A tcp target probed with connect(): the tests that count the server's connections use it.
CheckTarget connect_target(uint32_t key, uint16_t port) {
  CheckTarget t = loopback_target(key, CheckType::kTcp, port);
  t.check.tcp_mode = TcpMode::kConnect;
  return t;
}

TEST_F(HealthCheckerTest, TcpTargetGoesUpAgainstListeningPort) {
  TcpServer server(io_);
  checker_.set_targets({connect_target(7, server.port())});
  EXPECT_EQ(checker_.health(7), Health::kUnknown);
  ASSERT_TRUE(wait_for_events(1));
  EXPECT_EQ(seen_[0].event.key, 7u);
  EXPECT_EQ(seen_[0].event.from, Health::kUnknown);
  EXPECT_EQ(seen_[0].event.to, Health::kUp);
  EXPECT_EQ(seen_[0].event.reason, "connected");
  EXPECT_EQ(checker_.health(7), Health::kUp);
  EXPECT_EQ(checker_.last_result(7), "connected");
}

TEST_F(HealthCheckerTest, TcpTargetGoesDownWhenRefused) {
  checker_.set_targets({connect_target(1, closed_port(io_))});
  ASSERT_TRUE(wait_for_events(1));
  EXPECT_EQ(seen_[0].event.from, Health::kUnknown);
  EXPECT_EQ(seen_[0].event.to, Health::kDown);
  EXPECT_EQ(seen_[0].event.reason, "connect: connection refused");
  EXPECT_EQ(checker_.health(1), Health::kDown);
}

// tcp checks are half-open by default: up on a SYN-ACK, down on an RST, and the server never
// accepts a connection (one real connection afterwards is the first and only one accepted).
TEST_F(HealthCheckerTest, TcpTargetsAreProbedHalfOpenByDefault) {
  if (::geteuid() != 0) GTEST_SKIP() << "half-open probes need CAP_NET_RAW";
  TcpServer server(io_);
  checker_.set_targets({loopback_target(1, CheckType::kTcp, server.port()),
                        loopback_target(2, CheckType::kTcp, closed_port(io_))});
  ASSERT_TRUE(wait_for_events(2));
  EXPECT_EQ(checker_.health(1), Health::kUp);
  EXPECT_EQ(checker_.last_result(1), "SYN-ACK");
  EXPECT_EQ(checker_.health(2), Health::kDown);
  EXPECT_EQ(checker_.last_result(2), "connection refused (RST)");
  ASSERT_TRUE(run_until(io_, [&] { return checker_.probes_completed() >= 10; }));
  asio::ip::tcp::socket client(io_);
  client.connect({kLoopback, server.port()});
  ASSERT_TRUE(run_until(io_, [&] { return server.accepted() >= 1; }));
  EXPECT_EQ(server.accepted(), 1u);
}

TEST_F(HealthCheckerTest, TcpTargetGoesDownOnTimeout) {
  FullBacklogListener black_hole;
  checker_.set_targets({loopback_target(1, CheckType::kTcp, black_hole.port(), 50, 150)});
  ASSERT_TRUE(wait_for_events(1));
  EXPECT_EQ(seen_[0].event.to, Health::kDown);
  EXPECT_EQ(seen_[0].event.reason, "timeout after 150 ms");
}

TEST_F(HealthCheckerTest, CheckPortOverridesBackendPort) {
  TcpServer server(io_);
  CheckTarget t = loopback_target(1, CheckType::kTcp, closed_port(io_));
  t.check.port = server.port();
  t.check.tcp_mode = TcpMode::kConnect;  // so that the server can see where the probe went
  checker_.set_targets({t});
  ASSERT_TRUE(wait_for_events(1));
  EXPECT_EQ(seen_[0].event.to, Health::kUp);
  EXPECT_TRUE(run_until(io_, [&] { return server.accepted() >= 1; }));
}

TEST_F(HealthCheckerTest, HttpTargetUpOn200DownOn503) {
  HttpServer ok(io_);
  HttpServer failing(io_);
  failing.status = 503;
  checker_.set_targets({http_target(1, ok.port()), http_target(2, failing.port())});
  ASSERT_TRUE(wait_for_events(2));
  EXPECT_EQ(checker_.health(1), Health::kUp);
  EXPECT_EQ(checker_.last_result(1), "HTTP 200");
  EXPECT_EQ(checker_.health(2), Health::kDown);
  ASSERT_EQ(events_for(2).size(), 1u);
  EXPECT_EQ(events_for(2)[0].reason, "HTTP 503");
}

TEST_F(HealthCheckerTest, HttpExpectStatusRangesAreHonoured) {
  HttpServer redirecting(io_);
  redirecting.status = 302;
  HttpServer ok(io_);
  CheckTarget accepts_redirect = http_target(1, redirecting.port());
  accepts_redirect.check.expect_status = {{200, 204}, {300, 399}};
  CheckTarget only_redirect = http_target(2, ok.port());
  only_redirect.check.expect_status = {{301, 302}};
  checker_.set_targets({accepts_redirect, only_redirect});
  ASSERT_TRUE(wait_for_events(2));
  EXPECT_EQ(checker_.health(1), Health::kUp);
  EXPECT_EQ(checker_.last_result(1), "HTTP 302");
  EXPECT_EQ(checker_.health(2), Health::kDown);
  EXPECT_EQ(checker_.last_result(2), "HTTP 200");
}

TEST_F(HealthCheckerTest, HttpSendsConfiguredMethodHostPathAndDefaultHost) {
  HttpServer configured(io_);
  HttpServer defaulted(io_);
  CheckTarget a = http_target(1, configured.port());
  a.check.host = "api.internal";
  a.check.path = "/healthz";
  a.check.method = "OPTIONS";
  checker_.set_targets({a, http_target(2, defaulted.port())});
  ASSERT_TRUE(wait_for_events(2));
  ASSERT_FALSE(configured.requests().empty());
  EXPECT_EQ(configured.requests()[0],
            "OPTIONS /healthz HTTP/1.1\r\nHost: api.internal\r\nUser-Agent: ilb-health/0.1\r\n"
            "Connection: close\r\n\r\n");
  ASSERT_FALSE(defaulted.requests().empty());
  EXPECT_NE(defaulted.requests()[0].find("\r\nHost: 127.0.0.1:" + std::to_string(defaulted.port()) +
                                         "\r\n"),
            std::string::npos)
      << defaulted.requests()[0];
  EXPECT_EQ(defaulted.requests()[0].rfind("GET / HTTP/1.1\r\n", 0), 0u);
}

TEST_F(HealthCheckerTest, HttpChecksTheConfiguredBodyText) {
  HttpServer server(io_);  // answers 200 with a body of "xx"
  CheckTarget want_xx = http_target(1, server.port());
  want_xx.check.expect_body = "xx";
  CheckTarget want_ready = http_target(2, server.port());
  want_ready.check.expect_body = "ready";
  checker_.set_targets({want_xx, want_ready});
  ASSERT_TRUE(wait_for_events(2));
  EXPECT_EQ(checker_.health(1), Health::kUp);
  EXPECT_EQ(checker_.health(2), Health::kDown);
  EXPECT_EQ(checker_.last_result(2), "HTTP 200, \"ready\" not in the body");
}

TEST_F(HealthCheckerTest, HttpKeepsTheConnectionOpenWhenConfiguredTo) {
  HttpServer server(io_);
  server.keep_alive = true;
  CheckTarget kept = http_target(1, server.port());
  kept.check.reuse_connection = true;
  checker_.set_targets({kept});
  ASSERT_TRUE(run_until(io_, [&] { return server.requests().size() >= 3; }));
  EXPECT_EQ(server.accepted(), 1u) << "one connection for every check";
  EXPECT_EQ(checker_.health(1), Health::kUp);
  checker_.set_targets({http_target(1, server.port())});
  ASSERT_TRUE(run_until(io_, [&] { return server.accepted() >= 3; }))
      << "without reuse_connection every check connects";
}

TEST_F(HealthCheckerTest, HttpTimeoutWhenServerNeverAnswers) {
  HttpServer silent(io_);
  silent.answer = false;
  CheckTarget t = http_target(1, silent.port());
  t.check.timeout_ms = 120;
  checker_.set_targets({t});
  ASSERT_TRUE(wait_for_events(1));
  EXPECT_EQ(seen_[0].event.to, Health::kDown);
  EXPECT_EQ(seen_[0].event.reason, "timeout after 120 ms");
}

// The server answers from a script; each event records how many requests had been answered when
// it fired, which pins every transition to the exact probe that caused it.
TEST_F(HealthCheckerTest, RiseAndFallCountsAreExact) {
  HttpServer server(io_);
  watched_ = &server;
  // Probe:          1    2    3    4    5    6    7    8    9   10   11  12...
  server.script = {200, 503, 503, 200, 503, 503, 503, 200, 503, 200, 200};
  server.status = 200;
  checker_.set_targets({http_target(1, server.port(), /*rise=*/2, /*fall=*/3)});
  ASSERT_TRUE(run_until(io_, [&] { return server.requests().size() >= 14; }));

  ASSERT_EQ(seen_.size(), 3u);
  EXPECT_EQ(seen_[0].event.from, Health::kUnknown);
  EXPECT_EQ(seen_[0].event.to, Health::kUp);
  EXPECT_EQ(seen_[0].requests_served, 1u) << "first result decides at once";
  EXPECT_EQ(seen_[1].event.from, Health::kUp);
  EXPECT_EQ(seen_[1].event.to, Health::kDown);
  EXPECT_EQ(seen_[1].requests_served, 7u) << "fall=3: probes 5, 6 and 7 (4 reset the count)";
  EXPECT_EQ(seen_[1].event.reason, "HTTP 503");
  EXPECT_EQ(seen_[2].event.from, Health::kDown);
  EXPECT_EQ(seen_[2].event.to, Health::kUp);
  EXPECT_EQ(seen_[2].requests_served, 11u) << "rise=2: probes 10 and 11 (9 reset the count)";
  EXPECT_EQ(seen_[2].event.reason, "HTTP 200");
}

TEST_F(HealthCheckerTest, InitialStateResumesWithoutTransition) {
  HttpServer healthy(io_);
  HttpServer failing(io_);
  failing.status = 500;
  watched_ = &failing;
  CheckTarget up = http_target(1, healthy.port(), 2, 2);
  up.initial = Health::kUp;
  CheckTarget was_up = http_target(2, failing.port(), 2, 2);
  was_up.initial = Health::kUp;
  checker_.set_targets({up, was_up});
  EXPECT_EQ(checker_.health(1), Health::kUp);
  EXPECT_EQ(checker_.health(2), Health::kUp);
  ASSERT_TRUE(run_until(
      io_, [&] { return healthy.requests().size() >= 4 && failing.requests().size() >= 4; }));
  EXPECT_TRUE(events_for(1).empty()) << "an up target that stays healthy reports nothing";
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].event.from, Health::kUp);
  EXPECT_EQ(seen_[0].event.to, Health::kDown);
  EXPECT_EQ(seen_[0].requests_served, 2u) << "fall=2 applies from the resumed state";
}

TEST_F(HealthCheckerTest, InitialDownNeedsRiseSuccesses) {
  HttpServer server(io_);
  watched_ = &server;
  CheckTarget t = http_target(1, server.port(), 3, 2);
  t.initial = Health::kDown;
  checker_.set_targets({t});
  ASSERT_TRUE(wait_for_events(1));
  EXPECT_EQ(seen_[0].event.from, Health::kDown);
  EXPECT_EQ(seen_[0].event.to, Health::kUp);
  EXPECT_EQ(seen_[0].requests_served, 3u);
}

TEST_F(HealthCheckerTest, NoneCheckIsUpAtOnce) {
  TcpServer server(io_);
  CheckTarget t = loopback_target(5, CheckType::kNone, server.port());
  CheckTarget already_up = loopback_target(6, CheckType::kNone, server.port());
  already_up.initial = Health::kUp;
  checker_.set_targets({t, already_up});
  EXPECT_EQ(checker_.health(5), Health::kUp);
  EXPECT_TRUE(seen_.empty()) << "the callback never runs inside set_targets()";
  ASSERT_TRUE(wait_for_events(1));
  // Nothing else happens: the backend is never probed.
  io_.run_for(200ms);
  EXPECT_EQ(server.accepted(), 0u);
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].event.key, 5u);
  EXPECT_EQ(seen_[0].event.from, Health::kUnknown);
  EXPECT_EQ(seen_[0].event.to, Health::kUp);
  EXPECT_EQ(seen_[0].event.reason, "no health check");
  EXPECT_EQ(checker_.last_result(6), "no health check");
}

TEST_F(HealthCheckerTest, ProbesOncePerInterval) {
  HttpServer server(io_);
  CheckTarget t = http_target(1, server.port());
  t.check.interval_ms = 100;
  checker_.set_targets({t});
  ASSERT_TRUE(run_until(io_, [&] { return server.requests().size() >= 6; }));
  const auto& times = server.request_times();
  for (size_t i = 1; i < times.size(); ++i) {
    const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(times[i] - times[i - 1]);
    EXPECT_GE(gap, 90ms) << "probe " << i;
    EXPECT_LE(gap, 400ms) << "probe " << i;
  }
}

// Targets configured together start at random offsets within the first interval, so that a
// thousand backends are not probed in one burst.
TEST_F(HealthCheckerTest, FirstProbesAreSpreadOverOneInterval) {
  TcpServer server(io_);
  std::vector<CheckTarget> targets;
  for (uint32_t key = 1; key <= 20; ++key) {
    targets.push_back(loopback_target(key, CheckType::kTcp, server.port(), 1000, 500));
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::chrono::steady_clock::duration> first;
  HealthChecker checker(
      io_, [&](const HealthEvent&) { first.push_back(std::chrono::steady_clock::now() - start); });
  checker.set_targets(targets);
  ASSERT_TRUE(run_until(io_, [&] { return first.size() == 20; }));
  const auto [earliest, latest] = std::minmax_element(first.begin(), first.end());
  EXPECT_LT(*latest, 1000ms + 500ms) << "every target is probed within its first interval";
  // 20 uniform offsets in [0, 1000) ms all falling within 300 ms of each other has a probability
  // of about 1e-9.
  EXPECT_GT(*latest - *earliest, 300ms) << "first probes must be spread, not simultaneous";
}

// With a 300 ms timeout and a 50 ms interval, five ticks pass while the first probe waits: none
// of them may open a second connection to the same backend.
TEST_F(HealthCheckerTest, RunningProbeIsNotDoubled) {
  HttpServer silent(io_);
  silent.answer = false;
  watched_ = &silent;
  CheckTarget t = http_target(1, silent.port());
  t.check.timeout_ms = 300;
  checker_.set_targets({t});
  ASSERT_TRUE(wait_for_events(1));
  EXPECT_EQ(seen_[0].event.reason, "timeout after 300 ms");
  EXPECT_EQ(seen_[0].requests_served, 1u);
  ASSERT_TRUE(run_until(io_, [&] { return silent.requests().size() >= 2; }))
      << "probing resumes after the timeout";
}

TEST_F(HealthCheckerTest, SetTargetsKeepsUnchangedAndStopsRemoved) {
  HttpServer kept(io_);
  HttpServer removed(io_);
  HttpServer added(io_);
  added.status = 503;
  const CheckTarget a = http_target(1, kept.port());
  const CheckTarget b = http_target(2, removed.port());
  checker_.set_targets({a, b});
  ASSERT_TRUE(wait_for_events(2));
  ASSERT_EQ(checker_.health(1), Health::kUp);
  ASSERT_EQ(checker_.health(2), Health::kUp);

  checker_.set_targets({a, http_target(3, added.port())});
  EXPECT_EQ(checker_.health(1), Health::kUp) << "unchanged target keeps its state";
  EXPECT_EQ(checker_.health(2), Health::kUnknown) << "removed target is forgotten";
  const size_t removed_count = removed.requests().size();
  const size_t kept_count = kept.requests().size();
  ASSERT_TRUE(run_until(
      io_, [&] { return kept.requests().size() >= kept_count + 4 && !added.requests().empty(); }));
  EXPECT_EQ(removed.requests().size(), removed_count) << "removed target is no longer probed";
  ASSERT_EQ(seen_.size(), 3u);
  EXPECT_EQ(seen_[2].event.key, 3u);
  EXPECT_EQ(seen_[2].event.from, Health::kUnknown);
  EXPECT_EQ(seen_[2].event.to, Health::kDown);
  EXPECT_EQ(events_for(1).size(), 1u);
}

TEST_F(HealthCheckerTest, ChangedCheckKeepsHealthOfSameBackend) {
  HttpServer server(io_);
  CheckTarget t = http_target(1, server.port());
  checker_.set_targets({t});
  ASSERT_TRUE(wait_for_events(1));
  ASSERT_EQ(checker_.health(1), Health::kUp);
  const size_t before = server.requests().size();
  t.check.interval_ms = 20;
  t.check.path = "/other";
  checker_.set_targets({t});
  EXPECT_EQ(checker_.health(1), Health::kUp);
  ASSERT_TRUE(run_until(io_, [&] { return server.requests().size() >= before + 3; }));
  EXPECT_EQ(server.requests().back().rfind("GET /other ", 0), 0u) << "new check is in force";
  EXPECT_EQ(seen_.size(), 1u) << "no transition for the same backend";
}

TEST_F(HealthCheckerTest, DuplicateKeysAreRejected) {
  TcpServer server(io_);
  EXPECT_THROW(checker_.set_targets({loopback_target(1, CheckType::kTcp, server.port()),
                                     loopback_target(1, CheckType::kTcp, server.port())}),
               std::invalid_argument);
}

TEST_F(HealthCheckerTest, StopCancelsEverything) {
  HttpServer silent(io_);
  silent.answer = false;
  TcpServer tcp(io_);
  CheckTarget slow = http_target(1, silent.port());
  slow.check.timeout_ms = 5000;
  checker_.set_targets({slow, connect_target(2, tcp.port())});
  ASSERT_TRUE(run_until(io_, [&] { return !silent.requests().empty(); }));
  const size_t events_before = seen_.size();
  checker_.stop();
  EXPECT_EQ(checker_.health(2), Health::kUnknown);
  const size_t accepted = tcp.accepted();
  io_.run_for(300ms);
  EXPECT_EQ(seen_.size(), events_before);
  // A connection the kernel completed just before stop() may still be accepted afterwards; a
  // checker still running would have made about six more.
  EXPECT_LE(tcp.accepted(), accepted + 1) << "no probe after stop()";
  checker_.set_targets({loopback_target(3, CheckType::kNone, 1)});
  io_.run_for(50ms);
  EXPECT_EQ(seen_.size(), events_before) << "a stopped checker stays stopped";
}

// A callback may reconfigure the checker, even removing the very target it reports on.
TEST_F(HealthCheckerTest, CallbackMayRemoveItsOwnTarget) {
  TcpServer server(io_);
  asio::io_context& io = io_;
  std::vector<HealthEvent> events;
  std::unique_ptr<HealthChecker> checker;
  checker = std::make_unique<HealthChecker>(io, [&](const HealthEvent& e) {
    events.push_back(e);
    checker->set_targets({});
  });
  checker->set_targets({connect_target(1, server.port())});
  ASSERT_TRUE(run_until(io, [&] { return !events.empty() && server.accepted() == 1; }));
  io.run_for(200ms);
  EXPECT_EQ(events.size(), 1u);
  EXPECT_EQ(server.accepted(), 1u) << "the removed target is not probed again";
  EXPECT_EQ(checker->health(1), Health::kUnknown);
}

TEST_F(HealthCheckerTest, ThousandTargetsOnOneThread) {
  TcpServer server(io_);
  std::vector<CheckTarget> targets;
  for (uint32_t key = 1; key <= 1000; ++key) {
    targets.push_back(loopback_target(key, CheckType::kTcp, server.port(), 500, 1000));
  }
  checker_.set_targets(targets);
  ASSERT_TRUE(wait_for_events(1000, 10000ms)) << "only " << seen_.size() << " reported";
  for (uint32_t key = 1; key <= 1000; ++key) ASSERT_EQ(checker_.health(key), Health::kUp) << key;
}

}  // namespace
}  // namespace ilb::cp

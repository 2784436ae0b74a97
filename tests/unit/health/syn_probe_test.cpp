#include "controlplane/health/syn_probe.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "tests/unit/health/loopback.h"

namespace ilb::cp {
namespace {

using namespace test;

class SynProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    prober_ = SynProber::open(io_, error);
    if (!prober_) GTEST_SKIP() << "half-open probes need CAP_NET_RAW: " << error;
  }

  std::shared_ptr<SynProbe> make(uint16_t port, std::chrono::milliseconds timeout = 500ms) {
    return std::make_shared<SynProbe>(io_, prober_, asio::ip::tcp::endpoint(kLoopback, port),
                                      timeout);
  }

  std::optional<ProbeResult> run_probe(uint16_t port, std::chrono::milliseconds timeout = 500ms) {
    std::optional<ProbeResult> result;
    make(port, timeout)->start([&](ProbeResult r) { result = std::move(r); });
    run_until(io_, [&] { return result.has_value(); });
    return result;
  }

  asio::io_context io_;
  std::shared_ptr<SynProber> prober_;
};

TEST_F(SynProbeTest, SynAckFromListeningPortMeansUp) {
  TcpServer server(io_);
  const auto result = run_probe(server.port());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok);
  EXPECT_EQ(result->reason, "SYN-ACK");
}

// The point of the half-open probe: the server application never gets a connection to count as
// an error. Twenty probes, then one real connection: accept() returns connections in order, so
// once the real one is accepted, any probe that had completed a handshake would have been too.
TEST_F(SynProbeTest, ServerNeverAcceptsAConnection) {
  TcpServer server(io_);
  for (int i = 0; i < 20; ++i) {
    const auto result = run_probe(server.port());
    ASSERT_TRUE(result && result->ok) << (result ? result->reason : "no result");
  }
  asio::ip::tcp::socket client(io_);
  client.connect({kLoopback, server.port()});
  ASSERT_TRUE(run_until(io_, [&] { return server.accepted() >= 1; }));
  EXPECT_EQ(server.accepted(), 1u);
}

TEST_F(SynProbeTest, RstFromClosedPortMeansDown) {
  const auto result = run_probe(closed_port(io_));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "connection refused (RST)");
}

TEST_F(SynProbeTest, TimesOutWhenNoAnswerComes) {
  FullBacklogListener black_hole;
  const auto started = std::chrono::steady_clock::now();
  const auto result = run_probe(black_hole.port(), 200ms);
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "timeout after 200 ms");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 200ms);
}

// Several checks naming the same backend address and port may probe at the same moment; each
// gets its own source port and its own answer.
// More replies than one batched read takes (32), all queued before the first read; at most 64
// probes can be in flight to one address and port (one per reserved source port).
TEST_F(SynProbeTest, ConcurrentProbesToOneBackendAllGetAnswers) {
  TcpServer server(io_);
  std::vector<std::optional<ProbeResult>> results(60);
  std::vector<std::shared_ptr<SynProbe>> probes;
  for (auto& result : results) {
    probes.push_back(make(server.port()));
    probes.back()->start([&result](ProbeResult r) { result = std::move(r); });
  }
  ASSERT_TRUE(run_until(io_, [&] {
    for (const auto& r : results) {
      if (!r) return false;
    }
    return true;
  }));
  for (const auto& r : results) EXPECT_TRUE(r->ok) << r->reason;
  EXPECT_EQ(prober_->replies_matched(), results.size());
}

TEST_F(SynProbeTest, CancelSuppressesResult) {
  FullBacklogListener black_hole;
  auto probe = make(black_hole.port(), 100ms);
  bool called = false;
  probe->start([&](ProbeResult) { called = true; });
  probe->cancel();
  probe.reset();
  run_until(
      io_, [] { return false; }, 300ms);
  EXPECT_FALSE(called);
}

// Replies are matched by the acknowledged sequence number: a probe that was cancelled and
// replaced gets the answer to its own SYN, never a stale one.
TEST_F(SynProbeTest, CancelledProbeLeavesNoPendingEntryBehind) {
  TcpServer server(io_);
  auto first = make(server.port());
  bool first_called = false;
  first->start([&](ProbeResult) { first_called = true; });
  first->cancel();
  const auto result = run_probe(server.port());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok);
  EXPECT_FALSE(first_called);
}

}  // namespace
}  // namespace ilb::cp

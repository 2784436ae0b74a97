#include "controlplane/health/tcp_check.h"

#include <gtest/gtest.h>

#include <optional>

#include "tests/unit/health/loopback.h"

namespace ilb::cp {
namespace {

using namespace test;

std::optional<ProbeResult> run_probe(asio::io_context& io, uint16_t port,
                                     std::chrono::milliseconds timeout = 500ms) {
  auto probe = std::make_shared<TcpProbe>(io, asio::ip::tcp::endpoint(kLoopback, port), timeout);
  std::optional<ProbeResult> result;
  probe->start([&](ProbeResult r) { result = std::move(r); });
  run_until(io, [&] { return result.has_value(); });
  return result;
}

TEST(TcpProbe, SucceedsAgainstListeningPort) {
  asio::io_context io;
  TcpServer server(io);
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok);
  EXPECT_EQ(result->reason, "connected");
}

TEST(TcpProbe, FailsWithConnectionRefusedOnClosedPort) {
  asio::io_context io;
  const auto result = run_probe(io, closed_port(io));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "connect: connection refused");
}

TEST(TcpProbe, TimesOutWhenHandshakeNeverCompletes) {
  asio::io_context io;
  FullBacklogListener black_hole;
  const auto started = std::chrono::steady_clock::now();
  const auto result = run_probe(io, black_hole.port(), 200ms);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "timeout after 200 ms");
  EXPECT_GE(elapsed, 200ms);
  EXPECT_LT(elapsed, 900ms) << "a dropped SYN is retried after 1 s; the timeout must come first";
}

// The server must see the probe's connection end with an RST, not a FIN: MySQL and MariaDB count
// a FIN before their handshake as a connection error against the prober's host.
TEST(TcpProbe, ClosesConnectionWithReset) {
  asio::io_context io;
  TcpServer server(io);
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result && result->ok);
  ASSERT_TRUE(run_until(io, [&] { return server.endings().size() == 1; }));
  EXPECT_EQ(server.endings()[0], asio::error::connection_reset)
      << "server saw: " << server.endings()[0].message();
}

TEST(TcpProbe, CancelSuppressesResult) {
  asio::io_context io;
  FullBacklogListener black_hole;
  auto probe =
      std::make_shared<TcpProbe>(io, asio::ip::tcp::endpoint(kLoopback, black_hole.port()), 100ms);
  bool called = false;
  probe->start([&](ProbeResult) { called = true; });
  probe->cancel();
  probe.reset();
  // With its socket and timer closed the probe leaves no work behind: run() returns.
  io.run_for(2s);
  EXPECT_TRUE(io.stopped());
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace ilb::cp

#include "controlplane/health/memcached_check.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>

#include "tests/unit/health/child_server.h"
#include "tests/unit/health/loopback.h"

namespace ilb::cp {
namespace {

using namespace test;

std::optional<ProbeResult> run_probe(asio::io_context& io, uint16_t port,
                                     std::chrono::milliseconds timeout = 1000ms) {
  auto probe =
      std::make_shared<MemcachedProbe>(io, asio::ip::tcp::endpoint(kLoopback, port), timeout);
  std::optional<ProbeResult> result;
  probe->start([&](ProbeResult r) { result = std::move(r); });
  run_until(io, [&] { return result.has_value(); });
  return result;
}

// Reads what each connection sends, answers with `reply` (or closes at once if it is empty), then
// keeps the connection open and records the request.
class ScriptedServer {
 public:
  ScriptedServer(asio::io_context& io, std::string reply)
      : acceptor_(io, {kLoopback, 0}), reply_(std::move(reply)) {
    accept();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  const std::string& received() const { return received_; }

 private:
  struct Conn {
    explicit Conn(asio::ip::tcp::socket s) : socket(std::move(s)) {}
    asio::ip::tcp::socket socket;
    std::array<char, 1024> in{};
  };
  void accept() {
    acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) return;
      auto c = std::make_shared<Conn>(std::move(socket));
      c->socket.async_read_some(asio::buffer(c->in), [this, c](std::error_code rec, size_t n) {
        if (rec) return;
        received_.append(c->in.data(), n);
        if (reply_.empty()) {
          c->socket.close();
          return;
        }
        asio::async_write(c->socket, asio::buffer(reply_),
                          [this, c](std::error_code, size_t) { conns_.push_back(c); });
      });
      accept();
    });
  }
  asio::ip::tcp::acceptor acceptor_;
  std::string reply_;
  std::string received_;
  std::vector<std::shared_ptr<Conn>> conns_;
};

TEST(MemcachedProbe, UpOnVersionLineAndSendsVersionThenQuit) {
  asio::io_context io;
  ScriptedServer server(io, "VERSION 1.4.25\r\n");
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok);
  EXPECT_EQ(result->reason, "memcached: VERSION 1.4.25");
  EXPECT_EQ(server.received(), "version\r\nquit\r\n");
}

TEST(MemcachedProbe, DownOnOtherReplyWithItAsReason) {
  asio::io_context io;
  ScriptedServer server(io, "SERVER_ERROR out of memory\r\n");
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "memcached: SERVER_ERROR out of memory");
}

TEST(MemcachedProbe, DownWhenTheServerClosesWithoutReplying) {
  asio::io_context io;
  ScriptedServer server(io, "");
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "memcached: connection closed before the reply");
}

TEST(MemcachedProbe, DownOnClosedPort) {
  asio::io_context io;
  const auto result = run_probe(io, closed_port(io));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "connect: connection refused");
}

TEST(MemcachedProbe, DownOnSilentServerAfterTimeout) {
  asio::io_context io;
  TcpServer server(io);
  const auto result = run_probe(io, server.port(), 200ms);
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "timeout after 200 ms");
}

TEST(MemcachedProbe, DownOnEndlessLineAfter16KiB) {
  asio::io_context io;
  ScriptedServer server(io, std::string(20000, 'x'));
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "memcached: reply line longer than 16 KiB");
}

class MemcachedServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const uint16_t port = free_port();
    server_ = std::make_unique<ChildServer>(memcached_argv(port), port);
  }
  void TearDown() override { server_.reset(); }

  std::unique_ptr<ChildServer> server_;
  asio::io_context io_;
};

TEST_F(MemcachedServerTest, UpAgainstRealMemcached) {
  const auto result = run_probe(io_, server_->port());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_TRUE(result->reason.starts_with("memcached: VERSION 1.")) << result->reason;
}

TEST_F(MemcachedServerTest, DownOnceTheServerIsKilled) {
  server_->stop();
  const auto result = run_probe(io_, server_->port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "connect: connection refused");
}

}  // namespace
}  // namespace ilb::cp

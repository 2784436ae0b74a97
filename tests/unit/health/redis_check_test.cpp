#include "controlplane/health/redis_check.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>

#include "tests/unit/health/child_server.h"
#include "tests/unit/health/loopback.h"

namespace ilb::cp {
namespace {

using namespace test;

struct RedisOptions {
  std::string username;
  std::string password;
  std::string role;
};

std::optional<ProbeResult> run_probe(asio::io_context& io, uint16_t port,
                                     const RedisOptions& options = {},
                                     std::chrono::milliseconds timeout = 1000ms) {
  auto probe = std::make_shared<RedisProbe>(io, asio::ip::tcp::endpoint(kLoopback, port), timeout,
                                            options.username, options.password, options.role);
  std::optional<ProbeResult> result;
  probe->start([&](ProbeResult r) { result = std::move(r); });
  run_until(io, [&] { return result.has_value(); });
  return result;
}

// Answers every connection with `reply` once it has read something, then keeps it open.
class ScriptedServer {
 public:
  ScriptedServer(asio::io_context& io, std::string reply)
      : acceptor_(io, {kLoopback, 0}), reply_(std::move(reply)) {
    accept();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

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
      c->socket.async_read_some(asio::buffer(c->in), [this, c](std::error_code rec, size_t) {
        if (rec) return;
        asio::async_write(c->socket, asio::buffer(reply_),
                          [this, c](std::error_code, size_t) { conns_.push_back(c); });
      });
      accept();
    });
  }
  asio::ip::tcp::acceptor acceptor_;
  std::string reply_;
  std::vector<std::shared_ptr<Conn>> conns_;
};

TEST(RedisProbe, RequestIsOnePipelineEndingInQuit) {
  EXPECT_EQ(RedisProbe::make_request("", "", false), "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nQUIT\r\n");
  EXPECT_EQ(RedisProbe::make_request("", "s p", true),
            "*2\r\n$4\r\nAUTH\r\n$3\r\ns p\r\n*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nROLE\r\n"
            "*1\r\n$4\r\nQUIT\r\n");
  EXPECT_EQ(RedisProbe::make_request("app", "pw", false),
            "*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$2\r\npw\r\n*1\r\n$4\r\nPING\r\n"
            "*1\r\n$4\r\nQUIT\r\n");
}

TEST(RedisProbe, ParsesRespRepliesAndKeepsAnArraysFirstElement) {
  RespReply r;
  std::string data = "+PONG\r\n-ERR no\r\n:42\r\n$5\r\nhello\r\n$-1\r\n";
  size_t at = RedisProbe::parse_reply(data, 0, r);
  EXPECT_EQ(r.type, '+');
  EXPECT_EQ(r.text, "PONG");
  at = RedisProbe::parse_reply(data, at, r);
  EXPECT_EQ(r.type, '-');
  EXPECT_EQ(r.text, "ERR no");
  at = RedisProbe::parse_reply(data, at, r);
  EXPECT_EQ(r.text, "42");
  at = RedisProbe::parse_reply(data, at, r);
  EXPECT_EQ(r.text, "hello");
  at = RedisProbe::parse_reply(data, at, r);
  EXPECT_EQ(r.text, "(nil)");
  EXPECT_EQ(at, data.size());

  // ROLE on a master with one replica: nested arrays.
  data =
      "*3\r\n$6\r\nmaster\r\n:3129\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n$4\r\n9001\r\n$4\r\n3129\r\n";
  EXPECT_EQ(RedisProbe::parse_reply(data, 0, r), data.size());
  EXPECT_EQ(r.type, '*');
  EXPECT_EQ(r.text, "master");
}

TEST(RedisProbe, ParserWaitsForIncompleteRepliesAndRejectsMalformedOnes) {
  RespReply r;
  for (const char* partial : {"", "+PON", "$5\r\nhel", "*2\r\n$5\r\nslave\r\n", "$5\r\nhello\r"}) {
    EXPECT_EQ(RedisProbe::parse_reply(partial, 0, r), RedisProbe::kIncomplete) << partial;
  }
  for (const char* bad :
       {"PONG\r\n", "$x\r\n", "$-2\r\n", "$2\r\nabcd\r\n", "*-5\r\n", "$99999999\r\n",
        "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n"}) {
    EXPECT_EQ(RedisProbe::parse_reply(bad, 0, r), RedisProbe::kMalformed) << bad;
  }
}

TEST(RedisProbe, DownOnClosedPort) {
  asio::io_context io;
  const auto result = run_probe(io, closed_port(io));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "connect: connection refused");
}

TEST(RedisProbe, DownOnSilentServerAfterTimeout) {
  asio::io_context io;
  TcpServer server(io);
  const auto started = std::chrono::steady_clock::now();
  const auto result = run_probe(io, server.port(), {}, 200ms);
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "timeout after 200 ms");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 200ms);
}

TEST(RedisProbe, DownOnGarbageWithTheGarbageAsReason) {
  asio::io_context io;
  ScriptedServer server(io, "HTTP/1.1 400 Bad Request\r\n\r\n");
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "redis: malformed reply HTTP/1.1 400 Bad Request????");
}

TEST(RedisProbe, DownWhenPingIsNotAnsweredWithPong) {
  asio::io_context io;
  ScriptedServer server(io, "+OK\r\n");
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "redis: PING answered +OK");
}

class RedisServerTest : public ::testing::Test {
 protected:
  void start_redis(std::vector<std::string> extra = {}) {
    const uint16_t port = free_port();
    auto argv = redis_argv(port, dir_.path());
    argv.insert(argv.end(), extra.begin(), extra.end());
    servers_.push_back(std::make_unique<ChildServer>(argv, port, dir_.path()));
  }
  uint16_t port(size_t i = 0) const { return servers_.at(i)->port(); }
  void TearDown() override { servers_.clear(); }

  ScratchDir dir_;
  std::vector<std::unique_ptr<ChildServer>> servers_;
  asio::io_context io_;
};

TEST_F(RedisServerTest, UpOnPong) {
  start_redis();
  const auto result = run_probe(io_, port());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_EQ(result->reason, "redis: +PONG");
}

TEST_F(RedisServerTest, AuthenticatesWithPasswordOrAclUser) {
  start_redis({"--requirepass", "secret"});
  auto result = run_probe(io_, port(), {"", "secret", ""});
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_EQ(result->reason, "redis: +PONG");
  result = run_probe(io_, port(), {"default", "secret", ""});
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
}

TEST_F(RedisServerTest, DownWithoutOrWithWrongPasswordGivingTheErrorAsReason) {
  start_redis({"--requirepass", "secret"});
  auto result = run_probe(io_, port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_TRUE(result->reason.starts_with("redis: -NOAUTH ")) << result->reason;
  result = run_probe(io_, port(), {"", "wrong", ""});
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_TRUE(result->reason.starts_with("redis: -WRONGPASS ")) << result->reason;
}

TEST_F(RedisServerTest, RoleCheckTellsMasterFromReplica) {
  start_redis();
  start_redis({"--replicaof", "127.0.0.1", std::to_string(port(0))});
  // The replica answers -LOADING while it loads the master's first snapshot; wait until it is up.
  std::optional<ProbeResult> replica;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  do {
    replica = run_probe(io_, port(1), {"", "", "replica"});
    ASSERT_TRUE(replica);
  } while (!replica->ok && std::chrono::steady_clock::now() < deadline);
  EXPECT_TRUE(replica->ok) << replica->reason;
  EXPECT_EQ(replica->reason, "redis: +PONG, role replica");

  auto result = run_probe(io_, port(0), {"", "", "replica"});
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "redis: role is master, want replica");
  result = run_probe(io_, port(0), {"", "", "master"});
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_EQ(result->reason, "redis: +PONG, role master");
  result = run_probe(io_, port(1), {"", "", "master"});
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "redis: role is replica, want master");
}

TEST_F(RedisServerTest, DownOnceTheServerIsKilled) {
  start_redis();
  auto result = run_probe(io_, port());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok);
  servers_[0]->stop();
  result = run_probe(io_, port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "connect: connection refused");
}

}  // namespace
}  // namespace ilb::cp

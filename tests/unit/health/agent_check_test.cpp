#include "controlplane/health/agent_check.h"

#include <gtest/gtest.h>

#include <optional>

#include "tests/unit/health/loopback.h"

namespace ilb::cp {
namespace {

using namespace std::chrono_literals;
using test::kLoopback;
using test::run_until;

// A TCP agent on 127.0.0.1: for every connection it writes `reply` and closes its side, or, with
// `silent`, keeps the connection open and says nothing.
class LineAgent {
 public:
  explicit LineAgent(asio::io_context& io, std::string reply, bool silent = false)
      : acceptor_(io, {kLoopback, 0}), reply_(std::move(reply)), silent_(silent) {
    accept();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  size_t accepted() const { return accepted_; }

 private:
  struct Conn {
    explicit Conn(asio::ip::tcp::socket s) : socket(std::move(s)) {}
    asio::ip::tcp::socket socket;
    std::array<char, 256> scratch{};
  };

  void accept() {
    acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) return;
      ++accepted_;
      auto c = std::make_shared<Conn>(std::move(socket));
      if (silent_) {
        held_.push_back(c);
      } else {
        asio::async_write(c->socket, asio::buffer(reply_), [this, c](std::error_code, size_t) {
          std::error_code ignored;
          c->socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
          read_until_end(c);
        });
      }
      accept();
    });
  }
  void read_until_end(std::shared_ptr<Conn> c) {
    c->socket.async_read_some(asio::buffer(c->scratch), [this, c](std::error_code ec, size_t) {
      if (!ec) read_until_end(c);
    });
  }

  asio::ip::tcp::acceptor acceptor_;
  std::string reply_;
  bool silent_;
  size_t accepted_ = 0;
  std::vector<std::shared_ptr<Conn>> held_;
};

ProbeResult probe_once(asio::io_context& io, uint16_t port, AgentProtocol protocol,
                       std::chrono::milliseconds timeout = 1000ms, std::string path = "/",
                       std::string host = "") {
  std::optional<ProbeResult> result;
  auto probe = std::make_shared<AgentProbe>(io, asio::ip::tcp::endpoint(kLoopback, port), timeout,
                                            protocol, std::move(path), std::move(host));
  probe->start([&](ProbeResult r) { result = std::move(r); });
  EXPECT_FALSE(result.has_value());  // never from inside start()
  EXPECT_TRUE(run_until(io, [&] { return result.has_value(); }));
  return result.value_or(ProbeResult{false, "no result"});
}

AgentAdvice advice(bool drain, std::optional<uint32_t> weight = std::nullopt) {
  AgentAdvice a;
  a.drain = drain;
  a.weight_pct = weight;
  return a;
}

// The grammar, case by case.
TEST(ParseAgentReply, Grammar) {
  struct Case {
    std::string reply;
    bool ok;
    std::string reason;
    std::optional<AgentAdvice> advice;
  };
  const std::vector<Case> cases = {
      {"up", true, "agent: up", advice(false)},
      {"up\r\n", true, "agent: up", advice(false)},
      {"UP\n", true, "agent: up", advice(false)},
      {"ready", true, "agent: ready", advice(false)},
      {"down", false, "agent: down", advice(false)},
      {"fail\n", false, "agent: fail", advice(false)},
      {"Stopped", false, "agent: stopped", advice(false)},
      {"drain", true, "agent: drain", advice(true)},
      {"50%", true, "agent: 50%", advice(false, 50)},
      {"0%", true, "agent: 0%", advice(false, 0)},
      {"100%", true, "agent: 100%", advice(false, 100)},
      {"up 50%", true, "agent: up 50%", advice(false, 50)},
      {"up,75%\r\n", true, "agent: up 75%", advice(false, 75)},
      {"  ready\t25%  ", true, "agent: ready 25%", advice(false, 25)},
      {"drain 10%", true, "agent: drain 10%", advice(true, 10)},
      {"down 50%", false, "agent: down 50%", advice(false, 50)},
      {"up down", false, "agent: up down", advice(false)},
      {"drain,down", false, "agent: drain down", advice(true)},
      {"", false, "agent: bad reply ''", std::nullopt},
      {"\r\n", false, "agent: bad reply ''", std::nullopt},
      {" , \t", false, "agent: bad reply ' , ?'", std::nullopt},
      {"upp", false, "agent: bad reply 'upp'", std::nullopt},
      {"up maint", false, "agent: bad reply 'up maint'", std::nullopt},
      {"101%", false, "agent: bad reply '101%'", std::nullopt},
      {"-5%", false, "agent: bad reply '-5%'", std::nullopt},
      {"%", false, "agent: bad reply '%'", std::nullopt},
      {"50", false, "agent: bad reply '50'", std::nullopt},
      {"5.5%", false, "agent: bad reply '5.5%'", std::nullopt},
      {"1000%", false, "agent: bad reply '1000%'", std::nullopt},
      {"up\nup", false, "agent: bad reply 'up?up'", std::nullopt},
      {"HTTP/1.1 200 OK", false, "agent: bad reply 'HTTP/1.1 200 OK'", std::nullopt},
      {std::string("up\0", 3), false, "agent: bad reply 'up?'", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("reply '" + c.reply + "'");
    const ProbeResult r = parse_agent_reply(c.reply);
    EXPECT_EQ(r.ok, c.ok);
    EXPECT_EQ(r.reason, c.reason);
    EXPECT_EQ(r.advice, c.advice);
  }
}

TEST(ParseAgentReply, LongGarbageIsCutInTheReason) {
  const ProbeResult r = parse_agent_reply(std::string(1000, 'z'));
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.advice.has_value());
  EXPECT_EQ(r.reason, "agent: bad reply '" + std::string(120, 'z') + "...'");
}

TEST(AgentCheckTcp, RepliesAreParsed) {
  struct Case {
    std::string reply;
    bool ok;
    std::string reason;
    std::optional<AgentAdvice> advice;
  };
  const std::vector<Case> cases = {
      {"up\n", true, "agent: up", advice(false)},
      {"up 50%\r\n", true, "agent: up 50%", advice(false, 50)},
      {"drain\n", true, "agent: drain", advice(true)},
      {"down\n", false, "agent: down", advice(false)},
      {"75%", true, "agent: 75%", advice(false, 75)},  // no newline: the close ends the line
      {"ready\nthen more text the agent should not have sent\n", true, "agent: ready",
       advice(false)},
      {"no thanks\n", false, "agent: bad reply 'no thanks'", std::nullopt},
      {"\x01\x02garbage\n", false, "agent: bad reply '??garbage'", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("reply '" + c.reply + "'");
    asio::io_context io;
    LineAgent agent(io, c.reply);
    const ProbeResult r = probe_once(io, agent.port(), AgentProtocol::kTcp);
    EXPECT_EQ(r.ok, c.ok);
    EXPECT_EQ(r.reason, c.reason);
    EXPECT_EQ(r.advice, c.advice);
  }
}

TEST(AgentCheckTcp, SilentAgentTimesOut) {
  asio::io_context io;
  LineAgent agent(io, "", true);
  const auto t0 = std::chrono::steady_clock::now();
  const ProbeResult r = probe_once(io, agent.port(), AgentProtocol::kTcp, 200ms);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "timeout after 200 ms");
  EXPECT_FALSE(r.advice.has_value());
  EXPECT_EQ(agent.accepted(), 1u);
}

TEST(AgentCheckTcp, AgentClosingWithoutAReplyIsDown) {
  asio::io_context io;
  LineAgent agent(io, "");
  const ProbeResult r = probe_once(io, agent.port(), AgentProtocol::kTcp);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "agent: connection closed without a reply");
  EXPECT_FALSE(r.advice.has_value());
}

TEST(AgentCheckTcp, TenKilobyteReplyIsRejected) {
  asio::io_context io;
  LineAgent agent(io, std::string(10 * 1024, 'u'));
  const ProbeResult r = probe_once(io, agent.port(), AgentProtocol::kTcp);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "agent: reply longer than 512 bytes");
  EXPECT_FALSE(r.advice.has_value());
}

TEST(AgentCheckTcp, NoAgentListeningIsDown) {
  asio::io_context io;
  const ProbeResult r = probe_once(io, test::closed_port(io), AgentProtocol::kTcp);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "connect: connection refused");
}

TEST(AgentCheckTcp, CancelSuppressesTheResult) {
  asio::io_context io;
  LineAgent agent(io, "", true);
  bool called = false;
  auto probe = std::make_shared<AgentProbe>(io, asio::ip::tcp::endpoint(kLoopback, agent.port()),
                                            300ms, AgentProtocol::kTcp, "/", "");
  probe->start([&](ProbeResult) { called = true; });
  ASSERT_TRUE(run_until(io, [&] { return agent.accepted() == 1; }));
  probe->cancel();
  io.restart();
  io.run_for(500ms);
  EXPECT_FALSE(called);
}

std::string http_response(const std::string& status_line, const std::string& body,
                          bool content_length = true) {
  std::string r = "HTTP/1.1 " + status_line + "\r\nConnection: close\r\n";
  if (content_length) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

TEST(AgentCheckHttp, BodyIsTheReplyAndTheRequestIsAGet) {
  asio::io_context io;
  test::HttpServer server(io);
  server.raw_response = http_response("200 OK", "up 50%\n");
  const ProbeResult r = probe_once(io, server.port(), AgentProtocol::kHttp, 1000ms, "/agent");
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.reason, "agent: up 50%");
  EXPECT_EQ(r.advice, advice(false, 50));
  ASSERT_EQ(server.requests().size(), 1u);
  const std::string expected_start =
      "GET /agent HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n";
  EXPECT_EQ(server.requests()[0].rfind(expected_start, 0), 0u) << server.requests()[0];
  EXPECT_NE(server.requests()[0].find("Connection: close\r\n"), std::string::npos);
}

TEST(AgentCheckHttp, HostHeaderCanBeSet) {
  asio::io_context io;
  test::HttpServer server(io);
  server.raw_response = http_response("200 OK", "drain");
  const ProbeResult r =
      probe_once(io, server.port(), AgentProtocol::kHttp, 1000ms, "/state", "db1.example");
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.advice, advice(true));
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].rfind("GET /state HTTP/1.1\r\nHost: db1.example\r\n", 0), 0u);
}

TEST(AgentCheckHttp, BodyEndedByCloseIsAccepted) {
  asio::io_context io;
  test::HttpServer server(io);
  server.raw_response = http_response("200 OK", "down\r\n", false);
  const ProbeResult r = probe_once(io, server.port(), AgentProtocol::kHttp);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "agent: down");
  EXPECT_EQ(r.advice, advice(false));
}

TEST(AgentCheckHttp, ChunkedBodyIsAccepted) {
  asio::io_context io;
  test::HttpServer server(io);
  server.raw_response =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nup \r\n3\r\n30%\r\n0\r\n\r\n";
  const ProbeResult r = probe_once(io, server.port(), AgentProtocol::kHttp);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.reason, "agent: up 30%");
}

TEST(AgentCheckHttp, Non2xxStatusIsDown) {
  asio::io_context io;
  test::HttpServer server(io);
  server.raw_response = http_response("503 Service Unavailable", "up\n");
  const ProbeResult r = probe_once(io, server.port(), AgentProtocol::kHttp);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "agent: HTTP 503");
  EXPECT_FALSE(r.advice.has_value());
}

TEST(AgentCheckHttp, GarbageBodyIsABadReply) {
  asio::io_context io;
  test::HttpServer server(io);
  server.raw_response = http_response("200 OK", "<html>it works</html>\n");
  const ProbeResult r = probe_once(io, server.port(), AgentProtocol::kHttp);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "agent: bad reply '<html>it works</html>'");
  EXPECT_FALSE(r.advice.has_value());
}

TEST(AgentCheckHttp, TenKilobyteBodyIsRejected) {
  asio::io_context io;
  test::HttpServer server(io);
  server.raw_response = http_response("200 OK", std::string(10 * 1024, 'u'));
  const ProbeResult r = probe_once(io, server.port(), AgentProtocol::kHttp);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "agent: reply longer than 512 bytes");
}

TEST(AgentCheckHttp, ResponseCutShortIsDown) {
  asio::io_context io;
  test::HttpServer server(io);
  server.raw_response = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nup";
  const ProbeResult r = probe_once(io, server.port(), AgentProtocol::kHttp);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "agent: connection closed before the reply ended");
}

TEST(AgentCheckHttp, NotHttpIsAParseError) {
  asio::io_context io;
  test::HttpServer server(io);
  server.raw_response = "up 50%\n";
  const ProbeResult r = probe_once(io, server.port(), AgentProtocol::kHttp);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason.rfind("agent: HTTP parse error: ", 0), 0u) << r.reason;
}

TEST(AgentCheckHttp, SilentServerTimesOut) {
  asio::io_context io;
  test::HttpServer server(io);
  server.answer = false;
  const ProbeResult r = probe_once(io, server.port(), AgentProtocol::kHttp, 200ms);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "timeout after 200 ms");
}

}  // namespace
}  // namespace ilb::cp

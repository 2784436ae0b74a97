#include "controlplane/health/http_check.h"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <optional>

#include "tests/unit/health/loopback.h"

namespace ilb::cp {
namespace {

using namespace test;

struct Exchange {
  std::shared_ptr<HttpProbe> probe;
  std::optional<ProbeResult> result;
};

std::optional<ProbeResult> run_probe(asio::io_context& io, uint16_t port,
                                     HttpProbe::StatusRanges expect = {{200, 200}},
                                     std::chrono::milliseconds timeout = 1000ms,
                                     const std::string& host = "backend.test",
                                     const std::string& expect_body = {}) {
  auto probe =
      std::make_shared<HttpProbe>(io, asio::ip::tcp::endpoint(kLoopback, port), timeout,
                                  HttpProbe::make_request("/health", host), expect, expect_body);
  std::optional<ProbeResult> result;
  probe->start([&](ProbeResult r) { result = std::move(r); });
  run_until(io, [&] { return result.has_value(); });
  return result;
}

TEST(HttpProbe, RequestIsMinimalGetWithConnectionClose) {
  EXPECT_EQ(HttpProbe::make_request("/status?full=1", "api.internal"),
            "GET /status?full=1 HTTP/1.1\r\nHost: api.internal\r\n"
            "User-Agent: ilb-health/0.1\r\nConnection: close\r\n\r\n");
}

TEST(HttpProbe, RequestUsesTheConfiguredMethod) {
  EXPECT_EQ(
      HttpProbe::make_request("/", "db1", "HEAD"),
      "HEAD / HTTP/1.1\r\nHost: db1\r\nUser-Agent: ilb-health/0.1\r\nConnection: close\r\n\r\n");
}

TEST(HttpProbe, DefaultHostIsAddressWithPortUnlessPort80) {
  const auto address = asio::ip::make_address_v4("10.1.2.3");
  EXPECT_EQ(HttpProbe::default_host({address, 80}), "10.1.2.3");
  EXPECT_EQ(HttpProbe::default_host({address, 8080}), "10.1.2.3:8080");
}

TEST(HttpProbe, UpOn200AndSendsRequest) {
  asio::io_context io;
  HttpServer server(io);
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok);
  EXPECT_EQ(result->reason, "HTTP 200");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0], HttpProbe::make_request("/health", "backend.test"));
}

TEST(HttpProbe, DownOn503) {
  asio::io_context io;
  HttpServer server(io);
  server.status = 503;
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "HTTP 503");
}

TEST(HttpProbe, HonoursEveryExpectedStatusRange) {
  asio::io_context io;
  HttpServer server(io);
  const HttpProbe::StatusRanges expect{{200, 299}, {404, 404}};
  for (int status : {200, 204, 299, 404}) {
    server.status = status;
    const auto result = run_probe(io, server.port(), expect);
    ASSERT_TRUE(result);
    EXPECT_TRUE(result->ok) << status;
  }
  for (int status : {199, 301, 403, 405, 500}) {
    server.status = status;
    const auto result = run_probe(io, server.port(), expect);
    ASSERT_TRUE(result);
    EXPECT_FALSE(result->ok) << status;
    EXPECT_EQ(result->reason, "HTTP " + std::to_string(status));
  }
}

TEST(HttpProbe, TimesOutWhenServerNeverAnswers) {
  asio::io_context io;
  HttpServer server(io);
  server.answer = false;
  const auto started = std::chrono::steady_clock::now();
  const auto result = run_probe(io, server.port(), {{200, 200}}, 200ms);
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "timeout after 200 ms");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 200ms);
  EXPECT_EQ(server.requests().size(), 1u) << "the request was sent; only the answer was missing";
}

TEST(HttpProbe, ConnectionRefused) {
  asio::io_context io;
  const auto result = run_probe(io, closed_port(io));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "connect: connection refused");
}

TEST(HttpProbe, MalformedResponseFails) {
  asio::io_context io;
  HttpServer server(io);
  server.raw_response = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason.rfind("HTTP parse error: ", 0), 0u) << result->reason;
}

TEST(HttpProbe, ConnectionClosedBeforeHeadersFails) {
  asio::io_context io;
  HttpServer server(io);
  server.raw_response = "HTTP/1.1 200 OK\r\nContent-Le";
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "connection closed before the response headers");
}

// The verdict comes from the headers alone; a huge body is neither waited for nor read beyond
// the cap, so the server's write of it fails once the probe closes the connection.
TEST(HttpProbe, DoesNotReadUnboundedBody) {
  asio::io_context io;
  HttpServer server(io);
  server.body_size = 16 * 1024 * 1024;
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok);
  EXPECT_EQ(result->reason, "HTTP 200");
  ASSERT_TRUE(run_until(io, [&] { return server.writes_done == 1; }));
  EXPECT_TRUE(server.last_write_error) << "the whole body was consumed";
  EXPECT_LT(server.last_write_bytes, server.body_size);
}

// The verdict comes as soon as the headers are in, but the probe keeps reading the rest of the
// response until the server closes, so a server still sending its body is not cut off with an
// RST (which closing a socket with unread data would send).
TEST(HttpProbe, DrainsBodyAfterVerdictAndClosesCleanly) {
  asio::io_context io;
  HttpServer server(io);
  server.body_size = 40000;
  server.late_body = true;
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result && result->ok);
  ASSERT_TRUE(run_until(io, [&] { return server.late_waiting() == 1; }));
  server.send_late_bodies();
  ASSERT_TRUE(run_until(io, [&] { return server.writes_done == 1; }));
  EXPECT_FALSE(server.last_write_error) << server.last_write_error.message();
  EXPECT_EQ(server.last_write_bytes, server.body_size / 2);
}

std::optional<ProbeResult> run_body_probe(asio::io_context& io, HttpServer& server,
                                          const std::string& expect_body) {
  return run_probe(io, server.port(), {{200, 299}}, 1000ms, "backend.test", expect_body);
}

TEST(HttpProbe, ExpectedBodyTextMakesItUp) {
  asio::io_context io;
  HttpServer server(io);
  server.raw_response = "HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\n{\"status\": \"ready\"}\n\n";
  const auto result = run_body_probe(io, server, "\"ready\"");
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_EQ(result->reason, "HTTP 200");
}

TEST(HttpProbe, BodyWithoutTheTextIsDownThoughTheStatusIsExpected) {
  asio::io_context io;
  HttpServer server(io);
  server.raw_response = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nmaintenance\n";
  auto result = run_body_probe(io, server, "ready");
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "HTTP 200, \"ready\" not in the body");
  // Without a length the body ends when the server closes.
  server.raw_response = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nmaintenance\n";
  result = run_body_probe(io, server, "ready");
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "HTTP 200, \"ready\" not in the body");
  server.raw_response = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nready\n";
  result = run_body_probe(io, server, "ready");
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
}

TEST(HttpProbe, UnexpectedStatusFailsWhateverTheBody) {
  asio::io_context io;
  HttpServer server(io);
  server.raw_response = "HTTP/1.1 503 Busy\r\nContent-Length: 5\r\n\r\nready";
  const auto result = run_body_probe(io, server, "ready");
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "HTTP 503");
}

// The text is searched in the decoded body, so chunk framing between its letters does not hide
// it, and neither does a read that ends in the middle of it.
TEST(HttpProbe, FindsBodyTextAcrossChunksAndReads) {
  asio::io_context io;
  HttpServer server(io);
  server.raw_response =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "a\r\nstatus: re\r\n4\r\nady\n\r\n0\r\n\r\n";
  auto result = run_body_probe(io, server, "ready");
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  server.raw_response =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "a\r\nstatus: re\r\n4\r\nst!\n\r\n0\r\n\r\n";
  result = run_body_probe(io, server, "ready");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->reason, "HTTP 200, \"ready\" not in the body");

  server.raw_response = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nstatus: ready";
  server.late_body = true;
  server.body_size = 6;  // the server holds back the last 3 bytes, "ady"
  std::optional<ProbeResult> late;
  auto probe = std::make_shared<HttpProbe>(io, asio::ip::tcp::endpoint(kLoopback, server.port()),
                                           1000ms, HttpProbe::make_request("/", "x"),
                                           HttpProbe::StatusRanges{{200, 200}}, "ready");
  probe->start([&](ProbeResult r) { late = std::move(r); });
  ASSERT_TRUE(run_until(io, [&] { return server.late_waiting() == 1; }));
  io.run_for(20ms);
  EXPECT_FALSE(late) << "no verdict from half of the text";
  server.send_late_bodies();
  ASSERT_TRUE(run_until(io, [&] { return late.has_value(); }));
  EXPECT_TRUE(late->ok) << late->reason;
}

// Probes of one backend sharing a KeptConnection, as the checker runs them with
// reuse_connection = true.
struct KeptProbes {
  asio::io_context& io;
  uint16_t port;
  std::string expect_body;
  std::shared_ptr<KeptConnection> kept = std::make_shared<KeptConnection>();

  std::optional<ProbeResult> run() {
    auto probe =
        std::make_shared<HttpProbe>(io, asio::ip::tcp::endpoint(kLoopback, port), 1000ms,
                                    HttpProbe::make_request("/health", "b", "GET", true),
                                    HttpProbe::StatusRanges{{200, 200}}, expect_body, kept);
    std::optional<ProbeResult> result;
    probe->start([&](ProbeResult r) { result = std::move(r); });
    run_until(io, [&] { return result.has_value(); });
    return result;
  }
};

TEST(HttpProbe, KeepAliveRequestLeavesOutConnectionClose) {
  EXPECT_EQ(HttpProbe::make_request("/", "db1", "GET", true),
            "GET / HTTP/1.1\r\nHost: db1\r\nUser-Agent: ilb-health/0.1\r\n\r\n");
}

TEST(HttpProbe, KeptConnectionCarriesTheNextProbes) {
  asio::io_context io;
  HttpServer server(io);
  server.keep_alive = true;
  KeptProbes probes{io, server.port(), "xx"};
  for (int i = 0; i < 3; ++i) {
    const auto result = probes.run();
    ASSERT_TRUE(result);
    EXPECT_TRUE(result->ok) << result->reason;
    EXPECT_EQ(result->reason, "HTTP 200");
    EXPECT_TRUE(probes.kept->socket) << "kept after probe " << i;
  }
  EXPECT_EQ(server.requests().size(), 3u);
  EXPECT_EQ(server.accepted(), 1u) << "one handshake for three checks";
}

TEST(HttpProbe, KeptConnectionSurvivesAFailedCheck) {
  asio::io_context io;
  HttpServer server(io);
  server.keep_alive = true;
  server.script = {503, 200};
  KeptProbes probes{io, server.port(), ""};
  const auto failed = probes.run();
  ASSERT_TRUE(failed);
  EXPECT_FALSE(failed->ok);
  EXPECT_EQ(failed->reason, "HTTP 503");
  const auto passed = probes.run();
  ASSERT_TRUE(passed);
  EXPECT_TRUE(passed->ok) << passed->reason;
  EXPECT_EQ(server.accepted(), 1u) << "the 503 was read whole and the connection kept";
  probes.expect_body = "ready";
  const auto missing = probes.run();
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->reason, "HTTP 200, \"ready\" not in the body");
  EXPECT_EQ(server.accepted(), 1u);
}

TEST(HttpProbe, KeptConnectionTheServerClosedIsReplaced) {
  asio::io_context io;
  HttpServer server(io);
  server.keep_alive = true;
  server.close_after_first = true;  // an idle timeout shorter than the interval
  KeptProbes probes{io, server.port(), ""};
  ASSERT_TRUE(probes.run().value_or(ProbeResult{}).ok);
  ASSERT_TRUE(probes.kept->socket);
  const int fd = probes.kept->socket->native_handle();
  char byte = 0;
  ASSERT_TRUE(run_until(io, [&] { return ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0; }))
      << "the server's FIN reaches the kept socket";
  const auto second = probes.run();
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->ok) << second->reason;
  EXPECT_EQ(server.accepted(), 2u);
  EXPECT_EQ(server.requests().size(), 2u) << "the closed connection was not written to";
}

// The server closes the kept connection just as the next request arrives (its idle timeout
// firing at that moment): no reply byte came, so the request goes once more on a new connection.
TEST(HttpProbe, RequestLostOnAKeptConnectionIsRetriedOnANewOne) {
  asio::io_context io;
  HttpServer server(io);
  server.keep_alive = true;
  server.close_at_second_request = true;
  KeptProbes probes{io, server.port(), ""};
  ASSERT_TRUE(probes.run().value_or(ProbeResult{}).ok);
  const auto second = probes.run();
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->ok) << second->reason;
  EXPECT_EQ(server.accepted(), 2u);
  EXPECT_EQ(server.requests().size(), 3u) << "first, lost, retried";
}

TEST(HttpProbe, ConnectionTheServerWillCloseIsNotKept) {
  asio::io_context io;
  HttpServer server(io);  // answers with "Connection: close"
  KeptProbes probes{io, server.port(), ""};
  const auto result = probes.run();
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_FALSE(probes.kept->socket);
  // A body that runs until the close is judged at the close.
  server.raw_response = "HTTP/1.1 200 OK\r\n\r\nall fine";
  probes.expect_body = "fine";
  const auto until_close = probes.run();
  ASSERT_TRUE(until_close);
  EXPECT_TRUE(until_close->ok) << until_close->reason;
  EXPECT_FALSE(probes.kept->socket);
  probes.expect_body = "ready";
  const auto missing = probes.run();
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->reason, "HTTP 200, \"ready\" not in the body");
}

TEST(HttpProbe, CancelSuppressesResult) {
  asio::io_context io;
  HttpServer server(io);
  server.answer = false;
  auto probe = std::make_shared<HttpProbe>(io, asio::ip::tcp::endpoint(kLoopback, server.port()),
                                           5000ms, HttpProbe::make_request("/", "x"),
                                           HttpProbe::StatusRanges{{200, 200}});
  bool called = false;
  probe->start([&](ProbeResult) { called = true; });
  ASSERT_TRUE(run_until(io, [&] { return server.requests().size() == 1; }));
  probe->cancel();
  probe.reset();
  io.run_for(100ms);
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace ilb::cp

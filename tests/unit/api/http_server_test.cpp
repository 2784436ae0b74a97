// The HTTP server itself, over TCP (the metrics port): what a client sees on the wire.
#include "controlplane/api/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <atomic>
#include <cerrno>
#include <string>
#include <thread>

namespace ilb::cp {
namespace {

class TcpServerTest : public ::testing::Test {
 protected:
  void start(HttpLimits limits) {
    server_ = std::make_unique<HttpServer<asio::ip::tcp>>(
        io_,
        [this](const HttpRequest&) {
          ++handled_;
          return HttpResponse{200, "text/plain", "ok\n"};
        },
        limits);
    server_->listen({asio::ip::make_address("127.0.0.1"), 0});
    port_ = server_->local_endpoint().port();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      asio::post(io_, [this] { server_->stop(); });
      thread_.join();
    }
  }

  int connect_client() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port_);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    return fd;
  }

  asio::io_context io_;
  std::unique_ptr<HttpServer<asio::ip::tcp>> server_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::atomic<int> handled_{0};
};

// Reads until the server closes; `error` is the errno of a failed read (0 on a clean close).
std::string read_until_close(int fd, int& error) {
  std::string out;
  char buf[4096];
  error = 0;
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 5000) <= 0) break;
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) error = errno;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST_F(TcpServerTest, AClientStillSendingATooLargeBodyReadsIts413) {
  // The server answers 413 after the first 4 KiB of a 4 MiB upload. Were it to close with the
  // rest unread, its kernel would reset the connection and the client, still sending, would
  // get a reset instead of the answer.
  HttpLimits limits;
  limits.max_request_bytes = 4096;
  start(limits);
  const int fd = connect_client();
  const std::string body(4 << 20, 'x');
  const std::string request =
      "POST /metrics HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
      body;
  size_t sent = 0;
  int send_error = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      send_error = errno;
      break;
    }
    sent += static_cast<size_t>(n);
  }
  int read_error = 0;
  const std::string answer = read_until_close(fd, read_error);
  ::close(fd);
  EXPECT_EQ(send_error, 0) << std::strerror(send_error) << " after " << sent << " bytes";
  EXPECT_EQ(read_error, 0) << std::strerror(read_error);
  EXPECT_EQ(answer.rfind("HTTP/1.1 413 ", 0), 0u) << answer;
  EXPECT_EQ(handled_.load(), 0);
}

}  // namespace
}  // namespace ilb::cp

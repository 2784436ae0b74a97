// Real servers on 127.0.0.1 for the health-check tests, all driven by the test's own io_context,
// and a helper that runs that io_context until a condition holds or a deadline passes.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/health/health_checker.h"

namespace ilb::cp::test {

using namespace std::chrono_literals;

inline const asio::ip::address_v4 kLoopback = asio::ip::make_address_v4("127.0.0.1");

// Runs `io` until `done()` is true; false if `limit` passed first.
template <class Pred>
bool run_until(asio::io_context& io, Pred done, std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(10ms);
  }
  return true;
}

inline CheckTarget loopback_target(uint32_t key, CheckType type, uint16_t port,
                                   uint32_t interval_ms = 50, uint32_t timeout_ms = 500) {
  CheckTarget t;
  t.key = key;
  t.address = htonl(INADDR_LOOPBACK);
  t.port = port;
  t.check.type = type;
  t.check.interval_ms = interval_ms;
  t.check.timeout_ms = timeout_ms;
  return t;
}

// A port on 127.0.0.1 that nothing listens on: bound once to learn a free number, then closed.
inline uint16_t closed_port(asio::io_context& io) {
  asio::ip::tcp::acceptor probe(io, {kLoopback, 0});
  return probe.local_endpoint().port();
}

// Accepts every connection and keeps it open; optionally reads each one until it ends and
// records how it ended (eof for a FIN, connection_reset for an RST).
class TcpServer {
 public:
  explicit TcpServer(asio::io_context& io) : acceptor_(io, {kLoopback, 0}) { accept(); }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  size_t accepted() const { return accepted_; }
  const std::vector<std::error_code>& endings() const { return endings_; }

 private:
  void accept() {
    acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) return;
      ++accepted_;
      auto s = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
      auto buf = std::make_shared<std::array<char, 256>>();
      read_until_end(s, buf);
      accept();
    });
  }

  void read_until_end(std::shared_ptr<asio::ip::tcp::socket> s,
                      std::shared_ptr<std::array<char, 256>> buf) {
    s->async_read_some(asio::buffer(*buf), [this, s, buf](std::error_code ec, size_t) {
      if (ec) {
        endings_.push_back(ec);
        return;
      }
      read_until_end(s, buf);
    });
  }

  asio::ip::tcp::acceptor acceptor_;
  size_t accepted_ = 0;
  std::vector<std::error_code> endings_;
};

// A listener whose accept queue is full and never drained: the kernel drops further SYNs, so a
// connect to it neither succeeds nor fails before the prober's timeout. Loopback only.
class FullBacklogListener {
 public:
  FullBacklogListener() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    check(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), "bind");
    check(::listen(listener_, 0), "listen");
    socklen_t len = sizeof(addr);
    check(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len), "getsockname");
    port_ = ntohs(addr.sin_port);
    // With a backlog of 0 one established connection fills the queue. The filler's connect()
    // returns before the kernel has queued it, so wait until the listener reports the queue full.
    filler_ = ::socket(AF_INET, SOCK_STREAM, 0);
    check(::connect(filler_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), "connect");
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (!full()) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("accept queue did not fill");
      }
      std::this_thread::yield();
    }
  }
  ~FullBacklogListener() {
    ::close(filler_);
    ::close(listener_);
  }
  FullBacklogListener(const FullBacklogListener&) = delete;
  FullBacklogListener& operator=(const FullBacklogListener&) = delete;

  uint16_t port() const { return port_; }

 private:
  // For a listening socket Linux reports the accept-queue length in tcpi_unacked and its limit in
  // tcpi_sacked; SYNs are dropped once the length exceeds the limit.
  bool full() const {
    tcp_info info{};
    socklen_t len = sizeof(info);
    if (::getsockopt(listener_, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return false;
    return info.tcpi_unacked > info.tcpi_sacked;
  }
  static void check(int rc, const char* what) {
    if (rc != 0) throw std::runtime_error(std::string(what) + " failed");
  }

  int listener_ = -1;
  int filler_ = -1;
  uint16_t port_ = 0;
};

// A tiny HTTP/1.1 server: reads one request per connection, records it, answers with the status
// chosen for that request's index (or stays silent), shuts down its side and waits for the
// client to close.
class HttpServer {
 public:
  explicit HttpServer(asio::io_context& io) : acceptor_(io, {kLoopback, 0}) { accept(); }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  const std::vector<std::string>& requests() const { return requests_; }
  const std::vector<std::chrono::steady_clock::time_point>& request_times() const {
    return request_times_;
  }

  // Status for request i (0-based); requests past the script get `status`.
  std::vector<int> script;
  int status = 200;
  bool answer = true;        // false: read the request, then never answer
  size_t body_size = 2;      // bytes of body sent after the headers
  std::string raw_response;  // if set, sent verbatim instead of a generated response
  // Hold back the second half of the body until send_late_bodies().
  bool late_body = false;
  size_t late_waiting() const { return late_.size(); }
  void send_late_bodies() {
    for (auto& c : late_) finish_write(c, c->late);
    late_.clear();
  }
  // Keep-alive: answer without "Connection: close" and read the next request on the connection.
  bool keep_alive = false;
  // With keep_alive: after the first response on a connection, close it (with a FIN, as an idle
  // timeout would) at once, or only when its next request arrives, unanswered.
  bool close_after_first = false;
  bool close_at_second_request = false;
  size_t accepted() const { return accepted_; }
  // Outcome of the last response write (set when the write completes).
  std::error_code last_write_error;
  size_t last_write_bytes = 0;
  size_t writes_done = 0;

 private:
  struct Conn {
    explicit Conn(asio::ip::tcp::socket s) : socket(std::move(s)) {}
    asio::ip::tcp::socket socket;
    asio::streambuf in;
    std::string out;
    std::string late;
    std::array<char, 256> scratch;
    size_t served = 0;  // requests answered on this connection
  };

  void accept() {
    acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) return;
      ++accepted_;
      serve(std::make_shared<Conn>(std::move(socket)));
      accept();
    });
  }

  void serve(std::shared_ptr<Conn> c) {
    asio::async_read_until(c->socket, c->in, "\r\n\r\n", [this, c](std::error_code ec, size_t n) {
      if (ec) return;
      const size_t index = requests_.size();
      request_times_.push_back(std::chrono::steady_clock::now());
      requests_.emplace_back(asio::buffers_begin(c->in.data()),
                             asio::buffers_begin(c->in.data()) + std::ptrdiff_t(n));
      c->in.consume(n);
      if (keep_alive && close_at_second_request && c->served == 1) {
        std::error_code ignored;
        c->socket.close(ignored);
        return;
      }
      if (!answer) {
        silent_.push_back(c);
        return;
      }
      if (!raw_response.empty()) {
        c->out = raw_response;
      } else {
        const int code = index < script.size() ? script[index] : status;
        c->out = "HTTP/1.1 " + std::to_string(code) +
                 " Test\r\nContent-Length: " + std::to_string(body_size) +
                 (keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n") +
                 std::string(body_size, 'x');
      }
      if (late_body) {
        c->late = c->out.substr(c->out.size() - body_size / 2);
        c->out.resize(c->out.size() - body_size / 2);
        asio::async_write(c->socket, asio::buffer(c->out), [this, c](std::error_code wec, size_t) {
          if (!wec) late_.push_back(c);
        });
        return;
      }
      finish_write(c, c->out);
    });
  }

  void finish_write(std::shared_ptr<Conn> c, const std::string& data) {
    asio::async_write(c->socket, asio::buffer(data), [this, c](std::error_code wec, size_t w) {
      last_write_error = wec;
      last_write_bytes = w;
      ++writes_done;
      ++c->served;
      std::error_code ignored;
      if (keep_alive && !wec && !close_after_first) {
        serve(c);
        return;
      }
      c->socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
      read_until_end(c);
    });
  }

  void read_until_end(std::shared_ptr<Conn> c) {
    c->socket.async_read_some(asio::buffer(c->scratch), [this, c](std::error_code ec, size_t) {
      if (!ec) read_until_end(c);
    });
  }

  asio::ip::tcp::acceptor acceptor_;
  size_t accepted_ = 0;
  std::vector<std::string> requests_;
  std::vector<std::chrono::steady_clock::time_point> request_times_;
  std::vector<std::shared_ptr<Conn>> silent_;
  std::vector<std::shared_ptr<Conn>> late_;
};

}  // namespace ilb::cp::test

// Memcached check: "version" and "quit" sent together, judged by the first reply line, which must
// start with "VERSION ". With "quit" already sent the server closes first once it has answered,
// so the TIME_WAIT stays on the server and the probe never resets a connection with unread data;
// the probe reads until then (bounded by kMaxReplyBytes and the timeout) after its verdict.
// "version" touches no data and needs no authentication, so it proves the server answers commands
// without side effects.
#pragma once

#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "controlplane/health/probe.h"

namespace ilb::cp {

class MemcachedProbe final : public Probe, public std::enable_shared_from_this<MemcachedProbe> {
 public:
  // Most bytes read from one connection, reply and drain together.
  static constexpr size_t kMaxReplyBytes = 16 * 1024;
  // What the check sends.
  static constexpr const char* kRequest = "version\r\nquit\r\n";

  MemcachedProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                 std::chrono::milliseconds timeout);

  void start(Done done) override;
  void cancel() override;

 private:
  void on_connect(const std::error_code& ec);
  void read_reply();
  void on_data(const std::error_code& ec, size_t n);
  void drain();
  void report(ProbeResult result);
  void close();

  asio::io_context& io_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  asio::ip::tcp::endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  std::string received_;
  Done done_;
  std::array<char, 4096> buffer_{};
  size_t total_ = 0;
  bool reported_ = false;  // the verdict has been given (or the probe was cancelled)
  bool closed_ = false;
};

}  // namespace ilb::cp

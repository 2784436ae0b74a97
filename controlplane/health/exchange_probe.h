// The shape shared by every request/reply check (http, redis, memcached): connect, send one
// request, read the reply until the subclass can judge it, all under one timeout. After the
// verdict the probe normally keeps reading until the server closes (bounded in bytes and time),
// so the connection ends with the server's FIN rather than an RST from closing with unread data.
#pragma once

#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "controlplane/health/probe.h"

namespace ilb::cp {

class ExchangeProbe : public Probe, public std::enable_shared_from_this<ExchangeProbe> {
 public:
  void start(Done done) final;
  void cancel() final;

 protected:
  struct Verdict {
    ProbeResult result;
    bool drain = true;  // read until the server closes; false closes at once
  };

  // `max_bytes` bounds everything read from one connection, reply and drain together.
  ExchangeProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                std::chrono::milliseconds timeout, std::string request, size_t max_bytes);

  // The next bytes of the reply. Returns the verdict once it can be given, or nullopt to read on.
  virtual std::optional<Verdict> on_reply(std::string_view chunk) = 0;
  // The verdict when the server closes the connection before on_reply() gave one.
  virtual ProbeResult closed_early() const = 0;
  // The verdict when max_bytes arrived without one.
  virtual ProbeResult too_large() const = 0;

 private:
  void on_connect(const std::error_code& ec);
  void read();
  void on_data(const std::error_code& ec, size_t n);
  void drain();
  void report(ProbeResult result);
  void close();

  asio::io_context& io_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  asio::ip::tcp::endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  std::string request_;
  size_t max_bytes_;
  Done done_;
  std::array<char, 4096> buffer_{};
  size_t total_ = 0;
  bool reported_ = false;  // the verdict has been given (or the probe was cancelled)
  bool closed_ = false;
};

}  // namespace ilb::cp

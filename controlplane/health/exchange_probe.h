// The shape shared by every request/reply check (http, redis, memcached): connect, send one
// request, read the reply until the subclass can judge it, all under one timeout. After the
// verdict the probe normally keeps reading until the server closes (bounded in bytes and time),
// so the connection ends with the server's FIN rather than an RST from closing with unread data.
//
// A probe given a KeptConnection (http checks with reuse_connection) may instead leave the
// connection open there when the subclass says the reply ended cleanly, and the next probe of the
// same backend sends its request on it without a handshake. A kept connection the server has
// closed meanwhile is noticed before sending (then a new one is opened); one that the server
// closes as the request arrives (its idle timeout firing at that moment) fails before any reply
// byte, and the probe then retries once on a new connection, as HTTP clients do.
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

// The connection a finished probe left open for the next probe of the same backend. Owned by the
// checker's entry for that backend; closed when the entry goes.
struct KeptConnection {
  std::optional<asio::ip::tcp::socket> socket;
};

class ExchangeProbe : public Probe, public std::enable_shared_from_this<ExchangeProbe> {
 public:
  void start(Done done) final;
  void cancel() final;

 protected:
  struct Verdict {
    ProbeResult result;
    bool drain = true;  // read until the server closes; false closes at once
    bool keep = false;  // the reply ended cleanly: the connection may carry the next request
  };

  // `max_bytes` bounds everything read from one connection, reply and drain together.
  ExchangeProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                std::chrono::milliseconds timeout, std::string request, size_t max_bytes);

  const std::string& request() const { return request_; }

  // Where to keep the connection after a verdict with `keep`; null (the default) never keeps it.
  void keep_connection_in(std::shared_ptr<KeptConnection> kept) { kept_ = std::move(kept); }

  // The next bytes of the reply. Returns the verdict once it can be given, or nullopt to read on.
  virtual std::optional<Verdict> on_reply(std::string_view chunk) = 0;
  // The verdict when the server closes the connection before on_reply() gave one.
  virtual ProbeResult closed_early() const = 0;
  // The verdict when max_bytes arrived without one.
  virtual ProbeResult too_large() const = 0;

 private:
  void on_connect(const std::error_code& ec);
  void connect();
  void send_request();
  bool take_kept_connection();
  bool retry_on_new_connection(const std::error_code& ec);
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
  std::shared_ptr<KeptConnection> kept_;
  bool reused_ = false;    // the request went out on a kept connection
  bool reported_ = false;  // the verdict has been given (or the probe was cancelled)
  bool closed_ = false;
};

}  // namespace ilb::cp

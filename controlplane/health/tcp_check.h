// TCP connect check. Success means the three-way handshake completed within the timeout. The
// connection is then aborted with an RST (SO_LINGER {on, 0} before close) instead of a FIN: a
// server that sees a connection close before its own protocol handshake - MySQL and MariaDB count
// these against max_connect_errors and eventually block the prober's host - treats an RST as a
// network-level abort and does not count it, and the prober keeps no socket in TIME_WAIT.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <memory>

#include "controlplane/health/probe.h"

namespace ilb::cp {

class TcpProbe final : public Probe, public std::enable_shared_from_this<TcpProbe> {
 public:
  TcpProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
           std::chrono::milliseconds timeout);

  void start(Done done) override;
  void cancel() override;

 private:
  void finish(ProbeResult result);
  void close();

  asio::io_context& io_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  asio::ip::tcp::endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  Done done_;
  bool finished_ = false;
};

}  // namespace ilb::cp

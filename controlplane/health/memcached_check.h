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

#include "controlplane/health/exchange_probe.h"

namespace ilb::cp {

class MemcachedProbe final : public ExchangeProbe {
 public:
  // Most bytes read from one connection, reply and drain together.
  static constexpr size_t kMaxReplyBytes = 16 * 1024;
  // What the check sends.
  static constexpr const char* kRequest = "version\r\nquit\r\n";

  MemcachedProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                 std::chrono::milliseconds timeout);

 private:
  std::optional<Verdict> on_reply(std::string_view chunk) override;
  ProbeResult closed_early() const override;
  ProbeResult too_large() const override;

  std::string received_;
};

}  // namespace ilb::cp

// Redis check: optionally AUTH, then PING (and ROLE when a role is required), then QUIT, all sent
// at once as one pipeline. Redis answers pipelined commands in order, so one round trip is enough,
// and because QUIT is already on its way the server closes the connection first once it has
// answered: the TIME_WAIT stays on the server side, and the probe never resets a connection
// with unread data. The verdict comes as soon as the replies before QUIT are in; the probe then
// reads until the server closes (bounded by kMaxReplyBytes and the timeout). The first error
// reply (-ERR, -NOAUTH, -WRONGPASS, ...) decides the verdict and becomes the reason.
#pragma once

#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "controlplane/health/exchange_probe.h"

namespace ilb::cp {

// One RESP reply, reduced to what the check needs.
struct RespReply {
  char type = 0;     // '+', '-', ':', '$' or '*'
  std::string text;  // the line, the bulk string, or an array's first element's text
};

class RedisProbe final : public ExchangeProbe {
 public:
  // Most bytes read from one connection, replies and drain together.
  static constexpr size_t kMaxReplyBytes = 16 * 1024;
  // parse_reply() results besides a reply's end offset.
  static constexpr size_t kIncomplete = 0;
  static constexpr size_t kMalformed = static_cast<size_t>(-1);

  // `role` is "", "master" or "replica"; `username` is used only with a password.
  RedisProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
             std::chrono::milliseconds timeout, std::string username, std::string password,
             std::string role);

  // The pipeline the check sends, as RESP arrays of bulk strings.
  static std::string make_request(const std::string& username, const std::string& password,
                                  bool ask_role);
  // Parses the reply that starts at data[pos]: returns the offset just past it and fills `out`,
  // or kIncomplete if more bytes are needed, or kMalformed.
  static size_t parse_reply(std::string_view data, size_t pos, RespReply& out);

 private:
  enum class Step { kAuth, kPing, kRole };

  std::optional<Verdict> on_reply(std::string_view chunk) override;
  ProbeResult closed_early() const override;
  ProbeResult too_large() const override;

  std::string role_;
  std::vector<Step> steps_;
  size_t next_step_ = 0;
  std::string received_;
  size_t parsed_ = 0;  // bytes of received_ already judged
};

}  // namespace ilb::cp

// HTTP check: one request (GET unless configured) with "Connection: close", judged by the
// response's status code and, when `expect_body` is set, by whether the body contains that text.
// Without `expect_body` the verdict is reached as soon as the response headers are complete, so a
// large or endless body cannot hold it up; with it, the body is read (de-chunked by the parser)
// only until the text is found, the response ends or 64 KiB have arrived. The probe then keeps
// reading until the server closes (at most 64 KiB in all, and only until the timeout), so the
// connection ends the way HTTP/1.1 intends: the server closes first and keeps the TIME_WAIT, and
// the prober never resets a server still sending its body, as closing a socket with unread data
// would. Connect, request and the part of the response the verdict needs must all fit in the
// check's timeout.
#pragma once

#include <http_parser.h>

#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "controlplane/health/exchange_probe.h"

namespace ilb::cp {

class HttpProbe final : public ExchangeProbe {
 public:
  using StatusRanges = std::vector<std::pair<uint16_t, uint16_t>>;  // inclusive

  // Most bytes read from one response, headers and drained body together.
  static constexpr size_t kMaxResponseBytes = 64 * 1024;

  // `expect_body`, when not empty, must occur in the response body (after chunked decoding) for
  // the probe to succeed.
  HttpProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
            std::chrono::milliseconds timeout, std::string request, StatusRanges expect_status,
            std::string expect_body = {});

  // The request sent by the check. `host` is the Host header's value; `method` a token such as
  // GET, HEAD or OPTIONS.
  static std::string make_request(const std::string& path, const std::string& host,
                                  const std::string& method = "GET");
  // The default Host header for a backend: its address, with ":port" unless the port is 80.
  static std::string default_host(const asio::ip::tcp::endpoint& endpoint);

 private:
  static int on_headers_complete(http_parser* parser);
  static int on_body(http_parser* parser, const char* at, size_t length);
  static int on_message_complete(http_parser* parser);

  std::optional<Verdict> on_reply(std::string_view chunk) override;
  ProbeResult closed_early() const override;
  ProbeResult too_large() const override;

  bool status_expected() const;
  std::string status_text() const;
  ProbeResult body_missing(const char* where) const;

  StatusRanges expect_status_;
  std::string expect_body_;
  http_parser parser_{};
  http_parser_settings settings_{};
  bool headers_complete_ = false;
  bool message_complete_ = false;
  bool body_found_ = false;
  // The body's last expect_body_.size() - 1 bytes, so a match split between two reads is found.
  std::string body_tail_;
};

}  // namespace ilb::cp

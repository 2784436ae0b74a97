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
//
// With a KeptConnection (reuse_connection = true) the request leaves out "Connection: close", the
// whole response is read (it must end by its length or chunking, within 64 KiB), and when the
// server lets the connection persist it carries the next probe's request: no handshake and no
// TIME_WAIT per check. The price is that such a check no longer proves the server accepts new
// connections, only that it answers on one it accepted earlier.
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
  // `kept`, when set, is where the connection waits between probes; the request must then be
  // one made with `keep_alive`.
  HttpProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
            std::chrono::milliseconds timeout, std::string request, StatusRanges expect_status,
            std::string expect_body = {}, std::shared_ptr<KeptConnection> kept = nullptr);

  // The request sent by the check. `host` is the Host header's value; `method` a token such as
  // GET, HEAD or OPTIONS. Without `keep_alive` it asks the server to close the connection.
  static std::string make_request(const std::string& path, const std::string& host,
                                  const std::string& method = "GET", bool keep_alive = false);
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
  // The verdict on a response read to its end (or as far as `where` says).
  ProbeResult judge_whole_response(const char* where = "the body") const;

  StatusRanges expect_status_;
  std::string expect_body_;
  bool keep_alive_ = false;  // read whole responses and keep the connection when they allow it
  bool head_ = false;        // a HEAD request: the response has no body whatever its headers say
  http_parser parser_{};
  http_parser_settings settings_{};
  bool headers_complete_ = false;
  bool message_complete_ = false;
  bool body_found_ = false;
  // The body's last expect_body_.size() - 1 bytes, so a match split between two reads is found.
  std::string body_tail_;
};

}  // namespace ilb::cp

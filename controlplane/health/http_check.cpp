#include "controlplane/health/http_check.h"

#include <algorithm>
#include <system_error>

namespace ilb::cp {

HttpProbe::HttpProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                     std::chrono::milliseconds timeout, std::string request,
                     StatusRanges expect_status, std::string expect_body,
                     std::shared_ptr<KeptConnection> kept)
    : ExchangeProbe(io, endpoint, timeout, std::move(request), kMaxResponseBytes),
      expect_status_(std::move(expect_status)),
      expect_body_(std::move(expect_body)),
      keep_alive_(kept != nullptr) {
  head_ = ExchangeProbe::request().starts_with("HEAD ");
  keep_connection_in(std::move(kept));
  http_parser_init(&parser_, HTTP_RESPONSE);
  parser_.data = this;
  http_parser_settings_init(&settings_);
  settings_.on_headers_complete = &HttpProbe::on_headers_complete;
  settings_.on_body = &HttpProbe::on_body;
  settings_.on_message_complete = &HttpProbe::on_message_complete;
}

std::string HttpProbe::make_request(const std::string& path, const std::string& host,
                                    const std::string& method, bool keep_alive) {
  return method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: ilb-health/0.1\r\n" +
         (keep_alive ? "" : "Connection: close\r\n") + "\r\n";
}

std::string HttpProbe::default_host(const asio::ip::tcp::endpoint& endpoint) {
  std::string host = endpoint.address().to_string();
  if (endpoint.port() != 80) host += ":" + std::to_string(endpoint.port());
  return host;
}

// Pausing makes http_parser_execute() return at once: whatever follows is never parsed.
int HttpProbe::on_headers_complete(http_parser* parser) {
  auto* self = static_cast<HttpProbe*>(parser->data);
  self->headers_complete_ = true;
  // A kept connection needs the whole response read, whatever it says. Otherwise the status
  // decides alone unless the body must be searched.
  if (!self->keep_alive_ && (!self->status_expected() || self->expect_body_.empty())) {
    http_parser_pause(parser, 1);
  }
  return self->head_ ? 1 : 0;  // 1: no body follows
}

int HttpProbe::on_body(http_parser* parser, const char* at, size_t length) {
  auto* self = static_cast<HttpProbe*>(parser->data);
  std::string& tail = self->body_tail_;
  const std::string& want = self->expect_body_;
  if (want.empty() || self->body_found_) return 0;
  tail.append(at, length);
  if (tail.find(want) != std::string::npos) {
    self->body_found_ = true;
    tail.clear();
    if (!self->keep_alive_) http_parser_pause(parser, 1);
  } else if (tail.size() >= want.size()) {
    tail.erase(0, tail.size() - (want.size() - 1));
  }
  return 0;
}

int HttpProbe::on_message_complete(http_parser* parser) {
  static_cast<HttpProbe*>(parser->data)->message_complete_ = true;
  http_parser_pause(parser, 1);
  return 0;
}

bool HttpProbe::status_expected() const {
  const unsigned status = parser_.status_code;
  return std::any_of(expect_status_.begin(), expect_status_.end(), [status](const auto& range) {
    return status >= range.first && status <= range.second;
  });
}

std::string HttpProbe::status_text() const {
  return "HTTP " + std::to_string(parser_.status_code);
}

ProbeResult HttpProbe::body_missing(const char* where) const {
  return {false, status_text() + ", \"" + printable(expect_body_) + "\" not in " + where};
}

std::optional<ExchangeProbe::Verdict> HttpProbe::on_reply(std::string_view chunk) {
  const size_t parsed = http_parser_execute(&parser_, &settings_, chunk.data(), chunk.size());
  if (headers_complete_) {
    if (keep_alive_) {
      if (message_complete_) {
        // Bytes after the response, or a server that will close: the connection is not kept.
        const bool keep = parsed == chunk.size() && http_should_keep_alive(&parser_) != 0;
        return Verdict{judge_whole_response(), true, keep};
      }
    } else if (!status_expected() || expect_body_.empty() || body_found_ || message_complete_) {
      return Verdict{judge_whole_response()};
    }
  }
  const auto error = static_cast<http_errno>(parser_.http_errno);
  if (error != HPE_OK) {
    return Verdict{{false, std::string("HTTP parse error: ") + http_errno_description(error)},
                   false};
  }
  return std::nullopt;
}

ProbeResult HttpProbe::judge_whole_response(const char* where) const {
  if (!status_expected()) return {false, status_text()};
  if (!expect_body_.empty() && !body_found_) return body_missing(where);
  return {true, status_text()};
}

// With a body that runs until the server closes, the close is the end of the response.
ProbeResult HttpProbe::closed_early() const {
  if (!headers_complete_) return {false, "connection closed before the response headers"};
  return judge_whole_response();
}

// Only a response whose headers fit is judged (a long one, read whole for a kept connection, is
// then not kept).
ProbeResult HttpProbe::too_large() const {
  if (!headers_complete_) return {false, "response headers larger than 64 KiB"};
  return judge_whole_response("the first 64 KiB of the response");
}

}  // namespace ilb::cp

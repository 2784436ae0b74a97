#include "controlplane/health/http_check.h"

#include <algorithm>
#include <system_error>

namespace ilb::cp {

HttpProbe::HttpProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                     std::chrono::milliseconds timeout, std::string request,
                     StatusRanges expect_status)
    : ExchangeProbe(io, endpoint, timeout, std::move(request), kMaxResponseBytes),
      expect_status_(std::move(expect_status)) {
  http_parser_init(&parser_, HTTP_RESPONSE);
  parser_.data = this;
  http_parser_settings_init(&settings_);
  settings_.on_headers_complete = &HttpProbe::on_headers_complete;
}

std::string HttpProbe::make_request(const std::string& path, const std::string& host) {
  return "GET " + path + " HTTP/1.1\r\nHost: " + host +
         "\r\nUser-Agent: ilb-health/0.1\r\nConnection: close\r\n\r\n";
}

std::string HttpProbe::default_host(const asio::ip::tcp::endpoint& endpoint) {
  std::string host = endpoint.address().to_string();
  if (endpoint.port() != 80) host += ":" + std::to_string(endpoint.port());
  return host;
}

int HttpProbe::on_headers_complete(http_parser* parser) {
  static_cast<HttpProbe*>(parser->data)->headers_complete_ = true;
  // Pausing makes http_parser_execute() return here: the body is never parsed.
  http_parser_pause(parser, 1);
  return 0;
}

std::optional<ExchangeProbe::Verdict> HttpProbe::on_reply(std::string_view chunk) {
  http_parser_execute(&parser_, &settings_, chunk.data(), chunk.size());
  if (headers_complete_) {
    const unsigned status = parser_.status_code;
    const bool expected = std::any_of(
        expect_status_.begin(), expect_status_.end(),
        [status](const auto& range) { return status >= range.first && status <= range.second; });
    return Verdict{{expected, "HTTP " + std::to_string(status)}};
  }
  const auto error = static_cast<http_errno>(parser_.http_errno);
  if (error != HPE_OK) {
    return Verdict{{false, std::string("HTTP parse error: ") + http_errno_description(error)},
                   false};
  }
  return std::nullopt;
}

ProbeResult HttpProbe::closed_early() const {
  return {false, "connection closed before the response headers"};
}

ProbeResult HttpProbe::too_large() const {
  return {false, "response headers larger than 64 KiB"};
}

}  // namespace ilb::cp

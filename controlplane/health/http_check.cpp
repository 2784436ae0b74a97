#include "controlplane/health/http_check.h"

#include <algorithm>
#include <asio/post.hpp>
#include <asio/write.hpp>
#include <system_error>

namespace ilb::cp {

HttpProbe::HttpProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                     std::chrono::milliseconds timeout, std::string request,
                     StatusRanges expect_status)
    : io_(io),
      socket_(io),
      timer_(io),
      endpoint_(endpoint),
      timeout_(timeout),
      request_(std::move(request)),
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

void HttpProbe::start(Done done) {
  done_ = std::move(done);
  auto self = shared_from_this();
  std::error_code ec;
  socket_.open(endpoint_.protocol(), ec);
  if (ec) {
    asio::post(io_, [self, ec] {
      self->report({false, probe_error("socket", ec)});
      self->close();
    });
    return;
  }
  timer_.expires_after(timeout_);
  timer_.async_wait([self](const std::error_code& wait_ec) {
    if (wait_ec || self->closed_) return;
    // Either the exchange is too slow (a verdict is due) or the drain after it is.
    self->report({false, probe_timeout(self->timeout_)});
    self->close();
  });
  socket_.async_connect(
      endpoint_, [self](const std::error_code& connect_ec) { self->on_connect(connect_ec); });
}

void HttpProbe::on_connect(const std::error_code& ec) {
  if (closed_) return;
  if (ec) {
    report({false, probe_error("connect", ec)});
    close();
    return;
  }
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(request_),
                    [self](const std::error_code& write_ec, size_t) {
                      if (self->closed_) return;
                      if (write_ec) {
                        self->report({false, probe_error("send", write_ec)});
                        self->close();
                        return;
                      }
                      self->read_response();
                    });
}

void HttpProbe::read_response() {
  auto self = shared_from_this();
  socket_.async_read_some(asio::buffer(buffer_), [self](const std::error_code& ec, size_t n) {
    self->on_response_data(ec, n);
  });
}

int HttpProbe::on_headers_complete(http_parser* parser) {
  static_cast<HttpProbe*>(parser->data)->headers_complete_ = true;
  // Pausing makes http_parser_execute() return here: the body is never parsed.
  http_parser_pause(parser, 1);
  return 0;
}

void HttpProbe::on_response_data(const std::error_code& ec, size_t n) {
  if (closed_) return;
  if (ec == asio::error::eof) {
    report({false, "connection closed before the response headers"});
    close();
    return;
  }
  if (ec) {
    report({false, probe_error("recv", ec)});
    close();
    return;
  }
  received_ += n;
  http_parser_execute(&parser_, &settings_, buffer_.data(), n);
  if (headers_complete_) {
    const unsigned status = parser_.status_code;
    const bool expected = std::any_of(
        expect_status_.begin(), expect_status_.end(),
        [status](const auto& range) { return status >= range.first && status <= range.second; });
    report({expected, "HTTP " + std::to_string(status)});
    drain();
    return;
  }
  const auto error = static_cast<http_errno>(parser_.http_errno);
  if (error != HPE_OK) {
    report({false, std::string("HTTP parse error: ") + http_errno_description(error)});
    close();
  } else if (received_ >= kMaxResponseBytes) {
    report({false, "response headers larger than 64 KiB"});
    close();
  } else {
    read_response();
  }
}

void HttpProbe::drain() {
  if (closed_) return;  // the verdict's receiver may have cancelled the probe
  if (received_ >= kMaxResponseBytes) {
    close();
    return;
  }
  auto self = shared_from_this();
  socket_.async_read_some(asio::buffer(buffer_), [self](const std::error_code& ec, size_t n) {
    if (self->closed_) return;
    self->received_ += n;
    if (ec) {
      self->close();
    } else {
      self->drain();
    }
  });
}

void HttpProbe::cancel() {
  reported_ = true;
  done_ = nullptr;
  close();
}

void HttpProbe::report(ProbeResult result) {
  if (reported_) return;
  reported_ = true;
  if (Done done = std::exchange(done_, nullptr)) done(std::move(result));
}

void HttpProbe::close() {
  if (closed_) return;
  closed_ = true;
  std::error_code ignored;
  timer_.cancel();
  socket_.close(ignored);
}

}  // namespace ilb::cp

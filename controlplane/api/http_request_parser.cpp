#include "controlplane/api/http_request_parser.h"

namespace ilb::cp {

HttpRequestParser::HttpRequestParser(size_t max_request_bytes) : max_bytes_(max_request_bytes) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
}

const http_parser_settings& HttpRequestParser::settings() {
  static const http_parser_settings s = [] {
    http_parser_settings x{};
    x.on_url = &HttpRequestParser::on_url;
    x.on_body = &HttpRequestParser::on_body;
    x.on_message_complete = &HttpRequestParser::on_message_complete;
    return x;
  }();
  return s;
}

int HttpRequestParser::on_url(http_parser* p, const char* at, size_t len) {
  static_cast<HttpRequestParser*>(p->data)->request_.target.append(at, len);
  return 0;
}

int HttpRequestParser::on_body(http_parser* p, const char* at, size_t len) {
  static_cast<HttpRequestParser*>(p->data)->request_.body.append(at, len);
  return 0;
}

int HttpRequestParser::on_message_complete(http_parser* p) {
  static_cast<HttpRequestParser*>(p->data)->message_complete_ = true;
  // Stop at the end of the first request; anything pipelined after it is ignored.
  http_parser_pause(p, 1);
  return 0;
}

void HttpRequestParser::fail(int status, const std::string& message) {
  status_ = Status::kError;
  error_ = error_response(status, message);
}

HttpRequestParser::Status HttpRequestParser::feed(const char* data, size_t size) {
  if (status_ != Status::kNeedMore) return status_;
  // Callers read at most a few KiB at a time, so a read is parsed before the limit is checked,
  // and only the bytes up to the request's end (or a parse error) count: the verdict does not
  // depend on where the network split the bytes or on what a client pipelined after them.
  received_ += http_parser_execute(&parser_, &settings(), data, size);
  if (received_ > max_bytes_) {
    fail(413, "request larger than " + std::to_string(max_bytes_) + " bytes");
  } else if (message_complete_) {
    if (parser_.upgrade != 0) {
      fail(400, "protocol upgrade is not supported");
    } else {
      request_.method = http_method_str(static_cast<http_method>(parser_.method));
      status_ = Status::kComplete;
    }
  } else if (const auto err = HTTP_PARSER_ERRNO(&parser_); err != HPE_OK) {
    fail(400, std::string("malformed HTTP request: ") + http_errno_description(err));
  }
  return status_;
}

}  // namespace ilb::cp

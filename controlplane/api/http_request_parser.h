// Incremental parsing of one HTTP/1.1 request (http-parser), bounded in size: what the HTTP
// server's sessions feed every read into. Pure (no I/O), so that the handling of whatever bytes a
// client sends, split wherever the network splits them, is unit-tested and fuzzed (fuzz_http).
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <string>

#include "controlplane/api/http_types.h"

namespace ilb::cp {

class HttpRequestParser {
 public:
  enum class Status { kNeedMore, kComplete, kError };

  explicit HttpRequestParser(size_t max_request_bytes);
  HttpRequestParser(const HttpRequestParser&) = delete;
  HttpRequestParser& operator=(const HttpRequestParser&) = delete;

  // Feeds the next bytes read from the client. Once the result is kComplete or kError it stays so
  // and later bytes are ignored (a pipelined second request is never read).
  Status feed(const char* data, size_t size);
  Status status() const { return status_; }
  // The request; complete when status() is kComplete.
  const HttpRequest& request() const { return request_; }
  // When status() is kError, the answer for the client: 413 (the request, up to its end or to
  // where it stopped parsing, is longer than max_request_bytes), 400 (malformed, or a protocol
  // upgrade).
  const HttpResponse& error() const { return error_; }

 private:
  static const http_parser_settings& settings();
  static int on_url(http_parser* p, const char* at, size_t len);
  static int on_body(http_parser* p, const char* at, size_t len);
  static int on_message_complete(http_parser* p);
  void fail(int status, const std::string& message);

  size_t max_bytes_;
  size_t received_ = 0;
  http_parser parser_{};
  HttpRequest request_;
  bool message_complete_ = false;
  Status status_ = Status::kNeedMore;
  HttpResponse error_;
};

}  // namespace ilb::cp

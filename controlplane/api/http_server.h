// The HTTP/1.1 server under the control plane's two listeners: the API on a Unix socket (ilbctl,
// operators' scripts) and the Prometheus metrics on a TCP port. One request per connection,
// answered with "Connection: close": clients are short-lived CLI calls and scrapes, and this
// keeps the server free of pipelining state. Requests are parsed with http-parser and bounded in
// size, time and number of connections; whatever a client sends, the worst it gets is an error
// response, never a stalled or crashed daemon. After its answer a session reads and discards what
// the client still sends until it closes (at most 2 s), so the answer is not lost to a reset.
// Everything runs on the caller's io_context thread, like the rest of the control plane.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "controlplane/api/http_types.h"

namespace ilb::cp {

struct HttpLimits {
  size_t max_request_bytes = 64 * 1024;  // request line, headers and body together
  size_t max_connections = 64;
  std::chrono::milliseconds idle_timeout{10000};
};

// Protocol: asio::local::stream_protocol or asio::ip::tcp (the two instantiated in the .cpp).
template <class Protocol>
class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  using Endpoint = typename Protocol::endpoint;

  HttpServer(asio::io_context& io, Handler handler, HttpLimits limits);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Opens, binds (TCP: with SO_REUSEADDR, so a restart is not refused for the old connections'
  // TIME_WAIT) and listens on `endpoint`, then accepts. Throws std::system_error.
  void listen(const Endpoint& endpoint);
  // Closes the listener and aborts open connections. Safe to call more than once.
  void stop();

  bool listening() const { return listening_; }
  // Where it listens (a TCP port of 0 in listen() is resolved here). Requires listening().
  Endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

 private:
  class Session;
  void accept_next();

  std::shared_ptr<const Handler> handler_;
  HttpLimits limits_;
  typename Protocol::acceptor acceptor_;
  asio::steady_timer retry_;  // re-arms accepting after an accept error
  std::shared_ptr<size_t> open_sessions_ = std::make_shared<size_t>(0);
  std::vector<std::weak_ptr<Session>> sessions_;
  std::shared_ptr<bool> stopped_ = std::make_shared<bool>(false);
  bool listening_ = false;
};

}  // namespace ilb::cp

// HTTP/1.1 on a Unix stream socket, for ilbctl and operators' scripts (curl --unix-socket). One
// request per connection, answered with "Connection: close": clients are short-lived CLI calls,
// and this keeps the server free of pipelining state. Requests are parsed with http-parser and
// bounded in size, time and number of connections; whatever a client sends, the worst it gets is
// an error response, never a stalled or crashed daemon. Everything runs on the caller's
// io_context thread, like the rest of the control plane.
#pragma once

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "controlplane/api/http_types.h"

namespace ilb::cp {

class ApiServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  struct Limits {
    size_t max_request_bytes = 64 * 1024;  // request line, headers and body together
    size_t max_connections = 64;
    std::chrono::milliseconds idle_timeout{10000};
  };

  ApiServer(asio::io_context& io, std::string socket_path, Handler handler, Limits limits);
  ApiServer(asio::io_context& io, std::string socket_path, Handler handler)
      : ApiServer(io, std::move(socket_path), std::move(handler), Limits{}) {}
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Creates the socket's parent directory, removes a stale socket file (refusing if another
  // process still accepts on it), binds, listens and sets mode 0660. Throws std::runtime_error.
  void start();
  // Closes the listener, aborts open connections and removes the socket file.
  void stop();

  const std::string& socket_path() const { return path_; }

 private:
  class Session;
  void accept_next();

  asio::io_context& io_;
  std::string path_;
  std::shared_ptr<const Handler> handler_;
  Limits limits_;
  asio::local::stream_protocol::acceptor acceptor_;
  std::shared_ptr<size_t> open_sessions_ = std::make_shared<size_t>(0);
  std::vector<std::weak_ptr<Session>> sessions_;
  std::shared_ptr<bool> stopped_ = std::make_shared<bool>(false);
  bool started_ = false;
};

}  // namespace ilb::cp

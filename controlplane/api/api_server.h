// The control plane's API endpoint: HTTP/1.1 (HttpServer) on a Unix stream socket, for ilbctl and
// operators' scripts (curl --unix-socket). This class owns the socket file: it creates its
// directory, refuses a path another daemon serves, replaces a stale file, binds under a temporary
// name and renames it into place, and removes it on stop.
#pragma once

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <string>

#include "controlplane/api/http_server.h"
#include "controlplane/api/http_types.h"

namespace ilb::cp {

class ApiServer {
 public:
  using Server = HttpServer<asio::local::stream_protocol>;
  using Handler = Server::Handler;
  using Limits = HttpLimits;

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
  std::string path_;
  Server server_;
  bool started_ = false;
};

}  // namespace ilb::cp

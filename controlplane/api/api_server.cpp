#include "controlplane/api/api_server.h"

#include <http_parser.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace ilb::cp {

namespace {

// True if some process accepts connections on the Unix socket `path`.
bool socket_in_use(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool in_use = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return in_use;
}

std::string serialize(const HttpResponse& r) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + http_reason(r.status) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += r.body;
  return out;
}

}  // namespace

class ApiServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::local::stream_protocol::socket socket, std::shared_ptr<const Handler> handler,
          Limits limits, std::shared_ptr<size_t> open_sessions)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        handler_(std::move(handler)),
        limits_(limits),
        open_sessions_(std::move(open_sessions)) {
    ++*open_sessions_;
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
  }
  ~Session() { --*open_sessions_; }

  void start() {
    if (*open_sessions_ > limits_.max_connections) {
      respond(error_response(503, "too many open API connections"));
      return;
    }
    timer_.expires_after(limits_.idle_timeout);
    timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
      if (!ec && !self->responding_) self->respond(error_response(408, "request timeout"));
    });
    read();
  }

  void close() {
    std::error_code ignored;
    timer_.cancel();
    socket_.shutdown(asio::socket_base::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  static int on_url(http_parser* p, const char* at, size_t len) {
    static_cast<Session*>(p->data)->request_.target.append(at, len);
    return 0;
  }
  static int on_body(http_parser* p, const char* at, size_t len) {
    static_cast<Session*>(p->data)->request_.body.append(at, len);
    return 0;
  }
  static int on_message_complete(http_parser* p) {
    auto* self = static_cast<Session*>(p->data);
    self->complete_ = true;
    // Stop at the end of the first request; anything pipelined after it is ignored.
    http_parser_pause(p, 1);
    return 0;
  }
  static const http_parser_settings& settings() {
    static const http_parser_settings s = [] {
      http_parser_settings x{};
      x.on_url = &Session::on_url;
      x.on_body = &Session::on_body;
      x.on_message_complete = &Session::on_message_complete;
      return x;
    }();
    return s;
  }

  void read() {
    socket_.async_read_some(
        asio::buffer(buf_),
        [self = shared_from_this()](const std::error_code& ec, size_t n) { self->on_read(ec, n); });
  }

  void on_read(const std::error_code& ec, size_t n) {
    if (responding_) return;
    if (ec) {
      // The client closed or reset the connection before a complete request: nobody to answer.
      close();
      return;
    }
    received_ += n;
    if (received_ > limits_.max_request_bytes) {
      respond(error_response(
          413, "request larger than " + std::to_string(limits_.max_request_bytes) + " bytes"));
      return;
    }
    http_parser_execute(&parser_, &settings(), buf_.data(), n);
    if (complete_) {
      if (parser_.upgrade != 0) {
        respond(error_response(400, "protocol upgrade is not supported"));
        return;
      }
      request_.method = http_method_str(static_cast<http_method>(parser_.method));
      dispatch();
      return;
    }
    const auto err = HTTP_PARSER_ERRNO(&parser_);
    if (err != HPE_OK) {
      respond(error_response(
          400, std::string("malformed HTTP request: ") + http_errno_description(err)));
      return;
    }
    read();
  }

  void dispatch() {
    HttpResponse response;
    try {
      response = (*handler_)(request_);
    } catch (const std::exception& e) {
      response = error_response(500, std::string("internal error: ") + e.what());
    }
    respond(response);
  }

  void respond(const HttpResponse& response) {
    responding_ = true;
    timer_.cancel();
    out_ = serialize(response);
    // A client that does not read its answer must not keep the session forever.
    timer_.expires_after(limits_.idle_timeout);
    timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
      if (!ec) self->close();
    });
    asio::async_write(
        socket_, asio::buffer(out_),
        [self = shared_from_this()](const std::error_code&, size_t) { self->close(); });
  }

  asio::local::stream_protocol::socket socket_;
  asio::steady_timer timer_;
  std::shared_ptr<const Handler> handler_;
  Limits limits_;
  std::shared_ptr<size_t> open_sessions_;
  http_parser parser_{};
  std::array<char, 4096> buf_{};
  size_t received_ = 0;
  HttpRequest request_;
  bool complete_ = false;
  bool responding_ = false;
  std::string out_;
};

ApiServer::ApiServer(asio::io_context& io, std::string socket_path, Handler handler, Limits limits)
    : io_(io),
      path_(std::move(socket_path)),
      handler_(std::make_shared<const Handler>(std::move(handler))),
      limits_(limits),
      acceptor_(io) {}

ApiServer::~ApiServer() {
  stop();
}

void ApiServer::start() {
  namespace fs = std::filesystem;
  if (path_.empty()) throw std::runtime_error("API socket path is empty");
  if (path_.size() >= sizeof(sockaddr_un::sun_path)) {
    throw std::runtime_error("API socket path too long: " + path_);
  }
  std::error_code ec;
  const fs::path parent = fs::path(path_).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    if (ec) throw std::runtime_error("create " + parent.string() + ": " + ec.message());
  }
  const auto st = fs::symlink_status(path_, ec);
  if (!ec && fs::exists(st)) {
    if (!fs::is_socket(st)) {
      throw std::runtime_error(path_ + " exists and is not a socket");
    }
    if (socket_in_use(path_)) {
      throw std::runtime_error("another process is serving " + path_);
    }
    fs::remove(path_, ec);
    if (ec) throw std::runtime_error("remove stale " + path_ + ": " + ec.message());
  }
  // Bound and listening under a temporary name, then renamed into place: a client that sees the
  // socket file can always connect (never "connection refused" between bind and listen).
  const std::string tmp = path_ + ".tmp";
  if (tmp.size() >= sizeof(sockaddr_un::sun_path)) {
    throw std::runtime_error("API socket path too long: " + path_);
  }
  fs::remove(tmp, ec);
  asio::local::stream_protocol::endpoint endpoint(tmp);
  acceptor_.open(endpoint.protocol());
  acceptor_.bind(endpoint);
  acceptor_.listen();
  if (::chmod(tmp.c_str(), 0660) != 0) {
    throw std::runtime_error("chmod " + tmp + ": " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    throw std::runtime_error("rename " + tmp + " to " + path_ + ": " + std::strerror(errno));
  }
  started_ = true;
  *stopped_ = false;
  accept_next();
}

void ApiServer::accept_next() {
  acceptor_.async_accept([this, stopped = stopped_](const std::error_code& ec,
                                                    asio::local::stream_protocol::socket socket) {
    if (*stopped) return;
    if (!ec) {
      auto session =
          std::make_shared<Session>(std::move(socket), handler_, limits_, open_sessions_);
      sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(),
                                     [](const auto& w) { return w.expired(); }),
                      sessions_.end());
      sessions_.push_back(session);
      session->start();
    }
    if (acceptor_.is_open()) accept_next();
  });
}

void ApiServer::stop() {
  if (!started_) return;
  started_ = false;
  *stopped_ = true;
  std::error_code ignored;
  acceptor_.close(ignored);
  for (auto& w : sessions_) {
    if (auto s = w.lock()) s->close();
  }
  sessions_.clear();
  std::filesystem::remove(path_, ignored);
}

}  // namespace ilb::cp

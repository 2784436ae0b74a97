#include "controlplane/api/http_server.h"

#include <algorithm>
#include <array>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <string>
#include <type_traits>

#include "controlplane/api/http_request_parser.h"

namespace ilb::cp {

namespace {

constexpr auto kAcceptRetry = std::chrono::milliseconds(100);
// How long a session keeps reading (and discarding) what a client still sends after its answer.
constexpr auto kLingerTime = std::chrono::milliseconds(2000);

std::string serialize(const HttpResponse& r) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + http_reason(r.status) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += r.body;
  return out;
}

}  // namespace

template <class Protocol>
class HttpServer<Protocol>::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(typename Protocol::socket socket, std::shared_ptr<const Handler> handler,
          HttpLimits limits, std::shared_ptr<size_t> open_sessions)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        handler_(std::move(handler)),
        limits_(limits),
        open_sessions_(std::move(open_sessions)),
        parser_(limits_.max_request_bytes) {
    ++*open_sessions_;
  }
  ~Session() { --*open_sessions_; }

  void start() {
    if (*open_sessions_ > limits_.max_connections) {
      // Under a flood of connections, each of these closes at once instead of lingering.
      respond(error_response(503, "too many open connections"), false);
      return;
    }
    timer_.expires_after(limits_.idle_timeout);
    timer_.async_wait([self = this->shared_from_this()](const std::error_code& ec) {
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
  void read() {
    reading_ = true;
    socket_.async_read_some(asio::buffer(buf_),
                            [self = this->shared_from_this()](const std::error_code& ec, size_t n) {
                              self->on_read(ec, n);
                            });
  }

  void on_read(const std::error_code& ec, size_t n) {
    reading_ = false;
    if (lingering_) {
      // Discarding what the client still sends, until it closes.
      if (ec) {
        close();
      } else {
        read();
      }
      return;
    }
    if (responding_) return;
    if (ec) {
      // The client closed or reset the connection before a complete request: nobody to answer.
      close();
      return;
    }
    switch (parser_.feed(buf_.data(), n)) {
      case HttpRequestParser::Status::kComplete:
        dispatch();
        return;
      case HttpRequestParser::Status::kError:
        respond(parser_.error());
        return;
      case HttpRequestParser::Status::kNeedMore:
        read();
        return;
    }
  }

  void dispatch() {
    HttpResponse response;
    try {
      response = (*handler_)(parser_.request());
    } catch (const std::exception& e) {
      response = error_response(500, std::string("internal error: ") + e.what());
    }
    respond(response);
  }

  void respond(const HttpResponse& response, bool then_linger = true) {
    responding_ = true;
    timer_.cancel();
    out_ = serialize(response);
    // A client that does not read its answer must not keep the session forever.
    timer_.expires_after(limits_.idle_timeout);
    timer_.async_wait([self = this->shared_from_this()](const std::error_code& ec) {
      if (!ec) self->close();
    });
    asio::async_write(
        socket_, asio::buffer(out_),
        [self = this->shared_from_this(), then_linger](const std::error_code& ec, size_t) {
          if (ec || !then_linger) {
            self->close();
          } else {
            self->linger();
          }
        });
  }

  // After the answer: send FIN and read what the client still sends until it closes (or
  // kLingerTime passes). Closing with unread bytes would make the kernel send a reset instead,
  // and a client still sending, say, a request too large for the server would see that reset
  // rather than the 413 waiting for it (what web servers call a lingering close).
  void linger() {
    lingering_ = true;
    std::error_code ignored;
    socket_.shutdown(asio::socket_base::shutdown_send, ignored);
    timer_.expires_after(std::min<std::chrono::milliseconds>(kLingerTime, limits_.idle_timeout));
    timer_.async_wait([self = this->shared_from_this()](const std::error_code& ec) {
      if (!ec) self->close();
    });
    if (!reading_) read();
  }

  typename Protocol::socket socket_;
  asio::steady_timer timer_;
  std::shared_ptr<const Handler> handler_;
  HttpLimits limits_;
  std::shared_ptr<size_t> open_sessions_;
  HttpRequestParser parser_;
  std::array<char, 4096> buf_{};
  bool responding_ = false;
  bool reading_ = false;    // a read is outstanding
  bool lingering_ = false;  // answered: what is read now is discarded
  std::string out_;
};

template <class Protocol>
HttpServer<Protocol>::HttpServer(asio::io_context& io, Handler handler, HttpLimits limits)
    : handler_(std::make_shared<const Handler>(std::move(handler))),
      limits_(limits),
      acceptor_(io),
      retry_(io) {}

template <class Protocol>
HttpServer<Protocol>::~HttpServer() {
  stop();
}

template <class Protocol>
void HttpServer<Protocol>::listen(const Endpoint& endpoint) {
  try {
    acceptor_.open(endpoint.protocol());
    if constexpr (std::is_same_v<Protocol, asio::ip::tcp>) {
      acceptor_.set_option(asio::socket_base::reuse_address(true));
    }
    acceptor_.bind(endpoint);
    acceptor_.listen();
  } catch (...) {
    std::error_code ignored;
    acceptor_.close(ignored);
    throw;
  }
  listening_ = true;
  // A fresh flag: handlers of an earlier listen() still hold the old one, set by stop().
  stopped_ = std::make_shared<bool>(false);
  accept_next();
}

template <class Protocol>
void HttpServer<Protocol>::accept_next() {
  acceptor_.async_accept(
      [this, stopped = stopped_](const std::error_code& ec, typename Protocol::socket socket) {
        if (*stopped) return;
        if (!ec) {
          auto session =
              std::make_shared<Session>(std::move(socket), handler_, limits_, open_sessions_);
          sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(),
                                         [](const auto& w) { return w.expired(); }),
                          sessions_.end());
          sessions_.push_back(session);
          session->start();
        } else if (ec != asio::error::operation_aborted && acceptor_.is_open()) {
          // Out of descriptors, or another error that would fail again at once: try again
          // later instead of spinning the event loop.
          retry_.expires_after(kAcceptRetry);
          retry_.async_wait([this, stopped](const std::error_code& e) {
            if (!e && !*stopped && acceptor_.is_open()) accept_next();
          });
          return;
        }
        if (acceptor_.is_open()) accept_next();
      });
}

template <class Protocol>
void HttpServer<Protocol>::stop() {
  *stopped_ = true;
  listening_ = false;
  std::error_code ignored;
  acceptor_.close(ignored);
  retry_.cancel();
  for (auto& w : sessions_) {
    if (auto s = w.lock()) s->close();
  }
  sessions_.clear();
}

template class HttpServer<asio::local::stream_protocol>;
template class HttpServer<asio::ip::tcp>;

}  // namespace ilb::cp

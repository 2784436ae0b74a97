#include "controlplane/health/exchange_probe.h"

#include <sys/socket.h>

#include <algorithm>
#include <asio/post.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <system_error>
#include <utility>

namespace ilb::cp {

ExchangeProbe::ExchangeProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                             std::chrono::milliseconds timeout, std::string request,
                             size_t max_bytes)
    : io_(io),
      socket_(io),
      timer_(io),
      endpoint_(endpoint),
      timeout_(timeout),
      request_(std::move(request)),
      max_bytes_(max_bytes) {}

void ExchangeProbe::start(Done done) {
  done_ = std::move(done);
  auto self = shared_from_this();
  // One timer over connect, request, reply and the drain after the verdict.
  timer_.expires_after(timeout_);
  timer_.async_wait([self](const std::error_code& wait_ec) {
    if (wait_ec || self->closed_) return;
    self->report({false, probe_timeout(self->timeout_)});
    self->close();
  });
  if (take_kept_connection()) {
    send_request();
  } else {
    connect();
  }
}

// Takes the connection a previous probe kept, if the server has not closed it meanwhile (nothing
// may be waiting on an idle connection: a FIN, a reset or stray bytes all retire it).
bool ExchangeProbe::take_kept_connection() {
  if (!kept_ || !kept_->socket) return false;
  asio::ip::tcp::socket kept = std::move(*kept_->socket);
  kept_->socket.reset();
  char byte = 0;
  const ssize_t n = ::recv(kept.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  const bool idle = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  if (!idle) {
    std::error_code ignored;
    kept.close(ignored);
    return false;
  }
  socket_ = std::move(kept);
  reused_ = true;
  return true;
}

void ExchangeProbe::connect() {
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
  socket_.async_connect(
      endpoint_, [self](const std::error_code& connect_ec) { self->on_connect(connect_ec); });
}

void ExchangeProbe::on_connect(const std::error_code& ec) {
  if (closed_) return;
  if (ec) {
    report({false, probe_error("connect", ec)});
    close();
    return;
  }
  send_request();
}

void ExchangeProbe::send_request() {
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(request_),
                    [self](const std::error_code& write_ec, size_t) {
                      if (self->closed_) return;
                      if (write_ec) {
                        if (self->retry_on_new_connection(write_ec)) return;
                        self->report({false, probe_error("send", write_ec)});
                        self->close();
                        return;
                      }
                      self->read();
                    });
}

// A kept connection that the server closed as the request arrived: the request was never
// answered, so it is sent once more on a new connection (within the same timeout).
bool ExchangeProbe::retry_on_new_connection(const std::error_code& ec) {
  if (!reused_ || total_ != 0) return false;
  if (ec != asio::error::eof && ec != asio::error::connection_reset &&
      ec != asio::error::broken_pipe) {
    return false;
  }
  reused_ = false;
  std::error_code ignored;
  socket_.close(ignored);
  connect();
  return true;
}

void ExchangeProbe::read() {
  auto self = shared_from_this();
  const size_t room = std::min(buffer_.size(), max_bytes_ - total_);
  socket_.async_read_some(asio::buffer(buffer_.data(), room),
                          [self](const std::error_code& ec, size_t n) { self->on_data(ec, n); });
}

void ExchangeProbe::on_data(const std::error_code& ec, size_t n) {
  if (closed_) return;
  if (ec) {
    if (retry_on_new_connection(ec)) return;
    report(ec == asio::error::eof ? closed_early() : ProbeResult{false, probe_error("recv", ec)});
    close();
    return;
  }
  total_ += n;
  if (std::optional<Verdict> v = on_reply(std::string_view(buffer_.data(), n))) {
    const bool drain_after = v->drain;
    if (v->keep && kept_) {
      // Parked before the verdict goes out: its receiver may start the next probe at once.
      closed_ = true;
      timer_.cancel();
      kept_->socket.emplace(std::move(socket_));
      report(std::move(v->result));
      return;
    }
    report(std::move(v->result));
    if (drain_after) {
      drain();
    } else {
      close();
    }
  } else if (total_ >= max_bytes_) {
    report(too_large());
    close();
  } else {
    read();
  }
}

void ExchangeProbe::drain() {
  if (closed_) return;  // the verdict's receiver may have cancelled the probe
  if (total_ >= max_bytes_) {
    close();
    return;
  }
  auto self = shared_from_this();
  const size_t room = std::min(buffer_.size(), max_bytes_ - total_);
  socket_.async_read_some(asio::buffer(buffer_.data(), room),
                          [self](const std::error_code& ec, size_t n) {
                            if (self->closed_) return;
                            self->total_ += n;
                            if (ec) {
                              self->close();
                            } else {
                              self->drain();
                            }
                          });
}

void ExchangeProbe::cancel() {
  reported_ = true;
  done_ = nullptr;
  close();
}

void ExchangeProbe::report(ProbeResult result) {
  if (reported_) return;
  reported_ = true;
  if (Done done = std::exchange(done_, nullptr)) done(std::move(result));
}

void ExchangeProbe::close() {
  if (closed_) return;
  closed_ = true;
  std::error_code ignored;
  timer_.cancel();
  socket_.close(ignored);
}

}  // namespace ilb::cp

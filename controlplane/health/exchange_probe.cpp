#include "controlplane/health/exchange_probe.h"

#include <algorithm>
#include <asio/post.hpp>
#include <asio/write.hpp>
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
  std::error_code ec;
  socket_.open(endpoint_.protocol(), ec);
  if (ec) {
    asio::post(io_, [self, ec] {
      self->report({false, probe_error("socket", ec)});
      self->close();
    });
    return;
  }
  // One timer over connect, request, reply and the drain after the verdict.
  timer_.expires_after(timeout_);
  timer_.async_wait([self](const std::error_code& wait_ec) {
    if (wait_ec || self->closed_) return;
    self->report({false, probe_timeout(self->timeout_)});
    self->close();
  });
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
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(request_),
                    [self](const std::error_code& write_ec, size_t) {
                      if (self->closed_) return;
                      if (write_ec) {
                        self->report({false, probe_error("send", write_ec)});
                        self->close();
                        return;
                      }
                      self->read();
                    });
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
    report(ec == asio::error::eof ? closed_early() : ProbeResult{false, probe_error("recv", ec)});
    close();
    return;
  }
  total_ += n;
  if (std::optional<Verdict> v = on_reply(std::string_view(buffer_.data(), n))) {
    const bool drain_after = v->drain;
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

#include "controlplane/health/tcp_check.h"

#include <asio/post.hpp>
#include <system_error>
#include <utility>

namespace ilb::cp {

TcpProbe::TcpProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                   std::chrono::milliseconds timeout)
    : io_(io), socket_(io), timer_(io), endpoint_(endpoint), timeout_(timeout) {}

void TcpProbe::start(Done done) {
  done_ = std::move(done);
  auto self = shared_from_this();
  std::error_code ec;
  socket_.open(endpoint_.protocol(), ec);
  if (ec) {
    asio::post(io_, [self, ec] { self->finish({false, probe_error("socket", ec)}); });
    return;
  }
  timer_.expires_after(timeout_);
  timer_.async_wait([self](const std::error_code& wait_ec) {
    if (wait_ec || self->finished_) return;
    self->finish({false, probe_timeout(self->timeout_)});
  });
  socket_.async_connect(endpoint_, [self](const std::error_code& connect_ec) {
    if (self->finished_) return;
    if (connect_ec) {
      self->finish({false, probe_error("connect", connect_ec)});
      return;
    }
    self->finish({true, "connected"});
  });
}

void TcpProbe::cancel() {
  finished_ = true;
  done_ = nullptr;
  close();
}

void TcpProbe::finish(ProbeResult result) {
  finished_ = true;
  close();
  if (Done done = std::exchange(done_, nullptr)) done(std::move(result));
}

// Every close aborts: an established connection is reset rather than shut down, and one still
// connecting is dropped silently.
void TcpProbe::close() {
  std::error_code ignored;
  timer_.cancel();
  if (socket_.is_open()) socket_.set_option(asio::socket_base::linger(true, 0), ignored);
  socket_.close(ignored);
}

}  // namespace ilb::cp

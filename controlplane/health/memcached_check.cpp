#include "controlplane/health/memcached_check.h"

#include <algorithm>
#include <asio/post.hpp>
#include <asio/write.hpp>
#include <string_view>
#include <system_error>
#include <utility>

namespace ilb::cp {
namespace {

// A reply line fit for a reason: control characters become '?', and long text is cut off.
std::string printable(std::string_view text) {
  constexpr size_t kMax = 120;
  std::string out;
  for (char c : text.substr(0, kMax)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < ' ' || u == 0x7f) ? '?' : c;
  }
  if (text.size() > kMax) out += "...";
  return out;
}

}  // namespace

MemcachedProbe::MemcachedProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                               std::chrono::milliseconds timeout)
    : io_(io), socket_(io), timer_(io), endpoint_(endpoint), timeout_(timeout) {}

void MemcachedProbe::start(Done done) {
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

void MemcachedProbe::on_connect(const std::error_code& ec) {
  if (closed_) return;
  if (ec) {
    report({false, probe_error("connect", ec)});
    close();
    return;
  }
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(std::string_view(kRequest)),
                    [self](const std::error_code& write_ec, size_t) {
                      if (self->closed_) return;
                      if (write_ec) {
                        self->report({false, probe_error("send", write_ec)});
                        self->close();
                        return;
                      }
                      self->read_reply();
                    });
}

void MemcachedProbe::read_reply() {
  auto self = shared_from_this();
  const size_t room = std::min(buffer_.size(), kMaxReplyBytes - total_);
  socket_.async_read_some(asio::buffer(buffer_.data(), room),
                          [self](const std::error_code& ec, size_t n) { self->on_data(ec, n); });
}

void MemcachedProbe::on_data(const std::error_code& ec, size_t n) {
  if (closed_) return;
  if (ec == asio::error::eof) {
    report({false, received_.empty()
                       ? "memcached: connection closed before the reply"
                       : "memcached: connection closed in the reply " + printable(received_)});
    close();
    return;
  }
  if (ec) {
    report({false, probe_error("recv", ec)});
    close();
    return;
  }
  total_ += n;
  received_.append(buffer_.data(), n);
  const size_t eol = received_.find("\r\n");
  if (eol != std::string::npos) {
    const std::string_view line = std::string_view(received_).substr(0, eol);
    report({line.starts_with("VERSION "), "memcached: " + printable(line)});
    drain();
  } else if (total_ >= kMaxReplyBytes) {
    report({false, "memcached: reply line longer than 16 KiB"});
    close();
  } else {
    read_reply();
  }
}

void MemcachedProbe::drain() {
  if (closed_) return;  // the verdict's receiver may have cancelled the probe
  if (total_ >= kMaxReplyBytes) {
    close();
    return;
  }
  auto self = shared_from_this();
  const size_t room = std::min(buffer_.size(), kMaxReplyBytes - total_);
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

void MemcachedProbe::cancel() {
  reported_ = true;
  done_ = nullptr;
  close();
}

void MemcachedProbe::report(ProbeResult result) {
  if (reported_) return;
  reported_ = true;
  if (Done done = std::exchange(done_, nullptr)) done(std::move(result));
}

void MemcachedProbe::close() {
  if (closed_) return;
  closed_ = true;
  std::error_code ignored;
  timer_.cancel();
  socket_.close(ignored);
}

}  // namespace ilb::cp

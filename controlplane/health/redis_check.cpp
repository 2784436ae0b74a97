#include "controlplane/health/redis_check.h"

#include <algorithm>
#include <asio/post.hpp>
#include <asio/write.hpp>
#include <charconv>
#include <system_error>
#include <utility>

namespace ilb::cp {
namespace {

constexpr int kMaxDepth = 8;  // nested arrays; ROLE on a master nests two deep

// A reply fit for a reason: control characters become '?', and long text is cut off.
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

std::string describe(const RespReply& reply) {
  if (reply.type == '*') return "an array starting with " + printable(reply.text);
  return std::string(1, reply.type) + printable(reply.text);
}

void append_command(std::string& out, std::initializer_list<std::string_view> words) {
  out += "*" + std::to_string(words.size()) + "\r\n";
  for (std::string_view w : words) {
    out += "$" + std::to_string(w.size()) + "\r\n";
    out += w;
    out += "\r\n";
  }
}

bool parse_int(std::string_view text, long long& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

size_t parse_at(std::string_view data, size_t pos, int depth, RespReply* out) {
  if (pos >= data.size()) return RedisProbe::kIncomplete;
  const size_t eol = data.find("\r\n", pos);
  if (eol == std::string_view::npos) return RedisProbe::kIncomplete;
  const char type = data[pos];
  const std::string_view line = data.substr(pos + 1, eol - pos - 1);
  const size_t next = eol + 2;
  long long n = 0;
  switch (type) {
    case '+':
    case '-':
    case ':':
      if (out) *out = {type, std::string(line)};
      return next;
    case '$':
      if (!parse_int(line, n) || n < -1 || n > static_cast<long long>(RedisProbe::kMaxReplyBytes)) {
        return RedisProbe::kMalformed;
      }
      if (n == -1) {
        if (out) *out = {type, "(nil)"};
        return next;
      }
      if (data.size() < next + size_t(n) + 2) return RedisProbe::kIncomplete;
      if (data.substr(next + size_t(n), 2) != "\r\n") return RedisProbe::kMalformed;
      if (out) *out = {type, std::string(data.substr(next, size_t(n)))};
      return next + size_t(n) + 2;
    case '*': {
      if (!parse_int(line, n) || n < -1 || depth >= kMaxDepth) return RedisProbe::kMalformed;
      if (out) *out = {type, n == -1 ? "(nil)" : ""};
      size_t at = next;
      for (long long i = 0; i < n; ++i) {
        RespReply element;
        at = parse_at(data, at, depth + 1, &element);
        if (at == RedisProbe::kIncomplete || at == RedisProbe::kMalformed) return at;
        if (i == 0 && out) out->text = element.text;
      }
      return at;
    }
    default:
      return RedisProbe::kMalformed;
  }
}

}  // namespace

RedisProbe::RedisProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                       std::chrono::milliseconds timeout, std::string username,
                       std::string password, std::string role)
    : io_(io),
      socket_(io),
      timer_(io),
      endpoint_(endpoint),
      timeout_(timeout),
      role_(std::move(role)),
      request_(make_request(username, password, !role_.empty())) {
  if (!password.empty()) steps_.push_back(Step::kAuth);
  steps_.push_back(Step::kPing);
  if (!role_.empty()) steps_.push_back(Step::kRole);
}

std::string RedisProbe::make_request(const std::string& username, const std::string& password,
                                     bool ask_role) {
  std::string out;
  if (!password.empty()) {
    if (username.empty()) {
      append_command(out, {"AUTH", password});
    } else {
      append_command(out, {"AUTH", username, password});
    }
  }
  append_command(out, {"PING"});
  if (ask_role) append_command(out, {"ROLE"});
  append_command(out, {"QUIT"});
  return out;
}

size_t RedisProbe::parse_reply(std::string_view data, size_t pos, RespReply& out) {
  return parse_at(data, pos, 0, &out);
}

void RedisProbe::start(Done done) {
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
  // One timer over connect, pipeline, replies and the drain after the verdict.
  timer_.expires_after(timeout_);
  timer_.async_wait([self](const std::error_code& wait_ec) {
    if (wait_ec || self->closed_) return;
    self->report({false, probe_timeout(self->timeout_)});
    self->close();
  });
  socket_.async_connect(
      endpoint_, [self](const std::error_code& connect_ec) { self->on_connect(connect_ec); });
}

void RedisProbe::on_connect(const std::error_code& ec) {
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
                      self->read_replies();
                    });
}

void RedisProbe::read_replies() {
  auto self = shared_from_this();
  const size_t room = std::min(buffer_.size(), kMaxReplyBytes - total_);
  socket_.async_read_some(asio::buffer(buffer_.data(), room),
                          [self](const std::error_code& ec, size_t n) { self->on_data(ec, n); });
}

void RedisProbe::on_data(const std::error_code& ec, size_t n) {
  if (closed_) return;
  if (ec == asio::error::eof) {
    report({false, "redis: connection closed before the reply"});
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
  if (judge()) {
    drain();
  } else if (total_ >= kMaxReplyBytes) {
    report({false, "redis: reply larger than 16 KiB"});
    close();
  } else {
    read_replies();
  }
}

bool RedisProbe::judge() {
  while (next_step_ < steps_.size()) {
    RespReply reply;
    const size_t end = parse_reply(received_, parsed_, reply);
    if (end == kIncomplete) return false;
    if (end == kMalformed) {
      report({false, "redis: malformed reply " + printable(received_.substr(parsed_))});
      return true;
    }
    parsed_ = end;
    if (reply.type == '-') {
      report({false, "redis: -" + printable(reply.text)});
      return true;
    }
    switch (steps_[next_step_++]) {
      case Step::kAuth:
        if (reply.type != '+' || reply.text != "OK") {
          report({false, "redis: AUTH answered " + describe(reply)});
          return true;
        }
        break;
      case Step::kPing:
        if (reply.type != '+' || reply.text != "PONG") {
          report({false, "redis: PING answered " + describe(reply)});
          return true;
        }
        break;
      case Step::kRole: {
        if (reply.type != '*') {
          report({false, "redis: ROLE answered " + describe(reply)});
          return true;
        }
        // Redis still says "slave" in ROLE; the configuration says "replica".
        const std::string seen = reply.text == "slave" ? "replica" : printable(reply.text);
        if (seen != role_) {
          report({false, "redis: role is " + seen + ", want " + role_});
          return true;
        }
        break;
      }
    }
  }
  report({true, role_.empty() ? "redis: +PONG" : "redis: +PONG, role " + role_});
  return true;
}

void RedisProbe::drain() {
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

void RedisProbe::cancel() {
  reported_ = true;
  done_ = nullptr;
  close();
}

void RedisProbe::report(ProbeResult result) {
  if (reported_) return;
  reported_ = true;
  if (Done done = std::exchange(done_, nullptr)) done(std::move(result));
}

void RedisProbe::close() {
  if (closed_) return;
  closed_ = true;
  std::error_code ignored;
  timer_.cancel();
  socket_.close(ignored);
}

}  // namespace ilb::cp

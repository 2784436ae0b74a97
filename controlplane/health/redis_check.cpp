#include "controlplane/health/redis_check.h"

#include <algorithm>
#include <charconv>
#include <system_error>
#include <utility>

namespace ilb::cp {
namespace {

constexpr int kMaxDepth = 8;  // nested arrays; ROLE on a master nests two deep

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
    : ExchangeProbe(io, endpoint, timeout, make_request(username, password, !role.empty()),
                    kMaxReplyBytes),
      role_(std::move(role)) {
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

std::optional<ExchangeProbe::Verdict> RedisProbe::on_reply(std::string_view chunk) {
  received_.append(chunk);
  while (next_step_ < steps_.size()) {
    RespReply reply;
    const size_t end = parse_reply(received_, parsed_, reply);
    if (end == kIncomplete) return std::nullopt;
    if (end == kMalformed) {
      return Verdict{{false, "redis: malformed reply " + printable(received_.substr(parsed_))}};
    }
    parsed_ = end;
    if (reply.type == '-') return Verdict{{false, "redis: -" + printable(reply.text)}};
    switch (steps_[next_step_++]) {
      case Step::kAuth:
        if (reply.type != '+' || reply.text != "OK") {
          return Verdict{{false, "redis: AUTH answered " + describe(reply)}};
        }
        break;
      case Step::kPing:
        if (reply.type != '+' || reply.text != "PONG") {
          return Verdict{{false, "redis: PING answered " + describe(reply)}};
        }
        break;
      case Step::kRole: {
        if (reply.type != '*') return Verdict{{false, "redis: ROLE answered " + describe(reply)}};
        // Redis still says "slave" in ROLE; the configuration says "replica".
        const std::string seen = reply.text == "slave" ? "replica" : printable(reply.text);
        if (seen != role_) return Verdict{{false, "redis: role is " + seen + ", want " + role_}};
        break;
      }
    }
  }
  return Verdict{{true, role_.empty() ? "redis: +PONG" : "redis: +PONG, role " + role_}};
}

ProbeResult RedisProbe::closed_early() const {
  return {false, "redis: connection closed before the reply"};
}

ProbeResult RedisProbe::too_large() const {
  return {false, "redis: reply larger than 16 KiB"};
}

}  // namespace ilb::cp

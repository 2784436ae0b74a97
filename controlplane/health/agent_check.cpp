#include "controlplane/health/agent_check.h"

#include <cctype>
#include <vector>

#include "controlplane/health/http_check.h"

namespace ilb::cp {

namespace {

std::string lowercase(std::string_view word) {
  std::string out(word);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim_line_end(std::string_view text) {
  while (!text.empty() && (text.back() == '\r' || text.back() == '\n')) text.remove_suffix(1);
  return text;
}

// "0%" .. "100%": the number, else nullopt.
std::optional<uint32_t> percentage(std::string_view word) {
  if (word.size() < 2 || word.size() > 4 || word.back() != '%') return std::nullopt;
  uint32_t value = 0;
  for (char c : word.substr(0, word.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + uint32_t(c - '0');
  }
  if (value > 100) return std::nullopt;
  return value;
}

ProbeResult bad_reply(std::string_view reply) {
  return {false, "agent: bad reply '" + printable(reply) + "'"};
}

}  // namespace

ProbeResult parse_agent_reply(std::string_view reply) {
  const std::string_view text = trim_line_end(reply);
  std::vector<std::string> words;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find_first_of(" ,\t", pos);
    const std::string_view word = text.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (!word.empty()) words.push_back(lowercase(word));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  if (words.empty()) return bad_reply(text);

  AgentAdvice advice;
  bool down = false;
  std::string said;
  for (const std::string& word : words) {
    if (word == "down" || word == "fail" || word == "stopped") {
      down = true;
    } else if (word == "drain") {
      advice.drain = true;
    } else if (std::optional<uint32_t> pct = percentage(word)) {
      advice.weight_pct = *pct;
    } else if (word != "up" && word != "ready") {
      return bad_reply(text);
    }
    if (!said.empty()) said += ' ';
    said += word;
  }
  ProbeResult result{!down, "agent: " + said};
  result.advice = advice;
  return result;
}

AgentProbe::AgentProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                       std::chrono::milliseconds timeout, AgentProtocol protocol,
                       std::string http_path, std::string http_host)
    : ExchangeProbe(io, endpoint, timeout, make_request(protocol, endpoint, http_path, http_host),
                    protocol == AgentProtocol::kHttp ? kMaxHttpBytes : kMaxReply),
      protocol_(protocol) {
  http_parser_init(&parser_, HTTP_RESPONSE);
  parser_.data = this;
  http_parser_settings_init(&settings_);
  settings_.on_headers_complete = &AgentProbe::on_headers_complete;
  settings_.on_body = &AgentProbe::on_body;
  settings_.on_message_complete = &AgentProbe::on_message_complete;
}

// A TCP agent is sent nothing: it speaks first and closes.
std::string AgentProbe::make_request(AgentProtocol protocol,
                                     const asio::ip::tcp::endpoint& endpoint,
                                     const std::string& path, const std::string& host) {
  if (protocol != AgentProtocol::kHttp) return {};
  return HttpProbe::make_request(path.empty() ? "/" : path,
                                 host.empty() ? HttpProbe::default_host(endpoint) : host);
}

int AgentProbe::on_headers_complete(http_parser* parser) {
  static_cast<AgentProbe*>(parser->data)->headers_complete_ = true;
  return 0;
}

int AgentProbe::on_body(http_parser* parser, const char* at, size_t length) {
  auto* self = static_cast<AgentProbe*>(parser->data);
  const size_t room = kMaxReply - std::min(kMaxReply, self->reply_.size());
  self->reply_.append(at, std::min(room, length));
  if (length > room) self->reply_too_long_ = true;
  return 0;
}

int AgentProbe::on_message_complete(http_parser* parser) {
  static_cast<AgentProbe*>(parser->data)->message_complete_ = true;
  http_parser_pause(parser, 1);
  return 0;
}

std::optional<ExchangeProbe::Verdict> AgentProbe::on_reply(std::string_view chunk) {
  return protocol_ == AgentProtocol::kHttp ? on_http_reply(chunk) : on_tcp_reply(chunk);
}

std::optional<ExchangeProbe::Verdict> AgentProbe::on_tcp_reply(std::string_view chunk) {
  // ExchangeProbe reads at most kMaxReply bytes in all, so the line cannot grow past it.
  reply_.append(chunk);
  const size_t newline = reply_.find('\n');
  if (newline == std::string::npos) return std::nullopt;
  return Verdict{parse_agent_reply(std::string_view(reply_).substr(0, newline))};
}

std::optional<ExchangeProbe::Verdict> AgentProbe::on_http_reply(std::string_view chunk) {
  http_parser_execute(&parser_, &settings_, chunk.data(), chunk.size());
  const auto error = static_cast<http_errno>(parser_.http_errno);
  if (error != HPE_OK && error != HPE_PAUSED) {
    return Verdict{
        {false, std::string("agent: HTTP parse error: ") + http_errno_description(error)}, false};
  }
  if (headers_complete_ && (parser_.status_code < 200 || parser_.status_code > 299)) {
    return Verdict{{false, "agent: HTTP " + std::to_string(parser_.status_code)}};
  }
  if (reply_too_long_) return Verdict{too_large()};
  if (message_complete_) return Verdict{parse_agent_reply(reply_)};
  return std::nullopt;
}

ProbeResult AgentProbe::closed_early() const {
  if (protocol_ == AgentProtocol::kHttp) {
    // A 2xx response without Content-Length or chunked encoding ends with the connection, so
    // its body is complete now; any other response was cut short.
    const bool body_until_close =
        headers_complete_ && (parser_.flags & (F_CHUNKED | F_CONTENTLENGTH)) == 0;
    if (body_until_close) return parse_agent_reply(reply_);
    return {false, "agent: connection closed before the reply ended"};
  }
  if (reply_.empty()) return {false, "agent: connection closed without a reply"};
  return parse_agent_reply(reply_);
}

ProbeResult AgentProbe::too_large() const {
  return {false, "agent: reply longer than " + std::to_string(kMaxReply) + " bytes"};
}

}  // namespace ilb::cp

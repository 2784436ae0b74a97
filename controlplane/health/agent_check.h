// Agent check: the backend runs a small agent that says how it is - "up", "down", "drain", a
// weight such as "50%" - and the control plane applies it. This is the xinetd-script pattern
// (a port that prints the state of a database replica) and HAProxy's agent-check, without xinetd.
//
// Over TCP the agent is sent nothing: it writes one line and closes. Over HTTP it gets a GET and
// the body of a 2xx response is the reply. Either way the reply is small (at most 512 bytes) and
// must arrive within the check's timeout. The grammar is strict: a reply with a word the control
// plane does not know counts as a failed check, not as "up", because a misconfigured agent should
// be noticed rather than silently trusted.
#pragma once

#include <http_parser.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "controlplane/config/model.h"
#include "controlplane/health/exchange_probe.h"

namespace ilb::cp {

// Judges one agent reply. Words are separated by spaces, commas or tabs and compared without
// regard to case; trailing CR/LF is ignored. "up"/"ready" mean up, "down"/"fail"/"stopped" down,
// "drain" up but draining, "N%" (0..100) a weight percentage, and words combine ("up 50%").
// A well-formed reply always sets `advice` (a down word wins over up, so "drain down" is not ok);
// its reason is "agent: " and the words, lowercased. An empty reply or an unknown word gives not
// ok, no advice, and the reason "agent: bad reply '<text>'".
ProbeResult parse_agent_reply(std::string_view reply);

class AgentProbe final : public ExchangeProbe {
 public:
  // Longest reply accepted: the TCP line, or the HTTP body.
  static constexpr size_t kMaxReply = 512;
  // Most bytes read from one HTTP connection: headers, body and the drain after the verdict.
  static constexpr size_t kMaxHttpBytes = 16 * 1024;

  // `http_path` and `http_host` are used by the HTTP protocol only (an empty host means the
  // endpoint's address and port).
  AgentProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
             std::chrono::milliseconds timeout, AgentProtocol protocol, std::string http_path,
             std::string http_host);

 private:
  static std::string make_request(AgentProtocol protocol, const asio::ip::tcp::endpoint& endpoint,
                                  const std::string& path, const std::string& host);
  static int on_headers_complete(http_parser* parser);
  static int on_body(http_parser* parser, const char* at, size_t length);
  static int on_message_complete(http_parser* parser);

  std::optional<Verdict> on_reply(std::string_view chunk) override;
  std::optional<Verdict> on_tcp_reply(std::string_view chunk);
  std::optional<Verdict> on_http_reply(std::string_view chunk);
  ProbeResult closed_early() const override;
  ProbeResult too_large() const override;

  AgentProtocol protocol_;
  std::string reply_;  // the TCP line or the HTTP body so far (at most kMaxReply + 1 bytes)
  bool reply_too_long_ = false;
  http_parser parser_{};
  http_parser_settings settings_{};
  bool headers_complete_ = false;
  bool message_complete_ = false;
};

}  // namespace ilb::cp

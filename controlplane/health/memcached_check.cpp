#include "controlplane/health/memcached_check.h"

#include <algorithm>
#include <string_view>
#include <system_error>
#include <utility>

namespace ilb::cp {

MemcachedProbe::MemcachedProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                               std::chrono::milliseconds timeout)
    : ExchangeProbe(io, endpoint, timeout, kRequest, kMaxReplyBytes) {}

std::optional<ExchangeProbe::Verdict> MemcachedProbe::on_reply(std::string_view chunk) {
  received_.append(chunk);
  const size_t eol = received_.find("\r\n");
  if (eol == std::string::npos) return std::nullopt;
  const std::string_view line = std::string_view(received_).substr(0, eol);
  return Verdict{{line.starts_with("VERSION "), "memcached: " + printable(line)}};
}

ProbeResult MemcachedProbe::closed_early() const {
  return {false, received_.empty()
                     ? "memcached: connection closed before the reply"
                     : "memcached: connection closed in the reply " + printable(received_)};
}

ProbeResult MemcachedProbe::too_large() const {
  return {false, "memcached: reply line longer than 16 KiB"};
}

}  // namespace ilb::cp

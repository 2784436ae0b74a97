// One health probe: a single asynchronous attempt against one backend, reporting success or failure
// with a short human-readable reason. The checker creates a fresh probe for every attempt, so a
// probe type holds only the state of one exchange and never has to be reset.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <compare>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace ilb::cp {

// What a backend's agent asked for (agent checks only), on top of up or down.
struct AgentAdvice {
  bool drain = false;                  // "drain": keep existing connections, take no new ones
  std::optional<uint32_t> weight_pct;  // "75%": weight as a percentage of the configured one
  auto operator<=>(const AgentAdvice&) const = default;
};

struct ProbeResult {
  ProbeResult() = default;
  ProbeResult(bool is_ok, std::string why) : ok(is_ok), reason(std::move(why)) {}

  bool ok = false;
  std::string reason;                 // "connected", "HTTP 200", "connect: connection refused", ...
  std::optional<AgentAdvice> advice;  // set by agent checks that got a well-formed reply
};

class Probe {
 public:
  using Done = std::function<void(ProbeResult)>;

  virtual ~Probe() = default;

  // Starts the attempt. `done` is called exactly once, from a handler on the io_context, unless
  // cancel() is called first; it is never called from inside start(). The probe keeps itself alive
  // while its operations are pending, so the caller may drop its pointer at any time.
  virtual void start(Done done) = 0;

  // Closes the socket and timer; `done` is not called afterwards. Safe to call more than once and
  // after `done` has run (a probe may still be closing its connection then).
  virtual void cancel() = 0;
};

// "connect: connection refused" from an asio error: the operation, then the system's message with
// its first letter lowered so reasons read the same whatever the source.
std::string probe_error(const char* operation, const std::error_code& ec);

// "timeout after 500 ms".
std::string probe_timeout(std::chrono::milliseconds timeout);

// Reply text fit for a reason: control characters become '?', text past 120 bytes is cut off.
std::string printable(std::string_view text);

}  // namespace ilb::cp

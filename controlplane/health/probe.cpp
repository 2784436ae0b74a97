#include "controlplane/health/probe.h"

#include <cctype>

namespace ilb::cp {

std::string probe_error(const char* operation, const std::error_code& ec) {
  std::string message = ec.message();
  if (!message.empty()) {
    message[0] = char(std::tolower(static_cast<unsigned char>(message[0])));
  }
  return std::string(operation) + ": " + message;
}

std::string probe_timeout(std::chrono::milliseconds timeout) {
  return "timeout after " + std::to_string(timeout.count()) + " ms";
}

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

}  // namespace ilb::cp

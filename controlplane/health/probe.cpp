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

}  // namespace ilb::cp

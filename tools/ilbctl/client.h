// ilbctl's HTTP client for the control plane's Unix socket: one request per connection, the answer
// read to the end and parsed with http-parser.
#pragma once

#include <stdexcept>
#include <string>

namespace ilb::ctl {

// The socket does not exist or nobody accepts on it. what() is "connect PATH: REASON".
class NotRunning : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Reply {
  int status = 0;
  std::string body;
};

// Sends one request. Throws NotRunning, or std::runtime_error for any other failure (permission,
// timeout, a malformed answer).
Reply call(const std::string& socket_path, const std::string& method, const std::string& target,
           const std::string& body = "");

}  // namespace ilb::ctl

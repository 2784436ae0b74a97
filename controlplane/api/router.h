// Maps the HTTP API (/v1/...) onto an ApiModel: routes, methods, request validation and status
// codes. Every answer is JSON; every error is {"error": "..."}.
//
//   GET  /v1/status
//   GET  /v1/services
//   GET  /v1/services/{name}/backends
//   POST /v1/services/{name}/backends/{addr:port}/admin   {"state":"enabled|draining|disabled"}
//   POST /v1/reload
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "controlplane/api/api_model.h"
#include "controlplane/api/http_types.h"

namespace ilb::cp {

class Router {
 public:
  explicit Router(ApiModel& model) : model_(model) {}
  HttpResponse handle(const HttpRequest& request);

 private:
  ApiModel& model_;
};

// Parses "10.0.0.1:3306" (port 1..65535). Returns false on anything else.
bool parse_address_port(const std::string& text, uint32_t& address_network_order, uint16_t& port);
// Parses "enabled", "draining" or "disabled".
std::optional<abi::AdminState> parse_admin_state(const std::string& text);

}  // namespace ilb::cp

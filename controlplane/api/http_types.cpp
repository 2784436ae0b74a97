#include "controlplane/api/http_types.h"

#include <nlohmann/json.hpp>

namespace ilb::cp {

const char* http_reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

std::string json_body(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

HttpResponse error_response(int status, const std::string& message) {
  return HttpResponse{status, json_body(nlohmann::json{{"error", message}}), "application/json"};
}

}  // namespace ilb::cp

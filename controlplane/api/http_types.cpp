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

HttpResponse error_response(int status, const std::string& message) {
  return HttpResponse{status, nlohmann::json{{"error", message}}.dump() + "\n", "application/json"};
}

}  // namespace ilb::cp

// The small HTTP vocabulary shared by the API server, its router and their tests.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace ilb::cp {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // request target as sent, e.g. "/v1/services?x=1"
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

const char* http_reason(int status);

// `value` as a response body: compact JSON and a newline. Bytes that are not UTF-8 (error
// messages quote what clients sent) become U+FFFD instead of making the serializer throw.
std::string json_body(const nlohmann::json& value);

// {"error": message} with a trailing newline, the body of every error response.
HttpResponse error_response(int status, const std::string& message);

}  // namespace ilb::cp

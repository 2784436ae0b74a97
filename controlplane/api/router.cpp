#include "controlplane/api/router.h"

#include <vector>

#include "dataplane/config/dp_config.h"

namespace ilb::cp {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits the path of `target` (query string dropped) into percent-decoded segments.
bool split_path(const std::string& target, std::vector<std::string>& out) {
  std::string path = target.substr(0, target.find_first_of("?#"));
  if (path.empty() || path[0] != '/') return false;
  std::string seg;
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      out.push_back(seg);
      seg.clear();
    } else if (path[i] == '%') {
      if (i + 2 >= path.size() || hex_value(path[i + 1]) < 0 || hex_value(path[i + 2]) < 0) {
        return false;
      }
      seg += static_cast<char>(hex_value(path[i + 1]) * 16 + hex_value(path[i + 2]));
      i += 2;
    } else {
      seg += path[i];
    }
  }
  if (!out.empty() && out.back().empty()) out.pop_back();  // tolerate a trailing slash
  return true;
}

HttpResponse json_response(const nlohmann::json& body) {
  return HttpResponse{200, json_body(body), "application/json"};
}

HttpResponse method_not_allowed(const std::string& allowed) {
  return error_response(405, "method not allowed; use " + allowed);
}

}  // namespace

bool parse_address_port(const std::string& text, uint32_t& address, uint16_t& port) {
  return dp::parse_ipv4_port(text, address, port) && port != 0;
}

std::optional<abi::AdminState> parse_admin_state(const std::string& text) {
  if (text == "enabled") return abi::AdminState::kEnabled;
  if (text == "draining") return abi::AdminState::kDraining;
  if (text == "disabled") return abi::AdminState::kDisabled;
  return std::nullopt;
}

HttpResponse Router::handle(const HttpRequest& request) {
  std::vector<std::string> seg;
  if (!split_path(request.target, seg)) return error_response(400, "bad request target");
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  if (seg.size() < 2 || seg[0] != "v1") {
    return error_response(404, "no such endpoint: " + request.target);
  }

  if (seg.size() == 2 && seg[1] == "status") {
    if (!get) return method_not_allowed("GET");
    return json_response(model_.status());
  }
  if (seg.size() == 2 && seg[1] == "services") {
    if (!get) return method_not_allowed("GET");
    return json_response(model_.services());
  }
  if (seg.size() == 2 && seg[1] == "reload") {
    if (!post) return method_not_allowed("POST");
    ReloadResult r = model_.reload();
    if (!r.ok) return error_response(422, r.error);
    return json_response(r.info);
  }
  if (seg.size() == 4 && seg[1] == "services" && seg[3] == "backends") {
    if (!get) return method_not_allowed("GET");
    auto body = model_.backends(seg[2]);
    if (!body) return error_response(404, "no such service: " + seg[2]);
    return json_response(*body);
  }
  if (seg.size() == 6 && seg[1] == "services" && seg[3] == "backends" && seg[5] == "admin") {
    if (!post) return method_not_allowed("POST");
    uint32_t address = 0;
    uint16_t port = 0;
    if (!parse_address_port(seg[4], address, port)) {
      return error_response(400, "bad backend address (expected IPV4:PORT): " + seg[4]);
    }
    const auto body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      return error_response(400, "body must be a JSON object like {\"state\":\"draining\"}");
    }
    auto it = body.find("state");
    if (it == body.end() || !it->is_string()) {
      return error_response(400, "body needs \"state\": \"enabled\", \"draining\" or \"disabled\"");
    }
    auto state = parse_admin_state(it->get<std::string>());
    if (!state) {
      return error_response(400, "bad state \"" + it->get<std::string>() +
                                     "\"; expected enabled, draining or disabled");
    }
    switch (model_.set_admin(seg[2], address, port, *state)) {
      case AdminResult::kNoService:
        return error_response(404, "no such service: " + seg[2]);
      case AdminResult::kNoBackend:
        return error_response(404, "no backend " + seg[4] + " in service " + seg[2]);
      case AdminResult::kOk:
        break;
    }
    return json_response(nlohmann::json{
        {"service", seg[2]}, {"backend", seg[4]}, {"admin", it->get<std::string>()}});
  }
  return error_response(404, "no such endpoint: " + request.target);
}

}  // namespace ilb::cp

// ilbctl: the operator's command line for a running ilb-controlplane (HTTP/JSON on its Unix
// socket). It never touches shared memory or the dataplane directly.
#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "tools/ilbctl/client.h"
#include "tools/ilbctl/format.h"

namespace {

std::string percent_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

int fail(const std::string& message) {
  std::cerr << "ilbctl: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ilbctl: inspect and steer a running ilb control plane"};
  app.require_subcommand(1);
  const char* env_instance = std::getenv("ILB_INSTANCE");
  std::string instance =
      env_instance != nullptr && *env_instance != '\0' ? env_instance : "default";
  std::string socket;
  bool json_out = false;
  auto* instance_opt = app.add_option("--instance", instance,
                                      "instance name (default $ILB_INSTANCE or \"default\")");
  app.add_option("--socket", socket, "API socket (default /run/ilb/<instance>.sock)")
      ->excludes(instance_opt);
  app.add_flag("--json", json_out, "print the API's JSON instead of tables");

  auto* status = app.add_subcommand("status", "control plane and dataplane status");
  auto* services = app.add_subcommand("services", "services with backend counts and counters");
  std::string service;
  auto* backends = app.add_subcommand("backends", "backends of one service");
  backends->add_option("SERVICE", service, "service name")->required();
  auto* backend = app.add_subcommand("backend", "change a backend's admin state");
  backend->require_subcommand(1);
  std::string address;
  std::string state;
  for (const auto& [verb, target_state] :
       {std::pair{"enable", "enabled"}, {"disable", "disabled"}, {"drain", "draining"}}) {
    auto* sub = backend->add_subcommand(verb, std::string("set admin state ") + target_state);
    sub->add_option("SERVICE", service, "service name")->required();
    sub->add_option("ADDR:PORT", address, "backend address and port")->required();
    sub->callback([&state, s = std::string(target_state)] { state = s; });
  }
  auto* reload = app.add_subcommand("reload", "re-read the configuration file");
  CLI11_PARSE(app, argc, argv);

  if (socket.empty()) socket = "/run/ilb/" + instance + ".sock";

  std::string method = "GET";
  std::string target;
  std::string body;
  if (status->parsed()) {
    target = "/v1/status";
  } else if (services->parsed()) {
    target = "/v1/services";
  } else if (backends->parsed()) {
    target = "/v1/services/" + percent_encode(service) + "/backends";
  } else if (backend->parsed()) {
    method = "POST";
    target = "/v1/services/" + percent_encode(service) + "/backends/" + percent_encode(address) +
             "/admin";
    body = nlohmann::json{{"state", state}}.dump();
  } else if (reload->parsed()) {
    method = "POST";
    target = "/v1/reload";
  }

  ilb::ctl::Reply reply;
  try {
    reply = ilb::ctl::call(socket, method, target, body);
  } catch (const ilb::ctl::NotRunning& e) {
    return fail(std::string("control plane not running (") + e.what() + ")");
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  const auto answer = nlohmann::json::parse(reply.body, nullptr, false);
  if (answer.is_discarded()) {
    return fail("the control plane answered HTTP " + std::to_string(reply.status) +
                " with a body that is not JSON");
  }
  if (reply.status != 200) {
    if (answer.is_object() && answer.contains("error") && answer["error"].is_string()) {
      return fail(answer["error"].get<std::string>());
    }
    return fail("HTTP " + std::to_string(reply.status));
  }
  if (json_out) {
    std::cout << answer.dump(2) << "\n";
    return 0;
  }
  if (status->parsed()) std::cout << ilb::ctl::format_status(answer);
  if (services->parsed()) std::cout << ilb::ctl::format_services(answer);
  if (backends->parsed()) std::cout << ilb::ctl::format_backends(answer);
  if (backend->parsed()) std::cout << ilb::ctl::format_admin(answer);
  if (reload->parsed()) std::cout << ilb::ctl::format_reload(answer);
  return 0;
}

// What the API can ask of the daemon. The router depends only on this interface, so routes,
// status codes and request validation are tested without a running daemon.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "dataplane/abi/ilb_abi.h"

namespace ilb::cp {

enum class AdminResult { kOk, kNoService, kNoBackend };

struct ReloadResult {
  bool ok = false;
  std::string error;    // the loader's one-line message when !ok
  nlohmann::json info;  // when ok: what the reload did
};

class ApiModel {
 public:
  virtual ~ApiModel() = default;
  virtual nlohmann::json status() = 0;
  virtual nlohmann::json services() = 0;
  // nullopt: no service of that name.
  virtual std::optional<nlohmann::json> backends(const std::string& service) = 0;
  virtual AdminResult set_admin(const std::string& service, uint32_t address, uint16_t port,
                                abi::AdminState state) = 0;
  // Re-reads the configuration file; on failure the running state is left exactly as it was.
  virtual ReloadResult reload() = 0;
};

}  // namespace ilb::cp

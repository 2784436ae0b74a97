// The control plane's configuration model: what ilb.toml says, validated. Plain values, no
// behaviour; the loader (loader.cpp) is the only producer.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/abi/ilb_abi.h"
#include "dataplane/config/dp_config.h"

namespace ilb::cp {

enum class CheckType { kNone, kTcp, kHttp, kRedis, kMemcached };

struct HealthCheckConfig {
  CheckType type = CheckType::kTcp;
  uint32_t interval_ms = 2000;
  uint32_t timeout_ms = 1000;
  uint32_t rise = 2;  // consecutive successes to go from down to up
  uint32_t fall = 3;  // consecutive failures to go from up to down
  uint16_t port = 0;  // 0 = the backend's port
  // http only
  std::string path = "/";
  std::string host;  // Host header; empty = the backend's address
  std::vector<std::pair<uint16_t, uint16_t>> expect_status{{200, 200}};  // inclusive ranges
  // redis only
  std::string password;  // empty = no AUTH
  std::string username;  // ACL user for AUTH; empty = the default user
  std::string role;      // "", "master" or "replica"
};

struct BackendConfig {
  uint32_t address = 0;  // IPv4, network order
  uint16_t port = 0;
  uint32_t weight = 100;
  uint32_t line = 0;  // source line, for messages
};

struct ServiceConfig {
  std::string name;
  uint32_t vip = 0;  // IPv4, network order
  uint16_t port = 0;
  abi::Protocol protocol = abi::Protocol::kTcp;
  abi::Scheduler scheduler = abi::Scheduler::kMaglev;
  uint32_t table_size = 65537;  // prime
  uint32_t tcp_syn_timeout_s = 30;
  uint32_t tcp_established_timeout_s = 350;
  uint32_t tcp_fin_timeout_s = 60;
  uint32_t udp_timeout_s = 30;
  HealthCheckConfig health_check;
  std::vector<BackendConfig> backends;  // at least one
  uint32_t line = 0;
};

struct ControlPlaneConfig {
  std::string api_socket;  // default "/run/ilb/<instance>.sock"
  std::string log_level = "info";
};

struct Config {
  std::string path;
  std::string instance = "default";
  ControlPlaneConfig controlplane;
  dp::DataplaneConfig dataplane;
  std::vector<ServiceConfig> services;
};

}  // namespace ilb::cp

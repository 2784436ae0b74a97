// The control plane's configuration model: what ilb.toml says, validated. Plain values, no
// behaviour; the loader (loader.cpp) is the only producer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/abi/ilb_abi.h"
#include "dataplane/config/dp_config.h"

namespace ilb::cp {

enum class CheckType { kNone, kTcp, kHttp, kRedis, kMemcached, kMysql, kAgent, kExec };

// How a tcp check probes.
enum class TcpMode {
  kSyn,      // half-open: SYN, wait for SYN-ACK, our kernel resets it (needs CAP_NET_RAW)
  kConnect,  // connect(), then close with an RST
};

// How an agent check reaches the backend's agent.
enum class AgentProtocol {
  kTcp,   // connect, read one reply line, the agent closes
  kHttp,  // GET `path`, the body is the reply
};

struct HealthCheckConfig {
  CheckType type = CheckType::kTcp;
  uint32_t interval_ms = 2000;
  uint32_t timeout_ms = 1000;
  uint32_t rise = 2;  // consecutive successes to go from down to up
  uint32_t fall = 3;  // consecutive failures to go from up to down
  uint16_t port = 0;  // 0 = the backend's port
  // tcp only; kSyn falls back to kConnect (logged once) when raw sockets are not allowed
  TcpMode tcp_mode = TcpMode::kSyn;
  // http only
  std::string path = "/";
  std::string host;  // Host header; empty = the backend's address
  std::vector<std::pair<uint16_t, uint16_t>> expect_status{{200, 200}};  // inclusive ranges
  std::string method = "GET";
  std::string expect_body;  // must occur in the response body; empty = the status decides alone
  bool reuse_connection = false;  // keep the connection open between checks (HTTP keep-alive)
  // redis and mysql
  std::string password;  // empty = no AUTH (redis) / no password (mysql)
  // redis only
  std::string username;  // ACL user for AUTH; empty = the default user
  std::string role;      // "", "master" or "replica"
  // mysql only. Without `user` the check reads the server greeting and closes with a reset;
  // with it, it logs in, runs `query` and quits.
  std::string user;
  std::string query = "SELECT 1";
  std::optional<uint32_t> max_replication_lag_s;  // needs `user`; replica checks only
  // agent only (`port` is usually set: agents listen beside the service)
  AgentProtocol agent_protocol = AgentProtocol::kTcp;
  // exec only: argv[0] is an absolute path, run without a shell; the backend is described in
  // the environment (ILB_BACKEND_ADDRESS, ILB_BACKEND_PORT, ILB_CHECK_PORT, ILB_SERVICE).
  std::vector<std::string> command;

  bool operator==(const HealthCheckConfig&) const = default;
};

struct BackendConfig {
  uint32_t address = 0;  // IPv4, network order
  uint16_t port = 0;
  uint32_t weight = 100;
  bool backup = false;  // takes traffic only while no primary backend can
  std::string zone;     // "" = no zone
  // The backend's own [health_check] keys on top of its service's check; nullopt = the service's.
  std::optional<HealthCheckConfig> health_check;
  uint32_t line = 0;  // source line, for messages
};

// What happens to a backend's existing connections when its health check takes it down.
enum class OnBackendDown { kKeep, kReset };
// What a service does when no backend is eligible.
enum class OnAllDown {
  kReject,    // new connections get a TCP reset / ICMP port unreachable
  kFailOpen,  // every enabled backend takes traffic, whatever its health
};
// What a TCP service does with a segment that is not a SYN and belongs to no tracked connection
// (the dataplane restarted, the connection idled out, or it was cut).
enum class UntrackedTcp {
  kDrop,   // count and drop: the sender retransmits until its own timeout
  kReset,  // count and answer with a reset, so the sender fails at once
};
// Which backups take traffic when no primary can.
enum class BackupPolicy { kFirst, kAll };

// Holds a backend that keeps flipping down with exponential back-off: once it went down
// `threshold` times within `window_s`, each further down→up is held back for a hold time that
// starts at `min_hold_s` and doubles up to `max_hold_s`; a backend that stays up for `window_s`
// starts over.
struct Dampening {
  bool enabled = true;
  uint32_t threshold = 4;
  uint32_t window_s = 120;
  uint32_t min_hold_s = 10;
  uint32_t max_hold_s = 300;
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
  UntrackedTcp untracked_tcp = UntrackedTcp::kDrop;
  HealthCheckConfig health_check;
  uint32_t drain_timeout_s = 300;  // 0 = draining connections are never cut
  OnBackendDown on_backend_down = OnBackendDown::kKeep;
  OnAllDown on_all_down = OnAllDown::kReject;
  BackupPolicy backup_policy = BackupPolicy::kFirst;
  uint32_t slow_start_s = 0;  // 0 = full weight at once
  bool zone_affinity = false;
  double zone_min_healthy = 0.5;  // fraction of the local zone's backends that must be up
  Dampening dampening;
  std::vector<BackendConfig> backends;  // at least one
  uint32_t line = 0;
};

// The check a backend gets.
inline const HealthCheckConfig& check_of(const ServiceConfig& service,
                                         const BackendConfig& backend) {
  return backend.health_check ? *backend.health_check : service.health_check;
}

struct ControlPlaneConfig {
  std::string api_socket;  // default "/run/ilb/<instance>.sock"
  // Prometheus endpoint "IPV4:PORT" as written; "" = none. Parsed into the two fields below
  // (address in network order; port 0 = any free port).
  std::string metrics_listen;
  uint32_t metrics_address = 0;
  uint16_t metrics_port = 0;
  std::string log_level = "info";
  std::string zone;        // this instance's zone, for zone_affinity
  std::string state_file;  // default "/var/lib/ilb/<instance>.state"; "" disables it
  // Run on every backend state change with the event in the environment; argv[0] is an absolute
  // path, no shell. Empty = no hook.
  std::vector<std::string> hook;
  uint32_t hook_timeout_ms = 10000;
};

struct Config {
  std::string path;
  std::string instance = "default";
  ControlPlaneConfig controlplane;
  dp::DataplaneConfig dataplane;
  std::vector<ServiceConfig> services;
};

}  // namespace ilb::cp

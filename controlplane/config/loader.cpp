// Validation of the whole ilb.toml for the control plane. Checks run in the order the keys of each
// table are listed below, tables in file order, and stop at the first problem: the operator gets
// one precise message and the caller never sees a half-built Config. Limits that come from the
// shared-memory ABI (services, backends, table entries per snapshot) are enforced here, so a
// file that loads is a file the publisher can always write.
#include "controlplane/config/loader.h"

#include <toml++/toml.h>

#include <algorithm>

#include "dataplane/config/toml_reader.h"

namespace ilb::cp {
namespace {

using dp::quoted;
using dp::TomlNode;
using dp::TomlTable;

// Connection timeouts are whole seconds from 1 s up to a week.
constexpr uint32_t kMaxTimeoutS = 7 * 24 * 3600;
constexpr uint64_t kMinInterval = 100;
constexpr uint64_t kMaxInterval = 3'600'000;
constexpr uint64_t kMinTimeout = 10;
constexpr uint32_t kDefaultTimeoutMs = 1000;
// sockaddr_un::sun_path holds 108 bytes including the terminating NUL, and the API binds
// "<api_socket>.tmp" before renaming it into place.
constexpr size_t kMaxSocketPath = 103;

bool is_prime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

bool has_space_or_control(const std::string& text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= ' ' || u == 0x7f;
  });
}

bool has_control(const std::string& text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < ' ' || u == 0x7f;
  });
}

const char* protocol_name(abi::Protocol protocol) {
  return protocol == abi::Protocol::kUdp ? "udp" : "tcp";
}

const char* check_type_name(CheckType type) {
  switch (type) {
    case CheckType::kNone:
      return "none";
    case CheckType::kTcp:
      return "tcp";
    case CheckType::kHttp:
      return "http";
    case CheckType::kRedis:
      return "redis";
    case CheckType::kMemcached:
      return "memcached";
    case CheckType::kMysql:
      return "mysql";
    case CheckType::kAgent:
      return "agent";
    case CheckType::kExec:
      return "exec";
  }
  return "?";
}

ControlPlaneConfig parse_controlplane(const TomlTable& top, const std::string& instance) {
  ControlPlaneConfig cp;
  cp.api_socket = "/run/ilb/" + instance + ".sock";
  cp.state_file = "/var/lib/ilb/" + instance + ".state";
  auto section = top.get("controlplane");
  if (!section) return cp;
  TomlTable t = section->as_table();
  t.allow_only(
      {"api_socket", "metrics_listen", "log_level", "zone", "state_file", "hook", "hook_timeout"});
  if (auto n = t.get("zone")) {
    cp.zone = n->as_string();
    if (!dp::is_name(cp.zone, "_.-", 63, true)) {
      n->fail("must be 1 to 63 characters of A-Z, a-z, 0-9, '_', '.' and '-', got " +
              quoted(cp.zone));
    }
  }
  if (auto n = t.get("state_file")) {
    cp.state_file = n->as_string();
    if (!cp.state_file.empty() && !cp.state_file.starts_with('/')) {
      n->fail("expected an absolute path, or \"\" to keep no state file, got " +
              quoted(cp.state_file));
    }
    if (cp.state_file.find('\0') != std::string::npos) n->fail("must not contain NUL bytes");
  }
  if (auto n = t.get("hook")) {
    for (const auto& element : n->as_array()) {
      std::string arg = element.as_string();
      if (arg.find('\0') != std::string::npos) element.fail("must not contain NUL bytes");
      cp.hook.push_back(std::move(arg));
    }
    if (cp.hook.empty()) n->fail("expected at least the program's absolute path");
    if (!cp.hook.front().starts_with('/')) {
      n->fail("the program must be an absolute path (no shell, no PATH lookup), got " +
              quoted(cp.hook.front()));
    }
  }
  if (auto n = t.get("hook_timeout")) {
    cp.hook_timeout_ms = static_cast<uint32_t>(n->as_duration_ms(100, 3'600'000));
  }
  if (auto n = t.get("api_socket")) {
    cp.api_socket = n->as_string();
    if (cp.api_socket.empty()) n->fail("must not be empty");
    if (cp.api_socket.size() > kMaxSocketPath) {
      n->fail("a Unix socket path is limited to " + std::to_string(kMaxSocketPath) +
              " bytes, got " + std::to_string(cp.api_socket.size()));
    }
    if (cp.api_socket.find('\0') != std::string::npos) n->fail("must not contain NUL bytes");
  }
  if (auto n = t.get("metrics_listen")) {
    cp.metrics_listen = n->as_string();
    if (!cp.metrics_listen.empty() &&
        !dp::parse_ipv4_port(cp.metrics_listen, cp.metrics_address, cp.metrics_port)) {
      n->fail(
          "expected \"IPV4:PORT\" (port 0..65535, 0 for any free port) or \"\" for no "
          "metrics endpoint, got " +
          quoted(cp.metrics_listen));
    }
  }
  if (auto n = t.get("log_level")) {
    cp.log_level = n->as_string();
    static constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error"};
    if (std::find(std::begin(kLevels), std::end(kLevels), cp.log_level) == std::end(kLevels)) {
      n->fail("expected one of trace, debug, info, warn, error, got " + quoted(cp.log_level));
    }
  }
  return cp;
}

std::pair<uint16_t, uint16_t> parse_status_range(const TomlNode& node) {
  auto in_range = [](int64_t v) { return v >= 100 && v <= 599; };
  if (const auto* value = node.node().as_integer()) {
    int64_t v = value->get();
    if (!in_range(v))
      node.fail("HTTP status must be between 100 and 599, got " + std::to_string(v));
    return {static_cast<uint16_t>(v), static_cast<uint16_t>(v)};
  }
  if (!node.node().is_string()) node.fail_type("an HTTP status or a \"lo-hi\" string");
  std::string text = node.as_string();
  auto is_status = [](std::string_view s) {
    return s.size() == 3 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  size_t dash = text.find('-');
  std::string lo = text.substr(0, dash);
  std::string hi = dash == std::string::npos ? lo : text.substr(dash + 1);
  if (!is_status(lo) || !is_status(hi)) {
    node.fail("expected an HTTP status range such as \"200-299\", got " + quoted(text));
  }
  int lo_v = std::stoi(lo);
  int hi_v = std::stoi(hi);
  if (!in_range(lo_v) || !in_range(hi_v)) {
    node.fail("HTTP status must be between 100 and 599, got " + quoted(text));
  }
  if (lo_v > hi_v) node.fail("the range " + quoted(text) + " is empty (low end above high end)");
  return {static_cast<uint16_t>(lo_v), static_cast<uint16_t>(hi_v)};
}

// The redis check sends these as RESP bulk strings, so any byte would do on the wire; control
// characters are refused anyway because they are far likelier a pasting mistake than a password.
void parse_redis_keys(const TomlTable& t, HealthCheckConfig& hc) {
  if (auto n = t.get("password")) {
    hc.password = n->as_string();
    if (hc.password.empty() || hc.password.size() > 512 || has_control(hc.password)) {
      n->fail("expected 1 to 512 characters without control characters");
    }
  }
  if (auto n = t.get("username")) {
    hc.username = n->as_string();
    if (hc.username.empty() || hc.username.size() > 255 || has_space_or_control(hc.username)) {
      n->fail("expected a user name of 1 to 255 characters without spaces, got " +
              quoted(hc.username));
    }
    if (!t.get("password")) n->fail("username needs a password");
  }
  if (auto n = t.get("role")) {
    hc.role = n->as_string();
    if (hc.role != "master" && hc.role != "replica") {
      n->fail("expected one of master, replica, got " + quoted(hc.role));
    }
  }
}

const char* const kCheckTypes[] = {"none",      "tcp",   "http",  "redis",
                                   "memcached", "mysql", "agent", "exec"};

// Which keys belong to which check type; a key given for another type is a mistake worth naming
// (a `path` on a tcp check does nothing, and the operator should hear so).
bool key_allowed_for(std::string_view key, CheckType type) {
  auto in = [&](std::initializer_list<std::string_view> keys) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  switch (type) {
    case CheckType::kHttp:
      return in({"path", "host", "expect_status", "method", "expect_body", "reuse_connection"});
    case CheckType::kRedis:
      return in({"password", "username", "role"});
    case CheckType::kMysql:
      return in({"user", "password", "query", "max_replication_lag"});
    case CheckType::kAgent:
      return in({"agent_protocol", "path", "host"});
    case CheckType::kExec:
      return in({"command"});
    case CheckType::kTcp:
      return in({"tcp_mode"});
    case CheckType::kNone:
    case CheckType::kMemcached:
      return false;
  }
  return false;
}

constexpr std::string_view kTypeSpecificKeys[] = {
    "path",   "host",        "expect_status",       "password",       "username", "role",
    "user",   "query",       "max_replication_lag", "agent_protocol", "command",  "tcp_mode",
    "method", "expect_body", "reuse_connection"};

void parse_http_keys(const TomlTable& t, HealthCheckConfig& hc) {
  if (auto n = t.get("path")) {
    hc.path = n->as_string();
    if (!hc.path.starts_with('/')) n->fail("must start with '/', got " + quoted(hc.path));
    if (has_space_or_control(hc.path)) n->fail("must not contain spaces or control characters");
  }
  if (auto n = t.get("host")) {
    hc.host = n->as_string();
    if (hc.host.empty() || hc.host.size() > 255 || has_space_or_control(hc.host)) {
      n->fail("expected a host name of 1 to 255 characters without spaces, got " + quoted(hc.host));
    }
  }
  if (auto n = t.get("expect_status")) {
    auto elements = n->as_array();
    if (elements.empty()) n->fail("at least one status or range is required");
    hc.expect_status.clear();
    for (const auto& element : elements) hc.expect_status.push_back(parse_status_range(element));
  }
}

// `method`, `expect_body` and `reuse_connection` belong to http checks only (an agent check
// always GETs its path on a new connection).
void parse_http_check_keys(const TomlTable& t, HealthCheckConfig& hc) {
  parse_http_keys(t, hc);
  auto method = t.get("method");
  if (method) {
    hc.method = method->as_string();
    const bool token = !hc.method.empty() && hc.method.size() <= 32 &&
                       std::all_of(hc.method.begin(), hc.method.end(),
                                   [](char c) { return c >= 'A' && c <= 'Z'; });
    if (!token) {
      method->fail("expected an HTTP method in capital letters (GET, HEAD, OPTIONS, ...), got " +
                   quoted(hc.method));
    }
    // A 2xx answer to CONNECT turns the connection into a tunnel, not a response to judge.
    if (hc.method == "CONNECT") method->fail("CONNECT cannot be a health check's method");
  }
  auto body = t.get("expect_body");
  if (body) {
    hc.expect_body = body->as_string();
    if (hc.expect_body.empty() || hc.expect_body.size() > 1024 ||
        hc.expect_body.find('\0') != std::string::npos) {
      body->fail("expected 1 to 1024 characters of text without NUL");
    }
  }
  if (auto n = t.get("reuse_connection")) hc.reuse_connection = n->as_boolean();
  if (hc.method == "HEAD" && !hc.expect_body.empty()) {
    const TomlNode& where = body ? *body : *method;
    where.fail("a HEAD response has no body for expect_body to find; use GET");
  }
}

// The mysql check sends the query as COM_QUERY text and the user name NUL-terminated, so neither
// may contain NUL; control characters are refused as pasting mistakes.
void parse_mysql_keys(const TomlTable& t, HealthCheckConfig& hc) {
  if (auto n = t.get("user")) {
    hc.user = n->as_string();
    if (hc.user.empty() || hc.user.size() > 80 || has_space_or_control(hc.user)) {
      n->fail("expected a user name of 1 to 80 characters without spaces, got " + quoted(hc.user));
    }
  }
  if (auto n = t.get("password")) {
    hc.password = n->as_string();
    if (hc.password.size() > 512 || has_control(hc.password)) {
      n->fail("expected at most 512 characters without control characters");
    }
    if (hc.user.empty()) n->fail("password needs a user");
  }
  if (auto n = t.get("query")) {
    hc.query = n->as_string();
    if (hc.query.empty() || hc.query.size() > 1024 || has_control(hc.query)) {
      n->fail("expected a query of 1 to 1024 characters without control characters");
    }
    if (hc.user.empty()) n->fail("query needs a user: without one the check stops at the greeting");
  }
  if (auto n = t.get("max_replication_lag")) {
    hc.max_replication_lag_s = n->as_duration_s(0, 7 * 24 * 3600);
    if (hc.user.empty()) {
      n->fail(
          "max_replication_lag needs a user with the REPLICATION CLIENT (or SLAVE MONITOR) "
          "privilege");
    }
  }
}

void parse_agent_keys(const TomlTable& t, HealthCheckConfig& hc) {
  if (auto n = t.get("agent_protocol")) {
    std::string protocol = n->as_string();
    if (protocol == "tcp") {
      hc.agent_protocol = AgentProtocol::kTcp;
    } else if (protocol == "http") {
      hc.agent_protocol = AgentProtocol::kHttp;
    } else {
      n->fail("expected \"tcp\" or \"http\", got " + quoted(protocol));
    }
  }
  for (std::string_view key : {"path", "host"}) {
    if (auto n = t.get(key); n && hc.agent_protocol != AgentProtocol::kHttp) {
      n->fail(std::string(key) + " is only valid for agent_protocol = \"http\"");
    }
  }
  parse_http_keys(t, hc);
}

void parse_tcp_keys(const TomlTable& t, HealthCheckConfig& hc) {
  if (auto n = t.get("tcp_mode")) {
    std::string mode = n->as_string();
    if (mode == "syn") {
      hc.tcp_mode = TcpMode::kSyn;
    } else if (mode == "connect") {
      hc.tcp_mode = TcpMode::kConnect;
    } else {
      n->fail("expected \"syn\" or \"connect\", got " + quoted(mode));
    }
  }
}

void parse_exec_keys(const TomlTable& t, HealthCheckConfig& hc) {
  auto n = t.get("command");
  if (!n) {
    if (!hc.command.empty()) return;  // inherited from the service's check
    t.fail_key("command", "an exec check needs command = [\"/absolute/path\", \"arg\", ...]");
  }
  auto elements = n->as_array();
  if (elements.empty()) n->fail("expected at least the program's absolute path");
  hc.command.clear();
  for (const auto& element : elements) {
    std::string arg = element.as_string();
    if (arg.find('\0') != std::string::npos) element.fail("must not contain NUL bytes");
    hc.command.push_back(std::move(arg));
  }
  if (!hc.command.front().starts_with('/')) {
    elements.front().fail("the program must be an absolute path (no shell, no PATH lookup), got " +
                          quoted(hc.command.front()));
  }
}

// Parses a [health_check] table on top of `base`: the service's table on top of the defaults, a
// backend's table on top of its service's check.
HealthCheckConfig parse_health_check(const TomlTable& t, const HealthCheckConfig& base) {
  t.allow_only({"type",           "interval",    "timeout",
                "rise",           "fall",        "port",
                "path",           "host",        "expect_status",
                "password",       "username",    "role",
                "user",           "query",       "max_replication_lag",
                "agent_protocol", "command",     "tcp_mode",
                "method",         "expect_body", "reuse_connection"});
  HealthCheckConfig hc = base;
  if (auto n = t.get("type")) {
    std::string type = n->as_string();
    auto it = std::find(std::begin(kCheckTypes), std::end(kCheckTypes), type);
    if (it == std::end(kCheckTypes)) {
      n->fail("expected one of none, tcp, http, redis, memcached, mysql, agent, exec, got " +
              quoted(type));
    }
    hc.type = static_cast<CheckType>(it - std::begin(kCheckTypes));
  }
  auto interval = t.get("interval");
  if (interval) {
    hc.interval_ms = static_cast<uint32_t>(interval->as_duration_ms(kMinInterval, kMaxInterval));
  }
  if (auto n = t.get("timeout")) {
    hc.timeout_ms = static_cast<uint32_t>(n->as_duration_ms(kMinTimeout, kMaxInterval));
    if (hc.timeout_ms >= hc.interval_ms) {
      n->fail("timeout (" + dp::format_duration_ms(hc.timeout_ms) +
              ") must be shorter than interval (" + dp::format_duration_ms(hc.interval_ms) + ")");
    }
  } else if (interval && hc.timeout_ms >= hc.interval_ms) {
    hc.timeout_ms = std::min(kDefaultTimeoutMs, hc.interval_ms / 2);
  }
  if (auto n = t.get("rise")) hc.rise = static_cast<uint32_t>(n->as_integer(1, 100));
  if (auto n = t.get("fall")) hc.fall = static_cast<uint32_t>(n->as_integer(1, 100));
  if (auto n = t.get("port")) hc.port = static_cast<uint16_t>(n->as_integer(1, 65535));

  for (std::string_view key : kTypeSpecificKeys) {
    auto n = t.get(key);
    if (n && !key_allowed_for(key, hc.type)) {
      std::string types;
      for (size_t i = 0; i < std::size(kCheckTypes); ++i) {
        if (!key_allowed_for(key, static_cast<CheckType>(i))) continue;
        types += (types.empty() ? "" : " or ") + quoted(kCheckTypes[i]);
      }
      n->fail(std::string(key) + " is only valid for type = " + types + " checks, this one is " +
              quoted(check_type_name(hc.type)));
    }
  }
  switch (hc.type) {
    case CheckType::kHttp:
      parse_http_check_keys(t, hc);
      break;
    case CheckType::kRedis:
      parse_redis_keys(t, hc);
      break;
    case CheckType::kMysql:
      parse_mysql_keys(t, hc);
      break;
    case CheckType::kAgent:
      parse_agent_keys(t, hc);
      break;
    case CheckType::kExec:
      parse_exec_keys(t, hc);
      break;
    case CheckType::kTcp:
      parse_tcp_keys(t, hc);
      break;
    case CheckType::kNone:
    case CheckType::kMemcached:
      break;
  }
  return hc;
}

// Builds the services one by one, checking each against the ones before it and against the
// dataplane's own addresses.
class ServiceParser {
 public:
  ServiceParser(const dp::DataplaneConfig& dataplane, std::string zone)
      : dataplane_(dataplane), zone_(std::move(zone)) {}

  ServiceConfig parse(const TomlTable& t) {
    t.allow_only({"name",
                  "vip",
                  "port",
                  "protocol",
                  "scheduler",
                  "table_size",
                  "tcp_syn_timeout",
                  "tcp_established_timeout",
                  "tcp_fin_timeout",
                  "udp_timeout",
                  "untracked_tcp",
                  "health_check",
                  "drain_timeout",
                  "on_backend_down",
                  "on_all_down",
                  "backup_policy",
                  "slow_start",
                  "zone_affinity",
                  "zone_min_healthy",
                  "dampening",
                  "backend"});
    ServiceConfig s;
    s.line = t.position().line;

    auto name = t.require("name");
    s.name = name.as_string();
    if (!dp::is_name(s.name, "_.-", abi::kNameLen - 1, true)) {
      name.fail("must be 1 to 31 characters of A-Z, a-z, 0-9, '_', '.' and '-', got " +
                quoted(s.name));
    }
    for (const auto& other : seen_) {
      if (other.name == s.name) {
        name.fail("duplicate service name " + quoted(s.name) + " (first defined at line " +
                  std::to_string(other.line) + ")");
      }
    }

    auto vip = t.require("vip");
    s.vip = vip.as_ipv4();
    check_vip_not_owned(vip, s.vip);
    s.port = static_cast<uint16_t>(t.require("port").as_integer(1, 65535));
    if (auto n = t.get("protocol")) {
      std::string protocol = n->as_string();
      if (protocol == "tcp") {
        s.protocol = abi::Protocol::kTcp;
      } else if (protocol == "udp") {
        s.protocol = abi::Protocol::kUdp;
      } else {
        n->fail("expected \"tcp\" or \"udp\", got " + quoted(protocol));
      }
    }
    for (const auto& other : seen_) {
      if (other.vip == s.vip && other.port == s.port && other.protocol == s.protocol) {
        vip.fail("service " + quoted(s.name) + " has the same VIP, port and protocol (" +
                 dp::format_ipv4(s.vip) + ":" + std::to_string(s.port) + "/" +
                 protocol_name(s.protocol) + ") as service " + quoted(other.name) + " at line " +
                 std::to_string(other.line));
      }
    }

    if (auto n = t.get("scheduler")) {
      std::string scheduler = n->as_string();
      if (scheduler == "maglev") {
        s.scheduler = abi::Scheduler::kMaglev;
      } else if (scheduler == "source") {
        s.scheduler = abi::Scheduler::kSource;
      } else if (scheduler == "wrr") {
        s.scheduler = abi::Scheduler::kWrr;
      } else if (scheduler == "wlc") {
        s.scheduler = abi::Scheduler::kWlc;
      } else {
        n->fail("expected one of maglev, source, wrr, wlc, got " + quoted(scheduler));
      }
    }
    auto table_size = t.get("table_size");
    if (table_size) {
      s.table_size = static_cast<uint32_t>(table_size->as_integer(7, abi::kMaxTableSize));
      if (!is_prime(s.table_size)) {
        table_size->fail("must be a prime number, got " + std::to_string(s.table_size));
      }
    }
    if (table_entries_ + s.table_size > abi::kMaxTableEntries) {
      std::string message = "the table sizes of all services add up to " +
                            std::to_string(table_entries_ + s.table_size) + ", more than the " +
                            std::to_string(abi::kMaxTableEntries) +
                            " entries a snapshot holds; use smaller table_size values";
      if (table_size) table_size->fail(message);
      t.fail_key("table_size", message);
    }

    if (auto n = t.get("tcp_syn_timeout")) s.tcp_syn_timeout_s = n->as_duration_s(1, kMaxTimeoutS);
    if (auto n = t.get("tcp_established_timeout")) {
      s.tcp_established_timeout_s = n->as_duration_s(1, kMaxTimeoutS);
    }
    if (auto n = t.get("tcp_fin_timeout")) s.tcp_fin_timeout_s = n->as_duration_s(1, kMaxTimeoutS);
    if (auto n = t.get("udp_timeout")) s.udp_timeout_s = n->as_duration_s(1, kMaxTimeoutS);
    if (auto n = t.get("untracked_tcp")) {
      s.untracked_tcp = choose<UntrackedTcp>(
          *n, {{"drop", UntrackedTcp::kDrop}, {"reset", UntrackedTcp::kReset}});
      if (s.protocol != abi::Protocol::kTcp && s.untracked_tcp == UntrackedTcp::kReset) {
        n->fail("applies to TCP services only; service " + quoted(s.name) + " is UDP");
      }
    }

    if (auto n = t.get("health_check")) {
      s.health_check = parse_health_check(n->as_table(), HealthCheckConfig{});
    }
    parse_lifecycle(t, s);
    parse_backends(t, s);
    check_zones(t, s);

    table_entries_ += s.table_size;
    seen_.push_back({s.name, s.vip, s.port, s.protocol, s.line});
    return s;
  }

 private:
  // What later services are checked against.
  struct Seen {
    std::string name;
    uint32_t vip;
    uint16_t port;
    abi::Protocol protocol;
    uint32_t line;
  };

  void parse_lifecycle(const TomlTable& t, ServiceConfig& s) const {
    if (auto n = t.get("drain_timeout")) s.drain_timeout_s = n->as_duration_s(0, kMaxTimeoutS);
    if (auto n = t.get("on_backend_down")) {
      s.on_backend_down = choose<OnBackendDown>(
          *n, {{"keep", OnBackendDown::kKeep}, {"reset", OnBackendDown::kReset}});
    }
    if (auto n = t.get("on_all_down")) {
      s.on_all_down = choose<OnAllDown>(
          *n, {{"reject", OnAllDown::kReject}, {"fail_open", OnAllDown::kFailOpen}});
    }
    if (auto n = t.get("backup_policy")) {
      s.backup_policy =
          choose<BackupPolicy>(*n, {{"first", BackupPolicy::kFirst}, {"all", BackupPolicy::kAll}});
    }
    if (auto n = t.get("slow_start")) s.slow_start_s = n->as_duration_s(0, 3600);
    if (auto n = t.get("zone_affinity")) s.zone_affinity = n->as_boolean();
    if (auto n = t.get("zone_min_healthy")) {
      const toml::node& v = n->node();
      if (const auto* f = v.as_floating_point()) {
        s.zone_min_healthy = f->get();
      } else if (const auto* i = v.as_integer()) {
        s.zone_min_healthy = static_cast<double>(i->get());
      } else {
        n->fail_type("a fraction between 0 and 1");
      }
      if (!(s.zone_min_healthy >= 0.0 && s.zone_min_healthy <= 1.0)) {
        n->fail("expected a fraction between 0 and 1, got " + std::to_string(s.zone_min_healthy));
      }
    }
    if (auto n = t.get("dampening")) {
      TomlTable d = n->as_table();
      d.allow_only({"enabled", "threshold", "window", "min_hold", "max_hold"});
      Dampening& dm = s.dampening;
      if (auto e = d.get("enabled")) dm.enabled = e->as_boolean();
      if (auto e = d.get("threshold")) dm.threshold = static_cast<uint32_t>(e->as_integer(1, 1000));
      if (auto e = d.get("window")) dm.window_s = e->as_duration_s(1, kMaxTimeoutS);
      if (auto e = d.get("min_hold")) dm.min_hold_s = e->as_duration_s(1, kMaxTimeoutS);
      if (auto e = d.get("max_hold")) {
        dm.max_hold_s = e->as_duration_s(1, kMaxTimeoutS);
        if (dm.max_hold_s < dm.min_hold_s) {
          e->fail("max_hold (" + std::to_string(dm.max_hold_s) +
                  "s) must not be shorter than min_hold (" + std::to_string(dm.min_hold_s) + "s)");
        }
      } else if (dm.max_hold_s < dm.min_hold_s) {
        dm.max_hold_s = dm.min_hold_s;
      }
    }
  }

  // zone_affinity compares backends' zones with the instance's own: without both it would
  // silently do nothing.
  void check_zones(const TomlTable& t, const ServiceConfig& s) const {
    if (!s.zone_affinity) return;
    if (zone_.empty()) {
      t.fail_key("zone_affinity",
                 "zone_affinity needs this instance's zone: set [controlplane] zone");
    }
    if (std::none_of(s.backends.begin(), s.backends.end(),
                     [](const BackendConfig& b) { return !b.zone.empty(); })) {
      t.fail_key("zone_affinity", "zone_affinity needs zone = \"...\" on the service's backends");
    }
  }

  template <typename E>
  static E choose(const TomlNode& node,
                  std::initializer_list<std::pair<std::string_view, E>> options) {
    std::string value = node.as_string();
    std::string names;
    for (const auto& [name, e] : options) {
      if (name == value) return e;
      names += (names.empty() ? "" : ", ") + std::string(name);
    }
    node.fail("expected one of " + names + ", got " + quoted(value));
  }

  void check_vip_not_owned(const TomlNode& node, uint32_t vip) const {
    for (const auto& [address, line] : backend_addresses_) {
      if (address == vip) {
        node.fail("VIP " + dp::format_ipv4(vip) + " is also the address of a backend (line " +
                  std::to_string(line) + "); the dataplane drops packets from its own addresses");
      }
    }
    if (const std::string owner = dataplane_owner(vip); !owner.empty()) {
      node.fail("VIP " + dp::format_ipv4(vip) + " is " + owner);
    }
  }

  // What in [dataplane] has `address` ("also a SNAT address in [dataplane]", "the address of
  // port ..."), or "" when nothing does.
  std::string dataplane_owner(uint32_t address) const {
    const auto& snat = dataplane_.snat_addresses;
    if (std::find(snat.begin(), snat.end(), address) != snat.end()) {
      return "also a SNAT address in [dataplane]";
    }
    for (const auto& port : dataplane_.ports) {
      if (port.address == address) return "the address of port " + quoted(port.name);
    }
    return "";
  }

  // A backend at one of ilb's own addresses (a VIP, hairpinned back through a router; a SNAT or
  // port address) would send its replies from that address, and the dataplane drops packets
  // that claim to come from ilb itself (martians): refused here, where it can be named.
  void check_backend_not_owned(const TomlNode& node, uint32_t address,
                               const ServiceConfig& s) const {
    const std::string what = "backend address " + dp::format_ipv4(address);
    if (address == s.vip) node.fail(what + " is this service's own VIP");
    for (const auto& other : seen_) {
      if (other.vip == address) {
        node.fail(what + " is the VIP of service " + quoted(other.name) + " (line " +
                  std::to_string(other.line) + "); list that service's backends here instead");
      }
    }
    if (const std::string owner = dataplane_owner(address); !owner.empty()) {
      node.fail(what + " is " + owner);
    }
  }

  void parse_backends(const TomlTable& t, ServiceConfig& s) {
    static const std::string kMissing =
        "missing backends: a service needs at least one [[service.backend]]";
    auto node = t.get("backend");
    if (!node) t.fail_key("backend", kMissing);
    auto tables = node->as_table_array();
    if (tables.empty()) node->fail(kMissing);
    for (const auto& b : tables) {
      if (backend_count_ >= abi::kMaxBackends - 1) {
        b.fail("more than " + std::to_string(abi::kMaxBackends - 1) +
               " backends in total; this version supports at most that many");
      }
      b.allow_only({"address", "port", "weight", "backup", "zone", "health_check"});
      BackendConfig backend;
      backend.line = b.position().line;
      auto address = b.require("address");
      backend.address = address.as_ipv4();
      check_backend_not_owned(address, backend.address, s);
      backend.port = s.port;
      if (auto n = b.get("port")) backend.port = static_cast<uint16_t>(n->as_integer(1, 65535));
      if (auto n = b.get("weight")) backend.weight = static_cast<uint32_t>(n->as_integer(0, 65535));
      if (auto n = b.get("backup")) backend.backup = n->as_boolean();
      if (auto n = b.get("zone")) {
        backend.zone = n->as_string();
        if (!dp::is_name(backend.zone, "_.-", 63, true)) {
          n->fail("must be 1 to 63 characters of A-Z, a-z, 0-9, '_', '.' and '-', got " +
                  quoted(backend.zone));
        }
      }
      if (auto n = b.get("health_check")) {
        backend.health_check = parse_health_check(n->as_table(), s.health_check);
      }
      for (const auto& other : s.backends) {
        if (other.address == backend.address && other.port == backend.port) {
          address.fail("duplicate backend " + dp::format_ipv4(backend.address) + ":" +
                       std::to_string(backend.port) + " (first listed at line " +
                       std::to_string(other.line) + ")");
        }
      }
      s.backends.push_back(backend);
      backend_addresses_.emplace_back(backend.address, backend.line);
      ++backend_count_;
    }
  }

  const dp::DataplaneConfig& dataplane_;
  std::string zone_;
  std::vector<Seen> seen_;
  std::vector<std::pair<uint32_t, uint32_t>> backend_addresses_;  // (address, line) so far
  uint32_t backend_count_ = 0;
  uint64_t table_entries_ = 0;
};

}  // namespace

Config parse_config(std::string_view text, const std::string& path) {
  toml::table root = dp::parse_toml(text, path);
  TomlTable top(root, "", path);
  top.allow_only({"instance", "controlplane", "dataplane", "service"});

  Config config;
  config.path = path;
  config.instance = dp::parse_instance(root, path);
  config.controlplane = parse_controlplane(top, config.instance);
  config.dataplane = dp::parse_dataplane_config(root, path, config.instance);

  if (auto services = top.get("service")) {
    auto tables = services->as_table_array();
    ServiceParser parser(config.dataplane, config.controlplane.zone);
    for (size_t i = 0; i < tables.size(); ++i) {
      if (i >= abi::kMaxServices) {
        tables[i].fail("more than " + std::to_string(abi::kMaxServices) +
                       " services; this version supports at most that many");
      }
      config.services.push_back(parser.parse(tables[i]));
    }
  }
  return config;
}

Config load_config_file(const std::string& path) {
  return parse_config(dp::read_config_text(path), path);
}

}  // namespace ilb::cp

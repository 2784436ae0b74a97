#include "controlplane/daemon.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <asio/post.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <vector>

#include "controlplane/api/metrics.h"
#include "controlplane/api/views.h"
#include "controlplane/config/loader.h"
#include "controlplane/state/state_file.h"
#include "dataplane/config/config_error.h"

namespace ilb::cp {

namespace {

constexpr auto kRetryInterval = std::chrono::milliseconds(20);
constexpr auto kStatInterval = std::chrono::seconds(1);
constexpr auto kPendingWarnAfter = std::chrono::seconds(3);
constexpr auto kPendingWarnEvery = std::chrono::seconds(10);
constexpr auto kSaveDelay = std::chrono::milliseconds(200);
// A scrape renders every service and backend (tens of milliseconds at the ABI's limits, on the
// thread that runs the health checks): scrapes less than this apart get the same text.
constexpr auto kMetricsMaxAge = std::chrono::seconds(1);

std::string socket_path_of(const Config& c) {
  if (!c.controlplane.api_socket.empty()) return c.controlplane.api_socket;
  return "/run/ilb/" + c.instance + ".sock";
}

std::set<BackendKey> keys_of(const State& state) {
  std::set<BackendKey> keys;
  for (const auto& s : state.services()) {
    for (const auto& b : s.backends) keys.insert(backend_key(s.config, b.config));
  }
  return keys;
}

// The service's name and "10.0.0.1:3306" of backend `id`.
std::pair<std::string, std::string> names_of(const State& state, uint32_t id) {
  for (const auto& s : state.services()) {
    for (const auto& b : s.backends) {
      if (b.id == id) return {s.config.name, backend_name(b.config.address, b.config.port)};
    }
  }
  return {"", "backend " + std::to_string(id)};
}

// "mysql 10.0.0.1:3306", for log lines about one backend.
std::string describe(const State& state, uint32_t id) {
  const auto [service, backend] = names_of(state, id);
  return service.empty() ? backend : service + " " + backend;
}

}  // namespace

Daemon::Daemon(Config config)
    : config_(std::move(config)),
      publisher_(config_.instance),
      checker_(io_, [this](const HealthEvent& e) { on_health(e); }),
      router_(*this),
      api_(io_, socket_path_of(config_),
           [this](const HttpRequest& r) { return router_.handle(r); }),
      metrics_(
          io_,
          [this](const HttpRequest& r) {
            return metrics_response(r, [this] { return render_metrics(); });
          },
          HttpLimits{.max_request_bytes = 16 * 1024, .max_connections = 16}),
      signals_(io_, SIGINT, SIGTERM),
      retry_timer_(io_),
      stat_timer_(io_),
      lifecycle_timer_(io_),
      save_timer_(io_),
      hooks_(io_, config_.controlplane.hook,
             std::chrono::milliseconds(config_.controlplane.hook_timeout_ms),
             [this](const HookEvent& e, const ChildResult& r) {
               if (r.end == ChildResult::End::kExited && r.code == 0) return;
               spdlog::warn("hook for {} {} {} -> {} failed ({} of {} hooks failed): {}", e.kind,
                            e.service + (e.backend.empty() ? "" : " " + e.backend), e.old_state,
                            e.new_state, hooks_.failed(), hooks_.ran(), r.describe());
             }) {
  State::check_limits(config_);
}

Daemon::~Daemon() = default;

int Daemon::run() {
  start_metrics();
  publisher_.open();
  if (publisher_.reused_existing()) {
    spdlog::info("{}: kept the existing region, last published generation {}",
                 publisher_.ctl_name(), publisher_.published_gen());
  } else {
    spdlog::info("{}: created", publisher_.ctl_name());
  }
  load_state_file();
  if (auto recovered = publisher_.recover()) {
    state_.seed_from_snapshot(*recovered);
    spdlog::info("resuming ids, admin state and health of {} backends from generation {}",
                 recovered->backends.size(), publisher_.published_gen());
  } else if (publisher_.published_gen() > 0) {
    spdlog::warn(
        "generation {} could not be read back; backends start with new ids and "
        "unknown health",
        publisher_.published_gen());
  }
  state_.apply_config(config_);
  spdlog::info("instance {}: {} services, {} backends from {}", config_.instance,
               state_.services().size(), state_.backend_count(), config_.path);

  for (const auto& e : state_.evaluate(std::chrono::steady_clock::now())) {
    spdlog::info("{}: {} {} -> {} ({})", e.service, e.kind, e.from, e.to, e.reason);
  }
  arm_lifecycle_timer();
  dirty_ = true;
  publish_now();
  save_state_file();
  checker_.set_targets(state_.check_targets());
  api_.start();
  spdlog::info("API listening on {}", api_.socket_path());

  signals_.async_wait([this](const std::error_code& ec, int signo) {
    if (ec) return;
    spdlog::info("{}: shutting down", signo == SIGTERM ? "SIGTERM" : "SIGINT");
    shutdown();
  });
  watch_stat();
  io_.run();
  return 0;
}

void Daemon::request_stop() {
  asio::post(io_, [this] {
    spdlog::info("stop requested: shutting down");
    shutdown();
  });
}

void Daemon::shutdown() {
  if (dirty_) spdlog::warn("exiting with changes the dataplane has not been sent");
  if (save_armed_) save_state_file();
  checker_.stop();
  hooks_.stop();
  lifecycle_timer_.cancel();
  save_timer_.cancel();
  api_.stop();
  metrics_.stop();
  retry_timer_.cancel();
  stat_timer_.cancel();
  std::error_code ignored;
  signals_.cancel(ignored);
  io_.stop();
}

void Daemon::start_metrics() {
  const auto& cp = config_.controlplane;
  if (cp.metrics_listen.empty()) return;
  const asio::ip::tcp::endpoint endpoint(asio::ip::address_v4(ntohl(cp.metrics_address)),
                                         cp.metrics_port);
  try {
    metrics_.listen(endpoint);
  } catch (const std::system_error& e) {
    throw std::runtime_error("controlplane.metrics_listen " + cp.metrics_listen + ": " +
                             e.code().message());
  }
  metrics_port_.store(metrics_.local_endpoint().port(), std::memory_order_release);
  spdlog::info("metrics for Prometheus on http://{}:{}/metrics", address_text(cp.metrics_address),
               metrics_port());
}

std::string Daemon::render_metrics() {
  const auto now = std::chrono::steady_clock::now();
  if (metrics_rendered_ == std::chrono::steady_clock::time_point{} ||
      now - metrics_rendered_ >= kMetricsMaxAge) {
    publisher_.stat().refresh();
    metrics_cache_ = metrics_text(daemon_info(), state_, publisher_.stat());
    metrics_rendered_ = now;
  }
  return metrics_cache_;
}

void Daemon::request_publish() {
  dirty_ = true;
  if (publish_posted_ || retry_armed_) return;
  publish_posted_ = true;
  asio::post(io_, [this] {
    publish_posted_ = false;
    publish_now();
  });
}

void Daemon::publish_now() {
  if (!dirty_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!publisher_.ready()) {
    wait_for_dataplane(now);
    return;
  }
  Snapshot snap = state_.build_snapshot(tables_);
  try {
    if (publisher_.publish(snap) != PublishResult::kPublished) {
      wait_for_dataplane(now);
      return;
    }
  } catch (const std::invalid_argument& e) {
    // check_limits() keeps every configuration within the ABI, so this is a bug, not bad input.
    spdlog::critical("snapshot breaks the ABI, not published: {}", e.what());
    dirty_ = false;
    return;
  }
  dirty_ = false;
  size_t in_tables = 0;
  for (const auto& s : snap.services) {
    std::vector<uint32_t> ids(s.table.begin(), s.table.end());
    std::sort(ids.begin(), ids.end());
    in_tables += static_cast<size_t>(std::unique(ids.begin(), ids.end()) - ids.begin());
  }
  if (pending_since_ != std::chrono::steady_clock::time_point{}) {
    spdlog::info(
        "published generation {} after waiting {} ms for the dataplane", publisher_.published_gen(),
        std::chrono::duration_cast<std::chrono::milliseconds>(now - pending_since_).count());
  } else {
    spdlog::info(
        "published generation {}: {} services, {} backends, {} in tables ({} tables "
        "rebuilt)",
        publisher_.published_gen(), snap.services.size(), snap.backends.size(), in_tables,
        tables_.last_rebuilt());
  }
  pending_since_ = {};
}

void Daemon::wait_for_dataplane(std::chrono::steady_clock::time_point now) {
  if (pending_since_ == std::chrono::steady_clock::time_point{}) pending_since_ = now;
  if (now - pending_since_ >= kPendingWarnAfter && now - pending_logged_ >= kPendingWarnEvery) {
    spdlog::warn("publish pending: {}", publisher_.pending_reason());
    pending_logged_ = now;
  }
  if (retry_armed_) return;
  retry_armed_ = true;
  retry_timer_.expires_after(kRetryInterval);
  retry_timer_.async_wait([this](const std::error_code& ec) {
    retry_armed_ = false;
    if (!ec) publish_now();
  });
}

void Daemon::watch_stat() {
  StatReader& stat = publisher_.stat();
  stat.refresh();
  const bool running = stat.running();
  if (running && (!dp_running_ || stat.boot_id() != dp_boot_id_)) {
    spdlog::info("dataplane running: pid {}, boot id {:016x}", stat.header().common.writer_pid,
                 stat.boot_id());
    dp_boot_id_ = stat.boot_id();
  } else if (!running && dp_running_) {
    spdlog::warn("dataplane stopped: {}",
                 stat.valid() ? "heartbeat older than 2 s" : stat.problem());
  }
  dp_running_ = running;
  if (stat.valid()) {
    const uint64_t rejected = stat.header().rejected_gen.load(std::memory_order_acquire);
    if (rejected != 0 && rejected != dp_rejected_gen_) {
      const auto& reason = stat.header().reject_reason;
      spdlog::error("dataplane rejected generation {}: {}", rejected,
                    std::string(reason, strnlen(reason, sizeof(reason))));
    }
    dp_rejected_gen_ = rejected;
    const uint64_t applied = stat.header().applied_gen.load(std::memory_order_acquire);
    if (applied != dp_applied_gen_) spdlog::debug("dataplane applied generation {}", applied);
    dp_applied_gen_ = applied;
  }
  stat_timer_.expires_after(kStatInterval);
  stat_timer_.async_wait([this](const std::error_code& ec) {
    if (!ec) watch_stat();
  });
}

void Daemon::on_health(const HealthEvent& e) {
  const BackendState* b = state_.find_backend(e.key);
  if (b == nullptr) return;
  const auto now = std::chrono::steady_clock::now();
  if (e.to != e.from) {
    state_.set_health(e.key, e.to, e.reason, now);
    spdlog::info("{}: health {} -> {} ({})", describe(state_, e.key), health_name(e.from),
                 health_name(e.to), e.reason);
    const auto [service, backend] = names_of(state_, e.key);
    hook(service, backend, "health", health_name(e.from), health_name(e.to), e.reason);
  }
  if (e.advice_changed && state_.set_advice(e.key, e.advice, now)) {
    spdlog::info("{}: agent advice: {}", describe(state_, e.key), e.reason);
    const auto [service, backend] = names_of(state_, e.key);
    hook(service, backend, "agent", "", e.reason, e.reason);
  }
  changed();
}

void Daemon::changed() {
  const auto now = std::chrono::steady_clock::now();
  for (const auto& e : state_.evaluate(now)) {
    const std::string backend =
        e.backend_id == 0 ? std::string() : names_of(state_, e.backend_id).second;
    spdlog::info("{}{}: {} {} -> {} ({})", e.service, backend.empty() ? "" : " " + backend, e.kind,
                 e.from, e.to, e.reason);
    hook(e.service, backend, e.kind, e.from, e.to, e.reason);
  }
  arm_lifecycle_timer();
  request_publish();
  request_save();
}

void Daemon::arm_lifecycle_timer() {
  const auto now = std::chrono::steady_clock::now();
  const auto next = state_.next_deadline(now);
  if (!next) return;
  if (lifecycle_due_ > now && lifecycle_due_ <= *next) return;  // an earlier wake-up is armed
  lifecycle_due_ = *next;
  lifecycle_timer_.expires_at(*next);
  lifecycle_timer_.async_wait([this](const std::error_code& ec) {
    if (ec) return;
    lifecycle_due_ = {};
    changed();
  });
}

void Daemon::hook(const std::string& service, const std::string& backend, const std::string& kind,
                  const std::string& from, const std::string& to, const std::string& reason) {
  HookEvent event;
  event.instance = config_.instance;
  event.service = service;
  event.backend = backend;
  event.kind = kind;
  event.old_state = from;
  event.new_state = to;
  event.reason = reason;
  const uint64_t dropped = hooks_.dropped();
  hooks_.submit(std::move(event));
  if (hooks_.dropped() != dropped) {
    spdlog::error("hook queue full ({} events): event dropped ({} so far)", HookRunner::kMaxQueued,
                  hooks_.dropped());
  }
}

void Daemon::load_state_file() {
  const std::string& path = config_.controlplane.state_file;
  if (path.empty()) return;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    spdlog::info("state file {}: none yet", path);
    return;
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    const StateFileContents contents = decode_state_file(text);
    for (const auto& b : contents.backends) state_.seed(b.key, b.id, b.admin, b.health);
    spdlog::info("state file {}: resuming admin state and health of {} backends{}", path,
                 contents.backends.size(),
                 contents.skipped > 0
                     ? fmt::format(" ({} malformed entries skipped)", contents.skipped)
                     : std::string());
  } catch (const std::exception& e) {
    spdlog::warn("state file {} ignored: {}", path, e.what());
  }
}

// Coalesces bursts of changes into one write, at most a few per second.
void Daemon::request_save() {
  if (config_.controlplane.state_file.empty() || save_armed_) return;
  save_armed_ = true;
  save_timer_.expires_after(kSaveDelay);
  save_timer_.async_wait([this](const std::error_code& ec) {
    if (!ec) save_state_file();
  });
}

void Daemon::save_state_file() {
  save_armed_ = false;
  const std::string& path = config_.controlplane.state_file;
  if (path.empty()) return;
  try {
    write_file_atomically(path, encode_state_file(state_, config_.instance));
  } catch (const std::exception& e) {
    ++state_file_errors_;
    const auto now = std::chrono::steady_clock::now();
    if (now - save_error_logged_ >= kPendingWarnEvery) {
      spdlog::error("state file not saved: {}", e.what());
      save_error_logged_ = now;
    }
  }
}

DaemonInfo Daemon::daemon_info() const {
  DaemonInfo info;
  info.instance = config_.instance;
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(config_.path, ec);
  info.config_path = ec ? config_.path : absolute.lexically_normal().string();
  info.pid = static_cast<uint32_t>(getpid());
  info.uptime_s = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_)
          .count());
  info.start_time_unix_s = std::chrono::duration<double>(started_wall_.time_since_epoch()).count();
  info.published_gen = publisher_.published_gen();
  info.probes = checker_.probes_completed();
  info.probes_failed = checker_.probes_failed();
  info.hook_configured = !config_.controlplane.hook.empty();
  info.hooks_ran = hooks_.ran();
  info.hooks_failed = hooks_.failed();
  info.hooks_dropped = hooks_.dropped();
  info.hooks_queued = hooks_.queued();
  info.state_file = config_.controlplane.state_file;
  info.state_file_errors = state_file_errors_;
  return info;
}

nlohmann::json Daemon::status() {
  publisher_.stat().refresh();
  return status_json(daemon_info(), state_, publisher_.stat());
}

nlohmann::json Daemon::services() {
  publisher_.stat().refresh();
  return services_json(state_, publisher_.stat());
}

std::optional<nlohmann::json> Daemon::backends(const std::string& service) {
  const ServiceState* s = state_.find_service(service);
  if (s == nullptr) return std::nullopt;
  for (const auto& b : s->backends) {
    std::string last = checker_.last_result(b.id);
    if (!last.empty()) state_.set_last_check(b.id, std::move(last));
  }
  publisher_.stat().refresh();
  return backends_json(*s, publisher_.stat());
}

AdminResult Daemon::set_admin(const std::string& service, uint32_t address, uint16_t port,
                              abi::AdminState admin) {
  abi::AdminState previous = abi::AdminState::kEnabled;
  if (const ServiceState* s = state_.find_service(service)) {
    for (const auto& b : s->backends) {
      if (b.config.address == address && b.config.port == port) previous = b.admin;
    }
  }
  switch (state_.set_admin(service, address, port, admin)) {
    case AdminChange::kNoService:
      return AdminResult::kNoService;
    case AdminChange::kNoBackend:
      return AdminResult::kNoBackend;
    case AdminChange::kUnchanged:
      return AdminResult::kOk;
    case AdminChange::kChanged:
      break;
  }
  spdlog::info("{} {}: admin {}", service, backend_name(address, port), admin_name(admin));
  hook(service, backend_name(address, port), "admin", admin_name(previous), admin_name(admin),
       "ilbctl");
  changed();
  return AdminResult::kOk;
}

ReloadResult Daemon::reload() {
  Config next;
  try {
    next = load_config_file(config_.path);
    State::check_limits(next);
  } catch (const std::exception& e) {
    spdlog::error("reload rejected, keeping the running configuration: {}", e.what());
    return ReloadResult{false, e.what(), {}};
  }
  if (next.instance != config_.instance) {
    std::string msg = config_.path + ": instance: cannot change from \"" + config_.instance +
                      "\" to \"" + next.instance + "\" on reload (restart the control plane)";
    spdlog::error("reload rejected: {}", msg);
    return ReloadResult{false, msg, {}};
  }
  if (next.controlplane.hook != config_.controlplane.hook ||
      next.controlplane.hook_timeout_ms != config_.controlplane.hook_timeout_ms) {
    spdlog::warn("reload: controlplane.hook changes only on restart; still running the old one");
  }
  if (next.controlplane.state_file != config_.controlplane.state_file) {
    spdlog::warn("reload: controlplane.state_file changes only on restart; still writing {}",
                 config_.controlplane.state_file);
    next.controlplane.state_file = config_.controlplane.state_file;
  }
  if (next.controlplane.metrics_listen != config_.controlplane.metrics_listen) {
    spdlog::warn("reload: controlplane.metrics_listen changes only on restart; still serving {}",
                 config_.controlplane.metrics_listen.empty() ? std::string("no metrics")
                                                             : config_.controlplane.metrics_listen);
    next.controlplane.metrics_listen = config_.controlplane.metrics_listen;
    next.controlplane.metrics_address = config_.controlplane.metrics_address;
    next.controlplane.metrics_port = config_.controlplane.metrics_port;
  }
  if (socket_path_of(next) != api_.socket_path()) {
    spdlog::warn("reload: controlplane.api_socket changes only on restart; still serving {}",
                 api_.socket_path());
  }
  const auto before = keys_of(state_);
  state_.apply_config(next);
  config_ = std::move(next);
  const auto after = keys_of(state_);
  size_t added = 0;
  size_t removed = 0;
  for (const auto& k : after) added += before.count(k) == 0 ? 1 : 0;
  for (const auto& k : before) removed += after.count(k) == 0 ? 1 : 0;
  checker_.set_targets(state_.check_targets());
  changed();
  spdlog::info("reloaded {}: {} services, {} backends ({} added, {} removed)", config_.path,
               state_.services().size(), state_.backend_count(), added, removed);
  dirty_ = true;
  publish_now();
  return ReloadResult{true,
                      "",
                      {{"services", state_.services().size()},
                       {"backends", state_.backend_count()},
                       {"added", added},
                       {"removed", removed},
                       {"published_gen", publisher_.published_gen()},
                       {"publish_pending", dirty_}}};
}

}  // namespace ilb::cp

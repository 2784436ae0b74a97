// ilb-controlplane's event loop: one asio::io_context runs the health checks, the API, the
// publish retry timer, the stat-region watcher and the signal handler, so the daemon's state is
// only ever touched from one thread (TBB threads inside TableBuilder only compute tables).
//
// Every change (health transition, admin command, reload) marks the state dirty; publishing is
// posted rather than done inline, so changes arriving in one loop iteration become one snapshot,
// and a publish the dataplane is not ready for is retried on a short timer with whatever the
// state is by then.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "controlplane/api/api_model.h"
#include "controlplane/api/api_server.h"
#include "controlplane/api/http_server.h"
#include "controlplane/api/router.h"
#include "controlplane/api/views.h"
#include "controlplane/config/model.h"
#include "controlplane/health/health_checker.h"
#include "controlplane/process/hook_runner.h"
#include "controlplane/publish/publisher.h"
#include "controlplane/state/state.h"
#include "controlplane/tables/maglev.h"

namespace ilb::cp {

class Daemon : public ApiModel {
 public:
  // `config` must be valid (load_config_file). Throws ConfigError if it exceeds the ABI limits.
  explicit Daemon(Config config);
  ~Daemon() override;

  // Maps ctl, recovers, publishes, starts checks and the API, then runs until SIGINT/SIGTERM.
  // Returns the process exit code. Throws std::runtime_error if start-up fails.
  int run();
  // Asks a running run() to shut down as on SIGTERM. Safe to call from any thread.
  void request_stop();
  // The TCP port the metrics endpoint listens on once run() has bound it; 0 before, or when
  // controlplane.metrics_listen is "". Safe to call from any thread.
  uint16_t metrics_port() const { return metrics_port_.load(std::memory_order_acquire); }

  // ApiModel
  nlohmann::json status() override;
  nlohmann::json services() override;
  std::optional<nlohmann::json> backends(const std::string& service) override;
  AdminResult set_admin(const std::string& service, uint32_t address, uint16_t port,
                        abi::AdminState state) override;
  ReloadResult reload() override;

 private:
  DaemonInfo daemon_info() const;
  // The metrics text, rendered again only when the last rendering is a second old.
  std::string render_metrics();
  // Binds controlplane.metrics_listen (if set). Throws std::runtime_error naming the address.
  void start_metrics();
  void request_publish();
  void publish_now();
  // Keeps the state dirty and retries on a short timer (the dataplane is still reading).
  void wait_for_dataplane(std::chrono::steady_clock::time_point now);
  void watch_stat();
  void on_health(const HealthEvent& event);
  // After any change to admin state, health or advice: re-evaluates the lifecycle (holds, ramps,
  // drain deadlines, backups, zones), tells hooks, publishes and saves the state file.
  void changed();
  void arm_lifecycle_timer();
  void hook(const std::string& service, const std::string& backend, const std::string& kind,
            const std::string& from, const std::string& to, const std::string& reason);
  void load_state_file();
  void request_save();
  void save_state_file();
  void shutdown();

  asio::io_context io_;
  Config config_;
  State state_;
  TableBuilder tables_;
  Publisher publisher_;
  HealthChecker checker_;
  Router router_;
  ApiServer api_;
  HttpServer<asio::ip::tcp> metrics_;
  std::atomic<uint16_t> metrics_port_{0};
  std::string metrics_cache_;
  std::chrono::steady_clock::time_point metrics_rendered_{};
  asio::signal_set signals_;
  asio::steady_timer retry_timer_;
  asio::steady_timer stat_timer_;
  asio::steady_timer lifecycle_timer_;
  asio::steady_timer save_timer_;
  HookRunner hooks_;
  bool save_armed_ = false;
  uint64_t state_file_errors_ = 0;
  std::chrono::steady_clock::time_point save_error_logged_{};
  std::chrono::steady_clock::time_point lifecycle_due_{};
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::system_clock::time_point started_wall_ = std::chrono::system_clock::now();
  bool dirty_ = false;
  bool publish_posted_ = false;
  bool retry_armed_ = false;
  std::chrono::steady_clock::time_point pending_since_{};
  std::chrono::steady_clock::time_point pending_logged_{};
  // What watch_stat() last saw of the dataplane, to log its transitions once.
  bool dp_running_ = false;
  uint64_t dp_boot_id_ = 0;
  uint64_t dp_rejected_gen_ = 0;
  uint64_t dp_applied_gen_ = 0;
};

}  // namespace ilb::cp

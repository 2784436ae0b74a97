// State-change hooks: on every backend state change the control plane runs the site's command
// (a failover script, a pager, a DNS update) with the event described in its environment.
//
// Hooks run one at a time, in the order the events happened: a failover script must see "down"
// before the "up" that follows it, and two copies of one script racing each other is a bug the
// site would have to guard against itself. Each run is limited by the hook timeout, after which
// the hook's whole process group is killed and the next event's hook starts. Events wait in a
// bounded queue (1024); when a hook is so slow that the queue is full, new events are dropped
// and counted rather than letting memory grow without limit. Nothing a hook does - fail, hang,
// print megabytes - reaches the control plane beyond a log line and a counter.
#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "controlplane/process/child_process.h"

namespace ilb::cp {

struct HookEvent {
  std::string instance;
  std::string service;
  std::string backend;  // "10.0.0.1:3306"
  std::string kind;     // "health" | "admin" | "selection"
  std::string old_state;
  std::string new_state;
  std::string reason;
  // When the change happened; left at the epoch, submit() sets it to the current time.
  std::chrono::system_clock::time_point time{};
};

class HookRunner {
 public:
  using OnDone = std::function<void(const HookEvent&, const ChildResult&)>;

  // Most events waiting to run; beyond it new events are dropped.
  static constexpr size_t kMaxQueued = 1024;

  // `argv` empty means hooks are off. `on_done` is called on the io_context for every hook that
  // finished (or failed to start), in order.
  HookRunner(asio::io_context& io, std::vector<std::string> argv, std::chrono::milliseconds timeout,
             OnDone on_done);
  ~HookRunner();
  HookRunner(const HookRunner&) = delete;
  HookRunner& operator=(const HookRunner&) = delete;

  // Queues the event's hook; it starts at once if no hook is running. Does nothing when hooks are
  // off or after stop().
  void submit(HookEvent event);

  size_t queued() const { return queue_.size(); }  // waiting, not counting a running hook
  bool running() const { return current_ != nullptr; }
  uint64_t ran() const { return ran_; }        // hooks that finished, failed ones included
  uint64_t failed() const { return failed_; }  // non-zero exit, signal, timeout or spawn failure
  uint64_t dropped() const { return dropped_; }

  // Kills a running hook (its on_done is not called), forgets the queue and ignores later events.
  void stop();

  // The environment a hook gets for `event` (on top of the control plane's own).
  static ChildProcess::Env environment(const HookEvent& event);

 private:
  void run_next();

  asio::io_context& io_;
  std::vector<std::string> argv_;
  std::chrono::milliseconds timeout_;
  OnDone on_done_;
  std::deque<HookEvent> queue_;
  std::shared_ptr<ChildProcess> current_;
  bool stopped_ = false;
  uint64_t ran_ = 0;
  uint64_t failed_ = 0;
  uint64_t dropped_ = 0;
  // Set while this runner exists; the child's completion handler checks it before touching us.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// "2026-11-25T17:17:46.123Z".
std::string rfc3339_utc(std::chrono::system_clock::time_point time);

}  // namespace ilb::cp

#include "controlplane/process/hook_runner.h"

#include <time.h>

#include <cstdio>

namespace ilb::cp {

std::string rfc3339_utc(std::chrono::system_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  const auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
  const time_t t = static_cast<time_t>(seconds.count());
  tm utc{};
  ::gmtime_r(&t, &utc);
  char text[64];
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(millis));
  return text;
}

HookRunner::HookRunner(asio::io_context& io, std::vector<std::string> argv,
                       std::chrono::milliseconds timeout, OnDone on_done)
    : io_(io), argv_(std::move(argv)), timeout_(timeout), on_done_(std::move(on_done)) {}

HookRunner::~HookRunner() {
  stop();
}

ChildProcess::Env HookRunner::environment(const HookEvent& event) {
  // "10.0.0.1:3306" splits at its last colon; a backend without one is all address.
  const size_t colon = event.backend.rfind(':');
  const std::string address =
      colon == std::string::npos ? event.backend : event.backend.substr(0, colon);
  const std::string port = colon == std::string::npos ? "" : event.backend.substr(colon + 1);
  return {
      {"ILB_EVENT", event.kind},          {"ILB_INSTANCE", event.instance},
      {"ILB_SERVICE", event.service},     {"ILB_BACKEND", event.backend},
      {"ILB_BACKEND_ADDRESS", address},   {"ILB_BACKEND_PORT", port},
      {"ILB_OLD_STATE", event.old_state}, {"ILB_NEW_STATE", event.new_state},
      {"ILB_REASON", event.reason},       {"ILB_TIME", rfc3339_utc(event.time)},
  };
}

void HookRunner::submit(HookEvent event) {
  if (argv_.empty() || stopped_) return;
  if (queue_.size() >= kMaxQueued) {
    ++dropped_;
    return;
  }
  if (event.time == std::chrono::system_clock::time_point{}) {
    event.time = std::chrono::system_clock::now();
  }
  queue_.push_back(std::move(event));
  if (!current_) run_next();
}

void HookRunner::run_next() {
  if (stopped_ || current_ || queue_.empty()) return;
  auto event = std::make_shared<HookEvent>(std::move(queue_.front()));
  queue_.pop_front();
  std::weak_ptr<bool> alive = alive_;
  current_ = ChildProcess::start(io_, argv_, environment(*event), timeout_,
                                 [this, alive, event](const ChildResult& result) {
                                   if (alive.expired()) return;
                                   current_.reset();
                                   ++ran_;
                                   if (!result.succeeded()) ++failed_;
                                   if (on_done_) on_done_(*event, result);
                                   if (alive.expired())
                                     return;  // on_done may have destroyed the runner
                                   run_next();
                                 });
}

void HookRunner::stop() {
  stopped_ = true;
  queue_.clear();
  if (current_) {
    current_->cancel();
    current_.reset();
  }
}

}  // namespace ilb::cp

// The time-dependent parts of a backend's life that sit between its raw health and the weights
// Maglev gets: flap dampening, slow start, and the choice of which backends of a service take new
// connections (primaries, zone affinity, backups, fail-open). Everything here is a plain value
// driven by an explicit `now`, so the state machines are tested on a fake clock and the daemon
// only has to ask when the next thing changes.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "controlplane/config/model.h"

namespace ilb::cp {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

// Holds back a backend that keeps going down. Every up→down transition is remembered for
// `window_s`; once `threshold` of them fall within the window, the backend is held down (its
// health checks may say up, it still takes no new connections) for a hold time that starts at
// `min_hold_s` and doubles with every further down while flapping, up to `max_hold_s`. A down
// that comes after a whole window without one starts over at the shortest hold.
class FlapDamper {
 public:
  void on_down(TimePoint now, const Dampening& config);
  bool holding(TimePoint now) const { return now < hold_until_; }
  TimePoint hold_until() const { return hold_until_; }
  std::chrono::seconds hold() const { return hold_; }
  size_t recent_downs() const { return downs_.size(); }

 private:
  std::deque<TimePoint> downs_;
  std::chrono::seconds hold_{0};
  TimePoint hold_until_{};
};

// The share of its weight a backend gets `elapsed` after it started taking traffic again: a
// linear ramp from kSlowStartFloor to 1 over `slow_start`. Never 0, so a ramping backend is always
// in the table and its first connections arrive at once.
inline constexpr double kSlowStartFloor = 0.05;
double slow_start_factor(std::chrono::steady_clock::duration elapsed, uint32_t slow_start_s);
// How often the table is rebuilt while a backend ramps: 20 steps, at most one per second.
std::chrono::milliseconds slow_start_step(uint32_t slow_start_s);

// One backend as the selection sees it.
struct Candidate {
  uint32_t weight = 0;   // effective weight (after slow start and agent advice), > 0 when serving
  bool serving = false;  // enabled, up, not held down, not asked by its agent to drain
  bool enabled = false;  // admin state enabled (whatever its health): fail_open uses these
  bool unknown = false;  // enabled, but its first check has not answered yet
  bool backup = false;
  bool local = false;  // in this instance's zone
};

enum class ServiceMode {
  kPrimaries,  // primary backends take new connections
  kBackups,    // no primary can: the backups do
  kFailOpen,   // nothing is up: every enabled backend does (on_all_down = "fail_open")
  kNone,       // nothing can: new connections are rejected
};
const char* service_mode_name(ServiceMode mode);  // "primaries", "backups", "fail_open", "none"

struct Selection {
  ServiceMode mode = ServiceMode::kNone;
  bool zone_local = false;        // only the local zone's backends were chosen
  std::vector<uint32_t> weights;  // per candidate, 0 = gets no new connections
  size_t chosen() const;
};

// Which backends of a service take new connections, and with what weight:
//  1. the serving primaries; with zone_affinity, only the local zone's as long as at least
//     zone_min_healthy of the local enabled primaries serve (and at least one does);
//  2. if no primary serves, the serving backups (all, or only the first in configuration order,
//     per backup_policy), with the same zone rule - but not while an enabled primary's first
//     check is still outstanding: a write VIP must not send a freshly started balancer's first
//     connections to the replica because the primary's check happened to come second;
//  3. if none serves either, every enabled backend at its configured weight when on_all_down is
//     fail_open (once no enabled backend's first check is outstanding), else nothing.
Selection select_backends(const ServiceConfig& service, const std::vector<Candidate>& candidates,
                          const std::vector<uint32_t>& configured_weights);

}  // namespace ilb::cp

#include "controlplane/state/lifecycle.h"

#include <algorithm>
#include <cmath>

namespace ilb::cp {

void FlapDamper::on_down(TimePoint now, const Dampening& config) {
  if (!config.enabled) {
    downs_.clear();
    hold_ = std::chrono::seconds(0);
    hold_until_ = {};
    return;
  }
  const auto window = std::chrono::seconds(config.window_s);
  while (!downs_.empty() && now - downs_.front() > window) downs_.pop_front();
  if (downs_.empty()) hold_ = std::chrono::seconds(0);  // a quiet window: start over
  downs_.push_back(now);
  if (downs_.size() < config.threshold) return;
  const auto min_hold = std::chrono::seconds(config.min_hold_s);
  const auto max_hold = std::chrono::seconds(config.max_hold_s);
  hold_ = hold_.count() == 0 ? min_hold : std::min(hold_ * 2, max_hold);
  hold_until_ = now + hold_;
}

double slow_start_factor(std::chrono::steady_clock::duration elapsed, uint32_t slow_start_s) {
  if (slow_start_s == 0) return 1.0;
  const double fraction = std::chrono::duration<double>(elapsed).count() / slow_start_s;
  return std::clamp(fraction, kSlowStartFloor, 1.0);
}

std::chrono::milliseconds slow_start_step(uint32_t slow_start_s) {
  return std::max(std::chrono::milliseconds(1000),
                  std::chrono::milliseconds(uint64_t{slow_start_s} * 1000 / 20));
}

const char* service_mode_name(ServiceMode mode) {
  switch (mode) {
    case ServiceMode::kPrimaries:
      return "primaries";
    case ServiceMode::kBackups:
      return "backups";
    case ServiceMode::kFailOpen:
      return "fail_open";
    case ServiceMode::kNone:
      return "none";
  }
  return "invalid";
}

size_t Selection::chosen() const {
  return static_cast<size_t>(
      std::count_if(weights.begin(), weights.end(), [](uint32_t w) { return w > 0; }));
}

namespace {

// Picks the serving members of one tier (primaries or backups) into `out`; returns whether any
// was picked and sets `zone_local` when the local zone alone was enough.
bool pick_tier(const ServiceConfig& service, const std::vector<Candidate>& candidates, bool backup,
               bool only_first, std::vector<uint32_t>& out, bool& zone_local) {
  size_t local_enabled = 0;
  size_t local_serving = 0;
  for (const auto& c : candidates) {
    if (c.backup != backup || !c.local) continue;
    local_enabled += c.enabled ? 1 : 0;
    local_serving += c.serving ? 1 : 0;
  }
  zone_local = service.zone_affinity && local_serving > 0 &&
               static_cast<double>(local_serving) >=
                   service.zone_min_healthy * static_cast<double>(local_enabled);
  bool any = false;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    if (c.backup != backup || !c.serving || (zone_local && !c.local)) continue;
    out[i] = c.weight;
    any = true;
    if (only_first) break;
  }
  return any;
}

}  // namespace

Selection select_backends(const ServiceConfig& service, const std::vector<Candidate>& candidates,
                          const std::vector<uint32_t>& configured_weights) {
  Selection sel;
  sel.weights.assign(candidates.size(), 0);
  if (pick_tier(service, candidates, false, false, sel.weights, sel.zone_local)) {
    sel.mode = ServiceMode::kPrimaries;
    return sel;
  }
  const bool primary_pending = std::any_of(candidates.begin(), candidates.end(),
                                           [](const auto& c) { return !c.backup && c.unknown; });
  const bool only_first = service.backup_policy == BackupPolicy::kFirst;
  if (!primary_pending &&
      pick_tier(service, candidates, true, only_first, sel.weights, sel.zone_local)) {
    sel.mode = ServiceMode::kBackups;
    return sel;
  }
  sel.zone_local = false;
  // Failing open is for backends known to be down, not for ones not checked yet: a freshly
  // started control plane waits for the first checks (at most one interval) before it does.
  const bool any_unknown = std::any_of(candidates.begin(), candidates.end(),
                                       [](const Candidate& c) { return c.unknown; });
  if (service.on_all_down == OnAllDown::kFailOpen && !any_unknown) {
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (candidates[i].enabled) sel.weights[i] = configured_weights[i];
    }
    if (sel.chosen() > 0) sel.mode = ServiceMode::kFailOpen;
  }
  return sel;
}

}  // namespace ilb::cp

// Scheduling and hysteresis for every health check, on one io_context and no threads.
//
// Each target is due every interval, on a fixed schedule that starts at a random offset within the
// first interval, so that thousands of targets configured at once do not probe in lockstep. A tick
// that finds the previous probe still running is skipped rather than starting a second probe
// against the same backend; if the loop ever falls more than an interval behind, the schedule
// restarts from now instead of firing the missed ticks in a burst.
//
// Deadlines are rounded up to a 1 ms grid and kept in one ordered map of slots, with one
// steady_timer for the earliest slot: one wake-up starts every check due in that millisecond, and
// asio's timer heap holds only the probes' own timeouts instead of a timer per target (with
// 10,000 targets, cancelling and re-arming in a heap that size was a visible share of the
// checker's user time).
//
// Raw results pass through a small state machine: the first result after start decides between
// up and down at once (a freshly started control plane should not wait `rise` intervals to send
// traffic), after which `fall` consecutive failures take a target down and `rise` consecutive
// successes bring it back. A target given `initial` up or down starts in that state, so a
// restarted control plane resumes without flapping.
//
// Threading: every method must be called on the thread running the io_context (or while it is not
// running); the io_context must outlive the checker.
#include "controlplane/health/health_checker.h"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <stdexcept>
#include <unordered_set>
#include <utility>

#include "controlplane/health/agent_check.h"
#include "controlplane/health/exec_check.h"
#include "controlplane/health/fd_limit.h"
#include "controlplane/health/http_check.h"
#include "controlplane/health/memcached_check.h"
#include "controlplane/health/mysql_check.h"
#include "controlplane/health/probe.h"
#include "controlplane/health/redis_check.h"
#include "controlplane/health/syn_probe.h"
#include "controlplane/health/tcp_check.h"

namespace ilb::cp {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kNoCheckReason = "no health check";

bool same_target(const CheckTarget& a, const CheckTarget& b) {
  return a.key == b.key && a.service == b.service && a.address == b.address && a.port == b.port &&
         a.check == b.check;
}

asio::ip::tcp::endpoint check_endpoint(const CheckTarget& target) {
  asio::ip::address_v4::bytes_type bytes;
  static_assert(sizeof(bytes) == sizeof(target.address));
  std::memcpy(bytes.data(), &target.address, bytes.size());  // both in network order
  const uint16_t port = target.check.port != 0 ? target.check.port : target.port;
  return {asio::ip::address_v4(bytes), port};
}

// Checks fire on a 1 ms grid. Deadlines spread by jitter would otherwise each wake the event loop
// on their own (10,000 wake-ups a second for 10,000 backends at 1 s, each an epoll_wait and a
// timer re-arm); on the grid every wake-up starts all the checks due in that millisecond.
using TimerGrid = std::chrono::milliseconds;

// `t` rounded up to the grid.
Clock::time_point on_grid(Clock::time_point t) {
  return Clock::time_point(std::chrono::ceil<TimerGrid>(t.time_since_epoch()));
}

std::chrono::milliseconds interval_of(const HealthCheckConfig& check) {
  return std::chrono::milliseconds(std::max<uint32_t>(check.interval_ms, 1));
}

// `syn` is the checker's half-open prober, or null where raw sockets are not allowed.
// `kept` is the backend's kept HTTP connection (null unless its check reuses connections).
std::shared_ptr<Probe> make_probe(asio::io_context& io, const std::shared_ptr<SynProber>& syn,
                                  const CheckTarget& target,
                                  const std::shared_ptr<KeptConnection>& kept) {
  const auto endpoint = check_endpoint(target);
  const auto timeout = std::chrono::milliseconds(std::max<uint32_t>(target.check.timeout_ms, 1));
  switch (target.check.type) {
    case CheckType::kTcp:
      if (target.check.tcp_mode == TcpMode::kSyn && syn) {
        return std::make_shared<SynProbe>(io, syn, endpoint, timeout);
      }
      return std::make_shared<TcpProbe>(io, endpoint, timeout);
    case CheckType::kHttp: {
      const std::string host =
          target.check.host.empty() ? HttpProbe::default_host(endpoint) : target.check.host;
      return std::make_shared<HttpProbe>(
          io, endpoint, timeout,
          HttpProbe::make_request(target.check.path, host, target.check.method, kept != nullptr),
          target.check.expect_status, target.check.expect_body, kept);
    }
    case CheckType::kRedis:
      return std::make_shared<RedisProbe>(io, endpoint, timeout, target.check.username,
                                          target.check.password, target.check.role);
    case CheckType::kMemcached:
      return std::make_shared<MemcachedProbe>(io, endpoint, timeout);
    case CheckType::kMysql:
      return std::make_shared<MysqlProbe>(
          io, endpoint, timeout,
          MysqlProbe::Options{target.check.user, target.check.password, target.check.query,
                              target.check.max_replication_lag_s});
    case CheckType::kAgent: {
      const std::string host =
          target.check.host.empty() ? HttpProbe::default_host(endpoint) : target.check.host;
      return std::make_shared<AgentProbe>(io, endpoint, timeout, target.check.agent_protocol,
                                          target.check.path, host);
    }
    case CheckType::kExec:
      return std::make_shared<ExecProbe>(
          io, target.check.command,
          std::vector<std::pair<std::string, std::string>>{
              {"ILB_SERVICE", target.service},
              {"ILB_BACKEND_ADDRESS", endpoint.address().to_string()},
              {"ILB_BACKEND_PORT", std::to_string(target.port)},
              {"ILB_CHECK_PORT", std::to_string(endpoint.port())}},
          timeout);
    case CheckType::kNone:
      break;
  }
  throw std::logic_error("make_probe: a target without a health check has no probe");
}

}  // namespace

struct HealthChecker::Impl {
  struct Entry {
    CheckTarget target;
    abi::Health health = abi::Health::kUnknown;
    uint32_t successes = 0;  // consecutive
    uint32_t failures = 0;   // consecutive
    std::string last_result;
    std::optional<AgentAdvice> advice;
    Clock::time_point next_due;
    std::shared_ptr<Probe> probe;  // the latest probe; may still be closing after its verdict
    std::shared_ptr<KeptConnection> kept;  // http checks with reuse_connection
    bool probing = false;                  // a verdict from `probe` is outstanding
    bool removed = false;                  // handlers still queued for this entry must do nothing
  };
  using EntryPtr = std::shared_ptr<Entry>;

  Impl(asio::io_context& io_context, Callback callback)
      : io(io_context), on_change(std::move(callback)), rng(std::random_device{}()), wake(io) {}

  void add(const CheckTarget& target, abi::Health start_health) {
    auto e = std::make_shared<Entry>();
    e->target = target;
    if (target.check.type == CheckType::kHttp && target.check.reuse_connection) {
      e->kept = std::make_shared<KeptConnection>();
    }
    e->health = start_health;
    entries[target.key] = e;
    if (target.check.type == CheckType::kNone) {
      e->last_result = kNoCheckReason;
      if (e->health != abi::Health::kUp) {
        HealthEvent event{target.key,     e->health,    abi::Health::kUp,
                          kNoCheckReason, std::nullopt, false};
        e->health = abi::Health::kUp;
        // Posted, so that the callback never runs inside set_targets().
        asio::post(io, [this, e, event] {
          if (!e->removed) notify(event);
        });
      }
      return;
    }
    const auto interval = interval_of(target.check);
    std::uniform_int_distribution<int64_t> jitter(
        0, std::chrono::duration_cast<std::chrono::microseconds>(interval).count() - 1);
    schedule(e, Clock::now() + std::chrono::microseconds(jitter(rng)));
  }

  // A removed entry stays in its slot until the slot is due, and is skipped then.
  void remove(const EntryPtr& e) {
    e->removed = true;
    if (e->probe) e->probe->cancel();
    e->probe.reset();
    e->kept.reset();
  }

  void schedule(const EntryPtr& e, Clock::time_point due) {
    e->next_due = due;
    const Clock::time_point slot = on_grid(due);
    slots[slot].push_back(e);
    if (slot < wake_at) arm(slot);
  }

  // Sets the one timer to `slot`, replacing an earlier wait (whose handler sees an error).
  void arm(Clock::time_point slot) {
    wake_at = slot;
    wake.expires_at(slot);
    wake.async_wait([this, alive = std::weak_ptr<bool>(alive)](const std::error_code& ec) {
      if (ec || alive.expired()) return;
      on_wake();
    });
  }

  void on_wake() {
    // The earliest time there is: the checks rescheduled below do not arm the timer one by one,
    // it is armed once at the end.
    wake_at = Clock::time_point::min();
    const auto now = Clock::now();
    while (!slots.empty() && slots.begin()->first <= now) {
      // Out of the map first: on_due() schedules the next round into it.
      auto slot = slots.extract(slots.begin());
      for (const EntryPtr& e : slot.mapped()) {
        if (!e->removed) on_due(e);
      }
    }
    wake_at = Clock::time_point::max();
    if (!slots.empty()) arm(slots.begin()->first);
  }

  void on_due(const EntryPtr& e) {
    if (!e->probing) start_probe(e);
    const auto interval = interval_of(e->target.check);
    auto next = e->next_due + interval;
    const auto now = Clock::now();
    if (next <= now) next = now + interval;
    schedule(e, next);
  }

  void start_probe(const EntryPtr& e) {
    // A previous HTTP probe that is still draining its response has had its say: close it.
    if (e->probe) e->probe->cancel();
    e->probe = make_probe(io, syn_prober(e->target.check), e->target, e->kept);
    e->probing = true;
    e->probe->start([this, e](ProbeResult result) {
      if (e->removed) return;
      e->probing = false;
      on_result(e, std::move(result));
    });
  }

  void on_result(const EntryPtr& e, ProbeResult result) {
    ++completed;
    failed += result.ok ? 0 : 1;
    e->last_result = std::move(result.reason);
    const bool advice_changed = result.advice && result.advice != e->advice;
    if (result.advice) e->advice = result.advice;
    const abi::Health from = e->health;
    abi::Health to = from;
    if (result.ok) {
      e->failures = 0;
      ++e->successes;
      if (from == abi::Health::kUnknown ||
          (from == abi::Health::kDown &&
           e->successes >= std::max<uint32_t>(e->target.check.rise, 1))) {
        to = abi::Health::kUp;
      }
    } else {
      e->successes = 0;
      ++e->failures;
      if (from == abi::Health::kUnknown ||
          (from == abi::Health::kUp &&
           e->failures >= std::max<uint32_t>(e->target.check.fall, 1))) {
        to = abi::Health::kDown;
      }
    }
    if (to == from && !advice_changed) return;
    e->health = to;
    // Last statement: the callback may call set_targets(), stop() or even destroy the checker.
    notify(HealthEvent{e->target.key, from, to, e->last_result, e->advice, advice_changed});
  }

  // The half-open prober, opened when the first check needs it. Where it cannot be opened (no
  // CAP_NET_RAW) tcp checks fall back to connect probes, and the operator hears so once.
  const std::shared_ptr<SynProber>& syn_prober(const HealthCheckConfig& check) {
    if (check.type == CheckType::kTcp && check.tcp_mode == TcpMode::kSyn && !syn_tried) {
      syn_tried = true;
      syn = SynProber::open(io, syn_error);
      if (!syn) {
        spdlog::warn("tcp checks fall back to connect probes (tcp_mode = \"connect\"): {}",
                     syn_error);
      }
    }
    return syn;
  }

  // Calls a copy of the callback, which stays valid even if the call destroys the checker.
  void notify(const HealthEvent& event) {
    if (!on_change) return;
    Callback callback = on_change;
    callback(event);
  }

  asio::io_context& io;
  Callback on_change;
  std::mt19937_64 rng;
  std::unordered_map<uint32_t, EntryPtr> entries;
  // Entries by the grid slot they are next due in; an entry is in exactly one slot.
  std::map<Clock::time_point, std::vector<EntryPtr>> slots;
  asio::steady_timer wake;  // armed for `wake_at`, the earliest slot, while there is one
  Clock::time_point wake_at = Clock::time_point::max();
  // Reset by stop(): a timer handler already queued then finds it gone and does nothing.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  std::shared_ptr<SynProber> syn;
  bool syn_tried = false;
  std::string syn_error;
  bool stopped = false;
  uint64_t fd_warned_at = 0;  // the socket need last warned about, so a reload does not repeat it
  uint64_t completed = 0;
  uint64_t failed = 0;
};

HealthChecker::HealthChecker(asio::io_context& io, Callback on_change)
    : impl_(std::make_unique<Impl>(io, std::move(on_change))) {}

HealthChecker::~HealthChecker() {
  stop();
}

// A target whose check parameters changed but whose address and port did not is still the same
// server: it keeps its current health (with fresh counters and a new schedule) instead of
// falling back to `initial`, so that editing an interval does not make a backend flap.
void HealthChecker::set_targets(const std::vector<CheckTarget>& targets) {
  if (impl_->stopped) return;
  std::unordered_set<uint32_t> keys;
  for (const CheckTarget& t : targets) {
    if (!keys.insert(t.key).second) {
      throw std::invalid_argument("health checker: duplicate target key " + std::to_string(t.key));
    }
  }

  const auto checked =
      static_cast<uint64_t>(std::count_if(targets.begin(), targets.end(), [](const CheckTarget& t) {
        return t.check.type != CheckType::kNone;
      }));
  const uint64_t wanted = sockets_needed(checked);
  const FdLimit fds = raise_open_file_limit(wanted);
  if (fds.now > fds.before) {
    spdlog::info("open-files limit raised from {} to {} for the checks of {} backends", fds.before,
                 fds.now, checked);
  }
  if (fds.now < wanted && wanted > impl_->fd_warned_at) {
    impl_->fd_warned_at = wanted;
    spdlog::warn(
        "the checks of {} backends may hold up to {} sockets at once, but the open-files limit "
        "is {} (hard limit {}): probes beyond it fail and take their backends down; raise the "
        "hard limit (LimitNOFILE= for a systemd service, ulimit -Hn in a shell)",
        checked, wanted, fds.now, fds.hard);
  }

  for (auto it = impl_->entries.begin(); it != impl_->entries.end();) {
    if (!keys.contains(it->first)) {
      impl_->remove(it->second);
      it = impl_->entries.erase(it);
    } else {
      ++it;
    }
  }

  for (const CheckTarget& t : targets) {
    abi::Health start_health = t.initial;
    auto it = impl_->entries.find(t.key);
    if (it != impl_->entries.end()) {
      const Impl::EntryPtr& old = it->second;
      if (same_target(old->target, t)) continue;
      if (old->target.address == t.address && old->target.port == t.port) {
        start_health = old->health;
      }
      impl_->remove(old);
      impl_->entries.erase(it);
    }
    impl_->add(t, start_health);
  }
}

abi::Health HealthChecker::health(uint32_t key) const {
  auto it = impl_->entries.find(key);
  return it == impl_->entries.end() ? abi::Health::kUnknown : it->second->health;
}

std::string HealthChecker::last_result(uint32_t key) const {
  auto it = impl_->entries.find(key);
  return it == impl_->entries.end() ? std::string() : it->second->last_result;
}

uint64_t HealthChecker::probes_completed() const {
  return impl_->completed;
}

uint64_t HealthChecker::probes_failed() const {
  return impl_->failed;
}

void HealthChecker::stop() {
  impl_->stopped = true;
  for (auto& [key, entry] : impl_->entries) impl_->remove(entry);
  impl_->entries.clear();
  impl_->slots.clear();
  impl_->alive.reset();
  impl_->wake.cancel();
}

}  // namespace ilb::cp

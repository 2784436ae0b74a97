// The lifecycle state machines on a fake clock: dampening, slow start, drain deadlines, backups,
// zones, fail-open, agent advice, and what the snapshot tells the dataplane about each.
#include "controlplane/state/lifecycle.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "controlplane/config/loader.h"
#include "controlplane/state/state.h"
#include "tests/unit/common/config_head.h"

namespace ilb::cp {
namespace {

using std::chrono::seconds;

const TimePoint t0 = TimePoint{} + std::chrono::hours(1);

std::string config_text(const std::string& service_keys, const std::string& backends,
                        const std::string& controlplane = "") {
  return test::kConfigHead + controlplane + R"(
[[service]]
name = "db"
vip = "10.0.0.100"
port = 3306
table_size = 251
)" + service_keys +
         "\n" + backends;
}

std::string backend(const char* address, const std::string& extra = "") {
  return std::string("[[service.backend]]\naddress = \"") + address + "\"\n" + extra + "\n";
}

uint32_t ip(const char* text) {
  return inet_addr(text);
}

class Lifecycle : public ::testing::Test {
 protected:
  void load(const std::string& text) {
    state_.apply_config(parse_config(text, "test.toml"));
    for (const auto& b : state_.services().at(0).backends) {
      ids_[b.config.address] = b.id;
    }
  }
  uint32_t id(const char* address) { return ids_.at(ip(address)); }
  void up(const char* address, TimePoint now) {
    state_.set_health(id(address), abi::Health::kUp, "ok", now);
  }
  void down(const char* address, TimePoint now) {
    state_.set_health(id(address), abi::Health::kDown, "refused", now);
  }
  // Backend id -> weight in the last evaluate()'s selection.
  std::map<uint32_t, uint32_t> weights() const {
    std::map<uint32_t, uint32_t> out;
    for (const auto& b : state_.services().at(0).backends) out[b.id] = b.selected_weight;
    return out;
  }
  uint32_t weight(const char* address) { return weights().at(id(address)); }
  const SnapshotBackend& in_snapshot(const Snapshot& snap, const char* address) {
    for (const auto& b : snap.backends) {
      if (b.address == ip(address)) return b;
    }
    throw std::runtime_error("not in snapshot");
  }

  State state_;
  std::map<uint32_t, uint32_t> ids_;
  TableBuilder builder_;
};

TEST(FlapDamper, HoldsFromTheThresholdAndDoublesUpToTheMaximum) {
  Dampening d;  // threshold 4 within 120 s, hold 10 s doubling to 300 s
  FlapDamper damper;
  for (int i = 0; i < 3; ++i) damper.on_down(t0 + seconds(i * 10), d);
  EXPECT_FALSE(damper.holding(t0 + seconds(21)));
  damper.on_down(t0 + seconds(30), d);
  EXPECT_TRUE(damper.holding(t0 + seconds(39)));
  EXPECT_FALSE(damper.holding(t0 + seconds(40)));
  EXPECT_EQ(damper.hold(), seconds(10));
  damper.on_down(t0 + seconds(45), d);
  EXPECT_EQ(damper.hold(), seconds(20));
  for (int i = 0; i < 10; ++i) damper.on_down(t0 + seconds(50 + i), d);
  EXPECT_EQ(damper.hold(), seconds(300));
}

TEST(FlapDamper, AQuietWindowStartsOver) {
  Dampening d;
  FlapDamper damper;
  for (int i = 0; i < 4; ++i) damper.on_down(t0 + seconds(i), d);
  EXPECT_EQ(damper.hold(), seconds(10));
  damper.on_down(t0 + seconds(500), d);  // 120 s window long passed
  EXPECT_EQ(damper.recent_downs(), 1u);
  EXPECT_EQ(damper.hold(), seconds(0));
  EXPECT_FALSE(damper.holding(t0 + seconds(500)));
}

TEST(FlapDamper, DisabledNeverHolds) {
  Dampening d;
  d.enabled = false;
  FlapDamper damper;
  for (int i = 0; i < 10; ++i) damper.on_down(t0 + seconds(i), d);
  EXPECT_FALSE(damper.holding(t0 + seconds(10)));
}

TEST(SlowStart, RampsLinearlyFromTheFloor) {
  EXPECT_DOUBLE_EQ(slow_start_factor(seconds(0), 60), kSlowStartFloor);
  EXPECT_DOUBLE_EQ(slow_start_factor(seconds(30), 60), 0.5);
  EXPECT_DOUBLE_EQ(slow_start_factor(seconds(90), 60), 1.0);
  EXPECT_DOUBLE_EQ(slow_start_factor(seconds(0), 0), 1.0);
  EXPECT_EQ(slow_start_step(60), std::chrono::milliseconds(3000));
  EXPECT_EQ(slow_start_step(5), std::chrono::milliseconds(1000));
}

TEST_F(Lifecycle, AFlappingBackendIsHeldDownDespiteGoodChecks) {
  load(config_text("", backend("10.0.0.21") + backend("10.0.0.22")));
  up("10.0.0.21", t0);
  up("10.0.0.22", t0);
  state_.evaluate(t0);
  TimePoint t = t0;
  for (int i = 0; i < 4; ++i) {
    t += seconds(5);
    down("10.0.0.21", t);
    state_.evaluate(t);
    t += seconds(5);
    up("10.0.0.21", t);
    auto events = state_.evaluate(t);
    if (i == 3) {
      ASSERT_EQ(events.size(), 1u);
      EXPECT_EQ(events[0].kind, "hold");
      EXPECT_EQ(events[0].to, "held");
    }
  }
  // The fourth down (at t0+35) started a 10 s hold: up since t0+40, held until t0+45.
  EXPECT_EQ(weight("10.0.0.21"), 0u);
  ASSERT_TRUE(state_.next_deadline(t).has_value());
  EXPECT_EQ(*state_.next_deadline(t), t0 + seconds(45));
  Snapshot snap = state_.build_snapshot(builder_, t);
  EXPECT_EQ(in_snapshot(snap, "10.0.0.21").health, abi::Health::kDown);
  state_.evaluate(t0 + seconds(45));
  EXPECT_EQ(weight("10.0.0.21"), 100u);
}

TEST_F(Lifecycle, SlowStartRampsABackendComingBackButNotTheFirstStart) {
  load(config_text("slow_start = \"60s\"", backend("10.0.0.21") + backend("10.0.0.22")));
  up("10.0.0.21", t0);
  up("10.0.0.22", t0);
  state_.evaluate(t0);
  EXPECT_EQ(weight("10.0.0.21"), 100u);  // a fresh start: full weight at once
  down("10.0.0.22", t0 + seconds(10));
  state_.evaluate(t0 + seconds(10));
  up("10.0.0.22", t0 + seconds(20));
  state_.evaluate(t0 + seconds(20));
  EXPECT_EQ(weight("10.0.0.22"), 5u);
  EXPECT_EQ(*state_.next_deadline(t0 + seconds(20)), t0 + seconds(23));
  state_.evaluate(t0 + seconds(50));
  EXPECT_EQ(weight("10.0.0.22"), 50u);
  state_.evaluate(t0 + seconds(80));
  EXPECT_EQ(weight("10.0.0.22"), 100u);
  EXPECT_FALSE(state_.next_deadline(t0 + seconds(80)).has_value());
}

TEST_F(Lifecycle, BackupTakesOverOnlyWhileNoPrimaryServes) {
  load(config_text("", backend("10.0.0.21") + backend("10.0.0.31", "backup = true") +
                           backend("10.0.0.32", "backup = true")));
  for (const char* a : {"10.0.0.21", "10.0.0.31", "10.0.0.32"}) up(a, t0);
  auto events = state_.evaluate(t0);
  EXPECT_TRUE(events.empty());  // starting with primaries is not news
  EXPECT_EQ(weight("10.0.0.21"), 100u);
  EXPECT_EQ(weight("10.0.0.31"), 0u);

  down("10.0.0.21", t0 + seconds(1));
  events = state_.evaluate(t0 + seconds(1));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, "service");
  EXPECT_EQ(events[0].from, "primaries");
  EXPECT_EQ(events[0].to, "backups");
  EXPECT_EQ(weight("10.0.0.31"), 100u);
  EXPECT_EQ(weight("10.0.0.32"), 0u);  // backup_policy "first"

  up("10.0.0.21", t0 + seconds(2));
  events = state_.evaluate(t0 + seconds(2));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].to, "primaries");
  EXPECT_EQ(weight("10.0.0.31"), 0u);
}

TEST_F(Lifecycle, BackupsWaitForThePrimarysFirstCheck) {
  load(config_text("", backend("10.0.0.21") + backend("10.0.0.31", "backup = true")));
  up("10.0.0.31", t0);  // the backup's first check answered first
  auto events = state_.evaluate(t0);
  EXPECT_EQ(weight("10.0.0.31"), 0u);
  EXPECT_EQ(state_.services()[0].mode, ServiceMode::kNone);
  up("10.0.0.21", t0 + seconds(1));
  events = state_.evaluate(t0 + seconds(1));
  EXPECT_EQ(weight("10.0.0.21"), 100u);
  EXPECT_EQ(weight("10.0.0.31"), 0u);
  // A primary known to be down does not hold the backups back.
  down("10.0.0.21", t0 + seconds(2));
  state_.evaluate(t0 + seconds(2));
  EXPECT_EQ(weight("10.0.0.31"), 100u);
}

TEST_F(Lifecycle, BackupPolicyAllUsesEveryServingBackup) {
  load(config_text("backup_policy = \"all\"", backend("10.0.0.21") +
                                                  backend("10.0.0.31", "backup = true") +
                                                  backend("10.0.0.32", "backup = true")));
  down("10.0.0.21", t0);
  up("10.0.0.31", t0);
  up("10.0.0.32", t0);
  state_.evaluate(t0);
  EXPECT_EQ(weight("10.0.0.31"), 100u);
  EXPECT_EQ(weight("10.0.0.32"), 100u);
}

TEST_F(Lifecycle, ZoneAffinityPrefersLocalAndSpillsOverBelowTheFraction) {
  const std::string backends = backend("10.0.0.21", "zone = \"a\"") +
                               backend("10.0.0.22", "zone = \"a\"") +
                               backend("10.0.0.23", "zone = \"b\"");
  load(config_text("zone_affinity = true\nzone_min_healthy = 0.5", backends,
                   "[controlplane]\nzone = \"a\"\nstate_file = \"\"\n"));
  for (const char* a : {"10.0.0.21", "10.0.0.22", "10.0.0.23"}) up(a, t0);
  state_.evaluate(t0);
  EXPECT_EQ(weight("10.0.0.21"), 100u);
  EXPECT_EQ(weight("10.0.0.23"), 0u);
  EXPECT_TRUE(state_.services()[0].zone_local);

  down("10.0.0.21", t0 + seconds(1));  // 1 of 2 local up: 0.5 is enough
  state_.evaluate(t0 + seconds(1));
  EXPECT_EQ(weight("10.0.0.22"), 100u);
  EXPECT_EQ(weight("10.0.0.23"), 0u);

  down("10.0.0.22", t0 + seconds(2));  // none local: spill over
  state_.evaluate(t0 + seconds(2));
  EXPECT_EQ(weight("10.0.0.23"), 100u);
  EXPECT_FALSE(state_.services()[0].zone_local);
}

TEST_F(Lifecycle, ZoneSpillOverUsesEveryZoneBelowAStricterFraction) {
  const std::string backends = backend("10.0.0.21", "zone = \"a\"") +
                               backend("10.0.0.22", "zone = \"a\"") +
                               backend("10.0.0.23", "zone = \"b\"");
  load(config_text("zone_affinity = true\nzone_min_healthy = 0.75", backends,
                   "[controlplane]\nzone = \"a\"\nstate_file = \"\"\n"));
  for (const char* a : {"10.0.0.21", "10.0.0.22", "10.0.0.23"}) up(a, t0);
  down("10.0.0.21", t0);
  state_.evaluate(t0);
  EXPECT_EQ(weight("10.0.0.22"), 100u);
  EXPECT_EQ(weight("10.0.0.23"), 100u);
}

TEST_F(Lifecycle, AllDownRejectsOrFailsOpen) {
  load(config_text("", backend("10.0.0.21") + backend("10.0.0.22")));
  down("10.0.0.21", t0);
  down("10.0.0.22", t0);
  auto events = state_.evaluate(t0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].to, "none");
  EXPECT_TRUE(state_.build_snapshot(builder_, t0).services[0].table.empty());

  State open;
  open.apply_config(parse_config(
      config_text("on_all_down = \"fail_open\"", backend("10.0.0.21") + backend("10.0.0.22")),
      "test.toml"));
  const auto& bs = open.services()[0].backends;
  open.set_health(bs[0].id, abi::Health::kDown, "refused", t0);
  open.set_health(bs[1].id, abi::Health::kDown, "refused", t0);
  open.set_admin("db", ip("10.0.0.22"), 3306, abi::AdminState::kDisabled, t0);
  events = open.evaluate(t0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].to, "fail_open");
  Snapshot snap = open.build_snapshot(builder_, t0);
  ASSERT_FALSE(snap.services[0].table.empty());
  for (uint32_t entry : snap.services[0].table) EXPECT_EQ(entry, bs[0].id);  // not the disabled
}

TEST_F(Lifecycle, FailOpenWaitsForTheFirstChecks) {
  load(config_text("on_all_down = \"fail_open\"", backend("10.0.0.21") + backend("10.0.0.22")));
  state_.evaluate(t0);
  EXPECT_EQ(state_.services()[0].mode, ServiceMode::kNone) << "nothing checked yet";
  down("10.0.0.21", t0 + seconds(1));
  state_.evaluate(t0 + seconds(1));
  EXPECT_EQ(state_.services()[0].mode, ServiceMode::kNone) << "10.0.0.22 not checked yet";
  down("10.0.0.22", t0 + seconds(2));
  state_.evaluate(t0 + seconds(2));
  EXPECT_EQ(state_.services()[0].mode, ServiceMode::kFailOpen);
  EXPECT_EQ(weight("10.0.0.21"), 100u);
  EXPECT_EQ(weight("10.0.0.22"), 100u);
}

TEST_F(Lifecycle, DrainingConnectionsAreCutAtTheDeadline) {
  load(config_text("drain_timeout = \"30s\"", backend("10.0.0.21") + backend("10.0.0.22")));
  up("10.0.0.21", t0);
  up("10.0.0.22", t0);
  ASSERT_EQ(state_.set_admin("db", ip("10.0.0.21"), 3306, abi::AdminState::kDraining, t0),
            AdminChange::kChanged);
  state_.evaluate(t0);
  EXPECT_EQ(*state_.next_deadline(t0), t0 + seconds(30));
  Snapshot before = state_.build_snapshot(builder_, t0 + seconds(29));
  EXPECT_EQ(in_snapshot(before, "10.0.0.21").admin, abi::AdminState::kDraining);
  EXPECT_FALSE(in_snapshot(before, "10.0.0.21").reset_flows);
  Snapshot after = state_.build_snapshot(builder_, t0 + seconds(30));
  EXPECT_TRUE(in_snapshot(after, "10.0.0.21").reset_flows);
  EXPECT_FALSE(in_snapshot(after, "10.0.0.22").reset_flows);
}

TEST_F(Lifecycle, OnBackendDownResetCutsConnectionsOfADownBackend) {
  load(config_text("on_backend_down = \"reset\"", backend("10.0.0.21") + backend("10.0.0.22")));
  up("10.0.0.21", t0);
  down("10.0.0.22", t0);
  Snapshot snap = state_.build_snapshot(builder_, t0);
  EXPECT_TRUE(in_snapshot(snap, "10.0.0.22").reset_flows);
  EXPECT_FALSE(in_snapshot(snap, "10.0.0.21").reset_flows);

  State keep;
  keep.apply_config(parse_config(config_text("", backend("10.0.0.21")), "test.toml"));
  keep.set_health(keep.services()[0].backends[0].id, abi::Health::kDown, "refused", t0);
  EXPECT_FALSE(keep.build_snapshot(builder_, t0).backends[0].reset_flows);
}

TEST_F(Lifecycle, AgentAdviceDrainsAndScalesWeight) {
  load(config_text("", backend("10.0.0.21") + backend("10.0.0.22")));
  up("10.0.0.21", t0);
  up("10.0.0.22", t0);
  EXPECT_TRUE(state_.set_advice(id("10.0.0.21"), AgentAdvice{false, 40}, t0));
  EXPECT_FALSE(state_.set_advice(id("10.0.0.21"), AgentAdvice{false, 40}, t0));
  EXPECT_TRUE(state_.set_advice(id("10.0.0.22"), AgentAdvice{true, std::nullopt}, t0));
  state_.evaluate(t0);
  EXPECT_EQ(weight("10.0.0.21"), 40u);
  EXPECT_EQ(weight("10.0.0.22"), 0u);
  Snapshot snap = state_.build_snapshot(builder_, t0);
  EXPECT_EQ(in_snapshot(snap, "10.0.0.22").admin, abi::AdminState::kDraining);
  EXPECT_EQ(in_snapshot(snap, "10.0.0.21").admin, abi::AdminState::kEnabled);
}

TEST_F(Lifecycle, PerBackendCheckOverridesReachTheChecker) {
  load(config_text("[service.health_check]\ntype = \"tcp\"\ninterval = \"2s\"",
                   backend("10.0.0.21") + backend("10.0.0.22",
                                                  "[service.backend.health_check]\nport = 9200\n"
                                                  "interval = \"5s\"")));
  const auto targets = state_.check_targets();
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[0].check.port, 0u);
  EXPECT_EQ(targets[0].check.interval_ms, 2000u);
  EXPECT_EQ(targets[1].check.port, 9200u);
  EXPECT_EQ(targets[1].check.interval_ms, 5000u);
  EXPECT_EQ(targets[1].check.type, CheckType::kTcp);
  EXPECT_EQ(targets[1].service, "db");
}

}  // namespace
}  // namespace ilb::cp

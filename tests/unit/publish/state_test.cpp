#include "controlplane/state/state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "controlplane/publish/publisher.h"
#include "dataplane/config/config_error.h"
#include "fake_dataplane.h"
#include "test_configs.h"

namespace ilb::cp {
namespace {

const BackendState& find(const State& s, const std::string& service, const char* address) {
  const ServiceState* svc = s.find_service(service);
  if (svc == nullptr) throw std::runtime_error("no service " + service);
  for (const auto& b : svc->backends) {
    if (b.config.address == inet_addr(address)) return b;
  }
  throw std::runtime_error(std::string("no backend ") + address);
}

std::set<uint32_t> table_ids(const SnapshotService& s) {
  return std::set<uint32_t>(s.table.begin(), s.table.end());
}

TEST(State, AssignsUniqueIdsInRange) {
  State state;
  state.apply_config(test::two_services());
  std::set<uint32_t> ids;
  for (const auto& s : state.services()) {
    for (const auto& b : s.backends) {
      EXPECT_GE(b.id, 1u);
      EXPECT_LT(b.id, abi::kMaxBackends);
      ids.insert(b.id);
      EXPECT_EQ(b.admin, abi::AdminState::kEnabled);
      EXPECT_EQ(b.health, abi::Health::kUnknown);
    }
  }
  EXPECT_EQ(ids.size(), 5u);
}

TEST(State, UnknownBackendsAreNotInTables) {
  State state;
  state.apply_config(test::two_services());
  TableBuilder builder;
  Snapshot snap = state.build_snapshot(builder);
  ASSERT_EQ(snap.services.size(), 2u);
  EXPECT_TRUE(snap.services[0].table.empty());
  EXPECT_TRUE(snap.services[1].table.empty());
  EXPECT_EQ(snap.backends.size(), 5u);
  EXPECT_NO_THROW(validate_snapshot(snap));
}

TEST(State, OnlyEnabledUpWeightedBackendsEnterTheTable) {
  Config config = test::two_services();
  config.services[0].backends.push_back(test::backend("10.0.1.4", 80, /*weight=*/0));
  State state;
  state.apply_config(config);
  for (const auto& s : state.services()) {
    for (const auto& b : s.backends) state.set_health(b.id, abi::Health::kUp, "ok");
  }
  const uint32_t up = find(state, "web", "10.0.1.1").id;
  const uint32_t draining = find(state, "web", "10.0.1.2").id;
  const uint32_t disabled = find(state, "web", "10.0.1.3").id;
  const uint32_t weightless = find(state, "web", "10.0.1.4").id;
  ASSERT_EQ(state.set_admin("web", inet_addr("10.0.1.2"), 80, abi::AdminState::kDraining),
            AdminChange::kChanged);
  ASSERT_EQ(state.set_admin("web", inet_addr("10.0.1.3"), 80, abi::AdminState::kDisabled),
            AdminChange::kChanged);
  state.set_health(find(state, "db", "10.0.2.1").id, abi::Health::kDown, "refused");

  TableBuilder builder;
  Snapshot snap = state.build_snapshot(builder);
  ASSERT_NO_THROW(validate_snapshot(snap));
  EXPECT_EQ(table_ids(snap.services[0]), std::set<uint32_t>{up});
  EXPECT_EQ(snap.services[0].table.size(), 251u);
  EXPECT_EQ(table_ids(snap.services[1]), std::set<uint32_t>{find(state, "db", "10.0.2.2").id});
  // Draining, disabled and weightless backends stay listed with their state.
  auto record = [&](uint32_t id) {
    return *std::find_if(snap.backends.begin(), snap.backends.end(),
                         [&](const SnapshotBackend& b) { return b.id == id; });
  };
  EXPECT_EQ(record(draining).admin, abi::AdminState::kDraining);
  EXPECT_EQ(record(disabled).admin, abi::AdminState::kDisabled);
  EXPECT_EQ(record(weightless).weight, 0u);
  EXPECT_EQ(record(find(state, "db", "10.0.2.1").id).health, abi::Health::kDown);
  EXPECT_EQ(snap.backends.size(), 6u);
}

TEST(State, UntrackedTcpResetReachesTheSnapshot) {
  Config c = test::two_services();
  c.services[1].untracked_tcp = UntrackedTcp::kReset;
  State state;
  state.apply_config(c);
  TableBuilder builder;
  Snapshot snap = state.build_snapshot(builder);
  EXPECT_FALSE(snap.services[0].reset_untracked);
  EXPECT_TRUE(snap.services[1].reset_untracked);
}

TEST(State, ServiceWithoutEligibleBackendGetsEmptyTable) {
  State state;
  state.apply_config(test::two_services());
  for (const auto& b : state.find_service("db")->backends) {
    state.set_health(b.id, abi::Health::kUp, "ok");
  }
  for (const auto& b : state.find_service("web")->backends) {
    state.set_health(b.id, abi::Health::kDown, "refused");
  }
  TableBuilder builder;
  Snapshot snap = state.build_snapshot(builder);
  EXPECT_TRUE(snap.services[0].table.empty());
  EXPECT_FALSE(snap.services[1].table.empty());
}

TEST(State, NoHealthCheckMeansUpAndNoProbes) {
  Config config = test::two_services();
  config.services[1].health_check.type = CheckType::kNone;
  State state;
  state.apply_config(config);
  for (const auto& b : state.find_service("db")->backends) EXPECT_EQ(b.health, abi::Health::kUp);
  auto targets = state.check_targets();
  EXPECT_EQ(targets.size(), 3u);
  for (const auto& t : targets) EXPECT_NE(state.find_backend(t.key), nullptr);
}

TEST(State, CheckTargetsResumeCurrentHealth) {
  State state;
  state.apply_config(test::two_services());
  const uint32_t id = find(state, "web", "10.0.1.2").id;
  state.set_health(id, abi::Health::kDown, "refused");
  for (const auto& t : state.check_targets()) {
    EXPECT_EQ(t.initial, t.key == id ? abi::Health::kDown : abi::Health::kUnknown);
    if (t.key == id) {
      EXPECT_EQ(t.address, inet_addr("10.0.1.2"));
      EXPECT_EQ(t.port, 80);
    }
  }
}

TEST(State, ReloadKeepsIdsAdminAndHealthOfUnchangedBackends) {
  State state;
  state.apply_config(test::two_services());
  const BackendState kept_before = find(state, "web", "10.0.1.1");
  const uint32_t removed_id = find(state, "web", "10.0.1.3").id;
  state.set_health(kept_before.id, abi::Health::kUp, "HTTP 200");
  state.set_admin("web", inet_addr("10.0.1.1"), 80, abi::AdminState::kDraining);

  Config next = test::two_services();
  next.services[0].backends.pop_back();                                // 10.0.1.3 removed
  next.services[0].backends.push_back(test::backend("10.0.1.9", 80));  // added
  next.services[0].backends[0].weight = 50;                            // attribute change only
  state.apply_config(next);

  const BackendState& kept = find(state, "web", "10.0.1.1");
  EXPECT_EQ(kept.id, kept_before.id);
  EXPECT_EQ(kept.admin, abi::AdminState::kDraining);
  EXPECT_EQ(kept.health, abi::Health::kUp);
  EXPECT_EQ(kept.last_check, "HTTP 200");
  EXPECT_EQ(kept.config.weight, 50u);
  const BackendState& added = find(state, "web", "10.0.1.9");
  EXPECT_EQ(added.health, abi::Health::kUnknown);
  EXPECT_EQ(added.admin, abi::AdminState::kEnabled);
  EXPECT_NE(added.id, removed_id) << "a removed backend's id is not handed out again at once";
  EXPECT_THROW(find(state, "web", "10.0.1.3"), std::runtime_error);
  EXPECT_EQ(state.backend_count(), 5u);
}

TEST(State, BackendMovedToAnotherServiceIsANewBackend) {
  State state;
  state.apply_config(test::two_services());
  const uint32_t old_id = find(state, "web", "10.0.1.1").id;
  Config next = test::two_services();
  next.services[0].port = 8080;  // same name, different VIP:port
  state.apply_config(next);
  EXPECT_NE(find(state, "web", "10.0.1.1").id, old_id);
}

TEST(State, InvalidReloadChangesNothing) {
  State state;
  state.apply_config(test::two_services());
  const uint32_t id = find(state, "web", "10.0.1.1").id;
  Config bad = test::two_services();
  bad.services[0].backends.push_back(test::backend("10.0.1.1", 80));  // duplicate
  EXPECT_THROW(state.apply_config(bad), ConfigError);
  EXPECT_EQ(state.backend_count(), 5u);
  EXPECT_EQ(find(state, "web", "10.0.1.1").id, id);
}

TEST(State, RejectsConfigBeyondAbiLimits) {
  Config config;
  config.path = "big.toml";
  for (int i = 0; i < 65; ++i) {
    config.services.push_back(test::service("s" + std::to_string(i), "10.0.0.1",
                                            static_cast<uint16_t>(1000 + i),
                                            {test::backend("10.0.1.1", 80)}, 65537));
  }
  try {
    State::check_limits(config);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("big.toml"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("table"), std::string::npos);
  }
  Config long_name = test::two_services();
  long_name.services[0].name = std::string(abi::kNameLen, 'n');
  EXPECT_THROW(State::check_limits(long_name), ConfigError);
}

TEST(State, AdminChangeReportsUnknownServiceAndBackend) {
  State state;
  state.apply_config(test::two_services());
  EXPECT_EQ(state.set_admin("nope", inet_addr("10.0.1.1"), 80, abi::AdminState::kDisabled),
            AdminChange::kNoService);
  EXPECT_EQ(state.set_admin("web", inet_addr("10.0.1.1"), 81, abi::AdminState::kDisabled),
            AdminChange::kNoBackend);
  EXPECT_EQ(state.set_admin("web", inet_addr("10.0.1.1"), 80, abi::AdminState::kEnabled),
            AdminChange::kUnchanged);
}

// A restarted control plane recovers from the ctl region and publishes the same ids, admin
// state, health and tables: the dataplane sees no moment where everything is up or down.
TEST(State, RestartResumesIdsAdminHealthAndTablesFromPublishedSnapshot) {
  const std::string instance = test::unique_instance("state");
  Config config = test::two_services();
  Snapshot before;
  {
    State state;
    // Shift the id sequence so that a fresh allocation would not match by accident.
    Config warmup = config;
    warmup.services[0].backends.push_back(test::backend("10.0.9.9", 80));
    state.apply_config(warmup);
    state.apply_config(config);
    state.set_health(find(state, "web", "10.0.1.1").id, abi::Health::kUp, "ok");
    state.set_health(find(state, "web", "10.0.1.2").id, abi::Health::kUp, "ok");
    state.set_health(find(state, "db", "10.0.2.1").id, abi::Health::kDown, "refused");
    state.set_admin("web", inet_addr("10.0.1.2"), 80, abi::AdminState::kDraining);
    TableBuilder builder;
    before = state.build_snapshot(builder);
    Publisher p(instance);
    p.open();
    ASSERT_EQ(p.publish(before), PublishResult::kPublished);
  }
  Publisher p(instance);
  p.open();
  auto recovered = p.recover();
  ASSERT_TRUE(recovered.has_value());
  State state;
  state.seed_from_snapshot(*recovered);
  state.apply_config(config);
  TableBuilder builder;
  Snapshot after = state.build_snapshot(builder);
  ASSERT_EQ(after.backends.size(), before.backends.size());
  for (size_t i = 0; i < after.backends.size(); ++i) {
    EXPECT_EQ(after.backends[i].id, before.backends[i].id);
    EXPECT_EQ(after.backends[i].admin, before.backends[i].admin);
    EXPECT_EQ(after.backends[i].health, before.backends[i].health);
  }
  for (size_t i = 0; i < after.services.size(); ++i) {
    EXPECT_EQ(after.services[i].table, before.services[i].table);
  }
  // A backend added after the restart does not collide with a recovered id.
  Config grown = config;
  grown.services[1].backends.push_back(test::backend("10.0.2.3", 3306));
  state.apply_config(grown);
  std::set<uint32_t> ids;
  for (const auto& s : state.services()) {
    for (const auto& b : s.backends) ids.insert(b.id);
  }
  EXPECT_EQ(ids.size(), 6u);
  Publisher::unlink(instance);
}

}  // namespace
}  // namespace ilb::cp

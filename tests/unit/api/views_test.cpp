#include "controlplane/api/views.h"

#include <gtest/gtest.h>

#include "two_services_fixture.h"

namespace ilb::cp {
namespace {

class ViewsTest : public test::TwoServicesTest {
 protected:
  ViewsTest() : TwoServicesTest("views") {}
};

TEST_F(ViewsTest, WithoutStatRegionDataplaneIsNotRunningAndCountersAreZero) {
  StatReader stat(instance_);
  EXPECT_FALSE(stat.refresh());
  DaemonInfo info;
  info.instance = "test";
  info.config_path = "/etc/ilb.toml";
  info.pid = 7;
  info.uptime_s = 3;
  info.published_gen = 5;
  info.probes = 40;
  info.probes_failed = 2;
  info.hook_configured = true;
  info.hooks_ran = 4;
  info.hooks_failed = 1;
  auto status = status_json(info, state_, stat);
  EXPECT_EQ(status["checks"]["probes"], 40);
  EXPECT_EQ(status["checks"]["failed"], 2);
  EXPECT_EQ(status["hooks"]["ran"], 4);
  EXPECT_EQ(status["hooks"]["failed"], 1);
  EXPECT_EQ(status["instance"], "test");
  EXPECT_EQ(status["config_path"], "/etc/ilb.toml");
  EXPECT_EQ(status["pid"], 7);
  EXPECT_EQ(status["uptime_s"], 3);
  EXPECT_EQ(status["published_gen"], 5);
  EXPECT_EQ(status["dataplane"], nlohmann::json({{"running", false}}));
  EXPECT_EQ(status["services"], 2);
  EXPECT_EQ(status["backends"], 5);
  EXPECT_EQ(status["backends_up"], 1);
  auto services = services_json(state_, stat);
  ASSERT_EQ(services.size(), 2u);
  EXPECT_EQ(services[0]["name"], "web");
  EXPECT_EQ(services[0]["vip"], "10.0.0.100");
  EXPECT_EQ(services[0]["port"], 80);
  EXPECT_EQ(services[0]["protocol"], "tcp");
  EXPECT_EQ(services[0]["scheduler"], "maglev");
  EXPECT_EQ(services[0]["backends"], 3);
  EXPECT_EQ(services[0]["backends_up"], 1);
  EXPECT_EQ(services[0]["active_conns"], 0);
}

TEST_F(ViewsTest, CountersComeFromMatchingStatEntries) {
  test::FakeDataplane dp(instance_);
  auto* h = dp.header();
  h->applied_gen.store(4);
  h->acked_gen.store(4);
  h->rejected_gen.store(3);
  std::strcpy(h->reject_reason, "bad table");
  h->worker_count = 1;
  h->port_count = 2;
  h->drops[static_cast<size_t>(abi::Drop::kNoService)] = 11;
  h->handoff_packets = 12;
  h->handoff_drops = 1;
  h->steered_conns = 13;
  h->unsteered_conns = 2;
  h->untracked_resets = 5;
  h->icmp_errors_translated = 6;
  h->replies_limited = 9;
  h->martian_drops = 7;
  h->mss_clamped = 15;
  h->tsc_hz = 2'000'000'000;
  auto* lcores = dp.section<abi::LcoreStats>(h->lcore_offset);
  lcores[1] = abi::LcoreStats{1, 1, 5, 100, 40, 0, 8, 9, 2};
  auto* ports = dp.section<abi::PortStats>(h->port_offset);
  std::strcpy(ports[0].name, "lan");
  ports[0].rx_packets = 8;
  ports[0].rx_bytes = 800;
  ports[0].rx_errors = 3;
  ports[0].link = static_cast<uint8_t>(abi::Link::kUp);
  ports[0].link_speed_mbps = 25000;
  ports[0].link_full_duplex = 1;
  ports[0].link_changes = 2;
  std::strcpy(ports[1].name, "wan");
  auto* svc = dp.section<abi::ServiceStats>(h->service_offset);
  // Entry 0 is a stale one for another port, entry 1 is db's with valid unset; entry 2 is web's.
  svc[0] = abi::ServiceStats{web_->config.vip, 81, 6, 1, 100, 0, 0, 0, 0, 0, 100};
  svc[1] = abi::ServiceStats{web_->config.vip, 3306, 6, 0, 200, 0, 0, 0, 0, 0, 200};
  svc[2] = abi::ServiceStats{web_->config.vip, 80, 6, 1, 31, 32, 33, 0, 0, 0, 30};
  auto* be = dp.section<abi::BackendStats>(h->backend_offset);
  const uint32_t id = web_->backends[1].id;
  be[id] = abi::BackendStats{41, 40, 42, 43, 44, 45, 2, 0};

  StatReader stat(instance_);
  ASSERT_TRUE(stat.refresh()) << stat.problem();
  auto status = status_json(DaemonInfo{}, state_, stat);
  const auto& d = status["dataplane"];
  EXPECT_EQ(d["running"], true);
  EXPECT_EQ(d["pid"], getpid());
  EXPECT_EQ(d["boot_id"], "0000000000005eed");
  EXPECT_EQ(d["applied_gen"], 4);
  EXPECT_EQ(d["rejected_gen"], 3);
  EXPECT_EQ(d["reject_reason"], "bad table");
  EXPECT_EQ(d["workers"], 1);
  ASSERT_EQ(d["lcores"].size(), 1u);
  EXPECT_EQ(d["lcores"][0]["lcore"], 1);
  EXPECT_EQ(d["lcores"][0]["worker"], true);
  EXPECT_EQ(d["lcores"][0]["loops"], 100);
  EXPECT_EQ(d["lcores"][0]["active_conns"], 2);
  ASSERT_EQ(d["ports"].size(), 2u);
  EXPECT_EQ(d["ports"][0]["name"], "lan");
  EXPECT_EQ(d["ports"][0]["rx_packets"], 8);
  EXPECT_EQ(d["ports"][0]["rx_bytes"], 800);
  EXPECT_EQ(d["ports"][0]["rx_errors"], 3);
  EXPECT_EQ(d["ports"][0]["link"], "up");
  EXPECT_EQ(d["ports"][0]["speed_mbps"], 25000);
  EXPECT_EQ(d["ports"][0]["full_duplex"], true);
  EXPECT_EQ(d["ports"][0]["link_changes"], 2);
  EXPECT_EQ(d["ports"][1]["link"], "unknown") << "a driver that reports no link state";
  EXPECT_EQ(d["ports"][1]["speed_mbps"], 0);
  EXPECT_EQ(d["drops"]["no_service"], 11);
  EXPECT_EQ(d["drops"]["martian"], 7);
  EXPECT_EQ(d["mss_clamped"], 15);
  EXPECT_EQ(d["drops"].size(), static_cast<size_t>(abi::Drop::kCount) + 1);
  EXPECT_EQ(d["handoff"],
            (nlohmann::json{
                {"packets", 12}, {"drops", 1}, {"steered_conns", 13}, {"unsteered_conns", 2}}));
  EXPECT_EQ(
      d["replies"],
      (nlohmann::json{{"untracked_resets", 5}, {"icmp_errors_translated", 6}, {"limited", 9}}));
  EXPECT_EQ(d["lcores"][0]["busy_cycles"], 0);
  EXPECT_EQ(d["tsc_hz"], 2'000'000'000u);
  EXPECT_LT(d["heartbeat_age_ms"].get<uint64_t>(), 2000u);

  auto services = services_json(state_, stat);
  EXPECT_EQ(services[0]["active_conns"], 30);
  EXPECT_EQ(services[0]["new_conns"], 31);
  EXPECT_EQ(services[0]["packets_in"], 32);
  EXPECT_EQ(services[0]["packets_out"], 33);
  EXPECT_EQ(services[1]["active_conns"], 0) << "entries without `valid` are ignored";

  auto backends = backends_json(*web_, stat);
  ASSERT_EQ(backends.size(), 3u);
  EXPECT_EQ(backends[1]["id"], id);
  EXPECT_EQ(backends[1]["address"], "10.0.1.2");
  EXPECT_EQ(backends[1]["port"], 80);
  EXPECT_EQ(backends[1]["new_conns"], 41);
  EXPECT_EQ(backends[1]["active_conns"], 40);
  EXPECT_EQ(backends[1]["packets_in"], 42);
  EXPECT_EQ(backends[1]["bytes_out"], 45);
  EXPECT_EQ(backends[0]["health"], "up");
  EXPECT_EQ(backends[0]["last_check"], "HTTP 200");
  EXPECT_EQ(backends[1]["health"], "unknown");
  EXPECT_EQ(backends[1]["admin"], "enabled");
  EXPECT_EQ(backends[0]["active_conns"], 0);
}

TEST_F(ViewsTest, StaleHeartbeatMeansNotRunning) {
  test::FakeDataplane dp(instance_);
  dp.beat_at(monotonic_ns() - 5'000'000'000ULL);
  StatReader stat(instance_);
  ASSERT_TRUE(stat.refresh());
  auto d = dataplane_json(stat);
  EXPECT_EQ(d["running"], false);
  EXPECT_GE(d["heartbeat_age_ms"].get<uint64_t>(), 5000u);
}

TEST_F(ViewsTest, ReaderFollowsARestartedDataplane) {
  StatReader stat(instance_);
  {
    test::FakeDataplane first(instance_);
    ASSERT_TRUE(stat.refresh());
    EXPECT_EQ(stat.boot_id(), 0x5eedu);
  }  // unlinked: the dataplane stopped
  EXPECT_FALSE(stat.refresh());
  test::FakeDataplane second(instance_);
  second.header()->common.boot_id = 0xb007;
  ASSERT_TRUE(stat.refresh());
  EXPECT_EQ(stat.boot_id(), 0xb007u);
}

}  // namespace
}  // namespace ilb::cp

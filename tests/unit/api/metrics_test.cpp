#include "controlplane/api/metrics.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "tests/unit/common/prometheus_text.h"
#include "two_services_fixture.h"

namespace ilb::cp {
namespace {

using ilb::test::format_problem;

// The value of the sample written exactly as `series` (name and label set), or -1.
double value_of(const std::string& text, const std::string& series) {
  const std::string needle = "\n" + series + " ";
  const size_t at = text.find(needle);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + needle.size()));
}

class MetricsTest : public test::TwoServicesTest {
 protected:
  MetricsTest() : TwoServicesTest("metrics") {}
  void SetUp() override {
    TwoServicesTest::SetUp();
    ASSERT_TRUE(state_.set_health(web_->backends[2].id, abi::Health::kDown, "refused"));
    info_.instance = "test";
    info_.config_path = "/etc/ilb/ilb.toml";
    info_.start_time_unix_s = 1795000000.5;
    info_.published_gen = 5;
    info_.probes = 40;
    info_.probes_failed = 2;
    info_.hooks_queued = 3;
  }

  DaemonInfo info_;
};

constexpr const char* kWeb = R"(service="web",vip="10.0.0.100",port="80",protocol="tcp")";

TEST_F(MetricsTest, WithoutDataplaneExportsTheControlPlaneAndConfiguredState) {
  StatReader stat(instance_);
  ASSERT_FALSE(stat.refresh());
  const std::string text = metrics_text(info_, state_, stat);
  EXPECT_EQ(format_problem(text), "") << text;
  EXPECT_EQ(value_of(text, "ilb_dataplane_up"), 0);
  EXPECT_EQ(
      value_of(text, R"(ilb_controlplane_info{ilb_instance="test",config="/etc/ilb/ilb.toml"})"),
      1);
  EXPECT_EQ(value_of(text, "ilb_controlplane_start_time_seconds"), 1795000000.5);
  EXPECT_EQ(value_of(text, "ilb_published_generation"), 5);
  EXPECT_EQ(value_of(text, "ilb_health_probes_total"), 40);
  EXPECT_EQ(value_of(text, "ilb_health_probes_failed_total"), 2);
  EXPECT_EQ(value_of(text, "ilb_hooks_queued"), 3);
  EXPECT_EQ(value_of(text, "ilb_service_backends{" + std::string(kWeb) + "}"), 3);
  EXPECT_EQ(value_of(text, "ilb_service_backends_up{" + std::string(kWeb) + "}"), 1);
  EXPECT_EQ(value_of(text, R"(ilb_backend_up{service="web",backend="10.0.1.1:80"})"), 1);
  EXPECT_EQ(value_of(text, R"(ilb_backend_up{service="web",backend="10.0.1.3:80"})"), 0);
  EXPECT_EQ(
      value_of(text, R"(ilb_backend_state{service="web",backend="10.0.1.3:80",state="down"})"), 1);
  EXPECT_EQ(
      value_of(text, R"(ilb_backend_state{service="web",backend="10.0.1.2:80",state="unknown"})"),
      1);
  EXPECT_EQ(value_of(text, R"(ilb_backend_weight{service="db",backend="10.0.2.2:3306"})"), 100);
  EXPECT_EQ(text.find("ilb_drops_total"), std::string::npos)
      << "no dataplane counters, not even empty families, without a dataplane";
  EXPECT_EQ(text.find("ilb_service_connections_total"), std::string::npos);
}

TEST_F(MetricsTest, CountersComeFromTheStatRegion) {
  test::FakeDataplane dp(instance_);
  auto* h = dp.header();
  h->applied_gen.store(4);
  h->worker_count = 1;
  h->port_count = 3;
  h->drops[static_cast<size_t>(abi::Drop::kNoService)] = 11;
  h->martian_drops = 7;
  h->handoff_packets = 12;
  h->untracked_resets = 5;
  h->replies_limited = 9;
  h->mss_clamped = 15;
  h->drops[static_cast<size_t>(abi::Drop::kTooBig)] = 16;
  h->tsc_hz = 2'000'000'000;
  auto* lcores = dp.section<abi::LcoreStats>(h->lcore_offset);
  lcores[1] = abi::LcoreStats{1, 1, 5, 100, 40, 3'000'000'000, 8, 9, 2};
  auto* ports = dp.section<abi::PortStats>(h->port_offset);
  std::strcpy(ports[0].name, "lan");
  ports[0].rx_packets = 8;
  ports[0].tx_bytes = 900;
  ports[0].rx_errors = 3;
  ports[0].link = static_cast<uint8_t>(abi::Link::kUp);
  ports[0].link_speed_mbps = 10000;
  ports[0].link_changes = 1;
  std::strcpy(ports[1].name, "wan");
  ports[1].link = static_cast<uint8_t>(abi::Link::kDown);
  std::strcpy(ports[2].name, "odd");
  ports[2].link = 7;  // not a Link value: no claim either way
  auto* svc = dp.section<abi::ServiceStats>(h->service_offset);
  svc[2] = abi::ServiceStats{web_->config.vip, 80, 6, 1, 31, 32, 33, 34, 35, 36, 30};
  auto* be = dp.section<abi::BackendStats>(h->backend_offset);
  be[web_->backends[1].id] = abi::BackendStats{41, 40, 42, 43, 44, 45, 2, 1};

  StatReader stat(instance_);
  ASSERT_TRUE(stat.refresh()) << stat.problem();
  const std::string text = metrics_text(info_, state_, stat);
  EXPECT_EQ(format_problem(text), "") << text;
  EXPECT_EQ(value_of(text, "ilb_dataplane_up"), 1);
  EXPECT_EQ(value_of(text, "ilb_dataplane_applied_generation"), 4);
  EXPECT_EQ(value_of(text, "ilb_dataplane_workers"), 1);
  EXPECT_EQ(value_of(text, R"(ilb_lcore_loops_total{lcore="1",role="worker"})"), 100);
  EXPECT_EQ(value_of(text, R"(ilb_lcore_busy_loops_total{lcore="1",role="worker"})"), 40);
  EXPECT_EQ(value_of(text, R"(ilb_lcore_busy_seconds_total{lcore="1",role="worker"})"), 1.5)
      << "busy cycles over the TSC frequency";
  EXPECT_EQ(value_of(text, R"(ilb_lcore_active_connections{lcore="1",role="worker"})"), 2);
  EXPECT_EQ(value_of(text, R"(ilb_port_rx_packets_total{port="lan"})"), 8);
  EXPECT_EQ(value_of(text, R"(ilb_port_tx_bytes_total{port="lan"})"), 900);
  EXPECT_EQ(value_of(text, R"(ilb_port_rx_errors_total{port="lan"})"), 3);
  EXPECT_EQ(value_of(text, R"(ilb_port_link_changes_total{port="lan"})"), 1);
  EXPECT_EQ(value_of(text, R"(ilb_port_up{port="lan"})"), 1);
  EXPECT_EQ(value_of(text, R"(ilb_port_speed_bytes{port="lan"})"), 1.25e9);
  EXPECT_EQ(value_of(text, R"(ilb_port_up{port="wan"})"), 0);
  EXPECT_EQ(value_of(text, R"(ilb_port_speed_bytes{port="wan"})"), -1) << "no speed, no sample";
  EXPECT_EQ(value_of(text, R"(ilb_port_up{port="odd"})"), -1) << "link state not known";
  EXPECT_EQ(value_of(text, R"(ilb_port_rx_packets_total{port="odd"})"), 0);
  EXPECT_EQ(value_of(text, R"(ilb_drops_total{reason="no_service"})"), 11);
  EXPECT_EQ(value_of(text, R"(ilb_drops_total{reason="martian"})"), 7);
  EXPECT_EQ(value_of(text, R"(ilb_drops_total{reason="conn_table_full"})"), 0);
  EXPECT_EQ(value_of(text, "ilb_handoff_packets_total"), 12);
  EXPECT_EQ(value_of(text, "ilb_untracked_resets_total"), 5);
  EXPECT_EQ(value_of(text, "ilb_replies_limited_total"), 9);
  EXPECT_EQ(value_of(text, "ilb_mss_clamped_total"), 15);
  EXPECT_EQ(value_of(text, R"(ilb_drops_total{reason="too_big"})"), 16);
  const std::string web = "{" + std::string(kWeb) + "}";
  EXPECT_EQ(value_of(text, "ilb_service_active_connections" + web), 30);
  EXPECT_EQ(value_of(text, "ilb_service_connections_total" + web), 31);
  EXPECT_EQ(value_of(text, "ilb_service_in_packets_total" + web), 32);
  EXPECT_EQ(value_of(text, "ilb_service_out_bytes_total" + web), 35);
  EXPECT_EQ(value_of(text, "ilb_service_no_backend_drops_total" + web), 36);
  EXPECT_EQ(
      value_of(
          text,
          R"(ilb_service_active_connections{service="db",vip="10.0.0.100",port="3306",protocol="tcp"})"),
      -1)
      << "a service the dataplane has no counters for gets no counter samples";
  const std::string b = R"({service="web",backend="10.0.1.2:80"})";
  EXPECT_EQ(value_of(text, "ilb_backend_connections_total" + b), 41);
  EXPECT_EQ(value_of(text, "ilb_backend_active_connections" + b), 40);
  EXPECT_EQ(value_of(text, "ilb_backend_out_bytes_total" + b), 45);
  EXPECT_EQ(value_of(text, "ilb_backend_resets_total" + b), 2);
  EXPECT_EQ(value_of(text, "ilb_backend_cut_probes_total" + b), 1);
  EXPECT_EQ(value_of(text, R"(ilb_backend_connections_total{service="web",backend="10.0.1.1:80"})"),
            0);
}

TEST_F(MetricsTest, LabelValuesFromSharedMemoryAreEscaped) {
  test::FakeDataplane dp(instance_);
  auto* h = dp.header();
  h->port_count = 1;
  auto* ports = dp.section<abi::PortStats>(h->port_offset);
  std::strcpy(ports[0].name, "a\"b\\c\nd\xff");
  StatReader stat(instance_);
  ASSERT_TRUE(stat.refresh());
  const std::string text = metrics_text(info_, state_, stat);
  EXPECT_EQ(format_problem(text), "") << text;
  EXPECT_NE(text.find(R"(ilb_port_rx_packets_total{port="a\"b\\c\nd?"} 0)"), std::string::npos)
      << text;
}

TEST_F(MetricsTest, RepeatedLcoresAndPortsInSharedMemoryAreExportedOnce) {
  // Found by fuzz_stat: a stat region claiming more ports than it names gave the empty name
  // twice, and Prometheus refuses a whole scrape for one series written twice.
  test::FakeDataplane dp(instance_);
  auto* h = dp.header();
  h->port_count = 3;
  auto* ports = dp.section<abi::PortStats>(h->port_offset);
  std::strcpy(ports[0].name, "lan");
  ports[0].rx_packets = 1;
  std::strcpy(ports[1].name, "lan");
  ports[1].rx_packets = 2;
  auto* lcores = dp.section<abi::LcoreStats>(h->lcore_offset);
  lcores[1] = abi::LcoreStats{1, 1, 5, 100, 40, 0, 8, 9, 2};
  lcores[2] = abi::LcoreStats{1, 1, 5, 200, 40, 0, 8, 9, 2};
  StatReader stat(instance_);
  ASSERT_TRUE(stat.refresh());
  const std::string text = metrics_text(info_, state_, stat);
  EXPECT_EQ(format_problem(text), "") << text;
  EXPECT_EQ(value_of(text, R"(ilb_port_rx_packets_total{port="lan"})"), 1) << "the first one";
  EXPECT_EQ(value_of(text, R"(ilb_port_rx_packets_total{port=""})"), 0);
  EXPECT_EQ(value_of(text, R"(ilb_lcore_loops_total{lcore="1",role="worker"})"), 100);
}

TEST(MetricsFormatCheck, CatchesBrokenText) {
  const std::string family = "# HELP a_total A.\n# TYPE a_total counter\n";
  EXPECT_EQ(format_problem(family + "a_total{x=\"1\"} 2\n"), "");
  EXPECT_NE(format_problem(family + "a_total{x=\"1} 2\n"), "");
  EXPECT_NE(format_problem(family + "b_total 2\n"), "");
  EXPECT_NE(format_problem(family + "a_total two\n"), "");
  EXPECT_NE(format_problem(family + family), "");
  EXPECT_NE(format_problem("# HELP a A.\n# TYPE a counter\na 1\n"), "");
  EXPECT_NE(format_problem(family + "a_total 1"), "");
  EXPECT_NE(format_problem(family + "a_total{x=\"1\"} 2\na_total{x=\"1\"} 3\n"), "");
}

TEST(MetricsEndpoint, ServesOnlyGetMetrics) {
  auto render = [] { return std::string("ilb_dataplane_up 0\n"); };
  HttpResponse r = metrics_response({"GET", "/metrics", ""}, render);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ilb_dataplane_up 0\n");
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metrics_response({"GET", "/metrics?name[]=x", ""}, render).status, 200);
  EXPECT_EQ(metrics_response({"GET", "/", ""}, render).status, 404);
  EXPECT_EQ(metrics_response({"GET", "/v1/status", ""}, render).status, 404);
  EXPECT_EQ(metrics_response({"POST", "/metrics", "x"}, render).status, 405);
}

}  // namespace
}  // namespace ilb::cp

#include "tools/ilbctl/format.h"

#include <gtest/gtest.h>

namespace ilb::ctl {
namespace {

using nlohmann::json;

TEST(IlbctlFormat, TableAlignsColumnsAndRightAlignsNumbers) {
  std::string t =
      format_table({"NAME", "CONNS", "STATE"}, {{"web", "5", "up"}, {"database", "12345", "down"}});
  EXPECT_EQ(t,
            "NAME      CONNS  STATE\n"
            "web           5  up\n"
            "database  12345  down\n");
}

TEST(IlbctlFormat, EmptyTableIsHeaderOnly) {
  EXPECT_EQ(format_table({"A", "B"}, {}), "A  B\n");
}

TEST(IlbctlFormat, DurationIsCompact) {
  EXPECT_EQ(format_duration(42), "42s");
  EXPECT_EQ(format_duration(307), "5m07s");
  EXPECT_EQ(format_duration(3720), "1h02m");
  EXPECT_EQ(format_duration(3 * 86400 + 4 * 3600 + 5), "3d4h");
}

TEST(IlbctlFormat, BackendsShowAddressPortStatesAndLastCheck) {
  json b = json::array({json{{"id", 3},
                             {"address", "10.0.0.1"},
                             {"port", 3306},
                             {"weight", 100},
                             {"serving_weight", 0},
                             {"state", "draining"},
                             {"drain_left_s", 42},
                             {"held_s", nullptr},
                             {"ramp_pct", nullptr},
                             {"backup", true},
                             {"zone", "eu-1a"},
                             {"admin", "draining"},
                             {"health", "up"},
                             {"last_check", "HTTP 200"},
                             {"active_conns", 7},
                             {"new_conns", 9},
                             {"resets", 5},
                             {"packets_in", 1},
                             {"packets_out", 2},
                             {"bytes_in", 3},
                             {"bytes_out", 4}}});
  const std::string out = format_backends(b);
  const auto nl = out.find('\n');
  ASSERT_NE(nl, std::string::npos);
  const std::string row = out.substr(nl + 1);
  EXPECT_EQ(row,
            " 3  10.0.0.1:3306  backup/eu-1a     100    0  draining (42s left)  draining  up       "
            "    7    9       5        1         2  HTTP 200\n");
}

TEST(IlbctlFormat, BackendsShowRampAndHold) {
  json ramping = {{"id", 1},        {"address", "10.0.0.2"}, {"port", 80},
                  {"weight", 100},  {"serving_weight", 35},  {"state", "ramping"},
                  {"ramp_pct", 35}, {"backup", false},       {"zone", ""}};
  json held = {{"id", 2},       {"address", "10.0.0.3"}, {"port", 80},
               {"weight", 100}, {"serving_weight", 0},   {"state", "held"},
               {"held_s", 9}};
  const std::string out = format_backends(json::array({ramping, held}));
  EXPECT_NE(out.find("ramping 35%"), std::string::npos) << out;
  EXPECT_NE(out.find("primary "), std::string::npos) << out;
  EXPECT_NE(out.find("held (9s)"), std::string::npos) << out;
}

TEST(IlbctlFormat, ServicesShowVipPortAndCounts) {
  json s = json::array({json{{"name", "db"},
                             {"vip", "10.0.0.100"},
                             {"port", 3306},
                             {"protocol", "tcp"},
                             {"scheduler", "maglev"},
                             {"backends", 3},
                             {"backends_up", 2},
                             {"active_conns", 10},
                             {"new_conns", 20},
                             {"packets_in", 30},
                             {"packets_out", 40}}});
  const std::string out = format_services(s);
  EXPECT_NE(out.find("db    10.0.0.100:3306  tcp    maglev"), std::string::npos) << out;
}

TEST(IlbctlFormat, StatusWithoutDataplaneSaysNotRunning) {
  json st{{"instance", "lab"},
          {"config_path", "/etc/ilb/lab.toml"},
          {"pid", 42},
          {"uptime_s", 65},
          {"published_gen", 7},
          {"services", 2},
          {"backends", 5},
          {"backends_up", 4},
          {"dataplane", {{"running", false}}}};
  const std::string out = format_status(st);
  EXPECT_NE(out.find("instance:      lab\n"), std::string::npos) << out;
  EXPECT_NE(out.find("pid 42, up 1m05s, published generation 7"), std::string::npos) << out;
  EXPECT_NE(out.find("2 (5 backends, 4 up)"), std::string::npos) << out;
  EXPECT_NE(out.find("dataplane:     not running"), std::string::npos) << out;
}

TEST(IlbctlFormat, StatusWithDataplaneShowsLcoresPortsAndNonZeroDrops) {
  json dp{{"running", true},
          {"pid", 99},
          {"boot_id", "00000000000000aa"},
          {"applied_gen", 7},
          {"acked_gen", 7},
          {"rejected_gen", 5},
          {"reject_reason", "table entry 3 names backend 999"},
          {"heartbeat_age_ms", 12},
          {"workers", 1},
          {"lcores", json::array({json{{"lcore", 1},
                                       {"worker", true},
                                       {"loops", 1000},
                                       {"busy_loops", 10},
                                       {"rx_packets", 5},
                                       {"tx_packets", 5},
                                       {"active_conns", 2}}})},
          {"ports", json::array({json{{"name", "lan"},
                                      {"link", "up"},
                                      {"speed_mbps", 10000},
                                      {"rx_packets", 5},
                                      {"tx_packets", 6},
                                      {"rx_dropped", 0},
                                      {"rx_errors", 0},
                                      {"tx_errors", 0}},
                                 json{{"name", "wan"},
                                      {"link", "down"},
                                      {"speed_mbps", 0},
                                      {"rx_packets", 0},
                                      {"tx_packets", 0},
                                      {"rx_dropped", 0},
                                      {"rx_errors", 0},
                                      {"tx_errors", 9}}})},
          {"drops", {{"no_service", 3}, {"fragment", 0}}},
          {"replies", {{"untracked_resets", 4}, {"icmp_errors_translated", 1}, {"limited", 2}}}};
  json st{{"instance", "lab"}, {"dataplane", dp}};
  const std::string out = format_status(st);
  EXPECT_NE(out.find("running, pid 99, boot 00000000000000aa, 1 worker(s)"), std::string::npos)
      << out;
  EXPECT_NE(out.find("applied 7, acked 7, rejected 5"), std::string::npos) << out;
  EXPECT_NE(out.find("last reject:   table entry 3 names backend 999"), std::string::npos) << out;
  EXPECT_NE(out.find("heartbeat:     12 ms ago"), std::string::npos) << out;
  EXPECT_NE(out.find("worker"), std::string::npos);
  EXPECT_NE(out.find("lan   up 10000 Mbit/s"), std::string::npos) << out;
  EXPECT_NE(out.find("wan   down"), std::string::npos) << out;
  EXPECT_NE(out.find("no_service"), std::string::npos);
  EXPECT_EQ(out.find("fragment"), std::string::npos) << "zero drop counters are left out";
  EXPECT_NE(out.find("4 resets to untracked TCP, 1 ICMP errors translated, 2 not sent"),
            std::string::npos)
      << out;
}

TEST(IlbctlFormat, AdminAndReloadAnswersAreOneLine) {
  EXPECT_EQ(
      format_admin(json{{"service", "db"}, {"backend", "10.0.0.1:3306"}, {"admin", "draining"}}),
      "db 10.0.0.1:3306: admin draining\n");
  EXPECT_EQ(format_reload(json{{"services", 2},
                               {"backends", 5},
                               {"added", 1},
                               {"removed", 0},
                               {"published_gen", 9},
                               {"publish_pending", false}}),
            "reloaded: 2 services, 5 backends (1 added, 0 removed), published generation 9\n");
}

}  // namespace
}  // namespace ilb::ctl

#include "controlplane/config/loader.h"
#include "tests/unit/common/config_head.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <fstream>
#include <iterator>
#include <string>

#include "tests/unit/config/config_test_util.h"

namespace ilb::cp {
namespace {

using test::error_of;
using test::is_error_at;
using test::kFile;
using test::line_of;

uint32_t ip(const char* text) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, text, &a), 1) << text;
  return a.s_addr;
}

std::optional<ConfigError> cp_error(const std::string& text) {
  return error_of([&] { parse_config(text, kFile); });
}

// A valid file up to and including one complete service; tests append keys to the service's
// last backend or add more sections.
const std::string kHead = test::kConfigHead;

const std::string kWeb = R"(
[[service]]
name = "web"
vip = "10.0.0.100"
port = 80

[[service.backend]]
address = "10.0.0.21"
)";

// The head, then a service whose body (before its first backend) is `body`.
std::string service_with(const std::string& body, const std::string& backends =
                                                      "[[service.backend]]\naddress = "
                                                      "\"10.0.0.31\"\n") {
  return kHead + "\n[[service]]\nname = \"svc\"\nvip = \"10.0.0.110\"\nport = 81\n" + body + "\n" +
         backends;
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(LoadConfig, ReadsEveryKeyOfAFullFile) {
  const std::string path = ILB_TEST_DATA_DIR "/full.toml";
  Config c = load_config_file(path);
  std::ifstream in(path);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  EXPECT_EQ(c.path, path);
  EXPECT_EQ(c.instance, "full");
  EXPECT_EQ(c.controlplane.api_socket, "/tmp/ilb-full.sock");
  EXPECT_EQ(c.controlplane.metrics_listen, "127.0.0.1:9310");
  EXPECT_EQ(c.controlplane.metrics_address, ip("127.0.0.1"));
  EXPECT_EQ(c.controlplane.metrics_port, 9310);
  EXPECT_EQ(c.controlplane.log_level, "debug");

  EXPECT_EQ(c.dataplane.memory_mb, 128u);
  EXPECT_TRUE(c.dataplane.no_huge);
  EXPECT_EQ(c.dataplane.file_prefix, "ilb-full-test");
  EXPECT_EQ(c.dataplane.eal_args, std::vector<std::string>{"--vdev=net_ring0"});
  EXPECT_EQ(c.dataplane.conn_capacity, 4096u);
  EXPECT_EQ(c.dataplane.mbuf_count, 2047u);
  EXPECT_EQ(c.dataplane.rx_desc, 256);
  EXPECT_EQ(c.dataplane.tx_desc, 512);
  EXPECT_EQ(c.dataplane.snat_addresses,
            (std::vector<uint32_t>{ip("10.99.0.101"), ip("10.99.0.102")}));
  EXPECT_EQ(c.dataplane.snat_port_min, 10000);
  EXPECT_EQ(c.dataplane.snat_port_max, 20000);
  EXPECT_EQ(c.dataplane.neighbour_refresh_s, 10u);
  ASSERT_EQ(c.dataplane.static_neighbours.size(), 1u);
  EXPECT_EQ(c.dataplane.static_neighbours[0].address, ip("10.99.0.21"));
  ASSERT_EQ(c.dataplane.ports.size(), 1u);
  EXPECT_EQ(c.dataplane.ports[0].gateway, ip("10.99.0.1"));
  EXPECT_TRUE(c.dataplane.ports[0].has_mac);

  ASSERT_EQ(c.services.size(), 2u);
  const ServiceConfig& web = c.services[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.line, line_of(text, "name = \"web\"") - 1);
  EXPECT_EQ(web.vip, ip("10.99.0.100"));
  EXPECT_EQ(web.port, 80);
  EXPECT_EQ(web.protocol, abi::Protocol::kTcp);
  EXPECT_EQ(web.scheduler, abi::Scheduler::kSource);
  EXPECT_EQ(web.table_size, 251u);
  EXPECT_EQ(web.tcp_syn_timeout_s, 10u);
  EXPECT_EQ(web.tcp_established_timeout_s, 3600u);
  EXPECT_EQ(web.tcp_fin_timeout_s, 120u);
  EXPECT_EQ(web.udp_timeout_s, 45u);
  const HealthCheckConfig& hc = web.health_check;
  EXPECT_EQ(hc.type, CheckType::kHttp);
  EXPECT_EQ(hc.interval_ms, 1500u);
  EXPECT_EQ(hc.timeout_ms, 250u);
  EXPECT_EQ(hc.rise, 4u);
  EXPECT_EQ(hc.fall, 5u);
  EXPECT_EQ(hc.port, 8080);
  EXPECT_EQ(hc.path, "/healthz?full=1");
  EXPECT_EQ(hc.host, "api.internal");
  EXPECT_EQ(hc.expect_status,
            (std::vector<std::pair<uint16_t, uint16_t>>{{204, 204}, {200, 299}, {301, 301}}));
  ASSERT_EQ(web.backends.size(), 2u);
  EXPECT_EQ(web.backends[0].address, ip("10.99.0.21"));
  EXPECT_EQ(web.backends[0].port, 8000);
  EXPECT_EQ(web.backends[0].weight, 0u);
  EXPECT_EQ(web.backends[0].line, line_of(text, "address = \"10.99.0.21\"\nport = 8000") - 1);
  EXPECT_EQ(web.backends[1].address, ip("10.99.0.22"));
  EXPECT_EQ(web.backends[1].port, 80) << "a backend's port defaults to the service's port";
  EXPECT_EQ(web.backends[1].weight, 300u);
  EXPECT_EQ(web.backends[1].line, line_of(text, "address = \"10.99.0.22\"") - 1);

  const ServiceConfig& dns = c.services[1];
  EXPECT_EQ(dns.name, "dns.udp");
  EXPECT_EQ(dns.protocol, abi::Protocol::kUdp);
  EXPECT_EQ(dns.health_check.type, CheckType::kNone);
  ASSERT_EQ(dns.backends.size(), 1u);
  EXPECT_EQ(dns.backends[0].port, 53);
}

TEST(LoadConfig, AppliesDefaults) {
  Config c = parse_config(kHead + kWeb, kFile);
  EXPECT_EQ(c.path, kFile);
  EXPECT_EQ(c.controlplane.api_socket, "/run/ilb/t.sock");
  EXPECT_EQ(c.controlplane.log_level, "info");
  EXPECT_EQ(c.dataplane.file_prefix, "ilb-t");
  ASSERT_EQ(c.services.size(), 1u);
  const ServiceConfig& s = c.services[0];
  EXPECT_EQ(s.protocol, abi::Protocol::kTcp);
  EXPECT_EQ(s.scheduler, abi::Scheduler::kMaglev);
  EXPECT_EQ(s.table_size, 65537u);
  EXPECT_EQ(s.tcp_syn_timeout_s, 30u);
  EXPECT_EQ(s.tcp_established_timeout_s, 350u);
  EXPECT_EQ(s.tcp_fin_timeout_s, 60u);
  EXPECT_EQ(s.udp_timeout_s, 30u);
  EXPECT_EQ(s.health_check.type, CheckType::kTcp);
  EXPECT_EQ(s.health_check.interval_ms, 2000u);
  EXPECT_EQ(s.health_check.timeout_ms, 1000u);
  EXPECT_EQ(s.health_check.rise, 2u);
  EXPECT_EQ(s.health_check.fall, 3u);
  EXPECT_EQ(s.health_check.port, 0);
  EXPECT_EQ(s.line, line_of(kHead + kWeb, "[[service]]"));
  ASSERT_EQ(s.backends.size(), 1u);
  EXPECT_EQ(s.backends[0].port, 80);
  EXPECT_EQ(s.backends[0].weight, 100u);
  EXPECT_EQ(s.backends[0].line, line_of(kHead + kWeb, "[[service.backend]]"));
}

TEST(LoadConfig, MetricsEndpointIsOffByDefaultAndTakesIpv4AndPort) {
  EXPECT_EQ(parse_config(kHead + kWeb, kFile).controlplane.metrics_listen, "");
  Config c = parse_config(kHead + "[controlplane]\nmetrics_listen = \"0.0.0.0:0\"\n" + kWeb, kFile);
  EXPECT_EQ(c.controlplane.metrics_address, 0u);
  EXPECT_EQ(c.controlplane.metrics_port, 0) << "port 0: any free port";
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", ":9310", "localhost:9310", "127.0.0.1:65536",
                          "127.0.0.1:-1", "127.0.0.1:93x", "[::1]:9310", "127.0.0.1:9310 "}) {
    const std::string text = kHead + "[controlplane]\nmetrics_listen = \"" + bad + "\"\n" + kWeb;
    EXPECT_TRUE(is_error_at(cp_error(text), text, "metrics_listen", "controlplane.metrics_listen",
                            "expected \"IPV4:PORT\""))
        << bad;
  }
}

TEST(LoadConfig, DefaultsInstanceAndSocket) {
  Config c = parse_config(replace(kHead, "instance = \"t\"\n", ""), kFile);
  EXPECT_EQ(c.instance, "default");
  EXPECT_EQ(c.controlplane.api_socket, "/run/ilb/default.sock");
  EXPECT_TRUE(c.services.empty()) << "a file with no services is valid";
}

TEST(LoadConfig, DefaultsHttpCheckToStatus200) {
  Config c = parse_config(service_with("[service.health_check]\ntype = \"http\""), kFile);
  const HealthCheckConfig& hc = c.services.at(0).health_check;
  EXPECT_EQ(hc.type, CheckType::kHttp);
  EXPECT_EQ(hc.path, "/");
  EXPECT_EQ(hc.host, "");
  EXPECT_EQ(hc.expect_status, (std::vector<std::pair<uint16_t, uint16_t>>{{200, 200}}));
}

TEST(LoadConfig, ReadsHttpMethodAndExpectedBody) {
  Config c = parse_config(service_with("[service.health_check]\ntype = \"http\"\n"
                                       "method = \"OPTIONS\"\nexpect_body = \"\\\"ready\\\"\""),
                          kFile);
  const HealthCheckConfig& hc = c.services.at(0).health_check;
  EXPECT_EQ(hc.method, "OPTIONS");
  EXPECT_EQ(hc.expect_body, "\"ready\"");
  EXPECT_FALSE(hc.reuse_connection);
  c = parse_config(service_with("[service.health_check]\ntype = \"http\""), kFile);
  EXPECT_EQ(c.services.at(0).health_check.method, "GET");
  EXPECT_EQ(c.services.at(0).health_check.expect_body, "");
  c = parse_config(service_with("[service.health_check]\ntype = \"http\"\nreuse_connection = true"),
                   kFile);
  EXPECT_TRUE(c.services.at(0).health_check.reuse_connection);
  std::string text =
      service_with("[service.health_check]\ntype = \"redis\"\nreuse_connection = true");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "reuse_connection",
                          "service[0].health_check.reuse_connection",
                          "reuse_connection is only valid for type = \"http\" checks"));
}

TEST(LoadConfig, ShortIntervalShortensTheDefaultTimeout) {
  Config c = parse_config(service_with("[service.health_check]\ninterval = \"300ms\""), kFile);
  EXPECT_EQ(c.services.at(0).health_check.interval_ms, 300u);
  EXPECT_EQ(c.services.at(0).health_check.timeout_ms, 150u);
}

TEST(LoadConfig, RejectsSyntaxErrorWithItsPosition) {
  std::string text = kHead + kWeb + "port = [1,\n";
  auto error = cp_error(text);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->file(), kFile);
  EXPECT_NE(std::string(error->what()).find("TOML syntax error"), std::string::npos);
  EXPECT_GE(error->line(), line_of(text, "port = [1,"));
  EXPECT_GT(error->column(), 0u);

  text = kHead + kWeb + "weight = 1 2\n";
  EXPECT_TRUE(is_error_at(cp_error(text), text, "weight = 1 2", "", "TOML syntax error"));
}

TEST(LoadConfig, KeepsSyntaxErrorsOnOneLine) {
  std::string text = kHead + kWeb + "weight = t\n";
  auto error = cp_error(text);
  ASSERT_TRUE(is_error_at(error, text, "weight = t", "", "TOML syntax error"));
  EXPECT_EQ(std::string(error->what()).find('\n'), std::string::npos) << error->what();
}

TEST(LoadConfig, RejectsUnknownKeyInSecondBackend) {
  std::string text = kHead + kWeb + "\n[[service.backend]]\naddress = \"10.0.0.22\"\nwieght = 5\n";
  EXPECT_TRUE(is_error_at(cp_error(text), text, "wieght", "service[0].backend[1].wieght",
                          "unknown key (did you mean \"weight\"?)"));
}

TEST(LoadConfig, RejectsUnknownKeyEverywhere) {
  std::string text = kHead + kWeb + "[servce]\nname = \"x\"\n";
  EXPECT_TRUE(is_error_at(cp_error(text), text, "[servce]", "servce", "unknown key"));
  text = "[controlplane]\napi_sock = \"/x\"\n" + kHead.substr(14) + kWeb;
  EXPECT_TRUE(is_error_at(cp_error(text), text, "api_sock", "controlplane.api_sock",
                          "did you mean \"api_socket\""));
  text = service_with("[service.health_check]\ntype = \"tcp\"\nintreval = \"1s\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "intreval", "service[0].health_check.intreval",
                          "unknown key"));
  text = service_with("vipp = \"10.0.0.1\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "vipp", "service[0].vipp", "unknown key"));
  text = service_with("\"odd key\" = 1");
  EXPECT_TRUE(
      is_error_at(cp_error(text), text, "odd key", "service[0].\"odd key\"", "unknown key"));
}

TEST(LoadConfig, ReportsTheFirstUnknownKeyInFileOrder) {
  std::string text = service_with("zzz = 1\naaa = 2");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "zzz", "service[0].zzz", "unknown key"));
}

TEST(LoadConfig, RejectsWrongType) {
  std::string text =
      service_with("", "[[service.backend]]\naddress = \"10.0.0.31\"\nport = \"80\"\n");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "port = \"80\"", "service[0].backend[0].port",
                          "expected an integer, got a string"));
  text = kHead + replace(kWeb, "port = 80", "port = 80.0");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "port = 80.0", "service[0].port",
                          "expected an integer, got a float"));
  text = service_with("protocol = 6");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "protocol", "service[0].protocol",
                          "expected a string, got an integer"));
  text = service_with("health_check = \"http\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "health_check", "service[0].health_check",
                          "expected a table, got a string"));
  text = kHead + "[service]\nname = \"x\"\n";
  EXPECT_TRUE(is_error_at(cp_error(text), text, "[service]", "service",
                          "expected an array of tables, got a table"));
}

TEST(LoadConfig, RejectsBadIpv4Address) {
  std::string text = kHead + replace(kWeb, "10.0.0.100", "10.0.0.256");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "vip", "service[0].vip",
                          "expected an IPv4 address such as \"10.0.0.1\", got \"10.0.0.256\""));
  text = kHead + replace(kWeb, "10.0.0.21", "10.0.21");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "10.0.21", "service[0].backend[0].address",
                          "got \"10.0.21\""));
  text = kHead + replace(kWeb, "10.0.0.21", "127.0.0.1");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "127.0.0.1", "service[0].backend[0].address",
                          "not a unicast IPv4 address"));
  text = kHead + replace(kWeb, "\"10.0.0.100\"", "167772260");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "vip", "service[0].vip",
                          "expected an IPv4 address string, got an integer"));
}

TEST(LoadConfig, RejectsBadPrefixOfThePort) {
  std::string text = replace(kHead, "10.0.0.2/24", "10.0.0.2/40") + kWeb;
  EXPECT_TRUE(is_error_at(cp_error(text), text, "10.0.0.2/40", "dataplane.port[0].address",
                          "prefix length"));
}

TEST(LoadConfig, RejectsPortZeroOrAbove65535) {
  std::string text = kHead + replace(kWeb, "port = 80", "port = 0");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "port = 0", "service[0].port",
                          "must be between 1 and 65535, got 0"));
  text = service_with("", "[[service.backend]]\naddress = \"10.0.0.31\"\nport = 65536\n");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "port = 65536", "service[0].backend[0].port",
                          "must be between 1 and 65535, got 65536"));
  text = service_with("[service.health_check]\nport = 70000");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "port = 70000", "service[0].health_check.port",
                          "must be between 1 and 65535"));
}

TEST(LoadConfig, RejectsDuplicateVipPortProtocol) {
  std::string second = replace(kWeb, "\"web\"", "\"web2\"");
  second = replace(second, "vip = \"10.0.0.100\"", "vip = \"10.0.0.100\"  # second");
  std::string text = kHead + kWeb + second;
  auto error = cp_error(text);
  EXPECT_TRUE(is_error_at(error, text, "# second", "service[1].vip",
                          "service \"web2\" has the same VIP, port and protocol "
                          "(10.0.0.100:80/tcp) as service \"web\" at line " +
                              std::to_string(line_of(text, "[[service]]"))));
}

TEST(LoadConfig, AcceptsSameVipPortOnAnotherProtocol) {
  std::string text = kHead + kWeb + replace(kWeb, "\"web\"", "\"web-udp\"") + "";
  text = replace(text, "name = \"web-udp\"", "name = \"web-udp\"\nprotocol = \"udp\"");
  Config c = parse_config(text, kFile);
  ASSERT_EQ(c.services.size(), 2u);
  EXPECT_EQ(c.services[1].protocol, abi::Protocol::kUdp);
}

TEST(LoadConfig, RejectsDuplicateBackend) {
  std::string text = kHead + kWeb + "\n[[service.backend]]\naddress = \"10.0.0.22\"\n" +
                     "\n[[service.backend]]\naddress = \"10.0.0.21\"  # again\nport = 80\n";
  EXPECT_TRUE(is_error_at(cp_error(text), text, "# again", "service[0].backend[2].address",
                          "duplicate backend 10.0.0.21:80 (first listed at line"));
}

TEST(LoadConfig, AcceptsSameBackendAddressOnAnotherPort) {
  std::string text = kHead + kWeb + "\n[[service.backend]]\naddress = \"10.0.0.21\"\nport = 81\n";
  EXPECT_EQ(parse_config(text, kFile).services.at(0).backends.size(), 2u);
}

TEST(LoadConfig, RejectsServiceWithoutBackends) {
  std::string text = kHead + "\n[[service]]\nname = \"lonely\"\nvip = \"10.0.0.100\"\nport = 80\n";
  EXPECT_TRUE(
      is_error_at(cp_error(text), text, "[[service]]", "service[0].backend", "missing backends"));
  text = service_with("backend = []", "");
  EXPECT_TRUE(
      is_error_at(cp_error(text), text, "backend = []", "service[0].backend", "missing backends"));
}

TEST(LoadConfig, RejectsDuplicateServiceName) {
  std::string second = replace(kWeb, "10.0.0.100", "10.0.0.102");
  second = replace(second, "name = \"web\"", "name = \"web\"  # second");
  std::string text = kHead + kWeb + second;
  EXPECT_TRUE(is_error_at(cp_error(text), text, "# second", "service[1].name",
                          "duplicate service name \"web\" (first defined at line " +
                              std::to_string(line_of(text, "[[service]]")) + ")"));
}

TEST(LoadConfig, RejectsVipThatIsASnatAddress) {
  std::string text = kHead + replace(kWeb, "10.0.0.100", "10.0.0.101");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "vip = ", "service[0].vip",
                          "VIP 10.0.0.101 is also a SNAT address"));
}

TEST(LoadConfig, RejectsVipThatIsThePortAddress) {
  std::string text = kHead + replace(kWeb, "10.0.0.100", "10.0.0.2");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "vip = ", "service[0].vip",
                          "VIP 10.0.0.2 is the address of port \"lan\""));
}

// The dataplane drops packets from its own addresses, so no backend may have one.
TEST(LoadConfig, RejectsBackendAtOneOfIlbsOwnAddresses) {
  const std::string db = "\n[[service]]\nname = \"db\"\nvip = \"10.0.0.103\"\nport = 3306\n" +
                         std::string("\n[[service.backend]]\naddress = \"10.0.0.31\"\n");
  // A backend at an earlier service's VIP.
  std::string text = kHead + kWeb + replace(db, "10.0.0.31\"", "10.0.0.100\"  # vip");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "# vip", "service[1].backend[0].address",
                          "backend address 10.0.0.100 is the VIP of service \"web\""));
  // A later service's VIP at an earlier backend's address.
  text = kHead + replace(kWeb, "10.0.0.21\"", "10.0.0.103\"") + db;
  EXPECT_TRUE(is_error_at(cp_error(text), text, "vip = \"10.0.0.103", "service[1].vip",
                          "VIP 10.0.0.103 is also the address of a backend (line"));
  for (const char* own : {"10.0.0.101", "10.0.0.2", "10.0.0.100"}) {
    text = kHead + replace(kWeb, "10.0.0.21\"", std::string(own) + "\"  # own");
    EXPECT_TRUE(is_error_at(cp_error(text), text, "# own", "service[0].backend[0].address",
                            "backend address " + std::string(own)))
        << own;
  }
}

TEST(LoadConfig, RejectsMoreServicesThanTheAbiHolds) {
  std::string text = kHead;
  for (uint32_t i = 0; i <= abi::kMaxServices; ++i) {
    text += "[[service]]\nname = \"s" + std::to_string(i) + "\"\nvip = \"10.1." +
            std::to_string(i / 200) + "." + std::to_string(i % 200 + 1) +
            "\"\nport = 80\ntable_size = 7\n[[service.backend]]\naddress = \"10.0.0.21\"\n";
  }
  auto error = cp_error(text);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->key(), "service[256]");
  EXPECT_EQ(error->line(), line_of(text, "name = \"s256\"") - 1);
  EXPECT_NE(std::string(error->what()).find("more than 256 services"), std::string::npos);

  // Exactly the limit is fine.
  text = text.substr(0, text.find("[[service]]\nname = \"s256\""));
  EXPECT_EQ(parse_config(text, kFile).services.size(), abi::kMaxServices);
}

TEST(LoadConfig, RejectsMoreBackendsThanTheAbiHolds) {
  auto backends = [](uint32_t count) {
    std::string text;
    for (uint32_t i = 0; i < count; ++i) {
      text += "[[service.backend]]\naddress = \"10.2." + std::to_string(i / 250) + "." +
              std::to_string(i % 250 + 1) + "\"\n";
    }
    return text;
  };
  // Two services together hold one backend more than the ABI's 4095 usable ids.
  std::string text =
      kHead + kWeb + service_with("", backends(abi::kMaxBackends - 1)).substr(kHead.size());
  auto error = cp_error(text);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->key(), "service[1].backend[4094]");
  EXPECT_NE(std::string(error->what()).find("more than 4095 backends in total"), std::string::npos)
      << error->what();
  EXPECT_EQ(error->line(), line_of(text, "address = \"10.2.16.95\"") - 1);

  text = service_with("", backends(abi::kMaxBackends - 1));
  EXPECT_EQ(parse_config(text, kFile).services.at(0).backends.size(), abi::kMaxBackends - 1);
}

TEST(LoadConfig, RejectsTableSizeThatIsNotPrime) {
  std::string text = service_with("table_size = 65536");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "table_size", "service[0].table_size",
                          "must be a prime number, got 65536"));
  text = service_with("table_size = 65539");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "table_size", "service[0].table_size",
                          "must be between 7 and 65537"));
}

TEST(LoadConfig, RejectsTablesLargerThanASnapshot) {
  // 64 services with the default 65537-entry table exceed kMaxTableEntries by a little.
  std::string text = kHead;
  for (uint32_t i = 0; i < 64; ++i) {
    text += "[[service]]\nname = \"s" + std::to_string(i) + "\"\nvip = \"10.1.0." +
            std::to_string(i + 1) + "\"\nport = 80\n[[service.backend]]\naddress = \"10.0.0.21\"\n";
  }
  auto error = cp_error(text);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->key(), "service[63].table_size");
  EXPECT_EQ(error->line(), line_of(text, "name = \"s63\"") - 1);
  EXPECT_NE(std::string(error->what()).find("entries a snapshot holds"), std::string::npos);
}

TEST(LoadConfig, RejectsBadDuration) {
  for (const char* bad : {"30", "30 s", "1.5s", "s", "-1s", "30sec", "1d"}) {
    std::string text = service_with(std::string("tcp_syn_timeout = \"") + bad + "\"");
    EXPECT_TRUE(is_error_at(cp_error(text), text, "tcp_syn_timeout", "service[0].tcp_syn_timeout",
                            "expected a duration such as \"30s\""))
        << bad;
  }
  std::string text = service_with("udp_timeout = 30");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "udp_timeout", "service[0].udp_timeout",
                          "expected a duration string such as \"30s\", got an integer"));
  text = service_with("tcp_fin_timeout = \"1500ms\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "tcp_fin_timeout", "service[0].tcp_fin_timeout",
                          "whole number of seconds"));
  text = service_with("tcp_established_timeout = \"500ms\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "tcp_established_timeout",
                          "service[0].tcp_established_timeout", "must be between 1s and 168h"));
}

TEST(LoadConfig, RejectsHealthCheckTimingOutOfRange) {
  std::string text = service_with("[service.health_check]\ninterval = \"50ms\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "interval", "service[0].health_check.interval",
                          "must be between 100ms and 1h"));
  text = service_with("[service.health_check]\ninterval = \"1s\"\ntimeout = \"2s\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "timeout", "service[0].health_check.timeout",
                          "timeout (2s) must be shorter than interval (1s)"));
  text = service_with("[service.health_check]\ntimeout = \"5ms\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "timeout", "service[0].health_check.timeout",
                          "must be between 10ms and 1h"));
  text = service_with("[service.health_check]\nrise = 0");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "rise", "service[0].health_check.rise",
                          "must be between 1 and 100"));
  text = service_with("[service.health_check]\nfall = 101");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "fall", "service[0].health_check.fall",
                          "must be between 1 and 100"));
}

TEST(LoadConfig, RejectsHttpKeysOnNonHttpCheck) {
  std::string text = service_with("[service.health_check]\ntype = \"tcp\"\npath = \"/\"");
  EXPECT_TRUE(is_error_at(
      cp_error(text), text, "path", "service[0].health_check.path",
      "path is only valid for type = \"http\" or \"agent\" checks, this one is \"tcp\""));
  text = service_with("[service.health_check]\nhost = \"x\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "host", "service[0].health_check.host",
                          "only valid for type = \"http\" or \"agent\""));
  text = service_with("[service.health_check]\ntype = \"none\"\nexpect_status = [200]");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "expect_status",
                          "service[0].health_check.expect_status", "this one is \"none\""));
}

TEST(LoadConfig, RejectsBadHttpCheckValues) {
  std::string text = service_with("[service.health_check]\ntype = \"http\"\npath = \"health\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "path", "service[0].health_check.path",
                          "must start with '/'"));
  text = service_with("[service.health_check]\ntype = \"http\"\npath = \"/a b\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "path", "service[0].health_check.path",
                          "spaces or control characters"));
  text = service_with("[service.health_check]\ntype = \"http\"\nexpect_status = [200, 600]");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "expect_status",
                          "service[0].health_check.expect_status[1]",
                          "must be between 100 and 599, got 600"));
  text = service_with("[service.health_check]\ntype = \"http\"\nexpect_status = [\"299-200\"]");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "expect_status",
                          "service[0].health_check.expect_status[0]", "is empty"));
  text = service_with("[service.health_check]\ntype = \"http\"\nexpect_status = [\"2xx\"]");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "expect_status",
                          "service[0].health_check.expect_status[0]",
                          "expected an HTTP status range such as \"200-299\", got \"2xx\""));
  text = service_with("[service.health_check]\ntype = \"http\"\nexpect_status = []");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "expect_status",
                          "service[0].health_check.expect_status", "at least one"));
  text = service_with("[service.health_check]\ntype = \"http\"\nmethod = \"get\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "method", "service[0].health_check.method",
                          "expected an HTTP method in capital letters (GET, HEAD, OPTIONS, ...), "
                          "got \"get\""));
  text = service_with("[service.health_check]\ntype = \"http\"\nmethod = \"CONNECT\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "method", "service[0].health_check.method",
                          "CONNECT cannot be"));
  text = service_with("[service.health_check]\ntype = \"http\"\nexpect_body = \"\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "expect_body",
                          "service[0].health_check.expect_body", "1 to 1024 characters"));
  text = service_with(
      "[service.health_check]\ntype = \"http\"\nmethod = \"HEAD\"\nexpect_body = \"ok\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "expect_body",
                          "service[0].health_check.expect_body",
                          "a HEAD response has no body for expect_body to find"));
  text = service_with("[service.health_check]\ntype = \"agent\"\nexpect_body = \"up\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "expect_body",
                          "service[0].health_check.expect_body",
                          "expect_body is only valid for type = \"http\" checks"));
  text = service_with("[service.health_check]\ntype = \"grpc\"");
  EXPECT_TRUE(is_error_at(
      cp_error(text), text, "grpc", "service[0].health_check.type",
      "expected one of none, tcp, http, redis, memcached, mysql, agent, exec, got \"grpc\""));
}

TEST(LoadConfig, ReadsRedisAndMemcachedChecks) {
  std::string text = service_with(
      "[service.health_check]\ntype = \"redis\"\nusername = \"probe\"\npassword = \"s e\"\n"
      "role = \"replica\"");
  Config c = parse_config(text, kFile);
  const HealthCheckConfig& redis = c.services.at(0).health_check;
  EXPECT_EQ(redis.type, CheckType::kRedis);
  EXPECT_EQ(redis.username, "probe");
  EXPECT_EQ(redis.password, "s e");
  EXPECT_EQ(redis.role, "replica");

  text = service_with("[service.health_check]\ntype = \"redis\"");
  c = parse_config(text, kFile);
  EXPECT_EQ(c.services.at(0).health_check.type, CheckType::kRedis);
  EXPECT_EQ(c.services.at(0).health_check.password, "");
  EXPECT_EQ(c.services.at(0).health_check.role, "");

  text = service_with("[service.health_check]\ntype = \"memcached\"\ntimeout = \"200ms\"");
  c = parse_config(text, kFile);
  EXPECT_EQ(c.services.at(0).health_check.type, CheckType::kMemcached);
  EXPECT_EQ(c.services.at(0).health_check.timeout_ms, 200u);
}

TEST(LoadConfig, RejectsRedisKeysOnNonRedisCheck) {
  std::string text = service_with("[service.health_check]\ntype = \"memcached\"\npassword = \"x\"");
  EXPECT_TRUE(
      is_error_at(cp_error(text), text, "password", "service[0].health_check.password",
                  "password is only valid for type = \"redis\" or \"mysql\" checks, this one is "
                  "\"memcached\""));
  text = service_with("[service.health_check]\nrole = \"master\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "role", "service[0].health_check.role",
                          "role is only valid for type = \"redis\" checks, this one is \"tcp\""));
  text = service_with("[service.health_check]\ntype = \"http\"\nusername = \"u\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "username", "service[0].health_check.username",
                          "this one is \"http\""));
  text = service_with("[service.health_check]\ntype = \"redis\"\npath = \"/\"");
  EXPECT_TRUE(is_error_at(
      cp_error(text), text, "path", "service[0].health_check.path",
      "path is only valid for type = \"http\" or \"agent\" checks, this one is \"redis\""));
}

TEST(LoadConfig, RejectsBadRedisCheckValues) {
  std::string text = service_with("[service.health_check]\ntype = \"redis\"\nrole = \"slave\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "slave", "service[0].health_check.role",
                          "expected one of master, replica, got \"slave\""));
  text = service_with("[service.health_check]\ntype = \"redis\"\npassword = \"\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "password", "service[0].health_check.password",
                          "expected 1 to 512 characters"));
  text = service_with("[service.health_check]\ntype = \"redis\"\npassword = \"a\\nb\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "password", "service[0].health_check.password",
                          "without control characters"));
  text = service_with("[service.health_check]\ntype = \"redis\"\nusername = \"u\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "username", "service[0].health_check.username",
                          "username needs a password"));
  text = service_with(
      "[service.health_check]\ntype = \"redis\"\nusername = \"a b\"\npassword = \"x\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "username", "service[0].health_check.username",
                          "without spaces"));
}

TEST(LoadConfig, RejectsBadEnumsAndNames) {
  std::string text = service_with("protocol = \"sctp\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "sctp", "service[0].protocol",
                          "expected \"tcp\" or \"udp\", got \"sctp\""));
  text = service_with("scheduler = \"lc\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "lc", "service[0].scheduler",
                          "expected one of maglev, source, wrr, wlc, got \"lc\""));
  text = kHead + replace(kWeb, "name = \"web\"", "name = \"web/1\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "web/1", "service[0].name", "1 to 31 characters"));
  text = kHead + replace(kWeb, "name = \"web\"", "name = \"" + std::string(32, 'a') + "\"");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "aaaa", "service[0].name", "1 to 31 characters"));
  text = "[controlplane]\nlog_level = \"verbose\"\n" + kHead.substr(14) + kWeb;
  EXPECT_TRUE(is_error_at(cp_error(text), text, "verbose", "controlplane.log_level",
                          "expected one of trace, debug, info, warn, error"));
  text =
      "[controlplane]\napi_socket = \"/" + std::string(120, 's') + "\"\n" + kHead.substr(14) + kWeb;
  EXPECT_TRUE(is_error_at(cp_error(text), text, "api_socket", "controlplane.api_socket",
                          "limited to 103 bytes"));
}

TEST(LoadConfig, RejectsMissingRequiredServiceKeys) {
  std::string text = kHead + replace(kWeb, "vip = \"10.0.0.100\"\n", "");
  EXPECT_TRUE(
      is_error_at(cp_error(text), text, "[[service]]", "service[0].vip", "missing required key"));
  text = kHead + replace(kWeb, "port = 80\n", "");
  EXPECT_TRUE(
      is_error_at(cp_error(text), text, "[[service]]", "service[0].port", "missing required key"));
  text = kHead + replace(kWeb, "address = \"10.0.0.21\"\n", "weight = 1\n");
  EXPECT_TRUE(is_error_at(cp_error(text), text, "[[service.backend]]",
                          "service[0].backend[0].address", "missing required key"));
}

TEST(LoadConfig, ValidatesTheDataplaneSectionToo) {
  std::string text =
      replace(kHead, "[dataplane]\n", "[dataplane]\nworker_lcores = [1, 1]\n") + kWeb;
  EXPECT_TRUE(is_error_at(cp_error(text), text, "worker_lcores", "dataplane.worker_lcores[1]",
                          "lcore 1 is listed twice"));
  text = kWeb;
  EXPECT_TRUE(is_error_at(cp_error(text), text, "\n", "dataplane", "missing required section"));
}

TEST(LoadConfig, NamesAMissingFile) {
  auto error = error_of([] { load_config_file("/nonexistent/ilb.toml"); });
  ASSERT_TRUE(error);
  EXPECT_EQ(std::string(error->what()).rfind("/nonexistent/ilb.toml: cannot open:", 0), 0u)
      << error->what();
}

}  // namespace
}  // namespace ilb::cp

namespace ilb::cp {
namespace {

TEST(LoadLifecycle, ReadsEveryLifecycleKey) {
  const std::string text =
      kHead + "[controlplane]\nzone = \"eu-1a\"\nstate_file = \"/tmp/x.state\"\n" +
      "hook = [\"/usr/local/bin/failover\", \"--notify\"]\nhook_timeout = \"5s\"\n" +
      "\n[[service]]\nname = \"db\"\nvip = \"10.0.0.110\"\nport = 3306\n"
      "drain_timeout = \"60s\"\non_backend_down = \"reset\"\non_all_down = \"fail_open\"\n"
      "untracked_tcp = \"reset\"\n"
      "backup_policy = \"all\"\nslow_start = \"30s\"\nzone_affinity = true\n"
      "zone_min_healthy = 0.75\n"
      "[service.dampening]\nthreshold = 3\nwindow = \"60s\"\nmin_hold = \"5s\"\n"
      "max_hold = \"80s\"\n"
      "[service.health_check]\ntype = \"mysql\"\nuser = \"ilb\"\npassword = \"pw\"\n"
      "max_replication_lag = \"10s\"\n"
      "[[service.backend]]\naddress = \"10.0.0.31\"\nzone = \"eu-1a\"\n"
      "[[service.backend]]\naddress = \"10.0.0.32\"\nbackup = true\nzone = \"eu-1b\"\n"
      "[service.backend.health_check]\nport = 3307\ninterval = \"5s\"\n";
  Config c = parse_config(text, kFile);
  EXPECT_EQ(c.controlplane.zone, "eu-1a");
  EXPECT_EQ(c.controlplane.state_file, "/tmp/x.state");
  EXPECT_EQ(c.controlplane.hook, (std::vector<std::string>{"/usr/local/bin/failover", "--notify"}));
  EXPECT_EQ(c.controlplane.hook_timeout_ms, 5000u);
  const ServiceConfig& s = c.services.at(0);
  EXPECT_EQ(s.drain_timeout_s, 60u);
  EXPECT_EQ(s.on_backend_down, OnBackendDown::kReset);
  EXPECT_EQ(s.on_all_down, OnAllDown::kFailOpen);
  EXPECT_EQ(s.untracked_tcp, UntrackedTcp::kReset);
  EXPECT_EQ(s.backup_policy, BackupPolicy::kAll);
  EXPECT_EQ(s.slow_start_s, 30u);
  EXPECT_TRUE(s.zone_affinity);
  EXPECT_DOUBLE_EQ(s.zone_min_healthy, 0.75);
  EXPECT_EQ(s.dampening.threshold, 3u);
  EXPECT_EQ(s.dampening.window_s, 60u);
  EXPECT_EQ(s.dampening.min_hold_s, 5u);
  EXPECT_EQ(s.dampening.max_hold_s, 80u);
  EXPECT_EQ(s.health_check.type, CheckType::kMysql);
  EXPECT_EQ(s.health_check.max_replication_lag_s, 10u);
  ASSERT_EQ(s.backends.size(), 2u);
  EXPECT_FALSE(s.backends[0].backup);
  EXPECT_FALSE(s.backends[0].health_check.has_value());
  EXPECT_TRUE(s.backends[1].backup);
  EXPECT_EQ(s.backends[1].zone, "eu-1b");
  ASSERT_TRUE(s.backends[1].health_check.has_value());
  EXPECT_EQ(s.backends[1].health_check->port, 3307u);
  EXPECT_EQ(s.backends[1].health_check->interval_ms, 5000u);
  EXPECT_EQ(s.backends[1].health_check->user, "ilb");  // inherited from the service
  EXPECT_EQ(c.controlplane.state_file, "/tmp/x.state");
}

TEST(LoadLifecycle, DefaultsAreSafe) {
  Config c = parse_config(kHead + kWeb, kFile);
  EXPECT_EQ(c.controlplane.state_file, "/var/lib/ilb/t.state");
  EXPECT_TRUE(c.controlplane.hook.empty());
  const ServiceConfig& s = c.services.at(0);
  EXPECT_EQ(s.drain_timeout_s, 300u);
  EXPECT_EQ(s.on_backend_down, OnBackendDown::kKeep);
  EXPECT_EQ(s.on_all_down, OnAllDown::kReject);
  EXPECT_EQ(s.untracked_tcp, UntrackedTcp::kDrop);
  EXPECT_EQ(s.backup_policy, BackupPolicy::kFirst);
  EXPECT_EQ(s.slow_start_s, 0u);
  EXPECT_TRUE(s.dampening.enabled);
  EXPECT_EQ(s.health_check.tcp_mode, TcpMode::kSyn) << "tcp checks never complete a handshake";
}

TEST(LoadConfig, AcceptsEveryScheduler) {
  const std::pair<const char*, abi::Scheduler> cases[] = {{"maglev", abi::Scheduler::kMaglev},
                                                          {"source", abi::Scheduler::kSource},
                                                          {"wrr", abi::Scheduler::kWrr},
                                                          {"wlc", abi::Scheduler::kWlc}};
  for (const auto& [name, scheduler] : cases) {
    Config c = parse_config(service_with(std::string("scheduler = \"") + name + "\""), kFile);
    EXPECT_EQ(c.services.at(0).scheduler, scheduler) << name;
  }
}

TEST(LoadLifecycle, TcpModeConnectIsAccepted) {
  Config c = parse_config(service_with("[service.health_check]\ntype = \"tcp\"\n"
                                       "tcp_mode = \"connect\""),
                          kFile);
  EXPECT_EQ(c.services.at(0).health_check.tcp_mode, TcpMode::kConnect);
}

TEST(LoadLifecycle, RejectsBadLifecycleValuesWithTheirKey) {
  struct Case {
    std::string body;
    std::string key;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"on_all_down = \"panic\"", "service[0].on_all_down",
       "expected one of reject, fail_open, got \"panic\""},
      {"on_backend_down = \"drop\"", "service[0].on_backend_down", "expected one of keep, reset"},
      {"untracked_tcp = \"rst\"", "service[0].untracked_tcp", "expected one of drop, reset"},
      {"protocol = \"udp\"\nuntracked_tcp = \"reset\"", "service[0].untracked_tcp",
       "applies to TCP services only"},
      {"backup_policy = 2", "service[0].backup_policy", "string"},
      {"zone_min_healthy = 1.5", "service[0].zone_min_healthy", "between 0 and 1"},
      {"zone_affinity = true", "service[0].zone_affinity", "set [controlplane] zone"},
      {"slow_start = \"2h\"", "service[0].slow_start", "must be between"},
      {"[service.dampening]\nmin_hold = \"60s\"\nmax_hold = \"10s\"",
       "service[0].dampening.max_hold", "must not be shorter than min_hold"},
      {"[service.dampening]\nthreshold = 0", "service[0].dampening.threshold", "between 1"},
      {"[service.health_check]\ntype = \"exec\"", "service[0].health_check.command",
       "an exec check needs command"},
      {"[service.health_check]\ntype = \"exec\"\ncommand = [\"check.sh\"]",
       "service[0].health_check.command[0]", "absolute path"},
      {"[service.health_check]\ntype = \"mysql\"\npassword = \"x\"",
       "service[0].health_check.password", "password needs a user"},
      {"[service.health_check]\ntype = \"mysql\"\nmax_replication_lag = \"10s\"",
       "service[0].health_check.max_replication_lag", "needs a user"},
      {"[service.health_check]\ntype = \"agent\"\npath = \"/x\"", "service[0].health_check.path",
       "only valid for agent_protocol = \"http\""},
      {"[service.health_check]\ntype = \"agent\"\nagent_protocol = \"udp\"",
       "service[0].health_check.agent_protocol", "expected \"tcp\" or \"http\""},
      {"[service.health_check]\ntype = \"tcp\"\ntcp_mode = \"fin\"",
       "service[0].health_check.tcp_mode", "expected \"syn\" or \"connect\""},
      {"[service.health_check]\ntype = \"http\"\ntcp_mode = \"syn\"",
       "service[0].health_check.tcp_mode", "only valid for type = \"tcp\" checks"},
      {"[service.health_check]\ninterval = \"1s\"\ntimeout = \"1s\"",
       "service[0].health_check.timeout", "must be shorter than interval"},
      {"[service.health_check]\ninterval = \"0s\"", "service[0].health_check.interval",
       "must be between"},
      {"[service.health_check]\ntype = \"grpc\"", "service[0].health_check.type",
       "expected one of"},
  };
  for (const auto& c : cases) {
    const std::string text = service_with(c.body);
    auto error = cp_error(text);
    ASSERT_TRUE(error) << c.body;
    EXPECT_EQ(error->key(), c.key) << c.body << "\n" << error->what();
    EXPECT_NE(std::string(error->what()).find(c.message), std::string::npos) << c.body << "\n"
                                                                             << error->what();
  }
}

TEST(LoadLifecycle, RejectsBadBackendAndControlPlaneKeys) {
  auto error = cp_error(
      service_with("",
                   "[[service.backend]]\naddress = \"10.0.0.31\"\n[service.backend.health_check]\n"
                   "timeout = \"5s\"\n"));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->key(), "service[0].backend[0].health_check.timeout");
  error =
      cp_error(service_with("", "[[service.backend]]\naddress = \"10.0.0.31\"\nzone = \"a b\"\n"));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->key(), "service[0].backend[0].zone");
  error = cp_error(kHead + "[controlplane]\nhook = [\"failover.sh\"]\n" + kWeb);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->key(), "controlplane.hook");
  error = cp_error(kHead + "[controlplane]\nstate_file = \"relative.state\"\n" + kWeb);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->key(), "controlplane.state_file");
}

}  // namespace
}  // namespace ilb::cp

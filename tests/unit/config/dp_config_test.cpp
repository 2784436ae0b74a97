#include "dataplane/config/dp_config.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <string>

#include "tests/unit/config/config_test_util.h"

namespace ilb::dp {
namespace {

using test::error_of;
using test::is_error_at;
using test::kFile;

uint32_t ip(const char* text) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, text, &a), 1) << text;
  return a.s_addr;
}

std::optional<ConfigError> dp_error(const std::string& text) {
  return error_of([&] { parse_dataplane_text(text, kFile); });
}

// A valid [dataplane] section; tests replace one line or append keys to break it.
const std::string kSection = R"([dataplane]
snat_addresses = ["10.0.0.101"]

[[dataplane.port]]
name = "lan"
device = "net_ring0"
address = "10.0.0.2/24"
)";

std::string with_section_key(const std::string& line) {
  return "[dataplane]\n" + line + "\n" + kSection.substr(std::string("[dataplane]\n").size());
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(ParseIpv4, AcceptsDottedQuadsInNetworkOrder) {
  uint32_t out = 0;
  ASSERT_TRUE(parse_ipv4("10.99.0.2", out));
  EXPECT_EQ(out, ip("10.99.0.2"));
  ASSERT_TRUE(parse_ipv4("0.0.0.0", out));
  EXPECT_EQ(out, 0u);
  ASSERT_TRUE(parse_ipv4("255.255.255.255", out));
  EXPECT_EQ(out, 0xffffffffu);
}

TEST(ParseIpv4, RejectsAnythingButFourDecimalOctets) {
  for (const char* bad :
       {"1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4x", "1..3.4", "a.b.c.d",
        "", "1.2.3.", "010.1.1.1", "1.2.3.1000", "1.2.3.4/24", "-1.2.3.4", "0x1.2.3.4"}) {
    uint32_t out = 7;
    EXPECT_FALSE(parse_ipv4(bad, out)) << bad;
    EXPECT_EQ(out, 7u) << "output changed for " << bad;
  }
}

TEST(FormatIpv4, RoundTripsParseIpv4) {
  for (const char* text : {"10.99.0.2", "0.0.0.0", "255.255.255.255", "192.168.1.200"}) {
    uint32_t out = 0;
    ASSERT_TRUE(parse_ipv4(text, out));
    EXPECT_EQ(format_ipv4(out), text);
  }
}

TEST(ParseIpv4Prefix, SplitsAddressAndLength) {
  uint32_t address = 0;
  uint8_t len = 0;
  ASSERT_TRUE(parse_ipv4_prefix("10.99.0.2/24", address, len));
  EXPECT_EQ(address, ip("10.99.0.2"));
  EXPECT_EQ(len, 24);
  for (const char* bad : {"10.99.0.2", "10.99.0.2/", "10.99.0.2/33", "10.99.0.2/024",
                          "10.99.0.2/2x", "10.99.0/24", "10.99.0.2/24/1"}) {
    EXPECT_FALSE(parse_ipv4_prefix(bad, address, len)) << bad;
  }
}

TEST(ParseIpv4Port, SplitsAddressAndPort) {
  uint32_t address = 0;
  uint16_t port = 1;
  ASSERT_TRUE(parse_ipv4_port("10.99.0.2:3306", address, port));
  EXPECT_EQ(address, ip("10.99.0.2"));
  EXPECT_EQ(port, 3306);
  ASSERT_TRUE(parse_ipv4_port("127.0.0.1:0", address, port)) << "callers check the range";
  EXPECT_EQ(port, 0);
  for (const char* bad : {"10.99.0.2", "10.99.0.2:", ":80", "host:80", "10.99.0.2:65536",
                          "10.99.0.2:-1", "10.99.0.2:8x", "10.99.0:80", "[::1]:80"}) {
    EXPECT_FALSE(parse_ipv4_port(bad, address, port)) << bad;
  }
}

TEST(ParseMac, AcceptsColonSeparatedHexPairs) {
  std::array<uint8_t, 6> mac{};
  ASSERT_TRUE(parse_mac("02:00:0A:ff:00:21", mac));
  EXPECT_EQ(mac, (std::array<uint8_t, 6>{0x02, 0x00, 0x0a, 0xff, 0x00, 0x21}));
  EXPECT_EQ(format_mac(mac), "02:00:0a:ff:00:21");
  for (const char* bad : {"02:00:00:00:00", "02:00:00:00:00:21:", "02-00-00-00-00-21",
                          "2:0:0:0:0:21", "02:00:00:00:00:2g", "", "0200.0000.0021"}) {
    EXPECT_FALSE(parse_mac(bad, mac)) << bad;
  }
}

TEST(DataplaneConfig, AppliesDefaults) {
  DataplaneFile file = parse_dataplane_text(kSection, kFile);
  EXPECT_EQ(file.instance, "default");
  const DataplaneConfig& dp = file.dataplane;
  EXPECT_EQ(dp.main_lcore, 0u);
  EXPECT_EQ(dp.worker_lcores, std::vector<uint32_t>{1});
  EXPECT_EQ(dp.memory_mb, 256u);
  EXPECT_FALSE(dp.no_huge);
  EXPECT_EQ(dp.file_prefix, "ilb-default");
  EXPECT_TRUE(dp.eal_args.empty());
  EXPECT_EQ(dp.conn_capacity, 65536u);
  EXPECT_EQ(dp.mbuf_count, 8191u);
  EXPECT_EQ(dp.rx_desc, 1024);
  EXPECT_EQ(dp.tx_desc, 1024);
  EXPECT_EQ(dp.snat_addresses, std::vector<uint32_t>{ip("10.0.0.101")});
  EXPECT_EQ(dp.snat_port_min, 1024);
  EXPECT_EQ(dp.snat_port_max, 65535);
  EXPECT_EQ(dp.neighbour_refresh_s, 30u);
  EXPECT_TRUE(dp.static_neighbours.empty());
  ASSERT_EQ(dp.ports.size(), 1u);
  EXPECT_EQ(dp.ports[0].name, "lan");
  EXPECT_EQ(dp.ports[0].device, "net_ring0");
  EXPECT_EQ(dp.ports[0].address, ip("10.0.0.2"));
  EXPECT_EQ(dp.ports[0].prefix_len, 24);
  EXPECT_EQ(dp.ports[0].gateway, 0u);
  EXPECT_FALSE(dp.ports[0].has_mac);
}

TEST(DataplaneConfig, ReadsEveryKey) {
  const std::string text = R"(instance = "edge-1"
[dataplane]
main_lcore = 2
worker_lcores = [5]
memory_mb = 1024
no_huge = true
file_prefix = "custom_prefix"
eal_args = ["--vdev=net_ring0", "--log-level=7"]
conn_capacity = 1000000
mbuf_count = 65535
rx_desc = 512
tx_desc = 4096
snat_addresses = ["10.0.0.101", "10.0.0.102"]
snat_port_min = 2000
snat_port_max = 3000
neighbour_refresh_s = 60
static_neighbours = [ { address = "10.0.0.1", mac = "02:00:00:00:00:01" },
                      { address = "10.0.0.9", mac = "02:00:00:00:00:09" } ]

[[dataplane.port]]
name = "vpc_0"
device = "0000:00:05.0"
address = "10.0.0.2/16"
gateway = "10.0.200.1"
mac = "02:aa:bb:cc:dd:ee"
)";
  DataplaneFile file = parse_dataplane_text(text, kFile);
  EXPECT_EQ(file.instance, "edge-1");
  const DataplaneConfig& dp = file.dataplane;
  EXPECT_EQ(dp.main_lcore, 2u);
  EXPECT_EQ(dp.worker_lcores, std::vector<uint32_t>{5});
  EXPECT_EQ(dp.memory_mb, 1024u);
  EXPECT_TRUE(dp.no_huge);
  EXPECT_EQ(dp.file_prefix, "custom_prefix");
  EXPECT_EQ(dp.eal_args, (std::vector<std::string>{"--vdev=net_ring0", "--log-level=7"}));
  EXPECT_EQ(dp.conn_capacity, 1000000u);
  EXPECT_EQ(dp.mbuf_count, 65535u);
  EXPECT_EQ(dp.rx_desc, 512);
  EXPECT_EQ(dp.tx_desc, 4096);
  EXPECT_EQ(dp.snat_addresses, (std::vector<uint32_t>{ip("10.0.0.101"), ip("10.0.0.102")}));
  EXPECT_EQ(dp.snat_port_min, 2000);
  EXPECT_EQ(dp.snat_port_max, 3000);
  EXPECT_EQ(dp.neighbour_refresh_s, 60u);
  ASSERT_EQ(dp.static_neighbours.size(), 2u);
  EXPECT_EQ(dp.static_neighbours[1].address, ip("10.0.0.9"));
  EXPECT_EQ(dp.static_neighbours[1].mac, (std::array<uint8_t, 6>{2, 0, 0, 0, 0, 9}));
  ASSERT_EQ(dp.ports.size(), 1u);
  EXPECT_EQ(dp.ports[0].name, "vpc_0");
  EXPECT_EQ(dp.ports[0].device, "0000:00:05.0");
  EXPECT_EQ(dp.ports[0].address, ip("10.0.0.2"));
  EXPECT_EQ(dp.ports[0].prefix_len, 16);
  EXPECT_EQ(dp.ports[0].gateway, ip("10.0.200.1"));
  EXPECT_TRUE(dp.ports[0].has_mac);
  EXPECT_EQ(dp.ports[0].mac, (std::array<uint8_t, 6>{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}));
}

TEST(DataplaneConfig, FilePrefixDefaultsToInstance) {
  DataplaneFile file = parse_dataplane_text("instance = \"lab\"\n" + kSection, kFile);
  EXPECT_EQ(file.dataplane.file_prefix, "ilb-lab");
}

TEST(DataplaneConfig, RejectsSyntaxErrorWithPosition) {
  std::string text = kSection + "memory_mb = = 3\n";
  auto error = dp_error(text);
  ASSERT_TRUE(is_error_at(error, text, "memory_mb = =", "", "TOML syntax error"));
  EXPECT_GT(error->column(), 1u);
}

TEST(DataplaneConfig, RejectsSyntaxErrorOutsideItsSection) {
  std::string text = kSection + "[[service]]\nname = \"web\nvip = \"10.0.0.100\"\n";
  EXPECT_TRUE(is_error_at(dp_error(text), text, "name = \"web", "", "TOML syntax error"));
}

TEST(DataplaneConfig, IgnoresControlPlaneSections) {
  // The dataplane must start even when only the control plane's part of the file is wrong.
  std::string text = kSection + "[[service]]\nname = \"web\"\nbogus = 1\n[controlplane]\nx = 2\n";
  EXPECT_NO_THROW(parse_dataplane_text(text, kFile));
}

TEST(DataplaneConfig, RejectsMissingSection) {
  std::string text = "instance = \"lab\"\n";
  EXPECT_TRUE(is_error_at(dp_error(text), text, "instance", "dataplane",
                          "missing required section [dataplane]"));
}

TEST(DataplaneConfig, RejectsBadInstanceName) {
  std::string text = "instance = \"Lab\"\n" + kSection;
  EXPECT_TRUE(is_error_at(dp_error(text), text, "instance", "instance", "1 to 24 characters"));
  text = "instance = \"a-very-long-instance-name-x\"\n" + kSection;
  EXPECT_TRUE(is_error_at(dp_error(text), text, "instance", "instance", "1 to 24 characters"));
}

TEST(DataplaneConfig, RejectsUnknownKeyWithItsPath) {
  std::string text = kSection + "devce = \"x\"\n";
  EXPECT_TRUE(is_error_at(dp_error(text), text, "devce", "dataplane.port[0].devce",
                          "unknown key (did you mean \"device\"?)"));
  text = with_section_key("memory = 512");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "memory =", "dataplane.memory", "unknown key"));
}

TEST(DataplaneConfig, RejectsUnknownKeyInStaticNeighbour) {
  std::string text = with_section_key(
      "static_neighbours = [{ address = \"10.0.0.1\", mca = \"02:00:00:00:00:01\" }]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "static_neighbours",
                          "dataplane.static_neighbours[0].mca", "unknown key"));
}

TEST(DataplaneConfig, RejectsWrongType) {
  std::string text = with_section_key("memory_mb = \"256\"");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "memory_mb", "dataplane.memory_mb",
                          "expected an integer, got a string"));
  text = with_section_key("no_huge = 1");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "no_huge", "dataplane.no_huge",
                          "expected a boolean, got an integer"));
  text = with_section_key("eal_args = \"--vdev=x\"");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "eal_args", "dataplane.eal_args",
                          "expected an array, got a string"));
}

TEST(DataplaneConfig, RejectsPortSectionThatIsNotAnArray) {
  std::string text = replace(kSection, "[[dataplane.port]]", "[dataplane.port]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "[dataplane.port]", "dataplane.port",
                          "expected an array of tables, got a table"));
}

TEST(DataplaneConfig, RejectsOutOfRangeValues) {
  struct Case {
    const char* line;
    const char* key;
    const char* message;
  };
  for (const Case& c : {
           Case{"memory_mb = 8", "dataplane.memory_mb", "between 16 and 65536, got 8"},
           Case{"conn_capacity = 100", "dataplane.conn_capacity", "between 1024 and 100000000"},
           Case{"mbuf_count = 16777216", "dataplane.mbuf_count", "between 1023 and 16777215"},
           Case{"main_lcore = 64", "dataplane.main_lcore", "between 0 and 63"},
           Case{"neighbour_refresh_s = 0", "dataplane.neighbour_refresh_s", "between 1 and 3600"},
           Case{"snat_port_min = 0", "dataplane.snat_port_min", "between 1 and 65535"},
           Case{"snat_port_max = 65536", "dataplane.snat_port_max", "between 1 and 65535"},
           Case{"rx_desc = 32", "dataplane.rx_desc", "between 64 and 8192"},
       }) {
    std::string text = with_section_key(c.line);
    EXPECT_TRUE(is_error_at(dp_error(text), text, c.line, c.key, c.message)) << c.line;
  }
}

TEST(DataplaneConfig, RejectsDescriptorCountThatIsNotAPowerOfTwo) {
  std::string text = with_section_key("tx_desc = 1000");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "tx_desc", "dataplane.tx_desc",
                          "must be a power of two, got 1000"));
}

TEST(DataplaneConfig, RejectsAWorkerLcoreListedTwice) {
  std::string text = with_section_key("worker_lcores = [1, 2, 1]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "worker_lcores", "dataplane.worker_lcores[2]",
                          "lcore 1 is listed twice"));
}

TEST(DataplaneConfig, RejectsWorkerOnTheMainLcore) {
  std::string text = with_section_key("main_lcore = 3\nworker_lcores = [3]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "worker_lcores", "dataplane.worker_lcores[0]",
                          "is the main_lcore"));
  text = with_section_key("main_lcore = 1");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "main_lcore", "dataplane.main_lcore",
                          "default worker lcore"));
  text = with_section_key("worker_lcores = []");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "worker_lcores", "dataplane.worker_lcores",
                          "at least one worker lcore"));
  text = with_section_key("worker_lcores = [64]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "worker_lcores", "dataplane.worker_lcores[0]",
                          "between 0 and 63"));
}

TEST(DataplaneConfig, RejectsEalArgumentsThatHaveTheirOwnKey) {
  std::string text = with_section_key("eal_args = [\"--vdev=net_ring0\", \"-l\", \"0-3\"]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "eal_args", "dataplane.eal_args[1]",
                          "set from main_lcore and worker_lcores"));
  text = with_section_key("eal_args = [\"--file-prefix=x\"]");
  EXPECT_TRUE(
      is_error_at(dp_error(text), text, "eal_args", "dataplane.eal_args[0]", "file_prefix"));
  text = with_section_key("eal_args = [\"--log-level=8\", \"--no-huge\"]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "eal_args", "dataplane.eal_args[1]", "no_huge"));
}

TEST(DataplaneConfig, RejectsBadFilePrefix) {
  std::string text = with_section_key("file_prefix = \"../x\"");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "file_prefix", "dataplane.file_prefix",
                          "1 to 63 characters"));
}

TEST(DataplaneConfig, RejectsMissingSnatAddresses) {
  std::string text = replace(kSection, "snat_addresses = [\"10.0.0.101\"]\n", "");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "[dataplane]", "dataplane.snat_addresses",
                          "missing required key"));
  text = replace(kSection, "[\"10.0.0.101\"]", "[]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "snat_addresses", "dataplane.snat_addresses",
                          "at least one SNAT address"));
}

TEST(DataplaneConfig, RejectsBadOrDuplicateSnatAddress) {
  std::string text = replace(kSection, "[\"10.0.0.101\"]", "[\"10.0.0.101\", \"10.0.0.1.2\"]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "snat_addresses", "dataplane.snat_addresses[1]",
                          "expected an IPv4 address such as \"10.0.0.1\", got \"10.0.0.1.2\""));
  text = replace(kSection, "[\"10.0.0.101\"]", "[\"10.0.0.101\", \"10.0.0.101\"]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "snat_addresses", "dataplane.snat_addresses[1]",
                          "duplicate SNAT address 10.0.0.101"));
  text = replace(kSection, "[\"10.0.0.101\"]", "[\"224.0.0.1\"]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "snat_addresses", "dataplane.snat_addresses[0]",
                          "not a unicast IPv4 address"));
}

TEST(DataplaneConfig, ReadsWorkerCpusAndIdleSleep) {
  const DataplaneConfig dp =
      parse_dataplane_text(
          with_section_key("worker_lcores = [1, 2]\nworker_cpus = [1, 0]\nidle_sleep_us = 50"),
          kFile)
          .dataplane;
  EXPECT_EQ(dp.worker_lcores, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(dp.worker_cpus, (std::vector<uint32_t>{1, 0}));
  EXPECT_EQ(dp.idle_sleep_us, 50u);
}

TEST(DataplaneConfig, ReadsTheReplyRateLimit) {
  EXPECT_EQ(parse_dataplane_text(with_section_key(""), kFile).dataplane.reply_rate_limit, 10000u);
  EXPECT_EQ(parse_dataplane_text(with_section_key("reply_rate_limit = 0"), kFile)
                .dataplane.reply_rate_limit,
            0u)
      << "0: no limit";
  const std::string text = with_section_key("reply_rate_limit = -1");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "reply_rate_limit", "dataplane.reply_rate_limit",
                          "must be between 0 and 100000000"));
}

TEST(DataplaneConfig, ReadsWhichChecksumsToVerify) {
  EXPECT_FALSE(parse_dataplane_text(with_section_key(""), kFile).dataplane.verify_all_l4_checksums);
  EXPECT_FALSE(
      parse_dataplane_text(with_section_key("verify_l4_checksums = \"tcp_control\""), kFile)
          .dataplane.verify_all_l4_checksums);
  EXPECT_TRUE(parse_dataplane_text(with_section_key("verify_l4_checksums = \"all\""), kFile)
                  .dataplane.verify_all_l4_checksums);
  const std::string text = with_section_key("verify_l4_checksums = \"some\"");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "verify_l4_checksums",
                          "dataplane.verify_l4_checksums",
                          "expected \"tcp_control\" or \"all\", got \"some\""));
}

TEST(DataplaneConfig, RejectsWorkerCpusOfAnotherLength) {
  std::string text = with_section_key("worker_lcores = [1, 2]\nworker_cpus = [1]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "worker_cpus", "dataplane.worker_cpus",
                          "expected one CPU per worker lcore (2), got 1"));
}

TEST(DataplaneConfig, RejectsMoreWorkersThanSnatPorts) {
  std::string text =
      with_section_key("worker_lcores = [1, 2, 3]\nsnat_port_min = 5000\nsnat_port_max = 5001");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "snat_port_max", "dataplane.snat_port_max",
                          "fewer ports than there are workers (3)"));
}

TEST(DataplaneConfig, RejectsSnatPortRangeUpsideDown) {
  std::string text = with_section_key("snat_port_min = 5000\nsnat_port_max = 4000");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "snat_port_min", "dataplane.snat_port_min",
                          "snat_port_min (5000) is larger than snat_port_max (4000)"));
}

TEST(DataplaneConfig, RejectsBadStaticNeighbour) {
  std::string text = with_section_key(
      "static_neighbours = [{ address = \"10.0.0.1\", mac = \"02:00:00:00:00\" }]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "static_neighbours",
                          "dataplane.static_neighbours[0].mac", "expected a MAC address"));
  text = with_section_key("static_neighbours = [{ address = \"10.0.0.1\" }]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "static_neighbours",
                          "dataplane.static_neighbours[0].mac", "missing required key"));
  text = with_section_key(
      "static_neighbours = [{ address = \"10.0.0.1\", mac = \"02:00:00:00:00:01\" },\n"
      "  { address = \"10.0.0.1\", mac = \"02:00:00:00:00:02\" }]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "  { address",
                          "dataplane.static_neighbours[1].address",
                          "duplicate static neighbour 10.0.0.1"));
  text = with_section_key(
      "static_neighbours = [{ address = \"10.0.0.1\", mac = \"01:00:5e:00:00:01\" }]");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "static_neighbours",
                          "dataplane.static_neighbours[0].mac", "not a unicast MAC address"));
}

TEST(DataplaneConfig, RejectsMissingPort) {
  std::string text = "[dataplane]\nsnat_addresses = [\"10.0.0.101\"]\n";
  EXPECT_TRUE(
      is_error_at(dp_error(text), text, "[dataplane]", "dataplane.port", "missing required key"));
}

// A second port for a two-armed dataplane: `extra` is appended to its table.
std::string with_second_port(const std::string& extra) {
  return kSection +
         "\n[[dataplane.port]]\nname = \"back\"\ndevice = \"net_ring1\"\naddress = "
         "\"10.9.0.2/24\"\n" +
         extra;
}

TEST(DataplaneConfig, AcceptsTwoArmed) {
  std::string text = with_second_port("gateway = \"10.9.0.1\"\n");
  DataplaneFile file = parse_dataplane_text(text, kFile);
  ASSERT_EQ(file.dataplane.ports.size(), 2u);
  EXPECT_EQ(file.dataplane.ports[1].name, "back");
  EXPECT_EQ(file.dataplane.ports[1].device, "net_ring1");
  EXPECT_EQ(format_ipv4(file.dataplane.ports[1].gateway), "10.9.0.1");
}

TEST(DataplaneConfig, RejectsPortsThatShareNameDeviceOrSubnet) {
  std::string text = replace(with_second_port(""), "\"back\"", "\"lan\"");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "name = \"lan\"\ndevice = \"net_ring1",
                          "dataplane.port[1].name", "duplicate port name"));
  text = replace(with_second_port(""), "net_ring1", "net_ring0,rx_burst=8");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "device = \"net_ring0,rx",
                          "dataplane.port[1].device",
                          "port \"lan\" already uses device \"net_ring0\""));
  text = replace(with_second_port(""), "10.9.0.2/24", "10.0.0.130/25");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "address = \"10.0.0.130",
                          "dataplane.port[1].address",
                          "subnet 10.0.0.128/25 overlaps port \"lan\"'s 10.0.0.0/24"));
  text = replace(with_second_port(""), "10.9.0.2/24", "10.0.0.2/8");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "address = \"10.0.0.2/8",
                          "dataplane.port[1].address", "overlaps port \"lan\""));
}

TEST(DataplaneConfig, RejectsSecondGateway) {
  std::string text = replace(with_second_port("gateway = \"10.9.0.1\"\n"), "10.0.0.2/24\"\n",
                             "10.0.0.2/24\"\ngateway = \"10.0.0.1\"\n");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "gateway = \"10.9.0.1\"",
                          "dataplane.port[1].gateway",
                          "port \"lan\" has the gateway already; one port at most may have one"));
}

TEST(DataplaneConfig, RejectsTooFewBuffersForEveryQueuesRings) {
  // Two ports x 1 worker x (1024 + 1024) = 4096 buffers in the rings: 4095 is too few.
  std::string text =
      replace(with_second_port(""), "[dataplane]\n", "[dataplane]\nmbuf_count = 4095\n");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "mbuf_count", "dataplane.mbuf_count",
                          "4095 buffers cannot fill the rings: 2 port(s) x 1 worker(s) x (rx_desc "
                          "1024 + tx_desc 1024) = 4096"));
  // Without the key: the default, named at the section.
  text = replace(with_second_port(""), "[dataplane]\n", "[dataplane]\nworker_lcores = [1, 2]\n");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "[dataplane]", "dataplane.mbuf_count",
                          "8191 buffers cannot fill the rings"));
  text = replace(with_second_port(""), "[dataplane]\n", "[dataplane]\nmbuf_count = 4097\n");
  EXPECT_NO_THROW(parse_dataplane_text(text, kFile));
}

TEST(DataplaneConfig, SharingWithTheKernelIsForNetAfXdpPortsOnly) {
  std::string text = replace(kSection, "device = \"net_ring0\"",
                             "device = \"net_af_xdp0,iface=ens5\"\nshare_with_kernel = true");
  EXPECT_TRUE(parse_dataplane_text(text, kFile).dataplane.ports[0].share_with_kernel);
  EXPECT_FALSE(parse_dataplane_text(kSection, kFile).dataplane.ports[0].share_with_kernel);
  text = replace(kSection, "device = \"net_ring0\"",
                 "device = \"net_ring0\"\nshare_with_kernel = true");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "share_with_kernel",
                          "dataplane.port[0].share_with_kernel",
                          "only a net_af_xdp port can share its interface with the kernel, not "
                          "\"net_ring0\""));
  text = replace(kSection, "device = \"net_ring0\"",
                 "device = \"net_af_xdp0,iface=ens5,xdp_prog=/x.o\"\nshare_with_kernel = true");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "share_with_kernel",
                          "dataplane.port[0].share_with_kernel",
                          "the device's own xdp_prog= cannot be combined with it"));
  text = replace(kSection, "device = \"net_ring0\"",
                 "device = \"net_af_xdp0,iface=ens5\"\nshare_with_kernel = \"yes\"");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "share_with_kernel",
                          "dataplane.port[0].share_with_kernel", "expected a boolean"));
  text = replace(kSection, "device = \"net_ring0\"",
                 "device = \"net_af_xdp0,iface=ens5\"\nmac = \"02:00:00:00:00:09\"\n"
                 "share_with_kernel = true");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "share_with_kernel",
                          "dataplane.port[0].share_with_kernel", "keeps its own MAC address"));
}

TEST(DataplaneConfig, PortMtuIsResolvedAtStartUnlessSetAndTakesJumboFrames) {
  EXPECT_EQ(parse_dataplane_text(kSection, kFile).dataplane.ports[0].mtu, 0);
  std::string text =
      replace(kSection, "device = \"net_ring0\"", "device = \"net_ring0\"\nmtu = 9001");
  EXPECT_EQ(parse_dataplane_text(text, kFile).dataplane.ports[0].mtu, 9001);
  for (const char* bad : {"575", "9217", "\"1500\"", "1500.0"}) {
    text = replace(kSection, "device = \"net_ring0\"",
                   std::string("device = \"net_ring0\"\nmtu = ") + bad);
    EXPECT_TRUE(is_error_at(dp_error(text), text, "mtu =", "dataplane.port[0].mtu", "")) << bad;
  }
  text = replace(kSection, "device = \"net_ring0\"", "device = \"net_ring0\"\nmtu = 100000");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "mtu =", "dataplane.port[0].mtu", "576"));
}

TEST(DataplaneConfig, RejectsMoreThanEightPorts) {
  std::string text = replace(kSection, "[dataplane]\n", "[dataplane]\nmbuf_count = 65535\n");
  for (int i = 1; i <= 8; ++i) {
    const std::string n = std::to_string(i);
    text += "[[dataplane.port]]\nname = \"p" + n + "\"\ndevice = \"net_ring" + n +
            "\"\naddress = \"10." + n + ".0.2/24\"\n";
  }
  EXPECT_TRUE(is_error_at(dp_error(text), text, "[[dataplane.port]]\nname = \"p8\"",
                          "dataplane.port[8]", "at most 8 ports are supported"));
}

TEST(DataplaneConfig, RejectsBadPrefix) {
  std::string text = replace(kSection, "10.0.0.2/24", "10.0.0.2/33");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "address = \"10.0.0.", "dataplane.port[0].address",
                          "expected an address with its prefix length"));
  text = replace(kSection, "10.0.0.2/24", "10.0.0.2/0");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "address = \"10.0.0.", "dataplane.port[0].address",
                          "prefix length must be between 1 and 32, got 0"));
  text = replace(kSection, "10.0.0.2/24", "10.0.0.2");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "address = \"10.0.0.", "dataplane.port[0].address",
                          "got \"10.0.0.2\""));
  text = replace(kSection, "10.0.0.2/24", "10.0.0.255/24");
  EXPECT_TRUE(is_error_at(dp_error(text), text, "address = \"10.0.0.", "dataplane.port[0].address",
                          "network or broadcast address"));
}

TEST(DataplaneConfig, RejectsGatewayOutsideThePrefix) {
  std::string text = kSection + "gateway = \"10.0.1.1\"\n";
  EXPECT_TRUE(is_error_at(dp_error(text), text, "gateway", "dataplane.port[0].gateway",
                          "not inside the port's prefix 10.0.0.0/24"));
  text = kSection + "gateway = \"10.0.0.2\"\n";
  EXPECT_TRUE(is_error_at(dp_error(text), text, "gateway", "dataplane.port[0].gateway",
                          "must not be the port's own address"));
}

TEST(DataplaneConfig, RejectsBadPortName) {
  std::string text = replace(kSection, "name = \"lan\"", "name = \"lan 0\"");
  EXPECT_TRUE(
      is_error_at(dp_error(text), text, "name", "dataplane.port[0].name", "1 to 31 characters"));
  text = replace(kSection, "device = \"net_ring0\"", "device = \"\"");
  EXPECT_TRUE(
      is_error_at(dp_error(text), text, "device", "dataplane.port[0].device", "must not be empty"));
}

TEST(LoadDataplaneFile, ReadsAFileFromDisk) {
  DataplaneFile file = load_dataplane_file(ILB_TEST_DATA_DIR "/full.toml");
  EXPECT_EQ(file.instance, "full");
  ASSERT_EQ(file.dataplane.ports.size(), 1u);
  EXPECT_EQ(file.dataplane.ports[0].name, "lan");
}

TEST(LoadDataplaneFile, NamesAMissingFile) {
  const std::string path = ILB_TEST_DATA_DIR "/does-not-exist.toml";
  auto error = error_of([&] { load_dataplane_file(path); });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->file(), path);
  EXPECT_NE(std::string(error->what()).find("cannot open"), std::string::npos) << error->what();
}

}  // namespace
}  // namespace ilb::dp

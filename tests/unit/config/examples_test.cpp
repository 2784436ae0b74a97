// Every example configuration shipped in config/ must load, and config/lab.toml must describe
// exactly the lab that the demo and the end-to-end tests build.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "controlplane/config/loader.h"

namespace ilb::cp {
namespace {

namespace fs = std::filesystem;

uint32_t ip(const char* text) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, text, &a), 1) << text;
  return a.s_addr;
}

std::vector<fs::path> example_files() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(ILB_SOURCE_ROOT "/config")) {
    if (entry.path().extension() == ".toml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(ExampleConfigs, EveryFileLoads) {
  auto files = example_files();
  ASSERT_GE(files.size(), 4u) << "expected lab, mysql-replicas, twemproxy-cache and http-api";
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    Config config;
    try {
      config = load_config_file(file.string());
    } catch (const ConfigError& e) {
      ADD_FAILURE() << e.what();
      continue;
    }
    EXPECT_FALSE(config.services.empty());
    auto dataplane = dp::load_dataplane_file(file.string());
    EXPECT_EQ(dataplane.instance, config.instance);
    EXPECT_EQ(dataplane.dataplane.ports.size(), config.dataplane.ports.size());
  }
}

TEST(ExampleConfigs, LabMatchesTheLabScripts) {
  Config c = load_config_file(ILB_SOURCE_ROOT "/config/lab.toml");
  EXPECT_EQ(c.instance, "lab");
  EXPECT_EQ(c.controlplane.api_socket, "/run/ilb/lab.sock");
  EXPECT_EQ(c.dataplane.main_lcore, 0u);
  EXPECT_EQ(c.dataplane.worker_lcores, std::vector<uint32_t>{1});
  EXPECT_EQ(c.dataplane.memory_mb, 256u);
  EXPECT_EQ(c.dataplane.conn_capacity, 65536u);
  EXPECT_EQ(c.dataplane.file_prefix, "ilb-lab");
  EXPECT_EQ(c.dataplane.snat_addresses, std::vector<uint32_t>{ip("10.99.0.101")});
  ASSERT_EQ(c.dataplane.ports.size(), 1u);
  EXPECT_EQ(c.dataplane.ports[0].name, "lan");
  EXPECT_EQ(c.dataplane.ports[0].device, "net_af_xdp0,iface=dp0");
  EXPECT_EQ(c.dataplane.ports[0].address, ip("10.99.0.2"));
  EXPECT_EQ(c.dataplane.ports[0].prefix_len, 24);
  EXPECT_EQ(c.dataplane.ports[0].gateway, 0u);

  ASSERT_EQ(c.services.size(), 1u);
  const ServiceConfig& web = c.services[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.vip, ip("10.99.0.100"));
  EXPECT_EQ(web.port, 80);
  EXPECT_EQ(web.protocol, abi::Protocol::kTcp);
  EXPECT_EQ(web.scheduler, abi::Scheduler::kMaglev);
  EXPECT_EQ(web.health_check.type, CheckType::kHttp);
  EXPECT_EQ(web.health_check.path, "/");
  EXPECT_EQ(web.health_check.interval_ms, 1000u);
  EXPECT_EQ(web.health_check.timeout_ms, 500u);
  EXPECT_EQ(web.health_check.rise, 2u);
  EXPECT_EQ(web.health_check.fall, 2u);
  ASSERT_EQ(web.backends.size(), 3u);
  const char* addresses[] = {"10.99.0.21", "10.99.0.22", "10.99.0.23"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(web.backends[i].address, ip(addresses[i]));
    EXPECT_EQ(web.backends[i].port, 80);
    EXPECT_EQ(web.backends[i].weight, 100u);
  }
}

}  // namespace
}  // namespace ilb::cp

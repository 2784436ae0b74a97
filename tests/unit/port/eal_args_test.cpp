// The EAL command line built from the [dataplane] section: lcores, with and without a CPU map.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "dataplane/port/port.h"

namespace ilb::dp {
namespace {

std::string after(const std::vector<std::string>& args, const std::string& flag) {
  auto it = std::find(args.begin(), args.end(), flag);
  return it == args.end() || it + 1 == args.end() ? std::string() : *(it + 1);
}

DataplaneConfig two_workers() {
  DataplaneConfig cfg;
  cfg.main_lcore = 0;
  cfg.worker_lcores = {1, 2};
  cfg.file_prefix = "ilb-t";
  cfg.ports.push_back(PortConfig{"lan", "net_af_xdp0,iface=dp0,queue_count=2", 0, 0, 0, false, {}});
  return cfg;
}

TEST(EalArguments, ListsTheMainAndWorkerLcores) {
  const auto args = eal_arguments(two_workers(), "ilb-dataplane");
  EXPECT_EQ(after(args, "-l"), "0,1,2");
  EXPECT_EQ(after(args, "--main-lcore"), "0");
  EXPECT_EQ(after(args, "--vdev"), "net_af_xdp0,iface=dp0,queue_count=2");
  EXPECT_NE(std::find(args.begin(), args.end(), "--no-pci"), args.end());
}

// More workers than spare CPUs: lcore 2 shares CPU 0 with the main lcore.
TEST(EalArguments, WorkerCpusMapLcoresOntoCpus) {
  DataplaneConfig cfg = two_workers();
  cfg.worker_cpus = {1, 0};
  const auto args = eal_arguments(cfg, "ilb-dataplane");
  EXPECT_EQ(after(args, "--lcores"), "0@0,1@1,2@0");
  EXPECT_EQ(std::find(args.begin(), args.end(), "-l"), args.end());
  EXPECT_EQ(after(args, "--main-lcore"), "0");
}

TEST(KernelInterface, IsTheIfaceOfDevicesThatLeaveTheNicToTheKernel) {
  EXPECT_EQ(kernel_interface("net_af_xdp0,iface=dp0"), "dp0");
  EXPECT_EQ(kernel_interface("net_af_xdp0,start_queue=0,iface=ens5,queue_count=2"), "ens5");
  EXPECT_EQ(kernel_interface("net_af_packet1,qpairs=2,iface=eth1"), "eth1");
  EXPECT_EQ(kernel_interface("eth_af_packet0,iface=eth2"), "eth2") << "DPDK's alias";
  EXPECT_EQ(kernel_interface("net_af_xdp0"), "");
  EXPECT_EQ(kernel_interface("net_af_xdp0,queue_count=2"), "");
  EXPECT_EQ(kernel_interface("net_memif0,role=server,iface=x"), "") << "not a kernel NIC";
  EXPECT_EQ(kernel_interface("net_pcap0,iface=eth0"), "") << "net_pcap reports its own link";
  EXPECT_EQ(kernel_interface("0000:00:05.0"), "");
  EXPECT_EQ(kernel_interface("net_af_xdp0,myiface=dp0,iface="), "");
}

}  // namespace
}  // namespace ilb::dp

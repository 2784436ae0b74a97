// The EAL command line built from the [dataplane] section: lcores, with and without a CPU map.
#include <gtest/gtest.h>
#include <rte_mbuf.h>

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

// Several workers on net_af_xdp without queue arguments: one single-queue device per worker,
// each bound to its own queue of the interface (DPDK 22.11 refuses queue_count above the
// interface's "combined" channels, which a veth does not report).
TEST(PortDevices, SplitAnAfXdpPortIntoOneDevicePerQueue) {
  PortConfig p{"lan", "net_af_xdp0,iface=dp0", 0, 0, 0, false, {}};
  EXPECT_EQ(port_devices(p, 1), std::vector<std::string>{"net_af_xdp0,iface=dp0"});
  EXPECT_EQ(port_devices(p, 3),
            (std::vector<std::string>{"net_af_xdp0_q0,iface=dp0,start_queue=0,queue_count=1",
                                      "net_af_xdp0_q1,iface=dp0,start_queue=1,queue_count=1",
                                      "net_af_xdp0_q2,iface=dp0,start_queue=2,queue_count=1"}));
  p.device = "net_af_xdp0";
  EXPECT_EQ(port_devices(p, 2),
            (std::vector<std::string>{"net_af_xdp0_q0,start_queue=0,queue_count=1",
                                      "net_af_xdp0_q1,start_queue=1,queue_count=1"}));

  DataplaneConfig cfg = two_workers();
  cfg.ports[0].device = "net_af_xdp0,iface=dp0";
  const auto args = eal_arguments(cfg, "ilb-dataplane");
  std::vector<std::string> vdevs;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--vdev") vdevs.push_back(args[i + 1]);
  }
  EXPECT_EQ(vdevs, port_devices(cfg.ports[0], 2));
}

TEST(PortDevices, KeepTheDeviceWhereItSaysItsQueuesOrIsNotAfXdp) {
  for (const std::string device :
       {"net_af_xdp0,iface=dp0,queue_count=2", "net_af_xdp0,start_queue=4,iface=dp0",
        "net_af_xdp0,iface=dp0,xdp_prog=/opt/prog.o", "net_af_packet0,iface=dp0,qpairs=2",
        "net_memif0,role=server", "0000:00:05.0"}) {
    const PortConfig p{"lan", device, 0, 0, 0, false, {}};
    EXPECT_EQ(port_devices(p, 2), std::vector<std::string>{device}) << device;
  }
  // ilb's own XDP program is attached once per interface, by one device.
  PortConfig shared{"lan", "net_af_xdp0,iface=dp0", 0, 0, 0, false, {}};
  shared.share_with_kernel = true;
  EXPECT_EQ(port_devices(shared, 2), std::vector<std::string>{shared.device});
}

TEST(PortDevices, NamesMustBeDistinctAndShortEnoughForDpdk) {
  DataplaneConfig cfg = two_workers();
  cfg.ports[0].device = "net_af_xdp0,iface=dp0";
  std::string error;
  EXPECT_TRUE(check_port_devices(cfg, error)) << error;
  // A second port written with a name the first one's split takes.
  cfg.ports.push_back(
      PortConfig{"front", "net_af_xdp0_q1,iface=dp1,queue_count=2", 0, 0, 0, false, {}});
  EXPECT_FALSE(check_port_devices(cfg, error));
  EXPECT_EQ(error,
            "port front: device name net_af_xdp0_q1 is also port lan's (with several workers a "
            "net_af_xdp port NAME uses NAME_q0, NAME_q1, ...)");
  cfg.ports.pop_back();
  cfg.ports[0].device = "net_af_xdp_" + std::string(49, 'x') + ",iface=dp0";
  EXPECT_TRUE(check_port_devices(cfg, error)) << "60 characters, 63 with _q1: " << error;
  cfg.ports[0].device = "net_af_xdp_" + std::string(52, 'x') + ",iface=dp0";
  EXPECT_FALSE(check_port_devices(cfg, error)) << "63 characters fit, but not with _q0";
  EXPECT_NE(error.find("longer than DPDK takes (63 characters)"), std::string::npos) << error;
}

TEST(InterfaceQueues, CountsTheKernelInterfacesQueuePairs) {
  EXPECT_GE(interface_queues("lo"), 1);
  EXPECT_EQ(interface_queues("ilb-no-such-interface"), -1);
  EXPECT_EQ(interface_queues("../lo"), -1);
  EXPECT_EQ(interface_queues(""), -1);
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

PortConfig port_with(const std::string& device, uint16_t mtu) {
  PortConfig p;
  p.name = "p";
  p.device = device;
  p.mtu = mtu;
  return p;
}

TEST(PortMtu, UnsetIs1500UnlessTheKernelInterfaceCarriesLess) {
  PortConfig ring = port_with("net_ring0", 0);
  resolve_default_mtu(ring);
  EXPECT_EQ(ring.mtu, 1500);
  // Loopback's MTU (65536) is larger: 1500 still.
  PortConfig lo = port_with("net_af_packet0,iface=lo", 0);
  resolve_default_mtu(lo);
  EXPECT_EQ(lo.mtu, 1500);
  PortConfig gone = port_with("net_af_xdp0,iface=no-such-iface", 0);
  resolve_default_mtu(gone);
  EXPECT_EQ(gone.mtu, 1500);
  PortConfig set = port_with("net_af_xdp0,iface=lo", 9000);
  resolve_default_mtu(set);
  EXPECT_EQ(set.mtu, 9000) << "a configured mtu is kept";
  EXPECT_GT(interface_mtu("lo"), 1500);
  EXPECT_EQ(interface_mtu("../lo"), -1);
}

TEST(PortMtu, BuffersHoldAWholeFrameOfEveryPort) {
  DataplaneConfig cfg;
  cfg.ports = {port_with("net_af_xdp0,iface=dp0", 1500), port_with("0000:00:05.0", 1500)};
  EXPECT_EQ(mbuf_buffer_size(cfg), uint32_t{RTE_MBUF_DEFAULT_BUF_SIZE}) << "the default fits";
  std::string error;
  EXPECT_TRUE(check_mbuf_buffer_size(cfg, mbuf_buffer_size(cfg), error)) << error;
  // net_af_xdp: the kernel's 256 bytes of headroom come out of the buffer.
  cfg.ports = {port_with("net_af_xdp0,iface=dp0", 3000)};
  EXPECT_GE(mbuf_buffer_size(cfg), RTE_PKTMBUF_HEADROOM + 256u + 3000 + 14);
  EXPECT_TRUE(check_mbuf_buffer_size(cfg, mbuf_buffer_size(cfg), error)) << error;
  // A jumbo port elsewhere makes net_af_xdp's buffers larger than a page: refused.
  cfg.ports.push_back(port_with("0000:00:05.0", 9000));
  EXPECT_GE(mbuf_buffer_size(cfg), RTE_PKTMBUF_HEADROOM + 9000u + 14);
  EXPECT_FALSE(check_mbuf_buffer_size(cfg, mbuf_buffer_size(cfg), error));
  EXPECT_NE(error.find("net_af_xdp needs every buffer within one"), std::string::npos) << error;
  cfg.ports.erase(cfg.ports.begin());
  EXPECT_TRUE(check_mbuf_buffer_size(cfg, mbuf_buffer_size(cfg), error)) << error;
}

}  // namespace
}  // namespace ilb::dp

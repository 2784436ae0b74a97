// EAL command line and port set-up from the [dataplane] section. A port is any DPDK device: a PCI
// address is passed with -a, anything else is a virtual device (--vdev): net_af_xdp, net_af_packet,
// net_pcap, net_memif, net_ring... The dataplane gives each worker one RX and one TX queue.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/config/dp_config.h"

struct rte_mempool;

namespace ilb::dp {

struct PortInfo;
struct PortQueue;
class Rss;

bool is_pci_address(const std::string& device);

// The kernel interface behind a device that keeps its NIC with the kernel (net_af_xdp and
// net_af_packet or its alias eth_af_packet, their `iface=` argument), or "" for any other device.
// Such drivers report a fixed link (up once started, a nominal speed), so the interface's own state
// is what tells whether the link is up.
std::string kernel_interface(const std::string& device);

// The MTU of kernel interface `iface` (/sys/class/net/IFACE/mtu), or -1 when it cannot be read.
int interface_mtu(const std::string& iface);

// A port without `mtu` in its configuration (0) carries 1500 bytes, or its kernel interface's
// MTU where that is smaller (net_af_xdp, net_af_packet on a 1460- or 1450-byte network).
void resolve_default_mtu(PortConfig& port);

// The mbuf buffer size (headroom included) a pool needs to receive one whole frame of every
// port in one buffer: DPDK's default, or more for ports with a larger `mtu`.
uint32_t mbuf_buffer_size(const DataplaneConfig& cfg);
// Whether buffers of `size` bytes work for every port (net_af_xdp: within a page); false with
// `error` set otherwise.
bool check_mbuf_buffer_size(const DataplaneConfig& cfg, uint32_t size, std::string& error);

// The DPDK devices of port `p` for `workers` workers, as EAL is given them: the device itself;
// or, for net_af_xdp with several workers and neither start_queue= nor queue_count= of its own,
// one device per queue (NAME_qI,ARGS,start_queue=I,queue_count=1: an AF_XDP socket on queue I of
// the same interface, polled by worker I). DPDK 22.11's net_af_xdp takes queue_count only up to
// the interface's "combined" channels, which a veth (and some virtual NICs) does not report at
// all; single-queue devices need no such count, and work the same on a NIC that reports one.
std::vector<std::string> port_devices(const PortConfig& p, uint32_t workers);

// Whether the DPDK device names of all ports (port_devices() with the configured workers) are
// distinct and short enough for DPDK (RTE_DEV_NAME_MAX_LEN); false with `error` naming the
// port otherwise. The configuration's own check sees only the names as written.
bool check_port_devices(const DataplaneConfig& cfg, std::string& error);

// How many queue pairs kernel interface `iface` has (the fewer of its RX and TX queues in
// /sys/class/net/IFACE/queues), or -1.
int interface_queues(const std::string& iface);

// The EAL arguments (argv[0] included) for this configuration.
std::vector<std::string> eal_arguments(const DataplaneConfig& cfg, const std::string& argv0);

// Configures and starts `port`'s devices (port_devices()) with `queues` RX and TX queues in all,
// one per worker. Fills `out` (its first device's port id, the MAC, addresses) and `queues_out`
// (where worker I receives and sends: entry I). On failure every device of the port is closed
// again and `error` says why. A port's devices are closed together: closing one net_af_xdp
// device removes the XDP program from the interface, which its other devices need too.
bool start_port(const PortConfig& port, uint16_t queues, uint16_t rx_desc, uint16_t tx_desc,
                rte_mempool* pool, PortInfo& out, std::vector<PortQueue>& queues_out,
                std::string& error);

// Reads the port's RSS key and redirection table into `out`, for choosing SNAT ports whose
// replies the NIC delivers to a given queue. `ports_hashed_tcp` / `ports_hashed_udp` say whether
// the device hashes TCP / UDP ports (otherwise no port choice steers). False with `why` set when
// the device does not say (no RSS, or the driver cannot report it): workers then rely on
// hand-over rings alone.
bool read_rss(uint16_t port_id, Rss& out, bool& ports_hashed_tcp, bool& ports_hashed_udp,
              std::string& why);

void stop_port(uint16_t port_id);

}  // namespace ilb::dp

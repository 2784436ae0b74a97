#include "dataplane/port/port.h"

#include <rte_ethdev.h>
#include <rte_lcore.h>

#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include "dataplane/port/rss.h"
#include "dataplane/worker/worker.h"

namespace ilb::dp {

bool is_pci_address(const std::string& device) {
  // [DDDD:]BB:DD.F with hex digits: what EAL's -a accepts for a PCI device.
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  const size_t n = device.size();
  if (n != 7 && n != 12) return false;
  const std::string tail = device.substr(n - 7);  // BB:DD.F
  if (n == 12 && (device[4] != ':' || !std::all_of(device.begin(), device.begin() + 4, hex))) {
    return false;
  }
  return hex(tail[0]) && hex(tail[1]) && tail[2] == ':' && hex(tail[3]) && hex(tail[4]) &&
         tail[5] == '.' && tail[6] >= '0' && tail[6] <= '7';
}

std::vector<std::string> eal_arguments(const DataplaneConfig& cfg, const std::string& argv0) {
  std::vector<std::string> args{argv0};
  std::string lcores = std::to_string(cfg.main_lcore);
  if (cfg.worker_cpus.empty()) {
    for (uint32_t l : cfg.worker_lcores) lcores += "," + std::to_string(l);
  } else {
    // EAL's lcore@cpu form: lcore ids stay the configured ones, threads go to the given CPUs.
    lcores += "@" + std::to_string(cfg.main_lcore);
    for (size_t i = 0; i < cfg.worker_lcores.size(); ++i) {
      lcores +=
          "," + std::to_string(cfg.worker_lcores[i]) + "@" + std::to_string(cfg.worker_cpus.at(i));
    }
  }
  args.insert(args.end(), {cfg.worker_cpus.empty() ? "-l" : "--lcores", lcores, "--main-lcore",
                           std::to_string(cfg.main_lcore), "--file-prefix", cfg.file_prefix, "-m",
                           std::to_string(cfg.memory_mb)});
  if (cfg.no_huge) args.push_back("--no-huge");
  bool any_pci = false;
  const auto workers = static_cast<uint32_t>(cfg.worker_lcores.size());
  for (const PortConfig& p : cfg.ports) {
    if (is_pci_address(p.device)) {
      any_pci = true;
      args.insert(args.end(), {"-a", p.device});
      continue;
    }
    for (const std::string& device : port_devices(p, workers)) {
      args.insert(args.end(), {"--vdev", device});
    }
  }
  if (!any_pci) args.push_back("--no-pci");
  args.insert(args.end(), cfg.eal_args.begin(), cfg.eal_args.end());
  return args;
}

namespace {

// Whether device string `device` (NAME,KEY=VALUE,...) has argument `key`; its value in `value`.
bool device_arg(const std::string& device, std::string_view key, std::string& value) {
  size_t at = device.find(',');
  while (at != std::string::npos) {
    const size_t next = device.find(',', at + 1);
    const std::string_view arg = std::string_view(device).substr(
        at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    if (arg.size() > key.size() && arg.starts_with(key) && arg[key.size()] == '=') {
      value = std::string(arg.substr(key.size() + 1));
      return true;
    }
    at = next;
  }
  return false;
}

}  // namespace

std::string kernel_interface(const std::string& device) {
  const std::string_view driver = std::string_view(device).substr(0, device.find(','));
  if (!(driver.starts_with("net_af_xdp") || driver.starts_with("net_af_packet") ||
        driver.starts_with("eth_af_packet"))) {
    return "";
  }
  std::string iface;
  device_arg(device, "iface", iface);
  return iface;
}

namespace {

// Whether `iface` can name a directory of /sys/class/net (and nothing outside it).
bool plain_interface_name(const std::string& iface) {
  return !iface.empty() && iface.find('/') == std::string::npos && !iface.starts_with(".");
}

}  // namespace

int interface_mtu(const std::string& iface) {
  if (!plain_interface_name(iface)) return -1;
  std::ifstream in("/sys/class/net/" + iface + "/mtu");
  int mtu = -1;
  if (!(in >> mtu) || mtu <= 0) return -1;
  return mtu;
}

int interface_queues(const std::string& iface) {
  if (!plain_interface_name(iface)) return -1;
  std::error_code ec;
  std::filesystem::directory_iterator it("/sys/class/net/" + iface + "/queues", ec);
  if (ec) return -1;
  int rx = 0;
  int tx = 0;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("rx-")) ++rx;
    if (name.starts_with("tx-")) ++tx;
  }
  return std::min(rx, tx);
}

namespace {

// The kernel's headroom in front of every frame it writes into an AF_XDP buffer (the kernel's
// XDP_PACKET_HEADROOM): net_af_xdp's buffers are the mbufs', so it comes out of their room.
constexpr uint32_t kXdpHeadroom = 256;

bool is_af_xdp(const PortConfig& p) {
  return device_name(p.device).starts_with("net_af_xdp");
}

}  // namespace

std::vector<std::string> port_devices(const PortConfig& p, uint32_t workers) {
  std::string unused;
  // Not split: a device that names its queues, or one whose XDP program is its own (ilb's, with
  // share_with_kernel, or the operator's xdp_prog=): DPDK attaches that program once per device,
  // and an interface takes one.
  if (workers <= 1 || !is_af_xdp(p) || p.share_with_kernel ||
      device_arg(p.device, "start_queue", unused) || device_arg(p.device, "queue_count", unused) ||
      device_arg(p.device, "xdp_prog", unused)) {
    return {p.device};
  }
  const std::string name = device_name(p.device);
  const std::string args = p.device.substr(name.size());
  std::vector<std::string> devices;
  for (uint32_t q = 0; q < workers; ++q) {
    const std::string n = std::to_string(q);
    devices.push_back(name + "_q" + n + args + ",start_queue=" + n + ",queue_count=1");
  }
  return devices;
}

bool check_port_devices(const DataplaneConfig& cfg, std::string& error) {
  const auto workers = static_cast<uint32_t>(cfg.worker_lcores.size());
  std::vector<std::pair<std::string, std::string>> seen;  // device name, port
  for (const PortConfig& p : cfg.ports) {
    for (const std::string& device : port_devices(p, workers)) {
      const std::string name = device_name(device);
      if (name.size() >= RTE_DEV_NAME_MAX_LEN) {
        error = "port " + p.name + ": device name " + name + " is longer than DPDK takes (" +
                std::to_string(RTE_DEV_NAME_MAX_LEN - 1) + " characters)";
        return false;
      }
      for (const auto& [other, port] : seen) {
        if (other == name) {
          error = "port " + p.name + ": device name " + name + " is also port " + port +
                  "'s (with several workers a net_af_xdp port NAME uses NAME_q0, NAME_q1, ...)";
          return false;
        }
      }
      seen.emplace_back(name, p.name);
    }
  }
  return true;
}

void resolve_default_mtu(PortConfig& port) {
  if (port.mtu != 0) return;
  port.mtu = 1500;
  const int iface_mtu = interface_mtu(kernel_interface(port.device));
  if (iface_mtu >= kMinPortMtu && iface_mtu < 1500) port.mtu = static_cast<uint16_t>(iface_mtu);
}

uint32_t mbuf_buffer_size(const DataplaneConfig& cfg) {
  uint32_t needed = RTE_MBUF_DEFAULT_BUF_SIZE;
  for (const PortConfig& p : cfg.ports) {
    // The Ethernet header, one VLAN tag and the FCS some drivers leave in the buffer; PCI
    // drivers round the room they give the NIC down (to 128 bytes, some to 1 KiB), and split a
    // frame that does not fit over several buffers, which the workers drop.
    const uint32_t frame = uint32_t{p.mtu} + RTE_ETHER_HDR_LEN + 2 * RTE_VLAN_HLEN;
    const uint32_t room =
        is_af_xdp(p) ? RTE_ALIGN_CEIL(kXdpHeadroom + frame, 64) : RTE_ALIGN_CEIL(frame, 1024);
    needed = std::max(needed, RTE_PKTMBUF_HEADROOM + room);
  }
  return needed;
}

bool check_mbuf_buffer_size(const DataplaneConfig& cfg, uint32_t size, std::string& error) {
  if (size > UINT16_MAX) {
    error = "buffers of " + std::to_string(size) + " bytes are more than DPDK takes: lower mtu";
    return false;
  }
  // net_af_xdp hands the kernel the mbufs themselves: each must lie within one page.
  const uint32_t element = size + sizeof(rte_mbuf) + 64;  // the mempool's object header
  const auto page = static_cast<uint32_t>(getpagesize());
  for (const PortConfig& p : cfg.ports) {
    if (is_af_xdp(p) && element > page) {
      error = "port " + p.name + ": net_af_xdp needs every buffer within one " +
              std::to_string(page) + "-byte page, but the largest mtu (" +
              std::to_string(size - RTE_PKTMBUF_HEADROOM) + " bytes of buffer room) makes them " +
              std::to_string(element) +
              ": lower mtu on the ports (net_af_xdp shares its buffers with every port)";
      return false;
    }
  }
  return true;
}

namespace {

// Configures and starts DPDK device `device` (one of `port`'s) with `queues` RX and TX queues;
// its port id and MAC address (the configured one where the device keeps its own) in `id_out`
// and `mac_out`. A device that fails is closed again.
bool start_device(const PortConfig& port, const std::string& device, uint16_t queues,
                  uint16_t rx_desc, uint16_t tx_desc, rte_mempool* pool, uint16_t& id_out,
                  uint8_t* mac_out, std::string& error) {
  const std::string name = device_name(device);
  uint16_t id = 0;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0) {
    error = "port " + port.name + ": no DPDK device named " + name + " (probe failed?)";
    return false;
  }
  // A device that fails half-way is closed again: net_af_xdp would otherwise leave its XDP
  // program on the interface.
  struct CloseOnFailure {
    uint16_t id;
    bool armed = true;
    ~CloseOnFailure() {
      if (armed) rte_eth_dev_close(id);
    }
  } guard{id};
  rte_eth_dev_info info{};
  int rc = rte_eth_dev_info_get(id, &info);
  if (rc != 0) {
    error = "port " + port.name + ": rte_eth_dev_info_get: " + rte_strerror(-rc);
    return false;
  }
  if (info.max_rx_queues < queues || info.max_tx_queues < queues) {
    error = "port " + port.name + ": device offers " + std::to_string(info.max_rx_queues) +
            " RX / " + std::to_string(info.max_tx_queues) + " TX queues, " +
            std::to_string(queues) + " needed (one per worker)";
    return false;
  }
  // What DPDK itself checks the MTU against: the driver's largest MTU, and its largest frame
  // less the overhead it counts (DPDK's own rule: the difference of the two where the driver
  // gives both, else the Ethernet header and FCS).
  const uint32_t overhead = info.max_mtu != UINT16_MAX && info.max_rx_pktlen > info.max_mtu
                                ? info.max_rx_pktlen - info.max_mtu
                                : RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN;
  const uint32_t largest = std::min<uint32_t>(
      info.max_mtu, info.max_rx_pktlen > overhead ? info.max_rx_pktlen - overhead : 0);
  if (port.mtu < info.min_mtu || port.mtu > largest) {
    error = "port " + port.name + ": mtu " + std::to_string(port.mtu) + " is outside what " + name +
            " takes (" + std::to_string(info.min_mtu) + " to " + std::to_string(largest) + ")";
    return false;
  }
  // A kernel interface carries no more than its own MTU, whatever the port is told.
  const std::string iface = kernel_interface(port.device);
  if (!iface.empty()) {
    const int iface_mtu = interface_mtu(iface);
    if (iface_mtu > 0 && iface_mtu < port.mtu) {
      error = "port " + port.name + ": interface " + iface + " has MTU " +
              std::to_string(iface_mtu) + ", below the port's mtu " + std::to_string(port.mtu) +
              ": raise it (ip link set " + iface + " mtu " + std::to_string(port.mtu) +
              ") or lower mtu";
      return false;
    }
  }
  rte_eth_conf conf{};
  conf.rxmode.mtu = port.mtu;
  // Let the NIC verify checksums where it can; the worker re-checks in software otherwise.
  const uint64_t want_rx =
      RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
  conf.rxmode.offloads = info.rx_offload_capa & want_rx;
  if (queues > 1) {
    // A device without RSS (net_af_xdp: the kernel spreads packets over the queues) gets none;
    // the workers hand each other what lands on the wrong queue.
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    if (conf.rx_adv_conf.rss_conf.rss_hf != 0) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      // The NIC's hash in each mbuf lets workers check that the software Toeplitz they steer
      // replies with agrees with it.
      conf.rxmode.offloads |= info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_RSS_HASH;
    }
  }
  rc = rte_eth_dev_configure(id, queues, queues, &conf);
  if (rc != 0) {
    error = "port " + port.name + ": rte_eth_dev_configure: " + rte_strerror(-rc);
    return false;
  }
  uint16_t nb_rx = rx_desc;
  uint16_t nb_tx = tx_desc;
  rte_eth_dev_adjust_nb_rx_tx_desc(id, &nb_rx, &nb_tx);
  const int socket = rte_eth_dev_socket_id(id);
  for (uint16_t q = 0; q < queues; ++q) {
    rc = rte_eth_rx_queue_setup(id, q, nb_rx, socket < 0 ? SOCKET_ID_ANY : socket, nullptr, pool);
    if (rc != 0) {
      error = "port " + port.name + ": RX queue " + std::to_string(q) + ": " + rte_strerror(-rc);
      return false;
    }
    rc = rte_eth_tx_queue_setup(id, q, nb_tx, socket < 0 ? SOCKET_ID_ANY : socket, nullptr);
    if (rc != 0) {
      error = "port " + port.name + ": TX queue " + std::to_string(q) + ": " + rte_strerror(-rc);
      return false;
    }
  }
  // Virtual devices (net_pcap, net_af_packet, net_af_xdp on veth) may refuse a new MAC address;
  // they receive every frame anyway, so the configured address is then used in software only.
  bool mac_in_software = false;
  if (port.has_mac) {
    rte_ether_addr mac;
    std::memcpy(mac.addr_bytes, port.mac.data(), 6);
    rc = rte_eth_dev_default_mac_addr_set(id, &mac);
    if (rc == -ENOTSUP) {
      mac_in_software = true;
    } else if (rc != 0) {
      error = "port " + port.name + ": cannot set MAC address: " + rte_strerror(-rc);
      return false;
    }
  }
  rc = rte_eth_dev_start(id);
  if (rc != 0) {
    error = "port " + port.name + ": rte_eth_dev_start: " + rte_strerror(-rc);
    return false;
  }
  // A driver that found a full frame too long for one buffer receives it in several; the
  // workers would drop every such frame.
  rte_eth_rxq_info rxq{};
  if (rte_eth_rx_queue_info_get(id, 0, &rxq) == 0 && rxq.scattered_rx != 0) {
    error = "port " + port.name + ": " + name + " splits frames of mtu " +
            std::to_string(port.mtu) + " over several buffers, which ilb does not take: lower mtu";
    return false;
  }
  rte_ether_addr mac{};
  rte_eth_macaddr_get(id, &mac);
  id_out = id;
  std::memcpy(mac_out, mac_in_software ? port.mac.data() : mac.addr_bytes, 6);
  guard.armed = false;
  return true;
}

}  // namespace

bool start_port(const PortConfig& port, uint16_t queues, uint16_t rx_desc, uint16_t tx_desc,
                rte_mempool* pool, PortInfo& out, std::vector<PortQueue>& queues_out,
                std::string& error) {
  const std::vector<std::string> devices = port_devices(port, queues);
  const auto per_device = static_cast<uint16_t>(devices.size() == 1 ? queues : 1);
  if (devices.size() > 1) {
    // Each device binds one queue of the interface (an RX and a TX queue of that number): the
    // interface needs one of each per worker.
    const std::string iface = kernel_interface(port.device);
    const int have = interface_queues(iface);
    if (have >= 0 && have < queues) {
      error = "port " + port.name + ": interface " + iface + " has " + std::to_string(have) +
              " queue pair(s), " + std::to_string(queues) +
              " needed (one per worker): ethtool -L " + iface + " combined " +
              std::to_string(queues) + " (a veth: create it with numrxqueues " +
              std::to_string(queues) + " numtxqueues " + std::to_string(queues) + ")";
      return false;
    }
  }
  queues_out.clear();
  std::vector<uint16_t> started;
  for (const std::string& device : devices) {
    uint16_t id = 0;
    if (!start_device(port, device, per_device, rx_desc, tx_desc, pool, id, out.mac, error)) {
      for (uint16_t other : started) stop_port(other);
      return false;
    }
    started.push_back(id);
    for (uint16_t q = 0; q < per_device; ++q) queues_out.push_back(PortQueue{id, q});
  }
  out.port_id = started.front();
  out.address = port.address;
  out.netmask = port.prefix_len == 0 ? 0 : htonl(~uint32_t{0} << (32 - port.prefix_len));
  out.gateway = port.gateway;
  out.mtu = port.mtu;
  return true;
}

bool read_rss(uint16_t port_id, Rss& out, bool& ports_hashed_tcp, bool& ports_hashed_udp,
              std::string& why) {
  rte_eth_dev_info info{};
  int rc = rte_eth_dev_info_get(port_id, &info);
  if (rc != 0 || info.reta_size == 0 || info.hash_key_size == 0) {
    why = "the device reports no RSS redirection table";
    return false;
  }
  std::vector<uint8_t> key(info.hash_key_size);
  rte_eth_rss_conf conf{};
  conf.rss_key = key.data();
  conf.rss_key_len = info.hash_key_size;
  rc = rte_eth_dev_rss_hash_conf_get(port_id, &conf);
  if (rc != 0 || conf.rss_hf == 0) {
    why = rc != 0 ? std::string("reading the RSS key: ") + rte_strerror(-rc) : "RSS is off";
    return false;
  }
  std::vector<rte_eth_rss_reta_entry64> groups((info.reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) /
                                               RTE_ETH_RETA_GROUP_SIZE);
  for (auto& g : groups) g.mask = ~uint64_t{0};
  rc = rte_eth_dev_rss_reta_query(port_id, groups.data(), info.reta_size);
  if (rc != 0) {
    why = std::string("reading the RSS redirection table: ") + rte_strerror(-rc);
    return false;
  }
  std::vector<uint16_t> reta(info.reta_size);
  for (uint16_t i = 0; i < info.reta_size; ++i) {
    reta[i] = groups[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
  }
  ports_hashed_tcp = (conf.rss_hf & RTE_ETH_RSS_NONFRAG_IPV4_TCP) != 0;
  ports_hashed_udp = (conf.rss_hf & RTE_ETH_RSS_NONFRAG_IPV4_UDP) != 0;
  return out.init(key.data(), key.size(), reta, why);
}

void stop_port(uint16_t port_id) {
  rte_eth_dev_stop(port_id);
  rte_eth_dev_close(port_id);
}

}  // namespace ilb::dp

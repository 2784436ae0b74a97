// The dataplane's own settings: the [dataplane] section of the shared TOML file. Parsed here, with
// toml++ and without DPDK, so that the control plane can validate the whole file too
// (ilb-controlplane --check) and both processes report errors the same way.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/config/config_error.h"

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace ilb::dp {

struct StaticNeighbour {
  uint32_t address = 0;  // IPv4, network order
  std::array<uint8_t, 6> mac{};
};

struct PortConfig {
  std::string name;        // operator's label, e.g. "lan"
  std::string device;      // EAL device: PCI address ("0000:00:05.0") or vdev string
                           // ("net_af_xdp0,iface=ilb0", "net_pcap0,rx_pcap=in.pcap,...")
  uint32_t address = 0;    // the port's own IPv4 address, network order
  uint8_t prefix_len = 0;  // on-link prefix of `address`
  uint32_t gateway = 0;    // next hop for off-link destinations, network order; 0 = none
  bool has_mac = false;    // `mac` set: overrides the device's MAC address
  std::array<uint8_t, 6> mac{};
  // net_af_xdp only: the kernel keeps every frame that is not for one of ilb's addresses (see
  // dataplane/port/kernel_share.h) instead of the port taking its queues' every frame.
  bool share_with_kernel = false;
  // The largest IPv4 datagram the port carries. TCP connections through it are told so (their
  // SYNs' MSS option is lowered to fit); longer datagrams are dropped (too_big), with an ICMP
  // "fragmentation needed" to their sender when they forbid fragmenting. 0 (not configured):
  // 1500, or the kernel interface's MTU where smaller (resolve_default_mtu(), at start).
  uint16_t mtu = 0;
};

inline constexpr int64_t kMinPortMtu = 576;   // every IPv4 host must take this (RFC 791)
inline constexpr int64_t kMaxPortMtu = 9216;  // the largest jumbo frames NICs take

// One-armed deployments use one port, two-armed ones two (clients' side, backends' side); up to
// this many (the stat region's PortStats slots).
inline constexpr uint32_t kMaxDataplanePorts = 8;

// Workers share the SNAT port space and hand frames to each other over one ring per ordered pair.
inline constexpr uint32_t kMaxWorkers = 32;

struct DataplaneConfig {
  uint32_t main_lcore = 0;
  std::vector<uint32_t> worker_lcores{1};  // worker i polls RX/TX queue i of the port
  // The CPU each worker lcore runs on (same length as worker_lcores); empty = CPU n for lcore n.
  // Lets a small machine run more workers than it has spare CPUs (tests, labs).
  std::vector<uint32_t> worker_cpus;
  // 0 = workers poll without pause. Otherwise a worker that found nothing to do for a while
  // sleeps this many microseconds between polls, so an idle dataplane does not burn its cores,
  // at the price of that much extra latency for the first packet after a quiet spell.
  uint32_t idle_sleep_us = 0;
  // Replies each worker makes up itself (refusals when a service has no backend, resets for
  // untracked TCP, echo replies), at most this many a second on average, in bursts of up to a
  // tenth of it; 0 = no limit. Beyond it the packets are dropped unanswered (replies_limited).
  uint32_t reply_rate_limit = 10000;
  // verify_l4_checksums = "all": the TCP checksum of every segment is verified in software when
  // the NIC has not. The default, "tcp_control", verifies SYN, FIN and RST segments only (see
  // pkt::ParseOptions::verify_tcp_data_checksum); UDP and ICMP are always verified.
  bool verify_all_l4_checksums = false;
  uint32_t memory_mb = 256;  // EAL -m (ignored with no_huge: --no-huge -m)
  bool no_huge = false;
  std::string file_prefix;            // EAL --file-prefix; default "ilb-<instance>"
  std::vector<std::string> eal_args;  // appended verbatim to the EAL command line
  uint32_t conn_capacity = 65536;     // tracked connections per worker
  uint32_t mbuf_count = 8191;
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  std::vector<uint32_t> snat_addresses;  // network order; at least one
  uint16_t snat_port_min = 1024;
  uint16_t snat_port_max = 65535;
  uint32_t neighbour_refresh_s = 30;  // ARP re-resolution interval for used next hops
  std::vector<StaticNeighbour> static_neighbours;
  std::vector<PortConfig> ports;  // 1 to kMaxDataplanePorts; subnets disjoint, one gateway at most
};

// Parses and validates `root["dataplane"]` of the file `path` (used in error messages).
// `instance` is the file's top-level instance name (for defaults such as file_prefix).
// Throws ilb::ConfigError naming file, line, key and what was expected.
DataplaneConfig parse_dataplane_config(const toml::table& root, const std::string& path,
                                       const std::string& instance);

// Loads a whole file and returns its instance name and [dataplane] section. Throws ConfigError
// (including TOML syntax errors, with their position).
struct DataplaneFile {
  std::string instance;
  DataplaneConfig dataplane;
};
DataplaneFile load_dataplane_file(const std::string& path);

// Helpers shared with the control-plane loader. Both return false on bad input.
bool parse_ipv4(const std::string& text, uint32_t& out_network_order);
bool parse_mac(const std::string& text, std::array<uint8_t, 6>& out);
std::string format_ipv4(uint32_t network_order);

// The instance name used when the file has no top-level `instance` key.
inline constexpr const char* kDefaultInstance = "default";

// Reads and validates the top-level `instance` key of `root` (kDefaultInstance when absent):
// 1 to 24 characters of [a-z0-9_-]. Throws ConfigError.
std::string parse_instance(const toml::table& root, const std::string& path);

// load_dataplane_file() on text already in memory; `path` is used in messages only.
DataplaneFile parse_dataplane_text(std::string_view text, const std::string& path);

// The DPDK device name in a port's `device` string: what comes before its first ','
// ("net_af_xdp0" of "net_af_xdp0,iface=ens5"). Two ports may not share one.
std::string device_name(const std::string& device);

// "a.b.c.d:port" with port 0..65535 (callers check the range they accept). False on bad input.
bool parse_ipv4_port(const std::string& text, uint32_t& out_network_order, uint16_t& out_port);
// "a.b.c.d/n" with n in 0..32 (callers check the range they accept). Returns false on bad input.
bool parse_ipv4_prefix(const std::string& text, uint32_t& out_network_order,
                       uint8_t& out_prefix_len);
// "02:00:00:00:00:21" (lower-case hex).
std::string format_mac(const std::array<uint8_t, 6>& mac);

}  // namespace ilb::dp

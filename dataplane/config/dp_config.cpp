// Validation of the [dataplane] section. The dataplane reads only its own section (and the
// instance name), so that a control-plane-only mistake such as a bad health check never stops
// the dataplane from starting; the control plane validates the whole file, this section
// included, through the same function.
#include "dataplane/config/dp_config.h"

#include <toml++/toml.h>
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "dataplane/abi/ilb_abi.h"
#include "dataplane/config/toml_reader.h"

namespace ilb::dp {
namespace {

// Network-order value of a prefix mask of `len` bits.
uint32_t prefix_mask(uint8_t len) {
  uint32_t host = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  std::array<uint8_t, 4> bytes{static_cast<uint8_t>(host >> 24), static_cast<uint8_t>(host >> 16),
                               static_cast<uint8_t>(host >> 8), static_cast<uint8_t>(host)};
  uint32_t out = 0;
  std::memcpy(&out, bytes.data(), 4);
  return out;
}

bool is_unicast_mac(const std::array<uint8_t, 6>& mac) {
  return (mac[0] & 1) == 0 && std::any_of(mac.begin(), mac.end(), [](uint8_t b) { return b != 0; });
}

std::array<uint8_t, 6> mac_value(const TomlNode& node) {
  if (!node.node().is_string()) node.fail_type("a MAC address string");
  std::string text = node.as_string();
  std::array<uint8_t, 6> mac{};
  if (!parse_mac(text, mac)) {
    node.fail("expected a MAC address such as \"02:00:00:00:00:01\", got " + quoted(text));
  }
  if (!is_unicast_mac(mac)) node.fail(quoted(text) + " is not a unicast MAC address");
  return mac;
}

uint16_t descriptor_count(const TomlNode& node) {
  auto n = static_cast<uint32_t>(node.as_integer(64, 8192));
  if ((n & (n - 1)) != 0) node.fail("must be a power of two, got " + std::to_string(n));
  return static_cast<uint16_t>(n);
}

// EAL options that have their own key: passing them again through eal_args would either
// conflict with what the dataplane sets or silently override it.
void check_eal_arg(const TomlNode& node, const std::string& arg) {
  struct Owned {
    std::string_view option;
    std::string_view key;
  };
  static constexpr Owned kOwned[] = {
      {"-l", "main_lcore and worker_lcores"},
      {"-c", "main_lcore and worker_lcores"},
      {"--lcores", "main_lcore and worker_lcores"},
      {"--main-lcore", "main_lcore"},
      {"--file-prefix", "file_prefix"},
      {"-m", "memory_mb"},
      {"--no-huge", "no_huge"},
  };
  if (arg.empty()) node.fail("must not be empty");
  for (const auto& owned : kOwned) {
    bool is_long = owned.option.starts_with("--");
    bool matches = is_long ? arg == owned.option || arg.starts_with(std::string(owned.option) + "=")
                           : arg.starts_with(owned.option);
    if (matches) {
      node.fail("EAL option " + std::string(owned.option) + " is set from " +
                std::string(owned.key) + "; use that instead");
    }
  }
}

PortConfig parse_port(const TomlTable& t) {
  t.allow_only({"name", "device", "address", "gateway", "mac", "share_with_kernel", "mtu"});
  PortConfig port;

  auto name = t.require("name");
  port.name = name.as_string();
  if (!is_name(port.name, "_-", 31, true)) {
    name.fail("must be 1 to 31 characters of A-Z, a-z, 0-9, '_' and '-', got " + quoted(port.name));
  }

  auto device = t.require("device");
  port.device = device.as_string();
  if (port.device.empty()) device.fail("must not be empty");
  if (std::any_of(port.device.begin(), port.device.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= ' '; })) {
    device.fail("must not contain spaces or control characters");
  }

  auto address = t.require("address");
  std::string text = address.as_string();
  uint32_t addr = 0;
  uint8_t len = 0;
  if (!parse_ipv4_prefix(text, addr, len)) {
    address.fail("expected an address with its prefix length such as \"10.0.0.2/24\", got " +
                 quoted(text));
  }
  if (len < 1 || len > 32) {
    address.fail("prefix length must be between 1 and 32, got " + std::to_string(len));
  }
  if (!is_unicast_ipv4(addr)) address.fail(quoted(text) + " is not a unicast IPv4 address");
  uint32_t mask = prefix_mask(len);
  if (len <= 30 && ((addr & ~mask) == 0 || (addr & ~mask) == ~mask)) {
    address.fail(quoted(text) + " is the network or broadcast address of its prefix");
  }
  port.address = addr;
  port.prefix_len = len;

  if (auto gateway = t.get("gateway")) {
    port.gateway = gateway->as_ipv4();
    if ((port.gateway & mask) != (addr & mask)) {
      gateway->fail("gateway " + format_ipv4(port.gateway) + " is not inside the port's prefix " +
                    format_ipv4(addr & mask) + "/" + std::to_string(len));
    }
    if (port.gateway == addr) gateway->fail("gateway must not be the port's own address");
  }

  if (auto mtu = t.get("mtu")) {
    port.mtu = static_cast<uint16_t>(mtu->as_integer(kMinPortMtu, kMaxPortMtu));
  }
  if (auto mac = t.get("mac")) {
    port.mac = mac_value(*mac);
    port.has_mac = true;
  }
  if (auto share = t.get("share_with_kernel")) {
    port.share_with_kernel = share->as_boolean();
    if (port.share_with_kernel && !device_name(port.device).starts_with("net_af_xdp")) {
      share->fail("only a net_af_xdp port can share its interface with the kernel, not " +
                  quoted(device_name(port.device)));
    }
    if (port.share_with_kernel && port.device.find("xdp_prog=") != std::string::npos) {
      share->fail("the device's own xdp_prog= cannot be combined with it (it sets the program)");
    }
    if (port.share_with_kernel && port.has_mac) {
      share->fail(
          "a shared interface keeps its own MAC address: remove `mac` (the NIC would not "
          "receive frames for another)");
    }
  }
  return port;
}

}  // namespace

std::string device_name(const std::string& device) {
  return device.substr(0, device.find(','));
}

bool parse_ipv4(const std::string& text, uint32_t& out_network_order) {
  std::array<uint8_t, 4> bytes{};
  size_t pos = 0;
  for (size_t i = 0; i < 4; ++i) {
    if (i > 0) {
      if (pos >= text.size() || text[pos] != '.') return false;
      ++pos;
    }
    size_t start = pos;
    uint32_t value = 0;
    while (pos < text.size() && pos - start < 3 && text[pos] >= '0' && text[pos] <= '9') {
      value = value * 10 + static_cast<uint32_t>(text[pos] - '0');
      ++pos;
    }
    size_t digits = pos - start;
    // Leading zeros are rejected: inet_aton() would read "010" as octal.
    if (digits == 0 || value > 255 || (digits > 1 && text[start] == '0')) return false;
    bytes[i] = static_cast<uint8_t>(value);
  }
  if (pos != text.size()) return false;
  std::memcpy(&out_network_order, bytes.data(), 4);
  return true;
}

bool parse_ipv4_port(const std::string& text, uint32_t& out_network_order, uint16_t& out_port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || !parse_ipv4(text.substr(0, colon), out_network_order)) {
    return false;
  }
  const std::string_view digits = std::string_view(text).substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
      value > 65535) {
    return false;
  }
  out_port = static_cast<uint16_t>(value);
  return true;
}

bool parse_ipv4_prefix(const std::string& text, uint32_t& out_network_order,
                       uint8_t& out_prefix_len) {
  size_t slash = text.find('/');
  if (slash == std::string::npos) return false;
  std::string len = text.substr(slash + 1);
  if (len.empty() || len.size() > 2 || (len.size() > 1 && len[0] == '0') ||
      !std::all_of(len.begin(), len.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  int value = std::stoi(len);
  uint32_t address = 0;
  if (value > 32 || !parse_ipv4(text.substr(0, slash), address)) return false;
  out_network_order = address;
  out_prefix_len = static_cast<uint8_t>(value);
  return true;
}

bool parse_mac(const std::string& text, std::array<uint8_t, 6>& out) {
  if (text.size() != 17) return false;
  std::array<uint8_t, 6> mac{};
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && text[i * 3 - 1] != ':') return false;
    int hi = hex(text[i * 3]);
    int lo = hex(text[i * 3 + 1]);
    if (hi < 0 || lo < 0) return false;
    mac[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  out = mac;
  return true;
}

std::string format_ipv4(uint32_t network_order) {
  std::array<uint8_t, 4> b{};
  std::memcpy(b.data(), &network_order, 4);
  return std::to_string(b[0]) + "." + std::to_string(b[1]) + "." + std::to_string(b[2]) + "." +
         std::to_string(b[3]);
}

std::string format_mac(const std::array<uint8_t, 6>& mac) {
  char buffer[18];
  std::snprintf(buffer, sizeof(buffer), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
                mac[3], mac[4], mac[5]);
  return buffer;
}

std::string parse_instance(const toml::table& root, const std::string& path) {
  TomlTable top(root, "", path);
  auto node = top.get("instance");
  if (!node) return kDefaultInstance;
  std::string instance = node->as_string();
  if (!is_name(instance, "_-", 24, false)) {
    node->fail("must be 1 to 24 characters of a-z, 0-9, '_' and '-', got " + quoted(instance));
  }
  return instance;
}

DataplaneConfig parse_dataplane_config(const toml::table& root, const std::string& path,
                                       const std::string& instance) {
  TomlTable top(root, "", path);
  auto section = top.get("dataplane");
  if (!section) top.fail_key("dataplane", "missing required section [dataplane]");
  TomlTable t = section->as_table();
  t.allow_only({"main_lcore",
                "worker_lcores",
                "memory_mb",
                "no_huge",
                "file_prefix",
                "eal_args",
                "conn_capacity",
                "mbuf_count",
                "rx_desc",
                "tx_desc",
                "snat_addresses",
                "snat_port_min",
                "snat_port_max",
                "neighbour_refresh_s",
                "static_neighbours",
                "worker_cpus",
                "idle_sleep_us",
                "reply_rate_limit",
                "verify_l4_checksums",
                "port"});
  constexpr int64_t kMaxLcoreId = abi::kMaxLcores - 1;
  DataplaneConfig dp;

  auto main_lcore = t.get("main_lcore");
  if (main_lcore) dp.main_lcore = static_cast<uint32_t>(main_lcore->as_integer(0, kMaxLcoreId));

  if (auto workers = t.get("worker_lcores")) {
    auto elements = workers->as_array();
    if (elements.empty()) workers->fail("at least one worker lcore is required");
    if (elements.size() > kMaxWorkers) {
      elements[kMaxWorkers].fail("at most " + std::to_string(kMaxWorkers) + " worker lcores");
    }
    dp.worker_lcores.clear();
    for (const auto& element : elements) {
      auto id = static_cast<uint32_t>(element.as_integer(0, kMaxLcoreId));
      if (id == dp.main_lcore) {
        element.fail("lcore " + std::to_string(id) + " is the main_lcore; workers need their own");
      }
      if (std::find(dp.worker_lcores.begin(), dp.worker_lcores.end(), id) !=
          dp.worker_lcores.end()) {
        element.fail("lcore " + std::to_string(id) + " is listed twice");
      }
      dp.worker_lcores.push_back(id);
    }
  } else if (main_lcore && std::find(dp.worker_lcores.begin(), dp.worker_lcores.end(),
                                     dp.main_lcore) != dp.worker_lcores.end()) {
    main_lcore->fail("lcore " + std::to_string(dp.main_lcore) +
                     " is also the default worker lcore; set worker_lcores");
  }

  if (auto n = t.get("memory_mb")) dp.memory_mb = static_cast<uint32_t>(n->as_integer(16, 65536));
  if (auto n = t.get("no_huge")) dp.no_huge = n->as_boolean();

  dp.file_prefix = "ilb-" + instance;
  if (auto n = t.get("file_prefix")) {
    dp.file_prefix = n->as_string();
    if (!is_name(dp.file_prefix, "_-", 63, true)) {
      n->fail("must be 1 to 63 characters of A-Z, a-z, 0-9, '_' and '-', got " +
              quoted(dp.file_prefix));
    }
  }

  if (auto n = t.get("eal_args")) {
    for (const auto& element : n->as_array()) {
      std::string arg = element.as_string();
      check_eal_arg(element, arg);
      dp.eal_args.push_back(std::move(arg));
    }
  }

  if (auto n = t.get("conn_capacity")) {
    dp.conn_capacity = static_cast<uint32_t>(n->as_integer(1024, 100'000'000));
  }
  if (auto n = t.get("mbuf_count")) {
    dp.mbuf_count = static_cast<uint32_t>(n->as_integer(1023, 16'777'215));
  }
  if (auto n = t.get("rx_desc")) dp.rx_desc = descriptor_count(*n);
  if (auto n = t.get("tx_desc")) dp.tx_desc = descriptor_count(*n);

  auto snat = t.require("snat_addresses");
  auto snat_elements = snat.as_array();
  if (snat_elements.empty()) snat.fail("at least one SNAT address is required");
  for (const auto& element : snat_elements) {
    uint32_t address = element.as_ipv4();
    if (std::find(dp.snat_addresses.begin(), dp.snat_addresses.end(), address) !=
        dp.snat_addresses.end()) {
      element.fail("duplicate SNAT address " + format_ipv4(address));
    }
    dp.snat_addresses.push_back(address);
  }

  auto port_min = t.get("snat_port_min");
  if (port_min) dp.snat_port_min = static_cast<uint16_t>(port_min->as_integer(1, 65535));
  auto port_max = t.get("snat_port_max");
  if (port_max) dp.snat_port_max = static_cast<uint16_t>(port_max->as_integer(1, 65535));
  if (dp.snat_port_min > dp.snat_port_max) {
    const TomlNode& where = port_min ? *port_min : *port_max;
    where.fail("snat_port_min (" + std::to_string(dp.snat_port_min) +
               ") is larger than snat_port_max (" + std::to_string(dp.snat_port_max) + ")");
  }
  if (uint32_t{dp.snat_port_max} - dp.snat_port_min + 1 < dp.worker_lcores.size()) {
    const TomlNode& where = port_max ? *port_max : *port_min;
    where.fail("the SNAT port range holds fewer ports than there are workers (" +
               std::to_string(dp.worker_lcores.size()) + "): each needs its own share");
  }

  if (auto n = t.get("worker_cpus")) {
    auto elements = n->as_array();
    if (elements.size() != dp.worker_lcores.size()) {
      n->fail("expected one CPU per worker lcore (" + std::to_string(dp.worker_lcores.size()) +
              "), got " + std::to_string(elements.size()));
    }
    for (const auto& element : elements) {
      dp.worker_cpus.push_back(static_cast<uint32_t>(element.as_integer(0, 1023)));
    }
  }
  if (auto n = t.get("idle_sleep_us")) {
    dp.idle_sleep_us = static_cast<uint32_t>(n->as_integer(0, 10000));
  }
  if (auto n = t.get("reply_rate_limit")) {
    dp.reply_rate_limit = static_cast<uint32_t>(n->as_integer(0, 100'000'000));
  }
  if (auto n = t.get("verify_l4_checksums")) {
    const std::string mode = n->as_string();
    if (mode != "tcp_control" && mode != "all") {
      n->fail("expected \"tcp_control\" or \"all\", got " + quoted(mode));
    }
    dp.verify_all_l4_checksums = mode == "all";
  }
  if (auto n = t.get("neighbour_refresh_s")) {
    dp.neighbour_refresh_s = static_cast<uint32_t>(n->as_integer(1, 3600));
  }

  if (auto n = t.get("static_neighbours")) {
    for (const auto& entry : n->as_table_array()) {
      entry.allow_only({"address", "mac"});
      StaticNeighbour neighbour;
      auto address = entry.require("address");
      neighbour.address = address.as_ipv4();
      for (const auto& other : dp.static_neighbours) {
        if (other.address == neighbour.address) {
          address.fail("duplicate static neighbour " + format_ipv4(neighbour.address));
        }
      }
      neighbour.mac = mac_value(entry.require("mac"));
      dp.static_neighbours.push_back(neighbour);
    }
  }

  auto ports = t.require("port");
  auto port_tables = ports.as_table_array();
  if (port_tables.empty()) ports.fail("at least one [[dataplane.port]] is required");
  if (port_tables.size() > kMaxDataplanePorts) {
    port_tables[kMaxDataplanePorts].fail("at most " + std::to_string(kMaxDataplanePorts) +
                                         " ports are supported");
  }
  // Each port is one link: where a frame to an address leaves must never be in doubt, so the
  // ports' subnets are disjoint and one port at most leads to everything else.
  size_t with_gateway = port_tables.size();  // index of the port with the gateway
  for (const auto& table : port_tables) {
    PortConfig port = parse_port(table);
    const uint32_t mask = prefix_mask(port.prefix_len);
    for (const PortConfig& other : dp.ports) {
      if (other.name == port.name) table.require("name").fail("duplicate port name");
      if (device_name(other.device) == device_name(port.device)) {
        table.require("device").fail("port " + quoted(other.name) + " already uses device " +
                                     quoted(device_name(port.device)));
      }
      const uint32_t common = prefix_mask(std::min(port.prefix_len, other.prefix_len));
      if ((port.address & common) == (other.address & common)) {
        table.require("address").fail("subnet " + format_ipv4(port.address & mask) + "/" +
                                      std::to_string(port.prefix_len) + " overlaps port " +
                                      quoted(other.name) + "'s " +
                                      format_ipv4(other.address & prefix_mask(other.prefix_len)) +
                                      "/" + std::to_string(other.prefix_len));
      }
    }
    if (port.gateway != 0 && with_gateway != port_tables.size()) {
      table.require("gateway").fail("port " + quoted(dp.ports[with_gateway].name) +
                                    " has the gateway already; one port at most may have one");
    }
    if (port.gateway != 0) with_gateway = dp.ports.size();
    dp.ports.push_back(port);
  }
  // Every queue's rings hold buffers of their own; a pool they exhaust leaves the NIC nothing to
  // receive into (DPDK fails to start, or drops everything as rx_nombuf).
  const uint64_t ring_buffers =
      uint64_t{dp.ports.size()} * dp.worker_lcores.size() * (uint64_t{dp.rx_desc} + dp.tx_desc);
  if (ring_buffers >= dp.mbuf_count) {
    const std::string why = std::to_string(dp.mbuf_count) +
                            " buffers cannot fill the rings: " + std::to_string(dp.ports.size()) +
                            " port(s) x " + std::to_string(dp.worker_lcores.size()) +
                            " worker(s) x (rx_desc " + std::to_string(dp.rx_desc) + " + tx_desc " +
                            std::to_string(dp.tx_desc) + ") = " + std::to_string(ring_buffers) +
                            "; raise mbuf_count (best 2^n - 1) or lower the descriptor counts";
    if (auto n = t.get("mbuf_count")) n->fail(why);
    t.fail_key("mbuf_count", why);
  }

  return dp;
}

DataplaneFile parse_dataplane_text(std::string_view text, const std::string& path) {
  toml::table root = parse_toml(text, path);
  DataplaneFile file;
  file.instance = parse_instance(root, path);
  file.dataplane = parse_dataplane_config(root, path, file.instance);
  return file;
}

DataplaneFile load_dataplane_file(const std::string& path) {
  return parse_dataplane_text(read_config_text(path), path);
}

}  // namespace ilb::dp

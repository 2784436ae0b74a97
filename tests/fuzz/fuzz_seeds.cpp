// Writes the seed corpora of fuzz_packet and fuzz_snapshot into a directory: valid frames of every
// kind the packet library accepts, and ctl slots encoded by the control plane's own slot encoder.
// Seeds are generated rather than checked in so they follow the ABI and the encoder when those
// change. Usage: fuzz_seeds packet|snapshot <directory>
#include <arpa/inet.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "controlplane/publish/slot_codec.h"
#include "controlplane/publish/snapshot.h"
#include "dataplane/abi/ilb_abi.h"
#include "dataplane/packet/packet.h"

namespace {

namespace abi = ilb::abi;
namespace cp = ilb::cp;
namespace pkt = ilb::dp::pkt;
using Bytes = std::vector<uint8_t>;

constexpr uint8_t kClientMac[6] = {0x02, 0, 0, 0, 0, 0x10};
constexpr uint8_t kLbMac[6] = {0x02, 0, 0, 0, 0, 0x02};

void write_file(const std::filesystem::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "fuzz_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

struct FrameSpec {
  uint8_t proto = IPPROTO_TCP;
  uint8_t ip_option_words = 0;  // 32-bit words of IPv4 options (NOPs)
  uint8_t tcp_option_words = 0;
  uint8_t tcp_flags = RTE_TCP_SYN_FLAG;
  uint8_t icmp_type = RTE_IP_ICMP_ECHO_REQUEST;
  uint32_t payload = 0;
  uint32_t padding = 0;  // bytes after the IPv4 packet, as Ethernet minimum-size padding
  bool udp_no_checksum = false;
};

// A valid Ethernet/IPv4 frame with correct checksums computed by DPDK's helpers.
Bytes make_ipv4_frame(const FrameSpec& f) {
  const uint32_t ihl = sizeof(rte_ipv4_hdr) + 4u * f.ip_option_words;
  uint32_t l4_hdr = 0;
  if (f.proto == IPPROTO_TCP) l4_hdr = sizeof(rte_tcp_hdr) + 4u * f.tcp_option_words;
  if (f.proto == IPPROTO_UDP) l4_hdr = sizeof(rte_udp_hdr);
  if (f.proto == IPPROTO_ICMP) l4_hdr = sizeof(rte_icmp_hdr);
  const uint32_t total = ihl + l4_hdr + f.payload;
  Bytes frame(pkt::kEtherHdrLen + total + f.padding, 0);

  auto* eth = reinterpret_cast<rte_ether_hdr*>(frame.data());
  std::memcpy(&eth->dst_addr, kLbMac, 6);
  std::memcpy(&eth->src_addr, kClientMac, 6);
  eth->ether_type = htons(RTE_ETHER_TYPE_IPV4);

  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(frame.data() + pkt::kEtherHdrLen);
  ip->version_ihl = static_cast<uint8_t>(0x40 | (ihl / 4));
  ip->total_length = htons(static_cast<uint16_t>(total));
  ip->packet_id = htons(0x1234);
  ip->fragment_offset = htons(RTE_IPV4_HDR_DF_FLAG);
  ip->time_to_live = 64;
  ip->next_proto_id = f.proto;
  ip->src_addr = htonl(0xc0a80a05);  // 192.168.10.5
  ip->dst_addr = htonl(0x0a000001);  // 10.0.0.1
  std::memset(frame.data() + pkt::kEtherHdrLen + sizeof(rte_ipv4_hdr), 1,
              ihl - sizeof(rte_ipv4_hdr));

  uint8_t* l4 = frame.data() + pkt::kEtherHdrLen + ihl;
  for (uint32_t i = 0; i < f.payload; ++i) l4[l4_hdr + i] = static_cast<uint8_t>('a' + i % 26);
  if (f.proto == IPPROTO_TCP) {
    auto* tcp = reinterpret_cast<rte_tcp_hdr*>(l4);
    tcp->src_port = htons(40000);
    tcp->dst_port = htons(80);
    tcp->sent_seq = htonl(1000);
    tcp->recv_ack = htonl((f.tcp_flags & RTE_TCP_ACK_FLAG) != 0 ? 2000 : 0);
    tcp->data_off = static_cast<uint8_t>((l4_hdr / 4) << 4);
    tcp->tcp_flags = f.tcp_flags;
    tcp->rx_win = htons(65535);
    std::memset(l4 + sizeof(rte_tcp_hdr), 1, l4_hdr - sizeof(rte_tcp_hdr));
    tcp->cksum = rte_ipv4_udptcp_cksum(ip, l4);
  } else if (f.proto == IPPROTO_UDP) {
    auto* udp = reinterpret_cast<rte_udp_hdr*>(l4);
    udp->src_port = htons(40001);
    udp->dst_port = htons(53);
    udp->dgram_len = htons(static_cast<uint16_t>(l4_hdr + f.payload));
    if (!f.udp_no_checksum) udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, l4);
  } else if (f.proto == IPPROTO_ICMP) {
    auto* icmp = reinterpret_cast<rte_icmp_hdr*>(l4);
    icmp->icmp_type = f.icmp_type;
    icmp->icmp_ident = htons(7);
    icmp->icmp_seq_nb = htons(1);
    icmp->icmp_cksum = static_cast<uint16_t>(~rte_raw_cksum(l4, l4_hdr + f.payload));
  }
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  return frame;
}

// A UDP frame whose Ethernet address bytes, which fuzz_packet uses as the rewrite's new
// addresses and ports, make the rewritten checksum come out as zero, so that rewrite_l4 must turn
// it into 0xffff (zero would mean "no checksum"). Random mutation hits that 1-in-65536 case
// rarely, so a seed carries it.
Bytes make_udp_zero_checksum_rewrite() {
  Bytes frame = make_ipv4_frame({.proto = IPPROTO_UDP, .payload = 33});
  const uint8_t new_src[6] = {10, 1, 0, 1, 0x23, 0x28};  // 10.1.0.1:9000
  const uint8_t new_dst_ip[4] = {10, 2, 0, 2};
  std::memcpy(frame.data(), new_src, 6);
  std::memcpy(frame.data() + 6, new_dst_ip, 4);
  pkt::Parsed p;
  if (pkt::parse(frame.data(), static_cast<uint32_t>(frame.size()), p) != pkt::Kind::kL4) {
    return {};
  }
  for (uint32_t port = 1; port <= UINT16_MAX; ++port) {
    frame[10] = static_cast<uint8_t>(port >> 8);
    frame[11] = static_cast<uint8_t>(port);
    Bytes out = frame;
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(out.data() + p.l3_offset);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(out.data() + p.l4_offset);
    std::memcpy(&ip->src_addr, frame.data(), 4);
    std::memcpy(&udp->src_port, frame.data() + 4, 2);
    std::memcpy(&ip->dst_addr, frame.data() + 6, 4);
    std::memcpy(&udp->dst_port, frame.data() + 10, 2);
    udp->dgram_cksum = 0;
    // DPDK maps a computed zero to 0xffff for UDP, exactly the case wanted here.
    if (rte_ipv4_udptcp_cksum(ip, udp) == 0xffff) return frame;
  }
  return {};
}

void write_packet_seeds(const std::filesystem::path& dir) {
  struct Named {
    const char* name;
    FrameSpec spec;
  };
  const Named frames[] = {
      {"tcp_syn", {.padding = 6}},
      {"tcp_syn_options", {.tcp_option_words = 5, .payload = 0}},
      {"tcp_ack_payload", {.tcp_flags = RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, .payload = 100}},
      {"tcp_fin_ip_options",
       {.ip_option_words = 3, .tcp_flags = RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG, .payload = 3}},
      {"tcp_rst", {.tcp_flags = RTE_TCP_RST_FLAG, .padding = 6}},
      {"udp", {.proto = IPPROTO_UDP, .payload = 33}},
      {"udp_odd_padded", {.proto = IPPROTO_UDP, .payload = 1, .padding = 17}},
      {"udp_no_checksum", {.proto = IPPROTO_UDP, .payload = 20, .udp_no_checksum = true}},
      {"icmp_echo_request", {.proto = IPPROTO_ICMP, .payload = 56}},
      {"icmp_echo_request_ip_options", {.proto = IPPROTO_ICMP, .ip_option_words = 2, .payload = 9}},
      {"icmp_echo_reply", {.proto = IPPROTO_ICMP, .icmp_type = 0, .payload = 8}},
  };
  for (const auto& f : frames) {
    const Bytes frame = make_ipv4_frame(f.spec);
    // A seed the parser drops would only exercise the early exits.
    pkt::Parsed p;
    const pkt::Kind want = f.spec.proto == IPPROTO_ICMP ? pkt::Kind::kIcmp : pkt::Kind::kL4;
    if (pkt::parse(frame.data(), static_cast<uint32_t>(frame.size()), p) != want) {
      std::fprintf(stderr, "fuzz_seeds: seed %s does not parse (drop %s)\n", f.name,
                   abi::drop_name(p.drop));
      std::exit(1);
    }
    write_file(dir / (std::string(f.name) + ".bin"), frame);
  }

  const Bytes zero = make_udp_zero_checksum_rewrite();
  if (zero.empty()) {
    std::fprintf(stderr, "fuzz_seeds: no port gives a zero UDP checksum after the rewrite\n");
    std::exit(1);
  }
  write_file(dir / "udp_rewrite_to_zero_checksum.bin", zero);

  Bytes arp(pkt::kMinFrameLen);
  pkt::build_arp_request(arp.data(), kClientMac, htonl(0xc0a80a05), htonl(0x0a000001));
  write_file(dir / "arp_request.bin", arp);
  pkt::make_arp_reply(arp.data(), kLbMac);
  write_file(dir / "arp_reply.bin", arp);
}

cp::Snapshot make_snapshot(uint32_t services, uint32_t backends_per_service, uint32_t table_size) {
  cp::Snapshot s;
  for (uint32_t i = 0; i < services; ++i) {
    cp::SnapshotService svc;
    svc.name = "svc-" + std::to_string(i);
    svc.vip = htonl(0x0a000001u + (i / 2));  // two services share each VIP
    svc.port = static_cast<uint16_t>(80 + i);
    svc.protocol = i % 3 == 2 ? abi::Protocol::kUdp : abi::Protocol::kTcp;
    svc.scheduler = i % 2 == 1 ? abi::Scheduler::kSource : abi::Scheduler::kMaglev;
    svc.tcp_syn_timeout_s = 30;
    svc.tcp_est_timeout_s = 350;
    svc.tcp_fin_timeout_s = 60;
    svc.udp_timeout_s = 30;
    std::vector<uint32_t> ids;
    for (uint32_t j = 0; j < backends_per_service; ++j) {
      cp::SnapshotBackend b;
      b.id = 1 + i * backends_per_service + j;
      b.service_index = i;
      b.address = htonl(0x0a010000u + (i << 8) + j + 1);
      b.port = static_cast<uint16_t>(8080 + j);
      b.admin = j == 1 ? abi::AdminState::kDraining
                       : (j == 2 ? abi::AdminState::kDisabled : abi::AdminState::kEnabled);
      b.health = j == 3 ? abi::Health::kDown : abi::Health::kUp;
      b.weight = 100;
      s.backends.push_back(b);
      if (b.admin == abi::AdminState::kEnabled) ids.push_back(b.id);
    }
    // The last service has no eligible backend, as when all of them are down.
    if (i + 1 < services || services == 1) {
      for (uint32_t k = 0; k < table_size && !ids.empty(); ++k)
        svc.table.push_back(ids[k % ids.size()]);
    }
    s.services.push_back(std::move(svc));
  }
  return s;
}

Bytes encode(const cp::Snapshot& s, uint64_t generation) {
  cp::validate_snapshot(s);
  // The encoder writes through a SlotHeader*, so it needs the alignment a slot has in the ctl
  // region.
  struct alignas(abi::SlotHeader) Block {
    uint8_t bytes[sizeof(abi::SlotHeader)];
  };
  std::vector<Block> blocks((cp::encoded_size(s) + sizeof(Block) - 1) / sizeof(Block), Block{});
  auto* base = reinterpret_cast<uint8_t*>(blocks.data());
  const uint64_t payload_end = cp::encode_slot_payload(s, base);
  const uint64_t checksum =
      abi::fnv1a64(base + sizeof(abi::SlotHeader), payload_end - sizeof(abi::SlotHeader));
  std::memcpy(base + offsetof(abi::SlotHeader, generation), &generation, sizeof(generation));
  std::memcpy(base + offsetof(abi::SlotHeader, checksum), &checksum, sizeof(checksum));
  Bytes slot(base, base + payload_end);
  cp::Snapshot decoded;
  std::string error;
  if (!cp::decode_slot(base, payload_end, decoded, error)) {
    std::fprintf(stderr, "fuzz_seeds: encoded slot does not decode: %s\n", error.c_str());
    std::exit(1);
  }
  return slot;
}

void write_snapshot_seeds(const std::filesystem::path& dir) {
  // Odd and even generations: the harness re-seals the checksum only for odd first bytes, and
  // these seeds are valid either way.
  write_file(dir / "empty.bin", encode(make_snapshot(0, 0, 0), 1));
  write_file(dir / "one_service.bin", encode(make_snapshot(1, 1, 7), 2));
  write_file(dir / "two_services.bin", encode(make_snapshot(2, 3, 13), 3));
  write_file(dir / "mixed.bin", encode(make_snapshot(5, 4, 31), 0x105));
  write_file(dir / "wide.bin", encode(make_snapshot(12, 2, 7), 0x200));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s packet|snapshot <directory>\n", argv[0]);
    return 2;
  }
  const std::string kind = argv[1];
  const std::filesystem::path dir = argv[2];
  std::filesystem::create_directories(dir);
  if (kind == "packet") {
    write_packet_seeds(dir);
  } else if (kind == "snapshot") {
    write_snapshot_seeds(dir);
  } else {
    std::fprintf(stderr, "unknown seed kind %s\n", kind.c_str());
    return 2;
  }
  // The directory is the build's output: rewriting existing files leaves its mtime alone, and
  // ninja would then regenerate it on every run.
  std::filesystem::last_write_time(dir, std::filesystem::file_time_type::clock::now());
  return 0;
}

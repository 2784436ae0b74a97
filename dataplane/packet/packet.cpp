#include "dataplane/packet/packet.h"

#include <netinet/in.h>
#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace ilb::dp::pkt {
namespace {

Kind drop(Parsed& out, abi::Drop reason) {
  out.kind = Kind::kDrop;
  out.drop = reason;
  return Kind::kDrop;
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

Kind parse_arp(const uint8_t* frame, uint32_t len, Parsed& out) {
  if (len < kArpFrameLen) return drop(out, abi::Drop::kTruncated);
  const auto* arp = reinterpret_cast<const rte_arp_hdr*>(frame + kEtherHdrLen);
  if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
      arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) || arp->arp_hlen != 6 ||
      arp->arp_plen != 4) {
    return drop(out, abi::Drop::kUnsupported);
  }
  out.l3_offset = kEtherHdrLen;
  out.kind = Kind::kArp;
  return Kind::kArp;
}

}  // namespace

Kind parse(const uint8_t* frame, uint32_t len, Parsed& out, ParseOptions opts) {
  out = Parsed{};
  if (len < kEtherHdrLen) return drop(out, abi::Drop::kTruncated);
  const auto* eth = reinterpret_cast<const rte_ether_hdr*>(frame);
  const uint16_t ether_type = rte_be_to_cpu_16(eth->ether_type);
  if (ether_type == RTE_ETHER_TYPE_ARP) return parse_arp(frame, len, out);
  if (ether_type != RTE_ETHER_TYPE_IPV4) return drop(out, abi::Drop::kUnsupported);

  if (len < kEtherHdrLen + sizeof(rte_ipv4_hdr)) return drop(out, abi::Drop::kTruncated);
  const uint8_t* l3 = frame + kEtherHdrLen;
  const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(l3);
  const uint8_t version = ip->version_ihl >> 4;
  const uint32_t ihl = static_cast<uint32_t>(ip->version_ihl & 0x0f) * 4;
  const uint32_t total = rte_be_to_cpu_16(ip->total_length);
  if (version != 4 || ihl < sizeof(rte_ipv4_hdr) || total < ihl) {
    return drop(out, abi::Drop::kBadIpHeader);
  }
  if (kEtherHdrLen + total > len) return drop(out, abi::Drop::kTruncated);
  if (opts.verify_ip_checksum && rte_raw_cksum(l3, ihl) != 0xffff) {
    return drop(out, abi::Drop::kBadIpChecksum);
  }
  const uint16_t frag = rte_be_to_cpu_16(ip->fragment_offset);
  if ((frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0) {
    return drop(out, abi::Drop::kFragment);
  }

  out.l3_offset = kEtherHdrLen;
  out.l4_offset = static_cast<uint16_t>(kEtherHdrLen + ihl);
  out.ip_total_len = static_cast<uint16_t>(total);
  out.proto = ip->next_proto_id;
  out.src_ip = ip->src_addr;
  out.dst_ip = ip->dst_addr;
  const uint8_t* l4 = l3 + ihl;
  const uint32_t l4_len = total - ihl;

  switch (ip->next_proto_id) {
    case IPPROTO_TCP: {
      if (l4_len < sizeof(rte_tcp_hdr)) return drop(out, abi::Drop::kTruncated);
      const auto* tcp = reinterpret_cast<const rte_tcp_hdr*>(l4);
      const uint32_t doff = static_cast<uint32_t>(tcp->data_off >> 4) * 4;
      if (doff < sizeof(rte_tcp_hdr) || doff > l4_len) return drop(out, abi::Drop::kBadIpHeader);
      constexpr uint8_t kStateChanging = RTE_TCP_SYN_FLAG | RTE_TCP_FIN_FLAG | RTE_TCP_RST_FLAG;
      if (opts.verify_l4_checksum &&
          (opts.verify_tcp_data_checksum || (tcp->tcp_flags & kStateChanging) != 0) &&
          rte_ipv4_udptcp_cksum_verify(ip, l4) != 0) {
        return drop(out, abi::Drop::kBadL4Checksum);
      }
      out.src_port = tcp->src_port;
      out.dst_port = tcp->dst_port;
      out.tcp_flags = tcp->tcp_flags;
      out.kind = Kind::kL4;
      return Kind::kL4;
    }
    case IPPROTO_UDP: {
      if (l4_len < sizeof(rte_udp_hdr)) return drop(out, abi::Drop::kTruncated);
      const auto* udp = reinterpret_cast<const rte_udp_hdr*>(l4);
      const uint32_t udp_len = rte_be_to_cpu_16(udp->dgram_len);
      if (udp_len < sizeof(rte_udp_hdr) || udp_len != l4_len) {
        return drop(out, abi::Drop::kBadIpHeader);
      }
      if (opts.verify_l4_checksum && udp->dgram_cksum != 0 &&
          rte_ipv4_udptcp_cksum_verify(ip, l4) != 0) {
        return drop(out, abi::Drop::kBadL4Checksum);
      }
      out.src_port = udp->src_port;
      out.dst_port = udp->dst_port;
      out.kind = Kind::kL4;
      return Kind::kL4;
    }
    case IPPROTO_ICMP: {
      if (l4_len < sizeof(rte_icmp_hdr)) return drop(out, abi::Drop::kTruncated);
      if (opts.verify_l4_checksum && rte_raw_cksum(l4, l4_len) != 0xffff) {
        return drop(out, abi::Drop::kBadL4Checksum);
      }
      out.icmp_type = l4[0];
      out.kind = Kind::kIcmp;
      return Kind::kIcmp;
    }
    default:
      return drop(out, abi::Drop::kUnsupported);
  }
}

void rewrite_l4(uint8_t* frame, const Parsed& p, uint32_t src_ip, uint16_t src_port,
                uint32_t dst_ip, uint16_t dst_port) {
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(frame + p.l3_offset);
  uint8_t* l4 = frame + p.l4_offset;
  const uint32_t old_src = ip->src_addr;
  const uint32_t old_dst = ip->dst_addr;
  // One difference for both addresses, applied once to each checksum that covers them.
  const uint32_t addresses = csum_diff32(old_src, src_ip) + csum_diff32(old_dst, dst_ip);
  ip->hdr_checksum = csum_apply(ip->hdr_checksum, addresses);
  ip->src_addr = src_ip;
  ip->dst_addr = dst_ip;

  // TCP and UDP put the ports at the same offsets; only the checksum's position differs.
  auto* ports = reinterpret_cast<rte_udp_hdr*>(l4);
  uint8_t* check_at = l4 + (p.proto == IPPROTO_TCP ? offsetof(rte_tcp_hdr, cksum)
                                                   : offsetof(rte_udp_hdr, dgram_cksum));
  uint16_t c = load<uint16_t>(check_at);
  const uint16_t old_sport = ports->src_port;
  const uint16_t old_dport = ports->dst_port;
  ports->src_port = src_port;
  ports->dst_port = dst_port;
  if (p.proto == IPPROTO_UDP && c == 0) return;
  c = csum_apply(c,
                 addresses + csum_diff16(old_sport, src_port) + csum_diff16(old_dport, dst_port));
  if (p.proto == IPPROTO_UDP && c == 0) c = 0xffff;  // 0 would mean "no checksum"
  std::memcpy(check_at, &c, sizeof(c));
}

namespace {

// Lowers the MSS option at offset `at` of TCP header `tcp` to `max_mss` if it offers more,
// updating the checksum incrementally. Returns whether it did.
bool lower_mss_option(uint8_t* tcp, uint32_t at, uint16_t max_mss) {
  const uint16_t mss = load<uint16_t>(tcp + at + 2);
  if (rte_be_to_cpu_16(mss) <= max_mss) return false;
  const uint16_t lowered = rte_cpu_to_be_16(max_mss);
  std::memcpy(tcp + at + 2, &lowered, 2);
  // The option sits at an even offset from the header's start only when padded so; the checksum
  // sums 16-bit words, so a field at an odd offset is added byte-swapped.
  uint16_t check = load<uint16_t>(tcp + offsetof(rte_tcp_hdr, cksum));
  check = (at % 2) == 0 ? csum_replace16(check, mss, lowered)
                        : csum_replace16(check, rte_bswap16(mss), rte_bswap16(lowered));
  std::memcpy(tcp + offsetof(rte_tcp_hdr, cksum), &check, 2);
  return true;
}

}  // namespace

bool clamp_tcp_mss(uint8_t* frame, const Parsed& p, uint16_t max_mss) {
  uint8_t* tcp = frame + p.l4_offset;
  // parse() checked that the header, options included, lies within the datagram.
  const uint32_t header_len = static_cast<uint32_t>(tcp[12] >> 4) * 4;
  bool lowered_any = false;
  uint32_t at = sizeof(rte_tcp_hdr);
  // Every MSS option: a receiver may take any of them (Linux takes the last).
  while (at < header_len) {
    const uint8_t kind = tcp[at];
    if (kind == 0) break;  // end of option list
    if (kind == 1) {       // no-operation
      ++at;
      continue;
    }
    if (at + 1 >= header_len) break;
    const uint8_t len = tcp[at + 1];
    if (len < 2 || at + len > header_len) break;
    if (kind == 2 && len == 4 && lower_mss_option(tcp, at, max_mss)) lowered_any = true;
    at += len;
  }
  return lowered_any;
}

void set_ether(uint8_t* frame, const uint8_t dst[6], const uint8_t src[6]) {
  std::memcpy(frame, dst, 6);
  std::memcpy(frame + 6, src, 6);
}

ArpInfo arp_info(const uint8_t* frame) {
  const auto* arp = reinterpret_cast<const rte_arp_hdr*>(frame + kEtherHdrLen);
  ArpInfo info;
  info.op = rte_be_to_cpu_16(arp->arp_opcode);
  std::memcpy(info.sender_mac, &arp->arp_data.arp_sha, 6);
  info.sender_ip = load<uint32_t>(reinterpret_cast<const uint8_t*>(&arp->arp_data.arp_sip));
  info.target_ip = load<uint32_t>(reinterpret_cast<const uint8_t*>(&arp->arp_data.arp_tip));
  return info;
}

void make_arp_reply(uint8_t* frame, const uint8_t our_mac[6]) {
  auto* eth = reinterpret_cast<rte_ether_hdr*>(frame);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(frame + kEtherHdrLen);
  const ArpInfo req = arp_info(frame);
  arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
  std::memcpy(&arp->arp_data.arp_tha, req.sender_mac, 6);
  std::memcpy(&arp->arp_data.arp_tip, &req.sender_ip, 4);
  std::memcpy(&arp->arp_data.arp_sha, our_mac, 6);
  std::memcpy(&arp->arp_data.arp_sip, &req.target_ip, 4);
  std::memcpy(&eth->dst_addr, req.sender_mac, 6);
  std::memcpy(&eth->src_addr, our_mac, 6);
}

uint32_t build_arp_request(uint8_t* buf, const uint8_t our_mac[6], uint32_t our_ip,
                           uint32_t target_ip) {
  std::memset(buf, 0, kMinFrameLen);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(buf);
  std::memset(&eth->dst_addr, 0xff, 6);
  std::memcpy(&eth->src_addr, our_mac, 6);
  eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(buf + kEtherHdrLen);
  arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  arp->arp_hlen = 6;
  arp->arp_plen = 4;
  arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
  std::memcpy(&arp->arp_data.arp_sha, our_mac, 6);
  std::memcpy(&arp->arp_data.arp_sip, &our_ip, 4);
  std::memcpy(&arp->arp_data.arp_tip, &target_ip, 4);
  return kMinFrameLen;
}

void make_echo_reply(uint8_t* frame, const Parsed& p, const uint8_t our_mac[6]) {
  auto* eth = reinterpret_cast<rte_ether_hdr*>(frame);
  std::memcpy(&eth->dst_addr, &eth->src_addr, 6);
  std::memcpy(&eth->src_addr, our_mac, 6);
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(frame + p.l3_offset);
  ip->src_addr = p.dst_ip;
  ip->dst_addr = p.src_ip;
  ip->time_to_live = 64;
  ip->hdr_checksum = 0;
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  auto* icmp = reinterpret_cast<rte_icmp_hdr*>(frame + p.l4_offset);
  const uint16_t old_word = load<uint16_t>(frame + p.l4_offset);  // type and code
  icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
  const uint16_t new_word = load<uint16_t>(frame + p.l4_offset);
  icmp->icmp_cksum = csum_replace16(icmp->icmp_cksum, old_word, new_word);
}

TcpSeq tcp_seq(const uint8_t* frame, const Parsed& p) {
  const auto* tcp = reinterpret_cast<const rte_tcp_hdr*>(frame + p.l4_offset);
  // parse() accepted the data offset: within the datagram, so the payload is not negative.
  const uint32_t payload =
      p.l3_offset + p.ip_total_len - p.l4_offset - static_cast<uint32_t>(tcp->data_off >> 4) * 4;
  const uint32_t flags = ((tcp->tcp_flags & RTE_TCP_SYN_FLAG) != 0 ? 1 : 0) +
                         ((tcp->tcp_flags & RTE_TCP_FIN_FLAG) != 0 ? 1 : 0);
  return TcpSeq{rte_be_to_cpu_32(tcp->sent_seq), rte_be_to_cpu_32(tcp->recv_ack), payload + flags};
}

bool parse_icmp_error(const uint8_t* frame, const Parsed& p, IcmpQuote& q) {
  if (p.kind != Kind::kIcmp || (p.icmp_type != 3 && p.icmp_type != 11)) return false;
  const uint32_t end = p.l3_offset + p.ip_total_len;  // the outer datagram's end
  const uint32_t inner = p.l4_offset + 8;
  if (inner + sizeof(rte_ipv4_hdr) > end) return false;
  const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(frame + inner);
  const uint32_t ihl = static_cast<uint32_t>(ip->version_ihl & 0x0f) * 4;
  if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(rte_ipv4_hdr) || inner + ihl + 8 > end) {
    return false;
  }
  if ((rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) != 0) return false;
  if (ip->next_proto_id != IPPROTO_TCP && ip->next_proto_id != IPPROTO_UDP) return false;
  const uint8_t* l4 = frame + inner + ihl;
  q.proto = ip->next_proto_id;
  q.src_ip = ip->src_addr;
  q.dst_ip = ip->dst_addr;
  std::memcpy(&q.src_port, l4, 2);
  std::memcpy(&q.dst_port, l4 + 2, 2);
  q.l3_offset = static_cast<uint16_t>(inner);
  q.l4_offset = static_cast<uint16_t>(inner + ihl);
  q.l4_quoted = static_cast<uint16_t>(end - q.l4_offset);
  return true;
}

void rewrite_icmp_error(uint8_t* frame, const Parsed& p, const IcmpQuote& q, uint32_t outer_src,
                        uint32_t outer_dst, uint32_t inner_src, uint16_t inner_sport,
                        uint32_t inner_dst, uint16_t inner_dport) {
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(frame + q.l3_offset);
  uint8_t* l4 = frame + q.l4_offset;
  // The quoted transport checksum covers the pseudo-header's addresses and the ports.
  const size_t check_at = q.proto == IPPROTO_TCP ? 16 : 6;
  if (q.l4_quoted >= check_at + 2) {
    uint16_t check;
    std::memcpy(&check, l4 + check_at, 2);
    if (q.proto == IPPROTO_TCP || check != 0) {  // UDP without a checksum stays without
      const uint32_t diff = csum_diff32(q.src_ip, inner_src) + csum_diff32(q.dst_ip, inner_dst) +
                            csum_diff16(q.src_port, inner_sport) +
                            csum_diff16(q.dst_port, inner_dport);
      check = csum_apply(check, diff);
      if (q.proto == IPPROTO_UDP && check == 0) check = 0xffff;
      std::memcpy(l4 + check_at, &check, 2);
    }
  }
  std::memcpy(l4, &inner_sport, 2);
  std::memcpy(l4 + 2, &inner_dport, 2);
  ip->hdr_checksum = csum_apply(ip->hdr_checksum, csum_diff32(ip->src_addr, inner_src) +
                                                      csum_diff32(ip->dst_addr, inner_dst));
  ip->src_addr = inner_src;
  ip->dst_addr = inner_dst;

  auto* icmp = reinterpret_cast<rte_icmp_hdr*>(frame + p.l4_offset);
  icmp->icmp_cksum = 0;
  const uint16_t sum =
      rte_raw_cksum(icmp, static_cast<size_t>(p.l3_offset + p.ip_total_len - p.l4_offset));
  icmp->icmp_cksum = static_cast<uint16_t>(~sum);

  auto* outer = reinterpret_cast<rte_ipv4_hdr*>(frame + p.l3_offset);
  outer->src_addr = outer_src;
  outer->dst_addr = outer_dst;
  outer->hdr_checksum = 0;
  outer->hdr_checksum = rte_ipv4_cksum(outer);
}

namespace {

// Ethernet + a 20-byte IPv4 header with checksum; returns the IPv4 header.
rte_ipv4_hdr* write_l2_l3(uint8_t* buf, const uint8_t dst_mac[6], const uint8_t src_mac[6],
                          uint32_t src_ip, uint32_t dst_ip, uint8_t proto, uint16_t l4_len) {
  auto* eth = reinterpret_cast<rte_ether_hdr*>(buf);
  std::memcpy(&eth->dst_addr, dst_mac, 6);
  std::memcpy(&eth->src_addr, src_mac, 6);
  eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(buf + kEtherHdrLen);
  ip->version_ihl = RTE_IPV4_VHL_DEF;
  ip->type_of_service = 0;
  ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(20 + l4_len));
  ip->packet_id = 0;
  ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
  ip->time_to_live = 64;
  ip->next_proto_id = proto;
  ip->src_addr = src_ip;
  ip->dst_addr = dst_ip;
  ip->hdr_checksum = 0;
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  return ip;
}

}  // namespace

uint32_t build_tcp_reset(uint8_t* buf, const Endpoint& src, const Endpoint& dst, uint32_t seq,
                         uint32_t ack, uint8_t flags) {
  std::memset(buf, 0, kMinFrameLen);
  const auto* ip = write_l2_l3(buf, dst.mac, src.mac, src.ip, dst.ip, IPPROTO_TCP, 20);
  auto* tcp = reinterpret_cast<rte_tcp_hdr*>(buf + kEtherHdrLen + 20);
  tcp->src_port = src.port;
  tcp->dst_port = dst.port;
  tcp->sent_seq = rte_cpu_to_be_32(seq);
  tcp->recv_ack = rte_cpu_to_be_32(ack);
  tcp->data_off = 5 << 4;
  tcp->tcp_flags = flags;
  tcp->rx_win = 0;
  tcp->tcp_urp = 0;
  tcp->cksum = 0;
  tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
  return kMinFrameLen;
}

uint32_t build_icmp_unreachable(uint8_t* buf, const uint8_t* frame, const Parsed& p,
                                const uint8_t our_mac[6], uint32_t our_ip, uint8_t code,
                                uint16_t next_hop_mtu) {
  const uint32_t quoted = static_cast<uint32_t>(p.l4_offset - p.l3_offset) + 8;
  const auto icmp_len = static_cast<uint16_t>(8 + quoted);
  const uint32_t len = kEtherHdrLen + 20 + icmp_len;
  std::memset(buf, 0, std::max(len, kMinFrameLen));
  const auto* eth_in = reinterpret_cast<const rte_ether_hdr*>(frame);
  write_l2_l3(buf, reinterpret_cast<const uint8_t*>(&eth_in->src_addr), our_mac, our_ip, p.src_ip,
              IPPROTO_ICMP, icmp_len);
  uint8_t* icmp = buf + kEtherHdrLen + 20;
  icmp[0] = 3;  // destination unreachable
  icmp[1] = code;
  const uint16_t mtu_be = rte_cpu_to_be_16(next_hop_mtu);
  std::memcpy(icmp + 6, &mtu_be, 2);
  std::memcpy(icmp + 8, frame + p.l3_offset, quoted);
  const uint16_t sum = rte_raw_cksum(icmp, icmp_len);
  const uint16_t check = static_cast<uint16_t>(~sum);
  std::memcpy(icmp + 2, &check, 2);
  return std::max(len, kMinFrameLen);
}

}  // namespace ilb::dp::pkt

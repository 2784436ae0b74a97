#include "tools/ilb-pktgen/traffic.h"

#include <arpa/inet.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "dataplane/packet/packet.h"

namespace ilb::pktgen {

namespace pkt = ilb::dp::pkt;

namespace {

constexpr uint32_t kIpLen = sizeof(rte_ipv4_hdr);
constexpr uint32_t kTcpLen = sizeof(rte_tcp_hdr);
constexpr uint32_t kUdpLen = sizeof(rte_udp_hdr);
constexpr uint32_t kStampLen = 6;  // 48-bit send time at the start of every data payload
constexpr uint64_t kStampMask = (uint64_t{1} << 48) - 1;
// How many flows next() looks at for one with data to send before giving up for this call.
constexpr uint32_t kScanLimit = 64;

// The byte at offset i of every data payload after the stamp: echoes are checked against it.
uint8_t pattern_byte(uint32_t i) {
  return static_cast<uint8_t>(i * 7 + 0x5a);
}

uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352d;
  x ^= x >> 15;
  x *= 0x846ca68b;
  x ^= x >> 16;
  return x;
}

uint32_t load_be32(const uint8_t* b) {
  return uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
}

rte_ipv4_hdr* ip_of(uint8_t* frame) {
  return reinterpret_cast<rte_ipv4_hdr*>(frame + pkt::kEtherHdrLen);
}

// Turns a received frame around: addresses, ports and MACs swapped (the frame goes back to the
// balancer it came from, from us). Swapping leaves every checksum as it was.
void turn_around(uint8_t* frame, const pkt::Parsed& p, const std::array<uint8_t, 6>& our_mac) {
  uint8_t peer[6];
  std::memcpy(peer, frame + 6, 6);
  pkt::set_ether(frame, peer, our_mac.data());
  rte_ipv4_hdr* ip = ip_of(frame);
  const uint32_t src = ip->src_addr;
  ip->src_addr = ip->dst_addr;
  ip->dst_addr = src;
  auto* ports = reinterpret_cast<uint16_t*>(frame + p.l4_offset);
  std::swap(ports[0], ports[1]);
}

// Replaces a TCP segment's sequence and acknowledgement numbers and flags (header length kept),
// updating its checksum incrementally.
void set_tcp(uint8_t* frame, const pkt::Parsed& p, uint32_t seq, uint32_t ack, uint8_t flags) {
  auto* tcp = reinterpret_cast<rte_tcp_hdr*>(frame + p.l4_offset);
  uint16_t check = tcp->cksum;
  check = pkt::csum_replace32(check, tcp->sent_seq, htonl(seq));
  check = pkt::csum_replace32(check, tcp->recv_ack, htonl(ack));
  // data_off and tcp_flags form one 16-bit word of the checksum.
  uint16_t old_word;
  std::memcpy(&old_word, &tcp->data_off, 2);
  tcp->sent_seq = htonl(seq);
  tcp->recv_ack = htonl(ack);
  tcp->tcp_flags = flags;
  uint16_t new_word;
  std::memcpy(&new_word, &tcp->data_off, 2);
  tcp->cksum = pkt::csum_replace16(check, old_word, new_word);
}

uint32_t l4_payload(const uint8_t* frame, const pkt::Parsed& p) {
  const uint32_t l4_bytes = p.ip_total_len - (p.l4_offset - p.l3_offset);
  if (p.proto == IPPROTO_UDP) return l4_bytes - kUdpLen;
  const auto* tcp = reinterpret_cast<const rte_tcp_hdr*>(frame + p.l4_offset);
  return l4_bytes - static_cast<uint32_t>(tcp->data_off >> 4) * 4;
}

}  // namespace

uint16_t queue_for(const uint8_t* frame, uint32_t len, uint16_t queues) {
  if (queues <= 1 || len < pkt::kEtherHdrLen + kIpLen) return 0;
  const uint8_t* ip = frame + pkt::kEtherHdrLen;
  if (frame[12] != 0x08 || frame[13] != 0x00 || (ip[0] >> 4) != 4) return 0;
  const uint32_t ihl = (ip[0] & 0x0f) * 4u;
  const uint8_t proto = ip[9];
  if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || ihl < kIpLen ||
      len < pkt::kEtherHdrLen + ihl + 4) {
    return 0;
  }
  const uint8_t* l4 = ip + ihl;
  uint32_t h = mix32(load_be32(ip + 12));
  h = mix32(h ^ load_be32(ip + 16));
  h = mix32(h ^ load_be32(l4));  // both ports
  return static_cast<uint16_t>(h % queues);
}

Traffic::Traffic(TrafficConfig cfg) : cfg_(std::move(cfg)) {
  const uint32_t l4 = cfg_.proto == Proto::kTcp ? kTcpLen : kUdpLen;
  if (cfg_.frame_len < pkt::kMinFrameLen || cfg_.frame_len > kMaxFrame) {
    throw std::invalid_argument("frame size must be 64..1518 bytes with FCS");
  }
  payload_len_ = cfg_.frame_len - pkt::kEtherHdrLen - kIpLen - l4;
  if (cfg_.vip == 0 || cfg_.vport == 0) throw std::invalid_argument("no VIP address and port");
  if (cfg_.backends.empty()) throw std::invalid_argument("no backend addresses");
  if (cfg_.client_count == 0 || cfg_.client_port_min == 0 ||
      cfg_.client_port_min > cfg_.client_port_max) {
    throw std::invalid_argument("empty client address or port range");
  }
  const uint64_t space =
      uint64_t{cfg_.client_count} * (cfg_.client_port_max - cfg_.client_port_min + 1u);
  tuple_space_ = static_cast<uint32_t>(std::min<uint64_t>(space, UINT32_MAX));
  if (cfg_.flows == 0 || cfg_.flows > tuple_space_) {
    throw std::invalid_argument("flows must be 1.." + std::to_string(tuple_space_) +
                                " (client addresses x ports)");
  }
  for (uint32_t b : cfg_.backends) {
    if (b - cfg_.client_base < cfg_.client_count || b == cfg_.vip) {
      throw std::invalid_argument("a backend address lies in the client range or is the VIP");
    }
  }
  if (cfg_.vip - cfg_.client_base < cfg_.client_count) {
    throw std::invalid_argument("the VIP lies in the client range");
  }
  handshake_ = cfg_.proto == Proto::kTcp && !cfg_.loopback;
  std::sort(cfg_.backends.begin(), cfg_.backends.end());
  std::sort(cfg_.snat.begin(), cfg_.snat.end());
  generations_ = tuple_space_ / cfg_.flows;
  flows_.resize(cfg_.flows);
  to_open_.resize(cfg_.flows);
  for (uint32_t f = 0; f < cfg_.flows; ++f) {
    flows_[f].tuple = f;
    to_open_[f] = f;
  }
  open_count_ = cfg_.flows;
  resend_.reserve(cfg_.flows);
}

void Traffic::set_peer(const std::array<uint8_t, 6>& mac) {
  peer_ = mac;
  peer_known_ = true;
}

uint32_t Traffic::arp_request(uint8_t* buf) const {
  return pkt::build_arp_request(buf, cfg_.mac.data(), htonl(cfg_.client_base), htonl(cfg_.vip));
}

uint32_t Traffic::client_ip(uint32_t tuple) const {
  const uint32_t ports = cfg_.client_port_max - cfg_.client_port_min + 1u;
  return cfg_.client_base + tuple / ports;
}

uint16_t Traffic::client_port(uint32_t tuple) const {
  const uint32_t ports = cfg_.client_port_max - cfg_.client_port_min + 1u;
  return static_cast<uint16_t>(cfg_.client_port_min + tuple % ports);
}

bool Traffic::is_backend(uint32_t ip) const {
  return std::binary_search(cfg_.backends.begin(), cfg_.backends.end(), ip);
}

bool Traffic::is_ours(uint32_t ip) const {
  return ip - cfg_.client_base < cfg_.client_count || is_backend(ip);
}

uint32_t Traffic::write_frame(uint8_t* buf, uint32_t flow, uint8_t tcp_flags, uint32_t payload_len,
                              uint64_t now) {
  const Flow& fl = flows_[flow];
  const bool tcp = cfg_.proto == Proto::kTcp;
  const uint32_t l4_len = (tcp ? kTcpLen : kUdpLen) + payload_len;
  const uint32_t frame_len = pkt::kEtherHdrLen + kIpLen + l4_len;
  pkt::set_ether(buf, peer_.data(), cfg_.mac.data());
  auto* eth = reinterpret_cast<rte_ether_hdr*>(buf);
  eth->ether_type = htons(RTE_ETHER_TYPE_IPV4);
  rte_ipv4_hdr* ip = ip_of(buf);
  ip->version_ihl = RTE_IPV4_VHL_DEF;
  ip->type_of_service = 0;
  ip->total_length = htons(static_cast<uint16_t>(kIpLen + l4_len));
  ip->packet_id = 0;
  ip->fragment_offset = htons(RTE_IPV4_HDR_DF_FLAG);
  ip->time_to_live = 64;
  ip->next_proto_id = tcp ? IPPROTO_TCP : IPPROTO_UDP;
  ip->hdr_checksum = 0;
  ip->src_addr = htonl(client_ip(fl.tuple));
  ip->dst_addr = htonl(cfg_.vip);
  uint8_t* l4 = buf + pkt::kEtherHdrLen + kIpLen;
  uint8_t* payload = l4 + (tcp ? kTcpLen : kUdpLen);
  if (payload_len > 0) {
    const uint64_t stamp = now & kStampMask;
    for (uint32_t i = 0; i < kStampLen; ++i) payload[i] = static_cast<uint8_t>(stamp >> (8 * i));
    for (uint32_t i = kStampLen; i < payload_len; ++i) payload[i] = pattern_byte(i);
  }
  if (tcp) {
    auto* th = reinterpret_cast<rte_tcp_hdr*>(l4);
    th->src_port = htons(client_port(fl.tuple));
    th->dst_port = htons(cfg_.vport);
    th->sent_seq = htonl(fl.snd_nxt);
    th->recv_ack = htonl((tcp_flags & RTE_TCP_ACK_FLAG) != 0 ? fl.rcv_nxt : 0);
    th->data_off = static_cast<uint8_t>((kTcpLen / 4) << 4);
    th->tcp_flags = tcp_flags;
    th->rx_win = htons(65535);
    th->cksum = 0;
    th->tcp_urp = 0;
    th->cksum = rte_ipv4_udptcp_cksum(ip, th);
  } else {
    auto* uh = reinterpret_cast<rte_udp_hdr*>(l4);
    uh->src_port = htons(client_port(fl.tuple));
    uh->dst_port = htons(cfg_.vport);
    uh->dgram_len = htons(static_cast<uint16_t>(l4_len));
    uh->dgram_cksum = 0;
    uh->dgram_cksum = rte_ipv4_udptcp_cksum(ip, uh);
  }
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  if (frame_len < pkt::kMinFrameLen) {
    std::memset(buf + frame_len, 0, pkt::kMinFrameLen - frame_len);
    return pkt::kMinFrameLen;
  }
  return frame_len;
}

uint32_t Traffic::next(uint8_t* buf, uint64_t now, bool may_open, bool& opened) {
  opened = false;
  if (!peer_known_) return 0;
  const bool tcp = cfg_.proto == Proto::kTcp;
  while (!resend_.empty()) {
    const uint32_t f = resend_.back();
    resend_.pop_back();
    Flow& fl = flows_[f];
    if (!fl.resend) continue;
    fl.resend = false;
    if (fl.state != State::kSynSent && fl.state != State::kFinSent) continue;
    ++counters_.retransmits;
    fl.since = now;
    // The same segment again: its sequence number is the one before snd_nxt.
    --fl.snd_nxt;
    const uint32_t len = write_frame(
        buf, f,
        fl.state == State::kSynSent ? RTE_TCP_SYN_FLAG : RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG, 0,
        now);
    ++fl.snd_nxt;
    return len;
  }
  if (closing_) {
    if (!handshake_) return 0;
    const bool give_up = cfg_.timeout_ticks != 0 && now - closing_since_ >= cfg_.timeout_ticks;
    const uint32_t limit = std::min(kScanLimit, cfg_.flows);
    for (uint32_t i = 0; i < limit; ++i) {
      const uint32_t f = advance(cursor_);
      if (flows_[f].state == State::kOpen && (give_up || flows_[f].echoed >= flows_[f].sent)) {
        return send_fin(buf, f, now);
      }
    }
    return 0;
  }
  if (may_open && open_count_ > 0) {
    const uint32_t f = to_open_[open_head_];
    open_head_ = (open_head_ + 1) % cfg_.flows;
    --open_count_;
    Flow& fl = flows_[f];
    fl.since = now;
    fl.sent = fl.echoed = 0;
    fl.retransmits = 0;
    ++counters_.syn_sent;
    opened = true;
    if (handshake_) {
      fl.state = State::kSynSent;
      ++unsettled_;
      fl.snd_nxt = mix32(fl.tuple * 2654435761u + fl.generation);
      fl.rcv_nxt = 0;
      const uint32_t len = write_frame(buf, f, RTE_TCP_SYN_FLAG, 0, now);
      fl.snd_nxt += 1;
      return len;
    }
    // UDP (or a loopback wire): the first data packet opens the flow.
    fl.state = State::kOpen;
    ++open_flows_;
    ++fl.sent;
    ++counters_.data_sent;
    return write_frame(buf, f, tcp ? RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG : 0, payload_len_, now);
  }
  if (!data_enabled_) return 0;
  const uint32_t limit = std::min(kScanLimit, cfg_.flows);
  for (uint32_t i = 0; i < limit; ++i) {
    const uint32_t f = advance(cursor_);
    Flow& fl = flows_[f];
    if (fl.state != State::kOpen) continue;
    if (cfg_.packets_per_flow != 0 && fl.sent >= cfg_.packets_per_flow) continue;
    ++fl.sent;
    ++counters_.data_sent;
    const uint32_t len =
        write_frame(buf, f, tcp ? RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG : 0, payload_len_, now);
    if (tcp) fl.snd_nxt += payload_len_;
    return len;
  }
  return 0;
}

uint32_t Traffic::send_fin(uint8_t* buf, uint32_t flow, uint64_t now) {
  Flow& fl = flows_[flow];
  fl.state = State::kFinSent;
  --open_flows_;
  ++unsettled_;
  fl.since = now;
  fl.retransmits = 0;
  ++counters_.fin_sent;
  const uint32_t len = write_frame(buf, flow, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG, 0, now);
  fl.snd_nxt += 1;
  return len;
}

void Traffic::retire(uint32_t flow) {
  Flow& fl = flows_[flow];
  if (fl.state == State::kOpen) --open_flows_;
  if (fl.state == State::kSynSent || fl.state == State::kFinSent) --unsettled_;
  fl.state = State::kIdle;
  fl.resend = false;
  ++fl.generation;
  fl.tuple = flow + (fl.generation % generations_) * cfg_.flows;
  to_open_[(open_head_ + open_count_) % cfg_.flows] = flow;
  ++open_count_;
}

void Traffic::expire(uint64_t now, uint32_t budget) {
  if (cfg_.timeout_ticks == 0) return;
  for (uint32_t i = 0; i < std::min(budget, cfg_.flows); ++i) {
    const uint32_t f = advance(expire_cursor_);
    Flow& fl = flows_[f];
    if (fl.state != State::kSynSent && fl.state != State::kFinSent) continue;
    if (now - fl.since < cfg_.timeout_ticks || fl.resend) continue;
    if (fl.retransmits < kMaxRetransmits) {
      ++fl.retransmits;
      fl.resend = true;
      resend_.push_back(f);
      continue;
    }
    ++(fl.state == State::kSynSent ? counters_.connect_timeouts : counters_.close_timeouts);
    retire(f);
  }
}

Traffic::Verdict Traffic::receive(uint8_t* frame, uint32_t& len, uint64_t now) {
  pkt::Parsed p;
  const pkt::Kind kind = pkt::parse(frame, len, p);
  if (kind == pkt::Kind::kArp) {
    const pkt::ArpInfo arp = pkt::arp_info(frame);
    if (arp.op == 1 && is_ours(ntohl(arp.target_ip))) {
      pkt::make_arp_reply(frame, cfg_.mac.data());
      len = std::max(len, pkt::kArpFrameLen);
      ++counters_.arp_replies;
      return Verdict::kReply;
    }
    if (arp.op == 2 && ntohl(arp.sender_ip) == cfg_.vip) {
      std::array<uint8_t, 6> mac;
      std::memcpy(mac.data(), arp.sender_mac, 6);
      set_peer(mac);
      return Verdict::kConsumed;
    }
    ++counters_.foreign;
    return Verdict::kConsumed;
  }
  if (kind == pkt::Kind::kDrop) {
    // Other EtherTypes (IPv6 neighbour discovery, LLDP) are not ours; anything else is broken.
    ++(p.drop == abi::Drop::kUnsupported ? counters_.foreign : counters_.bad_frames);
    return Verdict::kConsumed;
  }
  const uint32_t dst = ntohl(p.dst_ip);
  if (kind == pkt::Kind::kL4 && cfg_.loopback && dst == cfg_.vip &&
      ntohl(p.src_ip) - cfg_.client_base < cfg_.client_count) {
    return client_side(frame, len, p, now);  // our own frame, back as it was sent
  }
  if (kind == pkt::Kind::kL4 && is_backend(dst)) return reflect(frame, p);
  if (kind == pkt::Kind::kL4 && dst - cfg_.client_base < cfg_.client_count) {
    return client_side(frame, len, p, now);
  }
  ++counters_.foreign;
  return Verdict::kConsumed;
}

Traffic::Verdict Traffic::reflect(uint8_t* frame, const pkt::Parsed& p) {
  const uint32_t src = ntohl(p.src_ip);
  const bool from_snat =
      cfg_.snat.empty() || std::binary_search(cfg_.snat.begin(), cfg_.snat.end(), src);
  if ((cfg_.backend_port != 0 && ntohs(p.dst_port) != cfg_.backend_port) || !from_snat ||
      src - cfg_.client_base < cfg_.client_count) {
    ++counters_.bad_rewrite;
    return Verdict::kConsumed;
  }
  const uint32_t payload = l4_payload(frame, p);
  if (p.proto == IPPROTO_UDP) {
    ++counters_.backend_data;
    turn_around(frame, p, cfg_.mac);
    return Verdict::kReply;
  }
  const uint8_t flags = p.tcp_flags;
  const pkt::TcpSeq s = pkt::tcp_seq(frame, p);
  if ((flags & RTE_TCP_RST_FLAG) != 0) {
    ++counters_.backend_resets;
    return Verdict::kConsumed;
  }
  if ((flags & RTE_TCP_SYN_FLAG) != 0) {
    if ((flags & RTE_TCP_ACK_FLAG) != 0 || payload != 0) {
      ++counters_.bad_rewrite;  // a client SYN carries neither
      return Verdict::kConsumed;
    }
    ++counters_.backend_syns;
    // The backend's initial sequence number is a hash of the connection as it sees it.
    const uint32_t isn =
        mix32(p.src_ip ^ mix32(p.dst_ip ^ (uint32_t{p.src_port} << 16 | p.dst_port)));
    turn_around(frame, p, cfg_.mac);
    set_tcp(frame, p, isn, s.seq + 1, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
    return Verdict::kReply;
  }
  const bool fin = (flags & RTE_TCP_FIN_FLAG) != 0;
  if (payload == 0 && !fin) return Verdict::kConsumed;  // a pure ACK
  if (payload > 0) ++counters_.backend_data;
  // Echo: the payload goes back as it came; a FIN is answered with FIN-ACK.
  turn_around(frame, p, cfg_.mac);
  set_tcp(frame, p, s.ack, s.seq + payload + (fin ? 1 : 0),
          static_cast<uint8_t>(RTE_TCP_ACK_FLAG | (payload > 0 ? RTE_TCP_PSH_FLAG : 0) |
                               (fin ? RTE_TCP_FIN_FLAG : 0)));
  return Verdict::kReply;
}

Traffic::Verdict Traffic::client_side(uint8_t* frame, uint32_t& len, const pkt::Parsed& p,
                                      uint64_t now) {
  const bool tcp = cfg_.proto == Proto::kTcp;
  // Through a balancer the frame comes from the VIP to the client; on a loopback wire it is
  // the client's own, from the client to the VIP.
  const bool back = cfg_.loopback;
  const uint32_t service_ip = ntohl(back ? p.dst_ip : p.src_ip);
  const uint16_t service_port = ntohs(back ? p.dst_port : p.src_port);
  const uint32_t cip = ntohl(back ? p.src_ip : p.dst_ip);
  const uint16_t cport = ntohs(back ? p.src_port : p.dst_port);
  if (service_ip != cfg_.vip || service_port != cfg_.vport ||
      p.proto != (tcp ? IPPROTO_TCP : IPPROTO_UDP) || cport < cfg_.client_port_min ||
      cport > cfg_.client_port_max) {
    ++counters_.bad_rewrite;
    return Verdict::kConsumed;
  }
  const uint32_t ports = cfg_.client_port_max - cfg_.client_port_min + 1u;
  const uint64_t tuple64 =
      uint64_t{cip - cfg_.client_base} * ports + (cport - cfg_.client_port_min);
  const uint32_t f = static_cast<uint32_t>(tuple64 % cfg_.flows);
  Flow& fl = flows_[f];
  if (tuple64 != fl.tuple || fl.state == State::kIdle) {
    ++counters_.stale;
    return Verdict::kConsumed;
  }
  const uint32_t payload = l4_payload(frame, p);
  const uint8_t flags = tcp ? p.tcp_flags : 0;
  if (tcp && (flags & RTE_TCP_RST_FLAG) != 0) {
    ++counters_.client_resets;
    retire(f);
    return Verdict::kConsumed;
  }
  if (tcp && (flags & RTE_TCP_SYN_FLAG) != 0) {
    if ((flags & RTE_TCP_ACK_FLAG) == 0 || fl.state != State::kSynSent ||
        pkt::tcp_seq(frame, p).ack != fl.snd_nxt) {
      ++counters_.stale;
      return Verdict::kConsumed;
    }
    ++counters_.connected;
    connect_.record(now - fl.since);
    fl.rcv_nxt = pkt::tcp_seq(frame, p).seq + 1;
    fl.state = State::kOpen;
    ++open_flows_;
    --unsettled_;
    len = write_frame(frame, f, RTE_TCP_ACK_FLAG, 0, now);
    return Verdict::kReply;
  }
  if (payload > 0) {
    const uint8_t* data = frame + p.l3_offset + p.ip_total_len - payload;
    bool intact = payload == payload_len_;
    for (uint32_t i = kStampLen; intact && i < payload; ++i) intact = data[i] == pattern_byte(i);
    if (!intact) {
      ++counters_.bad_rewrite;
      return Verdict::kConsumed;
    }
    uint64_t stamp = 0;
    for (uint32_t i = 0; i < kStampLen; ++i) stamp |= uint64_t{data[i]} << (8 * i);
    latency_.record((now - stamp) & kStampMask);
    ++counters_.data_echoed;
    ++fl.echoed;
    if (!handshake_) {
      if (fl.echoed == 1) ++counters_.connected;
      if (cfg_.packets_per_flow != 0 && fl.echoed >= cfg_.packets_per_flow) retire(f);
      return Verdict::kConsumed;
    }
    const uint32_t end = pkt::tcp_seq(frame, p).seq + payload;
    if (static_cast<int32_t>(end - fl.rcv_nxt) > 0) fl.rcv_nxt = end;
    const bool done = cfg_.packets_per_flow != 0 && fl.echoed >= cfg_.packets_per_flow;
    if (fl.state == State::kOpen && (done || (closing_ && fl.echoed >= fl.sent))) {
      // Every echo is back: close from the client side.
      len = send_fin(frame, f, now);
      return Verdict::kReply;
    }
    return Verdict::kConsumed;
  }
  if (tcp && (flags & RTE_TCP_FIN_FLAG) != 0 && fl.state == State::kFinSent) {
    ++counters_.closed;
    fl.rcv_nxt = pkt::tcp_seq(frame, p).seq + 1;
    len = write_frame(frame, f, RTE_TCP_ACK_FLAG, 0, now);
    retire(f);
    return Verdict::kReply;
  }
  return Verdict::kConsumed;  // a pure ACK, or a FIN we did not ask for
}

}  // namespace ilb::pktgen

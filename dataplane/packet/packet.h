// Pure packet logic: parsing and validation of Ethernet / ARP / IPv4 / TCP / UDP / ICMP frames,
// NAT rewrites with incremental checksum updates, ARP and ICMP echo replies. It works on plain
// byte buffers (no mbufs, no EAL), so the same code runs on a NIC, on pcap files and in unit tests.
// DPDK's header structs and inline checksum helpers are used for layout and arithmetic only.
#pragma once

#include <cstdint>

#include "dataplane/abi/ilb_abi.h"

namespace ilb::dp::pkt {

inline constexpr uint32_t kEtherHdrLen = 14;
inline constexpr uint32_t kArpFrameLen = kEtherHdrLen + 28;
inline constexpr uint32_t kMinFrameLen = 60;  // Ethernet minimum without FCS

enum class Kind : uint8_t {
  kDrop,  // invalid or unsupported; Parsed::drop says why
  kArp,   // a well-formed Ethernet/IPv4 ARP packet
  kL4,    // IPv4 TCP or UDP, headers and checksums valid
  kIcmp,  // IPv4 ICMP, checksum valid
};

// Everything the dataplane needs to know about a frame, with addresses and ports in network
// byte order exactly as on the wire.
struct Parsed {
  Kind kind = Kind::kDrop;
  abi::Drop drop = abi::Drop::kUnsupported;
  uint8_t proto = 0;      // IPPROTO_TCP / IPPROTO_UDP / IPPROTO_ICMP
  uint8_t tcp_flags = 0;  // RTE_TCP_*_FLAG bits
  uint8_t icmp_type = 0;
  uint16_t l3_offset = 0;
  uint16_t l4_offset = 0;
  uint16_t ip_total_len = 0;  // IPv4 total length: frame bytes beyond it are padding
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
};

struct ParseOptions {
  bool verify_ip_checksum = true;  // false when the NIC reported the checksum good
  bool verify_l4_checksum = true;
  // With verify_l4_checksum: false verifies only the TCP segments that carry SYN, FIN or RST (the
  // ones that open, close or reset a connection). Other segments are forwarded with incrementally
  // updated checksums (RFC 1624), which keep a wrong checksum wrong, so the receiving host still
  // drops them; verifying them would read every payload byte on the worker.
  bool verify_tcp_data_checksum = true;
};

// Parses and validates `len` bytes at `frame`. Never reads past `len`. On kDrop, `out.drop`
// names the reason (truncated, bad header, bad checksum, fragment, unsupported).
Kind parse(const uint8_t* frame, uint32_t len, Parsed& out, ParseOptions opts = {});

// Rewrites an already-parsed kL4 frame's IPv4 source/destination and L4 ports (all network
// order), updating the IPv4 and TCP/UDP checksums incrementally (RFC 1624). A UDP checksum of
// zero ("none") stays zero.
void rewrite_l4(uint8_t* frame, const Parsed& p, uint32_t src_ip, uint16_t src_port,
                uint32_t dst_ip, uint16_t dst_port);

// The largest TCP maximum segment size (RFC 9293 3.7.1) that fits an IPv4 MTU: the MTU less
// 20 bytes of IPv4 and 20 of TCP header.
inline constexpr uint16_t mss_for_mtu(uint16_t mtu) {
  return static_cast<uint16_t>(mtu - 40);
}

// Lowers every MSS option of an already-parsed kL4 TCP frame that offers more than `max_mss` to
// it, updating the TCP checksum incrementally; a segment without the option, or with one at or
// below `max_mss`, is left alone. Only the TCP header's options are read (a malformed option
// list ends the walk). Returns whether an option was lowered. Meant for SYN segments, the only
// ones whose MSS option means anything.
bool clamp_tcp_mss(uint8_t* frame, const Parsed& p, uint16_t max_mss);

// Sets the Ethernet destination and source addresses.
void set_ether(uint8_t* frame, const uint8_t dst[6], const uint8_t src[6]);

// ARP fields of a kArp frame.
struct ArpInfo {
  uint16_t op = 0;  // 1 request, 2 reply (host order)
  uint8_t sender_mac[6]{};
  uint32_t sender_ip = 0;  // network order
  uint32_t target_ip = 0;  // network order
};
ArpInfo arp_info(const uint8_t* frame);

// Turns an ARP request (kArp, op 1) into the reply announcing `our_mac` for its target address.
void make_arp_reply(uint8_t* frame, const uint8_t our_mac[6]);

// Writes a broadcast ARP request for `target_ip` from `our_mac`/`our_ip` into `buf`, padded to
// the Ethernet minimum. Returns the frame length (kMinFrameLen). `buf` must hold that many bytes.
uint32_t build_arp_request(uint8_t* buf, const uint8_t our_mac[6], uint32_t our_ip,
                           uint32_t target_ip);

// Turns an ICMP echo request (kIcmp, type 8) into the echo reply: swaps addresses (IP and
// Ethernet, with `our_mac` as the new source), sets TTL 64 and fixes both checksums.
void make_echo_reply(uint8_t* frame, const Parsed& p, const uint8_t our_mac[6]);

// TCP sequence and acknowledgement numbers (host order) of a kL4 TCP frame, and the sequence
// space it occupies (SEG.LEN: its payload, plus one each for SYN and FIN).
struct TcpSeq {
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint32_t len = 0;
};
TcpSeq tcp_seq(const uint8_t* frame, const Parsed& p);

// One endpoint of a frame ilb originates: addresses and ports in network order.
struct Endpoint {
  const uint8_t* mac = nullptr;
  uint32_t ip = 0;
  uint16_t port = 0;
};

// Writes a 20-byte-header TCP segment with `flags` (RST, or RST|ACK) and no payload from `src`
// to `dst` into `buf`, padded to the Ethernet minimum, checksums set. Returns the frame length
// (kMinFrameLen). `buf` must hold that many bytes and must not overlap the caller's inputs.
uint32_t build_tcp_reset(uint8_t* buf, const Endpoint& src, const Endpoint& dst, uint32_t seq,
                         uint32_t ack, uint8_t flags);

// Largest frame build_icmp_unreachable() writes: Ethernet, IPv4, ICMP header, then the offending
// datagram's IPv4 header (at most 60 bytes) and first 8 bytes of payload.
inline constexpr uint32_t kMaxIcmpErrorLen = kEtherHdrLen + 20 + 8 + 60 + 8;
// Writes an ICMP destination-unreachable (`code`, e.g. 3 = port unreachable) from `our_ip` back
// to the sender of the kL4 frame `frame`, quoting its IP header and first 8 payload bytes as
// RFC 792 asks. With code 4 (fragmentation needed and DF set), `next_hop_mtu` goes into the
// header as RFC 1191 asks, for the sender's path-MTU discovery. Returns the frame length
// (padded to the Ethernet minimum). `buf` must hold kMaxIcmpErrorLen bytes and must not overlap
// `frame`.
uint32_t build_icmp_unreachable(uint8_t* buf, const uint8_t* frame, const Parsed& p,
                                const uint8_t our_mac[6], uint32_t our_ip, uint8_t code,
                                uint16_t next_hop_mtu = 0);

// The datagram an ICMP error quotes (RFC 792: its IP header and at least 8 bytes of payload), as
// it was sent: addresses and ports in network order.
struct IcmpQuote {
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint8_t proto = 0;       // IPPROTO_TCP or IPPROTO_UDP
  uint16_t l3_offset = 0;  // the quoted IP header, from the frame's start
  uint16_t l4_offset = 0;  // the quoted TCP/UDP header
  uint16_t l4_quoted = 0;  // bytes of it the quote holds (8 or more)
};
// Whether the kIcmp frame is an error that quotes a TCP or UDP datagram: destination unreachable
// (type 3, fragmentation needed included) or time exceeded (type 11), the quote a whole IPv4
// header of a first fragment and 8 bytes of its TCP/UDP header, within the outer datagram.
bool parse_icmp_error(const uint8_t* frame, const Parsed& p, IcmpQuote& q);
// Rewrites an ICMP error for the other side of a NAT: the outer addresses become `outer_src` and
// `outer_dst`, the quoted datagram's addresses and ports `inner_src`:`inner_sport` and
// `inner_dst`:`inner_dport` (all network order). The quote's IP checksum and, where the quote
// holds it, its TCP/UDP checksum are updated incrementally (a quote usually lacks the payload the
// transport checksum covers, so it can only stay as wrong or right as it was); the ICMP and outer
// IP checksums are computed afresh. The ICMP type, code and MTU are kept.
void rewrite_icmp_error(uint8_t* frame, const Parsed& p, const IcmpQuote& q, uint32_t outer_src,
                        uint32_t outer_dst, uint32_t inner_src, uint16_t inner_sport,
                        uint32_t inner_dst, uint16_t inner_dport);

// Ones'-complement checksum helpers, inline because every forwarded packet runs them. Values are
// as stored (network order): the ones'-complement sum does not depend on byte order (RFC 1071).

// Folds a 32-bit sum of 16-bit words to 16 bits with end-around carry (two folds always do).
inline uint16_t csum_fold(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}
// What changing a field from `from` to `to` adds to a checksum (RFC 1624 eqn. 3: ~m + m'). The
// differences of several fields add up and are applied once with csum_apply().
inline uint32_t csum_diff16(uint16_t from, uint16_t to) {
  return static_cast<uint32_t>(static_cast<uint16_t>(~from)) + to;
}
inline uint32_t csum_diff32(uint32_t from, uint32_t to) {
  return csum_diff16(static_cast<uint16_t>(from & 0xffff), static_cast<uint16_t>(to & 0xffff)) +
         csum_diff16(static_cast<uint16_t>(from >> 16), static_cast<uint16_t>(to >> 16));
}
// Checksum `check` after fields changed by `diff` (a sum of csum_diff*): HC' = ~(~HC + diff).
inline uint16_t csum_apply(uint16_t check, uint32_t diff) {
  return static_cast<uint16_t>(~csum_fold(static_cast<uint16_t>(~check) + diff));
}
// Incrementally updates checksum `check` when one 16-bit or 32-bit field changes.
inline uint16_t csum_replace16(uint16_t check, uint16_t from, uint16_t to) {
  return csum_apply(check, csum_diff16(from, to));
}
inline uint16_t csum_replace32(uint16_t check, uint32_t from, uint32_t to) {
  return csum_apply(check, csum_diff32(from, to));
}

}  // namespace ilb::dp::pkt

// Hand-built Ethernet / IPv4 / TCP / UDP / ICMP / ARP frames for the packet library's tests.
// Checksums here are computed with the test's own ones'-complement sum, written from RFC 1071
// without DPDK, so that the library under test is checked against an independent implementation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace ilb::test {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;
using Ip4 = std::array<uint8_t, 4>;

inline constexpr uint8_t kTcp = 6;
inline constexpr uint8_t kUdp = 17;
inline constexpr uint8_t kIcmp = 1;
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;

inline constexpr Mac kLbMac{0x02, 0, 0, 0, 0, 0x02};
inline constexpr Mac kClientMac{0x02, 0, 0, 0, 0, 0x10};

// Big-endian field access at byte offsets.
inline uint16_t get16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>((b[off] << 8) | b[off + 1]);
}
inline void put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}
inline void put32(Bytes& b, size_t off, uint32_t v) {
  put16(b, off, static_cast<uint16_t>(v >> 16));
  put16(b, off + 2, static_cast<uint16_t>(v));
}

// A value as the library sees it: the wire bytes loaded into an integer (network order).
inline uint32_t net32(const Ip4& a) {
  uint32_t v;
  std::memcpy(&v, a.data(), 4);
  return v;
}
inline uint16_t net16(uint16_t host) {
  const uint8_t b[2] = {static_cast<uint8_t>(host >> 8), static_cast<uint8_t>(host)};
  uint16_t v;
  std::memcpy(&v, b, 2);
  return v;
}

// RFC 1071: the 32-bit accumulation of big-endian 16-bit words, an odd last byte padded with 0.
inline uint32_t sum_words(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>((p[i] << 8) | p[i + 1]);
  if (n % 2 != 0) acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}
inline uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}
inline uint16_t inet_checksum(const uint8_t* p, size_t n, uint32_t acc = 0) {
  return static_cast<uint16_t>(~fold(sum_words(p, n, acc)));
}

// Frame layout: Ethernet at 0, IPv4 at 14, L4 at 14 + IHL.
inline constexpr size_t kL3 = 14;
inline size_t ihl_bytes(const Bytes& f) {
  return static_cast<size_t>(f[kL3] & 0x0f) * 4;
}
inline size_t l4_off(const Bytes& f) {
  return kL3 + ihl_bytes(f);
}
inline size_t ip_total(const Bytes& f) {
  return get16(f, kL3 + 2);
}
inline uint8_t ip_proto(const Bytes& f) {
  return f[kL3 + 9];
}
inline size_t l4_check_off(const Bytes& f) {
  return l4_off(f) + (ip_proto(f) == kTcp ? 16 : ip_proto(f) == kUdp ? 6 : 2);
}

inline void fix_ip_checksum(Bytes& f) {
  put16(f, kL3 + 10, 0);
  put16(f, kL3 + 10, inet_checksum(&f[kL3], ihl_bytes(f)));
}

// The full TCP/UDP checksum (pseudo-header + segment with its checksum field zeroed) or, for
// ICMP, the checksum of the message. Returns the value to store; UDP's 0 becomes 0xffff.
inline uint16_t full_l4_checksum(const Bytes& f) {
  Bytes copy = f;
  const size_t l4 = l4_off(copy);
  const size_t l4_len = ip_total(copy) - ihl_bytes(copy);
  put16(copy, l4_check_off(copy), 0);
  if (ip_proto(copy) == kIcmp) return inet_checksum(&copy[l4], l4_len);
  uint32_t acc = sum_words(&copy[kL3 + 12], 8);  // source and destination addresses
  acc += ip_proto(copy);
  acc += static_cast<uint32_t>(l4_len);
  const uint16_t c = inet_checksum(&copy[l4], l4_len, acc);
  return ip_proto(copy) == kUdp && c == 0 ? 0xffff : c;
}
inline void fix_l4_checksum(Bytes& f) {
  put16(f, l4_check_off(f), full_l4_checksum(f));
}

struct IpSpec {
  Ip4 src{10, 0, 0, 10};
  Ip4 dst{10, 0, 0, 100};
  uint8_t ttl = 63;
  uint8_t tos = 0;
  uint16_t id = 0x1234;
  uint16_t frag = 0x4000;  // DF
  Bytes options;           // a multiple of 4 bytes
  Mac eth_dst = kLbMac;
  Mac eth_src = kClientMac;
};

// Ethernet + IPv4 + `l4` + `pad` zero bytes of Ethernet padding, with a valid IP checksum and,
// for TCP/UDP/ICMP, a valid L4 checksum (unless `l4_checksum` is false: the field stays as given).
inline Bytes ipv4_frame(const IpSpec& s, uint8_t proto, const Bytes& l4, size_t pad = 0,
                        bool l4_checksum = true) {
  const size_t ihl = 20 + s.options.size();
  Bytes f(kL3 + ihl + l4.size() + pad, 0);
  std::memcpy(&f[0], s.eth_dst.data(), 6);
  std::memcpy(&f[6], s.eth_src.data(), 6);
  put16(f, 12, 0x0800);
  f[kL3] = static_cast<uint8_t>(0x40 | (ihl / 4));
  f[kL3 + 1] = s.tos;
  put16(f, kL3 + 2, static_cast<uint16_t>(ihl + l4.size()));
  put16(f, kL3 + 4, s.id);
  put16(f, kL3 + 6, s.frag);
  f[kL3 + 8] = s.ttl;
  f[kL3 + 9] = proto;
  std::memcpy(&f[kL3 + 12], s.src.data(), 4);
  std::memcpy(&f[kL3 + 16], s.dst.data(), 4);
  if (!s.options.empty()) std::memcpy(&f[kL3 + 20], s.options.data(), s.options.size());
  if (!l4.empty()) std::memcpy(&f[kL3 + ihl], l4.data(), l4.size());
  fix_ip_checksum(f);
  if (l4_checksum) fix_l4_checksum(f);
  return f;
}

struct TcpSpec {
  uint16_t sport = 40000;
  uint16_t dport = 80;
  uint32_t seq = 0x11223344;
  uint32_t ack = 0;
  uint8_t flags = kSyn;
  uint16_t window = 64240;
  Bytes options;  // a multiple of 4 bytes
  Bytes payload;
};

inline Bytes tcp_segment(const TcpSpec& t) {
  Bytes s(20 + t.options.size() + t.payload.size(), 0);
  put16(s, 0, t.sport);
  put16(s, 2, t.dport);
  put32(s, 4, t.seq);
  put32(s, 8, t.ack);
  s[12] = static_cast<uint8_t>(((20 + t.options.size()) / 4) << 4);
  s[13] = t.flags;
  put16(s, 14, t.window);
  if (!t.options.empty()) std::memcpy(&s[20], t.options.data(), t.options.size());
  if (!t.payload.empty())
    std::memcpy(&s[20 + t.options.size()], t.payload.data(), t.payload.size());
  return s;
}

inline Bytes udp_datagram(uint16_t sport, uint16_t dport, const Bytes& payload) {
  Bytes d(8 + payload.size(), 0);
  put16(d, 0, sport);
  put16(d, 2, dport);
  put16(d, 4, static_cast<uint16_t>(d.size()));
  if (!payload.empty()) std::memcpy(&d[8], payload.data(), payload.size());
  return d;
}

inline Bytes icmp_echo(uint8_t type, uint16_t ident, uint16_t seq, const Bytes& payload) {
  Bytes m(8 + payload.size(), 0);
  m[0] = type;
  put16(m, 4, ident);
  put16(m, 6, seq);
  if (!payload.empty()) std::memcpy(&m[8], payload.data(), payload.size());
  return m;
}

inline Bytes tcp_frame(const TcpSpec& t = {}, const IpSpec& ip = {}, size_t pad = 0) {
  return ipv4_frame(ip, kTcp, tcp_segment(t), pad);
}

// An Ethernet/IPv4 ARP packet (28 bytes) plus `pad` zero bytes.
inline Bytes arp_frame(uint16_t op, const Mac& eth_dst, const Mac& sha, const Ip4& spa,
                       const Mac& tha, const Ip4& tpa, size_t pad = 18) {
  Bytes f(42 + pad, 0);
  std::memcpy(&f[0], eth_dst.data(), 6);
  std::memcpy(&f[6], sha.data(), 6);
  put16(f, 12, 0x0806);
  put16(f, 14, 1);       // hardware: Ethernet
  put16(f, 16, 0x0800);  // protocol: IPv4
  f[18] = 6;
  f[19] = 4;
  put16(f, 20, op);
  std::memcpy(&f[22], sha.data(), 6);
  std::memcpy(&f[28], spa.data(), 4);
  std::memcpy(&f[32], tha.data(), 6);
  std::memcpy(&f[38], tpa.data(), 4);
  return f;
}

inline Bytes payload_of(size_t n, uint8_t seed = 0) {
  Bytes p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(seed + i * 7 + 1);
  return p;
}

// A heap copy of exactly `n` bytes of `f`, so that AddressSanitizer reports any read past `n`.
inline std::unique_ptr<uint8_t[]> exact_copy(const Bytes& f, size_t n) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[n]);
  if (n != 0) std::memcpy(buf.get(), f.data(), n);
  return buf;
}

}  // namespace ilb::test

#include <gtest/gtest.h>

#include <random>

#include "dataplane/packet/packet.h"
#include "tests/unit/packet/frame_builder.h"

namespace ilb::dp::pkt {
namespace {

using abi::Drop;
using namespace ilb::test;

// Parses exactly `n` bytes of `f` from a heap buffer of that size (ASan catches over-reads).
Parsed parse_exact(const Bytes& f, size_t n, ParseOptions opts = {}) {
  auto buf = exact_copy(f, n);
  Parsed p;
  p.kind = Kind::kL4;  // parse must overwrite everything
  p.src_port = 0xdead;
  parse(buf.get(), static_cast<uint32_t>(n), p, opts);
  return p;
}
Parsed parse_all(const Bytes& f, ParseOptions opts = {}) {
  return parse_exact(f, f.size(), opts);
}

void expect_drop(const Bytes& f, Drop reason) {
  const Parsed p = parse_all(f);
  EXPECT_EQ(p.kind, Kind::kDrop);
  EXPECT_EQ(p.drop, reason) << "got " << abi::drop_name(p.drop) << ", want "
                            << abi::drop_name(reason);
}

TEST(Parse, AcceptsTcpSynAndFillsEveryField) {
  TcpSpec t;
  t.options = {0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x07};  // MSS, NOP, window scale
  const Bytes f = tcp_frame(t, {}, 0);
  const Parsed p = parse_all(f);
  ASSERT_EQ(p.kind, Kind::kL4);
  EXPECT_EQ(p.proto, kTcp);
  EXPECT_EQ(p.tcp_flags, kSyn);
  EXPECT_EQ(p.icmp_type, 0);
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.l4_offset, 34);
  EXPECT_EQ(p.ip_total_len, 20 + 28);
  EXPECT_EQ(p.src_ip, net32({10, 0, 0, 10}));
  EXPECT_EQ(p.dst_ip, net32({10, 0, 0, 100}));
  EXPECT_EQ(p.src_port, net16(40000));
  EXPECT_EQ(p.dst_port, net16(80));
}

TEST(Parse, AcceptsTcpWithIpOptionsAndPayload) {
  TcpSpec t;
  t.flags = kAck | kPsh;
  t.payload = payload_of(101);
  IpSpec ip;
  ip.options = {0x01, 0x01, 0x01, 0x00};  // NOP NOP NOP EOL
  ip.src = {192, 168, 7, 1};
  ip.dst = {172, 16, 0, 9};
  const Bytes f = tcp_frame(t, ip);
  const Parsed p = parse_all(f);
  ASSERT_EQ(p.kind, Kind::kL4);
  EXPECT_EQ(p.tcp_flags, kAck | kPsh);
  EXPECT_EQ(p.l4_offset, 38);
  EXPECT_EQ(p.ip_total_len, 24 + 20 + 101);
  EXPECT_EQ(p.src_ip, net32({192, 168, 7, 1}));
  EXPECT_EQ(p.dst_ip, net32({172, 16, 0, 9}));
}

TEST(Parse, AcceptsUdpWithChecksum) {
  const Bytes f = ipv4_frame({}, kUdp, udp_datagram(5353, 53, payload_of(33)));
  ASSERT_NE(get16(f, l4_check_off(f)), 0);
  const Parsed p = parse_all(f);
  ASSERT_EQ(p.kind, Kind::kL4);
  EXPECT_EQ(p.proto, kUdp);
  EXPECT_EQ(p.tcp_flags, 0);
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.l4_offset, 34);
  EXPECT_EQ(p.ip_total_len, 20 + 8 + 33);
  EXPECT_EQ(p.src_ip, net32({10, 0, 0, 10}));
  EXPECT_EQ(p.dst_ip, net32({10, 0, 0, 100}));
  EXPECT_EQ(p.src_port, net16(5353));
  EXPECT_EQ(p.dst_port, net16(53));
}

TEST(Parse, AcceptsUdpWithoutChecksum) {
  const Bytes f = ipv4_frame({}, kUdp, udp_datagram(5353, 53, payload_of(10)), 0, false);
  ASSERT_EQ(get16(f, l4_check_off(f)), 0);
  const Parsed p = parse_all(f);
  ASSERT_EQ(p.kind, Kind::kL4);
  EXPECT_EQ(p.src_port, net16(5353));
  EXPECT_EQ(p.dst_port, net16(53));
}

TEST(Parse, AcceptsUdpWhoseChecksumComputesToZeroSentAsAllOnes) {
  Bytes f = ipv4_frame({}, kUdp, udp_datagram(1000, 53, payload_of(2)));
  // Choose the last payload word so that the datagram's sum is all ones (checksum 0 → 0xffff).
  const size_t last = f.size() - 2;
  put16(f, last, 0);
  put16(f, l4_check_off(f), 0);
  Bytes probe = f;
  const uint16_t partial = static_cast<uint16_t>(~full_l4_checksum(probe));
  put16(f, last, static_cast<uint16_t>(~partial));
  fix_l4_checksum(f);
  ASSERT_EQ(get16(f, l4_check_off(f)), 0xffff);
  EXPECT_EQ(parse_all(f).kind, Kind::kL4);
}

TEST(Parse, AcceptsIcmpEchoRequest) {
  const Bytes f = ipv4_frame({}, kIcmp, icmp_echo(8, 0x4242, 7, payload_of(56)));
  const Parsed p = parse_all(f);
  ASSERT_EQ(p.kind, Kind::kIcmp);
  EXPECT_EQ(p.proto, kIcmp);
  EXPECT_EQ(p.icmp_type, 8);
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.l4_offset, 34);
  EXPECT_EQ(p.ip_total_len, 20 + 64);
  EXPECT_EQ(p.src_ip, net32({10, 0, 0, 10}));
  EXPECT_EQ(p.dst_ip, net32({10, 0, 0, 100}));
}

TEST(Parse, AcceptsArpRequestAndReadsItsFields) {
  const Mac sha{0x02, 0, 0, 0, 0, 0x10};
  const Bytes f = arp_frame(1, Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, sha, {10, 0, 0, 10}, Mac{},
                            {10, 0, 0, 100});
  const Parsed p = parse_all(f);
  ASSERT_EQ(p.kind, Kind::kArp);
  EXPECT_EQ(p.l3_offset, 14);
  const ArpInfo a = arp_info(f.data());
  EXPECT_EQ(a.op, 1);
  EXPECT_EQ(Mac(std::to_array(a.sender_mac)), sha);
  EXPECT_EQ(a.sender_ip, net32({10, 0, 0, 10}));
  EXPECT_EQ(a.target_ip, net32({10, 0, 0, 100}));
}

TEST(Parse, AcceptsUnpaddedArp) {
  const Bytes f = arp_frame(2, kLbMac, kClientMac, {10, 0, 0, 21}, kLbMac, {10, 0, 0, 2}, 0);
  ASSERT_EQ(f.size(), kArpFrameLen);
  EXPECT_EQ(parse_all(f).kind, Kind::kArp);
  EXPECT_EQ(arp_info(f.data()).op, 2);
}

TEST(Parse, TcpSeqCountsPayloadSynAndFinButNotOptionsOrPadding) {
  TcpSpec t;
  t.flags = kAck | kPsh;
  t.payload = payload_of(101);
  IpSpec ip;
  ip.options = {0x01, 0x01, 0x01, 0x00};
  Bytes f = tcp_frame(t, ip);
  EXPECT_EQ(tcp_seq(f.data(), parse_all(f)).len, 101u);
  // A bare SYN padded to the Ethernet minimum occupies one sequence number.
  f = tcp_frame({}, {}, 6);
  EXPECT_EQ(tcp_seq(f.data(), parse_all(f)).len, 1u);
}

TEST(Parse, EthernetPaddingBeyondTotalLengthIsIgnored) {
  // A bare SYN is 54 bytes; on the wire it is padded to 60 with bytes that are not checksummed.
  Bytes f = tcp_frame({}, {}, 6);
  for (size_t i = f.size() - 6; i < f.size(); ++i) f[i] = 0xa5;
  Parsed p = parse_all(f);
  ASSERT_EQ(p.kind, Kind::kL4);
  EXPECT_EQ(p.ip_total_len, 40);

  Bytes u = ipv4_frame({}, kUdp, udp_datagram(1, 2, {}), 18);
  u.back() = 0x77;
  EXPECT_EQ(parse_all(u).kind, Kind::kL4);
  Bytes i = ipv4_frame({}, kIcmp, icmp_echo(8, 1, 1, {}), 18);
  i.back() = 0x77;
  EXPECT_EQ(parse_all(i).kind, Kind::kIcmp);
}

TEST(Parse, SkippingChecksumVerificationAcceptsBadChecksums) {
  Bytes f = tcp_frame();
  f[kL3 + 10] ^= 0x01;
  f[l4_check_off(f)] ^= 0x01;
  EXPECT_EQ(parse_all(f).kind, Kind::kDrop);
  EXPECT_EQ(parse_all(f, {.verify_ip_checksum = false, .verify_l4_checksum = false}).kind,
            Kind::kL4);
}

// ---- rejections ------------------------------------------------------------------------------

TEST(ParseRejects, FrameShorterThanEthernet) {
  const Bytes f = tcp_frame();
  for (size_t n = 0; n < kEtherHdrLen; ++n) {
    const Parsed p = parse_exact(f, n);
    EXPECT_EQ(p.kind, Kind::kDrop) << n;
    EXPECT_EQ(p.drop, Drop::kTruncated) << n;
  }
}

TEST(ParseRejects, FrameShorterThanIpv4Header) {
  const Bytes f = tcp_frame();
  for (size_t n = kEtherHdrLen; n < kEtherHdrLen + 20; ++n) {
    EXPECT_EQ(parse_exact(f, n).drop, Drop::kTruncated) << n;
  }
}

TEST(ParseRejects, FrameShorterThanIhl) {
  IpSpec ip;
  ip.options = Bytes(16, 0x01);  // IHL 9
  const Bytes f = tcp_frame({}, ip);
  for (size_t n = kEtherHdrLen + 20; n < kEtherHdrLen + 36; ++n) {
    const Parsed p = parse_exact(f, n);
    EXPECT_EQ(p.kind, Kind::kDrop) << n;
    EXPECT_EQ(p.drop, Drop::kTruncated) << n;
  }
}

TEST(ParseRejects, FrameShorterThanTotalLength) {
  TcpSpec t;
  t.payload = payload_of(20);
  const Bytes f = tcp_frame(t);
  EXPECT_EQ(parse_exact(f, f.size() - 1).drop, Drop::kTruncated);
  EXPECT_EQ(parse_exact(f, 34 + 20).drop, Drop::kTruncated);
  // Total length claiming one byte more than the frame holds.
  Bytes g = f;
  put16(g, kL3 + 2, static_cast<uint16_t>(ip_total(g) + 1));
  fix_ip_checksum(g);
  expect_drop(g, Drop::kTruncated);
}

TEST(ParseRejects, EveryPrefixOfValidFrames) {
  TcpSpec t;
  t.payload = payload_of(9);
  IpSpec opts;
  opts.options = {0x01, 0x01, 0x01, 0x00};
  const std::vector<Bytes> frames = {
      tcp_frame(t), tcp_frame(t, opts), ipv4_frame({}, kUdp, udp_datagram(1, 53, payload_of(5))),
      ipv4_frame({}, kIcmp, icmp_echo(8, 1, 2, payload_of(3))),
      arp_frame(1, kLbMac, kClientMac, {10, 0, 0, 10}, Mac{}, {10, 0, 0, 2}, 0)};
  for (const Bytes& f : frames) {
    ASSERT_NE(parse_all(f).kind, Kind::kDrop);
    for (size_t n = 0; n < f.size(); ++n) {
      const Parsed p = parse_exact(f, n);
      EXPECT_EQ(p.kind, Kind::kDrop) << "prefix " << n << " of " << f.size();
      EXPECT_EQ(p.drop, Drop::kTruncated) << "prefix " << n << " of " << f.size();
    }
  }
}

TEST(ParseRejects, IhlBelowFive) {
  for (uint8_t ihl = 0; ihl < 5; ++ihl) {
    Bytes f = tcp_frame();
    f[kL3] = static_cast<uint8_t>(0x40 | ihl);
    expect_drop(f, Drop::kBadIpHeader);
  }
}

TEST(ParseRejects, VersionOtherThanFour) {
  for (uint8_t v : {0, 5, 6, 15}) {
    Bytes f = tcp_frame();
    f[kL3] = static_cast<uint8_t>((v << 4) | 5);
    fix_ip_checksum(f);
    expect_drop(f, Drop::kBadIpHeader);
  }
}

TEST(ParseRejects, TotalLengthBelowIhl) {
  for (uint16_t total : {0, 1, 19}) {
    Bytes f = tcp_frame();
    put16(f, kL3 + 2, total);
    fix_ip_checksum(f);
    expect_drop(f, Drop::kBadIpHeader);
  }
  IpSpec ip;
  ip.options = Bytes(8, 0x01);
  Bytes f = tcp_frame({}, ip);
  put16(f, kL3 + 2, 24);  // IHL is 28
  fix_ip_checksum(f);
  expect_drop(f, Drop::kBadIpHeader);
}

TEST(ParseRejects, L4HeaderTruncatedByTotalLength) {
  // The frame holds a whole TCP header, but the IPv4 total length ends inside it.
  for (uint8_t proto : {kTcp, kUdp, kIcmp}) {
    Bytes f = ipv4_frame({}, proto, Bytes(20, 0), 0, false);
    put16(f, kL3 + 2, static_cast<uint16_t>(20 + (proto == kTcp ? 19 : 7)));
    fix_ip_checksum(f);
    expect_drop(f, Drop::kTruncated);
  }
}

TEST(ParseRejects, TcpDataOffsetBelowFive) {
  for (uint8_t doff = 0; doff < 5; ++doff) {
    Bytes f = tcp_frame();
    f[l4_off(f) + 12] = static_cast<uint8_t>(doff << 4);
    fix_l4_checksum(f);
    expect_drop(f, Drop::kBadIpHeader);
  }
}

TEST(ParseRejects, TcpDataOffsetBeyondSegment) {
  TcpSpec t;
  t.payload = payload_of(3);  // segment of 23 bytes: data offset 6 (24 bytes) is beyond it
  Bytes f = tcp_frame(t, {}, 20);
  f[l4_off(f) + 12] = 6 << 4;
  fix_l4_checksum(f);
  expect_drop(f, Drop::kBadIpHeader);
  f[l4_off(f) + 12] = 15 << 4;
  fix_l4_checksum(f);
  expect_drop(f, Drop::kBadIpHeader);
  // A data offset covering exactly the whole segment (options, no payload) is fine.
  TcpSpec o;
  o.options = {1, 1, 1, 0};
  EXPECT_EQ(parse_all(tcp_frame(o)).kind, Kind::kL4);
}

TEST(ParseRejects, UdpLengthBelowHeaderOrBeyondPayload) {
  for (uint16_t ulen : {0, 7, 8 + 5 + 1, 0xffff}) {
    Bytes f = ipv4_frame({}, kUdp, udp_datagram(1, 53, payload_of(5)), 20);
    put16(f, l4_off(f) + 4, ulen);
    fix_l4_checksum(f);
    expect_drop(f, Drop::kBadIpHeader);
  }
}

// A UDP length shorter than the IPv4 payload leaves bytes that belong to neither the datagram
// nor the Ethernet padding. Whether the checksum field is used or not, such a datagram must be
// treated the same way: as a bad header. (With a checksum, verifying it over the IPv4 payload
// instead of the UDP length would also mis-report a bad L4 checksum.)
TEST(ParseRejects, UdpLengthShorterThanIpPayload) {
  Bytes f = ipv4_frame({}, kUdp, udp_datagram(1, 53, payload_of(8)));
  put16(f, l4_off(f) + 4, 8 + 4);  // UDP length 12 in an IPv4 payload of 16
  // A checksum computed, as RFC 768 defines it, over the 12 bytes the UDP length covers.
  {
    Bytes shorter = ipv4_frame({}, kUdp, udp_datagram(1, 53, payload_of(4)));
    put16(f, l4_check_off(f), get16(shorter, l4_check_off(shorter)));
  }
  expect_drop(f, Drop::kBadIpHeader);
  put16(f, l4_check_off(f), 0);  // and with no checksum at all
  expect_drop(f, Drop::kBadIpHeader);
}

TEST(ParseRejects, BadIpChecksum) {
  Bytes f = tcp_frame();
  put16(f, kL3 + 10, static_cast<uint16_t>(get16(f, kL3 + 10) + 1));
  expect_drop(f, Drop::kBadIpChecksum);
  Bytes g = tcp_frame();
  g[kL3 + 8] = 1;  // TTL changed without updating the checksum
  expect_drop(g, Drop::kBadIpChecksum);
}

TEST(ParseRejects, BadTcpChecksum) {
  TcpSpec t;
  t.payload = payload_of(11);
  Bytes f = tcp_frame(t);
  f.back() ^= 0x40;
  expect_drop(f, Drop::kBadL4Checksum);
  // The pseudo-header is covered: a changed address with a fixed-up IP checksum is caught.
  Bytes g = tcp_frame(t);
  g[kL3 + 19] = 101;
  fix_ip_checksum(g);
  expect_drop(g, Drop::kBadL4Checksum);
}

// With verify_tcp_data_checksum off, only the segments that open, close or reset a connection
// have their TCP checksum verified; a plain data segment with a wrong checksum passes (its
// rewrite keeps the checksum wrong for the receiver to drop).
TEST(ParseRejects, BadTcpChecksumOfControlSegmentsOnlyWhenDataIsNotVerified) {
  const ParseOptions control_only{.verify_tcp_data_checksum = false};
  for (const uint8_t flags : {kAck, uint8_t(kAck | kPsh), kSyn, uint8_t(kSyn | kAck),
                              uint8_t(kFin | kAck), uint8_t(0x04), uint8_t(0x04 | kAck)}) {
    TcpSpec t;
    t.flags = flags;
    t.payload = payload_of(9);
    Bytes f = tcp_frame(t);
    f.back() ^= 0x08;
    EXPECT_EQ(parse_all(f).drop, Drop::kBadL4Checksum) << int{flags};
    const Parsed p = parse_all(f, control_only);
    if ((flags & (kSyn | kFin | 0x04)) != 0) {
      EXPECT_EQ(p.kind, Kind::kDrop) << int{flags};
      EXPECT_EQ(p.drop, Drop::kBadL4Checksum) << int{flags};
    } else {
      EXPECT_EQ(p.kind, Kind::kL4) << int{flags};
    }
  }
  // UDP is verified either way.
  Bytes u = ipv4_frame({}, kUdp, udp_datagram(1, 53, payload_of(6)));
  u.back() ^= 0x01;
  EXPECT_EQ(parse_all(u, control_only).drop, Drop::kBadL4Checksum);
}

TEST(ParseRejects, BadUdpChecksum) {
  Bytes f = ipv4_frame({}, kUdp, udp_datagram(1, 53, payload_of(6)));
  f.back() ^= 0x01;
  expect_drop(f, Drop::kBadL4Checksum);
}

TEST(ParseRejects, BadIcmpChecksum) {
  Bytes f = ipv4_frame({}, kIcmp, icmp_echo(8, 1, 1, payload_of(7)));
  f[l4_off(f) + 5] ^= 0x10;
  expect_drop(f, Drop::kBadL4Checksum);
}

TEST(ParseRejects, Fragments) {
  const std::vector<uint16_t> frag_fields = {0x2000, 0x0001, 0x2001, 0x1fff, 0x6000, 0x0100};
  for (uint16_t frag : frag_fields) {
    IpSpec ip;
    ip.frag = frag;
    expect_drop(tcp_frame({}, ip), Drop::kFragment);
    expect_drop(ipv4_frame(ip, kUdp, udp_datagram(1, 53, payload_of(4))), Drop::kFragment);
  }
  IpSpec df;
  df.frag = 0x4000;
  EXPECT_EQ(parse_all(tcp_frame({}, df)).kind, Kind::kL4);
  df.frag = 0;
  EXPECT_EQ(parse_all(tcp_frame({}, df)).kind, Kind::kL4);
}

TEST(ParseRejects, UnknownEtherType) {
  for (uint16_t type : {0x86dd, 0x8100, 0x88cc, 0x0000}) {
    Bytes f = tcp_frame();
    put16(f, 12, type);
    expect_drop(f, Drop::kUnsupported);
  }
}

TEST(ParseRejects, UnknownIpProtocol) {
  for (uint8_t proto : {0, 2, 47, 50, 132, 255}) {
    expect_drop(ipv4_frame({}, proto, payload_of(24), 0, false), Drop::kUnsupported);
  }
}

TEST(ParseRejects, ShortArp) {
  const Bytes f = arp_frame(1, kLbMac, kClientMac, {10, 0, 0, 10}, Mac{}, {10, 0, 0, 2}, 0);
  for (size_t n = kEtherHdrLen; n < kArpFrameLen; ++n) {
    EXPECT_EQ(parse_exact(f, n).drop, Drop::kTruncated) << n;
  }
}

TEST(ParseRejects, NonEthernetOrNonIpv4Arp) {
  const Bytes good = arp_frame(1, kLbMac, kClientMac, {10, 0, 0, 10}, Mac{}, {10, 0, 0, 2});
  const std::vector<std::pair<size_t, uint8_t>> edits = {
      {15, 6},     // hardware type 6 (IEEE 802)
      {16, 0x86},  // protocol 0x86dd
      {18, 8},     // hardware length
      {19, 16},    // protocol length
  };
  for (auto [off, value] : edits) {
    Bytes f = good;
    f[off] = value;
    expect_drop(f, Drop::kUnsupported);
  }
}

// Random frames of random lengths, half of them mutations of valid frames: parse never reads
// outside the frame (checked by the sanitizer build) and whatever it accepts is self-consistent.
TEST(Parse, RandomFramesAreParsedWithinBoundsAndConsistently) {
  std::mt19937 rng(1234);
  TcpSpec t;
  t.payload = payload_of(30);
  const std::vector<Bytes> seeds = {
      tcp_frame(t), ipv4_frame({}, kUdp, udp_datagram(9, 53, payload_of(20))),
      ipv4_frame({}, kIcmp, icmp_echo(8, 1, 1, payload_of(20))),
      arp_frame(1, kLbMac, kClientMac, {10, 0, 0, 10}, Mac{}, {10, 0, 0, 2})};
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    Bytes f;
    if (i % 2 == 0) {
      f.resize(rng() % 100);
      for (auto& b : f) b = static_cast<uint8_t>(rng());
      if (f.size() >= 14 && rng() % 2 == 0) put16(f, 12, 0x0800);
      if (f.size() >= 15 && rng() % 2 == 0) f[14] = 0x45;
    } else {
      f = seeds[rng() % seeds.size()];
      const int flips = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < flips; ++k)
        f[rng() % f.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
      if (rng() % 2 == 0 && f.size() >= kL3 + 20 && f.size() >= kL3 + ihl_bytes(f)) {
        fix_ip_checksum(f);
      }
      if (rng() % 2 == 0) f.resize(rng() % (f.size() + 1));
    }
    const Parsed p =
        parse_all(f, {.verify_ip_checksum = (i % 3) != 0, .verify_l4_checksum = (i % 5) != 0});
    if (p.kind == Kind::kDrop) continue;
    ++accepted;
    if (p.kind == Kind::kArp) {
      EXPECT_GE(f.size(), kArpFrameLen);
      continue;
    }
    EXPECT_EQ(p.l3_offset, kEtherHdrLen);
    EXPECT_GE(p.l4_offset, kEtherHdrLen + 20);
    EXPECT_LE(p.l3_offset + p.ip_total_len, f.size());
    const size_t l4_min = p.proto == kTcp ? 20 : 8;
    EXPECT_LE(p.l4_offset + l4_min, p.l3_offset + p.ip_total_len);
  }
  EXPECT_GT(accepted, 100);  // the mutations must exercise the accepting paths too
}

// ICMP errors quoting real datagrams, cut short and mutated at random: parse_icmp_error accepts
// only quotes whose headers lie inside the outer datagram, and rewriting an accepted one stays
// inside it (checked by the sanitizer build: exact-size buffers) and leaves valid outer IP and
// ICMP checksums and the new quoted addresses and ports.
TEST(ParseIcmpError, RandomQuotesStayWithinTheDatagram) {
  std::mt19937 rng(99);
  TcpSpec t;
  t.payload = payload_of(12);
  const std::vector<Bytes> datagrams = {tcp_frame(t),
                                        ipv4_frame({}, kUdp, udp_datagram(9, 53, payload_of(5)))};
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const Bytes& d = datagrams[rng() % datagrams.size()];
    Bytes quote(d.begin() + kL3, d.begin() + static_cast<std::ptrdiff_t>(kL3 + ip_total(d)));
    quote.resize(rng() % (quote.size() + 1));
    const int flips = static_cast<int>(rng() % 3);
    for (int k = 0; k < flips && !quote.empty(); ++k) {
      quote[rng() % quote.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    }
    const Bytes f = ipv4_frame({}, kIcmp, icmp_echo(rng() % 2 ? 3 : 11, 0, 1400, quote));
    const size_t n = f.size();
    auto buf = std::make_unique<uint8_t[]>(n);
    std::memcpy(buf.get(), f.data(), n);
    Parsed p;
    ASSERT_EQ(parse(buf.get(), static_cast<uint32_t>(n), p), Kind::kIcmp);
    IcmpQuote q;
    if (!parse_icmp_error(buf.get(), p, q)) continue;
    ++accepted;
    EXPECT_LE(q.l4_offset + 8u, p.l3_offset + p.ip_total_len);
    EXPECT_EQ(q.l4_offset + q.l4_quoted, p.l3_offset + p.ip_total_len);
    const size_t inner_ihl = q.l4_offset - q.l3_offset;
    const bool inner_valid = inet_checksum(buf.get() + q.l3_offset, inner_ihl) == 0;
    rewrite_icmp_error(buf.get(), p, q, net32({10, 0, 0, 1}), net32({10, 0, 0, 2}),
                       net32({10, 0, 0, 3}), net16(1111), net32({10, 0, 0, 4}), net16(2222));
    Parsed after;
    ASSERT_EQ(parse(buf.get(), static_cast<uint32_t>(n), after), Kind::kIcmp)
        << "outer IP and ICMP checksums valid";
    EXPECT_EQ(after.src_ip, net32({10, 0, 0, 1}));
    EXPECT_EQ(after.dst_ip, net32({10, 0, 0, 2}));
    IcmpQuote q2;
    ASSERT_TRUE(parse_icmp_error(buf.get(), after, q2));
    EXPECT_EQ(q2.src_ip, net32({10, 0, 0, 3}));
    EXPECT_EQ(q2.dst_ip, net32({10, 0, 0, 4}));
    EXPECT_EQ(q2.src_port, net16(1111));
    EXPECT_EQ(q2.dst_port, net16(2222));
    EXPECT_EQ(inet_checksum(buf.get() + q2.l3_offset, inner_ihl) == 0, inner_valid)
        << "the quoted IP header's checksum stays as valid as it was";
  }
  EXPECT_GT(accepted, 1000);
}

}  // namespace
}  // namespace ilb::dp::pkt

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "dataplane/packet/packet.h"
#include "tests/unit/packet/frame_builder.h"

namespace ilb::dp::pkt {
namespace {

using namespace ilb::test;

struct Endpoints {
  Ip4 src;
  uint16_t sport;
  Ip4 dst;
  uint16_t dport;
};

// The frame `f` with the new addresses and ports written in and every checksum recomputed from
// scratch by the test's own implementation; a UDP checksum of 0 ("none") stays 0.
Bytes recomputed(Bytes f, const Endpoints& e) {
  std::memcpy(&f[kL3 + 12], e.src.data(), 4);
  std::memcpy(&f[kL3 + 16], e.dst.data(), 4);
  put16(f, l4_off(f), e.sport);
  put16(f, l4_off(f) + 2, e.dport);
  fix_ip_checksum(f);
  const bool no_checksum = ip_proto(f) == kUdp && get16(f, l4_check_off(f)) == 0;
  if (!no_checksum) fix_l4_checksum(f);
  return f;
}

Bytes rewritten(Bytes f, const Endpoints& e) {
  Parsed p;
  EXPECT_EQ(parse(f.data(), static_cast<uint32_t>(f.size()), p), Kind::kL4);
  rewrite_l4(f.data(), p, net32(e.src), net16(e.sport), net32(e.dst), net16(e.dport));
  return f;
}

std::string hex(const Bytes& f) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < f.size(); ++i) {
    if (i % 16 == 0) s += "\n";
    s += kDigits[f[i] >> 4];
    s += kDigits[f[i] & 15];
    s += ' ';
  }
  return s;
}

void expect_rewrite_matches_recomputation(const Bytes& f, const Endpoints& e) {
  const Bytes got = rewritten(f, e);
  const Bytes want = recomputed(f, e);
  ASSERT_EQ(got, want) << "original:" << hex(f) << "\ngot:" << hex(got) << "\nwant:" << hex(want);
  Parsed p;
  EXPECT_EQ(parse(got.data(), static_cast<uint32_t>(got.size()), p), Kind::kL4)
      << "rewritten frame must still parse";
}

Ip4 random_ip(std::mt19937& rng) {
  const uint32_t v = rng();
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}
uint16_t random_port(std::mt19937& rng) {
  return static_cast<uint16_t>(rng());
}
Bytes random_bytes(std::mt19937& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

TEST(RewriteL4, MatchesFullRecomputationForRandomTcpAndUdp) {
  std::mt19937 rng(20261125);
  int udp_without_checksum = 0;
  for (int i = 0; i < 6000; ++i) {
    IpSpec ip;
    ip.src = random_ip(rng);
    ip.dst = random_ip(rng);
    ip.ttl = static_cast<uint8_t>(rng());
    ip.id = static_cast<uint16_t>(rng());
    if (rng() % 4 == 0) ip.options = Bytes(4 * (1 + rng() % 10), 0x01);
    const size_t payload = rng() % 4 == 0 ? rng() % 8 : rng() % 1461;
    const size_t pad = rng() % 3 == 0 ? rng() % 20 : 0;
    Bytes f;
    if (i % 2 == 0) {
      TcpSpec t;
      t.sport = random_port(rng);
      t.dport = random_port(rng);
      t.seq = static_cast<uint32_t>(rng());
      t.ack = static_cast<uint32_t>(rng());
      t.flags = static_cast<uint8_t>(rng());
      if (rng() % 3 == 0) t.options = random_bytes(rng, 4 * (rng() % 11));
      t.payload = random_bytes(rng, payload);
      f = tcp_frame(t, ip, pad);
    } else {
      const bool checksum = rng() % 4 != 0;
      f = ipv4_frame(ip, kUdp,
                     udp_datagram(random_port(rng), random_port(rng), random_bytes(rng, payload)),
                     pad, checksum);
      if (!checksum) ++udp_without_checksum;
    }
    for (size_t k = f.size() - pad; k < f.size(); ++k) f[k] = static_cast<uint8_t>(rng());
    const Endpoints e{random_ip(rng), random_port(rng), random_ip(rng), random_port(rng)};
    expect_rewrite_matches_recomputation(f, e);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(udp_without_checksum, 100);
}

TEST(RewriteL4, NatRewriteOfSynMatchesRecomputation) {
  TcpSpec t;
  t.options = {0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};
  const Bytes f = tcp_frame(t, {}, 0);
  const Endpoints e{{10, 0, 0, 101}, 1024, {10, 0, 0, 21}, 80};
  expect_rewrite_matches_recomputation(f, e);
  // Only addresses, ports and the two checksums changed.
  const Bytes got = rewritten(f, e);
  for (size_t i = 0; i < f.size(); ++i) {
    const bool may_change =
        (i >= kL3 + 10 && i < kL3 + 20) || (i >= 34 && i < 38) || (i >= 34 + 16 && i < 34 + 18);
    if (!may_change) {
      EXPECT_EQ(got[i], f[i]) << "byte " << i;
    }
  }
}

TEST(RewriteL4, UnchangedEndpointsLeaveFrameIdentical) {
  const Bytes f = tcp_frame();
  EXPECT_EQ(rewritten(f, {{10, 0, 0, 10}, 40000, {10, 0, 0, 100}, 80}), f);
  const Bytes u = ipv4_frame({}, kUdp, udp_datagram(7, 53, payload_of(3)));
  EXPECT_EQ(rewritten(u, {{10, 0, 0, 10}, 7, {10, 0, 0, 100}, 53}), u);
}

// Builds a UDP or TCP frame that, once rewritten to `e`, has a full L4 sum of all ones (a
// computed checksum of 0): the last payload word is chosen to make it so.
Bytes frame_with_zero_checksum_after(uint8_t proto, const Endpoints& e, const Endpoints& orig) {
  const Bytes payload = payload_of(12, 3);
  IpSpec ip;
  ip.src = e.src;
  ip.dst = e.dst;
  Bytes f;
  if (proto == kUdp) {
    f = ipv4_frame(ip, kUdp, udp_datagram(e.sport, e.dport, payload));
  } else {
    TcpSpec t;
    t.sport = e.sport;
    t.dport = e.dport;
    t.payload = payload;
    f = tcp_frame(t, ip);
  }
  const size_t last = f.size() - 2;
  put16(f, last, 0);
  const uint16_t c = full_l4_checksum(f);
  const uint16_t partial = static_cast<uint16_t>(~(proto == kUdp && c == 0xffff ? 0 : c));
  put16(f, last, static_cast<uint16_t>(~partial));
  fix_l4_checksum(f);
  EXPECT_EQ(get16(f, l4_check_off(f)), proto == kUdp ? 0xffff : 0x0000);
  return recomputed(f, orig);
}

TEST(RewriteL4, UdpChecksumThatBecomesZeroIsSentAsAllOnes) {
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    const Endpoints to{random_ip(rng), random_port(rng), random_ip(rng), random_port(rng)};
    const Endpoints from{random_ip(rng), random_port(rng), random_ip(rng), random_port(rng)};
    const Bytes f = frame_with_zero_checksum_after(kUdp, to, from);
    ASSERT_NE(get16(f, l4_check_off(f)), 0);
    const Bytes got = rewritten(f, to);
    ASSERT_EQ(get16(got, l4_check_off(got)), 0xffff) << hex(got);
    expect_rewrite_matches_recomputation(f, to);
    // And back again: a checksum stored as 0xffff is rewritten like any other.
    expect_rewrite_matches_recomputation(got, from);
  }
}

TEST(RewriteL4, TcpChecksumThatBecomesZeroStaysZero) {
  std::mt19937 rng(8);
  for (int i = 0; i < 500; ++i) {
    const Endpoints to{random_ip(rng), random_port(rng), random_ip(rng), random_port(rng)};
    const Endpoints from{random_ip(rng), random_port(rng), random_ip(rng), random_port(rng)};
    const Bytes f = frame_with_zero_checksum_after(kTcp, to, from);
    const Bytes got = rewritten(f, to);
    ASSERT_EQ(get16(got, l4_check_off(got)), 0x0000) << hex(got);
    expect_rewrite_matches_recomputation(f, to);
    expect_rewrite_matches_recomputation(got, from);
  }
}

TEST(RewriteL4, UdpWithoutChecksumStaysWithout) {
  const Bytes f = ipv4_frame({}, kUdp, udp_datagram(5000, 53, payload_of(20)), 0, false);
  const Endpoints e{{10, 0, 0, 101}, 1024, {10, 0, 0, 21}, 53};
  const Bytes got = rewritten(f, e);
  EXPECT_EQ(get16(got, l4_check_off(got)), 0);
  EXPECT_EQ(got, recomputed(f, e));
}

TEST(SetEther, WritesDestinationThenSource) {
  Bytes f = tcp_frame();
  const Mac dst{0x02, 0, 0, 0, 0, 0x21};
  set_ether(f.data(), dst.data(), kLbMac.data());
  EXPECT_EQ(Bytes(f.begin(), f.begin() + 6), Bytes(dst.begin(), dst.end()));
  EXPECT_EQ(Bytes(f.begin() + 6, f.begin() + 12), Bytes(kLbMac.begin(), kLbMac.end()));
  EXPECT_EQ(get16(f, 12), 0x0800);
}

// ---- checksum helpers ------------------------------------------------------------------------

uint16_t load16(const Bytes& b, size_t off) {
  uint16_t v;
  std::memcpy(&v, &b[off], 2);
  return v;
}
uint32_t load32(const Bytes& b, size_t off) {
  uint32_t v;
  std::memcpy(&v, &b[off], 4);
  return v;
}

TEST(Checksum, FoldAddsCarriesUntilSixteenBits) {
  EXPECT_EQ(csum_fold(0), 0);
  EXPECT_EQ(csum_fold(0xffff), 0xffff);
  EXPECT_EQ(csum_fold(0x10000), 1);
  EXPECT_EQ(csum_fold(0x1fffe), 0xffff);
  EXPECT_EQ(csum_fold(0xffffffff), 0xffff);
  EXPECT_EQ(csum_fold(0x0001fffe + 0x0001), 1);
  EXPECT_EQ(csum_fold(0x12345678), fold(0x12345678));
}

// The stored checksum of `b`, as network-order bytes loaded into an integer (as on the wire).
uint16_t stored_checksum(const Bytes& b) {
  return net16(inet_checksum(b.data(), b.size()));
}

TEST(Checksum, Replace16MatchesRecomputation) {
  std::mt19937 rng(16);
  for (int i = 0; i < 20000; ++i) {
    Bytes b = random_bytes(rng, 2 * (2 + rng() % 40));
    b[0] |= 0x01;  // word 0 is never replaced and never zero: the data is never all zeros
    const size_t off = 2 * (1 + rng() % (b.size() / 2 - 1));
    const uint16_t check = stored_checksum(b);
    const uint16_t from = load16(b, off);
    const uint16_t to = rng() % 8 == 0 ? static_cast<uint16_t>(rng() % 2 ? 0 : 0xffff)
                                       : static_cast<uint16_t>(rng());
    std::memcpy(&b[off], &to, 2);
    ASSERT_EQ(csum_replace16(check, from, to), stored_checksum(b)) << i;
  }
}

TEST(Checksum, Replace32MatchesRecomputation) {
  std::mt19937 rng(32);
  for (int i = 0; i < 20000; ++i) {
    Bytes b = random_bytes(rng, 2 * (3 + rng() % 40));
    b[1] |= 0x80;
    const size_t off = 2 * (1 + rng() % (b.size() / 2 - 2));
    const uint16_t check = stored_checksum(b);
    const uint32_t from = load32(b, off);
    const uint32_t to = rng() % 8 == 0 ? 0u : static_cast<uint32_t>(rng());
    std::memcpy(&b[off], &to, 4);
    ASSERT_EQ(csum_replace32(check, from, to), stored_checksum(b)) << i;
  }
}

TEST(Checksum, ReplaceHandlesAChecksumOfZero) {
  // Data whose sum is all ones has checksum 0; replacing a word must give the recomputed value,
  // and replacing it back must give 0 again (not 0xffff).
  Bytes b = {0x12, 0x34, 0xed, 0xcb};
  const uint16_t zero = stored_checksum(b);
  ASSERT_EQ(zero, 0);
  const uint16_t from = load16(b, 2);
  put16(b, 2, 0x0001);
  const uint16_t to = load16(b, 2);
  const uint16_t check = csum_replace16(zero, from, to);
  EXPECT_EQ(check, stored_checksum(b));
  EXPECT_EQ(csum_replace16(check, to, from), 0);
}

// A SYN whose MSS option (at `option_at` bytes into the options, after that many NOPs) offers
// `mss`, followed by window scale and SACK-permitted.
Bytes syn_with_mss(uint16_t mss, size_t option_at = 0) {
  TcpSpec t;
  t.options.assign(option_at, 0x01);
  t.options.insert(t.options.end(), {0x02, 0x04, static_cast<uint8_t>(mss >> 8),
                                     static_cast<uint8_t>(mss), 0x03, 0x03, 0x07, 0x04, 0x02});
  while (t.options.size() % 4 != 0) t.options.push_back(0x00);
  return tcp_frame(t);
}

Bytes clamped(Bytes f, uint16_t max_mss, bool& changed) {
  Parsed p;
  EXPECT_EQ(parse(f.data(), static_cast<uint32_t>(f.size()), p), Kind::kL4);
  changed = clamp_tcp_mss(f.data(), p, max_mss);
  return f;
}

TEST(ClampTcpMss, LowersAnMssAboveTheLimitAndKeepsTheChecksumRight) {
  // At an even and at an odd offset within the header: the checksum update differs.
  for (size_t at : {size_t{0}, size_t{1}, size_t{3}}) {
    const Bytes f = syn_with_mss(8960, at);
    bool changed = false;
    const Bytes got = clamped(f, 1460, changed);
    EXPECT_TRUE(changed) << "option at " << at;
    Bytes want = f;
    put16(want, l4_off(want) + 20 + at + 2, 1460);
    fix_l4_checksum(want);
    EXPECT_EQ(got, want) << "option at " << at << hex(got);
    Parsed p;
    EXPECT_EQ(parse(got.data(), static_cast<uint32_t>(got.size()), p), Kind::kL4);
  }
}

TEST(ClampTcpMss, LowersEveryMssOptionOfTheSegment) {
  TcpSpec t;
  t.options = {0x02, 0x04, 0x23, 0x00, 0x02, 0x04, 0x05, 0x00, 0x02, 0x04, 0x22, 0x38};
  const Bytes f = tcp_frame(t);
  bool changed = false;
  const Bytes got = clamped(f, 1460, changed);
  EXPECT_TRUE(changed);
  Bytes want = f;
  put16(want, l4_off(want) + 20 + 2, 1460);
  put16(want, l4_off(want) + 20 + 10, 1460);
  fix_l4_checksum(want);
  EXPECT_EQ(got, want) << hex(got);
}

TEST(ClampTcpMss, LeavesAnMssAtOrBelowTheLimitAlone) {
  for (uint16_t mss : {uint16_t{1460}, uint16_t{536}}) {
    const Bytes f = syn_with_mss(mss);
    bool changed = true;
    EXPECT_EQ(clamped(f, 1460, changed), f);
    EXPECT_FALSE(changed);
  }
}

TEST(ClampTcpMss, LeavesSegmentsWithoutTheOptionAlone) {
  TcpSpec t;
  t.options = {0x01, 0x01, 0x04, 0x02};  // NOP, NOP, SACK permitted
  for (const Bytes& f : {tcp_frame(), tcp_frame(t)}) {
    bool changed = true;
    EXPECT_EQ(clamped(f, 1460, changed), f);
    EXPECT_FALSE(changed);
  }
}

TEST(ClampTcpMss, StopsAtMalformedOrEndedOptionLists) {
  const std::vector<Bytes> lists = {
      {0x00, 0x02, 0x04, 0x23, 0x00, 0x00, 0x00, 0x00},  // end of list before an MSS option
      {0x05, 0x00, 0x02, 0x04, 0x23, 0x00, 0x00, 0x00},  // length 0: the walk cannot go on
      {0x05, 0x09, 0x02, 0x04, 0x23, 0x00, 0x00, 0x00},  // runs past the header
      {0x01, 0x01, 0x01, 0x02},                          // MSS kind in the last byte
      {0x02, 0x03, 0x23, 0x00},                          // MSS with a wrong length
  };
  for (const Bytes& options : lists) {
    TcpSpec t;
    t.options = options;
    const Bytes f = tcp_frame(t);
    bool changed = true;
    EXPECT_EQ(clamped(f, 1460, changed), f);
    EXPECT_FALSE(changed);
  }
}

TEST(ClampTcpMss, MssForMtuLeavesRoomForTheHeaders) {
  EXPECT_EQ(mss_for_mtu(1500), 1460);
  EXPECT_EQ(mss_for_mtu(9001), 8961);
}

}  // namespace
}  // namespace ilb::dp::pkt

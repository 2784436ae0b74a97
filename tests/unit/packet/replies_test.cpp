#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "dataplane/packet/packet.h"
#include "tests/unit/packet/frame_builder.h"

namespace ilb::dp::pkt {
namespace {

using namespace ilb::test;

TEST(ArpReply, AnswersRequestWithExactBytes) {
  // Who has 10.0.0.100? Tell 10.0.0.10 (02:00:00:00:00:10), padded to 60 bytes.
  Bytes frame = {
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x10, 0x08, 0x06,  // eth
      0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,                                      // req
      0x02, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0a, 0x00, 0x00, 0x0a,                          // sender
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x64,                          // target
      0xde, 0xad, 0xbe, 0xef, 0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
      0,    0,    0,    0,  // pad
  };
  ASSERT_EQ(frame.size(), kMinFrameLen);
  Parsed p;
  ASSERT_EQ(parse(frame.data(), static_cast<uint32_t>(frame.size()), p), Kind::kArp);
  make_arp_reply(frame.data(), kLbMac.data());
  const Bytes want = {
      0x02, 0x00, 0x00, 0x00, 0x00, 0x10, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x06,  // eth
      0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,                                      // reply
      0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x64,                          // sender
      0x02, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0a, 0x00, 0x00, 0x0a,                          // target
      0xde, 0xad, 0xbe, 0xef, 0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
      0,    0,    0,    0,  // pad
  };
  EXPECT_EQ(frame, want);
  const ArpInfo a = arp_info(frame.data());
  EXPECT_EQ(a.op, 2);
  EXPECT_EQ(a.sender_ip, net32({10, 0, 0, 100}));
  EXPECT_EQ(a.target_ip, net32({10, 0, 0, 10}));
}

TEST(ArpReply, MatchesBuilderForUnicastRequestWithoutPadding) {
  const Mac asker{0x0a, 0xbb, 0xcc, 0xdd, 0xee, 0x01};
  Bytes frame = arp_frame(1, kLbMac, asker, {192, 168, 1, 5}, kLbMac, {192, 168, 1, 1}, 0);
  make_arp_reply(frame.data(), kLbMac.data());
  Bytes want = arp_frame(2, asker, kLbMac, {192, 168, 1, 1}, asker, {192, 168, 1, 5}, 0);
  EXPECT_EQ(frame, want);
}

TEST(ArpRequest, BuildsBroadcastRequestPaddedToMinimum) {
  uint8_t buf[kMinFrameLen];
  std::memset(buf, 0x5a, sizeof(buf));  // every byte must be written
  const uint32_t n =
      build_arp_request(buf, kLbMac.data(), net32({10, 0, 0, 2}), net32({10, 0, 0, 21}));
  ASSERT_EQ(n, kMinFrameLen);
  const Bytes want = {
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x06,  // eth
      0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,                                      // req
      0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x02,                          // sender
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x15,                          // target
      0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
      0,    0,    0,    0,  // pad
  };
  EXPECT_EQ(Bytes(buf, buf + n), want);
  Parsed p;
  EXPECT_EQ(parse(buf, n, p), Kind::kArp);
  EXPECT_EQ(arp_info(buf).op, 1);
}

struct EchoCase {
  const char* name;
  size_t payload;
  size_t ip_options;
  size_t pad;
};

class EchoReply : public ::testing::TestWithParam<EchoCase> {};

TEST_P(EchoReply, SwapsAddressesSetsTtlAndChecksumsLikeAFreshReply) {
  const EchoCase c = GetParam();
  IpSpec req_ip;
  req_ip.src = {10, 0, 0, 10};
  req_ip.dst = {10, 0, 0, 100};
  req_ip.ttl = 17;
  req_ip.id = 0xbeef;
  req_ip.tos = 0x10;
  req_ip.options = Bytes(c.ip_options, 0x01);
  req_ip.eth_dst = kLbMac;
  req_ip.eth_src = Mac{0x02, 0, 0, 0, 0, 0x33};
  const Bytes payload = payload_of(c.payload, 9);
  Bytes frame = ipv4_frame(req_ip, kIcmp, icmp_echo(8, 0x1d2e, 42, payload), c.pad);
  for (size_t i = frame.size() - c.pad; i < frame.size(); ++i) frame[i] = 0xee;

  Parsed p;
  ASSERT_EQ(parse(frame.data(), static_cast<uint32_t>(frame.size()), p), Kind::kIcmp);
  make_echo_reply(frame.data(), p, kLbMac.data());

  IpSpec reply_ip = req_ip;
  reply_ip.src = req_ip.dst;
  reply_ip.dst = req_ip.src;
  reply_ip.ttl = 64;
  reply_ip.eth_dst = req_ip.eth_src;
  reply_ip.eth_src = kLbMac;
  Bytes want = ipv4_frame(reply_ip, kIcmp, icmp_echo(0, 0x1d2e, 42, payload), c.pad);
  for (size_t i = want.size() - c.pad; i < want.size(); ++i) want[i] = 0xee;
  EXPECT_EQ(frame, want);

  Parsed r;
  ASSERT_EQ(parse(frame.data(), static_cast<uint32_t>(frame.size()), r), Kind::kIcmp);
  EXPECT_EQ(r.icmp_type, 0);
}

INSTANTIATE_TEST_SUITE_P(Shapes, EchoReply,
                         ::testing::Values(EchoCase{"Ping56", 56, 0, 0},
                                           EchoCase{"Empty", 0, 0, 18},
                                           EchoCase{"OddPayload", 33, 0, 0},
                                           EchoCase{"IpOptions", 20, 8, 0},
                                           EchoCase{"Large", 1472, 0, 0}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(EchoReplyChecksum, MatchesRecomputationForManyIdentifiers) {
  // The ICMP checksum is updated incrementally; compare it with a fresh one over many values,
  // including those whose reply checksum is 0.
  for (uint32_t ident = 0; ident < 0x10000; ident += 7) {
    Bytes frame =
        ipv4_frame({}, kIcmp, icmp_echo(8, static_cast<uint16_t>(ident), 1, payload_of(4)));
    Parsed p;
    ASSERT_EQ(parse(frame.data(), static_cast<uint32_t>(frame.size()), p), Kind::kIcmp);
    make_echo_reply(frame.data(), p, kLbMac.data());
    ASSERT_EQ(get16(frame, l4_check_off(frame)), full_l4_checksum(frame)) << ident;
  }
}

TEST(IcmpUnreachable, FragmentationNeededCarriesTheNextHopMtu) {
  IpSpec ip;
  ip.src = {10, 0, 0, 10};
  ip.dst = {10, 0, 0, 100};
  const Bytes big = ipv4_frame(ip, kUdp, udp_datagram(5000, 53, payload_of(1600)));
  Parsed p;
  ASSERT_EQ(parse(big.data(), static_cast<uint32_t>(big.size()), p), Kind::kL4);
  Bytes out(kMaxIcmpErrorLen);
  const Ip4 us{10, 0, 0, 100};
  const uint32_t len =
      build_icmp_unreachable(out.data(), big.data(), p, kLbMac.data(), net32(us), 4, 1500);
  out.resize(len);
  Parsed r;
  ASSERT_EQ(parse(out.data(), len, r), Kind::kIcmp);  // the checksum covers the MTU field
  const size_t icmp = l4_off(out);
  EXPECT_EQ(out[icmp], 3);
  EXPECT_EQ(out[icmp + 1], 4);
  EXPECT_EQ(get16(out, icmp + 4), 0);  // unused
  EXPECT_EQ(get16(out, icmp + 6), 1500);
  // The quote: the offending datagram's IP header and first 8 bytes, as sent.
  EXPECT_TRUE(std::equal(big.begin() + kL3, big.begin() + kL3 + 28, out.begin() + icmp + 8));
  EXPECT_EQ(std::memcmp(&out[0], kClientMac.data(), 6), 0);
}

}  // namespace
}  // namespace ilb::dp::pkt

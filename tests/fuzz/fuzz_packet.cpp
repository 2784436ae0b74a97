// libFuzzer target for the packet library: every frame a NIC can deliver goes through
// ilb::dp::pkt::parse. Beyond memory safety it checks the library's promises: turning checksum
// verification off changes only checksum verdicts; a NAT rewrite of a valid TCP/UDP frame yields a
// frame that parses again with valid checksums and the new addresses; ARP and ICMP echo replies
// built from valid requests are themselves valid.
//
// The rewrite's new addresses and ports are taken from the frame's own Ethernet addresses (bytes
// [0, 12)), which parse ignores, so the input stays a plain frame and the fuzzer still controls
// every rewrite value.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/packet/packet.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using ilb::dp::pkt::Kind;
using ilb::dp::pkt::Parsed;
namespace pkt = ilb::dp::pkt;

constexpr uint8_t kOurMac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kIcmpEchoReply = 0;
constexpr uint8_t kUdp = 17;

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

bool same_parse(const Parsed& a, const Parsed& b) {
  return a.kind == b.kind && a.proto == b.proto && a.tcp_flags == b.tcp_flags &&
         a.icmp_type == b.icmp_type && a.l3_offset == b.l3_offset && a.l4_offset == b.l4_offset &&
         a.ip_total_len == b.ip_total_len && a.src_ip == b.src_ip && a.dst_ip == b.dst_ip &&
         a.src_port == b.src_port && a.dst_port == b.dst_port;
}

uint16_t udp_checksum(const std::vector<uint8_t>& frame, const Parsed& p) {
  return load<uint16_t>(frame.data() + p.l4_offset + 6);
}

void check_rewrite(const std::vector<uint8_t>& frame, const Parsed& p) {
  const uint32_t src_ip = load<uint32_t>(frame.data());
  const uint16_t src_port = load<uint16_t>(frame.data() + 4);
  const uint32_t dst_ip = load<uint32_t>(frame.data() + 6);
  const uint16_t dst_port = load<uint16_t>(frame.data() + 10);

  std::vector<uint8_t> out(frame);
  pkt::rewrite_l4(out.data(), p, src_ip, src_port, dst_ip, dst_port);
  Parsed q;
  const Kind k = pkt::parse(out.data(), static_cast<uint32_t>(out.size()), q);
  ILB_FUZZ_CHECK(k == Kind::kL4,
                 "a rewritten valid TCP/UDP frame parses again with valid checksums");
  ILB_FUZZ_CHECK(
      q.src_ip == src_ip && q.dst_ip == dst_ip && q.src_port == src_port && q.dst_port == dst_port,
      "the rewritten frame carries the new addresses and ports");
  ILB_FUZZ_CHECK(q.proto == p.proto && q.tcp_flags == p.tcp_flags &&
                     q.ip_total_len == p.ip_total_len && q.l4_offset == p.l4_offset,
                 "a rewrite changes addresses, ports and checksums only");
  if (p.proto == kUdp) {
    ILB_FUZZ_CHECK((udp_checksum(frame, p) == 0) == (udp_checksum(out, p) == 0),
                   "a UDP checksum of zero (none) stays zero and a real one never becomes zero");
  }
}

void check_arp_reply(const std::vector<uint8_t>& frame) {
  const pkt::ArpInfo req = pkt::arp_info(frame.data());
  std::vector<uint8_t> out(frame);
  pkt::make_arp_reply(out.data(), kOurMac);
  Parsed q;
  ILB_FUZZ_CHECK(pkt::parse(out.data(), static_cast<uint32_t>(out.size()), q) == Kind::kArp,
                 "an ARP reply built from a valid ARP frame is a valid ARP frame");
  const pkt::ArpInfo rep = pkt::arp_info(out.data());
  ILB_FUZZ_CHECK(rep.op == 2, "the reply's opcode is 2");
  ILB_FUZZ_CHECK(rep.sender_ip == req.target_ip && rep.target_ip == req.sender_ip,
                 "the reply announces the requested address to the requester");
  ILB_FUZZ_CHECK(std::memcmp(rep.sender_mac, kOurMac, 6) == 0 &&
                     std::memcmp(out.data(), req.sender_mac, 6) == 0 &&
                     std::memcmp(out.data() + 6, kOurMac, 6) == 0,
                 "the reply goes from our MAC to the requester's MAC");
}

void check_echo_reply(const std::vector<uint8_t>& frame, const Parsed& p) {
  std::vector<uint8_t> out(frame);
  pkt::make_echo_reply(out.data(), p, kOurMac);
  Parsed q;
  ILB_FUZZ_CHECK(pkt::parse(out.data(), static_cast<uint32_t>(out.size()), q) == Kind::kIcmp,
                 "an echo reply built from a valid echo request has valid checksums");
  ILB_FUZZ_CHECK(q.icmp_type == kIcmpEchoReply, "the reply's ICMP type is 0");
  ILB_FUZZ_CHECK(q.src_ip == p.dst_ip && q.dst_ip == p.src_ip,
                 "the reply swaps the IPv4 addresses");
  ILB_FUZZ_CHECK(std::memcmp(out.data(), frame.data() + 6, 6) == 0 &&
                     std::memcmp(out.data() + 6, kOurMac, 6) == 0,
                 "the reply goes from our MAC back to the request's source MAC");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > UINT16_MAX + pkt::kEtherHdrLen) return 0;  // no Ethernet frame is longer
  // An exact-size heap copy: ASan then reports any read past the frame's end.
  const std::vector<uint8_t> frame(data, data + size);
  const auto len = static_cast<uint32_t>(frame.size());

  Parsed p;
  const Kind k = pkt::parse(frame.data(), len, p);
  Parsed u;
  const Kind ku =
      pkt::parse(frame.data(), len, u, {.verify_ip_checksum = false, .verify_l4_checksum = false});
  if (k != Kind::kDrop) {
    ILB_FUZZ_CHECK(ku == k && same_parse(p, u),
                   "a frame accepted with checksum verification parses the same without it");
  } else if (p.drop != ilb::abi::Drop::kBadIpChecksum && p.drop != ilb::abi::Drop::kBadL4Checksum) {
    ILB_FUZZ_CHECK(ku == Kind::kDrop && u.drop == p.drop,
                   "skipping checksum verification changes only checksum verdicts");
  }

  // The offload path (NIC verified the checksums) must be memory-safe on any frame it accepts,
  // even one whose checksums are in fact wrong.
  if (ku == Kind::kL4) {
    std::vector<uint8_t> out(frame);
    pkt::rewrite_l4(out.data(), u, 0x04030201, 0x0201, 0x08070605, 0x0403);
  } else if (ku == Kind::kIcmp && u.icmp_type == kIcmpEchoRequest) {
    std::vector<uint8_t> out(frame);
    pkt::make_echo_reply(out.data(), u, kOurMac);
  }

  switch (k) {
    case Kind::kL4:
      check_rewrite(frame, p);
      break;
    case Kind::kArp:
      check_arp_reply(frame);
      break;
    case Kind::kIcmp:
      if (p.icmp_type == kIcmpEchoRequest) check_echo_reply(frame, p);
      break;
    case Kind::kDrop:
      break;
  }
  return 0;
}

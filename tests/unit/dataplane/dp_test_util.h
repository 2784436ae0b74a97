// Helpers for dataplane tests: snapshots encoded by the control plane's own slot encoder (so the
// tests prove both sides of the contract agree), and frames built with full checksums.
#pragma once

#include <arpa/inet.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "controlplane/publish/slot_codec.h"
#include "controlplane/publish/snapshot.h"
#include "dataplane/abi/ilb_abi.h"

namespace ilb::dp::test {

inline uint32_t ip(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

inline std::vector<uint8_t> encode(const cp::Snapshot& s, uint64_t generation) {
  return cp::encode_slot(s, generation);
}

// Re-seals a slot after a test corrupted a field, so that the validator's other checks run.
inline void reseal(std::vector<uint8_t>& slot) {
  auto* h = reinterpret_cast<abi::SlotHeader*>(slot.data());
  // A corrupted payload_end is the validator's to reject; seal what the buffer holds.
  const uint64_t end =
      std::min<uint64_t>(std::max<uint64_t>(h->payload_end, sizeof(*h)), slot.size());
  h->checksum = abi::fnv1a64(slot.data() + sizeof(abi::SlotHeader), end - sizeof(abi::SlotHeader));
}

struct FrameSpec {
  uint8_t dst_mac[6];
  uint8_t src_mac[6];
  uint32_t src_ip;
  uint32_t dst_ip;
  uint16_t src_port;  // host order
  uint16_t dst_port;
  uint8_t proto = IPPROTO_TCP;
  uint8_t tcp_flags = RTE_TCP_SYN_FLAG;
  uint16_t payload = 0;
  uint32_t seq = 0;  // TCP, host order
  uint32_t ack = 0;
  uint16_t mss = 0;            // TCP: nonzero adds an MSS option with this value
  bool dont_fragment = false;  // IPv4 DF bit
};

inline rte_mbuf* make_frame(rte_mempool* pool, const FrameSpec& f) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  const uint16_t options = f.proto == IPPROTO_TCP && f.mss != 0 ? 4 : 0;
  const uint16_t l4 = static_cast<uint16_t>(
      (f.proto == IPPROTO_TCP ? sizeof(rte_tcp_hdr) : sizeof(rte_udp_hdr)) + options);
  const uint16_t len =
      static_cast<uint16_t>(sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + l4 + f.payload);
  std::array<uint8_t, 2048> buf{};
  uint8_t* p = buf.data();
  std::memcpy(p, f.dst_mac, 6);
  std::memcpy(p + 6, f.src_mac, 6);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
  eth->ether_type = htons(RTE_ETHER_TYPE_IPV4);
  auto* iph = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
  iph->version_ihl = 0x45;
  iph->total_length = htons(static_cast<uint16_t>(len - sizeof(rte_ether_hdr)));
  iph->time_to_live = 64;
  if (f.dont_fragment) iph->fragment_offset = htons(RTE_IPV4_HDR_DF_FLAG);
  iph->next_proto_id = f.proto;
  iph->src_addr = f.src_ip;
  iph->dst_addr = f.dst_ip;
  uint8_t* l4p = reinterpret_cast<uint8_t*>(iph + 1);
  for (uint16_t i = 0; i < f.payload; ++i) l4p[l4 + i] = static_cast<uint8_t>(i * 7);
  if (f.proto == IPPROTO_TCP) {
    auto* tcp = reinterpret_cast<rte_tcp_hdr*>(l4p);
    tcp->src_port = htons(f.src_port);
    tcp->dst_port = htons(f.dst_port);
    tcp->data_off = static_cast<uint8_t>((sizeof(rte_tcp_hdr) + options) / 4 << 4);
    if (options != 0) {
      const uint8_t mss[4] = {2, 4, static_cast<uint8_t>(f.mss >> 8), static_cast<uint8_t>(f.mss)};
      std::memcpy(l4p + sizeof(rte_tcp_hdr), mss, 4);
    }
    tcp->sent_seq = htonl(f.seq);
    tcp->recv_ack = htonl(f.ack);
    tcp->tcp_flags = f.tcp_flags;
    tcp->rx_win = htons(65535);
    tcp->cksum = rte_ipv4_udptcp_cksum(iph, tcp);
  } else {
    auto* udp = reinterpret_cast<rte_udp_hdr*>(l4p);
    udp->src_port = htons(f.src_port);
    udp->dst_port = htons(f.dst_port);
    udp->dgram_len = htons(static_cast<uint16_t>(l4 + f.payload));
    udp->dgram_cksum = rte_ipv4_udptcp_cksum(iph, udp);
  }
  iph->hdr_checksum = rte_ipv4_cksum(iph);
  std::memcpy(rte_pktmbuf_append(m, len), buf.data(), len);
  return m;
}

}  // namespace ilb::dp::test

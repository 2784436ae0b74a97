// ilb-pktgen's traffic logic driven through a software full NAT in place of ilb: the clients'
// frames are rewritten to a SNAT address and a backend, the reflector's answers are rewritten
// back, and every frame in between has its checksums checked with the packet tests' own
// RFC 1071 implementation (not the one under test).
#include "tools/ilb-pktgen/traffic.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <utility>

#include "dataplane/packet/packet.h"
#include "tests/unit/packet/frame_builder.h"

namespace ilb::pktgen {
namespace {

namespace pkt = ilb::dp::pkt;
using test::Bytes;

constexpr uint32_t kVip = 0x0a000064;      // 10.0.0.100
constexpr uint32_t kBackend = 0x0a000101;  // 10.0.1.1
constexpr uint32_t kSnat = 0x0a000201;     // 10.0.2.1
constexpr uint32_t kClients = 0x0a008001;  // 10.0.128.1
constexpr uint16_t kVport = 80;
constexpr uint16_t kBackendPort = 8080;
constexpr std::array<uint8_t, 6> kGenMac{0x02, 0, 0, 0, 0, 0x77};
constexpr std::array<uint8_t, 6> kLbMac{0x02, 0, 0, 0, 0, 0x02};
constexpr uint64_t kTimeout = 1000;

TrafficConfig config(Proto proto, uint32_t flows, uint32_t packets_per_flow) {
  TrafficConfig c;
  c.proto = proto;
  c.vip = kVip;
  c.vport = kVport;
  c.client_base = kClients;
  c.client_count = 16;
  c.backends = {kBackend};
  c.backend_port = kBackendPort;
  c.snat = {kSnat};
  c.flows = flows;
  c.packets_per_flow = packets_per_flow;
  c.frame_len = 60;
  c.mac = kGenMac;
  c.timeout_ticks = kTimeout;
  return c;
}

bool checksums_valid(const Bytes& f) {
  return test::inet_checksum(&f[test::kL3], test::ihl_bytes(f)) == 0 &&
         test::get16(f, test::l4_check_off(f)) == test::full_l4_checksum(f);
}

// Full NAT as ilb does it: client:cport -> VIP:vport becomes SNAT:lport -> backend:port.
class SoftNat {
 public:
  // Rewrites a frame the generator sent toward the VIP; false if it is not one.
  bool to_backend(Bytes& f) {
    pkt::Parsed p;
    if (pkt::parse(f.data(), static_cast<uint32_t>(f.size()), p) != pkt::Kind::kL4 ||
        ntohl(p.dst_ip) != kVip) {
      return false;
    }
    const auto key = std::make_pair(p.src_ip, p.src_port);
    auto it = forward_.find(key);
    if (it == forward_.end()) {
      it = forward_.emplace(key, next_port_).first;
      reverse_[next_port_] = key;
      ++next_port_;
    }
    pkt::rewrite_l4(f.data(), p, htonl(kSnat), htons(it->second), htonl(kBackend),
                    htons(kBackendPort));
    pkt::set_ether(f.data(), kGenMac.data(), kLbMac.data());
    return true;
  }
  // Rewrites a backend's answer back toward the client; false if it is not one.
  bool to_client(Bytes& f) {
    pkt::Parsed p;
    if (pkt::parse(f.data(), static_cast<uint32_t>(f.size()), p) != pkt::Kind::kL4 ||
        ntohl(p.dst_ip) != kSnat) {
      return false;
    }
    const auto it = reverse_.find(ntohs(p.dst_port));
    if (it == reverse_.end()) return false;
    pkt::rewrite_l4(f.data(), p, htonl(kVip), htons(kVport), it->second.first, it->second.second);
    pkt::set_ether(f.data(), kGenMac.data(), kLbMac.data());
    return true;
  }
  size_t connections() const { return forward_.size(); }

 private:
  std::map<std::pair<uint32_t, uint16_t>, uint16_t> forward_;
  std::map<uint16_t, std::pair<uint32_t, uint16_t>> reverse_;
  uint16_t next_port_ = 2000;
};

class TrafficTest : public ::testing::Test {
 protected:
  void make(TrafficConfig c) {
    traffic_ = std::make_unique<Traffic>(std::move(c));
    traffic_->set_peer(kLbMac);
  }

  // Takes up to `n` frames from next() (opening allowed) and queues them for the wire.
  size_t generate(size_t n, bool may_open = true) {
    size_t made = 0;
    for (; made < n; ++made) {
      Bytes f(Traffic::kMaxFrame);
      bool opened = false;
      const uint32_t len = traffic_->next(f.data(), now_, may_open, opened);
      if (len == 0) break;
      f.resize(len);
      EXPECT_TRUE(checksums_valid(f));
      wire_.push_back(std::move(f));
    }
    return made;
  }

  // Carries every queued frame through the NAT and into the generator until nothing moves.
  // Returns the number of frames delivered.
  size_t pump() {
    size_t delivered = 0;
    while (!wire_.empty()) {
      Bytes f = std::move(wire_.front());
      wire_.pop_front();
      EXPECT_TRUE(checksums_valid(f));
      if (!nat_.to_backend(f) && !nat_.to_client(f)) {
        ADD_FAILURE() << "a frame the NAT does not know";
        continue;
      }
      deliver(f);
      ++delivered;
    }
    return delivered;
  }

  void deliver(Bytes f) {
    const size_t n = f.size();
    f.resize(Traffic::kMaxFrame);
    uint32_t len = static_cast<uint32_t>(n);
    if (traffic_->receive(f.data(), len, now_) == Traffic::Verdict::kReply) {
      f.resize(len);
      wire_.push_back(std::move(f));
    }
  }

  // Opens the first flow, then carries one data frame to the reflector and its echo back
  // through the NAT; returns the echo, not yet delivered to the client.
  Bytes echo_of_one_data_frame() {
    generate(1);
    pump();
    generate(1, false);
    Bytes f = wire_.front();
    wire_.clear();
    EXPECT_TRUE(nat_.to_backend(f));
    const size_t n = f.size();
    f.resize(Traffic::kMaxFrame);
    auto len = static_cast<uint32_t>(n);
    EXPECT_EQ(traffic_->receive(f.data(), len, now_), Traffic::Verdict::kReply);
    f.resize(len);
    EXPECT_TRUE(nat_.to_client(f));
    return f;
  }

  const TrafficCounters& counters() const { return traffic_->counters(); }

  std::unique_ptr<Traffic> traffic_;
  SoftNat nat_;
  std::deque<Bytes> wire_;
  uint64_t now_ = 100;
};

TEST_F(TrafficTest, TcpFlowOpensEchoesAndCloses) {
  make(config(Proto::kTcp, 1, 2));
  ASSERT_EQ(generate(1), 1u);  // SYN
  now_ += 5;
  pump();  // SYN -> SYN-ACK -> ACK
  EXPECT_EQ(counters().backend_syns, 1u);
  EXPECT_EQ(counters().connected, 1u);
  EXPECT_EQ(traffic_->open_flows(), 1u);
  EXPECT_EQ(traffic_->connect_latency().max(), 5u);

  ASSERT_EQ(generate(10, false), 2u);  // both data packets, no more
  now_ += 7;
  pump();  // data -> echoes -> FIN -> FIN-ACK -> ACK
  EXPECT_EQ(counters().backend_data, 2u);
  EXPECT_EQ(counters().data_echoed, 2u);
  EXPECT_EQ(traffic_->latency().count(), 2u);
  EXPECT_EQ(traffic_->latency().max(), 7u);
  EXPECT_EQ(counters().fin_sent, 1u);
  EXPECT_EQ(counters().closed, 1u);
  EXPECT_TRUE(traffic_->settled());
  EXPECT_EQ(counters().errors(), 0u);
  EXPECT_EQ(counters().stale, 0u);
}

TEST_F(TrafficTest, ClosedFlowReopensOnAnotherTuple) {
  make(config(Proto::kTcp, 1, 1));
  for (int round = 0; round < 3; ++round) {
    ASSERT_EQ(generate(1), 1u);
    pump();
    ASSERT_EQ(generate(1, false), 1u);
    pump();
  }
  EXPECT_EQ(counters().closed, 3u);
  EXPECT_EQ(nat_.connections(), 3u) << "each connection must use a new client address:port";
  EXPECT_EQ(counters().errors(), 0u);
}

TEST_F(TrafficTest, UdpFlowsEchoAndCountConnections) {
  make(config(Proto::kUdp, 4, 0));
  ASSERT_EQ(generate(4), 4u);  // the first datagram of each flow
  pump();
  EXPECT_EQ(counters().connected, 4u);
  ASSERT_EQ(generate(8, false), 8u);
  pump();
  EXPECT_EQ(counters().data_sent, 12u);
  EXPECT_EQ(counters().data_echoed, 12u);
  EXPECT_EQ(counters().backend_data, 12u);
  EXPECT_EQ(counters().errors(), 0u);
}

TEST_F(TrafficTest, LargeFramesAreEchoedIntact) {
  TrafficConfig c = config(Proto::kTcp, 1, 0);
  c.frame_len = 1514;
  make(c);
  generate(1);
  pump();
  ASSERT_EQ(generate(1, false), 1u);
  EXPECT_EQ(wire_.back().size(), 1514u);
  pump();
  EXPECT_EQ(counters().data_echoed, 1u);
  EXPECT_EQ(counters().errors(), 0u);
}

TEST_F(TrafficTest, CorruptedPayloadIsABadRewrite) {
  TrafficConfig c = config(Proto::kTcp, 1, 0);
  c.frame_len = 100;
  make(c);
  Bytes f = echo_of_one_data_frame();
  ASSERT_EQ(f.size(), 100u);
  // Flip a payload byte after the time stamp and fix the checksum: only the content is wrong.
  f[99] ^= 0xff;
  test::fix_l4_checksum(f);
  deliver(f);
  EXPECT_EQ(counters().bad_rewrite, 1u);
  EXPECT_EQ(counters().data_echoed, 0u);
}

TEST_F(TrafficTest, FrameThatSkippedTheNatIsABadRewrite) {
  make(config(Proto::kTcp, 1, 0));
  generate(1);
  Bytes syn = wire_.front();
  wire_.clear();
  // Addressed to the backend but still from the client: what a balancer without SNAT sends.
  pkt::Parsed p;
  ASSERT_EQ(pkt::parse(syn.data(), static_cast<uint32_t>(syn.size()), p), pkt::Kind::kL4);
  pkt::rewrite_l4(syn.data(), p, p.src_ip, p.src_port, htonl(kBackend), htons(kBackendPort));
  deliver(syn);
  EXPECT_EQ(counters().bad_rewrite, 1u);
  EXPECT_EQ(counters().backend_syns, 0u);
  EXPECT_TRUE(wire_.empty());
}

TEST_F(TrafficTest, ReplyFromWrongSourceIsABadRewrite) {
  make(config(Proto::kTcp, 1, 0));
  Bytes f = echo_of_one_data_frame();
  pkt::Parsed p;
  ASSERT_EQ(pkt::parse(f.data(), static_cast<uint32_t>(f.size()), p), pkt::Kind::kL4);
  pkt::rewrite_l4(f.data(), p, htonl(kBackend), htons(kBackendPort), p.dst_ip, p.dst_port);
  deliver(f);
  EXPECT_EQ(counters().bad_rewrite, 1u);
}

TEST_F(TrafficTest, BadChecksumIsCountedAndDropped) {
  make(config(Proto::kTcp, 1, 0));
  generate(1);
  Bytes f = wire_.front();
  wire_.clear();
  ASSERT_TRUE(nat_.to_backend(f));
  f[test::l4_check_off(f)] ^= 0x01;
  deliver(f);
  EXPECT_EQ(counters().bad_frames, 1u);
  EXPECT_TRUE(wire_.empty());
}

TEST_F(TrafficTest, UnansweredSynIsRetransmittedThenTimesOut) {
  make(config(Proto::kTcp, 1, 0));
  ASSERT_EQ(generate(1), 1u);
  const Bytes first = wire_.front();
  wire_.clear();  // the balancer drops it
  for (uint8_t i = 0; i < Traffic::kMaxRetransmits; ++i) {
    now_ += kTimeout;
    traffic_->expire(now_, 16);
    ASSERT_EQ(generate(1, false), 1u);
    EXPECT_EQ(wire_.front(), first) << "a retransmission is the same segment";
    wire_.clear();
  }
  EXPECT_EQ(counters().retransmits, Traffic::kMaxRetransmits);
  now_ += kTimeout;
  traffic_->expire(now_, 16);
  EXPECT_EQ(counters().connect_timeouts, 1u);
  EXPECT_TRUE(traffic_->settled());
}

TEST_F(TrafficTest, RetransmittedSynStillConnects) {
  make(config(Proto::kTcp, 1, 0));
  generate(1);
  wire_.clear();
  now_ += kTimeout;
  traffic_->expire(now_, 16);
  generate(1, false);
  pump();
  EXPECT_EQ(counters().connected, 1u);
  EXPECT_EQ(counters().retransmits, 1u);
}

TEST_F(TrafficTest, ClosingSendsFinOnEveryOpenFlow) {
  make(config(Proto::kTcp, 8, 0));
  ASSERT_EQ(generate(8), 8u);
  pump();
  ASSERT_EQ(traffic_->open_flows(), 8u);
  generate(16, false);
  pump();
  traffic_->begin_close(now_);
  EXPECT_EQ(generate(100), 8u) << "one FIN per open flow, and no new flow";
  pump();
  EXPECT_EQ(counters().closed, 8u);
  EXPECT_TRUE(traffic_->settled());
  EXPECT_EQ(counters().data_echoed, counters().data_sent);
}

TEST_F(TrafficTest, OnALoopbackWireEveryFrameComesBackAsSent) {
  TrafficConfig c = config(Proto::kTcp, 4, 0);
  c.loopback = true;
  make(c);
  ASSERT_EQ(generate(12), 12u) << "no handshake: every frame is a data frame";
  for (Bytes& f : wire_) deliver(f);  // unchanged, as dpdk-testpmd's io forwarding returns it
  EXPECT_EQ(counters().data_sent, 12u);
  EXPECT_EQ(counters().data_echoed, 12u);
  EXPECT_EQ(counters().connected, 4u);
  EXPECT_EQ(counters().backend_data, 0u);
  EXPECT_EQ(counters().errors(), 0u);
  traffic_->begin_close(now_);
  EXPECT_TRUE(traffic_->settled()) << "nothing to close on a loopback wire";
}

TEST_F(TrafficTest, ArpForOurAddressesIsAnsweredAndTheVipsReplyIsLearned) {
  TrafficConfig c = config(Proto::kTcp, 1, 0);
  Traffic t(c);
  EXPECT_FALSE(t.peer_known());
  uint8_t buf[Traffic::kMaxFrame];
  bool opened = false;
  EXPECT_EQ(t.next(buf, 1, true, opened), 0u) << "nothing is sent before the peer is known";

  for (const uint32_t target : {kBackend, kClients + 3, kVip}) {
    uint8_t req[Traffic::kMaxFrame] = {};
    pkt::build_arp_request(req, kLbMac.data(), htonl(kSnat), htonl(target));
    uint32_t len = pkt::kMinFrameLen;
    const auto verdict = t.receive(req, len, 1);
    if (target == kVip) {
      EXPECT_EQ(verdict, Traffic::Verdict::kConsumed) << "the VIP is not ours to answer for";
      continue;
    }
    ASSERT_EQ(verdict, Traffic::Verdict::kReply);
    const pkt::ArpInfo a = pkt::arp_info(req);
    EXPECT_EQ(a.op, 2);
    EXPECT_EQ(ntohl(a.sender_ip), target);
    EXPECT_EQ(0, std::memcmp(a.sender_mac, kGenMac.data(), 6));
  }

  // The generator's own request for the VIP, answered by the balancer.
  uint32_t len = t.arp_request(buf);
  pkt::Parsed p;
  ASSERT_EQ(pkt::parse(buf, len, p), pkt::Kind::kArp);
  pkt::make_arp_reply(buf, kLbMac.data());
  EXPECT_EQ(t.receive(buf, len, 1), Traffic::Verdict::kConsumed);
  EXPECT_TRUE(t.peer_known());
  EXPECT_GT(t.next(buf, 1, true, opened), 0u);
  EXPECT_EQ(0, std::memcmp(buf, kLbMac.data(), 6)) << "frames go to the balancer's MAC";
}

// The generator's stand-in for RSS on a wire that has none: a flow's direction always takes one
// queue, flows spread over every queue, and what is not IPv4 TCP/UDP takes queue 0.
TEST(QueueForTest, SpreadsFlowsByTheirTupleAndKeepsEachOnOneQueue) {
  auto tcp = [](uint32_t client, uint16_t sport, uint8_t flags, size_t payload) {
    test::IpSpec ip;
    ip.src = {10, 1, static_cast<uint8_t>(client >> 8), static_cast<uint8_t>(client)};
    test::TcpSpec t;
    t.sport = sport;
    t.flags = flags;
    t.payload.assign(payload, 0x5a);
    return test::ipv4_frame(ip, IPPROTO_TCP, test::tcp_segment(t));
  };
  constexpr uint16_t kQueues = 4;
  std::map<uint16_t, uint32_t> per_queue;
  for (uint32_t flow = 0; flow < 4000; ++flow) {
    const auto sport = static_cast<uint16_t>(1024 + flow * 7);
    const Bytes syn = tcp(flow % 300, sport, test::kSyn, 0);
    const Bytes data = tcp(flow % 300, sport, test::kAck, 100);
    const uint16_t q = queue_for(syn.data(), static_cast<uint32_t>(syn.size()), kQueues);
    ASSERT_LT(q, kQueues);
    EXPECT_EQ(queue_for(data.data(), static_cast<uint32_t>(data.size()), kQueues), q) << flow;
    EXPECT_EQ(queue_for(syn.data(), static_cast<uint32_t>(syn.size()), 1), 0);
    ++per_queue[q];
  }
  ASSERT_EQ(per_queue.size(), kQueues);
  for (const auto& [q, n] : per_queue) {
    EXPECT_GT(n, 800u) << "queue " << q;  // 1,000 each on average
    EXPECT_LT(n, 1200u) << "queue " << q;
  }

  uint8_t arp[pkt::kMinFrameLen] = {};
  pkt::build_arp_request(arp, kLbMac.data(), htonl(kSnat), htonl(kVip));
  EXPECT_EQ(queue_for(arp, sizeof(arp), kQueues), 0);
  const Bytes udp = test::ipv4_frame({}, IPPROTO_UDP, test::udp_datagram(5000, 53, Bytes(8, 1)));
  const Bytes ping = test::ipv4_frame({}, IPPROTO_ICMP, test::icmp_echo(8, 1, 1, Bytes(8, 1)));
  EXPECT_LT(queue_for(udp.data(), static_cast<uint32_t>(udp.size()), kQueues), kQueues);
  EXPECT_EQ(queue_for(ping.data(), static_cast<uint32_t>(ping.size()), kQueues), 0);
  EXPECT_EQ(queue_for(udp.data(), 30, kQueues), 0) << "a truncated frame";
}

TEST(TrafficConfigTest, ImpossibleConfigurationsAreRefused) {
  TrafficConfig c = config(Proto::kTcp, 1, 0);
  c.frame_len = 59;
  EXPECT_THROW(Traffic{c}, std::invalid_argument);
  c = config(Proto::kTcp, 1, 0);
  c.flows = 16 * 64512 + 1;  // more than client addresses x ports
  EXPECT_THROW(Traffic{c}, std::invalid_argument);
  c = config(Proto::kTcp, 1, 0);
  c.backends = {kClients + 1};
  EXPECT_THROW(Traffic{c}, std::invalid_argument);
  c = config(Proto::kTcp, 1, 0);
  c.backends.clear();
  EXPECT_THROW(Traffic{c}, std::invalid_argument);
}

TEST(LatencyHistogramTest, QuantilesAreWithinOneBucket) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 10000; ++v) h.record(v);
  EXPECT_EQ(h.count(), 10000u);
  EXPECT_EQ(h.max(), 10000u);
  EXPECT_NEAR(static_cast<double>(h.quantile(0.5)), 5000.0, 5000.0 * 0.0625);
  EXPECT_NEAR(static_cast<double>(h.quantile(0.99)), 9900.0, 9900.0 * 0.0625);
  EXPECT_EQ(h.quantile(1.0), 10000u);
  LatencyHistogram small;
  for (uint64_t v : {3, 3, 3, 7}) small.record(v);
  EXPECT_EQ(small.quantile(0.5), 3u) << "exact below 32";
  EXPECT_EQ(small.quantile(1.0), 7u);
  EXPECT_EQ(LatencyHistogram{}.quantile(0.99), 0u);
}

}  // namespace
}  // namespace ilb::pktgen

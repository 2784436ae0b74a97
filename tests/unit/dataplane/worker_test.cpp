// The worker's burst function on real mbufs, with snapshots encoded by the control plane's slot
// encoder: new connections, both directions of a tracked flow, drops by reason, admin states and
// config swaps that must not disturb established flows.
#include <gtest/gtest.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <initializer_list>
#include <memory>

#include "dataplane/agent/active_config.h"
#include "dataplane/packet/packet.h"
#include "dataplane/port/rss.h"
#include "dataplane/worker/worker.h"
#include "tests/unit/common/rss_key.h"
#include "tests/unit/dataplane/dp_test_util.h"

namespace ilb::dp {
namespace {

using test::ip;

constexpr uint8_t kOurMac[6] = {0x02, 0, 0, 0, 0, 0x02};
constexpr uint8_t kClientMac[6] = {0x02, 0, 0, 0, 0, 0x10};
constexpr uint8_t kBackendMac[6] = {0x02, 0, 0, 0, 0, 0x21};
constexpr uint8_t kBackend2Mac[6] = {0x02, 0, 0, 0, 0, 0x22};

cp::Snapshot two_backends(abi::AdminState second = abi::AdminState::kEnabled) {
  cp::Snapshot s;
  cp::SnapshotService svc;
  svc.name = "web";
  svc.vip = ip("10.0.0.100");
  svc.port = 80;
  svc.tcp_syn_timeout_s = 5;
  svc.tcp_est_timeout_s = 100;
  svc.tcp_fin_timeout_s = 10;
  svc.udp_timeout_s = 30;
  // A table that sends everything to backend 1: the tests decide where flows go.
  svc.table.assign(7, 1);
  s.services.push_back(svc);
  s.backends.push_back({1, 0, ip("10.0.0.21"), 80, abi::AdminState::kEnabled, abi::Health::kUp, 1});
  s.backends.push_back({2, 0, ip("10.0.0.22"), 8080, second, abi::Health::kUp, 1});
  return s;
}

class WorkerTest : public testing::Test {
 protected:
  void SetUp() override {
    static int serial = 0;
    const std::string n = std::to_string(serial++);
    pool_ = rte_pktmbuf_pool_create(("wt_pool" + n).c_str(), 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                    SOCKET_ID_ANY);
    ASSERT_NE(pool_, nullptr);
    std::memcpy(shared_.ports[0].mac, kOurMac, 6);
    shared_.ports[0].address = ip("10.0.0.2");
    shared_.ports[0].netmask = ip("255.255.255.0");
    shared_.snat_addresses = {ip("10.0.0.101")};
    shared_.tsc_hz = 1000;  // one "second" is 1000 ticks
    std::string err;
    ASSERT_TRUE(shared_.neighbours.init("wt_neigh" + n, 64, SOCKET_ID_ANY, err)) << err;
    shared_.neighbours.update(ip("10.0.0.21"), kBackendMac);
    shared_.neighbours.update(ip("10.0.0.22"), kBackend2Mac);
    w_.shared = &shared_;
    w_.counters = static_cast<WorkerCounters*>(rte_zmalloc("wt_ctr", sizeof(WorkerCounters), 64));
    w_.to_main =
        rte_ring_create(("wt_tm" + n).c_str(), 64, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    w_.resolve =
        rte_ring_create(("wt_rs" + n).c_str(), 64, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    w_.from_main =
        rte_ring_create(("wt_fm" + n).c_str(), 64, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    ASSERT_TRUE(w_.conns.init("wt_conn" + n, 1024, shared_.snat_addresses, SOCKET_ID_ANY, err))
        << err;
    ASSERT_TRUE(w_.snat.init(shared_.snat_addresses, 1024, 1100, 0, workers_, SOCKET_ID_ANY, err))
        << err;
    apply(two_backends(), 1);
  }

  void TearDown() override {
    ActiveConfig::destroy(cfg_);
    rte_ring_free(w_.to_main);
    rte_ring_free(w_.resolve);
    rte_ring_free(w_.from_main);
    rte_free(w_.counters);
    rte_mempool_free(pool_);
  }

  void apply(const cp::Snapshot& s, uint64_t gen) {
    const std::vector<uint8_t> slot = test::encode(s, gen);
    std::string err;
    ActiveConfig* next = ActiveConfig::build(slot.data(), slot.size(), gen, err);
    ASSERT_NE(next, nullptr) << err;
    ActiveConfig::destroy(cfg_);
    cfg_ = next;
  }

  // Runs one packet through the worker; returns the transmitted frame's parse, or nullopt.
  std::optional<pkt::Parsed> run(const test::FrameSpec& f, std::vector<uint8_t>* out = nullptr,
                                 uint64_t now = 1) {
    rte_mbuf* in[1] = {test::make_frame(pool_, f)};
    rte_mbuf* tx[2];
    uint16_t n_tx = 0;
    process_burst(w_, *cfg_, in, 1, tx, &n_tx, now);
    if (n_tx == 0) return std::nullopt;
    EXPECT_EQ(n_tx, 1);
    const auto* data = rte_pktmbuf_mtod(tx[0], const uint8_t*);
    const uint32_t len = rte_pktmbuf_data_len(tx[0]);
    if (out != nullptr) out->assign(data, data + len);
    pkt::Parsed p;
    // Full software verification of the rewritten checksums.
    EXPECT_EQ(pkt::parse(data, len, p),
              f.proto == IPPROTO_ICMP ? pkt::Kind::kIcmp : pkt::Kind::kL4);
    rte_pktmbuf_free(tx[0]);
    return p;
  }

  struct Frame {
    std::vector<uint8_t> bytes;
    pkt::Parsed p;
    pkt::TcpSeq seq;
  };
  // Runs one packet through the worker; returns every transmitted frame, checksums verified.
  std::vector<Frame> run_all(const test::FrameSpec& f) {
    rte_mbuf* in[1] = {test::make_frame(pool_, f)};
    rte_mbuf* tx[2];
    uint16_t n_tx = 0;
    process_burst(w_, *cfg_, in, 1, tx, &n_tx, 1);
    return take_frames(tx, n_tx);
  }

  // Copies and frees `n` transmitted mbufs, checksums verified.
  std::vector<Frame> take_frames(rte_mbuf** tx, uint16_t n_tx) {
    std::vector<Frame> out;
    for (uint16_t i = 0; i < n_tx; ++i) {
      const auto* data = rte_pktmbuf_mtod(tx[i], const uint8_t*);
      Frame fr;
      fr.bytes.assign(data, data + rte_pktmbuf_data_len(tx[i]));
      EXPECT_EQ(pkt::parse(fr.bytes.data(), static_cast<uint32_t>(fr.bytes.size()), fr.p),
                pkt::Kind::kL4);
      if (fr.p.proto == IPPROTO_TCP) fr.seq = pkt::tcp_seq(fr.bytes.data(), fr.p);
      out.push_back(std::move(fr));
      rte_pktmbuf_free(tx[i]);
    }
    return out;
  }

  test::FrameSpec from_client(uint16_t sport, uint8_t flags = RTE_TCP_SYN_FLAG) {
    test::FrameSpec f{};
    std::memcpy(f.dst_mac, kOurMac, 6);
    std::memcpy(f.src_mac, kClientMac, 6);
    f.src_ip = ip("10.0.0.10");
    f.dst_ip = ip("10.0.0.100");
    f.src_port = sport;
    f.dst_port = 80;
    f.tcp_flags = flags;
    f.payload = 20;
    return f;
  }

  // SYN, SYN-ACK, ACK from client port `sport`: the connection's first packet as forwarded to
  // the backend (nullopt if any step was not forwarded).
  std::optional<pkt::Parsed> establish(uint16_t sport) {
    auto fwd = run(from_client(sport));
    if (!fwd || !run(from_backend(*fwd, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) ||
        !run(from_client(sport, RTE_TCP_ACK_FLAG))) {
      return std::nullopt;
    }
    return fwd;
  }

  test::FrameSpec from_backend(const pkt::Parsed& fwd, uint8_t flags) {
    test::FrameSpec f{};
    std::memcpy(f.dst_mac, kOurMac, 6);
    std::memcpy(f.src_mac, kBackendMac, 6);
    f.src_ip = fwd.dst_ip;
    f.dst_ip = fwd.src_ip;
    f.src_port = ntohs(fwd.dst_port);
    f.dst_port = ntohs(fwd.src_port);
    f.tcp_flags = flags;
    return f;
  }

  uint64_t drops(abi::Drop d) { return w_.counters->drops[static_cast<size_t>(d)].get(); }

  // Runs one packet through the worker; returns the raw bytes of every frame sent.
  std::vector<std::vector<uint8_t>> run_raw(const test::FrameSpec& f, uint64_t now = 1) {
    rte_mbuf* in[1] = {test::make_frame(pool_, f)};
    rte_mbuf* tx[2];
    uint16_t n_tx = 0;
    process_burst(w_, *cfg_, in, 1, tx, &n_tx, now);
    std::vector<std::vector<uint8_t>> out;
    for (uint16_t i = 0; i < n_tx; ++i) {
      const auto* data = rte_pktmbuf_mtod(tx[i], const uint8_t*);
      out.emplace_back(data, data + rte_pktmbuf_data_len(tx[i]));
      rte_pktmbuf_free(tx[i]);
    }
    return out;
  }

  // Applies generation 2: backend 1 disabled, every new flow to backend 2.
  void disable_first_backend() {
    cp::Snapshot s = two_backends();
    s.backends[0].admin = abi::AdminState::kDisabled;
    s.services[0].table.assign(7, 2);
    apply(s, 2);
  }

  uint32_t workers_ = 1;  // how many workers share the SNAT ports (w_ is worker 0)
  rte_mempool* pool_ = nullptr;
  SharedState shared_;
  WorkerContext w_;
  ActiveConfig* cfg_ = nullptr;
};

TEST_F(WorkerTest, SynToVipIsFullNattedToTheBackend) {
  std::vector<uint8_t> out;
  auto p = run(from_client(40000), &out);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->src_ip, ip("10.0.0.101"));
  EXPECT_EQ(ntohs(p->src_port), 1024);
  EXPECT_EQ(p->dst_ip, ip("10.0.0.21"));
  EXPECT_EQ(ntohs(p->dst_port), 80);
  EXPECT_EQ(0, std::memcmp(out.data(), kBackendMac, 6));
  EXPECT_EQ(0, std::memcmp(out.data() + 6, kOurMac, 6));
  EXPECT_EQ(w_.counters->backends[1].new_conns.get(), 1u);
  EXPECT_EQ(w_.counters->active_conns.get(), 1u);
}

TEST_F(WorkerTest, BackendReplyReturnsToClientFromTheVip) {
  auto fwd = run(from_client(40000));
  ASSERT_TRUE(fwd);
  std::vector<uint8_t> out;
  auto back = run(from_backend(*fwd, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG), &out);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->src_ip, ip("10.0.0.100"));
  EXPECT_EQ(ntohs(back->src_port), 80);
  EXPECT_EQ(back->dst_ip, ip("10.0.0.10"));
  EXPECT_EQ(ntohs(back->dst_port), 40000);
  EXPECT_EQ(0, std::memcmp(out.data(), kClientMac, 6));
  // The client's next packet follows the same connection.
  auto ack = run(from_client(40000, RTE_TCP_ACK_FLAG));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->src_port, fwd->src_port);
  EXPECT_EQ(w_.conns.size(), 1u);
}

TEST_F(WorkerTest, NonSynWithoutConnectionIsDropped) {
  EXPECT_FALSE(run(from_client(40001, RTE_TCP_ACK_FLAG)));
  EXPECT_EQ(drops(abi::Drop::kNonSynMiss), 1u);
  EXPECT_EQ(w_.conns.size(), 0u);
}

// untracked_tcp = "reset": the reply of a closed port (RFC 9293, 3.10.7.1), from the VIP.
TEST_F(WorkerTest, UntrackedSegmentWithAckIsAnsweredWithResetAtItsAckNumber) {
  cp::Snapshot s = two_backends();
  s.services[0].reset_untracked = true;
  apply(s, 2);
  auto f = from_client(40001, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG);
  f.seq = 0x20000000;
  f.ack = 0x30000000;
  const auto out = run_all(f);
  ASSERT_EQ(out.size(), 1u);
  const Frame& rst = out[0];
  EXPECT_EQ(rst.p.src_ip, ip("10.0.0.100"));
  EXPECT_EQ(ntohs(rst.p.src_port), 80);
  EXPECT_EQ(rst.p.dst_ip, ip("10.0.0.10"));
  EXPECT_EQ(ntohs(rst.p.dst_port), 40001);
  EXPECT_EQ(rst.p.tcp_flags, RTE_TCP_RST_FLAG);
  EXPECT_EQ(rst.seq.seq, 0x30000000u);
  EXPECT_EQ(0, std::memcmp(rst.bytes.data(), kClientMac, 6));
  EXPECT_EQ(0, std::memcmp(rst.bytes.data() + 6, kOurMac, 6));
  EXPECT_EQ(drops(abi::Drop::kNonSynMiss), 1u);
  EXPECT_EQ(w_.counters->untracked_resets.get(), 1u);
  EXPECT_EQ(w_.conns.size(), 0u);
}

TEST_F(WorkerTest, UntrackedSegmentWithoutAckGetsResetAcknowledgingItsPayloadAndFin) {
  cp::Snapshot s = two_backends();
  s.services[0].reset_untracked = true;
  apply(s, 2);
  auto f = from_client(40001, RTE_TCP_FIN_FLAG);
  f.seq = 0xfffffff0;  // the acknowledgment wraps
  f.payload = 20;
  const auto out = run_all(f);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].p.tcp_flags, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG);
  EXPECT_EQ(out[0].seq.seq, 0u);
  EXPECT_EQ(out[0].seq.ack, 0xfffffff0u + 20 + 1);
}

TEST_F(WorkerTest, UntrackedResetIsNeverAnsweredAndDropIsTheDefault) {
  cp::Snapshot s = two_backends();
  s.services[0].reset_untracked = true;
  apply(s, 2);
  EXPECT_TRUE(run_all(from_client(40001, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG)).empty());
  EXPECT_EQ(drops(abi::Drop::kNonSynMiss), 1u);
  EXPECT_EQ(w_.counters->untracked_resets.get(), 0u);
  // Without the flag an untracked segment gets nothing back.
  apply(two_backends(), 3);
  EXPECT_TRUE(run_all(from_client(40001, RTE_TCP_ACK_FLAG)).empty());
  EXPECT_EQ(drops(abi::Drop::kNonSynMiss), 2u);
  EXPECT_EQ(w_.counters->untracked_resets.get(), 0u);
}

// Resets go to unicast senders that wrote to us alone.
TEST_F(WorkerTest, UntrackedSegmentsFromNoUnicastSenderGetNoReset) {
  cp::Snapshot s = two_backends();
  s.services[0].reset_untracked = true;
  apply(s, 2);
  auto broadcast = from_client(40001, RTE_TCP_ACK_FLAG);
  std::memset(broadcast.dst_mac, 0xff, 6);
  EXPECT_TRUE(run_all(broadcast).empty());
  auto group_mac = from_client(40001, RTE_TCP_ACK_FLAG);
  group_mac.src_mac[0] = 0x01;
  EXPECT_TRUE(run_all(group_mac).empty());
  for (const char* a : {"0.0.0.0", "224.0.0.5", "240.0.0.1", "255.255.255.255"}) {
    auto f = from_client(40001, RTE_TCP_ACK_FLAG);
    f.src_ip = ip(a);
    EXPECT_TRUE(run_all(f).empty()) << a;
  }
  // The broadcast frame is an untracked segment; the rest come from senders no host can be.
  EXPECT_EQ(drops(abi::Drop::kNonSynMiss), 1u);
  EXPECT_EQ(w_.counters->martians.get(), 5u);
  EXPECT_EQ(w_.counters->untracked_resets.get(), 0u);
}

// A SYN from a group MAC or from an address no host can have (ilb's own included) opens nothing
// and is answered with nothing: its replies would go to a group, to no host, or back to ilb.
TEST_F(WorkerTest, MartianSendersOpenNoConnection) {
  std::vector<test::FrameSpec> martians;
  auto group_mac = from_client(40001);
  group_mac.src_mac[0] = 0x01;
  martians.push_back(group_mac);
  for (const char* a : {"0.0.0.0", "0.1.2.3", "127.0.0.1", "224.0.0.5", "240.0.0.1",
                        "255.255.255.255", "10.0.0.255", "10.0.0.100", "10.0.0.101", "10.0.0.2"}) {
    auto f = from_client(40001);
    f.src_ip = ip(a);
    martians.push_back(f);
  }
  for (const auto& f : martians) EXPECT_TRUE(run_all(f).empty());
  EXPECT_EQ(w_.conns.size(), 0u);
  EXPECT_EQ(w_.counters->martians.get(), martians.size());
  EXPECT_EQ(w_.counters->backends[1].new_conns.get(), 0u);
  // The same SYN from a host is forwarded.
  EXPECT_TRUE(run(from_client(40001)));
}

// Refusals (no backend) are not sent to martian senders either, nor ICMP errors about datagrams
// sent to the broadcast MAC (RFC 1122). A broadcast for none of ilb's addresses from 0.0.0.0 (a
// DHCP client's) is not ilb's business: counted as not for us, not as a martian.
TEST_F(WorkerTest, NoRefusalGoesToAMartianOrAboutABroadcastFrame) {
  cp::Snapshot s = two_backends();
  s.services[0].protocol = abi::Protocol::kUdp;
  s.services[0].table.clear();
  apply(s, 2);
  auto frames_out = [this](const test::FrameSpec& f) {
    rte_mbuf* in[1] = {test::make_frame(pool_, f)};
    rte_mbuf* tx[2];
    uint16_t n_tx = 0;
    process_burst(w_, *cfg_, in, 1, tx, &n_tx, 1);
    rte_pktmbuf_free_bulk(tx, n_tx);
    return n_tx;
  };
  auto udp = from_client(5353);
  udp.proto = IPPROTO_UDP;
  EXPECT_EQ(frames_out(udp), 1) << "a host's datagram gets its port unreachable";
  auto martian = udp;
  martian.src_ip = ip("0.0.0.0");
  EXPECT_EQ(frames_out(martian), 0);
  auto to_broadcast_mac = udp;
  std::memset(to_broadcast_mac.dst_mac, 0xff, 6);
  EXPECT_EQ(frames_out(to_broadcast_mac), 0);
  auto dhcp = martian;
  std::memset(dhcp.dst_mac, 0xff, 6);
  dhcp.dst_ip = ip("255.255.255.255");
  dhcp.src_port = 68;
  dhcp.dst_port = 67;
  EXPECT_EQ(frames_out(dhcp), 0);
  EXPECT_EQ(w_.counters->martians.get(), 1u);
  EXPECT_EQ(drops(abi::Drop::kNotForUs), 1u);
  EXPECT_EQ(drops(abi::Drop::kNoBackend), 2u);
}

// The replies a worker makes up itself are capped (ReplyLimiter): refusals beyond the budget are
// dropped unanswered and counted, and the budget comes back with time.
TEST_F(WorkerTest, RefusalsBeyondTheReplyBudgetAreDroppedAndCounted) {
  cp::Snapshot s = two_backends();
  s.services[0].table.clear();
  apply(s, 2);
  w_.replies.configure(20, shared_.tsc_hz);  // 20 a "second" of 1000 ticks: bursts of 2
  auto refusals = [this](uint64_t now, int syns) {
    int out = 0;
    for (int i = 0; i < syns; ++i) {
      rte_mbuf* in[1] = {test::make_frame(pool_, from_client(static_cast<uint16_t>(41000 + i)))};
      rte_mbuf* tx[2];
      uint16_t n_tx = 0;
      process_burst(w_, *cfg_, in, 1, tx, &n_tx, now);
      out += n_tx;
      rte_pktmbuf_free_bulk(tx, n_tx);
    }
    return out;
  };
  EXPECT_EQ(refusals(1, 5), 2);
  EXPECT_EQ(w_.counters->replies_limited.get(), 3u);
  EXPECT_EQ(drops(abi::Drop::kNoBackend), 5u) << "every SYN is still counted for what it was";
  EXPECT_EQ(refusals(51, 2), 1) << "one reply's worth of credit after 50 ticks";
  EXPECT_EQ(refusals(5000, 5), 2) << "credit saves up to the burst only";
  EXPECT_EQ(w_.counters->replies_limited.get(), 7u);
}

// A backend's segment to a SNAT port no connection holds (the dataplane restarted under it): reset
// from the SNAT address where the backend's service resets untracked segments.
TEST_F(WorkerTest, UntrackedSegmentFromABackendIsResetOnlyWhereItsServiceAsks) {
  test::FrameSpec f{};
  std::memcpy(f.dst_mac, kOurMac, 6);
  std::memcpy(f.src_mac, kBackendMac, 6);
  f.src_ip = ip("10.0.0.21");
  f.dst_ip = ip("10.0.0.101");
  f.src_port = 80;
  f.dst_port = 1050;
  f.tcp_flags = RTE_TCP_ACK_FLAG;
  f.seq = 7;
  f.ack = 0x12345678;
  EXPECT_TRUE(run_all(f).empty()) << "the service drops untracked segments";
  cp::Snapshot s = two_backends();
  s.services[0].reset_untracked = true;
  apply(s, 2);
  const auto out = run_all(f);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].p.src_ip, ip("10.0.0.101"));
  EXPECT_EQ(ntohs(out[0].p.src_port), 1050);
  EXPECT_EQ(out[0].p.dst_ip, ip("10.0.0.21"));
  EXPECT_EQ(ntohs(out[0].p.dst_port), 80);
  EXPECT_EQ(out[0].p.tcp_flags, RTE_TCP_RST_FLAG);
  EXPECT_EQ(out[0].seq.seq, 0x12345678u);
  EXPECT_EQ(0, std::memcmp(out[0].bytes.data(), kBackendMac, 6));
  // Not from one of the service's backends (another port): only dropped.
  f.src_port = 81;
  EXPECT_TRUE(run_all(f).empty());
  EXPECT_EQ(drops(abi::Drop::kNonSynMiss), 3u);
  EXPECT_EQ(w_.counters->untracked_resets.get(), 1u);
}

// A refused SYN is not a connection: a copy of it later in the same burst must not be taken for
// one (it is refused again, and nothing reads a record the first one never had).
TEST_F(WorkerTest, RefusedSynRepeatedInTheSameBurstIsRefusedAgain) {
  cp::Snapshot s = two_backends();
  s.services[0].table.clear();
  apply(s, 2);
  rte_mbuf* in[2] = {test::make_frame(pool_, from_client(40003)),
                     test::make_frame(pool_, from_client(40003))};
  rte_mbuf* tx[4];
  uint16_t n_tx = 0;
  process_burst(w_, *cfg_, in, 2, tx, &n_tx, 1);
  const auto out = take_frames(tx, n_tx);
  ASSERT_EQ(out.size(), 2u);
  for (const Frame& f : out) EXPECT_EQ(f.p.tcp_flags, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG);
  EXPECT_EQ(drops(abi::Drop::kNoBackend), 2u);
  EXPECT_EQ(w_.conns.size(), 0u);
}

TEST_F(WorkerTest, UnknownPortOnVipIsCountedAsNoService) {
  auto f = from_client(40002);
  f.dst_port = 81;
  EXPECT_FALSE(run(f));
  EXPECT_EQ(drops(abi::Drop::kNoService), 1u);
}

TEST_F(WorkerTest, ServiceWithoutEligibleBackendRefusesSynWithReset) {
  cp::Snapshot s = two_backends();
  s.services[0].table.clear();
  apply(s, 2);
  auto syn = from_client(40003);
  syn.seq = 0x10000000;
  const auto out = run_all(syn);
  ASSERT_EQ(out.size(), 1u);
  const Frame& rst = out[0];
  EXPECT_EQ(rst.p.src_ip, ip("10.0.0.100"));
  EXPECT_EQ(ntohs(rst.p.src_port), 80);
  EXPECT_EQ(rst.p.dst_ip, ip("10.0.0.10"));
  EXPECT_EQ(ntohs(rst.p.dst_port), 40003);
  EXPECT_EQ(rst.p.tcp_flags, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG);
  // SEG.SEQ + SEG.LEN: the SYN and the 20 bytes it carries.
  EXPECT_EQ(rst.seq.ack, 0x10000001u + 20);
  EXPECT_EQ(0, std::memcmp(rst.bytes.data(), kClientMac, 6));
  EXPECT_EQ(drops(abi::Drop::kNoBackend), 1u);
  EXPECT_EQ(w_.conns.size(), 0u);
}

TEST_F(WorkerTest, ServiceWithoutEligibleBackendAnswersUdpWithPortUnreachable) {
  cp::Snapshot s = two_backends();
  s.services[0].protocol = abi::Protocol::kUdp;
  s.services[0].table.clear();
  apply(s, 2);
  auto f = from_client(5353);
  f.proto = IPPROTO_UDP;
  rte_mbuf* in[1] = {test::make_frame(pool_, f)};
  std::vector<uint8_t> original(rte_pktmbuf_mtod(in[0], uint8_t*),
                                rte_pktmbuf_mtod(in[0], uint8_t*) + rte_pktmbuf_data_len(in[0]));
  rte_mbuf* tx[2];
  uint16_t n_tx = 0;
  process_burst(w_, *cfg_, in, 1, tx, &n_tx, 1);
  ASSERT_EQ(n_tx, 1);
  const auto* data = rte_pktmbuf_mtod(tx[0], const uint8_t*);
  pkt::Parsed p;
  ASSERT_EQ(pkt::parse(data, rte_pktmbuf_data_len(tx[0]), p), pkt::Kind::kIcmp);
  EXPECT_EQ(p.icmp_type, 3);
  EXPECT_EQ(data[p.l4_offset + 1], 3) << "code 3: port unreachable";
  EXPECT_EQ(p.src_ip, ip("10.0.0.100"));
  EXPECT_EQ(p.dst_ip, ip("10.0.0.10"));
  // The quote is the datagram's IP header and first 8 bytes, as sent.
  EXPECT_EQ(0, std::memcmp(data + p.l4_offset + 8, original.data() + 14, 28));
  rte_pktmbuf_free(tx[0]);
}

TEST_F(WorkerTest, UnresolvedNextHopIsRequestedFromTheMainLcore) {
  cp::Snapshot s = two_backends();
  s.backends[0].address = ip("10.0.0.99");
  apply(s, 2);
  EXPECT_FALSE(run(from_client(40004)));
  EXPECT_EQ(drops(abi::Drop::kNoNeighbour), 1u);
  void* req = nullptr;
  ASSERT_EQ(rte_ring_sc_dequeue(w_.resolve, &req), 0);
  EXPECT_EQ(static_cast<uint32_t>(reinterpret_cast<uintptr_t>(req)), ip("10.0.0.99"));
}

TEST_F(WorkerTest, EstablishedFlowSurvivesSnapshotSwapAndDrain) {
  auto fwd = run(from_client(40005));
  ASSERT_TRUE(fwd);
  // New snapshot: backend 1 draining, new flows go to backend 2.
  cp::Snapshot s = two_backends();
  s.backends[0].admin = abi::AdminState::kDraining;
  s.services[0].table.assign(7, 2);
  apply(s, 2);
  auto again = run(from_client(40005, RTE_TCP_ACK_FLAG));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->dst_ip, ip("10.0.0.21")) << "the draining backend keeps its connection";
  auto fresh = run(from_client(40006));
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->dst_ip, ip("10.0.0.22"));
  EXPECT_EQ(ntohs(fresh->dst_port), 8080);
}

TEST_F(WorkerTest, DisabledBackendsFlowsAreResetOnBothSides) {
  auto fwd = run(from_client(40007));
  ASSERT_TRUE(fwd);
  disable_first_backend();
  w_.pool = pool_;
  auto ack = from_client(40007, RTE_TCP_ACK_FLAG);
  ack.seq = 5000;
  ack.ack = 9000;
  const auto out = run_all(ack);
  ASSERT_EQ(out.size(), 2u);
  // The fresh frame (to the other side) is queued first, then the sender's own.
  const Frame& to_backend = out[0];
  EXPECT_EQ(to_backend.p.src_ip, ip("10.0.0.101"));
  EXPECT_EQ(to_backend.p.src_port, fwd->src_port);
  EXPECT_EQ(to_backend.p.dst_ip, ip("10.0.0.21"));
  EXPECT_EQ(to_backend.p.tcp_flags, RTE_TCP_RST_FLAG);
  EXPECT_EQ(to_backend.seq.seq, 5000u) << "what the backend expects next from the client";
  EXPECT_EQ(0, std::memcmp(to_backend.bytes.data(), kBackendMac, 6));
  const Frame& to_client = out[1];
  EXPECT_EQ(to_client.p.src_ip, ip("10.0.0.100"));
  EXPECT_EQ(ntohs(to_client.p.src_port), 80);
  EXPECT_EQ(to_client.p.dst_ip, ip("10.0.0.10"));
  EXPECT_EQ(ntohs(to_client.p.dst_port), 40007);
  EXPECT_EQ(to_client.p.tcp_flags, RTE_TCP_RST_FLAG);
  EXPECT_EQ(to_client.seq.seq, 9000u) << "what the client acknowledged";
  EXPECT_EQ(w_.counters->backends[1].resets.get(), 1u);
  EXPECT_EQ(w_.conns.size(), 0u);
  EXPECT_EQ(w_.counters->active_conns.get(), 0u);
}

// TIME_WAIT is final: a FIN after a reset must not make the connection active again, or it
// would leave the active counts twice (once at the reset, again at expiry) and they would wrap
// below zero, skewing wlc and a draining backend's count. Found by fuzz_worker.
TEST_F(WorkerTest, LateFinAfterResetLeavesTheConnectionClosed) {
  auto fwd = establish(40030);
  ASSERT_TRUE(fwd);
  EXPECT_EQ(w_.counters->active_conns.get(), 1u);
  ASSERT_TRUE(run(from_client(40030, RTE_TCP_RST_FLAG)));
  EXPECT_EQ(w_.counters->active_conns.get(), 0u);
  EXPECT_TRUE(run(from_backend(*fwd, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG)))
      << "late segments of a closed connection still find it";
  EXPECT_EQ(w_.counters->active_conns.get(), 0u);
  EXPECT_EQ(w_.counters->backends[1].active_conns.get(), 0u);
  expire_step(w_, UINT64_MAX, w_.conns.capacity());
  EXPECT_EQ(w_.conns.size(), 0u);
  EXPECT_EQ(w_.counters->active_conns.get(), 0u);
  EXPECT_EQ(w_.counters->backends[1].active_conns.get(), 0u);
}

// Two packets of a cut connection in one burst: both found it in the burst's bulk lookup, but
// the first ended it. The second must not end it again (its SNAT port would go back to the pool
// twice, and later be handed to two connections at once). Found by fuzz_worker.
TEST_F(WorkerTest, ConnectionCutEarlierInABurstIsNotCutTwice) {
  const uint64_t ports_free = w_.snat.available();
  ASSERT_TRUE(run(from_client(40007)));
  disable_first_backend();
  rte_mbuf* in[2] = {test::make_frame(pool_, from_client(40007, RTE_TCP_ACK_FLAG)),
                     test::make_frame(pool_, from_client(40007, RTE_TCP_ACK_FLAG))};
  rte_mbuf* tx[4];
  uint16_t n_tx = 0;
  process_burst(w_, *cfg_, in, 2, tx, &n_tx, 1);
  const auto out = take_frames(tx, n_tx);
  ASSERT_EQ(out.size(), 1u) << "the first packet's reset to its sender; the second is untracked";
  EXPECT_EQ(out[0].p.tcp_flags, RTE_TCP_RST_FLAG);
  EXPECT_EQ(w_.counters->backends[1].resets.get(), 1u);
  EXPECT_EQ(drops(abi::Drop::kNonSynMiss), 1u);
  EXPECT_EQ(w_.snat.available(), ports_free);
  EXPECT_EQ(w_.counters->active_conns.get(), 0u);
}

// A connection cut by the first packet of a burst frees its record, and a new connection in the
// same burst takes that record at once. A later packet of the cut connection, found by the
// burst's bulk lookup before all that, must not be sent on as the new connection's.
TEST_F(WorkerTest, RecordReusedInABurstCarriesOnlyItsOwnFlow) {
  ASSERT_TRUE(run(from_client(40007)));
  disable_first_backend();
  auto late = from_client(40007, RTE_TCP_ACK_FLAG);
  late.payload = 100;
  rte_mbuf* in[3] = {test::make_frame(pool_, from_client(40007, RTE_TCP_ACK_FLAG)),
                     test::make_frame(pool_, from_client(40008)), test::make_frame(pool_, late)};
  rte_mbuf* tx[6];
  uint16_t n_tx = 0;
  process_burst(w_, *cfg_, in, 3, tx, &n_tx, 1);
  const auto out = take_frames(tx, n_tx);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].p.tcp_flags, RTE_TCP_RST_FLAG);
  EXPECT_EQ(out[0].p.dst_ip, ip("10.0.0.10"));
  EXPECT_EQ(out[1].p.tcp_flags, RTE_TCP_SYN_FLAG) << "the new connection's SYN, to backend 2";
  EXPECT_EQ(out[1].p.dst_ip, ip("10.0.0.22"));
  EXPECT_EQ(drops(abi::Drop::kNonSynMiss), 1u) << "the late packet: its connection is gone";
  EXPECT_EQ(w_.conns.size(), 1u);
}

TEST_F(WorkerTest, ResetFlagCutsAnEnabledBackendsFlowsFromEitherSide) {
  auto fwd = run(from_client(40020));
  ASSERT_TRUE(fwd);
  cp::Snapshot s = two_backends();
  s.backends[0].admin = abi::AdminState::kDraining;
  s.backends[0].reset_flows = true;
  s.services[0].table.assign(7, 2);
  apply(s, 2);
  w_.pool = pool_;
  auto reply = from_backend(*fwd, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG);
  reply.seq = 70;
  reply.ack = 80;
  reply.payload = 10;
  const auto out = run_all(reply);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].p.dst_ip, ip("10.0.0.10"));
  EXPECT_EQ(out[0].seq.seq, 70u);
  EXPECT_EQ(out[1].p.dst_ip, ip("10.0.0.21"));
  EXPECT_EQ(out[1].p.src_ip, ip("10.0.0.101"));
  EXPECT_EQ(out[1].seq.seq, 80u);
  EXPECT_EQ(w_.conns.size(), 0u);
}

TEST_F(WorkerTest, WithoutABufferPoolOnlyTheSenderIsReset) {
  ASSERT_TRUE(run(from_client(40021)));
  cp::Snapshot s = two_backends();
  s.backends[0].admin = abi::AdminState::kDisabled;
  apply(s, 2);
  const auto out = run_all(from_client(40021, RTE_TCP_ACK_FLAG));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].p.dst_ip, ip("10.0.0.10"));
  EXPECT_EQ(w_.conns.size(), 0u);
}

TEST_F(WorkerTest, ResetsFromTheCutSideAreNotAnswered) {
  ASSERT_TRUE(run(from_client(40022)));
  cp::Snapshot s = two_backends();
  s.backends[0].admin = abi::AdminState::kDisabled;
  apply(s, 2);
  w_.pool = pool_;
  EXPECT_TRUE(run_all(from_client(40022, RTE_TCP_RST_FLAG)).empty());
  EXPECT_EQ(drops(abi::Drop::kBackendDisabled), 1u);
}

// A cut connection that has gone quiet: the sweep asks the backend for its sequence numbers with
// a bare ACK from the connection's SNAT address and port; the backend's answer then resets both
// sides at once. A connection that is not cut is never asked.
TEST_F(WorkerTest, QuietCutConnectionIsProbedThenResetOnBothSides) {
  auto fwd = establish(40040);
  ASSERT_TRUE(fwd);
  ASSERT_TRUE(establish(40041));
  w_.pool = pool_;
  rte_mbuf* tx[16];
  uint16_t n_tx = 0;
  sweep_step(w_, *cfg_, 2, w_.conns.capacity(), tx, &n_tx, 16);
  EXPECT_EQ(n_tx, 0) << "nothing is cut yet";

  cp::Snapshot s = two_backends();
  s.backends[0].admin = abi::AdminState::kDraining;
  s.backends[0].reset_flows = true;  // the drain deadline passed
  apply(s, 2);
  sweep_step(w_, *cfg_, 3, w_.conns.capacity(), tx, &n_tx, 1);
  ASSERT_EQ(n_tx, 1) << "at most max_probes frames";
  rte_pktmbuf_free(tx[0]);
  n_tx = 0;
  sweep_step(w_, *cfg_, 4, w_.conns.capacity(), tx, &n_tx, 16);
  ASSERT_EQ(n_tx, 2) << "one probe per cut connection and pass";
  EXPECT_EQ(w_.counters->backends[1].cut_probes.get(), 3u) << "every probe sent is counted";
  const std::vector<Frame> probes = take_frames(tx, n_tx);
  const auto to_first = std::find_if(probes.begin(), probes.end(), [&](const Frame& f) {
    return f.p.dst_port == fwd->dst_port && f.p.src_port == fwd->src_port;
  });
  ASSERT_NE(to_first, probes.end());
  EXPECT_EQ(0, std::memcmp(to_first->bytes.data(), kBackendMac, 6));
  EXPECT_EQ(to_first->p.src_ip, fwd->src_ip) << "from the connection's SNAT address";
  EXPECT_EQ(to_first->p.dst_ip, fwd->dst_ip);
  EXPECT_EQ(to_first->p.tcp_flags, RTE_TCP_ACK_FLAG);
  EXPECT_EQ(w_.conns.size(), 2u) << "asking ends nothing by itself";

  // The backend's answer: an ACK with what it sends next and what it expects next.
  auto answer = from_backend(*fwd, RTE_TCP_ACK_FLAG);
  answer.seq = 5000;
  answer.ack = 6000;
  answer.payload = 0;
  const auto out = run_all(answer);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].p.dst_ip, ip("10.0.0.10"));
  EXPECT_EQ(out[0].p.tcp_flags, RTE_TCP_RST_FLAG);
  EXPECT_EQ(out[0].seq.seq, 5000u);
  EXPECT_EQ(out[1].p.dst_ip, ip("10.0.0.21"));
  EXPECT_EQ(out[1].p.tcp_flags, RTE_TCP_RST_FLAG);
  EXPECT_EQ(out[1].seq.seq, 6000u);
  EXPECT_EQ(w_.conns.size(), 1u);
}

// When the backend is down (on_backend_down = "reset") or gone, the client is asked instead.
TEST_F(WorkerTest, CutConnectionOfADownBackendIsProbedOnTheClientSide) {
  ASSERT_TRUE(establish(40042));
  w_.pool = pool_;
  cp::Snapshot s = two_backends();
  s.backends[0].health = abi::Health::kDown;
  s.backends[0].reset_flows = true;
  apply(s, 2);
  rte_mbuf* tx[4];
  uint16_t n_tx = 0;
  sweep_step(w_, *cfg_, 3, w_.conns.capacity(), tx, &n_tx, 4);
  const std::vector<Frame> probes = take_frames(tx, n_tx);
  ASSERT_EQ(probes.size(), 1u);
  const pkt::Parsed& p = probes[0].p;
  EXPECT_EQ(0, std::memcmp(probes[0].bytes.data(), kClientMac, 6));
  EXPECT_EQ(p.src_ip, ip("10.0.0.100"));
  EXPECT_EQ(ntohs(p.src_port), 80);
  EXPECT_EQ(p.dst_ip, ip("10.0.0.10"));
  EXPECT_EQ(ntohs(p.dst_port), 40042);
  EXPECT_EQ(p.tcp_flags, RTE_TCP_ACK_FLAG);
}

TEST_F(WorkerTest, IdleConnectionsExpireAndReturnTheirPort) {
  auto fwd = run(from_client(40008), nullptr, 1);
  ASSERT_TRUE(fwd);
  // SYN timeout is 5 s = 5000 ticks; nothing expires before it.
  expire_step(w_, 4000, 2048);
  EXPECT_EQ(w_.conns.size(), 1u);
  expire_step(w_, 6000, 2048);
  EXPECT_EQ(w_.conns.size(), 0u);
  EXPECT_EQ(w_.counters->backends[1].active_conns.get(), 0u);
  EXPECT_EQ(w_.snat.available(), 77u);
  EXPECT_FALSE(run(from_backend(*fwd, RTE_TCP_ACK_FLAG)));
}

TEST_F(WorkerTest, ClosedConnectionsStayTrackedButStopCountingAsActive) {
  auto fwd = establish(40030);
  ASSERT_TRUE(fwd);
  ASSERT_TRUE(run(from_backend(*fwd, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG)));
  EXPECT_EQ(w_.counters->backends[1].active_conns.get(), 1u) << "half closed: still active";
  ASSERT_TRUE(run(from_client(40030, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG)));
  EXPECT_EQ(w_.counters->backends[1].active_conns.get(), 0u) << "FIN both ways: TIME_WAIT";
  EXPECT_EQ(w_.counters->active_conns.get(), 0u);
  EXPECT_EQ(w_.conns.size(), 1u) << "kept for late segments";
  ASSERT_TRUE(run(from_backend(*fwd, RTE_TCP_ACK_FLAG))) << "the last ACK still passes";
  EXPECT_EQ(w_.counters->active_conns.get(), 0u);

  // A reset ends the other connection; neither expiry nor reuse counts either of them again.
  auto second = run(from_client(40031));
  ASSERT_TRUE(second);
  EXPECT_EQ(w_.counters->active_conns.get(), 1u);
  ASSERT_TRUE(run(from_backend(*second, RTE_TCP_RST_FLAG)));
  EXPECT_EQ(w_.counters->backends[1].active_conns.get(), 0u);
  ASSERT_TRUE(run(from_client(40031)));  // the tuple reused: a new, active connection
  EXPECT_EQ(w_.counters->active_conns.get(), 1u);
  expire_step(w_, 1'000'000'000, 2048);
  EXPECT_EQ(w_.conns.size(), 0u);
  EXPECT_EQ(w_.counters->active_conns.get(), 0u);
  EXPECT_EQ(w_.counters->backends[1].active_conns.get(), 0u);
}

TEST_F(WorkerTest, UdpDatagramsShareOneFlow) {
  auto f = from_client(5353);
  f.proto = IPPROTO_UDP;
  cp::Snapshot s = two_backends();
  s.services[0].protocol = abi::Protocol::kUdp;
  apply(s, 2);
  auto a = run(f);
  auto b = run(f);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->src_port, b->src_port);
  EXPECT_EQ(w_.conns.size(), 1u);
}

TEST_F(WorkerTest, UdpFlowOfADownBackendMovesAtItsNextDatagram) {
  auto f = from_client(5354);
  f.proto = IPPROTO_UDP;
  cp::Snapshot s = two_backends();
  s.services[0].protocol = abi::Protocol::kUdp;
  apply(s, 2);
  auto a = run(f);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->dst_ip, ip("10.0.0.21"));
  s.backends[0].health = abi::Health::kDown;
  s.services[0].table.assign(7, 2);
  apply(s, 3);
  auto b = run(f);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->dst_ip, ip("10.0.0.22"));
  EXPECT_EQ(w_.conns.size(), 1u);
  EXPECT_EQ(w_.counters->backends[1].active_conns.get(), 0u);
}

TEST_F(WorkerTest, TcpFlowOfADownBackendIsKept) {
  ASSERT_TRUE(run(from_client(40013)));
  cp::Snapshot s = two_backends();
  s.backends[0].health = abi::Health::kDown;
  s.services[0].table.assign(7, 2);
  apply(s, 2);
  auto again = run(from_client(40013, RTE_TCP_ACK_FLAG));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->dst_ip, ip("10.0.0.21"));
}

TEST_F(WorkerTest, FramesForAnotherMacAreNotForUs) {
  auto f = from_client(40009);
  f.dst_mac[5] = 0x77;
  EXPECT_FALSE(run(f));
  EXPECT_EQ(drops(abi::Drop::kNotForUs), 1u);
}

TEST_F(WorkerTest, CorruptChecksumIsCountedAndDropped) {
  rte_mbuf* m = test::make_frame(pool_, from_client(40010));
  rte_pktmbuf_mtod(m, uint8_t*)[rte_pktmbuf_data_len(m) - 1] ^= 0xff;  // payload byte
  rte_mbuf* in[1] = {m};
  rte_mbuf* tx[2];
  uint16_t n_tx = 0;
  process_burst(w_, *cfg_, in, 1, tx, &n_tx, 1);
  EXPECT_EQ(n_tx, 0);
  EXPECT_EQ(drops(abi::Drop::kBadL4Checksum), 1u);
}

// By default (verify_l4_checksums = "tcp_control") a data segment of a tracked connection is
// forwarded without reading its payload; the incremental update keeps a wrong checksum wrong, so
// the backend still sees the corruption. A FIN with a wrong checksum is dropped: it would close
// the connection. With "all", the data segment is dropped too.
TEST_F(WorkerTest, CorruptDataSegmentKeepsItsCorruptionCorruptFinIsDropped) {
  auto fwd = establish(40012);
  ASSERT_TRUE(fwd);
  const auto send_corrupt = [&](uint8_t flags) {
    rte_mbuf* m = test::make_frame(pool_, from_client(40012, flags));
    rte_pktmbuf_mtod(m, uint8_t*)[rte_pktmbuf_data_len(m) - 1] ^= 0xff;  // payload byte
    rte_mbuf* in[1] = {m};
    rte_mbuf* tx[2];
    uint16_t n_tx = 0;
    process_burst(w_, *cfg_, in, 1, tx, &n_tx, 1);
    std::optional<pkt::Parsed> out;
    if (n_tx == 1) {
      pkt::Parsed p;
      const auto* data = rte_pktmbuf_mtod(tx[0], const uint8_t*);
      // Forwarded as it is: addresses and ports rewritten, the checksum still wrong.
      EXPECT_EQ(pkt::parse(data, rte_pktmbuf_data_len(tx[0]), p), pkt::Kind::kDrop);
      EXPECT_EQ(p.drop, abi::Drop::kBadL4Checksum);
      EXPECT_EQ(pkt::parse(data, rte_pktmbuf_data_len(tx[0]), p, {.verify_l4_checksum = false}),
                pkt::Kind::kL4);
      out = p;
      rte_pktmbuf_free(tx[0]);
    }
    return out;
  };
  const auto data = send_corrupt(RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG);
  ASSERT_TRUE(data);
  EXPECT_EQ(data->dst_ip, fwd->dst_ip);
  EXPECT_EQ(data->src_port, fwd->src_port);
  EXPECT_EQ(drops(abi::Drop::kBadL4Checksum), 0u);
  EXPECT_FALSE(send_corrupt(RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG));
  EXPECT_EQ(drops(abi::Drop::kBadL4Checksum), 1u);
  shared_.verify_all_l4_checksums = true;
  EXPECT_FALSE(send_corrupt(RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG));
  EXPECT_EQ(drops(abi::Drop::kBadL4Checksum), 2u);
  // The connection is still open: a good data segment goes through.
  EXPECT_TRUE(run(from_client(40012, RTE_TCP_ACK_FLAG)));
}

TEST_F(WorkerTest, ClientReusingAClosedTupleStartsANewConnection) {
  auto fwd = establish(40011);
  ASSERT_TRUE(fwd);
  ASSERT_TRUE(run(from_backend(*fwd, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG)));
  ASSERT_TRUE(run(from_client(40011, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG)));
  // Same 4-tuple, new SYN: a fresh connection with its own SNAT port and SYN state.
  auto again = run(from_client(40011));
  ASSERT_TRUE(again);
  EXPECT_NE(again->src_port, fwd->src_port);
  EXPECT_EQ(w_.conns.size(), 1u);
  EXPECT_EQ(w_.counters->backends[1].new_conns.get(), 2u);
  EXPECT_EQ(w_.counters->active_conns.get(), 1u);
}

TEST_F(WorkerTest, SynForADisabledBackendsTupleIsScheduledAgain) {
  ASSERT_TRUE(run(from_client(40012)));
  disable_first_backend();
  auto retry = run(from_client(40012));
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->dst_ip, ip("10.0.0.22"));
  EXPECT_EQ(w_.counters->backends[1].active_conns.get(), 0u);
  EXPECT_EQ(w_.conns.size(), 1u);
}

TEST_F(WorkerTest, BurstsLargerThanTheInternalBatchAreProcessedWhole) {
  constexpr uint16_t kN = 70;  // the fixture has 77 SNAT ports
  rte_mbuf* in[kN];
  for (uint16_t i = 0; i < kN; ++i) in[i] = test::make_frame(pool_, from_client(41000 + i));
  rte_mbuf* tx[2 * kN];
  uint16_t n_tx = 0;
  process_burst(w_, *cfg_, in, kN, tx, &n_tx, 1);
  EXPECT_EQ(n_tx, kN);
  EXPECT_EQ(w_.conns.size(), kN);
  rte_pktmbuf_free_bulk(tx, n_tx);
}

// Several packets of one new flow in a single burst: the later ones belong to the connection the
// first one opened, also after a packet in between ended it and a SYN opened it again.
TEST_F(WorkerTest, PacketsOfANewFlowInOneBurstShareItsConnection) {
  const test::FrameSpec specs[] = {
      from_client(41500),                    // opens the connection
      from_client(41501),                    // another flow
      from_client(41500),                    // the SYN again: the same connection
      from_client(41500, RTE_TCP_RST_FLAG),  // the client gives up: TIME_WAIT
      from_client(41500),                    // reuses the tuple: a new connection
      from_client(41500, RTE_TCP_ACK_FLAG),  // belongs to that one
  };
  constexpr uint16_t kN = std::size(specs);
  rte_mbuf* in[kN];
  for (uint16_t i = 0; i < kN; ++i) in[i] = test::make_frame(pool_, specs[i]);
  rte_mbuf* tx[2 * kN];
  uint16_t n_tx = 0;
  process_burst(w_, *cfg_, in, kN, tx, &n_tx, 1);
  const std::vector<Frame> out = take_frames(tx, n_tx);
  ASSERT_EQ(out.size(), kN) << "every packet forwarded";
  EXPECT_EQ(w_.conns.size(), 2u);
  EXPECT_EQ(w_.counters->backends[1].new_conns.get() + w_.counters->backends[2].new_conns.get(), 3u)
      << "41500 twice (the second after its reset), 41501 once";
  const auto same_path = [](const Frame& a, const Frame& b) {
    return a.p.src_ip == b.p.src_ip && a.p.src_port == b.p.src_port && a.p.dst_ip == b.p.dst_ip &&
           a.p.dst_port == b.p.dst_port;
  };
  EXPECT_TRUE(same_path(out[0], out[2])) << "the repeated SYN took the first one's SNAT port";
  EXPECT_TRUE(same_path(out[0], out[3]));
  EXPECT_TRUE(same_path(out[4], out[5])) << "the ACK followed the new connection";
  EXPECT_FALSE(same_path(out[0], out[1]));
  EXPECT_EQ(w_.counters->active_conns.get(), 2u);
}

// ---- ICMP errors about tracked flows: path-MTU discovery through the balancer. ----

// An ICMP error (`type`, `code`, next-hop MTU) from `from_ip` to the sender of the frame
// `quoted`, quoting its IP header and `l4_bytes` bytes after it (all of it by default).
rte_mbuf* make_icmp_error(rte_mempool* pool, const std::vector<uint8_t>& quoted,
                          const uint8_t src_mac[6], uint32_t from_ip, uint8_t type, uint8_t code,
                          uint16_t mtu, size_t l4_bytes) {
  const uint8_t* qip = quoted.data() + pkt::kEtherHdrLen;
  const size_t quote = std::min(quoted.size() - pkt::kEtherHdrLen - 20, l4_bytes) + 20;
  std::vector<uint8_t> f(pkt::kEtherHdrLen + 20 + 8 + quote, 0);
  std::memcpy(f.data(), kOurMac, 6);
  std::memcpy(f.data() + 6, src_mac, 6);
  f[12] = 0x08;
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(f.data() + pkt::kEtherHdrLen);
  ip->version_ihl = RTE_IPV4_VHL_DEF;
  ip->total_length = htons(static_cast<uint16_t>(20 + 8 + quote));
  ip->time_to_live = 64;
  ip->next_proto_id = IPPROTO_ICMP;
  ip->src_addr = from_ip;
  std::memcpy(&ip->dst_addr, qip + 12, 4);  // the quoted datagram's source
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  uint8_t* icmp = f.data() + pkt::kEtherHdrLen + 20;
  icmp[0] = type;
  icmp[1] = code;
  icmp[6] = static_cast<uint8_t>(mtu >> 8);
  icmp[7] = static_cast<uint8_t>(mtu);
  std::memcpy(icmp + 8, qip, quote);
  const uint16_t check = static_cast<uint16_t>(~rte_raw_cksum(icmp, 8 + quote));
  std::memcpy(icmp + 2, &check, 2);
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(f.size())), f.data(), f.size());
  return m;
}

// The parse of frame `f`, which must be of kind `want` with every checksum right.
pkt::Parsed parse_as(const std::vector<uint8_t>& f, pkt::Kind want) {
  pkt::Parsed p;
  EXPECT_EQ(pkt::parse(f.data(), static_cast<uint32_t>(f.size()), p), want);
  return p;
}

// The MSS option of a TCP frame built with test::FrameSpec::mss (the only option), or 0.
uint16_t mss_of(const std::vector<uint8_t>& frame, const pkt::Parsed& p) {
  const uint8_t* opt = frame.data() + p.l4_offset + sizeof(rte_tcp_hdr);
  if ((frame[p.l4_offset + 12] >> 4) * 4 <= 20 || opt[0] != 2) return 0;
  return static_cast<uint16_t>(opt[2] << 8 | opt[3]);
}

TEST_F(WorkerTest, SynsOfBothSidesOfferNoMoreThanThePortCarries) {
  auto syn = from_client(40000);
  syn.mss = 8960;  // a client on a jumbo-frame link
  std::vector<uint8_t> out;
  auto fwd = run(syn, &out);  // run() verifies the rewritten checksums in full
  ASSERT_TRUE(fwd);
  EXPECT_EQ(mss_of(out, *fwd), 1460);
  auto syn_ack = from_backend(*fwd, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
  syn_ack.mss = 8960;
  auto back = run(syn_ack, &out);
  ASSERT_TRUE(back);
  EXPECT_EQ(mss_of(out, *back), 1460);
  EXPECT_EQ(w_.counters->mss_clamped.get(), 2u);
  // Data segments pass untouched; an MSS that fits is left as it is.
  ASSERT_TRUE(run(from_client(40000, RTE_TCP_ACK_FLAG)));
  auto small = from_client(40001);
  small.mss = 1400;
  auto fwd2 = run(small, &out);
  ASSERT_TRUE(fwd2);
  EXPECT_EQ(mss_of(out, *fwd2), 1400);
  EXPECT_EQ(w_.counters->mss_clamped.get(), 2u);
  shared_.ports[0].mtu = 9000;
  auto jumbo = from_client(40002);
  jumbo.mss = 8960;
  auto fwd3 = run(jumbo, &out);
  ASSERT_TRUE(fwd3);
  EXPECT_EQ(mss_of(out, *fwd3), 8960) << "a port that carries jumbo frames";
}

TEST_F(WorkerTest, DatagramLongerThanThePortsMtuGetsFragmentationNeeded) {
  ASSERT_TRUE(establish(40000));
  shared_.ports[0].mtu = 1000;
  auto big = from_client(40000, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG);
  big.payload = 1200;
  big.dont_fragment = true;
  const auto out = run_raw(big);
  ASSERT_EQ(out.size(), 1u);
  pkt::Parsed p;
  ASSERT_EQ(pkt::parse(out[0].data(), static_cast<uint32_t>(out[0].size()), p), pkt::Kind::kIcmp);
  EXPECT_EQ(p.src_ip, ip("10.0.0.100")) << "from the address the client wrote to";
  EXPECT_EQ(p.dst_ip, ip("10.0.0.10"));
  EXPECT_EQ(0, std::memcmp(out[0].data(), kClientMac, 6));
  const uint8_t* icmp = out[0].data() + p.l4_offset;
  EXPECT_EQ(icmp[0], 3);
  EXPECT_EQ(icmp[1], 4);
  EXPECT_EQ(icmp[6] << 8 | icmp[7], 1000);
  EXPECT_EQ(drops(abi::Drop::kTooBig), 1u);
  // From a group MAC (found by fuzzing): dropped, not answered.
  auto from_group = big;
  from_group.src_mac[0] = 0x03;
  EXPECT_TRUE(run_raw(from_group).empty());
  EXPECT_EQ(drops(abi::Drop::kTooBig), 2u);
  // Without DF: dropped, not answered. One that fits is forwarded.
  big.dont_fragment = false;
  EXPECT_TRUE(run_raw(big).empty());
  EXPECT_EQ(drops(abi::Drop::kTooBig), 3u);
  big.payload = 900;
  EXPECT_TRUE(run(big));
  // A first packet that does not fit opens nothing.
  auto syn = from_client(40001);
  syn.payload = 1200;
  syn.dont_fragment = true;
  ASSERT_EQ(run_raw(syn).size(), 1u);
  EXPECT_EQ(drops(abi::Drop::kTooBig), 4u);
  EXPECT_EQ(w_.conns.size(), 1u);
}

class IcmpErrorTest : public WorkerTest {
 protected:
  // Runs `in` through the worker alone: its bytes as they went in, the one frame that came out.
  bool pass(rte_mbuf* in, std::vector<uint8_t>* sent, std::vector<uint8_t>& out) {
    const auto* data = rte_pktmbuf_mtod(in, const uint8_t*);
    if (sent != nullptr) sent->assign(data, data + rte_pktmbuf_data_len(in));
    rte_mbuf* tx[2];
    uint16_t n_tx = 0;
    process_burst(w_, *cfg_, &in, 1, tx, &n_tx, 1);
    if (n_tx == 1) {
      const auto* o = rte_pktmbuf_mtod(tx[0], const uint8_t*);
      out.assign(o, o + rte_pktmbuf_data_len(tx[0]));
    }
    rte_pktmbuf_free_bulk(tx, n_tx);
    return n_tx == 1;
  }

  rte_mbuf* icmp_error(const std::vector<uint8_t>& quoted, const uint8_t src_mac[6],
                       uint32_t from_ip, uint8_t type, uint8_t code, uint16_t mtu,
                       size_t l4_bytes = SIZE_MAX) {
    return make_icmp_error(pool_, quoted, src_mac, from_ip, type, code, mtu, l4_bytes);
  }

  // The IPv4 datagram inside a frame (without the Ethernet header and any padding).
  static std::vector<uint8_t> datagram(const std::vector<uint8_t>& frame) {
    const uint16_t total = static_cast<uint16_t>(frame[16] << 8 | frame[17]);
    return {frame.begin() + pkt::kEtherHdrLen, frame.begin() + pkt::kEtherHdrLen + total};
  }
};

// A router between ilb and a backend cannot forward ilb's packet without fragmenting it: the
// client learns the path MTU about its own packet to the VIP, as if there were no balancer.
TEST_F(IcmpErrorTest, FragmentationNeededFromTheBackendSideReachesTheClient) {
  std::vector<uint8_t> client_sent;
  std::vector<uint8_t> to_backend;
  ASSERT_TRUE(pass(test::make_frame(pool_, from_client(41000)), &client_sent, to_backend));
  std::vector<uint8_t> out;
  ASSERT_TRUE(pass(icmp_error(to_backend, kBackendMac, ip("10.0.0.1"), 3, 4, 1400), nullptr, out));
  pkt::Parsed p;
  ASSERT_EQ(pkt::parse(out.data(), static_cast<uint32_t>(out.size()), p), pkt::Kind::kIcmp)
      << "the outer IP and ICMP checksums hold";
  EXPECT_EQ(0, std::memcmp(out.data(), kClientMac, 6));
  EXPECT_EQ(0, std::memcmp(out.data() + 6, kOurMac, 6));
  EXPECT_EQ(p.src_ip, ip("10.0.0.100")) << "from the VIP";
  EXPECT_EQ(p.dst_ip, ip("10.0.0.10"));
  const uint8_t* icmp = out.data() + p.l4_offset;
  EXPECT_EQ(icmp[0], 3);
  EXPECT_EQ(icmp[1], 4);
  EXPECT_EQ(icmp[6] << 8 | icmp[7], 1400) << "the MTU is kept: the rewrite changes no size";
  const std::vector<uint8_t> quoted(out.begin() + p.l4_offset + 8, out.end());
  EXPECT_EQ(quoted, datagram(client_sent))
      << "the quote is the client's own datagram, every checksum in it included";
}

// A router on the clients' side cannot deliver ilb's packet to the client: the backend hears
// about its own packet to the SNAT address.
TEST_F(IcmpErrorTest, UnreachableFromTheClientSideReachesTheBackend) {
  std::vector<uint8_t> to_backend;
  ASSERT_TRUE(pass(test::make_frame(pool_, from_client(41001)), nullptr, to_backend));
  pkt::Parsed fwd;
  ASSERT_EQ(pkt::parse(to_backend.data(), static_cast<uint32_t>(to_backend.size()), fwd),
            pkt::Kind::kL4);
  std::vector<uint8_t> backend_sent;
  std::vector<uint8_t> to_client;
  ASSERT_TRUE(pass(test::make_frame(pool_, from_backend(fwd, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)),
                   &backend_sent, to_client));
  std::vector<uint8_t> out;
  ASSERT_TRUE(pass(icmp_error(to_client, kClientMac, ip("10.0.0.1"), 3, 1, 0), nullptr, out));
  pkt::Parsed p;
  ASSERT_EQ(pkt::parse(out.data(), static_cast<uint32_t>(out.size()), p), pkt::Kind::kIcmp);
  EXPECT_EQ(0, std::memcmp(out.data(), kBackendMac, 6));
  EXPECT_EQ(p.src_ip, ip("10.0.0.101")) << "from the SNAT address";
  EXPECT_EQ(p.dst_ip, ip("10.0.0.21"));
  EXPECT_EQ(out[p.l4_offset + 1], 1) << "host unreachable";
  const std::vector<uint8_t> quoted(out.data() + p.l4_offset + 8, out.data() + out.size());
  EXPECT_EQ(quoted, datagram(backend_sent));
}

// RFC 792's minimum quote (IP header and 8 bytes) carries the ports but not the TCP checksum:
// enough to find and translate the flow, with nothing more to fix.
TEST_F(IcmpErrorTest, AMinimalQuoteIsTranslatedToo) {
  std::vector<uint8_t> client_sent;
  std::vector<uint8_t> to_backend;
  ASSERT_TRUE(pass(test::make_frame(pool_, from_client(41002)), &client_sent, to_backend));
  std::vector<uint8_t> out;
  ASSERT_TRUE(pass(icmp_error(to_backend, kBackendMac, ip("10.0.0.1"), 11, 0, 0, 8), nullptr, out));
  pkt::Parsed p;
  ASSERT_EQ(pkt::parse(out.data(), static_cast<uint32_t>(out.size()), p), pkt::Kind::kIcmp);
  const std::vector<uint8_t> quoted(out.data() + p.l4_offset + 8, out.data() + out.size());
  const std::vector<uint8_t> original = datagram(client_sent);
  ASSERT_EQ(quoted.size(), 28u);
  EXPECT_TRUE(std::equal(quoted.begin(), quoted.end(), original.begin()));
}

// Errors that quote no tracked flow, quote too little, or are not addressed to the quoted
// datagram's sender are counted and dropped; none is forwarded.
TEST_F(IcmpErrorTest, ErrorsAboutNoTrackedFlowAreDropped) {
  std::vector<uint8_t> to_backend;
  ASSERT_TRUE(pass(test::make_frame(pool_, from_client(41003)), nullptr, to_backend));
  std::vector<uint8_t> out;
  const uint64_t before = drops(abi::Drop::kUnsupported);
  // Too short a quote: the ports are not all there.
  EXPECT_FALSE(
      pass(icmp_error(to_backend, kBackendMac, ip("10.0.0.1"), 3, 4, 1400, 3), nullptr, out));
  // A flow ilb does not track: another client port.
  std::vector<uint8_t> other = to_backend;
  pkt::Parsed fwd;
  ASSERT_EQ(pkt::parse(other.data(), static_cast<uint32_t>(other.size()), fwd), pkt::Kind::kL4);
  other[fwd.l4_offset] ^= 0x01;  // the SNAT port's low byte
  EXPECT_FALSE(pass(icmp_error(other, kBackendMac, ip("10.0.0.1"), 3, 4, 1400), nullptr, out));
  // An ICMP type that is not an error about a datagram.
  EXPECT_FALSE(pass(icmp_error(to_backend, kBackendMac, ip("10.0.0.1"), 5, 0, 0), nullptr, out));
  EXPECT_EQ(drops(abi::Drop::kUnsupported), before + 3);
  EXPECT_EQ(w_.conns.size(), 1u) << "the tracked flow is untouched";
}

// ---- ActiveConfig validation: the snapshot is untrusted input. ----

class ActiveConfigTest : public testing::Test {
 protected:
  std::string build_error(std::vector<uint8_t> slot, uint64_t gen = 1,
                          const OwnAddresses& own = {}) {
    std::string err;
    ActiveConfig* c = ActiveConfig::build(slot.data(), slot.size(), gen, err, own);
    ActiveConfig::destroy(c);
    return c == nullptr ? err : "";
  }
  abi::SlotHeader& header(std::vector<uint8_t>& s) {
    return *reinterpret_cast<abi::SlotHeader*>(s.data());
  }
};

TEST_F(ActiveConfigTest, AcceptsTheControlPlanesEncoding) {
  EXPECT_EQ(build_error(test::encode(two_backends(), 1)), "");
}

TEST_F(ActiveConfigTest, RejectsChecksumMismatch) {
  auto slot = test::encode(two_backends(), 1);
  slot.back() ^= 1;
  EXPECT_EQ(build_error(slot), "checksum mismatch");
}

TEST_F(ActiveConfigTest, RejectsWrongGeneration) {
  EXPECT_NE(build_error(test::encode(two_backends(), 1), 2).find("generation"), std::string::npos);
}

TEST_F(ActiveConfigTest, RejectsCountsAndOffsetsOutsideTheSlot) {
  auto slot = test::encode(two_backends(), 1);
  header(slot).backend_count = 1000;
  test::reseal(slot);
  EXPECT_NE(build_error(slot).find("out of bounds"), std::string::npos);
  slot = test::encode(two_backends(), 1);
  header(slot).payload_end = slot.size() + 64;
  EXPECT_NE(build_error(slot).find("payload_end"), std::string::npos);
}

TEST_F(ActiveConfigTest, RejectsTableEntryNamingAnotherServicesBackend) {
  auto slot = test::encode(two_backends(), 1);
  auto* table = reinterpret_cast<uint32_t*>(slot.data() + header(slot).tables_offset);
  table[3] = 3;  // no backend 3
  test::reseal(slot);
  EXPECT_NE(build_error(slot).find("table entry 3"), std::string::npos);
}

TEST_F(ActiveConfigTest, RejectsDuplicateBackendIds) {
  auto slot = test::encode(two_backends(), 1);
  auto* b = reinterpret_cast<abi::BackendRecord*>(slot.data() + header(slot).backends_offset);
  b[1].id = b[0].id;
  test::reseal(slot);
  EXPECT_NE(build_error(slot).find("duplicate id"), std::string::npos);
}

TEST_F(ActiveConfigTest, RejectsBadEnumsAndUnterminatedNames) {
  auto slot = test::encode(two_backends(), 1);
  auto* s = reinterpret_cast<abi::ServiceRecord*>(slot.data() + header(slot).services_offset);
  s[0].protocol = 1;
  test::reseal(slot);
  EXPECT_NE(build_error(slot).find("bad protocol"), std::string::npos);
  slot = test::encode(two_backends(), 1);
  s = reinterpret_cast<abi::ServiceRecord*>(slot.data() + header(slot).services_offset);
  std::memset(s[0].name, 'x', sizeof(s[0].name));
  test::reseal(slot);
  EXPECT_NE(build_error(slot).find("name not terminated"), std::string::npos);
  slot = test::encode(two_backends(), 1);
  s = reinterpret_cast<abi::ServiceRecord*>(slot.data() + header(slot).services_offset);
  s[0].flags = 1u << 7;
  test::reseal(slot);
  EXPECT_NE(build_error(slot).find("unknown flag bits"), std::string::npos);
  slot = test::encode(two_backends(), 1);
  s = reinterpret_cast<abi::ServiceRecord*>(slot.data() + header(slot).services_offset);
  s[0].protocol = static_cast<uint8_t>(abi::Protocol::kUdp);
  s[0].flags = abi::kServiceResetUntracked;
  test::reseal(slot);
  EXPECT_NE(build_error(slot).find("on a UDP service"), std::string::npos);
}

TEST_F(ActiveConfigTest, RejectsVipsAndBackendsAtTheDataplanesOwnAddresses) {
  const OwnAddresses own{{ip("10.0.0.101"), ip("10.0.0.102")}, {ip("10.0.0.2")}};
  EXPECT_EQ(build_error(test::encode(two_backends(), 1), 1, own), "");

  cp::Snapshot s = two_backends();
  s.services[0].vip = ip("10.0.0.102");
  EXPECT_EQ(build_error(test::encode(s, 1), 1, own),
            "service record 0: VIP 10.0.0.102 is a SNAT address of the dataplane");
  s.services[0].vip = ip("10.0.0.2");
  EXPECT_EQ(build_error(test::encode(s, 1), 1, own),
            "service record 0: VIP 10.0.0.2 is the address of port 0");

  s = two_backends();
  s.backends[1].address = ip("10.0.0.101");
  EXPECT_EQ(build_error(test::encode(s, 1), 1, own),
            "backend record 1: address 10.0.0.101 is a SNAT address of the dataplane");
  s.backends[1].address = ip("10.0.0.100");  // the service's own VIP
  EXPECT_EQ(build_error(test::encode(s, 1), 1, own), "backend 2: address 10.0.0.100 is a VIP");
}

TEST_F(ActiveConfigTest, RandomCorruptionNeverCrashesTheValidator) {
  const auto good = test::encode(two_backends(), 1);
  uint32_t seed = 12345;
  for (int i = 0; i < 2000; ++i) {
    auto slot = good;
    for (int k = 0; k < 4; ++k) {
      seed = seed * 1103515245 + 12345;
      slot[(seed >> 8) % slot.size()] = static_cast<uint8_t>(seed >> 24);
    }
    if (i % 2 == 0) test::reseal(slot);
    build_error(slot);  // must return, accepted or not
  }
}

TEST_F(WorkerTest, WrrStepsThroughItsWeightedSequence) {
  cp::Snapshot s = two_backends();
  s.services[0].scheduler = abi::Scheduler::kWrr;
  s.services[0].table = {1, 2, 1};  // what build_wrr_table gives weights 2:1
  apply(s, 2);
  std::vector<uint32_t> picked;
  for (uint16_t i = 0; i < 6; ++i) {
    auto p = run(from_client(static_cast<uint16_t>(45000 + i)));
    ASSERT_TRUE(p);
    picked.push_back(p->dst_ip == ip("10.0.0.21") ? 1 : 2);
  }
  EXPECT_EQ(picked, (std::vector<uint32_t>{1, 2, 1, 1, 2, 1}));
}

// wlc: each new connection goes to the backend with the fewest of this worker's connections per
// unit of weight, so with weights 1:3 and no connection closing, the split settles at 1:3.
TEST_F(WorkerTest, WlcSendsNewConnectionsToTheLeastLoadedPerWeight) {
  cp::Snapshot s = two_backends();
  s.services[0].scheduler = abi::Scheduler::kWlc;
  s.services[0].table = {1, 2};
  s.backends[0].weight = 1;
  s.backends[1].weight = 3;
  apply(s, 2);
  for (uint16_t i = 0; i < 8; ++i) ASSERT_TRUE(run(from_client(static_cast<uint16_t>(46000 + i))));
  EXPECT_EQ(w_.counters->backends[1].active_conns.get(), 2u);
  EXPECT_EQ(w_.counters->backends[2].active_conns.get(), 6u);
  // Equal weights from now on: backend 1 takes the next ones until it has caught up.
  s.backends[1].weight = 1;
  apply(s, 3);
  for (uint16_t i = 0; i < 4; ++i) ASSERT_TRUE(run(from_client(static_cast<uint16_t>(46100 + i))));
  EXPECT_EQ(w_.counters->backends[1].active_conns.get(), 6u) << "equal weights: 6 and 6";
  EXPECT_EQ(w_.counters->backends[2].active_conns.get(), 6u);
}

// Two workers on one port: each owns the connections whose SYN it received and every other
// port of the SNAT range. A backend's reply that arrives on the other worker's queue is handed to
// the owner through their ring and leaves from the owner, rewritten; nothing is sent twice and a
// reply nobody owns is not bounced back and forth.
class TwoWorkerTest : public WorkerTest {
 protected:
  TwoWorkerTest() { workers_ = 2; }

  void SetUp() override {
    WorkerTest::SetUp();
    static int serial = 0;
    const std::string n = std::to_string(serial++);
    shared_.workers = workers_;
    shared_.snat_port_min = 1024;
    w1_.index = 1;
    w1_.shared = &shared_;
    w1_.pool = pool_;
    w1_.counters = static_cast<WorkerCounters*>(rte_zmalloc("tw_ctr", sizeof(WorkerCounters), 64));
    for (rte_ring** r : {&w1_.to_main, &w1_.resolve, &w1_.from_main, &ring01_, &ring10_}) {
      *r = rte_ring_create(("tw_r" + n + "_" + std::to_string(rings_++)).c_str(), 64, SOCKET_ID_ANY,
                           RING_F_SP_ENQ | RING_F_SC_DEQ);
      ASSERT_NE(*r, nullptr);
    }
    std::string err;
    ASSERT_TRUE(w1_.conns.init("tw_conn" + n, 1024, shared_.snat_addresses, SOCKET_ID_ANY, err))
        << err;
    // Worker 0's share is the even ports from 1024, worker 1's the odd ones.
    ASSERT_TRUE(w1_.snat.init(shared_.snat_addresses, 1024, 1100, 1, workers_, SOCKET_ID_ANY, err));
    w_.handoff_to[1] = ring01_;
    w1_.handoff_from[0] = ring01_;
    w1_.handoff_to[0] = ring10_;
    w_.handoff_from[1] = ring10_;
  }

  void TearDown() override {
    free_rings({w1_.to_main, w1_.resolve, w1_.from_main, ring01_, ring10_});
    rte_free(w1_.counters);
    WorkerTest::TearDown();
  }

  // Frees `rings` and the frames left in them.
  static void free_rings(std::initializer_list<rte_ring*> rings) {
    for (rte_ring* r : rings) {
      rte_mbuf* m = nullptr;
      while (r != nullptr && rte_ring_dequeue(r, reinterpret_cast<void**>(&m)) == 0) {
        rte_pktmbuf_free(m);
      }
      rte_ring_free(r);
    }
  }

  // Runs one frame through worker `w`; returns what it transmitted (checksums verified).
  std::vector<pkt::Parsed> on(WorkerContext& w, const test::FrameSpec& f) {
    rte_mbuf* in[1] = {test::make_frame(pool_, f)};
    rte_mbuf* tx[4];
    uint16_t n_tx = 0;
    process_burst(w, *cfg_, in, 1, tx, &n_tx, 1);
    return collect(tx, n_tx);
  }
  // Lets worker `w` process what the other worker handed it.
  std::vector<pkt::Parsed> handoffs(WorkerContext& w) {
    rte_mbuf* tx[8];
    uint16_t n_tx = 0;
    process_handoffs(w, *cfg_, 2, tx, &n_tx, 1);
    return collect(tx, n_tx);
  }
  // Runs one frame through worker `w`; returns the bytes of the one frame it transmitted.
  std::vector<uint8_t> sent_by(WorkerContext& w, const test::FrameSpec& f) {
    rte_mbuf* in[1] = {test::make_frame(pool_, f)};
    rte_mbuf* tx[4];
    uint16_t n_tx = 0;
    process_burst(w, *cfg_, in, 1, tx, &n_tx, 1);
    std::vector<uint8_t> out;
    if (n_tx == 1) {
      const auto* data = rte_pktmbuf_mtod(tx[0], const uint8_t*);
      out.assign(data, data + rte_pktmbuf_data_len(tx[0]));
    }
    rte_pktmbuf_free_bulk(tx, n_tx);
    return out;
  }
  // Worker `w`, which holds no such connection, gets a router's "fragmentation needed" about
  // `to_client` from the client's side; it sends nothing itself.
  void client_side_error_arrives_at(WorkerContext& w, const std::vector<uint8_t>& to_client) {
    rte_mbuf* err[1] = {
        make_icmp_error(pool_, to_client, kClientMac, ip("10.0.0.1"), 3, 4, 1400, SIZE_MAX)};
    rte_mbuf* tx[4];
    uint16_t n_tx = 0;
    process_burst(w, *cfg_, err, 1, tx, &n_tx, 1);
    EXPECT_EQ(n_tx, 0);
    rte_pktmbuf_free_bulk(tx, n_tx);
  }
  // Opens a connection from client port `client_port` on worker `w`; returns the backend's
  // SYN-ACK as `w` sent it on to the client (empty if it did not).
  std::vector<uint8_t> syn_ack_to_client_via(WorkerContext& w, uint16_t client_port) {
    const auto syn = on(w, from_client(client_port));
    EXPECT_EQ(syn.size(), 1u);
    if (syn.empty()) return {};
    return sent_by(w, from_backend(syn[0], RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG));
  }
  // Gives the ICMP error `err` to worker 1, which must hand it over, then lets worker 0 process
  // its hand-overs; returns where worker 0 sent the error (0 if it sent nothing).
  uint32_t icmp_error_sent_via_worker1(rte_mbuf* err) {
    rte_mbuf* tx[4];
    uint16_t n_tx = 0;
    process_burst(w1_, *cfg_, &err, 1, tx, &n_tx, 1);
    EXPECT_EQ(n_tx, 0);
    EXPECT_EQ(w1_.counters->handoff_out.get(), 1u);
    rte_pktmbuf_free_bulk(tx, n_tx);
    n_tx = 0;
    process_handoffs(w_, *cfg_, 2, tx, &n_tx, 1);
    pkt::Parsed p;
    const bool icmp = n_tx == 1 && pkt::parse(rte_pktmbuf_mtod(tx[0], const uint8_t*),
                                              rte_pktmbuf_data_len(tx[0]), p) == pkt::Kind::kIcmp;
    rte_pktmbuf_free_bulk(tx, n_tx);
    return icmp ? p.dst_ip : 0;
  }
  std::vector<pkt::Parsed> collect(rte_mbuf** tx, uint16_t n) {
    std::vector<pkt::Parsed> out(n);
    for (uint16_t i = 0; i < n; ++i) {
      EXPECT_EQ(
          pkt::parse(rte_pktmbuf_mtod(tx[i], const uint8_t*), rte_pktmbuf_data_len(tx[i]), out[i]),
          pkt::Kind::kL4);
      rte_pktmbuf_free(tx[i]);
    }
    return out;
  }

  // The dataplane's mbuf field for ICMP errors going round the workers.
  static int icmp_round_field() {
    const int offset = register_icmp_round_field();
    EXPECT_GE(offset, 0);
    return offset;
  }

  WorkerContext w1_;
  rte_ring* ring01_ = nullptr;  // worker 0 -> worker 1
  rte_ring* ring10_ = nullptr;  // worker 1 -> worker 0
  int rings_ = 0;
};

TEST_F(TwoWorkerTest, SnatPortOwnerIsTheWorkerWhoseShareHoldsIt) {
  EXPECT_EQ(snat_port_owner(shared_, htons(1024)), 0u);
  EXPECT_EQ(snat_port_owner(shared_, htons(1025)), 1u);
  EXPECT_EQ(snat_port_owner(shared_, htons(1100)), 0u);
  EXPECT_EQ(snat_port_owner(shared_, htons(80)), 0u) << "below the range: nobody's, no hand-over";
}

TEST_F(TwoWorkerTest, ReplyOnTheOtherWorkersQueueIsHandedToTheOwner) {
  const auto syn = on(w_, from_client(41000));
  ASSERT_EQ(syn.size(), 1u);
  EXPECT_EQ(ntohs(syn[0].src_port) % 2, 0) << "worker 0 allocates from its own share";
  // The SYN-ACK lands on worker 1's queue: worker 1 sends nothing and hands it over.
  EXPECT_TRUE(on(w1_, from_backend(syn[0], RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)).empty());
  EXPECT_EQ(w1_.counters->handoff_out.get(), 1u);
  EXPECT_EQ(w1_.conns.size(), 0u);
  const auto back = handoffs(w_);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].src_ip, ip("10.0.0.100"));
  EXPECT_EQ(ntohs(back[0].src_port), 80);
  EXPECT_EQ(back[0].dst_ip, ip("10.0.0.10"));
  EXPECT_EQ(ntohs(back[0].dst_port), 41000);
  EXPECT_EQ(w_.counters->handoff_in.get(), 1u);
  EXPECT_EQ(w_.counters->backends[1].packets_out.get(), 1u);
}

// An ICMP error about worker 0's flow that lands on worker 1's queue is handed over like a reply.
TEST_F(TwoWorkerTest, IcmpErrorOnTheOtherWorkersQueueIsHandedToTheOwner) {
  const std::vector<uint8_t> to_backend = sent_by(w_, from_client(41000));
  ASSERT_FALSE(to_backend.empty());
  EXPECT_EQ(icmp_error_sent_via_worker1(make_icmp_error(pool_, to_backend, kBackendMac,
                                                        ip("10.0.0.1"), 3, 4, 1400, SIZE_MAX)),
            ip("10.0.0.10"))
      << "to the client";
}

// Without RSS to name the owner, a client-side ICMP error (to the VIP) goes round the workers
// until one holds its connection: worker 1 holds none and hands it on, worker 0 translates it.
TEST_F(TwoWorkerTest, ClientSideIcmpErrorGoesRoundTheWorkersWithoutRss) {
  shared_.icmp_round_offset = icmp_round_field();
  const std::vector<uint8_t> to_client = syn_ack_to_client_via(w_, 41000);
  ASSERT_FALSE(to_client.empty());
  EXPECT_EQ(icmp_error_sent_via_worker1(make_icmp_error(pool_, to_client, kClientMac,
                                                        ip("10.0.0.1"), 3, 4, 1400, SIZE_MAX)),
            ip("10.0.0.21"))
      << "to the backend";
  EXPECT_EQ(w_.counters->icmp_errors_translated.get(), 1u);
}

// An error about a connection nobody holds visits every worker once, then is dropped.
TEST_F(TwoWorkerTest, ClientSideIcmpErrorAboutNoConnectionGoesRoundOnce) {
  shared_.icmp_round_offset = icmp_round_field();
  std::vector<uint8_t> to_client = syn_ack_to_client_via(w_, 41000);
  ASSERT_GT(to_client.size(), 38u);
  to_client[37] ^= 1;  // the quoted datagram's destination (client) port: another flow
  EXPECT_EQ(icmp_error_sent_via_worker1(make_icmp_error(pool_, to_client, kClientMac,
                                                        ip("10.0.0.1"), 3, 4, 1400, SIZE_MAX)),
            0u);
  EXPECT_EQ(w_.counters->handoff_out.get(), 0u) << "worker 0 was the last to look";
  EXPECT_EQ(drops(abi::Drop::kUnsupported), 1u);
  EXPECT_EQ(w_.counters->icmp_errors_translated.get(), 0u);
}

// Without the round's field (a dataplane that registered none), such an error stays where it
// landed and is dropped there unless that worker holds the connection.
TEST_F(TwoWorkerTest, WithoutTheRoundsFieldAClientSideErrorIsNotHandedOn) {
  const std::vector<uint8_t> to_client = syn_ack_to_client_via(w_, 41000);
  client_side_error_arrives_at(w1_, to_client);
  EXPECT_EQ(w1_.counters->handoff_out.get(), 0u);
  EXPECT_EQ(w1_.counters->drops[static_cast<size_t>(abi::Drop::kUnsupported)].get(), 1u);
}

TEST_F(TwoWorkerTest, EachWorkerHandsTheOthersRepliesOver) {
  const auto syn = on(w1_, from_client(41001));
  ASSERT_EQ(syn.size(), 1u);
  EXPECT_EQ(ntohs(syn[0].src_port) % 2, 1) << "worker 1 allocates from its own share";
  EXPECT_TRUE(on(w_, from_backend(syn[0], RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)).empty());
  const auto back = handoffs(w1_);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(ntohs(back[0].dst_port), 41001);
  // A reply on the owner's own queue needs no hand-over.
  EXPECT_EQ(on(w1_, from_backend(syn[0], RTE_TCP_ACK_FLAG)).size(), 1u);
  EXPECT_EQ(w_.counters->handoff_out.get(), 1u);
  EXPECT_EQ(w1_.counters->handoff_out.get(), 0u);
}

TEST_F(TwoWorkerTest, ReplyWithoutAConnectionIsDroppedByItsOwner) {
  test::FrameSpec stray = from_backend(pkt::Parsed{}, RTE_TCP_ACK_FLAG);
  stray.src_ip = ip("10.0.0.21");
  stray.src_port = 80;
  stray.dst_ip = ip("10.0.0.101");
  stray.dst_port = 1030;  // worker 0's share, no connection
  EXPECT_TRUE(on(w1_, stray).empty());
  EXPECT_TRUE(handoffs(w_).empty());
  EXPECT_EQ(w_.counters->drops[static_cast<size_t>(abi::Drop::kNonSynMiss)].get(), 1u);
  EXPECT_EQ(w_.counters->handoff_out.get(), 0u) << "the owner does not hand it back";
}

TEST_F(TwoWorkerTest, FullHandOverRingDropsAndCounts) {
  const auto syn = on(w_, from_client(41002));
  ASSERT_EQ(syn.size(), 1u);
  const unsigned room = rte_ring_free_count(ring10_);
  for (unsigned i = 0; i <= room; ++i) {
    EXPECT_TRUE(on(w1_, from_backend(syn[0], RTE_TCP_ACK_FLAG)).empty());
  }
  EXPECT_EQ(w1_.counters->handoff_out.get(), room);
  EXPECT_EQ(w1_.counters->handoff_drops.get(), 1u);
}

// Three workers, for the order of a round: worker 2 hands on to worker 0, worker 0 to worker 1.
class ThreeWorkerTest : public TwoWorkerTest {
 protected:
  ThreeWorkerTest() { workers_ = 3; }

  void SetUp() override {
    TwoWorkerTest::SetUp();
    shared_.icmp_round_offset = icmp_round_field();
    static int serial = 0;
    const std::string n = std::to_string(serial++);
    w2_.index = 2;
    w2_.shared = &shared_;
    w2_.pool = pool_;
    w2_.counters = static_cast<WorkerCounters*>(rte_zmalloc("th_ctr", sizeof(WorkerCounters), 64));
    std::string err;
    ASSERT_TRUE(w2_.conns.init("th_conn" + n, 1024, shared_.snat_addresses, SOCKET_ID_ANY, err))
        << err;
    ASSERT_TRUE(w2_.snat.init(shared_.snat_addresses, 1024, 1100, 2, 3, SOCKET_ID_ANY, err));
    // Rings between worker 2 and workers 0 and 1, both ways.
    WorkerContext* other[2] = {&w_, &w1_};
    for (uint32_t j = 0; j < 2; ++j) {
      for (rte_ring** r : {&to_[j], &from_[j]}) {
        *r = rte_ring_create(("th_r" + n + "_" + std::to_string(rings_++)).c_str(), 64,
                             SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
        ASSERT_NE(*r, nullptr);
      }
      w2_.handoff_to[j] = to_[j];
      other[j]->handoff_from[2] = to_[j];
      other[j]->handoff_to[2] = from_[j];
      w2_.handoff_from[j] = from_[j];
    }
  }

  void TearDown() override {
    free_rings({to_[0], to_[1], from_[0], from_[1]});
    rte_free(w2_.counters);
    TwoWorkerTest::TearDown();
  }

  // Worker `w` takes what was handed to it; returns the ICMP errors it sent (their destination).
  std::vector<uint32_t> errors_sent_after_handoffs(WorkerContext& w) {
    rte_mbuf* tx[8];
    uint16_t n_tx = 0;
    process_handoffs(w, *cfg_, 8, tx, &n_tx, 1);
    std::vector<uint32_t> out;
    for (uint16_t i = 0; i < n_tx; ++i) {
      pkt::Parsed p;
      if (pkt::parse(rte_pktmbuf_mtod(tx[i], const uint8_t*), rte_pktmbuf_data_len(tx[i]), p) ==
          pkt::Kind::kIcmp) {
        out.push_back(p.dst_ip);
      }
    }
    rte_pktmbuf_free_bulk(tx, n_tx);
    return out;
  }

  WorkerContext w2_;
  rte_ring* to_[2] = {};    // worker 2 -> worker j
  rte_ring* from_[2] = {};  // worker j -> worker 2
};

TEST_F(ThreeWorkerTest, ClientSideErrorGoesRoundInOrderUntilItsOwner) {
  const std::vector<uint8_t> to_client = syn_ack_to_client_via(w1_, 41000);
  ASSERT_FALSE(to_client.empty());
  client_side_error_arrives_at(w2_, to_client);
  EXPECT_EQ(w2_.counters->handoff_out.get(), 1u);
  EXPECT_TRUE(errors_sent_after_handoffs(w1_).empty()) << "nothing for worker 1 yet";
  EXPECT_TRUE(errors_sent_after_handoffs(w_).empty()) << "worker 0 holds nothing";
  EXPECT_EQ(w_.counters->handoff_out.get(), 1u) << "and hands it to worker 1";
  EXPECT_EQ(errors_sent_after_handoffs(w1_), std::vector<uint32_t>{ip("10.0.0.21")})
      << "worker 1 translates it, to the backend";
}

TEST_F(ThreeWorkerTest, ErrorNobodyHoldsIsLookedUpByEachWorkerOnceThenDropped) {
  std::vector<uint8_t> to_client = syn_ack_to_client_via(w1_, 41000);
  ASSERT_GT(to_client.size(), 38u);
  to_client[37] ^= 1;  // the quoted datagram's destination (client) port: another flow
  client_side_error_arrives_at(w2_, to_client);
  EXPECT_TRUE(errors_sent_after_handoffs(w_).empty());
  EXPECT_TRUE(errors_sent_after_handoffs(w1_).empty());
  EXPECT_TRUE(errors_sent_after_handoffs(w2_).empty());
  EXPECT_EQ(w2_.counters->handoff_out.get() + w_.counters->handoff_out.get() +
                w1_.counters->handoff_out.get(),
            2u)
      << "two hand-overs: worker 2 to 0, 0 to 1";
  EXPECT_EQ(w1_.counters->drops[static_cast<size_t>(abi::Drop::kUnsupported)].get(), 1u)
      << "worker 1, the last, drops it";
  EXPECT_EQ(rte_ring_count(from_[0]) + rte_ring_count(from_[1]) + rte_ring_count(to_[0]) +
                rte_ring_count(to_[1]) + rte_ring_count(ring01_) + rte_ring_count(ring10_),
            0u);
}

// With the port's RSS known, a worker picks SNAT ports whose replies the NIC hashes to its own
// queue: the reply then needs no hand-over. The RETA alternates queues 0 and 1.
class SteeredTwoWorkerTest : public TwoWorkerTest {
 protected:
  void SetUp() override {
    TwoWorkerTest::SetUp();
    std::vector<uint16_t> reta(128);
    for (size_t i = 0; i < reta.size(); ++i) reta[i] = static_cast<uint16_t>(i % 2);
    std::string err;
    ASSERT_TRUE(rss_.init(ilb::test::kMicrosoftRssKey.data(), ilb::test::kMicrosoftRssKey.size(),
                          reta, err))
        << err;
    shared_.ports[0].rss = &rss_;
    shared_.ports[0].rss_tcp_ports = true;
  }

  // A client port (from 44000 up) whose packets to the VIP RSS sends to `queue`.
  uint16_t client_port_on_queue(uint16_t queue) const {
    uint16_t port = 44000;
    while (rss_.queue(rss_.hash_v4_ports(ip("10.0.0.10"), ip("10.0.0.100"), htons(port),
                                         htons(80))) != queue) {
      ++port;
    }
    return port;
  }

  uint16_t reply_queue(const pkt::Parsed& to_backend) const {
    return rss_.queue(rss_.hash_v4_ports(to_backend.dst_ip, to_backend.src_ip, to_backend.dst_port,
                                         to_backend.src_port));
  }

  Rss rss_;
};

TEST_F(SteeredTwoWorkerTest, NewConnectionsGetPortsWhoseRepliesReachTheirOwnQueue) {
  for (uint16_t i = 0; i < 8; ++i) {
    const auto on0 = on(w_, from_client(static_cast<uint16_t>(42000 + i)));
    const auto on1 = on(w1_, from_client(static_cast<uint16_t>(43000 + i)));
    ASSERT_EQ(on0.size(), 1u);
    ASSERT_EQ(on1.size(), 1u);
    EXPECT_EQ(reply_queue(on0[0]), 0) << "worker 0, port " << ntohs(on0[0].src_port);
    EXPECT_EQ(reply_queue(on1[0]), 1) << "worker 1, port " << ntohs(on1[0].src_port);
    EXPECT_EQ(snat_port_owner(shared_, on0[0].src_port), 0u);
    EXPECT_EQ(snat_port_owner(shared_, on1[0].src_port), 1u);
  }
  EXPECT_EQ(w_.counters->steered.get(), 8u);
  EXPECT_EQ(w1_.counters->steered.get(), 8u);
  EXPECT_EQ(w_.counters->unsteered.get() + w1_.counters->unsteered.get(), 0u);
}

// A client-side ICMP error (to the VIP) that RSS puts on the wrong worker's queue goes to the
// worker whose queue the client's own packets reach: the owner of the connection.
TEST_F(SteeredTwoWorkerTest, ClientSideIcmpErrorIsHandedToTheClientsQueue) {
  const std::vector<uint8_t> to_client = syn_ack_to_client_via(w_, client_port_on_queue(0));
  ASSERT_FALSE(to_client.empty());
  EXPECT_EQ(icmp_error_sent_via_worker1(
                make_icmp_error(pool_, to_client, kClientMac, ip("10.0.0.1"), 3, 1, 0, SIZE_MAX)),
            ip("10.0.0.21"))
      << "to the backend";
}

// A worker that has seen the NIC hash otherwise than our Toeplitz starts a round; the worker it
// hands the error to looks in its own table, whatever its own (not yet corrected) view of RSS
// says, instead of sending it to the queue RSS names.
TEST_F(SteeredTwoWorkerTest, ErrorHandedOnInARoundIsLookedUpWhereverRssPointsElsewhere) {
  shared_.icmp_round_offset = icmp_round_field();
  // A client RSS puts on queue 1, whose SYN reached worker 0.
  const std::vector<uint8_t> to_client = syn_ack_to_client_via(w_, client_port_on_queue(1));
  ASSERT_FALSE(to_client.empty());
  w1_.rss_agrees[0] = -1;
  EXPECT_EQ(icmp_error_sent_via_worker1(make_icmp_error(pool_, to_client, kClientMac,
                                                        ip("10.0.0.1"), 3, 4, 1400, SIZE_MAX)),
            ip("10.0.0.21"))
      << "to the backend, by worker 0";
  EXPECT_EQ(w_.counters->handoff_out.get(), 0u) << "not sent back to the queue RSS names";
}

// A NIC whose hash differs from our Toeplitz (another algorithm, another key) is noticed on the
// first packet that carries its hash, and steering stops: replies are handed over instead.
TEST_F(SteeredTwoWorkerTest, NicHashThatDisagreesTurnsSteeringOff) {
  const test::FrameSpec f = from_client(44000);
  rte_mbuf* m = test::make_frame(pool_, f);
  m->ol_flags |= RTE_MBUF_F_RX_RSS_HASH;
  m->hash.rss = ~rss_.hash_v4_ports(f.src_ip, f.dst_ip, htons(f.src_port), htons(f.dst_port));
  rte_mbuf* in[1] = {m};
  rte_mbuf* tx[4];
  uint16_t n_tx = 0;
  process_burst(w_, *cfg_, in, 1, tx, &n_tx, 1);
  ASSERT_EQ(collect(tx, n_tx).size(), 1u);
  EXPECT_EQ(w_.rss_agrees[0], -1);
  EXPECT_EQ(w_.counters->steered.get(), 0u);
  ASSERT_EQ(on(w_, from_client(44001)).size(), 1u);
  EXPECT_EQ(w_.counters->steered.get(), 0u) << "no steering once the hashes disagreed";
}

TEST_F(SteeredTwoWorkerTest, NicHashThatAgreesKeepsSteeringOn) {
  const test::FrameSpec f = from_client(44100);
  rte_mbuf* m = test::make_frame(pool_, f);
  m->ol_flags |= RTE_MBUF_F_RX_RSS_HASH;
  m->hash.rss = rss_.hash_v4_ports(f.src_ip, f.dst_ip, htons(f.src_port), htons(f.dst_port));
  rte_mbuf* in[1] = {m};
  rte_mbuf* tx[4];
  uint16_t n_tx = 0;
  process_burst(w_, *cfg_, in, 1, tx, &n_tx, 1);
  const auto out = collect(tx, n_tx);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(w_.rss_agrees[0], 1);
  EXPECT_EQ(reply_queue(out[0]), 0);
  EXPECT_EQ(w_.counters->steered.get(), 1u);
}

// A two-armed dataplane: clients on port 0 ("front", DPDK port 3, 10.0.0.0/24), backends on port 1
// ("back", DPDK port 5, 10.9.0.0/24, the gateway's port).
constexpr uint8_t kBackPortMac[6] = {0x02, 0, 0, 0, 0, 0x92};
constexpr uint16_t kFrontId = 3;
constexpr uint16_t kBackId = 5;

class TwoArmedTest : public WorkerTest {
 protected:
  void SetUp() override {
    WorkerTest::SetUp();
    shared_.n_ports = 2;
    shared_.ports[0].port_id = kFrontId;
    PortInfo& back = shared_.ports[1];
    back.port_id = kBackId;
    std::memcpy(back.mac, kBackPortMac, 6);
    back.address = ip("10.9.0.2");
    back.netmask = ip("255.255.255.0");
    back.gateway = ip("10.9.0.1");
    shared_.port_index[kFrontId] = 0;
    shared_.port_index[kBackId] = 1;
    shared_.neighbours.update(ip("10.9.0.21"), kBackendMac);
    cp::Snapshot s = two_backends();
    s.backends[0].address = ip("10.9.0.21");
    apply(s, 2);
  }

  // Runs frame `f`, received on DPDK port `in`; returns the frames sent, with their bytes and
  // the port each leaves through.
  std::vector<std::pair<std::vector<uint8_t>, uint16_t>> on_port(const test::FrameSpec& f,
                                                                 uint16_t in) {
    rte_mbuf* m = test::make_frame(pool_, f);
    m->port = in;
    rte_mbuf* tx[4];
    uint16_t n_tx = 0;
    process_burst(w_, *cfg_, &m, 1, tx, &n_tx, 1);
    std::vector<std::pair<std::vector<uint8_t>, uint16_t>> out;
    for (uint16_t i = 0; i < n_tx; ++i) {
      const auto* data = rte_pktmbuf_mtod(tx[i], const uint8_t*);
      out.emplace_back(std::vector<uint8_t>(data, data + rte_pktmbuf_data_len(tx[i])), tx[i]->port);
      rte_pktmbuf_free(tx[i]);
    }
    return out;
  }
};

TEST_F(TwoArmedTest, RoutesByPortSubnetThenTheGatewaysPort) {
  Route r;
  ASSERT_TRUE(route(shared_, ip("10.9.0.21"), r));
  EXPECT_EQ(r.port, 1u);
  EXPECT_EQ(r.next_hop, ip("10.9.0.21"));
  ASSERT_TRUE(route(shared_, ip("10.0.0.22"), r));
  EXPECT_EQ(r.port, 0u);
  EXPECT_EQ(r.next_hop, ip("10.0.0.22"));
  ASSERT_TRUE(route(shared_, ip("192.168.7.7"), r));
  EXPECT_EQ(r.port, 1u);
  EXPECT_EQ(r.next_hop, ip("10.9.0.1"));
  shared_.ports[1].gateway = 0;
  EXPECT_FALSE(route(shared_, ip("192.168.7.7"), r)) << "no port reaches it";
}

TEST_F(TwoArmedTest, ConnectionCrossesFromTheClientsPortToTheBackendsAndBack) {
  const auto syn = on_port(from_client(40000), kFrontId);
  ASSERT_EQ(syn.size(), 1u);
  EXPECT_EQ(syn[0].second, kBackId) << "towards the backend: the port whose subnet holds it";
  EXPECT_EQ(0, std::memcmp(syn[0].first.data(), kBackendMac, 6));
  EXPECT_EQ(0, std::memcmp(syn[0].first.data() + 6, kBackPortMac, 6));
  pkt::Parsed fwd;
  ASSERT_EQ(pkt::parse(syn[0].first.data(), static_cast<uint32_t>(syn[0].first.size()), fwd),
            pkt::Kind::kL4);
  EXPECT_EQ(fwd.dst_ip, ip("10.9.0.21"));

  test::FrameSpec reply = from_backend(fwd, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
  std::memcpy(reply.dst_mac, kBackPortMac, 6);
  const auto back = on_port(reply, kBackId);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].second, kFrontId) << "towards the client: the port it came in on";
  EXPECT_EQ(0, std::memcmp(back[0].first.data(), kClientMac, 6));
  EXPECT_EQ(0, std::memcmp(back[0].first.data() + 6, kOurMac, 6));

  const auto ack = on_port(from_client(40000, RTE_TCP_ACK_FLAG), kFrontId);
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_EQ(ack[0].second, kBackId);
}

TEST_F(TwoArmedTest, AFrameIsForUsOnlyAtItsOwnPortsMac) {
  test::FrameSpec f = from_client(40000);  // to the front port's MAC
  EXPECT_TRUE(on_port(f, kBackId).empty());
  EXPECT_EQ(drops(abi::Drop::kNotForUs), 1u);
  std::memcpy(f.dst_mac, kBackPortMac, 6);
  EXPECT_EQ(on_port(f, kBackId).size(), 1u) << "a client on the backends' side is served too";
}

TEST_F(TwoArmedTest, CutConnectionIsResetOnEachSideThroughItsOwnPort) {
  const auto syn = on_port(from_client(40000), kFrontId);
  ASSERT_EQ(syn.size(), 1u);
  disable_first_backend();
  w_.pool = pool_;  // for the second reset
  const auto resets = on_port(from_client(40000, RTE_TCP_ACK_FLAG), kFrontId);
  ASSERT_EQ(resets.size(), 2u);
  for (const auto& [bytes, port] : resets) {
    pkt::Parsed p;
    ASSERT_EQ(pkt::parse(bytes.data(), static_cast<uint32_t>(bytes.size()), p), pkt::Kind::kL4);
    const bool to_client = p.dst_ip == ip("10.0.0.10");
    EXPECT_EQ(port, to_client ? kFrontId : kBackId);
    EXPECT_EQ(0, std::memcmp(bytes.data() + 6, to_client ? kOurMac : kBackPortMac, 6));
  }
}

TEST_F(TwoArmedTest, RefusalLeavesThroughThePortTheSynCameIn) {
  cp::Snapshot s = two_backends();
  s.services[0].table.clear();
  apply(s, 3);
  test::FrameSpec f = from_client(40000);
  std::memcpy(f.dst_mac, kBackPortMac, 6);
  const auto out = on_port(f, kBackId);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].second, kBackId);
  EXPECT_EQ(0, std::memcmp(out[0].first.data() + 6, kBackPortMac, 6));
}

TEST_F(TwoArmedTest, IcmpErrorFromTheBackendsSideReachesTheClientThroughTheFrontPort) {
  const auto syn = on_port(from_client(41000), kFrontId);
  ASSERT_EQ(syn.size(), 1u);
  rte_mbuf* err =
      make_icmp_error(pool_, syn[0].first, kBackendMac, ip("10.9.0.1"), 3, 4, 1400, SIZE_MAX);
  std::memcpy(rte_pktmbuf_mtod(err, uint8_t*), kBackPortMac, 6);
  err->port = kBackId;
  rte_mbuf* tx[2];
  uint16_t n_tx = 0;
  process_burst(w_, *cfg_, &err, 1, tx, &n_tx, 1);
  ASSERT_EQ(n_tx, 1);
  EXPECT_EQ(tx[0]->port, kFrontId);
  const auto* out = rte_pktmbuf_mtod(tx[0], const uint8_t*);
  EXPECT_EQ(0, std::memcmp(out, kClientMac, 6));
  EXPECT_EQ(0, std::memcmp(out + 6, kOurMac, 6));
  rte_pktmbuf_free(tx[0]);
  EXPECT_EQ(w_.counters->icmp_errors_translated.get(), 1u);
}

TEST_F(TwoArmedTest, QuietCutConnectionIsProbedThroughTheSideAsked) {
  const auto syn = on_port(from_client(41001), kFrontId);
  ASSERT_EQ(syn.size(), 1u);
  pkt::Parsed fwd;
  ASSERT_EQ(pkt::parse(syn[0].first.data(), static_cast<uint32_t>(syn[0].first.size()), fwd),
            pkt::Kind::kL4);
  test::FrameSpec synack = from_backend(fwd, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
  std::memcpy(synack.dst_mac, kBackPortMac, 6);
  ASSERT_EQ(on_port(synack, kBackId).size(), 1u);
  w_.pool = pool_;
  // The backend is asked while it is up, the client once it is down.
  for (const bool down : {false, true}) {
    cp::Snapshot s = two_backends();
    s.backends[0].address = ip("10.9.0.21");
    s.backends[0].reset_flows = true;
    if (down) s.backends[0].health = abi::Health::kDown;
    apply(s, down ? 4 : 3);
    rte_mbuf* tx[4];
    uint16_t n_tx = 0;
    sweep_step(w_, *cfg_, 2, w_.conns.capacity(), tx, &n_tx, 4);
    ASSERT_EQ(n_tx, 1);
    EXPECT_EQ(tx[0]->port, down ? kFrontId : kBackId);
    const auto* out = rte_pktmbuf_mtod(tx[0], const uint8_t*);
    EXPECT_EQ(0, std::memcmp(out, down ? kClientMac : kBackendMac, 6));
    EXPECT_EQ(0, std::memcmp(out + 6, down ? kOurMac : kBackPortMac, 6));
    rte_pktmbuf_free(tx[0]);
  }
}

TEST_F(TwoArmedTest, MssIsClampedToWhatBothPortsCarry) {
  shared_.ports[0].mtu = 9000;  // clients' side: jumbo frames
  shared_.ports[1].mtu = 1500;
  auto syn = from_client(40000);
  syn.mss = 8960;
  const auto fwd = on_port(syn, kFrontId);
  ASSERT_EQ(fwd.size(), 1u);
  const pkt::Parsed p = parse_as(fwd[0].first, pkt::Kind::kL4);
  EXPECT_EQ(mss_of(fwd[0].first, p), 1460);
  test::FrameSpec reply = from_backend(p, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
  std::memcpy(reply.dst_mac, kBackPortMac, 6);
  reply.mss = 1460;
  const auto back = on_port(reply, kBackId);
  ASSERT_EQ(back.size(), 1u);
  const pkt::Parsed r = parse_as(back[0].first, pkt::Kind::kL4);
  EXPECT_EQ(mss_of(back[0].first, r), 1460);
  EXPECT_EQ(w_.counters->mss_clamped.get(), 1u);
}

TEST_F(TwoArmedTest, BackendsDatagramTooLongForTheClientsPortIsAnsweredOnItsOwnPort) {
  shared_.ports[0].mtu = 1000;
  const auto syn = on_port(from_client(40000), kFrontId);
  ASSERT_EQ(syn.size(), 1u);
  const pkt::Parsed p = parse_as(syn[0].first, pkt::Kind::kL4);
  test::FrameSpec big = from_backend(p, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
  std::memcpy(big.dst_mac, kBackPortMac, 6);
  big.payload = 1200;
  big.dont_fragment = true;
  const auto out = on_port(big, kBackId);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].second, kBackId);
  const pkt::Parsed e = parse_as(out[0].first, pkt::Kind::kIcmp);
  EXPECT_EQ(e.src_ip, p.src_ip) << "from the SNAT address the backend wrote to";
  EXPECT_EQ(e.dst_ip, ip("10.9.0.21"));
  EXPECT_EQ(0, std::memcmp(out[0].first.data() + 6, kBackPortMac, 6));
  EXPECT_EQ(out[0].first[e.l4_offset + 6] << 8 | out[0].first[e.l4_offset + 7], 1000);
  EXPECT_EQ(drops(abi::Drop::kTooBig), 1u);
}

}  // namespace
}  // namespace ilb::dp

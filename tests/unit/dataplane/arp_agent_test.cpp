// The main lcore's ARP agent on a two-armed dataplane: which port answers for which address, which
// port next hops are resolved and learnt on. Frames go in through a worker's to_main ring, as the
// worker hands them over, and come out on its from_main ring.
#include <gtest/gtest.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <memory>
#include <vector>

#include "dataplane/agent/active_config.h"
#include "dataplane/agent/arp_agent.h"
#include "dataplane/packet/packet.h"
#include "dataplane/worker/worker.h"
#include "tests/unit/dataplane/dp_test_util.h"

namespace ilb::dp {
namespace {

using test::ip;

constexpr uint8_t kFrontMac[6] = {0x02, 0, 0, 0, 0xf0, 0x02};
constexpr uint8_t kBackMac[6] = {0x02, 0, 0, 0, 0xb0, 0x02};
constexpr uint8_t kHostMac[6] = {0x02, 0, 0, 0, 0, 0x77};
constexpr uint16_t kFrontId = 2;
constexpr uint16_t kBackId = 4;
// The agent's clock: far enough from 0 that the first resolution is due at once.
constexpr uint64_t kNow = 5'000'000'000;

// front: 10.98.0.0/24 (the VIP 10.98.0.100); back: 10.99.0.0/24 (backend 10.99.0.21, the SNAT
// address 10.99.0.101); 172.16.0.1 is a SNAT address on neither port's subnet.
class ArpAgentTest : public testing::Test {
 protected:
  void SetUp() override {
    static int serial = 0;
    const std::string n = std::to_string(serial++);
    pool_ = rte_pktmbuf_pool_create(("arp_pool" + n).c_str(), 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                    SOCKET_ID_ANY);
    ASSERT_NE(pool_, nullptr);
    shared_.n_ports = 2;
    PortInfo& front = shared_.ports[0];
    front.port_id = kFrontId;
    std::memcpy(front.mac, kFrontMac, 6);
    front.address = ip("10.98.0.2");
    front.netmask = ip("255.255.255.0");
    PortInfo& back = shared_.ports[1];
    back.port_id = kBackId;
    std::memcpy(back.mac, kBackMac, 6);
    back.address = ip("10.99.0.2");
    back.netmask = ip("255.255.255.0");
    shared_.port_index[kFrontId] = 0;
    shared_.port_index[kBackId] = 1;
    shared_.snat_addresses = {ip("10.99.0.101"), ip("172.16.0.1")};
    std::sort(shared_.snat_addresses.begin(), shared_.snat_addresses.end());  // as main() does
    std::string err;
    ASSERT_TRUE(shared_.neighbours.init("arp_neigh" + n, 64, SOCKET_ID_ANY, err)) << err;
    rte_ring** rings[] = {&w_.to_main, &w_.resolve, &w_.from_main};
    for (size_t i = 0; i < std::size(rings); ++i) {
      *rings[i] = rte_ring_create(("arp_r" + n + "_" + std::to_string(i)).c_str(), 64,
                                  SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
      ASSERT_NE(*rings[i], nullptr);
    }
    w_.shared = &shared_;

    cp::Snapshot s;
    cp::SnapshotService svc;
    svc.name = "web";
    svc.vip = ip("10.98.0.100");
    svc.port = 80;
    svc.tcp_syn_timeout_s = svc.tcp_est_timeout_s = svc.tcp_fin_timeout_s = svc.udp_timeout_s = 5;
    svc.table.assign(7, 1);
    s.services.push_back(svc);
    s.backends.push_back(
        {1, 0, ip("10.99.0.21"), 80, abi::AdminState::kEnabled, abi::Health::kUp, 1});
    const std::vector<uint8_t> slot = test::encode(s, 1);
    cfg_ = ActiveConfig::build(slot.data(), slot.size(), 1, err);
    ASSERT_NE(cfg_, nullptr) << err;
    DataplaneConfig dp;
    agent_ = std::make_unique<ArpAgent>(shared_, std::vector<WorkerContext*>{&w_}, pool_, dp);
    agent_->init();
  }

  void TearDown() override {
    agent_.reset();
    ActiveConfig::destroy(cfg_);
    drain();
    rte_ring_free(w_.to_main);
    rte_ring_free(w_.resolve);
    rte_ring_free(w_.from_main);
    rte_mempool_free(pool_);
  }

  // An ARP request from `sender` (at kHostMac) for `target`, received on DPDK port `port_id`.
  void receive(uint16_t port_id, uint32_t sender, uint32_t target) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    ASSERT_NE(m, nullptr);
    auto* buf = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, pkt::kMinFrameLen));
    pkt::build_arp_request(buf, kHostMac, sender, target);
    m->port = port_id;
    ASSERT_EQ(rte_ring_sp_enqueue(w_.to_main, m), 0);
  }

  struct Sent {
    uint16_t port;
    pkt::ArpInfo info;
    uint8_t src_mac[6];
  };
  // What the agent gave the worker to send.
  std::vector<Sent> drain() {
    std::vector<Sent> out;
    void* obj = nullptr;
    while (w_.from_main != nullptr && rte_ring_sc_dequeue(w_.from_main, &obj) == 0) {
      auto* m = static_cast<rte_mbuf*>(obj);
      Sent s{m->port, pkt::arp_info(rte_pktmbuf_mtod(m, const uint8_t*)), {}};
      std::memcpy(s.src_mac, rte_pktmbuf_mtod(m, const uint8_t*) + 6, 6);
      out.push_back(s);
      rte_pktmbuf_free(m);
    }
    return out;
  }

  rte_mempool* pool_ = nullptr;
  SharedState shared_;
  WorkerContext w_;
  ActiveConfig* cfg_ = nullptr;
  std::unique_ptr<ArpAgent> agent_;
};

TEST_F(ArpAgentTest, AnAddressIsAnsweredForOnThePortWhoseSubnetHoldsIt) {
  agent_->poll(kNow, cfg_);
  drain();  // the first resolution of the backend
  receive(kFrontId, ip("10.98.0.10"), ip("10.98.0.100"));
  receive(kBackId, ip("10.99.0.10"), ip("10.98.0.100"));
  receive(kBackId, ip("10.99.0.10"), ip("10.99.0.101"));
  receive(kFrontId, ip("10.98.0.10"), ip("10.99.0.101"));
  receive(kFrontId, ip("10.98.0.10"), ip("10.99.0.2"));
  agent_->poll(kNow + 1, cfg_);
  const auto sent = drain();
  ASSERT_EQ(sent.size(), 2u) << "the VIP on the front, the SNAT address on the back, nothing else";
  EXPECT_EQ(sent[0].port, kFrontId);
  EXPECT_EQ(sent[0].info.op, 2);
  EXPECT_EQ(sent[0].info.sender_ip, ip("10.98.0.100"));
  EXPECT_EQ(0, std::memcmp(sent[0].info.sender_mac, kFrontMac, 6));
  EXPECT_EQ(sent[1].port, kBackId);
  EXPECT_EQ(sent[1].info.sender_ip, ip("10.99.0.101"));
  EXPECT_EQ(0, std::memcmp(sent[1].src_mac, kBackMac, 6));
}

TEST_F(ArpAgentTest, AnAddressOnNoPortsSubnetIsAnsweredForOnEveryPort) {
  receive(kFrontId, ip("10.98.0.10"), ip("172.16.0.1"));
  receive(kBackId, ip("10.99.0.10"), ip("172.16.0.1"));
  agent_->poll(kNow, cfg_);
  std::vector<uint16_t> ports;
  for (const Sent& s : drain()) {
    if (s.info.op == 2) ports.push_back(s.port);
  }
  EXPECT_EQ(ports, (std::vector<uint16_t>{kFrontId, kBackId}));
}

TEST_F(ArpAgentTest, NextHopsAreResolvedAndLearntOnlyThroughThePortThatReachesThem) {
  agent_->poll(kNow, cfg_);
  const auto sent = drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].port, kBackId) << "the backend's subnet is the back port's";
  EXPECT_EQ(sent[0].info.op, 1);
  EXPECT_EQ(sent[0].info.sender_ip, ip("10.99.0.2")) << "asked from the back port's address";
  EXPECT_EQ(0, std::memcmp(sent[0].info.sender_mac, kBackMac, 6));

  uint8_t mac[6];
  // A host on the clients' segment claims the backend's address: not believed.
  receive(kFrontId, ip("10.99.0.21"), ip("10.98.0.2"));
  agent_->poll(kNow + 1, cfg_);
  EXPECT_FALSE(shared_.neighbours.lookup(ip("10.99.0.21"), mac));
  // The backend itself, on its own segment.
  receive(kBackId, ip("10.99.0.21"), ip("10.99.0.2"));
  agent_->poll(kNow + 2, cfg_);
  ASSERT_TRUE(shared_.neighbours.lookup(ip("10.99.0.21"), mac));
  EXPECT_EQ(0, std::memcmp(mac, kHostMac, 6));
  drain();
}

}  // namespace
}  // namespace ilb::dp

#include "controlplane/publish/publisher.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "fake_dataplane.h"
#include "test_snapshots.h"

namespace ilb::cp {
namespace {

class PublisherTest : public ::testing::Test {
 protected:
  void TearDown() override { Publisher::unlink(instance_); }

  abi::ShmRegion map_ctl() {
    abi::ShmRegion r;
    std::string error;
    EXPECT_TRUE(r.map(abi::ctl_shm_name(instance_), abi::ShmRegion::Mode::kReadOnly, 0, error))
        << error;
    return r;
  }

  std::string instance_ = test::unique_instance("pub");
};

TEST_F(PublisherTest, OpenCreatesRegionWithHeader) {
  Publisher p(instance_);
  p.open();
  EXPECT_FALSE(p.reused_existing());
  auto ctl = map_ctl();
  ASSERT_EQ(ctl.size(), abi::ctl_region_bytes());
  const auto* h = ctl.at<const abi::CtlHeader>(0);
  EXPECT_EQ(h->common.magic, abi::kCtlMagic);
  EXPECT_EQ(h->common.abi_major, abi::kAbiMajor);
  EXPECT_EQ(h->common.header_size, sizeof(abi::CtlHeader));
  EXPECT_NE(h->common.boot_id, 0u);
  EXPECT_EQ(h->common.boot_id, p.boot_id());
  EXPECT_EQ(h->common.writer_pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(h->common.region_size, abi::ctl_region_bytes());
  EXPECT_EQ(h->common.sizeof_a, sizeof(abi::SlotHeader));
  EXPECT_EQ(h->common.sizeof_b, sizeof(abi::ServiceRecord));
  EXPECT_EQ(h->common.sizeof_c, sizeof(abi::BackendRecord));
  EXPECT_EQ(h->common.sizeof_d, 4u);
  EXPECT_EQ(h->published_gen.load(), 0u);
  EXPECT_EQ(h->slot_size, abi::slot_bytes());
  EXPECT_EQ(h->slot_offset[0], 4096u);
  EXPECT_EQ(h->slot_offset[1], 4096u + abi::slot_bytes());
  EXPECT_LE(h->slot_offset[1] + h->slot_size, ctl.size());
}

TEST_F(PublisherTest, PublishesIntoSlotOfGenerationParity) {
  Publisher p(instance_);
  p.open();
  auto ctl = map_ctl();
  for (uint64_t g = 1; g <= 4; ++g) {
    const Snapshot s = test::make_snapshot(g);
    ASSERT_EQ(p.publish(s), PublishResult::kPublished);  // no stat region: nobody reads
    EXPECT_EQ(p.published_gen(), g);
    EXPECT_EQ(ctl.at<const abi::CtlHeader>(0)->published_gen.load(), g);
    auto r = test::read_slot(ctl, g);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_TRUE(test::same_snapshot(r.snapshot, s));
  }
}

TEST_F(PublisherTest, ChecksumCoversSlotBytesFrom64ToPayloadEnd) {
  Publisher p(instance_);
  p.open();
  ASSERT_EQ(p.publish(test::make_snapshot(9)), PublishResult::kPublished);
  auto ctl = map_ctl();
  const auto* h = ctl.at<const abi::CtlHeader>(0);
  const uint8_t* slot = ctl.data() + h->slot_offset[1];
  const auto* sh = reinterpret_cast<const abi::SlotHeader*>(slot);
  EXPECT_EQ(sh->generation.load(), 1u);
  EXPECT_EQ(sh->checksum, abi::fnv1a64(slot + 64, sh->payload_end - 64));
}

TEST_F(PublisherTest, WaitsForAckWhileDataplaneHeartbeats) {
  test::FakeDataplane dp(instance_);
  Publisher p(instance_);
  p.open();
  ASSERT_EQ(p.publish(test::make_snapshot(1)), PublishResult::kPublished);  // acked 0 >= 0
  EXPECT_EQ(p.publish(test::make_snapshot(2)), PublishResult::kPending);    // slot 0 may be read
  EXPECT_EQ(p.published_gen(), 1u);
  EXPECT_NE(p.pending_reason().find("generation 1"), std::string::npos) << p.pending_reason();
  EXPECT_FALSE(p.ready());
  dp.ack(1);
  EXPECT_TRUE(p.ready());
  EXPECT_EQ(p.publish(test::make_snapshot(2)), PublishResult::kPublished);
  EXPECT_EQ(p.published_gen(), 2u);
}

TEST_F(PublisherTest, AckFromAnEarlierLifeOfTheRegionIsNotTrusted) {
  test::FakeDataplane dp(instance_);
  dp.ack(57);  // acknowledged generations of a ctl object that has since been re-created
  Publisher p(instance_);
  p.open();
  EXPECT_EQ(p.published_gen(), 0u);
  EXPECT_EQ(p.publish(test::make_snapshot(1)), PublishResult::kPending);
  dp.ack(0);  // the dataplane re-mapped the new object and withdrew its old acks
  EXPECT_EQ(p.publish(test::make_snapshot(1)), PublishResult::kPublished);
}

TEST_F(PublisherTest, PendingPublishWritesNothing) {
  test::FakeDataplane dp(instance_);
  Publisher p(instance_);
  p.open();
  ASSERT_EQ(p.publish(test::make_snapshot(1)), PublishResult::kPublished);
  auto ctl = map_ctl();
  const auto* h = ctl.at<const abi::CtlHeader>(0);
  const uint8_t* slot0 = ctl.data() + h->slot_offset[0];
  std::vector<uint8_t> before(slot0, slot0 + 64 * 1024);
  ASSERT_EQ(p.publish(test::make_snapshot(2)), PublishResult::kPending);
  EXPECT_EQ(std::memcmp(before.data(), slot0, before.size()), 0);
  EXPECT_EQ(h->published_gen.load(), 1u);
}

TEST_F(PublisherTest, StaleHeartbeatLetsWriterProceed) {
  test::FakeDataplane dp(instance_);
  Publisher p(instance_);
  p.open();
  ASSERT_EQ(p.publish(test::make_snapshot(1)), PublishResult::kPublished);
  ASSERT_EQ(p.publish(test::make_snapshot(2)), PublishResult::kPending);
  dp.beat_at(monotonic_ns() - 2'500'000'000ULL);  // the dataplane hung 2.5 s ago
  EXPECT_EQ(p.publish(test::make_snapshot(2)), PublishResult::kPublished);
  dp.beat_at(monotonic_ns() - 1'000'000'000ULL);  // 1 s is not stale
  EXPECT_EQ(p.publish(test::make_snapshot(3)), PublishResult::kPending);
}

TEST_F(PublisherTest, DataplaneThatNeverBeatIsNotWaitedFor) {
  test::FakeDataplane dp(instance_);
  dp.beat_at(0);
  Publisher p(instance_);
  p.open();
  ASSERT_EQ(p.publish(test::make_snapshot(1)), PublishResult::kPublished);
  EXPECT_EQ(p.publish(test::make_snapshot(2)), PublishResult::kPublished);
}

TEST_F(PublisherTest, StatRegionOfAnotherAbiIsIgnored) {
  test::FakeDataplane dp(instance_);
  dp.header()->common.abi_major = abi::kAbiMajor + 1;
  Publisher p(instance_);
  p.open();
  ASSERT_EQ(p.publish(test::make_snapshot(1)), PublishResult::kPublished);
  EXPECT_EQ(p.publish(test::make_snapshot(2)), PublishResult::kPublished);
}

TEST_F(PublisherTest, RejectsSnapshotBeyondAbiLimitsWithoutWriting) {
  Publisher p(instance_);
  p.open();
  Snapshot bad = test::make_snapshot(1);
  bad.backends[0].id = 0;
  EXPECT_THROW(p.publish(bad), std::invalid_argument);
  EXPECT_EQ(p.published_gen(), 0u);
  auto ctl = map_ctl();
  EXPECT_EQ(ctl.at<const abi::CtlHeader>(0)->published_gen.load(), 0u);
}

TEST_F(PublisherTest, RestartKeepsRegionAndContinuesGenerations) {
  Snapshot last;
  uint64_t first_boot = 0;
  {
    Publisher p(instance_);
    p.open();
    first_boot = p.boot_id();
    for (uint64_t g = 1; g <= 3; ++g) {
      last = test::make_snapshot(g + 10);
      ASSERT_EQ(p.publish(last), PublishResult::kPublished);
    }
  }
  auto ctl = map_ctl();
  const auto* h = ctl.at<const abi::CtlHeader>(0);
  std::vector<uint8_t> slots_before(ctl.data() + h->slot_offset[0],
                                    ctl.data() + h->slot_offset[0] + 256 * 1024);
  std::vector<uint8_t> slot1_before(ctl.data() + h->slot_offset[1],
                                    ctl.data() + h->slot_offset[1] + 256 * 1024);

  Publisher p(instance_);
  p.open();
  EXPECT_TRUE(p.reused_existing());
  EXPECT_EQ(p.published_gen(), 3u);
  EXPECT_NE(p.boot_id(), first_boot);
  EXPECT_EQ(h->common.boot_id, p.boot_id());
  EXPECT_EQ(h->published_gen.load(), 3u);
  // Nothing the dataplane may be reading was cleared or rewritten.
  EXPECT_EQ(std::memcmp(slots_before.data(), ctl.data() + h->slot_offset[0], slots_before.size()),
            0);
  EXPECT_EQ(std::memcmp(slot1_before.data(), ctl.data() + h->slot_offset[1], slot1_before.size()),
            0);

  auto recovered = p.recover();
  ASSERT_TRUE(recovered.has_value());
  EXPECT_TRUE(test::same_snapshot(*recovered, last));
  ASSERT_EQ(p.publish(test::make_snapshot(99)), PublishResult::kPublished);
  EXPECT_EQ(p.published_gen(), 4u);
}

TEST_F(PublisherTest, NothingToRecoverFromFreshRegion) {
  Publisher p(instance_);
  p.open();
  EXPECT_FALSE(p.recover().has_value());
}

TEST_F(PublisherTest, ReinitialisesRegionOfAnotherAbi) {
  {
    Publisher p(instance_);
    p.open();
    ASSERT_EQ(p.publish(test::make_snapshot(1)), PublishResult::kPublished);
  }
  {
    abi::ShmRegion rw;
    std::string error;
    ASSERT_TRUE(rw.map(abi::ctl_shm_name(instance_), abi::ShmRegion::Mode::kReadWrite, 0, error));
    rw.at<abi::CtlHeader>(0)->common.abi_major = abi::kAbiMajor + 1;
  }
  Publisher p(instance_);
  p.open();
  EXPECT_FALSE(p.reused_existing());
  EXPECT_EQ(p.published_gen(), 0u);
  EXPECT_FALSE(p.recover().has_value());
  auto ctl = map_ctl();
  EXPECT_EQ(ctl.at<const abi::CtlHeader>(0)->common.abi_major, abi::kAbiMajor);
}

TEST_F(PublisherTest, SecondWriterForSameInstanceIsRefused) {
  Publisher a(instance_);
  a.open();
  Publisher b(instance_);
  EXPECT_THROW(b.open(), std::runtime_error);
}

}  // namespace
}  // namespace ilb::cp

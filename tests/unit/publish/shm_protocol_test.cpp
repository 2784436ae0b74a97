// The ctl protocol with writer and reader in two processes, as in production: the child plays the
// dataplane (stat region, heartbeat, acks, validated copies), the parent is the control plane.
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "controlplane/publish/publisher.h"
#include "fake_dataplane.h"
#include "test_snapshots.h"

namespace ilb::cp {
namespace {

using Clock = std::chrono::steady_clock;

struct ReaderReport {
  uint32_t generations_seen = 0;
  uint32_t torn = 0;                 // generation moved during a copy
  uint32_t invalid = 0;              // failed validation (checksum, bounds)
  uint32_t wrong_content = 0;        // valid, but not the snapshot of that generation
  uint32_t modified_while_read = 0;  // slot bytes changed while the reader held them
  uint32_t skipped_or_reordered = 0;
  uint64_t last_gen = 0;
};

bool read_full(int fd, void* buf, size_t len, int timeout_ms) {
  auto* p = static_cast<uint8_t*>(buf);
  while (len > 0) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0) return false;
    ssize_t n = read(fd, p, len);
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

void spin_for(std::chrono::microseconds d) {
  const auto until = Clock::now() + d;
  while (Clock::now() < until) {
  }
}

// The dataplane: acks every generation up to `last_gen`, holding each slot for a while and
// checking that nobody writes it in the meantime. With `hang_after` > 0 it stops beating and
// acking after that generation until `hang_fd` is closed.
int run_reader(const std::string& instance, uint64_t last_gen, int ready_fd, int report_fd,
               uint64_t hang_after, int hang_fd) {
  test::FakeDataplane dp(instance);
  abi::ShmRegion ctl;
  std::string error;
  if (!ctl.map(abi::ctl_shm_name(instance), abi::ShmRegion::Mode::kReadOnly, 0, error)) return 2;
  const auto* h = ctl.at<const abi::CtlHeader>(0);
  if (write(ready_fd, "r", 1) != 1) return 3;

  ReaderReport report;
  uint64_t acked = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (acked < last_gen && Clock::now() < deadline) {
    dp.beat();
    const uint64_t g = h->published_gen.load(std::memory_order_acquire);
    if (g == acked) {
      sched_yield();
      continue;
    }
    test::SlotRead r = test::read_slot(ctl, g);
    if (r.torn) {
      ++report.torn;
      continue;  // retried, as the dataplane does
    }
    if (!r.ok) {
      ++report.invalid;
    } else if (!test::same_snapshot(r.snapshot, test::make_snapshot(g))) {
      ++report.wrong_content;
    }
    spin_for(std::chrono::microseconds(30 + g % 50));
    const uint8_t* live = ctl.data() + h->slot_offset[g & 1];
    if (std::memcmp(r.copy.data(), live, r.copy.size()) != 0) ++report.modified_while_read;
    if (g != acked + 1) ++report.skipped_or_reordered;
    ++report.generations_seen;
    report.last_gen = g;
    dp.ack(g);
    acked = g;
    if (hang_after != 0 && g == hang_after) {
      char c;
      while (read(hang_fd, &c, 1) > 0) {
      }
    }
  }
  if (write(report_fd, &report, sizeof(report)) != sizeof(report)) return 4;
  return 0;
}

class ShmProtocolTest : public ::testing::Test {
 protected:
  void TearDown() override {
    Publisher::unlink(instance_);
    shm_unlink(abi::stat_shm_name(instance_).c_str());
  }

  // Forks the reader; returns once its stat region exists.
  void start_reader(uint64_t last_gen, uint64_t hang_after = 0) {
    ASSERT_EQ(pipe(ready_), 0);
    ASSERT_EQ(pipe(report_), 0);
    ASSERT_EQ(pipe(hang_), 0);
    child_ = fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      close(hang_[1]);
      _exit(run_reader(instance_, last_gen, ready_[1], report_[1], hang_after, hang_[0]));
    }
    close(hang_[0]);
    char c;
    ASSERT_TRUE(read_full(ready_[0], &c, 1, 5000)) << "reader did not start";
  }

  ReaderReport finish_reader() {
    close(hang_[1]);
    ReaderReport report;
    EXPECT_TRUE(read_full(report_[0], &report, sizeof(report), 30000)) << "no reader report";
    int status = 0;
    EXPECT_EQ(waitpid(child_, &status, 0), child_);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "reader status " << status;
    for (int fd : {ready_[0], ready_[1], report_[0], report_[1]}) close(fd);
    return report;
  }

  // Publishes `s`, polling while the dataplane is not ready. Returns the number of pending tries.
  uint64_t publish_until_done(Publisher& p, const Snapshot& s, std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    uint64_t pending = 0;
    while (p.publish(s) == PublishResult::kPending) {
      ++pending;
      if (Clock::now() > deadline) {
        ADD_FAILURE() << "publish still pending: " << p.pending_reason();
        break;
      }
      sched_yield();
    }
    return pending;
  }

  std::string instance_ = test::unique_instance("proto");
  int ready_[2] = {-1, -1};
  int report_[2] = {-1, -1};
  int hang_[2] = {-1, -1};
  pid_t child_ = -1;
};

TEST_F(ShmProtocolTest, ReaderNeverSeesTornOrOverwrittenSnapshot) {
  constexpr uint64_t kGenerations = 300;
  Publisher p(instance_);
  p.open();
  start_reader(kGenerations);
  uint64_t pending = 0;
  for (uint64_t g = 1; g <= kGenerations; ++g) {
    pending += publish_until_done(p, test::make_snapshot(g), std::chrono::seconds(10));
    ASSERT_EQ(p.published_gen(), g);
  }
  ReaderReport r = finish_reader();
  EXPECT_EQ(r.generations_seen, kGenerations);
  EXPECT_EQ(r.last_gen, kGenerations);
  EXPECT_EQ(r.torn, 0u);
  EXPECT_EQ(r.invalid, 0u);
  EXPECT_EQ(r.wrong_content, 0u);
  EXPECT_EQ(r.modified_while_read, 0u);
  EXPECT_EQ(r.skipped_or_reordered, 0u);
  // The writer really had to wait for acks; without the gate it would have lapped the reader.
  EXPECT_GT(pending, 0u);
}

TEST_F(ShmProtocolTest, HungDataplaneDelaysWriterOnlyUntilHeartbeatIsStale) {
  Publisher p(instance_);
  p.open();
  start_reader(/*last_gen=*/3, /*hang_after=*/1);
  publish_until_done(p, test::make_snapshot(1), std::chrono::seconds(5));
  // Generation 2 goes to the other slot once 1 is acked; the reader then hangs.
  publish_until_done(p, test::make_snapshot(2), std::chrono::seconds(5));
  const auto start = Clock::now();
  const uint64_t pending = publish_until_done(p, test::make_snapshot(3), std::chrono::seconds(6));
  const auto waited = Clock::now() - start;
  EXPECT_EQ(p.published_gen(), 3u);
  EXPECT_GT(pending, 0u);
  EXPECT_GE(waited, std::chrono::milliseconds(1500));  // the heartbeat was fresh at first
  ReaderReport r = finish_reader();                    // resumes and sees 3
  EXPECT_EQ(r.invalid, 0u);
  EXPECT_EQ(r.wrong_content, 0u);
  EXPECT_EQ(r.last_gen, 3u);
}

TEST_F(ShmProtocolTest, RecoverAfterWriterProcessDies) {
  pid_t writer = fork();
  ASSERT_GE(writer, 0);
  if (writer == 0) {
    // The first control plane publishes three generations and dies without any cleanup.
    Publisher first(instance_);
    first.open();
    for (uint64_t g = 1; g <= 3; ++g) {
      if (first.publish(test::make_snapshot(g + 40)) != PublishResult::kPublished) _exit(1);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(writer, &status, 0), writer);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  Publisher second(instance_);
  second.open();
  EXPECT_TRUE(second.reused_existing());
  EXPECT_EQ(second.published_gen(), 3u);
  auto recovered = second.recover();
  ASSERT_TRUE(recovered.has_value());
  EXPECT_TRUE(test::same_snapshot(*recovered, test::make_snapshot(43)));
  ASSERT_EQ(second.publish(test::make_snapshot(44)), PublishResult::kPublished);
  EXPECT_EQ(second.published_gen(), 4u);
}

}  // namespace
}  // namespace ilb::cp

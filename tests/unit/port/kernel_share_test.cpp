// KernelShare keeps a BPF map of ilb's addresses equal to the set it is given: additions,
// removals, and whatever an earlier run left in it, on a real BPF hash map (needs CAP_BPF; that
// test is skipped without it). ShareSet decides the set: a VIP that leaves lingers.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/port/kernel_share.h"

namespace ilb::dp {
namespace {

std::vector<uint32_t> keys(int fd) {
  std::vector<uint32_t> out;
  uint32_t key = 0;
  uint32_t next = 0;
  const uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    out.push_back(next);
    key = next;
    prev = &key;
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(KernelShare, KeepsTheMapEqualToTheAddressesGiven) {
  const int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "ilb_addrs", sizeof(uint32_t), sizeof(uint8_t),
                                4096, nullptr);
  if (fd < 0) GTEST_SKIP() << "cannot create a BPF map here (no CAP_BPF?)";
  const int view = dup(fd);
  ASSERT_GE(view, 0);
  // What an earlier run left behind.
  const uint32_t stale = 0x0a0000ff;
  const uint8_t one = 1;
  ASSERT_EQ(bpf_map_update_elem(fd, &stale, &one, BPF_ANY), 0);
  KernelShare share;
  share.use_map(fd, "test0");
  std::string error;
  ASSERT_TRUE(share.sync({1, 2, 3}, error)) << error;
  EXPECT_EQ(keys(view), (std::vector<uint32_t>{1, 2, 3}));
  ASSERT_TRUE(share.sync({2, 4}, error)) << error;
  EXPECT_EQ(keys(view), (std::vector<uint32_t>{2, 4}));
  std::vector<uint32_t> many(600);
  for (uint32_t i = 0; i < many.size(); ++i) many[i] = 1000 + i;
  ASSERT_TRUE(share.sync(many, error)) << error;
  EXPECT_EQ(keys(view), many);
  ASSERT_TRUE(share.sync({}, error)) << error;
  EXPECT_TRUE(keys(view).empty());
  close(view);
}

constexpr uint64_t kSec = 1'000'000'000;

TEST(ShareSet, HoldsOwnAddressesAndTheVipsInForce) {
  ShareSet set({20, 10});
  EXPECT_EQ(set.at(0), (std::vector<uint32_t>{10, 20}));
  set.set_vips(0, {{30, 5}, {10, 5}, {30, 60}});
  EXPECT_EQ(set.at(0), (std::vector<uint32_t>{10, 20, 30})) << "sorted, each once";
}

TEST(ShareSet, AVipThatLeavesLingersForItsServicesLongestTimeout) {
  ShareSet set({1});
  set.set_vips(0, {{30, 5}, {30, 60}, {40, 10}});
  set.set_vips(100 * kSec, {{40, 10}});
  EXPECT_EQ(set.at(100 * kSec), (std::vector<uint32_t>{1, 30, 40}));
  EXPECT_EQ(set.at(159 * kSec), (std::vector<uint32_t>{1, 30, 40}));
  EXPECT_EQ(set.at(160 * kSec), (std::vector<uint32_t>{1, 40})) << "60 s after it left";
  // Back before its time is up: in force again, and leaving again starts a new linger.
  set.set_vips(110 * kSec, {{40, 10}, {30, 2}});
  set.set_vips(120 * kSec, {{40, 10}});
  EXPECT_EQ(set.at(121 * kSec), (std::vector<uint32_t>{1, 30, 40}));
  EXPECT_EQ(set.at(122 * kSec), (std::vector<uint32_t>{1, 40}));
  set.set_vips(130 * kSec, {});
  EXPECT_EQ(set.at(139 * kSec), (std::vector<uint32_t>{1, 40}));
  EXPECT_EQ(set.at(140 * kSec), (std::vector<uint32_t>{1}));
}

}  // namespace
}  // namespace ilb::dp

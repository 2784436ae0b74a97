#include "controlplane/tables/wrr.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace ilb::cp {
namespace {

std::map<uint32_t, size_t> counts(const std::vector<uint32_t>& table) {
  std::map<uint32_t, size_t> c;
  for (uint32_t id : table) ++c[id];
  return c;
}

TEST(WrrTable, EachBackendAppearsInProportionToItsWeight) {
  const std::vector<MaglevBackend> b = {{1, 500, "a"}, {2, 200, "b"}, {3, 100, "c"}};
  const auto table = build_wrr_table(b, 65537);
  ASSERT_EQ(table.size(), 8u) << "weights divided by their gcd (100)";
  EXPECT_EQ(counts(table), (std::map<uint32_t, size_t>{{1, 5}, {2, 2}, {3, 1}}));
}

// The smooth sequence interleaves: 5:1:1 gives a a b a c a a, never five a's in a row.
TEST(WrrTable, SequenceInterleavesInsteadOfRunningInBlocks) {
  const std::vector<MaglevBackend> b = {{1, 5, "a"}, {2, 1, "b"}, {3, 1, "c"}};
  EXPECT_EQ(build_wrr_table(b, 100), (std::vector<uint32_t>{1, 1, 2, 1, 3, 1, 1}));
  const std::vector<MaglevBackend> equal = {{7, 3, "a"}, {8, 3, "b"}, {9, 3, "c"}};
  EXPECT_EQ(build_wrr_table(equal, 100), (std::vector<uint32_t>{7, 8, 9}));
}

TEST(WrrTable, LongSequencesAreScaledDownKeepingEveryBackend) {
  const std::vector<MaglevBackend> b = {{1, 997, "a"}, {2, 991, "b"}, {3, 1, "c"}};
  const auto table = build_wrr_table(b, 101);
  ASSERT_LE(table.size(), 101u);
  const auto c = counts(table);
  EXPECT_EQ(c.size(), 3u) << "the lightest backend keeps one entry";
  EXPECT_NEAR(double(c.at(1)) / double(c.at(2)), 997.0 / 991.0, 0.05);
}

TEST(WrrTable, BackendsWithoutWeightAreLeftOut) {
  const std::vector<MaglevBackend> b = {{1, 0, "a"}, {2, 3, "b"}};
  EXPECT_EQ(build_wrr_table(b, 100), (std::vector<uint32_t>{2}));
  EXPECT_TRUE(build_wrr_table(std::vector<MaglevBackend>{{1, 0, "a"}}, 100).empty());
}

TEST(WlcTable, ListsEachWeightedBackendOnce) {
  const std::vector<MaglevBackend> b = {{4, 10, "a"}, {5, 0, "b"}, {6, 30, "c"}};
  EXPECT_EQ(build_wlc_table(b), (std::vector<uint32_t>{4, 6}));
}

TEST(TableBuilder, BuildsTheKindEachServiceAsksForAndRebuildsWhenTheKindChanges) {
  TableBuilder builder;
  std::vector<TableRequest> requests(2);
  requests[0].backends = {{1, 2, "a"}, {2, 1, "b"}};
  requests[0].table_size = 7;
  requests[0].kind = TableKind::kWrr;
  requests[1].backends = {{3, 1, "c"}, {4, 1, "d"}};
  requests[1].table_size = 7;
  requests[1].kind = TableKind::kWlc;
  const auto& tables = builder.build(requests);
  EXPECT_EQ(tables[0], (std::vector<uint32_t>{1, 2, 1}));
  EXPECT_EQ(tables[1], (std::vector<uint32_t>{3, 4}));
  requests[1].kind = TableKind::kMaglev;
  EXPECT_EQ(builder.build(requests)[1].size(), 7u);
  EXPECT_EQ(builder.last_rebuilt(), 1u);
}

}  // namespace
}  // namespace ilb::cp

#include "controlplane/publish/slot_codec.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "test_snapshots.h"

namespace ilb::cp {
namespace {

std::vector<uint8_t> encode(const Snapshot& s) {
  std::vector<uint8_t> slot(encoded_size(s) + 64, 0xee);
  const uint64_t end = encode_slot_payload(s, slot.data());
  auto* h = reinterpret_cast<abi::SlotHeader*>(slot.data());
  h->checksum = abi::fnv1a64(slot.data() + 64, end - 64);
  return slot;
}

TEST(SlotCodec, RoundTripsSnapshot) {
  const Snapshot s = test::make_snapshot(7);
  auto slot = encode(s);
  Snapshot out;
  std::string error;
  ASSERT_TRUE(decode_slot(slot.data(), slot.size(), out, error)) << error;
  EXPECT_TRUE(test::same_snapshot(s, out));
}

TEST(SlotCodec, WritesOnlyTheUsedBytes) {
  const Snapshot s = test::make_snapshot(3);
  auto slot = encode(s);
  const auto* h = reinterpret_cast<const abi::SlotHeader*>(slot.data());
  EXPECT_EQ(h->payload_end, encoded_size(s));
  for (size_t i = h->payload_end; i < slot.size(); ++i) ASSERT_EQ(slot[i], 0xee) << i;
}

TEST(SlotCodec, EmptyTableMeansNoEligibleBackend) {
  Snapshot s = test::make_snapshot(0);
  s.services[0].table.clear();
  auto slot = encode(s);
  Snapshot out;
  std::string error;
  ASSERT_TRUE(decode_slot(slot.data(), slot.size(), out, error)) << error;
  EXPECT_TRUE(out.services[0].table.empty());
  const auto* rec = reinterpret_cast<const abi::ServiceRecord*>(slot.data() + 64);
  EXPECT_EQ(rec->table_size, 0u);
}

TEST(SlotCodec, DecodeRejectsCorruptedPayload) {
  auto slot = encode(test::make_snapshot(5));
  slot[200] ^= 1;
  Snapshot out;
  std::string error;
  EXPECT_FALSE(decode_slot(slot.data(), slot.size(), out, error));
  EXPECT_EQ(error, "slot checksum mismatch");
}

TEST(SlotCodec, DecodeRejectsOffsetsBeyondTheSlot) {
  auto slot = encode(test::make_snapshot(5));
  auto* h = reinterpret_cast<abi::SlotHeader*>(slot.data());
  h->payload_end = slot.size() + 64;
  Snapshot out;
  std::string error;
  EXPECT_FALSE(decode_slot(slot.data(), slot.size(), out, error));
  EXPECT_EQ(error, "slot offsets out of bounds");
}

TEST(SlotCodec, DecodeRejectsTableEntryOfUnknownBackend) {
  Snapshot s = test::make_snapshot(2);
  auto slot = encode(s);
  auto* h = reinterpret_cast<abi::SlotHeader*>(slot.data());
  auto* table = reinterpret_cast<uint32_t*>(slot.data() + h->tables_offset);
  table[0] = 4000;
  h->checksum = abi::fnv1a64(slot.data() + 64, h->payload_end - 64);
  Snapshot out;
  std::string error;
  EXPECT_FALSE(decode_slot(slot.data(), slot.size(), out, error));
}

TEST(SlotCodec, ValidateRejectsDuplicateIds) {
  Snapshot s = test::make_snapshot(1);
  s.backends[1].id = s.backends[0].id;
  EXPECT_THROW(validate_snapshot(s), std::invalid_argument);
}

TEST(SlotCodec, ValidateRejectsIdZeroAndOutOfRange) {
  Snapshot s = test::make_snapshot(1);
  s.backends[0].id = 0;
  EXPECT_THROW(validate_snapshot(s), std::invalid_argument);
  s.backends[0].id = abi::kMaxBackends;
  EXPECT_THROW(validate_snapshot(s), std::invalid_argument);
}

TEST(SlotCodec, ValidateRejectsTableNamingAnotherServicesBackend) {
  Snapshot s = test::make_snapshot(1);  // two services
  ASSERT_GE(s.services.size(), 2u);
  s.services[0].table[0] = s.services[1].table[0];
  EXPECT_THROW(validate_snapshot(s), std::invalid_argument);
}

TEST(SlotCodec, ValidateRejectsTooManyTableEntries) {
  Snapshot s;
  for (uint32_t i = 0; i < 65; ++i) {
    SnapshotService svc;
    svc.name = "s" + std::to_string(i);
    svc.table.assign(abi::kMaxTableSize, i + 1);
    s.services.push_back(std::move(svc));
    s.backends.push_back(
        SnapshotBackend{i + 1, i, 1, 1, abi::AdminState::kEnabled, abi::Health::kUp, 1});
  }
  EXPECT_THROW(validate_snapshot(s), std::invalid_argument);
}

TEST(SlotCodec, ValidateRejectsLongServiceName) {
  Snapshot s = test::make_snapshot(1);
  s.services[0].name = std::string(abi::kNameLen, 'x');
  EXPECT_THROW(validate_snapshot(s), std::invalid_argument);
}

}  // namespace
}  // namespace ilb::cp

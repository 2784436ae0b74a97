// libFuzzer target for the dataplane's snapshot validation: ilb::dp::ActiveConfig::build on the
// input as the bytes of a ctl slot, the way the config agent calls it on a copy out of shared
// memory written by another process.
//
// A random slot almost never carries a matching fnv1a64 checksum, so for inputs whose first byte
// is odd the harness re-seals the checksum before building; those inputs reach the count, offset,
// record and table checks behind it. Inputs whose first byte is even test the checksum gate
// itself. The expected generation is always the slot's own, so the generation check is passed.
//
// ActiveConfig uses rte_zmalloc and rte_hash, so the EAL is started once (fuzz_eal.h).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/abi/ilb_abi.h"
#include "dataplane/agent/active_config.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_eal.h"

namespace {

namespace abi = ilb::abi;
using ilb::dp::ActiveConfig;

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

void reseal(std::vector<uint8_t>& slot) {
  const uint64_t payload_end = load<uint64_t>(slot.data() + offsetof(abi::SlotHeader, payload_end));
  const uint64_t end = std::min<uint64_t>(payload_end, slot.size());
  const uint64_t begin = sizeof(abi::SlotHeader);
  const uint64_t sum =
      end > begin ? abi::fnv1a64(slot.data() + begin, end - begin) : abi::fnv1a64(slot.data(), 0);
  std::memcpy(slot.data() + offsetof(abi::SlotHeader, checksum), &sum, sizeof(sum));
}

// What a worker relies on after build() returned a config: every table entry names a backend
// of the same service, every service is found by its key, and vips() is sorted and distinct.
void check_config(const ActiveConfig& cfg) {
  for (uint32_t i = 0; i < cfg.service_count(); ++i) {
    const ilb::dp::ServiceEntry& s = cfg.service(i);
    ILB_FUZZ_CHECK(s.table_size <= abi::kMaxTableSize, "a service's table fits the ABI limit");
    for (uint32_t j = 0; j < s.table_size; ++j) {
      const uint32_t id = s.table[j];
      ILB_FUZZ_CHECK(id > 0 && id < abi::kMaxBackends, "table entries are backend ids");
      const ilb::dp::BackendEntry& b = cfg.backend(id);
      ILB_FUZZ_CHECK(b.admin != 0 && b.service_index == i,
                     "table entries name backends of the same service");
    }
    ILB_FUZZ_CHECK(cfg.find_service(s.vip, s.port, s.protocol) == static_cast<int32_t>(i),
                   "every service is found by its (vip, port, protocol)");
    ILB_FUZZ_CHECK(cfg.is_vip(s.vip), "every service's vip is a VIP");
    ILB_FUZZ_CHECK(std::memchr(s.name, '\0', sizeof(s.name)) != nullptr,
                   "service names are NUL-terminated");
  }
  const std::vector<uint32_t>& vips = cfg.vips();
  ILB_FUZZ_CHECK(std::adjacent_find(vips.begin(), vips.end(),
                                    [](uint32_t a, uint32_t b) { return a >= b; }) == vips.end(),
                 "vips() is sorted and has no duplicates");
  ILB_FUZZ_CHECK(cfg.backend(0).admin == 0 && cfg.backend(abi::kMaxBackends).admin == 0,
                 "id 0 and out-of-range ids name no backend");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  ilb::fuzz::start_eal("fuzz_snapshot");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size heap copy: ASan then reports any read past the slot's end.
  std::vector<uint8_t> slot(data, data + size);
  if (size >= sizeof(abi::SlotHeader) && (data[0] & 1) != 0) reseal(slot);
  const uint64_t generation = size >= sizeof(uint64_t) ? load<uint64_t>(data) : 0;

  std::string error;
  ActiveConfig* cfg = ActiveConfig::build(slot.data(), slot.size(), generation, error);
  if (cfg == nullptr) {
    ILB_FUZZ_CHECK(!error.empty(), "a rejected slot comes with a reason");
    return 0;
  }
  ILB_FUZZ_CHECK(cfg->generation() == generation, "the config keeps the slot's generation");
  check_config(*cfg);
  ActiveConfig::destroy(cfg);
  return 0;
}

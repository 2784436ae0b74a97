// The dataplane's side of the shared-memory contract, reduced to what the publisher tests need:
// it creates and initialises a stat region, beats, acknowledges generations and reads ctl slots
// exactly as ilb_abi.h tells the dataplane to (copy, validate, re-check the generation).
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "controlplane/publish/slot_codec.h"
#include "controlplane/publish/stat_reader.h"
#include "dataplane/abi/ilb_abi.h"
#include "dataplane/abi/shm_region.h"

namespace ilb::cp::test {

inline std::string unique_instance(const std::string& tag) {
  static int counter = 0;
  return "t" + std::to_string(getpid()) + tag + std::to_string(counter++);
}

class FakeDataplane {
 public:
  explicit FakeDataplane(const std::string& instance) : name_(abi::stat_shm_name(instance)) {
    std::string error;
    if (!stat_.map(name_, abi::ShmRegion::Mode::kCreate, abi::stat_region_bytes(), error)) {
      throw std::runtime_error(error);
    }
    std::memset(static_cast<void*>(stat_.data()), 0, stat_.size());
    auto* h = header();
    h->common.abi_major = abi::kAbiMajor;
    h->common.abi_minor = abi::kAbiMinor;
    h->common.header_size = sizeof(abi::StatHeader);
    h->common.boot_id = 0x5eed;
    h->common.region_size = stat_.size();
    h->common.sizeof_a = sizeof(abi::LcoreStats);
    h->common.sizeof_b = sizeof(abi::PortStats);
    h->common.sizeof_c = sizeof(abi::ServiceStats);
    h->common.sizeof_d = sizeof(abi::BackendStats);
    h->common.writer_pid = static_cast<uint32_t>(getpid());
    h->lcore_offset = abi::align_up(sizeof(abi::StatHeader), 64);
    h->port_offset = h->lcore_offset + abi::kMaxLcores * sizeof(abi::LcoreStats);
    h->service_offset = h->port_offset + abi::kMaxPorts * sizeof(abi::PortStats);
    h->backend_offset = h->service_offset + abi::kMaxServices * sizeof(abi::ServiceStats);
    beat();
    std::atomic_thread_fence(std::memory_order_release);
    h->common.magic = abi::kStatMagic;
  }
  ~FakeDataplane() { shm_unlink(name_.c_str()); }

  abi::StatHeader* header() { return stat_.at<abi::StatHeader>(0); }
  void beat() { header()->heartbeat_ns.store(monotonic_ns(), std::memory_order_relaxed); }
  void beat_at(uint64_t ns) { header()->heartbeat_ns.store(ns, std::memory_order_relaxed); }
  void ack(uint64_t g) { header()->acked_gen.store(g, std::memory_order_release); }
  template <typename T>
  T* section(uint64_t offset) {
    return stat_.at<T>(offset);
  }

 private:
  std::string name_;
  abi::ShmRegion stat_;
};

// Result of reading the published generation the way the dataplane's config agent does.
struct SlotRead {
  bool ok = false;
  bool torn = false;  // the slot's generation moved while it was copied
  std::string error;
  std::vector<uint8_t> copy;
  Snapshot snapshot;
};

// Copies slot (g & 1) of a mapped ctl region, validates it and re-checks its generation.
inline SlotRead read_slot(const abi::ShmRegion& ctl, uint64_t g) {
  SlotRead r;
  const auto* h = ctl.at<const abi::CtlHeader>(0);
  const uint8_t* slot = ctl.data() + h->slot_offset[g & 1];
  const auto* sh = reinterpret_cast<const abi::SlotHeader*>(slot);
  if (sh->generation.load(std::memory_order_acquire) != g) {
    r.torn = true;
    r.error = "slot generation is not the published one";
    return r;
  }
  const uint64_t end = std::min<uint64_t>(sh->payload_end, h->slot_size);
  r.copy.assign(slot, slot + std::max<uint64_t>(end, sizeof(abi::SlotHeader)));
  std::atomic_thread_fence(std::memory_order_acquire);
  if (sh->generation.load(std::memory_order_relaxed) != g) {
    r.torn = true;
    r.error = "slot generation moved during the copy";
    return r;
  }
  if (!decode_slot(r.copy.data(), r.copy.size(), r.snapshot, r.error)) return r;
  r.ok = true;
  return r;
}

}  // namespace ilb::cp::test

// Read-only view of the dataplane's stat region. The dataplane may start, stop or restart at any
// time, so the reader re-maps whenever the object appears, disappears or is replaced, and treats
// the contents as untrusted: a region is only exposed after its header and offsets validate.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "dataplane/abi/ilb_abi.h"
#include "dataplane/abi/shm_region.h"

namespace ilb::cp {

class StatReader {
 public:
  explicit StatReader(std::string instance);

  // Re-maps the object if it appeared, vanished or was replaced since the last call, then
  // validates it. Returns valid().
  bool refresh();

  // True when a region with this ABI is mapped and its layout is within bounds.
  bool valid() const { return valid_; }
  const std::string& name() const { return name_; }
  // Why the region is not valid ("" when it is).
  const std::string& problem() const { return last_problem_; }

  // Accessors below require valid().
  const abi::StatHeader& header() const { return *region_.at<const abi::StatHeader>(0); }
  uint64_t boot_id() const { return header().common.boot_id; }
  uint64_t acked_gen() const { return header().acked_gen.load(std::memory_order_acquire); }
  uint64_t heartbeat_ns() const { return header().heartbeat_ns.load(std::memory_order_relaxed); }
  const abi::LcoreStats& lcore(uint32_t i) const;
  const abi::PortStats& port(uint32_t i) const;
  const abi::ServiceStats& service(uint32_t i) const;
  const abi::BackendStats& backend(uint32_t id) const;
  // The ServiceStats entry whose key fields match, or nullptr.
  const abi::ServiceStats* find_service(uint32_t vip, uint16_t port, abi::Protocol proto) const;

  // Milliseconds since the dataplane's last heartbeat (CLOCK_MONOTONIC); UINT64_MAX if it never
  // beat. A dataplane is running when this is below kStaleHeartbeatMs.
  uint64_t heartbeat_age_ms() const;
  bool running() const { return valid_ && heartbeat_age_ms() < kStaleHeartbeatMs; }

  static constexpr uint64_t kStaleHeartbeatMs = 2000;

 private:
  bool validate(std::string& why) const;  // sets `why` to "" on success

  std::string name_;
  abi::ShmRegion region_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  bool valid_ = false;
  std::string last_problem_;
};

// CLOCK_MONOTONIC in nanoseconds, the clock of every heartbeat.
uint64_t monotonic_ns();

// Reads one of the region's counters. The dataplane stores them with relaxed atomic stores;
// readers load them the same way. A relaxed load only reads, so it is safe on the read-only
// mapping despite the const_cast.
template <typename T>
inline uint64_t load_counter(const T& counter) {
  return std::atomic_ref<T>(const_cast<T&>(counter)).load(std::memory_order_relaxed);
}

// A port's link state as the API and ilbctl name it: "up", "down" or "unknown".
inline const char* link_name(uint64_t link) {
  switch (static_cast<abi::Link>(link)) {
    case abi::Link::kUp:
      return "up";
    case abi::Link::kDown:
      return "down";
    default:
      return "unknown";
  }
}

}  // namespace ilb::cp

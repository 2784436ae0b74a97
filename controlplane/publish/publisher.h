// Writer side of the ctl region (protocol in dataplane/abi/ilb_abi.h). Two slots: generation g
// goes into slot g & 1, which may be written only once the dataplane has acknowledged g - 1 (so
// it is not reading that slot) or is evidently not running (no stat region, or a heartbeat older
// than two seconds). publish() never waits: it reports kPending and the caller retries later with
// its then-current full state, which merges every change made in between.
//
// A restarted control plane must not disturb a running dataplane, so open() keeps an existing
// object of this ABI untouched (both slots and published_gen) and recover() reads back the last
// published snapshot to continue from it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "controlplane/publish/snapshot.h"
#include "controlplane/publish/stat_reader.h"
#include "dataplane/abi/shm_region.h"

namespace ilb::cp {

enum class PublishResult { kPublished, kPending };

class Publisher {
 public:
  static constexpr uint64_t kStaleHeartbeatNs = 2'000'000'000ULL;

  explicit Publisher(std::string instance);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Maps /dev/shm/ilb.<instance>.ctl, creating it if missing, and takes an exclusive lock on it
  // so that two control planes never write the same instance. An object with this ABI keeps its
  // contents; anything else is initialised with published_gen 0. Writes a fresh random boot id
  // and this process's pid into the header. Throws std::runtime_error.
  void open();

  // The last published snapshot, if open() found an object of this ABI with published_gen > 0
  // whose slot still validates. Generations continue from published_gen() either way.
  std::optional<Snapshot> recover() const;

  // Publishes `s` as generation published_gen() + 1, or returns kPending (nothing written) while
  // the dataplane may still be reading the target slot. Throws std::invalid_argument if `s`
  // breaks an ABI limit (checked before anything is written).
  PublishResult publish(const Snapshot& s);

  // True when publish() would write now (the slot of the next generation is free). Lets a caller
  // skip building a snapshot that would only be refused.
  bool ready() { return slot_free(published_gen_ + 1); }

  uint64_t published_gen() const { return published_gen_; }
  uint64_t boot_id() const { return boot_id_; }
  // True when open() kept an existing object of this ABI.
  bool reused_existing() const { return reused_; }
  // Why the last publish() returned kPending.
  const std::string& pending_reason() const { return pending_reason_; }
  const std::string& ctl_name() const { return name_; }

  // The dataplane's stat region as last seen by publish(); callers may refresh() it too.
  StatReader& stat() { return stat_; }
  const StatReader& stat() const { return stat_; }

  // Removes the shared-memory object name (tests and tooling; a running daemon never does).
  static void unlink(const std::string& instance);

 private:
  bool slot_free(uint64_t g);
  abi::CtlHeader* header() const { return ctl_.at<abi::CtlHeader>(0); }

  std::string name_;
  abi::ShmRegion ctl_;
  StatReader stat_;
  int lock_fd_ = -1;
  uint64_t published_gen_ = 0;
  uint64_t boot_id_ = 0;
  bool reused_ = false;
  std::string pending_reason_;
};

}  // namespace ilb::cp

// The config agent runs on the main lcore and is the dataplane's only reader of the `ctl`
// region. It follows the protocol in ilb_abi.h: load published_gen (acquire), copy the slot out,
// validate the copy as untrusted input, build an ActiveConfig, publish it to the workers, wait
// for an RCU grace period, free the old config, and acknowledge in `stat`. A bad snapshot is
// rejected with a reason and the config in force stays.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/abi/shm_region.h"

namespace ilb::dp {

struct SharedState;
class StatsExport;

class ConfigAgent {
 public:
  ConfigAgent(std::string instance, SharedState& shared, StatsExport& stats);
  ~ConfigAgent();  // does not touch SharedState: call shutdown() first

  // Called every few milliseconds. Maps `ctl` when it appears (and re-maps when its writer
  // re-creates it) and applies a new generation if one is published. Returns true when a new
  // config was applied in this call.
  bool poll();

  // Unpublishes and frees the config in force (workers must be stopped).
  void shutdown();

  uint64_t applied_gen() const { return applied_gen_; }
  const std::string& last_error() const { return last_error_; }

 private:
  bool map_ctl();
  void reject(uint64_t gen, const std::string& why);

  std::string instance_;
  SharedState& shared_;
  StatsExport& stats_;
  abi::ShmRegion ctl_;
  uint64_t ctl_boot_id_ = 0;
  uint64_t slot_offset_[2] = {0, 0};  // validated when mapped; never re-read from the writer
  uint64_t slot_size_ = 0;
  uint64_t next_inode_check_ns_ = 0;
  uint64_t acked_gen_ = 0;
  uint64_t applied_gen_ = 0;
  uint64_t next_map_attempt_ns_ = 0;
  std::vector<uint8_t> copy_;
  std::string last_error_;
};

}  // namespace ilb::dp

// The complete desired state the control plane hands to the dataplane, in plain C++ values. The
// publisher encodes it into a ctl slot; recovery decodes a slot back into it. Always full state,
// never a delta, so a dataplane that missed generations needs only the latest one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/abi/ilb_abi.h"

namespace ilb::cp {

struct SnapshotService {
  std::string name;  // at most abi::kNameLen - 1 bytes
  uint32_t vip = 0;  // IPv4, network order
  uint16_t port = 0;
  abi::Protocol protocol = abi::Protocol::kTcp;
  abi::Scheduler scheduler = abi::Scheduler::kMaglev;
  uint32_t tcp_syn_timeout_s = 0;
  uint32_t tcp_est_timeout_s = 0;
  uint32_t tcp_fin_timeout_s = 0;
  uint32_t udp_timeout_s = 0;
  bool reset_untracked = false;  // answer untracked TCP segments with a reset
  std::vector<uint32_t> table;   // backend ids; empty = no eligible backend
};

struct SnapshotBackend {
  uint32_t id = 0;  // [1, abi::kMaxBackends)
  uint32_t service_index = 0;
  uint32_t address = 0;  // IPv4, network order
  uint16_t port = 0;
  abi::AdminState admin = abi::AdminState::kEnabled;
  abi::Health health = abi::Health::kUnknown;
  uint32_t weight = 0;
  bool reset_flows = false;  // cut its existing connections (reset both sides)
};

struct Snapshot {
  std::vector<SnapshotService> services;
  std::vector<SnapshotBackend> backends;
};

}  // namespace ilb::cp

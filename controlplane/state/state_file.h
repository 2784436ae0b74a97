// The control plane's memory across restarts when the dataplane's ctl region is gone too (a host
// reboot, a dataplane restart): every backend's admin state and last known health, saved as JSON
// after each change and read back at start. A restarted control plane resumes from it, so an
// operator's drain or disable survives and no backend is briefly reported up or down.
//
// The file is replaced atomically (write a temporary file, fsync, rename), so a crash leaves the
// old or the new version, never half of one. It is untrusted on reading: a file that does not
// parse is ignored as a whole with a warning, a malformed entry is skipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "controlplane/state/state.h"

namespace ilb::cp {

struct SavedBackend {
  BackendKey key;
  uint32_t id = 0;
  abi::AdminState admin = abi::AdminState::kEnabled;
  abi::Health health = abi::Health::kUnknown;
};

struct StateFileContents {
  std::vector<SavedBackend> backends;
  size_t skipped = 0;  // malformed entries
};

// Serialises the admin state and health of every backend of `state`.
std::string encode_state_file(const State& state, const std::string& instance);

// Parses a state file's text. Throws std::runtime_error with a reason when the text as a whole is
// not a state file (not JSON, wrong format or version); skips (and counts) malformed entries.
StateFileContents decode_state_file(const std::string& text);

// Writes `text` to `path` atomically, creating the directory if needed. Throws
// std::runtime_error naming the failing step.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace ilb::cp

// Every probe in flight holds a socket (a backend has one probe at a time: the checker closes a
// probe still draining its last response before it starts the next, and a kept HTTP connection
// is that probe's socket), and with the backends unreachable every probe stays in flight for its
// whole timeout. The soft open-files limit most services start with (1024) would then make probes fail
// with "too many open files" and take healthy backends down once a control plane checks a few
// hundred of them, so the checker raises the soft limit as far as the hard limit allows, the way
// long-running network servers do, and says so when even that is not enough.
#pragma once

#include <cstdint>

namespace ilb::cp {

// Sockets the checks of `targets` backends may hold at once, with room for the API and the
// shared-memory regions.
uint64_t sockets_needed(uint64_t targets);

struct FdLimit {
  uint64_t before = 0;  // the soft limit found
  uint64_t now = 0;     // the soft limit afterwards
  uint64_t hard = 0;
};

// When the soft RLIMIT_NOFILE is below `wanted`, raises it to the hard limit. Never lowers it.
FdLimit raise_open_file_limit(uint64_t wanted);

}  // namespace ilb::cp

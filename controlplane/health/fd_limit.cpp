#include "controlplane/health/fd_limit.h"

#include <sys/resource.h>

namespace ilb::cp {

namespace {
// API clients, shared memory, logs, the raw socket of half-open probes, exec checks' pipes.
constexpr uint64_t kReserve = 256;
}

uint64_t sockets_needed(uint64_t targets) {
  return targets + kReserve;
}

FdLimit raise_open_file_limit(uint64_t wanted) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
  FdLimit out{limit.rlim_cur, limit.rlim_cur, limit.rlim_max};
  if (limit.rlim_cur >= wanted || limit.rlim_cur == RLIM_INFINITY) return out;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) == 0) out.now = limit.rlim_cur;
  return out;
}

}  // namespace ilb::cp

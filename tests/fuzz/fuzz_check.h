// The fuzz targets' invariant check. A broken invariant must stop libFuzzer with a crash it
// records as a finding, in every build type, so this does not use assert() (NDEBUG would drop it).
#pragma once

#include <cstdio>

#define ILB_FUZZ_CHECK(cond, what)                                                            \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "ILB_FUZZ_CHECK failed at %s:%d: %s\n  invariant: %s\n", __FILE__, \
                   __LINE__, #cond, what);                                                    \
      __builtin_trap();                                                                       \
    }                                                                                         \
  } while (0)

// Starts the EAL once for a fuzz target whose code under test needs DPDK memory (rte_zmalloc,
// rte_hash, mempools): without hugepages, PCI or telemetry, main lcore 0 only, and with a
// per-process file prefix so that parallel fuzzers never share a runtime directory. The runtime
// directory is removed at exit.
#pragma once

#include <rte_eal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace ilb::fuzz {

inline std::string& eal_runtime_dir() {
  static std::string dir;
  return dir;
}

inline void start_eal(const char* target) {
  const std::string prefix = "fuzz" + std::to_string(getpid());
  std::vector<std::string> args = {target, "-l",          "0",           "--no-huge",
                                   "-m",   "256",         "--no-pci",    "--file-prefix",
                                   prefix, "--log-level", "lib.*:error", "--no-telemetry"};
  std::vector<char*> eal_argv;
  for (auto& a : args) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::fprintf(stderr, "%s: EAL init failed\n", target);
    std::exit(1);
  }
  eal_runtime_dir() = rte_eal_get_runtime_dir();
  std::atexit([] {
    rte_eal_cleanup();
    std::error_code ec;
    std::filesystem::remove_all(eal_runtime_dir(), ec);
  });
}

}  // namespace ilb::fuzz

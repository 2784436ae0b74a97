// GoogleTest main for tests that need DPDK's EAL (rte_hash, rte_malloc, mbufs). The EAL runs
// without hugepages or PCI and with a per-process file prefix, so these tests need no privileges
// beyond a normal build and never collide with a running dataplane.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  std::string prefix = "ilb-test-" + std::to_string(getpid());
  std::vector<std::string> args = {"ilb-test", "-l",          "0",           "--no-huge",
                                   "-m",       "512",         "--no-pci",    "--file-prefix",
                                   prefix,     "--log-level", "lib.*:error", "--no-telemetry"};
  std::vector<char*> eal_argv;
  for (auto& a : args) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    fprintf(stderr, "EAL init failed\n");
    return 1;
  }
  const int rc = RUN_ALL_TESTS();
  const std::string runtime_dir = rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  std::error_code ec;
  std::filesystem::remove_all(runtime_dir, ec);
  return rc;
}

// Helpers for tests that run real commands: a scratch directory for scripts and files, a loop
// that runs an io_context until a condition holds, and /proc queries that tell whether a process
// (or any process of a group) is still alive.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "tests/unit/health/loopback.h"  // run_until()

namespace ilb::cp::test {

using namespace std::chrono_literals;

// Polls `done()` (without an io_context) until it holds or `limit` passes.
template <class Pred>
bool wait_for(Pred done, std::chrono::milliseconds limit = 3000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    ::usleep(5000);  // a poll interval, not a wait for a fixed time
  }
  return true;
}

// A fresh directory under /tmp, removed with its contents by the destructor.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/ilb-proc-test-XXXXXX";
    if (::mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = name;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  // Writes an executable /bin/sh script and returns its absolute path.
  std::string script(const std::string& name, const std::string& body) const {
    const std::string p = file(name);
    std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
    ::chmod(p.c_str(), 0755);
    return p;
  }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct ProcStat {
  char state = '?';
  pid_t pgrp = 0;
};

// State and process group of `pid` from /proc/<pid>/stat; false if there is no such process.
inline bool proc_stat(pid_t pid, ProcStat& out) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  // "pid (comm) state ppid pgrp ...": comm may contain spaces, so parse after the last ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 1));
  pid_t ppid = 0;
  rest >> out.state >> ppid >> out.pgrp;
  return true;
}

// True if `pid` exists in any state, zombies included.
inline bool process_exists(pid_t pid) {
  ProcStat s;
  return proc_stat(pid, s);
}

// True if `pid` is running (exists and is neither a zombie nor dead).
inline bool process_running(pid_t pid) {
  ProcStat s;
  return proc_stat(pid, s) && s.state != 'Z' && s.state != 'X';
}

// Processes of group `pgid` that are still running. Killed orphans that nobody has reaped yet
// are zombies: dead, so not counted.
inline int running_in_group(pid_t pgid) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    ProcStat s;
    if (proc_stat(std::stoi(name), s) && s.pgrp == pgid && s.state != 'Z' && s.state != 'X') {
      ++count;
    }
  }
  return count;
}

}  // namespace ilb::cp::test

// Real redis-server and memcached processes for the cache health-check tests: started as children
// on 127.0.0.1 with a free port, waited for until they accept connections, and killed and reaped
// by the destructor, so a failing test never leaves a server behind. A child also dies with the
// test process (PR_SET_PDEATHSIG) if that is killed outright.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ilb::cp::test {

// A port on 127.0.0.1 that was free a moment ago: bound to learn a number, then closed.
inline uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("free_port: cannot bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// True if a TCP connection to 127.0.0.1:port completes.
inline bool accepts_connections(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

class ChildServer {
 public:
  // Starts `argv` (argv[0] is looked up in PATH) with its output discarded, in `dir`, and waits
  // until it accepts connections on `port`.
  ChildServer(std::vector<std::string> argv, uint16_t port, const std::string& dir = "/tmp")
      : port_(port) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 1);
      ::dup2(null, 2);
      if (::chdir(dir.c_str()) != 0) ::_exit(126);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!accepts_connections(port_)) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error(argv[0] + " exited before accepting connections");
      }
      if (std::chrono::steady_clock::now() > deadline) {
        stop();
        throw std::runtime_error(argv[0] + " did not accept connections within 10 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a poll interval, not a wait
    }
  }
  ~ChildServer() { stop(); }
  ChildServer(const ChildServer&) = delete;
  ChildServer& operator=(const ChildServer&) = delete;

  uint16_t port() const { return port_; }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// A fresh scratch directory under /tmp, removed with everything in it by the destructor.
class ScratchDir {
 public:
  ScratchDir() {
    char name[] = "/tmp/ilb-cachecheck-XXXXXX";
    if (::mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = name;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::vector<std::string> redis_argv(uint16_t port, const std::string& dir) {
  return {"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
          "--appendonly", "no",     "--daemonize",        "no",     "--dir",     dir};
}

inline std::vector<std::string> memcached_argv(uint16_t port) {
  return {"memcached", "-l", "127.0.0.1", "-p", std::to_string(port), "-U", "0", "-u", "root"};
}

}  // namespace ilb::cp::test

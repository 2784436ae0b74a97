// ilb-bench-health: how much CPU one HealthChecker spends checking many backends.
//
// The checker probes N distinct loopback addresses (127.1.x.y; all of 127/8 is local on Linux) on
// one port, so a single listener answers every backend. That listener runs in a forked child
// process: the parent is the control plane under test and nothing else, so getrusage(RUSAGE_SELF)
// in the parent is the checker's CPU alone (the parent runs one thread: the io_context's).
//
// With --server-netns the listener lives in another network namespace instead (routed through a
// veth pair, tools/bench/health-remote sets it up), so the kernel's half of every exchange can run
// in that pair's NAPI threads rather than in the checker's system calls, as it would with the
// backends on other hosts; --kernel-threads adds those threads' CPU to the report.
//
// Completed checks are the checker's own count of successful probes; the child cross-checks them
// from the server's side (an accepted connection for connect-mode tcp checks, a response written
// for http checks; half-open tcp checks never reach accept(), which is their point) in counters
// shared through an anonymous shared mapping. The throughput is those counts over the
// steady-state window, which starts one interval after set_targets() because first probes are
// jittered over the first interval. Checks run with rise = fall = 1, so that every failed probe
// after a success shows up as a down transition and is reported with its reason.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "controlplane/health/health_checker.h"
#include "tools/bench/bench_report.h"

namespace {

using ilb::bench::fixed;
using ilb::bench::human_bytes;
using Clock = std::chrono::steady_clock;

// Written by the server child, read by the checker parent.
struct SharedCounters {
  std::atomic<uint64_t> accepted{0};       // connections accepted
  std::atomic<uint64_t> responses{0};      // HTTP responses written in full
  std::atomic<uint64_t> accept_errors{0};  // accept() failures
  std::atomic<int> ready{0};
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// The child's HTTP side: read up to the end of the request headers, answer 200 with a body and
// close, as a small web server would; a request without "Connection: close" (--reuse) is answered
// in keep-alive and the next one read from the same connection.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(asio::ip::tcp::socket socket, SharedCounters& counters)
      : socket_(std::move(socket)), counters_(counters) {}

  void start() { read(); }

 private:
  static constexpr std::string_view kResponse =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
      "Connection: close\r\n\r\nok\n";
  static constexpr std::string_view kKeepAliveResponse =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";

  void read() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(buffer_), [self](const std::error_code& ec, size_t n) {
      if (ec) return;  // the checker gave up (timeout) or reset: nothing to answer
      self->request_.append(self->buffer_.data(), n);
      if (const size_t end = self->request_.find("\r\n\r\n"); end != std::string::npos) {
        const bool close = self->request_.find("\r\nConnection: close\r\n") < end;
        self->request_.erase(0, end + 4);
        self->respond(close);
      } else if (self->request_.size() < 16384) {
        self->read();
      }
    });
  }

  void respond(bool close) {
    auto self = shared_from_this();
    const std::string_view response = close ? kResponse : kKeepAliveResponse;
    asio::async_write(socket_, asio::buffer(response),
                      [self, close](const std::error_code& ec, size_t) {
                        if (ec) return;
                        self->counters_.responses.fetch_add(1, std::memory_order_relaxed);
                        if (!close) {
                          self->read();
                          return;
                        }
                        std::error_code ignored;
                        self->socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
                        self->socket_.close(ignored);
                      });
  }

  asio::ip::tcp::socket socket_;
  SharedCounters& counters_;
  std::array<char, 2048> buffer_{};
  std::string request_;
};

// Runs in the child until it is killed. For tcp checks it accepts and closes at once: the checker
// resets its side as soon as the connection is established.
[[noreturn]] void run_server(int listen_fd, bool http, SharedCounters& counters) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::v4(), listen_fd);
  std::function<void()> accept = [&] {
    acceptor.async_accept([&](const std::error_code& ec, asio::ip::tcp::socket socket) {
      if (ec) {
        counters.accept_errors.fetch_add(1, std::memory_order_relaxed);
      } else {
        counters.accepted.fetch_add(1, std::memory_order_relaxed);
        if (http) std::make_shared<HttpSession>(std::move(socket), counters)->start();
      }
      accept();
    });
  };
  accept();
  counters.ready.store(1, std::memory_order_release);
  io.run();
  _exit(0);
}

int open_listener(uint16_t port, uint16_t& bound_port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // A listener on one address accepts only that address: INADDR_ANY is what lets one socket
  // answer every backend address (all of 127/8 is local; a server namespace makes its range local
  // with a "local" route). Only those addresses are ever connected to.
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw std::system_error(errno, std::generic_category(), "bind port " + std::to_string(port));
  }
  if (listen(fd, 65535) != 0) throw std::system_error(errno, std::generic_category(), "listen");
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  bound_port = ntohs(addr.sin_port);
  return fd;
}

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// base + 0.0.0.1, + 0.0.0.2, ... skipping .0 and .255 in the last octet (127.1.0.1, 127.1.0.2, ...
// by default); past 254 x 256 addresses the count carries into the second octet.
uint32_t backend_address_host_order(uint32_t base, uint32_t i) {
  return base + ((i / 254) << 8) + i % 254 + 1;
}

// Opens the listener inside the network namespace /run/netns/NAME (ip netns add NAME) and comes
// back to ours: the socket stays in the namespace it was created in.
int open_listener_in(const std::string& netns, uint16_t port, uint16_t& bound_port) {
  const int ours = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  const int theirs = open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
  if (ours < 0 || theirs < 0) {
    const int err = errno;
    if (ours >= 0) close(ours);
    if (theirs >= 0) close(theirs);
    throw std::system_error(err, std::generic_category(), "open network namespace " + netns);
  }
  if (setns(theirs, CLONE_NEWNET) != 0) {
    const int err = errno;
    close(ours);
    close(theirs);
    throw std::system_error(err, std::generic_category(), "setns " + netns);
  }
  int fd = -1;
  std::string error;
  try {
    fd = open_listener(port, bound_port);
  } catch (const std::exception& e) {
    error = e.what();
  }
  const bool back = setns(ours, CLONE_NEWNET) == 0;
  close(ours);
  close(theirs);
  if (!back) throw std::system_error(errno, std::generic_category(), "setns back");
  if (fd < 0) throw std::runtime_error(error);
  return fd;
}

// CPU time of every process (kernel threads included) whose name starts with `prefix`, such as
// the NAPI threads "napi/<device>-<id>" of a veth pair in threaded mode.
ilb::bench::CpuTimes threads_cpu_times(const std::string& prefix) {
  ilb::bench::CpuTimes sum;
  if (prefix.empty()) return sum;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return sum;
  while (const dirent* e = readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    if (read_first_line(("/proc/" + std::string(e->d_name) + "/comm").c_str()).rfind(prefix, 0) !=
        0) {
      continue;
    }
    const ilb::bench::CpuTimes t = ilb::bench::pid_cpu_times(std::atoi(e->d_name));
    sum.user_s += t.user_s;
    sum.system_s += t.system_s;
  }
  closedir(proc);
  return sum;
}

// "tw" from the TCP line of /proc/net/sockstat: TIME_WAIT sockets in this network namespace.
long time_wait_sockets() {
  std::ifstream in("/proc/net/sockstat");
  std::string word;
  bool tcp = false;
  while (in >> word) {
    if (word == "TCP:") tcp = true;
    if (tcp && word == "tw") {
      long n = -1;
      in >> n;
      return n;
    }
  }
  return -1;
}

struct Snapshot {
  double wall_s = 0;
  ilb::bench::CpuTimes cpu;
  ilb::bench::CpuTimes server_cpu;
  ilb::bench::CpuTimes kernel_threads_cpu;
  uint64_t accepted = 0;
  uint64_t responses = 0;
  uint64_t probes_ok = 0;  // the checker's successful probes
  long time_wait = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ilb-bench-health: CPU cost of health-checking many backends"};
  uint32_t backends = 10000;
  std::string interval_text = "1s";
  std::string timeout_text = "1s";
  std::string duration_text = "20s";
  std::string type = "tcp";
  uint16_t port = 0;
  std::string json_path;
  app.add_option("--backends", backends, "backends to check (addresses from --address-base)")
      ->check(CLI::Range(1u, 1000000u));
  std::string address_base_text = "127.1.0.0";
  app.add_option("--address-base", address_base_text,
                 "backends are this address + 1, + 2, ... (skipping .0 and .255)");
  std::string server_netns;
  app.add_option("--server-netns", server_netns,
                 "run the server in this network namespace (/run/netns/NAME), not on loopback");
  std::string kernel_threads;
  app.add_option("--kernel-threads", kernel_threads,
                 "also report the CPU of threads whose name starts with this (e.g. napi/ilbhb)");
  app.add_option("--interval", interval_text, "check interval (e.g. 1s, 500ms)");
  app.add_option("--timeout", timeout_text, "probe timeout");
  app.add_option("--type", type, "check type")->check(CLI::IsMember({"tcp", "http"}));
  std::string tcp_mode = "syn";
  app.add_option("--tcp-mode", tcp_mode, "tcp checks: half-open (syn) or connect-and-reset")
      ->check(CLI::IsMember({"syn", "connect"}));
  bool reuse = false;
  app.add_flag("--reuse", reuse, "http checks: keep connections open between checks");
  app.add_option("--duration", duration_text, "total run time, first interval included");
  app.add_option("--port", port, "port every backend listens on (0 = any free port)");
  app.add_option("--json", json_path, "also write the result as JSON to this file");
  CLI11_PARSE(app, argc, argv);

  uint64_t interval_ms = 0;
  uint64_t timeout_ms = 0;
  uint64_t duration_ms = 0;
  try {
    interval_ms = ilb::bench::parse_duration_ms(interval_text);
    timeout_ms = ilb::bench::parse_duration_ms(timeout_text);
    duration_ms = ilb::bench::parse_duration_ms(duration_text);
  } catch (const std::exception& e) {
    std::cerr << "ilb-bench-health: " << e.what() << "\n";
    return 2;
  }
  if (interval_ms == 0 || timeout_ms == 0 || interval_ms > UINT32_MAX || timeout_ms > UINT32_MAX) {
    std::cerr << "ilb-bench-health: interval and timeout must be positive\n";
    return 2;
  }
  // The window must hold at least one full interval after the warm-up interval.
  if (duration_ms < 2 * interval_ms) {
    std::cerr << "ilb-bench-health: --duration must be at least two intervals\n";
    return 2;
  }
  in_addr base_addr{};
  if (inet_pton(AF_INET, address_base_text.c_str(), &base_addr) != 1 ||
      (ntohl(base_addr.s_addr) & 0xff) != 0) {
    std::cerr << "ilb-bench-health: --address-base must be an IPv4 address ending in .0, got "
              << address_base_text << "\n";
    return 2;
  }
  const uint32_t address_base = ntohl(base_addr.s_addr);
  if ((address_base >> 24) != 127 && backends > 254 * 256) {
    std::cerr << "ilb-bench-health: outside 127/8 at most " << 254 * 256
              << " backends (one /16 of --address-base)\n";
    return 2;
  }
  const bool http = type == "http";
  const ilb::bench::MachineInfo machine = ilb::bench::machine_info();

  // Every probe in flight is a socket in the checker, and every connection not yet closed is one
  // in the server child: raise the soft limit to the hard one for both (the child inherits it).
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  const rlim_t nofile_before = nofile.rlim_cur;
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  getrlimit(RLIMIT_NOFILE, &nofile);
  const rlim_t nofile_after = nofile.rlim_cur;

  uint16_t bound_port = 0;
  int listen_fd = -1;
  try {
    listen_fd = server_netns.empty() ? open_listener(port, bound_port)
                                     : open_listener_in(server_netns, port, bound_port);
  } catch (const std::exception& e) {
    std::cerr << "ilb-bench-health: " << e.what() << "\n";
    return 1;
  }

  void* shared = mmap(nullptr, sizeof(SharedCounters), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  auto* counters = new (shared) SharedCounters();

  // Fork before the parent creates any asio object or thread.
  std::cout << std::flush;
  const pid_t server_pid = fork();
  if (server_pid < 0) {
    std::perror("fork");
    return 1;
  }
  if (server_pid == 0) run_server(listen_fd, http, *counters);
  close(listen_fd);

  const auto ready_deadline = Clock::now() + std::chrono::seconds(10);
  while (counters->ready.load(std::memory_order_acquire) == 0) {
    if (Clock::now() > ready_deadline || waitpid(server_pid, nullptr, WNOHANG) != 0) {
      std::cerr << "ilb-bench-health: the server process did not start\n";
      kill(server_pid, SIGKILL);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  ilb::cp::HealthCheckConfig check;
  check.type = http ? ilb::cp::CheckType::kHttp : ilb::cp::CheckType::kTcp;
  check.tcp_mode = tcp_mode == "syn" ? ilb::cp::TcpMode::kSyn : ilb::cp::TcpMode::kConnect;
  check.interval_ms = static_cast<uint32_t>(interval_ms);
  check.timeout_ms = static_cast<uint32_t>(timeout_ms);
  check.rise = 1;
  check.fall = 1;
  check.path = "/health";
  check.reuse_connection = http && reuse;
  std::vector<ilb::cp::CheckTarget> targets(backends);
  for (uint32_t i = 0; i < backends; ++i) {
    targets[i].key = i + 1;
    targets[i].service = "bench";
    targets[i].address = htonl(backend_address_host_order(address_base, i));
    targets[i].port = bound_port;
    targets[i].check = check;
  }

  asio::io_context io;
  uint64_t to_up = 0;
  uint64_t to_down = 0;
  uint64_t down_in_window = 0;
  bool in_window = false;
  std::map<std::string, uint64_t> down_reasons;
  ilb::cp::HealthChecker checker(io, [&](const ilb::cp::HealthEvent& event) {
    if (event.to == ilb::abi::Health::kUp && event.from != ilb::abi::Health::kUp) ++to_up;
    if (event.to == ilb::abi::Health::kDown && event.from != ilb::abi::Health::kDown) {
      ++to_down;
      if (in_window) ++down_in_window;
      ++down_reasons[event.reason];
    }
  });

  auto snapshot = [&] {
    Snapshot s;
    s.wall_s = ilb::bench::now_seconds();
    s.cpu = ilb::bench::process_cpu_times();
    s.server_cpu = ilb::bench::pid_cpu_times(server_pid);
    s.kernel_threads_cpu = threads_cpu_times(kernel_threads);
    s.accepted = counters->accepted.load(std::memory_order_relaxed);
    s.responses = counters->responses.load(std::memory_order_relaxed);
    s.probes_ok = checker.probes_completed() - checker.probes_failed();
    s.time_wait = time_wait_sockets();
    return s;
  };

  std::cerr << "ilb-bench-health: " << backends << " " << type << " backends every " << interval_ms
            << " ms for " << duration_ms << " ms (server pid " << server_pid << ", port "
            << bound_port << ")\n";
  const long time_wait_before = time_wait_sockets();
  const double setup_t0 = ilb::bench::now_seconds();
  checker.set_targets(targets);
  const double set_targets_s = ilb::bench::now_seconds() - setup_t0;
  const auto start = Clock::now();

  // A 100 ms ticker measures how late the loop serves timers: a loop that keeps up serves them
  // within a millisecond or so; one that is saturated falls behind by whole intervals.
  constexpr auto kTick = std::chrono::milliseconds(100);
  asio::steady_timer ticker(io);
  double lag_max_ms = 0;
  double lag_sum_ms = 0;
  uint64_t lag_samples = 0;
  std::function<void(Clock::time_point)> tick = [&](Clock::time_point due) {
    ticker.expires_at(due);
    ticker.async_wait([&, due](const std::error_code& ec) {
      if (ec) return;
      const double lag = std::chrono::duration<double, std::milli>(Clock::now() - due).count();
      if (in_window) {
        lag_max_ms = std::max(lag_max_ms, lag);
        lag_sum_ms += lag;
        ++lag_samples;
      }
      tick(due + kTick);
    });
  };
  tick(start + kTick);

  Snapshot begin;
  Snapshot end;
  uint64_t up_at_end = 0;
  bool server_alive_at_end = false;
  asio::steady_timer window_start(io);
  asio::steady_timer window_end(io);
  window_start.expires_at(start + std::chrono::milliseconds(interval_ms));
  window_start.async_wait([&](const std::error_code&) {
    begin = snapshot();
    in_window = true;
  });
  window_end.expires_at(start + std::chrono::milliseconds(duration_ms));
  window_end.async_wait([&](const std::error_code&) {
    end = snapshot();
    in_window = false;
    server_alive_at_end = waitpid(server_pid, nullptr, WNOHANG) == 0;
    for (const auto& t : targets) {
      if (checker.health(t.key) == ilb::abi::Health::kUp) ++up_at_end;
    }
    checker.stop();
    ticker.cancel();
    io.stop();
  });
  io.run();

  const uint64_t rss = ilb::bench::rss_kib();
  const uint64_t peak_rss = ilb::bench::peak_rss_kib();
  kill(server_pid, SIGTERM);
  int status = 0;
  waitpid(server_pid, &status, 0);
  const uint64_t accept_errors = counters->accept_errors.load();

  const double window_s = end.wall_s - begin.wall_s;
  const uint64_t completed = end.probes_ok - begin.probes_ok;
  const uint64_t server_seen =
      http ? end.responses - begin.responses : end.accepted - begin.accepted;
  const std::string kind =
      http ? (reuse ? "http (connections kept)" : "http") : "tcp (" + tcp_mode + ")";
  const double checks_per_s = static_cast<double>(completed) / window_s;
  const double expected_per_s = static_cast<double>(backends) * 1000.0 / interval_ms;
  const double cpu_user = end.cpu.user_s - begin.cpu.user_s;
  const double cpu_sys = end.cpu.system_s - begin.cpu.system_s;
  const double cpu_percent = 100.0 * (cpu_user + cpu_sys) / window_s;
  const double cpu_per_1000 = cpu_percent * 1000.0 / backends;
  const double server_cpu_percent =
      100.0 * (end.server_cpu.total() - begin.server_cpu.total()) / window_s;
  const double kernel_threads_percent =
      100.0 * (end.kernel_threads_cpu.total() - begin.kernel_threads_cpu.total()) / window_s;
  const std::string where = server_netns.empty() ? "loopback" : "network namespace " + server_netns;
  const double cpu_us_per_check = completed > 0 ? 1e6 * (cpu_user + cpu_sys) / completed : 0;
  const double lag_mean_ms = lag_samples > 0 ? lag_sum_ms / lag_samples : 0;
  const uint64_t not_up = backends - up_at_end;

  std::cout << "ilb-bench-health: " << backends << " " << kind << " backends, interval "
            << interval_ms << " ms, timeout " << timeout_ms << " ms, run " << duration_ms << " ms\n"
            << "machine: " << ilb::bench::machine_line(machine) << "\n";
  std::vector<std::pair<std::string, std::string>> rows = {
      {"Throughput (steady-state window)", ""},
      {"window", fixed(window_s, 2) + " s (from one interval after set_targets)"},
      {"checks completed", std::to_string(completed) + " (successful probes)"},
      {"seen by the server",
       std::to_string(server_seen) + (http ? " HTTP responses" : " accepted connections")},
      {"checks/s", fixed(checks_per_s, 0) + " of " + fixed(expected_per_s, 0) + " expected (" +
                       fixed(100.0 * checks_per_s / expected_per_s, 1) + " %)"},
      {"Checker process (parent, one thread)", ""},
      {"CPU, % of one core", fixed(cpu_percent, 2) + " % (user " +
                                 fixed(100 * cpu_user / window_s, 2) + " %, system " +
                                 fixed(100 * cpu_sys / window_s, 2) + " %)"},
      {"CPU per 1,000 backends", fixed(cpu_per_1000, 3) + " % of one core"},
      {"CPU per check", fixed(cpu_us_per_check, 1) + " us"},
      {"timer lateness, mean / max", fixed(lag_mean_ms, 2) + " / " + fixed(lag_max_ms, 2) + " ms"},
      {"set_targets(" + std::to_string(backends) + ")", ilb::bench::human_seconds(set_targets_s)},
      {"RSS at end / peak", human_bytes(rss * 1024) + " / " + human_bytes(peak_rss * 1024)},
      {"RLIMIT_NOFILE soft", std::to_string(nofile_before) + " -> " + std::to_string(nofile_after)},
      {"Health", ""},
      {"not up at end", std::to_string(not_up) + " of " + std::to_string(backends)},
      {"transitions to up / down (whole run)",
       std::to_string(to_up) + " / " + std::to_string(to_down)},
      {"transitions to down in window", std::to_string(down_in_window)},
  };
  for (const auto& [reason, count] : down_reasons) {
    rows.emplace_back("  down: " + reason, std::to_string(count));
  }
  rows.insert(
      rows.end(),
      {
          {"Server child (not the checker)", ""},
          {"where", where + ", backends from " + address_base_text},
          {"CPU, % of one core", fixed(server_cpu_percent, 1) + " %"},
          {"still running at the end", server_alive_at_end ? "yes" : "NO (checks failed)"},
          {"accept errors", std::to_string(accept_errors)},
          {"Kernel threads " + (kernel_threads.empty() ? "(not measured)" : kernel_threads + "*"),
           kernel_threads.empty() ? "" : fixed(kernel_threads_percent, 2) + " % of one core"},
          {"Kernel (the checker's network namespace)", ""},
          {"TIME_WAIT sockets before / window start / end",
           std::to_string(time_wait_before) + " / " + std::to_string(begin.time_wait) + " / " +
               std::to_string(end.time_wait)},
          {"ip_local_port_range", read_first_line("/proc/sys/net/ipv4/ip_local_port_range")},
          {"tcp_max_tw_buckets", read_first_line("/proc/sys/net/ipv4/tcp_max_tw_buckets")},
      });
  ilb::bench::print_table(rows);

  nlohmann::json reasons = nlohmann::json::object();
  for (const auto& [reason, count] : down_reasons) reasons[reason] = count;
  nlohmann::json doc = {
      {"benchmark", "health"},
      {"machine", ilb::bench::to_json(machine)},
      {"params",
       {{"backends", backends},
        {"type", type},
        {"tcp_mode", http ? "" : tcp_mode},
        {"reuse_connection", http && reuse},
        {"interval_ms", interval_ms},
        {"timeout_ms", timeout_ms},
        {"duration_ms", duration_ms},
        {"port", bound_port},
        {"server", where},
        {"address_base", address_base_text},
        {"kernel_threads", kernel_threads},
        {"rise", check.rise},
        {"fall", check.fall}}},
      {"results",
       {{"window_s", window_s},
        {"checks_completed", completed},
        {"server_seen", server_seen},
        {"checks_per_s", checks_per_s},
        {"expected_checks_per_s", expected_per_s},
        {"cpu_user_s", cpu_user},
        {"cpu_system_s", cpu_sys},
        {"cpu_percent_of_one_core", cpu_percent},
        {"cpu_percent_per_1000_backends", cpu_per_1000},
        {"cpu_us_per_check", cpu_us_per_check},
        {"timer_lag_mean_ms", lag_mean_ms},
        {"timer_lag_max_ms", lag_max_ms},
        {"set_targets_s", set_targets_s},
        {"rss_kib", rss},
        {"peak_rss_kib", peak_rss},
        {"nofile_soft_before", nofile_before},
        {"nofile_soft_after", nofile_after},
        {"not_up_at_end", not_up},
        {"transitions_to_up", to_up},
        {"transitions_to_down", to_down},
        {"transitions_to_down_in_window", down_in_window},
        {"down_reasons", reasons},
        {"server_cpu_percent_of_one_core", server_cpu_percent},
        {"server_accept_errors", accept_errors},
        {"kernel_threads_cpu_percent_of_one_core",
         kernel_threads.empty() ? nlohmann::json(nullptr) : nlohmann::json(kernel_threads_percent)},
        {"server_alive_at_end", server_alive_at_end},
        {"time_wait_before", time_wait_before},
        {"time_wait_window_start", begin.time_wait},
        {"time_wait_end", end.time_wait}}},
  };
  ilb::bench::emit_json(doc, json_path);
  munmap(shared, sizeof(SharedCounters));
  return 0;
}

#include "controlplane/process/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>

extern char** environ;

namespace ilb::cp {

namespace {

// How often the exit is polled on a kernel without pidfd_open (before Linux 5.3).
constexpr std::chrono::milliseconds kExitPollInterval{20};
// Reads of the pipe once the command has exited: 16 reads of 4 KiB empty a full 64 KiB pipe.
constexpr int kFinalReads = 16;
constexpr size_t kMaxReasonLine = 120;

// The first non-empty line of `output`, with control characters replaced, cut to 120 bytes.
std::string first_line(std::string_view output) {
  while (!output.empty()) {
    const size_t end = output.find('\n');
    std::string_view line = output.substr(0, end);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (!line.empty()) {
      std::string out;
      for (char c : line.substr(0, kMaxReasonLine)) {
        const auto u = static_cast<unsigned char>(c);
        out += (u < ' ' || u == 0x7f) ? '?' : c;
      }
      if (line.size() > kMaxReasonLine) out += "...";
      return out;
    }
    if (end == std::string_view::npos) break;
    output.remove_prefix(end + 1);
  }
  return {};
}

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

// posix_spawn's attribute and file-action objects, destroyed on every path out of spawn().
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

}  // namespace

std::string ChildResult::describe() const {
  switch (end) {
    case End::kExited: {
      std::string text = "exit " + std::to_string(code);
      if (code != 0) {
        const std::string line = first_line(output);
        if (!line.empty()) text += ": " + line;
      }
      return text;
    }
    case End::kSignaled:
      return "signal " + std::to_string(code);
    case End::kTimedOut:
      return "killed after " + std::to_string(timeout.count()) + " ms timeout";
    case End::kSpawnFailed:
      return "spawn: " + output;
  }
  return "unknown end";
}

ChildProcess::ChildProcess(asio::io_context& io, std::chrono::milliseconds timeout, Done done)
    : io_(io),
      timer_(io),
      poll_timer_(io),
      exit_fd_(io),
      output_fd_(io),
      timeout_(timeout),
      started_(std::chrono::steady_clock::now()),
      done_(std::move(done)) {}

// Normally the command has been reaped by now. It has not if the io_context was destroyed while
// the command still ran (or was dying after cancel()): kill it and wait, so no zombie is left.
ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    kill_group();
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

std::shared_ptr<ChildProcess> ChildProcess::start(asio::io_context& io,
                                                  const std::vector<std::string>& argv,
                                                  const Env& extra_env,
                                                  std::chrono::milliseconds timeout, Done done) {
  auto child = std::make_shared<ChildProcess>(io, timeout, std::move(done));
  child->spawn(argv, extra_env);
  return child;
}

void ChildProcess::spawn(const std::vector<std::string>& argv, const Env& extra_env) {
  if (argv.empty() || argv[0].empty()) {
    fail_spawn(EINVAL, "empty command");
    return;
  }
  if (argv[0][0] != '/') {
    fail_spawn(EINVAL, "'" + argv[0] + "' is not an absolute path");
    return;
  }

  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string_view name = entry.substr(0, entry.find('='));
    const bool overridden = std::any_of(extra_env.begin(), extra_env.end(),
                                        [name](const auto& kv) { return kv.first == name; });
    if (!overridden) env.emplace_back(entry);
  }
  for (const auto& [name, value] : extra_env) env.push_back(name + "=" + value);

  std::vector<char*> argv_ptrs;
  for (const auto& a : argv) argv_ptrs.push_back(const_cast<char*>(a.c_str()));
  argv_ptrs.push_back(nullptr);
  std::vector<char*> env_ptrs;
  for (auto& e : env) env_ptrs.push_back(e.data());
  env_ptrs.push_back(nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    const int error = errno;
    fail_spawn(error, std::strerror(error));
    return;
  }

  // The child's stdout and stderr both go to the pipe's write end; dup2 clears close-on-exec on
  // the copies, and the originals close at exec. Stdin is /dev/null, opened after the dup2s in
  // case the pipe itself got descriptor 0. Signals the control plane ignores or blocks (SIGPIPE)
  // are back to their defaults in the child.
  SpawnSetup setup;
  posix_spawn_file_actions_adddup2(&setup.actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&setup.actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&setup.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // Descriptors some library opened without close-on-exec do not leak into the command either.
  posix_spawn_file_actions_addclosefrom_np(&setup.actions, STDERR_FILENO + 1);
  sigset_t no_signals;
  sigset_t all_signals;
  sigemptyset(&no_signals);
  sigfillset(&all_signals);
  posix_spawnattr_setflags(&setup.attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&setup.attr, 0);
  posix_spawnattr_setsigmask(&setup.attr, &no_signals);
  posix_spawnattr_setsigdefault(&setup.attr, &all_signals);

  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0].c_str(), &setup.actions, &setup.attr, argv_ptrs.data(),
                               env_ptrs.data());
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    fail_spawn(rc, std::strerror(rc));
    return;
  }
  pid_ = pid;
  started_ = std::chrono::steady_clock::now();

  std::error_code ignored;
  output_fd_.assign(fds[0], ignored);
  output_fd_.non_blocking(true, ignored);
  read_output();

  const int pidfd = pidfd_open(pid_);
  if (pidfd >= 0) {
    exit_fd_.assign(pidfd, ignored);
    watch_exit();
  } else {
    poll_exit();
  }

  auto self = shared_from_this();
  timer_.expires_after(timeout_);
  timer_.async_wait([self](const std::error_code& ec) {
    if (ec || self->finished_ || self->reaped_) return;
    // A command that exited just now is reported as exited, not as timed out: its exit
    // handler is already on its way.
    if (self->try_reap()) return;
    self->timed_out_ = true;
    self->kill_group();
  });
}

void ChildProcess::fail_spawn(int error, std::string message) {
  auto self = shared_from_this();
  asio::post(io_, [self, error, message = std::move(message)] {
    if (self->finished_) return;
    self->finished_ = true;
    ChildResult result;
    result.end = ChildResult::End::kSpawnFailed;
    result.code = error;
    result.output = message;
    result.timeout = self->timeout_;
    if (Done done = std::exchange(self->done_, nullptr)) done(result);
  });
}

void ChildProcess::watch_exit() {
  auto self = shared_from_this();
  exit_fd_.async_wait(asio::posix::stream_descriptor::wait_read, [self](const std::error_code& ec) {
    if (ec) return;
    if (!self->try_reap()) {
      self->watch_exit();
      return;
    }
    self->finish();
  });
}

void ChildProcess::poll_exit() {
  auto self = shared_from_this();
  poll_timer_.expires_after(kExitPollInterval);
  poll_timer_.async_wait([self](const std::error_code& ec) {
    if (ec) return;
    if (!self->try_reap()) {
      self->poll_exit();
      return;
    }
    self->finish();
  });
}

void ChildProcess::read_output() {
  auto self = shared_from_this();
  output_fd_.async_read_some(asio::buffer(buffer_), [self](const std::error_code& ec, size_t n) {
    if (!self->output_fd_.is_open()) return;
    if (ec) {
      // End of file (every writer has closed the pipe) or a read error: either way no more
      // output will be collected.
      std::error_code ignored;
      self->output_fd_.close(ignored);
      return;
    }
    self->keep_output(self->buffer_.data(), n);
    self->read_output();
  });
}

void ChildProcess::keep_output(const char* data, size_t n) {
  const size_t room = kMaxOutput - std::min(kMaxOutput, output_.size());
  output_.append(data, std::min(room, n));
}

// Everything the command wrote before it exited is in the pipe now; read it without waiting
// for the pipe's end, which a background process of the command may hold open.
void ChildProcess::drain_output_now() {
  if (!output_fd_.is_open()) return;
  for (int i = 0; i < kFinalReads; ++i) {
    std::error_code ec;
    const size_t n = output_fd_.read_some(asio::buffer(buffer_), ec);
    if (ec) break;
    keep_output(buffer_.data(), n);
  }
}

bool ChildProcess::try_reap() {
  if (reaped_) return true;
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    reaped_ = true;
    wait_status_ = status;
  } else if (r < 0) {
    // ECHILD: the child is gone without us (SIGCHLD set to SIG_IGN somewhere). Its status is
    // lost; it is reported as exit -1.
    reaped_ = true;
    wait_status_ = -1;
  }
  return reaped_;
}

// The whole process group, and the command itself in case it moved to a group of its own.
void ChildProcess::kill_group() {
  if (pid_ <= 0 || reaped_) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
}

void ChildProcess::finish() {
  if (finished_) {
    close_all();  // cancelled earlier: the command has been reaped now, nothing to report
    return;
  }
  finished_ = true;
  drain_output_now();
  ChildResult result;
  result.timeout = timeout_;
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started_);
  result.output = std::move(output_);
  if (timed_out_) {
    result.end = ChildResult::End::kTimedOut;
    result.code = SIGKILL;
  } else if (wait_status_ == -1) {
    result.end = ChildResult::End::kExited;
    result.code = -1;
  } else if (WIFSIGNALED(wait_status_)) {
    result.end = ChildResult::End::kSignaled;
    result.code = WTERMSIG(wait_status_);
  } else {
    result.end = ChildResult::End::kExited;
    result.code = WEXITSTATUS(wait_status_);
  }
  close_all();
  if (Done done = std::exchange(done_, nullptr)) done(result);
}

void ChildProcess::cancel() {
  const bool was_finished = std::exchange(finished_, true);
  done_ = nullptr;
  if (!was_finished) kill_group();
  try_reap();
  close_all();
}

// Closes what is no longer needed. The exit watch stays until the command has been reaped, so a
// cancelled command that takes a moment to die is still reaped by its handler.
void ChildProcess::close_all() {
  std::error_code ignored;
  timer_.cancel();
  output_fd_.close(ignored);
  if (reaped_ || pid_ <= 0) {
    poll_timer_.cancel();
    exit_fd_.close(ignored);
  }
}

}  // namespace ilb::cp

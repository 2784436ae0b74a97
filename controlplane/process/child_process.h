// A command run by the control plane (an exec health check, a state-change hook) as an
// asynchronous child on the control plane's io_context, so that a slow or hanging command never
// blocks the event loop.
//
// The child is started with posix_spawn (no shell, argv[0] an absolute path) in a process group of
// its own, so that a timeout or cancel() can SIGKILL everything the command started, not just the
// command itself. Its exit is awaited through a pidfd (pidfd_open), which turns readable when the
// child exits, and only that one child is reaped (waitpid on its pid): the control plane installs
// no SIGCHLD handler and never calls waitpid(-1), since other code owns children of its own.
//
// Stdout and stderr share one pipe. The first 4 KiB are kept for the log; the rest is read and
// discarded so a chatty command never blocks on a full pipe. Once the command itself has exited,
// whatever it wrote is already in the pipe, so the result does not wait for the pipe's end: a
// process the command left running in the background (and which still holds the pipe) does not
// hold up the result. Such a process is left alone after a normal exit; only a timeout or cancel()
// kills the whole group.
//
// Like the probes, a ChildProcess is used from the io_context's one thread only.
#pragma once

#include <sys/types.h>

#include <array>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ilb::cp {

struct ChildResult {
  enum class End {
    kExited,      // the command exited; `code` is its exit status
    kSignaled,    // a signal killed it; `code` is the signal number
    kTimedOut,    // it ran past its timeout and its process group was killed; `code` = SIGKILL
    kSpawnFailed  // it never ran; `code` is the errno, `output` the error message
  };

  End end = End::kSpawnFailed;
  int code = 0;
  std::string output;  // the first 4 KiB of stdout and stderr together
  std::chrono::milliseconds elapsed{0};
  std::chrono::milliseconds timeout{0};  // the limit the command ran under

  bool succeeded() const { return end == End::kExited && code == 0; }

  // "exit 0", "exit 2: <first output line>", "killed after 1000 ms timeout", "signal 9",
  // "spawn: No such file or directory".
  std::string describe() const;
};

class ChildProcess : public std::enable_shared_from_this<ChildProcess> {
 public:
  using Done = std::function<void(const ChildResult&)>;
  using Env = std::vector<std::pair<std::string, std::string>>;

  // Most bytes of output kept in ChildResult::output.
  static constexpr size_t kMaxOutput = 4096;

  // Starts `argv` with the parent's environment plus `extra_env` (which overrides variables of the
  // same name), stdin from /dev/null. `done` is called exactly once, from a handler on `io`, never
  // from inside start(), unless cancel() is called first. A spawn failure is reported through
  // `done` as kSpawnFailed, not thrown. The child object keeps itself alive until the command has
  // been reaped, so the caller may drop the returned pointer at any time.
  static std::shared_ptr<ChildProcess> start(asio::io_context& io,
                                             const std::vector<std::string>& argv,
                                             const Env& extra_env,
                                             std::chrono::milliseconds timeout, Done done);

  // Kills the command's process group and reaps the command (at once if it is already dead, else
  // as soon as it dies); `done` is not called. Safe to call more than once and after `done`.
  void cancel();

  // The command's pid (also its process group id); -1 if it never started.
  pid_t pid() const { return pid_; }

  ChildProcess(asio::io_context& io, std::chrono::milliseconds timeout, Done done);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

 private:
  void spawn(const std::vector<std::string>& argv, const Env& extra_env);
  void fail_spawn(int error, std::string message);
  void watch_exit();
  void poll_exit();
  void read_output();
  void keep_output(const char* data, size_t n);
  void drain_output_now();
  bool try_reap();
  void kill_group();
  void finish();
  void close_all();

  asio::io_context& io_;
  asio::steady_timer timer_;
  asio::steady_timer poll_timer_;  // used only when pidfd_open is unavailable
  asio::posix::stream_descriptor exit_fd_;
  asio::posix::stream_descriptor output_fd_;
  std::chrono::milliseconds timeout_;
  std::chrono::steady_clock::time_point started_;
  Done done_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  bool timed_out_ = false;
  bool finished_ = false;  // the result was reported, or cancel() was called
  int wait_status_ = 0;
  std::string output_;
  std::array<char, 4096> buffer_{};
};

}  // namespace ilb::cp

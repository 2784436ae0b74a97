// Exec check: a site's own command decides whether a backend is up. The command runs as a child
// of the control plane (see ChildProcess: no shell, own process group, killed with everything it
// started at the timeout), with the backend described in its environment; exit status 0 means up.
// The reason carries the exit status and the first line the command printed, so a failing check
// says why in the log.
#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "controlplane/health/probe.h"
#include "controlplane/process/child_process.h"

namespace ilb::cp {

class ExecProbe final : public Probe {
 public:
  // `command[0]` is an absolute path. `env` is added to the control plane's environment.
  ExecProbe(asio::io_context& io, std::vector<std::string> command,
            std::vector<std::pair<std::string, std::string>> env,
            std::chrono::milliseconds timeout);
  ~ExecProbe() override;

  void start(Done done) override;
  // Kills the command and its process group; `done` is not called.
  void cancel() override;

 private:
  asio::io_context& io_;
  std::vector<std::string> command_;
  std::vector<std::pair<std::string, std::string>> env_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<ChildProcess> child_;
};

}  // namespace ilb::cp

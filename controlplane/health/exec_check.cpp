#include "controlplane/health/exec_check.h"

namespace ilb::cp {

ExecProbe::ExecProbe(asio::io_context& io, std::vector<std::string> command,
                     std::vector<std::pair<std::string, std::string>> env,
                     std::chrono::milliseconds timeout)
    : io_(io), command_(std::move(command)), env_(std::move(env)), timeout_(timeout) {}

// The child keeps itself alive until it is reaped, and its callback holds no pointer to the
// probe, so a probe dropped mid-run still reports through `done` (the Probe contract); only
// cancel() stops it.
ExecProbe::~ExecProbe() = default;

void ExecProbe::start(Done done) {
  child_ = ChildProcess::start(io_, command_, env_, timeout_,
                               [done = std::move(done)](const ChildResult& result) {
                                 done(ProbeResult{result.succeeded(), result.describe()});
                               });
}

void ExecProbe::cancel() {
  if (child_) child_->cancel();
}

}  // namespace ilb::cp

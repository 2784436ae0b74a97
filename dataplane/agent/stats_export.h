// The dataplane's `stat` region: created (or re-initialised) at start with a new boot id, written
// only by the main lcore, which sums the workers' private counters into it on a short timer.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/abi/ilb_abi.h"
#include "dataplane/abi/shm_region.h"

namespace ilb::dp {

struct WorkerContext;
class ActiveConfig;

class StatsExport {
 public:
  bool init(const std::string& instance, uint32_t workers, uint64_t conn_capacity,
            std::string& error);

  abi::StatHeader& header() { return *region_.at<abi::StatHeader>(0); }

  // Main-lcore heartbeat (every loop iteration).
  void beat(uint64_t now_ns);
  // Sums per-worker counters and port statistics into the region.
  void export_counters(const std::vector<WorkerContext*>& workers, const ActiveConfig* cfg,
                       const std::string& port_name, uint16_t port_id);
  // Marks the dataplane as stopped for readers (heartbeat 0).
  void stopped();
  // Takes the port's link state from kernel interface `iface` (see kernel_interface()) instead
  // of from its driver.
  void watch_kernel_link(std::string iface) { kernel_iface_ = std::move(iface); }

 private:
  // The port's link state into `out`, logging every change.
  void export_link(abi::PortStats& out, const std::string& port_name, uint16_t port_id);

  abi::ShmRegion region_;
  std::string kernel_iface_;
  abi::Link last_known_ = abi::Link::kUnknown;  // last up or down seen: changes are counted from it
  uint32_t kernel_speed_mbps_ = 0;              // read when the kernel interface's link comes up
  bool kernel_full_duplex_ = false;
  uint64_t link_changes_ = 0;
  // A worker's heartbeat is derived here, off the hot path: the time its loop counter was last
  // seen moving.
  std::vector<uint64_t> last_loops_;
  std::vector<uint64_t> last_moved_ns_;
};

uint64_t monotonic_ns();

}  // namespace ilb::dp

// The dataplane's `stat` region: created (or re-initialised) at start with a new boot id, written
// only by the main lcore, which sums the workers' private counters into it on a short timer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/abi/ilb_abi.h"
#include "dataplane/abi/shm_region.h"

namespace ilb::dp {

struct WorkerContext;
class ActiveConfig;

class StatsExport {
 public:
  // A port to export, under the operator's `name`: the sum of its DPDK devices' statistics
  // (one, or one per queue: port_devices()). With `kernel_iface` set (see kernel_interface()),
  // its link state is the kernel interface's instead of its first device's.
  struct PortSpec {
    std::string name;
    std::vector<uint16_t> port_ids;
    std::string kernel_iface;
  };
  // Creates the region; `ports` (at most abi::kMaxPorts) take its PortStats slots in order.
  bool init(const std::string& instance, uint32_t workers, uint64_t conn_capacity,
            const std::vector<PortSpec>& ports, std::string& error);

  abi::StatHeader& header() { return *region_.at<abi::StatHeader>(0); }

  // Main-lcore heartbeat (every loop iteration).
  void beat(uint64_t now_ns);
  // Sums per-worker counters and port statistics into the region.
  void export_counters(const std::vector<WorkerContext*>& workers, const ActiveConfig* cfg);
  // Marks the dataplane as stopped for readers (heartbeat 0).
  void stopped();

 private:
  struct Port {
    PortSpec spec;
    abi::Link last_known = abi::Link::kUnknown;  // last up or down seen: changes count from it
    uint32_t kernel_speed_mbps = 0;              // read when the kernel interface's link comes up
    bool kernel_full_duplex = false;
    uint64_t link_changes = 0;
  };
  // The port's link state into `out`, logging every change.
  static void export_link(abi::PortStats& out, Port& port);

  abi::ShmRegion region_;
  std::vector<Port> ports_;
  // A worker's heartbeat is derived here, off the hot path: the time its loop counter was last
  // seen moving.
  std::vector<uint64_t> last_loops_;
  std::vector<uint64_t> last_moved_ns_;
};

uint64_t monotonic_ns();

}  // namespace ilb::dp

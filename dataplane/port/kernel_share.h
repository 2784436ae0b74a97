// A net_af_xdp port that the host's kernel shares (port key `share_with_kernel`): instead of the
// driver's default XDP program, which hands every frame of the queue to ilb, the port runs
// ilb_share.bpf.c, which hands ilb only the frames for its own addresses (IPv4 to them, ARP about
// them) and passes everything else to the kernel: the host keeps its own address, SSH and
// monitoring on the same NIC. The addresses live in the program's `ilb_addrs` map, which the main
// lcore keeps equal to ShareSet: the ports' addresses, the SNAT addresses, the VIPs in force and,
// for a while, the VIPs that left the config.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ilb::dp {

// The addresses a shared port's program hands to ilb. A VIP that leaves the config lingers for the
// longest timeout of its services: its connections, cut with their service, are reset by ilb at
// their next packet (or the sweep's probe's answer), which must therefore still reach ilb rather
// than the kernel; none of them outlives that timeout.
class ShareSet {
 public:
  explicit ShareSet(std::vector<uint32_t> fixed) : fixed_(std::move(fixed)) {}
  // The VIPs in force from `now_ns` on, each with the longest timeout of its services (seconds).
  void set_vips(uint64_t now_ns, const std::vector<std::pair<uint32_t, uint32_t>>& vips);
  // The addresses at `now_ns`, sorted and unique.
  std::vector<uint32_t> at(uint64_t now_ns) const;

 private:
  std::vector<uint32_t> fixed_;
  std::map<uint32_t, uint32_t> current_;  // VIP -> linger seconds
  std::map<uint32_t, uint64_t> leaving_;  // VIP -> until (ns)
};

class KernelShare {
 public:
  KernelShare() = default;
  ~KernelShare();
  KernelShare(const KernelShare&) = delete;
  KernelShare& operator=(const KernelShare&) = delete;

  // Detaches an ilb_share program that a dataplane which did not stop cleanly (killed, crashed)
  // left on interface `iface`: the driver would refuse to attach over it. Returns false with
  // `error` set only when one is there and cannot be removed; `removed` says whether one was.
  static bool remove_leftover(const std::string& iface, bool& removed, std::string& error);

  // Finds the `ilb_addrs` map of the program attached to interface `iface` (after the port
  // started). False with `error` set when the interface runs no such program.
  bool attach(const std::string& iface, std::string& error);
  // Uses map `fd` (a hash of IPv4 addresses, as the program's) instead, owning it: for tests.
  void use_map(int fd, std::string iface);
  // Makes the map hold exactly `addresses` (network order, sorted). Main lcore; false with
  // `error` set when the kernel refuses an update (the map is then left as complete as it could
  // be made: additions before removals).
  bool sync(const std::vector<uint32_t>& addresses, std::string& error);

  const std::string& iface() const { return iface_; }

 private:
  std::string iface_;
  int map_fd_ = -1;
};

// The path of the compiled program (ilb_share.bpf.o), installed beside the ilb-dataplane
// executable.
std::string kernel_share_program_path();

}  // namespace ilb::dp

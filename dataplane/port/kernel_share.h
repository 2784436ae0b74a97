// A net_af_xdp port that the host's kernel shares (port key `share_with_kernel`): instead of the
// driver's default XDP program, which hands every frame of the queue to ilb, the port runs
// ilb_share.bpf.c, which hands ilb only the frames for its own addresses (IPv4 to them, ARP about
// them) and passes everything else to the kernel: the host keeps its own address, SSH and
// monitoring on the same NIC. The addresses live in the program's `ilb_addrs` map, which the main
// lcore keeps equal to ilb's addresses: the ports', the SNAT addresses and the VIPs in force.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ilb::dp {

class KernelShare {
 public:
  KernelShare() = default;
  ~KernelShare();
  KernelShare(const KernelShare&) = delete;
  KernelShare& operator=(const KernelShare&) = delete;

  // Finds the `ilb_addrs` map of the program attached to interface `iface` (after the port
  // started). False with `error` set when the interface runs no such program.
  bool attach(const std::string& iface, std::string& error);
  // Makes the map hold exactly `addresses` (network order). Main lcore; false with `error` set
  // when the kernel refuses an update (the map is then left as complete as it could be made:
  // additions before removals).
  bool sync(std::vector<uint32_t> addresses, std::string& error);

  const std::string& iface() const { return iface_; }

 private:
  std::string iface_;
  int map_fd_ = -1;
};

// The path of the compiled program (ilb_share.bpf.o), installed beside the ilb-dataplane
// executable.
std::string kernel_share_program_path();

}  // namespace ilb::dp

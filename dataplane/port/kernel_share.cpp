#include "dataplane/port/kernel_share.h"

#include <bpf/bpf.h>
#include <linux/limits.h>
#include <net/if.h>
#include <unistd.h>
#include <xdp/libxdp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ilb::dp {
namespace {

constexpr const char* kMapName = "ilb_addrs";

// The fd of the map named kMapName among program `prog_fd`'s maps, or -1.
int find_map(int prog_fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0 || info.nr_map_ids == 0) return -1;
  std::vector<uint32_t> ids(info.nr_map_ids);
  const uint32_t n = info.nr_map_ids;
  info = bpf_prog_info{};
  info.nr_map_ids = n;
  info.map_ids = reinterpret_cast<uint64_t>(ids.data());
  len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return -1;
  for (uint32_t i = 0; i < std::min(n, info.nr_map_ids); ++i) {
    const int fd = bpf_map_get_fd_by_id(ids[i]);
    if (fd < 0) continue;
    bpf_map_info map{};
    uint32_t map_len = sizeof(map);
    if (bpf_obj_get_info_by_fd(fd, &map, &map_len) == 0 &&
        std::strncmp(map.name, kMapName, sizeof(map.name)) == 0) {
      return fd;
    }
    close(fd);
  }
  return -1;
}

}  // namespace

KernelShare::~KernelShare() {
  if (map_fd_ >= 0) close(map_fd_);
}

bool KernelShare::attach(const std::string& iface, std::string& error) {
  iface_ = iface;
  const unsigned ifindex = if_nametoindex(iface.c_str());
  if (ifindex == 0) {
    error = "interface " + iface + ": " + std::strerror(errno);
    return false;
  }
  xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(static_cast<int>(ifindex));
  if (libxdp_get_error(mp) != 0 || mp == nullptr) {
    error = "interface " + iface + ": no XDP program attached";
    return false;
  }
  // libxdp runs the program through its dispatcher where the kernel allows it (the program is
  // then one of the dispatcher's), else on its own (legacy mode: the main program).
  if (xdp_multiprog__is_legacy(mp)) {
    if (xdp_program* p = xdp_multiprog__main_prog(mp)) map_fd_ = find_map(xdp_program__fd(p));
  } else {
    for (xdp_program* p = xdp_multiprog__next_prog(nullptr, mp); p != nullptr && map_fd_ < 0;
         p = xdp_multiprog__next_prog(p, mp)) {
      map_fd_ = find_map(xdp_program__fd(p));
    }
  }
  xdp_multiprog__close(mp);
  if (map_fd_ < 0) {
    error = "interface " + iface + ": its XDP program has no map " + kMapName +
            " (another program than ilb's is attached)";
    return false;
  }
  return true;
}

bool KernelShare::sync(std::vector<uint32_t> addresses, std::string& error) {
  std::sort(addresses.begin(), addresses.end());
  const uint8_t one = 1;
  bool ok = true;
  for (const uint32_t a : addresses) {
    if (bpf_map_update_elem(map_fd_, &a, &one, BPF_ANY) != 0) {
      error = "interface " + iface_ + ": adding an address to " + kMapName + ": " +
              std::strerror(errno);
      ok = false;
    }
  }
  // Removals: every key not wanted. The next key is taken before deleting the current one.
  std::vector<uint32_t> stale;
  uint32_t key = 0;
  uint32_t next = 0;
  const uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(map_fd_, prev, &next) == 0) {
    if (!std::binary_search(addresses.begin(), addresses.end(), next)) stale.push_back(next);
    key = next;
    prev = &key;
  }
  for (const uint32_t a : stale) {
    if (bpf_map_delete_elem(map_fd_, &a) != 0 && errno != ENOENT) {
      error = "interface " + iface_ + ": removing an address from " + kMapName + ": " +
              std::strerror(errno);
      ok = false;
    }
  }
  return ok;
}

std::string kernel_share_program_path() {
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "ilb_share.bpf.o";
  std::string dir(exe, static_cast<size_t>(n));
  dir.resize(dir.rfind('/') + 1);
  return dir + "ilb_share.bpf.o";
}

}  // namespace ilb::dp

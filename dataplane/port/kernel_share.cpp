#include "dataplane/port/kernel_share.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/limits.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ilb::dp {
namespace {

constexpr const char* kProgName = "ilb_share";
constexpr const char* kMapName = "ilb_addrs";

// The program attached to `ifindex` and the attach flag of its mode, or id 0.
struct Attached {
  uint32_t id = 0;
  uint32_t mode_flag = 0;
};
Attached attached(int ifindex) {
  bpf_xdp_query_opts opts{};
  opts.sz = sizeof(opts);
  if (bpf_xdp_query(ifindex, 0, &opts) != 0) return {};
  if (opts.drv_prog_id != 0) return {opts.drv_prog_id, XDP_FLAGS_DRV_MODE};
  if (opts.skb_prog_id != 0) return {opts.skb_prog_id, XDP_FLAGS_SKB_MODE};
  if (opts.hw_prog_id != 0) return {opts.hw_prog_id, XDP_FLAGS_HW_MODE};
  return {};
}

// Program `prog_fd`'s name.
std::string prog_name(int prog_fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return "";
  return std::string(info.name, strnlen(info.name, sizeof(info.name)));
}

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

void ShareSet::set_vips(uint64_t now_ns, const std::vector<std::pair<uint32_t, uint32_t>>& vips) {
  std::map<uint32_t, uint32_t> next(vips.begin(), vips.end());
  for (const auto& [vip, linger_s] : vips) next[vip] = std::max(next[vip], linger_s);
  for (const auto& [vip, linger_s] : current_) {
    if (next.count(vip) == 0) leaving_[vip] = now_ns + uint64_t{linger_s} * 1'000'000'000;
  }
  for (const auto& entry : next) leaving_.erase(entry.first);
  current_ = std::move(next);
}

std::vector<uint32_t> ShareSet::at(uint64_t now_ns) const {
  std::vector<uint32_t> out = fixed_;
  for (const auto& entry : current_) out.push_back(entry.first);
  for (const auto& [vip, until] : leaving_) {
    if (until > now_ns) out.push_back(vip);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

KernelShare::~KernelShare() {
  if (map_fd_ >= 0) close(map_fd_);
}

bool KernelShare::remove_leftover(const std::string& iface, bool& removed, std::string& error) {
  removed = false;
  const unsigned ifindex = if_nametoindex(iface.c_str());
  if (ifindex == 0) return true;  // the driver says what is wrong with the interface
  const Attached prog = attached(static_cast<int>(ifindex));
  if (prog.id == 0) return true;
  const int fd = bpf_prog_get_fd_by_id(prog.id);
  if (fd < 0) return true;
  const bool ours = prog_name(fd) == kProgName;
  close(fd);
  if (!ours) return true;  // another program: the driver refuses it with its own message
  if (bpf_xdp_detach(static_cast<int>(ifindex), prog.mode_flag, nullptr) != 0) {
    error = "interface " + iface + ": cannot remove the " + kProgName +
            " program a previous run left: " + std::strerror(errno);
    return false;
  }
  removed = true;
  return true;
}

bool KernelShare::attach(const std::string& iface, std::string& error) {
  iface_ = iface;
  const unsigned ifindex = if_nametoindex(iface.c_str());
  if (ifindex == 0) {
    error = "interface " + iface + ": " + std::strerror(errno);
    return false;
  }
  const Attached prog = attached(static_cast<int>(ifindex));
  const int fd = prog.id == 0 ? -1 : bpf_prog_get_fd_by_id(prog.id);
  if (fd < 0) {
    error = "interface " + iface + ": no XDP program attached";
    return false;
  }
  map_fd_ = find_map(fd);
  close(fd);
  if (map_fd_ < 0) {
    error = "interface " + iface + ": its XDP program has no map " + kMapName +
            " (another program than ilb's is attached)";
    return false;
  }
  return true;
}

void KernelShare::use_map(int fd, std::string iface) {
  if (map_fd_ >= 0) close(map_fd_);
  map_fd_ = fd;
  iface_ = std::move(iface);
}

bool KernelShare::sync(const std::vector<uint32_t>& addresses, std::string& error) {
  const uint8_t one = 1;
  bool ok = true;
  for (const uint32_t a : addresses) {
    if (bpf_map_update_elem(map_fd_, &a, &one, BPF_ANY) != 0) {
      error = "interface " + iface_ + ": adding an address to " + kMapName + ": " +
              std::strerror(errno);
      ok = false;
    }
  }
  // Removals: every key not wanted, collected first (deleting while iterating may restart it).
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

#include "controlplane/publish/stat_reader.h"

#include <sys/stat.h>
#include <time.h>

#include <limits>

namespace ilb::cp {

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

StatReader::StatReader(std::string instance) : name_(abi::stat_shm_name(instance)) {}

bool StatReader::refresh() {
  // Linux backs POSIX shared memory with files in /dev/shm, which lets us notice a replaced object
  // (a restarted dataplane that unlinked and recreated it) without mapping it again every time.
  struct stat st {};
  if (::stat(("/dev/shm" + name_).c_str(), &st) != 0) {
    region_.unmap();
    valid_ = false;
    last_problem_ = name_ + " does not exist";
    return false;
  }
  if (!region_.mapped() || st.st_dev != dev_ || st.st_ino != ino_ ||
      static_cast<uint64_t>(st.st_size) != region_.size()) {
    std::string error;
    if (!region_.map(name_, abi::ShmRegion::Mode::kReadOnly, 0, error)) {
      valid_ = false;
      last_problem_ = error;
      return false;
    }
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
  valid_ = validate(last_problem_);
  return valid_;
}

bool StatReader::validate(std::string& why) const {
  if (region_.size() < sizeof(abi::StatHeader)) {
    why = "region smaller than its header";
    return false;
  }
  const auto& h = header();
  const auto& c = h.common;
  if (c.magic != abi::kStatMagic || c.abi_major != abi::kAbiMajor ||
      c.header_size != sizeof(abi::StatHeader) || c.sizeof_a != sizeof(abi::LcoreStats) ||
      c.sizeof_b != sizeof(abi::PortStats) || c.sizeof_c != sizeof(abi::ServiceStats) ||
      c.sizeof_d != sizeof(abi::BackendStats)) {
    why = "not an initialised stat region of ABI " + std::to_string(abi::kAbiMajor);
    return false;
  }
  auto fits = [&](uint64_t offset, uint64_t bytes) {
    return offset % 64 == 0 && offset >= sizeof(abi::StatHeader) && offset <= region_.size() &&
           bytes <= region_.size() - offset;
  };
  if (!fits(h.lcore_offset, uint64_t{abi::kMaxLcores} * sizeof(abi::LcoreStats)) ||
      !fits(h.port_offset, uint64_t{abi::kMaxPorts} * sizeof(abi::PortStats)) ||
      !fits(h.service_offset, uint64_t{abi::kMaxServices} * sizeof(abi::ServiceStats)) ||
      !fits(h.backend_offset, uint64_t{abi::kMaxBackends} * sizeof(abi::BackendStats))) {
    why = "stat section offsets out of bounds";
    return false;
  }
  why.clear();
  return true;
}

const abi::LcoreStats& StatReader::lcore(uint32_t i) const {
  return region_.at<const abi::LcoreStats>(header().lcore_offset)[i % abi::kMaxLcores];
}
const abi::PortStats& StatReader::port(uint32_t i) const {
  return region_.at<const abi::PortStats>(header().port_offset)[i % abi::kMaxPorts];
}
const abi::ServiceStats& StatReader::service(uint32_t i) const {
  return region_.at<const abi::ServiceStats>(header().service_offset)[i % abi::kMaxServices];
}
const abi::BackendStats& StatReader::backend(uint32_t id) const {
  return region_.at<const abi::BackendStats>(header().backend_offset)[id % abi::kMaxBackends];
}

const abi::ServiceStats* StatReader::find_service(uint32_t vip, uint16_t port,
                                                  abi::Protocol proto) const {
  for (uint32_t i = 0; i < abi::kMaxServices; ++i) {
    const auto& s = service(i);
    if (s.valid != 0 && s.vip == vip && s.port == port &&
        s.protocol == static_cast<uint8_t>(proto)) {
      return &s;
    }
  }
  return nullptr;
}

uint64_t StatReader::heartbeat_age_ms() const {
  const uint64_t hb = heartbeat_ns();
  if (!valid_ || hb == 0) return std::numeric_limits<uint64_t>::max();
  const uint64_t now = monotonic_ns();
  return now > hb ? (now - hb) / 1'000'000 : 0;
}

}  // namespace ilb::cp

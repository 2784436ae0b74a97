#include "controlplane/publish/publisher.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>

#include "controlplane/publish/slot_codec.h"

namespace ilb::cp {

namespace {

constexpr uint64_t kSlot0Offset = abi::align_up(sizeof(abi::CtlHeader), 4096);

uint64_t random_boot_id() {
  std::random_device rd;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t{rd()} << 32) ^ rd();
  return id;
}

bool header_matches_abi(const abi::CtlHeader& h, uint64_t mapped) {
  const auto& c = h.common;
  return c.magic == abi::kCtlMagic && c.abi_major == abi::kAbiMajor &&
         c.header_size == sizeof(abi::CtlHeader) && c.region_size == mapped &&
         mapped == abi::ctl_region_bytes() && c.sizeof_a == sizeof(abi::SlotHeader) &&
         c.sizeof_b == sizeof(abi::ServiceRecord) && c.sizeof_c == sizeof(abi::BackendRecord) &&
         c.sizeof_d == sizeof(uint32_t) && h.slot_offset[0] == kSlot0Offset &&
         h.slot_offset[1] == kSlot0Offset + abi::slot_bytes() && h.slot_size == abi::slot_bytes();
}

}  // namespace

Publisher::Publisher(std::string instance)
    : name_(abi::ctl_shm_name(instance)), stat_(std::move(instance)) {}

Publisher::~Publisher() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void Publisher::open() {
  if (lock_fd_ >= 0) throw std::logic_error("Publisher::open called twice");
  int fd = shm_open(name_.c_str(), O_RDWR | O_CREAT, 0600);
  if (fd < 0) throw std::runtime_error("shm_open " + name_ + ": " + std::strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      throw std::runtime_error("another ilb-controlplane is running for " + name_);
    }
    throw std::runtime_error("flock " + name_ + ": " + std::strerror(err));
  }
  lock_fd_ = fd;

  std::string error;
  if (!ctl_.map(name_, abi::ShmRegion::Mode::kCreate, abi::ctl_region_bytes(), error)) {
    throw std::runtime_error(error);
  }
  auto* h = header();
  boot_id_ = random_boot_id();
  if (header_matches_abi(*h, ctl_.size())) {
    reused_ = true;
    published_gen_ = h->published_gen.load(std::memory_order_acquire);
    h->common.boot_id = boot_id_;
    h->common.writer_pid = static_cast<uint32_t>(getpid());
    h->common.abi_minor = abi::kAbiMinor;
    return;
  }

  // A new object, or one of another ABI that no compatible dataplane can be using: lay it out
  // from scratch and write the magic last, so a reader never sees a valid magic over a
  // half-written header.
  reused_ = false;
  published_gen_ = 0;
  h->common.magic = 0;
  std::atomic_thread_fence(std::memory_order_release);
  std::memset(static_cast<void*>(ctl_.data()), 0, kSlot0Offset);
  for (int i = 0; i < 2; ++i) {
    std::memset(ctl_.data() + kSlot0Offset + i * abi::slot_bytes(), 0, sizeof(abi::SlotHeader));
  }
  h->common.abi_major = abi::kAbiMajor;
  h->common.abi_minor = abi::kAbiMinor;
  h->common.header_size = sizeof(abi::CtlHeader);
  h->common.boot_id = boot_id_;
  h->common.region_size = ctl_.size();
  h->common.sizeof_a = sizeof(abi::SlotHeader);
  h->common.sizeof_b = sizeof(abi::ServiceRecord);
  h->common.sizeof_c = sizeof(abi::BackendRecord);
  h->common.sizeof_d = sizeof(uint32_t);
  h->common.writer_pid = static_cast<uint32_t>(getpid());
  h->slot_offset[0] = kSlot0Offset;
  h->slot_offset[1] = kSlot0Offset + abi::slot_bytes();
  h->slot_size = abi::slot_bytes();
  h->published_gen.store(0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  h->common.magic = abi::kCtlMagic;
}

std::optional<Snapshot> Publisher::recover() const {
  if (!reused_ || published_gen_ == 0) return std::nullopt;
  const auto* h = header();
  const uint8_t* slot = ctl_.data() + h->slot_offset[published_gen_ & 1];
  const auto* sh = reinterpret_cast<const abi::SlotHeader*>(slot);
  if (sh->generation.load(std::memory_order_acquire) != published_gen_) return std::nullopt;
  Snapshot s;
  std::string error;
  if (!decode_slot(slot, h->slot_size, s, error)) return std::nullopt;
  return s;
}

bool Publisher::slot_free(uint64_t g) {
  if (!stat_.refresh()) return true;  // no dataplane (or none of this ABI) can be reading
  const uint64_t acked = stat_.acked_gen();
  // An ack above what this region ever published belongs to an earlier life of the ctl object
  // (it was re-created): it proves nothing about the slots of this one.
  if (acked <= published_gen_ && acked + 1 >= g) return true;
  const uint64_t hb = stat_.heartbeat_ns();
  const uint64_t now = monotonic_ns();
  if (hb == 0 || (now > hb && now - hb > kStaleHeartbeatNs)) return true;
  pending_reason_ = "waiting for the dataplane to acknowledge generation " + std::to_string(g - 1) +
                    " (acked " + std::to_string(acked) + ")";
  return false;
}

PublishResult Publisher::publish(const Snapshot& s) {
  if (!ctl_.mapped()) throw std::logic_error("Publisher::publish before open");
  validate_snapshot(s);
  const uint64_t g = published_gen_ + 1;
  if (!slot_free(g)) return PublishResult::kPending;
  pending_reason_.clear();

  auto* h = header();
  uint8_t* slot = ctl_.data() + h->slot_offset[g & 1];
  auto* sh = reinterpret_cast<abi::SlotHeader*>(slot);
  // Invalidate the slot's generation before touching its payload: a reader that copied this slot
  // anyway (it stopped heartbeating, then resumed) sees the generation move and retries.
  sh->generation.store(0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  const uint64_t end = encode_slot_payload(s, slot);
  sh->generation.store(g, std::memory_order_release);
  sh->checksum = abi::fnv1a64(slot + sizeof(abi::SlotHeader), end - sizeof(abi::SlotHeader));
  h->published_gen.store(g, std::memory_order_release);
  published_gen_ = g;
  return PublishResult::kPublished;
}

void Publisher::unlink(const std::string& instance) {
  shm_unlink(abi::ctl_shm_name(instance).c_str());
}

}  // namespace ilb::cp

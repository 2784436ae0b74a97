#include "dataplane/agent/config_agent.h"

#include <rte_log.h>
#include <rte_rcu_qsbr.h>

#include <atomic>
#include <cstring>

#include "dataplane/abi/ilb_abi.h"
#include "dataplane/agent/active_config.h"
#include "dataplane/agent/stats_export.h"
#include "dataplane/worker/worker.h"

namespace ilb::dp {
namespace {

constexpr uint64_t kMapRetryNs = 100'000'000;  // look for a missing ctl region every 100 ms

}  // namespace

ConfigAgent::ConfigAgent(std::string instance, SharedState& shared, StatsExport& stats)
    : instance_(std::move(instance)), shared_(shared), stats_(stats) {}

ConfigAgent::~ConfigAgent() = default;

void ConfigAgent::shutdown() {
  ActiveConfig* old = shared_.config.exchange(nullptr, std::memory_order_acq_rel);
  if (old != nullptr) {
    if (shared_.qsbr != nullptr) rte_rcu_qsbr_synchronize(shared_.qsbr, RTE_QSBR_THRID_INVALID);
    ActiveConfig::destroy(old);
  }
}

bool ConfigAgent::map_ctl() {
  std::string error;
  abi::ShmRegion region;
  if (!region.map(abi::ctl_shm_name(instance_), abi::ShmRegion::Mode::kReadOnly, 0, error)) {
    return false;
  }
  if (region.size() < sizeof(abi::CtlHeader)) return false;
  const auto& h = *region.at<const abi::CtlHeader>(0);
  const uint64_t magic =
      std::atomic_ref<const uint64_t>(h.common.magic).load(std::memory_order_acquire);
  auto bad = [&](const std::string& why) {
    if (last_error_ != why) RTE_LOG(ERR, USER1, "ctl region: %s\n", why.c_str());
    last_error_ = why;
    return false;
  };
  if (magic != abi::kCtlMagic) return false;  // writer still initialising, or not ilb
  if (h.common.abi_major != abi::kAbiMajor) {
    return bad("ABI major " + std::to_string(h.common.abi_major) + ", this dataplane speaks " +
               std::to_string(abi::kAbiMajor));
  }
  if (h.common.sizeof_a != sizeof(abi::SlotHeader) ||
      h.common.sizeof_b != sizeof(abi::ServiceRecord) ||
      h.common.sizeof_c != sizeof(abi::BackendRecord) || h.common.sizeof_d != sizeof(uint32_t)) {
    return bad("record sizes differ from this dataplane's");
  }
  for (uint64_t off : h.slot_offset) {
    if (off < sizeof(abi::CtlHeader) || h.slot_size < sizeof(abi::SlotHeader) ||
        off > region.size() || region.size() - off < h.slot_size) {
      return bad("slot offsets outside the region");
    }
  }
  slot_offset_[0] = h.slot_offset[0];
  slot_offset_[1] = h.slot_offset[1];
  slot_size_ = h.slot_size;
  ctl_ = std::move(region);
  ctl_boot_id_ = h.common.boot_id;
  // A new writer may restart its generations: apply whatever it publishes next, and withdraw
  // acks given to the object's previous writer so they cannot vouch for this one's slots.
  acked_gen_ = 0;
  stats_.header().acked_gen.store(0, std::memory_order_release);
  RTE_LOG(INFO, USER1, "mapped %s (writer pid %u)\n", ctl_.name().c_str(), h.common.writer_pid);
  return true;
}

void ConfigAgent::reject(uint64_t gen, const std::string& why) {
  auto& sh = stats_.header();
  std::memset(sh.reject_reason, 0, sizeof(sh.reject_reason));
  std::strncpy(sh.reject_reason, why.c_str(), sizeof(sh.reject_reason) - 1);
  sh.rejected_gen.store(gen, std::memory_order_release);
  sh.acked_gen.store(gen, std::memory_order_release);
  acked_gen_ = gen;
  last_error_ = why;
  RTE_LOG(ERR, USER1, "rejected generation %lu: %s\n", static_cast<unsigned long>(gen),
          why.c_str());
}

bool ConfigAgent::poll() {
  const uint64_t now = monotonic_ns();
  if (!ctl_.mapped()) {
    if (now < next_map_attempt_ns_) return false;
    next_map_attempt_ns_ = now + kMapRetryNs;
    if (!map_ctl()) return false;
  }
  const auto& h = *ctl_.at<const abi::CtlHeader>(0);
  if (h.common.boot_id != ctl_boot_id_) {
    // A restarted control plane re-initialised the header in place: validate it again.
    ctl_.unmap();
    return false;
  }
  if (now >= next_inode_check_ns_) {
    next_inode_check_ns_ = now + kMapRetryNs;
    if (abi::ShmRegion::current_inode(ctl_.name()) != ctl_.inode()) {
      // The object was removed or re-created under its name: map the new one.
      RTE_LOG(INFO, USER1, "%s was replaced; mapping it again\n", ctl_.name().c_str());
      ctl_.unmap();
      return false;
    }
  }
  const uint64_t gen = const_cast<abi::CtlHeader&>(h).published_gen.load(std::memory_order_acquire);
  if (gen == 0 || gen == acked_gen_) return false;

  const uint64_t off = slot_offset_[gen & 1];
  const uint64_t size = slot_size_;
  auto& slot_hdr = *ctl_.at<abi::SlotHeader>(off);
  const uint64_t payload_end = std::min<uint64_t>(
      std::atomic_ref<uint64_t>(slot_hdr.payload_end).load(std::memory_order_relaxed), size);
  copy_.resize(payload_end < sizeof(abi::SlotHeader) ? sizeof(abi::SlotHeader) : payload_end);
  std::memcpy(copy_.data(), ctl_.data() + off, copy_.size());
  // Seqlock-style re-check: the fence orders the copy's reads before the second generation
  // read. If the writer moved on while we copied (it only may when our heartbeat looked stale),
  // the copy may be torn: try again on the next poll rather than reject a valid snapshot.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (slot_hdr.generation.load(std::memory_order_relaxed) != gen) return false;
  std::string error;
  OwnAddresses own;
  own.snat = shared_.snat_addresses;
  for (uint32_t i = 0; i < shared_.n_ports; ++i) own.ports.push_back(shared_.ports[i].address);
  ActiveConfig* cfg = ActiveConfig::build(copy_.data(), copy_.size(), gen, error, own);
  if (cfg == nullptr) {
    reject(gen, error);
    return false;
  }
  ActiveConfig* old = shared_.config.exchange(cfg, std::memory_order_acq_rel);
  if (old != nullptr) {
    // Every worker passes a quiescent state at the end of each poll-loop iteration; after that
    // none can still hold `old`.
    rte_rcu_qsbr_synchronize(shared_.qsbr, RTE_QSBR_THRID_INVALID);
    ActiveConfig::destroy(old);
  }
  auto& sh = stats_.header();
  sh.applied_gen.store(gen, std::memory_order_release);
  sh.acked_gen.store(gen, std::memory_order_release);
  acked_gen_ = gen;
  applied_gen_ = gen;
  last_error_.clear();
  RTE_LOG(INFO, USER1, "applied generation %lu: %u services\n", static_cast<unsigned long>(gen),
          cfg->service_count());
  return true;
}

}  // namespace ilb::dp

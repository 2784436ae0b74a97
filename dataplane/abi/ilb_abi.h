// The shared-memory contract between ilb-controlplane (writer of `ctl`), ilb-dataplane (writer of
// `stat`) and ilbctl (reader of both, through the control plane). This header is the only place the
// layout is defined. It has no DPDK dependency and is included by all three programs.
//
// Two POSIX shared-memory objects per instance:
//   /dev/shm/ilb.<instance>.ctl   desired state, written only by the control plane
//   /dev/shm/ilb.<instance>.stat  acks, heartbeats, counters, written only by the dataplane
//
// Every integer is little-endian host order (x86-64 / arm64), except IPv4 addresses, which are
// stored as uint32 in network byte order exactly as they appear on the wire, and ports, which are
// stored in host order. Offsets are from the start of the region and never pointers.
//
// ---------------------------------------------------------------------------------------------
// ctl region
//   [0, 128)                      CtlHeader
//   [slot_offset[0], +slot_size)  Slot 0: SlotHeader, then ServiceRecord[], BackendRecord[],
//   [slot_offset[1], +slot_size)  Slot 1:   then uint32 table entries (backend ids)
// A slot's payload starts right after its SlotHeader; the SlotHeader's section offsets are
// relative to the start of the slot.
//
// Publishing (control plane):
//   1. g = published_gen + 1; wait until stat.acked_gen >= g - 1 or the dataplane heartbeat is
//      stale, so slot (g & 1) is not being read.
//   2. write the full snapshot into slot (g & 1), then its generation, then its checksum.
//   3. published_gen.store(g, release).
// Applying (dataplane main lcore):
//   1. g = published_gen.load(acquire); nothing to do if g == acked_gen.
//   2. copy slot (g & 1) out and validate every count, offset and table entry (untrusted input).
//   3. re-read the slot generation: if it moved, the copy was torn and the attempt is retried.
//   4. apply or reject, then write stat.applied_gen / rejected_gen and stat.acked_gen = g
//   (release).
//
// stat region
//   [0, 768)               StatHeader
//   [lcore_offset, ...)    LcoreStats[kMaxLcores]
//   [port_offset, ...)     PortStats[kMaxPorts]
//   [service_offset, ...)  ServiceStats[kMaxServices]   indexed by service index of the applied
//                                                       snapshot; key fields identify the service
//   [backend_offset, ...)  BackendStats[kMaxBackends]   indexed by backend id
//
// Versioning: abi_major changes on any incompatible change (a reader refuses another major);
// abi_minor on additions that old readers can ignore. Each header also records the writer's
// sizeof of every record so a reader can detect a layout mismatch even with equal versions.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ilb::abi {

inline constexpr uint64_t kCtlMagic = 0x314C54432D424C49ULL;   // "ILB-CTL1" little-endian
inline constexpr uint64_t kStatMagic = 0x3154415453424C49ULL;  // "ILBSTAT1" little-endian
// Major 4: StatHeader grew to 768 bytes, its drop counters moved to its end with room for 32
// reasons (`too_big` added; further reasons are a minor change), and it counts clamped MSS
// options (mss_clamped).
// (Major 3: PortStats grew to 128 bytes, with the port's link state, bytes and receive errors.
// Major 2: ServiceRecord grew to 128 bytes, with flags (ServiceFlag) and room for more;
// StatHeader::untracked_resets and icmp_errors_translated; minor 1: StatHeader::martian_drops;
// minor 2: StatHeader::replies_limited.)
// (Major 1, minors 1-4, added BackendRecord::flags, BackendStats::resets and cut_probes, the
// hand-over and steering counters, StatHeader::tsc_hz and the wrr and wlc schedulers, all kept.)
inline constexpr uint16_t kAbiMajor = 4;
inline constexpr uint16_t kAbiMinor = 0;

// Hard limits of this ABI version. Backend ids are in [1, kMaxBackends); id 0 means "none".
inline constexpr uint32_t kMaxServices = 256;
inline constexpr uint32_t kMaxBackends = 4096;
inline constexpr uint32_t kMaxLcores = 64;
inline constexpr uint32_t kMaxPorts = 8;
inline constexpr uint32_t kMaxTableSize = 65537;
inline constexpr uint32_t kMaxTableEntries = 4u * 1024 * 1024;  // sum over services, per slot
inline constexpr uint32_t kNameLen = 32;
inline constexpr uint32_t kReasonLen = 160;

enum class Protocol : uint8_t { kTcp = 6, kUdp = 17 };
// kWrr and kWlc: minor 2. Their tables are described in controlplane/tables/wrr.h.
enum class Scheduler : uint8_t { kMaglev = 1, kSource = 2, kWrr = 3, kWlc = 4 };
enum class AdminState : uint8_t { kEnabled = 1, kDraining = 2, kDisabled = 3 };
enum class Health : uint8_t { kUnknown = 0, kUp = 1, kDown = 2 };

// Drop and exception reasons counted by the dataplane (index into drop counters).
enum class Drop : uint32_t {
  kTruncated = 0,  // frame shorter than the headers it claims
  kBadIpHeader,    // version, IHL, total length
  kBadIpChecksum,
  kBadL4Checksum,
  kFragment,    // IPv4 fragments are not reassembled
  kNotForUs,    // IPv4 to an address ilb does not own
  kNoService,   // to a VIP, but no service on that port/protocol
  kNoBackend,   // service has no eligible backend
  kNonSynMiss,  // TCP packet that is neither a SYN nor part of a tracked flow
  kConnTableFull,
  kNoSnatPort,       // SNAT port space exhausted
  kNoNeighbour,      // next hop MAC unknown (resolution requested)
  kBackendDisabled,  // flow of a backend that is disabled or gone
  kUnsupported,      // other EtherTypes, IP protocols, ICMP types
  kTxFull,           // TX queue full (or, where the driver's queue stalls then, link down)
  kNoConfig,         // no snapshot applied yet
  kTooBig,           // IPv4 datagram longer than the MTU of the port it would leave through
  kCount
};
// StatHeader::drops has room for this many reasons.
inline constexpr size_t kDropSlots = 32;
static_assert(static_cast<size_t>(Drop::kCount) <= kDropSlots);

inline constexpr const char* kDropNames[] = {
    "truncated",    "bad_ip_header", "bad_ip_checksum",  "bad_l4_checksum", "fragment",
    "not_for_us",   "no_service",    "no_backend",       "non_syn_miss",    "conn_table_full",
    "no_snat_port", "no_neighbour",  "backend_disabled", "unsupported",     "tx_full",
    "no_config",    "too_big"};
static_assert(sizeof(kDropNames) / sizeof(kDropNames[0]) == static_cast<size_t>(Drop::kCount));

// ---------------------------------------------------------------------------------------------
// Common header: bytes [0, 64) of both regions.
struct alignas(64) RegionHeader {
  uint64_t magic;        // [0, 8)    kCtlMagic or kStatMagic
  uint16_t abi_major;    // [8, 10)
  uint16_t abi_minor;    // [10, 12)
  uint32_t header_size;  // [12, 16)  sizeof(CtlHeader) or sizeof(StatHeader)
  uint64_t boot_id;      // [16, 24)  random per writer process start; never 0
  uint64_t region_size;  // [24, 32)  bytes mapped by the writer
  uint32_t sizeof_a;     // [32, 36)  ctl: sizeof(SlotHeader);    stat: sizeof(LcoreStats)
  uint32_t sizeof_b;     // [36, 40)  ctl: sizeof(ServiceRecord); stat: sizeof(PortStats)
  uint32_t sizeof_c;     // [40, 44)  ctl: sizeof(BackendRecord); stat: sizeof(ServiceStats)
  uint32_t sizeof_d;     // [44, 48)  ctl: 4 (table entry);       stat: sizeof(BackendStats)
  uint32_t writer_pid;   // [48, 52)
  uint32_t reserved0;    // [52, 56)
  uint64_t reserved1;    // [56, 64)
};
static_assert(sizeof(RegionHeader) == 64);

// ctl region header: bytes [0, 128).
struct alignas(64) CtlHeader {
  RegionHeader common;                  // [0, 64)
  std::atomic<uint64_t> published_gen;  // [64, 72)   0 = nothing published yet
  uint64_t slot_offset[2];              // [72, 88)
  uint64_t slot_size;                   // [88, 96)
  uint64_t reserved[4];                 // [96, 128)
};
static_assert(sizeof(CtlHeader) == 128);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// Slot header: first 64 bytes of a slot.
struct alignas(64) SlotHeader {
  std::atomic<uint64_t> generation;  // [0, 8)    generation whose snapshot this slot holds
  uint64_t checksum;                 // [8, 16)   fnv1a64 over [64, payload_end) of the slot
  uint32_t service_count;            // [16, 20)  <= kMaxServices
  uint32_t backend_count;            // [20, 24)  records in the backend array (ids are inside)
  uint32_t table_entries;            // [24, 28)  total uint32 entries in the table section
  uint32_t flags;                    // [28, 32)  reserved, 0
  uint64_t services_offset;          // [32, 40)  from slot start
  uint64_t backends_offset;          // [40, 48)
  uint64_t tables_offset;            // [48, 56)
  uint64_t payload_end;              // [56, 64)  from slot start; end of checksummed bytes
};
static_assert(sizeof(SlotHeader) == 64);

// One service (a VIP:port:protocol). 128 bytes.
struct ServiceRecord {
  uint32_t vip;                // [0, 4)    IPv4, network order
  uint16_t port;               // [4, 6)    host order, 1..65535
  uint8_t protocol;            // [6, 7)    Protocol
  uint8_t scheduler;           // [7, 8)    Scheduler
  uint32_t table_offset;       // [8, 12)   first entry in the table section
  uint32_t table_size;         // [12, 16)  entries; 0 = no eligible backend
  uint32_t tcp_syn_timeout_s;  // [16, 20)
  uint32_t tcp_est_timeout_s;  // [20, 24)
  uint32_t tcp_fin_timeout_s;  // [24, 28)
  uint32_t udp_timeout_s;      // [28, 32)
  char name[kNameLen];         // [32, 64)  NUL-terminated
  uint32_t flags;              // [64, 68)  ServiceFlag bits; a reader refuses unknown ones
  uint32_t reserved[15];       // [68, 128) zero
};
static_assert(sizeof(ServiceRecord) == 128);

// ServiceRecord::flags.
enum ServiceFlag : uint32_t {
  // A TCP segment to the service that is not a SYN and belongs to no tracked connection is
  // answered with a reset (RFC 9293's reply from a closed port), not only dropped.
  kServiceResetUntracked = 1u << 0,
};
inline constexpr uint32_t kKnownServiceFlags = kServiceResetUntracked;

// One backend. 32 bytes. The dataplane indexes backends by id.
struct BackendRecord {
  uint32_t id;             // [0, 4)    1..kMaxBackends-1, unique within the snapshot
  uint32_t service_index;  // [4, 8)    < service_count
  uint32_t address;        // [8, 12)   IPv4, network order
  uint16_t port;           // [12, 14)  host order
  uint8_t admin;           // [14, 15)  AdminState
  uint8_t health;          // [15, 16)  Health
  uint32_t weight;         // [16, 20)  share it is given now (slow start, agent %); 0 = none
  uint8_t flags;           // [20, 21)  BackendFlag bits (minor 1)
  uint8_t pad[3];          // [21, 24)  zero
  uint32_t reserved[2];    // [24, 32)  zero
};

// BackendRecord::flags.
enum BackendFlag : uint8_t {
  // Cut this backend's existing connections: the next packet of each gets both sides reset.
  kBackendResetFlows = 1u << 0,
};
static_assert(sizeof(BackendRecord) == 32);

// ---------------------------------------------------------------------------------------------
// stat region. Counters are written by the dataplane main lcore only (it sums per-worker counters)
// with relaxed atomic stores; readers load them relaxed. Heartbeats are CLOCK_MONOTONIC ns.
struct alignas(64) StatHeader {
  RegionHeader common;                 // [0, 64)
  std::atomic<uint64_t> acked_gen;     // [64, 72)   last generation handled (applied or rejected)
  std::atomic<uint64_t> applied_gen;   // [72, 80)   generation currently forwarding on
  std::atomic<uint64_t> rejected_gen;  // [80, 88)   last rejected generation, 0 = none
  std::atomic<uint64_t> heartbeat_ns;  // [88, 96)   main lcore heartbeat
  uint64_t lcore_offset;               // [96, 104)
  uint64_t port_offset;                // [104, 112)
  uint64_t service_offset;             // [112, 120)
  uint64_t backend_offset;             // [120, 128)
  char reject_reason[kReasonLen];      // [128, 288) NUL-terminated; valid when rejected_gen != 0
  uint32_t worker_count;               // [288, 292)
  uint32_t port_count;                 // [292, 296)
  uint64_t start_time_ns;              // [296, 304) CLOCK_REALTIME at dataplane start
  uint64_t conn_capacity;              // [304, 312) per worker
  uint64_t handoff_packets;            // [312, 320) frames handed to the owning worker
  uint64_t handoff_drops;              // [320, 328) frames dropped: owner's hand-over ring full
  uint64_t steered_conns;     // [328, 336) SNAT port chosen so replies reach the owner's queue
  uint64_t unsteered_conns;   // [336, 344) RSS known, no fitting port: replies handed over
  uint64_t tsc_hz;            // [344, 352) the workers' cycle counter frequency
  uint64_t untracked_resets;  // [352, 360) resets sent for untracked TCP (kServiceResetUntracked)
  uint64_t icmp_errors_translated;  // [360, 368) ICMP errors about a connection, sent on
  // [368, 376) frames from a sender no host can be (group source MAC; source 0/8, 127/8,
  // multicast, class E, broadcast or one of ilb's own addresses), dropped
  uint64_t martian_drops;
  // [376, 384) refusals, resets for untracked TCP, echo replies and "fragmentation needed"
  // errors not sent because the worker's reply budget (reply_rate_limit) was spent; the packets
  // they answered were dropped
  uint64_t replies_limited;
  // [384, 392) TCP SYN segments whose MSS option was lowered to fit the ports' MTU
  uint64_t mss_clamped;
  uint64_t reserved[15];       // [392, 512) zero
  uint64_t drops[kDropSlots];  // [512, 768) by Drop, summed over workers
};
static_assert(sizeof(StatHeader) == 768);
static_assert(offsetof(StatHeader, replies_limited) == 376);
static_assert(offsetof(StatHeader, mss_clamped) == 384);
static_assert(offsetof(StatHeader, drops) == 512);

struct alignas(64) LcoreStats {
  uint32_t lcore_id;      // [0, 4)
  uint32_t is_worker;     // [4, 8)
  uint64_t heartbeat_ns;  // [8, 16)
  uint64_t loops;         // [16, 24)  poll-loop iterations
  uint64_t busy_loops;    // [24, 32)  iterations that received packets
  uint64_t busy_cycles;   // [32, 40)  TSC cycles spent in non-empty iterations
  uint64_t rx_packets;    // [40, 48)
  uint64_t tx_packets;    // [48, 56)
  uint64_t active_conns;  // [56, 64)
};
static_assert(sizeof(LcoreStats) == 64);

// PortStats::link: as the port's driver reports it (rte_eth_link_get_nowait), or for net_af_xdp
// and net_af_packet, whose drivers report a fixed link, as the kernel interface has it.
enum class Link : uint8_t { kUnknown = 0, kDown = 1, kUp = 2 };

struct alignas(64) PortStats {
  char name[kNameLen];       // [0, 32)
  uint64_t rx_packets;       // [32, 40)   from rte_eth_stats
  uint64_t tx_packets;       // [40, 48)
  uint64_t rx_dropped;       // [48, 56)   imissed + rx_nombuf
  uint64_t tx_errors;        // [56, 64)   oerrors
  uint64_t rx_bytes;         // [64, 72)   (major 3)
  uint64_t tx_bytes;         // [72, 80)
  uint64_t rx_errors;        // [80, 88)   ierrors: frames the device received and found bad
  uint64_t link_changes;     // [88, 96)   times the link went down or came up since start
  uint32_t link_speed_mbps;  // [96, 100)  0 = unknown; virtual devices report a nominal figure
  uint8_t link;              // [100, 101) Link
  uint8_t link_full_duplex;  // [101, 102) 1 = full duplex
  uint8_t pad[2];            // [102, 104) zero
  uint64_t reserved[3];      // [104, 128) zero
};
static_assert(sizeof(PortStats) == 128);
static_assert(offsetof(PortStats, link) == 100);

struct alignas(64) ServiceStats {
  uint32_t vip;               // [0, 4)   identifies the service these counters belong to
  uint16_t port;              // [4, 6)
  uint8_t protocol;           // [6, 7)
  uint8_t valid;              // [7, 8)
  uint64_t new_conns;         // [8, 16)
  uint64_t packets_in;        // [16, 24) client -> backend
  uint64_t packets_out;       // [24, 32) backend -> client
  uint64_t bytes_in;          // [32, 40)
  uint64_t bytes_out;         // [40, 48)
  uint64_t no_backend_drops;  // [48, 56)
  uint64_t active_conns;      // [56, 64)
};
static_assert(sizeof(ServiceStats) == 64);

struct alignas(64) BackendStats {
  uint64_t new_conns;     // [0, 8)
  uint64_t active_conns;  // [8, 16)
  uint64_t packets_in;    // [16, 24)
  uint64_t packets_out;   // [24, 32)
  uint64_t bytes_in;      // [32, 40)
  uint64_t bytes_out;     // [40, 48)
  uint64_t resets;        // [48, 56)  connections cut with a reset to both sides (minor 1)
  uint64_t cut_probes;    // [56, 64)  ACKs sent to ask an idle cut connection's peer (minor 4)
};
static_assert(sizeof(BackendStats) == 64);

// ---------------------------------------------------------------------------------------------
// Layout helpers shared by writer and reader.
inline constexpr uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

inline constexpr uint64_t slot_bytes() {
  return align_up(sizeof(SlotHeader) + kMaxServices * sizeof(ServiceRecord) +
                      kMaxBackends * sizeof(BackendRecord) + uint64_t{kMaxTableEntries} * 4,
                  4096);
}
inline constexpr uint64_t ctl_region_bytes() {
  return align_up(sizeof(CtlHeader), 4096) + 2 * slot_bytes();
}
inline constexpr uint64_t stat_region_bytes() {
  return align_up(sizeof(StatHeader) + kMaxLcores * sizeof(LcoreStats) +
                      kMaxPorts * sizeof(PortStats) + kMaxServices * sizeof(ServiceStats) +
                      kMaxBackends * sizeof(BackendStats),
                  4096);
}

inline uint64_t fnv1a64(const void* data, size_t len) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline const char* drop_name(Drop d) {
  return kDropNames[static_cast<size_t>(d)];
}

// Shared-memory object names for an instance: "/ilb.<instance>.ctl" and "/ilb.<instance>.stat".
inline std::string ctl_shm_name(std::string_view instance) {
  return "/ilb." + std::string(instance) + ".ctl";
}
inline std::string stat_shm_name(std::string_view instance) {
  return "/ilb." + std::string(instance) + ".stat";
}

}  // namespace ilb::abi

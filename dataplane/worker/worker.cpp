#include "dataplane/worker/worker.h"
#include "dataplane/worker/expiry_pacer.h"

#include <netinet/in.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_jhash.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "dataplane/packet/packet.h"
#include "dataplane/port/rss.h"

namespace ilb::dp {
namespace {

constexpr uint16_t kBurst = 32;
// The expiry sweep: one pass over the table per second, at most 64 records per loop iteration.
constexpr uint32_t kExpireBudget = 64;
constexpr uint64_t kSweepPeriodMs = 1000;
// Probes of cut connections (sweep_step) per loop iteration at most.
constexpr uint16_t kMaxCutProbes = 16;
// Empty poll-loop iterations before an idle worker starts sleeping (with idle_sleep_us set): about
// a millisecond of polling, so a steady trickle of traffic never meets a sleeping worker.
constexpr uint32_t kIdleLoopsBeforeSleep = 10000;
constexpr uint32_t kHashSeed = 0x1b5eed;  // fixed: every ilb instance picks the same backend
constexpr uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr uint8_t kTcpSyn = RTE_TCP_SYN_FLAG;
constexpr uint8_t kTcpAck = RTE_TCP_ACK_FLAG;
constexpr uint8_t kTcpFin = RTE_TCP_FIN_FLAG;
constexpr uint8_t kTcpRst = RTE_TCP_RST_FLAG;

uint64_t timeout_of(const Conn& c) {
  switch (c.state) {
    case TcpState::kSynSent:
    case TcpState::kSynAck:
      return c.syn_timeout_s;
    case TcpState::kClosing:
    case TcpState::kTimeWait:
      return c.fin_timeout_s;
    case TcpState::kEstablished:
    case TcpState::kUdp:
      break;
  }
  return c.est_timeout_s;
}

void track_tcp(Conn& c, Dir dir, uint8_t flags) {
  // TIME_WAIT is final: a reset, or a FIN from each side, ended the connection, and it left the
  // active counts then. A late FIN must not bring it back (it would leave them a second time).
  if (c.state == TcpState::kTimeWait) return;
  if ((flags & kTcpRst) != 0) {
    c.state = TcpState::kTimeWait;
    return;
  }
  if ((flags & kTcpFin) != 0) {
    c.fin_and_sides |= dir == Dir::kFromClient ? 1 : 2;
    c.state = (c.fin_and_sides & kFinBits) == kFinBits ? TcpState::kTimeWait : TcpState::kClosing;
    return;
  }
  if (c.state == TcpState::kSynSent && dir == Dir::kFromBackend &&
      (flags & (kTcpSyn | kTcpAck)) == (kTcpSyn | kTcpAck)) {
    c.state = TcpState::kSynAck;
  } else if (c.state == TcpState::kSynAck && dir == Dir::kFromClient && (flags & kTcpAck) != 0) {
    c.state = TcpState::kEstablished;
  }
}

bool owns_address(const WorkerContext& w, const ActiveConfig& cfg, uint32_t ip) {
  const SharedState& s = *w.shared;
  for (uint32_t i = 0; i < s.n_ports; ++i) {
    if (ip == s.ports[i].address) return true;
  }
  return std::binary_search(s.snat_addresses.begin(), s.snat_addresses.end(), ip) || cfg.is_vip(ip);
}

// Addresses frame `m` to connection `c`'s client (its next hop) from the port on the client's
// side, and makes it leave through that port.
void send_to_client(const WorkerContext& w, rte_mbuf* m, const Conn& c) {
  const PortInfo& out = w.shared->ports[client_side(c)];
  pkt::set_ether(rte_pktmbuf_mtod(m, uint8_t*), c.client_mac, out.mac);
  m->port = out.port_id;
}

// The same towards `c`'s backend.
void send_to_backend(const WorkerContext& w, rte_mbuf* m, const Conn& c) {
  const PortInfo& out = w.shared->ports[backend_side(c)];
  pkt::set_ether(rte_pktmbuf_mtod(m, uint8_t*), c.backend_mac, out.mac);
  m->port = out.port_id;
}

// The port a packet of connection `c` travelling in direction `dir` leaves through.
const PortInfo& out_port(const WorkerContext& w, const Conn& c, Dir dir) {
  return w.shared->ports[dir == Dir::kFromClient ? backend_side(c) : client_side(c)];
}

// The port frame `m` came in on.
const PortInfo& in_port(const WorkerContext& w, const rte_mbuf* m) {
  return w.shared->ports[port_index_of(*w.shared, m->port)];
}

// A frame no host may send (RFC 1812 5.3.7's martians, which Linux drops before routing): from a
// group (multicast, broadcast) MAC, or from an IPv4 source no host can have — 0.0.0.0/8,
// loopback, multicast, class E, broadcast, a subnet broadcast of one of ilb's ports — or one of
// ilb's own addresses. Nothing answers one and no connection starts from one: its
// replies would go to a group, to no host, or to ilb.
bool martian(const WorkerContext& w, const ActiveConfig& cfg, const uint8_t* frame,
             uint32_t src_ip) {
  const uint32_t src = rte_be_to_cpu_32(src_ip);
  const uint32_t net = src >> 24;
  if ((frame[6] & 1) != 0 || net == 0 || net == 127 || src >= 0xe0000000) return true;
  const SharedState& s = *w.shared;
  for (uint32_t i = 0; i < s.n_ports; ++i) {
    const PortInfo& port = s.ports[i];
    const uint32_t mask = rte_be_to_cpu_32(port.netmask);
    // A /31 or /32 has no broadcast address.
    if (mask < 0xfffffffe && (src | mask) == 0xffffffff &&
        (src_ip & port.netmask) == (port.address & port.netmask)) {
      return true;
    }
  }
  return owns_address(w, cfg, src_ip);
}

bool is_snat_address(const WorkerContext& w, uint32_t ip) {
  const auto& a = w.shared->snat_addresses;
  return std::binary_search(a.begin(), a.end(), ip);
}

// A connection stops being active when it ends or when it reaches TIME_WAIT (FIN from both sides,
// or a RST): it stays in the table until its timeout so that late segments still find it, but
// it is no longer what a draining backend waits for, nor what wlc balances.
void count_inactive(WorkerContext& w, const Conn& c) {
  w.counters->backends[c.backend_id].active_conns.sub();
  w.counters->active_conns.sub();
}

// What ending a connection gives back, whether it is released or expires: its SNAT port to the
// pool, and its place in the active counters unless TIME_WAIT already took it.
void retire_conn(WorkerContext& w, const Conn& c) {
  w.snat.release(c.snat_index, c.snat_port);
  if (c.state != TcpState::kTimeWait) count_inactive(w, c);
}

// Ends a connection now: retired, and both keys out of the table.
void release_conn(WorkerContext& w, uint32_t idx) {
  retire_conn(w, w.conns.at(idx));
  w.conns.remove(idx);
}

enum class Verdict { kSend, kDrop, kNewFlow };

// Replaces the contents of single-segment `m` with `len` bytes of `data`.
bool set_frame(rte_mbuf* m, const uint8_t* data, uint32_t len) {
  const uint32_t cur = rte_pktmbuf_data_len(m);
  if (cur < len && rte_pktmbuf_append(m, static_cast<uint16_t>(len - cur)) == nullptr) return false;
  if (cur > len) rte_pktmbuf_trim(m, static_cast<uint16_t>(cur - len));
  std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), data, len);
  m->ol_flags = 0;
  return true;
}

// Cuts a TCP connection from the packet that found it cut: the sender gets a reset at the
// sequence number it acknowledged (exactly what it expects next), the other side one at the
// sender's own sequence number (what it expects next from the sender). `m` becomes the first,
// a fresh mbuf carries the second. Returns whether `m` is to be sent.
bool reset_both_sides(WorkerContext& w, rte_mbuf* m, const pkt::Parsed& p, const Conn& c, Dir dir,
                      rte_mbuf** tx, uint16_t* n_tx) {
  const pkt::TcpSeq seq = pkt::tcp_seq(rte_pktmbuf_mtod(m, const uint8_t*), p);
  const PortInfo& client_port = w.shared->ports[client_side(c)];
  const PortInfo& backend_port = w.shared->ports[backend_side(c)];
  const pkt::Endpoint client{c.client_mac, c.client_ip, c.client_port};
  const pkt::Endpoint vip{client_port.mac, c.vip, c.vport};
  const pkt::Endpoint backend{c.backend_mac, c.backend_ip, c.backend_port};
  const pkt::Endpoint snat{backend_port.mac, c.snat_ip, c.snat_port};
  const bool from_client = dir == Dir::kFromClient;
  uint8_t frame[pkt::kMinFrameLen];
  w.counters->backends[c.backend_id].resets.add();
  if (rte_mbuf* other = w.pool != nullptr ? rte_pktmbuf_alloc(w.pool) : nullptr) {
    if (from_client) {
      pkt::build_tcp_reset(frame, snat, backend, seq.seq, 0, kTcpRst);
    } else {
      pkt::build_tcp_reset(frame, vip, client, seq.seq, 0, kTcpRst);
    }
    if (set_frame(other, frame, sizeof(frame))) {
      other->port = (from_client ? backend_port : client_port).port_id;
      tx[(*n_tx)++] = other;
    } else {
      rte_pktmbuf_free(other);
    }
  }
  if ((p.tcp_flags & kTcpAck) == 0) return false;
  if (from_client) {
    pkt::build_tcp_reset(frame, vip, client, seq.ack, 0, kTcpRst);
  } else {
    pkt::build_tcp_reset(frame, snat, backend, seq.ack, 0, kTcpRst);
  }
  m->port = (from_client ? client_port : backend_port).port_id;
  return set_frame(m, frame, sizeof(frame));
}

// Whether the worker may make up one more reply of its own at `now` (see ReplyLimiter); counts
// the ones it may not.
bool may_reply(WorkerContext& w, uint64_t now) {
  if (w.replies.allow(now)) return true;
  w.counters->replies_limited.add();
  return false;
}

// Datagram `m` is longer than the MTU of the port it would leave through: it is dropped
// (too_big), and a sender that forbade fragmenting is told the MTU (RFC 1191's "fragmentation
// needed", from the address it wrote to, which is ilb's), as a router would. ilb fragments
// nothing. No error goes to a frame sent to a link-layer broadcast, or from a sender no host can
// be (RFC 1122 3.2.2). Returns whether `m` now holds that error, to be sent.
bool too_big(WorkerContext& w, const ActiveConfig& cfg, rte_mbuf* m, const pkt::Parsed& p,
             uint16_t mtu, uint64_t now) {
  w.counters->drop(abi::Drop::kTooBig);
  const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(frame + p.l3_offset);
  if ((ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG)) == 0) return false;
  if (std::memcmp(frame, kBroadcast, 6) == 0 || martian(w, cfg, frame, p.src_ip) ||
      !may_reply(w, now)) {
    return false;
  }
  uint8_t error[pkt::kMaxIcmpErrorLen];
  const uint32_t len =
      pkt::build_icmp_unreachable(error, frame, p, in_port(w, m).mac, p.dst_ip, 4, mtu);
  return set_frame(m, error, len);
}

// Lowers the MSS option of connection `c`'s SYN segments (the client's and the backend's) to
// what both of its ports carry: each end then sends segments that fit, even when its own link
// takes larger ones (jumbo frames on the hosts' side, a smaller MTU on ilb's ports).
void clamp_mss(WorkerContext& w, uint8_t* frame, const pkt::Parsed& p, const Conn& c) {
  if (p.proto != IPPROTO_TCP || (p.tcp_flags & kTcpSyn) == 0) return;
  const SharedState& s = *w.shared;
  const uint16_t mtu = std::min(s.ports[client_side(c)].mtu, s.ports[backend_side(c)].mtu);
  if (pkt::clamp_tcp_mss(frame, p, pkt::mss_for_mtu(mtu))) w.counters->mss_clamped.add();
}

// Whether `cfg` ends connection `c`: its backend was disabled or removed, or the control plane
// cut its connections (drain deadline, on_backend_down = "reset").
bool backend_cuts(const BackendEntry& be, const Conn& c) {
  return be.admin == 0 || be.admin == static_cast<uint8_t>(abi::AdminState::kDisabled) ||
         (be.flags & abi::kBackendResetFlows) != 0 || be.address != c.backend_ip;
}

// Forwards a packet of a tracked connection, or says it must be dropped or start a new flow.
Verdict forward_tracked(WorkerContext& w, const ActiveConfig& cfg, rte_mbuf* m,
                        const pkt::Parsed& p, uint32_t idx, Dir dir, uint64_t now, rte_mbuf** tx,
                        uint16_t* n_tx) {
  Conn& c = w.conns.at(idx);
  const bool client_syn = dir == Dir::kFromClient && c.proto == IPPROTO_TCP &&
                          (p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) == kTcpSyn;
  const BackendEntry& be = cfg.backend(c.backend_id);
  if (backend_cuts(be, c)) {
    // The backend was disabled or removed, or the control plane cut its connections (drain
    // deadline, on_backend_down = "reset"): its flows end here and free their resources, TCP
    // ones with a reset to both sides so that neither waits for a timeout; a client's new SYN on
    // the same tuple is scheduled afresh.
    if (client_syn) {
      release_conn(w, idx);
      return Verdict::kNewFlow;
    }
    const Conn cut = c;
    release_conn(w, idx);
    if (cut.proto == IPPROTO_TCP && (p.tcp_flags & kTcpRst) == 0 &&
        reset_both_sides(w, m, p, cut, dir, tx, n_tx)) {
      return Verdict::kSend;
    }
    w.counters->drop(abi::Drop::kBackendDisabled);
    return Verdict::kDrop;
  }
  if (c.proto == IPPROTO_UDP && dir == Dir::kFromClient &&
      be.health == static_cast<uint8_t>(abi::Health::kDown)) {
    // UDP has no connection to keep: a client of a dead backend is moved at its next datagram
    // instead of talking to it until the idle timeout (TCP flows follow the service's policy).
    release_conn(w, idx);
    return Verdict::kNewFlow;
  }
  if (client_syn && (c.state == TcpState::kClosing || c.state == TcpState::kTimeWait)) {
    // The client reuses the 4-tuple of a closed connection: a new connection, scheduled again.
    release_conn(w, idx);
    return Verdict::kNewFlow;
  }
  const uint16_t out_mtu = out_port(w, c, dir).mtu;
  if (p.ip_total_len > out_mtu) {
    return too_big(w, cfg, m, p, out_mtu, now) ? Verdict::kSend : Verdict::kDrop;
  }
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  BackendCounters& bc = w.counters->backends[c.backend_id];
  const uint32_t len = rte_pktmbuf_data_len(m);
  clamp_mss(w, frame, p, c);
  if (dir == Dir::kFromClient) {
    pkt::rewrite_l4(frame, p, c.snat_ip, c.snat_port, c.backend_ip, c.backend_port);
    send_to_backend(w, m, c);
    bc.packets_in.add();
    bc.bytes_in.add(len);
  } else {
    pkt::rewrite_l4(frame, p, c.vip, c.vport, c.client_ip, c.client_port);
    send_to_client(w, m, c);
    bc.packets_out.add();
    bc.bytes_out.add(len);
  }
  if (c.proto == IPPROTO_TCP) {
    const bool was_closed = c.state == TcpState::kTimeWait;
    track_tcp(c, dir, p.tcp_flags);
    if (!was_closed && c.state == TcpState::kTimeWait) count_inactive(w, c);
  }
  c.deadline_tsc = now + timeout_of(c) * w.shared->tsc_hz;
  return Verdict::kSend;
}

// Turns TCP segment `m` to one of our addresses (a VIP, a SNAT address) into the reset a closed
// port answers it with (RFC 9293, 3.10.7.1), back to its sender: a segment carrying an ACK gets a
// reset with that sequence number, any other one a reset acknowledging it (its payload, SYN and
// FIN), out of the port it came in on. A reset is never answered. Returns whether `m` is to be
// sent.
bool answer_with_reset(WorkerContext& w, rte_mbuf* m, const pkt::Parsed& p, uint64_t now) {
  if ((p.tcp_flags & kTcpRst) != 0) return false;
  const uint8_t* in = rte_pktmbuf_mtod(m, const uint8_t*);
  // Only to a sender that wrote to us alone (new_connection() turned martian senders away).
  if (std::memcmp(in, kBroadcast, 6) == 0) return false;
  if (!may_reply(w, now)) return false;
  uint8_t sender_mac[6];
  std::memcpy(sender_mac, in + 6, 6);
  const pkt::Endpoint us{in_port(w, m).mac, p.dst_ip, p.dst_port};
  const pkt::Endpoint sender{sender_mac, p.src_ip, p.src_port};
  const pkt::TcpSeq s = pkt::tcp_seq(in, p);
  uint8_t frame[pkt::kMinFrameLen];
  uint32_t len = 0;
  if ((p.tcp_flags & kTcpAck) != 0) {
    len = pkt::build_tcp_reset(frame, us, sender, s.ack, 0, kTcpRst);
  } else {
    len = pkt::build_tcp_reset(frame, us, sender, 0, s.seq + s.len, kTcpRst | kTcpAck);
  }
  return set_frame(m, frame, len);
}

// Turns a new flow's first packet into its refusal: a TCP SYN gets RST|ACK from the VIP, a UDP
// datagram an ICMP port unreachable. Returns whether `m` is to be sent.
bool reject(WorkerContext& w, rte_mbuf* m, const pkt::Parsed& p, uint64_t now) {
  if (p.proto == IPPROTO_TCP) return answer_with_reset(w, m, p, now);
  // No ICMP error about a datagram sent to a link-layer broadcast (RFC 1122 3.2.2).
  if (std::memcmp(rte_pktmbuf_mtod(m, const uint8_t*), kBroadcast, 6) == 0) return false;
  if (!may_reply(w, now)) return false;
  uint8_t frame[pkt::kMaxIcmpErrorLen];
  const uint32_t len = pkt::build_icmp_unreachable(frame, rte_pktmbuf_mtod(m, const uint8_t*), p,
                                                   in_port(w, m).mac, p.dst_ip, 3);
  return set_frame(m, frame, len);
}

// The service's scheduler picks a backend for a new flow from the table the control plane built:
// maglev hashes the 5-tuple, source the client address (the same client always lands on the
// same backend, on every worker and every ilb instance); wrr steps through its weighted
// sequence; wlc takes the backend with the fewest of this worker's connections per unit of
// weight (O(backends) per new connection).
uint32_t pick_backend(WorkerContext& w, const ActiveConfig& cfg, const ServiceEntry& svc,
                      uint32_t si, const pkt::Parsed& p) {
  switch (static_cast<abi::Scheduler>(svc.scheduler)) {
    case abi::Scheduler::kWrr: {
      uint32_t& cursor = w.rr_cursor[si];
      if (cursor >= svc.table_size) cursor %= svc.table_size;
      const uint32_t id = svc.table[cursor];
      cursor = cursor + 1 == svc.table_size ? 0 : cursor + 1;
      return id;
    }
    case abi::Scheduler::kWlc: {
      const uint32_t start = w.rr_cursor[si]++ % svc.table_size;
      uint32_t best = 0;
      uint64_t best_active = 0;
      uint64_t best_weight = 0;
      for (uint32_t k = 0; k < svc.table_size; ++k) {
        const uint32_t j = start + k < svc.table_size ? start + k : start + k - svc.table_size;
        const uint32_t id = svc.table[j];
        const uint64_t weight = std::max<uint32_t>(cfg.backend(id).weight, 1);
        const auto signed_active =
            static_cast<int64_t>(w.counters->backends[id].active_conns.get());
        const uint64_t active = signed_active > 0 ? static_cast<uint64_t>(signed_active) : 0;
        // active / weight < best_active / best_weight, without dividing.
        if (best == 0 || active * best_weight < best_active * weight) {
          best = id;
          best_active = active;
          best_weight = weight;
        }
      }
      return best;
    }
    case abi::Scheduler::kSource:
      return svc.table[rte_jhash_1word(p.src_ip, kHashSeed) % svc.table_size];
    case abi::Scheduler::kMaglev:
      break;
  }
  const uint32_t hash =
      rte_jhash_3words(p.src_ip, p.dst_ip, (static_cast<uint32_t>(p.src_port) << 16) | p.dst_port,
                       kHashSeed ^ p.proto);
  return svc.table[hash % svc.table_size];
}

// The RSS view to steer this new flow's replies with, or null: one worker, no RSS known, a
// protocol the NIC hashes on addresses only, a NIC whose hash turned out to differ from ours
// (checked once per port, on the first packet that carries the NIC's hash), or replies that
// arrive on another port than the client's packets (two-armed), whose hash cannot be checked
// that way: the hand-over rings take those.
const Rss* steering_rss(WorkerContext& w, const rte_mbuf* m, const pkt::Parsed& p,
                        uint32_t backend_port) {
  const SharedState& s = *w.shared;
  const uint32_t in = port_index_of(s, m->port);
  const PortInfo& port = s.ports[in];
  if (port.rss == nullptr || !(p.proto == IPPROTO_TCP ? port.rss_tcp_ports : port.rss_udp_ports)) {
    return nullptr;
  }
  // Checked even when the replies come in elsewhere: client_side_owner() relies on it too.
  int8_t& agrees = w.rss_agrees[in];
  if (agrees == 0 && (m->ol_flags & RTE_MBUF_F_RX_RSS_HASH) != 0) {
    agrees =
        port.rss->hash_v4_ports(p.src_ip, p.dst_ip, p.src_port, p.dst_port) == m->hash.rss ? 1 : -1;
  }
  return agrees < 0 || in != backend_port ? nullptr : port.rss;
}

// What new_connection() made of a flow's first packet.
enum class Opened {
  kDropped,   // counted; the caller frees the packet
  kCreated,   // a connection (`idx`) now carries it, rewritten towards the backend
  kAnswered,  // refused: the packet was turned into the reply to send back
};

// Creates a connection for the first packet of a flow to a service and sets `idx` to it, or
// refuses the packet (with the reason counted).
Opened new_connection(WorkerContext& w, const ActiveConfig& cfg, rte_mbuf* m, const pkt::Parsed& p,
                      const uint32_t* key_hash, uint64_t now, uint32_t& idx) {
  // An untracked TCP segment: answered with a reset where its service asks for one (a
  // backend's segment to a SNAT port: where the backend's service does).
  auto untracked = [&](bool reset) {
    w.counters->drop(abi::Drop::kNonSynMiss);
    if (!reset || !answer_with_reset(w, m, p, now)) return Opened::kDropped;
    w.counters->untracked_resets.add();
    return Opened::kAnswered;
  };
  const int32_t si = cfg.find_service(p.dst_ip, rte_be_to_cpu_16(p.dst_port), p.proto);
  const bool to_snat = si < 0 && p.proto == IPPROTO_TCP && is_snat_address(w, p.dst_ip);
  if (si < 0 && !to_snat) {
    w.counters->drop(cfg.is_vip(p.dst_ip) ? abi::Drop::kNoService : abi::Drop::kNotForUs);
    return Opened::kDropped;
  }
  // For us, and about to open a connection or be answered: not from a martian sender. (Frames
  // for no one of ours, such as a DHCP client's broadcast from 0.0.0.0, stay `not_for_us`.)
  const uint32_t in = port_index_of(*w.shared, m->port);
  if (martian(w, cfg, rte_pktmbuf_mtod(m, const uint8_t*), p.src_ip)) {
    w.counters->martians.add();
    return Opened::kDropped;
  }
  if (to_snat) return untracked(cfg.resets_untracked_from(p.src_ip, p.src_port));
  const ServiceEntry& svc = cfg.service(static_cast<uint32_t>(si));
  if (p.proto == IPPROTO_TCP &&
      (p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst | kTcpFin)) != kTcpSyn) {
    return untracked((svc.flags & abi::kServiceResetUntracked) != 0);
  }
  if (svc.table_size == 0) {
    // Nothing can take it: refuse it the way a host with no listener would, so the client fails
    // at once instead of retrying its SYN for seconds.
    w.counters->drop(abi::Drop::kNoBackend);
    w.counters->service_no_backend[si].add();
    return reject(w, m, p, now) ? Opened::kAnswered : Opened::kDropped;
  }
  const uint32_t backend_id = pick_backend(w, cfg, svc, static_cast<uint32_t>(si), p);
  const BackendEntry& be = cfg.backend(backend_id);

  Route to_backend;
  Conn c{};
  if (!route(*w.shared, be.address, to_backend) ||
      !w.shared->neighbours.lookup(to_backend.next_hop, c.backend_mac)) {
    if (to_backend.next_hop != 0) {
      rte_ring_sp_enqueue(w.resolve, reinterpret_cast<void*>(uintptr_t{to_backend.next_hop}));
    }
    w.counters->drop(abi::Drop::kNoNeighbour);
    return Opened::kDropped;
  }
  const uint16_t out_mtu = w.shared->ports[to_backend.port].mtu;
  if (p.ip_total_len > out_mtu) {
    return too_big(w, cfg, m, p, out_mtu, now) ? Opened::kAnswered : Opened::kDropped;
  }
  uint8_t snat_index = 0;
  const Rss* rss = steering_rss(w, m, p, to_backend.port);
  const SnatSteer steer =
      rss == nullptr ? (w.snat.alloc(c.snat_ip, c.snat_port, snat_index) ? SnatSteer::kAnyQueue
                                                                         : SnatSteer::kNoPort)
                     : w.snat.alloc_for_reply(be.address, rte_cpu_to_be_16(be.port), rss,
                                              static_cast<uint16_t>(w.index), c.snat_ip,
                                              c.snat_port, snat_index);
  if (steer == SnatSteer::kNoPort) {
    w.counters->drop(abi::Drop::kNoSnatPort);
    return Opened::kDropped;
  }
  if (rss != nullptr)
    (steer == SnatSteer::kOnQueue ? w.counters->steered : w.counters->unsteered).add();
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  c.client_ip = p.src_ip;
  c.vip = p.dst_ip;
  c.client_port = p.src_port;
  c.vport = p.dst_port;
  c.backend_ip = be.address;
  c.backend_port = rte_cpu_to_be_16(be.port);
  c.backend_id = backend_id;
  c.proto = p.proto;
  c.state = p.proto == IPPROTO_TCP ? TcpState::kSynSent : TcpState::kUdp;
  c.snat_index = snat_index;
  c.fin_and_sides = sides(in, to_backend.port);
  std::memcpy(c.client_mac, frame + 6, 6);
  c.syn_timeout_s = svc.tcp_syn_timeout_s;
  c.fin_timeout_s = svc.tcp_fin_timeout_s;
  c.est_timeout_s = p.proto == IPPROTO_TCP ? svc.tcp_est_timeout_s : svc.udp_timeout_s;
  c.deadline_tsc = now + timeout_of(c) * w.shared->tsc_hz;
  // The packet's key is the connection's client key: the lookup's hash of it, where it made one.
  const FlowKey key = client_key(c);
  const int64_t inserted = w.conns.insert(
      key, key_hash != nullptr ? *key_hash : ConnTable::hash(key), backend_key(c), c);
  if (inserted < 0) {
    w.snat.release(snat_index, c.snat_port);
    w.counters->drop(abi::Drop::kConnTableFull);
    return Opened::kDropped;
  }
  idx = static_cast<uint32_t>(inserted);
  BackendCounters& bc = w.counters->backends[backend_id];
  bc.new_conns.add();
  bc.active_conns.add();
  bc.packets_in.add();
  bc.bytes_in.add(rte_pktmbuf_data_len(m));
  w.counters->active_conns.add();
  clamp_mss(w, frame, p, c);
  pkt::rewrite_l4(frame, p, c.snat_ip, c.snat_port, c.backend_ip, c.backend_port);
  send_to_backend(w, m, c);
  return Opened::kCreated;
}

// `owner` if it is another worker this one can hand frames to, else this worker.
uint32_t reachable(const WorkerContext& w, uint32_t owner) {
  return owner < kMaxWorkers && w.handoff_to[owner] != nullptr ? owner : w.index;
}

// Puts `m` on worker `owner`'s hand-over ring; counted, and dropped when the ring is full.
void hand_to(WorkerContext& w, rte_mbuf* m, uint32_t owner) {
  if (rte_ring_sp_enqueue(w.handoff_to[owner], m) != 0) {
    w.counters->handoff_drops.add();
    rte_pktmbuf_free(m);
  } else {
    w.counters->handoff_out.add();
  }
}

// Hands `m` to the worker that owns its connection, if that is not this worker: a backend's packet
// to one of our SNAT addresses whose port is in another worker's share. Returns whether `m` was
// taken (handed over or, when the owner's ring is full, dropped).
bool hand_over(WorkerContext& w, rte_mbuf* m, const pkt::Parsed& p) {
  if (w.shared->workers <= 1 || !is_snat_address(w, p.dst_ip)) return false;
  const uint32_t owner = reachable(w, snat_port_owner(*w.shared, p.dst_port));
  if (owner == w.index) return false;
  hand_to(w, m, owner);
  return true;
}

// The worker that owns the connection a client-side ICMP error quotes (ilb's datagram VIP ->
// client): the one whose queue the client's own packets reach, where the RSS of the port the
// error came in on is known and agrees with the NIC. False where it is not: the owner could be
// any worker.
bool client_side_owner(const WorkerContext& w, const rte_mbuf* m, const pkt::IcmpQuote& q,
                       uint32_t& owner) {
  const SharedState& s = *w.shared;
  const uint32_t in = port_index_of(s, m->port);
  const PortInfo& port = s.ports[in];
  if (s.workers <= 1 || port.rss == nullptr || w.rss_agrees[in] < 0 ||
      !(q.proto == IPPROTO_TCP ? port.rss_tcp_ports : port.rss_udp_ports)) {
    return false;
  }
  owner = reachable(
      w, port.rss->queue(port.rss->hash_v4_ports(q.dst_ip, q.src_ip, q.dst_port, q.src_port)));
  return true;
}

static_assert(kMaxWorkers - 1 <= UINT8_MAX, "the round's count fits its one-byte field");

uint8_t& icmp_round(const WorkerContext& w, rte_mbuf* m) {
  return *RTE_MBUF_DYNFIELD(m, w.shared->icmp_round_offset, uint8_t*);
}

// A client-side ICMP error whose owner RSS cannot name, and whose connection this worker does not
// hold: it goes round the workers, each handing it to the next, until one holds the connection
// or every one has looked (the round's count rides in the mbuf). Returns whether `m` was taken.
bool pass_round(WorkerContext& w, rte_mbuf* m) {
  const SharedState& s = *w.shared;
  if (s.workers <= 1 || s.icmp_round_offset < 0) return false;
  // A fresh error may visit every other worker; one handed over, what its sender left it.
  const uint32_t left = w.in_handoffs ? icmp_round(w, m) : std::min(s.workers, kMaxWorkers) - 1;
  const uint32_t next = reachable(w, (w.index + 1) % s.workers);
  if (left == 0 || next == w.index) return false;
  icmp_round(w, m) = static_cast<uint8_t>(left - 1);
  hand_to(w, m, next);
  return true;
}

// An ICMP error about a datagram ilb sent on a tracked connection (fragmentation needed, which
// path-MTU discovery depends on; unreachable; time exceeded) goes on to the other side, rewritten
// as that side's own datagram having met it: a backend-side error reaches the client about its
// packet to the VIP, a client-side error reaches the backend about its packet to the SNAT address.
// The type, code and MTU are kept: ilb's rewrite changes no datagram's size. An error to one of
// our addresses from a martian sender (no router can be one) is dropped and counted as such.
// Returns whether `m` was taken (sent, handed to the worker that owns the connection, or freed
// as a martian's, or as too long for the port it would leave through).
bool forward_icmp_error(WorkerContext& w, const ActiveConfig& cfg, rte_mbuf* m,
                        const pkt::Parsed& p, rte_mbuf** tx, uint16_t* n_tx) {
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  pkt::IcmpQuote q;
  // An error goes to the quoted datagram's sender: here one of our VIPs or SNAT addresses.
  if (!pkt::parse_icmp_error(frame, p, q) || q.src_ip != p.dst_ip) return false;
  if (owns_address(w, cfg, p.dst_ip) && martian(w, cfg, frame, p.src_ip)) {
    w.counters->martians.add();
    rte_pktmbuf_free(m);
    return true;
  }
  // A backend-side error (to a SNAT address) belongs to the owner of the quoted SNAT port; a
  // client-side one to the worker RSS names, or to whichever worker holds its connection.
  const bool backend_side = is_snat_address(w, p.dst_ip);
  uint32_t owner = w.index;
  bool owner_known = true;
  if (backend_side) {
    owner = reachable(w, snat_port_owner(*w.shared, q.src_port));
  } else if (w.in_handoffs && w.shared->icmp_round_offset >= 0) {
    // Its sender chose this worker (the owner RSS named, or the next in a round): this worker
    // looks in its own table, and the round's count alone says whether another one may look.
    // (Its own view of RSS may differ: a worker learns that the NIC hashes otherwise only from
    // the packets it gets.)
    owner_known = false;
  } else {
    owner_known = client_side_owner(w, m, q, owner);
  }
  if (owner != w.index) {
    // Handed to the owner named: it looks no further.
    if (!backend_side && w.shared->icmp_round_offset >= 0) icmp_round(w, m) = 0;
    hand_to(w, m, owner);
    return true;
  }
  // The key of the connection's packets in the other direction: the quote, reversed.
  FlowKey k{};
  k.src_ip = q.dst_ip;
  k.dst_ip = q.src_ip;
  k.src_port = q.dst_port;
  k.dst_port = q.src_port;
  k.proto = q.proto;
  uint32_t idx = 0;
  Dir dir = Dir::kFromClient;
  if (!w.conns.lookup(k, idx, dir)) return !owner_known && pass_round(w, m);
  const Conn& c = w.conns.at(idx);
  // No error is sent about an error: one too long for the other side's port is dropped.
  // (`dir`: the direction of the connection's packets that travel the way the error does.)
  if (p.ip_total_len > out_port(w, c, dir).mtu) {
    w.counters->drop(abi::Drop::kTooBig);
    rte_pktmbuf_free(m);
    return true;
  }
  if (dir == Dir::kFromBackend) {
    pkt::rewrite_icmp_error(frame, p, q, c.vip, c.client_ip, c.client_ip, c.client_port, c.vip,
                            c.vport);
    send_to_client(w, m, c);
  } else {
    pkt::rewrite_icmp_error(frame, p, q, c.snat_ip, c.backend_ip, c.backend_ip, c.backend_port,
                            c.snat_ip, c.snat_port);
    send_to_backend(w, m, c);
  }
  w.counters->icmp_errors_translated.add();
  tx[(*n_tx)++] = m;
  return true;
}

}  // namespace

int register_icmp_round_field() {
  rte_mbuf_dynfield field{};
  std::snprintf(field.name, sizeof(field.name), "%s", "ilb_icmp_round");
  field.size = sizeof(uint8_t);
  field.align = alignof(uint8_t);
  return rte_mbuf_dynfield_register(&field);
}

bool route(const SharedState& s, uint32_t ip, Route& out) {
  for (uint32_t i = 0; i < s.n_ports; ++i) {
    const PortInfo& port = s.ports[i];
    if ((ip & port.netmask) == (port.address & port.netmask)) {
      out = Route{i, ip};
      return true;
    }
  }
  for (uint32_t i = 0; i < s.n_ports; ++i) {
    if (s.ports[i].gateway != 0) {
      out = Route{i, s.ports[i].gateway};
      return true;
    }
  }
  out = Route{};
  return false;
}

uint32_t snat_port_owner(const SharedState& s, uint16_t port_be) {
  const uint16_t port = rte_be_to_cpu_16(port_be);
  if (s.workers <= 1 || port < s.snat_port_min) return 0;
  return (port - s.snat_port_min) % s.workers;
}

void process_burst(WorkerContext& w, const ActiveConfig& cfg, rte_mbuf** pkts, uint16_t n,
                   rte_mbuf** tx, uint16_t* n_tx, uint64_t now) {
  while (n > kBurst) {  // the per-burst arrays below hold kBurst packets
    process_burst(w, cfg, pkts, kBurst, tx, n_tx, now);
    pkts += kBurst;
    n = static_cast<uint16_t>(n - kBurst);
  }
  pkt::Parsed parsed[kBurst];
  FlowKey keys[kBurst];
  const FlowKey* key_ptrs[kBurst] = {};
  uint16_t l4_pkt[kBurst];
  uint32_t n_l4 = 0;
  uint16_t icmp_pkt[kBurst];
  uint32_t n_icmp = 0;
  WorkerCounters& ctr = *w.counters;
  const SharedState& s = *w.shared;
  const bool verify_tcp_data = s.verify_all_l4_checksums;

  for (uint16_t i = 0; i < n; ++i) {
    if (i + 3 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 3], void*));
    rte_mbuf* m = pkts[i];
    const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
    pkt::Parsed& p = parsed[i];
    if (m->nb_segs != 1) {
      ctr.drop(abi::Drop::kUnsupported);
      rte_pktmbuf_free(m);
      pkts[i] = nullptr;
      continue;
    }
    const uint32_t len = rte_pktmbuf_data_len(m);
    const PortInfo& port = s.ports[port_index_of(s, m->port)];
    if (len >= 6 && std::memcmp(frame, port.mac, 6) != 0 &&
        std::memcmp(frame, kBroadcast, 6) != 0) {
      ctr.drop(abi::Drop::kNotForUs);
      rte_pktmbuf_free(m);
      pkts[i] = nullptr;
      continue;
    }
    pkt::ParseOptions opts;
    opts.verify_ip_checksum =
        (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) != RTE_MBUF_F_RX_IP_CKSUM_GOOD;
    opts.verify_l4_checksum =
        (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) != RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    opts.verify_tcp_data_checksum = verify_tcp_data;
    switch (pkt::parse(frame, len, p, opts)) {
      case pkt::Kind::kL4: {
        FlowKey& k = keys[n_l4];
        k = FlowKey{};
        k.src_ip = p.src_ip;
        k.dst_ip = p.dst_ip;
        k.src_port = p.src_port;
        k.dst_port = p.dst_port;
        k.proto = p.proto;
        key_ptrs[n_l4] = &k;
        l4_pkt[n_l4++] = i;
        continue;
      }
      case pkt::Kind::kArp:
        if (rte_ring_sp_enqueue(w.to_main, m) != 0) {
          ctr.drop(abi::Drop::kUnsupported);
          rte_pktmbuf_free(m);
        }
        pkts[i] = nullptr;
        continue;
      case pkt::Kind::kIcmp:
        if (p.icmp_type == RTE_IP_ICMP_ECHO_REQUEST && owns_address(w, cfg, p.dst_ip)) {
          const bool from_martian = martian(w, cfg, frame, p.src_ip);
          if (from_martian) ctr.martians.add();
          if (from_martian || !may_reply(w, now)) {
            rte_pktmbuf_free(m);
            pkts[i] = nullptr;
            continue;
          }
          pkt::make_echo_reply(rte_pktmbuf_mtod(m, uint8_t*), p, port.mac);
          tx[(*n_tx)++] = m;
        } else {
          // Possibly an error about a connection: after the burst's own packets have opened theirs.
          icmp_pkt[n_icmp++] = i;
          continue;
        }
        pkts[i] = nullptr;
        continue;
      case pkt::Kind::kDrop:
        ctr.drop(p.drop);
        rte_pktmbuf_free(m);
        pkts[i] = nullptr;
        continue;
    }
  }

  uint32_t idx[kBurst];
  Dir dir[kBurst];
  uint32_t hashes[kBurst];
  const uint64_t hits = w.conns.lookup_bulk(key_ptrs, n_l4, idx, dir, hashes);
  const uint64_t removals = w.conns.removals();
  // The records the burst's new connections will take: their first write would otherwise wait
  // for memory, one after another.
  w.conns.prefetch_free(n_l4 - static_cast<uint32_t>(__builtin_popcountll(hits)));
  // Packets of this burst that opened a connection, by position in `keys`. A later packet of the
  // same flow in the burst (a retransmitted SYN, a UDP flow's second datagram) missed the bulk
  // lookup too; it belongs to that connection, and finding it here saves a hash lookup for every
  // other new flow. The newest match is the only candidate, and only while its record still holds
  // that flow (a packet in between may have ended it, and a newer connection taken the record).
  // A reply to a connection opened in this burst (a capture replayed, frames handed over late)
  // is found through the port map, which costs no hash lookup.
  uint8_t created[kBurst];
  uint32_t n_created = 0;
  for (uint32_t j = 0; j < n_l4; ++j) {
    rte_mbuf* m = pkts[l4_pkt[j]];
    const pkt::Parsed& p = parsed[l4_pkt[j]];
    Verdict v = Verdict::kNewFlow;
    bool hit = ((hits >> j) & 1) != 0;
    if (hit && w.conns.removals() != removals) {
      // A connection ended earlier in this burst (cut, or its tuple reused by a new SYN), maybe
      // this packet's: the bulk lookup's answer may name a free record, or one a newer
      // connection took since. Looked up again, it is found only if it still exists.
      hit = w.conns.lookup(keys[j], idx[j], dir[j]);
    }
    if (hit) {
      v = forward_tracked(w, cfg, m, p, idx[j], dir[j], now, tx, n_tx);
    } else if (hand_over(w, m, p)) {
      // Another worker's SNAT port: only that worker can hold its connection.
      continue;
    } else if (n_created != 0 && w.conns.lookup_reply(keys[j], idx[j])) {
      v = forward_tracked(w, cfg, m, p, idx[j], Dir::kFromBackend, now, tx, n_tx);
    } else {
      for (uint32_t k = n_created; k-- > 0;) {
        if (std::memcmp(&keys[created[k]], &keys[j], sizeof(FlowKey)) != 0) continue;
        const uint32_t at = idx[created[k]];
        const FlowKey live = client_key(w.conns.at(at));
        if (w.conns.at(at).deadline_tsc != 0 &&
            std::memcmp(&live, &keys[j], sizeof(FlowKey)) == 0) {
          v = forward_tracked(w, cfg, m, p, at, Dir::kFromClient, now, tx, n_tx);
        }
        break;
      }
    }
    bool ok = v == Verdict::kSend;
    if (v == Verdict::kNewFlow) {
      const Opened opened = new_connection(
          w, cfg, m, p, dir[j] == Dir::kFromClient ? &hashes[j] : nullptr, now, idx[j]);
      ok = opened != Opened::kDropped;
      if (opened == Opened::kCreated) created[n_created++] = static_cast<uint8_t>(j);
    }
    if (ok) {
      tx[(*n_tx)++] = m;
    } else {
      rte_pktmbuf_free(m);
    }
  }

  for (uint32_t j = 0; j < n_icmp; ++j) {
    rte_mbuf* m = pkts[icmp_pkt[j]];
    if (!forward_icmp_error(w, cfg, m, parsed[icmp_pkt[j]], tx, n_tx)) {
      ctr.drop(abi::Drop::kUnsupported);
      rte_pktmbuf_free(m);
    }
  }
}

void expire_step(WorkerContext& w, uint64_t now, uint32_t budget) {
  w.conns.expire(now, budget, [&w](const Conn& c) { retire_conn(w, c); });
}

namespace {

// A cut TCP connection that has gone quiet would otherwise hold its backend's server-side
// session until the client next sends (a pooled database connection can sit idle for hours),
// and a reset needs the sequence number each side expects, which ilb does not keep. So ilb asks:
// a bare ACK with a sequence number far from the receiver's window, which TCP answers with an
// ACK of its own carrying both of its sequence numbers (RFC 793's answer to an unacceptable
// segment, RFC 5961's challenge ACK). That answer meets the cut connection in forward_tracked(),
// which resets both sides exactly. The backend is asked while it is still there and up; else the
// client. A sequence number that happens to fall inside the window (odds of window / 2^32) gets
// no answer, and the next pass over the table asks again with another.
bool probe_cut_connection(WorkerContext& w, const BackendEntry& be, const Conn& c, uint64_t now,
                          rte_mbuf** tx, uint16_t* n_tx) {
  const bool ask_backend = be.admin != 0 && be.address == c.backend_ip &&
                           be.health != static_cast<uint8_t>(abi::Health::kDown);
  rte_mbuf* m = rte_pktmbuf_alloc(w.pool);
  if (m == nullptr) return false;
  const PortInfo& out = w.shared->ports[ask_backend ? backend_side(c) : client_side(c)];
  const auto seq = static_cast<uint32_t>(now ^ (now >> 32) ^ (uint64_t{c.snat_port} << 16));
  uint8_t frame[pkt::kMinFrameLen];
  if (ask_backend) {
    pkt::build_tcp_reset(frame, {out.mac, c.snat_ip, c.snat_port},
                         {c.backend_mac, c.backend_ip, c.backend_port}, seq, 0, kTcpAck);
  } else {
    pkt::build_tcp_reset(frame, {out.mac, c.vip, c.vport},
                         {c.client_mac, c.client_ip, c.client_port}, seq, 0, kTcpAck);
  }
  if (!set_frame(m, frame, sizeof(frame))) {
    rte_pktmbuf_free(m);
    return false;
  }
  m->port = out.port_id;
  tx[(*n_tx)++] = m;
  return true;
}

}  // namespace

void sweep_step(WorkerContext& w, const ActiveConfig& cfg, uint64_t now, uint32_t budget,
                rte_mbuf** tx, uint16_t* n_tx, uint16_t max_probes) {
  uint16_t probes = 0;
  w.conns.sweep(
      now, budget, [&w](const Conn& c) { retire_conn(w, c); },
      [&](const Conn& c) {
        if (w.pool == nullptr || probes == max_probes || c.proto != IPPROTO_TCP ||
            c.state == TcpState::kSynSent || c.state == TcpState::kTimeWait) {
          return;
        }
        const BackendEntry& be = cfg.backend(c.backend_id);
        if (backend_cuts(be, c) && probe_cut_connection(w, be, c, now, tx, n_tx)) {
          ++probes;
          w.counters->backends[c.backend_id].cut_probes.add();
        }
      });
}

uint16_t process_handoffs(WorkerContext& w, const ActiveConfig& cfg, uint16_t max, rte_mbuf** tx,
                          uint16_t* n_tx, uint64_t now) {
  if (w.shared->workers <= 1) return 0;
  rte_mbuf* in[kBurst];
  uint16_t taken = 0;
  for (uint32_t j = 0; j < w.shared->workers && j < kMaxWorkers && taken < max; ++j) {
    rte_ring* ring = w.handoff_from[j];
    if (ring == nullptr) continue;
    const auto want = static_cast<unsigned>(std::min<uint16_t>(kBurst, max - taken));
    const auto n = static_cast<uint16_t>(
        rte_ring_sc_dequeue_burst(ring, reinterpret_cast<void**>(in), want, nullptr));
    if (n == 0) continue;
    w.counters->handoff_in.add(n);
    w.in_handoffs = true;
    process_burst(w, cfg, in, n, tx, n_tx, now);
    w.in_handoffs = false;
    taken = static_cast<uint16_t>(taken + n);
  }
  return taken;
}

namespace {

// Sends `n` frames on `out`; what its queue does not take is counted and freed.
void transmit(WorkerContext& w, PortQueue out, rte_mbuf** frames, uint16_t n) {
  const uint16_t sent = rte_eth_tx_burst(out.port_id, out.queue, frames, n);
  w.counters->tx_packets.add(sent);
  if (sent < n) {
    w.counters->drop(abi::Drop::kTxFull, n - sent);
    rte_pktmbuf_free_bulk(frames + sent, n - sent);
  }
}

}  // namespace

int worker_main(void* arg) {
  auto& w = *static_cast<WorkerContext*>(arg);
  SharedState& s = *w.shared;
  const uint32_t n_ports = s.n_ports;
  rte_mbuf* rx[kBurst];
  // Room for an RX burst from every port and a burst of hand-overs, each of which may add a reset
  // per packet, and the housekeeping step's probes.
  rte_mbuf* tx[kBurst * 2 * (kMaxDataplanePorts + 1) + kMaxCutProbes];
  constexpr auto kTxRoom = static_cast<uint16_t>(sizeof(tx) / sizeof(tx[0]));
  static_assert(kTxRoom >= 2 * kBurst * kMaxDataplanePorts + 2 * kBurst + kMaxCutProbes,
                "tx holds one loop iteration's frames");
  // With several ports, the frames leaving through one of them (their `port` field).
  rte_mbuf* tx_port[kTxRoom];

  uint32_t idle_loops = 0;
  ExpiryPacer expiry(w.conns.capacity(), s.tsc_hz * kSweepPeriodMs / 1000, kExpireBudget,
                     rte_rdtsc());

  rte_rcu_qsbr_thread_register(s.qsbr, w.index);
  rte_rcu_qsbr_thread_online(s.qsbr, w.index);
  while (!s.stop.load(std::memory_order_relaxed)) {
    const uint64_t start = rte_rdtsc();
    const ActiveConfig* cfg = s.config.load(std::memory_order_acquire);
    uint16_t n_tx = 0;
    uint16_t n_rx = 0;
    // Until the first snapshot is applied nothing is polled: the dataplane forwards nothing.
    if (cfg != nullptr) {
      for (uint32_t i = 0; i < n_ports; ++i) {
        const uint16_t n = rte_eth_rx_burst(w.io[i].port_id, w.io[i].queue, rx, kBurst);
        if (n == 0) continue;
        // Which port a frame came in on decides where it is answered; not every driver says
        // (net_ring leaves the field as it was).
        if (n_ports > 1) {
          for (uint16_t j = 0; j < n; ++j) rx[j]->port = s.ports[i].port_id;
        }
        w.counters->rx_packets.add(n);
        process_burst(w, *cfg, rx, n, tx, &n_tx, start);
        n_rx = static_cast<uint16_t>(n_rx + n);
      }
      n_rx = static_cast<uint16_t>(n_rx + process_handoffs(w, *cfg, kBurst, tx, &n_tx, start));
      if (const uint32_t budget = expiry.budget(start); budget != 0) {
        sweep_step(w, *cfg, start, budget, tx, &n_tx, kMaxCutProbes);
      }
    }
    // Frames from the main lcore (ARP) go out whether or not a config is in force.
    n_tx += static_cast<uint16_t>(rte_ring_sc_dequeue_burst(
        w.from_main, reinterpret_cast<void**>(tx + n_tx), kTxRoom - n_tx, nullptr));
    if (n_tx != 0 && n_ports == 1) {
      transmit(w, w.io[0], tx, n_tx);
    } else if (n_tx != 0) {
      for (uint32_t i = 0; i < n_ports; ++i) {
        uint16_t n = 0;
        for (uint16_t j = 0; j < n_tx; ++j) {
          if (port_index_of(s, tx[j]->port) == i) tx_port[n++] = tx[j];
        }
        if (n != 0) transmit(w, w.io[i], tx_port, n);
      }
    }
    rte_rcu_qsbr_quiescent(s.qsbr, w.index);
    w.counters->loops.add();
    if (n_rx != 0) {
      w.counters->busy_loops.add();
      w.counters->busy_cycles.add(rte_rdtsc() - start);
      idle_loops = 0;
    } else if (s.idle_sleep_us != 0 && n_tx == 0 && ++idle_loops > kIdleLoopsBeforeSleep) {
      // Opted-in back-off: the one system call a worker makes, and only when it has no work.
      rte_delay_us_sleep(s.idle_sleep_us);
    }
  }
  rte_rcu_qsbr_thread_offline(s.qsbr, w.index);
  rte_rcu_qsbr_thread_unregister(s.qsbr, w.index);
  return 0;
}

}  // namespace ilb::dp

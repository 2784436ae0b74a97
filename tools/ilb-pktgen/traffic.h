// ilb-pktgen's traffic logic: the clients that open flows toward a VIP and the backends that
// answer them, on one wire, with ilb in the middle. Pure code on byte buffers (no mbufs, no EAL)
// so the unit tests drive it through a software NAT in place of ilb.
//
// Why one process plays both ends: every packet then makes the full trip client -> ilb ->
// backend -> ilb -> client, and both rewrites are checked where they arrive, with no real server
// limiting the rate. The backends are stateless reflectors (a SYN gets a SYN-ACK, data is echoed,
// a FIN gets a FIN-ACK), so they cost the same whether there are a thousand flows or ten million;
// only the clients keep one small record per flow.
//
// A data packet's payload starts with a 48-bit time stamp (the sender's clock ticks), so the
// smallest frame (60 bytes plus FCS: 64 on the wire) still measures latency: the reflector
// echoes the payload and the client subtracts. Ticks are whatever the caller's clock counts (TSC
// cycles in the tool); the histogram and the report convert.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/packet/packet.h"
#include "tools/ilb-pktgen/latency.h"

namespace ilb::pktgen {

enum class Proto : uint8_t { kTcp, kUdp };

// The transmit queue, of `queues`, for a frame of `len` bytes: what a NIC's receive-side scaling
// does for the other end, which the generator plays on wires that have none (net_memif). An
// IPv4 TCP or UDP frame's queue is a hash of its addresses and ports, so every frame of one
// direction of a flow takes the same queue, and the two directions of a flow through a full-NAT
// balancer (different tuples) usually different ones; anything else takes queue 0.
uint16_t queue_for(const uint8_t* frame, uint32_t len, uint16_t queues);

// Every address is IPv4 in host byte order; ports in host order.
struct TrafficConfig {
  Proto proto = Proto::kTcp;
  uint32_t vip = 0;
  uint16_t vport = 0;
  uint32_t client_base = 0;   // first client address
  uint32_t client_count = 1;  // consecutive client addresses
  uint16_t client_port_min = 1024;
  uint16_t client_port_max = 65535;
  std::vector<uint32_t> backends;  // addresses the reflector answers for (and ARP)
  uint16_t backend_port = 0;       // 0: any port
  // Addresses the balancer uses toward backends; when not empty, a backend-side frame from
  // anywhere else is a bad rewrite. A client address as source is always one (full NAT).
  std::vector<uint32_t> snat;
  uint32_t flows = 1;             // concurrent flows (client records)
  uint32_t packets_per_flow = 0;  // data packets before a flow closes; 0 = open until the end
  uint16_t frame_len = 60;        // data frames, without FCS: 60..1514
  std::array<uint8_t, 6> mac{};   // ours, as source of everything we send
  // A SYN or FIN unanswered this long is sent again, as a TCP stack would (the balancer drops a
  // flow's first packet while it resolves the backend's MAC address); after kMaxRetransmits the
  // flow is counted as timed out and reopened on a new tuple. 0: never.
  uint64_t timeout_ticks = 0;
  // The wire sends every frame back unchanged (dpdk-testpmd's io forwarding: the ceiling
  // measurement). Flows then open without a handshake and each data frame counts as echoed
  // when it comes back as it was sent; nothing is reflected.
  bool loopback = false;
};

// Everything counted, as plain integers (one thread writes them).
struct TrafficCounters {
  uint64_t syn_sent = 0;          // connection attempts (TCP SYNs; UDP: first datagram of a flow)
  uint64_t connected = 0;         // SYN-ACKs received (UDP: first echo of a flow)
  uint64_t connect_timeouts = 0;  // SYNs still unanswered after every retransmission
  uint64_t retransmits = 0;       // SYNs and FINs sent again after timeout_ticks without answer
  uint64_t data_sent = 0;         // data packets generated
  uint64_t data_echoed = 0;       // their echoes, back at the client, correct
  uint64_t fin_sent = 0;
  uint64_t closed = 0;  // FIN-ACKs received
  uint64_t close_timeouts = 0;
  uint64_t client_resets = 0;   // RSTs that reached a client
  uint64_t backend_syns = 0;    // SYNs that reached a backend
  uint64_t backend_data = 0;    // data packets that reached a backend (and were echoed)
  uint64_t backend_resets = 0;  // RSTs that reached a backend
  uint64_t arp_replies = 0;     // ARP requests for our addresses answered
  uint64_t bad_frames = 0;      // failed to parse or a checksum was wrong
  uint64_t bad_rewrite = 0;     // ours, but with addresses, ports or payload ilb must not produce
  uint64_t stale = 0;           // for a flow that has since moved to another tuple
  uint64_t foreign = 0;         // not addressed to anything we play
  // Total of the error counters: what a correctness run requires to stay zero.
  uint64_t errors() const { return bad_frames + bad_rewrite + client_resets + backend_resets; }
};

class Traffic {
 public:
  // Largest frame the generator or reflector writes (a full Ethernet frame without FCS).
  static constexpr uint32_t kMaxFrame = 1514;
  static constexpr uint8_t kMaxRetransmits = 3;

  // Throws std::invalid_argument on a configuration it cannot run (frame size, empty ranges).
  explicit Traffic(TrafficConfig cfg);

  // The balancer's MAC address, as destination of what the clients send. Until set, next()
  // sends nothing. arp_request() asks for it; receive() learns it from the VIP's ARP reply.
  bool peer_known() const { return peer_known_; }
  void set_peer(const std::array<uint8_t, 6>& mac);
  // Writes an ARP request for the VIP (from the first client address) into `buf` (>= 60 bytes)
  // and returns its length.
  uint32_t arp_request(uint8_t* buf) const;

  // Writes the next frame the clients want to send at time `now` into `buf` (kMaxFrame bytes)
  // and returns its length, or 0 when no flow has anything to send. A connection is only
  // opened when `may_open` is set (the caller's new-flows-per-second budget); `opened` is then
  // set when the frame opens one.
  uint32_t next(uint8_t* buf, uint64_t now, bool may_open, bool& opened);

  // What receive() did with a frame.
  enum class Verdict : uint8_t {
    kConsumed,  // nothing to send back; the frame may be freed
    kReply,     // the frame was rewritten in place into the answer (`len` updated): send it
  };
  // Handles one received frame of `len` bytes (`frame` must have kMaxFrame bytes of room):
  // ARP, a backend-side packet (reflected), a client-side packet (checked, flow advanced).
  Verdict receive(uint8_t* frame, uint32_t& len, uint64_t now);

  // Looks at up to `budget` flows for expired SYN/FIN deadlines (bounded work per call) and
  // queues their retransmissions for next().
  void expire(uint64_t now, uint32_t budget);

  // Ends the run at `now`: no more flows open and no more data is sent; from now on next()
  // closes every open TCP flow so the balancer's table is left clean: with a FIN once its
  // echoes are back, or after timeout_ticks without them (the missing ones are lost).
  void begin_close(uint64_t now) {
    closing_ = true;
    closing_since_ = now;
  }
  // No TCP flow is open or waiting for a SYN-ACK or FIN-ACK (UDP flows have nothing to close).
  bool settled() const { return unsettled_ == 0 && (!handshake_ || open_flows_ == 0); }
  // While off, next() only opens flows and sends no data (the opening phase of a run).
  void set_data_enabled(bool on) { data_enabled_ = on; }
  // Flows currently open (handshake done, not closed).
  uint32_t open_flows() const { return open_flows_; }

  const TrafficCounters& counters() const { return counters_; }
  const LatencyHistogram& latency() const { return latency_; }          // data round trips
  const LatencyHistogram& connect_latency() const { return connect_; }  // SYN -> SYN-ACK

 private:
  enum class State : uint8_t { kIdle, kSynSent, kOpen, kFinSent };
  struct Flow {
    uint32_t tuple = 0;  // index into the client address:port space
    uint32_t generation = 0;
    State state = State::kIdle;
    uint32_t sent = 0;  // data packets sent in this connection
    uint32_t echoed = 0;
    uint32_t snd_nxt = 0;  // TCP: our next sequence number
    uint32_t rcv_nxt = 0;  // TCP: next byte expected from the backend
    uint64_t since = 0;    // when the SYN or FIN was (last) sent
    uint8_t retransmits = 0;
    bool resend = false;  // queued in resend_
  };

  // Returns `cursor` and moves it to the next flow, wrapping around.
  uint32_t advance(uint32_t& cursor) const {
    const uint32_t at = cursor;
    cursor = cursor + 1 == cfg_.flows ? 0 : cursor + 1;
    return at;
  }
  uint32_t client_ip(uint32_t tuple) const;
  uint16_t client_port(uint32_t tuple) const;
  bool is_backend(uint32_t ip) const;
  bool is_ours(uint32_t ip) const;
  uint32_t write_frame(uint8_t* buf, uint32_t flow, uint8_t tcp_flags, uint32_t payload_len,
                       uint64_t now);
  void retire(uint32_t flow);  // back to idle with the next tuple, queued for opening
  uint32_t send_fin(uint8_t* buf, uint32_t flow, uint64_t now);
  Verdict reflect(uint8_t* frame, const dp::pkt::Parsed& p);
  Verdict client_side(uint8_t* frame, uint32_t& len, const dp::pkt::Parsed& p, uint64_t now);

  TrafficConfig cfg_;
  bool handshake_ = false;    // TCP through a balancer: SYN, SYN-ACK, ACK ... FIN, FIN-ACK, ACK
  uint32_t tuple_space_ = 0;  // client addresses x ports
  uint32_t generations_ = 0;  // tuples per flow slot: tuple = flow + (generation % g) * flows
  std::vector<Flow> flows_;
  std::vector<uint32_t> to_open_;  // FIFO ring of idle flows
  std::vector<uint32_t> resend_;   // flows whose SYN or FIN is due again (each at most once)
  uint32_t open_head_ = 0;
  uint32_t open_count_ = 0;
  uint32_t cursor_ = 0;  // next flow considered for a data packet
  uint32_t expire_cursor_ = 0;
  uint32_t open_flows_ = 0;
  uint32_t unsettled_ = 0;    // flows in kSynSent or kFinSent
  uint32_t payload_len_ = 0;  // data payload bytes for cfg_.frame_len
  std::array<uint8_t, 6> peer_{};
  bool peer_known_ = false;
  bool closing_ = false;
  uint64_t closing_since_ = 0;
  bool data_enabled_ = true;
  TrafficCounters counters_;
  LatencyHistogram latency_;
  LatencyHistogram connect_;
};

}  // namespace ilb::pktgen

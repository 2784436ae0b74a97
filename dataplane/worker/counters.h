// Per-lcore counters. Each counter has exactly one writer (its lcore), which updates it with a
// relaxed load and store: no atomic read-modify-write, no lock, no shared cache line between
// workers. Readers (the main lcore's stats export) load it relaxed and sum over lcores.
#pragma once

#include <atomic>
#include <cstdint>

#include "dataplane/abi/ilb_abi.h"

namespace ilb::dp {

class Counter {
 public:
  void add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void set(uint64_t n) { v_.store(n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

struct BackendCounters {
  Counter new_conns;
  Counter active_conns;  // may wrap below zero on one worker; the sum over workers is exact
  Counter packets_in;
  Counter packets_out;
  Counter bytes_in;
  Counter bytes_out;
  Counter resets;      // connections cut with a reset to both sides
  Counter cut_probes;  // out-of-window ACKs sent so an idle cut connection's peer answers
};

// Everything one worker counts. Allocated with rte_zmalloc on the worker's socket.
struct alignas(64) WorkerCounters {
  Counter loops;
  Counter busy_loops;
  Counter busy_cycles;
  Counter rx_packets;
  Counter tx_packets;
  Counter active_conns;
  Counter handoff_out;       // frames handed to the worker that owns their connection
  Counter handoff_in;        // frames other workers handed to this one
  Counter handoff_drops;     // frames dropped because the owner's hand-over ring was full
  Counter steered;           // new connections whose SNAT port sends replies to this queue
  Counter unsteered;         // new connections that took any port (RSS known, no fitting port)
  Counter untracked_resets;  // resets sent for untracked TCP segments
  Counter icmp_errors_translated;  // ICMP errors about a tracked connection, sent on
  Counter martians;                // frames from a sender no host can be, dropped
  // refusals, untracked resets, echo replies, "fragmentation needed" not sent (ReplyLimiter)
  Counter replies_limited;
  Counter mss_clamped;  // SYN segments whose MSS option was lowered to fit the ports' MTU
  Counter drops[static_cast<size_t>(abi::Drop::kCount)];
  Counter service_no_backend[abi::kMaxServices];  // by service index of the config in force
  BackendCounters backends[abi::kMaxBackends];    // by backend id

  void drop(abi::Drop reason, uint64_t n = 1) { drops[static_cast<size_t>(reason)].add(n); }
};

}  // namespace ilb::dp

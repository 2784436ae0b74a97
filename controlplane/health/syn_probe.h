// Half-open TCP check: send a SYN from a raw socket, take a SYN-ACK as "listening" and an RST as
// "refused", and never complete the handshake. Our kernel answers the SYN-ACK with an RST because
// no socket of its own owns the connection, so the server's half-open request is dropped before
// it ever reaches accept(): the server application never sees a connection at all.
//
// Why not connect() and close with an RST: measured on MariaDB 10.11 with max_connect_errors = 10,
// about 1.5 % of connect-and-reset probes still land as handshake errors (the reset races the
// server's greeting), so 1,000 such checks block the prober's host. A SYN probe leaves MariaDB's
// Connections and Aborted_connects untouched.
//
// One SynProber per health checker owns the raw socket. It reserves kSourcePorts local ports by
// binding ordinary TCP sockets to them without listening: the kernel then picks none of them for
// its own connections, and a SYN-ACK addressed to one finds no socket and is reset. A classic BPF
// filter lets only TCP segments to those ports reach the raw socket, so the prober does not read
// the host's other TCP traffic. Replies are matched to probes by (backend address, backend port,
// local port) and by the acknowledged sequence number, so stray or forged segments are ignored.
//
// Needs CAP_NET_RAW; without it open() fails and the checker falls back to connect probes.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "controlplane/health/probe.h"

namespace ilb::cp {

class SynProbe;

class SynProber : public std::enable_shared_from_this<SynProber> {
 public:
  static constexpr size_t kSourcePorts = 64;  // concurrent probes to one address:port

  // Opens the raw socket and reserves the source ports. Returns nullptr with `error` set when the
  // host does not allow it (typically: no CAP_NET_RAW).
  static std::shared_ptr<SynProber> open(asio::io_context& io, std::string& error);

  ~SynProber();
  SynProber(const SynProber&) = delete;
  SynProber& operator=(const SynProber&) = delete;

  // Sends a SYN for `probe` to `endpoint` and remembers it until reply or forget(). On failure
  // returns false with `error` set ("no free source port", "send: ...").
  bool send(const std::shared_ptr<SynProbe>& probe, const asio::ip::tcp::endpoint& endpoint,
            std::string& error);
  // Stops waiting for the reply to `probe`'s SYN; `stale_route` also drops the cached source
  // address for its backend (a timeout may mean the route changed).
  void forget(const SynProbe& probe, bool stale_route);

  // Segments read from the raw socket, and how many of them answered an outstanding probe.
  uint64_t segments_read() const { return segments_read_; }
  uint64_t replies_matched() const { return replies_matched_; }

 private:
  struct Key {
    uint32_t address;  // backend, host order
    uint16_t port;     // backend, host order
    uint16_t local_port;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<uint64_t>()((uint64_t(k.address) << 32) ^ (uint64_t(k.port) << 16) ^
                                   k.local_port);
    }
  };
  struct Pending {
    std::weak_ptr<SynProbe> probe;
    uint32_t isn;
  };
  struct Source {
    uint32_t address;  // host order
    std::chrono::steady_clock::time_point expires;
  };

  SynProber(asio::io_context& io, int raw_fd, std::vector<int> reserved_fds,
            std::vector<uint16_t> ports);
  bool source_for(uint32_t destination, uint32_t& source, std::string& error);
  void read_next();
  void read_ready();
  void on_segment(const uint8_t* data, size_t size);

  asio::posix::stream_descriptor raw_;
  std::vector<int> reserved_fds_;
  std::vector<uint16_t> ports_;
  size_t next_port_ = 0;
  std::unordered_map<Key, Pending, KeyHash> pending_;
  std::unordered_map<uint32_t, Source> sources_;
  std::mt19937 rng_;
  uint64_t segments_read_ = 0;
  uint64_t replies_matched_ = 0;

  friend class SynProbe;
};

class SynProbe final : public Probe, public std::enable_shared_from_this<SynProbe> {
 public:
  SynProbe(asio::io_context& io, std::shared_ptr<SynProber> prober,
           asio::ip::tcp::endpoint endpoint, std::chrono::milliseconds timeout);

  void start(Done done) override;
  void cancel() override;

 private:
  friend class SynProber;
  void finish(ProbeResult result);

  std::shared_ptr<SynProber> prober_;
  asio::steady_timer timer_;
  asio::ip::tcp::endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  Done done_;
  bool finished_ = false;
  bool registered_ = false;  // the prober holds a pending entry for this probe
  SynProber::Key key_{};     // set by the prober's send()
};

}  // namespace ilb::cp

#include "controlplane/health/syn_probe.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

namespace ilb::cp {
namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr size_t kSynSize = 24;  // TCP header with one MSS option
// A source address is looked up again after this long, so a changed route is picked up.
constexpr auto kSourceLifetime = std::chrono::seconds(30);

std::string errno_text(const char* operation, int err) {
  return probe_error(operation, std::error_code(err, std::generic_category()));
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, uint16_t(v >> 16));
  put16(p + 2, uint16_t(v));
}
uint16_t get16(const uint8_t* p) {
  return uint16_t(p[0] << 8 | p[1]);
}
uint32_t get32(const uint8_t* p) {
  return uint32_t(get16(p)) << 16 | get16(p + 2);
}

// The TCP checksum (RFC 793) over the IPv4 pseudo-header and `size` bytes of segment.
uint16_t tcp_checksum(uint32_t source, uint32_t destination, const uint8_t* segment, size_t size) {
  uint32_t sum = (source >> 16) + (source & 0xffff) + (destination >> 16) + (destination & 0xffff) +
                 IPPROTO_TCP + uint32_t(size);
  for (size_t i = 0; i + 1 < size; i += 2) sum += get16(segment + i);
  if (size % 2 != 0) sum += uint32_t(segment[size - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

// A classic BPF program for a raw IPv4 TCP socket: accept unfragmented segments whose destination
// port is one of `ports`, drop everything else before it is queued to the socket.
std::vector<sock_filter> port_filter(const std::vector<uint16_t>& ports) {
  const auto n = uint8_t(ports.size());  // <= kSourcePorts, so every jump offset fits
  std::vector<sock_filter> prog;
  prog.push_back(BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 6));  // flags + fragment offset
  prog.push_back(
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, uint8_t(n + 2), 0));  // a fragment: drop
  prog.push_back(BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0));                // X = IP header length
  prog.push_back(BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2));                 // TCP destination port
  for (uint8_t i = 0; i < n; ++i) {
    prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ports[i], uint8_t(n - i), 0));
  }
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, 0));    // drop
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, 128));  // accept: IP and TCP headers are enough
  return prog;
}

void close_all(const std::vector<int>& fds) {
  for (int fd : fds) ::close(fd);
}

}  // namespace

std::shared_ptr<SynProber> SynProber::open(asio::io_context& io, std::string& error) {
  static_assert(kSourcePorts < 250, "BPF jump offsets are 8 bits");
  const int raw = ::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (raw < 0) {
    error = errno_text("raw socket", errno);
    return nullptr;
  }
  std::vector<int> reserved;
  std::vector<uint16_t> ports;
  auto fail = [&](const char* operation) {
    error = errno_text(operation, errno);
    close_all(reserved);
    ::close(raw);
    return nullptr;
  };
  for (size_t i = 0; i < kSourcePorts; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail("reserve source port");
    reserved.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return fail("reserve source port");
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  std::vector<sock_filter> prog = port_filter(ports);
  sock_fprog fprog{uint16_t(prog.size()), prog.data()};
  if (::setsockopt(raw, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) != 0) {
    return fail("attach filter");
  }
  // Room for a whole interval's replies of thousands of backends arriving in one burst.
  const int rcvbuf = 4 << 20;
  if (::setsockopt(raw, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0) {
    ::setsockopt(raw, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  // Segments queued before the filter was attached are of no interest.
  std::array<uint8_t, 128> scratch;
  while (::recv(raw, scratch.data(), scratch.size(), MSG_DONTWAIT) >= 0) {
  }
  auto prober = std::shared_ptr<SynProber>(new SynProber(io, raw, reserved, ports));
  prober->read_next();
  return prober;
}

SynProber::SynProber(asio::io_context& io, int raw_fd, std::vector<int> reserved_fds,
                     std::vector<uint16_t> ports)
    : raw_(io, raw_fd),
      reserved_fds_(std::move(reserved_fds)),
      ports_(std::move(ports)),
      rng_(std::random_device{}()) {}

SynProber::~SynProber() {
  close_all(reserved_fds_);
}

// The address the kernel will put in our SYN's IP header: the one a connected UDP socket to the
// same destination gets (no packet is sent). Cached per destination.
bool SynProber::source_for(uint32_t destination, uint32_t& source, std::string& error) {
  const auto now = std::chrono::steady_clock::now();
  auto it = sources_.find(destination);
  if (it != sources_.end() && it->second.expires > now) {
    source = it->second.address;
    return true;
  }
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = errno_text("socket", errno);
    return false;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(destination);
  addr.sin_port = htons(9);
  socklen_t len = sizeof(addr);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) {
    error = errno_text("connect", err);
    return false;
  }
  source = ntohl(addr.sin_addr.s_addr);
  sources_[destination] = Source{source, now + kSourceLifetime};
  return true;
}

bool SynProber::send(const std::shared_ptr<SynProbe>& probe,
                     const asio::ip::tcp::endpoint& endpoint, std::string& error) {
  const uint32_t destination = endpoint.address().to_v4().to_uint();
  Key key{destination, endpoint.port(), 0};
  // A free local port for this backend: normally the first one tried, since each backend has at
  // most one probe in flight per check that names it.
  bool found = false;
  for (size_t i = 0; i < ports_.size() && !found; ++i) {
    key.local_port = ports_[next_port_];
    next_port_ = (next_port_ + 1) % ports_.size();
    found = !pending_.contains(key);
  }
  if (!found) {
    error = "no free source port: " + std::to_string(ports_.size()) + " probes in flight to " +
            endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    return false;
  }
  uint32_t source = 0;
  if (!source_for(destination, source, error)) return false;

  const uint32_t isn = rng_();
  std::array<uint8_t, kSynSize> syn{};
  put16(&syn[0], key.local_port);
  put16(&syn[2], key.port);
  put32(&syn[4], isn);
  syn[12] = uint8_t((kSynSize / 4) << 4);  // data offset
  syn[13] = kSyn;
  put16(&syn[14], 64240);  // window
  syn[20] = 2;             // MSS option, length 4, 1460
  syn[21] = 4;
  put16(&syn[22], 1460);
  put16(&syn[16], tcp_checksum(source, destination, syn.data(), syn.size()));

  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(destination);
  if (::sendto(raw_.native_handle(), syn.data(), syn.size(), MSG_DONTWAIT,
               reinterpret_cast<const sockaddr*>(&to), sizeof(to)) < 0) {
    error = errno_text("send SYN", errno);
    sources_.erase(destination);
    return false;
  }
  pending_[key] = Pending{probe, isn};
  probe->key_ = key;
  probe->registered_ = true;
  return true;
}

void SynProber::forget(const SynProbe& probe, bool stale_route) {
  if (!probe.registered_) return;
  auto it = pending_.find(probe.key_);
  if (it != pending_.end() && it->second.probe.lock().get() == &probe) pending_.erase(it);
  if (stale_route) sources_.erase(probe.key_.address);
}

void SynProber::read_next() {
  raw_.async_wait(asio::posix::descriptor_base::wait_read,
                  [weak = weak_from_this()](const std::error_code& ec) {
                    auto self = weak.lock();
                    if (ec || !self) return;
                    self->read_ready();
                    self->read_next();
                  });
}

// Reads what is queued, kBatch segments per system call (the replies to one wake-up's SYNs
// usually arrive together), at most 256 per call so that a flood cannot starve the other
// handlers. A short batch means the queue is empty: no further call to learn that.
void SynProber::read_ready() {
  constexpr unsigned kBatch = 32;
  std::array<std::array<uint8_t, 128>, kBatch> bufs;
  std::array<iovec, kBatch> iov;
  std::array<mmsghdr, kBatch> msgs;
  for (int round = 0; round < 256 / int(kBatch); ++round) {
    for (unsigned i = 0; i < kBatch; ++i) {
      iov[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = ::recvmmsg(raw_.native_handle(), msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    for (int i = 0; i < n; ++i) on_segment(bufs[i].data(), std::min<size_t>(msgs[i].msg_len, 128));
    if (unsigned(n) < kBatch) return;
  }
}

// `data` is what a raw IPv4 socket delivers: the IP header, then the TCP segment (as much of it
// as the filter kept). Anything malformed or unexpected is ignored.
void SynProber::on_segment(const uint8_t* data, size_t size) {
  ++segments_read_;
  if (size < 20 || (data[0] >> 4) != 4 || data[9] != IPPROTO_TCP) return;
  const size_t ihl = size_t(data[0] & 0x0f) * 4;
  if (ihl < 20 || size < ihl + 20) return;
  const uint8_t* tcp = data + ihl;
  const Key key{get32(data + 12), get16(tcp), get16(tcp + 2)};
  auto it = pending_.find(key);
  if (it == pending_.end()) return;
  const uint8_t flags = tcp[13];
  const bool acks_our_syn = (flags & kAck) != 0 && get32(tcp + 8) == it->second.isn + 1;
  if (!acks_our_syn) return;
  ProbeResult result;
  if ((flags & (kSyn | kRst | kFin)) == kSyn) {
    result = {true, "SYN-ACK"};
  } else if ((flags & kRst) != 0) {
    result = {false, "connection refused (RST)"};
  } else {
    return;
  }
  std::shared_ptr<SynProbe> probe = it->second.probe.lock();
  pending_.erase(it);
  ++replies_matched_;
  if (probe) {
    probe->registered_ = false;
    probe->finish(std::move(result));
  }
}

SynProbe::SynProbe(asio::io_context& io, std::shared_ptr<SynProber> prober,
                   asio::ip::tcp::endpoint endpoint, std::chrono::milliseconds timeout)
    : prober_(std::move(prober)), timer_(io), endpoint_(endpoint), timeout_(timeout) {}

void SynProbe::start(Done done) {
  done_ = std::move(done);
  auto self = shared_from_this();
  std::string error;
  if (!prober_->send(self, endpoint_, error)) {
    asio::post(timer_.get_executor(), [self, error] { self->finish({false, error}); });
    return;
  }
  timer_.expires_after(timeout_);
  timer_.async_wait([self](const std::error_code& ec) {
    if (ec || self->finished_) return;
    self->prober_->forget(*self, true);
    self->registered_ = false;
    self->finish({false, probe_timeout(self->timeout_)});
  });
}

void SynProbe::cancel() {
  finished_ = true;
  done_ = nullptr;
  timer_.cancel();
  prober_->forget(*this, false);
  registered_ = false;
}

void SynProbe::finish(ProbeResult result) {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  if (Done done = std::exchange(done_, nullptr)) done(std::move(result));
}

}  // namespace ilb::cp

// The port's receive-side scaling, computed in software, so that a worker can choose SNAT ports
// whose replies the NIC delivers to the worker's own RX queue.
//
// A NIC hashes a packet with the Toeplitz function over (src ip, dst ip[, src port, dst port]) and
// the port's RSS key, and delivers it to the queue the redirection table (RETA) holds at the low
// bits of the hash. Toeplitz is linear over XOR of its input bits, so the hash of a backend's reply
// (backend_ip:backend_port -> snat_ip:snat_port) is the hash of the tuple with snat_port = 0,
// XORed with the contribution of snat_port alone. The first part is computed once per allocation;
// the second comes from a 65536-entry table, so each candidate port costs one load, one XOR and
// one RETA load.
//
// Memory: 12 byte-position tables of 256 words (12 KiB) for whole hashes, and the port table
// holds only the low 16 bits of each port's contribution (128 KiB), which is all a RETA of up to
// 65536 entries looks at. One Rss per port, built before the workers start and shared read-only.
// Nothing here needs the EAL.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ilb::dp {

class Rss {
 public:
  // An IPv4 TCP/UDP tuple is 12 bytes; the Toeplitz window slides 32 bits past its last bit.
  static constexpr size_t kMinKeyLength = 16;
  static constexpr size_t kMaxRetaSize = 65536;

  // `key` as the port reports it (rte_eth_rss_conf.rss_key: byte 0 holds the key's first bits),
  // at least kMinKeyLength bytes. `reta` holds the queue of each RETA entry; its size is a power
  // of two up to kMaxRetaSize. False with `error` set otherwise.
  bool init(const uint8_t* key, size_t key_length, const std::vector<uint16_t>& reta,
            std::string& error);

  // The NIC's hash of an IPv4 TCP/UDP packet. Addresses and ports in network order.
  uint32_t hash_v4_ports(uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                         uint16_t dst_port) const;
  // The NIC's hash of an IPv4 packet that it hashes on addresses only (not TCP/UDP, fragments).
  uint32_t hash_v4(uint32_t src_ip, uint32_t dst_ip) const;

  // The queue the NIC delivers a packet with this hash to.
  uint16_t queue(uint32_t hash) const { return reta_[hash & reta_mask_]; }
  // Whether any RETA entry points at `queue`: if none does, no port can steer a reply there.
  bool reaches(uint16_t queue) const { return queue < reached_.size() && reached_[queue] != 0; }

  // The hash of a backend's reply to snat_ip with destination port 0 (all in network order).
  uint32_t reply_base(uint32_t backend_ip, uint16_t backend_port, uint32_t snat_ip) const {
    return hash_v4_ports(backend_ip, snat_ip, backend_port, 0);
  }
  // The queue a reply with this base hash reaches when it is addressed to `snat_port` (network
  // order).
  uint16_t reply_queue(uint32_t base, uint16_t snat_port) const {
    return reta_[(base ^ dst_port_low_[snat_port]) & reta_mask_];
  }

  size_t reta_size() const { return reta_.size(); }

 private:
  static constexpr size_t kTupleBytes = 12;

  // byte_[i][v]: the hash of a tuple whose byte i is v and all other bytes are zero.
  std::array<std::array<uint32_t, 256>, kTupleBytes> byte_{};
  // Indexed by the port as it sits in the packet (network order), so the hot loop needs no swap.
  std::vector<uint16_t> dst_port_low_;
  std::vector<uint16_t> reta_;
  std::vector<uint8_t> reached_;  // indexed by queue
  uint32_t reta_mask_ = 0;
};

}  // namespace ilb::dp

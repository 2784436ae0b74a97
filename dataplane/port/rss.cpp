#include "dataplane/port/rss.h"

#include <rte_byteorder.h>

#include <algorithm>

namespace ilb::dp {
namespace {

// The 32 key bits starting at bit `bit` (bit 0 is the most significant bit of key byte 0): what
// Toeplitz XORs into the hash when input bit `bit` is set.
uint32_t key_window(const uint8_t* key, size_t bit) {
  const size_t b = bit / 8;
  uint64_t five = 0;
  for (size_t i = 0; i < 5; ++i) five = five << 8 | key[b + i];
  return static_cast<uint32_t>(five >> (8 - bit % 8));
}

}  // namespace

bool Rss::init(const uint8_t* key, size_t key_length, const std::vector<uint16_t>& reta,
               std::string& error) {
  if (key == nullptr || key_length < kMinKeyLength) {
    error = "RSS key shorter than " + std::to_string(kMinKeyLength) + " bytes";
    return false;
  }
  if (reta.empty() || reta.size() > kMaxRetaSize || (reta.size() & (reta.size() - 1)) != 0) {
    error = "RSS redirection table size " + std::to_string(reta.size()) +
            " is not a power of two up to " + std::to_string(kMaxRetaSize);
    return false;
  }
  for (size_t i = 0; i < kTupleBytes; ++i) {
    for (uint32_t v = 0; v < 256; ++v) {
      uint32_t h = 0;
      for (size_t bit = 0; bit < 8; ++bit) {
        if ((v & (0x80u >> bit)) != 0) h ^= key_window(key, i * 8 + bit);
      }
      byte_[i][v] = h;
    }
  }
  // The destination port is bytes 10 and 11 of the tuple.
  dst_port_low_.assign(65536, 0);
  for (uint32_t v = 0; v < 65536; ++v) {
    const uint16_t port = rte_be_to_cpu_16(static_cast<uint16_t>(v));
    dst_port_low_[v] = static_cast<uint16_t>(byte_[10][port >> 8] ^ byte_[11][port & 0xff]);
  }
  reta_ = reta;
  reta_mask_ = static_cast<uint32_t>(reta.size() - 1);
  reached_.assign(static_cast<size_t>(*std::max_element(reta.begin(), reta.end())) + 1, 0);
  for (uint16_t q : reta) reached_[q] = 1;
  return true;
}

uint32_t Rss::hash_v4(uint32_t src_ip, uint32_t dst_ip) const {
  const uint32_t s = rte_be_to_cpu_32(src_ip);
  const uint32_t d = rte_be_to_cpu_32(dst_ip);
  return byte_[0][s >> 24] ^ byte_[1][(s >> 16) & 0xff] ^ byte_[2][(s >> 8) & 0xff] ^
         byte_[3][s & 0xff] ^ byte_[4][d >> 24] ^ byte_[5][(d >> 16) & 0xff] ^
         byte_[6][(d >> 8) & 0xff] ^ byte_[7][d & 0xff];
}

uint32_t Rss::hash_v4_ports(uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                            uint16_t dst_port) const {
  const uint16_t sp = rte_be_to_cpu_16(src_port);
  const uint16_t dp = rte_be_to_cpu_16(dst_port);
  return hash_v4(src_ip, dst_ip) ^ byte_[8][sp >> 8] ^ byte_[9][sp & 0xff] ^ byte_[10][dp >> 8] ^
         byte_[11][dp & 0xff];
}

}  // namespace ilb::dp

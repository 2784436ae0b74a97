// Snapshots whose every byte depends on a seed, so a reader can tell which generation it got and a
// mix of two generations cannot pass for either.
#pragma once

#include <arpa/inet.h>

#include <string>

#include "controlplane/publish/snapshot.h"

namespace ilb::cp::test {

inline Snapshot make_snapshot(uint64_t seed, uint32_t table_scale = 4000) {
  Snapshot s;
  const uint32_t services = 1 + seed % 4;
  for (uint32_t i = 0; i < services; ++i) {
    SnapshotService svc;
    svc.name = "s" + std::to_string(seed) + "-" + std::to_string(i);
    svc.vip = htonl(0x0a000001u + (i << 8));
    svc.port = static_cast<uint16_t>(1000 + i);
    svc.protocol = i % 2 == 0 ? abi::Protocol::kTcp : abi::Protocol::kUdp;
    svc.tcp_syn_timeout_s = 30;
    svc.tcp_est_timeout_s = 350 + static_cast<uint32_t>(seed);
    svc.tcp_fin_timeout_s = 60;
    svc.udp_timeout_s = 30;
    svc.reset_untracked = svc.protocol == abi::Protocol::kTcp && (seed + i) % 3 == 0;
    const uint32_t backends = 1 + (seed + i) % 5;
    std::vector<uint32_t> ids;
    for (uint32_t j = 0; j < backends; ++j) {
      SnapshotBackend b;
      b.id = i * 8 + j + 1;
      b.service_index = i;
      b.address = htonl(0x0a010000u + (i << 8) + j + 1);
      b.port = static_cast<uint16_t>(3306 + j);
      b.admin = j == 1 ? abi::AdminState::kDraining : abi::AdminState::kEnabled;
      b.health = j == 2 ? abi::Health::kDown : abi::Health::kUp;
      b.weight = 100 + j;
      ids.push_back(b.id);
      s.backends.push_back(b);
    }
    const uint32_t table = 97 + static_cast<uint32_t>((seed * 31 + i) % table_scale);
    for (uint32_t k = 0; k < table; ++k) svc.table.push_back(ids[(k + seed) % ids.size()]);
    s.services.push_back(std::move(svc));
  }
  return s;
}

inline bool same_snapshot(const Snapshot& a, const Snapshot& b) {
  if (a.services.size() != b.services.size() || a.backends.size() != b.backends.size()) {
    return false;
  }
  for (size_t i = 0; i < a.services.size(); ++i) {
    const auto& x = a.services[i];
    const auto& y = b.services[i];
    if (x.name != y.name || x.vip != y.vip || x.port != y.port || x.protocol != y.protocol ||
        x.scheduler != y.scheduler || x.tcp_syn_timeout_s != y.tcp_syn_timeout_s ||
        x.tcp_est_timeout_s != y.tcp_est_timeout_s || x.tcp_fin_timeout_s != y.tcp_fin_timeout_s ||
        x.udp_timeout_s != y.udp_timeout_s || x.reset_untracked != y.reset_untracked ||
        x.table != y.table) {
      return false;
    }
  }
  for (size_t i = 0; i < a.backends.size(); ++i) {
    const auto& x = a.backends[i];
    const auto& y = b.backends[i];
    if (x.id != y.id || x.service_index != y.service_index || x.address != y.address ||
        x.port != y.port || x.admin != y.admin || x.health != y.health || x.weight != y.weight) {
      return false;
    }
  }
  return true;
}

}  // namespace ilb::cp::test

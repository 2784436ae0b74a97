#include "controlplane/tables/wrr.h"

#include <algorithm>
#include <numeric>

namespace ilb::cp {

std::vector<uint32_t> build_wrr_table(std::span<const MaglevBackend> backends,
                                      uint32_t max_entries) {
  std::vector<uint64_t> weights;
  std::vector<uint32_t> ids;
  uint64_t divisor = 0;
  for (const MaglevBackend& b : backends) {
    if (b.weight == 0) continue;
    weights.push_back(b.weight);
    ids.push_back(b.id);
    divisor = std::gcd(divisor, uint64_t{b.weight});
  }
  if (weights.empty() || max_entries == 0) return {};
  uint64_t total = 0;
  for (uint64_t& w : weights) total += (w /= divisor);
  if (total > max_entries) {
    // Scale down; every backend keeps at least one entry, so the sum may end slightly above
    // max_entries / total * total - trim the largest until it fits.
    const double scale = double(max_entries) / double(total);
    total = 0;
    for (uint64_t& w : weights) total += (w = std::max<uint64_t>(1, uint64_t(double(w) * scale)));
    while (total > max_entries) {
      auto largest = std::max_element(weights.begin(), weights.end());
      if (*largest <= 1) break;  // more backends than entries: cannot happen with the limits
      --*largest;
      --total;
    }
  }
  // Smooth weighted round robin: each step every backend gains its weight, the one with the
  // most credit is picked and pays the total back.
  std::vector<int64_t> credit(weights.size(), 0);
  std::vector<uint32_t> table;
  table.reserve(total);
  for (uint64_t step = 0; step < total; ++step) {
    size_t best = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
      credit[i] += int64_t(weights[i]);
      if (credit[i] > credit[best]) best = i;
    }
    credit[best] -= int64_t(total);
    table.push_back(ids[best]);
  }
  return table;
}

std::vector<uint32_t> build_wlc_table(std::span<const MaglevBackend> backends) {
  std::vector<uint32_t> table;
  for (const MaglevBackend& b : backends) {
    if (b.weight > 0) table.push_back(b.id);
  }
  return table;
}

}  // namespace ilb::cp

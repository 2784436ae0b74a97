// Maglev table population with weights.
//
// Permutations follow the paper: for a backend named n, offset = h1(n) % M and
// skip = h2(n) % (M - 1) + 1, and its preference list is p[j] = (offset + j * skip) % M. Because M
// is prime and 1 <= skip < M, every list visits every slot exactly once. h1 and h2 are XXH64 with
// seeds 0 and 1: XXH64's output is specified byte for byte and is the same on every machine and
// every xxHash release, so every ilb instance, old or new, derives the same permutations.
//
// Population runs in rounds over the backends sorted by (name, id), so the input order does not
// matter. Weights are applied with integer credit: at the start of its turn in each round a
// backend earns `weight` credit and then claims one slot (its next free preferred slot) for every
// `max_weight` of credit it holds. The heaviest backend therefore claims exactly one slot per
// round, and a backend of weight w claims floor(rounds * w / max_weight) slots or one more, which
// keeps every share proportional to its weight to within a slot. Fractional credit carries over, so
// light backends are not starved by rounding, and integer arithmetic keeps the result identical on
// every machine. With equal weights this is exactly the paper's algorithm.
#include "controlplane/tables/maglev.h"

#include <tbb/parallel_for.h>
#include <xxhash.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "controlplane/tables/wrr.h"

namespace ilb::cp {
namespace {

constexpr uint32_t kNoBackend = UINT32_MAX;

bool is_prime(uint32_t n) {
  if (n < 2) return false;
  for (uint64_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

struct Walker {
  uint32_t id = 0;
  uint64_t weight = 0;
  const std::string* name = nullptr;
  uint64_t offset = 0;
  uint64_t skip = 0;
  uint64_t next = 0;  // index j of the next preference to try
  uint64_t credit = 0;
};

bool same_backends(const std::vector<MaglevBackend>& a, const std::vector<MaglevBackend>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const MaglevBackend& x, const MaglevBackend& y) {
                      return x.id == y.id && x.weight == y.weight && x.name == y.name;
                    });
}

}  // namespace

std::vector<uint32_t> build_maglev_table(std::span<const MaglevBackend> backends,
                                         uint32_t table_size) {
  std::vector<Walker> walkers;
  uint64_t max_weight = 0;
  for (const MaglevBackend& b : backends) {
    if (b.weight == 0) continue;
    if (b.id == 0) throw std::invalid_argument("maglev: backend '" + b.name + "' has id 0");
    walkers.push_back(Walker{.id = b.id, .weight = b.weight, .name = &b.name});
    max_weight = std::max<uint64_t>(max_weight, b.weight);
  }
  if (walkers.empty()) return {};
  if (!is_prime(table_size)) {
    throw std::invalid_argument("maglev: table size " + std::to_string(table_size) +
                                " is not prime");
  }
  std::sort(walkers.begin(), walkers.end(), [](const Walker& a, const Walker& b) {
    return *a.name != *b.name ? *a.name < *b.name : a.id < b.id;
  });

  const uint64_t m = table_size;
  for (Walker& w : walkers) {
    w.offset = XXH64(w.name->data(), w.name->size(), 0) % m;
    // With M == 2 the only valid skip is 1, which the formula yields since h2 % 1 == 0.
    w.skip = XXH64(w.name->data(), w.name->size(), 1) % (m - 1) + 1;
  }

  std::vector<uint32_t> table(table_size, kNoBackend);
  uint64_t filled = 0;
  while (true) {
    for (Walker& w : walkers) {
      w.credit += w.weight;
      while (w.credit >= max_weight) {
        w.credit -= max_weight;
        uint64_t slot = (w.offset + w.next * w.skip) % m;
        while (table[slot] != kNoBackend) {
          ++w.next;
          slot = (w.offset + w.next * w.skip) % m;
        }
        table[slot] = w.id;
        ++w.next;
        if (++filled == m) return table;
      }
    }
  }
}

const std::vector<std::vector<uint32_t>>& TableBuilder::build(
    const std::vector<TableRequest>& requests) {
  std::vector<size_t> stale;
  for (size_t i = 0; i < requests.size(); ++i) {
    const bool cached = i < previous_.size() && previous_[i].table_size == requests[i].table_size &&
                        previous_[i].kind == requests[i].kind &&
                        same_backends(previous_[i].backends, requests[i].backends);
    if (!cached) stale.push_back(i);
  }

  // Build everything first: if a request is invalid, the exception leaves the cache untouched.
  std::vector<std::vector<uint32_t>> built(stale.size());
  tbb::parallel_for(size_t{0}, stale.size(), [&](size_t k) {
    const TableRequest& r = requests[stale[k]];
    switch (r.kind) {
      case TableKind::kMaglev:
        built[k] = build_maglev_table(r.backends, r.table_size);
        break;
      case TableKind::kWrr:
        built[k] = build_wrr_table(r.backends, r.table_size);
        break;
      case TableKind::kWlc:
        built[k] = build_wlc_table(r.backends);
        break;
    }
  });

  std::vector<std::vector<uint32_t>> tables(requests.size());
  for (size_t i = 0; i < requests.size() && i < tables_.size(); ++i) {
    tables[i] = std::move(tables_[i]);
  }
  for (size_t k = 0; k < stale.size(); ++k) tables[stale[k]] = std::move(built[k]);

  tables_ = std::move(tables);
  previous_ = requests;
  last_rebuilt_ = stale.size();
  return tables_;
}

}  // namespace ilb::cp

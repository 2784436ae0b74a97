// Maglev consistent hashing (Eisenbud et al., NSDI 2016), with weights. Tables are computed here,
// in the control plane, and shipped to the dataplane in the snapshot; the dataplane only indexes
// them. The permutation of each backend is derived from its stable name ("10.0.0.1:3306"), so
// every ilb instance with the same backend set builds the same table.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ilb::cp {

struct MaglevBackend {
  uint32_t id = 0;      // value written into the table; never 0
  uint32_t weight = 0;  // relative share; 0 = gets no slots
  std::string name;     // stable identity hashed for the permutation, e.g. "10.0.0.1:80"
};

// Returns a table of `table_size` backend ids (table_size must be prime). Each backend's share of
// slots is proportional to its weight. Returns an empty vector when no backend has weight > 0.
std::vector<uint32_t> build_maglev_table(std::span<const MaglevBackend> backends,
                                         uint32_t table_size);

// Which kind of table a service's scheduler needs.
enum class TableKind : uint8_t {
  kMaglev,  // maglev and source: `table_size` (prime) entries of consistent hashing
  kWrr,     // weighted round robin, at most `table_size` entries (wrr.h)
  kWlc,     // each backend once, for weighted least connections (wrr.h)
};

// One service's table request, for the parallel builder.
struct TableRequest {
  std::vector<MaglevBackend> backends;
  uint32_t table_size = 0;
  TableKind kind = TableKind::kMaglev;
};

// Builds many tables in parallel with oneTBB and caches them: a request identical to the one
// previously built at the same index is not rebuilt. Thread-compatible (one caller at a time).
class TableBuilder {
 public:
  // Returns one table per request, in order. References stay valid until the next call.
  const std::vector<std::vector<uint32_t>>& build(const std::vector<TableRequest>& requests);
  // How many tables the last build() actually computed (the rest came from the cache).
  size_t last_rebuilt() const { return last_rebuilt_; }

 private:
  std::vector<TableRequest> previous_;
  std::vector<std::vector<uint32_t>> tables_;
  size_t last_rebuilt_ = 0;
};

}  // namespace ilb::cp

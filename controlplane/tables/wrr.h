// Tables for the schedulers that do not hash: `wrr` (weighted round robin) and `wlc` (weighted
// least connections). Like Maglev tables they are computed here and shipped in the snapshot as a
// list of backend ids, so the dataplane's part stays an index into an array:
//   - wrr: an interleaved sequence in which each backend appears in proportion to its weight,
//     spread out rather than in runs (the "smooth" weighted round robin of nginx), so that a
//     worker stepping through it one new connection at a time alternates between backends.
//   - wlc: each backend with weight > 0 once; the dataplane compares its own connection counts
//     divided by the weights the snapshot carries.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "controlplane/tables/maglev.h"

namespace ilb::cp {

// The wrr sequence for `backends`, at most `max_entries` long (weights are divided by their
// greatest common divisor, then scaled down proportionally, each to at least 1, if their sum is
// still longer). Empty when no backend has weight > 0.
std::vector<uint32_t> build_wrr_table(std::span<const MaglevBackend> backends,
                                      uint32_t max_entries);

// The wlc table: the ids of the backends with weight > 0, in the given order.
std::vector<uint32_t> build_wlc_table(std::span<const MaglevBackend> backends);

}  // namespace ilb::cp

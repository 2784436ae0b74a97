// Encoding and decoding of one ctl slot (layout in dataplane/abi/ilb_abi.h). Kept apart from the
// publisher's protocol so that recovery and tests decode slots with exactly the checks the
// encoder's output must pass.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "controlplane/publish/snapshot.h"

namespace ilb::cp {

// Throws std::invalid_argument naming the first ABI limit or invariant `s` breaks: counts, id
// range and uniqueness, service indexes, table sizes, table entries that are not backend ids of
// the same service, names that do not fit.
void validate_snapshot(const Snapshot& s);

// Bytes of the slot `s` occupies, SlotHeader included.
uint64_t encoded_size(const Snapshot& s);

// Writes the records and tables of a validated `s` after the slot's SlotHeader and fills the
// header's counts and offsets. Leaves `generation` and `checksum` to the caller. Returns
// payload_end.
uint64_t encode_slot_payload(const Snapshot& s, uint8_t* slot);

// A complete slot for `s` outside shared memory, sealed as the publisher seals one: payload,
// `generation` and checksum. For tests, benchmarks and tools that feed the dataplane's
// validator directly.
std::vector<uint8_t> encode_slot(const Snapshot& s, uint64_t generation);

// Decodes a slot as untrusted input: checksum, counts, offsets against `slot_size`, enum values,
// table entries against the backend ids. Does not look at the generation. Returns false with
// `error` set.
bool decode_slot(const uint8_t* slot, uint64_t slot_size, Snapshot& out, std::string& error);

}  // namespace ilb::cp

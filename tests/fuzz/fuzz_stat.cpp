// libFuzzer target for the control plane's reading of the dataplane's stat region: shared memory
// written by another process, so untrusted. A valid region (as the dataplane lays it out, with a
// live heartbeat) is patched with the input and then read as the daemon and ilbctl read it:
// StatReader::refresh(), the API's status, services and backends documents, the Prometheus text,
// and ilbctl's tables of the status.
//
// Input: patches, each 3 bytes of offset into the region (little-endian, modulo its size), 1 byte
// of length and that many bytes. Invariants besides ASan/UBSan:
// - every document serialises as the API sends it (json_body) and parses back as JSON;
// - the metrics are valid text format 0.0.4 (tests/unit/common/prometheus_text.h: one HELP and
//   TYPE per family, well-formed names, escaped label values, numbers, no series twice);
// - ilbctl formats the status it would receive without throwing.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "controlplane/api/http_types.h"
#include "controlplane/api/metrics.h"
#include "controlplane/api/views.h"
#include "controlplane/publish/stat_reader.h"
#include "controlplane/state/state.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/unit/common/prometheus_text.h"
#include "tests/unit/publish/fake_dataplane.h"
#include "tests/unit/publish/test_configs.h"
#include "tools/ilbctl/format.h"

namespace {

using nlohmann::json;

struct World {
  World() : dataplane(instance), stat(instance) {
    state.apply_config(ilb::cp::test::two_services());
    for (const auto& svc : state.services()) {
      for (const auto& b : svc.backends) {
        state.set_health(b.id, b.id % 2 == 0 ? ilb::abi::Health::kUp : ilb::abi::Health::kDown,
                         "fuzz");
      }
    }
    info.instance = instance;
    info.config_path = "fuzz.toml";
    auto* h = dataplane.header();
    h->worker_count = 1;
    h->port_count = 1;
    const auto* bytes = reinterpret_cast<const uint8_t*>(h);
    pristine.assign(bytes, bytes + ilb::abi::stat_region_bytes());
  }
  ~World() = default;

  std::string instance = "fuzzstat" + std::to_string(getpid());
  ilb::cp::test::FakeDataplane dataplane;
  ilb::cp::StatReader stat;
  ilb::cp::State state;
  ilb::cp::DaemonInfo info;
  std::vector<uint8_t> pristine;
};

json round_trip(const json& doc) {
  // What a client of the API receives: the body as the server writes it, parsed.
  const std::string body = ilb::cp::json_body(doc);
  const json back = json::parse(body, nullptr, false);
  ILB_FUZZ_CHECK(!back.is_discarded(), "every document the API sends is valid JSON");
  return back;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World w;
  auto* region = reinterpret_cast<uint8_t*>(w.dataplane.header());
  const size_t region_size = w.pristine.size();
  std::memcpy(region, w.pristine.data(), region_size);
  w.dataplane.beat();
  while (size >= 4) {
    const size_t offset =
        (data[0] | (size_t{data[1]} << 8) | (size_t{data[2]} << 16)) % region_size;
    const size_t len = std::min({size_t{data[3]}, size - 4, region_size - offset});
    std::memcpy(region + offset, data + 4, len);
    data += 4 + len;
    size -= 4 + len;
  }

  w.stat.refresh();
  const json status = round_trip(ilb::cp::status_json(w.info, w.state, w.stat));
  round_trip(ilb::cp::services_json(w.state, w.stat));
  for (const auto& svc : w.state.services()) round_trip(ilb::cp::backends_json(svc, w.stat));

  const std::string text = ilb::cp::metrics_text(w.info, w.state, w.stat);
  const std::string problem = ilb::test::format_problem(text);
  if (!problem.empty()) std::fprintf(stderr, "metrics: %s\n", problem.c_str());
  ILB_FUZZ_CHECK(problem.empty(), "the metrics are valid Prometheus text");

  (void)ilb::ctl::format_status(status);
  return 0;
}

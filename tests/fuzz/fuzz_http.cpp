// libFuzzer target for the control plane's HTTP front door: the bytes a client sends to the API
// socket or the metrics port, through ilb::cp::HttpRequestParser and then, for a complete request,
// the API's Router (over a model that answers like the daemon) and the metrics endpoint.
//
// Input: byte 0 seeds how the rest is split into reads (as a network would), the rest is what
// the client sent. Invariants besides ASan/UBSan:
// - the verdict does not depend on the split: the same bytes fed in one read give the same
//   status, the same request or the same error;
// - every answer is one the API documents (200, 400, 404, 405, 413, 422), JSON, and every error
//   is {"error": "<text>"};
// - the model is only asked to change a backend for a request that named a valid IPv4:port and a
//   valid state.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "controlplane/api/http_request_parser.h"
#include "controlplane/api/metrics.h"
#include "controlplane/api/router.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using ilb::cp::HttpRequestParser;
using ilb::cp::HttpResponse;
using Status = HttpRequestParser::Status;

constexpr size_t kMaxRequestBytes = 4096;

// Answers like the daemon with one service "web" holding backend 10.0.0.1:80.
class FakeModel : public ilb::cp::ApiModel {
 public:
  nlohmann::json status() override { return {{"instance", "fuzz"}}; }
  nlohmann::json services() override { return nlohmann::json::array({{{"name", "web"}}}); }
  std::optional<nlohmann::json> backends(const std::string& service) override {
    if (service != "web") return std::nullopt;
    return nlohmann::json::array({{{"address", "10.0.0.1"}, {"port", 80}}});
  }
  ilb::cp::AdminResult set_admin(const std::string& service, uint32_t address, uint16_t port,
                                 ilb::abi::AdminState) override {
    ++admin_calls;
    if (service != "web") return ilb::cp::AdminResult::kNoService;
    if (address != 0x0100000a || port != 80) return ilb::cp::AdminResult::kNoBackend;
    return ilb::cp::AdminResult::kOk;
  }
  ilb::cp::ReloadResult reload() override {
    reloaded = !reloaded;
    if (reloaded) return {true, "", {{"services", 1}}};
    return {false, "fuzz.toml:1:1: instance: bad", {}};
  }
  int admin_calls = 0;
  bool reloaded = false;
};

void check_response(const HttpResponse& r, bool metrics) {
  ILB_FUZZ_CHECK(r.status == 200 || r.status == 400 || r.status == 404 || r.status == 405 ||
                     r.status == 413 || r.status == 422,
                 "only the statuses the API documents");
  if (metrics && r.status == 200) {
    ILB_FUZZ_CHECK(r.content_type.starts_with("text/plain; version=0.0.4"),
                   "metrics are Prometheus text");
    return;
  }
  ILB_FUZZ_CHECK(r.content_type == "application/json", "the API answers JSON");
  const auto body = nlohmann::json::parse(r.body, nullptr, false);
  ILB_FUZZ_CHECK(!body.is_discarded(), "every body is valid JSON");
  if (r.status != 200) {
    ILB_FUZZ_CHECK(
        body.is_object() && body.size() == 1 && body.contains("error") && body["error"].is_string(),
        "every error is {\"error\": text}");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint32_t seed = data[0] * 2654435761u + 1;
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const size_t n = size - 1;

  HttpRequestParser split(kMaxRequestBytes);
  for (size_t at = 0; at < n && split.status() == Status::kNeedMore;) {
    seed = seed * 1103515245u + 12345u;
    const size_t len = std::min<size_t>(n - at, 1 + (seed >> 16) % 64);
    split.feed(bytes + at, len);
    at += len;
  }
  HttpRequestParser whole(kMaxRequestBytes);
  whole.feed(bytes, n);
  ILB_FUZZ_CHECK(split.status() == whole.status(), "the verdict does not depend on the split");
  if (whole.status() == Status::kError) {
    ILB_FUZZ_CHECK(split.error().status == whole.error().status, "the same error either way");
    check_response(whole.error(), false);
    return 0;
  }
  if (whole.status() != Status::kComplete) return 0;
  const auto& r = whole.request();
  ILB_FUZZ_CHECK(r.method == split.request().method && r.target == split.request().target &&
                     r.body == split.request().body,
                 "the same request either way");
  ILB_FUZZ_CHECK(!r.method.empty(), "a complete request has a method");

  FakeModel model;
  ilb::cp::Router router(model);
  const HttpResponse api = router.handle(r);
  check_response(api, false);
  if (model.admin_calls > 0) {
    ILB_FUZZ_CHECK(r.method == "POST", "admin changes only on POST");
    const auto body = nlohmann::json::parse(r.body, nullptr, false);
    ILB_FUZZ_CHECK(body.is_object() && body.contains("state") &&
                       ilb::cp::parse_admin_state(body["state"].get<std::string>()).has_value(),
                   "admin changes only with a valid state");
  }
  check_response(ilb::cp::metrics_response(r, [] { return std::string("ilb_dataplane_up 0\n"); }),
                 true);
  return 0;
}

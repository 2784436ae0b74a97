// libFuzzer target for the control plane's configuration loader: ilb::cp::parse_config on the
// input as the text of ilb.toml. The loader promises one graceful ilb::ConfigError for anything
// invalid; any other exception escaping it, like any crash, is a finding. A Config it does return
// must respect the ABI limits the publisher encodes it under, since nothing checks them later.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <set>
#include <string>
#include <string_view>
#include <tuple>

#include "controlplane/config/loader.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace abi = ilb::abi;

void check_config(const ilb::cp::Config& cfg) {
  ILB_FUZZ_CHECK(cfg.path == "fuzz.toml", "the config records the path it was given");
  ILB_FUZZ_CHECK(cfg.services.size() <= abi::kMaxServices, "at most kMaxServices services");
  std::set<std::string> names;
  std::set<std::tuple<uint32_t, uint16_t, abi::Protocol>> keys;
  uint64_t backends = 0;
  uint64_t table_entries = 0;
  for (const auto& s : cfg.services) {
    ILB_FUZZ_CHECK(!s.name.empty() && s.name.size() < abi::kNameLen,
                   "a service name fits the ABI's NUL-terminated name field");
    ILB_FUZZ_CHECK(names.insert(s.name).second, "service names are unique");
    ILB_FUZZ_CHECK(keys.insert({s.vip, s.port, s.protocol}).second,
                   "(vip, port, protocol) is unique");
    ILB_FUZZ_CHECK(s.vip != 0 && s.port != 0,
                   "a service's VIP and port are never zero (the dataplane rejects zero)");
    ILB_FUZZ_CHECK(s.table_size >= 7 && s.table_size <= abi::kMaxTableSize,
                   "table_size is within the ABI's limits");
    ILB_FUZZ_CHECK(s.tcp_syn_timeout_s > 0 && s.tcp_established_timeout_s > 0 &&
                       s.tcp_fin_timeout_s > 0 && s.udp_timeout_s > 0,
                   "timeouts are never zero (the dataplane rejects zero)");
    ILB_FUZZ_CHECK(!s.backends.empty(), "every service has at least one backend");
    for (const auto& b : s.backends) {
      ILB_FUZZ_CHECK(b.address != 0 && b.port != 0,
                     "a backend's address and port are never zero (the dataplane rejects zero)");
    }
    backends += s.backends.size();
    table_entries += s.table_size;
  }
  ILB_FUZZ_CHECK(backends < abi::kMaxBackends, "backend ids fit in [1, kMaxBackends)");
  ILB_FUZZ_CHECK(table_entries <= abi::kMaxTableEntries, "all tables fit in one snapshot");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    check_config(ilb::cp::parse_config(text, "fuzz.toml"));
  } catch (const ilb::ConfigError&) {
    // The documented way to reject a file.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parse_config threw %s instead of ilb::ConfigError\n", e.what());
    ILB_FUZZ_CHECK(false, "parse_config rejects input only with ilb::ConfigError");
  }
  return 0;
}

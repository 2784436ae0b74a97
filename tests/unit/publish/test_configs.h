// Small control-plane configurations built in code for the state, publisher and API tests.
#pragma once

#include <arpa/inet.h>

#include <string>

#include "controlplane/config/model.h"

namespace ilb::cp::test {

// GCC 12 reports a false -Wmaybe-uninitialized for HealthCheckConfig's default expect_status
// (an initializer_list member initializer) when these helpers are inlined at -O2.
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

inline BackendConfig backend(const char* address, uint16_t port, uint32_t weight = 100) {
  BackendConfig b;
  b.address = inet_addr(address);
  b.port = port;
  b.weight = weight;
  return b;
}

inline ServiceConfig service(const std::string& name, const char* vip, uint16_t port,
                             std::vector<BackendConfig> backends, uint32_t table_size = 251) {
  ServiceConfig s;
  s.name = name;
  s.vip = inet_addr(vip);
  s.port = port;
  s.table_size = table_size;
  s.backends = std::move(backends);
  return s;
}

// Two services: "web" with three backends and "db" with two.
inline Config two_services() {
  Config c;
  c.path = "test.toml";
  c.instance = "test";
  c.services.push_back(
      service("web", "10.0.0.100", 80,
              {backend("10.0.1.1", 80), backend("10.0.1.2", 80), backend("10.0.1.3", 80)}));
  c.services.push_back(
      service("db", "10.0.0.100", 3306, {backend("10.0.2.1", 3306), backend("10.0.2.2", 3306)}));
  return c;
}

#pragma GCC diagnostic pop

}  // namespace ilb::cp::test

// The smallest valid top of an ilb.toml (instance "t", one port, one SNAT address), for tests
// that append the services they need.
#pragma once

#include <string>

namespace ilb::test {

inline const std::string kConfigHead = R"(instance = "t"

[dataplane]
snat_addresses = ["10.0.0.101"]

[[dataplane.port]]
name = "lan"
device = "net_ring0"
address = "10.0.0.2/24"
)";

}  // namespace ilb::test

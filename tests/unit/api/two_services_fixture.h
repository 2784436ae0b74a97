// The fixture of the tests of what the control plane reports (views, metrics): the two services
// of test::two_services() with web's first backend up, and a unique instance name for a fake
// dataplane's stat region.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "controlplane/state/state.h"
#include "fake_dataplane.h"
#include "test_configs.h"

namespace ilb::cp::test {

class TwoServicesTest : public ::testing::Test {
 protected:
  explicit TwoServicesTest(const std::string& tag) : instance_(unique_instance(tag)) {}
  void SetUp() override {
    state_.apply_config(two_services());
    web_ = state_.find_service("web");
    ASSERT_NE(web_, nullptr);
    ASSERT_TRUE(state_.set_health(web_->backends[0].id, abi::Health::kUp, "HTTP 200"));
  }

  std::string instance_;
  State state_;
  const ServiceState* web_ = nullptr;
};

}  // namespace ilb::cp::test

// The checker driving redis and memcached probes against real servers: dispatch by check type, and
// every redis-only field taking effect when set_targets() changes it.
#include <gtest/gtest.h>

#include <memory>

#include "controlplane/health/health_checker.h"
#include "tests/unit/health/child_server.h"
#include "tests/unit/health/loopback.h"

namespace ilb::cp {
namespace {

using namespace test;
using abi::Health;

class CacheCheckerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const uint16_t redis_port = free_port();
    auto argv = redis_argv(redis_port, dir_.path());
    argv.insert(argv.end(), {"--requirepass", "secret"});
    redis_ = std::make_unique<ChildServer>(argv, redis_port, dir_.path());
    const uint16_t memcached_port = free_port();
    memcached_ = std::make_unique<ChildServer>(memcached_argv(memcached_port), memcached_port);
  }
  void TearDown() override {
    checker_.stop();
    redis_.reset();
    memcached_.reset();
  }

  CheckTarget redis_target(const std::string& password, const std::string& username = "",
                           const std::string& role = "") const {
    CheckTarget t = loopback_target(1, CheckType::kRedis, redis_->port(), 30);
    t.check.rise = 1;
    t.check.fall = 1;
    t.check.password = password;
    t.check.username = username;
    t.check.role = role;
    return t;
  }

  // Waits until key 1's health is `want` and returns the reason of the last probe.
  std::string wait_for(Health want) {
    EXPECT_TRUE(run_until(io_, [&] { return checker_.health(1) == want; }))
        << "last result: " << checker_.last_result(1);
    return checker_.last_result(1);
  }

  ScratchDir dir_;
  std::unique_ptr<ChildServer> redis_;
  std::unique_ptr<ChildServer> memcached_;
  asio::io_context io_;
  size_t events_ = 0;
  HealthChecker checker_{io_, [this](const HealthEvent&) { ++events_; }};
};

TEST_F(CacheCheckerTest, RedisAndMemcachedTargetsGoUp) {
  CheckTarget memcached = loopback_target(2, CheckType::kMemcached, memcached_->port(), 30);
  checker_.set_targets({redis_target("secret"), memcached});
  ASSERT_TRUE(run_until(
      io_, [&] { return checker_.health(1) == Health::kUp && checker_.health(2) == Health::kUp; }))
      << checker_.last_result(1) << " / " << checker_.last_result(2);
  EXPECT_EQ(checker_.last_result(1), "redis: +PONG");
  EXPECT_TRUE(checker_.last_result(2).starts_with("memcached: VERSION "))
      << checker_.last_result(2);
}

TEST_F(CacheCheckerTest, ChangedRedisCredentialsAndRoleTakeEffect) {
  checker_.set_targets({redis_target("secret")});
  EXPECT_EQ(wait_for(Health::kUp), "redis: +PONG");

  checker_.set_targets({redis_target("wrong")});
  EXPECT_TRUE(wait_for(Health::kDown).starts_with("redis: -WRONGPASS"));

  checker_.set_targets({redis_target("secret")});
  EXPECT_EQ(wait_for(Health::kUp), "redis: +PONG");

  checker_.set_targets({redis_target("secret", "nobody")});
  EXPECT_TRUE(wait_for(Health::kDown).starts_with("redis: -WRONGPASS"));

  checker_.set_targets({redis_target("secret", "default")});
  EXPECT_EQ(wait_for(Health::kUp), "redis: +PONG");

  checker_.set_targets({redis_target("secret", "default", "replica")});
  EXPECT_EQ(wait_for(Health::kDown), "redis: role is master, want replica");

  checker_.set_targets({redis_target("secret", "default", "master")});
  EXPECT_EQ(wait_for(Health::kUp), "redis: +PONG, role master");
}

}  // namespace
}  // namespace ilb::cp

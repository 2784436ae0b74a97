#include "controlplane/api/router.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace ilb::cp {
namespace {

using nlohmann::json;

class FakeModel : public ApiModel {
 public:
  json status() override { return json{{"instance", "lab"}}; }
  json services() override { return json::array({json{{"name", "web"}}}); }
  std::optional<json> backends(const std::string& service) override {
    if (service != "web" && service != "my svc") return std::nullopt;
    return json::array({json{{"id", 1}}});
  }
  AdminResult set_admin(const std::string& service, uint32_t address, uint16_t port,
                        abi::AdminState state) override {
    last_service = service;
    last_address = address;
    last_port = port;
    last_state = state;
    ++admin_calls;
    if (service != "web") return AdminResult::kNoService;
    if (port != 80) return AdminResult::kNoBackend;
    return AdminResult::kOk;
  }
  ReloadResult reload() override {
    ++reload_calls;
    if (!reload_ok)
      return ReloadResult{false, "ilb.toml:3:7: service[0].port: expected 1..65535", {}};
    return ReloadResult{true, "", json{{"services", 1}}};
  }

  bool reload_ok = true;
  int reload_calls = 0;
  int admin_calls = 0;
  std::string last_service;
  uint32_t last_address = 0;
  uint16_t last_port = 0;
  abi::AdminState last_state = abi::AdminState::kEnabled;
};

class RouterTest : public ::testing::Test {
 protected:
  HttpResponse call(const std::string& method, const std::string& target,
                    const std::string& body = "") {
    return router_.handle(HttpRequest{method, target, body});
  }
  static std::string error_of(const HttpResponse& r) {
    return json::parse(r.body).at("error").get<std::string>();
  }

  FakeModel model_;
  Router router_{model_};
};

TEST_F(RouterTest, StatusReturnsModelJson) {
  auto r = call("GET", "/v1/status");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(json::parse(r.body)["instance"], "lab");
}

TEST_F(RouterTest, ServicesIgnoresQueryAndTrailingSlash) {
  EXPECT_EQ(call("GET", "/v1/services?verbose=1").status, 200);
  EXPECT_EQ(json::parse(call("GET", "/v1/services/").body)[0]["name"], "web");
}

TEST_F(RouterTest, BackendsOfUnknownServiceIs404) {
  auto r = call("GET", "/v1/services/nope/backends");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r), "no such service: nope");
}

TEST_F(RouterTest, ServiceNameIsPercentDecoded) {
  EXPECT_EQ(call("GET", "/v1/services/my%20svc/backends").status, 200);
  EXPECT_EQ(call("GET", "/v1/services/my%2/backends").status, 400);
}

TEST_F(RouterTest, AdminChangePassesParsedArguments) {
  auto r = call("POST", "/v1/services/web/backends/10.0.0.7:80/admin", R"({"state":"draining"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(model_.last_service, "web");
  EXPECT_EQ(model_.last_address, inet_addr("10.0.0.7"));
  EXPECT_EQ(model_.last_port, 80);
  EXPECT_EQ(model_.last_state, abi::AdminState::kDraining);
  auto body = json::parse(r.body);
  EXPECT_EQ(body["admin"], "draining");
  EXPECT_EQ(body["backend"], "10.0.0.7:80");
}

TEST_F(RouterTest, AdminWithBadStateIs400AndChangesNothing) {
  auto r = call("POST", "/v1/services/web/backends/10.0.0.7:80/admin", R"({"state":"up"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_of(r).find("bad state"), std::string::npos);
  EXPECT_EQ(model_.admin_calls, 0);
}

TEST_F(RouterTest, AdminWithMalformedBodyIs400) {
  EXPECT_EQ(call("POST", "/v1/services/web/backends/10.0.0.7:80/admin", "{state").status, 400);
  EXPECT_EQ(call("POST", "/v1/services/web/backends/10.0.0.7:80/admin", "[1]").status, 400);
  EXPECT_EQ(call("POST", "/v1/services/web/backends/10.0.0.7:80/admin", R"({"state":1})").status,
            400);
  EXPECT_EQ(call("POST", "/v1/services/web/backends/10.0.0.7:80/admin", "").status, 400);
  EXPECT_EQ(model_.admin_calls, 0);
}

TEST_F(RouterTest, AdminWithBadAddressIs400) {
  for (const char* addr : {"10.0.0.7", "10.0.0.7:0", "10.0.0.7:65536", "host:80", "10.0.0.7:8x"}) {
    auto r = call("POST", std::string("/v1/services/web/backends/") + addr + "/admin",
                  R"({"state":"enabled"})");
    EXPECT_EQ(r.status, 400) << addr;
  }
  EXPECT_EQ(model_.admin_calls, 0);
}

TEST_F(RouterTest, AdminOfUnknownServiceOrBackendIs404) {
  auto r = call("POST", "/v1/services/db/backends/10.0.0.7:80/admin", R"({"state":"enabled"})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r), "no such service: db");
  r = call("POST", "/v1/services/web/backends/10.0.0.7:81/admin", R"({"state":"enabled"})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r), "no backend 10.0.0.7:81 in service web");
}

TEST_F(RouterTest, ReloadWithInvalidConfigIs422WithLoaderMessage) {
  model_.reload_ok = false;
  auto r = call("POST", "/v1/reload");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(error_of(r), "ilb.toml:3:7: service[0].port: expected 1..65535");
}

TEST_F(RouterTest, ReloadSuccessReturnsInfo) {
  auto r = call("POST", "/v1/reload");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["services"], 1);
}

TEST_F(RouterTest, WrongMethodIs405) {
  EXPECT_EQ(call("POST", "/v1/status").status, 405);
  EXPECT_EQ(call("GET", "/v1/reload").status, 405);
  EXPECT_EQ(model_.reload_calls, 0);
  EXPECT_EQ(call("GET", "/v1/services/web/backends/10.0.0.7:80/admin").status, 405);
}

TEST_F(RouterTest, UnknownRouteIs404) {
  EXPECT_EQ(call("GET", "/").status, 404);
  EXPECT_EQ(call("GET", "/v2/status").status, 404);
  EXPECT_EQ(call("GET", "/v1/services/web").status, 404);
  EXPECT_EQ(call("GET", "*").status, 400);
}

TEST_F(RouterTest, BytesThatAreNotUtf8InTheRequestAreEchoedAsValidJson) {
  // The errors quote the target, the service name or the state; a JSON serializer refuses
  // invalid UTF-8, which would have turned these answers into 500s (found by fuzz_http).
  auto r = call("GET", "/v1\xda/status");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r), "no such endpoint: /v1\xef\xbf\xbd/status") << "U+FFFD replaces the byte";
  r = call("GET", "/v1/services/%ff/backends");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r), "no such service: \xef\xbf\xbd");
  r = call("POST", "/v1/services/web/backends/10.0.0.7:80/admin", "{\"state\":\"\xff\"}");
  EXPECT_EQ(r.status, 400) << "nlohmann's parser rejects invalid UTF-8 in the body itself";
  EXPECT_EQ(model_.admin_calls, 0);
}

}  // namespace
}  // namespace ilb::cp

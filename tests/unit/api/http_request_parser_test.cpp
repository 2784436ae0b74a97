#include "controlplane/api/http_request_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace ilb::cp {
namespace {

using Status = HttpRequestParser::Status;

const std::string kPost =
    "POST /v1/services/web/backends/10.0.0.1:80/admin HTTP/1.1\r\nHost: x\r\n"
    "Content-Length: 20\r\n\r\n{\"state\":\"draining\"}";

TEST(HttpRequestParser, ReadsMethodTargetAndBody) {
  HttpRequestParser p(1024);
  ASSERT_EQ(p.feed(kPost.data(), kPost.size()), Status::kComplete);
  EXPECT_EQ(p.request().method, "POST");
  EXPECT_EQ(p.request().target, "/v1/services/web/backends/10.0.0.1:80/admin");
  EXPECT_EQ(p.request().body, "{\"state\":\"draining\"}");
}

TEST(HttpRequestParser, BytesSplitAnywhereGiveTheSameRequest) {
  for (size_t cut = 1; cut < kPost.size(); ++cut) {
    HttpRequestParser p(1024);
    ASSERT_EQ(p.feed(kPost.data(), cut), Status::kNeedMore) << cut;
    ASSERT_EQ(p.feed(kPost.data() + cut, kPost.size() - cut), Status::kComplete) << cut;
    EXPECT_EQ(p.request().target, "/v1/services/web/backends/10.0.0.1:80/admin") << cut;
    EXPECT_EQ(p.request().body, "{\"state\":\"draining\"}") << cut;
  }
}

TEST(HttpRequestParser, AssemblesAChunkedBody) {
  const std::string r =
      "POST /v1/reload HTTP/1.1\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  HttpRequestParser p(1024);
  ASSERT_EQ(p.feed(r.data(), r.size()), Status::kComplete);
  EXPECT_EQ(p.request().body, "abcde");
}

TEST(HttpRequestParser, StopsAtTheEndOfTheFirstRequest) {
  const std::string two = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
  HttpRequestParser p(1024);
  ASSERT_EQ(p.feed(two.data(), two.size()), Status::kComplete);
  EXPECT_EQ(p.request().target, "/a");
  EXPECT_EQ(p.feed("garbage", 7), Status::kComplete) << "later bytes are ignored";
  EXPECT_EQ(p.request().target, "/a");
}

TEST(HttpRequestParser, MoreThanTheLimitIs413) {
  const std::string r = "GET /" + std::string(100, 'a') + " HTTP/1.1\r\n\r\n";
  HttpRequestParser exact(r.size());
  EXPECT_EQ(exact.feed(r.data(), r.size()), Status::kComplete);
  HttpRequestParser p(r.size() - 1);
  ASSERT_EQ(p.feed(r.data(), 50), Status::kNeedMore);
  ASSERT_EQ(p.feed(r.data() + 50, r.size() - 50), Status::kError);
  EXPECT_EQ(p.error().status, 413);
}

TEST(HttpRequestParser, BytesAfterTheRequestDoNotCountTowardsTheLimit) {
  const std::string r = "GET / HTTP/1.1\r\n\r\n" + std::string(2000, 'x');
  HttpRequestParser p(100);
  ASSERT_EQ(p.feed(r.data(), r.size()), Status::kComplete);
  EXPECT_EQ(p.request().target, "/");
}

TEST(HttpRequestParser, MalformedRequestsAndUpgradesAre400) {
  for (const std::string r :
       {"GET\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        "\x01\x02\x03 / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"}) {
    HttpRequestParser p(1024);
    EXPECT_EQ(p.feed(r.data(), r.size()), Status::kError) << r;
    EXPECT_EQ(p.error().status, 400) << r;
    EXPECT_NE(p.error().body.find("\"error\""), std::string::npos) << r;
  }
}

}  // namespace
}  // namespace ilb::cp

#include "controlplane/api/api_server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/executor_work_guard.hpp>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tools/ilbctl/client.h"

namespace ilb::cp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

int connect_to(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads until the server closes the connection (or 5 s pass).
std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, 5000) <= 0) break;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Sends raw bytes, returns the raw answer.
std::string raw_exchange(const std::string& path, const std::string& bytes) {
  int fd = connect_to(path);
  if (fd < 0) return "";
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and close before reading everything
    sent += static_cast<size_t>(n);
  }
  std::string answer = read_all(fd);
  ::close(fd);
  return answer;
}

int status_of(const std::string& answer) {
  if (answer.rfind("HTTP/1.1 ", 0) != 0) return -1;
  return std::stoi(answer.substr(9, 3));
}

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ilb-api-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    path_ = (dir_ / "run" / "api.sock").string();
  }
  void TearDown() override {
    stop();
    fs::remove_all(dir_);
  }

  void start(ApiServer::Limits limits = {}) {
    server_ = std::make_unique<ApiServer>(
        io_, path_,
        [this](const HttpRequest& r) -> HttpResponse {
          ++handled_;
          if (r.target == "/throw") throw std::runtime_error("boom");
          return HttpResponse{
              200, json{{"method", r.method}, {"target", r.target}, {"body", r.body}}.dump(),
              "application/json"};
        },
        limits);
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void stop() {
    if (thread_.joinable()) {
      guard_.reset();
      io_.stop();
      thread_.join();
    }
    server_.reset();
  }

  fs::path dir_;
  std::string path_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  std::unique_ptr<ApiServer> server_;
  std::thread thread_;
  std::atomic<int> handled_{0};
};

TEST_F(ApiServerTest, AnswersRequestWithJson) {
  start();
  auto reply = ilb::ctl::call(path_, "POST", "/v1/x?y=1", R"({"a":1})");
  EXPECT_EQ(reply.status, 200);
  auto body = json::parse(reply.body);
  EXPECT_EQ(body["method"], "POST");
  EXPECT_EQ(body["target"], "/v1/x?y=1");
  EXPECT_EQ(body["body"], R"({"a":1})");
}

TEST_F(ApiServerTest, CreatesParentDirectoryAndSetsMode0660) {
  start();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(ApiServerTest, HandlesChunkedBody) {
  start();
  auto answer = raw_exchange(path_,
                             "POST /v1/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  ASSERT_EQ(status_of(answer), 200) << answer;
  EXPECT_NE(answer.find(R"("body":"abcde")"), std::string::npos) << answer;
}

TEST_F(ApiServerTest, MalformedRequestGets400AndServerKeepsServing) {
  start();
  auto answer = raw_exchange(path_, "THIS IS NOT HTTP\r\n\r\n");
  EXPECT_EQ(status_of(answer), 400) << answer;
  EXPECT_NE(answer.find("\"error\""), std::string::npos);
  answer = raw_exchange(path_, "GET /x HTTP/1.1\r\nContent-Length: zz\r\n\r\n");
  EXPECT_EQ(status_of(answer), 400) << answer;
  EXPECT_EQ(handled_.load(), 0);
  EXPECT_EQ(ilb::ctl::call(path_, "GET", "/ok").status, 200);
}

TEST_F(ApiServerTest, OversizedRequestGets413WithoutReachingHandler) {
  ApiServer::Limits limits;
  limits.max_request_bytes = 4096;
  start(limits);
  std::string body(20000, 'x');
  auto answer = raw_exchange(path_, "POST /v1/reload HTTP/1.1\r\nContent-Length: " +
                                        std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(status_of(answer), 413) << answer;
  answer = raw_exchange(path_, "GET /" + std::string(8000, 'a') + " HTTP/1.1\r\n\r\n");
  EXPECT_EQ(status_of(answer), 413) << answer;
  EXPECT_EQ(handled_.load(), 0);
}

TEST_F(ApiServerTest, IdleClientGets408) {
  ApiServer::Limits limits;
  limits.idle_timeout = std::chrono::milliseconds(200);
  start(limits);
  auto answer = raw_exchange(path_, "GET /v1/status HTTP/1.1\r\n");  // never finishes
  EXPECT_EQ(status_of(answer), 408) << answer;
}

TEST_F(ApiServerTest, HandlerExceptionGets500) {
  start();
  auto reply = ilb::ctl::call(path_, "GET", "/throw");
  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(json::parse(reply.body)["error"], "internal error: boom");
  EXPECT_EQ(ilb::ctl::call(path_, "GET", "/ok").status, 200);
}

TEST_F(ApiServerTest, ConnectionsBeyondLimitGet503) {
  ApiServer::Limits limits;
  limits.max_connections = 2;
  start(limits);
  int a = connect_to(path_);
  int b = connect_to(path_);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  // Wait until the server holds both idle sessions, then the third is turned away.
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (status != 503 && std::chrono::steady_clock::now() < deadline) {
    status = status_of(raw_exchange(path_, "GET /ok HTTP/1.1\r\n\r\n"));
  }
  EXPECT_EQ(status, 503);
  ::close(a);
  ::close(b);
  const auto deadline2 = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (status != 200 && std::chrono::steady_clock::now() < deadline2) {
    status = status_of(raw_exchange(path_, "GET /ok HTTP/1.1\r\n\r\n"));
  }
  EXPECT_EQ(status, 200);
}

TEST_F(ApiServerTest, ReplacesStaleSocketFile) {
  fs::create_directories(fs::path(path_).parent_path());
  {
    // A socket file left behind by a crashed daemon: bound, then closed without unlink.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  ASSERT_TRUE(fs::exists(path_));
  start();
  EXPECT_EQ(ilb::ctl::call(path_, "GET", "/ok").status, 200);
}

TEST_F(ApiServerTest, RefusesSocketServedByAnotherProcess) {
  start();
  asio::io_context other_io;
  ApiServer other(other_io, path_, [](const HttpRequest&) { return HttpResponse{}; });
  EXPECT_THROW(other.start(), std::runtime_error);
  EXPECT_EQ(ilb::ctl::call(path_, "GET", "/ok").status, 200);  // the first one is untouched
}

TEST_F(ApiServerTest, RefusesPathThatIsNotASocket) {
  fs::create_directories(fs::path(path_).parent_path());
  { std::ofstream(path_) << "x"; }
  ApiServer server(io_, path_, [](const HttpRequest&) { return HttpResponse{}; });
  EXPECT_THROW(server.start(), std::runtime_error);
  EXPECT_TRUE(fs::is_regular_file(path_));
}

TEST_F(ApiServerTest, StopRemovesSocketFile) {
  start();
  ASSERT_TRUE(fs::exists(path_));
  stop();
  EXPECT_FALSE(fs::exists(path_));
}

TEST_F(ApiServerTest, ClientReportsNotRunningWhenNoServer) {
  try {
    ilb::ctl::call(path_, "GET", "/v1/status");
    FAIL() << "expected NotRunning";
  } catch (const ilb::ctl::NotRunning& e) {
    EXPECT_EQ(std::string(e.what()), "connect " + path_ + ": No such file or directory");
  }
}

}  // namespace
}  // namespace ilb::cp

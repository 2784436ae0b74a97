// The daemon end to end within one process: a real configuration file, the ctl region, the API on
// a Unix socket and ilbctl's client. Health checks are off ("none") so no probe leaves the host.
#include "controlplane/daemon.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "controlplane/config/loader.h"
#include "fake_dataplane.h"
#include "tools/ilbctl/client.h"

namespace ilb::cp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string config_text(const std::string& instance, const std::string& socket,
                        const std::string& extra_backend,
                        const std::string& controlplane_extra = "") {
  return "instance = \"" + instance +
         "\"\n"
         "[controlplane]\n" +
         controlplane_extra + "api_socket = \"" + socket +
         "\"\nlog_level = \"warn\"\nstate_file = \"" + socket +
         ".state\"\n"
         "[dataplane]\nsnat_addresses = [\"10.99.0.101\"]\n"
         "[[dataplane.port]]\nname = \"lan\"\ndevice = \"net_ring0\"\naddress = \"10.99.0.2/24\"\n"
         "[[service]]\nname = \"web\"\nvip = \"10.99.0.100\"\nport = 80\ntable_size = 251\n"
         "[service.health_check]\ntype = \"none\"\n"
         "[[service.backend]]\naddress = \"10.99.0.21\"\nport = 80\n"
         "[[service.backend]]\naddress = \"10.99.0.22\"\nport = 80\n" +
         extra_backend;
}

// A listening TCP socket on 127.0.0.1 and a free port; closed on destruction.
struct TcpListener {
  TcpListener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 1) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1: " << std::strerror(errno);
    }
    port = ntohs(a.sin_port);
  }
  ~TcpListener() { ::close(fd); }
  int fd = -1;
  uint16_t port = 0;
};

// Sends "GET target" to 127.0.0.1:port and returns the whole answer ("" if nothing answers).
std::string tcp_get(uint16_t port, const std::string& target) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string request = "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[4096];
      pollfd pfd{fd, POLLIN, 0};
      while (::poll(&pfd, 1, 5000) > 0) {
        const ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n <= 0) break;
        answer.append(buf, static_cast<size_t>(n));
      }
    }
  }
  ::close(fd);
  return answer;
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::warn);
    dir_ = fs::temp_directory_path() / ("ilb-daemon-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    socket_ = (dir_ / "cp.sock").string();
    config_path_ = (dir_ / "ilb.toml").string();
    write_config("");
  }
  void TearDown() override {
    stop();
    Publisher::unlink(instance_);
    fs::remove_all(dir_);
  }

  void write_config(const std::string& extra, const std::string& controlplane_extra = "") {
    std::ofstream(config_path_) << config_text(instance_, socket_, extra, controlplane_extra);
  }

  void start() {
    daemon_ = std::make_unique<Daemon>(load_config_file(config_path_));
    thread_ = std::thread([this] { exit_code_ = daemon_->run(); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!fs::exists(socket_) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    ASSERT_TRUE(fs::exists(socket_)) << "API socket never appeared";
  }
  void stop() {
    if (!thread_.joinable()) return;
    daemon_->request_stop();
    thread_.join();
    daemon_.reset();
  }

  json get(const std::string& target) {
    auto r = ilb::ctl::call(socket_, "GET", target);
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  }
  ilb::ctl::Reply post(const std::string& target, const std::string& body = "") {
    return ilb::ctl::call(socket_, "POST", target, body);
  }

  std::string instance_ = test::unique_instance("daemon");
  fs::path dir_;
  std::string socket_;
  std::string config_path_;
  std::unique_ptr<Daemon> daemon_;
  std::thread thread_;
  int exit_code_ = -1;
};

TEST_F(DaemonTest, PublishesAtStartAndOnAdminChange) {
  start();
  json status = get("/v1/status");
  EXPECT_EQ(status["instance"], instance_);
  EXPECT_EQ(status["published_gen"], 1);
  EXPECT_EQ(status["services"], 1);
  EXPECT_EQ(status["backends"], 2);
  EXPECT_EQ(status["backends_up"], 2);
  EXPECT_EQ(status["dataplane"]["running"], false);

  auto r = post("/v1/services/web/backends/10.99.0.21:80/admin", R"({"state":"disabled"})");
  EXPECT_EQ(r.status, 200) << r.body;
  // The publish is posted to the event loop; poll for it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (get("/v1/status")["published_gen"] != 2 && std::chrono::steady_clock::now() < deadline) {
  }
  EXPECT_EQ(get("/v1/status")["published_gen"], 2);
  json backends = get("/v1/services/web/backends");
  ASSERT_EQ(backends.size(), 2u);
  EXPECT_EQ(backends[0]["admin"], "disabled");
  EXPECT_EQ(backends[1]["admin"], "enabled");
  EXPECT_EQ(post("/v1/services/nope/backends/10.99.0.21:80/admin", R"({"state":"enabled"})").status,
            404);
}

TEST_F(DaemonTest, InvalidReloadIs422AndKeepsRunningState) {
  start();
  const json before = get("/v1/services/web/backends");
  {
    std::ofstream(config_path_) << "instance = \"" << instance_
                                << "\"\n[[service]]\nport = \"x\"\n";
  }
  auto r = post("/v1/reload");
  EXPECT_EQ(r.status, 422);
  const std::string error = json::parse(r.body)["error"];
  EXPECT_NE(error.find(config_path_), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << "one line";
  EXPECT_EQ(get("/v1/services/web/backends"), before);
  EXPECT_EQ(get("/v1/status")["published_gen"], 1);
}

TEST_F(DaemonTest, ReloadKeepsIdsAndAdminAndAddsNewBackends) {
  start();
  ASSERT_EQ(post("/v1/services/web/backends/10.99.0.22:80/admin", R"({"state":"draining"})").status,
            200);
  const json before = get("/v1/services/web/backends");
  write_config("[[service.backend]]\naddress = \"10.99.0.23\"\nport = 80\n");
  auto r = post("/v1/reload");
  ASSERT_EQ(r.status, 200) << r.body;
  const json info = json::parse(r.body);
  EXPECT_EQ(info["added"], 1);
  EXPECT_EQ(info["removed"], 0);
  const json after = get("/v1/services/web/backends");
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after[0]["id"], before[0]["id"]);
  EXPECT_EQ(after[1]["id"], before[1]["id"]);
  EXPECT_EQ(after[1]["admin"], "draining");
  EXPECT_NE(after[2]["id"], before[0]["id"]);
  EXPECT_NE(after[2]["id"], before[1]["id"]);
}

TEST_F(DaemonTest, RestartResumesGenerationIdsAndAdminState) {
  start();
  ASSERT_EQ(post("/v1/services/web/backends/10.99.0.22:80/admin", R"({"state":"disabled"})").status,
            200);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (get("/v1/status")["published_gen"] != 2 && std::chrono::steady_clock::now() < deadline) {
  }
  const json before = get("/v1/services/web/backends");
  stop();
  EXPECT_EQ(exit_code_, 0);
  EXPECT_FALSE(fs::exists(socket_)) << "the socket is removed on shutdown";

  start();
  EXPECT_EQ(get("/v1/status")["published_gen"], 3);  // continues, no reset to 1
  const json after = get("/v1/services/web/backends");
  ASSERT_EQ(after.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(after[i]["id"], before[i]["id"]);
    EXPECT_EQ(after[i]["admin"], before[i]["admin"]);
  }
}

TEST_F(DaemonTest, StateFileCarriesAdminStateOverALostCtlRegion) {
  start();
  ASSERT_EQ(post("/v1/services/web/backends/10.99.0.22:80/admin", R"({"state":"draining"})").status,
            200);
  stop();
  ASSERT_TRUE(fs::exists(socket_ + ".state"));
  Publisher::unlink(instance_);  // as after a reboot: no ctl region to recover from

  start();
  const json after = get("/v1/services/web/backends");
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0]["admin"], "enabled");
  EXPECT_EQ(after[1]["admin"], "draining");
}

TEST_F(DaemonTest, CorruptStateFileIsIgnoredNotFatal) {
  std::ofstream(socket_ + ".state")
      << "{\"format\": \"ilb-state\", \"version\": 1, \"backends\": 7";
  start();
  const json after = get("/v1/services/web/backends");
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[1]["admin"], "enabled");
}

TEST_F(DaemonTest, HookRunsWithTheEventInItsEnvironment) {
  const std::string log = (dir_ / "hook.log").string();
  const std::string script = (dir_ / "hook.sh").string();
  {
    std::ofstream out(script);
    out << "#!/bin/sh\necho \"$ILB_EVENT $ILB_SERVICE $ILB_BACKEND $ILB_OLD_STATE $ILB_NEW_STATE\" "
           ">> "
        << log << "\n";
  }
  fs::permissions(script, fs::perms::owner_all);
  std::ofstream(config_path_) << config_text(instance_, socket_, "",
                                             "hook = [\"" + script + "\"]\n");
  start();
  ASSERT_EQ(post("/v1/services/web/backends/10.99.0.21:80/admin", R"({"state":"disabled"})").status,
            200);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string text;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(log);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (text.find("admin") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(text.find("admin web 10.99.0.21:80 enabled disabled"), std::string::npos) << text;
}

TEST_F(DaemonTest, ServesPrometheusMetricsOnItsTcpPort) {
  write_config("", "metrics_listen = \"127.0.0.1:0\"\n");
  test::FakeDataplane dp(instance_);
  dp.ack(0);
  start();
  // Bound before the API socket appears, so known by now.
  const uint16_t port = daemon_->metrics_port();
  ASSERT_NE(port, 0);
  const std::string answer = tcp_get(port, "/metrics");
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << answer;
  EXPECT_NE(answer.find("\nilb_dataplane_up 1\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("\nilb_service_backends{service=\"web\",vip=\"10.99.0.100\",port=\"80\","
                        "protocol=\"tcp\"} 2\n"),
            std::string::npos)
      << answer;
  EXPECT_NE(answer.find("\nilb_published_generation 1\n"), std::string::npos) << answer;
  EXPECT_EQ(tcp_get(port, "/v1/status").rfind("HTTP/1.1 404", 0), 0u)
      << "the API is not served on the metrics port";
}

TEST_F(DaemonTest, MetricsAddressInUseStopsStartBeforeAnythingIsPublished) {
  TcpListener taken;
  write_config("", "metrics_listen = \"127.0.0.1:" + std::to_string(taken.port) + "\"\n");
  Daemon daemon(load_config_file(config_path_));
  // On a thread, so that a daemon that does start is stopped instead of hanging the test.
  std::string error;
  std::atomic<bool> ended{false};
  std::thread runner([&] {
    try {
      daemon.run();
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
    ended = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!ended && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!ended) daemon.request_stop();
  runner.join();
  EXPECT_NE(
      error.find("controlplane.metrics_listen 127.0.0.1:" + std::to_string(taken.port) + ": "),
      std::string::npos)
      << "started on a port another socket listens on; error: " << error;
  EXPECT_FALSE(fs::exists(socket_));
  EXPECT_FALSE(fs::exists("/dev/shm" + abi::ctl_shm_name(instance_))) << "nothing published";
}

TEST_F(DaemonTest, ReportsDataplaneFromStatRegion) {
  test::FakeDataplane dp(instance_);
  dp.ack(0);
  start();
  json status = get("/v1/status");
  EXPECT_EQ(status["dataplane"]["running"], true);
  EXPECT_EQ(status["dataplane"]["pid"], getpid());
  EXPECT_EQ(status["published_gen"], 1);
}

}  // namespace
}  // namespace ilb::cp

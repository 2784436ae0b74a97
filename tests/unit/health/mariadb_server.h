// A real MariaDB server for the mysql health-check tests: a fresh data directory under /tmp (a
// copy of one made by mariadb-install-db once per test process), mariadbd started as a child on
// 127.0.0.1 with a free port and its own unix socket, waited for until its error log says it is
// ready for connections (not by connecting, which the server would count in Aborted_connects), and
// killed, reaped and deleted by the destructor. The child also dies with the test process
// (PR_SET_PDEATHSIG). Statements run as root over the unix socket with the mariadb command-line
// client.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/health/child_server.h"

namespace ilb::cp::test {

class MariadbServer {
 public:
  struct Options {
    uint32_t server_id = 1;
    bool log_bin = false;
    std::string init_sql;  // run by the server at start-up, before it accepts connections
  };

  // Another process may take the free port before mariadbd binds it; then it starts afresh.
  explicit MariadbServer(const Options& options) {
    for (int attempt = 1;; ++attempt) {
      port_ = free_port();
      char name[] = "/tmp/ilb-mariadb-XXXXXX";
      if (::mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp failed");
      dir_ = name;
      try {
        start(options);
        return;
      } catch (...) {
        const bool port_taken =
            read_file(error_log()).find("Address already in use") != std::string::npos;
        cleanup();
        if (!port_taken || attempt == 3) throw;
      }
    }
  }
  ~MariadbServer() { cleanup(); }
  MariadbServer(const MariadbServer&) = delete;
  MariadbServer& operator=(const MariadbServer&) = delete;

  uint16_t port() const { return port_; }

  // Runs `statements` as root; returns the client's tab-separated output without column names.
  // Throws with the client's error message if it fails.
  std::string sql(const std::string& statements) const {
    std::string output;
    const int status = run({"mariadb", "--no-defaults", "--socket=" + socket_path(), "--user=root",
                            "--batch", "--skip-column-names", "--execute=" + statements},
                           &output);
    if (status != 0) throw std::runtime_error("mariadb: " + statements + ": " + output);
    return output;
  }

  // A global status counter such as Aborted_connects.
  uint64_t status(const std::string& name) const {
    const std::string out = sql("SHOW GLOBAL STATUS LIKE '" + name + "'");
    const size_t tab = out.find('\t');
    if (tab == std::string::npos) throw std::runtime_error("no status variable " + name);
    return std::stoull(out.substr(tab + 1));
  }

  // Kills the server; the port then refuses connections.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  std::string socket_path() const { return dir_ + "/mysqld.sock"; }
  std::string error_log() const { return dir_ + "/error.log"; }

  void start(const Options& options) {
    // mariadb-install-db takes seconds, so every server starts from a copy of one fresh datadir.
    const std::string data = dir_ + "/data";
    std::filesystem::copy(template_datadir(), data, std::filesystem::copy_options::recursive);
    const std::string init_file = dir_ + "/init.sql";
    std::ofstream(init_file) << "SET sql_log_bin = 0;\n" << options.init_sql << "\n";

    std::vector<std::string> argv = {"mariadbd",
                                     "--no-defaults",
                                     "--user=root",
                                     "--datadir=" + data,
                                     "--socket=" + socket_path(),
                                     "--port=" + std::to_string(port_),
                                     "--bind-address=127.0.0.1",
                                     "--skip-name-resolve",
                                     "--pid-file=" + dir_ + "/mysqld.pid",
                                     "--log-error=" + error_log(),
                                     "--init-file=" + init_file,
                                     "--innodb-buffer-pool-size=16M",
                                     "--innodb-log-file-size=" + std::string(kLogFileSize),
                                     "--server-id=" + std::to_string(options.server_id)};
    if (options.log_bin) argv.push_back("--log-bin=" + dir_ + "/binlog");
    pid_ = spawn(argv, -1);

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!ready()) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("mariadbd exited: " + read_file(error_log()));
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("mariadbd not ready within 30 s: " + read_file(error_log()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a poll interval
    }
  }

  static constexpr const char* kLogFileSize = "8M";

  // A datadir made once per test process by mariadb-install-db and removed at exit.
  static const std::string& template_datadir() {
    struct Template {
      Template() {
        char name[] = "/tmp/ilb-mariadb-template-XXXXXX";
        if (::mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp failed");
        dir = name;
        std::string output;
        if (run({"mariadb-install-db", "--no-defaults", "--user=root", "--datadir=" + dir + "/data",
                 "--auth-root-authentication-method=socket", "--skip-test-db",
                 "--skip-name-resolve", "--innodb-log-file-size=" + std::string(kLogFileSize)},
                &output) != 0) {
          std::error_code ignored;
          std::filesystem::remove_all(dir, ignored);
          throw std::runtime_error("mariadb-install-db failed: " + output);
        }
      }
      ~Template() {
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
      }
      std::string dir;
    };
    static const Template t;
    static const std::string data = t.dir + "/data";
    return data;
  }

  bool ready() const {
    return read_file(error_log()).find("ready for connections") != std::string::npos;
  }

  void cleanup() {
    stop();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    dir_.clear();
  }

  static std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Starts argv[0] (looked up in PATH) with stdout and stderr on `out_fd` (-1: /dev/null).
  static pid_t spawn(std::vector<std::string> argv, int out_fd) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int out = out_fd >= 0 ? out_fd : ::open("/dev/null", O_RDWR);
      ::dup2(out, 1);
      ::dup2(out, 2);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    return pid;
  }

  // Runs argv to completion, collecting its output; returns its exit status (-1 if signalled).
  static int run(std::vector<std::string> argv, std::string* output) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_t pid = -1;
    try {
      pid = spawn(std::move(argv), fds[1]);
    } catch (...) {
      ::close(fds[0]);
      ::close(fds[1]);
      throw;
    }
    ::close(fds[1]);
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) output->append(buf, size_t(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  uint16_t port_ = 0;
  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace ilb::cp::test

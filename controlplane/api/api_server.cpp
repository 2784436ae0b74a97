#include "controlplane/api/api_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace ilb::cp {

namespace {

// True if some process accepts connections on the Unix socket `path`.
bool socket_in_use(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool in_use = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return in_use;
}

}  // namespace

ApiServer::ApiServer(asio::io_context& io, std::string socket_path, Handler handler, Limits limits)
    : path_(std::move(socket_path)), server_(io, std::move(handler), limits) {}

ApiServer::~ApiServer() {
  stop();
}

void ApiServer::start() {
  namespace fs = std::filesystem;
  if (path_.empty()) throw std::runtime_error("API socket path is empty");
  if (path_.size() >= sizeof(sockaddr_un::sun_path)) {
    throw std::runtime_error("API socket path too long: " + path_);
  }
  std::error_code ec;
  const fs::path parent = fs::path(path_).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    if (ec) throw std::runtime_error("create " + parent.string() + ": " + ec.message());
  }
  const auto st = fs::symlink_status(path_, ec);
  if (!ec && fs::exists(st)) {
    if (!fs::is_socket(st)) {
      throw std::runtime_error(path_ + " exists and is not a socket");
    }
    if (socket_in_use(path_)) {
      throw std::runtime_error("another process is serving " + path_);
    }
    fs::remove(path_, ec);
    if (ec) throw std::runtime_error("remove stale " + path_ + ": " + ec.message());
  }
  // Bound and listening under a temporary name, then renamed into place: a client that sees the
  // socket file can always connect (never "connection refused" between bind and listen).
  const std::string tmp = path_ + ".tmp";
  if (tmp.size() >= sizeof(sockaddr_un::sun_path)) {
    throw std::runtime_error("API socket path too long: " + path_);
  }
  fs::remove(tmp, ec);
  server_.listen(asio::local::stream_protocol::endpoint(tmp));
  // Not left listening under the temporary name when it cannot be put in place.
  auto fail = [&](int err, const std::string& what) {
    server_.stop();
    fs::remove(tmp, ec);
    throw std::runtime_error(what + ": " + std::strerror(err));
  };
  if (::chmod(tmp.c_str(), 0660) != 0) {
    const int err = errno;
    fail(err, "chmod " + tmp);
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    fail(err, "rename " + tmp + " to " + path_);
  }
  started_ = true;
}

void ApiServer::stop() {
  if (!started_) return;
  started_ = false;
  server_.stop();
  std::error_code ignored;
  std::filesystem::remove(path_, ignored);
}

}  // namespace ilb::cp

#include "tools/ilbctl/client.h"

#include <http_parser.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ilb::ctl {

namespace {

constexpr int kTimeoutMs = 30000;  // a reload with many tables can take a moment

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

struct Parsed {
  std::string body;
  bool complete = false;
};

int on_body(http_parser* p, const char* at, size_t len) {
  static_cast<Parsed*>(p->data)->body.append(at, len);
  return 0;
}
int on_complete(http_parser* p) {
  static_cast<Parsed*>(p->data)->complete = true;
  return 0;
}

void wait_for(int fd, short events, const std::string& what) {
  pollfd pfd{fd, events, 0};
  int n = ::poll(&pfd, 1, kTimeoutMs);
  if (n == 0) throw std::runtime_error(what + ": timed out");
  if (n < 0) throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

Reply call(const std::string& socket_path, const std::string& method, const std::string& target,
           const std::string& body) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    throw std::runtime_error("socket path too long: " + socket_path);
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    std::string msg = "connect " + socket_path + ": " + std::strerror(err);
    if (err == ENOENT || err == ECONNREFUSED) throw NotRunning(msg);
    throw std::runtime_error(msg);
  }

  std::string request = method + " " + target + " HTTP/1.1\r\nHost: ilb\r\n";
  if (!body.empty()) request += "Content-Type: application/json\r\n";
  request += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  request += body;
  size_t sent = 0;
  while (sent < request.size()) {
    wait_for(fd.get(), POLLOUT, "send");
    ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    }
    sent += static_cast<size_t>(n);
  }

  http_parser parser;
  http_parser_init(&parser, HTTP_RESPONSE);
  Parsed parsed;
  parser.data = &parsed;
  http_parser_settings settings{};
  settings.on_body = on_body;
  settings.on_message_complete = on_complete;
  char buf[8192];
  while (!parsed.complete) {
    wait_for(fd.get(), POLLIN, "receive");
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("receive: ") + std::strerror(errno));
    }
    // n == 0 tells the parser about the end of the stream (a body delimited by close).
    http_parser_execute(&parser, &settings, buf, static_cast<size_t>(n));
    if (HTTP_PARSER_ERRNO(&parser) != HPE_OK) {
      throw std::runtime_error(std::string("bad answer from the control plane: ") +
                               http_errno_description(HTTP_PARSER_ERRNO(&parser)));
    }
    if (n == 0 && !parsed.complete) {
      throw std::runtime_error("the control plane closed the connection without an answer");
    }
  }
  return Reply{static_cast<int>(parser.status_code), parsed.body};
}

}  // namespace ilb::ctl

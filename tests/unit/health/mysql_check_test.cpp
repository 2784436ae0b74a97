#include "controlplane/health/mysql_check.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <poll.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/health/loopback.h"
#include "tests/unit/health/mariadb_server.h"

namespace ilb::cp {
namespace {

using namespace test;
using namespace std::string_literals;

// Runs one probe to its verdict. With `until_closed` the io_context also runs until the probe
// has finished with its connection (its last handler ran and released it).
std::optional<ProbeResult> run_probe(asio::io_context& io, uint16_t port,
                                     MysqlProbe::Options options = {},
                                     std::chrono::milliseconds timeout = 2000ms,
                                     bool until_closed = false) {
  auto probe = std::make_shared<MysqlProbe>(io, asio::ip::tcp::endpoint(kLoopback, port), timeout,
                                            std::move(options));
  std::weak_ptr<MysqlProbe> weak = probe;
  std::optional<ProbeResult> result;
  probe->start([&](ProbeResult r) { result = std::move(r); });
  probe.reset();
  run_until(
      io, [&] { return result.has_value(); }, timeout + 3000ms);
  if (until_closed)
    run_until(
        io, [&] { return weak.expired(); }, timeout + 3000ms);
  return result;
}

MysqlProbe::Options login(std::string user, std::string password, std::string query = "SELECT 1",
                          std::optional<uint32_t> max_lag = std::nullopt) {
  MysqlProbe::Options o;
  o.user = std::move(user);
  o.password = std::move(password);
  o.query = std::move(query);
  o.max_replication_lag_s = max_lag;
  return o;
}

// A stand-in server that sends `greeting` as soon as it accepts, then reads until the client
// goes away and records how the connection ended (eof for a FIN, connection_reset for an RST).
// With `reply`, it answers the client's first bytes (the handshake response) with `reply` and
// closes its side, as a server does after an access-denied error.
class GreetingServer {
 public:
  GreetingServer(asio::io_context& io, std::string greeting, bool close_after = false,
                 std::string reply = "")
      : acceptor_(io, {kLoopback, 0}),
        greeting_(std::move(greeting)),
        close_after_(close_after),
        reply_(std::move(reply)) {
    accept();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  const std::vector<std::error_code>& endings() const { return endings_; }
  const std::string& received() const { return received_; }

 private:
  struct Conn {
    explicit Conn(asio::ip::tcp::socket s) : socket(std::move(s)) {}
    asio::ip::tcp::socket socket;
    std::array<char, 256> in{};
  };
  void accept() {
    acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) return;
      auto c = std::make_shared<Conn>(std::move(socket));
      asio::async_write(c->socket, asio::buffer(greeting_), [this, c](std::error_code, size_t) {
        if (close_after_) {
          std::error_code ignored;
          c->socket.shutdown(asio::socket_base::shutdown_send, ignored);
        }
        read_until_end(c);
      });
      accept();
    });
  }
  void read_until_end(std::shared_ptr<Conn> c) {
    c->socket.async_read_some(asio::buffer(c->in), [this, c](std::error_code ec, size_t n) {
      if (ec) {
        endings_.push_back(ec);
        return;
      }
      const bool first = received_.empty();
      received_.append(c->in.data(), n);
      if (first && !reply_.empty()) {
        asio::write(c->socket, asio::buffer(reply_), ec);
        c->socket.shutdown(asio::socket_base::shutdown_send, ec);
      }
      read_until_end(c);
    });
  }
  asio::ip::tcp::acceptor acceptor_;
  std::string greeting_;
  bool close_after_;
  std::string reply_;
  std::string received_;
  std::vector<std::error_code> endings_;
};

std::string packet(uint8_t seq, const std::string& payload) {
  return mysql::frame(seq, payload);
}

// The greeting Debian's MariaDB 10.11 sent (see mysql_protocol_test.cpp).
const std::string kGreeting =
    packet(0, "\x0a"s + "5.5.5-10.11.19-MariaDB-0+deb12u1-log" + '\0' +
                  "\x06\x00\x00\x00@zh{Rf-J\x00"s + "\xfe\xf7\x08\x02\x00\xff\x81\x15"s +
                  std::string(10, '\0') + "k]n3Pz7?wZ=c" + '\0' + "mysql_native_password" + '\0');

mysql::ResultSet status_rows(std::vector<std::string> columns,
                             std::vector<std::vector<std::optional<std::string>>> rows) {
  mysql::ResultSet rs;
  rs.columns = std::move(columns);
  rs.rows = std::move(rows);
  return rs;
}

// ---- Verdicts on replication status --------------------------------------------------------

TEST(MysqlReplicationVerdict, UpWhenEveryRowRunsWithinTheLagLimit) {
  const auto rs = status_rows(
      {"Connection_name", "Slave_IO_Running", "Slave_SQL_Running", "Seconds_Behind_Master"},
      {{"", "Yes", "Yes", "0"}, {"east", "Yes", "Yes", "7"}});
  const ProbeResult r = MysqlProbe::judge_replication(rs, 10);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.reason, "replica lag 7 s");
  EXPECT_TRUE(MysqlProbe::judge_replication(rs, 7).ok);
}

TEST(MysqlReplicationVerdict, AcceptsMysqlReplicaColumnNames) {
  const auto rs = status_rows(
      {"Replica_IO_Running", "Replica_SQL_Running", "Seconds_Behind_Source", "Channel_Name"},
      {{"Yes", "Yes", "3", ""}});
  EXPECT_TRUE(MysqlProbe::judge_replication(rs, 10).ok);
  const auto stopped = status_rows(
      {"Replica_IO_Running", "Replica_SQL_Running", "Seconds_Behind_Source", "Channel_Name"},
      {{"Yes", "Yes", "3", ""}, {"Connecting", "Yes", "3", "ch2"}});
  EXPECT_EQ(MysqlProbe::judge_replication(stopped, 10).reason,
            "replication stopped (Replica_IO_Running=Connecting) on 'ch2'");
}

TEST(MysqlReplicationVerdict, DownWhenAnyRowFails) {
  const std::vector<std::string> cols = {"Slave_IO_Running", "Slave_SQL_Running",
                                         "Seconds_Behind_Master"};
  auto judge = [&](std::vector<std::vector<std::optional<std::string>>> rows, uint32_t max) {
    return MysqlProbe::judge_replication(status_rows(cols, std::move(rows)), max);
  };
  ProbeResult r = judge({{"Yes", "No", std::nullopt}}, 10);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "replication stopped (Slave_SQL_Running=No)");
  r = judge({{"No", "Yes", "0"}}, 10);
  EXPECT_EQ(r.reason, "replication stopped (Slave_IO_Running=No)");
  r = judge({{"Yes", "Yes", std::nullopt}}, 10);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "replica lag unknown (Seconds_Behind_Master=NULL)");
  r = judge({{"Yes", "Yes", "0"}, {"Yes", "Yes", "42"}}, 10);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "replica lag 42 s > 10 s");
  r = judge({{"Yes", "Yes", "-1"}}, 10);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "replica lag is not a number: -1");
  r = judge({}, 10);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "not a replica");
  mysql::ResultSet ok;
  ok.is_ok = true;
  EXPECT_EQ(MysqlProbe::judge_replication(ok, 10).reason, "not a replica");
  r = MysqlProbe::judge_replication(status_rows({"Slave_IO_Running"}, {{"Yes"}}), 10);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "replication status lacks the thread or lag columns");
}

// ---- Against stand-in servers ---------------------------------------------------------------

// What MariaDB answers a login as an unknown user.
const std::string kAccessDenied =
    packet(2, "\xff\x15\x04#28000Access denied for user 'ilb-probe'@'localhost'"s);

TEST(MysqlProbe, WithoutUserAnswersTheGreetingAndTakesAccessDeniedAsAlive) {
  asio::io_context io;
  GreetingServer server(io, kGreeting, false, kAccessDenied);
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_EQ(result->reason,
            "MariaDB 10.11.19-MariaDB-0+deb12u1-log alive (login refused as expected)");
  // It answered the greeting (never leaving the server in the handshake), as the probe user.
  EXPECT_NE(server.received().find(std::string(MysqlProbe::kProbeUser) + '\0'), std::string::npos);
}

TEST(MysqlProbe, WithoutUserOtherLoginErrorsAreDown) {
  asio::io_context io;
  GreetingServer server(io, kGreeting, false, packet(2, "\xff\x10\x04#08004Too many connections"s));
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "ERR 1040 (08004): Too many connections");
}

TEST(MysqlProbe, GreetingSplitIntoSmallSegmentsIsReassembled) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {kLoopback, 0});
  auto probe = std::make_shared<MysqlProbe>(
      io, asio::ip::tcp::endpoint(kLoopback, acceptor.local_endpoint().port()), 2000ms,
      MysqlProbe::Options{});
  std::optional<ProbeResult> result;
  probe->start([&](ProbeResult r) { result = std::move(r); });
  asio::ip::tcp::socket peer(io);
  acceptor.accept(peer);
  peer.set_option(asio::ip::tcp::no_delay(true));
  for (size_t at = 0; at < kGreeting.size() && !result; at += 7) {
    asio::write(peer, asio::buffer(kGreeting.substr(at, 7)));
    run_until(
        io, [] { return false; }, 5ms);  // let the probe read this segment on its own
  }
  // The probe parsed the whole greeting: it answers with its login.
  std::array<char, 512> in{};
  size_t got = 0;
  ASSERT_TRUE(run_until(io, [&] {
    std::error_code ec;
    peer.non_blocking(true);
    got += peer.read_some(asio::buffer(in.data() + got, in.size() - got), ec);
    return got > 4;
  }));
  asio::write(peer, asio::buffer(kAccessDenied));
  peer.shutdown(asio::socket_base::shutdown_send);
  ASSERT_TRUE(run_until(io, [&] { return result.has_value(); }));
  EXPECT_TRUE(result->ok) << result->reason;
}

TEST(MysqlProbe, ErrInsteadOfGreetingIsDownWithTheServersMessage) {
  asio::io_context io;
  GreetingServer server(
      io,
      packet(0, "\xff\x69\x04"s +
                    "Host '127.0.0.1' is blocked because of many connection errors; unblock with "
                    "'mariadb-admin flush-hosts'"),
      true);
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason,
            "ERR 1129: Host '127.0.0.1' is blocked because of many connection errors; unblock "
            "with 'mariadb-admin flush-hosts'");
}

TEST(MysqlProbe, DownOnGarbageWithTheGarbageQuoted) {
  asio::io_context io;
  GreetingServer server(io, "HTTP/1.1 400 Bad Request\r\n\r\n");
  auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason,
            "not a MySQL greeting (packet of 5526600 bytes announced, more than 1048576): "
            "HTTP/1.1 400 Bad Request????");
  ASSERT_TRUE(run_until(io, [&] { return !server.endings().empty(); }));
  EXPECT_EQ(server.endings()[0], asio::error::connection_reset);

  // Well framed, but protocol version 9.
  GreetingServer old(io, packet(0,
                                "\x09"
                                "3.23.58\0abcdefgh"s));
  result = run_probe(io, old.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_TRUE(result->reason.starts_with("not a MySQL greeting (protocol version 9, not 10)"))
      << result->reason;

  // A greeting whose sequence id is not 0.
  std::string wrong_seq = kGreeting;
  wrong_seq[3] = 5;
  GreetingServer out_of_order(io, wrong_seq);
  result = run_probe(io, out_of_order.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_TRUE(result->reason.starts_with(
      "not a MySQL greeting (packet out of order (sequence id 5, expected 0))"))
      << result->reason;
}

TEST(MysqlProbe, DownWhenServerClosesBeforeTheGreeting) {
  asio::io_context io;
  GreetingServer server(io, "", true);
  const auto result = run_probe(io, server.port());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "mysql: connection closed before the greeting");
}

TEST(MysqlProbe, DownOnSilentServerAfterTimeoutWithReset) {
  asio::io_context io;
  TcpServer server(io);
  const auto started = std::chrono::steady_clock::now();
  const auto result = run_probe(io, server.port(), login("probe", "secret"), 200ms);
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "timeout after 200 ms");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 200ms);
  ASSERT_TRUE(run_until(io, [&] { return !server.endings().empty(); }));
  EXPECT_EQ(server.endings()[0], asio::error::connection_reset);
}

TEST(MysqlProbe, DownOnClosedPortAndNeverReportsFromInsideStart) {
  asio::io_context io;
  auto probe = std::make_shared<MysqlProbe>(io, asio::ip::tcp::endpoint(kLoopback, closed_port(io)),
                                            1000ms, MysqlProbe::Options{});
  std::optional<ProbeResult> result;
  probe->start([&](ProbeResult r) { result = std::move(r); });
  EXPECT_FALSE(result);
  ASSERT_TRUE(run_until(io, [&] { return result.has_value(); }));
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "connect: connection refused");
}

TEST(MysqlProbe, CancelStopsTheProbeWithoutAVerdict) {
  asio::io_context io;
  GreetingServer server(io, kGreeting);
  bool called = false;
  auto probe = std::make_shared<MysqlProbe>(io, asio::ip::tcp::endpoint(kLoopback, server.port()),
                                            100ms, MysqlProbe::Options{});
  std::weak_ptr<MysqlProbe> weak = probe;
  probe->start([&](ProbeResult) { called = true; });
  probe->cancel();
  probe->cancel();
  probe.reset();
  EXPECT_TRUE(run_until(io, [&] { return weak.expired(); }));
  run_until(
      io, [] { return false; }, 200ms);  // past the timeout: still no verdict
  EXPECT_FALSE(called);
}

TEST(MysqlProbe, CancelFromInsideTheVerdictIsSafe) {
  asio::io_context io;
  TcpServer server(io);
  auto probe = std::make_shared<MysqlProbe>(io, asio::ip::tcp::endpoint(kLoopback, server.port()),
                                            50ms, login("probe", "secret"));
  int calls = 0;
  probe->start([&](ProbeResult) {
    ++calls;
    probe->cancel();
  });
  ASSERT_TRUE(run_until(io, [&] { return calls > 0; }));
  run_until(
      io, [] { return false; }, 100ms);
  EXPECT_EQ(calls, 1);
}

// ---- Against a scripted MySQL 8 ---------------------------------------------------------------
// No MySQL 8 is installed here, so its side of caching_sha2_password, the auth switch and the
// SHOW REPLICA STATUS fallback is played by a script on a thread with blocking sockets. The
// script checks what the probe sends the way the server would (it verifies the scrambles against
// stored hashes and decrypts the RSA-encrypted password) and records the queries.

std::string sha(const EVP_MD* md, const std::string& s) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), out, &len, md, nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string xor_with(std::string a, const std::string& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] = char(a[i] ^ b[i % b.size()]);
  return a;
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

class FakeMysql8 {
 public:
  enum class Auth { kFast, kFull, kSwitchToNative };
  static constexpr char kScramble[] = "ABCDEFGHIJKLMNOPQRST";
  static constexpr char kSwitchScramble[] = "abcdefghijklmnopqrst";

  FakeMysql8(Auth auth, std::string password)
      : auth_(auth), password_(std::move(password)), key_(make_key()) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listener_, 1) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("FakeMysql8: cannot listen");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      try {
        serve();
      } catch (const std::exception& e) {
        error_ = e.what();
      }
      if (fd_ >= 0) ::close(fd_);
      done_ = true;
    });
  }
  ~FakeMysql8() {
    thread_.join();
    ::close(listener_);
  }

  uint16_t port() const { return port_; }
  bool done() const { return done_; }
  // Valid once done(): the script's failure, if any, and the queries it answered.
  const std::string& error() const { return error_; }
  const std::vector<std::string>& queries() const { return queries_; }
  bool quit_received() const { return quit_received_; }

 private:
  static EVP_PKEY* make_key() { return EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(2048)); }

  void serve() {
    wait_readable(listener_);
    fd_ = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("accept failed");
    std::string greeting = "\x0a"s + "8.0.36" + '\0' + "\x2a\x00\x00\x00"s +
                           std::string(kScramble, 8) + '\0' + "\xff\xff\xff\x02\x00\xff\xdf\x15"s +
                           std::string(10, '\0') + std::string(kScramble + 8, 12) + '\0' +
                           "caching_sha2_password" + '\0';
    send(0, greeting);
    mysql::Packet response = receive(1);
    mysql::Reader r(response.payload);
    const uint32_t caps = r.u32("caps");
    r.bytes(28, "fixed part");
    if (r.null_terminated("user") != "probe") throw std::runtime_error("wrong user");
    const std::string auth(r.bytes(r.u8("auth length"), "auth"));
    if (r.null_terminated("plugin") != "caching_sha2_password") throw std::runtime_error("plugin");
    if (!(caps & mysql::kClientDeprecateEof)) throw std::runtime_error("no DEPRECATE_EOF");
    if (caps & mysql::kClientSsl) throw std::runtime_error("asked for TLS");
    // The server's caching_sha2 check: the reply XOR SHA256(stored + scramble) hashes to stored.
    const std::string stored = sha(EVP_sha256(), sha(EVP_sha256(), password_));
    const bool sha2_ok =
        sha(EVP_sha256(), xor_with(auth, sha(EVP_sha256(), stored + kScramble))) == stored;
    uint8_t seq = 2;
    switch (auth_) {
      case Auth::kFast:
        if (!sha2_ok) return deny(seq);
        send(seq++, "\x01\x03"s);
        break;
      case Auth::kFull: {
        send(seq++, "\x01\x04"s);
        if (receive(seq++).payload != "\x02"s) throw std::runtime_error("no public key request");
        send(seq++, "\x01"s + public_pem());
        const std::string plain = decrypt(receive(seq++).payload);
        if (xor_with(plain, kScramble) != password_ + '\0') return deny(seq);
        break;
      }
      case Auth::kSwitchToNative: {
        send(seq++, "\xfe"s + "mysql_native_password" + '\0' + kSwitchScramble + '\0');
        const std::string reply = receive(seq++).payload;
        const std::string stored1 = sha(EVP_sha1(), sha(EVP_sha1(), password_));
        const std::string candidate =
            xor_with(reply, sha(EVP_sha1(), std::string(kSwitchScramble) + stored1));
        if (reply.size() != 20 || sha(EVP_sha1(), candidate) != stored1) return deny(seq);
        break;
      }
    }
    send(seq, "\x00\x00\x00\x02\x00\x00\x00"s);
    for (;;) {
      const mysql::Packet command = receive(0);
      if (command.payload == "\x01"s) {
        quit_received_ = true;
        return;  // closing, as the server does on COM_QUIT
      }
      if (command.payload.empty() || command.payload[0] != mysql::kComQuery) {
        throw std::runtime_error("unexpected command");
      }
      const std::string query = command.payload.substr(1);
      queries_.push_back(query);
      if (query == "SHOW REPLICA STATUS") {
        send(1, "\xff\x28\x04#42000You have an error in your SQL syntax"s);
      } else if (query == "SHOW SLAVE STATUS") {
        send_result(
            {"Slave_IO_Running", "Slave_SQL_Running", "Seconds_Behind_Master", "Channel_Name"},
            {"Yes", "Yes", "3", ""});
      } else {
        send_result({"1"}, {"1"});
      }
    }
  }

  void deny(uint8_t seq) {
    send(seq,
         "\xff\x15\x04#28000Access denied for user 'probe'@'localhost' (using password: YES)"s);
  }

  void send_result(const std::vector<std::string>& columns, const std::vector<std::string>& row) {
    uint8_t seq = 1;
    std::string count;
    mysql::append_lenenc_int(count, columns.size());
    send(seq++, count);
    for (const std::string& name : columns) {
      std::string def;
      for (const std::string& s : {"def"s, ""s, ""s, ""s, name, name}) {
        mysql::append_lenenc_int(def, s.size());
        def += s;
      }
      def += "\x0c\x21\x00\x0f\x00\x00\x00\xfd\x01\x00\x00\x00\x00"s;
      send(seq++, def);
    }
    std::string values;
    for (const std::string& v : row) {
      mysql::append_lenenc_int(values, v.size());
      values += v;
    }
    send(seq++, values);
    send(seq, "\xfe\x00\x00\x02\x00\x00\x00"s);
  }

  std::string public_pem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key_.get());
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string pem(data, size_t(n));
    BIO_free(bio);
    return pem;
  }

  std::string decrypt(const std::string& cipher) const {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key_.get(), nullptr);
    std::string plain(512, '\0');
    size_t len = plain.size();
    const bool ok =
        EVP_PKEY_decrypt_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
        EVP_PKEY_decrypt(ctx, reinterpret_cast<unsigned char*>(plain.data()), &len,
                         reinterpret_cast<const unsigned char*>(cipher.data()), cipher.size()) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) throw std::runtime_error("cannot decrypt the password");
    plain.resize(len);
    return plain;
  }

  void send(uint8_t seq, const std::string& payload) {
    const std::string bytes = mysql::frame(seq, payload);
    if (::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) != ssize_t(bytes.size())) {
      throw std::runtime_error("send failed");
    }
  }

  mysql::Packet receive(uint8_t want_seq) {
    const std::string header = read_exact(4);
    const size_t length = size_t(uint8_t(header[0])) | size_t(uint8_t(header[1])) << 8 |
                          size_t(uint8_t(header[2])) << 16;
    mysql::Packet p{uint8_t(header[3]), read_exact(length)};
    if (p.seq != want_seq) throw std::runtime_error("client sent a wrong sequence id");
    return p;
  }

  std::string read_exact(size_t n) {
    std::string out;
    while (out.size() < n) {
      wait_readable(fd_);
      char buf[4096];
      const ssize_t got = ::recv(fd_, buf, std::min(sizeof(buf), n - out.size()), 0);
      if (got <= 0) throw std::runtime_error("client closed the connection");
      out.append(buf, size_t(got));
    }
    return out;
  }

  // Bounded so that a probe that stops talking fails the test instead of hanging it.
  static void wait_readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) throw std::runtime_error("nothing from the client within 5 s");
  }

  Auth auth_;
  std::string password_;
  std::unique_ptr<EVP_PKEY, PkeyFree> key_;
  int listener_ = -1;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> done_ = false;
  std::string error_;
  std::vector<std::string> queries_;
  bool quit_received_ = false;
};

// Runs a probe against `server` until both have finished.
std::optional<ProbeResult> run_against(asio::io_context& io, const FakeMysql8& server,
                                       MysqlProbe::Options options) {
  auto result = run_probe(io, server.port(), std::move(options), 2000ms, true);
  run_until(
      io, [&] { return server.done(); }, 6000ms);
  return result;
}

TEST(MysqlProbeAgainstMysql8, CachingSha2FastAuthentication) {
  asio::io_context io;
  FakeMysql8 server(FakeMysql8::Auth::kFast, "s3cret");
  const auto result = run_against(io, server, login("probe", "s3cret"));
  ASSERT_TRUE(server.done());
  EXPECT_EQ(server.error(), "");
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_EQ(result->reason, "query returned 1 row");
  EXPECT_EQ(server.queries(), std::vector<std::string>{"SELECT 1"});
  EXPECT_TRUE(server.quit_received());
}

TEST(MysqlProbeAgainstMysql8, CachingSha2WrongPasswordIsDown) {
  asio::io_context io;
  FakeMysql8 server(FakeMysql8::Auth::kFast, "s3cret");
  const auto result = run_against(io, server, login("probe", "wrong"));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason,
            "ERR 1045 (28000): Access denied for user 'probe'@'localhost' (using password: YES)");
}

TEST(MysqlProbeAgainstMysql8, CachingSha2FullAuthenticationWithTheServersRsaKey) {
  asio::io_context io;
  FakeMysql8 server(FakeMysql8::Auth::kFull, "a longer password, 40 bytes long........");
  const auto result =
      run_against(io, server, login("probe", "a longer password, 40 bytes long........"));
  ASSERT_TRUE(server.done());
  EXPECT_EQ(server.error(), "");
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_TRUE(server.quit_received());
}

TEST(MysqlProbeAgainstMysql8, FollowsAuthSwitchToNativePassword) {
  asio::io_context io;
  FakeMysql8 server(FakeMysql8::Auth::kSwitchToNative, "s3cret");
  const auto result = run_against(io, server, login("probe", "s3cret"));
  ASSERT_TRUE(server.done());
  EXPECT_EQ(server.error(), "");
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
}

TEST(MysqlProbeAgainstMysql8, FallsBackToShowSlaveStatusOnOlderServers) {
  asio::io_context io;
  FakeMysql8 server(FakeMysql8::Auth::kFast, "s3cret");
  const auto result = run_against(io, server, login("probe", "s3cret", "SELECT 1", 10));
  ASSERT_TRUE(server.done());
  EXPECT_EQ(server.error(), "");
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_EQ(result->reason, "replica lag 3 s");
  EXPECT_EQ(server.queries(),
            (std::vector<std::string>{"SELECT 1", "SHOW REPLICA STATUS", "SHOW SLAVE STATUS"}));
  EXPECT_TRUE(server.quit_received());
}

// ---- Against a real MariaDB ------------------------------------------------------------------

const std::string kUsers =
    "CREATE USER 'probe'@'%' IDENTIFIED BY 'secret';\n"
    "GRANT SLAVE MONITOR, REPLICATION SLAVE ON *.* TO 'probe'@'%';\n"
    "CREATE USER 'nopass'@'%';\n"
    "CREATE DATABASE ilbtest;\n"
    "CREATE DEFINER='root'@'localhost' PROCEDURE ilbtest.two_rows() SQL SECURITY INVOKER SELECT 1 "
    "UNION SELECT 2;\n"
    "GRANT EXECUTE ON ilbtest.* TO 'probe'@'%';\n";

MariadbServer::Options server_options(uint32_t server_id, bool log_bin) {
  MariadbServer::Options o;
  o.server_id = server_id;
  o.log_bin = log_bin;
  o.init_sql = kUsers;
  return o;
}

class MariadbTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { primary_ = new MariadbServer(server_options(1, true)); }
  static void TearDownTestSuite() {
    delete primary_;
    primary_ = nullptr;
  }

  static MariadbServer* primary_;
  asio::io_context io_;
};

MariadbServer* MariadbTest::primary_ = nullptr;

TEST_F(MariadbTest, WithoutUserUp) {
  const auto result = run_probe(io_, primary_->port());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_TRUE(result->reason.starts_with("MariaDB 10.")) << result->reason;
  EXPECT_TRUE(result->reason.ends_with(" alive (login refused as expected)")) << result->reason;
}

TEST_F(MariadbTest, LogsInAndRunsSelectOne) {
  auto result = run_probe(io_, primary_->port(), login("probe", "secret"));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_EQ(result->reason, "query returned 1 row");
  result = run_probe(io_, primary_->port(), login("nopass", ""));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
}

TEST_F(MariadbTest, RunsConfiguredQueriesIncludingProceduresWithSeveralResults) {
  auto result = run_probe(io_, primary_->port(), login("probe", "secret", "DO 1"));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_EQ(result->reason, "query ok");
  result = run_probe(io_, primary_->port(),
                     login("probe", "secret",
                           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                           "WHERE i < 500) SELECT i, NULL FROM n"));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_EQ(result->reason, "query returned 500 rows");
  result = run_probe(io_, primary_->port(), login("probe", "secret", "CALL ilbtest.two_rows()"));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_EQ(result->reason, "query returned 2 rows");
}

TEST_F(MariadbTest, WrongPasswordIsDownWithErr1045) {
  auto result = run_probe(io_, primary_->port(), login("probe", "wrong"));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_TRUE(result->reason.starts_with(
      "ERR 1045 (28000): Access denied for user 'probe'@'127.0.0.1' (using password: YES)"))
      << result->reason;
  result = run_probe(io_, primary_->port(), login("nobody", ""));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_TRUE(result->reason.starts_with("ERR 1045 (28000): ")) << result->reason;
}

TEST_F(MariadbTest, FailingQueryIsDownWithTheServersError) {
  auto result = run_probe(io_, primary_->port(), login("probe", "secret", "SELEC 1"));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_TRUE(result->reason.starts_with("ERR 1064 (42000): You have an error in your SQL syntax"))
      << result->reason;
  result = run_probe(io_, primary_->port(), login("probe", "secret", "SELECT * FROM mysql.user"));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_TRUE(result->reason.starts_with("ERR 1142 (42000): SELECT command denied"))
      << result->reason;
}

TEST_F(MariadbTest, ReplicationLagCheckOnAPrimaryIsDown) {
  const auto result = run_probe(io_, primary_->port(), login("probe", "secret", "SELECT 1", 10));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "not a replica");
}

TEST_F(MariadbTest, ReplicaIsUpWhileReplicatingAndDownWhenStopped) {
  MariadbServer replica(server_options(2, false));
  replica.sql(
      "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=" + std::to_string(primary_->port()) +
      ", MASTER_USER='probe', MASTER_PASSWORD='secret', MASTER_CONNECT_RETRY=1; "
      "START SLAVE;");
  const auto check = login("probe", "secret", "SELECT 1", 10);
  auto wait_until_up = [&] {
    std::optional<ProbeResult> result;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    do {
      result = run_probe(io_, replica.port(), check);
      if (!result || result->ok) break;
      std::this_thread::sleep_for(50ms);  // a poll interval
    } while (std::chrono::steady_clock::now() < deadline);
    return result;
  };
  auto result = wait_until_up();
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  // Usually 0; a second while the replica catches up with the primary's first events.
  EXPECT_TRUE(result->reason.starts_with("replica lag ")) << result->reason;

  replica.sql("STOP SLAVE SQL_THREAD");
  result = run_probe(io_, replica.port(), check);
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "replication stopped (Slave_SQL_Running=No)");

  replica.sql("START SLAVE");
  result = wait_until_up();
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
}

TEST(MariadbSession, LoginProbeQuitsCleanlyWhileProbeUserLoginIsAnAbortedConnect) {
  MariadbServer server(server_options(1, false));
  asio::io_context io;
  const uint64_t aborted_connects = server.status("Aborted_connects");
  const uint64_t aborted_clients = server.status("Aborted_clients");
  auto wait_for_aborted_connects = [&](uint64_t want) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (server.status("Aborted_connects") < want &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);  // a poll interval
    }
    return server.status("Aborted_connects");
  };

  // The probe without a user is refused: an aborted connect (an authentication failure, which
  // unlike a handshake error does not count towards max_connect_errors).
  auto result = run_probe(io, server.port(), {}, 2000ms, true);
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  EXPECT_EQ(wait_for_aborted_connects(aborted_connects + 1), aborted_connects + 1);

  // The login probe ends with COM_QUIT and waits for the server to close: nothing is aborted.
  result = run_probe(io, server.port(), login("probe", "secret"), 2000ms, true);
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  // Another probe without a user as a marker: once it is counted, the login session has long
  // been accounted for.
  result = run_probe(io, server.port(), {}, 2000ms, true);
  ASSERT_TRUE(result);
  EXPECT_EQ(wait_for_aborted_connects(aborted_connects + 2), aborted_connects + 2);
  EXPECT_EQ(server.status("Aborted_clients"), aborted_clients);
}

TEST(MariadbSession, StoppedServerIsDownWithAConnectError) {
  MariadbServer server(server_options(1, false));
  asio::io_context io;
  auto result = run_probe(io, server.port(), login("probe", "secret"));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok) << result->reason;
  server.stop();
  result = run_probe(io, server.port(), login("probe", "secret"));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->reason, "connect: connection refused");
}

}  // namespace
}  // namespace ilb::cp

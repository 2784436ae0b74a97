// MySQL / MariaDB check, speaking the client protocol so the server never counts the probe
// against max_connect_errors (which would eventually block the balancer's host with error 1129).
//
// The server counts a "handshake error" against the client's host whenever a connection ends
// before the client has answered the greeting - whether the client closes with a FIN or aborts
// with an RST (measured on MariaDB 10.11: a greeting-then-RST probe counted every time). An
// authentication failure, on the other hand, is not a blocking error. So even without a
// configured user the probe always answers the greeting: it logs in as kProbeUser with an empty
// password. The server refuses it (1045/1698 access denied: the server is alive and answering
// logins - up) or, if the DBA created that user without privileges to keep "Access denied"
// warnings out of the error log, accepts it and the probe quits at once. Any other ERR packet
// (1129 host blocked, 1040 too many connections), before or after the greeting, is a failure
// with the server's message as the reason.
//
// With a user the probe logs in (mysql_native_password or caching_sha2_password, following an
// auth switch; no TLS, so caching_sha2's full authentication uses the server's RSA key), runs
// the query, optionally judges the replication status, and ends with COM_QUIT, reading until
// the server closes: the session ends cleanly, is counted nowhere as aborted, and the server
// keeps the TIME_WAIT. Any other ending (timeout, malformed reply, cancel) resets.
//
// Replication status comes from SHOW ALL SLAVES STATUS on MariaDB, which lists every named
// connection, and from SHOW REPLICA STATUS on MySQL (SHOW SLAVE STATUS before 8.0.22, found by
// its syntax error 1064), which lists every channel. Every row must have both threads running and
// a known lag no larger than the limit.
#pragma once

#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "controlplane/health/mysql_protocol.h"
#include "controlplane/health/probe.h"

namespace ilb::cp {

class MysqlProbe final : public Probe, public std::enable_shared_from_this<MysqlProbe> {
 public:
  // The user a probe without a configured user logs in as.
  static constexpr std::string_view kProbeUser = "ilb-probe";

  struct Options {
    std::string user;  // empty: log in as kProbeUser and accept "access denied" as alive
    std::string password;
    std::string query = "SELECT 1";
    std::optional<uint32_t> max_replication_lag_s;  // needs `user`
  };

  // Most bytes read from one connection, all replies and the final drain together.
  static constexpr size_t kMaxBytes = 1024 * 1024;

  MysqlProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
             std::chrono::milliseconds timeout, Options options);

  void start(Done done) override;
  void cancel() override;

  // The verdict on a replication status result (one row per replication source): every row
  // needs "Yes" in both thread columns and a non-NULL lag of at most `max_lag_s`. Both the old
  // column names (Slave_IO_Running, Seconds_Behind_Master) and the new (Replica_IO_Running,
  // Seconds_Behind_Source) are accepted. No rows means the server is not a replica.
  static ProbeResult judge_replication(const mysql::ResultSet& status, uint32_t max_lag_s);

 private:
  enum class Stage { kGreeting, kAuth, kQuery, kReplication, kQuit };
  // How the connection ends once the verdict is given.
  enum class Ending {
    kReset,         // abort with an RST now
    kQuit,          // send COM_QUIT, then read until the server closes
    kWaitForClose,  // the server is closing already (it sent an ERR during login)
  };

  void on_connect(const std::error_code& ec);
  void read();
  void on_data(const std::error_code& ec, size_t n);
  void on_packet(const mysql::Packet& packet);
  void on_greeting(std::string_view payload);
  void on_auth(std::string_view payload);
  void on_query_reply(std::string_view payload);
  void on_replication_reply(std::string_view payload);
  void send(std::string_view payload);
  void send_query(std::string_view sql);
  void write_next();
  void finish(ProbeResult result, Ending ending);
  void report(ProbeResult result);
  void close(bool reset);
  std::string closed_early() const;

  asio::io_context& io_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  asio::ip::tcp::endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  Options options_;
  Done done_;

  Stage stage_ = Stage::kGreeting;
  mysql::PacketReader packets_{kMaxBytes};
  std::array<char, 4096> buffer_{};
  size_t total_ = 0;
  std::string head_;  // the first bytes received, to quote when they are not a greeting
  uint8_t seq_ = 0;   // sequence id of the next packet in the current exchange
  std::string outbox_;
  std::string writing_;
  bool write_pending_ = false;

  uint32_t capabilities_ = 0;
  bool is_mariadb_ = false;
  bool probe_login_ = false;  // no configured user: logging in as kProbeUser
  std::string server_;        // "MariaDB 10.11.6-...", from the greeting
  std::string plugin_;
  std::string scramble_;
  int auth_switches_ = 0;
  bool awaiting_public_key_ = false;
  std::optional<mysql::QueryReply> reply_;
  std::string replication_query_;

  bool reported_ = false;  // the verdict has been given (or the probe was cancelled)
  bool closed_ = false;
};

}  // namespace ilb::cp

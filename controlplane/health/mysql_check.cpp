#include "controlplane/health/mysql_check.h"

#include <algorithm>
#include <asio/post.hpp>
#include <asio/write.hpp>
#include <charconv>
#include <initializer_list>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace ilb::cp {
namespace {

constexpr uint16_t kErrParseError = 1064;
constexpr uint16_t kErrAccessDenied = 1045;
constexpr uint16_t kErrAccessDeniedNoPassword = 1698;
constexpr int kMaxAuthSwitches = 2;
constexpr size_t kQuotedHead = 48;

std::optional<size_t> find_column(const mysql::ResultSet& rs,
                                  std::initializer_list<std::string_view> names) {
  for (size_t i = 0; i < rs.columns.size(); ++i) {
    for (std::string_view name : names) {
      if (rs.columns[i] == name) return i;
    }
  }
  return std::nullopt;
}

std::string hex_byte(uint8_t b) {
  constexpr std::string_view kDigits = "0123456789abcdef";
  return {'0', 'x', kDigits[b >> 4], kDigits[b & 15]};
}

std::string rows_text(size_t n) {
  return std::to_string(n) + (n == 1 ? " row" : " rows");
}

}  // namespace

MysqlProbe::MysqlProbe(asio::io_context& io, asio::ip::tcp::endpoint endpoint,
                       std::chrono::milliseconds timeout, Options options)
    : io_(io),
      socket_(io),
      timer_(io),
      endpoint_(endpoint),
      timeout_(timeout),
      options_(std::move(options)) {}

void MysqlProbe::start(Done done) {
  done_ = std::move(done);
  auto self = shared_from_this();
  std::error_code ec;
  socket_.open(endpoint_.protocol(), ec);
  if (ec) {
    asio::post(io_, [self, ec] {
      self->report({false, probe_error("socket", ec)});
      self->close(true);
    });
    return;
  }
  // One timer over connect, login, queries and the drain after COM_QUIT.
  timer_.expires_after(timeout_);
  timer_.async_wait([self](const std::error_code& wait_ec) {
    if (wait_ec || self->closed_) return;
    self->report({false, probe_timeout(self->timeout_)});
    self->close(true);
  });
  socket_.async_connect(
      endpoint_, [self](const std::error_code& connect_ec) { self->on_connect(connect_ec); });
}

void MysqlProbe::cancel() {
  reported_ = true;
  done_ = nullptr;
  close(true);
}

void MysqlProbe::on_connect(const std::error_code& ec) {
  if (closed_) return;
  if (ec) {
    report({false, probe_error("connect", ec)});
    close(true);
    return;
  }
  read();
}

void MysqlProbe::read() {
  auto self = shared_from_this();
  const size_t room = std::min(buffer_.size(), kMaxBytes - total_);
  socket_.async_read_some(asio::buffer(buffer_.data(), room),
                          [self](const std::error_code& ec, size_t n) { self->on_data(ec, n); });
}

void MysqlProbe::on_data(const std::error_code& ec, size_t n) {
  if (closed_) return;
  if (ec) {
    if (stage_ != Stage::kQuit) {
      report({false, ec == asio::error::eof ? closed_early() : probe_error("recv", ec)});
    }
    close(stage_ != Stage::kQuit || ec != asio::error::eof);
    return;
  }
  total_ += n;
  if (stage_ == Stage::kQuit) {
    // After the verdict only the server's close matters; whatever it still sends is dropped.
    if (total_ >= kMaxBytes) {
      close(true);
    } else {
      read();
    }
    return;
  }
  const std::string_view chunk(buffer_.data(), n);
  if (head_.size() < kQuotedHead) head_.append(chunk.substr(0, kQuotedHead - head_.size()));
  packets_.feed(chunk);
  try {
    while (!closed_ && stage_ != Stage::kQuit) {
      const std::optional<mysql::Packet> packet = packets_.next();
      if (!packet) break;
      on_packet(*packet);
    }
  } catch (const mysql::ProtocolError& e) {
    if (stage_ == Stage::kGreeting) {
      finish({false, std::string("not a MySQL greeting (") + e.what() + "): " + printable(head_)},
             Ending::kReset);
    } else {
      finish({false, std::string("mysql: malformed reply: ") + e.what()}, Ending::kReset);
    }
    return;
  } catch (const std::logic_error& e) {
    // A configured value the protocol cannot carry (a user name with a NUL, a huge query).
    finish({false, std::string("mysql: ") + e.what()}, Ending::kReset);
    return;
  }
  if (closed_) return;
  if (stage_ != Stage::kQuit && total_ >= kMaxBytes) {
    finish({false, "mysql: reply larger than 1 MiB"}, Ending::kReset);
    return;
  }
  read();
}

void MysqlProbe::on_packet(const mysql::Packet& packet) {
  if (packet.seq != seq_) {
    throw mysql::ProtocolError("packet out of order (sequence id " + std::to_string(packet.seq) +
                               ", expected " + std::to_string(seq_) + ")");
  }
  ++seq_;
  switch (stage_) {
    case Stage::kGreeting:
      on_greeting(packet.payload);
      break;
    case Stage::kAuth:
      on_auth(packet.payload);
      break;
    case Stage::kQuery:
      on_query_reply(packet.payload);
      break;
    case Stage::kReplication:
      on_replication_reply(packet.payload);
      break;
    case Stage::kQuit:
      break;
  }
}

void MysqlProbe::on_greeting(std::string_view payload) {
  if (mysql::is_err(payload)) {
    finish({false, mysql::describe(mysql::parse_err(payload))}, Ending::kReset);
    return;
  }
  const mysql::Greeting greeting = mysql::parse_greeting(payload);
  const std::string server = mysql::describe_server(greeting.server_version);
  server_ = server;
  probe_login_ = options_.user.empty();
  constexpr uint32_t kRequired = mysql::kClientProtocol41 | mysql::kClientSecureConnection;
  if ((greeting.capabilities & kRequired) != kRequired) {
    finish({false, server + " does not offer protocol 4.1 authentication"}, Ending::kReset);
    return;
  }
  capabilities_ = mysql::client_capabilities(greeting.capabilities);
  is_mariadb_ = server.starts_with("MariaDB");
  scramble_ = greeting.scramble;
  // The first answer is for the server's default plugin when the probe knows it; otherwise a
  // native-password answer, and the server asks for its plugin with an auth switch.
  plugin_ = greeting.auth_plugin;
  std::optional<std::string> response = mysql::auth_response(plugin_, options_.password, scramble_);
  if (!response) {
    plugin_ = std::string(mysql::kNativePassword);
    response = mysql::scramble_native_password(options_.password, scramble_);
  }
  stage_ = Stage::kAuth;
  const std::string_view user = probe_login_ ? kProbeUser : std::string_view(options_.user);
  send(mysql::handshake_response(capabilities_, user, *response, plugin_));
}

void MysqlProbe::on_auth(std::string_view payload) {
  if (payload.empty()) throw mysql::ProtocolError("empty packet during login");
  if (mysql::is_ok(payload)) {
    mysql::parse_ok(payload);
    if (probe_login_) {
      finish({true, server_ + " alive (" + std::string(kProbeUser) + " logged in)"}, Ending::kQuit);
      return;
    }
    stage_ = Stage::kQuery;
    send_query(options_.query);
    return;
  }
  if (mysql::is_err(payload)) {
    const mysql::ErrPacket err = mysql::parse_err(payload);
    if (probe_login_ && (err.code == kErrAccessDenied || err.code == kErrAccessDeniedNoPassword)) {
      // The server checked the login and answered: it is alive, and an authentication failure
      // never counts towards max_connect_errors.
      finish({true, server_ + " alive (login refused as expected)"}, Ending::kWaitForClose);
      return;
    }
    finish({false, mysql::describe(err)}, Ending::kWaitForClose);
    return;
  }
  const auto header = static_cast<uint8_t>(payload[0]);
  if (header == 0xFE) {
    if (payload.size() == 1) {
      finish({false, "mysql: server asks for the pre-4.1 password scheme"}, Ending::kReset);
      return;
    }
    if (++auth_switches_ > kMaxAuthSwitches) {
      throw mysql::ProtocolError("too many auth switch requests");
    }
    mysql::AuthSwitch request = mysql::parse_auth_switch(payload);
    const std::optional<std::string> response =
        mysql::auth_response(request.plugin, options_.password, request.data);
    if (!response) {
      finish({false, "mysql: auth plugin " + printable(request.plugin) + " not supported"},
             Ending::kReset);
      return;
    }
    plugin_ = std::move(request.plugin);
    scramble_ = std::move(request.data);
    send(*response);
    return;
  }
  if (header == mysql::kAuthMoreData && plugin_ == mysql::kCachingSha2Password) {
    const std::string_view data = payload.substr(1);
    if (awaiting_public_key_) {
      awaiting_public_key_ = false;
      send(mysql::encrypt_password(options_.password, scramble_, data));
    } else if (data.size() == 1 && uint8_t(data[0]) == mysql::kFastAuthOk) {
      // The server's cache knew the password; its OK packet follows.
    } else if (data.size() == 1 && uint8_t(data[0]) == mysql::kPerformFullAuth) {
      awaiting_public_key_ = true;
      send(std::string(1, char(mysql::kRequestPublicKey)));
    } else {
      throw mysql::ProtocolError("unexpected caching_sha2_password data");
    }
    return;
  }
  throw mysql::ProtocolError("unexpected packet " + hex_byte(header) + " during login");
}

void MysqlProbe::on_query_reply(std::string_view payload) {
  if (!reply_->feed(payload)) return;
  if (reply_->error()) {
    finish({false, mysql::describe(*reply_->error())}, Ending::kQuit);
    return;
  }
  if (!options_.max_replication_lag_s) {
    const mysql::ResultSet& first = reply_->results().front();
    finish({true, first.is_ok ? "query ok" : "query returned " + rows_text(first.rows.size())},
           Ending::kQuit);
    return;
  }
  stage_ = Stage::kReplication;
  replication_query_ = is_mariadb_ ? "SHOW ALL SLAVES STATUS" : "SHOW REPLICA STATUS";
  send_query(replication_query_);
}

void MysqlProbe::on_replication_reply(std::string_view payload) {
  if (!reply_->feed(payload)) return;
  if (const auto& err = reply_->error()) {
    if (err->code == kErrParseError && replication_query_ == "SHOW REPLICA STATUS") {
      replication_query_ = "SHOW SLAVE STATUS";  // MySQL before 8.0.22
      send_query(replication_query_);
      return;
    }
    finish({false, mysql::describe(*err)}, Ending::kQuit);
    return;
  }
  finish(judge_replication(reply_->results().front(), *options_.max_replication_lag_s),
         Ending::kQuit);
}

ProbeResult MysqlProbe::judge_replication(const mysql::ResultSet& status, uint32_t max_lag_s) {
  if (status.is_ok || status.rows.empty()) return {false, "not a replica"};
  const auto io = find_column(status, {"Slave_IO_Running", "Replica_IO_Running"});
  const auto sql = find_column(status, {"Slave_SQL_Running", "Replica_SQL_Running"});
  const auto lag = find_column(status, {"Seconds_Behind_Master", "Seconds_Behind_Source"});
  const auto name = find_column(status, {"Connection_name", "Channel_Name", "Channel_name"});
  if (!io || !sql || !lag) return {false, "replication status lacks the thread or lag columns"};
  uint64_t worst = 0;
  for (const auto& row : status.rows) {
    const std::string where = name && row[*name] && !row[*name]->empty()
                                  ? " on '" + printable(*row[*name]) + "'"
                                  : std::string();
    for (size_t thread : {*io, *sql}) {
      if (row[thread] != "Yes") {
        return {false, "replication stopped (" + status.columns[thread] + "=" +
                           (row[thread] ? printable(*row[thread]) : "NULL") + ")" + where};
      }
    }
    if (!row[*lag])
      return {false, "replica lag unknown (" + status.columns[*lag] + "=NULL)" + where};
    const std::string& text = *row[*lag];
    uint64_t seconds = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
      return {false, "replica lag is not a number: " + printable(text) + where};
    }
    if (seconds > max_lag_s) {
      return {false, "replica lag " + std::to_string(seconds) + " s > " +
                         std::to_string(max_lag_s) + " s" + where};
    }
    worst = std::max(worst, seconds);
  }
  return {true, "replica lag " + std::to_string(worst) + " s"};
}

void MysqlProbe::send_query(std::string_view sql) {
  seq_ = 0;
  reply_.emplace((capabilities_ & mysql::kClientDeprecateEof) != 0);
  send(mysql::com_query(sql));
}

void MysqlProbe::send(std::string_view payload) {
  outbox_ += mysql::frame(seq_++, payload);
  if (!write_pending_) write_next();
}

void MysqlProbe::write_next() {
  write_pending_ = true;
  writing_ = std::exchange(outbox_, std::string());
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(writing_), [self](const std::error_code& ec, size_t) {
    self->write_pending_ = false;
    if (self->closed_) return;
    if (ec) {
      self->report({false, probe_error("send", ec)});
      self->close(true);
      return;
    }
    if (!self->outbox_.empty()) self->write_next();
  });
}

void MysqlProbe::finish(ProbeResult result, Ending ending) {
  report(std::move(result));
  if (closed_) return;  // the verdict's receiver may have cancelled the probe
  switch (ending) {
    case Ending::kReset:
      close(true);
      break;
    case Ending::kQuit:
      stage_ = Stage::kQuit;
      seq_ = 0;
      send(std::string(1, char(mysql::kComQuit)));
      break;
    case Ending::kWaitForClose:
      stage_ = Stage::kQuit;
      break;
  }
}

void MysqlProbe::report(ProbeResult result) {
  if (reported_) return;
  reported_ = true;
  if (Done done = std::exchange(done_, nullptr)) done(std::move(result));
}

std::string MysqlProbe::closed_early() const {
  switch (stage_) {
    case Stage::kGreeting:
      return "mysql: connection closed before the greeting";
    case Stage::kAuth:
      return "mysql: connection closed during login";
    default:
      return "mysql: connection closed before the query reply";
  }
}

// A reset aborts an established connection instead of shutting it down; without it the close is
// an ordinary one, used once the server has closed its side after COM_QUIT or a login error.
void MysqlProbe::close(bool reset) {
  if (closed_) return;
  closed_ = true;
  std::error_code ignored;
  timer_.cancel();
  if (reset && socket_.is_open()) socket_.set_option(asio::socket_base::linger(true, 0), ignored);
  socket_.close(ignored);
}

}  // namespace ilb::cp

// The part of the MySQL/MariaDB client/server protocol the mysql health check speaks, as pure
// functions over bytes: no sockets, so every parser can be fed hostile input in unit tests.
// Everything read from the network is untrusted: each parser checks every length against the
// bytes it was given and throws ProtocolError instead of reading past them, and a packet is
// never larger than the bound the caller chose. Only what a health check needs is here: the
// greeting, the login (mysql_native_password and caching_sha2_password, the latter without TLS
// through the server's RSA key), text-protocol queries and their OK / ERR / result-set replies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ilb::cp::mysql {

// Malformed, truncated or oversized input from the server.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Capability flags (the subset the check sends or looks at).
inline constexpr uint32_t kClientLongPassword = 0x00000001;
inline constexpr uint32_t kClientProtocol41 = 0x00000200;
inline constexpr uint32_t kClientSsl = 0x00000800;
inline constexpr uint32_t kClientTransactions = 0x00002000;
inline constexpr uint32_t kClientSecureConnection = 0x00008000;
inline constexpr uint32_t kClientMultiResults = 0x00020000;
inline constexpr uint32_t kClientPluginAuth = 0x00080000;
inline constexpr uint32_t kClientDeprecateEof = 0x01000000;

// Server status flag: another result follows this one (multi-statement or CALL).
inline constexpr uint16_t kServerMoreResultsExist = 0x0008;

// Command bytes.
inline constexpr uint8_t kComQuit = 0x01;
inline constexpr uint8_t kComQuery = 0x03;

// Largest payload a packet may carry. A payload of 0xFFFFFF bytes continues in the next packet;
// the check never needs one that large, so such packets are rejected as oversized.
inline constexpr size_t kMaxPayload = 0xFFFFFE;

inline constexpr std::string_view kNativePassword = "mysql_native_password";
inline constexpr std::string_view kCachingSha2Password = "caching_sha2_password";

// ---- Packet framing -------------------------------------------------------------------------

struct Packet {
  uint8_t seq = 0;
  std::string payload;
};

// One packet on the wire: 3-byte little-endian payload length, sequence id, payload. Throws
// std::length_error if the payload is larger than kMaxPayload.
std::string frame(uint8_t seq, std::string_view payload);

// Reassembles packets from a byte stream that arrives in arbitrary chunks.
class PacketReader {
 public:
  explicit PacketReader(size_t max_payload = kMaxPayload);

  void feed(std::string_view bytes);
  // The next complete packet, or nullopt while it is still incomplete. Throws ProtocolError as
  // soon as a header announces a payload larger than max_payload.
  std::optional<Packet> next();
  // Bytes received but not yet returned as packets.
  size_t buffered() const { return buffer_.size() - pos_; }

 private:
  size_t max_payload_;
  std::string buffer_;
  size_t pos_ = 0;
};

// ---- Bounds-checked field reader ----------------------------------------------------------

// Reads protocol fields from one payload; every read past its end throws ProtocolError naming
// `what`.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  explicit Reader(std::string&&) = delete;  // the reader would outlive the string

  uint8_t u8(const char* what);
  uint16_t u16(const char* what);
  uint32_t u24(const char* what);
  uint32_t u32(const char* what);
  uint64_t u64(const char* what);
  // A length-encoded integer; 0xFB (NULL) and 0xFF are errors here.
  uint64_t lenenc_int(const char* what);
  // A length-encoded string, or nullopt for NULL (0xFB) when `allow_null`.
  std::optional<std::string_view> lenenc_str(const char* what, bool allow_null = false);
  std::string_view bytes(size_t n, const char* what);
  // Bytes up to a NUL, which is consumed; a missing NUL is an error.
  std::string_view null_terminated(const char* what);
  std::string_view rest();
  // The next byte without consuming it; the reader must not be at the end.
  uint8_t peek(const char* what) const;

  bool at_end() const { return pos_ == data_.size(); }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  static uint64_t u64_le(std::string_view b);

  std::string_view data_;
  size_t pos_ = 0;
};

// Appends a length-encoded integer.
void append_lenenc_int(std::string& out, uint64_t value);

// ---- Server packets -----------------------------------------------------------------------

// Initial handshake packet, protocol version 10.
struct Greeting {
  std::string server_version;  // "5.5.5-10.11.6-MariaDB-0+deb12u1", "8.0.36"
  uint32_t connection_id = 0;
  std::string scramble;  // the 20-byte nonce, both parts joined
  uint32_t capabilities = 0;
  uint8_t character_set = 0;
  uint16_t status = 0;
  std::string auth_plugin;  // empty if the server does not speak CLIENT_PLUGIN_AUTH
};

struct OkPacket {
  uint64_t affected_rows = 0;
  uint64_t last_insert_id = 0;
  uint16_t status = 0;
  uint16_t warnings = 0;
  std::string info;
};

struct ErrPacket {
  uint16_t code = 0;
  std::string sql_state;  // five characters, or empty when the server sent none
  std::string message;
};

struct EofPacket {
  uint16_t warnings = 0;
  uint16_t status = 0;
};

// A server-sent packet's kind, judged from its first byte and length the way clients do.
bool is_ok(std::string_view payload);   // 0x00 header
bool is_err(std::string_view payload);  // 0xFF header
// 0xFE header on a packet too short to be a row: an EOF packet, or with CLIENT_DEPRECATE_EOF
// the OK packet that ends a result set.
bool is_eof(std::string_view payload);

// The greeting; the server may send an ERR packet instead (is_err), e.g. 1129 "host blocked" or
// 1040 "too many connections". Requires a complete protocol-4.1 greeting.
Greeting parse_greeting(std::string_view payload);
// An OK packet with a 0x00 header, or with 0xFE where it ends a result set.
OkPacket parse_ok(std::string_view payload);
ErrPacket parse_err(std::string_view payload);
EofPacket parse_eof(std::string_view payload);

// "ERR 1045 (28000): Access denied for user ..." with the message made printable.
std::string describe(const ErrPacket& err);

// "MariaDB 10.11.6-MariaDB-0+deb12u1" or "MySQL 8.0.36": the product and its version, without
// the "5.5.5-" prefix MariaDB sends for the sake of old replication clients.
std::string describe_server(std::string_view server_version);

// ---- Text result sets -----------------------------------------------------------------------

struct ResultSet {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;  // nullopt = SQL NULL
  bool is_ok = false;  // the statement returned an OK packet instead of rows
};

// Follows the reply to one COM_QUERY packet by packet: an OK, an ERR, or a text result set
// (column count, column definitions, EOF unless CLIENT_DEPRECATE_EOF, rows, EOF or OK), then
// further results while the server sets kServerMoreResultsExist.
class QueryReply {
 public:
  static constexpr size_t kMaxColumns = 4096;

  explicit QueryReply(bool deprecate_eof) : deprecate_eof_(deprecate_eof) {}

  // Takes the next packet's payload; returns true once the reply is complete. Throws
  // ProtocolError on a malformed packet and std::logic_error if called after completion.
  bool feed(std::string_view payload);

  bool complete() const { return state_ == State::kDone; }
  // The ERR that ended the reply, if one did.
  const std::optional<ErrPacket>& error() const { return error_; }
  // One entry per statement result received, in order.
  const std::vector<ResultSet>& results() const { return results_; }

 private:
  enum class State { kStart, kColumns, kColumnsEof, kRows, kDone };

  void end_result(uint16_t status);

  bool deprecate_eof_;
  State state_ = State::kStart;
  uint64_t column_count_ = 0;
  std::vector<ResultSet> results_;
  std::optional<ErrPacket> error_;
};

// The column name from a protocol-4.1 column definition packet; checks the whole packet.
std::string parse_column_definition(std::string_view payload);
// One text-protocol row of exactly `columns` values.
std::vector<std::optional<std::string>> parse_row(std::string_view payload, size_t columns);

// ---- Client packets and authentication ----------------------------------------------------

// The capability flags the check asks for, given the server's.
uint32_t client_capabilities(uint32_t server_capabilities);

// HandshakeResponse41 payload: no database, no TLS, no connection attributes. `auth_response`
// must be shorter than 256 bytes.
std::string handshake_response(uint32_t capabilities, std::string_view user,
                               std::string_view auth_response, std::string_view auth_plugin);

// COM_QUERY payload.
std::string com_query(std::string_view sql);

// SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))); empty for an empty password.
std::string scramble_native_password(std::string_view password, std::string_view scramble);
// SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble); empty for an empty password.
std::string scramble_caching_sha2(std::string_view password, std::string_view scramble);

// The first auth response for `plugin`, or nullopt if the check does not support the plugin.
std::optional<std::string> auth_response(std::string_view plugin, std::string_view password,
                                         std::string_view scramble);

// caching_sha2_password full authentication without TLS: (password + NUL) XOR the scramble
// (repeated), encrypted with the server's RSA public key (PEM) under RSA_PKCS1_OAEP_PADDING.
// Throws ProtocolError if the key cannot be read or the password does not fit.
std::string encrypt_password(std::string_view password, std::string_view scramble,
                             std::string_view public_key_pem);

// AuthSwitchRequest (0xFE header, then plugin name and its data).
struct AuthSwitch {
  std::string plugin;
  std::string data;  // the new scramble, without the trailing NUL
};
AuthSwitch parse_auth_switch(std::string_view payload);

// caching_sha2_password's AuthMoreData (0x01 header) values.
inline constexpr uint8_t kAuthMoreData = 0x01;
inline constexpr uint8_t kFastAuthOk = 0x03;
inline constexpr uint8_t kPerformFullAuth = 0x04;
inline constexpr uint8_t kRequestPublicKey = 0x02;

}  // namespace ilb::cp::mysql

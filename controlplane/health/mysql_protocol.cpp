#include "controlplane/health/mysql_protocol.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <memory>

#include "controlplane/health/probe.h"

namespace ilb::cp::mysql {
namespace {

constexpr uint8_t kOkHeader = 0x00;
constexpr uint8_t kNullValue = 0xFB;
constexpr uint8_t kEofHeader = 0xFE;
constexpr uint8_t kErrHeader = 0xFF;
constexpr uint8_t kUtf8mb4GeneralCi = 45;
constexpr uint32_t kMaxClientPacket = 0x01000000;
constexpr size_t kColumnFixedFields = 12;  // charset, length, type, flags, decimals, filler

[[noreturn]] void fail(const std::string& message) {
  throw ProtocolError(message);
}

void append_u32(std::string& out, uint32_t v) {
  for (int shift = 0; shift < 32; shift += 8) out += char((v >> shift) & 0xFF);
}

std::string digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) {
    ERR_clear_error();
    throw std::runtime_error("mysql: message digest failed");
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string xor_bytes(std::string a, std::string_view b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] = char(a[i] ^ b[i]);
  return a;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

[[noreturn]] void fail_openssl(const char* what) {
  ERR_clear_error();
  fail(std::string("server public key: ") + what);
}

}  // namespace

// ---- Packet framing -------------------------------------------------------------------------

std::string frame(uint8_t seq, std::string_view payload) {
  if (payload.size() > kMaxPayload) throw std::length_error("mysql: packet payload too large");
  std::string out;
  out.reserve(4 + payload.size());
  const auto n = static_cast<uint32_t>(payload.size());
  out += char(n & 0xFF);
  out += char((n >> 8) & 0xFF);
  out += char((n >> 16) & 0xFF);
  out += char(seq);
  out += payload;
  return out;
}

PacketReader::PacketReader(size_t max_payload) : max_payload_(std::min(max_payload, kMaxPayload)) {}

void PacketReader::feed(std::string_view bytes) {
  // Drop what has been handed out already before the buffer grows.
  if (pos_ > 0 && pos_ >= buffer_.size() / 2) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Packet> PacketReader::next() {
  if (buffered() < 4) return std::nullopt;
  const auto* h = reinterpret_cast<const unsigned char*>(buffer_.data() + pos_);
  const size_t length = size_t(h[0]) | size_t(h[1]) << 8 | size_t(h[2]) << 16;
  if (length > max_payload_) {
    fail("packet of " + std::to_string(length) + " bytes announced, more than " +
         std::to_string(max_payload_));
  }
  if (buffered() < 4 + length) return std::nullopt;
  Packet p;
  p.seq = h[3];
  p.payload = buffer_.substr(pos_ + 4, length);
  pos_ += 4 + length;
  return p;
}

// ---- Bounds-checked field reader ----------------------------------------------------------

std::string_view Reader::bytes(size_t n, const char* what) {
  if (n > remaining()) fail(std::string("truncated ") + what);
  const std::string_view out = data_.substr(pos_, n);
  pos_ += n;
  return out;
}

uint8_t Reader::peek(const char* what) const {
  if (at_end()) fail(std::string("truncated ") + what);
  return static_cast<uint8_t>(data_[pos_]);
}

uint8_t Reader::u8(const char* what) {
  return static_cast<uint8_t>(bytes(1, what)[0]);
}

uint16_t Reader::u16(const char* what) {
  return static_cast<uint16_t>(u64_le(bytes(2, what)));
}

uint32_t Reader::u24(const char* what) {
  return static_cast<uint32_t>(u64_le(bytes(3, what)));
}

uint32_t Reader::u32(const char* what) {
  return static_cast<uint32_t>(u64_le(bytes(4, what)));
}

uint64_t Reader::u64(const char* what) {
  return u64_le(bytes(8, what));
}

uint64_t Reader::u64_le(std::string_view b) {
  uint64_t v = 0;
  for (size_t i = b.size(); i-- > 0;) v = v << 8 | static_cast<uint8_t>(b[i]);
  return v;
}

uint64_t Reader::lenenc_int(const char* what) {
  const uint8_t first = u8(what);
  if (first < kNullValue) return first;
  switch (first) {
    case 0xFC:
      return u16(what);
    case 0xFD:
      return u24(what);
    case 0xFE:
      return u64(what);
    default:
      fail(std::string("invalid length-encoded integer in ") + what);
  }
}

std::optional<std::string_view> Reader::lenenc_str(const char* what, bool allow_null) {
  if (allow_null && peek(what) == kNullValue) {
    ++pos_;
    return std::nullopt;
  }
  const uint64_t n = lenenc_int(what);
  if (n > remaining()) fail(std::string("truncated ") + what);
  return bytes(size_t(n), what);
}

std::string_view Reader::null_terminated(const char* what) {
  const size_t end = data_.find('\0', pos_);
  if (end == std::string_view::npos) fail(std::string("unterminated ") + what);
  const std::string_view out = data_.substr(pos_, end - pos_);
  pos_ = end + 1;
  return out;
}

std::string_view Reader::rest() {
  const std::string_view out = data_.substr(pos_);
  pos_ = data_.size();
  return out;
}

void append_lenenc_int(std::string& out, uint64_t value) {
  int bytes = 0;
  if (value < kNullValue) {
    out += char(value);
    return;
  } else if (value <= 0xFFFF) {
    out += char(0xFC);
    bytes = 2;
  } else if (value <= 0xFFFFFF) {
    out += char(0xFD);
    bytes = 3;
  } else {
    out += char(0xFE);
    bytes = 8;
  }
  for (int i = 0; i < bytes; ++i) out += char((value >> (8 * i)) & 0xFF);
}

// ---- Server packets -----------------------------------------------------------------------

bool is_ok(std::string_view payload) {
  return !payload.empty() && uint8_t(payload[0]) == kOkHeader;
}

bool is_err(std::string_view payload) {
  return !payload.empty() && uint8_t(payload[0]) == kErrHeader;
}

bool is_eof(std::string_view payload) {
  return !payload.empty() && uint8_t(payload[0]) == kEofHeader && payload.size() < 9;
}

Greeting parse_greeting(std::string_view payload) {
  Reader r(payload);
  Greeting g;
  const uint8_t version = r.u8("greeting");
  if (version != 10) fail("protocol version " + std::to_string(version) + ", not 10");
  g.server_version = r.null_terminated("server version");
  g.connection_id = r.u32("connection id");
  const std::string_view part1 = r.bytes(8, "scramble");
  r.u8("greeting filler");
  g.capabilities = r.u16("capability flags");
  g.character_set = r.u8("character set");
  g.status = r.u16("status flags");
  g.capabilities |= uint32_t(r.u16("capability flags")) << 16;
  const uint8_t auth_data_length = r.u8("auth data length");
  r.bytes(10, "greeting reserved bytes");
  g.scramble = part1;
  if (g.capabilities & kClientSecureConnection) {
    const size_t part2_length =
        std::max<size_t>(13, auth_data_length > 8 ? auth_data_length - 8 : 0);
    std::string_view part2 = r.bytes(part2_length, "scramble");
    if (!part2.empty() && part2.back() == '\0') part2.remove_suffix(1);
    g.scramble += part2;
  }
  if (g.capabilities & kClientPluginAuth) g.auth_plugin = r.null_terminated("auth plugin name");
  return g;
}

OkPacket parse_ok(std::string_view payload) {
  Reader r(payload);
  const uint8_t header = r.u8("OK packet");
  if (header != kOkHeader && header != kEofHeader) fail("not an OK packet");
  OkPacket ok;
  ok.affected_rows = r.lenenc_int("OK packet");
  ok.last_insert_id = r.lenenc_int("OK packet");
  ok.status = r.u16("OK packet");
  ok.warnings = r.u16("OK packet");
  ok.info = r.rest();
  return ok;
}

ErrPacket parse_err(std::string_view payload) {
  Reader r(payload);
  if (r.u8("ERR packet") != kErrHeader) fail("not an ERR packet");
  ErrPacket err;
  err.code = r.u16("ERR packet");
  // Before the handshake the server does not yet know the client speaks 4.1 and sends no state.
  if (!r.at_end() && r.peek("ERR packet") == '#') {
    r.u8("ERR packet");
    err.sql_state = r.bytes(5, "SQL state");
  }
  err.message = r.rest();
  return err;
}

EofPacket parse_eof(std::string_view payload) {
  if (!is_eof(payload)) fail("not an EOF packet");
  Reader r(payload);
  r.u8("EOF packet");
  EofPacket eof;
  eof.warnings = r.u16("EOF packet");
  eof.status = r.u16("EOF packet");
  return eof;
}

std::string describe(const ErrPacket& err) {
  std::string out = "ERR " + std::to_string(err.code);
  if (!err.sql_state.empty()) out += " (" + printable(err.sql_state) + ")";
  return out + ": " + printable(err.message);
}

std::string describe_server(std::string_view server_version) {
  constexpr std::string_view kCompatPrefix = "5.5.5-";
  if (server_version.find("MariaDB") != std::string_view::npos) {
    if (server_version.starts_with(kCompatPrefix))
      server_version.remove_prefix(kCompatPrefix.size());
    return "MariaDB " + printable(server_version);
  }
  return "MySQL " + printable(server_version);
}

// ---- Text result sets -----------------------------------------------------------------------

std::string parse_column_definition(std::string_view payload) {
  Reader r(payload);
  r.lenenc_str("column catalog");
  r.lenenc_str("column schema");
  r.lenenc_str("column table");
  r.lenenc_str("column original table");
  const std::string name(*r.lenenc_str("column name"));
  r.lenenc_str("column original name");
  const uint64_t fixed = r.lenenc_int("column definition");
  if (fixed < kColumnFixedFields) fail("column definition too short");
  r.bytes(size_t(fixed), "column definition");
  return name;
}

std::vector<std::optional<std::string>> parse_row(std::string_view payload, size_t columns) {
  Reader r(payload);
  std::vector<std::optional<std::string>> row;
  row.reserve(columns);
  for (size_t i = 0; i < columns; ++i) {
    const std::optional<std::string_view> value = r.lenenc_str("row", true);
    row.push_back(value ? std::optional<std::string>(*value) : std::nullopt);
  }
  if (!r.at_end()) fail("row longer than its columns");
  return row;
}

bool QueryReply::feed(std::string_view payload) {
  if (state_ == State::kDone) throw std::logic_error("QueryReply: fed after the reply ended");
  if (payload.empty()) fail("empty packet in a query reply");
  const auto header = uint8_t(payload[0]);
  if (header == kErrHeader) {
    error_ = parse_err(payload);
    state_ = State::kDone;
    return true;
  }
  switch (state_) {
    case State::kStart: {
      if (header == kOkHeader) {
        const OkPacket ok = parse_ok(payload);
        results_.emplace_back().is_ok = true;
        end_result(ok.status);
        break;
      }
      if (header == kNullValue) fail("server asks for a local file");
      Reader r(payload);
      column_count_ = r.lenenc_int("column count");
      if (!r.at_end()) fail("column count packet too long");
      if (column_count_ == 0 || column_count_ > kMaxColumns) {
        fail("column count " + std::to_string(column_count_));
      }
      results_.emplace_back();
      state_ = State::kColumns;
      break;
    }
    case State::kColumns: {
      auto& columns = results_.back().columns;
      columns.push_back(parse_column_definition(payload));
      if (columns.size() == column_count_) {
        state_ = deprecate_eof_ ? State::kRows : State::kColumnsEof;
      }
      break;
    }
    case State::kColumnsEof:
      parse_eof(payload);
      state_ = State::kRows;
      break;
    case State::kRows:
      // A row never starts with 0xFE within kMaxPayload: that would announce a value of 16 MiB.
      if (header == kEofHeader) {
        end_result(deprecate_eof_ ? parse_ok(payload).status : parse_eof(payload).status);
      } else {
        results_.back().rows.push_back(parse_row(payload, size_t(column_count_)));
      }
      break;
    case State::kDone:
      break;
  }
  return state_ == State::kDone;
}

void QueryReply::end_result(uint16_t status) {
  state_ = (status & kServerMoreResultsExist) ? State::kStart : State::kDone;
}

// ---- Client packets and authentication ----------------------------------------------------

uint32_t client_capabilities(uint32_t server_capabilities) {
  constexpr uint32_t kWanted = kClientLongPassword | kClientProtocol41 | kClientTransactions |
                               kClientSecureConnection | kClientMultiResults | kClientPluginAuth |
                               kClientDeprecateEof;
  return kWanted & server_capabilities;
}

std::string handshake_response(uint32_t capabilities, std::string_view user,
                               std::string_view auth_response, std::string_view auth_plugin) {
  if (user.find('\0') != std::string_view::npos ||
      auth_plugin.find('\0') != std::string_view::npos) {
    throw std::invalid_argument("mysql: user and plugin name must not contain NUL");
  }
  std::string out;
  append_u32(out, capabilities);
  append_u32(out, kMaxClientPacket);
  out += char(kUtf8mb4GeneralCi);
  out.append(23, '\0');
  out += user;
  out += '\0';
  if (capabilities & kClientSecureConnection) {
    if (auth_response.size() > 255) throw std::invalid_argument("mysql: auth response too long");
    out += char(auth_response.size());
    out += auth_response;
  } else {
    out += auth_response;
    out += '\0';
  }
  if (capabilities & kClientPluginAuth) {
    out += auth_plugin;
    out += '\0';
  }
  return out;
}

std::string com_query(std::string_view sql) {
  std::string out(1, char(kComQuery));
  out += sql;
  return out;
}

std::string scramble_native_password(std::string_view password, std::string_view scramble) {
  if (password.empty()) return {};
  const std::string stage1 = digest(EVP_sha1(), password);
  const std::string stage2 = digest(EVP_sha1(), stage1);
  return xor_bytes(stage1, digest(EVP_sha1(), std::string(scramble) + stage2));
}

std::string scramble_caching_sha2(std::string_view password, std::string_view scramble) {
  if (password.empty()) return {};
  const std::string stage1 = digest(EVP_sha256(), password);
  const std::string stage2 = digest(EVP_sha256(), stage1);
  return xor_bytes(stage1, digest(EVP_sha256(), stage2 + std::string(scramble)));
}

std::optional<std::string> auth_response(std::string_view plugin, std::string_view password,
                                         std::string_view scramble) {
  if (plugin == kNativePassword) return scramble_native_password(password, scramble);
  if (plugin == kCachingSha2Password) return scramble_caching_sha2(password, scramble);
  return std::nullopt;
}

std::string encrypt_password(std::string_view password, std::string_view scramble,
                             std::string_view public_key_pem) {
  if (scramble.empty()) fail("empty scramble");
  std::string plain(password);
  plain += '\0';
  for (size_t i = 0; i < plain.size(); ++i)
    plain[i] = char(plain[i] ^ scramble[i % scramble.size()]);

  if (public_key_pem.size() > 64 * 1024) fail("server public key too large");
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())));
  if (!bio) fail_openssl("out of memory");
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) fail_openssl("not a PEM public key");
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) <= 0) {
    fail_openssl("not an RSA key");
  }
  size_t length = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(plain.data());
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &length, in, plain.size()) <= 0) {
    fail_openssl("cannot encrypt");
  }
  std::string out(length, '\0');
  if (EVP_PKEY_encrypt(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &length, in,
                       plain.size()) <= 0) {
    fail_openssl("password does not fit the key");
  }
  out.resize(length);
  return out;
}

AuthSwitch parse_auth_switch(std::string_view payload) {
  Reader r(payload);
  if (r.u8("auth switch request") != kEofHeader) fail("not an auth switch request");
  AuthSwitch s;
  s.plugin = r.null_terminated("auth switch plugin name");
  std::string_view data = r.rest();
  if (!data.empty() && data.back() == '\0') data.remove_suffix(1);
  s.data = data;
  return s;
}

}  // namespace ilb::cp::mysql

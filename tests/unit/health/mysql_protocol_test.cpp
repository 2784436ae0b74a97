#include "controlplane/health/mysql_protocol.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace ilb::cp::mysql {
namespace {

using namespace std::literals;

// A greeting captured from Debian's MariaDB 10.11 (with --log-bin), payload only.
const std::string kMariadbGreeting =
    "\x0a\x35\x2e\x35\x2e\x35\x2d\x31\x30\x2e\x31\x31\x2e\x31\x39\x2d\x4d\x61\x72\x69\x61\x44\x42"
    "\x2d\x30\x2b\x64\x65\x62\x31\x32\x75\x31\x2d\x6c\x6f\x67\x00\x06\x00\x00\x00\x40\x7a\x68\x7b"
    "\x52\x66\x2d\x4a\x00\xfe\xf7\x08\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00"
    "\x6b\x5d\x6e\x33\x50\x7a\x37\x3f\x77\x5a\x3d\x63\x00\x6d\x79\x73\x71\x6c\x5f\x6e\x61\x74\x69"
    "\x76\x65\x5f\x70\x61\x73\x73\x77\x6f\x72\x64\x00"s;

// A MySQL 8 greeting laid out by hand after the protocol documentation.
std::string mysql8_greeting() {
  std::string g = "\x0a"s + "8.0.36" + '\0';
  g += "\x2a\x00\x00\x00"s;     // connection id 42
  g += "ABCDEFGH"s + '\0';      // scramble part 1, filler
  g += "\xff\xff"s;             // capabilities, low half
  g += "\xff"s;                 // character set
  g += "\x02\x00"s;             // status
  g += "\xff\xdf"s;             // capabilities, high half
  g += "\x15"s;                 // auth data length 21
  g += std::string(10, '\0');   // reserved
  g += "IJKLMNOPQRST"s + '\0';  // scramble part 2 and its NUL
  g += "caching_sha2_password"s + '\0';
  return g;
}

std::string column_definition(const std::string& name) {
  std::string p;
  for (const std::string& s : {"def"s, ""s, ""s, ""s, name, ""s}) {
    append_lenenc_int(p, s.size());
    p += s;
  }
  p += "\x0c\x3f\x00\x01\x00\x00\x00\x08\x81\x00\x00\x00\x00"s;
  return p;
}

std::string text_row(const std::vector<std::optional<std::string>>& values) {
  std::string p;
  for (const auto& v : values) {
    if (!v) {
      p += '\xfb';
      continue;
    }
    append_lenenc_int(p, v->size());
    p += *v;
  }
  return p;
}

const std::string kEof = "\xfe\x00\x00\x02\x00"s;
const std::string kOkTerminator = "\xfe\x00\x00\x02\x00\x00\x00"s;
const std::string kPlainOk = "\x00\x00\x00\x02\x00\x00\x00"s;

std::string sha1(const std::string& s) {
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof(md));
}

std::string sha256(const std::string& s) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof(md));
}

std::string xor_strings(std::string a, const std::string& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] = char(a[i] ^ b[i % b.size()]);
  return a;
}

TEST(MysqlFraming, FramesPayloadWithLittleEndianLengthAndSequence) {
  EXPECT_EQ(frame(3, "\x01"), "\x01\x00\x00\x03\x01"s);
  EXPECT_EQ(frame(0, std::string(0x012345, 'x')).substr(0, 4), "\x45\x23\x01\x00"s);
  EXPECT_THROW(frame(0, std::string(kMaxPayload + 1, 'x')), std::length_error);
}

TEST(MysqlFraming, ReassemblesPacketsSplitAcrossChunksOfAnySize) {
  const std::string stream = frame(0, "hello") + frame(1, "") + frame(2, std::string(300, 'z'));
  for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    PacketReader reader(1024);
    std::vector<Packet> packets;
    for (size_t at = 0; at < stream.size(); at += chunk) {
      reader.feed(std::string_view(stream).substr(at, chunk));
      while (auto p = reader.next()) packets.push_back(*p);
    }
    ASSERT_EQ(packets.size(), 3u) << "chunk " << chunk;
    EXPECT_EQ(packets[0].seq, 0);
    EXPECT_EQ(packets[0].payload, "hello");
    EXPECT_EQ(packets[1].seq, 1);
    EXPECT_EQ(packets[1].payload, "");
    EXPECT_EQ(packets[2].seq, 2);
    EXPECT_EQ(packets[2].payload, std::string(300, 'z'));
    EXPECT_EQ(reader.buffered(), 0u);
  }
}

TEST(MysqlFraming, WaitsForTruncatedPacket) {
  const std::string packet = frame(0, "greeting");
  PacketReader reader;
  reader.feed(packet.substr(0, packet.size() - 1));
  EXPECT_FALSE(reader.next());
  EXPECT_EQ(reader.buffered(), packet.size() - 1);
  reader.feed(packet.substr(packet.size() - 1));
  ASSERT_TRUE(reader.next());
}

TEST(MysqlFraming, RejectsOversizedPacketAsSoonAsItsHeaderArrives) {
  PacketReader reader(100);
  reader.feed(frame(0, std::string(100, 'a')));
  EXPECT_TRUE(reader.next());
  reader.feed("\x65\x00\x00\x01"s);  // announces 101 bytes
  EXPECT_THROW(reader.next(), ProtocolError);
  // "HTTP" read as a header announces 5 MiB.
  PacketReader http(1024 * 1024);
  http.feed("HTTP/1.1 400 Bad Request\r\n");
  EXPECT_THROW(http.next(), ProtocolError);
  // A continued (0xFFFFFF) payload is never accepted.
  PacketReader big;
  big.feed("\xff\xff\xff\x00"s);
  EXPECT_THROW(big.next(), ProtocolError);
}

TEST(MysqlFields, LengthEncodedIntegersRoundTripInEveryWidth) {
  for (uint64_t v : {0ull, 1ull, 250ull, 251ull, 0xFFFFull, 0x10000ull, 0xFFFFFFull, 0x1000000ull,
                     0xFFFFFFFFFFFFFFFFull}) {
    std::string s;
    append_lenenc_int(s, v);
    Reader r(s);
    EXPECT_EQ(r.lenenc_int("test"), v);
    EXPECT_TRUE(r.at_end());
    for (size_t n = 0; n < s.size(); ++n) {
      Reader truncated(std::string_view(s).substr(0, n));
      EXPECT_THROW(truncated.lenenc_int("test"), ProtocolError) << v << " cut to " << n;
    }
  }
  Reader null_marker("\xfb"sv);
  EXPECT_THROW(null_marker.lenenc_int("test"), ProtocolError);
  Reader invalid("\xff"sv);
  EXPECT_THROW(invalid.lenenc_int("test"), ProtocolError);
}

TEST(MysqlFields, LengthEncodedStringsAreBoundsChecked) {
  Reader r(
      "\x03"
      "abc"
      "\xfb"
      "\x05"
      "ab"sv);
  EXPECT_EQ(r.lenenc_str("s"), "abc");
  EXPECT_EQ(r.lenenc_str("s", true), std::nullopt);
  EXPECT_THROW(r.lenenc_str("s"), ProtocolError);
  // A length near 2^64 must not wrap around the bounds check.
  Reader huge(
      "\xfe\xff\xff\xff\xff\xff\xff\xff\xff"
      "x"sv);
  EXPECT_THROW(huge.lenenc_str("s"), ProtocolError);
  Reader unterminated("abc"sv);
  EXPECT_THROW(unterminated.null_terminated("s"), ProtocolError);
}

TEST(MysqlGreeting, ParsesMariadbGreeting) {
  const Greeting g = parse_greeting(kMariadbGreeting);
  EXPECT_EQ(g.server_version, "5.5.5-10.11.19-MariaDB-0+deb12u1-log");
  EXPECT_EQ(g.connection_id, 6u);
  EXPECT_EQ(g.scramble, "@zh{Rf-Jk]n3Pz7?wZ=c");
  EXPECT_EQ(g.scramble.size(), 20u);
  EXPECT_TRUE(g.capabilities & kClientProtocol41);
  EXPECT_TRUE(g.capabilities & kClientSecureConnection);
  EXPECT_TRUE(g.capabilities & kClientPluginAuth);
  EXPECT_TRUE(g.capabilities & kClientDeprecateEof);
  EXPECT_EQ(g.auth_plugin, "mysql_native_password");
  EXPECT_EQ(describe_server(g.server_version), "MariaDB 10.11.19-MariaDB-0+deb12u1-log");
}

TEST(MysqlGreeting, ParsesMysql8Greeting) {
  const Greeting g = parse_greeting(mysql8_greeting());
  EXPECT_EQ(g.server_version, "8.0.36");
  EXPECT_EQ(g.connection_id, 42u);
  EXPECT_EQ(g.scramble, "ABCDEFGHIJKLMNOPQRST");
  EXPECT_TRUE(g.capabilities & kClientDeprecateEof);
  EXPECT_EQ(g.auth_plugin, "caching_sha2_password");
  EXPECT_EQ(describe_server(g.server_version), "MySQL 8.0.36");
}

TEST(MysqlGreeting, RejectsEveryTruncation) {
  for (const std::string& g : {kMariadbGreeting, mysql8_greeting()}) {
    for (size_t n = 0; n < g.size(); ++n) {
      EXPECT_THROW(parse_greeting(g.substr(0, n)), ProtocolError) << "cut to " << n;
    }
  }
}

TEST(MysqlGreeting, RejectsOtherProtocolVersionsAndGarbage) {
  std::string v9 = kMariadbGreeting;
  v9[0] = 9;
  EXPECT_THROW(parse_greeting(v9), ProtocolError);
  EXPECT_THROW(parse_greeting("HTTP/1.1 400 Bad Request\r\n"), ProtocolError);
  EXPECT_THROW(parse_greeting(""), ProtocolError);
}

TEST(MysqlPackets, ParsesErrWithAndWithoutSqlState) {
  const std::string with_state = "\xff\x15\x04#28000Access denied for user 'x'"s;
  ErrPacket e = parse_err(with_state);
  EXPECT_EQ(e.code, 1045);
  EXPECT_EQ(e.sql_state, "28000");
  EXPECT_EQ(e.message, "Access denied for user 'x'");
  EXPECT_EQ(describe(e), "ERR 1045 (28000): Access denied for user 'x'");

  // Sent before the handshake, when the server cannot know the client speaks 4.1.
  e = parse_err("\xff\x69\x04Host '10.0.0.9' is blocked\n"s);
  EXPECT_EQ(e.code, 1129);
  EXPECT_EQ(e.sql_state, "");
  EXPECT_EQ(describe(e), "ERR 1129: Host '10.0.0.9' is blocked?");

  for (size_t n : {0u, 1u, 2u, 4u, 5u, 6u, 7u, 8u}) {
    EXPECT_THROW(parse_err(with_state.substr(0, n)), ProtocolError) << "cut to " << n;
  }
  EXPECT_THROW(parse_err(kPlainOk), ProtocolError);
}

TEST(MysqlPackets, ParsesOkAndEofAndRejectsTheirTruncations) {
  const std::string ok = "\x00\x01\xfc\x00\x01\x02\x00\x03\x00"s;
  const OkPacket p = parse_ok(ok);
  EXPECT_EQ(p.affected_rows, 1u);
  EXPECT_EQ(p.last_insert_id, 256u);
  EXPECT_EQ(p.status, 2);
  EXPECT_EQ(p.warnings, 3);
  EXPECT_EQ(parse_ok(ok + "Rows matched: 1").info, "Rows matched: 1");
  for (size_t n = 0; n < ok.size(); ++n) {
    EXPECT_THROW(parse_ok(ok.substr(0, n)), ProtocolError) << "cut to " << n;
  }
  EXPECT_EQ(parse_ok(kOkTerminator).status, 2);

  EXPECT_TRUE(is_eof(kEof));
  EXPECT_EQ(parse_eof(kEof).status, 2);
  for (size_t n = 0; n < kEof.size(); ++n) {
    EXPECT_THROW(parse_eof(kEof.substr(0, n)), ProtocolError) << "cut to " << n;
  }
  EXPECT_FALSE(is_eof("\xfe"s + std::string(8, '\0')));  // a 9-byte 0xFE packet is a row
  EXPECT_TRUE(is_ok(kPlainOk));
  EXPECT_TRUE(is_err("\xff"s));
  EXPECT_FALSE(is_ok(""));
}

TEST(MysqlResultSet, ParsesColumnsRowsAndNullsWithClassicEof) {
  QueryReply reply(false);
  const std::vector<std::string> packets = {
      "\x02"s, column_definition("Slave_IO_Running"), column_definition("Lag"),
      kEof,    text_row({"Yes", std::nullopt}),       text_row({"No", "42"}),
      kEof};
  for (size_t i = 0; i < packets.size(); ++i) {
    EXPECT_EQ(reply.feed(packets[i]), i + 1 == packets.size()) << i;
  }
  ASSERT_TRUE(reply.complete());
  EXPECT_FALSE(reply.error());
  ASSERT_EQ(reply.results().size(), 1u);
  const ResultSet& rs = reply.results()[0];
  EXPECT_FALSE(rs.is_ok);
  EXPECT_EQ(rs.columns, (std::vector<std::string>{"Slave_IO_Running", "Lag"}));
  ASSERT_EQ(rs.rows.size(), 2u);
  EXPECT_EQ(rs.rows[0][0], "Yes");
  EXPECT_EQ(rs.rows[0][1], std::nullopt);
  EXPECT_EQ(rs.rows[1][1], "42");
  EXPECT_THROW(reply.feed(kEof), std::logic_error);
}

TEST(MysqlResultSet, ParsesResultSetWithDeprecatedEof) {
  QueryReply reply(true);
  EXPECT_FALSE(reply.feed("\x01"s));
  EXPECT_FALSE(reply.feed(column_definition("1")));
  EXPECT_FALSE(reply.feed(text_row({"1"})));
  EXPECT_TRUE(reply.feed(kOkTerminator));
  ASSERT_EQ(reply.results().size(), 1u);
  EXPECT_EQ(reply.results()[0].columns, std::vector<std::string>{"1"});
  EXPECT_EQ(reply.results()[0].rows.size(), 1u);
}

TEST(MysqlResultSet, EmptyResultSetAndOkReply) {
  QueryReply empty(false);
  for (const std::string& p : {"\x01"s, column_definition("a"), kEof}) EXPECT_FALSE(empty.feed(p));
  EXPECT_TRUE(empty.feed(kEof));
  EXPECT_TRUE(empty.results().at(0).rows.empty());

  QueryReply ok(true);
  EXPECT_TRUE(ok.feed(kPlainOk));
  EXPECT_TRUE(ok.results().at(0).is_ok);
}

TEST(MysqlResultSet, FollowsMoreResultsUntilTheLast) {
  QueryReply reply(true);
  const std::string more_ok = "\x00\x00\x00\x0a\x00\x00\x00"s;  // status 0x0a: more results
  const std::string more_end = "\xfe\x00\x00\x0a\x00\x00\x00"s;
  EXPECT_FALSE(reply.feed("\x01"s));
  EXPECT_FALSE(reply.feed(column_definition("a")));
  EXPECT_FALSE(reply.feed(text_row({"x"})));
  EXPECT_FALSE(reply.feed(more_end));
  EXPECT_FALSE(reply.feed(more_ok));
  EXPECT_TRUE(reply.feed(kPlainOk));
  ASSERT_EQ(reply.results().size(), 3u);
  EXPECT_EQ(reply.results()[0].rows.size(), 1u);
  EXPECT_TRUE(reply.results()[1].is_ok);
  EXPECT_TRUE(reply.results()[2].is_ok);
}

TEST(MysqlResultSet, ErrEndsTheReplyAtAnyPoint) {
  const std::string err = "\xff\x28\x04#42000You have an error"s;
  QueryReply first(false);
  EXPECT_TRUE(first.feed(err));
  ASSERT_TRUE(first.error());
  EXPECT_EQ(first.error()->code, 1064);

  QueryReply midway(false);
  for (const std::string& p : {"\x01"s, column_definition("a"), kEof, text_row({"1"})}) {
    EXPECT_FALSE(midway.feed(p));
  }
  EXPECT_TRUE(midway.feed("\xff\x25\x05#70100Query execution was interrupted"s));
  EXPECT_EQ(midway.error()->code, 1317);
}

TEST(MysqlResultSet, RejectsMalformedPackets) {
  auto fails = [](bool deprecate_eof, std::vector<std::string> packets) {
    QueryReply reply(deprecate_eof);
    try {
      for (const auto& p : packets) reply.feed(p);
    } catch (const ProtocolError&) {
      return true;
    }
    return false;
  };
  EXPECT_TRUE(fails(false, {""}));
  EXPECT_TRUE(fails(false, {"\x00"s}));               // an OK header alone is truncated
  EXPECT_TRUE(fails(false, {"\xfb"s + "file.csv"}));  // LOCAL INFILE request
  EXPECT_TRUE(fails(false, {"\x01\x00"s}));           // column count with trailing bytes
  EXPECT_TRUE(fails(false, {"\xfd\x00\x00\x01"s}));   // 65536 columns
  EXPECT_TRUE(fails(false, {"\x01"s, column_definition("a"), "\x00"s}));  // no EOF after columns
  EXPECT_TRUE(fails(false, {"\x01"s, column_definition("a"), kEof, text_row({"x", "y"})}));
  EXPECT_TRUE(
      fails(true, {"\x02"s, column_definition("a"), column_definition("b"), text_row({"x"})}));
  EXPECT_TRUE(fails(true, {"\x01"s, column_definition("a"), "\xfe"s}));  // truncated terminator
}

TEST(MysqlResultSet, RejectsEveryTruncationOfColumnDefinitionsAndRows) {
  const std::string def = column_definition("Seconds_Behind_Master");
  EXPECT_EQ(parse_column_definition(def), "Seconds_Behind_Master");
  for (size_t n = 0; n < def.size(); ++n) {
    EXPECT_THROW(parse_column_definition(def.substr(0, n)), ProtocolError) << "cut to " << n;
  }
  const std::string row = text_row({"Yes", std::nullopt, std::string(300, 'v')});
  EXPECT_EQ(parse_row(row, 3).at(2), std::string(300, 'v'));
  for (size_t n = 0; n < row.size(); ++n) {
    EXPECT_THROW(parse_row(row.substr(0, n), 3), ProtocolError) << "cut to " << n;
  }
  EXPECT_THROW(parse_row(row + "x", 3), ProtocolError);
}

TEST(MysqlResultSet, RandomBytesNeverEscapeAsAnythingButProtocolError) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(rng() % 40, '\0');
    for (char& c : bytes) c = char(rng());
    if (i % 3 == 0 && !bytes.empty()) bytes[0] = char(0xfe);
    auto quiet = [](auto&& f) {
      try {
        f();
      } catch (const ProtocolError&) {
      }
    };
    quiet([&] { parse_greeting("\x0a"s + bytes); });
    quiet([&] { parse_ok(bytes); });
    quiet([&] { parse_err(bytes); });
    quiet([&] { parse_eof(bytes); });
    quiet([&] { parse_auth_switch(bytes); });
    quiet([&] { parse_column_definition(bytes); });
    quiet([&] { parse_row(bytes, rng() % 4); });
    quiet([&] {
      QueryReply reply(i % 2 == 0);
      for (size_t at = 0; at + 4 <= bytes.size() && !reply.complete(); at += 4) {
        reply.feed(std::string_view(bytes).substr(at, 4));
      }
    });
  }
}

TEST(MysqlAuth, NativePasswordMatchesIndependentComputation) {
  const std::string scramble = "@zh{Rf-Jk]n3Pz7?wZ=c";
  const std::string reply = scramble_native_password("secret", scramble);
  ASSERT_EQ(reply.size(), 20u);
  EXPECT_EQ(reply, xor_strings(sha1("secret"), sha1(scramble + sha1(sha1("secret")))));
  EXPECT_EQ(scramble_native_password("", scramble), "");
  EXPECT_NE(reply, scramble_native_password("secret", "another scramble 20b"));
}

TEST(MysqlAuth, ServerCanVerifyNativePasswordReply) {
  // The server stores SHA1(SHA1(password)); XORing the reply with SHA1(scramble + stored) gives
  // back SHA1(password), whose SHA1 must equal what is stored.
  const std::string scramble = "0123456789abcdefghij";
  const std::string stored = sha1(sha1("pa55 word"));
  const std::string candidate =
      xor_strings(scramble_native_password("pa55 word", scramble), sha1(scramble + stored));
  EXPECT_EQ(candidate, sha1("pa55 word"));
  EXPECT_EQ(sha1(candidate), stored);
  EXPECT_NE(sha1(xor_strings(scramble_native_password("wrong", scramble), sha1(scramble + stored))),
            stored);
}

TEST(MysqlAuth, CachingSha2MatchesIndependentComputationAndVerifies) {
  const std::string scramble = "ABCDEFGHIJKLMNOPQRST";
  const std::string reply = scramble_caching_sha2("secret", scramble);
  ASSERT_EQ(reply.size(), 32u);
  EXPECT_EQ(reply, xor_strings(sha256("secret"), sha256(sha256(sha256("secret")) + scramble)));
  // The server keeps SHA256(SHA256(password)) in its cache and checks the reply against it.
  const std::string cached = sha256(sha256("secret"));
  EXPECT_EQ(sha256(xor_strings(reply, sha256(cached + scramble))), cached);
  EXPECT_EQ(scramble_caching_sha2("", scramble), "");
  EXPECT_EQ(auth_response(kCachingSha2Password, "secret", scramble), reply);
  EXPECT_EQ(auth_response(kNativePassword, "secret", scramble),
            scramble_native_password("secret", scramble));
  EXPECT_EQ(auth_response("client_ed25519", "secret", scramble), std::nullopt);
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::string public_pem(EVP_PKEY* key) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PUBKEY(bio.get(), key), 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size_t(n));
}

TEST(MysqlAuth, EncryptsPasswordForFullAuthenticationWithRsaOaep) {
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(2048)));
  ASSERT_TRUE(key);
  const std::string pem = public_pem(key.get());
  ASSERT_TRUE(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
  const std::string scramble = "ABCDEFGHIJKLMNOPQRST";
  const std::string password = "a password longer than the twenty-byte scramble";
  const std::string cipher = encrypt_password(password, scramble, pem);
  EXPECT_EQ(cipher.size(), 256u);

  // What the server does: decrypt with its private key, XOR with the scramble.
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  ASSERT_EQ(EVP_PKEY_decrypt_init(ctx.get()), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING), 1);
  std::string plain(512, '\0');
  size_t length = plain.size();
  ASSERT_EQ(EVP_PKEY_decrypt(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &length,
                             reinterpret_cast<const unsigned char*>(cipher.data()), cipher.size()),
            1);
  plain.resize(length);
  EXPECT_EQ(xor_strings(plain, scramble), password + '\0');
}

TEST(MysqlAuth, RejectsBadPublicKeys) {
  EXPECT_THROW(encrypt_password("pw", "scramble", "not a key"), ProtocolError);
  EXPECT_THROW(encrypt_password("pw", "scramble", ""), ProtocolError);
  std::unique_ptr<EVP_PKEY, PkeyFree> ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ASSERT_TRUE(ec);
  EXPECT_THROW(encrypt_password("pw", "scramble", public_pem(ec.get())), ProtocolError);
  std::unique_ptr<EVP_PKEY, PkeyFree> small(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(512)));
  ASSERT_TRUE(small);
  // OAEP leaves 64 - 42 = 22 bytes for a 512-bit key.
  EXPECT_THROW(encrypt_password(std::string(40, 'p'), "scramble", public_pem(small.get())),
               ProtocolError);
}

TEST(MysqlAuth, ParsesAuthSwitchRequest) {
  const std::string request =
      "\xfe"s + "mysql_native_password" + '\0' + "ABCDEFGHIJKLMNOPQRST" + '\0';
  const AuthSwitch s = parse_auth_switch(request);
  EXPECT_EQ(s.plugin, "mysql_native_password");
  EXPECT_EQ(s.data, "ABCDEFGHIJKLMNOPQRST");
  EXPECT_THROW(parse_auth_switch("\xfe"
                                 "mysql_native"s),
               ProtocolError);
  EXPECT_THROW(parse_auth_switch(""), ProtocolError);
  EXPECT_THROW(parse_auth_switch(kPlainOk), ProtocolError);
}

TEST(MysqlClientPackets, HandshakeResponseLayout) {
  const uint32_t caps = client_capabilities(0xFFFFFFFF);
  EXPECT_EQ(caps, kClientLongPassword | kClientProtocol41 | kClientTransactions |
                      kClientSecureConnection | kClientMultiResults | kClientPluginAuth |
                      kClientDeprecateEof);
  // Only what the server offers is asked for.
  EXPECT_EQ(client_capabilities(kClientProtocol41 | kClientSecureConnection | kClientSsl),
            kClientProtocol41 | kClientSecureConnection);
  EXPECT_FALSE(caps & kClientSsl);

  const std::string auth(20, '\x5a');
  const std::string p = handshake_response(caps, "probe", auth, kNativePassword);
  std::string expected = "\x01\xa2\x0a\x01"s;  // capabilities, little-endian
  expected += "\x00\x00\x00\x01"s;             // max packet 16 MiB
  expected += "\x2d"s;                         // utf8mb4_general_ci
  expected += std::string(23, '\0');
  expected += "probe"s + '\0';
  expected += "\x14"s + auth;
  expected += "mysql_native_password"s + '\0';
  EXPECT_EQ(p, expected);

  // No password: an empty auth response.
  EXPECT_EQ(handshake_response(caps, "u", "", kNativePassword).substr(32, 3), "u\0\0"s);
  EXPECT_THROW(handshake_response(caps, "a\0b"s, "", kNativePassword), std::invalid_argument);
  EXPECT_EQ(com_query("SELECT 1"), "\x03SELECT 1");
}

}  // namespace
}  // namespace ilb::cp::mysql

// Typed, position-aware access to a parsed TOML document, shared by the dataplane and
// control-plane loaders. Every accessor either returns a value that passed its checks or throws
// ilb::ConfigError naming the file, the line and column of the offending node and its full key
// path ("service[0].backend[1].weight"). Tables only accept the keys their reader lists, so a
// misspelt key is an error instead of a silently applied default.
#pragma once

#include <toml++/toml.h>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/config/config_error.h"

namespace ilb::dp {

class TomlTable;

// One value of the document together with its key path, for messages.
class TomlNode {
 public:
  TomlNode(const toml::node& node, std::string path, const std::string& file,
           toml::source_position fallback);

  const toml::node& node() const { return *node_; }
  const std::string& path() const { return path_; }
  toml::source_position position() const;

  int64_t as_integer(int64_t min, int64_t max) const;
  bool as_boolean() const;
  std::string as_string() const;
  // A dotted-quad IPv4 unicast address, returned in network byte order.
  uint32_t as_ipv4() const;
  // "<n>ms", "<n>s", "<n>m" or "<n>h", returned in milliseconds and checked against [min, max].
  uint64_t as_duration_ms(uint64_t min_ms, uint64_t max_ms) const;
  // A duration that is a whole number of seconds, returned in seconds.
  uint32_t as_duration_s(uint32_t min_s, uint32_t max_s) const;
  TomlTable as_table() const;
  // The elements of an array, each with the path "key[i]".
  std::vector<TomlNode> as_array() const;
  // An array of tables ([[key]] sections or an array of inline tables).
  std::vector<TomlTable> as_table_array() const;

  [[noreturn]] void fail(const std::string& message) const;
  [[noreturn]] void fail_type(std::string_view expected) const;

 private:
  const toml::node* node_;
  std::string path_;
  const std::string* file_;
  toml::source_position fallback_;
};

// A table of the document together with its key path ("" for the root).
class TomlTable {
 public:
  TomlTable(const toml::table& table, std::string path, const std::string& file);

  const toml::table& table() const { return *table_; }
  const std::string& path() const { return path_; }
  const std::string& file() const { return *file_; }
  // The position of the table's header (or of its first key); line 1 for the root.
  toml::source_position position() const;

  // The full path of `key` inside this table, quoting keys that are not bare TOML keys.
  std::string key_path(std::string_view key) const;

  // Throws at the first key, in source order, that is not in `allowed`.
  void allow_only(std::initializer_list<std::string_view> allowed) const;

  std::optional<TomlNode> get(std::string_view key) const;
  // Throws "missing required key" at this table's position when `key` is absent.
  TomlNode require(std::string_view key) const;

  // Throws at this table's position with the key path `path_` (or `key_path(key)` if given).
  [[noreturn]] void fail(const std::string& message) const;
  [[noreturn]] void fail_key(std::string_view key, const std::string& message) const;

 private:
  const toml::table* table_;
  std::string path_;
  const std::string* file_;
};

// Reads a whole file. Throws ConfigError ("cannot read: ...") with no position.
std::string read_config_text(const std::string& path);

// Parses TOML text, turning toml::parse_error into ConfigError with the error's position.
toml::table parse_toml(std::string_view text, const std::string& path);

// User text in double quotes, with quotes, backslashes and control characters escaped so that a
// message stays on one line whatever the file contains.
std::string quoted(std::string_view text);

// False for addresses that can never be a host on a link: 0.0.0.0/8, loopback, multicast and
// class E (which includes the limited broadcast address).
bool is_unicast_ipv4(uint32_t network_order);

// "2s", "500ms", "1h": the shortest exact spelling of a duration, for messages.
std::string format_duration_ms(uint64_t ms);

// True if `text` is 1..max_len characters long and each is a digit, one of `extra` or an ASCII
// letter (lower case only unless `upper_case` is set).
bool is_name(std::string_view text, std::string_view extra, size_t max_len, bool upper_case);

}  // namespace ilb::dp

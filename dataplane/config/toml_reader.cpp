#include "dataplane/config/toml_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "dataplane/config/dp_config.h"

namespace ilb::dp {
namespace {

std::string_view describe(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// Escapes control characters (and, for text that goes between double quotes, quotes and
// backslashes) so that a message stays on one line whatever the file contains.
std::string escape_text(std::string_view text, bool quotes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (quotes && (c == '"' || c == '\\')) {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

bool is_bare_key(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

bool before(const toml::source_position& a, const toml::source_position& b) {
  return a.line < b.line || (a.line == b.line && a.column < b.column);
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

TomlNode::TomlNode(const toml::node& node, std::string path, const std::string& file,
                   toml::source_position fallback)
    : node_(&node), path_(std::move(path)), file_(&file), fallback_(fallback) {}

toml::source_position TomlNode::position() const {
  const auto& begin = node_->source().begin;
  return begin.line > 0 ? begin : fallback_;
}

void TomlNode::fail(const std::string& message) const {
  auto pos = position();
  throw ConfigError(*file_, pos.line, pos.column, path_, message);
}

void TomlNode::fail_type(std::string_view expected) const {
  fail("expected " + std::string(expected) + ", got " + std::string(describe(node_->type())));
}

int64_t TomlNode::as_integer(int64_t min, int64_t max) const {
  const auto* value = node_->as_integer();
  if (value == nullptr) fail_type("an integer");
  int64_t v = value->get();
  if (v < min || v > max) {
    fail("must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
         std::to_string(v));
  }
  return v;
}

bool TomlNode::as_boolean() const {
  const auto* value = node_->as_boolean();
  if (value == nullptr) fail_type("a boolean");
  return value->get();
}

std::string TomlNode::as_string() const {
  const auto* value = node_->as_string();
  if (value == nullptr) fail_type("a string");
  return value->get();
}

uint32_t TomlNode::as_ipv4() const {
  if (!node_->is_string()) fail_type("an IPv4 address string");
  std::string text = as_string();
  uint32_t address = 0;
  if (!parse_ipv4(text, address)) {
    fail("expected an IPv4 address such as \"10.0.0.1\", got " + quoted(text));
  }
  if (!is_unicast_ipv4(address)) fail(quoted(text) + " is not a unicast IPv4 address");
  return address;
}

uint64_t TomlNode::as_duration_ms(uint64_t min_ms, uint64_t max_ms) const {
  if (!node_->is_string()) fail_type("a duration string such as \"30s\"");
  std::string text = as_string();
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::string_view unit = std::string_view(text).substr(digits);
  uint64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  }
  // Nine digits of hours still fit comfortably in 64 bits of milliseconds.
  if (digits == 0 || digits > 9 || scale == 0) {
    fail("expected a duration such as \"30s\" (a whole number followed by ms, s, m or h), got " +
         quoted(text));
  }
  uint64_t ms = std::stoull(text.substr(0, digits)) * scale;
  if (ms < min_ms || ms > max_ms) {
    fail("must be between " + format_duration_ms(min_ms) + " and " + format_duration_ms(max_ms) +
         ", got " + quoted(text));
  }
  return ms;
}

uint32_t TomlNode::as_duration_s(uint32_t min_s, uint32_t max_s) const {
  uint64_t ms = as_duration_ms(uint64_t{min_s} * 1000, uint64_t{max_s} * 1000);
  if (ms % 1000 != 0) fail("must be a whole number of seconds, got " + quoted(as_string()));
  return static_cast<uint32_t>(ms / 1000);
}

TomlTable TomlNode::as_table() const {
  const auto* table = node_->as_table();
  if (table == nullptr) fail_type("a table");
  return TomlTable(*table, path_, *file_);
}

std::vector<TomlNode> TomlNode::as_array() const {
  const auto* array = node_->as_array();
  if (array == nullptr) fail_type("an array");
  std::vector<TomlNode> elements;
  elements.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    elements.emplace_back((*array)[i], path_ + "[" + std::to_string(i) + "]", *file_, position());
  }
  return elements;
}

std::vector<TomlTable> TomlNode::as_table_array() const {
  if (!node_->is_array()) fail_type("an array of tables");
  std::vector<TomlTable> tables;
  for (const auto& element : as_array()) {
    if (!element.node().is_table()) element.fail_type("a table");
    tables.push_back(element.as_table());
  }
  return tables;
}

TomlTable::TomlTable(const toml::table& table, std::string path, const std::string& file)
    : table_(&table), path_(std::move(path)), file_(&file) {}

toml::source_position TomlTable::position() const {
  const auto& begin = table_->source().begin;
  if (begin.line > 0) return begin;
  return toml::source_position{1, 1};
}

std::string TomlTable::key_path(std::string_view key) const {
  std::string name = is_bare_key(key) ? std::string(key) : quoted(key);
  return path_.empty() ? name : path_ + "." + name;
}

void TomlTable::allow_only(std::initializer_list<std::string_view> allowed) const {
  const toml::key* first = nullptr;
  for (const auto& [key, value] : *table_) {
    if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
    if (first == nullptr || before(key.source().begin, first->source().begin)) first = &key;
  }
  if (first == nullptr) return;
  std::string message = "unknown key";
  for (std::string_view candidate : allowed) {
    if (edit_distance(first->str(), candidate) <= 2) {
      message += " (did you mean " + quoted(candidate) + "?)";
      break;
    }
  }
  auto pos = first->source().begin;
  if (pos.line == 0) pos = position();
  throw ConfigError(*file_, pos.line, pos.column, key_path(first->str()), message);
}

std::optional<TomlNode> TomlTable::get(std::string_view key) const {
  auto it = table_->find(key);
  if (it == table_->end()) return std::nullopt;
  auto fallback = it->first.source().begin.line > 0 ? it->first.source().begin : position();
  return TomlNode(it->second, key_path(key), *file_, fallback);
}

TomlNode TomlTable::require(std::string_view key) const {
  auto node = get(key);
  if (!node) fail_key(key, "missing required key");
  return *node;
}

void TomlTable::fail(const std::string& message) const {
  auto pos = position();
  throw ConfigError(*file_, pos.line, pos.column, path_, message);
}

void TomlTable::fail_key(std::string_view key, const std::string& message) const {
  auto pos = position();
  throw ConfigError(*file_, pos.line, pos.column, key_path(key), message);
}

std::string read_config_text(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ConfigError(path, 0, 0, "", std::string("cannot open: ") + strerror(errno));
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      throw ConfigError(path, 0, 0, "", std::string("cannot read: ") + strerror(error));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

toml::table parse_toml(std::string_view text, const std::string& path) {
  try {
    return toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    // toml++ sometimes quotes the offending text raw, newlines included.
    throw ConfigError(path, begin.line, begin.column, "",
                      "TOML syntax error: " + escape_text(e.description(), false));
  }
}

std::string quoted(std::string_view text) {
  return "\"" + escape_text(text, true) + "\"";
}

bool is_unicast_ipv4(uint32_t network_order) {
  uint8_t first = 0;
  std::memcpy(&first, &network_order, 1);
  return first != 0 && first != 127 && first < 224;
}

std::string format_duration_ms(uint64_t ms) {
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

bool is_name(std::string_view text, std::string_view extra, size_t max_len, bool upper_case) {
  if (text.empty() || text.size() > max_len) return false;
  return std::all_of(text.begin(), text.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (upper_case && c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || extra.find(c) != std::string_view::npos;
  });
}

}  // namespace ilb::dp

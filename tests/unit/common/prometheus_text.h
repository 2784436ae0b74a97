// A strict check of Prometheus' text exposition format 0.0.4, for the tests of the metrics
// endpoint and the fuzz target that renders hostile stat regions (tests/fuzz/fuzz_stat.cpp).
#pragma once

#include <cctype>
#include <charconv>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

namespace ilb::test {

// Consumes a metric name (`colon`: ':' allowed) or a label name from the front of `s`; returns
// it, or "" if `s` does not start with one.
inline std::string_view take_name(std::string_view& s, bool colon) {
  auto first = [&](char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (colon && c == ':');
  };
  if (s.empty() || !first(s[0])) return {};
  size_t n = 1;
  while (n < s.size() && (first(s[n]) || std::isdigit(static_cast<unsigned char>(s[n])))) ++n;
  const std::string_view name = s.substr(0, n);
  s.remove_prefix(n);
  return name;
}

// Consumes `{name="value",...}` (values with only \\, \" and \n escapes); false if malformed.
inline bool take_labels(std::string_view& s) {
  if (s.empty() || s[0] != '{') return true;
  s.remove_prefix(1);
  for (;;) {
    if (take_name(s, false).empty() || s.substr(0, 2) != "=\"") return false;
    s.remove_prefix(2);
    for (;;) {
      if (s.empty()) return false;
      const char c = s[0];
      s.remove_prefix(1);
      if (c == '"') break;
      if (c == '\\') {
        if (s.empty() || (s[0] != '\\' && s[0] != '"' && s[0] != 'n')) return false;
        s.remove_prefix(1);
      }
    }
    if (!s.empty() && s[0] == ',') {
      s.remove_prefix(1);
      continue;
    }
    if (s.empty() || s[0] != '}') return false;
    s.remove_prefix(1);
    return true;
  }
}

// Checks the text against the exposition format 0.0.4 as Prometheus parses it: every family has
// one HELP and one TYPE line before its samples, appears once, and holds only samples of its own
// name, each series once; names and labels are well formed; counters end in _total; values are
// numbers. Returns "" or the first problem. (By hand: std::regex trips a false GCC 12 warning
// in the sanitizer build.)
inline std::string format_problem(const std::string& text) {
  if (text.empty() || text.back() != '\n') return "does not end with a newline";
  std::set<std::string> seen;
  std::set<std::string> series;
  std::string help;
  std::string family;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::string_view rest = line;
    if (rest.starts_with("# HELP ")) {
      rest.remove_prefix(7);
      const std::string name(take_name(rest, true));
      if (name.empty() || rest.size() < 2 || rest[0] != ' ') return "malformed HELP: " + line;
      if (!seen.insert(name).second) return "family twice: " + line;
      help = name;
      family.clear();
    } else if (rest.starts_with("# TYPE ")) {
      rest.remove_prefix(7);
      const std::string name(take_name(rest, true));
      if (name != help) return "TYPE without its HELP: " + line;
      if (rest != " counter" && rest != " gauge") return "bad TYPE: " + line;
      if (rest == " counter" && !name.ends_with("_total")) return "counter without _total: " + line;
      family = name;
    } else {
      const std::string name(take_name(rest, true));
      if (name.empty() || !take_labels(rest) || rest.size() < 2 || rest[0] != ' ') {
        return "malformed line: " + line;
      }
      double value = 0;
      const auto r = std::from_chars(rest.data() + 1, rest.data() + rest.size(), value);
      if (r.ec != std::errc() || r.ptr != rest.data() + rest.size()) return "bad value: " + line;
      if (name != family) return "sample outside its family: " + line;
      if (!series.insert(line.substr(0, line.rfind(' '))).second) return "series twice: " + line;
    }
  }
  return "";
}

}  // namespace ilb::test

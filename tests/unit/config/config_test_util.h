// Helpers shared by the configuration tests: they check that a rejected file produces exactly one
// ConfigError that names the file, the line of the offending text and the full key path.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "dataplane/config/config_error.h"

namespace ilb::test {

inline constexpr const char* kFile = "test.toml";

// The 1-based line of the first line of `text` that contains `marker`; 0 if none does.
inline uint32_t line_of(std::string_view text, std::string_view marker) {
  size_t at = text.find(marker);
  if (at == std::string_view::npos) return 0;
  uint32_t line = 1;
  for (size_t i = 0; i < at; ++i) line += text[i] == '\n' ? 1 : 0;
  return line;
}

// Runs `load` and returns the ConfigError it throws, or nothing if it does not throw one.
inline std::optional<ConfigError> error_of(const std::function<void()>& load) {
  try {
    load();
  } catch (const ConfigError& e) {
    return e;
  }
  return std::nullopt;
}

// Checks that `error` exists and says "kFile:LINE:COLUMN: KEY: ...message...", where LINE is the
// line of `marker` in `text`.
inline ::testing::AssertionResult is_error_at(const std::optional<ConfigError>& error,
                                              std::string_view text, std::string_view marker,
                                              const std::string& key, std::string_view message) {
  if (!error) return ::testing::AssertionFailure() << "the text was accepted";
  uint32_t line = line_of(text, marker);
  if (line == 0) return ::testing::AssertionFailure() << "marker not in text: " << marker;
  std::string what = error->what();
  std::string prefix = std::string(kFile) + ":" + std::to_string(line) + ":";
  if (error->file() != kFile || error->line() != line || error->key() != key ||
      what.rfind(prefix, 0) != 0 || what.find(message) == std::string::npos ||
      (!key.empty() && what.find(": " + key + ": ") == std::string::npos)) {
    return ::testing::AssertionFailure()
           << "got \"" << what << "\" (line " << error->line() << ", key \"" << error->key()
           << "\"), expected line " << line << ", key \"" << key << "\", message containing \""
           << message << "\"";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace ilb::test

// The one error type for configuration problems, shared by the control plane and the dataplane so
// that both report a bad file the same way: "FILE:LINE:COLUMN: KEY: what was expected".
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace ilb {

class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, uint32_t line, uint32_t column, std::string key,
              const std::string& message)
      : std::runtime_error(format(file, line, column, key, message)),
        file_(std::move(file)),
        line_(line),
        column_(column),
        key_(std::move(key)) {}

  const std::string& file() const { return file_; }
  uint32_t line() const { return line_; }
  uint32_t column() const { return column_; }
  const std::string& key() const { return key_; }

 private:
  static std::string format(const std::string& file, uint32_t line, uint32_t column,
                            const std::string& key, const std::string& message) {
    std::string s = file;
    if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
    s += ": ";
    if (!key.empty()) s += key + ": ";
    return s + message;
  }

  std::string file_;
  uint32_t line_;
  uint32_t column_;
  std::string key_;
};

}  // namespace ilb

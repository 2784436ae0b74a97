#include "controlplane/state/state_file.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace ilb::cp {
namespace {

constexpr const char* kFormat = "ilb-state";
constexpr int kVersion = 1;

std::runtime_error sys_error(const std::string& what, const std::string& path) {
  return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

bool parse_ipv4(const nlohmann::json& j, uint32_t& out) {
  if (!j.is_string()) return false;
  in_addr a{};
  if (inet_pton(AF_INET, j.get<std::string>().c_str(), &a) != 1) return false;
  out = a.s_addr;
  return true;
}

bool parse_port(const nlohmann::json& j, uint16_t& out) {
  if (!j.is_number_unsigned()) return false;
  const uint64_t v = j.get<uint64_t>();
  if (v == 0 || v > 65535) return false;
  out = static_cast<uint16_t>(v);
  return true;
}

template <typename E>
bool parse_enum(const nlohmann::json& j, const char* (*name_of)(E), std::initializer_list<E> all,
                E& out) {
  if (!j.is_string()) return false;
  const std::string text = j.get<std::string>();
  for (E e : all) {
    if (text == name_of(e)) {
      out = e;
      return true;
    }
  }
  return false;
}

bool parse_entry(const nlohmann::json& j, SavedBackend& out) {
  if (!j.is_object()) return false;
  const std::string protocol = j.value("protocol", std::string());
  if (protocol != "tcp" && protocol != "udp") return false;
  out.key.protocol = protocol == "udp" ? abi::Protocol::kUdp : abi::Protocol::kTcp;
  if (!j.contains("vip") || !parse_ipv4(j["vip"], out.key.vip)) return false;
  if (!j.contains("port") || !parse_port(j["port"], out.key.vport)) return false;
  if (!j.contains("address") || !parse_ipv4(j["address"], out.key.address)) return false;
  if (!j.contains("backend_port") || !parse_port(j["backend_port"], out.key.port)) return false;
  if (!j.contains("id") || !j["id"].is_number_unsigned()) return false;
  const uint64_t id = j["id"].get<uint64_t>();
  if (id == 0 || id >= abi::kMaxBackends) return false;
  out.id = static_cast<uint32_t>(id);
  if (!j.contains("admin") ||
      !parse_enum<abi::AdminState>(
          j["admin"], admin_name,
          {abi::AdminState::kEnabled, abi::AdminState::kDraining, abi::AdminState::kDisabled},
          out.admin)) {
    return false;
  }
  return j.contains("health") &&
         parse_enum<abi::Health>(j["health"], health_name,
                                 {abi::Health::kUnknown, abi::Health::kUp, abi::Health::kDown},
                                 out.health);
}

}  // namespace

std::string encode_state_file(const State& state, const std::string& instance) {
  nlohmann::json backends = nlohmann::json::array();
  for (const auto& s : state.services()) {
    for (const auto& b : s.backends) {
      backends.push_back({{"service", s.config.name},
                          {"vip", address_text(s.config.vip)},
                          {"port", s.config.port},
                          {"protocol", s.config.protocol == abi::Protocol::kUdp ? "udp" : "tcp"},
                          {"address", address_text(b.config.address)},
                          {"backend_port", b.config.port},
                          {"id", b.id},
                          {"admin", admin_name(b.admin)},
                          {"health", health_name(b.health)},
                          {"last_check", b.last_check}});
    }
  }
  nlohmann::json doc = {{"format", kFormat},
                        {"version", kVersion},
                        {"instance", instance},
                        {"backends", std::move(backends)}};
  // Replacement characters instead of an exception: a probe's reason may hold any bytes.
  return doc.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

StateFileContents decode_state_file(const std::string& text) {
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) throw std::runtime_error("not valid JSON");
  if (!doc.is_object() || doc.value("format", std::string()) != kFormat) {
    throw std::runtime_error("not an ilb state file (format is not \"ilb-state\")");
  }
  if (!doc.contains("version") || !doc["version"].is_number_integer() ||
      doc["version"].get<int64_t>() != kVersion) {
    throw std::runtime_error("unsupported state file version");
  }
  if (!doc.contains("backends") || !doc["backends"].is_array()) {
    throw std::runtime_error("\"backends\" is missing or not an array");
  }
  StateFileContents out;
  for (const auto& entry : doc["backends"]) {
    SavedBackend b;
    if (parse_entry(entry, b)) {
      out.backends.push_back(b);
    } else {
      ++out.skipped;
    }
  }
  return out;
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::filesystem::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path(), ec);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw sys_error("cannot create", tmp);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const auto error = sys_error("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw error;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const auto error = sys_error("cannot fsync", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    throw error;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const auto error = sys_error("cannot rename to", path);
    ::unlink(tmp.c_str());
    throw error;
  }
}

}  // namespace ilb::cp

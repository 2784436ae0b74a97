#include "tools/ilbctl/format.h"

#include <algorithm>
#include <cstdio>

namespace ilb::ctl {

namespace {

using nlohmann::json;

// Any scalar field as text; "-" when it is absent or null.
std::string field(const json& j, const char* key) {
  if (!j.is_object()) return "-";
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_boolean()) return it->get<bool>() ? "yes" : "no";
  return it->dump();
}

uint64_t number(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return 0;
  return it->is_number_unsigned() || it->get<int64_t>() >= 0 ? it->get<uint64_t>() : 0;
}

bool is_number(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string pad(const std::string& s, size_t width, bool right) {
  if (s.size() >= width) return s;
  return right ? std::string(width - s.size(), ' ') + s : s + std::string(width - s.size(), ' ');
}

}  // namespace

std::string format_duration(uint64_t s) {
  char buf[48];
  if (s >= 86400) {
    std::snprintf(buf, sizeof(buf), "%llud%lluh", static_cast<unsigned long long>(s / 86400),
                  static_cast<unsigned long long>(s % 86400 / 3600));
  } else if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lluh%02llum", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s % 3600 / 60));
  } else if (s >= 60) {
    std::snprintf(buf, sizeof(buf), "%llum%02llus", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%llus", static_cast<unsigned long long>(s));
  }
  return buf;
}

std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows) {
  const size_t cols = header.size();
  std::vector<size_t> width(cols);
  std::vector<bool> right(cols, !rows.empty());
  for (size_t c = 0; c < cols; ++c) width[c] = header[c].size();
  for (const auto& row : rows) {
    for (size_t c = 0; c < cols; ++c) {
      const std::string& cell = c < row.size() ? row[c] : std::string();
      width[c] = std::max(width[c], cell.size());
      if (!is_number(cell)) right[c] = false;
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cols; ++c) {
      const std::string& cell = c < cells.size() ? cells[c] : std::string();
      // The last column is not padded on the right, so lines carry no trailing blanks.
      out += c + 1 == cols && !right[c] ? cell : pad(cell, width[c], right[c]);
      if (c + 1 < cols) out += "  ";
    }
    return out + "\n";
  };
  std::string out = line(header);
  for (const auto& row : rows) out += line(row);
  return out;
}

std::string format_status(const json& s) {
  std::string out;
  auto kv = [&](const std::string& k, const std::string& v) {
    out += pad(k + ":", 15, false) + v + "\n";
  };
  kv("instance", field(s, "instance"));
  kv("config", field(s, "config_path"));
  kv("control plane", "pid " + field(s, "pid") + ", up " + format_duration(number(s, "uptime_s")) +
                          ", published generation " + field(s, "published_gen"));
  kv("services", field(s, "services") + " (" + field(s, "backends") + " backends, " +
                     field(s, "backends_up") + " up)");
  if (s.is_object() && s.contains("checks") && s["checks"].is_object()) {
    kv("checks",
       field(s["checks"], "probes") + " probes, " + field(s["checks"], "failed") + " failed");
  }
  if (s.is_object() && s.contains("hooks") && s["hooks"].is_object() &&
      s["hooks"].value("configured", false)) {
    const json& h = s["hooks"];
    kv("hooks", field(h, "ran") + " ran, " + field(h, "failed") + " failed, " +
                    field(h, "dropped") + " dropped, " + field(h, "queued") + " queued");
  }

  const json dp = s.is_object() && s.contains("dataplane") ? s["dataplane"] : json::object();
  const bool running = dp.value("running", false);
  if (!dp.contains("pid")) {
    kv("dataplane", "not running (no stat region)");
    return out;
  }
  std::string line = running ? "running" : "not running";
  line += ", pid " + field(dp, "pid") + ", boot " + field(dp, "boot_id") + ", " +
          field(dp, "workers") + " worker(s)";
  kv("dataplane", line);
  kv("generations", "applied " + field(dp, "applied_gen") + ", acked " + field(dp, "acked_gen") +
                        ", rejected " + field(dp, "rejected_gen"));
  kv("heartbeat", dp.contains("heartbeat_age_ms") && !dp["heartbeat_age_ms"].is_null()
                      ? field(dp, "heartbeat_age_ms") + " ms ago"
                      : std::string("never"));
  if (number(dp, "rejected_gen") != 0) kv("last reject", field(dp, "reject_reason"));
  if (dp.contains("handoff") && dp["handoff"].is_object()) {
    const json& h = dp["handoff"];
    kv("hand-overs", field(h, "packets") + " frames to their owning worker, " + field(h, "drops") +
                         " dropped (ring full); " + field(h, "steered_conns") +
                         " connections steered by RSS, " + field(h, "unsteered_conns") + " not");
  }
  if (dp.contains("replies") && dp["replies"].is_object()) {
    const json& r = dp["replies"];
    kv("replies", field(r, "untracked_resets") + " resets to untracked TCP, " +
                      field(r, "icmp_errors_translated") + " ICMP errors translated, " +
                      field(r, "limited") + " not sent (over reply_rate_limit)");
  }
  if (dp.contains("mss_clamped")) {
    kv("mss clamped", field(dp, "mss_clamped") + " SYN segments (MSS lowered to the ports' MTU)");
  }

  if (dp.contains("lcores") && dp["lcores"].is_array() && !dp["lcores"].empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& l : dp["lcores"]) {
      rows.push_back({field(l, "lcore"), l.value("worker", false) ? "worker" : "main",
                      field(l, "loops"), field(l, "busy_loops"), field(l, "rx_packets"),
                      field(l, "tx_packets"), field(l, "active_conns")});
    }
    out += "\n" + format_table({"LCORE", "ROLE", "LOOPS", "BUSY", "RX", "TX", "CONNS"}, rows);
  }
  if (dp.contains("ports") && dp["ports"].is_array() && !dp["ports"].empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& p : dp["ports"]) {
      std::string link = field(p, "link");
      if (link == "up" && number(p, "speed_mbps") != 0) {
        link += " " + field(p, "speed_mbps") + " Mbit/s";
      }
      rows.push_back({field(p, "name"), link, field(p, "rx_packets"), field(p, "tx_packets"),
                      field(p, "rx_dropped"), field(p, "rx_errors"), field(p, "tx_errors")});
    }
    out += "\n" +
           format_table({"PORT", "LINK", "RX", "TX", "RX_DROPPED", "RX_ERRORS", "TX_ERRORS"}, rows);
  }
  if (dp.contains("drops") && dp["drops"].is_object()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& [name, value] : dp["drops"].items()) {
      if (value.is_number_integer() && value.dump() != "0") rows.push_back({name, value.dump()});
    }
    if (!rows.empty()) out += "\n" + format_table({"DROP", "PACKETS"}, rows);
  }
  return out;
}

std::string format_services(const json& services) {
  std::vector<std::vector<std::string>> rows;
  if (services.is_array()) {
    for (const auto& s : services) {
      rows.push_back({field(s, "name"), field(s, "vip") + ":" + field(s, "port"),
                      field(s, "protocol"), field(s, "scheduler"), field(s, "mode"),
                      field(s, "backends"), field(s, "backends_up"), field(s, "active_conns"),
                      field(s, "new_conns"), field(s, "packets_in"), field(s, "packets_out")});
    }
  }
  return format_table({"NAME", "VIP", "PROTO", "SCHED", "MODE", "BACKENDS", "UP", "ACTIVE", "NEW",
                       "PKTS_IN", "PKTS_OUT"},
                      rows);
}

std::string format_backends(const json& backends) {
  std::vector<std::vector<std::string>> rows;
  if (backends.is_array()) {
    for (const auto& b : backends) {
      // STATE carries what is counting down: "draining (42s left)", "held (10s)", "ramping 35%".
      std::string state = field(b, "state");
      if (b.contains("drain_left_s") && !b["drain_left_s"].is_null()) {
        state += " (" + field(b, "drain_left_s") + "s left)";
      } else if (b.contains("held_s") && !b["held_s"].is_null()) {
        state += " (" + field(b, "held_s") + "s)";
      } else if (b.contains("ramp_pct") && !b["ramp_pct"].is_null()) {
        state += " " + field(b, "ramp_pct") + "%";
      }
      std::string role = b.value("backup", false) ? "backup" : "primary";
      if (b.contains("zone") && b["zone"].is_string() && !b["zone"].get<std::string>().empty()) {
        role += "/" + b["zone"].get<std::string>();
      }
      rows.push_back({field(b, "id"), field(b, "address") + ":" + field(b, "port"), role,
                      field(b, "weight"), field(b, "serving_weight"), state, field(b, "admin"),
                      field(b, "health"), field(b, "active_conns"), field(b, "new_conns"),
                      field(b, "resets"), field(b, "packets_in"), field(b, "packets_out"),
                      field(b, "last_check")});
    }
  }
  return format_table({"ID", "BACKEND", "ROLE", "WEIGHT", "NOW", "STATE", "ADMIN", "HEALTH",
                       "ACTIVE", "NEW", "RESETS", "PKTS_IN", "PKTS_OUT", "LAST_CHECK"},
                      rows);
}

std::string format_admin(const json& a) {
  return field(a, "service") + " " + field(a, "backend") + ": admin " + field(a, "admin") + "\n";
}

std::string format_reload(const json& r) {
  std::string out = "reloaded: " + field(r, "services") + " services, " + field(r, "backends") +
                    " backends (" + field(r, "added") + " added, " + field(r, "removed") +
                    " removed), ";
  if (r.is_object() && r.value("publish_pending", false)) {
    out += "publish pending (waiting for the dataplane)";
  } else {
    out += "published generation " + field(r, "published_gen");
  }
  return out + "\n";
}

}  // namespace ilb::ctl

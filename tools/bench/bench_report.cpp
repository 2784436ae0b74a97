#include "tools/bench/bench_report.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace ilb::bench {
namespace {

std::string trim(std::string s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

// The number after "<key>:" in a /proc file of "Key:   value unit" lines, or 0.
uint64_t proc_status_value(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0)
      return std::strtoull(line.c_str() + key.size() + 1, nullptr, 10);
  }
  return 0;
}

double timeval_seconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

}  // namespace

MachineInfo machine_info() {
  MachineInfo m;
  m.cpu_model = "unknown";
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  bool have_model = false;
  while (std::getline(cpuinfo, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = trim(line.substr(0, colon));
    if (key == "processor") ++m.logical_cpus;
    if (key == "model name" && !have_model) {
      m.cpu_model = trim(line.substr(colon + 1));
      have_model = true;
    }
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) m.usable_cpus = CPU_COUNT(&set);
  m.memory_kib = proc_status_value("/proc/meminfo", "MemTotal");
  utsname u{};
  if (uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
  m.date_utc = date;
  std::ifstream loadavg("/proc/loadavg");
  loadavg >> m.load_average_1m;
  return m;
}

nlohmann::json to_json(const MachineInfo& machine) {
  return {{"cpu_model", machine.cpu_model},
          {"logical_cpus", machine.logical_cpus},
          {"usable_cpus", machine.usable_cpus},
          {"memory_kib", machine.memory_kib},
          {"kernel", machine.kernel},
          {"date_utc", machine.date_utc},
          {"load_average_1m", machine.load_average_1m}};
}

std::string machine_line(const MachineInfo& machine) {
  std::ostringstream out;
  out << machine.cpu_model << ", " << machine.logical_cpus << " CPUs (" << machine.usable_cpus
      << " usable), " << human_bytes(machine.memory_kib * 1024) << " RAM, " << machine.kernel
      << ", " << machine.date_utc << ", load " << fixed(machine.load_average_1m, 2);
  return out.str();
}

void print_table(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [label, value] : rows) {
    if (!value.empty()) width = std::max(width, label.size());
  }
  for (const auto& [label, value] : rows) {
    if (value.empty()) {
      std::cout << "\n" << label << "\n";
    } else {
      std::cout << "  " << label << std::string(width - label.size() + 2, ' ') << value << "\n";
    }
  }
  std::cout << std::flush;
}

void emit_json(const nlohmann::json& doc, const std::string& path) {
  if (!path.empty()) {
    std::ofstream out(path);
    if (!out) throw std::runtime_error("cannot write " + path);
    out << doc.dump(2) << "\n";
  }
  std::cout << doc.dump() << std::endl;
}

uint64_t parse_duration_ms(std::string_view text) {
  double value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr == begin || value < 0 || !std::isfinite(value)) {
    throw std::invalid_argument("not a duration: '" + std::string(text) + "'");
  }
  const std::string_view unit(ptr, static_cast<size_t>(end - ptr));
  double scale = 0;
  if (unit.empty() || unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60000;
  } else {
    throw std::invalid_argument("not a duration: '" + std::string(text) + "' (units: ms, s, m)");
  }
  return static_cast<uint64_t>(std::llround(value * scale));
}

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  return buf;
}

std::string human_seconds(double seconds) {
  if (seconds >= 1) return fixed(seconds, 2) + " s";
  if (seconds >= 1e-3) return fixed(seconds * 1e3, 2) + " ms";
  return fixed(seconds * 1e6, 1) + " us";
}

std::string human_bytes(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) return fixed(b / (1024.0 * 1024 * 1024), 1) + " GiB";
  if (b >= 1024.0 * 1024) return fixed(b / (1024.0 * 1024), 1) + " MiB";
  return fixed(b / 1024.0, 0) + " KiB";
}

CpuTimes process_cpu_times() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return {timeval_seconds(ru.ru_utime), timeval_seconds(ru.ru_stime)};
}

CpuTimes pid_cpu_times(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  // The command name is in parentheses and may contain spaces: fields count from the last ')'.
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return {};
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  // After ')' come state (field 3) ... utime is field 14 and stime field 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {static_cast<double>(utime) / tick, static_cast<double>(stime) / tick};
}

uint64_t rss_kib() {
  return proc_status_value("/proc/self/status", "VmRSS");
}

uint64_t peak_rss_kib() {
  return proc_status_value("/proc/self/status", "VmHWM");
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace ilb::bench

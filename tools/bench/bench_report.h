// What every ilb benchmark reports besides its own numbers: the machine it ran on, a two-column
// table for people and one JSON document for machines. Benchmarks print measurements, never a
// verdict; whoever quotes a number quotes the machine line and the command with it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ilb::bench {

struct MachineInfo {
  std::string cpu_model;      // "model name" from /proc/cpuinfo ("unknown" if absent)
  unsigned logical_cpus = 0;  // processors listed in /proc/cpuinfo
  unsigned usable_cpus = 0;   // CPUs this process may run on (its affinity mask)
  uint64_t memory_kib = 0;    // MemTotal from /proc/meminfo
  std::string kernel;         // "Linux 6.1.0-13-amd64 x86_64"
  std::string date_utc;       // ISO 8601, when machine_info() was called
  // The 1-minute load average when machine_info() was called: on a shared machine, anything
  // well above zero before a run means the numbers are disturbed.
  double load_average_1m = 0;
};

MachineInfo machine_info();
nlohmann::json to_json(const MachineInfo& machine);
// One line to quote beside a number:
// "AMD EPYC, 2 CPUs (2 usable), 7.8 GiB RAM, Linux ..., <date>, load 0.12".
std::string machine_line(const MachineInfo& machine);

// Prints rows as two aligned columns. A row whose value is empty is printed as a section heading.
void print_table(const std::vector<std::pair<std::string, std::string>>& rows);

// Writes `doc` pretty-printed to `path` when it is not empty, and always prints it as the last
// line of standard output, compact, so that `| tail -n 1` yields the machine-readable result.
void emit_json(const nlohmann::json& doc, const std::string& path);

// Parses "250ms", "1s", "1.5s", "2m" or a bare number of milliseconds. Throws
// std::invalid_argument on anything else.
uint64_t parse_duration_ms(std::string_view text);

// Fixed-point formatting for table cells ("12.35").
std::string fixed(double value, int decimals);
// "1.25 s", "3.40 ms" or "12.0 us", whichever reads best.
std::string human_seconds(double seconds);
// "512 KiB", "3.2 MiB" or "1.1 GiB".
std::string human_bytes(uint64_t bytes);

// CPU time of the calling process (getrusage(RUSAGE_SELF)), in seconds.
struct CpuTimes {
  double user_s = 0;
  double system_s = 0;
  double total() const { return user_s + system_s; }
};
CpuTimes process_cpu_times();
// CPU time of another process of ours, from /proc/<pid>/stat; zeros if it cannot be read.
CpuTimes pid_cpu_times(int pid);

// VmRSS and VmHWM (peak) of the calling process from /proc/self/status, in KiB.
uint64_t rss_kib();
uint64_t peak_rss_kib();

// Monotonic wall clock in seconds, for timing.
double now_seconds();

}  // namespace ilb::bench

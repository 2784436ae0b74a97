// ilb-bench-maglev: how long the control plane takes to compute Maglev tables.
//
// It times four things a running control plane does: building one service's table (the cost of a
// single change), building every table from nothing with TableBuilder on all cores and on one core
// (start-up, and what TBB buys), rebuilding after one service's weights changed (must rebuild
// exactly that one table), and a build in which nothing changed (must rebuild none; what remains
// is the cost of the cache check). The rebuilt table is compared with a fresh one-off build, so a
// stale cache cannot make the incremental time look good.
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "controlplane/tables/maglev.h"
#include "tools/bench/bench_report.h"

namespace {

using ilb::bench::fixed;
using ilb::bench::human_bytes;
using ilb::bench::human_seconds;
using ilb::bench::now_seconds;
using ilb::cp::MaglevBackend;
using ilb::cp::TableBuilder;
using ilb::cp::TableRequest;

// Every backend gets a distinct name ("10.a.b.c:80") and a distinct id, as in a real config where
// backend ids are global. Mixed weights spread 50..150 so that the weighted rounds are exercised.
std::vector<TableRequest> make_requests(uint32_t services, uint32_t backends, uint32_t table_size,
                                        bool mixed_weights) {
  std::vector<TableRequest> requests(services);
  uint32_t index = 0;
  for (uint32_t s = 0; s < services; ++s) {
    requests[s].table_size = table_size;
    requests[s].backends.reserve(backends);
    for (uint32_t b = 0; b < backends; ++b, ++index) {
      const uint32_t host = index + 1;
      MaglevBackend backend;
      backend.id = index + 1;
      backend.weight = mixed_weights ? 50 + (index * 37) % 101 : 100;
      backend.name = "10." + std::to_string((host >> 16) & 0xff) + "." +
                     std::to_string((host >> 8) & 0xff) + "." + std::to_string(host & 0xff) + ":80";
      requests[s].backends.push_back(std::move(backend));
    }
  }
  return requests;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Times a fresh TableBuilder over every request with at most `threads` threads. TBB's worker pool
// is started by a throwaway parallel_for first: a running control plane has its pool already.
double time_full_build(const std::vector<TableRequest>& requests, size_t threads,
                       TableBuilder& builder) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
  tbb::parallel_for(size_t{0}, threads * 4, [](size_t) {});
  const double t0 = now_seconds();
  builder.build(requests);
  return now_seconds() - t0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ilb-bench-maglev: Maglev table build and rebuild times"};
  uint32_t services = 1000;
  uint32_t backends = 100;
  uint32_t table_size = 65537;
  size_t threads = 0;
  int repeat = 9;
  std::string weights = "equal";
  std::string json_path;
  app.add_option("--services", services, "services (one table each)")
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--backends", backends, "backends per service")->check(CLI::Range(1u, 65535u));
  app.add_option("--table-size", table_size, "table size (prime)")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "TBB threads for the parallel build (0 = all usable cores)");
  app.add_option("--repeat", repeat, "builds of one table to take the median of")
      ->check(CLI::Range(1, 1000));
  app.add_option("--weights", weights, "backend weights: equal (all 100) or mixed (50..150)")
      ->check(CLI::IsMember({"equal", "mixed"}));
  app.add_option("--json", json_path, "also write the result as JSON to this file");
  CLI11_PARSE(app, argc, argv);

  const ilb::bench::MachineInfo machine = ilb::bench::machine_info();
  if (threads == 0) threads = static_cast<size_t>(tbb::info::default_concurrency());

  std::vector<TableRequest> requests =
      make_requests(services, backends, table_size, weights == "mixed");

  // One service's table, on the calling thread.
  std::vector<double> single;
  std::vector<uint32_t> reference;
  try {
    for (int i = 0; i < repeat; ++i) {
      const double t0 = now_seconds();
      reference = ilb::cp::build_maglev_table(requests[0].backends, table_size);
      single.push_back(now_seconds() - t0);
    }
  } catch (const std::exception& e) {
    std::cerr << "ilb-bench-maglev: " << e.what() << "\n";
    return 2;
  }
  const double single_median = median(single);
  const double single_min = *std::min_element(single.begin(), single.end());

  // Every table from nothing, first on all threads, then on one.
  TableBuilder builder;
  const double all_parallel = time_full_build(requests, threads, builder);
  const size_t built_parallel = builder.last_rebuilt();
  // Measured before the one-thread set exists: freed memory is not always returned to the system.
  const uint64_t rss_one_table_set = ilb::bench::rss_kib();
  TableBuilder serial_builder;
  const double all_serial = time_full_build(requests, 1, serial_builder);
  const size_t built_serial = serial_builder.last_rebuilt();

  uint64_t table_bytes = 0;
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
    const auto& tables = builder.build(requests);  // nothing changed: served from the cache
    for (const auto& t : tables) table_bytes += t.capacity() * sizeof(uint32_t);
  }
  const bool serial_matches = serial_builder.build(requests) == builder.build(requests) &&
                              builder.build(requests)[0] == reference;
  serial_builder = TableBuilder();

  // One service's weights change: exactly one table must be rebuilt.
  const size_t changed = services / 2;
  const std::vector<uint32_t> before_change = builder.build(requests)[changed];
  for (MaglevBackend& b : requests[changed].backends) b.weight = b.weight * 2;
  requests[changed].backends[0].weight = 1;  // one backend loses almost all of its share
  double one_changed = 0;
  size_t rebuilt_one = 0;
  bool rebuilt_matches = false;
  size_t slots_moved = 0;
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
    const double t0 = now_seconds();
    const auto& tables = builder.build(requests);
    one_changed = now_seconds() - t0;
    rebuilt_one = builder.last_rebuilt();
    const std::vector<uint32_t> fresh =
        ilb::cp::build_maglev_table(requests[changed].backends, table_size);
    rebuilt_matches = tables[changed] == fresh;
    for (size_t i = 0; i < fresh.size() && i < before_change.size(); ++i) {
      if (fresh[i] != before_change[i]) ++slots_moved;
    }
  }

  // Nothing changes: no table is rebuilt, only compared.
  double no_op = 0;
  size_t rebuilt_none = 0;
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
    const double t0 = now_seconds();
    builder.build(requests);
    no_op = now_seconds() - t0;
    rebuilt_none = builder.last_rebuilt();
  }

  const double speedup = all_parallel > 0 ? all_serial / all_parallel : 0;
  const std::string services_s = std::to_string(services);
  std::cout << "ilb-bench-maglev: " << services << " services x " << backends
            << " backends, table size " << table_size << ", " << weights << " weights\n"
            << "machine: " << ilb::bench::machine_line(machine) << "\n";
  ilb::bench::print_table({
      {"One service", ""},
      {"build_maglev_table, median of " + std::to_string(repeat), human_seconds(single_median)},
      {"build_maglev_table, fastest", human_seconds(single_min)},
      {"All " + services_s + " services (fresh TableBuilder)", ""},
      {std::to_string(threads) + " TBB threads",
       human_seconds(all_parallel) + "  (" + std::to_string(built_parallel) + " built)"},
      {"1 thread", human_seconds(all_serial) + "  (" + std::to_string(built_serial) + " built)"},
      {"speed-up", fixed(speedup, 2) + "x on " + std::to_string(threads) + " threads"},
      {"per table, " + std::to_string(threads) + " threads",
       human_seconds(all_parallel / services)},
      {"1-thread, " + std::to_string(threads) + "-thread and one-off tables equal",
       serial_matches ? "yes" : "NO"},
      {"Incremental rebuild (" + std::to_string(threads) + " threads)", ""},
      {"service " + std::to_string(changed) + "'s weights changed", human_seconds(one_changed)},
      {"  tables rebuilt", std::to_string(rebuilt_one)},
      {"  rebuilt table equals a fresh build", rebuilt_matches ? "yes" : "NO"},
      {"  slots that moved", std::to_string(slots_moved) + " of " + std::to_string(table_size) +
                                 " (" + fixed(100.0 * slots_moved / table_size, 1) + " %)"},
      {"nothing changed", human_seconds(no_op)},
      {"  tables rebuilt", std::to_string(rebuilt_none)},
      {"Memory", ""},
      {"all tables", human_bytes(table_bytes)},
      {"process RSS holding one set of tables", human_bytes(rss_one_table_set * 1024)},
  });

  nlohmann::json doc = {
      {"benchmark", "maglev"},
      {"machine", ilb::bench::to_json(machine)},
      {"params",
       {{"services", services},
        {"backends", backends},
        {"table_size", table_size},
        {"threads", threads},
        {"repeat", repeat},
        {"weights", weights}}},
      {"results",
       {{"one_table_median_s", single_median},
        {"one_table_min_s", single_min},
        {"all_tables_parallel_s", all_parallel},
        {"all_tables_serial_s", all_serial},
        {"speedup", speedup},
        {"serial_equals_parallel", serial_matches},
        {"one_changed_s", one_changed},
        {"one_changed_rebuilt", rebuilt_one},
        {"one_changed_equals_fresh", rebuilt_matches},
        {"one_changed_slots_moved", slots_moved},
        {"no_op_s", no_op},
        {"no_op_rebuilt", rebuilt_none},
        {"tables_bytes", table_bytes},
        {"rss_kib", rss_one_table_set},
        {"peak_rss_kib", ilb::bench::peak_rss_kib()}}},
  };
  ilb::bench::emit_json(doc, json_path);
  return 0;
}

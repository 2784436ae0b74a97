#include "controlplane/api/metrics.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace ilb::cp {

namespace {

using Label = std::pair<std::string_view, std::string_view>;

// The label set `base` ("{a=\"b\"}", or "{}" for none) with `pairs` added. Label values are
// escaped as the format requires (backslash, quote, newline); bytes outside printable ASCII (a
// port name read from shared memory could hold anything) become '?', so the output is always
// valid UTF-8.
std::string labels(std::initializer_list<Label> pairs, std::string base = "{}") {
  std::string out = std::move(base);
  out.pop_back();
  for (const auto& [name, value] : pairs) {
    if (out.size() > 1) out += ',';
    out += name;
    out += "=\"";
    for (const char ch : value) {
      const auto c = static_cast<unsigned char>(ch);
      if (ch == '\\' || ch == '"') {
        out += '\\';
        out += ch;
      } else if (ch == '\n') {
        out += "\\n";
      } else if (c < 0x20 || c > 0x7e) {
        out += '?';
      } else {
        out += ch;
      }
    }
    out += '"';
  }
  out += '}';
  return out;
}

// One scrape's text. family() starts a metric family; its samples follow it, as the format
// requires every sample of a family to be in one group. A family without samples (no dataplane,
// no lcores) is left out.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    name_ = name;
    header_ = "# HELP ";
    header_ += name;
    header_ += ' ';
    header_ += help;  // constant text without backslashes or newlines
    header_ += "\n# TYPE ";
    header_ += name;
    header_ += ' ';
    header_ += type;
    header_ += '\n';
  }
  void sample(const std::string& label_set, uint64_t value) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof(buf), value);
    line(label_set, std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
  }
  void sample(const std::string& label_set, double value) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof(buf), value);
    line(label_set, std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
  }
  // A family with one unlabelled sample.
  template <typename T>
  void single(std::string_view name, std::string_view type, std::string_view help, T value) {
    family(name, type, help);
    sample("", value);
  }
  std::string take() { return std::move(out_); }

 private:
  void line(const std::string& label_set, std::string_view value) {
    out_ += header_;
    header_.clear();
    out_ += name_;
    if (label_set != "{}") out_ += label_set;  // "" or "{}": no labels
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }

  std::string out_;
  std::string name_;
  std::string header_;  // the current family's HELP and TYPE, until its first sample
};

// A label set and the stat-region record its counters come from (nullptr where the dataplane has
// none yet: before its first export, or without a dataplane).
template <typename Stats>
struct Series {
  std::string labels;
  const Stats* stats;
};

// Drops every row whose label set an earlier row has. Lcore ids and port names come from the
// stat region, another process's memory: one series twice would make Prometheus refuse the whole
// scrape, so a broken or hostile region costs only its own repeated rows.
template <typename Stats>
void drop_repeated(std::vector<Series<Stats>>& rows) {
  std::set<std::string> seen;
  std::erase_if(rows, [&seen](const Series<Stats>& r) { return !seen.insert(r.labels).second; });
}

// One family of a stat-region counter: a sample of `field` per row (a Series, or a struct
// derived from one) that has a record.
template <typename Row, typename Stats>
void counter_family(Exposition& e, std::string_view name, std::string_view type,
                    std::string_view help, const std::vector<Row>& rows,
                    const uint64_t Stats::*field) {
  e.family(name, type, help);
  for (const Row& r : rows) {
    if (r.stats != nullptr) e.sample(r.labels, load_counter(r.stats->*field));
  }
}

void controlplane_metrics(Exposition& e, const DaemonInfo& info) {
  e.family("ilb_controlplane_info", "gauge", "The control plane's instance name and config file.");
  // Not "instance": Prometheus gives every target that label itself.
  e.sample(labels({{"ilb_instance", info.instance}, {"config", info.config_path}}), uint64_t{1});
  e.single("ilb_controlplane_start_time_seconds", "gauge",
           "When the control plane started, in seconds since the Unix epoch.",
           info.start_time_unix_s);
  e.single("ilb_published_generation", "gauge",
           "Generation of the last snapshot published to the dataplane.", info.published_gen);
  e.single("ilb_health_probes_total", "counter", "Health probes completed.", info.probes);
  e.single("ilb_health_probes_failed_total", "counter",
           "Health probes that failed (refused, timed out, bad reply, ...).", info.probes_failed);
  e.single("ilb_hooks_run_total", "counter", "State-change hooks run.", info.hooks_ran);
  e.single("ilb_hooks_failed_total", "counter",
           "State-change hooks that exited non-zero, were killed or did not start.",
           info.hooks_failed);
  e.single("ilb_hooks_dropped_total", "counter",
           "State-change hook events dropped because the queue was full.", info.hooks_dropped);
  e.single("ilb_hooks_queued", "gauge", "State-change hook events waiting to run.",
           uint64_t{info.hooks_queued});
  e.single("ilb_state_file_write_errors_total", "counter", "Failed writes of the state file.",
           info.state_file_errors);
}

void dataplane_metrics(Exposition& e, const StatReader& stat) {
  e.single("ilb_dataplane_up", "gauge",
           "1 while the dataplane's stat region is valid and its heartbeat is fresh.",
           uint64_t{stat.running() ? 1u : 0u});
  if (!stat.valid()) return;
  const auto& h = stat.header();
  const uint64_t age_ms = stat.heartbeat_age_ms();
  if (age_ms != UINT64_MAX) {
    e.single("ilb_dataplane_heartbeat_age_seconds", "gauge",
             "Time since the dataplane's last heartbeat.", static_cast<double>(age_ms) / 1000.0);
  }
  e.single("ilb_dataplane_applied_generation", "gauge",
           "Generation of the snapshot the dataplane runs.",
           h.applied_gen.load(std::memory_order_acquire));
  e.single("ilb_dataplane_rejected_generation", "gauge",
           "Generation of the last snapshot the dataplane rejected (0: none).",
           h.rejected_gen.load(std::memory_order_acquire));
  e.single("ilb_dataplane_workers", "gauge", "Worker lcores.", uint64_t{h.worker_count});

  std::vector<Series<abi::LcoreStats>> lcores;
  for (uint32_t i = 0; i < abi::kMaxLcores; ++i) {
    const auto& l = stat.lcore(i);
    // Only lcores the dataplane runs have ever beaten or looped.
    if (load_counter(l.heartbeat_ns) == 0 && load_counter(l.loops) == 0) continue;
    lcores.push_back({labels({{"lcore", std::to_string(l.lcore_id)},
                              {"role", l.is_worker != 0 ? "worker" : "main"}}),
                      &l});
  }
  drop_repeated(lcores);
  counter_family(e, "ilb_lcore_loops_total", "counter", "Poll-loop iterations.", lcores,
                 &abi::LcoreStats::loops);
  counter_family(e, "ilb_lcore_busy_loops_total", "counter",
                 "Poll-loop iterations that found packets.", lcores, &abi::LcoreStats::busy_loops);
  const uint64_t tsc_hz = load_counter(h.tsc_hz);
  if (tsc_hz != 0) {
    e.family("ilb_lcore_busy_seconds_total", "counter",
             "Time spent in poll-loop iterations that found packets (the lcore's real load).");
    for (const auto& l : lcores) {
      e.sample(l.labels, static_cast<double>(load_counter(l.stats->busy_cycles)) /
                             static_cast<double>(tsc_hz));
    }
  }
  counter_family(e, "ilb_lcore_rx_packets_total", "counter", "Packets received.", lcores,
                 &abi::LcoreStats::rx_packets);
  counter_family(e, "ilb_lcore_tx_packets_total", "counter", "Packets sent.", lcores,
                 &abi::LcoreStats::tx_packets);
  counter_family(e, "ilb_lcore_active_connections", "gauge", "Connections in the lcore's table.",
                 lcores, &abi::LcoreStats::active_conns);

  std::vector<Series<abi::PortStats>> ports;
  for (uint32_t i = 0; i < std::min(h.port_count, abi::kMaxPorts); ++i) {
    const auto& p = stat.port(i);
    ports.push_back(
        {labels({{"port", std::string_view(p.name, strnlen(p.name, sizeof(p.name)))}}), &p});
  }
  drop_repeated(ports);
  counter_family(e, "ilb_port_rx_packets_total", "counter", "Packets the port received.", ports,
                 &abi::PortStats::rx_packets);
  counter_family(e, "ilb_port_tx_packets_total", "counter", "Packets the port sent.", ports,
                 &abi::PortStats::tx_packets);
  counter_family(e, "ilb_port_rx_dropped_total", "counter",
                 "Packets the port dropped on receive (queue full).", ports,
                 &abi::PortStats::rx_dropped);
  counter_family(e, "ilb_port_tx_errors_total", "counter", "Packets the port failed to send.",
                 ports, &abi::PortStats::tx_errors);
  counter_family(e, "ilb_port_rx_bytes_total", "counter", "Bytes the port received.", ports,
                 &abi::PortStats::rx_bytes);
  counter_family(e, "ilb_port_tx_bytes_total", "counter", "Bytes the port sent.", ports,
                 &abi::PortStats::tx_bytes);
  counter_family(e, "ilb_port_rx_errors_total", "counter",
                 "Frames the port received and found bad.", ports, &abi::PortStats::rx_errors);
  counter_family(e, "ilb_port_link_changes_total", "counter",
                 "Times the port's link went down or came up since the dataplane started.", ports,
                 &abi::PortStats::link_changes);
  // The driver's link, or the kernel interface's for net_af_xdp and net_af_packet: no sample
  // for a state or speed the dataplane does not know.
  e.family("ilb_port_up", "gauge", "1 while the port's link is up, 0 while it is down.");
  for (const auto& p : ports) {
    const auto link = static_cast<abi::Link>(load_counter(p.stats->link));
    if (link == abi::Link::kUp || link == abi::Link::kDown) {
      e.sample(p.labels, uint64_t{link == abi::Link::kUp});
    }
  }
  e.family("ilb_port_speed_bytes", "gauge",
           "The link's speed in bytes per second, as the driver (or, for net_af_xdp and "
           "net_af_packet, the kernel interface) reports it; virtual devices report a nominal "
           "figure.");
  for (const auto& p : ports) {
    const uint64_t mbps = load_counter(p.stats->link_speed_mbps);
    if (mbps != 0) e.sample(p.labels, mbps * 125000);
  }

  e.family("ilb_drops_total", "counter", "Packets dropped by the dataplane, by reason.");
  for (size_t i = 0; i < static_cast<size_t>(abi::Drop::kCount); ++i) {
    e.sample(labels({{"reason", abi::kDropNames[i]}}), load_counter(h.drops[i]));
  }
  e.sample(labels({{"reason", "martian"}}), load_counter(h.martian_drops));
  e.single("ilb_handoff_packets_total", "counter",
           "Packets handed to the worker that owns their connection.",
           load_counter(h.handoff_packets));
  e.single("ilb_handoff_drops_total", "counter",
           "Packets dropped because the owner's hand-over ring was full.",
           load_counter(h.handoff_drops));
  e.single("ilb_handoff_steered_connections_total", "counter",
           "Connections given a SNAT port whose replies hash to their own worker's queue.",
           load_counter(h.steered_conns));
  e.single("ilb_handoff_unsteered_connections_total", "counter",
           "Connections given a SNAT port without knowing where its replies land.",
           load_counter(h.unsteered_conns));
  e.single("ilb_untracked_resets_total", "counter",
           "Resets sent for TCP segments of no known connection.",
           load_counter(h.untracked_resets));
  e.single("ilb_icmp_errors_translated_total", "counter",
           "ICMP errors about tracked connections translated and sent on.",
           load_counter(h.icmp_errors_translated));
  e.single("ilb_replies_limited_total", "counter",
           "Refusals, resets for untracked TCP, echo replies and fragmentation-needed errors not "
           "sent: over reply_rate_limit.",
           load_counter(h.replies_limited));
  e.single("ilb_mss_clamped_total", "counter",
           "TCP SYN segments whose MSS option was lowered to fit the ports' MTU.",
           load_counter(h.mss_clamped));
}

void service_metrics(Exposition& e, const State& state, const StatReader& stat, TimePoint now) {
  struct Row : Series<abi::ServiceStats> {
    const ServiceState* s;
  };
  std::vector<Row> rows;
  for (const auto& s : state.services()) {
    const auto& c = s.config;
    rows.push_back({{labels({{"service", c.name},
                             {"vip", address_text(c.vip)},
                             {"port", std::to_string(c.port)},
                             {"protocol", protocol_name(c.protocol)}}),
                     stat.valid() ? stat.find_service(c.vip, c.port, c.protocol) : nullptr},
                    &s});
  }
  e.family("ilb_service_backends", "gauge", "Backends configured.");
  for (const auto& r : rows) e.sample(r.labels, uint64_t{r.s->backends.size()});
  e.family("ilb_service_backends_up", "gauge", "Backends whose health checks pass.");
  for (const auto& r : rows) e.sample(r.labels, uint64_t{backends_up(*r.s)});
  e.family("ilb_service_mode", "gauge",
           "1 for the backends taking new connections: primaries, backups, fail_open or none.");
  for (const auto& r : rows) {
    e.sample(labels({{"mode", service_mode_name(r.s->mode)}}, r.labels), uint64_t{1});
  }
  counter_family(e, "ilb_service_active_connections", "gauge", "Tracked connections.", rows,
                 &abi::ServiceStats::active_conns);
  counter_family(e, "ilb_service_connections_total", "counter", "Connections opened.", rows,
                 &abi::ServiceStats::new_conns);
  counter_family(e, "ilb_service_in_packets_total", "counter", "Packets from clients to backends.",
                 rows, &abi::ServiceStats::packets_in);
  counter_family(e, "ilb_service_out_packets_total", "counter", "Packets from backends to clients.",
                 rows, &abi::ServiceStats::packets_out);
  counter_family(e, "ilb_service_in_bytes_total", "counter", "Bytes from clients to backends.",
                 rows, &abi::ServiceStats::bytes_in);
  counter_family(e, "ilb_service_out_bytes_total", "counter", "Bytes from backends to clients.",
                 rows, &abi::ServiceStats::bytes_out);
  counter_family(e, "ilb_service_no_backend_drops_total", "counter",
                 "New connections dropped or refused because no backend could take them.", rows,
                 &abi::ServiceStats::no_backend_drops);

  struct BackendRow : Series<abi::BackendStats> {
    const ServiceState* s;
    const BackendState* b;
  };
  std::vector<BackendRow> backends;
  for (const auto& s : state.services()) {
    for (const auto& b : s.backends) {
      backends.push_back({{labels({{"service", s.config.name},
                                   {"backend", backend_name(b.config.address, b.config.port)}}),
                           stat.valid() ? &stat.backend(b.id) : nullptr},
                          &s,
                          &b});
    }
  }
  e.family("ilb_backend_info", "gauge", "A backend's zone and whether it is a backup.");
  for (const auto& r : backends) {
    e.sample(labels({{"zone", r.b->config.zone}, {"backup", r.b->config.backup ? "true" : "false"}},
                    r.labels),
             uint64_t{1});
  }
  e.family("ilb_backend_up", "gauge", "1 when the backend's health checks pass.");
  for (const auto& r : backends) {
    e.sample(r.labels, uint64_t{r.b->health == abi::Health::kUp ? 1u : 0u});
  }
  e.family("ilb_backend_state", "gauge",
           "1 for the backend's state: serving, ramping, standby, held, down, fail_open, unknown, "
           "draining or disabled.");
  for (const auto& r : backends) {
    e.sample(labels({{"state", lifecycle_name(*r.s, *r.b, now)}}, r.labels), uint64_t{1});
  }
  e.family("ilb_backend_weight", "gauge", "Configured weight.");
  for (const auto& r : backends) e.sample(r.labels, uint64_t{r.b->config.weight});
  e.family("ilb_backend_serving_weight", "gauge",
           "Weight in the scheduling tables (0: takes no new connections).");
  for (const auto& r : backends) e.sample(r.labels, uint64_t{r.b->selected_weight});
  counter_family(e, "ilb_backend_active_connections", "gauge", "Tracked connections.", backends,
                 &abi::BackendStats::active_conns);
  counter_family(e, "ilb_backend_connections_total", "counter", "Connections opened.", backends,
                 &abi::BackendStats::new_conns);
  counter_family(e, "ilb_backend_in_packets_total", "counter",
                 "Packets from clients to the backend.", backends, &abi::BackendStats::packets_in);
  counter_family(e, "ilb_backend_out_packets_total", "counter",
                 "Packets from the backend to clients.", backends, &abi::BackendStats::packets_out);
  counter_family(e, "ilb_backend_in_bytes_total", "counter", "Bytes from clients to the backend.",
                 backends, &abi::BackendStats::bytes_in);
  counter_family(e, "ilb_backend_out_bytes_total", "counter", "Bytes from the backend to clients.",
                 backends, &abi::BackendStats::bytes_out);
  counter_family(e, "ilb_backend_resets_total", "counter",
                 "Connections cut with a reset to both sides (drain timeout, backend down).",
                 backends, &abi::BackendStats::resets);
  counter_family(e, "ilb_backend_cut_probes_total", "counter",
                 "ACKs sent to ask whether the peer of an idle cut connection is still there.",
                 backends, &abi::BackendStats::cut_probes);
}

}  // namespace

std::string metrics_text(const DaemonInfo& info, const State& state, const StatReader& stat,
                         TimePoint now) {
  Exposition e;
  controlplane_metrics(e, info);
  dataplane_metrics(e, stat);
  service_metrics(e, state, stat, now);
  return e.take();
}

HttpResponse metrics_response(const HttpRequest& request,
                              const std::function<std::string()>& render) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  if (path != "/metrics") return error_response(404, "not found: this port serves GET /metrics");
  if (request.method != "GET") return error_response(405, "only GET is allowed on /metrics");
  return HttpResponse{200, render(), "text/plain; version=0.0.4; charset=utf-8"};
}

}  // namespace ilb::cp

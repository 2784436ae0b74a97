// The control plane's Prometheus endpoint: the figures the JSON API shows (control-plane checks
// and hooks, the dataplane's lcores, ports, drops and hand-overs, every service's and backend's
// state and counters) in the text exposition format 0.0.4, served at GET /metrics on the TCP
// address `controlplane.metrics_listen`. Everything is read at scrape time from the daemon's
// state and the dataplane's stat region; nothing is kept between scrapes.
//
// Counters come straight from the dataplane (they restart at 0 when it restarts, which
// Prometheus' rate() handles). While no dataplane is running, `ilb_dataplane_up` is 0 and only the
// control plane's own figures and the services' configured state are exported.
#pragma once

#include <functional>
#include <string>

#include "controlplane/api/http_types.h"
#include "controlplane/api/views.h"
#include "controlplane/publish/stat_reader.h"
#include "controlplane/state/state.h"

namespace ilb::cp {

// The exposition text of everything above, one family after another, each with HELP and TYPE.
std::string metrics_text(const DaemonInfo& info, const State& state, const StatReader& stat,
                         TimePoint now = SteadyClock::now());

// Routes a request to the metrics endpoint: GET /metrics (query ignored) answers `render()` as
// text/plain version 0.0.4; another path is 404, another method 405 (errors in JSON, as the API's).
HttpResponse metrics_response(const HttpRequest& request,
                              const std::function<std::string()>& render);

}  // namespace ilb::cp

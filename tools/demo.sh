#!/usr/bin/env bash
# The README's quick start: builds ilb, brings up the netns lab (tools/lab/lab.sh) with three
# nginx backends, starts the control plane and the dataplane on config/lab.toml, sends 300 HTTP
# requests from the client namespace to the VIP and shows how they spread over the backends.
# Everything is torn down on exit, Ctrl-C included. Exits 0 only if all 300 requests succeeded.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ILB_SOURCE_DIR="$repo"
export ILB_BUILD_DIR="${ILB_BUILD_DIR:-$repo/build}"
requests=300

"$repo/tools/install-deps.sh"
"$repo/tools/build.sh" "$ILB_BUILD_DIR"

# shellcheck source=lab/lab.sh
source "$repo/tools/lab/lab.sh"
lab_start_all

echo
echo "== $requests requests from $LAB_CLIENT_IP to http://$LAB_VIP:$LAB_VIP_PORT/ (dataplane on $LAB_DP_MODE)"
results="$LAB_RUN_DIR/demo-requests.txt"
lab_requests "$requests" >"$results"
lab_spread "$results"
failed="$(grep -c '^FAIL' "$results" || true)"

echo
echo "== ilbctl --instance lab status"
ilbctl_lab status
echo
echo "== ilbctl --instance lab services"
ilbctl_lab services
echo
echo "== ilbctl --instance lab backends web"
ilbctl_lab backends web
echo
echo "== Prometheus metrics, http://$LAB_METRICS/metrics in the lb namespace (connection counters)"
ip netns exec "${LAB_PREFIX}lb" curl -sf --max-time 5 "http://$LAB_METRICS/metrics" |
  grep -E '^ilb_(backend|service)_connections_total' || echo "(metrics endpoint did not answer)"
echo

if ((failed > 0)); then
  echo "demo: $failed of $requests requests failed"
  exit 1
fi
echo "demo: all $requests requests succeeded"

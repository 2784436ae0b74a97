#!/usr/bin/env bash
# Requests through the VIP all succeed and reach every healthy backend; the metrics count them;
# a link flap on the balancer's wire is reported and survived.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/http_spread}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

lab_start_all

requests=150
results="$LAB_RUN_DIR/requests.txt"
echo "sending $requests requests, each on a new connection, to http://$LAB_VIP:$LAB_VIP_PORT/"
lab_requests "$requests" >"$results"
lab_spread "$results"

ok=1
lab_check "all $requests requests succeeded" test "$(grep -c '^FAIL' "$results" || true)" -eq 0 || ok=0
lab_check "every answer came from a lab backend" \
  test "$(grep -cvxE 'be[123]' "$results" || true)" -eq 0 || ok=0
for be in $LAB_BACKENDS; do
  lab_check "$be received connections" test "$(grep -cx "$be" "$results" || true)" -gt 0 || ok=0
done
lab_check "ilbctl reports all 3 backends up" \
  test "$(ilbctl_lab --json backends web | jq '[.[] | select(.health == "up")] | length')" -eq 3 ||
  ok=0

# The same figures through the Prometheus endpoint, parsed by the Prometheus client library.
metrics="$LAB_RUN_DIR/metrics.json"
scrape() { lab_metrics >"$metrics"; }
# Sum of the values of metric $1's samples for the service (0 when it has none).
web_sum() {
  jq "[.[] | select(.name == \"$1\" and .labels.service == \"web\") | .value] | add // 0 | floor" \
    "$metrics"
}
# The dataplane exports its counters every few hundred milliseconds: scrape until they show them.
connections_counted() { scrape && test "$(web_sum ilb_backend_connections_total)" -ge "$requests"; }
lab_check "metrics: the backends' connections add up to the $requests requests" \
  wait_for "the connections in the metrics" 15 connections_counted || ok=0
lab_check "the metrics endpoint answers in Prometheus' text format" scrape || ok=0
lab_check "metrics: the dataplane is up" \
  test "$(jq '.[] | select(.name == "ilb_dataplane_up") | .value | floor' "$metrics")" -eq 1 || ok=0
# Value of metric $1 for the dataplane's one port (-1 when it has no sample).
port_metric() { jq "[.[] | select(.name == \"$1\") | .value] | add // -1 | floor" "$metrics"; }
lab_check "metrics: the dataplane's port reports its link up" test "$(port_metric ilb_port_up)" -eq 1 ||
  ok=0
lab_check "metrics: all 3 backends up" test "$(web_sum ilb_backend_up)" -eq 3 || ok=0
lab_check "metrics: the service counted its connections" \
  test "$(web_sum ilb_service_connections_total)" -ge "$requests" || ok=0

# A link flap on the balancer's wire: the switch's end of dp0 goes down, so dp0 loses its carrier.
# The port's driver (net_af_xdp, or the lab's fallback net_af_packet) reports a fixed link; the
# dataplane takes the kernel interface's, reports the loss and the return, and carries traffic on.
port_up_is() { scrape && test "$(port_metric ilb_port_up)" -eq "$1"; }
ip -n "${LAB_PREFIX}sw" link set lb-dp down
lab_check "metrics: the port's link goes down with the switch's end of dp0" \
  wait_for "ilb_port_up 0" 15 port_up_is 0 || ok=0
lab_check "ilbctl status shows the port's link down" \
  test "$(ilbctl_lab --json status | jq -r '.dataplane.ports[0].link')" = down || ok=0
ip -n "${LAB_PREFIX}sw" link set lb-dp up
lab_check "metrics: the port's link comes back up" wait_for "ilb_port_up 1" 15 port_up_is 1 || ok=0
lab_check "metrics: two link changes counted" test "$(port_metric ilb_port_link_changes_total)" -eq 2 ||
  ok=0
lab_requests 20 >"$LAB_RUN_DIR/after-flap.txt"
lab_check "after the flap, 20 more requests all succeed" \
  test "$(grep -c '^FAIL' "$LAB_RUN_DIR/after-flap.txt" || true)" -eq 0 || ok=0
((ok))

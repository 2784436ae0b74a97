#!/usr/bin/env bash
# Requests through the VIP all succeed and reach every healthy backend.
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
lab_check "metrics: the dataplane's port reports its link up" \
  test "$(jq '[.[] | select(.name == "ilb_port_up") | .value] | add // 0 | floor' "$metrics")" -eq 1 || ok=0
lab_check "metrics: all 3 backends up" test "$(web_sum ilb_backend_up)" -eq 3 || ok=0
lab_check "metrics: the service counted its connections" \
  test "$(web_sum ilb_service_connections_total)" -ge "$requests" || ok=0
((ok))

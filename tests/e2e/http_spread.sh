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
((ok))

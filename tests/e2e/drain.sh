#!/usr/bin/env bash
# Draining a backend stops new connections to it while an established connection to it keeps
# working; enabling it again brings new connections back.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/drain}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

lab_start_all

ok=1
lab_keepalive_open
read -r victim port < <(lab_keepalive_get)
addr="$(lab_backend_addr "$victim")"
echo "keep-alive connection from client port $port is served by $victim ($addr)"

admin_is() { [[ "$(lab_backend_field "$addr" .admin)" == "$1" ]]; }

echo "ilbctl backend drain web $addr:80"
gen="$(lab_published_gen)"
ilbctl_lab backend drain web "$addr:80"
lab_check "ilbctl shows $victim draining" wait_for "$victim to be draining" 10 admin_is draining ||
  ok=0
lab_wait_applied "$gen"

results="$LAB_RUN_DIR/requests-drained.txt"
lab_requests 100 >"$results"
lab_spread "$results"
lab_check "100 new connections all succeeded" \
  test "$(grep -c '^FAIL' "$results" || true)" -eq 0 || ok=0
lab_check "none of them reached the draining $victim" \
  test "$(grep -cx "$victim" "$results" || true)" -eq 0 || ok=0

again="$(lab_keepalive_get || true)"
lab_check "a new request on the old connection is still answered by $victim (got '$again')" \
  test "$again" = "$victim $port" || ok=0

echo "ilbctl backend enable web $addr:80"
gen="$(lab_published_gen)"
ilbctl_lab backend enable web "$addr:80"
lab_check "ilbctl shows $victim enabled" wait_for "$victim to be enabled" 10 admin_is enabled ||
  ok=0
lab_wait_applied "$gen"
results="$LAB_RUN_DIR/requests-enabled.txt"
lab_requests 100 >"$results"
lab_spread "$results"
lab_check "100 new connections all succeeded" \
  test "$(grep -c '^FAIL' "$results" || true)" -eq 0 || ok=0
lab_check "$victim receives new connections again" \
  test "$(grep -cx "$victim" "$results" || true)" -gt 0 || ok=0
lab_keepalive_close
((ok))

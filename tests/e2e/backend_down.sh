#!/usr/bin/env bash
# A backend whose server stops is marked down within interval x fall (plus slack), then gets no new
# connections while every request still succeeds; when its server comes back it is marked up and
# used again.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/backend_down}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

# Generous for a slow, shared machine: the check itself must still happen on its schedule.
slack_s=15
victim=be2
addr="$(lab_backend_addr "$victim")"

lab_start_all
read -r interval_ms fall rise timeout_ms < <(lab_health_params)
down_deadline_s=$(((interval_ms * fall + timeout_ms + 999) / 1000 + slack_s))
up_deadline_s=$(((interval_ms * rise + timeout_ms + 999) / 1000 + slack_s))
echo "health check: interval ${interval_ms} ms, fall $fall, rise $rise, timeout ${timeout_ms} ms"

health_is() { [[ "$(lab_backend_field "$addr" .health)" == "$1" ]]; }

ok=1
echo "stopping nginx on $victim ($addr)"
gen="$(lab_published_gen)"
lab_stop_nginx "$victim"
start=$SECONDS
lab_check "ilbctl shows $victim down within ${down_deadline_s} s" \
  wait_for "$victim to be reported down" "$down_deadline_s" health_is down
echo "  ($victim went down after about $((SECONDS - start)) s)"
lab_wait_applied "$gen"

results="$LAB_RUN_DIR/requests-down.txt"
lab_requests 100 >"$results"
lab_spread "$results"
lab_check "100 requests with $victim down all succeeded" \
  test "$(grep -c '^FAIL' "$results" || true)" -eq 0 || ok=0
lab_check "none of them reached $victim" test "$(grep -cx "$victim" "$results" || true)" -eq 0 ||
  ok=0

echo "starting nginx on $victim again"
gen="$(lab_published_gen)"
lab_start_nginx "$victim"
start=$SECONDS
lab_check "ilbctl shows $victim up within ${up_deadline_s} s" \
  wait_for "$victim to be reported up" "$up_deadline_s" health_is up
echo "  ($victim came back up after about $((SECONDS - start)) s)"
lab_wait_applied "$gen"

results="$LAB_RUN_DIR/requests-up.txt"
lab_requests 100 >"$results"
lab_spread "$results"
lab_check "100 requests with $victim back all succeeded" \
  test "$(grep -c '^FAIL' "$results" || true)" -eq 0 || ok=0
lab_check "$victim receives connections again" \
  test "$(grep -cx "$victim" "$results" || true)" -gt 0 || ok=0
((ok))

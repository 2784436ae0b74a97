#!/usr/bin/env bash
# Killing the control plane (SIGKILL) and starting it again drops no request and no established
# connection: the dataplane keeps forwarding on its last applied snapshot. The restarted control
# plane resumes every backend's health: all three are up the moment it answers, and no health
# transition is logged after the restart (no backend briefly marked up or down).
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/cp_restart}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

lab_start_all

ok=1
lab_keepalive_open
read -r backend port < <(lab_keepalive_get)
echo "keep-alive connection from client port $port is served by $backend"

# A bounded request loop in the client namespace: one new connection per request until the stop
# file appears, at most 3000 requests or 180 s.
results="$LAB_RUN_DIR/requests-loop.txt"
stop="$LAB_RUN_DIR/stop-loop"
: >"$results"
rm -f "$stop"
in_ns client bash -c '
  end=$((SECONDS + 180))
  for ((i = 0; i < 3000 && SECONDS < end; i++)); do
    [[ -e "$1" ]] && break
    if body="$(curl -sS --max-time "$2" "$3" 2>/dev/null)"; then echo "$body"; else echo "FAIL $?"; fi
  done' request-loop "$stop" "$LAB_CURL_MAX_TIME" "http://$LAB_VIP:$LAB_VIP_PORT/" >>"$results" &
loop_pid=$!

answers_at_least() { (($(wc -l <"$results") >= $1)); }

wait_for "the request loop to get going" 30 answers_at_least 20
echo "killing ilb-controlplane with SIGKILL"
lab_kill_controlplane KILL
mark=$(wc -l <"$results")
lab_check "requests keep being answered while the control plane is gone" \
  wait_for "20 more answers" 30 answers_at_least $((mark + 20)) || ok=0

echo "starting ilb-controlplane again"
log="$LAB_RUN_DIR/controlplane.log"
log_mark=$(wc -l <"$log")
lab_start_controlplane
health="$(ilbctl_lab --json backends web | jq -r '[.[].health] | join(" ")')"
lab_check "the restarted control plane reports every backend up at once (got: $health)" \
  test "$health" = "up up up" || ok=0
lab_check "the restarted control plane reports the dataplane running with 3 backends up" \
  lab_wait_ready 3 || ok=0
mark=$(wc -l <"$results")
wait_for "20 more answers after the restart" 30 answers_at_least $((mark + 20)) || ok=0
touch "$stop"
wait "$loop_pid" || true

transitions="$(tail -n +"$((log_mark + 1))" "$log" | grep -E ': health [a-z]+ -> ' || true)"
lab_check "no health transition after the restart${transitions:+: $transitions}" \
  test -z "$transitions" || ok=0

total=$(wc -l <"$results")
echo "the request loop sent $total requests:"
lab_spread "$results"
lab_check "zero failed requests across the restart" \
  test "$(grep -c '^FAIL' "$results" || true)" -eq 0 || ok=0

again="$(lab_keepalive_get || true)"
lab_check "the established keep-alive connection survived (got '$again')" \
  test "$again" = "$backend $port" || ok=0
lab_keepalive_close
((ok))

#!/usr/bin/env bash
# Draining a MariaDB backend: an open MySQL session through the VIP keeps working during the
# drain while new sessions go to the other backend; once drain_timeout has passed, the idle
# session is reset on both sides without waiting for its next packet (the dataplane's sweep asks
# the backend for its sequence numbers and resets both sides from its answer): the backend no
# longer lists the session, ilbctl counts the reset, and the next query on the old session fails
# with a lost connection. The session is the real `mariadb` client reading queries from a pipe.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/mysql_drain}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
command -v mariadbd >/dev/null || { echo "SKIP: mariadbd is not installed"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"
# shellcheck source=../../tools/lab/mariadb.sh
source "$ILB_SOURCE_DIR/tools/lab/mariadb.sh"

readonly kService=db
readonly kPort=3306
readonly kDrainS=8

lab_up
lab_hugepages
mariadb_start be1
mariadb_start be2

export LAB_CONFIG="$LAB_RUN_DIR/ilb.toml"
mariadb_config_head "$LAB_CONFIG"
# A check that logs in: it never counts against max_connect_errors (see mysql_health.sh).
cat >>"$LAB_CONFIG" <<EOF

[[service]]
name = "$kService"
vip = "$LAB_VIP"
port = $kPort
protocol = "tcp"
drain_timeout = "${kDrainS}s"

[service.health_check]
type = "mysql"
user = "$MARIADB_CHECK_USER"
password = "$MARIADB_CHECK_PASSWORD"
interval = "500ms"
timeout = "400ms"
rise = 2
fall = 2

[[service.backend]]
address = "$(lab_backend_addr be1)"
port = $MARIADB_PORT

[[service.backend]]
address = "$(lab_backend_addr be2)"
port = $MARIADB_PORT
EOF

lab_start_controlplane
lab_start_dataplane
lab_wait_ready 2

ok=1
field() { mariadb_backend_field "$kService" "$addr" "$1"; }

# The session: `mariadb` in batch mode, one query per line on its stdin, a flushed result line
# per query on its stdout (-n), and no silent reconnect. Its stderr goes to its stdout, so a
# lost connection arrives as a line too.
coproc SESSION {
  exec ip netns exec "${LAB_PREFIX}client" mariadb --no-defaults -h "$LAB_VIP" -P "$kPort" \
    -u "$MARIADB_APP_USER" -p"$MARIADB_APP_PASSWORD" --connect-timeout=3 --skip-reconnect -n \
    -N -B 2>&1
}
session_pid=$SESSION_PID
LAB_PIDS[session]=$session_pid
session_in=${SESSION[1]}
session_out=${SESSION[0]}
# Sends query number N on the session and prints its result line, "CONNECTION_ID SERVER_ID N";
# after an error, every line the client printed before it exited.
session_query() {
  local line out=""
  echo "SELECT CONNECTION_ID(), @@server_id, $1;" >&"$session_in" || return 1
  while IFS= read -r -t 10 line <&"$session_out"; do
    out+="${out:+ | }${line//$'\t'/ }"
    [[ "$line" =~ ^[0-9]+$'\t'[0-9]+$'\t'[0-9]+$ ]] && break
  done
  echo "$out"
  [[ -n "$out" ]]
}

read -r conn_id server_id _ <<<"$(session_query 0)"
victim="$(mariadb_server_name "$server_id")"
addr="$(lab_backend_addr "$victim")"
other=be1
[[ "$victim" == be1 ]] && other=be2
echo "session: connection $conn_id on $victim ($addr), server_id $server_id"
in_processlist() {
  [[ "$(mariadb_sql "$victim" "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
    WHERE ID = $conn_id")" == "$1" ]]
}
lab_check "$victim lists the session (id $conn_id) in its processlist" in_processlist 1 || ok=0

echo "ilbctl backend drain $kService $addr:$MARIADB_PORT"
gen="$(lab_published_gen)"
ilbctl_lab backend drain "$kService" "$addr:$MARIADB_PORT"
drain_started=${EPOCHREALTIME%.*}
state_is() { [[ "$(field .state)" == "$1" ]]; }
lab_check "ilbctl shows $victim draining" \
  wait_for "$victim to be draining" 10 state_is draining || ok=0
lab_wait_applied "$gen"

# Queries on the open session keep working during the drain: one each time the remaining
# drain time has dropped to the next mark.
drain_left_at_most() {
  local left
  left="$(field .drain_left_s)"
  [[ "$left" =~ ^[0-9]+$ ]] && ((left <= $1))
}
for mark in $((kDrainS - 1)) $((kDrainS - 3)) $((kDrainS - 5)); do
  wait_for "drain_left_s <= $mark" 15 drain_left_at_most "$mark" || ok=0
  left="$(field .drain_left_s)"
  answer="$(session_query "$mark" || true)"
  lab_check "the session still answers from $victim with ${left} s of drain left (got '$answer')" \
    test "$answer" = "$conn_id $server_id $mark" || ok=0
done

new_ids="$(for _ in 1 2 3 4 5 6 7 8 9 10; do
  mariadb_vip_sql "$kPort" "SELECT @@server_id" 2>/dev/null || echo FAIL
done)"
lab_check "10 new sessions during the drain all go to $other" \
  test "$(sort -u <<<"$new_ids")" = "${LAB_BACKEND_IPS[$other]##*.}" || ok=0

# The deadline: the control plane marks the backend's flows for reset and publishes it.
gen="$(lab_published_gen)"
reset_marked() { [[ "$(field .reset_flows)" == true ]]; }
lab_check "the drain deadline passes and $victim's flows are marked for reset" \
  wait_for "reset_flows on $victim" $((kDrainS + 5)) reset_marked || ok=0
echo "deadline reached $((${EPOCHREALTIME%.*} - drain_started)) s after the drain began"
lab_wait_applied "$gen"
# Nothing is sent on the session from here until the backend has dropped it.
lab_check "$victim drops the idle session without a packet from the client" \
  wait_for "session $conn_id to leave $victim's processlist" 10 in_processlist 0 || ok=0
reset_counted() { (($(field .resets) >= 1)); }
lab_check "ilbctl counts resets >= 1 for $victim" \
  wait_for "a reset counted on $victim" 5 reset_counted || ok=0
probe_counted() { (($(field .cut_probes) >= 1)); }
lab_check "ilbctl counts the probe that asked $victim (cut_probes >= 1)" \
  wait_for "a cut probe counted on $victim" 5 probe_counted || ok=0

answer="$(session_query 99 || true)"
echo "the session's answer after the deadline: '$answer'"
lab_check "the next query on the old session fails with a lost connection" \
  bash -c '[[ "$1" == *"ERROR 2013"* || "$1" == *"ERROR 2006"* || "$1" == *"Lost connection"* ]]' \
  _ "$answer" || ok=0
ilbctl_lab --json backends "$kService" | jq -c '.[] | {address, state, resets, cut_probes, active_conns}'
lab_kill_pid "$session_pid" TERM 5
unset "LAB_PIDS[session]"
((ok))

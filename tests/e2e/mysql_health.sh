#!/usr/bin/env bash
# ilb's MySQL-facing health checks must not get the balancer's host blocked by MariaDB's
# max_connect_errors: with max_connect_errors = 10 and name resolution on (so the host cache is
# used), 1,000 mysql checks without a user (greeting, then a login as ilb-probe that the server
# refuses: an authentication failure, which never counts) and 1,000 tcp checks (half-open: SYN,
# SYN-ACK, our kernel's RST; MariaDB never sees a connection) leave 10.99.0.3 (the lb's mgmt0,
# where checks come from) unblocked, and every client query through the VIP meanwhile succeeds.
# As a control, a naive probe from the same host that reads the greeting and closes with FIN
# must get blocked within max_connect_errors + 1 probes, which proves the test can see blocking
# at all. A mysql check with a user (login, query, quit) is checked to keep its backend up.
#
# Each kind of check has its own MariaDB, so each server's counters belong to one kind:
#   be1  8 services (VIP ports 3306..3313), type "mysql" without a user, every 100 ms
#   be2  8 services (VIP ports 3314..3321), type "tcp", every 100 ms; tcp_mode from
#        ILB_E2E_TCP_MODE (default "syn"). ILB_E2E_TCP_MODE=connect shows why "syn" is the
#        default: about 1.5 % of connect-and-reset probes reach MariaDB after its greeting and
#        count as handshake errors, so 1,000 of them block the host and this test fails.
#        The checks are counted by an nftables counter of SYNs from 10.99.0.3 in be2's namespace
#        (half-open probes leave no trace in MariaDB's own counters).
#   be3  1 service  (VIP port 3322),        type "mysql" with user and password
# A successful login from 10.99.0.3 clears that host's error count, so the check with a user
# must not share a server with the checks under test: it would hide their errors.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/mysql_health}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
command -v mariadbd >/dev/null || { echo "SKIP: mariadbd is not installed"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"
# shellcheck source=../../tools/lab/mariadb.sh
source "$ILB_SOURCE_DIR/tools/lab/mariadb.sh"

readonly kServicesPerKind=8
readonly kChecksPerKind=1000
readonly kTcpMode="${ILB_E2E_TCP_MODE:-syn}"
readonly kMysqlPort0=3306
readonly kTcpPort0=$((kMysqlPort0 + kServicesPerKind))
readonly kLoginPort=$((kTcpPort0 + kServicesPerKind))
be1_ip="$(lab_backend_addr be1)"
be2_ip="$(lab_backend_addr be2)"
be3_ip="$(lab_backend_addr be3)"

lab_up
lab_hugepages
for be in be1 be2 be3; do
  mariadb_start "$be"
done

export LAB_CONFIG="$LAB_RUN_DIR/ilb.toml"
mariadb_config_head "$LAB_CONFIG"
# add_service NAME VIP_PORT BACKEND_ADDR CHECK_LINE...
add_service() {
  local name="$1" port="$2" backend="$3"
  shift 3
  {
    printf '\n[[service]]\nname = "%s"\nvip = "%s"\nport = %d\nprotocol = "tcp"\n' \
      "$name" "$LAB_VIP" "$port"
    printf '\n[service.health_check]\n'
    printf '%s\n' "$@"
    printf '\n[[service.backend]]\naddress = "%s"\nport = %d\n' "$backend" "$MARIADB_PORT"
  } >>"$LAB_CONFIG"
}
fast=('interval = "100ms"' 'timeout = "90ms"' 'rise = 1' 'fall = 5')
for ((i = 0; i < kServicesPerKind; i++)); do
  add_service "mysql-$i" $((kMysqlPort0 + i)) "$be1_ip" 'type = "mysql"' "${fast[@]}"
  add_service "tcp-$i" $((kTcpPort0 + i)) "$be2_ip" 'type = "tcp"' "tcp_mode = \"$kTcpMode\"" \
    "${fast[@]}"
done
add_service login "$kLoginPort" "$be3_ip" 'type = "mysql"' "user = \"$MARIADB_CHECK_USER\"" \
  "password = \"$MARIADB_CHECK_PASSWORD\"" 'query = "SELECT 1"' 'interval = "500ms"' \
  'timeout = "400ms"' 'rise = 1' 'fall = 3'
readonly kBackendsTotal=$((2 * kServicesPerKind + 1))
# The second port client queries use: a tcp-checked service.
readonly kOtherPort=$kTcpPort0
readonly kOtherServerId=22

# Every SYN from the checks' host to be2's MariaDB: one per tcp check, whatever its mode.
in_ns be2 nft -f - <<NFT
table ip ilb_e2e {
  counter tcp_checks {}
  chain input {
    type filter hook input priority 0;
    ip saddr $LAB_MGMT_IP tcp dport $MARIADB_PORT tcp flags & (syn | ack) == syn counter name tcp_checks
  }
}
NFT

lab_start_controlplane
lab_start_dataplane

ok=1
# Not lab_wait_ready: a check that gets its host blocked keeps its backend from ever coming up,
# and the test must go on to show why rather than stop here.
all_up_and_applied() {
  local json
  json="$(ilbctl_lab --json status 2>/dev/null)" || return 1
  jq -e --argjson n "$kBackendsTotal" '.dataplane.running == true and .published_gen > 0
    and .dataplane.applied_gen == .published_gen and .backends_up == $n' <<<"$json" >/dev/null
}
lab_check "all $kBackendsTotal backends come up and the dataplane applies them" \
  wait_for "$kBackendsTotal backends up" 20 all_up_and_applied || ok=0

# Every mysql check ends in an aborted connect (no login), and client queries never do: so be1's
# Aborted_connects counts its checks, from here on while the client queries run. be2's tcp
# checks are counted by the nftables counter; its Aborted_connects must not move at all.
base1="$(mariadb_status be1 Aborted_connects)"
base2="$(mariadb_status be2 Aborted_connects)"
syn_count() {
  in_ns be2 nft -j list counter ip ilb_e2e tcp_checks | jq '.nftables[] | .counter? // empty | .packets'
}
syn_base="$(syn_count)"
mysql_checks() { echo $(($(mariadb_status be1 Aborted_connects) - base1)); }
tcp_checks() { echo $(($(syn_count) - syn_base)); }
enough_checks() {
  (($(mysql_checks) >= kChecksPerKind && $(tcp_checks) >= kChecksPerKind))
}

# Client queries through the VIP until the checks are counted, alternating between a mysql-
# checked service and a tcp-checked (or the login-checked) one; one line per query:
# "ok SERVER_ID" or "FAIL ...".
queries="$LAB_RUN_DIR/client-queries.txt"
stop_file="$LAB_RUN_DIR/client-stop"
ip netns exec "${LAB_PREFIX}client" bash -c '
  i=0
  while [[ ! -e "$1" ]]; do
    port=$(( i % 2 == 0 ? $2 : $3 )); i=$((i + 1))
    if out="$(mariadb --no-defaults -h "$4" -P "$port" -u "$5" -p"$6" --connect-timeout=3 \
        -N -B -e "SELECT @@server_id" 2>&1)"; then
      echo "ok $out"
    else
      echo "FAIL port $port: $out" | tr "\n" " "; echo
    fi
    sleep 0.05
  done' client-queries "$stop_file" "$kMysqlPort0" "$kOtherPort" "$LAB_VIP" \
  "$MARIADB_APP_USER" "$MARIADB_APP_PASSWORD" >"$queries" 2>&1 &
client_pid=$!
LAB_PIDS[client-queries]=$client_pid

started=${EPOCHREALTIME%.*}
lab_check "$kChecksPerKind mysql checks reached be1 and $kChecksPerKind tcp checks ($kTcpMode) reached be2" \
  wait_for "$kChecksPerKind checks of each kind" 90 enough_checks || ok=0
echo "after $((${EPOCHREALTIME%.*} - started)) s: $(mysql_checks) mysql checks (be1)," \
  "$(tcp_checks) tcp checks (be2)"
touch "$stop_file"
wait "$client_pid" || true
unset "LAB_PIDS[client-queries]"

total="$(wc -l <"$queries")"
failed="$(grep -c '^FAIL' "$queries" || true)"
echo "client queries through the VIP: $total, failed: $failed"
grep '^FAIL' "$queries" | head -n 5 || true
lab_check "at least 20 client queries ran during the checks" test "$total" -ge 20 || ok=0
lab_check "every client query through the VIP succeeded" test "$failed" -eq 0 || ok=0
lab_check "client queries reached be1 (mysql-checked) and server $kOtherServerId" \
  bash -c 'grep -qx "ok 21" "$1" && grep -qx "ok $2" "$1"' _ "$queries" "$kOtherServerId" || ok=0

aborted2=$(($(mariadb_status be2 Aborted_connects) - base2))
echo "be2 Aborted_connects during the tcp checks: $aborted2"
if [[ $kTcpMode == syn ]]; then
  lab_check "half-open tcp checks never reached MariaDB on be2 (Aborted_connects +$aborted2)" \
    test "$aborted2" -eq 0 || ok=0
fi
for be in be1 be2; do
  row="$(mariadb_sql "$be" "SELECT SUM_CONNECT_ERRORS, COUNT_HOST_BLOCKED_ERRORS, \
    COUNT_HANDSHAKE_ERRORS FROM performance_schema.host_cache WHERE IP = '$LAB_MGMT_IP'")"
  read -r errors blocked handshake <<<"${row:-0 0 0}"
  echo "$be host_cache for $LAB_MGMT_IP: SUM_CONNECT_ERRORS=$errors" \
    "COUNT_HOST_BLOCKED_ERRORS=$blocked COUNT_HANDSHAKE_ERRORS=$handshake"
  lab_check "$be: $LAB_MGMT_IP is not blocked (want SUM_CONNECT_ERRORS < $MARIADB_MAX_CONNECT_ERRORS and no blocked connections, got $errors and $blocked)" \
    test "$errors" -lt "$MARIADB_MAX_CONNECT_ERRORS" -a "$blocked" -eq 0 || ok=0
  answer="$(mariadb_probe "$be" fin 1)"
  lab_check "$be: a connection from the lb namespace still gets a greeting (got '$answer')" \
    test "$answer" = greeting || ok=0
done
lab_check "all $kBackendsTotal backends are still up" \
  test "$(lab_status_field .backends_up)" -eq "$kBackendsTotal" || ok=0
health="$(mariadb_backend_field login "$be3_ip" .health)"
lab_check "the mysql check with a user keeps be3 up (health '$health')" test "$health" = up || ok=0

# The control: a naive probe that closes with FIN after the greeting is a connect error each
# time, so the host must be blocked once max_connect_errors of them have accumulated. The
# control plane is stopped first and be1's host cache flushed, so that only the probe counts.
lab_kill_controlplane TERM
mariadb_sql be1 "FLUSH HOSTS"
control="$LAB_RUN_DIR/control-probes.txt"
mariadb_probe be1 fin $((MARIADB_MAX_CONNECT_ERRORS + 5)) >"$control"
first_blocked="$(grep -n '^ERR 1129 ' "$control" | head -n 1 | cut -d: -f1)"
echo "control: first ERR 1129 at probe ${first_blocked:-none} of $(wc -l <"$control")"
lab_check "the FIN-closing probe from $LAB_MGMT_IP gets blocked (ERR 1129) at probe $((MARIADB_MAX_CONNECT_ERRORS + 1)) or $((MARIADB_MAX_CONNECT_ERRORS + 2)) (got ${first_blocked:-none})" \
  test "${first_blocked:-0}" -gt "$MARIADB_MAX_CONNECT_ERRORS" \
  -a "${first_blocked:-99}" -le $((MARIADB_MAX_CONNECT_ERRORS + 2)) || ok=0
((ok))

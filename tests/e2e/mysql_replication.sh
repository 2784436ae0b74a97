#!/usr/bin/env bash
# A read replica whose replication is stopped, or lags more than max_replication_lag, is taken
# out of its service by the mysql check; once replication runs (and catches up) again it comes
# back. Real MariaDB: be1 is the primary, be2 and be3 replicate from it, and service "reads"
# (VIP port 3306) balances over be2 and be3 with a mysql check that logs in and reads
# SHOW ALL SLAVES STATUS.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/mysql_replication}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
command -v mariadbd >/dev/null || { echo "SKIP: mariadbd is not installed"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"
# shellcheck source=../../tools/lab/mariadb.sh
source "$ILB_SOURCE_DIR/tools/lab/mariadb.sh"

readonly kService=reads
readonly kPort=3306
readonly kIntervalMs=500
readonly kFall=2
readonly kRise=2
readonly kMaxLagS=10
be2_ip="$(lab_backend_addr be2)"
be3_ip="$(lab_backend_addr be3)"

lab_up
lab_hugepages
mariadb_start be1
mariadb_start be2 "read_only = ON"
mariadb_start be3 "read_only = ON"
mariadb_replicate be2 be1
mariadb_replicate be3 be1

export LAB_CONFIG="$LAB_RUN_DIR/ilb.toml"
mariadb_config_head "$LAB_CONFIG"
cat >>"$LAB_CONFIG" <<EOF

[[service]]
name = "$kService"
vip = "$LAB_VIP"
port = $kPort
protocol = "tcp"

[service.health_check]
type = "mysql"
user = "$MARIADB_CHECK_USER"
password = "$MARIADB_CHECK_PASSWORD"
max_replication_lag = "${kMaxLagS}s"
interval = "${kIntervalMs}ms"
timeout = "400ms"
rise = $kRise
fall = $kFall

[[service.backend]]
address = "$be2_ip"
port = $MARIADB_PORT

[[service.backend]]
address = "$be3_ip"
port = $MARIADB_PORT
EOF

lab_start_controlplane
lab_start_dataplane
lab_wait_ready 2

ok=1
health_is() { [[ "$(mariadb_backend_field "$kService" "$1" .health)" == "$2" ]]; }
last_check() { mariadb_backend_field "$kService" "$1" .last_check; }
# Seconds (rounded up) until a check result flips a backend: COUNT intervals plus slack for
# the probe's own timeout and this slow machine.
flip_deadline_s() { echo $(((kIntervalMs * $1 + 999) / 1000 + 3)); }

# N queries through the VIP, each on a new connection; prints the server_id per line or FAIL.
vip_queries() {
  local i
  for ((i = 0; i < $1; i++)); do
    mariadb_vip_sql "$kPort" "SELECT @@server_id" 2>/dev/null || echo FAIL
  done
}

# Replication really runs: a row written on the primary shows up on both replicas.
mariadb_sql be1 "CREATE DATABASE lab; CREATE TABLE lab.t (id INT PRIMARY KEY); INSERT INTO lab.t VALUES (1)"
row_on() { [[ "$(mariadb_sql "$1" "SELECT COUNT(*) FROM lab.t WHERE id = $2" 2>/dev/null)" == 1 ]]; }
both_have_row_1() { row_on be2 1 && row_on be3 1; }
lab_check "a row written on the primary reaches be2 and be3" \
  wait_for "the row on both replicas" 20 both_have_row_1 || ok=0
lab_check "both replicas are up (be2: $(last_check "$be2_ip"); be3: $(last_check "$be3_ip"))" \
  bash -c "[[ \$1 == up && \$2 == up ]]" _ "$(mariadb_backend_field "$kService" "$be2_ip" .health)" \
  "$(mariadb_backend_field "$kService" "$be3_ip" .health)" || ok=0

results="$(vip_queries 20)"
lab_check "20 queries through the VIP succeed and reach both replicas" \
  bash -c '! grep -q FAIL <<<"$1" && grep -qx 22 <<<"$1" && grep -qx 23 <<<"$1"' _ "$results" || ok=0

# --- replication stopped on be2 ---------------------------------------------------------------
echo "STOP SLAVE on be2"
gen="$(lab_published_gen)"
started=${EPOCHREALTIME%.*}
mariadb_sql be2 "STOP SLAVE"
deadline="$(flip_deadline_s "$kFall")"
lab_check "be2 goes down within ${deadline} s after STOP SLAVE" \
  wait_for "be2 to be down" "$deadline" health_is "$be2_ip" down || ok=0
echo "be2 down after $((${EPOCHREALTIME%.*} - started)) s: $(last_check "$be2_ip")"
lab_check "be2's last check names stopped replication" \
  bash -c '[[ "$1" == *"replication stopped"* ]]' _ \
  "$(last_check "$be2_ip")" || ok=0
lab_check "be3 stays up" health_is "$be3_ip" up || ok=0
lab_wait_applied "$gen"
results="$(vip_queries 20)"
lab_check "20 queries through the VIP succeed, all on be3" \
  bash -c '[[ "$(sort -u <<<"$1")" == 23 ]]' _ "$results" || ok=0

echo "START SLAVE on be2"
gen="$(lab_published_gen)"
mariadb_sql be2 "START SLAVE"
deadline="$(flip_deadline_s "$kRise")"
lab_check "be2 comes back up within ${deadline} s after START SLAVE" \
  wait_for "be2 to be up" "$deadline" health_is "$be2_ip" up || ok=0
lab_wait_applied "$gen"
results="$(vip_queries 20)"
lab_check "20 queries through the VIP succeed and reach be2 again" \
  bash -c '! grep -q FAIL <<<"$1" && grep -qx 22 <<<"$1"' _ "$results" || ok=0

# --- be3 lags behind by more than max_replication_lag ----------------------------------------
# A delayed replica holds each event back by MASTER_DELAY, so Seconds_Behind_Master grows past
# the limit while the write below waits.
echo "be3: MASTER_DELAY = 60, then a write on the primary"
mariadb_sql be3 "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 60; START SLAVE"
wait_for "be3 to replicate again" 10 mariadb_slave_running be3
mariadb_sql be1 "INSERT INTO lab.t VALUES (2)"
gen="$(lab_published_gen)"
deadline=$((kMaxLagS + $(flip_deadline_s "$kFall") + 5))
lab_check "be3 goes down once its lag passes ${kMaxLagS} s (within ${deadline} s)" \
  wait_for "be3 to be down" "$deadline" health_is "$be3_ip" down || ok=0
echo "be3: $(last_check "$be3_ip")"
lab_check "be3's last check names the lag" bash -c '[[ "$1" == *"replica lag "*" > $2 s"* ]]' _ \
  "$(last_check "$be3_ip")" "$kMaxLagS" || ok=0
lab_check "be2 stays up" health_is "$be2_ip" up || ok=0
lab_wait_applied "$gen"
results="$(vip_queries 20)"
lab_check "20 queries through the VIP succeed, all on be2" \
  bash -c '[[ "$(sort -u <<<"$1")" == 22 ]]' _ "$results" || ok=0

echo "be3: MASTER_DELAY = 0, it catches up"
gen="$(lab_published_gen)"
mariadb_sql be3 "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE"
lab_check "be3 applies the held-back row" wait_for "row 2 on be3" 20 row_on be3 2 || ok=0
deadline="$(flip_deadline_s "$kRise")"
lab_check "be3 comes back up within ${deadline} s" \
  wait_for "be3 to be up" "$deadline" health_is "$be3_ip" up || ok=0
lab_wait_applied "$gen"
results="$(vip_queries 20)"
lab_check "20 queries through the VIP succeed and reach be3 again" \
  bash -c '! grep -q FAIL <<<"$1" && grep -qx 23 <<<"$1"' _ "$results" || ok=0
((ok))

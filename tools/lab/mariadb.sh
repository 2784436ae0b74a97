# shellcheck shell=bash
# Real MariaDB servers in the lab's backend namespaces, for the MySQL e2e tests
# (tests/e2e/mysql_*.sh). Sourced after tools/lab/lab.sh; it never runs anything by itself.
#
# Why each server resolves names through a private hosts file: the behaviour under test (a
# health check must not get the balancer's host blocked by max_connect_errors) lives in
# MariaDB's host cache, which is only used with name resolution on. `ip netns exec` bind-mounts
# /etc/netns/<ns>/hosts and /etc/netns/<ns>/resolv.conf over /etc's, so every lab address
# resolves from a file and "nameserver 127.0.0.1" keeps any other lookup inside the namespace.
# lab_down removes /etc/netns/ilb-lab-* again.
#
# Each server gets its own datadir (a copy of one mariadb-install-db template, made once per
# run), runs as root (--user=root), listens on its backend address :3306, uses server_id = the
# last octet of that address (be1 → 21) and writes a binary log, so any of them can be a
# replication primary. Its init file creates three users on every start (not written to the
# binary log): app (all privileges, for client queries through the VIP), ilbcheck (REPLICA
# MONITOR, for ilb's mysql check with a user) and repl (REPLICATION SLAVE).
#
# Interface (all functions return non-zero on failure and print why on stderr):
#   mariadb_start BE [OPTION=VALUE...]  start MariaDB in namespace BE (be1|be2|be3) with the
#                              extra my.cnf options given; wait until it answers on its socket
#                              and listens on its address
#   mariadb_stop BE            shut it down (SIGTERM, waits until it is gone)
#   mariadb_sql BE SQL         run SQL as root over BE's unix socket; prints rows tab-separated,
#                              without column names
#   mariadb_status BE NAME     print the global status variable NAME (e.g. Aborted_connects)
#   mariadb_vip_sql PORT SQL   run SQL as user app from the client namespace through the VIP on
#                              PORT (a new connection each time)
#   mariadb_replicate REPLICA PRIMARY  make REPLICA replicate from PRIMARY (GTID) and wait until
#                              both replication threads run
#   mariadb_slave_running BE   true if BE's IO and SQL replication threads both run
#   mariadb_server_name ID     server_id → backend name (21 → be1)
#   mariadb_config_head FILE   write the lab config (config/lab.toml) without services to FILE,
#                              with state_file under LAB_RUN_DIR
#   mariadb_backend_field SERVICE ADDR JQ  jq -r JQ over ADDR's entry in ilbctl --json backends
#   mariadb_probe BE MODE N    from the lb namespace (10.99.0.3), N times: connect to BE:3306,
#                              read the first packet and close with FIN (MODE fin) or a reset
#                              (rst); connect-fin / connect-rst close at once without reading.
#                              Prints per probe "greeting", "ERR <code> <message>",
#                              "FAILED <why>", or nothing for the connect-* modes
#
# Variables: MARIADB_PORT (3306), MARIADB_APP_USER/MARIADB_APP_PASSWORD,
# MARIADB_CHECK_USER/MARIADB_CHECK_PASSWORD, MARIADB_MAX_CONNECT_ERRORS (10).

[[ -z "${LAB_MARIADB_SH_LOADED:-}" ]] || return 0
LAB_MARIADB_SH_LOADED=1

readonly MARIADB_PORT=3306
readonly MARIADB_APP_USER=app
readonly MARIADB_APP_PASSWORD=app-secret
readonly MARIADB_CHECK_USER=ilbcheck
readonly MARIADB_CHECK_PASSWORD=check-secret
readonly MARIADB_REPL_USER=repl
readonly MARIADB_REPL_PASSWORD=repl-secret
readonly MARIADB_MAX_CONNECT_ERRORS=10

mariadb_dir() { echo "$LAB_RUN_DIR/mariadb-$1"; }

# The lab's addresses by name, for every namespace; see the header for why.
mariadb_write_netns_files() {
  local ns dir
  for ns in $(lab_namespaces); do
    dir="/etc/netns/$ns"
    mkdir -p "$dir" || return 1
    cat >"$dir/hosts" <<EOF
# Written by tools/lab/mariadb.sh for the lab namespace $ns; removed by lab_down.
127.0.0.1 localhost
127.0.1.1 $(hostname)
10.99.0.2 ilb-lab-dataplane
$LAB_MGMT_IP ilb-lab-lb
$LAB_CLIENT_IP ilb-lab-client
${LAB_BACKEND_IPS[be1]} ilb-lab-be1
${LAB_BACKEND_IPS[be2]} ilb-lab-be2
${LAB_BACKEND_IPS[be3]} ilb-lab-be3
$LAB_VIP ilb-lab-vip
10.99.0.101 ilb-lab-snat
10.99.0.4 ilb-lab-nft
10.99.0.5 ilb-lab-hap
EOF
    echo "nameserver 127.0.0.1" >"$dir/resolv.conf" || return 1
  done
}

# One mariadb-install-db per run; every server starts from a copy of it.
mariadb_template() {
  local tpl="$LAB_RUN_DIR/mariadb-template"
  [[ -d "$tpl/data/mysql" ]] && return 0
  mkdir -p "$tpl" || return 1
  if ! mariadb-install-db --no-defaults --user=root --datadir="$tpl/data" \
    --auth-root-authentication-method=socket --skip-test-db >"$tpl/install.log" 2>&1; then
    tail -n 20 "$tpl/install.log" >&2
    return 1
  fi
}

mariadb_start() {
  local be="$1"
  shift
  local ip="${LAB_BACKEND_IPS[$be]:-}" dir opt
  [[ -n "$ip" ]] || {
    echo "lab: unknown backend $be" >&2
    return 1
  }
  dir="$(mariadb_dir "$be")"
  mariadb_write_netns_files || return 1
  mariadb_template || return 1
  if [[ ! -d "$dir/data" ]]; then
    mkdir -p "$dir" || return 1
    cp -a "$LAB_RUN_DIR/mariadb-template/data" "$dir/data" || return 1
  fi
  cat >"$dir/init.sql" <<EOF
SET sql_log_bin = 0;
DELETE FROM mysql.global_priv WHERE User = '';
FLUSH PRIVILEGES;
CREATE USER IF NOT EXISTS '$MARIADB_APP_USER'@'%' IDENTIFIED BY '$MARIADB_APP_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$MARIADB_APP_USER'@'%';
CREATE USER IF NOT EXISTS '$MARIADB_CHECK_USER'@'%' IDENTIFIED BY '$MARIADB_CHECK_PASSWORD';
GRANT REPLICA MONITOR ON *.* TO '$MARIADB_CHECK_USER'@'%';
CREATE USER IF NOT EXISTS '$MARIADB_REPL_USER'@'%' IDENTIFIED BY '$MARIADB_REPL_PASSWORD';
GRANT REPLICATION SLAVE ON *.* TO '$MARIADB_REPL_USER'@'%';
EOF
  {
    echo "# Generated by tools/lab/mariadb.sh for the lab backend $be."
    echo "[mariadbd]"
    echo "user = root"
    echo "datadir = $dir/data"
    echo "socket = $dir/mysqld.sock"
    echo "pid-file = $dir/mysqld.pid"
    echo "log-error = $dir/error.log"
    echo "init-file = $dir/init.sql"
    echo "bind-address = $ip"
    echo "port = $MARIADB_PORT"
    echo "server_id = ${ip##*.}"
    echo "log_bin = $dir/data/binlog"
    echo "relay_log = $dir/data/relay"
    echo "max_connect_errors = $MARIADB_MAX_CONNECT_ERRORS"
    echo "performance_schema = ON"
    echo "innodb_buffer_pool_size = 32M"
    echo "max_connections = 500"
    for opt in "$@"; do
      echo "$opt"
    done
  } >"$dir/my.cnf"
  ip netns exec "${LAB_PREFIX}$be" mariadbd --defaults-file="$dir/my.cnf" \
    >>"$dir/stdout.log" 2>&1 &
  LAB_PIDS[mariadb-$be]=$!
  lab_log "started mariadbd on $be (pid ${LAB_PIDS[mariadb-$be]}), datadir $dir/data"
  if ! wait_for "MariaDB on $be to answer and listen on $ip:$MARIADB_PORT" 60 \
    mariadb_ready "$be"; then
    tail -n 20 "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null
    return 1
  fi
}

mariadb_ready() {
  local be="$1"
  kill -0 "${LAB_PIDS[mariadb-$be]}" 2>/dev/null &&
    mariadb-admin --no-defaults --socket="$(mariadb_dir "$be")/mysqld.sock" ping >/dev/null 2>&1 &&
    in_ns "$be" ss -Hltn "sport = :$MARIADB_PORT" | grep -q LISTEN
}

mariadb_stop() {
  local pid="${LAB_PIDS[mariadb-$1]:-}"
  [[ -n "$pid" ]] || {
    echo "lab: MariaDB on $1 is not running" >&2
    return 1
  }
  lab_kill_pid "$pid" TERM 30
  unset "LAB_PIDS[mariadb-$1]"
}

mariadb_sql() {
  mariadb --no-defaults --socket="$(mariadb_dir "$1")/mysqld.sock" -u root -N -B -e "$2"
}

mariadb_status() {
  mariadb_sql "$1" "SHOW GLOBAL STATUS LIKE '$2'" | awk '{print $2}'
}

mariadb_vip_sql() {
  in_ns client mariadb --no-defaults -h "$LAB_VIP" -P "$1" -u "$MARIADB_APP_USER" \
    -p"$MARIADB_APP_PASSWORD" --connect-timeout=3 -N -B -e "$2"
}

mariadb_server_name() { lab_backend_name "10.99.0.$1"; }

mariadb_slave_running() {
  mariadb --no-defaults --socket="$(mariadb_dir "$1")/mysqld.sock" -u root -e "SHOW SLAVE STATUS\G" |
    awk '/Slave_IO_Running: Yes/ {io = 1} /Slave_SQL_Running: Yes/ {sql = 1}
         END {exit !(io && sql)}'
}

mariadb_replicate() {
  local replica="$1" primary="$2"
  mariadb_sql "$replica" "CHANGE MASTER TO MASTER_HOST = '${LAB_BACKEND_IPS[$primary]}',
    MASTER_PORT = $MARIADB_PORT, MASTER_USER = '$MARIADB_REPL_USER',
    MASTER_PASSWORD = '$MARIADB_REPL_PASSWORD', MASTER_USE_GTID = slave_pos,
    MASTER_CONNECT_RETRY = 1; START SLAVE;" || return 1
  if ! wait_for "$replica to replicate from $primary" 30 mariadb_slave_running "$replica"; then
    mariadb_sql "$replica" "SHOW SLAVE STATUS\G" >&2
    return 1
  fi
}

# A naive probe: connect, read the first packet, close; MODE as in the header. A reset is
# SO_LINGER with a zero timeout, as ilb's checks close.
mariadb_probe() {
  local target="$1" mode="$2" n="$3"
  in_ns lb python3 - "${LAB_BACKEND_IPS[$target]}" "$MARIADB_PORT" "$mode" "$n" <<'EOF'
import socket, struct, sys

host, port, mode, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])

def read_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed after %d bytes" % len(data))
        data += chunk
    return data

for _ in range(count):
    s = socket.create_connection((host, port), timeout=3)
    try:
        if mode.startswith("connect-"):
            continue
        header = read_exact(s, 4)
        payload = read_exact(s, int.from_bytes(header[:3], "little"))
        if payload[:1] == b"\xff":
            code = struct.unpack("<H", payload[1:3])[0]
            print("ERR %d %s" % (code, payload[3:].decode("utf-8", "replace")), flush=True)
        else:
            print("greeting", flush=True)
    except Exception as e:
        print("FAILED %s" % e, flush=True)
    finally:
        if mode.endswith("rst"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
EOF
}

# Writes the lab's ilb config up to (not including) the services to FILE: config/lab.toml's
# instance, dataplane and port, with the control plane's state file under LAB_RUN_DIR; any
# further arguments are extra lines of the [dataplane] table.
mariadb_config_head() {
  local file="$1" extra=""
  shift
  (($# == 0)) || extra="$(printf '%s\n' "$@")"$'\n'
  cat >"$file" <<EOF2
# Generated by tools/lab/mariadb.sh (mariadb_config_head) for $(basename "$0").
instance = "$LAB_INSTANCE"

[controlplane]
api_socket = "$LAB_SOCKET"
state_file = "$LAB_RUN_DIR/ilb.state"
log_level = "info"

[dataplane]
main_lcore = 0
worker_lcores = [1]
${extra}memory_mb = 256
conn_capacity = 65536
snat_addresses = ["10.99.0.101"]

[[dataplane.port]]
name = "lan"
device = "net_af_xdp0,iface=dp0"
address = "10.99.0.2/24"
EOF2
}

# jq -r JQ over the entry of backend ADDR in `ilbctl --json backends SERVICE`.
mariadb_backend_field() {
  local service="$1" addr="$2" filter="$3" json
  json="$(ilbctl_lab --json backends "$service" 2>/dev/null)" || return 1
  jq -r --arg a "$addr" ".[] | select(.address == \$a) | $filter" <<<"$json"
}

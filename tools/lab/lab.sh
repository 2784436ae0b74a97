# shellcheck shell=bash
# The ilb lab: network namespaces joined by veth pairs to one Linux bridge, real nginx backends,
# and the real ilb-controlplane / ilb-dataplane / ilbctl binaries. Sourced by tools/demo.sh and the
# e2e tests (tests/e2e/*.sh); it never runs anything by itself when sourced.
#
# Why a library rather than one script: every e2e test builds its own lab and must tear it down on
# any exit, including a failed assertion or Ctrl-C, so the building blocks and the trap-based
# cleanup live in one place and each test composes only what it needs.
#
# Topology (one L2 segment 10.99.0.0/24, every namespace name starts with "ilb-lab-"):
#
#   ilb-lab-client  eth0 10.99.0.10 ─┐
#   ilb-lab-be1     eth0 10.99.0.21 ─┤                       ┌─ dp0   (no address: owned by the
#   ilb-lab-be2     eth0 10.99.0.22 ─┼─ ilb-lab-sw  br0 ─────┤          dataplane, net_af_xdp)
#   ilb-lab-be3     eth0 10.99.0.23 ─┘                       └─ mgmt0 10.99.0.3 (control plane's
#                                                               health checks)     ilb-lab-lb
#   VIP 10.99.0.100:80, dataplane port address 10.99.0.2, SNAT address 10.99.0.101 (config/lab.toml).
#
# Processes that must be stopped later are started with `ip netns exec ... &` directly (not through
# in_ns, a function) so that $! is the program's own pid.
#
# Interface (all functions return non-zero on failure and print why on stderr):
#   lab_up                     remove any leftover lab, then build namespaces, bridge, veths;
#                              installs the cleanup trap (EXIT/INT/TERM → lab_down)
#   lab_down                   kill every lab process, delete the namespaces, the API socket,
#                              /dev/shm/ilb.lab.*, DPDK files of file-prefix ilb-lab,
#                              /etc/netns/ilb-lab-*; idempotent
#   lab_hugepages              mount hugetlbfs, reserve 256 x 2 MiB pages; on failure sets
#                              LAB_NO_HUGE=1 so the dataplane is started with --no-huge
#   lab_start_nginx BE         start nginx in namespace BE (be1|be2|be3); answers "BE\n" on :80
#   lab_stop_nginx BE          stop it (SIGTERM, waits until it is gone)
#   lab_start_controlplane     start ilb-controlplane --config $LAB_CONFIG in ilb-lab-lb and wait
#                              until ilbctl gets an answer from it
#   lab_kill_controlplane [SIG]  send SIG (default TERM) and wait until it has exited
#   lab_start_dataplane        start ilb-dataplane (net_af_xdp from the config); if it exits or
#                              .dataplane.running is not true within LAB_DP_DEADLINE_S, restart it
#                              with --port lan=net_af_packet0,iface=dp0 and say so; sets
#                              LAB_DP_MODE to net_af_xdp or net_af_packet
#   lab_start_services         nginx on be1..3, control plane, dataplane, lab_wait_ready 3 (on a
#                              lab that is up)
#   lab_start_all              lab_up, lab_hugepages, lab_start_services: the whole lab, ready
#                              for traffic
#   lab_wait_ready [N]         wait until the dataplane has applied the latest snapshot and N
#                              (default 3) backends are up
#   lab_published_gen          print the control plane's published_gen
#   lab_wait_applied [GEN]     wait until a generation newer than GEN (default: the one before
#                              the current) is published and the dataplane has applied the latest
#   wait_for DESC TIMEOUT_S CMD...  poll CMD every 0.1 s until it succeeds; on timeout print
#                              "timed out after TIMEOUT_S s waiting for DESC" and return 1
#   in_ns NAME CMD...          run CMD in namespace ilb-lab-NAME (client, be1..3, lb, sw)
#   lab_curl [CURL_ARGS...]    curl -sS --max-time $LAB_CURL_MAX_TIME from the client to the VIP
#   lab_requests N             N requests, each on a new connection; one line each: the answer
#                              ("be1") or "FAIL <curl exit code>"
#   lab_parallel_requests NS URL N P  N requests from namespace NS to URL, P at a time, each
#                              on a new connection; output as lab_requests
#   lab_spread FILE            print count per backend and failures of a lab_requests output
#   lab_uploads_intact VIP N FILE BE...  N uploads of FILE from namespace client to
#                              VIP:$LAB_VIP_PORT/upload/uI
#                              (nginx's WebDAV PUT), each on a new connection; prints how many
#                              arrived whole on one of the backends BE...
#   ilbctl_lab ARGS...         ilbctl --instance lab ARGS...
#   lab_status_field JQ        jq -r JQ over `ilbctl --json status`
#   lab_backend_field ADDR JQ  jq -r JQ over ADDR's entry in `ilbctl --json backends web`
#   lab_backend_addr BE        be1 → 10.99.0.21;  lab_backend_name ADDR: the reverse
#   lab_health_params          prints "interval_ms fall rise timeout_ms" of service "web"
#   lab_keepalive_open / lab_keepalive_get / lab_keepalive_close
#                              one persistent HTTP/1.1 connection client → VIP; _get sends one
#                              request on it and prints "BODY LOCALPORT" (fails if the
#                              connection was lost: it never reconnects silently)
#   lab_check DESC CMD...      run CMD; print "PASS: DESC" or "FAIL: DESC" (and return 1)
#   lab_log MSG...             print "[lab] MSG" on stderr
#   lab_files_dir              an empty LAB_FILES directory for the test's own files, and
#                              LAB_CONFIG inside it
#
# Environment: ILB_SOURCE_DIR (default: this repository), ILB_BUILD_DIR (default
# $ILB_SOURCE_DIR/build), LAB_CONFIG (default $ILB_SOURCE_DIR/config/lab.toml), LAB_RUN_DIR
# (default $ILB_SOURCE_DIR/.lab: nginx files and daemon logs, kept after exit for inspection),
# LAB_DP_DEADLINE_S (default 30), LAB_CURL_MAX_TIME (default 3), LAB_FORCE_NO_HUGE (1: always
# start the dataplane with --no-huge, to test that mode), LAB_DP_QUEUES (default 1: RX/TX queues
# of the veth pair behind dp0, one per dataplane worker).

# Sourcing twice is harmless (the constants below are readonly).
[[ -z "${LAB_SH_LOADED:-}" ]] || return 0
LAB_SH_LOADED=1

LAB_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${ILB_SOURCE_DIR:=$(cd "$LAB_LIB_DIR/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
: "${LAB_CONFIG:=$ILB_SOURCE_DIR/config/lab.toml}"
: "${LAB_RUN_DIR:=$ILB_SOURCE_DIR/.lab}"
: "${LAB_DP_DEADLINE_S:=30}"
: "${LAB_DP_QUEUES:=1}"
: "${LAB_CURL_MAX_TIME:=3}"
: "${LAB_NO_HUGE:=0}"

readonly LAB_PREFIX=ilb-lab-
readonly LAB_INSTANCE=lab
readonly LAB_SOCKET=/run/ilb/lab.sock
readonly LAB_STATE_FILE=/run/ilb/lab.state
# The control plane's Prometheus endpoint (controlplane.metrics_listen), inside the lb namespace.
readonly LAB_METRICS=127.0.0.1:9310
readonly LAB_FILE_PREFIX=ilb-lab
readonly LAB_SUBNET_PREFIX=24
readonly LAB_VIP=10.99.0.100
readonly LAB_VIP_PORT=80
readonly LAB_CLIENT_IP=10.99.0.10
readonly LAB_MGMT_IP=10.99.0.3
readonly LAB_SERVICE=web
declare -gA LAB_BACKEND_IPS=([be1]=10.99.0.21 [be2]=10.99.0.22 [be3]=10.99.0.23)
readonly LAB_BACKENDS="be1 be2 be3"

# pids of processes this shell started, by role ("nginx-be1", "controlplane", "dataplane").
declare -gA LAB_PIDS=()
# shellcheck disable=SC2034 # read by the scripts that source this file
LAB_DP_MODE=""
LAB_KA_PID=""

lab_log() { echo "[lab] $*" >&2; }

# A test's own files (configs it writes, pages it serves), in LAB_FILES="$LAB_RUN_DIR.files": beside
# LAB_RUN_DIR, which lab_up empties. Starts empty; LAB_CONFIG is set to LAB_FILES/lab.toml.
lab_files_dir() {
  LAB_FILES="$LAB_RUN_DIR.files"
  rm -rf "$LAB_FILES"
  mkdir -p "$LAB_FILES"
  export LAB_CONFIG="$LAB_FILES/lab.toml"
}

in_ns() {
  local ns="$1"
  shift
  ip netns exec "${LAB_PREFIX}${ns}" "$@"
}

wait_for() {
  local desc="$1" timeout_s="$2"
  shift 2
  # EPOCHREALTIME is "seconds.microseconds"; compare in microseconds.
  local now=${EPOCHREALTIME//[.,]/}
  local deadline=$((now + timeout_s * 1000000))
  while true; do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    now=${EPOCHREALTIME//[.,]/}
    if ((now > deadline)); then
      echo "timed out after ${timeout_s} s waiting for ${desc}" >&2
      return 1
    fi
    sleep 0.1
  done
}

lab_check() {
  local desc="$1"
  shift
  if "$@"; then
    echo "PASS: $desc"
    return 0
  fi
  echo "FAIL: $desc"
  return 1
}

# --- binaries ---------------------------------------------------------------------------------

# Prints the path of the built program NAME under ILB_BUILD_DIR.
lab_bin() {
  local name="$1" path
  path="$(find "$ILB_BUILD_DIR" -maxdepth 4 -name "$name" ! -type d -perm -u+x 2>/dev/null |
    head -n 1)"
  if [[ -z "$path" ]]; then
    echo "lab: $name not found under ILB_BUILD_DIR=$ILB_BUILD_DIR (build first)" >&2
    return 1
  fi
  echo "$path"
}

ilbctl_lab() {
  local bin
  bin="$(lab_bin ilbctl)" || return 1
  "$bin" --instance "$LAB_INSTANCE" "$@"
}

# Scrapes the control plane's metrics and prints every sample as JSON (tools/lab/metrics.py parses
# the text with the Prometheus client library, so a malformed scrape fails here).
lab_metrics() {
  local text
  text="$(ip netns exec "${LAB_PREFIX}lb" curl -sf --max-time 5 "http://$LAB_METRICS/metrics")" ||
    return 1
  /usr/bin/python3 "$LAB_LIB_DIR/metrics.py" <<<"$text"
}

lab_status_field() {
  local json
  json="$(ilbctl_lab --json status 2>/dev/null)" || return 1
  jq -r "$1" <<<"$json"
}

lab_backend_field() {
  local addr="$1" filter="$2" json
  json="$(ilbctl_lab --json backends "$LAB_SERVICE" 2>/dev/null)" || return 1
  jq -r --arg a "$addr" ".[] | select(.address == \$a) | $filter" <<<"$json"
}

lab_backend_addr() { echo "${LAB_BACKEND_IPS[$1]}"; }

lab_backend_name() {
  local be
  for be in $LAB_BACKENDS; do
    if [[ "${LAB_BACKEND_IPS[$be]}" == "$1" ]]; then
      echo "$be"
      return 0
    fi
  done
  return 1
}

# --- teardown ---------------------------------------------------------------------------------

# Sends SIG to PID and waits up to TIMEOUT_S for it to exit; then SIGKILL.
lab_kill_pid() {
  local pid="$1" sig="${2:-TERM}" timeout_s="${3:-10}" i
  kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout_s * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    lab_log "pid $pid did not exit after SIG$sig within ${timeout_s} s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # Reap it if it is our child so bash does not report it later; ignore if it is not.
  wait "$pid" 2>/dev/null || true
}

lab_namespaces() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep "^${LAB_PREFIX}" || true
}

lab_remove_dpdk_files() {
  rm -rf "/var/run/dpdk/${LAB_FILE_PREFIX}"
  rm -f /dev/hugepages/"${LAB_FILE_PREFIX}"* 2>/dev/null || true
}

lab_down() {
  local role pid ns
  lab_keepalive_close 2>/dev/null || true
  # Our own processes first, gently, so the dataplane can detach from dp0 and free its memory.
  for role in dataplane controlplane "${!LAB_PIDS[@]}"; do
    pid="${LAB_PIDS[$role]:-}"
    [[ -n "$pid" ]] || continue
    lab_kill_pid "$pid" TERM 10
    unset "LAB_PIDS[$role]"
  done
  # Anything still running inside a lab namespace (also left over from a crashed run) was started
  # by a lab: the namespace is its identity.
  for ns in $(lab_namespaces); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      lab_kill_pid "$pid" TERM 5
    done
  done
  for ns in $(lab_namespaces); do
    ip netns del "$ns" 2>/dev/null || lab_log "could not delete namespace $ns"
  done
  rm -f "$LAB_SOCKET" "$LAB_STATE_FILE" "$LAB_STATE_FILE.tmp"
  rm -f /dev/shm/ilb."${LAB_INSTANCE}".* 2>/dev/null || true
  # Per-namespace hosts/resolv.conf that `ip netns exec` bind-mounts (tools/lab/mariadb.sh).
  rm -rf /etc/netns/"${LAB_PREFIX}"* 2>/dev/null || true
  lab_remove_dpdk_files
}

lab_dump_logs() {
  local f
  for f in "$LAB_RUN_DIR"/controlplane.log "$LAB_RUN_DIR"/dataplane*.log; do
    [[ -s "$f" ]] || continue
    echo "----- last lines of $f -----" >&2
    tail -n 40 "$f" >&2
  done
}

lab_on_exit() {
  local rc=$?
  set +e
  # A second Ctrl-C must not interrupt the teardown halfway.
  trap - EXIT
  trap '' INT TERM
  if ((rc != 0)); then
    lab_log "exiting with status $rc"
    lab_dump_logs
  fi
  lab_log "tearing the lab down"
  lab_down
  exit "$rc"
}

lab_install_trap() {
  trap lab_on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# --- building the lab -------------------------------------------------------------------------

lab_require_root() {
  if [[ $EUID -ne 0 ]]; then
    echo "lab: must run as root (network namespaces, hugepages)" >&2
    return 1
  fi
}

# Creates namespace ilb-lab-NAME with loopback up and IPv6 off (the dataplane is IPv4 only, and
# router/neighbour solicitations would only be counted as drops).
lab_add_ns() {
  local ns="${LAB_PREFIX}$1"
  ip netns add "$ns" || return 1
  ip -n "$ns" link set lo up || return 1
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
    net.ipv6.conf.default.disable_ipv6=1 >/dev/null || return 1
}

# Connects namespace NAME to a bridge of the switch (BRIDGE, default br0): IFACE inside NAME,
# SW_IFACE on the switch side, each with QUEUES (default 1) RX and TX queues: the kernel spreads
# flows over a veth's queues by hash. With no TX checksum offload on either end: XDP on the
# balancer's veth otherwise sees packets whose checksums are only partial.
lab_add_link() {
  local name="$1" iface="$2" sw_iface="$3" queues="${4:-1}" bridge="${5:-br0}" sw="${LAB_PREFIX}sw"
  ip -n "$sw" link add name "$sw_iface" numtxqueues "$queues" numrxqueues "$queues" type veth \
    peer name "$iface" netns "${LAB_PREFIX}${name}" numtxqueues "$queues" numrxqueues "$queues" ||
    return 1
  ip -n "$sw" link set "$sw_iface" master "$bridge" || return 1
  ip netns exec "$sw" ethtool -K "$sw_iface" tx off >/dev/null || return 1
  ip netns exec "${LAB_PREFIX}${name}" ethtool -K "$iface" tx off >/dev/null || return 1
  ip -n "$sw" link set "$sw_iface" up || return 1
}

lab_up() {
  lab_require_root || return 1
  local ns be
  if [[ -n "$(lab_namespaces)" || -e "$LAB_SOCKET" ]] ||
    compgen -G "/dev/shm/ilb.${LAB_INSTANCE}.*" >/dev/null; then
    lab_log "removing a lab left over from an earlier run"
  fi
  lab_down
  lab_install_trap
  rm -rf "$LAB_RUN_DIR"
  mkdir -p "$LAB_RUN_DIR" /run/ilb || return 1

  for ns in sw client be1 be2 be3 lb; do
    lab_add_ns "$ns" || return 1
  done
  # No STP and no forwarding delay: ports forward as soon as they are up.
  ip -n "${LAB_PREFIX}sw" link add name br0 type bridge stp_state 0 forward_delay 0 || return 1
  ip -n "${LAB_PREFIX}sw" link set br0 up || return 1

  lab_add_link client eth0 client || return 1
  ip -n "${LAB_PREFIX}client" addr add "$LAB_CLIENT_IP/$LAB_SUBNET_PREFIX" dev eth0 || return 1
  ip -n "${LAB_PREFIX}client" link set eth0 up || return 1
  for be in $LAB_BACKENDS; do
    lab_add_link "$be" eth0 "$be" || return 1
    ip -n "${LAB_PREFIX}$be" addr add "${LAB_BACKEND_IPS[$be]}/$LAB_SUBNET_PREFIX" dev eth0 ||
      return 1
    ip -n "${LAB_PREFIX}$be" link set eth0 up || return 1
  done

  # The balancer: dp0 carries no address and the kernel must stay silent on it (the dataplane
  # answers ARP there); arp_ignore=1 also keeps the kernel from answering for mgmt0's address
  # through dp0, and arp_announce=2 from using mgmt0's address in ARP sent elsewhere.
  lab_add_link lb dp0 lb-dp "$LAB_DP_QUEUES" || return 1
  lab_add_link lb mgmt0 lb-mgmt || return 1
  in_ns lb sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
    net.ipv4.conf.dp0.arp_ignore=1 net.ipv4.conf.dp0.arp_announce=2 net.ipv4.ip_forward=0 >/dev/null || return 1
  ip -n "${LAB_PREFIX}lb" link set dp0 up || return 1
  ip -n "${LAB_PREFIX}lb" addr add "$LAB_MGMT_IP/$LAB_SUBNET_PREFIX" dev mgmt0 || return 1
  ip -n "${LAB_PREFIX}lb" link set mgmt0 up || return 1
  lab_log "lab is up: namespaces $(lab_namespaces | tr '\n' ' ')"
}

# --- hugepages --------------------------------------------------------------------------------

readonly LAB_HUGEPAGES=256
readonly LAB_HUGEPAGES_FREE=160

lab_hugepages() {
  local free total
  if ((${LAB_FORCE_NO_HUGE:-0})); then
    LAB_NO_HUGE=1
    lab_log "LAB_FORCE_NO_HUGE=1: the dataplane will run with --no-huge"
    return 0
  fi
  if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
    mkdir -p /dev/hugepages
    if ! mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages 2>/dev/null; then
      lab_log "could not mount hugetlbfs on /dev/hugepages"
    fi
  fi
  # The lab's dataplane asks EAL for 256 MiB (128 pages); leave some room for DPDK's own needs.
  # Reserve at least LAB_HUGEPAGES, and more if other DPDK processes hold pages already.
  total="$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)"
  free="$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)"
  local want=$((total + LAB_HUGEPAGES_FREE - ${free:-0}))
  ((want > LAB_HUGEPAGES)) || want=$LAB_HUGEPAGES
  if ((total < want)); then
    echo "$want" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
  fi
  free="$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)"
  if grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts && ((${free:-0} >= LAB_HUGEPAGES_FREE)); then
    LAB_NO_HUGE=0
    lab_log "hugepages: ${free} x 2 MiB free on /dev/hugepages"
  else
    LAB_NO_HUGE=1
    lab_log "hugepages unavailable (${free:-0} free): the dataplane will run with --no-huge"
  fi
}

# --- nginx backends ---------------------------------------------------------------------------

lab_start_nginx() {
  local be="$1" dir="$LAB_RUN_DIR/nginx-$1"
  [[ -n "${LAB_BACKEND_IPS[$be]:-}" ]] || {
    echo "lab: unknown backend $be" >&2
    return 1
  }
  mkdir -p "$dir" || return 1
  cat >"$dir/nginx.conf" <<EOF
# Generated by tools/lab/lab.sh for the lab backend $be.
user root;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log notice;
events { worker_connections 1024; }
http {
  access_log $dir/access.log;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  server {
    listen ${LAB_BACKEND_IPS[$be]}:80;
    default_type text/plain;
    location / { return 200 "$be\n"; }
    # For the tests that move large bodies: /blob serves the file they write there first,
    # /upload/NAME stores a PUT (nginx's WebDAV module) for them to compare.
    location = /blob { default_type application/octet-stream; alias $dir/blob; }
    location /upload/ {
      alias $dir/upload/;
      dav_methods PUT;
      create_full_put_path on;
      client_max_body_size 16m;
    }
  }
}
EOF
  ip netns exec "${LAB_PREFIX}$be" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' \
    >>"$dir/stdout.log" 2>&1 &
  LAB_PIDS[nginx-$be]=$!
  if ! wait_for "nginx on $be to listen on ${LAB_BACKEND_IPS[$be]}:80" 10 \
    lab_nginx_listening "$be"; then
    tail -n 5 "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null
    return 1
  fi
}

lab_nginx_listening() {
  kill -0 "${LAB_PIDS[nginx-$1]}" 2>/dev/null &&
    in_ns "$1" ss -Hltn "sport = :80" | grep -q LISTEN
}

lab_stop_nginx() {
  local pid="${LAB_PIDS[nginx-$1]:-}"
  [[ -n "$pid" ]] || {
    echo "lab: nginx on $1 is not running" >&2
    return 1
  }
  lab_kill_pid "$pid" TERM 10
  unset "LAB_PIDS[nginx-$1]"
}

# --- ilb daemons ------------------------------------------------------------------------------

lab_start_controlplane() {
  local bin
  bin="$(lab_bin ilb-controlplane)" || return 1
  mkdir -p /run/ilb
  ip netns exec "${LAB_PREFIX}lb" "$bin" --config "$LAB_CONFIG" \
    >>"$LAB_RUN_DIR/controlplane.log" 2>&1 &
  LAB_PIDS[controlplane]=$!
  lab_log "started ilb-controlplane (pid ${LAB_PIDS[controlplane]}) with $LAB_CONFIG"
  if ! wait_for "the control plane to answer on $LAB_SOCKET" 20 lab_controlplane_answers; then
    tail -n 20 "$LAB_RUN_DIR/controlplane.log" >&2
    return 1
  fi
}

lab_controlplane_answers() {
  kill -0 "${LAB_PIDS[controlplane]}" 2>/dev/null && ilbctl_lab --json status >/dev/null
}

lab_kill_controlplane() {
  local sig="${1:-TERM}" pid="${LAB_PIDS[controlplane]:-}"
  [[ -n "$pid" ]] || return 0
  lab_kill_pid "$pid" "$sig" 10
  unset "LAB_PIDS[controlplane]"
}

lab_dataplane_running() {
  [[ "$(lab_status_field '.dataplane.running')" == "true" ]]
}

# Starts the dataplane with EXTRA_ARGS; returns 0 once .dataplane.running is true, 1 if the process
# exits or the deadline passes (the process is then stopped).
lab_try_dataplane() {
  local bin="$1" log="$2"
  shift 2
  local args=(--config "$LAB_CONFIG")
  ((LAB_NO_HUGE)) && args+=(--no-huge)
  args+=("$@")
  lab_log "starting ilb-dataplane ${args[*]}"
  ip netns exec "${LAB_PREFIX}lb" "$bin" "${args[@]}" >>"$log" 2>&1 &
  local pid=$!
  LAB_PIDS[dataplane]=$pid
  local ticks=0
  while ((ticks < LAB_DP_DEADLINE_S * 10)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      local status=0
      wait "$pid" 2>/dev/null || status=$?
      lab_log "ilb-dataplane exited with status $status (log: $log)"
      tail -n 15 "$log" >&2
      unset "LAB_PIDS[dataplane]"
      return 1
    fi
    if lab_dataplane_running; then
      return 0
    fi
    sleep 0.1
    ticks=$((ticks + 1))
  done
  lab_log "ilb-dataplane did not report running within ${LAB_DP_DEADLINE_S} s (log: $log)"
  tail -n 15 "$log" >&2
  lab_kill_pid "$pid" TERM 10
  unset "LAB_PIDS[dataplane]"
  return 1
}

lab_start_dataplane() {
  local bin
  bin="$(lab_bin ilb-dataplane)" || return 1
  if lab_try_dataplane "$bin" "$LAB_RUN_DIR/dataplane-af_xdp.log"; then
    # The configured device: net_af_xdp in config/lab.toml, whatever a test wrote otherwise.
    LAB_DP_MODE="$(sed -n 's/^device = "\(net_[a-z_]*\)[0-9].*/\1/p' "$LAB_CONFIG" | head -n 1)"
    lab_log "dataplane is running on dp0 through ${LAB_DP_MODE:-its configured port}"
    return 0
  fi
  lab_log "net_af_xdp did not come up: falling back to net_af_packet on dp0"
  # A dataplane that died may leave its XDP program and DPDK files behind.
  ip -n "${LAB_PREFIX}lb" link set dev dp0 xdp off 2>/dev/null || true
  lab_remove_dpdk_files
  if lab_try_dataplane "$bin" "$LAB_RUN_DIR/dataplane-af_packet.log" \
    --port "lan=net_af_packet0,iface=dp0,qpairs=$LAB_DP_QUEUES"; then
    # shellcheck disable=SC2034
    LAB_DP_MODE=net_af_packet
    lab_log "dataplane is running on dp0 through net_af_packet (fallback)"
    return 0
  fi
  echo "lab: the dataplane came up neither with net_af_xdp nor with net_af_packet" >&2
  return 1
}

lab_snapshot_current() {
  local json
  json="$(ilbctl_lab --json status 2>/dev/null)" || return 1
  jq -e --argjson n "$1" '.dataplane.running == true and .published_gen > 0
    and .dataplane.applied_gen == .published_gen and .backends_up == $n' <<<"$json" >/dev/null
}

lab_wait_ready() {
  local n="${1:-3}"
  wait_for "the dataplane to apply the latest snapshot with $n backends up" 60 \
    lab_snapshot_current "$n"
}

lab_start_services() {
  local be
  for be in $LAB_BACKENDS; do
    lab_start_nginx "$be" || return 1
  done
  lab_start_controlplane || return 1
  lab_start_dataplane || return 1
  lab_wait_ready 3
}

lab_start_all() {
  # After lab_up: a leftover dataplane it removes may still hold hugepages.
  lab_up || return 1
  lab_hugepages
  lab_start_services
}

# True once a generation newer than $1 is published and the dataplane has applied the latest one.
lab_applied_after() {
  local json
  json="$(ilbctl_lab --json status 2>/dev/null)" || return 1
  jq -e --argjson g "$1" '.published_gen > $g and .dataplane.applied_gen >= .published_gen' \
    <<<"$json" >/dev/null
}

lab_published_gen() { lab_status_field '.published_gen'; }

lab_wait_applied() {
  local after="${1:-}" current
  if [[ -z "$after" ]]; then
    current="$(lab_published_gen)" || return 1
    after=$((current - 1))
  fi
  wait_for "the dataplane to apply a generation newer than $after" 30 lab_applied_after "$after"
}

# Prints "interval_ms fall rise timeout_ms" of the service's health check in LAB_CONFIG, with the
# model's defaults for anything the file leaves out.
lab_health_params() {
  python3 - "$LAB_CONFIG" "$LAB_SERVICE" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    doc = tomllib.load(f)
svc = next((s for s in doc.get("service", []) if s.get("name") == sys.argv[2]), {})
hc = {}
for key in ("health_check", "health", "check"):
    if isinstance(svc.get(key), dict):
        hc = svc[key]
        break
def ms(*keys, default):
    for k in keys:
        if k in hc:
            v = hc[k]
            if k.endswith("_ms"):
                return int(v)
            if isinstance(v, str):
                for unit, mult in (("ms", 1), ("s", 1000)):
                    if v.endswith(unit):
                        return int(float(v[: -len(unit)]) * mult)
            return int(float(v) * 1000)
    return default
print(ms("interval_ms", "interval", default=2000), int(hc.get("fall", 3)),
      int(hc.get("rise", 2)), ms("timeout_ms", "timeout", default=1000))
EOF
}

# --- traffic ----------------------------------------------------------------------------------

lab_curl() {
  in_ns client curl -sS --max-time "$LAB_CURL_MAX_TIME" "$@" "http://$LAB_VIP:$LAB_VIP_PORT/"
}

# N requests from the client, each on a new connection (a fresh curl process), one result line
# each. Runs one shell inside the client namespace so that the loop costs only the curl forks.
lab_requests() {
  local n="$1"
  in_ns client bash -c '
    for ((i = 0; i < $1; i++)); do
      if body="$(curl -sS --max-time "$2" "$3" 2>/dev/null)"; then
        echo "$body"
      else
        echo "FAIL $?"
      fi
    done' lab-requests "$n" "$LAB_CURL_MAX_TIME" "http://$LAB_VIP:$LAB_VIP_PORT/"
}

# N requests to URL from namespace NS, P at a time, each on a new connection; one line each, as
# lab_requests prints them.
lab_parallel_requests() {
  local ns="$1" url="$2" n="$3" p="$4"
  in_ns "$ns" bash -c '
    one() { if body="$(curl -sS --max-time "$1" "$2" 2>/dev/null)"; then echo "$body"; else echo "FAIL $?"; fi; }
    export -f one
    seq "$3" | xargs -P "$4" -I{} bash -c "one \"\$0\" \"\$1\"" "$1" "$2"' \
    lab-parallel-requests "$LAB_CURL_MAX_TIME" "$url" "$n" "$p"
}

lab_spread() {
  local file="$1" be count
  for be in $LAB_BACKENDS; do
    count="$(grep -cx "$be" "$file" || true)"
    printf '  %-8s %5d\n' "$be" "$count"
  done
  printf '  %-8s %5d\n' failed "$(grep -c '^FAIL' "$file" || true)"
  count="$(grep -cvxE 'be[123]|FAIL.*' "$file" || true)"
  if ((count > 0)); then
    printf '  %-8s %5d\n' other "$count"
  fi
}

lab_uploads_intact() {
  local vip="$1" n="$2" file="$3" want i be f intact=0
  shift 3
  want="$(sha256sum <"$file" | cut -d' ' -f1)"
  for ((i = 0; i < n; i++)); do
    in_ns client curl -sS --max-time 20 -o /dev/null -T "$file" \
      "http://$vip:$LAB_VIP_PORT/upload/u$i" >&2 || true
  done
  for ((i = 0; i < n; i++)); do
    for be in "$@"; do
      f="$LAB_RUN_DIR/nginx-$be/upload/u$i"
      if [[ -f "$f" && "$(sha256sum <"$f" | cut -d' ' -f1)" == "$want" ]]; then
        intact=$((intact + 1))
        break
      fi
    done
  done
  echo "$intact"
}

# --- one persistent connection ----------------------------------------------------------------

lab_keepalive_open() {
  coproc LAB_KA {
    exec ip netns exec "${LAB_PREFIX}client" python3 -u "$LAB_LIB_DIR/keepalive_client.py" \
      "$LAB_VIP" "$LAB_VIP_PORT" "$LAB_CURL_MAX_TIME"
  }
  LAB_PIDS[keepalive]=$LAB_KA_PID
}

lab_keepalive_get() {
  local line
  [[ -n "$LAB_KA_PID" ]] || {
    echo "lab: no keep-alive connection is open" >&2
    return 1
  }
  echo get >&"${LAB_KA[1]}" || return 1
  IFS= read -r -t 10 line <&"${LAB_KA[0]}" || {
    echo "lab: no answer from the keep-alive client" >&2
    return 1
  }
  if [[ "$line" == ERROR* ]]; then
    echo "lab: keep-alive request failed: $line" >&2
    return 1
  fi
  echo "$line"
}

lab_keepalive_close() {
  [[ -n "$LAB_KA_PID" ]] || return 0
  local pid="$LAB_KA_PID"
  lab_kill_pid "$pid" TERM 5
  unset "LAB_PIDS[keepalive]"
  LAB_KA_PID=""
}

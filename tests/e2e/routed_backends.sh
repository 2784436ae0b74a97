#!/usr/bin/env bash
# Hosts in another subnet, behind a router, as a pool or an application tier in another zone or
# VPC subnet is: the dataplane reaches backends there through its port's gateway, answers clients
# there through the router their packets came from, and path-MTU discovery works through the
# balancer both ways. A router namespace "rt" joins the lab's segment (br0, 10.99.0.0/24) to a
# second one (br2, 10.97.0.0/24) with two nginx backends and a client; its route into that subnet
# carries at most 1400 bytes, as a tunnel or a smaller-MTU link on the way would, while every
# interface stays at 1500:
#
#   client 10.99.0.10 ─┐                     ┌─ r0 10.99.0.1  ilb-lab-rt  r1 10.97.0.1 ─ br2 ─┬─ rb1 10.97.0.31
#   ilb dp0 10.99.0.2 ─┼─ br0                │   (forwarding; route 10.97.0.0/24 mtu 1400)    ├─ rb2 10.97.0.32
#   be1..3 .21-.23 ────┴──────────────────────┘                                                └─ rc  10.97.0.50 (client)
#
# Service "far" (VIP 10.99.0.102:80) has rb1 and rb2 as backends; the port "lan" gets gateway
# 10.99.0.1. Nothing in the clients' or the backends' configuration changes: the clients know
# only the VIPs, the hosts behind the router only their default route.
#
# Backends' side: an upload through the VIP sends full-size segments (both ends offered an MSS of
# 1460). The router answers the first with "fragmentation needed, MTU 1400" to the SNAT address;
# ilb must hand that error on to the client, rewritten as an error about the client's own packet
# to the VIP, or the upload hangs (a black hole). Checked: the uploads arrive whole, the client
# has learnt MTU 1400 for the VIP, ilb counts the translated error. Control: the router really
# drops full-size frames towards that subnet (a 1472-byte ping with DF from the control plane's
# interface, which routes through the router too, is refused with the MTU).
#
# Clients' side: the far client downloads from service "web" (be1..3, on ilb's own segment). The
# backend's full-size segments meet the router's MTU on their way to the client, and its error
# goes to the VIP they came from; ilb must hand it to the backend as an error about its own
# segment to the SNAT address. Before each download the backends forget what they learnt, so
# every download needs a translated error (on a new connection, so with two workers each
# connection's owner is chosen afresh).
#
# With ILB_E2E_WORKERS=2 (the test routed_backends_2workers) the dataplane runs two workers on a
# two-queue dp0 (net_af_xdp, one device per queue): the lab's veth has no RSS that ilb could read,
# so an error about a client's connection may arrive on either worker's queue, whichever owns the
# connection.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/routed_backends}"
: "${ILB_E2E_WORKERS:=1}"
case "$ILB_E2E_WORKERS" in
  1) ;;
  2)
    export LAB_RUN_DIR="$LAB_RUN_DIR-2workers" LAB_DP_QUEUES=2
    ;;
  *)
    echo "routed_backends: ILB_E2E_WORKERS must be 1 or 2" >&2
    exit 1
    ;;
esac
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

readonly GATEWAY=10.99.0.1
readonly FAR_NET=10.97.0.0/24
readonly FAR_GATEWAY=10.97.0.1
readonly FAR_VIP=10.99.0.102
readonly SNAT=10.99.0.101
readonly PATH_MTU=1400
LAB_BACKEND_IPS[rb1]=10.97.0.31
LAB_BACKEND_IPS[rb2]=10.97.0.32
readonly FAR_BACKENDS="rb1 rb2"
readonly FAR_CLIENT=10.97.0.50

lab_files_dir
# The lab's config, its port given the gateway, and a second service whose backends are only
# reachable through it (an http check, as "web" has, from the control plane's mgmt0).
rewrite=(-e '')
if ((ILB_E2E_WORKERS == 2)); then
  rewrite+=(-e 's/^worker_lcores = \[1\]$/worker_lcores = [1, 2]\nworker_cpus = [1, 0]\nidle_sleep_us = 100/')
fi
sed "${rewrite[@]}" "$ILB_SOURCE_DIR/config/lab.toml" |
  awk -v gw="$GATEWAY" '{ print } /^address = "10.99.0.2\/24"$/ { print "gateway = \"" gw "\"" }' \
    >"$LAB_CONFIG"
cat >>"$LAB_CONFIG" <<EOF

[[service]]
name = "far"
vip = "$FAR_VIP"
port = 80
protocol = "tcp"

[service.health_check]
type = "http"
path = "/"
interval = "1s"
timeout = "500ms"
rise = 2
fall = 2

[[service.backend]]
address = "${LAB_BACKEND_IPS[rb1]}"
port = 80

[[service.backend]]
address = "${LAB_BACKEND_IPS[rb2]}"
port = 80
EOF
if ! grep -q "^gateway = \"$GATEWAY\"$" "$LAB_CONFIG" ||
  { ((ILB_E2E_WORKERS == 2)) && ! grep -q '^worker_cpus = \[1, 0\]$' "$LAB_CONFIG"; }; then
  echo "routed_backends: config/lab.toml no longer has the port address this test follows" >&2
  exit 1
fi

lab_up
sw="${LAB_PREFIX}sw"
rt="${LAB_PREFIX}rt"
ip -n "$sw" link add name br2 type bridge stp_state 0 forward_delay 0
ip -n "$sw" link set br2 up
lab_add_ns rt
lab_add_link rt r0 rt-r0 1 br0
lab_add_link rt r1 rt-r1 1 br2
ip -n "$rt" addr add "$GATEWAY/24" dev r0
ip -n "$rt" addr add "$FAR_GATEWAY/24" dev r1
ip -n "$rt" link set r0 up
ip -n "$rt" link set r1 up
in_ns rt sysctl -qw net.ipv4.ip_forward=1 >/dev/null
# The narrow part of the path: forwarded datagrams into the far subnet above 1400 bytes are
# refused with "fragmentation needed" (or fragmented, without DF). The router's own link and the
# backends stay at 1500, so the backends' SYN-ACKs offer an MSS of 1460.
ip -n "$rt" route replace "$FAR_NET" dev r1 proto kernel scope link src "$FAR_GATEWAY" \
  mtu "$PATH_MTU"
for be in $FAR_BACKENDS; do
  lab_add_ns "$be"
  lab_add_link "$be" eth0 "$be" 1 br2
  ip -n "${LAB_PREFIX}$be" addr add "${LAB_BACKEND_IPS[$be]}/24" dev eth0
  ip -n "${LAB_PREFIX}$be" link set eth0 up
  ip -n "${LAB_PREFIX}$be" route add default via "$FAR_GATEWAY"
done
lab_add_ns rc
lab_add_link rc eth0 rc 1 br2
ip -n "${LAB_PREFIX}rc" addr add "$FAR_CLIENT/24" dev eth0
ip -n "${LAB_PREFIX}rc" link set eth0 up
ip -n "${LAB_PREFIX}rc" route add default via "$FAR_GATEWAY"
# The control plane's health checks reach the far backends through the router as well.
ip -n "${LAB_PREFIX}lb" route add "$FAR_NET" via "$GATEWAY" dev mgmt0

lab_hugepages
for be in $LAB_BACKENDS $FAR_BACKENDS; do lab_start_nginx "$be"; done
lab_start_controlplane
lab_start_dataplane
lab_wait_ready 5

ok=1
# Each far backend serves the same 2 MiB file at /blob.
blob="$LAB_RUN_DIR/blob"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$blob"
want="$(sha256sum <"$blob" | cut -d' ' -f1)"
for be in $LAB_BACKENDS $FAR_BACKENDS; do cp "$blob" "$LAB_RUN_DIR/nginx-$be/blob"; done

# No reply, and the router's error with its MTU (or, once the host has learnt it from that
# error, the host's own refusal to send). Three tries: a noisy machine may lose one.
refused_big() {
  local try rc out
  for try in 1 2 3; do
    rc=0
    out="$(in_ns lb ping -c 1 -W 2 -M "do" -s 1472 "${LAB_BACKEND_IPS[rb1]}" 2>&1)" || rc=$?
    if ((rc != 0)) && grep -q "mtu = $PATH_MTU\|mtu=$PATH_MTU" <<<"$out"; then return 0; fi
    echo "try $try: ping exited with $rc: $out" >&2
  done
  return 1
}
lab_check "control: the router refuses a 1500-byte DF datagram towards the far subnet with its MTU" \
  refused_big || ok=0
# (Three tries: a noisy machine may lose one.)
passes() { in_ns lb ping -c 3 -W 2 -M "do" -s $(("$1" - 28)) "${LAB_BACKEND_IPS[rb1]}" >/dev/null; }
lab_check "control: a $PATH_MTU-byte one passes" passes "$PATH_MTU" || ok=0
lab_check "control: the client has no route of its own to the far subnet" \
  bash -c "! ip netns exec ${LAB_PREFIX}client ip route get ${LAB_BACKEND_IPS[rb1]} >/dev/null 2>&1" || ok=0

requests=40
results="$LAB_RUN_DIR/requests.txt"
lab_parallel_requests client "http://$FAR_VIP:$LAB_VIP_PORT/" "$requests" 4 >"$results"
for be in $FAR_BACKENDS; do printf '  %-8s %5d\n' "$be" "$(grep -cx "$be" "$results" || true)"; done
printf '  %-8s %5d\n' failed "$(grep -c '^FAIL' "$results" || true)"
lab_check "all $requests requests to the far VIP were answered by the routed backends" \
  test "$(grep -cxE 'rb[12]' "$results" || true)" -eq "$requests" || ok=0
lab_check "both routed backends answered some" \
  test "$(grep -xE 'rb[12]' "$results" | sort -u | wc -l)" -eq 2 || ok=0
sources="$(cat "$LAB_RUN_DIR"/nginx-rb*/access.log | awk '{ print $1 }' | sort -u |
  { grep -v "^$LAB_MGMT_IP$" || true; } | tr '\n' ' ')"
lab_check "the routed backends saw the requests come from the SNAT address ($sources)" \
  test "$sources" = "$SNAT " || ok=0

# Uploads: the client's first full-size segment meets the router's MTU.
uploads=4
# shellcheck disable=SC2086 # a list of backends
intact="$(lab_uploads_intact "$FAR_VIP" "$uploads" "$blob" $FAR_BACKENDS)"
lab_check "all $uploads uploads of 2 MiB through the VIP arrived intact" \
  test "$intact" -eq "$uploads" || ok=0
route="$(in_ns client ip route get "$FAR_VIP")"
echo "the client's route to the VIP: $(tr '\n' ' ' <<<"$route")"
lab_check "the client learnt the path's MTU ($PATH_MTU) for the VIP from ilb's translated error" \
  grep -q "mtu $PATH_MTU" <<<"$route" || ok=0
translated() { ilbctl_lab --json status | jq '.dataplane.replies.icmp_errors_translated'; }
translated_at_least() { test "$(translated)" -ge "$1"; }
lab_check "ilb counts the router's error as translated" \
  wait_for "the translated ICMP error in the stats" 15 translated_at_least 1 || ok=0

# Downloads the other way: the backends' full-size segments pass the router (its link to the
# balancer is 1500) and ilb.
downloads=6
bad=0
for ((i = 0; i < downloads; i++)); do
  got="$(in_ns client curl -sS --max-time 20 "http://$FAR_VIP:$LAB_VIP_PORT/blob" -o - 2>/dev/null |
    sha256sum | cut -d' ' -f1)" || got=FAIL
  [[ "$got" == "$want" ]] || bad=$((bad + 1))
done
lab_check "all $downloads downloads of 2 MiB from the routed backends arrived intact" \
  test "$bad" -eq 0 || ok=0

# The far client downloads from the on-link backends: their segments meet the router's MTU.
downloads=8
bad=0
untranslated=0
for ((i = 0; i < downloads; i++)); do
  # What each backend learnt about the path to the SNAT address is forgotten (the route cache's
  # exceptions go with a flush), so this download needs the router's error again.
  for be in $LAB_BACKENDS; do ip -n "${LAB_PREFIX}$be" route flush cache; done
  before="$(translated)"
  got="$(in_ns rc curl -sS --max-time 20 "http://$LAB_VIP:$LAB_VIP_PORT/blob" -o - 2>/dev/null |
    sha256sum | cut -d' ' -f1)" || got=FAIL
  [[ "$got" == "$want" ]] || bad=$((bad + 1))
  wait_for "download $i's translated error in the stats" 15 translated_at_least $((before + 1)) ||
    untranslated=$((untranslated + 1))
done
lab_check "all $downloads downloads by the far client arrived intact" test "$bad" -eq 0 || ok=0
lab_check "each of them needed an error translated, and got it" test "$untranslated" -eq 0 || ok=0
learnt=""
for be in $LAB_BACKENDS; do
  if in_ns "$be" ip route get "$SNAT" | grep -q "mtu $PATH_MTU"; then learnt="$learnt$be "; fi
done
lab_check "the last download's backend learnt the path's MTU for the SNAT address (${learnt:-none})" \
  test -n "$learnt" || ok=0

# The first service, on the link itself, is unaffected by the gateway.
lab_requests 12 >"$LAB_RUN_DIR/web.txt"
lab_check "the on-link service still answers every request" \
  test "$(grep -cxE 'be[123]' "$LAB_RUN_DIR/web.txt" || true)" -eq 12 || ok=0
((ok))

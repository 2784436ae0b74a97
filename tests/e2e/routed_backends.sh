#!/usr/bin/env bash
# Backends in another subnet, behind a router, as a pool in another zone or VPC subnet is: the
# dataplane reaches them through its port's gateway, and path-MTU discovery works through the
# balancer. A router namespace "rt" joins the lab's segment (br0, 10.99.0.0/24) to a second one
# (br2, 10.97.0.0/24) with two nginx backends; its route into that subnet carries at most 1400
# bytes, as a tunnel or a smaller-MTU link on the way would, while every interface stays at 1500:
#
#   client 10.99.0.10 ─┐                     ┌─ r0 10.99.0.1  ilb-lab-rt  r1 10.97.0.1 ─ br2 ─┬─ rb1 10.97.0.31
#   ilb dp0 10.99.0.2 ─┴─ br0 ─ (be1..3) ... ┘   (forwarding; route 10.97.0.0/24 mtu 1400) └─ rb2 10.97.0.32
#
# Service "far" (VIP 10.99.0.102:80) has rb1 and rb2 as backends; the port "lan" gets gateway
# 10.99.0.1. Nothing in the client's or the backends' configuration changes: the client knows only
# the VIP, the backends only their default route.
#
# An upload through the VIP sends full-size segments (both ends offered an MSS of 1460). The
# router answers the first with "fragmentation needed, MTU 1400" to the SNAT address; ilb must
# hand that error on to the client, rewritten as an error about the client's own packet to the
# VIP, or the upload hangs (a black hole). Checked: the uploads arrive whole, the client has
# learnt MTU 1400 for the VIP, ilb counts the translated error. Control: the router really drops
# full-size frames towards the backends (a 1472-byte ping with DF from the control plane's
# interface, which routes through the router too, is refused with the MTU).
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/routed_backends}"
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

lab_files_dir
# The lab's config, its port given the gateway, and a second service whose backends are only
# reachable through it (an http check, as "web" has, from the control plane's mgmt0).
awk -v gw="$GATEWAY" '{ print } /^address = "10.99.0.2\/24"$/ { print "gateway = \"" gw "\"" }' \
  "$ILB_SOURCE_DIR/config/lab.toml" >"$LAB_CONFIG"
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
if ! grep -q "^gateway = \"$GATEWAY\"$" "$LAB_CONFIG"; then
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
for be in $FAR_BACKENDS; do cp "$blob" "$LAB_RUN_DIR/nginx-$be/blob"; done

# ping exits with 1 when no reply came (here: the router's error), 2 on any other failure.
refused_big() {
  local rc=0 out
  out="$(in_ns lb ping -c 1 -W 2 -M "do" -s 1472 "${LAB_BACKEND_IPS[rb1]}" 2>&1)" || rc=$?
  test "$rc" -eq 1 && grep -q "mtu = $PATH_MTU\|mtu=$PATH_MTU" <<<"$out"
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
  grep -v "^$LAB_MGMT_IP$" | tr '\n' ' ')"
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
translated_at_least() {
  test "$(ilbctl_lab --json status | jq '.dataplane.replies.icmp_errors_translated')" -ge "$1"
}
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

# The first service, on the link itself, is unaffected by the gateway.
lab_requests 12 >"$LAB_RUN_DIR/web.txt"
lab_check "the on-link service still answers every request" \
  test "$(grep -cxE 'be[123]' "$LAB_RUN_DIR/web.txt" || true)" -eq 12 || ok=0
((ok))

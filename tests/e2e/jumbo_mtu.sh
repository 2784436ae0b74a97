#!/usr/bin/env bash
# Clients and backends on jumbo-frame links (MTU 9000) behind a balancer whose port carries 1500
# bytes, as on a cloud network whose instances default to jumbo frames: ilb lowers the MSS that
# both ends offer in their SYNs, so large transfers through the VIP use segments the balancer's
# link carries. Control: frames above 1500 bytes really are lost on the way to the balancer (a
# 3000-byte ping of the VIP gets no answer), while the hosts reach each other directly with them.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/jumbo_mtu}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

lab_start_all

# Every backend serves the same 2 MiB file at /blob.
blob="$LAB_RUN_DIR/blob"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$blob"
want="$(sha256sum <"$blob" | cut -d' ' -f1)"
for be in $LAB_BACKENDS; do cp "$blob" "$LAB_RUN_DIR/nginx-$be/blob"; done

# Jumbo frames on the client's and the backends' links (both ends of each veth); the balancer's
# dp0 and the switch's end of it stay at 1500, so the bridge drops longer frames towards ilb.
sw="${LAB_PREFIX}sw"
ip -n "$sw" link set client mtu 9000
ip -n "${LAB_PREFIX}client" link set eth0 mtu 9000
for be in $LAB_BACKENDS; do
  ip -n "$sw" link set "$be" mtu 9000
  ip -n "${LAB_PREFIX}$be" link set eth0 mtu 9000
done

ok=1
be1_ip="$(lab_backend_addr be1)"
# Downloads URL from the client over a new connection; prints the body's sha256 or FAIL.
fetch() {
  in_ns client curl -sS --max-time 10 "$1" -o - 2>/dev/null | sha256sum | cut -d' ' -f1 ||
    echo FAIL
}
# A ping of SIZE bytes of payload, not to be fragmented, from the client to ADDR is answered.
# (Three tries: a noisy machine may lose one.)
ping_ok() { in_ns client ping -c 3 -W 2 -M "do" -s "$1" "$2" >/dev/null 2>&1; }
lab_check "control: the client reaches a backend directly with 8000-byte frames" \
  ping_ok 8000 "$be1_ip" || ok=0
lab_check "control: a direct download of /blob on jumbo frames is intact" \
  test "$(fetch "http://$be1_ip/blob")" = "$want" || ok=0
lab_check "control: the VIP answers a 1400-byte ping" ping_ok 1400 "$LAB_VIP" || ok=0
# ping exits with 1 when no reply came, 2 on any other failure.
no_reply() {
  local rc=0
  in_ns client ping -c 2 -W 1 -M "do" -s "$1" "$2" >/dev/null 2>&1 || rc=$?
  test "$rc" -eq 1
}
lab_check "control: a 3000-byte ping of the VIP is lost before ilb (its link carries 1500)" \
  no_reply 3000 "$LAB_VIP" || ok=0

transfers=12
bad=0
for ((i = 0; i < transfers; i++)); do
  got="$(fetch "http://$LAB_VIP:$LAB_VIP_PORT/blob")"
  [[ "$got" == "$want" ]] || bad=$((bad + 1))
done
lab_check "all $transfers downloads of 2 MiB through the VIP arrive intact" test "$bad" -eq 0 || ok=0

# Uploads too: the client's segments towards the backends are held to the port's MTU as well.
# nginx writes each PUT to its upload directory; the file must arrive whole on some backend.
uploads=4
# shellcheck disable=SC2086 # a list of backends
intact="$(lab_uploads_intact "$LAB_VIP" "$uploads" "$blob" $LAB_BACKENDS)"
lab_check "all $uploads uploads of 2 MiB through the VIP arrive intact" test "$intact" -eq "$uploads" ||
  ok=0

# Both SYNs of every connection (the client's and the backend's) had their MSS lowered; the
# dataplane exports its counters every few hundred milliseconds.
clamped_at_least() {
  test "$(ilbctl_lab --json status | jq '.dataplane.mss_clamped // 0')" -ge "$1"
}
lab_check "ilbctl counts at least $((2 * (transfers + uploads))) clamped SYNs" \
  wait_for "the clamped SYNs in the stats" 15 clamped_at_least $((2 * (transfers + uploads))) ||
  ok=0
lab_check "no datagram was too big for the port" \
  test "$(ilbctl_lab --json status | jq '.dataplane.drops.too_big')" -eq 0 || ok=0
((ok))

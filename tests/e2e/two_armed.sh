#!/usr/bin/env bash
# A two-armed dataplane: the clients on one segment, the backends on another, ilb between them on
# two ports. The lab's segment (br0, 10.99.0.0/24: the three nginx backends, the control plane's
# mgmt0) is the backends' side, port "lan" on dp0; a second bridge (br1, 10.98.0.0/24) carries a
# client namespace "fc" and the port "front" on dp1, which holds the VIP 10.98.0.100:
#
#   ilb-lab-fc eth0 10.98.0.10 ── br1 ── dp1  "front" 10.98.0.2   ilb-lab-lb   "lan" 10.99.0.2  dp0 ── br0 ── be1..3
#
# The two ports use different drivers (net_af_packet for front, net_af_xdp or its fallback for
# lan), as a machine whose NICs differ would. With ILB_E2E_WORKERS=2 (the test
# two_armed_2workers) both have two queues (front: two queue pairs; lan: one AF_XDP device per
# queue, see multi_worker.sh), the kernel spreading each direction's flows over them
# independently: replies that reach the worker that does not own their connection, on the other
# port, are handed over. Every request from the front client must succeed, reach the backends
# from the SNAT address (full NAT across the ports), and both ports must carry traffic; the VIP
# must be announced (ARP) on the front segment only.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
: "${ILB_E2E_WORKERS:=1}"
if ((ILB_E2E_WORKERS == 2)); then
  export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/two_armed_2workers}"
  export LAB_DP_QUEUES=2
  front_device="net_af_packet1,iface=dp1,qpairs=2"
elif ((ILB_E2E_WORKERS == 1)); then
  export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/two_armed}"
  front_device="net_af_packet1,iface=dp1"
else
  echo "two_armed: ILB_E2E_WORKERS must be 1 or 2" >&2
  exit 1
fi
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

readonly FRONT_VIP=10.98.0.100
readonly FRONT_CLIENT=10.98.0.10
readonly SNAT=10.99.0.101

lab_files_dir
# The lab's config with the VIP moved to the front segment and the front port added; with two
# workers, lcore 2 shares CPU 0 with the main lcore and idle workers sleep (as in multi_worker.sh),
# and the buffer pool holds the rings of 2 ports x 2 queues.
rewrite=(-e "s/^vip = \"$LAB_VIP\"$/vip = \"$FRONT_VIP\"/")
if ((ILB_E2E_WORKERS == 2)); then
  rewrite+=(-e 's/^worker_lcores = \[1\]$/worker_lcores = [1, 2]\nworker_cpus = [1, 0]\nidle_sleep_us = 100\nmbuf_count = 16383/')
fi
sed "${rewrite[@]}" "$ILB_SOURCE_DIR/config/lab.toml" |
  awk -v dev="$front_device" '{ print } /^address = "10.99.0.2\/24"$/ {
    print ""
    print "[[dataplane.port]]"
    print "name = \"front\""
    print "device = \"" dev "\""
    print "address = \"10.98.0.2/24\""
  }' >"$LAB_CONFIG"
if ! grep -q "^vip = \"$FRONT_VIP\"$" "$LAB_CONFIG" || ! grep -q '^name = "front"$' "$LAB_CONFIG" ||
  { ((ILB_E2E_WORKERS == 2)) && ! grep -q '^worker_cpus = \[1, 0\]$' "$LAB_CONFIG"; }; then
  echo "two_armed: config/lab.toml no longer has the lines this test rewrites" >&2
  exit 1
fi

lab_up
sw="${LAB_PREFIX}sw"
ip -n "$sw" link add name br1 type bridge stp_state 0 forward_delay 0
ip -n "$sw" link set br1 up
lab_add_ns fc
lab_add_link fc eth0 fc "$ILB_E2E_WORKERS" br1
ip -n "${LAB_PREFIX}fc" addr add "$FRONT_CLIENT/24" dev eth0
ip -n "${LAB_PREFIX}fc" link set eth0 up
lab_add_link lb dp1 lb-dp1 "$ILB_E2E_WORKERS" br1
in_ns lb sysctl -qw net.ipv4.conf.dp1.arp_ignore=1 net.ipv4.conf.dp1.arp_announce=2 >/dev/null
ip -n "${LAB_PREFIX}lb" link set dp1 up
lab_hugepages
lab_start_services

requests=$((ILB_E2E_WORKERS == 2 ? 200 : 40))
parallel=$((ILB_E2E_WORKERS == 2 ? 8 : 1))
results="$LAB_RUN_DIR/requests.txt"
echo "sending $requests requests from $FRONT_CLIENT to $FRONT_VIP:$LAB_VIP_PORT, $parallel at a time, each on a new connection"
lab_parallel_requests fc "http://$FRONT_VIP:$LAB_VIP_PORT/" "$requests" "$parallel" >"$results"
lab_spread "$results"

status="$(ilbctl_lab --json status)"
jq '.dataplane | {ports, lcores, handoff}' <<<"$status"
port_field() { jq -r --arg n "$1" ".dataplane.ports[] | select(.name == \$n) | $2" <<<"$status"; }
# Which backends answered, and the addresses nginx saw the requests come from.
answered="$(grep -c '^be[123]$' "$results" || true)"
backends_used="$(grep '^be[123]$' "$results" | sort -u | wc -l)"
sources="$(cat "$LAB_RUN_DIR"/nginx-be*/access.log 2>/dev/null | awk '{ print $1 }' | sort -u |
  { grep -v "^$LAB_MGMT_IP$" || true; } | tr '\n' ' ')"
echo "request sources seen by the backends (health checks from $LAB_MGMT_IP left out): $sources"

ok=1
lab_check "all $requests requests from the front segment succeeded" test "$answered" -eq "$requests" ||
  ok=0
lab_check "they were spread over more than one backend" test "$backends_used" -ge 2 || ok=0
lab_check "the backends saw them come from the SNAT address only" test "$sources" = "$SNAT " ||
  ok=0
lab_check "the dataplane reports two ports" \
  test "$(jq '.dataplane.ports | length' <<<"$status")" -eq 2 || ok=0
for port in front lan; do
  lab_check "port $port received and sent packets" \
    test "$(port_field "$port" '.rx_packets')" -gt "$requests" -a \
    "$(port_field "$port" '.tx_packets')" -gt "$requests" || ok=0
done
if ((ILB_E2E_WORKERS == 2)); then
  lab_check "the backends' port runs on net_af_xdp (one device per queue)" \
    test "$LAB_DP_MODE" = net_af_xdp || ok=0
  lab_check "both workers received packets" \
    test "$(jq '[.dataplane.lcores[] | select(.worker and .rx_packets > 0)] | length' \
      <<<"$status")" -eq 2 || ok=0
  lab_check "replies that reached the other worker were handed to their owner" \
    test "$(jq '.dataplane.handoff.packets' <<<"$status")" -gt 0 || ok=0
fi
# A host on the backends' segment that routes the VIP onto its link gets no ARP answer for it:
# the VIP lives on the front port's subnet and is announced there only.
in_ns client ip route add "$FRONT_VIP/32" dev eth0
lab_check "the VIP is not announced on the backends' segment" \
  bash -c "! ip netns exec ${LAB_PREFIX}client ping -c 2 -W 1 $FRONT_VIP >/dev/null 2>&1" || ok=0
front_mac="$(ip -n "${LAB_PREFIX}lb" -j link show dp1 | jq -r '.[0].address')"
lab_check "the front client resolved the VIP to the front port's MAC ($front_mac)" \
  bash -c "ip -n ${LAB_PREFIX}fc neigh show $FRONT_VIP | grep -q 'lladdr $front_mac'" || ok=0
((ok))

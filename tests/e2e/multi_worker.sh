#!/usr/bin/env bash
# Two dataplane workers on two queues of the lab's veth: the kernel spreads the flows over both
# queues by hash, independently for each direction, so about half of the backends' replies land
# on the queue of the worker that does not own their connection and must be handed over.
# ILB_E2E_DRIVER picks the port:
#   af_xdp (test multi_worker_af_xdp): net_af_xdp as config/lab.toml has it. With two workers ilb
#     opens one single-queue AF_XDP device per queue of dp0 (port_devices(): DPDK 22.11's
#     net_af_xdp reads a veth's "combined" channel count as 1 and refuses queue_count = 2); the
#     dataplane must run on net_af_xdp, not the lab's net_af_packet fallback.
#   af_packet (test multi_worker, the default): net_af_packet with qpairs = 2 (a
#     PACKET_FANOUT_HASH group).
# Many parallel connections must all succeed, both workers must carry traffic, and the hand-over
# counter must show the ring at work. Worker lcore 2 shares CPU 0 with the main lcore
# (worker_cpus), and idle workers sleep between polls, so the test fits a 2-CPU machine.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
: "${ILB_E2E_DRIVER:=af_packet}"
export LAB_DP_QUEUES=2
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
rewrite=(-e 's/^worker_lcores = \[1\]$/worker_lcores = [1, 2]\nworker_cpus = [1, 0]\nidle_sleep_us = 100/')
case "$ILB_E2E_DRIVER" in
  af_xdp)
    export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/multi_worker_af_xdp}"
    want_mode=net_af_xdp
    ;;
  af_packet)
    export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/multi_worker}"
    rewrite+=(-e 's/^device = "net_af_xdp0,iface=dp0"$/device = "net_af_packet0,iface=dp0,qpairs=2"/')
    want_mode=net_af_packet
    ;;
  *)
    echo "multi_worker: ILB_E2E_DRIVER must be af_xdp or af_packet" >&2
    exit 1
    ;;
esac
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

lab_files_dir
sed "${rewrite[@]}" "$ILB_SOURCE_DIR/config/lab.toml" >"$LAB_CONFIG"
if ! grep -q '^worker_cpus = \[1, 0\]$' "$LAB_CONFIG" ||
  ! grep -q "^device = \"${want_mode}0," "$LAB_CONFIG"; then
  echo "multi_worker: config/lab.toml no longer has the lines this test rewrites" >&2
  exit 1
fi

lab_start_all

requests=400
parallel=16
results="$LAB_RUN_DIR/requests.txt"
echo "sending $requests requests, $parallel at a time, each on a new connection"
lab_parallel_requests client "http://$LAB_VIP:$LAB_VIP_PORT/" "$requests" "$parallel" >"$results"
lab_spread "$results"

status="$(ilbctl_lab --json status)"
jq '.dataplane | {workers, lcores, handoff}' <<<"$status"
ok=1
lab_check "the dataplane runs on $want_mode" test "$LAB_DP_MODE" = "$want_mode" || ok=0
lab_check "all $requests requests got an answer" test "$(wc -l <"$results")" -eq "$requests" || ok=0
lab_check "all $requests requests succeeded" test "$(grep -c '^FAIL' "$results" || true)" -eq 0 ||
  ok=0
lab_check "the dataplane runs 2 workers" test "$(jq '.dataplane.workers' <<<"$status")" -eq 2 ||
  ok=0
lab_check "both workers received packets" \
  test "$(jq '[.dataplane.lcores[] | select(.worker and .rx_packets > 0)] | length' \
    <<<"$status")" -eq 2 || ok=0
lab_check "replies that reached the other worker were handed to their owner" \
  test "$(jq '.dataplane.handoff.packets' <<<"$status")" -gt 0 || ok=0
# The port's counters are its devices' together (with af_xdp: one device per queue), so they
# hold what both workers received, no less and no more (exported a moment apart: within 10 %).
workers_rx="$(jq '[.dataplane.lcores[] | select(.worker) | .rx_packets] | add' <<<"$status")"
port_rx="$(jq '.dataplane.ports[0].rx_packets' <<<"$status")"
lab_check "the port counts the frames of both queues ($port_rx received, the workers $workers_rx)" \
  test $((port_rx * 10)) -ge $((workers_rx * 9)) -a $((port_rx * 10)) -le $((workers_rx * 11)) ||
  ok=0
((ok))

#!/usr/bin/env bash
# Two dataplane workers on two queues of the lab's veth: the kernel spreads the flows over both
# queues by hash, independently for each direction, so about half of the backends' replies land
# on the queue of the worker that does not own their connection and must be handed over.
# The port is net_af_packet with qpairs = 2 (a PACKET_FANOUT_HASH group): DPDK 22.11's net_af_xdp
# reads a veth's channel count as 1 (veth reports RX/TX channels but no "combined" ones) and
# refuses queue_count = 2, so multi-queue AF_XDP needs a NIC or a newer DPDK.
# Many parallel connections must all succeed, both workers must carry traffic, and the hand-over
# counter must show the ring at work. Worker lcore 2 shares CPU 0 with the main lcore
# (worker_cpus), and idle workers sleep between polls, so the test fits a 2-CPU machine.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/multi_worker}"
export LAB_DP_QUEUES=2
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

lab_files_dir
sed -e 's/^worker_lcores = \[1\]$/worker_lcores = [1, 2]\nworker_cpus = [1, 0]\nidle_sleep_us = 100/' \
  -e 's/^device = "net_af_xdp0,iface=dp0"$/device = "net_af_packet0,iface=dp0,qpairs=2"/' \
  "$ILB_SOURCE_DIR/config/lab.toml" >"$LAB_CONFIG"
grep -q '^worker_cpus = \[1, 0\]$' "$LAB_CONFIG" && grep -q 'qpairs=2' "$LAB_CONFIG" || {
  echo "multi_worker: config/lab.toml no longer has the lines this test rewrites" >&2
  exit 1
}

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
((ok))

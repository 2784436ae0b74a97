#!/usr/bin/env bash
# A dataplane started before the control plane waits and forwards nothing (not even ARP for the
# VIP); once the control plane publishes, traffic flows without restarting the dataplane.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/dataplane_first}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

lab_up
lab_hugepages
for be in $LAB_BACKENDS; do lab_start_nginx "$be"; done

bin="$(lab_bin ilb-dataplane)"
log="$LAB_RUN_DIR/dataplane.log"
args=(--config "$LAB_CONFIG")
((LAB_NO_HUGE)) && args+=(--no-huge)
ip netns exec "${LAB_PREFIX}lb" "$bin" "${args[@]}" >"$log" 2>&1 &
LAB_PIDS[dataplane]=$!
dp_waiting() {
  kill -0 "${LAB_PIDS[dataplane]}" 2>/dev/null && grep -q "waiting for the control plane" "$log"
}
if ! wait_for "the dataplane to start without a control plane" 60 dp_waiting; then
  # net_af_xdp unavailable here: the same test on net_af_packet.
  lab_kill_pid "${LAB_PIDS[dataplane]}" TERM 10 || true
  ip -n "${LAB_PREFIX}lb" link set dev dp0 xdp off 2>/dev/null || true
  lab_remove_dpdk_files
  ip netns exec "${LAB_PREFIX}lb" "$bin" "${args[@]}" --port lan=net_af_packet0,iface=dp0 \
    >"$log" 2>&1 &
  LAB_PIDS[dataplane]=$!
  wait_for "the dataplane to start on net_af_packet without a control plane" 60 dp_waiting
fi

ok=1
before="$(lab_requests 3)"
echo "requests before the control plane runs: $(tr '\n' ' ' <<<"$before")"
lab_check "no request is answered while no snapshot is applied" \
  test "$(grep -c '^FAIL' <<<"$before" || true)" -eq 3 || ok=0
lab_check "the dataplane is still running" kill -0 "${LAB_PIDS[dataplane]}" || ok=0

lab_start_controlplane
lab_check "the running dataplane applies the first snapshot and 3 backends come up" \
  lab_wait_ready 3 || ok=0
results="$LAB_RUN_DIR/requests.txt"
lab_requests 30 >"$results"
lab_spread "$results"
lab_check "all 30 requests succeed once the control plane has published" \
  test "$(grep -c '^FAIL' "$results" || true)" -eq 0 || ok=0
((ok))

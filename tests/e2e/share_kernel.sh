#!/usr/bin/env bash
# A net_af_xdp port that shares its interface with the host's kernel (share_with_kernel): the
# balancer namespace's kernel has an address of its own on dp0 (10.99.0.4) and serves HTTP there,
# as a cloud instance's host keeps SSH on its only NIC. With the driver's default XDP program every
# frame of dp0's queue goes to ilb and the host's service is unreachable; with ilb's program the
# host's service answers while ilb serves its VIP on the same interface. A VIP added by a reload
# must reach ilb too (the program's address map follows the config), and one removed must reach
# the kernel again once its connections' longest timeout has passed (the test gives that service
# 2 s). A dataplane killed with SIGKILL leaves its program on dp0; the next one removes it and
# starts.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/share_kernel}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

readonly HOST_IP=10.99.0.4
readonly HOST_PORT=9090
readonly SECOND_VIP=10.99.0.105

lab_files_dir
awk '{ print } /^address = "10.99.0.2\/24"$/ { print "share_with_kernel = true" }' \
  "$ILB_SOURCE_DIR/config/lab.toml" >"$LAB_CONFIG"
grep -q '^share_with_kernel = true$' "$LAB_CONFIG" || {
  echo "share_kernel: config/lab.toml no longer has the line this test extends" >&2
  exit 1
}

lab_up
lab_hugepages
# The host's own address and service on the dataplane's interface.
ip -n "${LAB_PREFIX}lb" addr add "$HOST_IP/24" dev dp0
mkdir -p "$LAB_FILES/www"
echo host >"$LAB_FILES/www/index.html"
ip netns exec "${LAB_PREFIX}lb" python3 -m http.server --bind "$HOST_IP" --directory "$LAB_FILES/www" \
  "$HOST_PORT" >"$LAB_RUN_DIR/host-http.log" 2>&1 &
# shellcheck disable=SC2034 # LAB_PIDS (lab.sh) is how lab_down finds what to stop
LAB_PIDS["host-http"]=$!
lab_start_services
[[ "$LAB_DP_MODE" == net_af_xdp ]] || {
  echo "share_kernel: the dataplane did not come up on net_af_xdp ($LAB_DP_MODE)" >&2
  exit 1
}

host_answers() {
  [[ "$(in_ns client curl -sS --max-time "$LAB_CURL_MAX_TIME" "http://$HOST_IP:$HOST_PORT/")" == host ]]
}
vip_answers() {  # VIP: an answer from one of the backends
  [[ "$(in_ns client curl -sS --max-time "$LAB_CURL_MAX_TIME" "http://$1:$LAB_VIP_PORT/")" == be[123] ]]
}
vips_answer() {  # VIP N: N requests, every one answered by a backend
  local i
  for ((i = 0; i < $2; i++)); do vip_answers "$1" || return 1; done
}

ok=1
prog="$(ip -n "${LAB_PREFIX}lb" link show dp0 | sed -n 's/.*prog\/xdp id [0-9]* name \([^ ]*\).*/\1/p')"
echo "XDP program on dp0: ${prog:-none}"
lab_check "dp0 runs ilb's own XDP program" test "$prog" = ilb_share || ok=0
lab_check "the host's own service on dp0 answers" wait_for "the host's service" 10 host_answers ||
  ok=0
lab_check "20 requests to the VIP on the same interface all succeed" vips_answer "$LAB_VIP" 20 ||
  ok=0

# A second service on a new VIP, by reload: the program must start handing its frames to ilb.
gen="$(lab_published_gen)"
sed -e "s/^name = \"web\"$/name = \"web2\"/" -e "s/^vip = \"$LAB_VIP\"$/vip = \"$SECOND_VIP\"/" \
  -e 's/^scheduler = "maglev"$/scheduler = "maglev"\ntcp_syn_timeout = "2s"\ntcp_established_timeout = "2s"\ntcp_fin_timeout = "2s"\nudp_timeout = "2s"/' \
  "$ILB_SOURCE_DIR/config/lab.toml" | awk '/^\[\[service\]\]$/ { on = 1 } on' >"$LAB_FILES/second.toml"
grep -q '^tcp_established_timeout = "2s"$' "$LAB_FILES/second.toml" || {
  echo "share_kernel: config/lab.toml no longer has the service lines this test rewrites" >&2
  exit 1
}
cp "$LAB_CONFIG" "$LAB_FILES/one.toml"
cat "$LAB_FILES/one.toml" "$LAB_FILES/second.toml" >"$LAB_CONFIG"
ilbctl_lab reload
lab_wait_applied "$gen"
lab_check "a VIP added by a reload reaches ilb" wait_for "the new VIP" 10 vips_answer "$SECOND_VIP" 5 ||
  ok=0
# And removed again: once its connections' timeout (2 s) has passed its frames go to the kernel,
# which now has the address and serves it.
gen="$(lab_published_gen)"
cp "$LAB_FILES/one.toml" "$LAB_CONFIG"
ilbctl_lab reload
lab_wait_applied "$gen"
ip -n "${LAB_PREFIX}lb" addr add "$SECOND_VIP/32" dev dp0
ip netns exec "${LAB_PREFIX}lb" python3 -m http.server --bind "$SECOND_VIP" --directory "$LAB_FILES/www" \
  "$LAB_VIP_PORT" >"$LAB_RUN_DIR/host-http2.log" 2>&1 &
# shellcheck disable=SC2034 # LAB_PIDS (lab.sh) is how lab_down finds what to stop
LAB_PIDS["host-http2"]=$!
host_has_second() {
  [[ "$(in_ns client curl -sS --max-time 2 "http://$SECOND_VIP:$LAB_VIP_PORT/")" == host ]]
}
lab_check "a VIP removed by a reload reaches the kernel once its timeout has passed" \
  wait_for "the kernel to get the removed VIP" 20 host_has_second || ok=0
lab_check "the host's service still answers" host_answers || ok=0
lab_check "the first VIP still answers" vips_answer "$LAB_VIP" 5 || ok=0

# A dataplane that does not stop cleanly leaves its program attached; the next one removes it.
lab_kill_pid "${LAB_PIDS[dataplane]}" KILL 10
unset "LAB_PIDS[dataplane]"
prog="$(ip -n "${LAB_PREFIX}lb" link show dp0 | sed -n 's/.*prog\/xdp id [0-9]* name \([^ ]*\).*/\1/p')"
echo "XDP program on dp0 after SIGKILL: ${prog:-none}"
lab_remove_dpdk_files
lab_start_dataplane
lab_wait_ready 3
lab_check "a dataplane started after a SIGKILL removed the program left behind" \
  grep -q "removed the XDP program a previous run left" "$LAB_RUN_DIR/dataplane-af_xdp.log" || ok=0
lab_check "the host's service answers after the restart" wait_for "the host's service" 10 \
  host_answers || ok=0
lab_check "the VIP answers after the restart" vips_answer "$LAB_VIP" 5 || ok=0
((ok))

#!/usr/bin/env bash
# A restarted dataplane has forgotten every connection. With the default `untracked_tcp = "drop"`
# a client's next request on its old keep-alive connection gets no answer at all (the client
# times out); after `ilbctl reload` of a config with `untracked_tcp = "reset"`, the same situation
# ends at once with the client's connection reset (ECONNRESET), counted as an untracked reset.
# Either way new connections work as soon as the restarted dataplane has applied its snapshot.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/dataplane_restart}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

lab_up
lab_hugepages
for be in $LAB_BACKENDS; do lab_start_nginx "$be"; done
# A copy of the lab's config: the test edits it for the reload.
export LAB_CONFIG="$LAB_RUN_DIR/ilb.toml"
cp "$ILB_SOURCE_DIR/config/lab.toml" "$LAB_CONFIG"
lab_start_controlplane
lab_start_dataplane
lab_wait_ready 3

ok=1
restart_dataplane() {
  echo "restarting ilb-dataplane"
  lab_kill_pid "${LAB_PIDS[dataplane]}" TERM 10
  unset "LAB_PIDS[dataplane]"
  lab_remove_dpdk_files
  lab_start_dataplane && lab_wait_ready 3
}
untracked_resets() { lab_status_field '.dataplane.replies.untracked_resets'; }

# Opens a keep-alive connection, restarts the dataplane under it and sets `got` to what the
# connection's next request got (the keep-alive client's line: "ERROR <exception>: ..." once it
# failed). Not in a subshell: the lab's cleanup must know the new dataplane's pid.
got=""
request_across_restart() {
  local first
  got="not run"
  lab_keepalive_open
  first="$(lab_keepalive_get)" || return 1
  echo "keep-alive connection before the restart: $first"
  restart_dataplane || return 1
  echo get >&"${LAB_KA[1]}" || return 1
  IFS= read -r -t 20 got <&"${LAB_KA[0]}" || got="no answer from the keep-alive client"
  lab_keepalive_close
}

echo "== untracked_tcp = \"drop\" (the default)"
request_across_restart || ok=0
echo "the old connection's next request: $got"
lab_check "the request on the forgotten connection times out (dropped, no reset)" \
  grep -q '^ERROR TimeoutError' <<<"$got" || ok=0
lab_check "no untracked reset is counted" test "$(untracked_resets)" = 0 || ok=0
results="$LAB_RUN_DIR/requests-drop.txt"
lab_requests 10 >"$results"
lab_check "new connections work after the restart" \
  test "$(grep -c '^FAIL' "$results" || true)" -eq 0 || ok=0

echo "== untracked_tcp = \"reset\", by ilbctl reload"
sed -i 's/^\[\[service\]\]$/[[service]]\nuntracked_tcp = "reset"/' "$LAB_CONFIG"
grep -q '^untracked_tcp = "reset"' "$LAB_CONFIG" || {
  echo "could not add untracked_tcp to $LAB_CONFIG" >&2
  exit 1
}
gen="$(lab_published_gen)"
ilbctl_lab reload
lab_wait_applied "$gen"
request_across_restart || ok=0
echo "the old connection's next request: $got"
lab_check "the request on the forgotten connection is reset at once" \
  grep -q '^ERROR ConnectionResetError' <<<"$got" || ok=0
lab_check "the reset is counted" test "$(untracked_resets)" -ge 1 || ok=0
results="$LAB_RUN_DIR/requests-reset.txt"
lab_requests 10 >"$results"
lab_check "new connections work after the restart" \
  test "$(grep -c '^FAIL' "$results" || true)" -eq 0 || ok=0
((ok))

#!/usr/bin/env bash
# Broken copies of config/lab.toml are rejected with one message naming the file, the line and the
# key: by `ilb-controlplane --check`, at startup, and by `ilbctl reload`, which leaves the running
# configuration (and the traffic) untouched.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/bad_config}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
good_config="$ILB_SOURCE_DIR/config/lab.toml"
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

cp_bin="$(lab_bin ilb-controlplane)"
mutations=(port_zero unknown_key duplicate_vip_port bad_address missing_backends)
ok=1

# Breaks a copy of the good file with MUTATION into FILE; prints "LINE KEY".
break_config() {
  python3 "$ILB_SOURCE_DIR/tests/e2e/break_config.py" "$1" "$good_config" "$2"
}

# True if OUTPUT names FILE, LINE and KEY the way ilb::ConfigError does ("FILE:LINE:COL: KEY: ").
names_location() {
  local output="$1" file="$2" line="$3" key="$4"
  grep -qF -- "$file:$line:" <<<"$output" && grep -qF -- "$key" <<<"$output"
}

lab_up
mkdir -p "$LAB_RUN_DIR/broken"

for m in "${mutations[@]}"; do
  file="$LAB_RUN_DIR/broken/$m.toml"
  where="$(break_config "$m" "$file")"
  read -r line key <<<"$where"
  echo "-- $m: expecting $file:$line: $key"

  status=0
  output="$("$cp_bin" --config "$file" --check 2>&1)" || status=$?
  echo "   --check exit $status: $output"
  lab_check "--check rejects $m" test "$status" -ne 0 || ok=0
  lab_check "--check names file, line $line and key $key" \
    names_location "$output" "$file" "$line" "$key" || ok=0

  # Startup runs in the balancer's namespace, like the real control plane; `timeout` catches a
  # control plane that starts on a broken file instead of refusing it.
  status=0
  output="$(timeout 20 ip netns exec "${LAB_PREFIX}lb" "$cp_bin" --config "$file" 2>&1)" ||
    status=$?
  echo "   startup exit $status: $(tail -n 1 <<<"$output")"
  lab_check "startup refuses $m" test "$status" -ne 0 -a "$status" -ne 124 || ok=0
  lab_check "startup names file, line $line and key $key" \
    names_location "$output" "$file" "$line" "$key" || ok=0
done

# The reload: the control plane runs on a copy that is then broken on disk.
export LAB_CONFIG="$LAB_RUN_DIR/lab.toml"
cp "$good_config" "$LAB_CONFIG"
lab_start_services

backends_view() {
  ilbctl_lab --json backends web | jq -S 'map({address, port, health, admin}) | sort_by(.address)'
}
before="$(backends_view)"

where="$(break_config port_zero "$LAB_CONFIG")"
read -r line key <<<"$where"
echo "-- broke $LAB_CONFIG on disk (port_zero): expecting $LAB_CONFIG:$line: $key"
status=0
output="$(ilbctl_lab reload 2>&1)" || status=$?
echo "   ilbctl reload exit $status: $output"
lab_check "ilbctl reload fails on the broken file" test "$status" -ne 0 || ok=0
lab_check "ilbctl reload names file, line $line and key $key" \
  names_location "$output" "$LAB_CONFIG" "$line" "$key" || ok=0

results="$LAB_RUN_DIR/requests-after-bad-reload.txt"
lab_requests 100 >"$results"
lab_spread "$results"
lab_check "100 requests after the failed reload all succeeded" \
  test "$(grep -c '^FAIL' "$results" || true)" -eq 0 || ok=0
after="$(backends_view)"
lab_check "ilbctl backends web is unchanged by the failed reload" test "$before" = "$after" || {
  diff <(echo "$before") <(echo "$after") || true
  ok=0
}

cp "$good_config" "$LAB_CONFIG"
lab_check "ilbctl reload accepts the repaired file" ilbctl_lab reload || ok=0
lab_check "ilbctl backends web is unchanged by a reload of the same file" \
  test "$before" = "$(backends_view)" || ok=0
((ok))

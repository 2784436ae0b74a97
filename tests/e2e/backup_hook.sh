#!/usr/bin/env bash
# Backup backends and hooks: with be1 the only primary and be2, be3 backups (backup_policy
# "first"), every request goes to be1; when be1's nginx stops, be2 alone takes over (not be3) and
# no request fails once be1 is marked down; when be1 returns it gets everything back. The
# configured hook runs for both health changes of be1 and for both service-mode switches, with
# the event in its environment.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/backup_hook}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

slack_s=15
# Beside LAB_RUN_DIR, which lab_up empties.
files="$LAB_RUN_DIR.files"
rm -rf "$files"
mkdir -p "$files"
hook_log="$files/hook.log"
hook="$files/hook.sh"
cat >"$hook" <<EOF
#!/bin/sh
echo "\$ILB_EVENT|\$ILB_SERVICE|\$ILB_BACKEND|\$ILB_OLD_STATE|\$ILB_NEW_STATE|\$ILB_REASON" >>"$hook_log"
EOF
chmod 755 "$hook"

# The lab's configuration with the hook and be2, be3 as backups.
export LAB_CONFIG="$files/lab.toml"
/usr/bin/python3 - "$ILB_SOURCE_DIR/config/lab.toml" "$LAB_CONFIG" "$hook" <<'EOF'
import sys
text = open(sys.argv[1]).read()
anchor = 'log_level = "info"\n'
assert anchor in text
text = text.replace(anchor, anchor + 'hook = ["%s"]\nhook_timeout = "5s"\n' % sys.argv[3], 1)
parts = text.split("[[service.backend]]")
assert len(parts) == 4
for i in (2, 3):
    parts[i] = parts[i].replace("weight = 100\n", "weight = 100\nbackup = true\n", 1)
open(sys.argv[2], "w").write("[[service.backend]]".join(parts))
EOF

lab_start_all
read -r interval_ms fall rise timeout_ms < <(lab_health_params)
down_deadline_s=$(((interval_ms * fall + timeout_ms + 999) / 1000 + slack_s))
up_deadline_s=$(((interval_ms * rise + timeout_ms + 999) / 1000 + slack_s))
be1="$(lab_backend_addr be1)"
health_is() { [[ "$(lab_backend_field "$be1" .health)" == "$1" ]]; }
hook_saw() { grep -qF -- "$1" "$hook_log" 2>/dev/null; }
only() {  # only FILE BE: every line of FILE is BE
  [[ "$(grep -c . "$1")" -gt 0 && "$(grep -cvx "$2" "$1" || true)" -eq 0 ]]
}

ok=1
results="$LAB_RUN_DIR/requests-primary.txt"
lab_requests 30 >"$results"
lab_spread "$results"
lab_check "with the primary up, all 30 requests went to be1" only "$results" be1 || ok=0
lab_check "ilbctl shows be2 on standby as a backup" \
  test "$(lab_backend_field "$(lab_backend_addr be2)" '.state + " " + (.backup|tostring)')" \
  = "standby true" || ok=0

echo "stopping nginx on be1"
gen="$(lab_published_gen)"
lab_stop_nginx be1
lab_check "be1 reported down within ${down_deadline_s} s" \
  wait_for "be1 to be reported down" "$down_deadline_s" health_is down || ok=0
lab_wait_applied "$gen"
results="$LAB_RUN_DIR/requests-backup.txt"
lab_requests 30 >"$results"
lab_spread "$results"
lab_check "with the primary down, all 30 requests went to the first backup, be2" \
  only "$results" be2 || ok=0
lab_check "services show mode backups" \
  test "$(ilbctl_lab --json services | jq -r '.[] | select(.name == "web") | .mode')" \
  = backups || ok=0
lab_check "the hook ran for be1 going down" \
  wait_for "the hook's health event" 10 hook_saw "health|web|$be1:80|up|down|" || ok=0
lab_check "the hook ran for the switch to the backups" \
  wait_for "the hook's service event" 10 hook_saw "service|web||primaries|backups|" || ok=0

echo "starting nginx on be1 again"
gen="$(lab_published_gen)"
lab_start_nginx be1
lab_check "be1 reported up within ${up_deadline_s} s" \
  wait_for "be1 to be reported up" "$up_deadline_s" health_is up || ok=0
lab_wait_applied "$gen"
results="$LAB_RUN_DIR/requests-back.txt"
lab_requests 30 >"$results"
lab_spread "$results"
lab_check "with the primary back, all 30 requests went to be1 again" only "$results" be1 || ok=0
lab_check "the hook ran for be1 coming back" \
  wait_for "the hook's health event" 10 hook_saw "health|web|$be1:80|down|up|" || ok=0
lab_check "the hook ran for the switch back to the primaries" \
  wait_for "the hook's service event" 10 hook_saw "service|web||backups|primaries|" || ok=0
echo "hook log:"
sed 's/^/  /' "$hook_log"
((ok))

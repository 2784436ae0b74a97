#!/usr/bin/env bash
# Installs the dependencies, builds ilb and runs the test suites: tools/test.sh [SUITE...]
# (default: unit pcap e2e asan). Each suite is one `meson test --suite` run; `asan` is the unit and
# pcap suites again in a second build with AddressSanitizer and UndefinedBehaviorSanitizer. The
# script exits non-zero if any of them fails and ends with meson's summary and one
# "N passed, N failed" line over all suites.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ILB_SOURCE_DIR="$repo"
export ILB_BUILD_DIR="${ILB_BUILD_DIR:-$repo/build}"
suites=("$@")
((${#suites[@]} > 0)) || suites=(unit pcap e2e asan)
asan_build="$ILB_BUILD_DIR-asan"

"$repo/tools/install-deps.sh"
"$repo/tools/build.sh" "$ILB_BUILD_DIR"
if [[ " ${suites[*]} " == *" asan "* ]]; then
  ILB_MESON_ARGS="-Db_sanitize=address,undefined -Db_lundef=false" \
    "$repo/tools/build.sh" "$asan_build"
fi

# The pcap and e2e suites start the dataplane; it falls back to --no-huge by itself when no
# hugepages can be reserved, so this only prepares them.
# shellcheck source=lab/lab.sh
source "$repo/tools/lab/lab.sh"
lab_hugepages

passed=0
failed=0
skipped=0
failed_suites=()
log="$(mktemp /tmp/ilb-test.XXXXXX)"
trap 'rm -f "$log"' EXIT

# Adds the counts of meson's summary block in $log to the totals.
count() {
  local key="$1"
  awk -v k="$key" -F: '$1 == k { gsub(/ /, "", $2); n += $2 } END { print n + 0 }' "$log"
}

for suite in "${suites[@]}"; do
  echo "== suite $suite"
  status=0
  if [[ "$suite" == asan ]]; then
    # The pcap cases run the sanitized daemons and fail on any sanitizer report in their logs.
    ILB_BUILD_DIR="$asan_build" UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      meson test -C "$asan_build" --print-errorlogs --suite unit --suite pcap 2>&1 |
      tee "$log" || status=$?
  else
    meson test -C "$ILB_BUILD_DIR" --print-errorlogs --suite "$suite" 2>&1 | tee "$log" ||
      status=$?
  fi
  suite_failed=$(($(count Fail) + $(count "Unexpected Pass") + $(count Timeout)))
  passed=$((passed + $(count Ok) + $(count "Expected Fail")))
  skipped=$((skipped + $(count Skipped)))
  if ((status != 0)); then
    failed_suites+=("$suite")
    # meson failed before running any test (e.g. the build broke): count the suite as one failure.
    ((suite_failed > 0)) || suite_failed=1
  fi
  failed=$((failed + suite_failed))
done

if ((${#failed_suites[@]} > 0)); then
  echo "test: failed suites: ${failed_suites[*]}"
fi
echo "test: $passed passed, $failed failed, $skipped skipped"
((${#failed_suites[@]} == 0))

#!/usr/bin/env bash
# The end-to-end benchmark's short version (tools/bench/e2e/run --quick --soak 60s): every path
# (direct, ilb, haproxy, nftables) carries every workload (sysbench point select and read-only at
# two connection counts, memcached through twemproxy, redis, HTTP) with real servers and clients,
# answers correctly and fails no request; the soak through ilb fails no request and leaves the
# daemons' memory flat; MariaDB blocked no host. Speed is reported by the tool, never asserted.
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
for tool in sysbench memcaslap wrk nutcracker haproxy mariadbd redis-server gnuplot; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (tools/install-deps.sh)"; exit 77; }
done
out="$ILB_BUILD_DIR/e2e-lab/bench_e2e"
rm -rf "$out"
status=0
"$ILB_SOURCE_DIR/tools/bench/e2e/run" --quick --skip-build --soak 60s --out "$out" || status=$?

ok=1
check() {
  local desc="$1"
  shift
  if "$@"; then echo "PASS: $desc"; else echo "FAIL: $desc"; ok=0; fi
}
results="$out/results.json"
check "the benchmark exited 0 (no failed request, no failed client, no blocked host)" \
  test "$status" -eq 0
check "it wrote results.json, table.md and chart.png" \
  test -s "$results" -a -s "$out/table.md" -a -s "$out/chart.png"
[[ -s "$results" ]] || exit 1
# 2 MySQL workloads x 2 steps + memcached + redis + http, each through 4 paths.
check "28 measurements: every workload and step through every path" \
  test "$(jq '[.records[] | "\(.workload) \(.conns) \(.path)"] | unique | length' "$results")" -eq 28
check "every measurement completed with a throughput and no failed request" \
  test "$(jq '[.records[] | select(.ok and .ops_per_s > 0 and .failed_requests == 0)] | length' \
    "$results")" -eq 28
check "every measurement has p99 and p999 latencies" \
  test "$(jq '[.records[] | select(.p99_ms != null and .p999_ms != null)] | length' "$results")" \
    -eq 28
check "ilb's measurements carry the workers' busy share" \
  test "$(jq '[.records[] | select(.path == "ilb" and .ilb_worker_busy_pct > 0)] | length' \
    "$results")" -eq 7
check "the soak ran 60 s through ilb without a failed request" \
  test "$(jq '.soak.failed_requests_total' "$results")" -eq 0 -a \
    "$(jq '.soak.rates.mysql_qps > 0 and .soak.rates.http_rps > 0' "$results")" == true
check "the balancer's memory stayed flat during the soak" \
  test "$(jq '.soak.memory_flat' "$results")" == true
check "MariaDB blocked no host" \
  test "$(jq '[.host_cache.hosts[] | select(.blocked_errors > 0)] | length' "$results")" -eq 0
cat "$out/table.md"
((ok))

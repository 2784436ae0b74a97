#!/usr/bin/env python3
"""Turns the raw output of one measurement of tools/bench/e2e/run into one JSON line.

Clients: sysbench (MySQL), memaslap (memcached through twemproxy), redis-benchmark and wrk
(three processes each, one per backend or all at the balancer; their throughputs add up and the
slowest process's percentiles are taken). With --soak, summarises a soak directory instead.
Only the standard library: it runs on the Debian python3 the lab already needs.
"""

import argparse
import json
import re
import sys


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def number(pattern, text, default=None):
    m = re.search(pattern, text, re.MULTILINE)
    return float(m.group(1)) if m else default


def percentile_from_buckets(buckets, q):
    """buckets: [(upper_bound, count)] ascending; the bound holding quantile q."""
    total = sum(c for _, c in buckets)
    if total == 0:
        return None
    need = q * total
    seen = 0
    for bound, count in buckets:
        seen += count
        if seen >= need:
            return bound
    return buckets[-1][0]


# --- sysbench -------------------------------------------------------------------------------


def parse_sysbench(text, first_window):
    r = {"client": "sysbench"}
    r["ops_per_s"] = number(r"^\s*queries:\s+\d+\s+\(([\d.]+) per sec\.\)", text)
    r["transactions_per_s"] = number(r"^\s*transactions:\s+\d+\s+\(([\d.]+) per sec\.\)", text)
    errors = number(r"^\s*ignored errors:\s+(\d+)", text, 0)
    fatal = len(re.findall(r"FATAL", text))
    r["failed_requests"] = int(errors) + fatal
    r["reconnects"] = int(number(r"^\s*reconnects:\s+(\d+)", text, 0))
    r["p99_ms"] = number(r"^\s*99th percentile:\s+([\d.]+)", text)
    # --histogram: "value |**** count" lines, value = upper bound of the bucket in ms.
    buckets = [(float(v), int(c)) for v, c in
               re.findall(r"^\s*([\d.]+)\s+\|\**\s+(\d+)\s*$", text, re.MULTILINE)]
    r["p999_ms"] = percentile_from_buckets(buckets, 0.999)
    if r["p99_ms"] is None:
        r["p99_ms"] = percentile_from_buckets(buckets, 0.99)
    # --report-interval=1: the first seconds on their own.
    qps = [float(q) for q in re.findall(r"^\[ *\d+s \].* qps: ([\d.]+)", text, re.MULTILINE)]
    r["first_window_ops_per_s"] = (sum(qps[:first_window]) / first_window
                                   if len(qps) >= first_window else None)
    return r


# --- memaslap -------------------------------------------------------------------------------


def parse_memaslap(text, first_window):
    r = {"client": "memaslap"}
    r["ops_per_s"] = number(r"^Run time: [\d.]+s Ops: \d+ TPS: (\d+)", text)
    # Periodic "Total Statistics" blocks: the Global line at first_window seconds.
    first = None
    in_total = False
    for line in text.splitlines():
        if line.startswith("Total Statistics") and "(" not in line:
            in_total = True
        elif in_total and line.startswith("Global"):
            f = line.split()
            if int(f[1]) == first_window:
                first = int(f[2]) / first_window
            in_total = False
    r["first_window_ops_per_s"] = first
    # The final "Total Statistics (N events)" block: Log2 Dist rows "k: c0 c1 c2 c3", count ci
    # of latencies in [2^(k+i), 2^(k+i+1)) us. Percentiles are interpolated within the bucket on
    # a log scale (a factor-2 bucket is too coarse to quote as is).
    block = text.split("Total Statistics (")[-1] if "Total Statistics (" in text else ""
    buckets = []
    for k, counts in re.findall(r"^\s+(\d+):((?:\s+\d+)+)\s*$", block, re.MULTILINE):
        for i, c in enumerate(counts.split()):
            buckets.append((int(k) + i, int(c)))
    total = sum(c for _, c in buckets)

    def q(p):
        if total == 0:
            return None
        need, seen = p * total, 0
        for e, c in buckets:
            if c and seen + c >= need:
                frac = (need - seen) / c
                return 2 ** (e + frac) / 1000.0
            seen += c
        return None

    r["p99_ms"] = q(0.99)
    r["p999_ms"] = q(0.999)
    r["latency_note"] = "interpolated in memaslap's log2 histogram"
    errors = [l for l in text.splitlines()
              if re.search(r"error|fail|refused|reset", l, re.IGNORECASE)]
    r["failed_requests"] = len(errors)
    r["error_lines"] = errors[:5]
    return r


# --- redis-benchmark ------------------------------------------------------------------------


def parse_redis_one(first, main):
    r = {}
    progress = re.findall(r"rps=[\d.]+ \(overall: ([\d.]+)\)", first.replace("\r", "\n"))
    r["first"] = float(progress[-1]) if progress else None
    r["rate"] = number(r"throughput summary: ([\d.]+) requests per second", main)
    m = re.search(r"avg\s+min\s+p50\s+p95\s+p99\s+max\s*\n\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+"
                  r"([\d.]+)\s+([\d.]+)\s+([\d.]+)", main)
    r["p99_ms"] = float(m.group(5)) if m else None
    pct = [(float(p), float(v)) for p, v in
           re.findall(r"^([\d.]+)% <= ([\d.]+) milliseconds", main, re.MULTILINE)]
    r["p999_ms"] = next((v for p, v in pct if p >= 99.9), None)
    errors = [l for l in main.replace("\r", "\n").splitlines()
              if re.search(r"error|could not connect|reset", l, re.IGNORECASE)]
    r["errors"] = errors
    return r


def parse_wrk_one(first, main):
    def doc(text):
        m = re.search(r"^WRK_JSON (\{.*\})$", text, re.MULTILINE)
        return json.loads(m.group(1)) if m else None

    r = {}
    f, d = doc(first), doc(main)
    r["first"] = f["requests"] / (f["duration_us"] / 1e6) if f and f["duration_us"] else None
    if d is None:
        r.update(rate=None, p99_ms=None, p999_ms=None, errors=["no wrk summary"])
        return r
    r["rate"] = d["requests"] / (d["duration_us"] / 1e6) if d["duration_us"] else None
    r["p99_ms"] = d["p99_us"] / 1000.0
    r["p999_ms"] = d["p999_us"] / 1000.0
    errs = sum(d["errors"].values()) + (sum(f["errors"].values()) if f else 0)
    r["errors"] = ["wrk errors %s" % d["errors"]] * (1 if errs else 0)
    r["error_count"] = errs
    return r


def combine(parts, client):
    r = {"client": client, "processes": len(parts)}
    rates = [p["rate"] for p in parts]
    r["ops_per_s"] = sum(rates) if all(x is not None for x in rates) else None
    firsts = [p["first"] for p in parts]
    r["first_window_ops_per_s"] = sum(firsts) if all(x is not None for x in firsts) else None
    for key in ("p99_ms", "p999_ms"):
        vals = [p[key] for p in parts if p.get(key) is not None]
        r[key] = max(vals) if len(vals) == len(parts) else None
    r["failed_requests"] = sum(p.get("error_count", len(p["errors"])) for p in parts)
    r["error_lines"] = [e for p in parts for e in p["errors"]][:5]
    return r


def measurement(a):
    fw = a.first_window
    if a.workload in ("point_select", "read_only"):
        r = parse_sysbench(read(a.raw + ".sysbench"), fw)
    elif a.workload == "memcached":
        r = parse_memaslap(read(a.raw + ".memaslap"), fw)
    elif a.workload == "redis":
        r = combine([parse_redis_one(read("%s.%d.first" % (a.raw, i)),
                                     read("%s.%d.main" % (a.raw, i))) for i in range(3)],
                    "redis-benchmark")
    else:
        r = combine([parse_wrk_one(read("%s.%d.first" % (a.raw, i)),
                                   read("%s.%d.main" % (a.raw, i))) for i in range(3)], "wrk")
    rec = {"workload": a.workload, "path": a.path, "conns": a.conns, "round": a.round}
    rec.update(r)
    rec["exit_status"] = a.status
    t0, t1 = float(a.elapsed[0]), float(a.elapsed[1])
    rec["elapsed_s"] = round(t1 - t0, 3)
    def busy(before, after):
        b0, n0 = (int(x) for x in before.split())
        b1, n1 = (int(x) for x in after.split())
        return round(100.0 * (b1 - b0) / (n1 - n0), 1) if n1 > n0 else None

    rec["balancer_cpu_busy_pct"] = busy(*a.cpu)
    # The clients' and servers' CPUs: at 100 % they, not the path, set the pace.
    rec["host_cpu_busy_pct"] = busy(*a.host_cpu) if a.host_cpu else None
    c0, hz0 = (int(x) for x in a.ilb_busy[0].split())
    c1, _ = (int(x) for x in a.ilb_busy[1].split())
    rec["ilb_worker_busy_pct"] = (round(100.0 * (c1 - c0) / hz0 / (t1 - t0), 1)
                                  if a.path == "ilb" and hz0 > 0 and t1 > t0 else None)
    # ilb's drop counters (every reason, and the port's misses) over the measurement, any path.
    rec["ilb_drops"] = int(a.ilb_drops[1]) - int(a.ilb_drops[0])
    # TCP retransmissions by the client and the servers: lost packets anywhere on the path.
    r0, t0_ = (int(x) for x in a.retransmits[0].split())
    r1, t1_ = (int(x) for x in a.retransmits[1].split())
    rec["tcp_retransmits"] = r1 - r0
    rec["tcp_timeouts"] = t1_ - t0_
    rec["ok"] = (a.status == 0 and rec["failed_requests"] == 0 and rec["ops_per_s"] is not None
                 and rec["ops_per_s"] > 0)
    return rec


# --- soak -----------------------------------------------------------------------------------


def kv(text):
    out = {}
    for item in text.split():
        k, _, v = item.partition("=")
        if v:
            out[k.rstrip(":")] = int(v)
    return out


def soak(a):
    d = a.soak
    sb = parse_sysbench(read(d + "/sysbench"), 1)
    ms = parse_memaslap(read(d + "/memaslap"), 10)
    wrk = parse_wrk_one("", read(d + "/wrk"))
    redis = kv(read(d + "/redis.summary"))
    redis_requests = redis.get("runs", 0) * a.redis_requests_per_run
    failed = {
        "mysql": sb["failed_requests"],
        "memcached": ms["failed_requests"],
        "http": wrk.get("error_count", len(wrk["errors"])),
        "redis_runs": redis.get("failed", 1),
    }
    mem0, mem1 = kv(a.mem[0]), kv(a.mem[1])
    cp0, cp1 = kv(a.cp_mem[0]), kv(a.cp_mem[1])
    tcp0, tcp1 = kv(a.tcp[0]), kv(a.tcp[1])
    growth_kb = mem1.get("VmRSS", 0) - mem0.get("VmRSS", 0)
    cp_growth_kb = cp1.get("VmRSS", 0) - cp0.get("VmRSS", 0)
    # Flat: the resident set grew by less than 2 MiB and the hugepage mappings did not change.
    flat = (growth_kb < 2048 and cp_growth_kb < 2048
            and mem0.get("HugetlbPages", 0) == mem1.get("HugetlbPages", 0))
    out = {
        "seconds": a.seconds,
        "rates": {"mysql_qps": sb["ops_per_s"], "memcached_ops_per_s": ms["ops_per_s"],
                  "http_rps": wrk["rate"], "redis_runs": redis.get("runs", 0),
                  "redis_requests_per_s": round(redis_requests / a.seconds, 1)},
        "failed_requests": failed,
        "failed_requests_total": sum(failed.values()),
        "connection_resets": {
            "client_tcp": {k: tcp1.get(k, 0) - tcp0.get(k, 0) for k in tcp1},
            "ilb_backend_resets": int(a.resets[1]) - int(a.resets[0]),
        },
        "ilb_drops": int(a.drops[1] or 0) - int(a.drops[0] or 0),
        "memory_kb": {"dataplane": {"start": mem0, "end": mem1, "rss_growth": growth_kb},
                      "controlplane": {"start": cp0, "end": cp1, "rss_growth": cp_growth_kb}},
        "memory_flat": flat,
        "exit_status": a.status,
    }
    out["ok"] = out["failed_requests_total"] == 0 and a.status == 0 and flat
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--workload")
    p.add_argument("--path")
    p.add_argument("--conns", type=int)
    p.add_argument("--round", type=int)
    p.add_argument("--raw")
    p.add_argument("--status", type=int, default=0)
    p.add_argument("--elapsed", nargs=2)
    p.add_argument("--cpu", nargs=2)
    p.add_argument("--host-cpu", nargs=2)
    p.add_argument("--ilb-busy", nargs=2)
    p.add_argument("--ilb-drops", nargs=2, default=["0", "0"])
    p.add_argument("--retransmits", nargs=2, default=["0 0", "0 0"])
    p.add_argument("--first-window", type=int, default=5)
    p.add_argument("--soak")
    p.add_argument("--seconds", type=int)
    p.add_argument("--redis-requests-per-run", type=int, default=0)
    p.add_argument("--mem", nargs=2)
    p.add_argument("--cp-mem", nargs=2)
    p.add_argument("--tcp", nargs=2)
    p.add_argument("--resets", nargs=2)
    p.add_argument("--drops", nargs=2)
    a = p.parse_args()
    if a.soak:
        print(json.dumps(soak(a), indent=2))
    else:
        print(json.dumps(measurement(a)))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The report of tools/bench/e2e/run: medians over rounds, ratios to direct, the targets.

  report.py --out DIR   reads DIR/results.jsonl (+ meta.json, host_cache.json, soak.json) and
                        writes DIR/results.json, DIR/table.md and DIR/chart.png (gnuplot);
                        prints the table; exits 1 if a measurement failed (a failed request, a
                        client that did not finish), the soak failed, or a host was blocked.
  report.py --line      one measurement record on stdin -> one line for the progress log.
Missed speed targets are reported plainly in the table and the JSON; they do not fail the run.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

PATHS = ["direct", "ilb", "haproxy", "nftables"]
MYSQL = ["point_select", "read_only"]
TITLES = {
    "point_select": "MySQL sysbench oltp_point_select (queries/s)",
    "read_only": "MySQL sysbench oltp_read_only (queries/s)",
    "memcached": "memcached through twemproxy, memaslap 90 % get / 10 % set (ops/s)",
    "redis": "redis-benchmark GET, 100-byte values (requests/s)",
    "http": "nginx, wrk, small responses (requests/s)",
}


def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def line(rec):
    extra = ""
    if rec.get("ilb_worker_busy_pct") is not None:
        extra = f" ilb worker busy {rec['ilb_worker_busy_pct']} %, drops {rec.get('ilb_drops')}"
    status = "ok" if rec["ok"] else f"FAILED ({rec['failed_requests']} failed requests, " \
                                     f"exit {rec['exit_status']})"
    print(f"   {rec['workload']} {rec['path']} {rec['conns']} conns: "
          f"{fmt(rec['ops_per_s'])} ops/s, p99 {fmt(rec['p99_ms'], 2)} ms, "
          f"p999 {fmt(rec['p999_ms'], 2)} ms, balancer CPU {rec['balancer_cpu_busy_pct']} %, "
          f"client/server CPUs {rec.get('host_cpu_busy_pct')} %"
          f"{extra}, TCP retransmits {rec.get('tcp_retransmits')} "
          f"(timeouts {rec.get('tcp_timeouts')}) — {status}")


def median(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def ratio(a, b):
    return a / b if a is not None and b else None


def summarise(records):
    """{workload: {conns: {path: {...medians...}}}}"""
    out = {}
    for r in records:
        out.setdefault(r["workload"], {}).setdefault(r["conns"], {}).setdefault(
            r["path"], []).append(r)
    summary = {}
    for w, by_conns in out.items():
        summary[w] = {}
        for c, by_path in sorted(by_conns.items()):
            row = {}
            for p, recs in by_path.items():
                row[p] = {
                    "rounds": len(recs),
                    "ops_per_s": median(r["ops_per_s"] for r in recs),
                    "first_window_ops_per_s": median(r.get("first_window_ops_per_s")
                                                     for r in recs),
                    "p99_ms": median(r["p99_ms"] for r in recs),
                    "p999_ms": median(r["p999_ms"] for r in recs),
                    "balancer_cpu_busy_pct": median(r["balancer_cpu_busy_pct"] for r in recs),
                    "host_cpu_busy_pct": median(r.get("host_cpu_busy_pct") for r in recs),
                    "ilb_worker_busy_pct": median(r.get("ilb_worker_busy_pct") for r in recs),
                    "failed_requests": sum(r["failed_requests"] for r in recs),
                    "all_ok": all(r["ok"] for r in recs),
                }
            d = row.get("direct", {})
            for p, v in row.items():
                v["ratio_to_direct"] = ratio(v["ops_per_s"], d.get("ops_per_s"))
                v["p99_ratio_to_direct"] = ratio(v["p99_ms"], d.get("p99_ms"))
                v["first_window_ratio_to_direct"] = ratio(v["first_window_ops_per_s"],
                                                          d.get("first_window_ops_per_s"))
            summary[w][str(c)] = row
    return summary


def targets(summary):
    """Each target of the issue: met / missed, and where it was missed."""
    res = []

    def add(name, misses, checked):
        res.append({"target": name, "met": checked and not misses, "checked": checked,
                    "misses": misses})

    for name, test, workloads in [
        ("MySQL qps through ilb >= 0.98 x direct at every step",
         lambda i, d, row: i["ops_per_s"] >= 0.98 * d["ops_per_s"], MYSQL),
        ("p99 through ilb <= 1.1 x direct at every step",
         lambda i, d, row: i["p99_ms"] <= 1.1 * d["p99_ms"], MYSQL + ["memcached", "redis", "http"]),
        ("cache and HTTP throughput through ilb >= 0.98 x direct",
         lambda i, d, row: i["ops_per_s"] >= 0.98 * d["ops_per_s"], ["memcached", "redis", "http"]),
        ("cache and HTTP throughput through ilb in the first window >= 0.98 x direct's",
         lambda i, d, row: (i["first_window_ops_per_s"] or 0)
         >= 0.98 * (d["first_window_ops_per_s"] or float("inf")),
         ["memcached", "redis", "http"]),
    ]:
        misses, checked = [], False
        for w in workloads:
            for c, row in summary.get(w, {}).items():
                i, d = row.get("ilb"), row.get("direct")
                if not i or not d or i["ops_per_s"] is None or d["ops_per_s"] is None:
                    continue
                if None in (i["p99_ms"], d["p99_ms"]) and "p99" in name:
                    continue
                checked = True
                if not test(i, d, row):
                    misses.append(f"{w} @ {c}")
        add(name, misses, checked)
    for other in ("haproxy", "nftables"):
        misses, lat, checked = [], [], False
        for w, rows in summary.items():
            for c, row in rows.items():
                i, o = row.get("ilb"), row.get(other)
                if not i or not o or i["ops_per_s"] is None or o["ops_per_s"] is None:
                    continue
                checked = True
                if i["ops_per_s"] < o["ops_per_s"]:
                    misses.append(f"{w} @ {c}")
                if i["p99_ms"] is not None and o["p99_ms"] is not None and \
                        i["p99_ms"] > o["p99_ms"]:
                    lat.append(f"{w} @ {c}")
        add(f"ilb throughput >= {other} on every workload", misses, checked)
        add(f"ilb p99 below {other}'s", lat, checked)
    return res


def table(summary, meta, tgt, host_cache, soak):
    out = []
    m = meta.get("machine", {})
    out.append(f"Machine: {m.get('cpu_model')}, {m.get('cpus')} CPUs, {m.get('memory_gib')} GiB, "
               f"kernel {m.get('kernel')}, load {m.get('load_1m')} at start, "
               f"{m.get('date_utc')}; balancer on CPU {meta.get('balancer_cpu')}, clients and "
               f"servers on CPUs {meta.get('host_cpus')}; ilb {meta.get('ilb_commit')} on "
               f"{meta.get('dataplane_port')}.")
    s = meta.get("settings", {})
    out.append(f"Each figure: median of {s.get('rounds')} round(s) of {s.get('duration_s')} s; "
               f"(x) = ratio to direct; first {s.get('first_window_s')} s reported separately.")
    for w in MYSQL + ["memcached", "redis", "http"]:
        rows = summary.get(w)
        if not rows:
            continue
        paths = [p for p in PATHS if any(p in r for r in rows.values())]
        out.append("")
        out.append(f"### {TITLES[w]}")
        out.append("")
        head = ["connections"] + [f"{p}" for p in paths] + [f"{p} p99 ms" for p in paths] + \
               [f"{p} p999 ms" for p in paths] + ["balancer CPU % " + "/".join(
                   p for p in paths if p != "direct"), "client+server CPU % " + "/".join(paths)]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for c, row in sorted(rows.items(), key=lambda kv: int(kv[0])):
            cells = [c]
            for p in paths:
                v = row.get(p, {})
                r = v.get("ratio_to_direct")
                mark = "" if v.get("all_ok", True) else " FAILED"
                cells.append(fmt(v.get("ops_per_s")) +
                             (f" ({r:.2f}x)" if r is not None and p != "direct" else "") + mark)
            for key in ("p99_ms", "p999_ms"):
                for p in paths:
                    v = row.get(p, {})
                    r = v.get("p99_ratio_to_direct") if key == "p99_ms" else None
                    cells.append(fmt(v.get(key), 2) +
                                 (f" ({r:.2f}x)" if r is not None and p != "direct" else ""))
            cpu = []
            for p in paths:
                if p == "direct":
                    continue
                v = row.get(p, {})
                val = v.get("ilb_worker_busy_pct") if p == "ilb" else v.get("balancer_cpu_busy_pct")
                cpu.append(fmt(val, 0))
            cells.append(" / ".join(cpu))
            cells.append(" / ".join(fmt(row.get(p, {}).get("host_cpu_busy_pct"), 0)
                                    for p in paths))
            out.append("| " + " | ".join(cells) + " |")
        if w not in MYSQL:
            first = []
            for c, row in rows.items():
                for p in paths:
                    v = row.get(p, {})
                    r = v.get("first_window_ratio_to_direct")
                    first.append(f"{p} {fmt(v.get('first_window_ops_per_s'))}" +
                                 (f" ({r:.2f}x)" if r is not None and p != "direct" else ""))
            out.append("")
            out.append(f"First {s.get('first_window_s')} s: " + ", ".join(first))
    out.append("")
    out.append("### Targets")
    out.append("")
    for t in tgt:
        state = "MET" if t["met"] else ("not measured" if not t["checked"] else "MISSED")
        where = f" — missed at {', '.join(t['misses'])}" if t["misses"] else ""
        out.append(f"- {state}: {t['target']}{where}")
    if host_cache is not None:
        blocked = [h for h in host_cache["hosts"] if h["blocked_errors"] > 0]
        errs = [h for h in host_cache["hosts"] if h["connect_errors"] > 0]
        out.append("")
        out.append("### MySQL host cache after the runs")
        out.append("")
        out.append(f"- hosts blocked: {len(blocked)}" +
                   (" (" + ", ".join(f"{h['ip']} on {h['server']}" for h in blocked) + ")"
                    if blocked else ""))
        out.append(f"- hosts with connect errors: {len(errs)}" +
                   (" (" + ", ".join(f"{h['ip']} on {h['server']}: {h['connect_errors']}"
                                     for h in errs) + ")" if errs else ""))
        out.append(f"- Aborted_connects per server: {host_cache['aborted_connects']}")
    if soak is not None:
        mem = soak["memory_kb"]
        out.append("")
        out.append(f"### Soak: {soak['seconds']} s of mixed traffic through ilb")
        out.append("")
        out.append(f"- failed requests: {soak['failed_requests_total']} {soak['failed_requests']}")
        out.append(f"- connection resets: {soak['connection_resets']}; ilb drops: "
                   f"{soak['ilb_drops']}")
        out.append(f"- dataplane memory (kB): start {mem['dataplane']['start']}, end "
                   f"{mem['dataplane']['end']}; control plane RSS growth "
                   f"{mem['controlplane']['rss_growth']} kB; flat: {soak['memory_flat']}")
        out.append(f"- rates: {soak['rates']}")
    return "\n".join(out) + "\n"


def chart(summary, out_dir):
    """qps vs connections, one line per path, one panel per MySQL workload (+ p99 panels)."""
    panels = [w for w in MYSQL if w in summary]
    if not panels:
        return None
    script = [f"set terminal pngcairo size 1400,{450 * 2} font 'sans,10'",
              f"set output '{out_dir}/chart.png'", "set termoption noenhanced",
              f"set multiplot layout 2,{len(panels)}",
              "set key top left", "set grid", "set xlabel 'connections'"]
    for metric, label in (("ops_per_s", "queries per second"), ("p99_ms", "p99 latency (ms)")):
        for w in panels:
            rows = summary[w]
            plots = []
            for p in PATHS:
                pts = [(int(c), row[p][metric]) for c, row in rows.items()
                       if p in row and row[p][metric] is not None]
                if not pts:
                    continue
                os.makedirs(os.path.join(out_dir, "chart-data"), exist_ok=True)
                dat = os.path.join(out_dir, "chart-data", f"{w}-{metric}-{p}.dat")
                with open(dat, "w") as f:
                    for c, v in sorted(pts):
                        f.write(f"{c} {v}\n")
                plots.append(f"'{dat}' using 1:2 with linespoints lw 2 title '{p}'")
            script.append(f"set title '{w}: {label}'")
            script.append(f"set ylabel '{label}'")
            script.append("set yrange [0:*]")
            script.append("plot " + ", ".join(plots))
    script.append("unset multiplot")
    gp = os.path.join(out_dir, "chart-data", "chart.gp")
    with open(gp, "w") as f:
        f.write("\n".join(script) + "\n")
    res = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    if res.returncode != 0:
        print(f"report: gnuplot failed: {res.stderr.strip()}", file=sys.stderr)
        return None
    return os.path.join(out_dir, "chart.png")


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out")
    p.add_argument("--line", action="store_true")
    a = p.parse_args()
    if a.line:
        line(json.loads(sys.stdin.read()))
        return 0
    records = []
    with open(os.path.join(a.out, "results.jsonl")) as f:
        for l in f:
            if l.strip():
                records.append(json.loads(l))
    meta = load(os.path.join(a.out, "meta.json"), {})
    host_cache = load(os.path.join(a.out, "host_cache.json"))
    soak = load(os.path.join(a.out, "soak.json"))
    summary = summarise(records)
    tgt = targets(summary)
    text = table(summary, meta, tgt, host_cache, soak)
    png = chart(summary, a.out)
    failed = [f"{r['workload']} {r['path']} {r['conns']} round {r['round']}"
              for r in records if not r["ok"]]
    blocked = [h for h in (host_cache or {}).get("hosts", []) if h["blocked_errors"] > 0]
    doc = {"meta": meta, "summary": summary, "targets": tgt, "host_cache": host_cache,
           "soak": soak, "failed_measurements": failed, "chart": png, "records": records}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=2)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(text)
    print(text)
    problems = []
    if failed:
        problems.append(f"{len(failed)} measurement(s) had failed requests or a failed client: "
                        + "; ".join(failed))
    if soak is not None and not soak["ok"]:
        problems.append("the soak failed (failed requests or memory growth)")
    if blocked:
        problems.append(f"{len(blocked)} host(s) were blocked by MariaDB")
    for msg in problems:
        print(f"report: {msg}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

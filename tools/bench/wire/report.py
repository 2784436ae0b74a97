#!/usr/bin/env python3
"""Turns one wire benchmark run (tools/bench/wire/run) into a table for people (table.md, also
printed) and one JSON document (results.json, also printed as the last line).

Usage: report.py OUT_DIR FLOWS_LIST HUGE COMMAND_LINE
Every figure comes from the files the run left in OUT_DIR: ilb-pktgen's JSON per run, the ilb
worker's counters before and after each run, ilb-bench-pipeline's JSON.
"""

import json
import os
import sys

TARGETS = {
    "forwarding_vs_ceiling_1m": 0.9,
    "pipeline_cycles_per_packet": 150,
    "pipeline_cycles_per_new_conn": 600,
    "memory_10m_gib": 1.5,
    "memory_bytes_per_conn": 128,
}


def load(path):
    with open(path) as f:
        return json.load(f)


def worker_delta(out, name):
    """ilb worker's busy cycles per packet it received during a run."""
    try:
        before, after = load(f"{out}/{name}.before"), load(f"{out}/{name}.after")
    except (OSError, ValueError):
        return None
    packets = after["rx_packets"] - before["rx_packets"]
    cycles = after["busy_cycles"] - before["busy_cycles"]
    return round(cycles / packets, 1) if packets > 0 else None


def mpps(x):
    return f"{x / 1e6:.3f}"


def main():
    out, flows_list, huge, command = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
    flows = [int(f) for f in flows_list.split(",")]
    ceiling = load(f"{out}/ceiling.json")
    cps = load(f"{out}/cps.json")
    machine = ceiling["machine"]
    ceil_pps = ceiling["measured"]["rx_pps"]

    rows = []
    res = {"benchmark": "wire", "command": command, "machine": machine, "hugepages": huge,
           "frame_size": ceiling["config"]["frame_size"], "targets": TARGETS}

    def lat(doc):
        la = doc["latency"]
        return f"{la['p50_us']:.1f} / {la['p99_us']:.1f} / {la['p999_us']:.1f}"

    rows.append(("dpdk-testpmd io forwarding (the ceiling), 1,000 flows",
                 f"{mpps(ceil_pps)} Mpps", lat(ceiling), "", ""))
    res["ceiling"] = {"rx_pps": ceil_pps, "latency": ceiling["latency"],
                      "lost": ceiling["lost_data_packets"]}

    res["forwarding"] = []
    for f in flows:
        doc = load(f"{out}/flows-{f}.json")
        pps = doc["measured"]["rx_pps"]
        ratio = pps / ceil_pps if ceil_pps else 0
        cyc = worker_delta(out, f"flows-{f}")
        target = ""
        if f == 1_000_000:
            ok = ratio >= TARGETS["forwarding_vs_ceiling_1m"]
            target = f"≥ 0.90 × ceiling: {'met' if ok else 'MISSED'}"
        rows.append((f"ilb, {f:,} established flows",
                     f"{mpps(pps)} Mpps ({ratio:.2f} × ceiling); "
                     f"opened at {doc['opening']['flows_per_s']:,.0f}/s",
                     lat(doc), f"{cyc}" if cyc is not None else "", target))
        res["forwarding"].append({
            "flows": f, "rx_pps": pps, "ratio_to_ceiling": ratio,
            "opening_flows_per_s": doc["opening"]["flows_per_s"],
            "worker_cycles_per_packet": cyc, "latency": doc["latency"],
            "lost": doc["lost_data_packets"], "errors": doc["errors"]})

    cps_rate = cps["measured"]["new_connections_per_s"]
    rows.append((f"ilb, new connections ({cps['config']['flows']:,} concurrent, 1 echo each)",
                 f"{cps_rate:,.0f} connections/s ({mpps(cps['measured']['rx_pps'])} Mpps)",
                 lat(cps), f"{worker_delta(out, 'cps')}", ""))
    res["new_connections"] = {"per_s": cps_rate, "rx_pps": cps["measured"]["rx_pps"],
                              "concurrent": cps["config"]["flows"],
                              "worker_cycles_per_packet": worker_delta(out, "cps"),
                              "connect_latency": cps["connect_latency"],
                              "retransmits": cps["counters"]["retransmits"],
                              "errors": cps["errors"]}

    pipe_path = f"{out}/pipeline.json"
    if os.path.exists(pipe_path):
        pipe = load(pipe_path)["results"]
        res["pipeline"] = pipe
        fill = {s["flows"]: s["hash_fill"] for s in pipe.get("setup", []) if "hash_fill" in s}
        for kind, key, target in (("established packet", "established",
                                   TARGETS["pipeline_cycles_per_packet"]),
                                  ("new connection", "new_connections",
                                   TARGETS["pipeline_cycles_per_new_conn"])):
            for e in pipe[key]:
                if e["checksums"] != "nic":
                    continue
                met = "" if e["flows"] != 1_000_000 else (
                    f"≤ {target}: {'met' if e['cycles_median'] <= target else 'MISSED'}")
                how = f", hash {100 * fill[e['flows']]:.0f} % full" if e["flows"] in fill else ""
                rows.append((f"pipeline, cycles per {kind}, {e['flows']:,} flows (NIC checksums{how})",
                             f"{e['cycles_median']:.0f} cycles", "", "", met))
        mem = pipe.get("memory") or {}
        if "bytes_per_conn" in mem:
            gib_10m = mem["bytes_per_conn"] * 10_000_000 / 2**30
            rows.append(("memory per tracked connection",
                         f"{mem['bytes_per_conn']:.1f} B; 10 M connections = {gib_10m:.2f} GiB",
                         "", "",
                         f"10 M ≤ 1.5 GiB: {'met' if gib_10m <= 1.5 else 'MISSED'}; "
                         f"≤ 128 B: {'met' if mem['bytes_per_conn'] <= 128 else 'MISSED'}"))

    head = ("| measurement | result | round trip p50 / p99 / p999 (µs) | "
            "ilb worker cycles per forwarded packet | target |")
    lines = [head, "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    machine_line = (f"{machine['cpu_model']}, {machine['logical_cpus']} CPUs, "
                    f"{machine['memory_kib'] / 2**20:.1f} GiB, {machine['kernel']}, "
                    f"{machine['date_utc']}, load {machine['load_average_1m']}")
    text = "\n".join(lines) + (
        f"\n\nMachine: {machine_line}. Hugepages: {'yes' if huge else 'no (--no-huge)'}. "
        f"Frames: {res['frame_size']} B. Command: `{command}`\n")
    with open(f"{out}/table.md", "w") as f:
        f.write(text)
    with open(f"{out}/results.json", "w") as f:
        json.dump(res, f, indent=2)
    print(text)
    print(json.dumps(res, separators=(",", ":")))


if __name__ == "__main__":
    main()

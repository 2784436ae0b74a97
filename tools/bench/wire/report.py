#!/usr/bin/env python3
"""Turns one wire benchmark run (tools/bench/wire/run) into a table for people (table.md, also
printed) and one JSON document (results.json, also printed as the last line).

Usage: report.py OUT_DIR FLOWS_LIST HUGE COMMAND_LINE WIRE ROUNDS
Every figure comes from the files the run left in OUT_DIR: ilb-pktgen's JSON per run, the ilb
worker's counters before and after each run, ilb-bench-pipeline's JSON. With several rounds, each
figure is the median of the rounds (with their range), and each rate is compared with the ceiling
measured in the same round.
"""

import json
import os
import statistics
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


def spread(values, fmt, unit=""):
    """The median of a measurement's rounds, and their range when there are several."""
    m = statistics.median(values)
    if len(values) == 1:
        return fmt(m) + unit
    return f"{fmt(m)}{unit} (rounds {fmt(min(values))}–{fmt(max(values))})"


def main():
    out, flows_list, huge, command = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
    wire, rounds = sys.argv[5], int(sys.argv[6])
    flows = [int(f) for f in flows_list.split(",")]
    names = [f"r{r}" for r in range(1, rounds + 1)]

    def runs(step):
        return [load(f"{out}/{step}-{r}.json") for r in names]

    ceilings = runs("ceiling")
    ceil_pps = [d["measured"]["rx_pps"] for d in ceilings]
    machine = ceilings[0]["machine"]

    rows = []
    res = {"benchmark": "wire", "command": command, "machine": machine, "hugepages": huge,
           "wire": f"net_memif, {wire}", "rounds": rounds,
           "frame_size": ceilings[0]["config"]["frame_size"], "targets": TARGETS}

    def lat(docs):
        def med(key):
            return statistics.median(d["latency"][key] for d in docs)
        return f"{med('p50_us'):.1f} / {med('p99_us'):.1f} / {med('p999_us'):.1f}"

    def cycles(step):
        per_round = [worker_delta(out, f"{step}-{r}") for r in names]
        known = [c for c in per_round if c is not None]
        return per_round, (round(statistics.median(known), 1) if known else None)

    rows.append(("dpdk-testpmd io forwarding (the ceiling), 1,000 flows",
                 spread(ceil_pps, mpps, " Mpps"), lat(ceilings), "", ""))
    res["ceiling"] = {"rx_pps": statistics.median(ceil_pps), "rx_pps_rounds": ceil_pps,
                      "latency": ceilings[0]["latency"] if rounds == 1 else None,
                      "lost": sum(d["lost_data_packets"] for d in ceilings)}

    res["forwarding"] = []
    for f in flows:
        docs = runs(f"flows-{f}")
        pps = [d["measured"]["rx_pps"] for d in docs]
        # Each round's rate against the ceiling measured in the same round, minutes apart.
        ratios = [p / c if c else 0 for p, c in zip(pps, ceil_pps)]
        ratio = statistics.median(ratios)
        cyc_rounds, cyc = cycles(f"flows-{f}")
        opened = statistics.median(d["opening"]["flows_per_s"] for d in docs)
        target = ""
        if f == 1_000_000:
            ok = ratio >= TARGETS["forwarding_vs_ceiling_1m"]
            target = f"≥ 0.90 × ceiling: {'met' if ok else 'MISSED'}"
        rows.append((f"ilb, {f:,} established flows",
                     f"{spread(pps, mpps, ' Mpps')}; "
                     f"{spread(ratios, lambda x: f'{x:.2f}')} × ceiling; opened at {opened:,.0f}/s",
                     lat(docs), f"{cyc}" if cyc is not None else "", target))
        res["forwarding"].append({
            "flows": f, "rx_pps": statistics.median(pps), "rx_pps_rounds": pps,
            "ratio_to_ceiling": ratio, "ratio_rounds": ratios, "opening_flows_per_s": opened,
            "worker_cycles_per_packet": cyc, "worker_cycles_rounds": cyc_rounds,
            "latency": docs[0]["latency"] if rounds == 1 else None,
            "lost": sum(d["lost_data_packets"] for d in docs),
            "errors": sum(d["errors"] for d in docs)})

    cps_docs = runs("cps")
    cps_rates = [d["measured"]["new_connections_per_s"] for d in cps_docs]
    cps_pps = [d["measured"]["rx_pps"] for d in cps_docs]
    cps_cyc_rounds, cps_cyc = cycles("cps")
    rows.append((f"ilb, new connections ({cps_docs[0]['config']['flows']:,} concurrent, 1 echo each)",
                 f"{spread(cps_rates, lambda x: f'{x:,.0f}')} connections/s "
                 f"({mpps(statistics.median(cps_pps))} Mpps)",
                 lat(cps_docs), f"{cps_cyc}", ""))
    res["new_connections"] = {"per_s": statistics.median(cps_rates), "per_s_rounds": cps_rates,
                              "rx_pps": statistics.median(cps_pps),
                              "concurrent": cps_docs[0]["config"]["flows"],
                              "worker_cycles_per_packet": cps_cyc,
                              "worker_cycles_rounds": cps_cyc_rounds,
                              "connect_latency": cps_docs[0]["connect_latency"] if rounds == 1 else None,
                              "retransmits": sum(d["counters"]["retransmits"] for d in cps_docs),
                              "errors": sum(d["errors"] for d in cps_docs)}

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
        f"Wire: {res['wire']}. Rounds: {rounds}. Frames: {res['frame_size']} B. Command: `{command}`\n")
    with open(f"{out}/table.md", "w") as f:
        f.write(text)
    with open(f"{out}/results.json", "w") as f:
        json.dump(res, f, indent=2)
    print(text)
    print(json.dumps(res, separators=(",", ":")))


if __name__ == "__main__":
    main()

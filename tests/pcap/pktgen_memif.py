#!/usr/bin/python3
"""ilb-pktgen against the real dataplane over net_memif: a correctness run, not a speed test.

Starts ilb-controlplane, then for each of three runs an ilb-dataplane (--no-huge) with a
net_memif server port and ilb-pktgen --check on the other end of the memif wire: TCP flows that
stay open, TCP flows that open, carry three echoes and close over and over, and UDP flows. Each
run passes only if every frame came back correctly rewritten (checksums, addresses, ports,
payload), nothing was lost and every TCP flow was closed at the end. Then the dataplane's own
counters must agree: no drop at all, no TCP connection still counted as active after the TCP
runs, and every UDP flow tracked after the UDP run. A last run repeats the churning TCP run with
two workers on two memif queue pairs: the generator spreads its frames over them by a hash of
their tuples, as a NIC's RSS would, so both workers own connections and the replies that arrive
at the other worker reach the owner through the hand-over ring (counted, none dropped).

The dataplane is stopped before the generator lets go of the wire (ilb-pktgen --hold): DPDK
22.11's memif PMD unmaps a departed peer's rings in its control thread while the worker may be
about to read them, so the side still polling must never be the one left behind.

The rate is modest so that a slow or sanitized build on a busy machine loses nothing.

Usage: pktgen_memif.py [--keep]      Environment: ILB_BUILD_DIR.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from pcap_cases import Status, cleanup_instance, find_binary, stop, wait_for, worker

VIP = "10.0.0.100"
SNAT = "10.0.2.1"
BACKENDS = ["10.0.1.1", "10.0.1.2"]
UDP_BACKEND = "10.0.1.3"
CLIENTS = "10.0.128.0/17"
STARTUP_DEADLINE_S = 60
RUN_DEADLINE_S = 120
GEN_EXIT_DEADLINE_S = 30
UDP_FLOWS = 100
GEN_MAC = "02:00:00:00:00:77"


def config_text(instance, tmp, workers=1):
    backends = "\n".join(f'[[service.backend]]\naddress = "{b}"\nport = 8080\n' for b in BACKENDS)
    neighbours = ", ".join(f'{{ address = "{b}", mac = "{GEN_MAC}" }}'
                           for b in BACKENDS + [UDP_BACKEND])
    return f"""instance = "{instance}"

[controlplane]
api_socket = "{tmp}/api.sock"
state_file = "{tmp}/ilb.state"

[dataplane]
main_lcore = 0
{worker_lines(workers)}
no_huge = true
memory_mb = 512
file_prefix = "{instance}"
conn_capacity = 65536
snat_addresses = ["{SNAT}"]
# The generator's MAC for every backend it plays: no first SYN waits for ARP, so the dataplane
# has no reason to drop anything. (It still resolves the client addresses by ARP.) And no
# re-resolution during the test, which could find the wire between two generator runs.
static_neighbours = [{neighbours}]
neighbour_refresh_s = 3600

[[dataplane.port]]
name = "wire"
device = "net_memif0,role=server,socket={tmp}/memif.sock"
address = "10.0.0.1/16"

[[service]]
name = "web"
vip = "{VIP}"
port = 80
protocol = "tcp"

[service.health_check]
type = "none"

{backends}
[[service]]
name = "dns"
vip = "{VIP}"
port = 53
protocol = "udp"

[service.health_check]
type = "none"

[[service.backend]]
address = "{UDP_BACKEND}"
port = 5300
"""


def worker_lines(workers):
    if workers == 1:
        return "worker_lcores = [1]"
    # More workers than spare CPUs: all on CPU 1, sleeping when idle, so the run fits 2 CPUs.
    lcores = ", ".join(str(i + 1) for i in range(workers))
    return (f"worker_lcores = [{lcores}]\nworker_cpus = [{', '.join(['1'] * workers)}]\n"
            "idle_sleep_us = 100")


# (name, generator arguments, dataplane workers)
RUNS = [
    ("tcp, flows stay open",
     ["--proto", "tcp", "--vport", "80", "--backend-port", "8080", "--flows", "200",
      "--rate", "10000", "--duration", "2s"]),
    ("tcp, 3 echoes per connection",
     ["--proto", "tcp", "--vport", "80", "--backend-port", "8080", "--flows", "200",
      "--packets-per-flow", "3", "--rate", "10000", "--duration", "2s", "--size", "200"]),
    ("udp",
     ["--proto", "udp", "--vport", "53", "--backend-port", "5300", "--flows", str(UDP_FLOWS),
      "--rate", "5000", "--duration", "1s"]),
    ("tcp, 3 echoes per connection, two workers",
     ["--proto", "tcp", "--vport", "80", "--backend-port", "8080", "--flows", "200",
      "--packets-per-flow", "3", "--rate", "10000", "--duration", "2s", "--size", "200",
      "--queues", "2"], 2),
]


def port(dp):
    return dp["ports"][0]


def workers_of(dp):
    return [lc for lc in dp.get("lcores", []) if lc.get("worker")]


def several_workers(d, workers, run):
    """What must hold after a run with several workers: each received frames and opened
    connections, replies were handed to their owners, and no hand-over was lost."""
    errors = []
    ws = workers_of(d)
    if d.get("workers") != workers or len(ws) != workers:
        return [f"{run}: the dataplane runs {d.get('workers')} workers, expected {workers}"]
    for k, w in enumerate(ws):
        if w["rx_packets"] == 0:
            errors.append(f"{run}: worker {k} received nothing")
    if d["handoff"]["packets"] == 0:
        errors.append(f"{run}: no reply was handed to its owner (the generator's queue spread "
                      "should send about half of them to the other worker)")
    if d["handoff"]["drops"] != 0:
        errors.append(f"{run}: {d['handoff']['drops']} hand-overs dropped")
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    build_dir = os.environ.get("ILB_BUILD_DIR")
    if not build_dir:
        print("ILB_BUILD_DIR is not set", file=sys.stderr)
        return 1
    bins = {n: find_binary(build_dir, rel) for n, rel in (
        ("dataplane", "dataplane/ilb-dataplane"), ("controlplane", "controlplane/ilb-controlplane"),
        ("ilbctl", "tools/ilbctl/ilbctl"), ("pktgen", "tools/ilb-pktgen/ilb-pktgen"))}
    missing = [n for n, b in bins.items() if b is None]
    if missing:
        print(f"missing binaries in {build_dir}: {', '.join(missing)}", file=sys.stderr)
        return 1

    tmp = tempfile.mkdtemp(prefix="ilb-pktgen-memif-")
    instance = f"pg{os.getpid()}"
    pg_prefix = f"{instance}gen"
    cfg = os.path.join(tmp, "ilb.toml")
    with open(cfg, "w") as f:
        f.write(config_text(instance, tmp))

    def log(msg):
        print(f"[pktgen_memif] {msg}", flush=True)

    errors = []
    cp = dp = None
    cp_log = open(os.path.join(tmp, "controlplane.log"), "w")
    dp_log = open(os.path.join(tmp, "dataplane.log"), "w")
    try:
        cleanup_instance(instance)
        cp = subprocess.Popen([bins["controlplane"], "--config", cfg], stdout=cp_log,
                              stderr=subprocess.STDOUT)
        sock = os.path.join(tmp, "api.sock")
        status = Status(bins["ilbctl"], sock)
        wait_for("the control plane's API socket", STARTUP_DEADLINE_S,
                 lambda: os.path.exists(sock) and status.get(), [("ilb-controlplane", cp)])

        def applied_by(pid):
            d = status.get()["dataplane"]
            return d.get("pid") == pid and d.get("applied_gen", 0) > 0

        memif_sock = os.path.join(tmp, "memif.sock")
        common = ["--device", f"net_memif0,role=client,socket={memif_sock},rsize=12",
                  "--no-huge",
                  "--lcore", "0", "--file-prefix", pg_prefix, "--mac", GEN_MAC, "--vip", VIP,
                  "--clients", CLIENTS, "--backends", ",".join(BACKENDS + [UDP_BACKEND]),
                  "--snat", SNAT, "--check"]
        # The memif client sets the ring sizes: 4096 entries leave room for a sanitized
        # generator's pauses at the test's rate.
        for i, (name, run_args, *rest) in enumerate(RUNS):
            workers = rest[0] if rest else 1
            dp_cfg = cfg
            if workers != 1:
                # The same instance and services; only the dataplane's workers differ.
                dp_cfg = os.path.join(tmp, f"ilb-{workers}workers.toml")
                with open(dp_cfg, "w") as f:
                    f.write(config_text(instance, tmp, workers))
            out = os.path.join(tmp, f"run{i}.json")
            gen_out, gen_err = os.path.join(tmp, f"run{i}.out"), os.path.join(tmp, f"run{i}.err")
            log(f"run {i}: {name}")
            # A fresh dataplane each run, on a fresh listening socket.
            if os.path.exists(memif_sock):
                os.unlink(memif_sock)
            dp = subprocess.Popen([bins["dataplane"], "--config", dp_cfg, "--no-huge"],
                                  stdout=dp_log, stderr=subprocess.STDOUT)
            procs = [("ilb-controlplane", cp), ("ilb-dataplane", dp)]
            wait_for("the dataplane to apply a snapshot", STARTUP_DEADLINE_S,
                     lambda: applied_by(dp.pid), procs)
            # No peer on the memif socket yet: the port reports its link down.
            wait_for("the port's link reported down before the generator connects",
                     STARTUP_DEADLINE_S, lambda: port(status.get()["dataplane"])["link"] == "down",
                     procs)
            with open(gen_out, "w") as so, open(gen_err, "w") as se:
                gen = subprocess.Popen([bins["pktgen"]] + common + run_args + ["--json", out,
                                                                              "--hold"],
                                       stdin=subprocess.PIPE, stdout=so, stderr=se)
            try:
                def finished():
                    with open(gen_err) as f:
                        return gen.poll() is not None or "holding the port" in f.read()
                wait_for(f"run {i} to finish", RUN_DEADLINE_S, finished, procs)
                # The generator is connected: the link came up, one change since the start.
                wait_for("the port's link reported up", 30,
                         lambda: port(status.get()["dataplane"])["link"] == "up", procs)
                d = status.get()["dataplane"]
                if port(d)["link_changes"] != 1:
                    errors.append(f"run {i} ({name}): link changes {port(d)['link_changes']}, "
                                  "expected 1 (down, then up)")
                drops = {k: v for k, v in d["drops"].items() if v}
                log(f"after run {i}: dataplane drops {drops}, workers {workers_of(d)}, "
                    f"hand-over {d['handoff']}")
                if drops:
                    errors.append(f"run {i} ({name}): the dataplane dropped frames: {drops}")
                if workers != 1:
                    errors += several_workers(d, workers, f"run {i} ({name})")
                if name.startswith("tcp"):
                    # Every TCP connection of the run has been closed: none may still count as
                    # active (closed ones stay tracked in TIME_WAIT, uncounted).
                    wait_for("no active TCP connection in the dataplane", 30,
                             lambda: sum(w["active_conns"]
                                         for w in workers_of(status.get()["dataplane"])) == 0,
                             procs)
                elif worker(d)["active_conns"] != UDP_FLOWS:
                    errors.append(f"the dataplane tracks {worker(d)['active_conns']} active "
                                  f"connections, expected the {UDP_FLOWS} UDP flows")
            finally:
                # The dataplane lets go of the wire first; then the generator.
                stop("ilb-dataplane", dp, log)
                dp = None
                gen.stdin.close()
                try:
                    gen.wait(timeout=GEN_EXIT_DEADLINE_S)
                except subprocess.TimeoutExpired:
                    gen.kill()
                    gen.wait()
            with open(gen_out) as f:
                print(f.read().rstrip())
            if gen.returncode != 0:
                with open(gen_err) as f:
                    errors.append(f"run {i} ({name}): ilb-pktgen exited {gen.returncode}: "
                                  f"{f.read().strip()[-800:]}")
                continue
            with open(out) as f:
                res = json.load(f)
            c = res["counters"]
            if c["data_echoed"] < 1000:
                errors.append(f"run {i} ({name}): only {c['data_echoed']} echoes came back")
            if name.startswith("tcp") and c["connected"] < 200:
                errors.append(f"run {i} ({name}): {c['connected']} connections, 200 expected")
            if "echoes per connection" in name and c["closed"] < 400:
                errors.append(f"run {i} ({name}): {c['closed']} connections closed, at least 400 "
                              "expected (every flow reopened at least once)")
    except Exception as e:  # noqa: BLE001 - any failure is reported with the logs below
        errors.append(f"{type(e).__name__}: {e}")
    finally:
        stop("ilb-dataplane", dp, log)
        stop("ilb-controlplane", cp, log)
        cp_log.close()
        dp_log.close()
        cleanup_instance(instance)
        shutil.rmtree(os.path.join("/var/run/dpdk", pg_prefix), ignore_errors=True)
    for logname in ("dataplane.log", "controlplane.log"):
        with open(os.path.join(tmp, logname)) as f:
            text = f.read()
        for line in text.splitlines():
            if "runtime error:" in line or "Sanitizer" in line:
                errors.append(f"{logname}: {line.strip()}")
        if errors:
            print(f"---- {logname} (last 30 lines) ----\n" + "\n".join(text.splitlines()[-30:]))
    for e in errors:
        print(f"FAIL {e}", flush=True)
    if errors or args.keep:
        log(f"files kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    log("PASS" if not errors else "FAIL")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())

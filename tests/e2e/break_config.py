#!/usr/bin/env python3
"""Writes a broken copy of an ilb TOML file and prints where the error must be reported.

Usage: break_config.py MUTATION IN OUT  →  prints "LINE KEY": the line of OUT and the key path
that ilb's message has to name. Used by bad_config.sh. It edits the text line by line (not via a
TOML library) so the rest of the file, and so every other line number, stays exactly as it was.
MUTATION is one of: port_zero, unknown_key, duplicate_vip_port, bad_address, missing_backends.
The first [[service]] of IN is the one broken; it needs `port`, `vip` and [[service.backend]]
tables with an `address`, as config/lab.toml has.
"""
import re
import sys


def header(line):
    m = re.match(r"\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$", line)
    return m.group(2) if m else None


def key_of(line):
    m = re.match(r"\s*([A-Za-z0-9_-]+)\s*=", line)
    return m.group(1) if m else None


def service_block(lines):
    """[start, end) of the first [[service]] and its sub-tables."""
    start = next(i for i, l in enumerate(lines) if header(l) == "service")
    end = start + 1
    while end < len(lines):
        h = header(lines[end])
        if h is not None and not h.startswith("service."):
            break
        end += 1
    return start, end


def find_key(lines, start, end, key):
    """The first line in [start, end) that sets `key` in the table opened at `start`."""
    for i in range(start + 1, end):
        if header(lines[i]) is not None:
            break
        if key_of(lines[i]) == key:
            return i
    raise SystemExit(f"break_config: no '{key}' in the table at line {start + 1}")


def main():
    mutation, src, dst = sys.argv[1:4]
    with open(src) as f:
        lines = f.read().splitlines()
    s_start, s_end = service_block(lines)
    backends = [i for i in range(s_start, s_end) if header(lines[i]) == "service.backend"]

    if mutation == "port_zero":
        i = find_key(lines, s_start, s_end, "port")
        lines[i] = "port = 0"
        where = (i + 1, "service[0].port")
    elif mutation == "unknown_key":
        lines.insert(s_start + 1, "no_such_key = 1")
        where = (s_start + 2, "service[0].no_such_key")
    elif mutation == "duplicate_vip_port":
        block = lines[s_start:s_end]
        name = find_key(block, 0, len(block), "name")
        block[name] = 'name = "web-copy"'
        vip = find_key(block, 0, len(block), "vip")
        lines.append("")
        base = len(lines)
        lines.extend(block)
        where = (base + vip + 1, "service[1].vip")
    elif mutation == "bad_address":
        i = find_key(lines, backends[0], s_end, "address")
        lines[i] = 'address = "10.99.0.300"'
        where = (i + 1, "service[0].backend[0].address")
    elif mutation == "missing_backends":
        keep = []
        drop = False
        for i, line in enumerate(lines):
            h = header(line)
            if h is not None:
                drop = i in backends
            keep.append(None if drop else line)
        lines = [l for l in keep if l is not None]
        # Reported at the [[service]] header, which no removed line precedes.
        where = (s_start + 1, "service[0].backend")
    else:
        raise SystemExit(f"break_config: unknown mutation {mutation}")

    with open(dst, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(*where)


if __name__ == "__main__":
    main()

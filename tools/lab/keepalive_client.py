#!/usr/bin/env python3
"""One persistent HTTP/1.1 connection to HOST:PORT, driven line by line on stdin.

Used by tools/lab/lab.sh (lab_keepalive_*) to prove that an established connection survives
something (a backend being drained, the control plane restarting). Every "get" line sends one
request on the same TCP connection and prints "BODY LOCALPORT"; the connection is never reopened
behind the caller's back, so a lost connection shows up as "ERROR ..." rather than as a silent
success on a new one.
"""
import http.client
import sys


def main() -> int:
    host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    local_port = None
    for line in sys.stdin:
        if line.strip() != "get":
            continue
        try:
            if local_port is None:
                conn.connect()
                local_port = conn.sock.getsockname()[1]
            elif conn.sock is None:
                raise ConnectionError("the connection was closed")
            conn.auto_open = 0
            conn.request("GET", "/", headers={"Connection": "keep-alive"})
            resp = conn.getresponse()
            body = resp.read().decode(errors="replace").strip()
            if resp.status != 200:
                raise ConnectionError(f"HTTP {resp.status}")
            if resp.will_close:
                raise ConnectionError("the server announced it will close the connection")
            print(f"{body} {local_port}", flush=True)
        except (OSError, http.client.HTTPException) as e:
            print(f"ERROR {type(e).__name__}: {e}", flush=True)
            conn.close()
            conn.sock = None
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

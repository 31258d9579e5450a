#!/usr/bin/env python3
"""Resident memory per idle keep-alive connection of a running server.

usage: idle_memory.py HOST PORT PID [--conns N] [--path P]

Opens N connections (default 10,000), sends one keep-alive GET on each and reads the answer,
so every connection is a served keep-alive connection, then leaves them idle. Prints the
server's VmRSS (process tree: PID and its children, e.g. nginx workers) before and after,
and (after - before) / N, as "key<TAB>value" lines. Bounded: every socket operation times out
after 10 s, and the whole run after 300 s.

Exit status: 0 measured; 1 the server failed the measurement (refused, reset or closed a
connection, answered something other than 200, did not answer within 10 s, or closed idle
connections); 3 the measurement could not be made on this side (out of descriptors or local
ports, the 300 s limit). On failure the last line is "failure<TAB><one-line reason>".
"""
import argparse
import errno
import socket
import sys
import time

SOCKET_TIMEOUT = 10  # seconds per connect/send/recv; a server that slow has failed anyway
RUN_LIMIT = 300  # seconds for the whole run
# Errors that say this process or this host ran out of something, not that the server failed.
CLIENT_SIDE = {errno.EMFILE, errno.ENFILE, errno.EADDRNOTAVAIL, errno.ENOBUFS, errno.ENOMEM}


class Failed(Exception):
    """The measurement failed; code is the exit status (1 server, 3 client side)."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code


def tree_rss_kib(pid):
    """VmRSS of pid and all its descendants, in KiB."""
    pids = [pid]
    total = 0
    seen = set()
    while pids:
        p = pids.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as f:
                pids.extend(int(c) for c in f.read().split())
        except FileNotFoundError:
            continue
    return total


def served_connection(host, port, request, i):
    """Connect, send one keep-alive GET, read the head; the open socket, or raise Failed."""
    what = f"connection {i + 1}"
    try:
        s = socket.create_connection((host, port), timeout=SOCKET_TIMEOUT)
    except socket.timeout:
        raise Failed(1, f"{what}: connect timed out after {SOCKET_TIMEOUT} s")
    except ConnectionRefusedError:
        raise Failed(1, f"{what}: connection refused")
    except OSError as e:
        code = 3 if e.errno in CLIENT_SIDE else 1
        raise Failed(code, f"{what}: connect: {e.strerror or e}")
    try:
        s.sendall(request)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                raise Failed(1, f"{what} closed by the server before an answer")
            got += chunk
    except socket.timeout:
        s.close()
        raise Failed(1, f"{what}: no answer within {SOCKET_TIMEOUT} s")
    except (ConnectionResetError, BrokenPipeError):
        s.close()
        raise Failed(1, f"{what} reset by the server")
    except OSError as e:
        s.close()
        raise Failed(1, f"{what}: {e.strerror or e}")
    except Failed:
        s.close()
        raise
    if not got.startswith(b"HTTP/1.1 200"):
        s.close()
        line = got.split(b"\r\n", 1)[0][:60].decode("ascii", "replace")
        raise Failed(1, f"{what} answered {line!r}, not 200")
    return s


def still_open(s):
    """True when the server has neither closed nor reset the idle connection."""
    s.setblocking(False)
    try:
        return s.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("pid", type=int)
    ap.add_argument("--conns", type=int, default=10_000)
    ap.add_argument("--path", default="/assets/128b.txt")
    a = ap.parse_args()
    deadline = time.time() + RUN_LIMIT
    request = f"GET {a.path} HTTP/1.1\r\nHost: {a.host}\r\n\r\n".encode()
    conns = []
    print(f"connections\t{a.conns}")
    try:
        # Warm up: the first requests fill caches and pools; they are not per-connection memory.
        for i in range(50):
            served_connection(a.host, a.port, request, i).close()
        time.sleep(0.5)
        before = tree_rss_kib(a.pid)
        print(f"rss before KiB\t{before}", flush=True)
        for i in range(a.conns):
            if time.time() > deadline:
                raise Failed(3, f"gave up after {i} connections: {RUN_LIMIT} s limit")
            conns.append(served_connection(a.host, a.port, request, i))
        time.sleep(1.0)
        after = tree_rss_kib(a.pid)
        # Every connection must still be open (the server did not shed them).
        alive = sum(1 for s in conns if still_open(s))
        per_conn = (after - before) * 1024 / a.conns
        print(f"still open\t{alive}\nrss after KiB\t{after}\n"
              f"bytes per idle connection\t{per_conn:.0f}", flush=True)
        if alive != a.conns:
            raise Failed(1, f"{a.conns - alive} of {a.conns} connections were closed while idle")
    except Failed as e:
        print(f"opened\t{len(conns)}\nfailure\t{e}", flush=True)
        return e.code
    finally:
        for s in conns:
            s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

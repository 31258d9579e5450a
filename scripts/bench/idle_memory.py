#!/usr/bin/env python3
"""Resident memory per idle keep-alive connection of a running server.

usage: idle_memory.py HOST PORT PID [--conns N] [--path P]

Opens N connections (default 10,000), sends one keep-alive GET on each and reads the answer,
so every connection is a served keep-alive connection, then leaves them idle. Prints the
server's VmRSS (process tree: PID and its children, e.g. nginx workers) before and after,
and (after - before) / N. Bounded: every socket operation times out after 10 s, and the
whole run after 300 s.
"""
import argparse
import socket
import sys
import time


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("pid", type=int)
    ap.add_argument("--conns", type=int, default=10_000)
    ap.add_argument("--path", default="/assets/128b.txt")
    a = ap.parse_args()
    deadline = time.time() + 300
    request = f"GET {a.path} HTTP/1.1\r\nHost: {a.host}\r\n\r\n".encode()
    # Warm up: the first requests fill caches and pools; they are not per-connection memory.
    for _ in range(50):
        with socket.create_connection((a.host, a.port), timeout=10) as s:
            s.sendall(request)
            s.recv(65536)
    time.sleep(0.5)
    before = tree_rss_kib(a.pid)
    conns = []
    for i in range(a.conns):
        if time.time() > deadline:
            sys.exit(f"gave up after {i} connections: 300 s limit")
        s = socket.create_connection((a.host, a.port), timeout=10)
        s.sendall(request)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit(f"connection {i} closed by the server")
            got += chunk
        if not got.startswith(b"HTTP/1.1 200"):
            sys.exit(f"connection {i}: {got[:40]!r}")
        conns.append(s)
    time.sleep(1.0)
    after = tree_rss_kib(a.pid)
    # Every connection must still be open (the server did not shed them).
    alive = 0
    for s in conns:
        s.setblocking(False)
        try:
            alive += 0 if s.recv(1) == b"" else 1
        except BlockingIOError:
            alive += 1
    for s in conns:
        s.close()
    per_conn = (after - before) * 1024 / a.conns
    print(f"connections\t{a.conns}\nstill open\t{alive}\nrss before KiB\t{before}\n"
          f"rss after KiB\t{after}\nbytes per idle connection\t{per_conn:.0f}")
    if alive != a.conns:
        sys.exit("some connections were closed while idle")


if __name__ == "__main__":
    main()

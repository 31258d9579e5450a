#!/usr/bin/env python3
"""Hostile-traffic soak client for scripts/soak.sh (standard library only).

Runs for --seconds against one ringserve serving --root (a tree made by --make-site):
  normal    keep-alive GETs (some with a Range) of the fixed files; every body byte is compared
            with the file on disk: any difference is a failure
  replaced  GETs of files another thread keeps replacing (write + rename); each body must be
            one whole version (its header line names the version, the rest follows from it)
  slowloris heads trickled a few bytes a second
  idle      a flood of idle connections, half with a started head, reopened when closed
  resets    a large body requested, a little read, then a reset (SO_LINGER 0)
  garbage   random bytes, then read until the server closes
  bombs     range bombs: hundreds of tiny and overlapping ranges in one header
Prints one summary line; exits 1 if a normal or replaced response was wrong (or none came).
"""

import argparse
import os
import random
import socket
import struct
import sys
import threading
import time

FIXED = {  # name -> size; different sizes take different paths (in memory, sendfile)
    "tiny.txt": 100,
    "small.bin": 4096,
    "mid.bin": 64 * 1024,
    "large.bin": 1024 * 1024,
    "huge.bin": 4 * 1024 * 1024,
}
REPLACED = ["swap-small.bin", "swap-large.bin"]
REPLACED_SIZE = {"swap-small.bin": 8 * 1024, "swap-large.bin": 512 * 1024}


def pattern(seed, size):
    """Deterministic bytes for a file: cheap to build, differs by seed and offset."""
    block = bytes((seed * 31 + i * 7) % 251 for i in range(251))
    return (block * (size // 251 + 1))[:size]


def versioned(name, version):
    head = b"version %08d\n" % version
    return head + pattern(version, REPLACED_SIZE[name] - len(head))


def make_site(root):
    os.makedirs(root, exist_ok=True)
    for i, (name, size) in enumerate(sorted(FIXED.items())):
        with open(os.path.join(root, name), "wb") as f:
            f.write(pattern(i + 1, size))
    for name in REPLACED:
        with open(os.path.join(root, name), "wb") as f:
            f.write(versioned(name, 0))


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def wrong(self, what):
        with self.lock:
            self.errors.append(what)


def read_response(sock, buf, head_only=False):
    """Reads one response from sock (with leftover bytes buf). Returns (status, headers,
    body, leftover). Raises on EOF or a malformed head."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed before a head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower()] = v.strip()
    length = 0 if head_only else int(headers.get(b"content-length", b"0"))
    while len(rest) < length:
        chunk = sock.recv(max(65536, length - len(rest)))
        if not chunk:
            raise EOFError("closed inside a body")
        rest += chunk
    return status, headers, rest[:length], rest[length:]


def connect(addr, timeout=10):
    s = socket.create_connection(addr, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def normal(addr, files, stop, st, rng):
    sock, buf = None, b""
    while not stop.is_set():
        try:
            if sock is None:
                sock, buf = connect(addr), b""
            name = rng.choice(list(files))
            data = files[name]
            ranged = rng.random() < 0.25
            if ranged:
                a = rng.randrange(len(data))
                b = rng.randrange(a, len(data))
                req = f"GET /{name} HTTP/1.1\r\nHost: soak\r\nRange: bytes={a}-{b}\r\n\r\n"
            else:
                req = f"GET /{name} HTTP/1.1\r\nHost: soak\r\n\r\n"
            sock.sendall(req.encode())
            status, headers, body, buf = read_response(sock, buf)
            want = (206, data[a : b + 1]) if ranged else (200, data)
            if (status, body) != want:
                st.wrong(f"{name} ranged={ranged}: status {status}, {len(body)} bytes")
            st.add("normal")
            if headers.get(b"connection", b"").lower() == b"close":
                sock.close()
                sock = None
        except (OSError, EOFError, ValueError, IndexError) as e:
            st.add("normal-conn-errors")
            if sock:
                sock.close()
            sock = None
            if not stop.is_set():
                st.add(f"normal-error:{type(e).__name__}")
            time.sleep(0.05)
    if sock:
        sock.close()


def replaced_reader(addr, stop, st, rng):
    sock, buf = None, b""
    while not stop.is_set():
        try:
            if sock is None:
                sock, buf = connect(addr), b""
            name = rng.choice(REPLACED)
            sock.sendall(f"GET /{name} HTTP/1.1\r\nHost: soak\r\n\r\n".encode())
            status, _, body, buf = read_response(sock, buf)
            ok = status == 200 and body.startswith(b"version ")
            if ok:
                version = int(body[8:16])
                ok = body == versioned(name, version)
            if not ok:
                st.wrong(f"{name}: status {status}, {len(body)} bytes, not one whole version")
            st.add("replaced")
        except (OSError, EOFError, ValueError, IndexError):
            st.add("replaced-conn-errors")
            if sock:
                sock.close()
            sock = None
            time.sleep(0.05)
    if sock:
        sock.close()


def replacer(root, stop, st):
    version = 0
    while not stop.is_set():
        version += 1
        for name in REPLACED:
            tmp = os.path.join(root, f".{name}.tmp")
            with open(tmp, "wb") as f:
                f.write(versioned(name, version))
            os.rename(tmp, os.path.join(root, name))
        st.add("replacements")
        stop.wait(0.05)


def slowloris(addr, stop, st):
    head = b"GET /tiny.txt HTTP/1.1\r\nHost: soak\r\nX-Slow: " + b"a" * 200
    sock, sent = None, 0
    while not stop.is_set():
        try:
            if sock is None or sent >= len(head):
                if sock:
                    sock.close()
                sock, sent = connect(addr), 0
            sock.send(head[sent : sent + 3])
            sent += 3
            st.add("slowloris-bytes", 3)
        except OSError:
            st.add("slowloris-cut")
            if sock:
                sock.close()
            sock = None
        stop.wait(1.0)
    if sock:
        sock.close()


def idle_flood(addr, count, stop, st):
    socks = []
    while not stop.is_set():
        while len(socks) < count and not stop.is_set():
            try:
                s = connect(addr, timeout=2)
                if len(socks) % 2:
                    s.send(b"GET /tiny.txt HTTP/1.1\r\nHo")
                socks.append(s)
            except OSError:
                st.add("idle-connect-errors")
                break
        st.add("idle-rounds")
        stop.wait(2.0)
        # Drop the ones the server closed (readable and at EOF or reset), to reopen them.
        alive = []
        for s in socks:
            try:
                s.setblocking(False)
                data = s.recv(4096)
                if data == b"":
                    s.close()
                    st.add("idle-closed-by-server")
                    continue
                alive.append(s)  # a response (408) arrived: keep it until EOF
            except BlockingIOError:
                alive.append(s)
            except OSError:
                s.close()
        socks = alive
    for s in socks:
        s.close()


def resets(addr, stop, st):
    while not stop.is_set():
        try:
            s = connect(addr)
            s.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: soak\r\n\r\n")
            s.recv(16384)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            st.add("resets")
        except OSError:
            st.add("reset-errors")
        stop.wait(0.02)


def garbage(addr, stop, st, rng):
    while not stop.is_set():
        try:
            s = connect(addr, timeout=5)
            s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000))) + b"\r\n\r\n")
            while s.recv(65536):
                pass
            s.close()
            st.add("garbage")
        except OSError:
            st.add("garbage-errors")
        stop.wait(0.02)


def bombs(addr, stop, st, rng):
    while not stop.is_set():
        try:
            s = connect(addr, timeout=5)
            kind = rng.randrange(3)
            if kind == 0:
                spec = ",".join(f"{i}-{i}" for i in range(0, 1600, 2))
            elif kind == 1:
                spec = ",".join("0-1048575" for _ in range(300))
            else:
                spec = ",".join(f"-{i}" for i in range(1, 500))
            req = f"GET /large.bin HTTP/1.1\r\nHost: soak\r\nRange: bytes={spec}\r\nConnection: close\r\n\r\n"
            s.sendall(req.encode())
            total = 0
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                total += len(chunk)
            s.close()
            st.add("bombs")
        except OSError:
            st.add("bomb-errors")
        stop.wait(0.02)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--make-site", metavar="DIR", help="create the served tree and exit")
    p.add_argument("--addr", help="host:port of the server")
    p.add_argument("--root", help="the tree the server serves")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--normal", type=int, default=8, help="normal keep-alive clients")
    p.add_argument("--idle", type=int, default=500, help="idle flood connections")
    p.add_argument("--slowloris", type=int, default=50)
    a = p.parse_args()
    if a.make_site:
        make_site(a.make_site)
        return 0
    host, _, port = a.addr.rpartition(":")
    addr = (host, int(port))
    files = {}
    for name in FIXED:
        with open(os.path.join(a.root, name), "rb") as f:
            files[name] = f.read()
    st, stop = Stats(), threading.Event()
    rng = random.Random(1)
    jobs = [(normal, (addr, files, stop, st, random.Random(i))) for i in range(a.normal)]
    jobs += [(replaced_reader, (addr, stop, st, random.Random(100 + i))) for i in range(2)]
    jobs += [(replacer, (a.root, stop, st))]
    jobs += [(slowloris, (addr, stop, st)) for _ in range(a.slowloris)]
    jobs += [(idle_flood, (addr, a.idle, stop, st))]
    jobs += [(resets, (addr, stop, st)) for _ in range(2)]
    jobs += [(garbage, (addr, stop, st, random.Random(200 + i))) for i in range(2)]
    jobs += [(bombs, (addr, stop, st, random.Random(300 + i))) for i in range(2)]
    threads = [threading.Thread(target=f, args=args, daemon=True) for f, args in jobs]
    for t in threads:
        t.start()
    time.sleep(a.seconds)
    stop.set()
    for t in threads:
        t.join(timeout=15)
    stuck = sum(t.is_alive() for t in threads)
    counts = " ".join(f"{k}={v}" for k, v in sorted(st.counts.items()))
    # A normal client is never cut off: a reset or timeout on one counts as wrong too.
    if st.counts.get("normal-conn-errors") or st.counts.get("replaced-conn-errors"):
        st.errors.append("normal or replaced clients lost connections")
    print(f"soak.py: {counts} wrong={len(st.errors)} stuck-threads={stuck}")
    for e in st.errors[:10]:
        print(f"soak.py: WRONG: {e}")
    if st.errors or stuck or not st.counts.get("normal") or not st.counts.get("replaced"):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Deploys under load: keep requests flowing to a running ringserve while releases are swapped
and files replaced, and check every response against the versions current while it was under
way.

usage: check.py --url http://127.0.0.1:PORT --base DIR [--changes N] [--clients N]
                [--timeout S]

DIR is the served tree's parent: the server serves DIR/current, a symlink to a release
directory this script creates (DIR/r<N>). Every file body is made of identical lines naming its
version, so a body is either one version (and which) or a mixture. The script alternates two
kinds of change, each one system call that the deploy tools use:
  - a release swap: a new release directory with every file at a new version, then
    `ln -sfn rN current.tmp && mv -T current.tmp current` (symlink + rename);
  - a file replacement inside the current release: write a temporary file, rename it over.
After each swap the release before the previous one is deleted (DEPLOY_CHECK_KEEP=N in the
environment keeps N releases instead of 2), as deploy tools prune old releases: a request must
not get a 404 because the release that was current when it arrived has just gone.
For every path it keeps the version published (after the change's rename returned) and the
version about to be published (before the rename). A response is
  stale  if its version is older than the one published when the request was sent,
  mixed  if its body is not one version throughout,
  error  if it is not a 200, the connection failed, or the version is newer than any yet
         about to be published.
Exits 1 unless every count but the responses is zero. Bounded by --timeout (default 120 s).
"""

import argparse
import os
import socket
import sys
import threading
import time
from urllib.parse import urlparse

# Paths checked, and their sizes: in memory (small) and sendfile (large) in the cache.
FILES = {
    "index.html": 2 * 1024,
    "big.bin": 256 * 1024,
    "static/x.txt": 100,
}
# Each client reconnects after this many requests, so that new connections keep reaching
# every worker (SO_REUSEPORT hashes each one), while the rest reuse a kept-alive connection.
REQUESTS_PER_CONNECTION = 20
# Each change waits (up to 1 s) until the clients have made this many requests since the last
# one, so that every version is actually requested.
REQUESTS_PER_CHANGE = 4
# Releases kept on disk (see the module doc).
KEEP = int(os.environ.get("DEPLOY_CHECK_KEEP", "2"))


def body(path, version, size):
    line = f"{path} version {version:08d}\n".encode()
    reps = size // len(line) + 1
    return (line * reps)[:size]


def version_of(path, data):
    """The version a body holds, or None if it mixes versions (or is not ours at all)."""
    first = data.split(b"\n", 1)[0] + b"\n"
    try:
        version = int(first.rsplit(b" ", 1)[1])
    except (IndexError, ValueError):
        return None
    return version if data == body(path, version, len(data)) else None


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.published = {p: 0 for p in FILES}  # after the rename returned
        self.pending = {p: 0 for p in FILES}  # before the rename
        self.requests = 0
        self.stale = 0
        self.mixed = 0
        self.errors = 0
        self.examples = []
        self.stop = False

    def note(self, kind, text):
        with self.lock:
            setattr(self, kind, getattr(self, kind) + 1)
            if len(self.examples) < 10:
                self.examples.append(f"{kind}: {text}")


class Client:
    def __init__(self, host, port):
        self.addr = (host, port)
        self.sock = None
        self.buf = b""
        self.used = 0

    def connect(self):
        self.close()
        self.sock = socket.create_connection(self.addr, timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.used = 0

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def get(self, path):
        if self.sock is None or self.used >= REQUESTS_PER_CONNECTION:
            self.connect()
        self.used += 1
        self.sock.sendall(f"GET /{path} HTTP/1.1\r\nHost: deploy-check\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buf:
            self.recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(self.buf) < length:
            self.recv()
        data, self.buf = self.buf[:length], self.buf[length:]
        return status, data

    def recv(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buf += chunk


def client_loop(state, host, port, index):
    client = Client(host, port)
    paths = list(FILES)
    n = index
    while not state.stop:
        path = paths[n % len(paths)]
        n += 1
        with state.lock:
            low = state.published[path]
        try:
            status, data = client.get(path)
        except (OSError, ValueError, IndexError) as e:
            state.note("errors", f"{path}: {e}")
            client.close()
            continue
        with state.lock:
            high = state.pending[path]
            state.requests += 1
        if status != 200:
            state.note("errors", f"{path}: status {status} (sent at version {low}, received at {high})")
            continue
        version = version_of(path, data)
        if version is None:
            state.note("mixed", f"{path}: {data[:40]!r}…{data[-40:]!r}")
        elif version < low:
            state.note("stale", f"{path}: version {version}, {low} was published before the request")
        elif version > high:
            state.note("errors", f"{path}: version {version} newer than any published ({high})")
    client.close()


def write_release(base, name, version):
    rel = os.path.join(base, name)
    os.makedirs(os.path.join(rel, "static-a"), exist_ok=True)
    for path, size in FILES.items():
        target = path.replace("static/", "static-a/")
        with open(os.path.join(rel, target), "wb") as f:
            f.write(body(path, version, size))
    if not os.path.islink(os.path.join(rel, "static")):
        os.symlink("static-a", os.path.join(rel, "static"))


def remove_tree(path):
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            full = os.path.join(root, name)
            if os.path.islink(full):
                os.unlink(full)
            else:
                os.rmdir(full)
    os.rmdir(path)


def deploy(state, base, changes, deadline):
    version = 1
    release = 0  # r0 holds version 1
    kinds = {"swaps": 0, "replacements": 0}
    for i in range(changes):
        # Let the clients ask for the current versions before the next change.
        with state.lock:
            start = state.requests
        wait_until = time.monotonic() + 1
        while time.monotonic() < wait_until:
            with state.lock:
                if state.requests - start >= REQUESTS_PER_CHANGE:
                    break
            time.sleep(0.0005)
        if time.monotonic() > deadline:
            return kinds, f"timed out after {i} changes"
        version += 1
        if i % 2 == 0:
            release += 1
            name = f"r{release}"
            write_release(base, name, version)
            with state.lock:
                for p in FILES:
                    state.pending[p] = version
            tmp = os.path.join(base, "current.tmp")
            os.symlink(name, tmp)
            os.rename(tmp, os.path.join(base, "current"))
            with state.lock:
                for p in FILES:
                    state.published[p] = version
            kinds["swaps"] += 1
            # Old releases go (downloads in flight keep their open files).
            old = os.path.join(base, f"r{release - KEEP}")
            if release >= KEEP and os.path.isdir(old):
                remove_tree(old)
        else:
            path = list(FILES)[(i // 2) % len(FILES)]
            real = os.path.join(base, "current", path)
            tmp = os.path.join(os.path.dirname(real), ".deploy.tmp")
            with open(tmp, "wb") as f:
                f.write(body(path, version, FILES[path]))
            with state.lock:
                state.pending[path] = version
            os.rename(tmp, real)
            with state.lock:
                state.published[path] = version
            kinds["replacements"] += 1
    return kinds, None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--changes", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    url = urlparse(args.url)
    deadline = time.monotonic() + args.timeout

    state = State()
    # The release served at start (the server was started on an empty r0).
    write_release(args.base, "r0", 1)
    state.published = {p: 1 for p in FILES}
    state.pending = {p: 1 for p in FILES}
    threads = [
        threading.Thread(target=client_loop, args=(state, url.hostname, url.port, i), daemon=True)
        for i in range(args.clients)
    ]
    for t in threads:
        t.start()
    kinds, failure = deploy(state, args.base, args.changes, deadline)
    # A last round of requests against the final versions.
    time.sleep(0.2)
    state.stop = True
    for t in threads:
        t.join(timeout=15)
    print(
        f"deploy-check: {kinds['swaps']} release swaps, {kinds['replacements']} file replacements, "
        f"{state.requests} responses: {state.stale} stale, {state.mixed} mixed, {state.errors} errors"
    )
    for line in state.examples:
        print(f"  {line}")
    if failure:
        print(f"deploy-check: {failure}", file=sys.stderr)
        return 1
    if state.stale or state.mixed or state.errors or state.requests == 0:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

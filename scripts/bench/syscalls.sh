#!/usr/bin/env bash
# System calls per keep-alive request, counted with `strace -c -f` (issue 11: a cache hit must
# cost no file system call).
#
# usage: scripts/bench/syscalls.sh BINARY [--requests N] [--mode uring|threaded]
#                                  [--path /assets/128b.txt]
#
# Serves the repository's www/ with BINARY (one worker) under strace, sends N requests for PATH
# on one keep-alive connection after a warm-up of 100 (so the file is cached), and prints the
# calls made while serving those N: the run with N+100 requests minus the run with 100, per
# request, by system call. strace slows the server down; counts, not times, are the result.
set -euo pipefail

cd "$(dirname "$0")/../.."

binary=${1:?usage: $0 BINARY [--requests N] [--mode M] [--path P]}
shift
requests=2000
mode=uring
path=/assets/128b.txt
while [[ $# -gt 0 ]]; do
    case "$1" in
        --requests) requests=$2; shift 2 ;;
        --mode) mode=$2; shift 2 ;;
        --path) path=$2; shift 2 ;;
        *) echo "syscalls.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v strace >/dev/null || {
    echo "syscalls.sh: strace not found (apt-get install strace)" >&2
    exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One traced server run answering `$1` keep-alive requests; leaves strace's table in $work/$1.
run() {
    local n=$1 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    strace -c -f -o "$work/$n" "$binary" www --listen "127.0.0.1:$port" --mode "$mode" \
        --workers 1 2>"$work/$n.stderr" &
    local pid=$!
    python3 - "$port" "$path" "$n" <<'EOF'
import socket, sys, time
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + 10
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
req = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
buf = b""
for _ in range(n):
    s.sendall(req)
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(buf) < length:
        buf += s.recv(65536)
    buf = buf[length:]
s.close()
EOF
    # Stop the server itself (strace's child); strace then writes its table and exits.
    local server
    server=$(pgrep -P "$pid")
    kill -TERM "$server"
    wait "$pid" || true
}

run 100
run $((requests + 100))
python3 - "$work/100" "$work/$((requests + 100))" "$requests" "$mode" "$path" <<'EOF'
import sys
def table(path):
    calls = {}
    for line in open(path):
        parts = line.split()
        # "% time  seconds  usecs/call  calls  errors  syscall"
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            calls[parts[-1]] = int(parts[3])
    return calls
base, full = table(sys.argv[1]), table(sys.argv[2])
n = int(sys.argv[3])
diff = {k: full.get(k, 0) - base.get(k, 0) for k in set(base) | set(full)}
diff = {k: v for k, v in diff.items() if v > 0}
total = sum(diff.values())
detail = ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(diff.items(), key=lambda kv: -kv[1]))
print(f"{sys.argv[4]} {sys.argv[5]}: {total / n:.2f} system calls per request ({detail})")
EOF

#!/usr/bin/env bash
# Soak: the release build under normal keep-alive load (every body byte checked against the
# files) mixed with slowloris, an idle flood, resets mid-response, garbage, range bombs and
# files replaced under load (scripts/soak/soak.py), in each I/O mode one after the other.
# Before and after each run it prints the server's descriptors, threads and RSS, and fails
# on growth beyond the bounds below or on any wrong response to the normal clients.
#
#   scripts/soak.sh [--seconds S] [--mode uring|threaded|both] [--binary PATH]
#
# Bounded: S seconds of load per mode (default 60), plus at most ~20 s of start and settle.
set -euo pipefail

seconds=60
modes=(uring threaded)
binary=
usage() {
    sed -n '2,10s/^# \{0,1\}//p' "$0" >&2
}
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) seconds=${2:?}; shift 2 ;;
        --mode)
            case "${2:-}" in
                uring | threaded) modes=("$2") ;;
                both) modes=(uring threaded) ;;
                *) usage; exit 2 ;;
            esac
            shift 2
            ;;
        --binary) binary=${2:?}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage; exit 2 ;;
    esac
done
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 1 && $seconds -le 3600 ]] || {
    echo "soak.sh: --seconds must be a whole number from 1 to 3600" >&2
    exit 2
}

cd "$(dirname "$0")/.."
command -v python3 >/dev/null || {
    echo "soak.sh: python3 is needed (apt-get install python3)" >&2
    exit 1
}
if [[ -z $binary ]]; then
    cargo build --release --quiet
    binary=target/release/ringserve
fi

# Growth allowed between the "before" sample (after a warm-up that touched every file) and
# the "after" sample (load stopped, every client connection closed, settled):
# - descriptors: the per-worker file caches may hold a new descriptor per replaced file per
#   worker (2 files x 2 workers) plus 4 spare; anything more is a leak.
MAX_FD_GROWTH=8
# - threads: none (threaded mode: connection threads end with their connection).
MAX_THREAD_GROWTH=0
# - RSS: allocator high-water marks stay, so some growth is normal; a leak of even one
#   buffer per connection over a minute of this load would far exceed 64 MiB.
MAX_RSS_GROWTH_KB=$((64 * 1024))

work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill -9 "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

sample() { # pid -> "fds threads rss_kb"
    local pid=$1 fds threads rss
    fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    echo "$fds $threads $rss"
}

failed=0
for mode in "${modes[@]}"; do
    site="$work/site-$mode"
    python3 scripts/soak/soak.py --make-site "$site"
    : >"$work/$mode.err" # exists before the poll below reads it
    "$binary" "$site" --mode "$mode" --listen 127.0.0.1:0 \
        --header-timeout 5 2>"$work/$mode.err" &
    server_pid=$!
    addr=
    for ((i = 0; i < 100; i++)); do
        addr=$(sed -n 's|^ringserve: serving .* at http://\([^ ]*\)/ (mode .*|\1|p' "$work/$mode.err")
        [[ -n $addr ]] && break
        sleep 0.1
    done
    [[ -n $addr ]] || {
        echo "soak.sh: $mode: no start-up line within 10 s:" >&2
        cat "$work/$mode.err" >&2
        exit 1
    }
    grep '^ringserve: serving' "$work/$mode.err"
    # Warm-up: every file once, so the caches are filled before the baseline.
    for f in tiny.txt small.bin mid.bin large.bin huge.bin swap-small.bin swap-large.bin; do
        curl --silent --fail --max-time 5 --output /dev/null "http://$addr/$f"
    done
    sleep 0.5
    read -r fd0 th0 rss0 < <(sample "$server_pid")
    echo "soak.sh: $mode: before: $fd0 descriptors, $th0 threads, RSS $rss0 KiB"
    status=0
    python3 scripts/soak/soak.py --addr "$addr" --root "$site" --seconds "$seconds" || status=$?
    # Settle: the server closes its side of every connection; poll (bounded) until the
    # descriptor count is back within bounds or 10 s have passed.
    for ((i = 0; i < 100; i++)); do
        read -r fd1 th1 rss1 < <(sample "$server_pid")
        ((fd1 <= fd0 + MAX_FD_GROWTH && th1 <= th0 + MAX_THREAD_GROWTH)) && break
        sleep 0.1
    done
    echo "soak.sh: $mode: after:  $fd1 descriptors, $th1 threads, RSS $rss1 KiB"
    if ((status != 0)); then
        echo "soak.sh: $mode: FAIL: wrong responses or lost connections (above)" >&2
        failed=1
    fi
    if ((fd1 > fd0 + MAX_FD_GROWTH)); then
        echo "soak.sh: $mode: FAIL: descriptors grew by $((fd1 - fd0)) (bound $MAX_FD_GROWTH)" >&2
        failed=1
    fi
    if ((th1 > th0 + MAX_THREAD_GROWTH)); then
        echo "soak.sh: $mode: FAIL: threads grew by $((th1 - th0)) (bound $MAX_THREAD_GROWTH)" >&2
        failed=1
    fi
    if ((rss1 > rss0 + MAX_RSS_GROWTH_KB)); then
        echo "soak.sh: $mode: FAIL: RSS grew by $((rss1 - rss0)) KiB (bound $MAX_RSS_GROWTH_KB)" >&2
        failed=1
    fi
    # Still serving after all that.
    curl --silent --fail --max-time 5 --output /dev/null "http://$addr/tiny.txt" || {
        echo "soak.sh: $mode: FAIL: not serving after the soak" >&2
        failed=1
    }
    kill -TERM "$server_pid"
    wait "$server_pid" || {
        echo "soak.sh: $mode: FAIL: no clean exit on SIGTERM" >&2
        failed=1
    }
    server_pid=
    if grep -v '^ringserve: serving\|SIGTERM\|Terminate received\|^ringserve: stopped' "$work/$mode.err" | grep -q .; then
        echo "soak.sh: $mode: server log:" >&2
        grep -v '^ringserve: serving' "$work/$mode.err" | head -20 >&2
    fi
done
if ((failed)); then
    echo "soak.sh: FAILED" >&2
    exit 1
fi
echo "soak.sh: passed (${seconds} s per mode: ${modes[*]})"

#!/usr/bin/env bash
# Deploys under load (issue 11): starts ringserve on a scratch release tree, keeps several
# client connections busy, and performs atomic release swaps and file replacements while
# checking every response against the version current when its request was sent
# (scripts/deploy/check.py): zero stale, zero mixed, zero errors, in each mode.
#
# usage: scripts/deploy-check.sh [--changes N] [--clients N] [--mode uring|threaded|both]
#                                [--binary PATH] [--timeout S]
#   --changes N   changes per mode, alternately a release swap and a file replacement
#                 (default 1000)
#   --clients N   client connections kept busy (default 8)
#   --mode        which I/O mode(s) to check (default both)
#   --binary      the ringserve binary (default: target/debug/ringserve, built if missing)
#   --timeout S   bound per mode, in seconds (default 120); exceeding it fails
set -euo pipefail

cd "$(dirname "$0")/.."

usage() {
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
}

changes=1000
clients=8
modes="uring threaded"
binary=""
timeout=120
while [[ $# -gt 0 ]]; do
    case "$1" in
        --changes) changes=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --mode)
            case "$2" in
                both) modes="uring threaded" ;;
                uring | threaded) modes=$2 ;;
                *) usage; exit 2 ;;
            esac
            shift 2
            ;;
        --binary) binary=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage; exit 2 ;;
    esac
done

command -v python3 >/dev/null || {
    echo "deploy-check.sh: python3 not found" >&2
    exit 1
}
if [[ -z $binary ]]; then
    binary=target/debug/ringserve
    cargo build --quiet
fi

work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

status=0
for mode in $modes; do
    base="$work/$mode"
    # An empty first release; check.py fills it before any request.
    mkdir -p "$base/r0"
    ln -s r0 "$base/current"
    : >"$work/$mode.stderr" # exists before the poll below reads it
    "$binary" "$base/current" --listen 127.0.0.1:0 --mode "$mode" 2>"$work/$mode.stderr" &
    server_pid=$!
    url=
    for ((i = 0; i < 50; i++)); do
        url=$(sed -n 's|^ringserve: serving .* at \(http://[^ ]*\)/ (mode .*|\1|p' "$work/$mode.stderr")
        [[ -n $url ]] && break
        sleep 0.1
    done
    [[ -n $url ]] || {
        echo "deploy-check.sh: no start-up line from ringserve within 5 s:" >&2
        cat "$work/$mode.stderr" >&2
        exit 1
    }
    echo "deploy-check ($mode, $url): $changes changes, $clients clients"
    python3 scripts/deploy/check.py --url "$url" --base "$base" --changes "$changes" \
        --clients "$clients" --timeout "$timeout" || status=1
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=
    # Any line from the server beyond its start-up line (a fallback it had to take, say).
    sed -n '2,$p' "$work/$mode.stderr"
done
exit $status

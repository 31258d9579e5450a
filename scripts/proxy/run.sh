#!/usr/bin/env bash
# Starts N ringserve origins and an nginx in front of them on loopback, prints the URLs, and
# runs until Ctrl-C (or, with a command after --, runs it with PROXY_URL and PROXY_ORIGINS —
# the origins' addresses, space-separated — in its environment, then stops everything).
#
#   scripts/proxy/run.sh [--instances N] [--root DIR] [--keep] [-- COMMAND...]
#
# Origins 0..N-2 listen on 127.0.0.1 (free ports), origin N-1 on a Unix socket; upstream
# weights 2,1,1,…; max_fails=1 fail_timeout=2s; upstream keepalive. nginx is installed with
# apt-get when missing and always run by hand in the foreground (never through systemd), with
# its pid file, logs and temp files in a temp dir. Everything is stopped on exit.
# RINGSERVE_BIN (default target/debug/ringserve) and RINGSERVE_MODE (default uring) choose
# what the origins run.
set -euo pipefail

usage() {
    sed -n '2,13s/^# \{0,1\}//p' "$0"
}

instances=3
cmd=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --instances) instances=${2:?}; shift 2 ;;
        --root) PROXY_ROOT=$(cd "${2:?}" && pwd); shift 2 ;;
        --keep) PROXY_KEEP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        --) shift; cmd=("$@"); break ;;
        *) usage >&2; exit 2 ;;
    esac
done
[[ $instances =~ ^[1-9][0-9]?$ ]] || { echo "run.sh: --instances must be 1..99" >&2; exit 2; }

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
proxy_init
trap proxy_stop_all EXIT
trap 'exit 130' INT TERM

weights=()
for ((i = 0; i < instances; i++)); do
    if ((i == instances - 1 && instances > 1)); then
        proxy_start_origin "$i" "unix:$PROXY_TMP/origin$i.sock"
    else
        proxy_start_origin "$i" 127.0.0.1:0
    fi
    weights+=($((i == 0 ? 2 : 1)))
    echo "origin $i: ${PROXY_ORIGIN_ADDRS[i]} (pid ${PROXY_ORIGIN_PIDS[i]}, log $PROXY_TMP/origin$i.log)"
done
proxy_start_nginx "${weights[@]}"
echo "nginx: $PROXY_URL/ (pid $PROXY_NGINX_PID, config $PROXY_TMP/nginx.conf)"

if [[ ${#cmd[@]} -gt 0 ]]; then
    PROXY_URL=$PROXY_URL PROXY_ORIGINS="${PROXY_ORIGIN_ADDRS[*]}" "${cmd[@]}"
else
    echo "Ctrl-C stops everything."
    while kill -0 "$PROXY_NGINX_PID" 2>/dev/null; do
        sleep 1
    done
    echo "run.sh: nginx exited" >&2
    exit 1
fi

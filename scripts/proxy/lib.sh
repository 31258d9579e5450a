# shellcheck shell=bash
# Shared by scripts/proxy/run.sh and scripts/proxy/test.sh: start ringserve origins and an
# nginx in front of them, on loopback, everything under one temporary directory, and stop all
# of it again. Source it; it defines functions and the PROXY_* variables, nothing runs.
#
# Layout of $PROXY_TMP:
#   origin<i>.log       access log of origin i        origin<i>.err  its stderr
#   origin<i>.sock      the Unix socket of origin i when it listens on one
#   nginx.conf, nginx.pid, error.log, access.log, nginx.out   nginx's own files
#
# Every wait is bounded (a count of short sleeps); processes are stopped by pid only.

PROXY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROXY_REPO=$(cd "$PROXY_DIR/../.." && pwd)
PROXY_TMP=${PROXY_TMP:-}
# Which binary and mode the origins run (override with RINGSERVE_BIN / RINGSERVE_MODE).
PROXY_BIN=${RINGSERVE_BIN:-$PROXY_REPO/target/debug/ringserve}
PROXY_MODE=${RINGSERVE_MODE:-uring}
PROXY_ROOT=${PROXY_ROOT:-$PROXY_REPO/www}
# Failover settings of every upstream line: one failure marks an origin down for 2 s.
PROXY_MAX_FAILS=1
PROXY_FAIL_TIMEOUT=2
PROXY_ORIGIN_PIDS=()   # index → pid ("" when stopped)
PROXY_ORIGIN_ADDRS=()  # index → 127.0.0.1:PORT or unix:/path (kept across restarts)
PROXY_NGINX_PID=
PROXY_PORT=
PROXY_URL=

proxy_die() {
    echo "proxy: $*" >&2
    exit 1
}

# Installs nginx with apt-get when it is missing. The package must not start its own service
# (on port 80, through systemd or an init script): a temporary policy-rc.d refuses every
# service start during the install (Debian's documented mechanism), unless one exists already.
proxy_need_nginx() {
    command -v nginx >/dev/null && return
    command -v apt-get >/dev/null || proxy_die "nginx missing and apt-get not available"
    local sudo=() policy=/usr/sbin/policy-rc.d placed=no
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        placed=yes
    fi
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y nginx || true
    [[ $placed == yes ]] && "${sudo[@]}" rm -f "$policy"
    command -v nginx >/dev/null || proxy_die "nginx still missing after apt-get install"
}

proxy_init() {
    [[ -x $PROXY_BIN ]] || proxy_die "no ringserve binary at $PROXY_BIN (run cargo build first)"
    [[ -d $PROXY_ROOT ]] || proxy_die "no site root at $PROXY_ROOT"
    proxy_need_nginx
    if [[ -z $PROXY_TMP ]]; then
        PROXY_TMP=$(mktemp -d /tmp/ringserve-proxy.XXXXXX)
    fi
    mkdir -p "$PROXY_TMP"
}

# proxy_start_origin I ADDR: starts origin I listening on ADDR (127.0.0.1:0, 127.0.0.1:PORT or
# unix:/path) and waits for its start-up line (at most 5 s); records its real address.
proxy_start_origin() {
    local i=$1 addr=$2 err="$PROXY_TMP/origin$1.err"
    : >"$err"
    "$PROXY_BIN" "$PROXY_ROOT" --mode "$PROXY_MODE" --listen "$addr" \
        --access-log "$PROXY_TMP/origin$i.log" \
        --trusted-proxy 127.0.0.1/32 --trusted-proxy unix: \
        --health-path /-/health --status-path /-/status \
        --drain-delay 1 --shutdown-grace 2 2>"$err" &
    PROXY_ORIGIN_PIDS[i]=$!
    local line= n
    for ((n = 0; n < 50; n++)); do
        line=$(grep -m1 '^ringserve: serving ' "$err" || true)
        [[ -n $line ]] && break
        kill -0 "${PROXY_ORIGIN_PIDS[i]}" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n $line ]] || {
        cat "$err" >&2
        proxy_die "origin $i did not start within 5 s"
    }
    case $line in
        *" at http://"*) addr=${line#* at http://}; addr=${addr%%/ (mode*} ;;
        *" at unix:"*) addr=unix:${line#* at unix:}; addr=${addr%% (mode*} ;;
        *) proxy_die "cannot read the address in: $line" ;;
    esac
    PROXY_ORIGIN_ADDRS[i]=$addr
}

# proxy_kill_origin I SIGNAL: signals origin I and reaps it (at most 5 s).
proxy_kill_origin() {
    local i=$1 sig=$2 pid=${PROXY_ORIGIN_PIDS[$1]} n
    [[ -n $pid ]] || return 0
    # stderr of the whole block: bash prints its "Killed" job notice whenever it reaps.
    {
        kill "-$sig" "$pid" || true
        for ((n = 0; n < 50; n++)); do
            kill -0 "$pid" || break
            sleep 0.1
        done
        kill -KILL "$pid" || true
        wait "$pid" || true
    } 2>/dev/null
    PROXY_ORIGIN_PIDS[i]=
}

# A port nothing listens on now (bash's /dev/tcp connect fails); nginx's bind may still race,
# which proxy_start_nginx handles by retrying.
proxy_free_port() {
    local port n
    for ((n = 0; n < 50; n++)); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    proxy_die "no free port found in 50 tries"
}

# proxy_start_nginx WEIGHT...: writes nginx.conf with one upstream line per origin (weights in
# origin order) and starts nginx; waits until it answers (at most 5 s, 3 port attempts).
proxy_start_nginx() {
    local weights=("$@") servers= i user_line= attempt n
    for i in "${!PROXY_ORIGIN_ADDRS[@]}"; do
        servers+="        server ${PROXY_ORIGIN_ADDRS[i]} weight=${weights[i]:-1} max_fails=$PROXY_MAX_FAILS fail_timeout=${PROXY_FAIL_TIMEOUT}s;"$'\n'
    done
    # As root, nginx would switch its workers to "nobody", who cannot enter this private temp
    # dir or connect to the 0660 sockets; on loopback for a test, keep root. (In production:
    # put nginx's user in ringserve's group instead.)
    [[ $(id -u) -eq 0 ]] && user_line="user root;"
    for ((attempt = 0; attempt < 3; attempt++)); do
        PROXY_PORT=$(proxy_free_port)
        sed -e "s|@TMP@|$PROXY_TMP|g" -e "s|@PORT@|$PROXY_PORT|g" -e "s|@USER@|$user_line|" \
            "$PROXY_DIR/nginx.conf.in" | awk -v servers="$servers" \
            '/@SERVERS@/ { printf "%s", servers; next } { print }' >"$PROXY_TMP/nginx.conf"
        nginx -p "$PROXY_TMP" -c "$PROXY_TMP/nginx.conf" -e "$PROXY_TMP/error.log" \
            >"$PROXY_TMP/nginx.out" 2>&1 &
        PROXY_NGINX_PID=$!
        PROXY_URL="http://127.0.0.1:$PROXY_PORT"
        for ((n = 0; n < 50; n++)); do
            if curl --silent --max-time 2 --output /dev/null "$PROXY_URL/-/health"; then
                return 0
            fi
            kill -0 "$PROXY_NGINX_PID" 2>/dev/null || break
            sleep 0.1
        done
        proxy_stop_nginx
        grep -q "Address already in use" "$PROXY_TMP/nginx.out" "$PROXY_TMP/error.log" \
            2>/dev/null || break
    done
    cat "$PROXY_TMP/nginx.out" "$PROXY_TMP/error.log" >&2 2>/dev/null || true
    proxy_die "nginx did not start"
}

proxy_stop_nginx() {
    local pid=$PROXY_NGINX_PID n workers child
    [[ -n $pid ]] || return 0
    # The workers, by pid, before the master goes (they would be orphaned, not killed).
    workers=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
    # QUIT: graceful stop of master and workers.
    kill -QUIT "$pid" 2>/dev/null || true
    for ((n = 0; n < 50; n++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for child in $workers; do
        # Still an nginx (not a recycled pid): a worker that outlived its master.
        if [[ $(ps -o comm= -p "$child" 2>/dev/null) == nginx ]]; then
            kill -KILL "$child" 2>/dev/null || true
        fi
    done
    PROXY_NGINX_PID=
}

# Stops nginx and every origin; removes the temp dir unless PROXY_KEEP=1. Safe to call twice.
proxy_stop_all() {
    local i
    proxy_stop_nginx
    for i in "${!PROXY_ORIGIN_PIDS[@]}"; do
        proxy_kill_origin "$i" TERM
    done
    if [[ -n $PROXY_TMP && ${PROXY_KEEP:-0} != 1 ]]; then
        rm -rf "$PROXY_TMP"
    fi
}

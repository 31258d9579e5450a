#!/usr/bin/env bash
# One-command benchmark: ringserve (uring and threaded modes) against nginx, lighttpd and h2o
# and the bare epoll loop (ceiling.c), same client (wrk), same files, interleaved runs, medians
# and ratios, idle memory, and the issue 4 and issue 12 targets checked against the
# measurements, in two profiles.
#
# usage: scripts/bench.sh [--profile dedicated|shared|both] [--runs N] [--duration S] [--quick]
#                         [--out DIR] [--connections N] [--idle-conns N] [--tests T1,T2,..]
#
#   --profile P      dedicated, shared or both (default both; see below)
#   --runs N         runs of each profile's matrix (default 3; --quick: 1)
#   --duration S     seconds per wrk run (default 5; --quick: 2)
#   --connections N  connections of the fixed-size tests (default 64)
#   --idle-conns N   idle keep-alive connections of the idle-memory step (default 10000, the
#                    issue 4 target's count; 0 skips the step; dedicated profile only)
#   --tests LIST     only these tests (of 128b 4k 64k 1m 100m churn c1000 cond sweep), for
#                    smoke runs; targets on the others then read "not measured"
#   --quick          smoke test: 1 run, 2 s, sweep 10/100/1000, no 5,000 (about 10 minutes
#                    for both profiles with the idle step; the 5,000-connection targets then
#                    read "not measured"). The full run (3 x 5 s, both profiles) takes about
#                    45 minutes.
#   --out DIR        output directory (default benches/results/<date>-<host>-<commit>)
#
# Profiles (issue 12), run one after the other, each with its own interleaved runs:
#   dedicated  on 2+ cores every server on cores 1.. (taskset), one worker per core there,
#              wrk on core 0: what a server costs when it has cores of its own. Tests 128b 4k
#              64k 1m 100m churn c1000 cond and the sweep; then the idle-memory step.
#   shared     no taskset anywhere; every server at its default worker count for the machine
#              (nginx worker_processes auto + worker_cpu_affinity auto, lighttpd
#              server.max-worker = cores, h2o num-threads = cores, ringserve with no flags but
#              --listen, the root, --max-conns and --status-path); one wrk thread free to run on
#              any core. Tests 128b 4k 64k 1m churn c1000; then "behind nginx on the same
#              cores": one more nginx (benches/peers/nginx-front.conf.in: keep-alive
#              upstreams, HTTP/1.1, buffering at its defaults) in front of every server, wrk
#              against it, tests 128b and 4k, CPU per request of the pair (front + origin).
#              Before and after each run of ringserve-uring, scripts/bench/workers.py reads
#              every worker's responses (--status-path counters) and its thread's CPU time
#              (/proc/PID/task/TID/stat of ringserve-wN): workers.csv (issue 12, item 5).
# ringserve runs with its defaults in both profiles (no --workers: under taskset it finds the
# cores it was given); --mode threaded for the threaded mode. The epoll loop (ceiling.c, a
# fixed 128-byte answer from memory) is compiled with gcc into the temp dir from
# $BENCH_CEILING_C (default ../shared/bench/ceiling.c beside the repository; it is not part of
# the repository) and serves the 128b, churn and c1000 tests (and 128b behind nginx); when
# the file is missing it is reported as "not measured: ceiling.c not found".
#
# Steps: cargo build --release; scripts/gen-assets.sh; apt-get install what is missing (wrk,
# nginx-light or nginx, lighttpd, h2o, gcc; a peer that cannot be installed is reported and
# skipped); peers get configs from benches/peers/*.conf.in in a temp dir and run by hand on
# loopback ports (never systemd). Each run goes test by test, server by server (interleaved),
# through scripts/load.sh, which also samples server CPU time (utime+stime of the whole
# process tree) per request. The full run sweeps 10, 100, 1,000 and 5,000 connections (128 B
# file, dedicated profile).
# Idle memory, after the dedicated matrix: every server is stopped; then one at a time each is started
# afresh (same command line, so memory pooled during the load cannot hide what connections
# cost), scripts/bench/idle_memory.py opens --idle-conns keep-alive
# connections (one GET each) and reads the server tree's RSS before and with them open, and
# the server is stopped again. A server that refuses, resets, closes or stalls is recorded as
# FAIL with the reason. Each measurement is bounded (timeout, 330 s).
# Writes report.md (per profile the "Targets (issue 12)" table, for the dedicated profile also
# "Targets (issue 4)"), results.csv (a profile column: dedicated, shared, behind-nginx),
# workers.csv, idle.csv, targets.csv (issue 4), targets-issue12.csv, concurrency.svg and raw/
# (wrk and idle outputs, server logs, peer configs).
# Every server started here is killed by PID on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)

runs=""
duration=""
quick=0
out=""
conns=64
idle_conns=10000
profile=both
only=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        --out) out=$2; shift 2 ;;
        --connections) conns=$2; shift 2 ;;
        --idle-conns) idle_conns=$2; shift 2 ;;
        --profile) profile=$2; shift 2 ;;
        --tests) only=$2; shift 2 ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if ((quick)); then
    runs=${runs:-1}; duration=${duration:-2}; sweep=(10 100 1000)
else
    runs=${runs:-3}; duration=${duration:-5}; sweep=(10 100 1000 5000)
fi
for v in "$runs" "$duration" "$conns"; do
    [[ $v =~ ^[0-9]+$ && $v -gt 0 ]] || { echo "bench.sh: bad number '$v'" >&2; exit 2; }
done
[[ $idle_conns =~ ^[0-9]+$ ]] || { echo "bench.sh: bad number '$idle_conns'" >&2; exit 2; }
case $profile in
    dedicated | shared) profiles=("$profile") ;;
    both) profiles=(dedicated shared) ;;
    *) echo "bench.sh: --profile must be dedicated, shared or both" >&2; exit 2 ;;
esac
all_tests=(128b 4k 64k 1m 100m churn c1000 cond sweep)
for t in ${only//,/ }; do
    [[ " ${all_tests[*]} " == *" $t "* ]] || { echo "bench.sh: unknown test '$t' (${all_tests[*]})" >&2; exit 2; }
done
pick() { # pick TEST...: the tests --tests keeps (all without it)
    local t
    for t in "$@"; do
        if [[ -z $only || ",$only," == *",$t,"* ]]; then echo "$t"; fi
    done
}
mapfile -t dedicated_tests < <(pick 128b 4k 64k 1m 100m churn c1000 cond)
mapfile -t shared_tests < <(pick 128b 4k 64k 1m churn c1000)
mapfile -t proxy_tests < <(pick 128b 4k) # behind nginx
[[ -n $(pick sweep) ]] || sweep=()
ceiling_tests=" 128b churn c1000 " # the epoll loop answers 128 B to everything

log() { echo "bench.sh: $*" >&2; }
started=$(date +%s)
cells=0 # wrk runs per pass over the matrix, for the time estimate (about 2 s of overhead each)
for pr in "${profiles[@]}"; do
    if [[ $pr == dedicated ]]; then set -- "${dedicated_tests[@]}" "${sweep[@]}"; else set -- "${shared_tests[@]}"; fi
    cells=$((cells + 5 * $#))
    for t in "$@"; do [[ $ceiling_tests == *" $t "* ]] && cells=$((cells + 1)); done
    if [[ $pr == shared ]]; then
        cells=$((cells + 5 * ${#proxy_tests[@]}))
        [[ " ${proxy_tests[*]} " == *" 128b "* ]] && cells=$((cells + 1))
    fi
done
idle_note=""
[[ " ${profiles[*]} " == *" dedicated "* ]] && ((idle_conns > 0)) && idle_note=" and the idle-memory step"
log "profiles ${profiles[*]}: $((cells * runs)) wrk runs of ${duration} s, about $(((cells * runs * (duration + 2) + 59) / 60)) min plus the build$idle_note"

# ---------------------------------------------------------------- temp dir and cleanup
tmp=$(mktemp -d /tmp/ringserve-bench.XXXXXX)
chmod 755 "$tmp" # nginx and h2o workers drop root privileges and must read the stand-in tree
pids=()
cleanup() {
    local pid i
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
forget_pid() { # forget_pid PID: drop a reaped PID from pids, so cleanup never signals a reused one
    local keep=() p
    for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    pids=("${keep[@]}")
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- packages
apt_updated=0
apt_install() { # apt_install PKG: 0 when installed
    if ((!apt_updated)); then
        apt-get update >/dev/null 2>&1 || true
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$1" >"$tmp/apt-$1.log" 2>&1
}
has_candidate() {
    apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'
}

command -v wrk >/dev/null || apt_install wrk || { log "cannot install wrk"; exit 1; }
command -v taskset >/dev/null || apt_install util-linux || true

declare -A missing=()
if ! command -v nginx >/dev/null; then
    ok=0
    for p in nginx-light nginx; do
        if has_candidate "$p" || ! ((apt_updated)); then
            apt_install "$p" && command -v nginx >/dev/null && { ok=1; break; }
        fi
    done
    ((ok)) || missing[nginx]="no installable nginx-light/nginx package"
fi
command -v lighttpd >/dev/null || apt_install lighttpd || missing[lighttpd]="apt-get install lighttpd failed"
command -v h2o >/dev/null || apt_install h2o || missing[h2o]="apt-get install h2o failed"
# The bare epoll loop: compiled from outside the repository (see the header).
ceiling_src=${BENCH_CEILING_C:-$repo/../shared/bench/ceiling.c}
ceiling_bin=""
if [[ ! -f $ceiling_src ]]; then
    missing[epoll-loop]="not measured: ceiling.c not found at $ceiling_src (set BENCH_CEILING_C)"
else
    ceiling_src=$(cd "$(dirname "$ceiling_src")" && pwd)/$(basename "$ceiling_src")
    command -v gcc >/dev/null || apt_install gcc || true
    if gcc -O2 -pthread -o "$tmp/ceiling" "$ceiling_src" 2>"$tmp/ceiling-cc.log"; then
        ceiling_bin=$tmp/ceiling
    else
        missing[epoll-loop]="not measured: gcc could not compile $ceiling_src: $(tail -1 "$tmp/ceiling-cc.log")"
    fi
fi
for p in nginx lighttpd h2o; do
    [[ -n ${missing[$p]:-} ]] || command -v "$p" >/dev/null || missing[$p]="not installed"
done

# ---------------------------------------------------------------- build and assets
log "building ringserve (release)"
cargo build --release --quiet
bin="$repo/target/release/ringserve"

root="$repo/www"
need=(assets/128b.txt assets/4k.txt assets/64k.bin assets/generated/1m.bin assets/generated/100m.bin)
if [[ -x scripts/gen-assets.sh && -d www/assets ]]; then
    scripts/gen-assets.sh >&2
fi
lack=0
for f in "${need[@]}"; do [[ -f $root/$f ]] || lack=1; done
root_note="the repository's www/ (with scripts/gen-assets.sh assets)"
if ((lack)); then
    # The repository has not got the assets yet: serve a copy with deterministic stand-ins.
    log "www/ lacks some load-test assets; serving a generated stand-in tree"
    root="$tmp/www"
    mkdir -p "$root/assets/generated"
    [[ -d $repo/www ]] && cp -r "$repo/www/." "$root/"
    mk() { [[ -f $root/$1 ]] || head -c "$2" </dev/zero | tr '\0' 'a' >"$root/$1"; }
    mk assets/128b.txt 128
    mk assets/4k.txt 4096
    mk assets/64k.bin 65536
    mk assets/generated/1m.bin 1048576
    mk assets/generated/100m.bin 104857600
    root_note="a stand-in tree (www/ lacked the assets): files of the same sizes, same paths"
fi
root=$(cd "$root" && pwd)

# ---------------------------------------------------------------- cores and limits
ncpu=$(nproc)
prof=""
set_profile() { # set_profile NAME: cores, pinning and worker counts of one profile
    prof=$1
    spin=()
    client_cpu=""
    nginx_affinity=""
    if [[ $prof == shared ]]; then
        workers=$ncpu
        nginx_workers=auto
        nginx_affinity="worker_cpu_affinity auto;"
        pin_note="nothing pinned by the harness (no taskset), one wrk thread free to run on any core; every server at its default worker count for $ncpu core(s): nginx worker_processes auto with worker_cpu_affinity auto, lighttpd server.max-worker $ncpu, h2o num-threads $ncpu, ringserve without worker or pinning flags (only --listen, --max-conns and --status-path $status_path for the per-worker counters), the epoll loop $ncpu threads"
    elif ((ncpu >= 2)); then
        local server_cpus=1
        ((ncpu > 2)) && server_cpus="1-$((ncpu - 1))"
        client_cpu=0
        workers=$((ncpu - 1))
        nginx_workers=$workers
        spin=(taskset -c "$server_cpus")
        pin_note="servers pinned to core(s) $server_cpus (taskset), wrk to core 0; $workers worker(s)/thread(s) each (ringserve finds its count from the CPU set it was given)"
    else
        workers=1
        nginx_workers=1
        pin_note="single core: nothing pinned, one worker each"
    fi
}
# Descriptors: the idle step's client and each server need one per idle connection, lighttpd
# two (it refuses more connections than half its max-fds). Raising the hard limit needs
# CAP_SYS_RESOURCE; without it the hard limit stays and is what the peers are told.
want_fds=$((2 * idle_conns + 4096))
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < want_fds)); then
    ulimit -Hn "$want_fds" 2>/dev/null || true
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
max_fds=$(ulimit -n)
[[ $max_fds == unlimited ]] && max_fds=1048576
((max_fds > 1048576)) && max_fds=1048576
# Connection caps of every server: the 5,000 sweep and the idle step, plus a margin for
# the idle step's warm-up connections and the harness's own probes.
max_conns=$((idle_conns + 2000))
((max_conns < 12000)) && max_conns=12000
rs_max_conns=$((max_conns > 20000 ? max_conns : 20000)) # ringserve's cap as before this step
lighttpd_conns=$max_conns
limits_note="descriptor limit $max_fds per process; connection caps: ringserve --max-conns $rs_max_conns, $max_conns for nginx (worker_connections), h2o (max-connections)"
if ((lighttpd_conns > max_fds / 2)); then
    lighttpd_conns=$((max_fds / 2))
    limits_note+=", lighttpd $lighttpd_conns (it allows at most half its max-fds, $max_fds here)"
else
    limits_note+=" and lighttpd"
fi

commit=$(git rev-parse --short HEAD 2>/dev/null || echo nogit)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | head -c1 || true)
stamp=$(date -u +%Y%m%d-%H%M)
host=$(hostname -s 2>/dev/null || hostname)
out=${out:-benches/results/$stamp-$host-$commit}
mkdir -p "$out/raw"
out=$(cd "$out" && pwd)
csv="$out/results.csv"
meta="$out/raw/meta.txt"
: >"$meta"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
render() { # render TEMPLATE DEST PORT DIR
    sed -e "s|@ROOT@|$root|g" -e "s|@PORT@|$3|g" -e "s|@TMP@|$4|g" -e "s|@WORKERS@|$workers|g" \
        -e "s|@NGINX_WORKERS@|$nginx_workers|g" -e "s|@NGINX_AFFINITY@|$nginx_affinity|g" \
        -e "s|@MAXWORKER@|$( ((workers > 1)) && echo "server.max-worker = $workers")|g" \
        -e "s|@MAXFDS@|$max_fds|g" -e "s|@MAXCONNS@|$max_conns|g" \
        -e "s|@LIGHTTPD_CONNS@|$lighttpd_conns|g" \
        "$1" >"$2"
}
wait_up() { # wait_up PORT PID: 0 when the port answers
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$2" 2>/dev/null || return 1
        curl -s -o /dev/null -m 1 "http://127.0.0.1:$1/assets/128b.txt" && return 0
        sleep 0.1
    done
    return 1
}

declare -A port=() pid=() version=() note=() startline=() front_port=()
servers=()
start_err=""
status_path=/-/status # shared profile: the per-worker counters of issue 12, item 5
registered() { [[ " ${servers[*]} " == *" $1 "* ]]; }

# start_ringserve / start_peer start a server (again, for the idle step, with the same command
# line), set port[] and pid[], and list it in servers the first time; on failure they return 1
# with the reason in start_err.
start_ringserve() { # start_ringserve MODE: its defaults, no worker or pinning flag
    local name=ringserve-$1 p args=()
    p=$(free_port)
    [[ $1 == uring ]] || args+=(--mode "$1")
    [[ $prof == shared && $1 == uring ]] && args+=(--status-path "$status_path")
    "${spin[@]}" "$bin" "$root" --listen "127.0.0.1:$p" "${args[@]}" \
        --max-conns "$rs_max_conns" 2>"$tmp/$name.err" &
    local child=$!
    pids+=("$child")
    port[$name]=$p; pid[$name]=$child
    if ! wait_up "$p" "$child"; then
        log "$name did not start:"; cat "$tmp/$name.err" >&2
        start_err="did not start: $(tail -1 "$tmp/$name.err")"
        stop_server "$name"
        return 1
    fi
    local line running count
    line=$(grep -m1 '^ringserve: serving ' "$tmp/$name.err" || true)
    running=$(sed -n 's/.*(mode \([a-z]*\).*/\1/p' <<<"$line")
    count=$(sed -n 's/.*(mode [a-z]*, \([0-9]*\) workers\{0,1\}.*/\1/p' <<<"$line")
    registered "$name" || echo "$prof $name: $line" >>"$meta"
    startline[$prof.$name]=$line
    if [[ $running == uring && $count != "$workers" ]] && ! registered "$name"; then
        note[$prof.$name]="its start-up line says ${count:-?} worker(s) where this profile has $workers core(s) for it"
    fi
    if [[ $running != "$1" ]]; then
        # Never present another mode as this one: record it and leave it out.
        start_err="asked for --mode $1, the start-up line says mode ${running:-unknown} (not built); left out"
        log "$start_err"
        stop_server "$name"
        return 1
    fi
    if ! registered "$name"; then
        version[$name]="ringserve $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
        servers+=("$name")
    fi
}

start_ceiling() { # the bare epoll loop, one thread per core of the profile
    local name=epoll-loop p
    if [[ -z $ceiling_bin ]]; then
        start_err=${missing[epoll-loop]}
        return 1
    fi
    p=$(free_port)
    "${spin[@]}" "$ceiling_bin" "$p" "$workers" >"$tmp/$name.err" 2>&1 &
    local child=$!
    pids+=("$child")
    port[$name]=$p; pid[$name]=$child
    if ! wait_up "$p" "$child"; then
        log "$name did not start:"; cat "$tmp/$name.err" >&2
        start_err="did not start: $(tail -1 "$tmp/$name.err")"
        stop_server "$name"
        return 1
    fi
    version[$name]="ceiling.c ($ceiling_src, gcc -O2 -pthread), fixed 128-byte answer from memory"
    startline[$prof.$name]="$workers thread(s)"
    registered "$name" || servers+=("$name")
}

start_peer() { # start_peer NAME
    local name=$1 p dir="$tmp/$1"
    if [[ -n ${missing[$name]:-} ]]; then
        start_err="not run: ${missing[$name]}"
        return 1
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 777 "$dir" # logs written after the workers dropped privileges
    p=$(free_port)
    local conf="$dir/$name.conf"
    render "benches/peers/$name.conf.in" "$conf" "$p" "$dir"
    case "$name" in
        nginx) "${spin[@]}" nginx -e "$dir/error.log" -p "$dir" -c "$conf" >"$dir/out.log" 2>&1 &
            version[$name]=$(nginx -v 2>&1 | sed 's/^nginx version: //') ;;
        # setsid: with server.max-worker, lighttpd's master stops its workers with a SIGTERM
        # to its whole process group, which would otherwise be this script's.
        lighttpd) "${spin[@]}" setsid lighttpd -D -f "$conf" >"$dir/out.log" 2>&1 &
            version[$name]=$(lighttpd -v 2>&1 | head -1 | cut -d' ' -f1) ;;
        h2o) "${spin[@]}" h2o -c "$conf" >"$dir/out.log" 2>&1 &
            version[$name]=$(h2o --version 2>&1 | head -1) ;;
    esac
    local child=$!
    pids+=("$child")
    port[$name]=$p; pid[$name]=$child
    if ! wait_up "$p" "$child"; then
        log "$name did not start:"; cat "$dir/out.log" "$dir/error.log" 2>/dev/null | tail -5 >&2
        start_err="did not start (see raw/$name.log)"
        cat "$dir/out.log" "$dir/error.log" >"$out/raw/$name.log" 2>/dev/null || true
        stop_server "$name"
        return 1
    fi
    if ! registered "$name"; then
        cp "$conf" "$out/raw/$prof-$name.conf"
        servers+=("$name")
    fi
}

stop_server() { # stop_server NAME: SIGTERM, up to 5 s, then SIGKILL; by PID, and reaped
    local child=${pid[$1]:-} i
    [[ -n $child ]] || return 0
    kill -TERM "$child" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$child" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
    forget_pid "$child"
    unset "pid[$1]"
}

cpu_busy() { # share of all CPUs busy over the next 2 s, from /proc/stat
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
    sleep 2
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN{split(a,x," "); split(b,y," "); d=y[2]-x[2];
        printf "%.0f%%", (d > 0 ? 100*(y[1]-x[1])/d : 0)}'
}
# ---------------------------------------------------------------- nginx in front (shared)
front_pid=""
start_front() { # start_front: one nginx in front of every server of the profile, a port each
    local dir="$tmp/front" s i=0 p
    front_port=()
    if [[ -n ${missing[nginx]:-} ]]; then
        start_err="not run: ${missing[nginx]}"
        return 1
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 777 "$dir"
    : >"$dir/routes.conf"
    for s in "${servers[@]}"; do
        p=$(free_port)
        front_port[$s]=$p
        # One upstream per origin; the Host header names the origin, as a site's own name would.
        cat >>"$dir/routes.conf" <<EOF
# $s
upstream origin$i {
    server 127.0.0.1:${port[$s]};
    keepalive 128;
    keepalive_requests 1000000;
}
server {
    listen 127.0.0.1:$p backlog=4096 reuseport;
    location / {
        proxy_pass http://origin$i;
        proxy_set_header Host 127.0.0.1:${port[$s]};
        proxy_set_header Connection "";
    }
}
EOF
        i=$((i + 1))
    done
    render benches/peers/nginx-front.conf.in "$dir/nginx.conf" 0 "$dir"
    nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" >"$dir/out.log" 2>&1 &
    front_pid=$!
    pids+=("$front_pid")
    cat "$dir/nginx.conf" "$dir/routes.conf" >"$out/raw/front-nginx.conf"
    for s in "${servers[@]}"; do
        if ! wait_up "${front_port[$s]}" "$front_pid"; then
            note[behind-nginx.$s]="nginx in front did not answer (see raw/front-nginx.log)"
            log "behind nginx: $s does not answer through nginx"
            unset "front_port[$s]"
        fi
    done
    if ! kill -0 "$front_pid" 2>/dev/null; then
        start_err="nginx in front did not start (see raw/front-nginx.log)"
        cat "$dir/out.log" "$dir/error.log" >"$out/raw/front-nginx.log" 2>/dev/null || true
        front_pid=""
        return 1
    fi
}
stop_front() {
    [[ -n $front_pid ]] || return 0
    pid[front-nginx]=$front_pid
    stop_server front-nginx
    cat "$tmp/front/out.log" "$tmp/front/error.log" >"$out/raw/front-nginx.log" 2>/dev/null || true
    front_pid=""
}

# ---------------------------------------------------------------- one load run
echo "profile,run,server,test,conns,requests,rps,mibps,p50_ms,p99_ms,cpu_us_per_req,errors,status" >"$csv"
workers_csv="$out/workers.csv"
echo "profile,run,server,test,worker,requests,cpu_ticks,cpus_allowed" >"$workers_csv"
failures=0
samples=0
busy_samples=0
sample_busy() { # is anyone else compiling? (the machine is shared)
    local n
    # Not pgrep: it refuses patterns longer than the 15-character process name.
    # shellcheck disable=SC2009
    n=$(ps -eo comm= | grep -cE '^(rustc|cargo|cc1|cc1plus|ld|ld.lld|ld.gold|lld|mold|clang|cc|c\+\+|gcc|g\+\+)$' || true)
    samples=$((samples + 1))
    ((n > 0)) && busy_samples=$((busy_samples + 1))
    return 0
}
worker_snap() { # worker_snap SERVER FILE: per-worker counters and thread CPU (uring, shared)
    python3 scripts/bench/workers.py snap "${pid[$1]}" "http://127.0.0.1:${port[$1]}$status_path" \
        "$2" 2>>"$tmp/workers.err"
}
run_cell() { # run_cell PROFILE RUN SERVER TEST URL PIDS: one wrk run into results.csv
    local pr=$1 r=$2 s=$3 t=$4 url=$5 spids=$6 lt=$4 res="$tmp/res.tsv" extra=() snap=0
    local name c req rps mib p50 p99 cpu errs st
    [[ $t == sweep* ]] && lt=c${t#sweep}
    : >"$res"
    [[ -n $client_cpu ]] && extra=(--client-cpu "$client_cpu")
    sample_busy
    if [[ $pr != dedicated && $s == ringserve-uring ]] && worker_snap "$s" "$tmp/w0.tsv"; then
        snap=1
    fi
    if ! scripts/load.sh "$url" --only "$lt" --duration "$duration" \
        --connections "$conns" --threads 1 --server-pid "$spids" "${extra[@]}" \
        --raw "$tmp/raw1" --results "$res" --no-header >"$tmp/load.out" 2>&1; then
        failures=$((failures + 1))
        log "FAILED: $pr, run $r, $s, $t:"; sed 's/^/    /' "$tmp/load.out" >&2
    fi
    if ((snap)) && worker_snap "$s" "$tmp/w1.tsv"; then
        python3 scripts/bench/workers.py delta "$tmp/w0.tsv" "$tmp/w1.tsv" "$pr,$r,$s,$t" \
            >>"$workers_csv"
    fi
    mkdir -p "$out/raw/$pr/r$r/$s"
    if [[ -f $tmp/raw1/$lt.txt ]]; then mv "$tmp/raw1/$lt.txt" "$out/raw/$pr/r$r/$s/$t.txt"; fi
    while IFS=$'\t' read -r name c req rps mib p50 p99 cpu errs st; do
        echo "$pr,$r,$s,$t,$c,$req,$rps,$mib,$p50,$p99,$cpu,$errs,$st" >>"$csv"
    done <"$res"
    [[ -s $res ]] || echo "$pr,$r,$s,$t,,0,0,0,0,0,,-1,FAIL" >>"$csv"
}
serves() { # serves SERVER TEST: the epoll loop answers 128 B to everything, so only those
    [[ $1 != epoll-loop || $ceiling_tests == *" $2 "* ]]
}

# ---------------------------------------------------------------- idle memory
# One server at a time, nothing else running: every matrix server is stopped first, and each
# is measured on a fresh start with its matrix command line (see the header for why).
idle_csv="$out/idle.csv"
echo "server,conns,still_open,rss_before_kib,rss_after_kib,bytes_per_conn,seconds,status,reason" >"$idle_csv"
idle_secs=0
idle_row() { # idle_row SERVER STATUS REASON [FILE]: one idle.csv line from idle_memory.py's output
    local f=${4:-/dev/null} reason=${3//\"/\'}
    kv() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$f" | tail -1; }
    echo "$1,$idle_conns,$(kv 'still open'),$(kv 'rss before KiB'),$(kv 'rss after KiB'),$(kv 'bytes per idle connection'),${secs:-},$2,\"$reason\"" >>"$idle_csv"
}
idle_step() {
    local s f t0 rc why cpin=() idle_started
    idle_started=$(date +%s)
    for s in "${servers[@]}"; do stop_server "$s"; done
    [[ -n $client_cpu ]] && cpin=(taskset -c "$client_cpu")
    for s in "${servers[@]}"; do
        [[ $s == epoll-loop ]] && continue # not a server: no idle-memory target
        secs=""
        if [[ $s == ringserve-* ]]; then start_ringserve "${s#ringserve-}"; else start_peer "$s"; fi ||
            { idle_row "$s" error "could not restart it for the measurement: $start_err"; continue; }
        log "idle memory: $s, $idle_conns connections"
        f="$out/raw/idle-$s.txt"
        t0=$(date +%s)
        set +e
        timeout --foreground -k 5 330 "${cpin[@]}" python3 scripts/bench/idle_memory.py 127.0.0.1 "${port[$s]}" \
            "${pid[$s]}" --conns "$idle_conns" >"$f" 2>"$tmp/idle.err"
        rc=$?
        set -e
        secs=$(($(date +%s) - t0))
        kill -0 "${pid[$s]}" 2>/dev/null || echo "failure	the server exited during the measurement" >>"$f"
        why=$(awk -F'\t' '$1 == "failure" { print $2 }' "$f" | tail -1)
        case $rc in
            0) idle_row "$s" ok "" "$f" ;;
            1) if [[ -n $why ]]; then idle_row "$s" FAIL "$why" "$f"; else
                idle_row "$s" error "idle_memory.py exit 1: $(tail -1 "$tmp/idle.err")" "$f"; fi ;;
            124 | 137) idle_row "$s" error "no result within 330 s (timeout)" "$f" ;;
            *) idle_row "$s" error "${why:-idle_memory.py exit $rc: $(tail -1 "$tmp/idle.err")}" "$f" ;;
        esac
        [[ $rc == 0 ]] || log "idle memory: $s: ${why:-exit $rc}"
        stop_server "$s"
    done
    idle_secs=$(($(date +%s) - idle_started))
}

# ---------------------------------------------------------------- the profiles
sweep_tests=()
for c in "${sweep[@]}"; do sweep_tests+=("sweep$c"); done
declare -A prof_servers=() prof_pinning=() prof_workers=() prof_tests=()
busy_before=$(cpu_busy)
for pr in "${profiles[@]}"; do
    set_profile "$pr"
    servers=()
    start_ringserve threaded || note[$pr.ringserve-threaded]=$start_err
    start_ringserve uring || note[$pr.ringserve-uring]=$start_err
    for peer in nginx lighttpd h2o; do start_peer "$peer" || note[$pr.$peer]=$start_err; done
    start_ceiling || note[$pr.epoll-loop]=$start_err
    ((${#servers[@]})) || { log "$pr: no server started"; exit 1; }
    if [[ $pr == dedicated ]]; then
        ptests=("${dedicated_tests[@]}" "${sweep_tests[@]}")
    else
        ptests=("${shared_tests[@]}")
        if ((${#proxy_tests[@]})); then
            start_front || for s in "${servers[@]}"; do note[behind-nginx.$s]=$start_err; done
        fi
    fi
    prof_servers[$pr]="${servers[*]}"
    prof_pinning[$pr]=$pin_note
    prof_workers[$pr]=$workers
    prof_tests[$pr]="${ptests[*]}"
    log "$pr profile: servers ${servers[*]}; runs $runs x ${duration}s; $pin_note"
    for ((r = 1; r <= runs; r++)); do
        for t in "${ptests[@]}"; do
            for s in "${servers[@]}"; do
                serves "$s" "$t" || continue
                run_cell "$pr" "$r" "$s" "$t" "http://127.0.0.1:${port[$s]}" "${pid[$s]}"
            done
            log "$pr, run $r/$runs: $t done ($(($(date +%s) - started)) s elapsed)"
        done
        [[ -n $front_pid ]] || continue
        for t in "${proxy_tests[@]}"; do
            for s in "${servers[@]}"; do
                if [[ -z ${front_port[$s]:-} ]] || ! serves "$s" "$t"; then continue; fi
                run_cell behind-nginx "$r" "$s" "$t" "http://127.0.0.1:${front_port[$s]}" \
                    "$front_pid,${pid[$s]}"
            done
            log "behind nginx, run $r/$runs: $t done ($(($(date +%s) - started)) s elapsed)"
        done
    done
    stop_front
    if [[ $pr == dedicated ]] && ((idle_conns > 0)); then idle_step; fi
    for s in "${servers[@]}"; do stop_server "$s"; done
    for s in "${servers[@]}"; do
        [[ -f $tmp/$s.err ]] && cp "$tmp/$s.err" "$out/raw/$pr-$s.log"
    done
done
[[ -s $tmp/workers.err ]] && { log "workers.py:"; sort -u "$tmp/workers.err" | head -5 >&2; }

# ---------------------------------------------------------------- report
if ((busy_samples)); then
    busy="SHARED: other compilations (rustc/cc/ld) were running at $busy_samples of $samples load runs"
else
    busy="no other compilation seen at any of the $samples load runs"
fi
busy="$busy; CPU busy before the servers started: $busy_before, after the last run: $(cpu_busy)"
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit=$commit${dirty:+ (dirty working tree)}"
    echo "host=$host"
    echo "kernel=$(uname -srm)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "cores=$ncpu"
    echo "wrk=$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
    for s in "${!version[@]}"; do echo "version.$s=${version[$s]}"; done
    for k in "${!startline[@]}"; do echo "startline.$k=${startline[$k]}"; done
    for k in "${!note[@]}"; do echo "note.$k=${note[$k]}"; done
    echo "profiles=${profiles[*]}"
    for k in "${!prof_servers[@]}"; do
        echo "servers.$k=${prof_servers[$k]}"
        echo "pinning.$k=${prof_pinning[$k]}"
        echo "workers.$k=${prof_workers[$k]}"
        echo "tests.$k=${prof_tests[$k]}"
    done
    command -v nginx >/dev/null && echo "front=nginx $(nginx -v 2>&1 | sed 's/^nginx version: nginx\///') in front (benches/peers/nginx-front.conf.in): worker_processes auto, worker_cpu_affinity auto, keep-alive upstream (keepalive 128, keepalive_requests 1000000), proxy_http_version 1.1, Connection \"\", buffering at its defaults"
    echo "status_path=$status_path"
    echo "clk_tck=$(getconf CLK_TCK)"
    echo "runs=$runs"
    echo "duration=$duration"
    echo "connections=$conns"
    echo "sweep=${sweep[*]}"
    echo "idle_conns=$idle_conns"
    echo "idle_seconds=$idle_secs"
    echo "limits=$limits_note"
    echo "root=$root_note"
    echo "elapsed=$(( $(date +%s) - started ))"
    echo "busy=$busy"
    echo "failures=$failures"
} >"$out/raw/meta.env"
python3 scripts/bench/report.py "$out" >&2
log "wrote $out/report.md, results.csv, workers.csv, idle.csv, targets.csv, targets-issue12.csv, concurrency.svg ($(( $(date +%s) - started )) s)"
if ((failures)); then
    log "FAILED: $failures load run(s) had errors or unexpected statuses; see report.md"
    exit 1
fi

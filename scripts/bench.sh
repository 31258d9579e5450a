#!/usr/bin/env bash
# One-command benchmark: ringserve (uring and threaded modes) against nginx, lighttpd and h2o,
# same client (wrk), same files, interleaved runs, medians and ratios, idle memory, and the
# issue 4 targets checked against the measurements.
#
# usage: scripts/bench.sh [--runs N] [--duration S] [--quick] [--out DIR] [--connections N]
#                         [--idle-conns N]
#
#   --runs N         runs of the whole matrix (default 3; --quick: 1)
#   --duration S     seconds per wrk run (default 5; --quick: 2)
#   --connections N  connections of the fixed-size tests (default 64)
#   --idle-conns N   idle keep-alive connections of the idle-memory step (default 10000, the
#                    issue 4 target's count; 0 skips the step)
#   --quick          smoke test: 1 run, 2 s, sweep 10/100/1000, no 5,000 (about 4 minutes;
#                    the 5,000-connection targets then read "not measured")
#   --out DIR        output directory (default benches/results/<date>-<host>-<commit>)
#
# Steps: cargo build --release; scripts/gen-assets.sh; apt-get install what is missing (wrk,
# nginx-light or nginx, lighttpd, h2o; a peer that cannot be installed is reported and
# skipped); peers get configs from benches/peers/*.conf.in in a temp dir and run by hand on
# loopback ports (never systemd). On 2+ cores the servers are pinned to cores 1.. and wrk to
# core 0. Each run goes test by test, server by server (interleaved), through scripts/load.sh,
# which also samples server CPU time (utime+stime of the whole process tree) per request.
# The full run sweeps 10, 100, 1,000 and 5,000 connections (128 B file).
# Idle memory, after the matrix: every server is stopped; then one at a time each is started
# afresh (same command line, so memory pooled during the load cannot hide what connections
# cost), scripts/bench/idle_memory.py opens --idle-conns keep-alive
# connections (one GET each) and reads the server tree's RSS before and with them open, and
# the server is stopped again. A server that refuses, resets, closes or stalls is recorded as
# FAIL with the reason. Each measurement is bounded (timeout, 330 s).
# Writes report.md (with the "Targets (issue 4)" table), results.csv, idle.csv, targets.csv,
# concurrency.svg and raw/ (wrk and idle outputs, server logs, peer configs).
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
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        --out) out=$2; shift 2 ;;
        --connections) conns=$2; shift 2 ;;
        --idle-conns) idle_conns=$2; shift 2 ;;
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
tests=(128b 4k 64k 1m 100m churn c1000 cond)

log() { echo "bench.sh: $*" >&2; }
started=$(date +%s)

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
if ((ncpu >= 2)); then
    client_cpu=0
    server_cpus=1
    ((ncpu > 2)) && server_cpus="1-$((ncpu - 1))"
    workers=$((ncpu - 1))
    pin_note="servers pinned to core(s) $server_cpus, wrk to core 0"
else
    client_cpu=""
    server_cpus=""
    workers=1
    pin_note="single core: nothing pinned"
fi
spin=()
[[ -n $server_cpus ]] && spin=(taskset -c "$server_cpus")
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

declare -A port=() pid=() version=() note=()
servers=()
start_err=""
registered() { [[ " ${servers[*]} " == *" $1 "* ]]; }

# start_ringserve / start_peer start a server (again, for the idle step, with the same command
# line), set port[] and pid[], and list it in servers the first time; on failure they return 1
# with the reason in start_err.
start_ringserve() { # start_ringserve MODE
    local name=ringserve-$1 p
    p=$(free_port)
    "${spin[@]}" "$bin" "$root" --listen "127.0.0.1:$p" --mode "$1" --workers "$workers" \
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
    local line running
    line=$(grep -m1 '^ringserve: serving ' "$tmp/$name.err" || true)
    running=$(sed -n 's/.*(mode \([a-z]*\).*/\1/p' <<<"$line")
    registered "$name" || echo "$name: $line" >>"$meta"
    if [[ $running != "$1" ]]; then
        # Never present another mode as this one: record it and leave it out.
        start_err="asked for --mode $1, the start-up line says mode ${running:-unknown} (not built); left out"
        log "$start_err"
        stop_server "$name"
        return 1
    fi
    if ! registered "$name"; then
        version[$name]="ringserve $(git rev-parse --short HEAD 2>/dev/null || echo '?') ($line)"
        servers+=("$name")
    fi
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
        lighttpd) "${spin[@]}" lighttpd -D -f "$conf" >"$dir/out.log" 2>&1 &
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
        cp "$conf" "$out/raw/$name.conf"
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
busy_before=$(cpu_busy)
start_ringserve threaded || note[ringserve-threaded]=$start_err
start_ringserve uring || note[ringserve-uring]=$start_err
for peer in nginx lighttpd h2o; do start_peer "$peer" || note[$peer]=$start_err; done
((${#servers[@]})) || { log "no server started"; exit 1; }
log "servers: ${servers[*]}; runs $runs x ${duration}s; $pin_note"

# ---------------------------------------------------------------- the matrix, interleaved
echo "run,server,test,conns,requests,rps,mibps,p50_ms,p99_ms,cpu_us_per_req,errors,status" >"$csv"
sweep_tests=()
for c in "${sweep[@]}"; do sweep_tests+=("sweep$c"); done
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
for ((r = 1; r <= runs; r++)); do
    for t in "${tests[@]}" "${sweep_tests[@]}"; do
        for s in "${servers[@]}"; do
            sample_busy
            lt=$t
            [[ $t == sweep* ]] && lt=c${t#sweep}
            res="$tmp/res.tsv"; : >"$res"
            extra=()
            [[ -n $client_cpu ]] && extra=(--client-cpu "$client_cpu")
            if ! scripts/load.sh "http://127.0.0.1:${port[$s]}" --only "$lt" --duration "$duration" \
                --connections "$conns" --threads 1 --server-pid "${pid[$s]}" "${extra[@]}" \
                --raw "$tmp/raw1" --results "$res" --no-header >"$tmp/load.out" 2>&1; then
                failures=$((failures + 1))
                log "FAILED: run $r, $s, $t:"; sed 's/^/    /' "$tmp/load.out" >&2
            fi
            mkdir -p "$out/raw/r$r/$s"
            [[ -f $tmp/raw1/$lt.txt ]] && mv "$tmp/raw1/$lt.txt" "$out/raw/r$r/$s/$t.txt"
            while IFS=$'\t' read -r name c req rps mib p50 p99 cpu errs st; do
                echo "$r,$s,$t,$c,$req,$rps,$mib,$p50,$p99,$cpu,$errs,$st" >>"$csv"
            done <"$res"
            [[ -s $res ]] || echo "$r,$s,$t,,0,0,0,0,0,,-1,FAIL" >>"$csv"
        done
        log "run $r/$runs: $t done ($(( $(date +%s) - started )) s elapsed)"
    done
done

# ---------------------------------------------------------------- idle memory
# One server at a time, nothing else running: every matrix server is stopped first, and each
# is measured on a fresh start with its matrix command line (see the header for why).
idle_csv="$out/idle.csv"
echo "server,conns,still_open,rss_before_kib,rss_after_kib,bytes_per_conn,seconds,status,reason" >"$idle_csv"
idle_started=$(date +%s)
idle_row() { # idle_row SERVER STATUS REASON [FILE]: one idle.csv line from idle_memory.py's output
    local f=${4:-/dev/null} reason=${3//\"/\'}
    kv() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$f" | tail -1; }
    echo "$1,$idle_conns,$(kv 'still open'),$(kv 'rss before KiB'),$(kv 'rss after KiB'),$(kv 'bytes per idle connection'),${secs:-},$2,\"$reason\"" >>"$idle_csv"
}
if ((idle_conns > 0)); then
    for s in "${servers[@]}"; do stop_server "$s"; done
    cpin=()
    [[ -n $client_cpu ]] && cpin=(taskset -c "$client_cpu")
    for s in "${servers[@]}"; do
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
fi
idle_secs=$(($(date +%s) - idle_started))

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
    for s in "${servers[@]}"; do echo "version.$s=${version[$s]}"; done
    for k in "${!note[@]}"; do echo "note.$k=${note[$k]}"; done
    echo "runs=$runs"
    echo "duration=$duration"
    echo "connections=$conns"
    echo "sweep=${sweep[*]}"
    echo "idle_conns=$idle_conns"
    echo "idle_seconds=$idle_secs"
    echo "limits=$limits_note"
    echo "pinning=$pin_note"
    echo "workers=$workers"
    echo "root=$root_note"
    echo "servers=${servers[*]}"
    echo "elapsed=$(( $(date +%s) - started ))"
    echo "busy=$busy"
    echo "failures=$failures"
} >"$out/raw/meta.env"
python3 scripts/bench/report.py "$out" >&2
log "wrote $out/report.md, results.csv, idle.csv, targets.csv, concurrency.svg ($(( $(date +%s) - started )) s)"
if ((failures)); then
    log "FAILED: $failures load run(s) had errors or unexpected statuses; see report.md"
    exit 1
fi

#!/usr/bin/env bash
# One-command benchmark: ringserve (threaded, and uring once it exists) against nginx, lighttpd
# and h2o, same client (wrk), same files, interleaved runs, medians and ratios.
#
# usage: scripts/bench.sh [--runs N] [--duration S] [--quick] [--out DIR] [--connections N]
#
#   --runs N         runs of the whole matrix (default 3; --quick: 1)
#   --duration S     seconds per wrk run (default 5; --quick: 2)
#   --connections N  connections of the fixed-size tests (default 64)
#   --quick          smoke test: 1 run, 2 s, sweep 10/100/1000 (about 3 minutes)
#   --out DIR        output directory (default benches/results/<date>-<host>-<commit>)
#
# Steps: cargo build --release; scripts/gen-assets.sh; apt-get install what is missing (wrk,
# nginx-light or nginx, lighttpd, h2o; a peer that cannot be installed is reported and
# skipped); peers get configs from benches/peers/*.conf.in in a temp dir and run by hand on
# loopback ports (never systemd). On 2+ cores the servers are pinned to cores 1.. and wrk to
# core 0. Each run goes test by test, server by server (interleaved), through scripts/load.sh,
# which also samples server CPU time (utime+stime of the whole process tree) per request.
# Writes report.md, results.csv, concurrency.svg and raw/ (wrk outputs, server logs).
# Every server started here is killed by PID on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)

runs=""
duration=""
quick=0
out=""
conns=64
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        --out) out=$2; shift 2 ;;
        --connections) conns=$2; shift 2 ;;
        -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

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

start_ringserve() { # start_ringserve MODE
    local name=ringserve-$1 p
    p=$(free_port)
    "${spin[@]}" "$bin" "$root" --listen "127.0.0.1:$p" --mode "$1" --workers "$workers" \
        --max-conns 20000 2>"$tmp/$name.err" &
    local child=$!
    pids+=("$child")
    if ! wait_up "$p" "$child"; then
        log "$name did not start:"; cat "$tmp/$name.err" >&2
        note[$name]="did not start: $(tail -1 "$tmp/$name.err")"
        return 1
    fi
    local line running
    line=$(grep -m1 '^ringserve: serving ' "$tmp/$name.err" || true)
    running=$(sed -n 's/.*(mode \([a-z]*\).*/\1/p' <<<"$line")
    echo "$name: $line" >>"$meta"
    if [[ $running != "$1" ]]; then
        # Never present another mode as this one: record it and leave it out.
        note[$name]="asked for --mode $1, the start-up line says mode ${running:-unknown} (not built); left out"
        log "${note[$name]}"
        kill -TERM "$child" 2>/dev/null || true
        return 1
    fi
    port[$name]=$p; pid[$name]=$child
    version[$name]="ringserve $(git rev-parse --short HEAD 2>/dev/null || echo '?') ($line)"
    servers+=("$name")
}

start_peer() { # start_peer NAME
    local name=$1 p dir="$tmp/$1"
    if [[ -n ${missing[$name]:-} ]]; then
        note[$name]="not run: ${missing[$name]}"
        return 1
    fi
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
    if ! wait_up "$p" "$child"; then
        log "$name did not start:"; cat "$dir/out.log" "$dir/error.log" 2>/dev/null | tail -5 >&2
        note[$name]="did not start (see raw/$name.log)"
        cat "$dir/out.log" "$dir/error.log" >"$out/raw/$name.log" 2>/dev/null || true
        return 1
    fi
    cp "$conf" "$out/raw/$name.conf"
    port[$name]=$p; pid[$name]=$child
    servers+=("$name")
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
start_ringserve threaded || true
start_ringserve uring || true
for peer in nginx lighttpd h2o; do start_peer "$peer" || true; done
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
    echo "pinning=$pin_note"
    echo "workers=$workers"
    echo "root=$root_note"
    echo "servers=${servers[*]}"
    echo "elapsed=$(( $(date +%s) - started ))"
    echo "busy=$busy"
    echo "failures=$failures"
} >"$out/raw/meta.env"
python3 scripts/bench/report.py "$out" >&2
log "wrote $out/report.md, results.csv, concurrency.svg ($(( $(date +%s) - started )) s)"
if ((failures)); then
    log "FAILED: $failures load run(s) had errors or unexpected statuses; see report.md"
    exit 1
fi

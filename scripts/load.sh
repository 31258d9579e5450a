#!/usr/bin/env bash
# Load-tests any running HTTP server with wrk and prints one table.
#
# usage: scripts/load.sh BASE_URL [--duration S] [--connections N] [--threads N] [--quick]
#                        [--only T1,T2,..] [--server-pid PID] [--client-cpu CPUS]
#                        [--raw DIR] [--results FILE] [--timeout S] [--no-header]
#
# BASE_URL serves the repository's www/ tree (e.g. http://127.0.0.1:8080). Tests:
#   128b    /assets/128b.txt, keep-alive, N connections
#   4k      /assets/4k.txt
#   64k     /assets/64k.bin
#   64ktxt  /assets/64k.txt, identity (no Accept-Encoding): the baseline for 64kbr
#   64kbr   /assets/64k.txt with "Accept-Encoding: br, gzip": served from its .br sidecar
#           (the test fails unless the answer says Content-Encoding: br)
#   1m      /assets/generated/1m.bin
#   100m    /assets/generated/100m.bin with few connections (min(4, N)): throughput
#   churn   /assets/128b.txt with "Connection: close": one request per connection
#   c1000   /assets/128b.txt over 1000 keep-alive connections (any cNUM works: c10, c5000)
#   cond    128b/4k/64k with a matching If-None-Match (ETag fetched first): every answer
#           must be 304
# Every run lasts --duration seconds (default 5; --quick: 2). A test FAILS when wrk saw any
# socket error (connect/read/write/timeout), any status >= 400, no request at all, or (cond)
# any status other than 304; the script then exits 1 after printing the table.
#
# --server-pid PID adds server CPU time per request (utime+stime of PID's process tree,
# sampled before and after each run); PID1,PID2 sums several trees (a proxy and its origin). --client-cpu pins wrk with taskset. --raw DIR keeps each
# wrk output; --results FILE appends one tab-separated line per test (used by bench.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
lua="$here/bench/report.lua"
cputicks="$here/bench/cputicks.py"

usage() {
    sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//' >&2
}

base=""
duration=""
conns=64
threads=2
quick=0
only="128b,4k,64k,64ktxt,64kbr,1m,100m,churn,c1000,cond"
server_pid=""
client_cpu=""
raw=""
results=""
timeout=10
header=1

while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) duration=$2; shift 2 ;;
        --connections) conns=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        --only) only=$2; shift 2 ;;
        --server-pid) server_pid=$2; shift 2 ;;
        --client-cpu) client_cpu=$2; shift 2 ;;
        --raw) raw=$2; shift 2 ;;
        --results) results=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --no-header) header=0; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "load.sh: unknown option $1" >&2; usage; exit 2 ;;
        *)
            if [[ -n $base ]]; then echo "load.sh: one BASE_URL only" >&2; exit 2; fi
            base=$1; shift ;;
    esac
done
[[ -n $base ]] || { usage; exit 2; }
base=${base%/}
if [[ -z $duration ]]; then
    if ((quick)); then duration=2; else duration=5; fi
fi
for v in "$duration" "$conns" "$threads" "$timeout"; do
    [[ $v =~ ^[0-9]+$ && $v -gt 0 ]] || { echo "load.sh: bad number '$v'" >&2; exit 2; }
done
[[ -z $server_pid || $server_pid =~ ^[0-9]+(,[0-9]+)*$ ]] ||
    { echo "load.sh: bad --server-pid '$server_pid'" >&2; exit 2; }
case "$base" in
    http://127.0.0.1:* | http://localhost:* | http://\[::1\]:*) ;;
    *) echo "load.sh: BASE_URL must be on loopback (http://127.0.0.1:PORT)" >&2; exit 2 ;;
esac

if ! command -v wrk >/dev/null; then
    echo "load.sh: installing wrk" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null
fi
command -v curl >/dev/null || { echo "load.sh: curl is required" >&2; exit 2; }

# wrk needs a descriptor per connection; the server (if started from this shell) too.
want_fds=$((conns + 2048))
for t in ${only//,/ }; do
    [[ $t =~ ^c([0-9]+)$ ]] && ((BASH_REMATCH[1] + 2048 > want_fds)) && want_fds=$((BASH_REMATCH[1] + 2048))
done
hard=$(ulimit -Hn)
if [[ $hard != unlimited && $hard -lt $want_fds ]]; then
    ulimit -Hn "$want_fds" 2>/dev/null || want_fds=$hard
fi
ulimit -n "$want_fds" 2>/dev/null || true

pin=()
[[ -n $client_cpu ]] && pin=(taskset -c "$client_cpu")
[[ -n $raw ]] && mkdir -p "$raw"
work=$(mktemp -d /tmp/ringserve-load.XXXXXX)
trap 'rm -rf "$work"' EXIT

if ((header)); then
    echo "# load.sh $base"
    echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host:    $(hostname)"
    echo "kernel:  $(uname -srm)"
    echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
    if commit=$(git -C "$here/.." rev-parse --short HEAD 2>/dev/null); then
        dirty=$(git -C "$here/.." status --porcelain --untracked-files=no 2>/dev/null | head -c1)
        echo "commit:  $commit${dirty:+ (dirty)}"
    fi
    echo "wrk:     $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), threads $threads, duration ${duration}s, timeout ${timeout}s${client_cpu:+, pinned to cpu $client_cpu}"
    echo
fi

# preflight URL: the path must answer 200 to HEAD, or the test is pointless.
preflight() {
    local code
    code=$(curl -s -o /dev/null -I -m 10 -w '%{http_code}' "$base$1" || true)
    if [[ $code != 200 ]]; then
        echo "load.sh: HEAD $base$1 answered '$code', not 200" >&2
        return 1
    fi
}

etag_of() {
    curl -s -o /dev/null -D - -m 10 "$base$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}' | tail -1
}

cpu_now() {
    [[ -n $server_pid ]] || { echo 0; return; }
    local ticks
    # shellcheck disable=SC2086 # one argument per PID of the comma-separated list
    if ticks=$(python3 "$cputicks" ${server_pid//,/ }); then echo "$ticks"; else echo x; fi
}

clk=$(getconf CLK_TCK)
failed=0
rows=()

run_test() {
    local name=$1 path c=$conns extra=() cond=""
    case "$name" in
        128b) path=/assets/128b.txt ;;
        4k) path=/assets/4k.txt ;;
        64k) path=/assets/64k.bin ;;
        64ktxt) path=/assets/64k.txt ;;
        64kbr)
            path=/assets/64k.txt
            extra=(-H "Accept-Encoding: br, gzip")
            local got
            got=$(curl -s -o /dev/null -D - -m 10 "${extra[@]}" "$base$path" | tr -d '\r' |
                awk -F': ' 'tolower($1)=="content-encoding"{print $2}')
            if [[ $got != br ]]; then
                echo "load.sh: $base$path with Accept-Encoding: br, gzip came as '$got', not br" >&2
                return 1
            fi
            ;;
        1m) path=/assets/generated/1m.bin ;;
        100m) path=/assets/generated/100m.bin; ((c > 4)) && c=4 ;;
        churn) path=/assets/128b.txt; extra=(-H "Connection: close") ;;
        cond)
            path=/assets/128b.txt
            local p e
            for p in /assets/128b.txt /assets/4k.txt /assets/64k.bin; do
                preflight "$p" || return 1
                e=$(etag_of "$p")
                if [[ -z $e ]]; then
                    echo "load.sh: $base$p sent no ETag; cond cannot run" >&2
                    return 1
                fi
                cond+="$p"$'\t'"$e"$'\n'
            done
            ;;
        c[0-9]*) path=/assets/128b.txt; c=${name#c} ;;
        *) echo "load.sh: unknown test '$name'" >&2; return 1 ;;
    esac
    preflight "$path" || return 1
    local t=$threads
    ((t > c)) && t=$c
    local out="$work/$name.txt"
    local before after
    before=$(cpu_now)
    set +e
    RS_COND="$cond" timeout -k 5 $((duration + timeout + 30)) "${pin[@]}" \
        wrk -t "$t" -c "$c" -d "${duration}s" --timeout "${timeout}s" --latency \
        -s "$lua" "${extra[@]}" "$base$path" >"$out" 2>&1
    local rc=$?
    set -e
    after=$(cpu_now)
    [[ -n $raw ]] && cp "$out" "$raw/$name.txt"

    local line
    line=$(grep '^RS_RESULT ' "$out" | tail -1 || true)
    if [[ $rc -ne 0 || -z $line ]]; then
        echo "load.sh: wrk failed on $name (exit $rc):" >&2
        sed 's/^/    /' "$out" >&2
        rows+=("$name|$c|-|-|-|-|-|FAIL (wrk exit $rc)")
        [[ -n $results ]] && printf '%s\t%s\t0\t0\t0\t0\t0\t\t-1\tFAIL\n' "$name" "$c" >>"$results"
        return 1
    fi
    local requests duration_us bytes p50_us p99_us connect read write tmo status expected unexpected
    eval "$(echo "${line#RS_RESULT }" | tr ' ' '\n' | sed 's/^\([a-z0-9_]*\)=/\1=/')"
    local errs=$((connect + read + write + tmo))
    local verdict=ok why=()
    ((requests > 0)) || why+=("no requests")
    ((errs == 0)) || why+=("socket errors: connect $connect read $read write $write timeout $tmo")
    ((status == 0)) || why+=("$status non-2xx/3xx responses")
    if [[ $name == cond ]]; then
        ((unexpected == 0)) || why+=("$unexpected responses were not 304")
        ((expected > 0)) || why+=("no 304 seen")
    fi
    if ((${#why[@]})); then
        verdict="FAIL ($(IFS=';'; echo "${why[*]}"))"
        echo "load.sh: $name FAILED: $(IFS=';'; echo "${why[*]}")" >&2
    fi
    local cpu_us=""
    if [[ -n $server_pid && $before != x && $after != x && $requests -gt 0 ]]; then
        cpu_us=$(awk -v a="$before" -v b="$after" -v hz="$clk" -v n="$requests" \
            'BEGIN{printf "%.2f", (b-a)*1e6/hz/n}')
    fi
    local rps mibps p50ms p99ms
    rps=$(awk -v n="$requests" -v d="$duration_us" 'BEGIN{printf "%.0f", n*1e6/d}')
    mibps=$(awk -v b="$bytes" -v d="$duration_us" 'BEGIN{printf "%.1f", b*1e6/d/1048576}')
    p50ms=$(awk -v x="$p50_us" 'BEGIN{printf "%.3f", x/1000}')
    p99ms=$(awk -v x="$p99_us" 'BEGIN{printf "%.3f", x/1000}')
    rows+=("$name|$c|$rps|$mibps|$p50ms|$p99ms|${cpu_us:--}|$verdict")
    if [[ -n $results ]]; then
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$c" "$requests" "$rps" "$mibps" \
            "$p50ms" "$p99ms" "$cpu_us" "$((errs + status + unexpected))" \
            "$([[ $verdict == ok ]] && echo ok || echo FAIL)" >>"$results"
    fi
    [[ $verdict == ok ]]
}

for t in ${only//,/ }; do
    if ! run_test "$t"; then
        failed=$((failed + 1))
        # a preflight failure leaves no row: add one so the table shows it
        if [[ ${#rows[@]} -eq 0 || ${rows[-1]%%|*} != "$t" ]]; then
            rows+=("$t|-|-|-|-|-|-|FAIL (preflight)")
            [[ -n $results ]] && printf '%s\t-\t0\t0\t0\t0\t0\t\t-1\tFAIL\n' "$t" >>"$results"
        fi
    fi
done

{
    echo "test|conns|requests/s|MiB/s|p50 ms|p99 ms|cpu µs/req|result"
    printf '%s\n' "${rows[@]}"
} | column -t -s '|'

if ((failed)); then
    echo >&2
    echo "load.sh: FAILED: $failed test(s) had errors or unexpected statuses (see above)" >&2
    exit 1
fi

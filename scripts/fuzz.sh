#!/usr/bin/env bash
# Fuzzes ringserve on the stable toolchain with AFL++ (through afl.rs: `cargo afl`), one target
# after the other, each for a bounded time, and prints executions and findings per target.
#
# Targets (fuzz/src/lib.rs says what each checks): conn (the whole http::Conn: any bytes in any
# chunking give only well-framed responses, never a panic), ranges, conditionals, parse_resolve.
# Installs cargo-afl from crates.io when missing (it builds AFL++ for the toolchain in use).
# The corpus of each target is kept in fuzz/out/TARGET and resumed by the next run; the seeds
# are in fuzz/seeds/TARGET. Not run by scripts/test.sh or CI.
#
# Exit status: 0 when no target saved a crash or a hang, 1 when one did (each crashing input
# is listed with the command that replays it without AFL), 2 on bad usage.
set -euo pipefail

usage() {
    cat >&2 <<'EOF'
usage: scripts/fuzz.sh [--seconds N | N] [TARGET...]
  --seconds N   fuzz each target for N seconds (default 60; a bare N means the same)
  TARGET        conn, ranges, conditionals, parse_resolve (default: all four)
EOF
}

seconds=60
targets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds)
            [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || { usage; exit 2; }
            seconds=$2
            shift 2
            ;;
        -h | --help) usage; exit 0 ;;
        [1-9] | [1-9][0-9]*) [[ $1 =~ ^[0-9]+$ ]] || { usage; exit 2; }; seconds=$1; shift ;;
        conn | ranges | conditionals | parse_resolve) targets+=("$1"); shift ;;
        *) usage; exit 2 ;;
    esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(conn ranges conditionals parse_resolve)

cd "$(dirname "$0")/../fuzz"

if ! cargo afl --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-afl from crates.io (builds AFL++; takes a few minutes)" >&2
    cargo install --locked cargo-afl
fi
# Builds the AFL++ runtime for this toolchain if missing; it fails harmlessly when present.
cargo afl config --build >/dev/null 2>&1 || true

echo "fuzz.sh: building the targets with AFL++ instrumentation (release)" >&2
cargo afl build --release --quiet --bins

# AFL_SKIP_CPUFREQ: the CPU governor is not ours to change on a shared machine.
# AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES: a core_pattern pipe would only slow crash detection.
# AFL_AUTORESUME: continue from fuzz/out/TARGET when an earlier run left it.
# AFL_NO_AFFINITY: afl-fuzz pins itself to a free core and refuses to start when it finds none;
# on a shared machine (or beside a test run of the pinned uring workers) there may be none.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_AUTORESUME=1 AFL_NO_UI=1
export AFL_NO_AFFINITY=1

stat() {
    sed -n "s/^$2 *: *//p" "out/$1/default/fuzzer_stats"
}

mkdir -p out
found=0
rows=()
for t in "${targets[@]}"; do
    echo "fuzz.sh: fuzzing $t for ${seconds}s (log: fuzz/out/$t.log)" >&2
    cargo afl fuzz -V "$seconds" -i "seeds/$t" -o "out/$t" "target/release/$t" >"out/$t.log" 2>&1 || {
        echo "fuzz.sh: afl-fuzz failed for $t; the end of its log:" >&2
        tail -20 "out/$t.log" >&2
        exit 1
    }
    crashes=$(stat "$t" saved_crashes)
    hangs=$(stat "$t" saved_hangs)
    rows+=("$(printf '%-14s %8s %12s %10s %8s %8s %6s' "$t" "$(stat "$t" run_time)" \
        "$(stat "$t" execs_done)" "$(stat "$t" execs_per_sec)" "$(stat "$t" corpus_count)" \
        "$crashes" "$hangs")")
    if [[ $crashes != 0 || $hangs != 0 ]]; then
        found=1
        for f in "out/$t/default/crashes"/id:* "out/$t/default/hangs"/id:*; do
            [[ -e $f ]] && echo "fuzz.sh: $t finding: cargo run --manifest-path fuzz/Cargo.toml --bin replay -- $t 'fuzz/$f'" >&2
        done
    fi
done

printf '\n%-14s %8s %12s %10s %8s %8s %6s\n' target seconds executions execs/s corpus crashes hangs
printf '%s\n' "${rows[@]}"
printf '(%s, %s, AFL++ via %s)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$(git rev-parse --short HEAD 2>/dev/null || echo 'no git')" "$(cargo afl --version 2>/dev/null)"
exit "$found"

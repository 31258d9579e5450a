#!/usr/bin/env bash
# The project's test command (and the CI entry point, through .ci/run): formatting, lints with
# warnings denied, every test target and the doc tests, then a curl smoke test of the binary
# serving the demo site, the embedding example, a differential test of the request parser
# against h11 (scripts/h11_diff.py; installs h11 into a venv when missing), a 15 s soak per I/O
# mode (scripts/soak.sh), a deploy under load (scripts/deploy-check.sh), and a real nginx in
# front of three origins (scripts/proxy/test.sh; installs nginx when missing). Stops at the
# first failing step.
set -euo pipefail

usage() {
    echo "usage: $0   (run from anywhere; no arguments)" >&2
}
if [[ $# -gt 0 ]]; then
    usage
    case "$1" in
        -h | --help) exit 0 ;;
        *) exit 2 ;;
    esac
fi

cd "$(dirname "$0")/.."

step() {
    printf '\n==> %s\n' "$*"
}

step "checking the toolchain"
command -v cargo >/dev/null || {
    echo "test.sh: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
    exit 1
}
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null || {
        echo "test.sh: rustfmt or clippy missing and rustup not found to add them" >&2
        exit 1
    }
    rustup component add rustfmt clippy
fi
cargo --version
cargo fmt --version
cargo clippy --version

# System tools: installed only when missing (scripts/lib/need.sh).
source scripts/lib/need.sh
need curl curl
# The precompressed tests decode served bodies with the real decoders; with them installed here,
# a missing decoder fails those tests instead of skipping them.
need brotli brotli
need zstd zstd
need gzip gzip
export RINGSERVE_REQUIRE_CODECS=1
# tests/activation.rs checks contrib/ringserve.{socket,service} with `systemd-analyze verify`
# (no running systemd needed); with it installed here, a missing one fails that test.
need systemd-analyze systemd
export RINGSERVE_REQUIRE_SYSTEMD_ANALYZE=1

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "probing io_uring once: where it works, every uring case must run (no silent skip)"
cargo build --quiet
probe_err=$(mktemp)
target/debug/ringserve www --listen 127.0.0.1:0 2>"$probe_err" &
probe_pid=$!
probe_line=
for ((i = 0; i < 50; i++)); do
    probe_line=$(grep -m1 '^ringserve: serving ' "$probe_err" || true)
    [[ -n $probe_line ]] && break
    sleep 0.1
done
kill "$probe_pid" 2>/dev/null || true
wait "$probe_pid" 2>/dev/null || true
if [[ $probe_line == *"(mode uring,"* ]]; then
    export RINGSERVE_REQUIRE_URING=1
    echo "io_uring works here: RINGSERVE_REQUIRE_URING=1 (a uring case that cannot run fails)"
else
    echo "io_uring does not run here; uring cases report 'skipped':"
    cat "$probe_err"
fi
rm -f "$probe_err"

step "cargo test --all-targets"
cargo test --all-targets

step "cargo test --doc"
cargo test --doc

step "cargo doc --no-deps (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

step "smoke test: the binary serves the demo site (curl)"
cargo build --quiet
smoke_dir=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$smoke_dir"
}
trap cleanup EXIT
# The files exist before the background commands start: the polls below read them at once.
: >"$smoke_dir/stderr"
: >"$smoke_dir/embed.out"
target/debug/ringserve www --listen 127.0.0.1:0 --mode threaded 2>"$smoke_dir/stderr" &
server_pid=$!
base=
for ((i = 0; i < 50; i++)); do
    base=$(sed -n 's|^ringserve: serving .* at \(http://[^ ]*/\) (mode .*|\1|p' "$smoke_dir/stderr")
    [[ -n $base ]] && break
    sleep 0.1
done
[[ -n $base ]] || {
    echo "test.sh: no start-up line from ringserve within 5 s:" >&2
    cat "$smoke_dir/stderr" >&2
    exit 1
}
check() {
    local path=$1 want=$2 got
    got=$(curl --silent --max-time 5 --output /dev/null --write-out '%{http_code}' "$base$path")
    if [[ $got != "$want" ]]; then
        echo "test.sh: GET /$path gave $got, expected $want" >&2
        exit 1
    fi
    echo "GET /$path -> $got"
}
check "" 200
check style.css 200
check favicon.ico 200
check docs 301
check docs/ 200
check assets/64k.bin 200
check no-such-file 404
# The demo site's sidecars: each coding is negotiated, labelled with its registered token, and
# decodes to the file (sidecars made by scripts/gen-sidecars.sh, which also fixes their mtimes
# after a checkout if one was written before its file).
check_coding() {
    local path=$1 token=$2 decoder=$3 got
    got=$(curl --silent --max-time 5 -H "Accept-Encoding: $token" --dump-header "$smoke_dir/head" \
        --output "$smoke_dir/body" "$base$path" && tr -d '\r' <"$smoke_dir/head" |
        awk -F': ' 'tolower($1)=="content-encoding"{print $2}')
    if [[ $got != "$token" ]]; then
        echo "test.sh: GET /$path with Accept-Encoding: $token came as '$got' (stale sidecar? run scripts/gen-sidecars.sh)" >&2
        exit 1
    fi
    $decoder <"$smoke_dir/body" | cmp -s - "www/$path" || {
        echo "test.sh: GET /$path as $token does not decode to www/$path" >&2
        exit 1
    }
    echo "GET /$path as $token -> decodes to the file"
}
for f in style.css index.html assets/64k.txt; do
    check_coding "$f" br "brotli -d -c"
    check_coding "$f" zstd "zstd -q -d -c"
    check_coding "$f" gzip "gzip -d -c"
done
kill -TERM "$server_pid"
wait "$server_pid" || {
    echo "test.sh: ringserve did not exit cleanly on SIGTERM" >&2
    exit 1
}
server_pid=

step "embedding example: examples/embed.rs serves, counts, stops by itself"
cargo build --quiet --example embed
target/debug/examples/embed --requests 2 --seconds 20 >"$smoke_dir/embed.out" 2>&1 &
server_pid=$!
embed_url=
for ((i = 0; i < 50; i++)); do
    embed_url=$(sed -n 's|^embed: serving .* at \(http://[^ ]*/\)$|\1|p' "$smoke_dir/embed.out")
    [[ -n $embed_url ]] && break
    sleep 0.1
done
[[ -n $embed_url ]] || {
    echo "test.sh: the embed example printed no address within 5 s:" >&2
    cat "$smoke_dir/embed.out" >&2
    exit 1
}
curl --silent --fail --max-time 5 "$embed_url" | grep -q "served by an embedded ringserve" || {
    echo "test.sh: GET $embed_url from the embed example failed" >&2
    exit 1
}
curl --silent --fail --max-time 5 "$embed_url-/status" | grep -q '^ringserve_requests_total' || {
    echo "test.sh: the embed example's status path failed" >&2
    exit 1
}
# Two responses sent: it must stop by itself, well before its 20 s bound.
for ((i = 0; i < 50; i++)); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
wait "$server_pid" || {
    echo "test.sh: the embed example did not exit cleanly:" >&2
    cat "$smoke_dir/embed.out" >&2
    exit 1
}
server_pid=
grep -q '^embed: stopped (request count reached) after 2 responses$' "$smoke_dir/embed.out" || {
    echo "test.sh: unexpected output from the embed example:" >&2
    cat "$smoke_dir/embed.out" >&2
    exit 1
}
cat "$smoke_dir/embed.out"

step "differential test: request heads against h11 (scripts/h11_diff.py)"
# h11 (PyPI, pinned) lives in a venv under target/, made once. `need` checks for a command and
# the venv module has none, so its check is a Python import and the name is only a label.
need python3 python3
python3 -c 'import ensurepip, venv' 2>/dev/null || need python3-venv-module python3-venv
h11_venv=target/h11-venv
if ! "$h11_venv/bin/python" -c 'import h11' 2>/dev/null; then
    rm -rf "$h11_venv"
    python3 -m venv "$h11_venv"
    "$h11_venv/bin/pip" install --quiet 'h11==0.16.0'
fi
cargo build --quiet --example parse_verdict
"$h11_venv/bin/python" scripts/h11_diff.py --verdict target/debug/examples/parse_verdict

step "soak: 15 s per mode of hostile traffic against the release build (scripts/soak.sh)"
need python3 python3
scripts/soak.sh --seconds 15

step "deploy check: 100 release swaps and file replacements under load, both modes (scripts/deploy-check.sh)"
scripts/deploy-check.sh --changes 100 --binary target/debug/ringserve

step "proxy test: real nginx in front of three origins (scripts/proxy/test.sh)"
scripts/proxy/test.sh

step "all checks passed"

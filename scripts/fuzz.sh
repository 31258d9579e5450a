#!/usr/bin/env bash
# Runs the libFuzzer target `parse_resolve` (request parsing + path resolution) for a bounded
# time. cargo-fuzz needs unstable compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them (we have no nightly). Installs cargo-fuzz when missing.
#
# usage: scripts/fuzz.sh [SECONDS]   (default 60)
set -euo pipefail
seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
mkdir -p fuzz/corpus/parse_resolve
# Seed the corpus with a few real requests so the fuzzer starts from valid heads.
printf 'GET /index.html HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n' >fuzz/corpus/parse_resolve/get
printf 'GET /a/../%%2e%%2e/b%%00 HTTP/1.0\r\n\r\n' >fuzz/corpus/parse_resolve/traversal
printf 'GET http://h/x?q HTTP/1.1\r\nHost: h\r\nIf-None-Match: W/"a", "b"\r\n\r\n' >fuzz/corpus/parse_resolve/absolute
cargo fuzz run --sanitizer none parse_resolve fuzz/corpus/parse_resolve -- \
    -max_total_time="$seconds" -max_len=4096

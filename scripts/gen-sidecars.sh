#!/usr/bin/env bash
# Writes the precompressed sidecars of the demo site's text files (NAME.br, NAME.zst, NAME.gz
# next to NAME) with the real compressors, installing brotli and zstd from apt when missing.
#
# Each sidecar gets its original's mtime, so the server never takes it for stale (a sidecar
# older than its file is ignored). A sidecar that already decompresses to its file is kept and
# only has its mtime reset: run this after a checkout, which gives every file a new mtime.
# Output is reproducible: gzip -n stores no name or time; brotli and zstd store neither.
#
# usage: scripts/gen-sidecars.sh [-h] [FILE...]   (default: the demo site's files below)
set -euo pipefail

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
}
case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    -*) usage; exit 2 ;;
esac

cd "$(dirname "$0")/.."

# System tools: installed only when missing (scripts/lib/need.sh).
source scripts/lib/need.sh
need brotli brotli
need zstd zstd
need gzip gzip

files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
    files=(www/index.html www/style.css www/docs/index.html www/assets/64k.txt)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Highest levels: the work is done once, at build time; every download afterwards is smaller.
compress() {
    local suffix=$1 in=$2 out=$3
    case "$suffix" in
        br) brotli -q 11 -c -- "$in" >"$out" ;;
        zst) zstd -q -19 -c -- "$in" >"$out" ;;
        gz) gzip -9 -n -c -- "$in" >"$out" ;;
    esac
}

decompress() {
    local suffix=$1 in=$2
    case "$suffix" in
        br) brotli -d -c -- "$in" ;;
        zst) zstd -q -d -c -- "$in" ;;
        gz) gzip -d -c -- "$in" ;;
    esac
}

for f in "${files[@]}"; do
    [[ -f $f ]] || { echo "gen-sidecars: $f is not a file" >&2; exit 1; }
    for suffix in br zst gz; do
        side="$f.$suffix"
        if [[ -f $side ]] && cmp -s <(decompress "$suffix" "$side" 2>/dev/null) "$f"; then
            touch -r "$f" "$side"
            echo "gen-sidecars: $side up to date ($(stat -c %s "$side") bytes), mtime reset"
            continue
        fi
        compress "$suffix" "$f" "$work/side"
        cmp -s <(decompress "$suffix" "$work/side") "$f" || {
            echo "gen-sidecars: $side does not decompress to $f" >&2
            exit 1
        }
        touch -r "$f" "$work/side"
        mv "$work/side" "$side"
        echo "gen-sidecars: wrote $side ($(stat -c %s "$f") -> $(stat -c %s "$side") bytes)"
    done
done

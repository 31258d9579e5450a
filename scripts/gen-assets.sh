#!/usr/bin/env bash
# Generates the large demo assets that are not committed: www/assets/generated/{1m,100m}.bin.
#
# The content is a repeating 0x00..0xff byte ramp, so every run on every machine produces the
# same bytes (and the same sizes the load scripts expect). A file that already has the right
# size is left alone; anything else is rebuilt through a temporary file and renamed into place.
set -euo pipefail

usage() {
    echo "usage: $0 [-h]   (writes www/assets/generated/1m.bin and 100m.bin)" >&2
}

if [[ $# -gt 0 ]]; then
    usage
    case "$1" in
        -h | --help) exit 0 ;;
        *) exit 2 ;;
    esac
fi

cd "$(dirname "$0")/.."
out=www/assets/generated
mkdir -p "$out"

work=$(mktemp -d "$out/.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 256-byte ramp, then doubled 12 times: 256 B << 12 = 1 MiB.
ramp() {
    local i
    for ((i = 0; i < 256; i++)); do
        # shellcheck disable=SC2059 # the format is the octal escape that makes the byte
        printf "\\$(printf '%03o' "$i")"
    done
}
ramp >"$work/block"
for ((i = 0; i < 12; i++)); do
    cat "$work/block" "$work/block" >"$work/next"
    mv "$work/next" "$work/block"
done
[[ $(stat -c %s "$work/block") -eq $((1 << 20)) ]] || {
    echo "gen-assets: internal error: 1 MiB block has the wrong size" >&2
    exit 1
}

# generate NAME MIB: NAME made of MIB copies of the 1 MiB block, unless it already has that size.
generate() {
    local name=$1 mib=$2 want=$(($2 << 20)) i
    if [[ -f "$out/$name" && $(stat -c %s "$out/$name") -eq $want ]]; then
        echo "gen-assets: $out/$name already $want bytes, kept"
        return
    fi
    : >"$work/$name"
    for ((i = 0; i < mib; i++)); do
        cat "$work/block" >>"$work/$name"
    done
    mv "$work/$name" "$out/$name"
    echo "gen-assets: wrote $out/$name ($want bytes)"
}

generate 1m.bin 1
generate 100m.bin 100

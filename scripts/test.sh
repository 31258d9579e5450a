#!/usr/bin/env bash
# The project's test command (and the CI entry point, through .ci/run): formatting, lints with
# warnings denied, then every test target and the doc tests. Stops at the first failing step.
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

# System tools the tests use. Installed only when missing; apt-get update runs at most once.
apt_updated=no
need() {
    local cmd=$1 pkg=$2
    command -v "$cmd" >/dev/null && return
    command -v apt-get >/dev/null || {
        echo "test.sh: '$cmd' missing and apt-get not available; install package '$pkg'" >&2
        exit 1
    }
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    if [[ $apt_updated == no ]]; then
        "${sudo[@]}" apt-get update
        apt_updated=yes
    fi
    "${sudo[@]}" apt-get install -y "$pkg"
}
need curl curl

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test --all-targets"
cargo test --all-targets

step "cargo test --doc"
cargo test --doc

step "all checks passed"

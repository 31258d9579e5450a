# need CMD PACKAGE: installs the Debian PACKAGE when CMD is missing (apt-get update at most
# once per script run). Sourced by the scripts that need system tools; CI starts bare.
apt_updated=no
need() {
    local cmd=$1 pkg=$2
    command -v "$cmd" >/dev/null && return
    command -v apt-get >/dev/null || {
        echo "$(basename "$0"): '$cmd' missing and apt-get not available; install package '$pkg'" >&2
        exit 1
    }
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    if [[ $apt_updated == no ]]; then
        "${sudo[@]}" apt-get update
        apt_updated=yes
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$pkg"
}

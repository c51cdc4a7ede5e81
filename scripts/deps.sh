#!/usr/bin/env bash
# Idempotent installer for nubis build/test dependencies (Debian 12).
#
# Usage: scripts/deps.sh [bench]
#   bench  also install the benchmarking tools (crun, hyperfine, wrk, jq)
#
# Only packages that are not already installed are passed to apt-get, and
# `apt-get update` runs at most once, and only when something is missing.
set -euo pipefail

packages=(
    build-essential meson ninja-build pkg-config musl-tools
    libjansson-dev libmicrohttpd-dev libcmocka-dev libseccomp-dev
    python3 python3-pytest dpkg-dev curl clang-format
    # pvm (issue 4): payload decompressors for decompressor-less kernel loading
    liblzma-dev libzstd-dev liblz4-dev zlib1g-dev
    # image store (src/image/): tar/gzip/zstd unpacking, SHA-256
    libarchive-dev libssl-dev zstd
    # service VMs (src/cli/svcstate.c): the CLI's client of the monitors' control sockets
    libcurl4-openssl-dev
)
# workloads (issue 3): tclsh generates SQLite's amalgamation (guest/sqlite/build.sh);
# redis-tools gives redis-cli and redis-benchmark, the host-side clients of the
# Redis service VM (the server itself is our static musl build, never Debian's).
packages+=(tcl redis-tools)

for arg in "$@"; do
    case "$arg" in
        bench) packages+=(crun hyperfine qemu-system-x86 wrk jq) ;;
        -h|--help)
            echo "usage: $0 [bench]"
            exit 0
            ;;
        *)
            echo "deps: unknown argument '$arg' (usage: $0 [bench])" >&2
            exit 64
            ;;
    esac
done

# A package counts as present only when dpkg reports it fully installed
# ("install ok installed"); unknown packages make dpkg-query fail, which
# we treat as missing.
missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "deps: all present"
    exit 0
fi

# Use sudo only when not already root (CI and dev machines run as root).
sudo=()
if ((EUID != 0)); then
    sudo=(sudo)
fi

"${sudo[@]}" apt-get update -q >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
echo "deps: installed ${missing[*]}"

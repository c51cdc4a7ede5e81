#!/usr/bin/env bash
# Build a static, musl-linked Redis server from Debian 12's redis source
# package (a real workload for service VMs; see docs/SERVICE-VMS.md).
#
# Usage: guest/redis/build.sh OUTDIR
#
# Produces OUTDIR/redis-server. The source and the built binary are cached in
# ${NUBIS_CACHE:-$HOME/.cache/nubis}/redis/VERSION/ (VERSION = the Debian
# source version apt offers, e.g. 7.0.15-1~deb12u10), so Debian's apt mirror is
# only needed once per version and a rebuild of the nubis tree costs a copy.
# The binary is rebuilt when this script is newer than the cached one.
#
# Build: upstream's own Makefile (src/Makefile) with the bundled deps (Lua,
# hiredis, hdr_histogram), as Debian does except for jemalloc and systemd:
#   CC=musl-gcc MALLOC=libc USE_SYSTEMD=no BUILD_TLS=no LDFLAGS=-static
# No source patches: Debian's patches (applied by apt-get source) are kept and
# musl needs nothing else.
#
# Requires: dpkg-dev, musl-tools, make.
set -euo pipefail

if (($# != 1)); then
    echo "usage: $0 OUTDIR" >&2
    exit 64
fi
outdir=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${NUBIS_CACHE:-$HOME/.cache/nubis}/redis
DEBSRC_TAG=redis-build
log() { echo "redis-build: $*" >&2; }
# shellcheck source=guest/debsrc.sh
. "$here/../debsrc.sh"

command -v musl-gcc >/dev/null || {
    log "musl-gcc (musl-tools) is required"
    exit 1
}

debsrc_prepare redis "$cache"
bin=$DEBSRC_DIR/bin/redis-server
srcdir=
for d in "$DEBSRC_DIR"/redis-*/; do
    [[ -f "$d/src/server.c" ]] && srcdir=${d%/}
done

if [[ -x "$bin" && ! "${BASH_SOURCE[0]}" -nt "$bin" ]]; then
    log "cached $bin ($DEBSRC_VERSION)"
else
    [[ -n "$srcdir" ]] || {
        log "no unpacked redis-*/src/server.c in $DEBSRC_DIR"
        exit 1
    }
    log "compiling $(basename "$srcdir") ($DEBSRC_VERSION) with musl-gcc -static"
    t0=$SECONDS
    # MALLOC=libc: no jemalloc (Debian links the system one). The settings are
    # remembered by the Makefile (.make-settings): a change rebuilds the deps.
    # -j: all cores; output kept in a log shown only on failure.
    if ! make -C "$srcdir/src" -j"$(nproc)" redis-server \
        CC=musl-gcc MALLOC=libc USE_SYSTEMD=no BUILD_TLS=no \
        LDFLAGS=-static OPTIMIZATION=-O2 >"$DEBSRC_DIR/build.log" 2>&1; then
        tail -40 "$DEBSRC_DIR/build.log" >&2
        log "build failed; full log: $DEBSRC_DIR/build.log"
        exit 1
    fi
    mkdir -p "$DEBSRC_DIR/bin"
    cp "$srcdir/src/redis-server" "$bin.tmp"
    strip "$bin.tmp" 2>/dev/null || true
    mv -f "$bin.tmp" "$bin"
    log "built in $((SECONDS - t0)) s"
fi

# It must be a static binary (no interpreter): service VMs load static ELFs.
if LC_ALL=C readelf -l "$bin" 2>/dev/null | grep -q 'INTERP'; then
    log "$bin is dynamically linked"
    exit 1
fi

mkdir -p "$outdir"
if ! cmp -s "$bin" "$outdir/redis-server"; then
    cp "$bin" "$outdir/redis-server.tmp"
    mv -f "$outdir/redis-server.tmp" "$outdir/redis-server"
fi

# Sanity check: the binary runs natively.
if ! ver=$("$outdir/redis-server" --version) || [[ "$ver" != "Redis server v="* ]]; then
    log "sanity check failed: '$outdir/redis-server --version' printed '${ver:-}'"
    exit 1
fi
echo "$outdir/redis-server: ${ver%% sha=*}"

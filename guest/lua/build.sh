#!/usr/bin/env bash
# Build a static, musl-linked Lua 5.4 interpreter from Debian's source package.
#
# Usage: guest/lua/build.sh OUTDIR
#
# Produces OUTDIR/lua. The unpacked source is cached in
# ${NUBIS_CACHE:-$HOME/.cache/nubis}/lua5.4, so the network (Debian's apt
# mirror) is only needed the first time. Re-running is cheap: nothing is
# fetched if the source is already unpacked, and nothing is compiled if
# OUTDIR/lua is newer than every source file.
#
# Requires: dpkg-dev (apt-get source), musl-tools (musl-gcc). Adding the
# deb-src entry and `apt-get update` need root.
set -euo pipefail

if (($# != 1)); then
    echo "usage: $0 OUTDIR" >&2
    exit 64
fi
outdir=$1
cache=${NUBIS_CACHE:-$HOME/.cache/nubis}/lua5.4
log() { echo "lua-build: $*" >&2; }

# --- 1. make sure apt knows about source packages --------------------------

# debsrc_ensure_deb_src (guest/debsrc.sh, shared with guest/redis and
# guest/sqlite): adds a deb-src entry derived from the binary sources if none
# exists, and refreshes apt's lists.
DEBSRC_TAG=lua-build
# shellcheck source=guest/debsrc.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../debsrc.sh"
ensure_deb_src() { debsrc_ensure_deb_src || exit 1; }

# --- 2. fetch + unpack the source package (once) ---------------------------

# The unpacked tree is the single lua5.4-*/ directory containing src/lua.c.
find_srcdir() {
    local d
    for d in "$cache"/lua5.4-*/; do
        if [[ -f "$d/src/lua.c" ]]; then
            echo "${d%/}"
            return 0
        fi
    done
    return 1
}

shopt -s nullglob
if ! srcdir=$(find_srcdir); then
    command -v dpkg-source >/dev/null || { log "dpkg-dev is required"; exit 1; }
    ensure_deb_src
    mkdir -p "$cache"
    log "fetching Debian source package lua5.4 into $cache"
    # As root, apt warns that the download is unsandboxed; harmless here.
    # If a deb-src entry existed but its index was never fetched, apt-get
    # source fails to find the package: refresh the lists once and retry.
    if ! (cd "$cache" && apt-get source -q lua5.4 >&2); then
        log "apt-get source failed; running apt-get update and retrying"
        apt-get update -q >&2
        (cd "$cache" && apt-get source -q lua5.4 >&2)
    fi
    srcdir=$(find_srcdir) || { log "unpacked source not found in $cache"; exit 1; }
fi

# --- 3. compile -------------------------------------------------------------

command -v musl-gcc >/dev/null || { log "musl-gcc (musl-tools) is required"; exit 1; }
mkdir -p "$outdir"
out=$outdir/lua

# Everything in src/ except the bytecode compiler's main (luac.c) goes into
# the interpreter: the core, the standard libraries and lua.c (its main).
sources=()
for f in "$srcdir"/src/*.c; do
    [[ "$(basename "$f")" == luac.c ]] && continue
    sources+=("$f")
done
((${#sources[@]} > 0)) || { log "no sources in $srcdir/src"; exit 1; }

# Debian's patch 0002-lua-modules-paths makes luaconf.h include
# "lua5.4-deb-multiarch.h", which debian/rules generates at configure time
# (it only feeds the C-module search path, unused here: no dlopen). Generate
# the same header outside the source tree, in a private include dir.
gendir=$cache/include
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
mkdir -p "$gendir"
header="#ifndef _LUA_DEB_MULTIARCH_
#define _LUA_DEB_MULTIARCH_
#define DEB_HOST_MULTIARCH \"$multiarch\"
#endif"
if [[ "$(cat "$gendir/lua5.4-deb-multiarch.h" 2>/dev/null)" != "$header" ]]; then
    printf '%s\n' "$header" >"$gendir/lua5.4-deb-multiarch.h"
fi

uptodate=1
if [[ ! -x "$out" ]]; then
    uptodate=0
else
    for f in "${sources[@]}" "$srcdir"/src/*.h "$gendir"/*.h "$0"; do
        if [[ "$f" -nt "$out" ]]; then
            uptodate=0
            break
        fi
    done
fi

if ((uptodate)); then
    log "$out is up to date"
else
    log "compiling $(basename "$srcdir") -> $out"
    # LUA_USE_POSIX: mkstemp, popen, etc., but neither LUA_USE_DLOPEN (no
    # dynamic C modules in a static binary) nor LUA_USE_READLINE.
    # LUA_COMPAT_5_3 and -std=gnu99 match Debian's own build (src/Makefile,
    # debian/rules), so scripts behave as with Debian's lua5.4.
    # Compile into a temp file and rename so a failed build never leaves a
    # half-written binary that looks up to date.
    musl-gcc -std=gnu99 -static -O2 -DLUA_USE_POSIX -DLUA_COMPAT_5_3 \
        -I"$gendir" -I"$srcdir/src" \
        -o "$out.tmp" "${sources[@]}" -lm
    strip "$out.tmp" 2>/dev/null || true
    mv -f "$out.tmp" "$out"
fi

# --- 4. sanity check: the binary runs natively ------------------------------

result=$("$out" -e 'print(1+1)')
if [[ "$result" != 2 ]]; then
    log "sanity check failed: '$out -e print(1+1)' printed '$result'"
    exit 1
fi

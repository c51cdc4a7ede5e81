#!/usr/bin/env bash
# Build a static, musl-linked SQLite shell (sqlite3) from Debian 12's sqlite3
# source package (a real workload for service VMs; see docs/SERVICE-VMS.md).
#
# Usage: guest/sqlite/build.sh OUTDIR
#
# Produces OUTDIR/sqlite3. The source and the built binary are cached in
# ${NUBIS_CACHE:-$HOME/.cache/nubis}/sqlite3/VERSION/ (VERSION = the Debian
# source version apt offers, e.g. 3.40.1-2+deb12u2), so Debian's apt mirror is
# only needed once per version. The binary is rebuilt when this script is
# newer than the cached one.
#
# Build: upstream's configure + make generate the amalgamation (sqlite3.c) and
# the shell (shell.c) from the patched tree (tclsh runs the generators), then
# one musl-gcc -static compile of the two files with Debian's feature flags
# (debian/rules), minus loadable extensions (a static binary has no dlopen)
# and readline. No source patches beyond Debian's own.
#
# Requires: dpkg-dev, musl-tools, make, tcl (tclsh).
set -euo pipefail

if (($# != 1)); then
    echo "usage: $0 OUTDIR" >&2
    exit 64
fi
outdir=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${NUBIS_CACHE:-$HOME/.cache/nubis}/sqlite3
DEBSRC_TAG=sqlite-build
log() { echo "sqlite-build: $*" >&2; }
# shellcheck source=guest/debsrc.sh
. "$here/../debsrc.sh"

for tool in musl-gcc tclsh make; do
    command -v "$tool" >/dev/null || {
        log "$tool is required (packages: musl-tools, tcl, make)"
        exit 1
    }
done

debsrc_prepare sqlite3 "$cache"
bin=$DEBSRC_DIR/bin/sqlite3
srcdir=
for d in "$DEBSRC_DIR"/sqlite3-*/; do
    [[ -x "$d/configure" && -f "$d/src/shell.c.in" ]] && srcdir=${d%/}
done

# Debian's CFLAGS (debian/rules), without SQLITE_ENABLE_LOAD_EXTENSION.
defines=(
    -DSQLITE_SECURE_DELETE -DSQLITE_ENABLE_COLUMN_METADATA
    -DSQLITE_ENABLE_FTS3 -DSQLITE_ENABLE_FTS3_PARENTHESIS
    -DSQLITE_ENABLE_FTS4 -DSQLITE_ENABLE_FTS5
    -DSQLITE_ENABLE_RTREE=1 -DSQLITE_SOUNDEX=1
    -DSQLITE_ENABLE_UNLOCK_NOTIFY
    -DSQLITE_OMIT_LOOKASIDE=1 -DSQLITE_ENABLE_DBSTAT_VTAB
    -DSQLITE_ALLOW_ROWID_IN_VIEW
    -DSQLITE_ENABLE_UPDATE_DELETE_LIMIT=1
    -DSQLITE_OMIT_LOAD_EXTENSION
    -DSQLITE_ENABLE_JSON1
    -DSQLITE_LIKE_DOESNT_MATCH_BLOBS
    -DSQLITE_THREADSAFE=1
    -DSQLITE_ENABLE_FTS3_TOKENIZER=1
    -DSQLITE_USE_URI=1
    -DSQLITE_MAX_SCHEMA_RETRY=25
    -DSQLITE_ENABLE_PREUPDATE_HOOK
    -DSQLITE_ENABLE_SESSION
    -DSQLITE_ENABLE_STMTVTAB
    -DSQLITE_MAX_VARIABLE_NUMBER=250000
    # what configure would detect on Linux (musl has both)
    -DHAVE_USLEEP -DHAVE_FDATASYNC
)

if [[ -x "$bin" && ! "${BASH_SOURCE[0]}" -nt "$bin" ]]; then
    log "cached $bin ($DEBSRC_VERSION)"
else
    [[ -n "$srcdir" ]] || {
        log "no unpacked sqlite3-*/configure in $DEBSRC_DIR"
        exit 1
    }
    t0=$SECONDS
    gen=$DEBSRC_DIR/gen
    rm -rf "$gen"
    mkdir -p "$gen"
    log "generating the amalgamation of $(basename "$srcdir") ($DEBSRC_VERSION)"
    if ! (cd "$gen" && "$srcdir/configure" CC=musl-gcc --disable-tcl --disable-readline \
        --disable-editline --disable-shared --disable-load-extension &&
        make -j"$(nproc)" sqlite3.c shell.c) >"$DEBSRC_DIR/build.log" 2>&1; then
        tail -40 "$DEBSRC_DIR/build.log" >&2
        log "generating sources failed; full log: $DEBSRC_DIR/build.log"
        exit 1
    fi
    log "compiling sqlite3.c + shell.c with musl-gcc -static"
    mkdir -p "$DEBSRC_DIR/bin"
    if ! musl-gcc -static -O2 -fno-strict-aliasing "${defines[@]}" -I"$gen" \
        -o "$bin.tmp" "$gen/shell.c" "$gen/sqlite3.c" -lm >>"$DEBSRC_DIR/build.log" 2>&1; then
        tail -40 "$DEBSRC_DIR/build.log" >&2
        log "compile failed; full log: $DEBSRC_DIR/build.log"
        exit 1
    fi
    strip "$bin.tmp" 2>/dev/null || true
    mv -f "$bin.tmp" "$bin"
    rm -rf "$gen"
    log "built in $((SECONDS - t0)) s"
fi

if LC_ALL=C readelf -l "$bin" 2>/dev/null | grep -q 'INTERP'; then
    log "$bin is dynamically linked"
    exit 1
fi

mkdir -p "$outdir"
if ! cmp -s "$bin" "$outdir/sqlite3"; then
    cp "$bin" "$outdir/sqlite3.tmp"
    mv -f "$outdir/sqlite3.tmp" "$outdir/sqlite3"
fi

# Sanity check: the binary runs natively.
if ! res=$("$outdir/sqlite3" :memory: 'select 1+1;') || [[ "$res" != 2 ]]; then
    log "sanity check failed: '$outdir/sqlite3 :memory: \"select 1+1;\"' printed '${res:-}'"
    exit 1
fi
echo "$outdir/sqlite3: SQLite $("$outdir/sqlite3" -version | cut -d' ' -f1)"

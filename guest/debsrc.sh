# shellcheck shell=bash
# Shared by the guest/*/build.sh scripts that build static musl programs from
# Debian source packages (sourced, not executed).
#
#   debsrc_prepare PKG CACHE   make sure the source of PKG is unpacked under
#                              CACHE/VERSION/ (VERSION = the source version
#                              apt offers, epoch stripped) and set
#                              DEBSRC_VERSION and DEBSRC_DIR (the cache
#                              directory for that version)
#
# Offline use: once a version is unpacked, nothing touches the network. If apt
# cannot say which version it offers (no deb-src index and no mirror), the
# newest version already in CACHE is used.
#
# Requires: dpkg-dev (apt-get source, dpkg-source). Adding the deb-src entry
# and `apt-get update` need root.

DEBSRC_LIST=/etc/apt/sources.list.d/nubis-deb-src.sources

debsrc_log() { echo "${DEBSRC_TAG:-debsrc}: $*" >&2; }

debsrc_have_deb_src() {
    local f
    shopt -s nullglob
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        grep -Eq '^[[:space:]]*deb-src[[:space:]]' "$f" && return 0
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        grep -Eiq '^Types:.*\<deb-src\>' "$f" && return 0
    done
    return 1
}

# Print deb822 deb-src stanzas mirroring the binary ones in debian.sources:
# URIs/Suites/Components/Signed-By are copied verbatim (including folded
# continuation lines, e.g. an inline Signed-By key), Types becomes deb-src.
debsrc_stanzas_from_deb822() {
    awk '
        function flush() { if (body != "") print "Types: deb-src\n" body; body = "" }
        /^[[:space:]]*$/            { flush(); keep = 0; next }
        /^#/                        { next }
        /^[[:space:]]/              { if (keep) body = body $0 "\n"; next }
        {
            field = tolower($0); sub(/:.*/, "", field)
            keep = (field == "uris" || field == "suites" ||
                    field == "components" || field == "signed-by" ||
                    field == "enabled")
            if (keep) body = body $0 "\n"
        }
        END { flush() }
    ' "$1"
}

# Same for a one-line-style sources.list ("deb [opts] URI SUITE COMP...").
debsrc_stanzas_from_list() {
    awk '
        $1 != "deb" { next }
        {
            i = 2; signed = ""
            if ($2 ~ /^\[/) {          # options block: pick up signed-by=
                for (; i <= NF; i++) {
                    if ($i ~ /^\[?signed-by=/) {
                        signed = $i; sub(/^\[?signed-by=/, "", signed); sub(/\]$/, "", signed)
                    }
                    if ($i ~ /\]$/) { i++; break }
                }
            }
            comps = ""
            for (j = i + 2; j <= NF; j++) comps = comps (comps == "" ? "" : " ") $j
            print "Types: deb-src\nURIs: " $i "\nSuites: " $(i + 1) "\nComponents: " comps
            if (signed != "") print "Signed-By: " signed
            print ""
        }
    ' "$1"
}

# Add a deb-src entry derived from the binary sources (if none exists) and
# refresh apt's lists. Returns nonzero if no binary sources are configured.
debsrc_ensure_deb_src() {
    debsrc_have_deb_src && return 0
    local stanzas=""
    if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
        stanzas=$(debsrc_stanzas_from_deb822 /etc/apt/sources.list.d/debian.sources)
    elif [[ -r /etc/apt/sources.list ]]; then
        stanzas=$(debsrc_stanzas_from_list /etc/apt/sources.list)
    fi
    if [[ -z "$stanzas" ]]; then
        debsrc_log "no Debian binary sources found to derive a deb-src entry from"
        return 1
    fi
    debsrc_log "adding $DEBSRC_LIST"
    printf '# Written by nubis guest/debsrc.sh: source packages for apt-get source.\n%s\n' \
        "$stanzas" >"$DEBSRC_LIST"
    apt-get update -q >&2
}

# The newest source version of PKG apt knows about (with epoch), or nothing.
debsrc_candidate() {
    local best="" v
    while read -r v; do
        if [[ -z "$best" ]] || dpkg --compare-versions "$v" gt "$best"; then
            best=$v
        fi
    done < <(apt-cache showsrc "$1" 2>/dev/null | awk -v p="$1" '
        $1 == "Package:" { ours = ($2 == p) } ours && $1 == "Version:" { print $2 }')
    [[ -n "$best" ]] && echo "$best"
}

# The newest version directory already unpacked in CACHE (name only), or nothing.
debsrc_newest_cached() {
    local cache=$1 best="" d v
    for d in "$cache"/*/; do
        [[ -f "$d/.unpacked" ]] || continue
        v=$(basename "$d")
        if [[ -z "$best" ]] || dpkg --compare-versions "$v" gt "$best"; then
            best=$v
        fi
    done
    [[ -n "$best" ]] && echo "$best"
}

debsrc_prepare() {
    local pkg=$1 cache=$2 full="" dir
    shopt -s nullglob
    full=$(debsrc_candidate "$pkg") || true
    if [[ -z "$full" ]] && ! debsrc_have_deb_src; then
        debsrc_ensure_deb_src || true
        full=$(debsrc_candidate "$pkg") || true
    fi
    if [[ -z "$full" ]]; then
        DEBSRC_VERSION=$(debsrc_newest_cached "$cache") || {
            debsrc_log "apt offers no source package '$pkg' and nothing is cached in $cache"
            return 1
        }
        debsrc_log "apt offers no source package '$pkg'; using cached $DEBSRC_VERSION"
        DEBSRC_DIR=$cache/$DEBSRC_VERSION
        return 0
    fi
    DEBSRC_VERSION=${full#*:} # the epoch is not part of the directory name
    DEBSRC_DIR=$cache/$DEBSRC_VERSION
    dir=$DEBSRC_DIR
    [[ -f "$dir/.unpacked" ]] && return 0

    command -v dpkg-source >/dev/null || {
        debsrc_log "dpkg-dev is required"
        return 1
    }
    rm -rf "$dir"
    mkdir -p "$dir"
    debsrc_log "fetching Debian source package $pkg=$full into $dir"
    # As root, apt warns that the download is unsandboxed; harmless here.
    # If the index is stale (the mirror moved on), refresh once and retry.
    if ! (cd "$dir" && apt-get source -q "$pkg=$full" >&2); then
        debsrc_log "apt-get source failed; running apt-get update and retrying"
        apt-get update -q >&2
        full=$(debsrc_candidate "$pkg") || true
        [[ -n "$full" ]] || {
            debsrc_log "apt offers no source package '$pkg'"
            return 1
        }
        DEBSRC_VERSION=${full#*:}
        DEBSRC_DIR=$cache/$DEBSRC_VERSION
        dir=$DEBSRC_DIR
        rm -rf "$dir"
        mkdir -p "$dir"
        (cd "$dir" && apt-get source -q "$pkg=$full" >&2)
    fi
    touch "$dir/.unpacked"
}

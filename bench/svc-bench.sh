#!/usr/bin/env bash
# Benchmark (not a test) of service VMs with real workloads, side by side in
# one run: the SAME static musl binaries (make workloads) run natively on the
# host, in nubis as service VMs, and (start time only) in an OCI container
# under crun.
#
#   - Redis throughput: redis-benchmark -t set,get -c CLIENTS, without and
#     with pipelining (-P 16), RUNS runs each, interleaved; median requests/s
#   - SQLite: SQL_N single-row INSERTs in one transaction, then SQL_M point
#     queries (timed inside SQLite with julianday('now')), RUNS runs; median
#   - start to first reply: spawn -> first TCP connect, and -> first PING
#     answered (bench/svc_start.py), START_RUNS runs: native, nubis, crun
#   - monitor memory beyond the guest's: /proc/PID/smaps of `nubis run`
#     (bench/svc_rss.py), idle after start and after the Redis runs
# Prints a Markdown table, the ratios (nubis/native, nubis/crun) and targets.
#
# Usage: bench/svc-bench.sh BUILD_DIR   (bench/run.sh runs it at its end)
# Environment: RUNS N_PLAIN N_PIPE CLIENTS START_RUNS SQL_N SQL_M MEMORY
set -euo pipefail

if (($# != 1)) || [[ "$1" == -h || "$1" == --help ]]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 64
fi
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

RUNS=${RUNS:-3}
N_PLAIN=${N_PLAIN:-50000}
N_PIPE=${N_PIPE:-200000}
CLIENTS=${CLIENTS:-50}
START_RUNS=${START_RUNS:-10}
SQL_N=${SQL_N:-20000}
SQL_M=${SQL_M:-20000}
MEMORY=${MEMORY:-256M}

say() { printf '%s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }

for f in "$BUILD/guest/redis/redis-server" "$BUILD/guest/sqlite/sqlite3"; do
    if [[ ! -x "$f" ]]; then
        say "svc-bench: $f is missing: run 'make workloads' first" >&2
        exit 1
    fi
done
for tool in redis-benchmark redis-cli python3; do
    command -v "$tool" >/dev/null || {
        say "svc-bench: $tool is missing (scripts/deps.sh)" >&2
        exit 1
    }
done

START=$SECONDS
TMP=$(mktemp -d /tmp/nubis-svc-bench.XXXXXX)
PIDS=()
CRUN_IDS=()
CRUN_WRAP=()
cleanup() {
    local p id
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for id in "${CRUN_IDS[@]}"; do "${CRUN_WRAP[@]}" crun delete -f "$id" >/dev/null 2>&1 || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Copies of what is measured: others may rebuild BUILD meanwhile.
NUBIS=$TMP/nubis
cp "$BUILD/nubis" "$NUBIS"
MEM_BYTES=$(numfmt --from=iec "$MEMORY")
python3 "$REPO/tests/assets/mkworkload.py" redis --persist none --bin "$BUILD/guest/redis/redis-server" \
    "$TMP/redis-rootfs"
python3 "$REPO/tests/assets/mkworkload.py" sqlite --bin "$BUILD/guest/sqlite/sqlite3" "$TMP/sqlite-rootfs"
RFS=$TMP/redis-rootfs
SFS=$TMP/sqlite-rootfs

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "-"
        else printf "%.2f\n", a / b }'
}
# native_conf PORT DATADIR: the rootfs's redis.conf for a host run
native_conf() {
    sed -e "s|^port .*|port $1|" -e "s|^bind .*|bind 127.0.0.1|" -e "s|^dir .*|dir $2|" \
        "$RFS/etc/redis.conf"
}
# wait_pong PORT PID: until Redis answers PING (60 s), or its process ends
wait_pong() {
    for _ in $(seq 3000); do
        [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG ]] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.02
    done
    return 1
}

section "machine"
say "nproc: $(nproc)"
say "model name: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
say "kernel: $(uname -r)"
say "kvm flavour: $("$NUBIS" info 2>/dev/null | awk -F': ' '$1 == "kvm.flavour" { print $2 }')"
say "workloads: $("$RFS/usr/bin/redis-server" --version | cut -d' ' -f1-3), SQLite $("$SFS/usr/bin/sqlite3" -version | cut -d' ' -f1)"
say "redis-benchmark: $(redis-benchmark --version 2>/dev/null || dpkg-query -W -f='${Version}' redis-tools)"
say "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

NUBIS_OK=0
if "$NUBIS" help run 2>&1 | grep -q -- '--rootfs'; then
    NUBIS_OK=1
else
    say "this nubis has no service VMs (\`nubis help run\` does not list --rootfs): nubis columns skipped"
fi

declare -A R # results: R[what-where]
put() { R[$1]=$2; }
get() { echo "${R[$1]:--}"; }

# ---- Redis throughput ------------------------------------------------------
section "Redis throughput: redis-benchmark -t set,get -c $CLIENTS (-n $N_PLAIN unpipelined, -n $N_PIPE with -P 16), $RUNS runs"
declare -A PORT
PORT[native]=$(free_port)
native_conf "${PORT[native]}" "$TMP/native-data" >"$TMP/native.conf"
mkdir -p "$TMP/native-data"
"$RFS/usr/bin/redis-server" "$TMP/native.conf" >"$TMP/native-redis.log" 2>&1 &
PIDS+=($!)
NATIVE_PID=$!
wait_pong "${PORT[native]}" "$NATIVE_PID" || { say "native redis-server did not start:"; cat "$TMP/native-redis.log"; exit 1; }
WHERE=(native)
NUBIS_PID=
if ((NUBIS_OK)); then
    PORT[nubis]=$(free_port)
    say "\$ nubis run --memory $MEMORY --rootfs ROOTFS --upper UPPER --publish 127.0.0.1:${PORT[nubis]}:6379 -- /usr/bin/redis-server /etc/redis.conf"
    # Started directly (not through a shell function), so $! is the monitor.
    "$NUBIS" run --memory "$MEMORY" --rootfs "$RFS" --upper "$TMP/upper-tp" \
        --publish "127.0.0.1:${PORT[nubis]}:6379" -- /usr/bin/redis-server /etc/redis.conf \
        >"$TMP/nubis-redis.log" 2>&1 &
    NUBIS_PID=$!
    PIDS+=("$NUBIS_PID")
    if wait_pong "${PORT[nubis]}" "$NUBIS_PID"; then
        WHERE+=(nubis)
        put rss-start "$(python3 "$HERE/svc_rss.py" "$NUBIS_PID" "$MEM_BYTES" || echo -)"
    else
        say "nubis redis-server did not start; its output:"
        sed 's/^/  /' "$TMP/nubis-redis.log" | tail -30
    fi
fi
# bench WHERE MODE RUN: one redis-benchmark run, appends "TEST rps" lines
bench_once() {
    local where=$1 mode=$2 n=$N_PLAIN extra=()
    if [[ "$mode" == pipe ]]; then
        n=$N_PIPE
        extra=(-P 16)
    fi
    timeout 600 redis-benchmark -h 127.0.0.1 -p "${PORT[$where]}" -q --csv -c "$CLIENTS" -n "$n" \
        "${extra[@]}" -t set,get 2>/dev/null |
        sed -n 's/^"\([A-Z]*\)","\([0-9.]*\)".*/\1 \2/p' >>"$TMP/tp-$where-$mode" || true
}
for run in $(seq "$RUNS"); do
    for mode in plain pipe; do
        for where in "${WHERE[@]}"; do
            bench_once "$where" "$mode"
        done
    done
    say "run $run done ($((SECONDS - START)) s)"
done
for where in "${WHERE[@]}"; do
    for mode in plain pipe; do
        for t in SET GET; do
            vals=$(awk -v t="$t" '$1 == t { print $2 }' "$TMP/tp-$where-$mode" 2>/dev/null | tr '\n' ' ')
            put "$t-$mode-$where" "$(awk -v t="$t" '$1 == t { print $2 }' "$TMP/tp-$where-$mode" 2>/dev/null | median)"
            say "$where $t $mode: requests/s per run: ${vals:-none}"
        done
    done
done
if [[ -n "$NUBIS_PID" ]] && kill -0 "$NUBIS_PID" 2>/dev/null; then
    put rss-load "$(python3 "$HERE/svc_rss.py" "$NUBIS_PID" "$MEM_BYTES" || echo -)"
    say "nubis monitor after the runs: $(get rss-load)"
fi
say "native redis-server after the runs: $(grep -E '^VmRSS' "/proc/$NATIVE_PID/status" | tr -s ' ')"
redis-cli -p "${PORT[native]}" shutdown nosave >/dev/null 2>&1 || true
if [[ -n "$NUBIS_PID" ]]; then
    redis-cli -p "${PORT[nubis]}" shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 100); do kill -0 "$NUBIS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$NUBIS_PID" 2>/dev/null || true
fi

# ---- SQLite ------------------------------------------------------------------
section "SQLite: $SQL_N INSERTs in one transaction, then $SQL_M point queries (synchronous=FULL), $RUNS runs"
{
    echo "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;"
    echo "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT NOT NULL, v BLOB NOT NULL);"
    echo "SELECT 'T0 ' || ((julianday('now') - 2440587.5) * 86400000.0);"
    echo "BEGIN;"
    awk -v n="$SQL_N" 'BEGIN { for (i = 1; i <= n; i++) printf "INSERT INTO t VALUES (%d, '\''key-%d'\'', randomblob(100));\n", i, i }'
    echo "COMMIT;"
    echo "SELECT 'T1 ' || ((julianday('now') - 2440587.5) * 86400000.0);"
    awk -v n="$SQL_N" -v m="$SQL_M" 'BEGIN { srand(42); for (i = 1; i <= m; i++) printf "SELECT length(v) FROM t WHERE id = %d;\n", 1 + int(rand() * n) }'
    echo "SELECT 'T2 ' || ((julianday('now') - 2440587.5) * 86400000.0);"
    echo "SELECT 'ROWS ' || count(*) FROM t;"
} >"$TMP/bench.sql"
# sqlite_once WHERE: appends "inserts/s queries/s wall_ms" to $TMP/sql-WHERE
sqlite_once() {
    local where=$1 out t0 t1
    rm -rf "$TMP/sql-native-data" "$TMP/upper-sql"
    mkdir -p "$TMP/sql-native-data"
    t0=$(date +%s%N)
    if [[ "$where" == native ]]; then
        out=$("$SFS/usr/bin/sqlite3" "$TMP/sql-native-data/bench.db" <"$TMP/bench.sql" 2>&1) || true
    else
        out=$("$NUBIS" run --memory "$MEMORY" --rootfs "$SFS" --upper "$TMP/upper-sql" \
            -- /usr/bin/sqlite3 /data/bench.db <"$TMP/bench.sql" 2>&1) || true
    fi
    t1=$(date +%s%N)
    if ! grep -q "^ROWS $SQL_N\$" <<<"$out"; then
        say "$where sqlite run failed: $(tail -5 <<<"$out" | tr '\n' ' ')"
        return 0
    fi
    awk -v n="$SQL_N" -v m="$SQL_M" -v wall="$(((t1 - t0) / 1000000))" '
        $1 == "T0" { a = $2 } $1 == "T1" { b = $2 } $1 == "T2" { c = $2 }
        END { printf "%.0f %.0f %d\n", n / ((b - a) / 1000), m / ((c - b) / 1000), wall }' \
        <<<"$out" >>"$TMP/sql-$where"
}
SQL_WHERE=(native)
((NUBIS_OK)) && SQL_WHERE+=(nubis)
for _ in $(seq "$RUNS"); do
    for where in "${SQL_WHERE[@]}"; do sqlite_once "$where"; done
done
for where in "${SQL_WHERE[@]}"; do
    [[ -s "$TMP/sql-$where" ]] || continue
    say "$where: inserts/s queries/s wall_ms per run: $(tr '\n' ';' <"$TMP/sql-$where")"
    put "sqlins-$where" "$(awk '{ print $1 }' "$TMP/sql-$where" | median)"
    put "sqlq-$where" "$(awk '{ print $2 }' "$TMP/sql-$where" | median)"
    put "sqlwall-$where" "$(awk '{ print $3 }' "$TMP/sql-$where" | median)"
done

# ---- start to first reply --------------------------------------------------
section "start -> first TCP connect / first PING answered, $START_RUNS runs each"
# pick_start FILE WHAT: p50 of the svc_start.py line WHAT
pick_start() { awk -v w="$2" '$1 == w { print $3 }' "$1" 2>/dev/null; }
start_measure() { # start_measure TAG PORT [svc_start options] -- CMD...
    local tag=$1 port=$2
    shift 2
    if timeout 600 python3 "$HERE/svc_start.py" --port "$port" --runs "$START_RUNS" "$@" >"$TMP/start-$tag" 2>&1; then
        sed 's/^/  /' "$TMP/start-$tag"
        put "conn-$tag" "$(pick_start "$TMP/start-$tag" connect)"
        put "reply-$tag" "$(pick_start "$TMP/start-$tag" reply)"
    else
        say "  ($tag failed)"
        sed 's/^/  /' "$TMP/start-$tag" | tail -20
    fi
}
port=$(free_port)
native_conf "$port" "$TMP/native-data" >"$TMP/start.conf"
say "native: \$ ROOTFS/usr/bin/redis-server start.conf (port $port)"
start_measure native "$port" -- "$RFS/usr/bin/redis-server" "$TMP/start.conf"
if ((NUBIS_OK)); then
    port=$(free_port)
    say "nubis: \$ nubis run --memory $MEMORY --rootfs ROOTFS --upper UPPER --publish 127.0.0.1:$port:6379 -- /usr/bin/redis-server /etc/redis.conf"
    start_measure nubis "$port" --rss "$MEM_BYTES" -- "$NUBIS" run --memory "$MEMORY" --rootfs "$RFS" \
        --upper "$TMP/upper-start" --publish "127.0.0.1:$port:6379" -- /usr/bin/redis-server /etc/redis.conf
    put rss-idle "$(sed -n 's/^rss: //p' "$TMP/start-nubis" | head -1)"
fi

CRUN_OK=0
if command -v crun >/dev/null && command -v jq >/dev/null; then
    bundle=$TMP/oci
    mkdir -p "$bundle"
    cp -a "$RFS" "$bundle/rootfs"
    (cd "$bundle" && crun spec)
    port=$(free_port)
    # The host's network namespace (no network namespace of its own), so the
    # host reaches it on 127.0.0.1:PORT like the others; no terminal.
    jq --arg port "$port" '.process.args = ["/usr/bin/redis-server", "/etc/redis.conf", "--port", $port, "--bind", "127.0.0.1"]
        | .process.terminal = false | .root.readonly = false
        | .linux.namespaces |= map(select(.type != "network"))' \
        "$bundle/config.json" >"$bundle/config.tmp" && mv "$bundle/config.tmp" "$bundle/config.json"
    id="nubis-svc-bench-$$"
    CRUN_IDS+=("$id")
    probe() {
        "${CRUN_WRAP[@]}" crun run -d --bundle "$bundle" "$id" >"$TMP/crun-probe" 2>&1 &&
            wait_pong "$port" $$
        local ok=$?
        "${CRUN_WRAP[@]}" crun delete -f "$id" >/dev/null 2>&1 || true
        return $ok
    }
    if probe; then
        CRUN_OK=1
    elif ((EUID == 0)) && grep -q 'hybrid' "$TMP/crun-probe" && command -v unshare >/dev/null &&
        mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
        # As in bench/run.sh: hide the cgroup2 mount of a v1+v2 "hybrid" host
        # in a private mount namespace, so crun uses plain cgroup v1.
        # shellcheck disable=SC2016 # $@ is expanded by the inner sh
        CRUN_WRAP=(unshare -m --propagation private
            sh -c 'mount -t tmpfs nubis-bench /sys/fs/cgroup/unified && exec "$@"' sh)
        say "crun: retrying in a private mount namespace that hides the cgroup2 mount (cgroup v1)"
        probe && CRUN_OK=1
    fi
    if ((CRUN_OK)); then
        say "crun: \$ crun run -d --bundle DIR ID (rootfs = the same tree, host network, args redis-server /etc/redis.conf --port $port); stop: crun delete -f ID"
        start_measure crun "$port" --stop "${CRUN_WRAP[*]@Q} crun delete -f $id" -- "${CRUN_WRAP[@]}" crun run -d --bundle "$bundle" "$id"
    else
        say "crun cannot run here: $(tr '\n' ' ' <"$TMP/crun-probe")"
    fi
else
    say "crun or jq not installed (scripts/deps.sh bench): crun skipped"
fi

# ---- summary ---------------------------------------------------------------
section "summary (median of $RUNS runs; start: p50 of $START_RUNS)"
say "| what | native | nubis | crun | nubis/native | nubis/crun |"
say "|---|---:|---:|---:|---:|---:|"
for mode in plain pipe; do
    for t in SET GET; do
        n=$(get "$t-$mode-native") v=$(get "$t-$mode-nubis")
        label="Redis $t requests/s, -c $CLIENTS"
        [[ "$mode" == pipe ]] && label+=" -P 16"
        say "| $label | $n | $v | | $(ratio "$v" "$n") | |"
    done
done
say "| SQLite inserts/s (one transaction) | $(get sqlins-native) | $(get sqlins-nubis) | | $(ratio "$(get sqlins-nubis)" "$(get sqlins-native)") | |"
say "| SQLite point queries/s | $(get sqlq-native) | $(get sqlq-nubis) | | $(ratio "$(get sqlq-nubis)" "$(get sqlq-native)") | |"
say "| SQLite whole command, ms | $(get sqlwall-native) | $(get sqlwall-nubis) | | $(ratio "$(get sqlwall-nubis)" "$(get sqlwall-native)") | |"
say "| start -> first TCP connect, ms | $(get conn-native) | $(get conn-nubis) | $(get conn-crun) | $(ratio "$(get conn-nubis)" "$(get conn-native)") | $(ratio "$(get conn-nubis)" "$(get conn-crun)") |"
say "| start -> first PING answered, ms | $(get reply-native) | $(get reply-nubis) | $(get reply-crun) | $(ratio "$(get reply-nubis)" "$(get reply-native)") | $(ratio "$(get reply-nubis)" "$(get reply-crun)") |"
say ""
say "nubis monitor memory (guest memory $MEMORY):"
say "  idle, just started: $(get rss-idle)"
say "  after the Redis runs: $(get rss-load)"
beyond_kib() { sed -n 's/.*monitor beyond guest \([0-9]*\) KiB.*/\1/p' <<<"$1" | grep . || echo -; }
anon_kib() { sed -n 's/.*anon \([0-9]*\) KiB.*/\1/p' <<<"$1" | grep . || echo -; }

section "targets"
target() { # target NAME VALUE OP LIMIT UNIT
    local verdict
    verdict=$(awk -v v="$2" -v op="$3" -v l="$4" 'BEGIN {
        if (v == "-" || v == "") { print "unknown"; exit }
        ok = (op == "<=") ? (v + 0 <= l + 0) : (v + 0 >= l + 0)
        print ok ? "met" : "NOT met" }')
    printf '%-58s %10s %s (target %s %s): %s\n' "$1" "$2" "$5" "$3" "$4" "$verdict"
}
for t in SET GET; do
    target "Redis $t unpipelined, nubis/native" "$(ratio "$(get "$t-plain-nubis")" "$(get "$t-plain-native")")" ">=" 0.5 x
    target "Redis $t -P 16, nubis/native" "$(ratio "$(get "$t-pipe-nubis")" "$(get "$t-pipe-native")")" ">=" 0.9 x
done
target "start -> first PING answered, nubis/crun" "$(ratio "$(get reply-nubis)" "$(get reply-crun)")" "<=" 0.5 x
load=$(get rss-load)
target "monitor RSS beyond guest memory, after load: anonymous" "$(anon_kib "$load")" "<=" 1024 KiB
target "... all resident pages (incl. shared library files)" "$(beyond_kib "$load")" "<=" 1024 KiB
say ""
say "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
say "total time: $((SECONDS - START)) s"

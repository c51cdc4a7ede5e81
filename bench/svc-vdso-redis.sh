#!/usr/bin/env bash
# Benchmark (not a test) of the service-VM vDSO (vdso helper): the same
# static Redis natively, in nubis with `--vdso off` (every clock read an
# exit) and with `--vdso on`, side by side in one run, interleaved:
# redis-benchmark -t set,get -c CLIENTS without and with -P 16, RUNS runs,
# median requests/s and the ratio to native.
#
# Usage: bench/svc-vdso-redis.sh NUBIS REDIS_ROOTFS
#   REDIS_ROOTFS: a root filesystem with /usr/bin/redis-server and
#   /etc/redis.conf (tests/assets/mkworkload.py redis --persist none, branch
#   workloads; the static Redis comes from guest/redis/build.sh).
# Environment: RUNS (3) N_PLAIN (20000) N_PIPE (100000) CLIENTS (50)
set -euo pipefail

if (($# != 2)); then
    echo "usage: $0 NUBIS REDIS_ROOTFS" >&2
    exit 64
fi
NUBIS=$1
RFS=$2
RUNS=${RUNS:-3}
N_PLAIN=${N_PLAIN:-20000}
N_PIPE=${N_PIPE:-100000}
CLIENTS=${CLIENTS:-50}
TMP=$(mktemp -d /tmp/nubis-vdso-bench.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_pong() {
    for _ in $(seq 1500); do
        [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG ]] && return 0
        sleep 0.02
    done
    return 1
}

echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
    "kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A PORT
PORT[native]=$(free_port)
mkdir -p "$TMP/native-data"
sed -e "s|^port .*|port ${PORT[native]}|" -e "s|^bind .*|bind 127.0.0.1|" \
    -e "s|^dir .*|dir $TMP/native-data|" "$RFS/etc/redis.conf" >"$TMP/native.conf"
"$RFS/usr/bin/redis-server" "$TMP/native.conf" >"$TMP/native.log" 2>&1 &
PIDS+=($!)
wait_pong "${PORT[native]}" || { echo "native redis-server did not start" >&2; exit 1; }
for mode in off on; do
    PORT[$mode]=$(free_port)
    "$NUBIS" run --memory 256M --rootfs "$RFS" --upper "$TMP/upper-$mode" --vdso "$mode" \
        --publish "127.0.0.1:${PORT[$mode]}:6379" -- /usr/bin/redis-server /etc/redis.conf \
        >"$TMP/$mode.log" 2>&1 &
    PIDS+=($!)
    wait_pong "${PORT[$mode]}" || { echo "nubis --vdso $mode did not start:" >&2; cat "$TMP/$mode.log" >&2; exit 1; }
done
for _ in $(seq "$RUNS"); do
    for pipe in plain pipe; do
        for where in native off on; do
            n=$N_PLAIN extra=()
            if [[ $pipe == pipe ]]; then n=$N_PIPE extra=(-P 16); fi
            redis-benchmark -h 127.0.0.1 -p "${PORT[$where]}" -q --csv -c "$CLIENTS" -n "$n" \
                "${extra[@]}" -t set,get 2>/dev/null |
                sed -n "s/^\"\([A-Z]*\)\",\"\([0-9.]*\)\".*/$where $pipe \1 \2/p" >>"$TMP/res"
        done
    done
done
python3 - "$TMP/res" <<'PY'
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    where, pipe, test, v = line.split()
    d[where, pipe, test].append(float(v))
print("| test | native | nubis --vdso off | nubis --vdso on |")
print("|---|---:|---:|---:|")
for pipe in ("plain", "pipe"):
    for test in ("SET", "GET"):
        nat = statistics.median(d["native", pipe, test] or [0])
        cells = []
        for where in ("native", "off", "on"):
            v = statistics.median(d[where, pipe, test] or [0])
            cells.append(f"{v:.0f}" + (f" ({v / nat:.2f}x)" if nat and where != "native" else ""))
        name = f"{test}{' -P 16' if pipe == 'pipe' else ''}"
        print(f"| {name} | " + " | ".join(cells) + " |")
PY

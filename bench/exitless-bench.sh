#!/usr/bin/env bash
# Benchmark (not a test) of exitless system calls (docs/SERVICE-VMS.md,
# "Exitless system calls"): Redis (static musl, make workloads) natively, in
# a service VM with --syscall-mode exit, and with --syscall-mode poll;
# redis-benchmark -t set,get -c CLIENTS unpipelined and with -P 16, RUNS runs
# each, interleaved by mode; median requests/s. Then the per-call cost of
# fs-test bench (getppid = always an exit; pread/pwrite/pipe = fast path).
#
# Usage: bench/exitless-bench.sh BUILD_DIR
# Environment: RUNS N_PLAIN N_PIPE CLIENTS MODES ("native exit poll")
#              BENCH_CPUS (taskset list for redis-benchmark, e.g. 1)
set -euo pipefail
BUILD=$(cd "$1" && pwd)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-3}
N_PLAIN=${N_PLAIN:-20000}
N_PIPE=${N_PIPE:-200000}
CLIENTS=${CLIENTS:-50}
MODES=${MODES:-native exit poll}
TS=()
[[ -n "${BENCH_CPUS:-}" ]] && TS=(taskset -c "$BENCH_CPUS")
TMP=$(mktemp -d /tmp/nubis-exitless-bench.XXXXXX)
PID=
cleanup() { [[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
python3 "$REPO/tests/assets/mkworkload.py" redis --persist none \
    --bin "$BUILD/guest/redis/redis-server" "$TMP/rootfs" >/dev/null
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
start() { # start MODE PORT
    if [[ $1 == native ]]; then
        sed -e "s|^port .*|port $2|" -e "s|^bind .*|bind 127.0.0.1|" -e "s|^dir .*|dir $TMP|" \
            "$TMP/rootfs/etc/redis.conf" >"$TMP/native.conf"
        "$TMP/rootfs/usr/bin/redis-server" "$TMP/native.conf" >"$TMP/$1.log" 2>&1 &
    else
        rm -rf "$TMP/upper"
        NUBIS_SVC_TRACE=1 "$BUILD/nubis" run --memory 256M --rootfs "$TMP/rootfs" --upper "$TMP/upper" \
            --syscall-mode "$1" ${NUBIS_EXTRA:-} --publish "127.0.0.1:$2:6379" -- \
            /usr/bin/redis-server /etc/redis.conf >"$TMP/$1.log" 2>&1 &
    fi
    PID=$!
    for _ in $(seq 500); do
        [[ "$(redis-cli -p "$2" ping 2>/dev/null)" == PONG ]] && return 0
        sleep 0.02
    done
    echo "redis ($1) did not start"; tail "$TMP/$1.log"; exit 1
}
declare -A R
for run in $(seq "$RUNS"); do
    for m in $MODES; do
        port=$(free_port)
        start "$m" "$port"
        for p in 1 16; do
            n=$N_PLAIN; ((p > 1)) && n=$N_PIPE
            "${TS[@]}" redis-benchmark -h 127.0.0.1 -p "$port" -q --csv -c "$CLIENTS" -n "$n" -P "$p" \
                -t set,get | tr -d '"' | awk -F, -v m="$m" -v p="$p" '$1 == "SET" || $1 == "GET" { print m, p, $1, $2 }' \
                >>"$TMP/results"
        done
        redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
        wait "$PID" 2>/dev/null || true
        PID=
        [[ $m != native ]] && grep -h "exitless:" "$TMP/$m.log" | sed "s/^/$m run $run: /"
    done
done
printf '\n| mode | SET rps | GET rps | SET rps -P 16 | GET rps -P 16 |\n|---|---|---|---|---|\n'
for m in $MODES; do
    row="| $m"
    for p in 1 16; do for t in SET GET; do
        row+=" | $(awk -v m="$m" -v p="$p" -v t="$t" '$1 == m && $2 == p && $3 == t { print $4 }' "$TMP/results" | median)"
    done; done
    echo "$row |"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), nproc $(nproc)"

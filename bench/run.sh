#!/usr/bin/env bash
# Benchmark (not a test): a static hello-world launched side by side by
#   - a small host launcher (fork+exec+wait, posix_spawn+wait): the fair peer
#   - `nubis run` (whole command, process start included: the CLI cost)
#   - the in-process API (fnvm_bench: whole request with a prepared VM, and
#     request -> first exit, an upper bound of request -> first guest instruction)
#   - `crun run` of the same binary in an OCI container
# then fresh VMs per second through `nubis serve` under wrk, fnvm_bench --rate
# and --idle. Prints a Markdown table, the ratios and the targets.
#
# Usage: bench/run.sh BUILD_DIR      (`make bench` runs `bench/run.sh build`)
# Environment: N_FORK N_CLI N_API N_CRUN (iterations), WRK_SECONDS,
#   WRK_CONNECTIONS, RATE_SECONDS, IDLE_VMS.
# Bounded in time (each step under `timeout`); well under 3 minutes.
set -euo pipefail

if (($# != 1)) || [[ "$1" == -h || "$1" == --help ]]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 64
fi
BUILD=$(cd "$1" && pwd)

N_FORK=${N_FORK:-1000}
N_CLI=${N_CLI:-300}
N_API=${N_API:-500}
N_CRUN=${N_CRUN:-200}
WRK_SECONDS=${WRK_SECONDS:-10}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-32}
RATE_SECONDS=${RATE_SECONDS:-5}
IDLE_VMS=${IDLE_VMS:-200}

NUBIS=$BUILD/nubis
FORKEXEC=$BUILD/bench/forkexec
FNVM_BENCH=$BUILD/bench/fnvm_bench
FIRST_INSN=$BUILD/bench/first-insn
EXAMPLES=$BUILD/guest/examples
PROGRAMS=(hello-musl hello-glibc)

for f in "$NUBIS" "$FORKEXEC" "$FNVM_BENCH" "$FIRST_INSN" "$EXAMPLES/hello-musl" "$EXAMPLES/hello-glibc"; do
    if [[ ! -x "$f" ]]; then
        echo "bench: $f is missing: run 'ninja -C $1' first" >&2
        exit 1
    fi
done

START=$SECONDS
TMP=$(mktemp -d /tmp/nubis-bench.XXXXXX)
SERVE_PID=
IDLE_PID=
CRUN_IDS=()
CRUN_WRAP=()

cleanup() {
    if [[ -n "$SERVE_PID" ]] && kill -0 "$SERVE_PID" 2>/dev/null; then
        kill "$SERVE_PID" 2>/dev/null || true
        wait "$SERVE_PID" 2>/dev/null || true
    fi
    if [[ -n "$IDLE_PID" ]]; then kill "$IDLE_PID" 2>/dev/null || true; fi
    local id
    for id in "${CRUN_IDS[@]}"; do
        "${CRUN_WRAP[@]}" crun delete -f "$id" >/dev/null 2>&1 || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run copies of the binaries: other people may rebuild BUILD meanwhile.
SNAP=$TMP/build
mkdir -p "$SNAP/bench" "$SNAP/guest/examples"
cp "$NUBIS" "$SNAP/nubis"
cp "$FORKEXEC" "$FNVM_BENCH" "$FIRST_INSN" "$SNAP/bench/"
cp "$EXAMPLES/hello-musl" "$EXAMPLES/hello-glibc" "$SNAP/guest/examples/"
NUBIS=$SNAP/nubis
FORKEXEC=$SNAP/bench/forkexec
FNVM_BENCH=$SNAP/bench/fnvm_bench
FIRST_INSN=$SNAP/bench/first-insn
EXAMPLES=$SNAP/guest/examples

say() { printf '%s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }

# run LOG SECONDS CMD...: echo the command, run it under a time limit, keep
# its output in LOG and show it; a failure is reported, not fatal.
run() {
    local log=$1 limit=$2
    shift 2
    local shown=("${@//$SNAP/BUILD}")
    say "\$ ${shown[*]//$TMP/TMP}"
    local rc=0
    timeout --kill-after=5 "$limit" "$@" >"$log" 2>&1 || rc=$?
    sed 's/^/  /' "$log"
    if ((rc != 0)); then
        say "  (failed or timed out: exit $rc)"
        return 1
    fi
}

# pick FILE LABEL: "P50 P99" (us) of the line of FILE starting with LABEL, or "- -"
pick() {
    awk -v l="$2" 'index($0, l) == 1 {
            for (i = 1; i < NF; i++) {
                if ($i == "p50") a = $(i + 1)
                if ($i == "p99") b = $(i + 1)
            }
        }
        END { if (a == "") print "- -"; else print a, b }' "$1" 2>/dev/null || echo "- -"
}

# ratio A B: A/B with two decimals, "-" when either is unknown
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "-"
        else printf "%.2f\n", a / b }'
}

ROWS=()
# row PROGRAM WHAT P50 P99 PEER_P50
row() {
    ROWS+=("| $1 | $2 | $3 | $4 | $(ratio "$3" "$5") |")
}

section "machine"
MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
FLAVOUR=$("$NUBIS" info 2>/dev/null | awk -F': ' '$1 == "kvm.flavour" { print $2 }')
RING0=$("$NUBIS" info 2>/dev/null | awk -F': ' '$1 == "kvm.guest_ring0" { print $2 }')
say "nproc: $(nproc)"
say "model name: ${MODEL:-unknown}"
say "kernel: $(uname -r)"
say "kvm flavour: ${FLAVOUR:-unknown} (guest ring 0: ${RING0:-unknown})"
say "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A FE_P50 P50
for prog in "${PROGRAMS[@]}"; do
    bin=$EXAMPLES/$prog

    section "$prog: host launcher (fork+exec+wait, posix_spawn+wait), stdout to /dev/null"
    run "$TMP/fe-$prog" 60 "$FORKEXEC" -n "$N_FORK" "$bin" || true
    read -r fe50 fe99 < <(pick "$TMP/fe-$prog" "fork+exec+wait")
    read -r sp50 sp99 < <(pick "$TMP/fe-$prog" "posix_spawn+wait")
    FE_P50[$prog]=$fe50
    row "$prog" "fork+exec+wait (host, small launcher)" "$fe50" "$fe99" "$fe50"
    row "$prog" "posix_spawn+wait (host, small launcher)" "$sp50" "$sp99" "$fe50"

    section "$prog: in-process API (fnvm_bench: a request that finds a prepared, pooled VM)"
    run "$TMP/api-$prog" 60 "$FNVM_BENCH" "$bin" "$N_API" || true
    read -r w50 w99 < <(pick "$TMP/api-$prog" "nubis request (prepared VM)")
    read -r f50 f99 < <(pick "$TMP/api-$prog" "nubis request -> first exit")
    read -r c50 c99 < <(pick "$TMP/api-$prog" "nubis request (VM made inline)")
    P50[api-$prog]=$w50
    row "$prog" "nubis API: whole request, prepared VM" "$w50" "$w99" "$fe50"
    row "$prog" "nubis API: request -> first exit (>= first guest instruction)" "$f50" "$f99" "$fe50"
    row "$prog" "nubis API: whole request, VM made inline (no pool)" "$c50" "$c99" "$fe50"

    section "$prog: \`nubis run\` whole command (process start included: the CLI cost)"
    run "$TMP/cli-$prog" 60 "$FORKEXEC" -f -n "$N_CLI" "$NUBIS" run "$bin" || true
    read -r r50 r99 < <(pick "$TMP/cli-$prog" "fork+exec+wait")
    P50[cli-$prog]=$r50
    row "$prog" "\`nubis run\` (whole command, fork+exec+wait)" "$r50" "$r99" "$fe50"
done

section "nubis process start alone (\`nubis help run\`: dynamic loading, no VM)"
run "$TMP/cli-start" 30 "$FORKEXEC" -f -n "$N_CLI" "$NUBIS" help run || true
read -r s50 s99 < <(pick "$TMP/cli-start" "fork+exec+wait")
row "-" "\`nubis help run\` (process start only, no VM)" "$s50" "$s99" "${FE_P50[hello-musl]}"

if command -v hyperfine >/dev/null; then
    section "cross-check with hyperfine (mean/median of whole commands, no shell)"
    run "$TMP/hyperfine" 60 hyperfine -N --warmup 20 --runs 200 --style basic \
        --export-json "$TMP/hyperfine.json" \
        "$EXAMPLES/hello-musl" "$NUBIS run $EXAMPLES/hello-musl" || true
    if command -v jq >/dev/null && [[ -s "$TMP/hyperfine.json" ]]; then
        jq -r '.results[] | "  median \(.median * 1e6 | floor) us  mean \(.mean * 1e6 | floor) us  \(.command)"' \
            "$TMP/hyperfine.json" | sed "s|$SNAP|BUILD|g"
    fi
else
    section "hyperfine not installed (scripts/deps.sh bench): cross-check skipped"
fi

section "crun: the same static binary in an OCI container"
CRUN_OK=0
if ! command -v crun >/dev/null; then
    say "crun not installed (scripts/deps.sh bench): skipped"
elif ! command -v jq >/dev/null; then
    say "jq not installed (scripts/deps.sh bench): skipped"
else
    say "crun: $(crun --version | head -1)"
    bundle=$TMP/oci-probe
    mkdir -p "$bundle/rootfs"
    cp "$EXAMPLES/hello-musl" "$bundle/rootfs/hello"
    (cd "$bundle" && crun spec)
    probe() {
        "${CRUN_WRAP[@]}" timeout 10 crun run --bundle "$bundle" "nubis-bench-$$-probe" \
            >"$TMP/crun-probe" 2>&1
    }
    jq '.process.args = ["/hello"] | .process.terminal = false | .root.readonly = true' \
        "$bundle/config.json" >"$bundle/config.tmp" && mv "$bundle/config.tmp" "$bundle/config.json"
    CRUN_IDS+=("nubis-bench-$$-probe")
    if probe; then
        CRUN_OK=1
    else
        say "crun cannot run here as is: $(tr '\n' ' ' <"$TMP/crun-probe")"
        # A cgroup v1+v2 "hybrid" host with a controller on the v2 mount is
        # refused by crun. Hide the v2 mount in a private mount namespace so
        # crun runs in plain cgroup v1 mode; the host itself is not changed.
        if ((EUID == 0)) && grep -q 'hybrid' "$TMP/crun-probe" && command -v unshare >/dev/null \
            && mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
            # shellcheck disable=SC2016 # $@ is expanded by the inner sh
            CRUN_WRAP=(unshare -m --propagation private
                sh -c 'mount -t tmpfs nubis-bench /sys/fs/cgroup/unified && exec "$@"' sh)
            say "retrying in a private mount namespace that hides the cgroup2 mount (crun uses cgroup v1)"
            if probe; then
                CRUN_OK=1
            else
                say "still cannot run: $(tr '\n' ' ' <"$TMP/crun-probe")"
            fi
        fi
    fi
fi
if ((CRUN_OK)); then
    for prog in "${PROGRAMS[@]}"; do
        bundle=$TMP/oci-$prog
        mkdir -p "$bundle/rootfs"
        cp "$EXAMPLES/$prog" "$bundle/rootfs/hello"
        jq '.' "$TMP/oci-probe/config.json" >"$bundle/config.json"
        id="nubis-bench-$$-$prog"
        CRUN_IDS+=("$id")
        say "bundle: rootfs = /hello only; config.json from \`crun spec\`, args [\"/hello\"], terminal false, readonly root"
        run "$TMP/crun-$prog" 60 "${CRUN_WRAP[@]}" "$FORKEXEC" -f -n "$N_CRUN" -w 5 \
            "$(command -v crun)" run --bundle "$bundle" "$id" || true
        read -r k50 k99 < <(pick "$TMP/crun-$prog" "fork+exec+wait")
        P50[crun-$prog]=$k50
        row "$prog" "\`crun run\` (container, fork+exec+wait)" "$k50" "$k99" "${FE_P50[$prog]}"
    done
fi

section "\`nubis serve\` under load: fresh VMs per second on $(nproc) cores"
cat >"$TMP/post.lua" <<'LUA'
-- POST an empty body (the program's stdin); print one parseable summary line
wrk.method = "POST"
wrk.body = ""
done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  io.write(string.format(
    "WRK requests=%d seconds=%.2f rps=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "non2xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
    summary.requests, s, summary.requests / s,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
LUA
declare -A SERVE
# serve_load TAG WORKERS SECONDS CONNECTIONS: start `nubis serve`, drive it
# with wrk (one client thread: the client shares the cores with the server),
# stop it; sets SERVE[rps-TAG], SERVE[p50-TAG], SERVE[p99-TAG] (us) and
# SERVE[non2xx-TAG]
serve_load() {
    local tag=$1 workers=$2 secs=$3 conns=$4 port url ready=0
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((18000 + RANDOM % 2000)))
    url=http://127.0.0.1:$port/
    local cmd=("$NUBIS" serve --listen "tcp:127.0.0.1:$port" --workers "$workers" --queue 1024
        "$EXAMPLES/hello-musl")
    say "\$ ${cmd[*]//$SNAP/BUILD} &"
    "${cmd[@]}" >"$TMP/serve.log" 2>&1 &
    SERVE_PID=$!
    for _ in $(seq 50); do
        if curl -fsS -o /dev/null -X POST --data-binary '' "$url" 2>/dev/null; then
            ready=1
            break
        fi
        kill -0 "$SERVE_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ((!ready)); then
        say "nubis serve did not come up: $(tr '\n' ' ' <"$TMP/serve.log")"
    else
        curl -sS -D - -o /dev/null -X POST --data-binary '' "$url" | grep -i '^x-nubis' | sed 's/^/  /'
        run "$TMP/wrk-$tag" $((secs + 20)) wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s \
            -s "$TMP/post.lua" "$url" || true
        local k v
        for k in rps p50_us p99_us non2xx; do
            v=$(sed -n "s/.*[ ]$k=\([0-9.]*\).*/\1/p" "$TMP/wrk-$tag")
            SERVE[${k%_us}-$tag]=${v:--}
        done
        say "serve --workers $workers, $conns connections: ${SERVE[rps-$tag]} requests/s = fresh VMs/s;" \
            "latency p50 ${SERVE[p50-$tag]} us p99 ${SERVE[p99-$tag]} us; non-2xx ${SERVE[non2xx-$tag]}"
    fi
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=
}
SERVE_RUNS=("w2:2:$WRK_SECONDS:$WRK_CONNECTIONS" "w1:1:5:$WRK_CONNECTIONS" "light:2:3:1")
for r in "${SERVE_RUNS[@]}"; do
    for k in rps p50 p99 non2xx; do SERVE[$k-${r%%:*}]=-; done
done
if command -v wrk >/dev/null && command -v curl >/dev/null; then
    serve_load w2 2 "$WRK_SECONDS" "$WRK_CONNECTIONS"
    say "(diagnostic: the same with one worker)"
    serve_load w1 1 5 "$WRK_CONNECTIONS"
    say "(light load: one connection, one request at a time: the HTTP round trip)"
    serve_load light 2 3 1
else
    say "wrk or curl not installed (scripts/deps.sh bench): skipped"
fi

section "request -> first guest instruction (fnvm_bench --first-insn: the guest's first instruction is rdtsc)"
run "$TMP/first-insn" 60 "$FNVM_BENCH" --first-insn "$N_API" "$FIRST_INSN" || true
read -r i50 i99 < <(pick "$TMP/first-insn" "nubis request -> first instruction")
row "first-insn" "nubis API: request -> first guest instruction (guest rdtsc)" "$i50" "$i99" "-"

section "in-process fresh VMs per second (fnvm_bench --rate)"
run "$TMP/rate2" $((RATE_SECONDS + 30)) "$FNVM_BENCH" --rate "$RATE_SECONDS" 2 "$EXAMPLES/hello-musl" || true
run "$TMP/rate1" $((RATE_SECONDS + 30)) "$FNVM_BENCH" --rate "$RATE_SECONDS" 1 "$EXAMPLES/hello-musl" || true
RATE2=$(sed -n 's/.*threads): \([0-9]*\).*/\1/p' "$TMP/rate2")
RATE1=$(sed -n 's/.*threads): \([0-9]*\).*/\1/p' "$TMP/rate1")

section "host memory per prepared idle VM (fnvm_bench --idle; it holds the VMs ~10 s)"
# While fnvm_bench holds the idle VMs, sample where the memory is: kernel
# slab caches, vmalloc areas by caller, /proc/meminfo, and the process.
snap_kernel() {
    local tag=$1
    grep -E '^(MemAvailable|AnonPages|Slab|SUnreclaim|KernelStack|PageTables|SecPageTables|VmallocUsed):' \
        /proc/meminfo >"$TMP/meminfo-$tag" 2>/dev/null || true
    if [[ -r /proc/slabinfo ]]; then cat /proc/slabinfo >"$TMP/slab-$tag"; fi
    if [[ -r /proc/vmallocinfo ]]; then
        awk '$3 ~ /\+0x/ { sub(/\+.*/, "", $3); s[$3] += $2 } END { for (k in s) print k, s[k] }' \
            /proc/vmallocinfo >"$TMP/vmalloc-$tag"
    fi
}
snap_kernel before
say "\$ BUILD/bench/fnvm_bench --idle $IDLE_VMS BUILD/guest/examples/hello-musl"
"$FNVM_BENCH" --idle "$IDLE_VMS" "$EXAMPLES/hello-musl" >"$TMP/idle" 2>&1 &
IDLE_PID=$!
sleep 6
snap_kernel during
grep -E '^(Threads|RssAnon|RssFile|RssShmem|VmPTE):' "/proc/$IDLE_PID/status" >"$TMP/idle-status" 2>/dev/null || true
for _ in $(seq 600); do # at most 60 s more
    kill -0 "$IDLE_PID" 2>/dev/null || break
    sleep 0.1
done
kill "$IDLE_PID" 2>/dev/null || true
wait "$IDLE_PID" || say "  (fnvm_bench --idle failed or timed out: exit $?)"
IDLE_PID=
sed 's/^/  /' "$TMP/idle"
IDLE_KIB=$(sed -n 's/.*host memory each: \([-0-9.]*\) KiB.*/\1/p' "$TMP/idle")
say "breakdown per VM, KiB (system-wide deltas: other activity on the host adds noise):"
if [[ -s "$TMP/meminfo-during" ]]; then
    paste "$TMP/meminfo-before" "$TMP/meminfo-during" |
        awk -v n="$IDLE_VMS" '{ printf "  meminfo %-16s %8.1f\n", $1, ($5 - $2) / n }'
fi
if [[ -s "$TMP/idle-status" ]]; then
    awk -v n="$IDLE_VMS" '$1 == "Threads:" { printf "  process threads       %8d (for %d VMs)\n", $2, n; next }
        { printf "  process %-14s %8.1f\n", $1, $2 / n }' "$TMP/idle-status"
fi
if [[ -s "$TMP/slab-during" ]]; then
    awk -v n="$IDLE_VMS" 'NR == FNR { a[$1] = $3 * $4; next }
        FNR > 2 { d = ($3 * $4 - a[$1]) / n / 1024; if (d >= 1) printf "  slab    %-22s %8.1f\n", $1, d }' \
        "$TMP/slab-before" "$TMP/slab-during" | sort -k3 -n -r | head -8
fi
if [[ -s "$TMP/vmalloc-during" ]]; then
    awk -v n="$IDLE_VMS" 'NR == FNR { a[$1] = $2; next }
        { d = ($2 - a[$1]) / n / 1024; if (d >= 1) printf "  vmalloc %-30s %8.1f\n", $1, d }' \
        "$TMP/vmalloc-before" "$TMP/vmalloc-during" | sort -k3 -n -r | head -8
fi

# The pages a VM touches: what it wrote (process RssAnon) and the page tables
# mapping them (host PageTables, shadow SecPageTables). Beyond them: KVM's
# per-VM kernel state (Slab + VmallocUsed + KernelStack).
IDLE_TOUCHED=- IDLE_BEYOND=-
if [[ -s "$TMP/meminfo-during" && -s "$TMP/idle-status" ]]; then
    read -r IDLE_TOUCHED IDLE_BEYOND < <(
        paste "$TMP/meminfo-before" "$TMP/meminfo-during" | cat - "$TMP/idle-status" |
            awk -v n="$IDLE_VMS" 'NF == 6 { d[$1] = ($5 - $2) / n; next } $1 == "RssAnon:" { a = $2 / n }
                END {
                    printf "%.1f %.1f\n", a + d["PageTables:"] + d["SecPageTables:"],
                        d["Slab:"] + d["VmallocUsed:"] + d["KernelStack:"]
                }')
    say "per VM: pages it touches (RssAnon + PageTables + SecPageTables) $IDLE_TOUCHED KiB;" \
        "beyond them (Slab + VmallocUsed + KernelStack) $IDLE_BEYOND KiB"
fi

section "summary (latency in us; ratio = p50 / fork+exec+wait p50 of the same binary)"
say "| program | what | p50 | p99 | ratio |"
say "|---|---|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
say ""
say "| program | nubis API / fork+exec | nubis API / crun | \`nubis run\` / fork+exec | \`nubis run\` / crun |"
say "|---|---:|---:|---:|---:|"
for prog in "${PROGRAMS[@]}"; do
    fe=${FE_P50[$prog]:--} api=${P50[api-$prog]:--} cli=${P50[cli-$prog]:--} ct=${P50[crun-$prog]:--}
    say "| $prog | $(ratio "$api" "$fe") | $(ratio "$api" "$ct") | $(ratio "$cli" "$fe") | $(ratio "$cli" "$ct") |"
done
say ""
say "| throughput / memory | value |"
say "|---|---:|"
for r in "${SERVE_RUNS[@]}"; do
    IFS=: read -r tag w secs conns <<<"$r"
    say "| \`nubis serve --workers $w\` (hello-musl), wrk -t1 -c$conns ${secs}s: requests/s = fresh VMs/s | ${SERVE[rps-$tag]} |"
    say "| \`nubis serve --workers $w\`, -c$conns: latency p50 / p99 (us); non-2xx responses | ${SERVE[p50-$tag]} / ${SERVE[p99-$tag]}; ${SERVE[non2xx-$tag]} |"
done
say "| in process, 2 threads (fnvm_bench --rate $RATE_SECONDS 2): fresh VMs/s | ${RATE2:--} |"
say "| in process, 1 thread (fnvm_bench --rate $RATE_SECONDS 1): fresh VMs/s | ${RATE1:--} |"
say "| host memory per prepared idle VM ($IDLE_VMS VMs, MemAvailable delta) | ${IDLE_KIB:--} KiB |"
say "| ... of which pages it touches / beyond them (breakdown) | $IDLE_TOUCHED / $IDLE_BEYOND KiB |"

section "targets"
# target NAME VALUE OP LIMIT UNIT
target() {
    local verdict
    verdict=$(awk -v v="$2" -v op="$3" -v l="$4" 'BEGIN {
        if (v == "-" || v == "") { print "unknown"; exit }
        if (v + 0 < 0) { print "unknown (negative: noise from other work)"; exit }
        ok = (op == "<=") ? (v + 0 <= l + 0) : (v + 0 >= l + 0)
        print ok ? "met" : "NOT met" }')
    printf '%-62s %10s %s (target %s %s): %s\n' "$1" "$2" "$5" "$3" "$4" "$verdict"
}
read -r w50 _ < <(pick "$TMP/api-hello-musl" "nubis request (prepared VM)")
read -r f50 _ < <(pick "$TMP/api-hello-musl" "nubis request -> first exit")
read -r r50 _ < <(pick "$TMP/cli-hello-musl" "fork+exec+wait")
target "hello-musl whole request (API) p50 / fork+exec+wait p50" "$(ratio "$w50" "${FE_P50[hello-musl]}")" "<=" 0.5 "x"
target "hello-musl \`nubis run\` (CLI) p50 / fork+exec+wait p50" "$(ratio "$r50" "${FE_P50[hello-musl]}")" "<=" 0.5 "x"
target "hello-musl request -> first exit p50 (upper bound)" "$f50" "<=" 100 "us"
target "request -> first guest instruction p50 (guest rdtsc)" "$i50" "<=" 100 "us"
target "fresh VMs/s, \`nubis serve --workers 2\` on $(nproc) cores" "${SERVE[rps-w2]}" ">=" 2000 "/s"
target "fresh VMs/s, in process, 2 threads" "${RATE2:--}" ">=" 2000 "/s"
target "host memory per prepared idle VM beyond the pages it touches" "$IDLE_BEYOND" "<=" 64 "KiB"

say ""
say "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the host adds noise, mostly to p99)"
say "total time: $((SECONDS - START)) s"

# --- workloads (issue 3): service VMs with Redis and SQLite -------------------
if [[ -x "$BUILD/guest/redis/redis-server" && -x "$BUILD/guest/sqlite/sqlite3" ]]; then
    section "service VMs with real workloads (bench/svc-bench.sh)"
    "$(dirname "${BASH_SOURCE[0]}")/svc-bench.sh" "$BUILD" || say "(svc-bench.sh failed: exit $?)"
else
    section "service-VM workloads not built (make workloads): bench/svc-bench.sh skipped"
fi
# --- end workloads -------------------------------------------------------------

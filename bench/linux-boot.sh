#!/usr/bin/env bash
# Boot the stock Debian cloud kernel (guest/linux/build.sh assets) to our init,
# run one command and power off — one boot per step, each step adding one
# boot-time cut on top of the previous ones (docs/PERFORMANCE.md, "Debian
# kernel boot on kvm_pvm"). Then QEMU on the same kernel and initramfs, for
# reference. One boot at a time (they take minutes on kvm_pvm).
#
# usage: bench/linux-boot.sh BUILD_DIR [STEP...]    (default: every step)
#   NUBIS_LINUX_ASSETS=DIR   assets (default ~/.cache/nubis/linux)
#   NO_QEMU=1                skip the QEMU reference run
#   TIMEOUT=SECONDS          per boot (default 1500; "baseline" does not finish in it)
set -euo pipefail
build=${1:-build}
shift || true
vmm=$build/nubis-vmm
assets=${NUBIS_LINUX_ASSETS:-${XDG_CACHE_HOME:-$HOME/.cache}/nubis/linux}
[[ -x $vmm ]] || { echo "linux-boot: $vmm missing: build first" >&2; exit 1; }
if [[ ! -s $assets/vmlinuz || ! -s $assets/initramfs.cpio ]]; then
    "$(dirname "$0")/../guest/linux/build.sh" "$assets"
fi
kernel=$assets/vmlinuz initrd=$assets/initramfs.cpio
run="nubis.run=/bin/cat,/proc/cpuinfo"

# step name | memory | extra guest command line (cumulative steps spelled out)
bl="initcall_blacklist=ftrace_check_for_weak_functions"
bl3="$bl,trace_eval_init,tracer_init_tracefs"
steps=(
    "baseline|256M|console=ttyS0"
    "no-ftrace-check|256M|console=ttyS0 $bl"
    "no-tracefs|256M|console=ttyS0 $bl3"
    "quiet|256M|console=ttyS0 $bl3 quiet 8250.nr_uarts=1"
    "128M|128M|console=ttyS0 $bl3 quiet 8250.nr_uarts=1"
    "no-modules|128M|console=ttyS0 $bl3 quiet 8250.nr_uarts=1 nubis.modules=0"
)
want=("$@")

echo "machine: $(nproc) CPUs, $(uname -r), $("$build/nubis" info 2>/dev/null | grep flavour || echo '?')"
echo "kernel: $(cat "$assets/version" 2>/dev/null), initramfs $(wc -c <"$initrd") bytes (uncompressed cpio)"
printf '%-10s %-6s %10s %12s %8s  %s\n' step memory "wall (s)" "init at (s)" status cmdline
for s in "${steps[@]}"; do
    IFS='|' read -r name mem cmd <<<"$s"
    if ((${#want[@]})) && [[ ! " ${want[*]} " == *" $name "* ]]; then
        continue
    fi
    out=$(mktemp)
    t0=$(date +%s.%N)
    set +e
    "$vmm" --kernel "$kernel" --initrd "$initrd" --cpus 2 --memory "$mem" --timeout "${TIMEOUT:-1500}s" \
        --cmdline "$cmd $run" --console "file:$out" </dev/null 2>"$out.err"
    st=$?
    set -e
    t1=$(date +%s.%N)
    init=$(sed -n 's/^NUBIS-INIT uptime=\([0-9.]*\).*/\1/p' "$out" | head -n1)
    ex=$(sed -n 's/^NUBIS-EXIT status=\([0-9]*\).*/\1/p' "$out" | head -n1)
    printf '%-10s %-6s %10.1f %12s %8s  %s\n' "$name" "$mem" "$(echo "$t1 - $t0" | bc)" \
        "${init:--}" "vmm=$st,init=${ex:--}" "$cmd"
    rm -f "$out" "$out.err"
done

if [[ -z ${NO_QEMU:-} ]] && command -v qemu-system-x86_64 >/dev/null; then
    out=$(mktemp)
    t0=$(date +%s.%N)
    set +e
    timeout 150 qemu-system-x86_64 -M microvm,accel=kvm -smp 2 -m 256M \
        -kernel "$kernel" -initrd "$initrd" -no-reboot -nographic -nodefaults \
        -serial "file:$out" -monitor none -display none \
        -append "console=ttyS0 earlyprintk=ttyS0 $run" 2>"$out.err"
    st=$?
    set -e
    t1=$(date +%s.%N)
    echo "qemu microvm,accel=kvm: status $st after $(echo "$t1 - $t0" | bc) s;" \
        "last console line: $(grep -v '^$' "$out" | tail -n1)"
    echo "qemu stderr: $(head -c 300 "$out.err" | tr '\n' ' ')"
    rm -f "$out" "$out.err"
fi

#!/usr/bin/env bash
# Boot our tiny test guest (guest/tiny) to poweroff, side by side:
# nubis-vmm, QEMU microvm and QEMU q35 with qboot, all with KVM, same image.
# usage: bench/vmm-boot.sh BUILD_DIR   (needs hyperfine and qemu-system-x86:
#        scripts/deps.sh bench)
set -euo pipefail
build=${1:-build}
tiny=$build/guest/tiny/tiny.bzImage
vmm=$build/nubis-vmm
for f in "$tiny" "$vmm"; do
    [[ -e $f ]] || { echo "vmm-boot: $f missing: build first" >&2; exit 1; }
done
command -v hyperfine >/dev/null || { echo "vmm-boot: hyperfine missing (scripts/deps.sh bench)" >&2; exit 1; }
cmds=("$vmm --kernel $tiny --memory 128M --console none")
if command -v qemu-system-x86_64 >/dev/null; then
    q="qemu-system-x86_64 -m 128M -kernel $tiny -nographic -no-reboot -serial null -monitor none -display none -nodefaults"
    cmds+=("$q -M microvm,accel=kvm")
    if [[ -e /usr/share/qemu/qboot.rom ]]; then
        cmds+=("$q -M q35,accel=kvm -bios /usr/share/qemu/qboot.rom")
    fi
else
    echo "vmm-boot: qemu-system-x86_64 not installed: nubis-vmm only"
fi
echo "machine: $(nproc) CPUs, $(uname -r), $("$build/nubis" info | grep flavour)"
stripped=$(mktemp)
strip -o "$stripped" "$vmm"
echo "nubis-vmm stripped size: $(wc -c <"$stripped") bytes"
rm -f "$stripped"
hyperfine -N --warmup 3 --runs 20 "${cmds[@]}" 2>&1 | grep -v "^ *$"

#!/usr/bin/env bash
# Boot our tiny test guest (guest/tiny) side by side in one run: nubis-vmm (bzImage
# and PVH entry), QEMU microvm and QEMU q35 with qboot, all with KVM, the same image.
#
# usage: bench/vmm-boot.sh BUILD_DIR   (QEMU: scripts/deps.sh bench; N=runs, default 20)
#
# Prints, per monitor:
#   - time to the FIRST SERIAL LINE and to exit (poweroff), median of N runs after 3
#     warm-ups (bench/firstline: fork+exec to the first '\n' on the console / to wait4);
#   - memory while the guest idles (tiny.halt): VmHWM (peak RSS), the guest's pages (Rss
#     of the guest RAM mapping, from smaps), and the monitor's own part: peak RSS minus
#     the guest's pages, and the private (anonymous) part of it;
# and the size of the stripped nubis-vmm binary.
set -euo pipefail
build=${1:-build}
n=${N:-20}
tiny=$build/guest/tiny/tiny.bzImage
tiny_pvh=$build/guest/tiny/tiny-pvh.elf
vmm=$build/nubis-vmm
firstline=$build/bench/firstline
for f in "$tiny" "$tiny_pvh" "$vmm" "$firstline"; do
	[[ -e $f ]] || {
		echo "vmm-boot: $f missing: build first" >&2
		exit 1
	}
done
mem=128M
mem_bytes=$((128 << 20))

labels=(nubis-vmm nubis-vmm-pvh)
cmds=("$vmm --kernel $tiny --memory $mem --console stdio"
	"$vmm --kernel $tiny_pvh --memory $mem --console stdio")
if command -v qemu-system-x86_64 >/dev/null; then
	q="qemu-system-x86_64 -m $mem -kernel $tiny -no-reboot -nodefaults -display none -monitor none -serial stdio"
	labels+=(qemu-microvm)
	cmds+=("$q -M microvm,accel=kvm")
	if [[ -e /usr/share/qemu/qboot.rom ]]; then
		labels+=(qemu-q35-qboot)
		cmds+=("$q -M q35,accel=kvm -bios /usr/share/qemu/qboot.rom")
	fi
else
	echo "vmm-boot: qemu-system-x86_64 not installed: nubis-vmm only"
fi

echo "machine: $(nproc) CPUs, $(uname -r), $("$build/nubis" info 2>/dev/null | grep flavour || echo "flavour ?")"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
stripped=$(mktemp)
strip -o "$stripped" "$vmm"
echo "nubis-vmm stripped size: $(wc -c <"$stripped") bytes ($(($(wc -c <"$stripped") / 1024)) KiB; target <= 300 KiB)"
rm -f "$stripped"

echo
echo "## boot to the first serial line and to exit, $mem, median of $n runs"
for i in "${!cmds[@]}"; do
	# shellcheck disable=SC2086 # the command strings are split into words on purpose
	"$firstline" -n "$n" -w 3 -l "${labels[$i]}" ${cmds[$i]} 2>&1 | grep -v "^qemu-system-x86_64: warning"
done

# Memory of a monitor whose guest idles: run CMD with tiny.halt, wait for its last line,
# read /proc/PID/status and smaps, kill it.
memory() { # LABEL CMD...
	local label=$1 out pid
	shift
	out=$(mktemp)
	"$@" >"$out" 2>/dev/null &
	pid=$!
	for _ in $(seq 200); do
		grep -q "^cpuid: " "$out" && break
		sleep 0.02
	done
	sleep 0.2
	local hwm anon file guest=0 in_guest=0 range lo hi key val
	hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
	anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status")
	file=$(awk '/^RssFile:/ {print $2}' "/proc/$pid/status")
	while read -r key val _; do
		if [[ $key =~ ^([0-9a-f]+)-([0-9a-f]+)$ ]]; then
			lo=$((16#${BASH_REMATCH[1]})) hi=$((16#${BASH_REMATCH[2]}))
			range=$((hi - lo))
			in_guest=$((range >= mem_bytes && range <= mem_bytes + (4 << 20)))
		elif [[ $key == Rss: && $in_guest == 1 ]]; then
			guest=$((guest + val))
		fi
	done <"/proc/$pid/smaps"
	printf "%-15s VmHWM %6d KiB  guest pages %6d KiB  peak - guest %6d KiB  (private: RssAnon - guest %6d KiB; RssFile %6d KiB)\n" \
		"$label" "$hwm" "$guest" $((hwm - guest)) $((anon - guest)) "$file"
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$out"
}
echo
echo "## memory while the guest idles (tiny.halt), $mem"
memory nubis-vmm "$vmm" --kernel "$tiny" --memory "$mem" --cmdline tiny.halt --timeout 20s
if command -v qemu-system-x86_64 >/dev/null; then
	# shellcheck disable=SC2086
	memory qemu-microvm $q -M microvm,accel=kvm -append tiny.halt
fi

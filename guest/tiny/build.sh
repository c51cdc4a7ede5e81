#!/bin/sh
# Build tiny.bzImage: the tiny guest (setup.S, head.S, tiny.c) linked by tiny.ld
# into one ELF, whose flat binary is the bzImage.
#
# usage: build.sh CC OBJCOPY OBJDUMP OUT WORKDIR SRCDIR [PVH_OUT]
#
# With PVH_OUT, also write the same guest as an ELF vmlinux with a PVH entry note
# (pvh.S, tiny-pvh.ld) there.
#
# Checks, each failing the build:
#   - position independence: the image linked at two different addresses
#     is byte-for-byte the same;
#   - the C code uses no instruction the host's emulator may refuse (SSE/AVX,
#     cmpxchg16b, xsave/xrstor, int3, ...).
set -eu

if [ "$#" -ne 6 ] && [ "$#" -ne 7 ]; then
	echo "usage: $0 CC OBJCOPY OBJDUMP OUT WORKDIR SRCDIR [PVH_OUT]" >&2
	exit 2
fi
cc=$1 objcopy=$2 objdump=$3 out=$4 work=$5 src=$6 pvh_out=${7:-}
mkdir -p "$work"

cflags="-std=c17 -O2 -Wall -Wextra -Werror -ffreestanding -fpie -fvisibility=hidden \
-mno-red-zone -mgeneral-regs-only -march=x86-64 -mtune=generic -nostdlib \
-fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables \
-fno-unwind-tables -fno-jump-tables -fno-tree-loop-distribute-patterns \
-falign-functions=1 -falign-jumps=1 -falign-loops=1 -falign-labels=1"
# shellcheck disable=SC2086 # word splitting of the flag lists is intended
{
	"$cc" $cflags -c -o "$work/tiny.o" "$src/tiny.c"
	"$cc" -c -o "$work/setup.o" "$src/setup.S"
	"$cc" -c -o "$work/head.o" "$src/head.S"
}

link() { # BASE OUT.elf
	"$cc" -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,noexecstack \
		-Wl,--no-warn-rwx-segments -Wl,-T,"$src/tiny.ld" \
		-Wl,--defsym=tiny_link_base="$1" -o "$2" \
		"$work/setup.o" "$work/head.o" "$work/tiny.o"
}
link 0x1000000 "$work/tiny.elf"
link 0x7fe00000 "$work/tiny-moved.elf"
"$objcopy" -O binary "$work/tiny.elf" "$work/tiny.bin"
"$objcopy" -O binary "$work/tiny-moved.elf" "$work/tiny-moved.bin"
if ! cmp -s "$work/tiny.bin" "$work/tiny-moved.bin"; then
	echo "$0: the image depends on its link address: not position independent" >&2
	exit 1
fi

bad=$("$objdump" -d --no-show-raw-insn "$work/tiny.o" |
	grep -E -i -e '%[xyz]mm' -e '[[:space:]](cmpxchg16b|xsave[a-z]*|xrstor[a-z]*|fxsave|fxrstor|int3|rdrand|rdseed|popcnt|lzcnt|tzcnt|movbe|clac|stac|fwait|ldmxcsr|stmxcsr|vzeroupper)([[:space:]]|$)' ||
	true)
if [ -n "$bad" ]; then
	echo "$0: instructions the emulator may refuse:" >&2
	echo "$bad" >&2
	exit 1
fi

cp "$work/tiny.bin" "$out.tmp"
mv "$out.tmp" "$out"

if [ -n "$pvh_out" ]; then
	"$cc" -c -o "$work/pvh.o" "$src/pvh.S"
	"$cc" -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,noexecstack \
		-Wl,--no-warn-rwx-segments -Wl,-T,"$src/tiny-pvh.ld" -o "$work/tiny-pvh.elf" \
		"$work/head.o" "$work/pvh.o" "$work/tiny.o"
	cp "$work/tiny-pvh.elf" "$pvh_out.tmp"
	mv "$pvh_out.tmp" "$pvh_out"
fi

#!/bin/sh
# Embed the built vDSO image: gen-vdso-c.sh IN.so OUT.c
set -eu
in=$1
out=$2
size=$(wc -c < "$in")
{
	echo "/* generated from $(basename "$in") by gen-vdso-c.sh */"
	echo "#include <stddef.h>"
	echo "const unsigned char svc_vdso_image[] __attribute__((aligned(4096))) = {"
	od -An -v -tx1 "$in" | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'
	echo "};"
	echo "const size_t svc_vdso_size = $size;"
} > "$out"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Guest assets for booting the stock Debian cloud kernel (docs/LINUX-VMS.md).
#
# usage: build.sh [CACHE_DIR]      (default: ${XDG_CACHE_HOME:-~/.cache}/nubis/linux)
#
# Writes into CACHE_DIR:
#   vmlinuz          the Debian cloud kernel (the package linux-image-cloud-amd64
#                    depends on), from `apt-get download` + `dpkg -x`: never installed
#   initramfs.cpio   uncompressed newc cpio: our init (guest/linux/init.c, static musl),
#                    busybox-static, the kernel's virtio and vsock modules
#   version          the kernel package version
# Idempotent: does nothing when the outputs are newer than their inputs.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/nubis/linux}
mkdir -p "$cache"
cd "$cache"

modules="virtio_pci virtio_blk virtio_net virtio_console virtio_rng vmw_vsock_virtio_transport"
# busybox applets linked in /bin (busybox has ~400; each link is a file the kernel unpacks
# at emulation speed on kvm_pvm). Any other applet: /bin/busybox NAME ...
applets="sh ash cat echo printf ls mount umount dmesg uname ps kill sleep true false test [ \
mkdir rmdir rm cp mv ln head tail grep sed awk wc env poweroff reboot ip ifconfig hostname \
date sync stat insmod rmmod modprobe lsmod free df du chmod chown find xargs vi sort uniq \
cut tr od hexdump md5sum sha256sum tee touch which id seq basename dirname readlink nproc"

# 1. the packages (downloaded once; the kernel package name is resolved through the
#    metapackage so a point release of Debian picks up its current kernel)
if [ ! -s kernel.deb ] || [ ! -s busybox.deb ]; then
	kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)
	if [ -z "$kpkg" ]; then
		echo "$0: cannot resolve linux-image-cloud-amd64 (apt-get update?)" >&2
		exit 1
	fi
	rm -rf dl && mkdir dl
	(cd dl && apt-get download "$kpkg" busybox-static >/dev/null 2>&1) || {
		echo "$0: apt-get download $kpkg busybox-static failed" >&2
		exit 1
	}
	mv dl/linux-image-*.deb kernel.deb
	mv dl/busybox-static_*.deb busybox.deb
	rmdir dl
	rm -rf kernel busybox
fi
if [ ! -d kernel ]; then
	rm -rf kernel.tmp && dpkg -x kernel.deb kernel.tmp && mv kernel.tmp kernel
fi
if [ ! -d busybox ]; then
	rm -rf busybox.tmp && dpkg -x busybox.deb busybox.tmp && mv busybox.tmp busybox
fi
kver=$(ls kernel/lib/modules)
if [ ! -s vmlinuz ] || [ kernel.deb -nt vmlinuz ]; then
	cp "kernel/boot/vmlinuz-$kver" vmlinuz.tmp && mv vmlinuz.tmp vmlinuz
	dpkg-deb -f kernel.deb Package Version | tr '\n' ' ' >version
fi

# 2. our init, static with musl
if [ ! -x init ] || [ "$here/init.c" -nt init ]; then
	musl-gcc -static -O2 -Wall -Wextra -Werror -o init.tmp "$here/init.c"
	strip init.tmp
	mv init.tmp init
fi

# 3. the initramfs
if [ ! -s initramfs.cpio ] || [ init -nt initramfs.cpio ] ||
	[ "$here/mkinitramfs.py" -nt initramfs.cpio ] || [ "$here/build.sh" -nt initramfs.cpio ] ||
	[ kernel.deb -nt initramfs.cpio ]; then
	# shellcheck disable=SC2086 # one word per module
	python3 "$here/mkinitramfs.py" --applets "$(echo "$applets" | tr -s ' \n' ',' | sed 's/,$//')" --strip-module-signatures \
		initramfs.cpio init busybox/bin/busybox \
		"kernel/lib/modules/$kver" $modules
fi
echo "linux assets: $cache ($(cat version))"

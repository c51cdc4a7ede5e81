#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the nubis initramfs: an uncompressed newc cpio archive.

usage: mkinitramfs.py [--applets a,b,...] [--strip-module-signatures]
                      OUT INIT BUSYBOX MODDIR MODULE...

OUT      the archive to write
INIT     our init (static), stored as /init
BUSYBOX  busybox (static), stored as /bin/busybox with symlinks for the applets
         it lists (busybox --list), or only those of --applets that it has (each file
         costs the kernel time to unpack: at emulation speed on kvm_pvm, a lot)
MODDIR   the kernel's lib/modules/<version> from the unpacked package
MODULE   module names (e.g. virtio_blk); their dependencies (from each .ko's
         .modinfo "depends=") are added first. They are stored under /lib/modules
         and listed, dependencies first, in /etc/nubis/modules for init.
"""
import lzma
import os
import subprocess
import sys


class Cpio:
    def __init__(self, f):
        self.f, self.ino = f, 1

    def add(self, name, mode, data=b"", nlink=1, rdev=(0, 0)):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0))
        self.ino += 1
        self.f.write(hdr.encode() + name_b)
        self.f.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
        self.f.write(data)
        self.f.write(b"\0" * ((4 - len(data) % 4) % 4))

    def dir(self, name):
        self.add(name, 0o040755, nlink=2)

    def file(self, name, data, mode=0o644):
        self.add(name, 0o100000 | mode, data)

    def symlink(self, name, target):
        self.add(name, 0o120777, target.encode())

    def end(self):
        self.add("TRAILER!!!", 0, nlink=1)


def ko_bytes(path):
    data = open(path, "rb").read()
    if path.endswith(".xz"):
        data = lzma.decompress(data)
    return data


SIG_MAGIC = b"~Module signature appended~\n"


def strip_signature(data):
    """Drop the appended module signature. The kernel then loads the module without
    verifying it (module.sig_enforce is off in Debian's kernel; it taints the kernel
    "module verification failed") — verifying is a SHA-256 of the whole module plus an
    RSA operation, seconds per module at emulation speed on kvm_pvm."""
    if not data.endswith(SIG_MAGIC) or len(data) < len(SIG_MAGIC) + 12:
        return data
    info = data[-len(SIG_MAGIC) - 12:-len(SIG_MAGIC)]
    signer_len, key_id_len = info[3], info[4]
    sig_len = int.from_bytes(info[8:12], "big")
    total = len(SIG_MAGIC) + 12 + signer_len + key_id_len + sig_len
    if total > len(data):
        sys.exit("module signature longer than the module")
    return data[:-total]


def modinfo_depends(data):
    i = data.find(b"depends=")
    while i > 0 and data[i - 1] != 0:
        i = data.find(b"depends=", i + 1)
    if i < 0:
        return []
    v = data[i + 8:data.index(b"\0", i)].decode()
    return [d for d in v.split(",") if d]


def main():
    args = sys.argv[1:]
    only, strip_sigs = None, False
    while args and args[0].startswith("--"):
        if args[0] == "--applets" and len(args) >= 2:
            only = set(a for a in args[1].split(",") if a)
            args = args[2:]
        elif args[0] == "--strip-module-signatures":
            strip_sigs = True
            args = args[1:]
        else:
            sys.exit(__doc__)
    if len(args) < 4:
        sys.exit(__doc__)
    out, init, busybox, moddir, wanted = args[0], args[1], args[2], args[3], args[4:]
    index = {}
    for root, _, files in os.walk(os.path.join(moddir, "kernel")):
        for fn in files:
            if fn.endswith(".ko") or fn.endswith(".ko.xz"):
                name = fn.split(".ko")[0]
                index[name.replace("-", "_")] = os.path.join(root, fn)
    order, seen = [], set()

    def visit(name, chain):  # noqa: C901 (dependencies first)
        key = name.replace("-", "_")
        if key in seen:
            return
        if key in chain:
            sys.exit("module dependency cycle: %s" % " -> ".join(chain + [key]))
        if key not in index:
            sys.exit("module %s: not in %s" % (name, moddir))
        data = ko_bytes(index[key])
        if strip_sigs:
            data = strip_signature(data)
        for dep in modinfo_depends(data):
            visit(dep, chain + [key])
        seen.add(key)
        order.append((key, data))

    for name in wanted:
        visit(name, [])
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    if only is not None:
        applets = [a for a in applets if a in only]
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        c = Cpio(f)
        for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "etc", "etc/nubis", "lib",
                  "lib/modules", "root"):
            c.dir(d)
        c.add("dev/console", 0o020600, rdev=(5, 1))  # for the kernel's console open
        c.file("init", open(init, "rb").read(), 0o755)
        c.file("bin/busybox", open(busybox, "rb").read(), 0o755)
        for a in applets:
            if a != "busybox":
                c.symlink("bin/" + a, "busybox")
        paths = []
        for key, data in order:
            p = "lib/modules/%s.ko" % key
            c.file(p, data)
            paths.append("/" + p)
        c.file("etc/nubis/modules", ("\n".join(paths) + "\n").encode())
        c.end()
    os.replace(tmp, out)
    print("initramfs: %s (%d bytes, modules: %s)" % (out, os.path.getsize(out),
                                                     " ".join(k for k, _ in order)))


if __name__ == "__main__":
    main()

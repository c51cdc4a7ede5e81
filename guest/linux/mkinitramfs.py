#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the nubis initramfs: an uncompressed newc cpio archive.

usage: mkinitramfs.py OUT INIT BUSYBOX MODDIR MODULE...

OUT      the archive to write
INIT     our init (static), stored as /init
BUSYBOX  busybox (static), stored as /bin/busybox with /bin/sh and the applets
         it lists (busybox --list) as symlinks
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


def modinfo_depends(data):
    i = data.find(b"depends=")
    while i > 0 and data[i - 1] != 0:
        i = data.find(b"depends=", i + 1)
    if i < 0:
        return []
    v = data[i + 8:data.index(b"\0", i)].decode()
    return [d for d in v.split(",") if d]


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    out, init, busybox, moddir, wanted = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
    index = {}
    for root, _, files in os.walk(os.path.join(moddir, "kernel")):
        for fn in files:
            if fn.endswith(".ko") or fn.endswith(".ko.xz"):
                name = fn.split(".ko")[0]
                index[name.replace("-", "_")] = os.path.join(root, fn)
    order, seen = [], set()

    def visit(name, chain):
        key = name.replace("-", "_")
        if key in seen:
            return
        if key in chain:
            sys.exit("module dependency cycle: %s" % " -> ".join(chain + [key]))
        if key not in index:
            sys.exit("module %s: not in %s" % (name, moddir))
        data = ko_bytes(index[key])
        for dep in modinfo_depends(data):
            visit(dep, chain + [key])
        seen.add(key)
        order.append((key, data))

    for name in wanted:
        visit(name, [])
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
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

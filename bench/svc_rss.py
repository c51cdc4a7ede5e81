#!/usr/bin/env python3
"""Host memory of a service-VM monitor beyond its guest's memory.

    svc_rss.py PID GUEST_BYTES

Reads /proc/PID/smaps (all threads share it) and finds the guest memory: a
run of adjacent mappings spanning exactly GUEST_BYTES (the guest's anonymous
memory, with the program's image mapped into it from a memfd), or failing
that the anonymous mappings of at least GUEST_BYTES, or the largest one.
Prints one line:

    rss: total R KiB, guest mapping G KiB of S KiB (...), monitor beyond guest
    O KiB (private P KiB: anon A KiB; Pss Q KiB), page tables T KiB, threads N

"monitor beyond guest" = the process's resident pages minus the guest's:
the monitor's heap, stacks and buffers (anon: what each more VM costs) and
its binary and shared libraries (file pages, shared with every other process
that maps them: "Pss" charges each its share, "private" those no other
process maps right now).
"""

import re
import sys

FIELDS = ("Size", "Rss", "Pss", "Private_Clean", "Private_Dirty", "Anonymous")


def mappings(pid: int) -> list:
    maps, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$", line)
            if head:
                cur = {"range": head.group(1) + "-" + head.group(2), "perms": head.group(3),
                       "inode": int(head.group(4)), "name": head.group(5).strip()}
                maps.append(cur)
                continue
            m = re.match(r"^(\w+):\s+(\d+) kB", line)
            if m and cur is not None and m.group(1) in FIELDS:
                cur[m.group(1)] = int(m.group(2))
    return maps


def report(pid: int, guest_bytes: int) -> str:
    maps = mappings(pid)
    anon = [m for m in maps if m["inode"] == 0 and not m["name"].startswith("[")]
    guest, how = _guest_run(maps, guest_bytes), f"adjacent, spanning {guest_bytes >> 20} MiB"
    if not guest:
        guest = [m for m in anon if m.get("Size", 0) * 1024 >= guest_bytes]
        how = f"anonymous >= {guest_bytes >> 20} MiB"
    if not guest and anon:
        guest = [max(anon, key=lambda m: m.get("Size", 0))]
        how = "largest anonymous"
    tot = {k: sum(m.get(k, 0) for m in maps) for k in FIELDS}
    g = {k: sum(m.get(k, 0) for m in guest) for k in FIELDS}
    priv = tot["Private_Clean"] + tot["Private_Dirty"] - g["Private_Clean"] - g["Private_Dirty"]
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            k, _, v = ln.partition(":")
            status[k] = v.split()[0] if v.split() else "?"
    return (f"rss: total {tot['Rss']} KiB, guest mapping {g['Rss']} KiB of {g['Size']} KiB"
            f" ({len(guest)} mapping(s), {how}), monitor beyond guest {tot['Rss'] - g['Rss']} KiB"
            f" (private {priv} KiB: anon {tot['Anonymous'] - g['Anonymous']} KiB;"
            f" Pss {tot['Pss'] - g['Pss']} KiB), page tables {status.get('VmPTE', '?')} KiB,"
            f" threads {status.get('Threads', '?')}")


def _guest_run(maps: list, guest_bytes: int) -> list:
    """The adjacent mappings (no file of the host's, no [stack]/[heap]) that
    together span exactly guest_bytes, or []."""
    def span(m):
        a, b = m["range"].split("-")
        return int(a, 16), int(b, 16)

    def guestlike(m):
        return m["inode"] == 0 or m["name"].startswith("/memfd:")
    # Guest memory starts with the program image (the memfd); try runs that
    # start there first, so that thread stacks and guard pages next to it are
    # never taken for guest memory.
    order = sorted(range(len(maps)),
                   key=lambda k: not maps[k]["name"].startswith("/memfd:nubis-image"))
    for i in order:
        m = maps[i]
        if not guestlike(m):
            continue
        start, end = span(m)
        run = [m]
        j = i + 1
        while end - start < guest_bytes and j < len(maps) and guestlike(maps[j]) \
                and span(maps[j])[0] == end:
            run.append(maps[j])
            end = span(maps[j])[1]
            j += 1
        if end - start == guest_bytes:
            return run
    return []


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: svc_rss.py PID GUEST_BYTES", file=sys.stderr)
        return 64
    try:
        print(report(int(sys.argv[1]), int(sys.argv[2])))
    except (OSError, ValueError) as e:
        print(f"svc_rss: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

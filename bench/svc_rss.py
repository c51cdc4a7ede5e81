#!/usr/bin/env python3
"""Host memory of a service-VM monitor beyond its guest's memory.

    svc_rss.py PID GUEST_BYTES

Reads /proc/PID/smaps (all threads share it) and finds the guest memory: the
anonymous mappings whose size is at least GUEST_BYTES, or failing that the
largest anonymous mapping. Prints one line:

    rss: total R KiB, guest mapping G KiB (touched guest pages), monitor beyond
    guest O KiB (private P KiB: anon A KiB), ...

"monitor beyond guest" = the process's resident pages minus the resident pages
of the guest mapping: the monitor's own heap, stacks, page-table mirrors,
buffers, and its binary and shared libraries (file pages, shared with other
processes: "private" leaves those out).
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
    guest = [m for m in anon if m.get("Size", 0) * 1024 >= guest_bytes]
    how = f">= {guest_bytes >> 20} MiB"
    if not guest and anon:
        guest = [max(anon, key=lambda m: m.get("Size", 0))]
        how = "largest anonymous"
    tot = {k: sum(m.get(k, 0) for m in maps) for k in FIELDS}
    g = {k: sum(m.get(k, 0) for m in guest) for k in FIELDS}
    priv = tot["Private_Clean"] + tot["Private_Dirty"] - g["Private_Clean"] - g["Private_Dirty"]
    with open(f"/proc/{pid}/status") as f:
        threads = next((ln.split()[1] for ln in f if ln.startswith("Threads:")), "?")
    return (f"rss: total {tot['Rss']} KiB, guest mapping {g['Rss']} KiB of {g['Size']} KiB"
            f" ({len(guest)} mapping(s), {how}), monitor beyond guest {tot['Rss'] - g['Rss']} KiB"
            f" (private {priv} KiB: anon {tot['Anonymous'] - g['Anonymous']} KiB),"
            f" threads {threads}")


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

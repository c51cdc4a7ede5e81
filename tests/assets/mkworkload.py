#!/usr/bin/env python3
"""Lay out root filesystems for the real workloads of service VMs.

    mkworkload.py redis  --bin BUILD/guest/redis/redis-server OUTDIR [--port 6379]
                         [--persist always|everysec|none] [--data-dir /data]
    mkworkload.py sqlite --bin BUILD/guest/sqlite/sqlite3 OUTDIR

OUTDIR becomes a root filesystem (created; must not exist or be empty):

    redis:  /usr/bin/redis-server, /etc/redis.conf, /data/, /tmp/
    sqlite: /usr/bin/sqlite3, /data/, /tmp/

Use it directly with `nubis run --rootfs OUTDIR [--upper DIR] ...`, or turn it
into an image with tests/assets/mkimage.py. The Redis configuration keeps the
server in the foreground, listening on all guest addresses, with its data in
/data (append-only file, fsync per write by default) and nothing that forks:
no RDB snapshots, no automatic AOF rewrite.

Importable too: redis_rootfs(), sqlite_rootfs(), redis_conf().
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

PERSIST = ("always", "everysec", "none")


def redis_conf(port: int = 6379, persist: str = "always", data_dir: str = "/data",
               maxclients: int = 900) -> str:
    """redis.conf text. persist: appendfsync policy, or "none" (in memory only)."""
    if persist not in PERSIST:
        raise ValueError(f"persist must be one of {PERSIST}, not {persist!r}")
    if not (0 < port < 65536):
        raise ValueError(f"port out of range: {port}")
    lines = [
        "# Written by tests/assets/mkworkload.py",
        "bind 0.0.0.0",
        f"port {port}",
        "protected-mode no",
        "daemonize no",
        'logfile ""',
        f"dir {data_dir}",
        # Nothing that forks a child: no RDB snapshots, no automatic AOF rewrite.
        'save ""',
        "auto-aof-rewrite-percentage 0",
        # 900 clients + 32 spare fds fit the default fd cap of a service VM
        # (1024), so Redis does not try to raise RLIMIT_NOFILE.
        f"maxclients {maxclients}",
    ]
    if persist == "none":
        lines.append("appendonly no")
    else:
        lines += ["appendonly yes", f"appendfsync {persist}"]
    return "\n".join(lines) + "\n"


def _prepare(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    for d in ("usr/bin", "etc", "data", "tmp"):
        (out / d).mkdir(parents=True, exist_ok=True)
    os.chmod(out / "tmp", 0o1777)


def _install(binary: Path, dst: Path) -> None:
    binary = Path(binary)
    if not binary.is_file():
        raise FileNotFoundError(f"{binary}: not built")
    shutil.copyfile(binary, dst)
    os.chmod(dst, 0o755)


def redis_rootfs(out, binary, port: int = 6379, persist: str = "always",
                 data_dir: str = "/data") -> Path:
    """Root filesystem for redis-server at OUT; returns OUT."""
    out = Path(out)
    _prepare(out)
    _install(binary, out / "usr/bin/redis-server")
    (out / "etc/redis.conf").write_text(redis_conf(port, persist, data_dir))
    return out


def sqlite_rootfs(out, binary) -> Path:
    """Root filesystem for the sqlite3 shell at OUT; returns OUT."""
    out = Path(out)
    _prepare(out)
    _install(binary, out / "usr/bin/sqlite3")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["redis", "sqlite"])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--bin", type=Path, required=True, help="the static binary to install")
    ap.add_argument("--port", type=int, default=6379, help="redis: port in the guest")
    ap.add_argument("--persist", choices=PERSIST, default="always",
                    help="redis: appendfsync policy, or none (no append-only file)")
    ap.add_argument("--data-dir", default="/data", help="redis: `dir` in redis.conf")
    a = ap.parse_args(argv)
    try:
        if a.kind == "redis":
            redis_rootfs(a.outdir, a.bin, a.port, a.persist, a.data_dir)
        else:
            sqlite_rootfs(a.outdir, a.bin)
    except (OSError, ValueError) as e:
        print(f"mkworkload: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

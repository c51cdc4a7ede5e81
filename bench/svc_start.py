#!/usr/bin/env python3
"""Time a service's start: from spawning its command to the first TCP connect
that succeeds, and to the first request it answers (Redis PING -> +PONG).

    svc_start.py --port PORT [--runs N] [--timeout S] [--stop CMD] [--rss GUEST_BYTES]
                 -- CMD [ARGS...]

Each run spawns CMD (stdout and stderr to a log), polls 127.0.0.1:PORT every
0.2 ms until a connect succeeds and then until PING is answered, then stops
the service: with --stop CMD (a shell command, e.g. `crun delete -f ID`) if
given, else SIGKILL to CMD's process; and waits until the port is closed
before the next run. Prints one line per measure:

    connect   p50 12.3 ms  min ... max ...  (N runs: ...)
    reply     p50 ...

A "connect" can succeed before the server listens when something else (a
port forwarder) owns the host port, so "reply" is the figure that counts.
With --rss GUEST_BYTES, after the first reply of the first run, the memory of
CMD's process is reported by svc_rss.py's rules (the monitor of a service VM;
GUEST_BYTES = its guest memory size).
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import svc_rss  # noqa: E402


def try_connect(port: int) -> socket.socket | None:
    s = socket.socket()
    s.settimeout(1.0)
    try:
        s.connect(("127.0.0.1", port))
        return s
    except OSError:
        s.close()
        return None


def try_ping(s: socket.socket) -> bool:
    try:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def port_closed(port: int) -> bool:
    s = try_connect(port)
    if s is None:
        return True
    s.close()
    return False


def one_run(args, log) -> tuple[float, float, int]:
    t0 = time.monotonic()
    p = subprocess.Popen(args.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    t_conn = t_reply = None
    deadline = t0 + args.timeout
    try:
        while time.monotonic() < deadline:
            s = try_connect(args.port)
            if s is not None:
                if t_conn is None:
                    t_conn = time.monotonic()
                ok = try_ping(s)
                s.close()
                if ok:
                    t_reply = time.monotonic()
                    break
            elif p.poll() is not None and args.stop is None:
                raise RuntimeError(f"the service ended with status {p.returncode} before replying")
            time.sleep(0.0002)
        if t_reply is None:
            raise RuntimeError(f"no reply on port {args.port} within {args.timeout} s")
        return (t_conn - t0) * 1e3, (t_reply - t0) * 1e3, p.pid
    finally:
        if args.rss is not None and t_reply is not None and not getattr(args, "rss_done", False):
            args.rss_done = True
            try:
                print(svc_rss.report(p.pid, args.rss), flush=True)
            except OSError as e:
                print(f"rss: cannot read /proc/{p.pid}: {e}", flush=True)
        if args.stop:
            subprocess.run(args.stop, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait()
        end = time.monotonic() + 10
        while not port_closed(args.port) and time.monotonic() < end:
            time.sleep(0.01)


def summary(name: str, xs: list) -> str:
    xs = sorted(xs)
    return (f"{name:8s} p50 {statistics.median(xs):.1f} ms  min {xs[0]:.1f}  max {xs[-1]:.1f}"
            f"  ({len(xs)} runs: {' '.join(f'{x:.1f}' for x in xs)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--stop", help="shell command that stops the service after each run")
    ap.add_argument("--rss", type=int, metavar="GUEST_BYTES",
                    help="report the memory of the spawned process (a monitor) once")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    if args.cmd and args.cmd[0] == "--":
        args.cmd = args.cmd[1:]
    if not args.cmd or args.runs < 1:
        ap.error("a command and --runs >= 1 are needed")
    conn, reply = [], []
    with tempfile.NamedTemporaryFile(prefix="svc-start-", suffix=".log") as log:
        for _ in range(args.runs):
            try:
                c, r, _pid = one_run(args, log)
            except RuntimeError as e:
                log.flush()
                tail = Path(log.name).read_bytes()[-2000:].decode(errors="replace")
                print(f"svc_start: {e}\n--- service output (tail)\n{tail}", file=sys.stderr)
                return 1
            conn.append(c)
            reply.append(r)
    print(summary("connect", conn))
    print(summary("reply", reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())

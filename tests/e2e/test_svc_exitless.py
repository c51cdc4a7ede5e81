"""Service VMs, exitless system calls (docs/SERVICE-VMS.md).

The guest programs tests/guest/svc-test.c and fs-test.c run with
--syscall-mode poll (the fast path: a server thread serves non-blocking
calls from per-vCPU slots) and exit (every call a VM exit). The monitor's
counts (NUBIS_SVC_TRACE=1, the "exitless:" line) show which path served
the calls. A hostile guest scribbles over the slots, the awake flag and the
call bitmap; blocking calls still wait in the vCPU thread, interruptible by
signals and stop.
"""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import BUILD, install_guest_programs, parse_kv

TIMEOUT = 60
LIBCS = ["musl", "glibc"]


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    root = tmp_path_factory.mktemp("exlroot")
    (root / "bin").mkdir()
    (root / "tmp").mkdir()
    install_guest_programs(root / "bin", [f"{prog}-{libc}" for prog in ("svc-test", "fs-test")
                                          for libc in LIBCS])
    return root


@pytest.fixture(params=LIBCS)
def libc(request):
    return request.param


def env(**kw):
    e = dict(os.environ)
    e.pop("NUBIS_SVC_EXITLESS", None)
    e["NUBIS_SVC_TRACE"] = "1"
    e.update(kw)
    return e


def argv(root, mode, prog, *args, extra=()):
    return [str(BUILD / "nubis"), "run", "--rootfs", str(root), "--syscall-mode", mode,
            *map(str, extra),
            prog, *map(str, args)]


def run(root, mode, prog, *args, extra=(), environ=None):
    p = subprocess.run(argv(root, mode, prog, *args, extra=extra), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=TIMEOUT, env=environ or env())
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def counts(err):
    m = re.search(r"exitless: (\d+) served without an exit, (\d+) deferred, (\d+) doorbell exits",
                  err)
    assert m, err
    return tuple(int(x) for x in m.groups())


def start(root, mode, prog, *args, stdin=subprocess.DEVNULL):
    p = subprocess.Popen(argv(root, mode, prog, *args), stdin=stdin, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env())
    lines = []
    while True:
        line = p.stdout.readline().decode()
        assert line, f"no ready line: {lines}"
        lines.append(line)
        if line.strip() == "ready=1":
            return p


def test_poll_mode_serves_calls_without_exits(rootfs, libc, tmp_path):
    st, out, err = run(rootfs, "poll", f"fs-test-{libc}", "bench", "/tmp", 2000,
                       extra=["--upper", tmp_path / "up"])
    assert st == 0 and "fs-test bench: ok" in out, out + err
    served, deferred, exits = counts(err)
    # pipe read/write, pread, pwrite: 8000 whitelisted calls; the server
    # sleeps when idle, so some of them still exit, but not all
    assert served > 0, err
    kv = parse_kv(out)
    assert float(kv["pipe_rw64_us"]) > 0


def test_exit_mode_and_env_override(rootfs, tmp_path):
    up = ["--upper", tmp_path / "up"]
    st, out, err = run(rootfs, "exit", "fs-test-musl", "bench", "/tmp", 200, extra=up)
    assert st == 0, out + err
    assert "exitless: off" in err
    # NUBIS_SVC_EXITLESS overrides the option, both ways
    st, out, err = run(rootfs, "exit", "fs-test-musl", "bench", "/tmp", 200, extra=up,
                       environ=env(NUBIS_SVC_EXITLESS="1"))
    assert st == 0 and counts(err)[0] >= 0, err
    st, out, err = run(rootfs, "poll", "fs-test-musl", "bench", "/tmp", 200, extra=up,
                       environ=env(NUBIS_SVC_EXITLESS="0"))
    assert st == 0 and "exitless: off" in err, err


def test_bad_mode_is_refused(rootfs):
    st, out, err = run(rootfs, "fast", "fs-test-musl", "bench")
    assert st != 0 and "--syscall-mode fast" in err


def test_hostile_slots_monitor_survives_other_vm_unaffected(rootfs, libc):
    # a second VM with normal work runs at the same time
    other = subprocess.Popen(argv(rootfs, "poll", f"svc-test-{libc}", "mutex", 4, 300),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env())
    st, out, err = run(rootfs, "poll", f"svc-test-{libc}", "exitless-hostile", 3000)
    assert st == 0 and "ok=1" in out, f"status={st}\n{out}\n{err}"
    served, deferred, exits = counts(err)
    assert deferred > 0  # garbage requests were answered DEFER
    o_out, o_err = other.communicate(timeout=TIMEOUT)
    assert other.returncode == 0, o_err.decode()
    kv = parse_kv(o_out.decode())
    assert kv["consumed"] == kv["expect"], o_out.decode()


def test_hostile_guest_spinning_is_stopped(rootfs):
    p = start(rootfs, "poll", "svc-test-musl", "exitless-hostile", 500, "spin")
    time.sleep(0.3)  # garbage writers and a ring-3 spinner keep running
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=TIMEOUT)
    assert p.returncode == 128 + signal.SIGTERM, err.decode()


def test_blocking_read_interrupted_by_signal(rootfs, libc):
    # svc-test restart: a blocking pipe read restarted after an SA_RESTART
    # handler, and one that fails with EINTR
    st, out, err = run(rootfs, "poll", f"svc-test-{libc}", "restart")
    assert st == 0 and "ok=1" in out, out + err
    kv = parse_kv(out)
    assert kv["restart_read"].startswith("1")


def test_sigpipe_delivered_before_write_returns(rootfs, libc):
    # write to a closed pipe on the fast path: EPIPE, and the SIGPIPE
    # handler has run when write() returns (DONE_EXIT -> doorbell)
    st, out, err = run(rootfs, "poll", f"svc-test-{libc}", "sigpipe-now", 300)
    assert st == 0 and "ok=1" in out, out + err
    assert "exitless: off" not in err
    m = re.search(r"(\d+) done-exit", err)
    assert m and int(m.group(1)) > 0, err


def test_blocking_read_stopped(rootfs, libc):
    r, w = os.pipe()
    try:
        p = start(rootfs, "poll", f"svc-test-{libc}", "block-read", stdin=r)
        time.sleep(0.2)  # the read is deferred to the vCPU thread and waits
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 128 + signal.SIGTERM, err.decode()
        assert b"read=" not in out
    finally:
        os.close(r)
        os.close(w)


def test_pause_resume_with_server(rootfs):
    p = subprocess.Popen(argv(rootfs, "poll", "svc-test-musl", "exitless-hostile", 20000),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env())
    time.sleep(0.3)
    p.send_signal(signal.SIGTSTP)
    time.sleep(0.3)
    p.send_signal(signal.SIGCONT)
    out, err = p.communicate(timeout=TIMEOUT)
    assert p.returncode == 0 and b"ok=1" in out, err.decode()

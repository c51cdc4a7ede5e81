"""Service VMs without a daemon: nubis run -d / ps / logs / stop / kill / pause /
resume / start / rm / inspect (docs/SERVICE-VMS.md, "Running services").

Each test gets its own $NUBIS_HOME (run directory and image store).

The first group needs no running VM: names, unknown names, stale entries of
dead monitors (a fake pid and a lock holder), ps formats, logs, rm. The
second group runs real service VMs from an image built by
tests/assets/mkimage.py around a static test program.
"""

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BUILD, NUBIS, REPO, ST_USAGE, nubis

ID_RE = re.compile(r"^[0-9a-f]{64}$")


class Svc:
    """nubis with NUBIS_HOME set to a private directory."""

    def __init__(self, home: Path):
        self.home = home
        self.env = dict(os.environ, NUBIS_HOME=str(home))

    def __call__(self, *args, timeout=60, input=None):
        return nubis(*args, env=self.env, timeout=timeout, input=input)

    @property
    def containers(self) -> Path:
        return self.home / "containers"

    def dir_of(self, name: str) -> Path:
        for d in self.containers.iterdir():
            cfg = d / "config.json"
            if cfg.exists() and json.loads(cfg.read_text())["name"] == name:
                return d
        raise KeyError(name)

    def ps(self, *flags) -> list:
        r = self("ps", "--json", *flags)
        assert r.status == 0, r.describe()
        return json.loads(r.out)

    def status(self, name: str) -> str:
        for c in self.ps("-a"):
            if c["name"] == name:
                return c["status"]
        return None

    def record(self, name: str, rootfs: Path) -> Path:
        """A container record that never ran: run -d of a program the root
        filesystem does not have fails to start and leaves it "created"."""
        r = self("run", "-d", "--name", name, "--rootfs", rootfs, "/no/such/program")
        assert r.status != 0, r.describe()
        assert len([l for l in r.stderr.splitlines() if l.strip()]) == 1, r.describe()
        assert self.status(name) == "created", r.describe()
        return self.dir_of(name)

    def cleanup(self):
        if not self.containers.exists():
            return
        names = [c["name"] for c in self.ps("-a")]
        if names:
            self("rm", "-f", *names)

    def sanitizer_reports(self) -> list:
        """Sanitizer reports of detached monitors (an ASan/UBSan build)."""
        found = []
        if self.containers.exists():
            for log in self.containers.glob("*/monitor.log"):
                text = log.read_text(errors="replace")
                if "Sanitizer" in text or "runtime error" in text:
                    found.append(f"{log}:\n{text[:3000]}")
        return found


@pytest.fixture
def svc(tmp_path):
    s = Svc(tmp_path / "home")
    yield s
    reports = s.sanitizer_reports()
    s.cleanup()
    assert not reports, "\n".join(reports)


@pytest.fixture
def emptyroot(tmp_path) -> Path:
    d = tmp_path / "root"
    d.mkdir()
    return d


def write_state(d: Path, **kw):
    st = json.loads((d / "state.json").read_text())
    st.update(kw)
    (d / "state.json").write_text(json.dumps(st))


def one_error_line(r, *needles):
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one error line" + r.describe()
    for n in needles:
        assert n in lines[0], f"{n!r} not in the error" + r.describe()
    return lines[0]


# ---- no VM needed --------------------------------------------------------------


def test_ps_empty(svc):
    r = svc("ps")
    assert r.status == 0, r.describe()
    assert r.out.splitlines()[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert len(r.out.splitlines()) == 1
    assert svc.ps("-a") == []
    assert svc("ps", "-q", "-a").out == ""
    r = svc("ps", "extra")
    assert r.status == ST_USAGE


@pytest.mark.parametrize("name", ["-x", ".x", "a b", "a/b", "x" * 65, "ä", ""])
def test_bad_names_refused(svc, emptyroot, name):
    r = svc("run", "-d", "--name", name, "--rootfs", emptyroot, "/prog")
    assert r.status == ST_USAGE, r.describe()
    one_error_line(r, "name")
    assert not svc.containers.exists() or not any(
        p.name[0] != "." for p in svc.containers.iterdir())


@pytest.mark.parametrize("cmd", [["stop"], ["kill"], ["pause"], ["resume"], ["start"],
                                 ["rm"], ["rm", "-f"], ["inspect"], ["logs"]])
def test_unknown_name(svc, cmd):
    r = svc(*cmd, "nosuch")
    assert r.status != 0, r.describe()
    one_error_line(r, "no such container: nosuch")


def test_missing_image(svc):
    r = svc("run", "-d", "--name", "x", "nosuchimage")
    assert r.status != 0, r.describe()
    one_error_line(r, "nosuchimage")
    assert svc.ps("-a") == []


def test_failed_start_recorded_and_duplicate_name(svc, emptyroot):
    d = svc.record("web", emptyroot)
    info = json.loads(svc("inspect", "web").out)[0]
    assert info["status"] == "created"
    assert info["error"], info  # why it did not start
    assert info["config"]["layers"] == [str(emptyroot)]
    assert info["config"]["argv"] == ["/no/such/program"]
    assert (d / "upper").is_dir()
    # the name stays taken until rm
    r = svc("run", "-d", "--name", "web", "--rootfs", emptyroot, "/prog")
    assert r.status == ST_USAGE, r.describe()
    one_error_line(r, "already in use")
    assert len(svc.ps("-a")) == 1
    # --rm: a failed start leaves nothing
    r = svc("run", "-d", "--rm", "--name", "gone", "--rootfs", emptyroot, "/prog")
    assert r.status != 0
    assert [c["name"] for c in svc.ps("-a")] == ["web"]


def test_id_prefix_and_generated_name(svc, emptyroot):
    r = svc("run", "-d", "--rootfs", emptyroot, "/no/such/program")
    assert r.status != 0
    (c,) = svc.ps("-a")
    assert ID_RE.match(c["id"])
    assert re.match(r"^[a-z]+_[a-z]+_\d{4}$", c["name"]), c
    for ref in (c["id"], c["id"][:12], c["id"][:4], c["name"]):
        r = svc("inspect", ref)
        assert r.status == 0, r.describe()
        assert json.loads(r.out)[0]["id"] == c["id"]


def test_stale_monitor_shown_exited_and_cleaned(svc, emptyroot):
    d = svc.record("stale", emptyroot)
    # a monitor that wrote "running" and died (kill -9) without recording
    # an exit: its pid is gone and nobody holds the lock
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_state(d, status="running", pid=dead.pid, started_ms=int(time.time() * 1000))
    (d / "ctl.sock").write_text("")  # left behind by the dead monitor
    assert svc.status("stale") == "exited (monitor died)"
    assert svc.ps() == []  # not running: only with -a
    r = svc("ps", "-a")
    assert "exited (monitor died)" in r.out, r.describe()
    # commands that need a live VM say so
    for cmd in ("kill", "pause", "resume"):
        r = svc(cmd, "stale")
        assert r.status != 0, r.describe()
        one_error_line(r, "not running")
    # stop of a dead one: nothing to do
    r = svc("stop", "stale")
    assert r.status == 0, r.describe()
    r = svc("rm", "stale")
    assert r.status == 0, r.describe()
    assert not d.exists()
    assert svc.ps("-a") == []


HOLDER = r"""
import fcntl, os, signal, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
if sys.argv[2] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(60)
"""


def hold_lock(d: Path, mode="default"):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(d / "lock"), mode],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_live_monitor_without_socket(svc, emptyroot):
    """A monitor that holds its lock but does not answer on the socket: ps
    trusts the lock, rm refuses, stop falls back to signals (SIGTERM, then
    SIGKILL after -t)."""
    d = svc.record("hung", emptyroot)
    p = hold_lock(d)
    try:
        write_state(d, status="running", pid=p.pid, started_ms=int(time.time() * 1000))
        assert svc.status("hung") == "running"
        assert [c["name"] for c in svc.ps()] == ["hung"]
        r = svc("rm", "hung")
        assert r.status != 0
        one_error_line(r, "running")
        r = svc("kill", "hung")
        assert r.status != 0
        one_error_line(r, "control socket")
        r = svc("stop", "-t", "1", "hung")
        assert r.status == 0, r.describe()
        assert p.wait(5) == -signal.SIGTERM
        assert svc.status("hung") == "exited (monitor died)"
    finally:
        p.kill()
    # one that ignores SIGTERM is killed after the grace period
    p = hold_lock(d, "ignore")
    try:
        write_state(d, status="running", pid=p.pid)
        t0 = time.monotonic()
        r = svc("stop", "-t", "1", "hung")
        assert r.status == 0, r.describe()
        assert p.wait(5) == -signal.SIGKILL
        assert 0.9 < time.monotonic() - t0 < 8
    finally:
        p.kill()
    r = svc("rm", "hung")
    assert r.status == 0, r.describe()


def test_rm_force_of_live_monitor(svc, emptyroot):
    d = svc.record("forced", emptyroot)
    p = hold_lock(d)
    try:
        write_state(d, status="paused", pid=p.pid)
        assert svc.status("forced") == "paused"
        r = svc("rm", "-f", "forced")
        assert r.status == 0, r.describe()
        assert p.wait(5) == -signal.SIGKILL
        assert not d.exists()
    finally:
        p.kill()


def test_ps_formats(svc, emptyroot):
    svc.record("one", emptyroot)
    d2 = svc.record("two", emptyroot)
    write_state(d2, status="exited", exit_code=3, started_ms=1, finished_ms=int(time.time() * 1000))
    r = svc("ps", "-a")
    lines = r.out.splitlines()
    assert lines[0].startswith("CONTAINER ID")
    rows = {l.split()[1]: l for l in lines[1:]}
    assert set(rows) == {"one", "two"}
    assert "created" in rows["one"]
    assert "exited (3)" in rows["two"]
    assert str(emptyroot)[:20] in rows["one"]
    assert '"/no/such/program"' in rows["one"]
    js = {c["name"]: c for c in svc.ps("-a")}
    for c in js.values():
        assert set(c) >= {"id", "name", "image", "command", "created", "status", "pid",
                          "exit_code", "started_at", "finished_at", "error", "ports"}
    assert js["two"]["exit_code"] == 3 and js["two"]["status"] == "exited"
    assert js["one"]["exit_code"] is None
    ids = svc("ps", "-a", "-q").out.split()
    assert sorted(ids) == sorted(c["id"] for c in js.values())


def test_corrupt_state_skipped(svc, emptyroot):
    d = svc.record("bad", emptyroot)
    svc.record("good", emptyroot)
    (d / "state.json").write_text("{not json")
    assert [c["name"] for c in svc.ps("-a")] == ["good"]
    r = svc("inspect", "bad")
    assert r.status != 0
    # it can still be removed by id (prefix), not by its unreadable name
    r = svc("rm", "bad")
    assert r.status != 0
    r = svc("rm", d.name[:8])
    assert r.status == 0 and r.out == d.name + "\n", r.describe()
    assert not d.exists()
    assert [c["name"] for c in svc.ps("-a")] == ["good"]


def test_logs_of_record(svc, emptyroot):
    d = svc.record("talk", emptyroot)
    (d / "log.1").write_bytes(b"old\n")
    (d / "log").write_bytes(b"new\n\x00bin\n")
    r = svc("logs", "talk")
    assert r.status == 0 and r.stdout == b"old\nnew\n\x00bin\n", r.describe()
    r = svc("logs", "-f", "talk", timeout=10)  # not running: prints and ends
    assert r.status == 0 and r.stdout.endswith(b"bin\n")


def test_help(svc):
    for cmd in ("ps", "logs", "stop", "kill", "pause", "resume", "start", "rm", "inspect"):
        r = svc("help", cmd)
        assert r.status == 0 and f"nubis {cmd}" in r.out, r.describe()
    r = svc("run", "-d", "--help")
    assert r.status == 0 and "--name" in r.out


# ---- real service VMs -----------------------------------------------------------

LIFECYCLE = BUILD / "tests" / "guest" / "svc-lifecycle"
sys.path.insert(0, str(REPO / "tests" / "assets"))


@pytest.fixture
def img(svc, tmp_path):
    """Image "lifecycle:1" in svc's store: /bin/svc (tests/guest/svc-lifecycle)
    and an empty /data; default command `/bin/svc counter 100`."""
    import mkimage  # tests/assets/mkimage.py
    if not LIFECYCLE.exists():
        pytest.fail(f"not built: {LIFECYCLE}", pytrace=False)
    root = tmp_path / "imgroot"
    (root / "bin").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "bin" / "svc").write_bytes(LIFECYCLE.read_bytes())
    (root / "bin" / "svc").chmod(0o755)
    net_test = BUILD / "tests" / "guest" / "net-test-musl"
    if net_test.exists():
        (root / "bin" / "net").write_bytes(net_test.read_bytes())
        (root / "bin" / "net").chmod(0o755)
    layout = tmp_path / "oci"
    mkimage.oci_layout(layout, [mkimage.dir_tar(root)], name="lifecycle:1",
                       config={"Cmd": ["/bin/svc", "counter", "100"], "Env": ["FROM_IMAGE=1"]})
    r = svc("image", "import", layout)
    assert r.status == 0, r.describe()
    # the runtime must be there: a one-shot foreground run
    r = svc("run", "--rm", "lifecycle:1", "/bin/svc", "exit", "0", timeout=30)
    assert r.status == 0 and r.out == "bye 0\n", "service VMs do not run" + r.describe()
    return "lifecycle:1"


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def pid_running(pid: int) -> bool:
    """Alive and not a zombie (the monitor is init's child; init may reap late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def logs(svc, name) -> str:
    r = svc("logs", name)
    assert r.status == 0, r.describe()
    return r.out


def counter_lines(svc, name) -> int:
    return sum(1 for l in logs(svc, name).splitlines() if l.isdigit())


def run_d(svc, name, *cmd, extra=()):
    t0 = time.monotonic()
    r = svc("run", "-d", "--name", name, *extra, "lifecycle:1", *cmd)
    assert r.status == 0, r.describe()
    assert ID_RE.match(r.out.strip()), r.describe()
    return r.out.strip(), time.monotonic() - t0


def test_run_detached_ps_logs_inspect(svc, img):
    cid, elapsed = run_d(svc, "c1", "/bin/svc", "counter", "50")
    assert elapsed < 10
    (c,) = svc.ps()
    assert c["id"] == cid and c["name"] == "c1" and c["status"] == "running"
    assert c["command"] == ["/bin/svc", "counter", "50"]
    os.kill(c["pid"], 0)  # the monitor lives
    wait_for(lambda: counter_lines(svc, "c1") >= 3, what="counter output")
    assert logs(svc, "c1").startswith("1\n2\n3\n")
    r = svc("ps")
    assert re.search(r"c1 .* running", r.out), r.describe()
    info = json.loads(svc("inspect", "c1").out)[0]
    assert info["config"]["image"]["name"] == "lifecycle:1"
    assert "FROM_IMAGE=1" in info["config"]["env"]
    # the image cannot be removed while a container uses it
    r = svc("image", "rm", "lifecycle:1")
    assert r.status != 0 and "used by" in r.stderr, r.describe()
    # the image's default command when none is given
    run_d(svc, "c2")
    assert json.loads(svc("inspect", "c2").out)[0]["command"] == ["/bin/svc", "counter", "100"]
    # a running name cannot be taken again
    r = svc("run", "-d", "--name", "c1", "lifecycle:1")
    assert r.status != 0
    one_error_line(r, "already in use")


def test_pause_resume(svc, img):
    run_d(svc, "p", "/bin/svc", "counter", "20")
    wait_for(lambda: counter_lines(svc, "p") >= 2, what="counter output")
    r = svc("pause", "p")
    assert r.status == 0, r.describe()
    assert svc.status("p") == "paused"
    time.sleep(0.2)  # output in flight reaches the log
    n = counter_lines(svc, "p")
    time.sleep(0.6)
    assert counter_lines(svc, "p") == n, "the counter ran while paused"
    r = svc("pause", "p")
    assert r.status != 0
    one_error_line(r, "already paused")
    r = svc("resume", "p")
    assert r.status == 0, r.describe()
    assert svc.status("p") == "running"
    wait_for(lambda: counter_lines(svc, "p") >= n + 5, what="counting after resume")
    r = svc("resume", "p")
    assert r.status != 0
    one_error_line(r, "not paused")


def test_stop_runs_sigterm_handler(svc, img):
    run_d(svc, "t", "/bin/svc", "term", "50")
    wait_for(lambda: "handler installed" in logs(svc, "t"), what="handler")
    t0 = time.monotonic()
    r = svc("stop", "-t", "10", "t")
    took = time.monotonic() - t0
    assert r.status == 0 and r.out == "t\n", r.describe()
    assert took < 5, f"stop took {took:.1f}s; the handler should end it at once"
    assert "sigterm handled" in logs(svc, "t")
    (c,) = svc.ps("-a")
    assert c["status"] == "exited" and c["exit_code"] == 42, c
    assert svc.ps() == []
    assert not (svc.dir_of("t") / "ctl.sock").exists()


def test_stop_kills_after_grace(svc, img):
    run_d(svc, "i", "/bin/svc", "ignore-term", "50")
    wait_for(lambda: "ignoring SIGTERM" in logs(svc, "i"), what="start")
    t0 = time.monotonic()
    r = svc("stop", "-t", "1", "i")
    took = time.monotonic() - t0
    assert r.status == 0, r.describe()
    assert 0.9 <= took < 6, took
    (c,) = svc.ps("-a")
    assert c["status"] == "exited" and c["exit_code"] == 128 + signal.SIGKILL, c
    # several at once share one grace period
    for n in ("i1", "i2", "i3"):
        run_d(svc, n, "/bin/svc", "ignore-term", "50")
    t0 = time.monotonic()
    r = svc("stop", "-t", "1", "i1", "i2", "nosuch", "i3")
    took = time.monotonic() - t0
    assert r.status == 1 and r.out == "i1\ni2\ni3\n", r.describe()
    one_error_line(r, "no such container: nosuch")
    assert took < 4, took
    assert all(c["exit_code"] == 137 for c in svc.ps("-a"))


def test_paused_vm_stops(svc, img):
    run_d(svc, "ps1", "/bin/svc", "term", "50")
    wait_for(lambda: "handler installed" in logs(svc, "ps1"), what="handler")
    assert svc("pause", "ps1").status == 0
    r = svc("stop", "-t", "5", "ps1")
    assert r.status == 0, r.describe()
    assert svc.ps("-a")[0]["exit_code"] == 42


def test_kill_signal(svc, img):
    run_d(svc, "k", "/bin/svc", "term", "50")
    wait_for(lambda: "handler installed" in logs(svc, "k"), what="handler")
    r = svc("kill", "-s", "TERM", "k")
    assert r.status == 0, r.describe()
    wait_for(lambda: svc.status("k") == "exited", what="exit")
    assert svc.ps("-a")[0]["exit_code"] == 42
    r = svc("kill", "k")
    assert r.status != 0
    one_error_line(r, "not running")
    run_d(svc, "k2", "/bin/svc", "ignore-term", "50")
    r = svc("kill", "-s", "NOSUCH", "k2")
    assert r.status == ST_USAGE
    assert svc("kill", "k2").status == 0  # SIGKILL by default
    wait_for(lambda: svc.status("k2") == "exited", what="exit")
    assert [c for c in svc.ps("-a") if c["name"] == "k2"][0]["exit_code"] == 137


def test_start_keeps_writable_layer(svc, img):
    run_d(svc, "db", "/bin/svc", "persist", "/data/n", "50")
    wait_for(lambda: "persist 0" in logs(svc, "db"), what="first run")
    assert svc("stop", "-t", "0", "db").status == 0
    d = svc.dir_of("db")
    assert (d / "upper").is_dir()
    r = svc("start", "db")
    assert r.status == 0 and r.out == "db\n", r.describe()
    wait_for(lambda: "persist 1" in logs(svc, "db"), what="second run")
    assert svc.status("db") == "running"
    r = svc("start", "db")  # already running: nothing to do
    assert r.status == 0
    assert svc("stop", "-t", "0", "db").status == 0
    # the image's layer is untouched: a new container starts from 0
    run_d(svc, "db2", "/bin/svc", "persist", "/data/n", "50")
    wait_for(lambda: "persist 0" in logs(svc, "db2"), what="fresh container")
    # rm deletes the writable layer with everything else
    r = svc("rm", "db")
    assert r.status == 0, r.describe()
    assert not d.exists()
    r = svc("rm", "db2")
    assert r.status != 0
    one_error_line(r, "running")
    assert svc("rm", "-f", "db2").status == 0
    assert svc.ps("-a") == []
    assert svc("image", "ls").out.count("lifecycle:1") == 1


def test_auto_remove(svc, img):
    cid, _ = run_d(svc, "once", "/bin/svc", "exit", "3", extra=("--rm",))
    wait_for(lambda: not (svc.containers / cid).exists(), what="--rm removal")
    assert svc.ps("-a") == []
    cid, _ = run_d(svc, "once2", "/bin/svc", "counter", "50", extra=("--rm",))
    assert svc("stop", "-t", "0", "once2").status == 0
    wait_for(lambda: not (svc.containers / cid).exists(), what="--rm removal after stop")


def test_foreground(svc, img):
    r = svc("run", "--name", "fg", "lifecycle:1", "/bin/svc", "exit", "7")
    assert r.status == 7 and r.out == "bye 7\n", r.describe()
    (c,) = svc.ps("-a")
    assert c["name"] == "fg" and c["status"] == "exited" and c["exit_code"] == 7
    assert logs(svc, "fg") == "bye 7\n"
    r = svc("run", "--rm", "lifecycle:1", "/bin/svc", "exit", "5")
    assert r.status == 5
    assert len(svc.ps("-a")) == 1


def test_monitor_killed(svc, img):
    run_d(svc, "victim", "/bin/svc", "counter", "50")
    (c,) = svc.ps()
    os.kill(c["pid"], signal.SIGKILL)
    wait_for(lambda: svc.status("victim") == "exited (monitor died)", what="stale detection")
    assert not pid_running(c["pid"])
    assert svc.ps() == []
    # it can be started again (stale socket replaced) and removed
    r = svc("start", "victim")
    assert r.status == 0, r.describe()
    assert svc.status("victim") == "running"
    assert svc("rm", "-f", "victim").status == 0
    assert svc.ps("-a") == []


def test_control_socket_garbage(svc, img):
    import socket
    run_d(svc, "g", "/bin/svc", "counter", "50")
    d = svc.dir_of("g")
    dfd = os.open(d, os.O_RDONLY)
    try:
        path = f"/proc/self/fd/{dfd}/ctl.sock"
        for junk in (b"\x00\xff garbage\r\n\r\n", b"GET /state HTTP/1.1\r\nHost: x\r\n" + b"A" * 200000,
                     b"PUT /kill?signal=999 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     b"PUT /stop?timeout=abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(path)
            try:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                s.recv(65536)
            except OSError:
                pass
            s.close()
    finally:
        os.close(dfd)
    assert svc.status("g") == "running"
    n = counter_lines(svc, "g")
    wait_for(lambda: counter_lines(svc, "g") > n, what="still counting")
    assert svc("stop", "-t", "1", "g").status == 0


def test_log_rotation_and_follow(svc, img):
    run_d(svc, "spew", "/bin/svc", "spew", "200000", extra=("--log-size", "16K"))
    wait_for(lambda: svc.status("spew") == "exited", what="spew to finish")
    d = svc.dir_of("spew")
    assert (d / "log.1").exists()
    assert (d / "log").stat().st_size <= 16384 + 65536
    assert (d / "log.1").stat().st_size <= 16384 + 65536
    out = logs(svc, "spew")
    assert set(out) <= {"x", "\n"} and len(out) < 200000
    # -f follows a running VM and ends when it ends
    run_d(svc, "f", "/bin/svc", "term", "50")
    p = subprocess.Popen([str(NUBIS), "logs", "-f", "f"], env=svc.env, stdout=subprocess.PIPE)
    time.sleep(0.5)
    assert svc("stop", "f").status == 0
    out, _ = p.communicate(timeout=10)
    assert p.returncode == 0
    assert b"handler installed" in out and out.endswith(b"sigterm handled\n"), out[-200:]


def _ctl(dir_fd: int, method: str, path: str):
    """One HTTP request on containers/<id>/ctl.sock; (status, body bytes)."""
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(f"/proc/self/fd/{dir_fd}/ctl.sock")

    c = Conn("localhost")
    c.request(method, path, body=b"" if method == "PUT" else None)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def test_control_api_matches_openapi(svc, img):
    """Real responses of a real monitor, checked against src/svc/ctl-openapi.json."""
    from test_vmm import _check_schema, _response_schema
    spec = json.loads((REPO / "src" / "svc" / "ctl-openapi.json").read_text())
    assert spec["openapi"].startswith("3.")
    run_d(svc, "api", "/bin/svc", "term", "50")
    dfd = os.open(svc.dir_of("api"), os.O_RDONLY)
    try:
        calls = [("GET", "/state"), ("PUT", "/pause"), ("GET", "/state"), ("PUT", "/pause"),
                 ("PUT", "/resume"), ("PUT", "/resume"), ("PUT", "/state"), ("GET", "/stop"),
                 ("PUT", "/kill?signal=999"), ("PUT", "/kill?signal=WINCH"),
                 ("PUT", "/stop?timeout=x"), ("GET", "/nothing"), ("PUT", "/stop?timeout=5")]
        seen = {}
        for method, path in calls:
            st, body = _ctl(dfd, method, path)
            route = path.split("?")[0]
            if route not in spec["paths"]:  # checked below
                seen[(method, path)] = (st, body)
                continue
            doc_method = method.lower() if method.lower() in spec["paths"][route] else \
                next(iter(spec["paths"][route]))
            schema = _response_schema(spec, route, doc_method, st)
            if schema:
                _check_schema(spec, schema, json.loads(body), f"{method} {path} {st}")
            else:
                assert body == b"", f"{method} {path} {st}: unexpected body {body!r}"
            seen[(method, path)] = (st, body)
        assert seen[("PUT", "/kill?signal=999")][0] == 400
        assert seen[("PUT", "/stop?timeout=5")][0] == 202
        st, body = seen[("GET", "/nothing")]
        assert st == 404
        _check_schema(spec, {"$ref": "#/components/schemas/Error"}, json.loads(body), "404")
    finally:
        os.close(dfd)
    wait_for(lambda: svc.status("api") == "exited", what="stop")


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def echo(port: int, msg: bytes) -> bytes:
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(msg)
        c.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            b = c.recv(4096)
            if not b:
                return out
            out += b


def test_publish_survives_stop_start(svc, img):
    """--publish is kept in config.json and set up again by `nubis start`;
    a second container cannot take the same host port."""
    if not (BUILD / "tests" / "guest" / "net-test-musl").exists():
        pytest.fail("not built: net-test-musl", pytrace=False)
    port = free_port()
    run_d(svc, "web", "/bin/net", "tcp-echo", "7000", "100",
          extra=("--publish", f"127.0.0.1:{port}:7000"))
    wait_for(lambda: "listening=" in logs(svc, "web"), what="listener")
    assert echo(port, b"hello") == b"hello"
    info = json.loads(svc("inspect", "web").out)[0]
    assert ["publish", f"127.0.0.1:{port}:7000"] in info["config"]["options"]
    assert info["ports"] == [f"127.0.0.1:{port}:7000"]
    assert f"127.0.0.1:{port}:7000" in svc("ps").out
    # the same host port for a second container: its guest's bind fails
    # (the host port is bound when the guest binds the published port)
    run_d(svc, "web2", "/bin/net", "tcp-echo", "7000",
          extra=("--publish", f"127.0.0.1:{port}:7000"))
    wait_for(lambda: svc.status("web2") == "exited", what="second container to fail")
    assert "listen=EADDRINUSE" in logs(svc, "web2")
    assert echo(port, b"still") == b"still"
    assert svc("stop", "-t", "1", "web").status == 0
    r = svc("start", "web")
    assert r.status == 0, r.describe()
    wait_for(lambda: logs(svc, "web").count("listening=") == 2, what="listener again")
    assert echo(port, b"again") == b"again"
    # bad service options are refused before anything is created
    r = svc("run", "-d", "--name", "bad", "--publish", "nonsense", "lifecycle:1")
    assert r.status == ST_USAGE, r.describe()
    r = svc("run", "-d", "--name", "bad", "--memory", "1K", "lifecycle:1")
    assert r.status == ST_USAGE, r.describe()
    r = svc("run", "-d", "--name", "bad", "--upper", "/tmp", "lifecycle:1")
    assert r.status == ST_USAGE, r.describe()
    assert "bad" not in [c["name"] for c in svc.ps("-a")]


def test_volume_and_memory_options(svc, img, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    run_d(svc, "v", "/bin/svc", "persist", "/data/vol/n", "50",
          extra=("--volume", f"{vol}:/data/vol", "--memory", "64M", "--cpus", "1"))
    # the guest prints "persist N" before it rewrites the file: wait for both
    wait_for(lambda: "persist 0" in logs(svc, "v"), what="first run")
    wait_for(lambda: (vol / "n").read_text() == "1\n", what="volume file written")
    assert not (svc.dir_of("v") / "upper" / "data" / "vol" / "n").exists()
    assert svc("stop", "-t", "0", "v").status == 0
    assert svc("start", "v").status == 0
    wait_for(lambda: "persist 1" in logs(svc, "v"), what="second run")
    wait_for(lambda: (vol / "n").read_text() == "2\n", what="volume file rewritten")


def test_foreground_forwards_signals(svc, img):
    p = subprocess.Popen([str(NUBIS), "run", "--rm", "lifecycle:1", "/bin/svc", "term", "50"],
                         env=svc.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"handler installed\n"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 42, err
    assert out.endswith(b"sigterm handled\n")
    p = subprocess.Popen([str(NUBIS), "run", "--rm", "lifecycle:1", "/bin/svc", "counter", "50"],
                         env=svc.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"1\n"
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=10)
    assert p.returncode == 128 + signal.SIGINT
    assert svc.ps("-a") == []


def test_relative_home_and_rootfs(svc, img, tmp_path):
    """A relative $NUBIS_HOME and --rootfs are made absolute: the monitor runs
    in "/" and keeps no directory of the caller busy."""
    root = tmp_path / "rel" / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "svc").write_bytes(LIFECYCLE.read_bytes())
    (root / "bin" / "svc").chmod(0o755)
    env = dict(svc.env, NUBIS_HOME="home")
    r = subprocess.run([str(NUBIS), "run", "-d", "--name", "rel", "--rootfs", "rel/root",
                        "/bin/svc", "counter", "50"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (c,) = svc.ps()  # the same store through the absolute path
    assert c["name"] == "rel"
    assert os.readlink(f"/proc/{c['pid']}/cwd") == "/"
    cfg = json.loads(svc("inspect", "rel").out)[0]["config"]
    assert cfg["layers"] == [str(root)]
    assert svc("stop", "-t", "0", "rel").status == 0


def test_concurrent_runs_same_name(svc, img):
    """Names stay unique when several `run -d` race for one."""
    procs = [subprocess.Popen([str(NUBIS), "run", "-d", "--name", "race", "lifecycle:1",
                               "/bin/svc", "counter", "100"], env=svc.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(4)]
    results = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in procs]
    ok = [r for r in results if r[0] == 0]
    assert len(ok) == 1, results
    assert all(b"already in use" in r[2] for r in results if r[0] != 0), results
    assert [c["name"] for c in svc.ps("-a")] == ["race"]
    assert svc.status("race") == "running"


def test_concurrent_starts(svc, img):
    run_d(svc, "twice", "/bin/svc", "counter", "100")
    assert svc("stop", "-t", "0", "twice").status == 0
    procs = [subprocess.Popen([str(NUBIS), "start", "twice"], env=svc.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    results = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in procs]
    assert all(r[0] == 0 and r[1] == b"twice\n" for r in results), results
    assert svc.status("twice") == "running"
    # exactly one monitor: one lock holder, and the counter restarted once
    wait_for(lambda: logs(svc, "twice").count("\n1\n") + logs(svc, "twice").startswith("1\n") >= 2,
             what="second run output")
    time.sleep(0.3)
    out = logs(svc, "twice")
    assert out.count("\n1\n") + out.startswith("1\n") == 2, out


def test_start_right_after_kill(svc, img):
    """`nubis start` at once after `nubis kill` (the old monitor may still be
    tearing down and hold the container's lock): start waits for it and
    really starts a new run, or fails — never reports success without one.
    Each run bumps a counter on the writable layer, so every start shows."""
    run_d(svc, "kst", "/bin/svc", "persist", "/data/n", "20")
    wait_for(lambda: "persist 0" in logs(svc, "kst"), what="first run")
    for i in range(1, 6):
        pid = svc.ps()[0]["pid"]
        r = svc("kill", "kst")
        assert r.status == 0, r.describe()
        r = svc("start", "kst")
        assert r.status == 0 and r.out == "kst\n", r.describe()
        (c,) = svc.ps()  # running, by a new monitor
        assert c["status"] == "running" and c["pid"] != pid, c
        wait_for(lambda: f"persist {i}" in logs(svc, "kst"), what=f"run {i + 1}")
    assert svc("kill", "kst").status == 0
    wait_for(lambda: svc.status("kst") == "exited", what="exited")
    assert svc.ps("-a")[0]["exit_code"] == 137

"""No state crosses from one run to the next."""

import pytest

from conftest import LIBCS, guest_path, run


def test_leak_selftest(prog):
    """Positive control: the scanner finds a marker written in the same run."""
    r = run(prog, "leak-selftest")
    assert r.status == 0, r.describe()
    assert r.kv["found"] == "1", r.describe()
    assert "leak-read: marker in" in r.stderr


@pytest.mark.parametrize("writer", LIBCS)
def test_no_leak_between_runs(prog, writer):
    w = run(guest_path(writer), "leak-write")
    assert w.status == 0 and w.out == "wrote\n", w.describe()
    r = run(prog, "leak-read")
    assert r.status == 0, r.describe()
    assert r.kv["found"] == "0", r.describe()
    assert "marker in" not in r.stderr, r.describe()


def test_no_leak_after_many_writers(musl_prog):
    for _ in range(5):
        assert run(musl_prog, "leak-write").status == 0
    r = run(musl_prog, "leak-read")
    assert r.kv["found"] == "0", r.describe()


def test_no_leak_after_fault(musl_prog):
    """A run that dies right after writing its secrets leaves nothing either."""
    # leak-write, then a fault in a separate run, then a read
    assert run(musl_prog, "leak-write").status == 0
    assert run(musl_prog, "null").status == 139
    r = run(musl_prog, "leak-read")
    assert r.kv["found"] == "0", r.describe()


def test_write_channel_state_not_shared(musl_prog, tmp_path):
    """Each run starts with fresh file offsets: two writes of the same
    content to a :w channel give the content once, not twice."""
    src, dst = tmp_path / "in", tmp_path / "out"
    src.write_bytes(b"once\n")
    for _ in range(2):
        r = run("--channel", f"/in={src}:r", "--channel", f"/out={dst}:w", musl_prog,
                "copy", "/in", "/out")
        assert r.status == 0, r.describe()
    assert dst.read_bytes() == b"once\n"


def _seccomp_mode(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Seccomp:"):
            return int(line.split()[1])
    return None


def test_monitor_runs_under_seccomp(tmp_path):
    """Once the VM is ready, `nubis run` runs under a seccomp filter (mode 2)."""
    import subprocess
    import time
    from conftest import NUBIS, guest_path
    p = subprocess.Popen([str(NUBIS), "run", "--timeout", "5s", str(guest_path("musl")), "spin"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        mode = None
        deadline = time.time() + 4
        while time.time() < deadline and mode != 2:
            time.sleep(0.05)
            mode = _seccomp_mode(p.pid)
        assert mode == 2
    finally:
        p.kill()
        p.wait()

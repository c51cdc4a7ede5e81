"""Determinism: virtual clock, seeded randomness, fixed identity."""

import re

from conftest import run

EPOCH = 946684800  # 2000-01-01T00:00:00Z: where the virtual realtime clock starts

RANDOM_KEYS = ["random0", "random1", "random2", "random3", "at_random"]
ADDR_KEYS = ["malloc_addr", "mmap_addr", "stack_addr", "global_addr", "brk_addr"]
TIME_KEYS = ["clock_realtime", "clock_monotonic", "gettimeofday", "time",
             "nanosleep_elapsed_ns"]


def det(prog, *opts):
    r = run(*opts, prog, "det")
    assert r.status == 0, r.describe()
    return r


def test_det_twice_identical(prog):
    a, b = det(prog), det(prog)
    assert a.stdout == b.stdout, a.describe() + b.describe()
    # and the output is complete (the test would be vacuous otherwise)
    for k in RANDOM_KEYS + ADDR_KEYS + TIME_KEYS + ["pid", "uname.machine"]:
        assert k in a.kv, f"det printed no {k}" + a.describe()
    for k in RANDOM_KEYS + ADDR_KEYS:
        assert "error" not in a.kv[k], a.describe()


def test_det_default_seed_is_zero(prog):
    assert det(prog).stdout == det(prog, "--seed", "0").stdout


def test_seed_changes_randomness_only(prog):
    a, b = det(prog, "--seed", "1").kv, det(prog, "--seed", "2").kv
    for k in RANDOM_KEYS:
        assert a[k] != b[k], f"{k} did not change with the seed"
    for k, v in a.items():
        if k not in RANDOM_KEYS:
            assert b[k] == v, f"{k} changed with the seed: {v} -> {b[k]}"
    # the same seed again reproduces it
    assert det(prog, "--seed", "2").kv == b


def test_random_values_look_random(prog):
    kv = det(prog, "--seed", "12345").kv
    vals = [kv[k] for k in RANDOM_KEYS[:4]]
    assert len(set(vals)) == 4
    for v in vals:
        assert re.fullmatch(r"[0-9a-f]{16}", v), v
    assert re.fullmatch(r"[0-9a-f]{32}", kv["at_random"])
    assert kv["at_random"] != "0" * 32


def test_virtual_clock(prog):
    kv = det(prog).kv
    rt = float(kv["clock_realtime"])
    assert EPOCH <= rt < EPOCH + 1, kv["clock_realtime"]
    assert kv["clock_realtime"].startswith(f"{EPOCH}.")
    assert kv["gettimeofday"].startswith(f"{EPOCH}.")
    assert int(kv["time"]) == EPOCH
    mono = float(kv["clock_monotonic"])
    assert 0 <= mono < 0.01, kv["clock_monotonic"]
    # clocks advance (each system call ticks the virtual clock)
    assert float(kv["gettimeofday"]) >= rt
    # a 1 ms nanosleep advances the monotonic clock by at least 1 ms, and
    # (being virtual) by not much more
    el = int(kv["nanosleep_elapsed_ns"])
    assert kv["nanosleep"] == "0"
    assert 1_000_000 <= el < 1_100_000, el


def test_identity(prog):
    kv = det(prog).kv
    assert kv["pid"] == "2"
    assert kv["ppid"] == "1"
    assert kv["uid"] == "1000"
    assert kv["gid"] == "1000"
    assert kv["uname.sysname"] == "Linux"
    assert kv["uname.machine"] == "x86_64"
    assert kv["uname.nodename"] == "nubis"


def test_realtime_does_not_follow_host(musl_prog):
    """Two runs a second apart still see the same time."""
    import time
    a = det(musl_prog).kv
    time.sleep(1.05)
    b = det(musl_prog).kv
    assert a["time"] == b["time"] == str(EPOCH)
    assert a["clock_realtime"] == b["clock_realtime"]

"""Output, time and system-call limits; unsupported system calls."""

import re

import pytest

from conftest import (ST_OUTPUT_LIMIT, ST_SYSCALL_LIMIT, ST_TIMEOUT, assert_one_message,
                      nubis_lines, run)

MIB = 1 << 20


def test_flood_output_limit(prog):
    r = run("--output-limit", "1M", prog, "flood")
    assert r.status == ST_OUTPUT_LIMIT, r.describe()
    assert len(r.stdout) == MIB, len(r.stdout)
    assert r.stdout.startswith(b"flood line 0: the quick brown fox")
    # what got through is a clean prefix of the flood
    lines = r.stdout.split(b"\n")
    for i, line in enumerate(lines[:-1]):
        assert line == b"flood line %d: the quick brown fox jumps over the lazy dog" % i
    assert_one_message(r, prog, "output limit of 1048576 bytes", "stdout")


def test_output_limit_boundary(musl_prog):
    """Exactly the limit is allowed; one byte more is not."""
    r = run("--output-limit", "1M", musl_prog, "bigwrite", str(MIB))
    assert r.status == 0, r.describe()
    assert len(r.stdout) == MIB
    r = run("--output-limit", "1M", musl_prog, "bigwrite", str(MIB + 1))
    assert r.status == ST_OUTPUT_LIMIT, r.describe()
    assert r.stdout == b"x" * MIB


def test_output_limit_zero_means_none(musl_prog):
    r = run("--output-limit", "0", musl_prog, "bigwrite", str(3 * MIB))
    assert r.status == 0, r.describe()
    assert len(r.stdout) == 3 * MIB


def test_default_output_limit_is_64M(musl_prog):
    r = run("--memory", "256M", musl_prog, "bigwrite", str(64 * MIB + 1))
    assert r.status == ST_OUTPUT_LIMIT, r.describe()
    assert len(r.stdout) == 64 * MIB


def test_spin_timeout(prog):
    r = run("--timeout", "500ms", prog, "spin", timeout=30)
    assert r.status == ST_TIMEOUT, r.describe()
    assert 0.45 <= r.elapsed < 5, r.elapsed
    assert_one_message(r, prog, "timeout")


def test_timeout_does_not_hit_quick_program(musl_prog):
    r = run("--timeout", "10s", musl_prog, "hello")
    assert r.status == 0, r.describe()
    assert r.elapsed < 5


def test_sysflood_syscall_limit(prog):
    r = run("--syscall-limit", "10000", prog, "sysflood")
    assert r.status == ST_SYSCALL_LIMIT, r.describe()
    assert_one_message(r, prog, "system-call limit of 10000")


def test_syscall_limit_counts_exactly(musl_prog):
    """--trace reports how many calls ran: the limit stops at exactly N."""
    r = run("--trace", "--syscall-limit", "500", musl_prog, "sysflood")
    assert r.status == ST_SYSCALL_LIMIT, r.describe()
    m = re.search(r"trace: (\d+) system calls", r.stderr)
    assert m and int(m.group(1)) == 500, r.describe()


def test_syscall_limit_not_reached(musl_prog):
    r = run("--syscall-limit", "1000", musl_prog, "hello")
    assert r.status == 0, r.describe()


ENOSYS_CALLS = ["fork", "socket", "execve", "ptrace"]


def test_unsupported_syscalls_enosys(prog):
    r = run(prog, "enosys")
    assert r.status == 0, r.describe()
    lines = r.out.splitlines()
    for name in ENOSYS_CALLS + ["nr999"]:
        assert f"{name} errno=ENOSYS" in lines, r.describe()
    assert "kill ret=ok" in lines  # kill(self, 0) is supported
    assert nubis_lines(r.stderr) == [], "no trace without --trace" + r.describe()


def test_trace_lists_unsupported(prog):
    r = run("--trace", prog, "enosys")
    assert r.status == 0, r.describe()
    trace = nubis_lines(r.stderr)
    assert any(re.match(r"nubis: trace: \d+ system calls", l) for l in trace), r.describe()
    for name in ENOSYS_CALLS:
        hits = [l for l in trace if re.search(rf"\b{name} \(\d+\)", l)]
        assert len(hits) == 1, f"{name} not traced" + r.describe()
        assert "unsupported" in hits[0], r.describe()
    # supported calls are listed without the mark
    kill = [l for l in trace if re.search(r"\bkill \(62\)", l)]
    assert kill and "unsupported" not in kill[0], r.describe()
    # and the program's own output is unchanged by tracing
    assert r.stdout == run(prog, "enosys").stdout


@pytest.mark.parametrize("opt,val", [
    ("--output-limit", "1Q"), ("--output-limit", "-1"), ("--syscall-limit", "x"),
    ("--syscall-limit", "1e6"), ("--timeout", "0"), ("--timeout", "5 s"), ("--seed", "-1"),
])
def test_bad_limit_values(musl_prog, opt, val):
    r = run(opt, val, musl_prog, "hello")
    assert r.status == 125, r.describe()
    assert r.stdout == b""
    assert opt in r.stderr

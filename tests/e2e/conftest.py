"""End-to-end tests of `nubis run`: fixtures and helpers.

Run from the repository root:

    /usr/bin/python3 -m pytest tests/e2e -q

The build directory is $NUBIS_BUILD (default: <repo>/build); it must hold
the monitor (nubis), the test guests (tests/guest/nubis-test-*), the hello
examples and the Lua interpreter. Needs a usable /dev/kvm.
"""

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("NUBIS_BUILD", REPO / "build")).resolve()
NUBIS = BUILD / "nubis"
EXAMPLES = REPO / "guest" / "examples"

# The three builds of tests/guest/nubis-test.c.
LIBCS = ["musl", "glibc", "glibc-pie"]

# Exit statuses of `nubis run` (src/fnvm/fnvm.h).
ST_CHANNEL = 119
ST_INTERNAL = 120
ST_OUTPUT_LIMIT = 121
ST_SYSCALL_LIMIT = 122
ST_DEADLOCK = 123
ST_TIMEOUT = 124
ST_USAGE = 125
ST_BAD_PROGRAM = 126
ST_NOT_FOUND = 127
SIGILL, SIGFPE, SIGSEGV = 4, 8, 11

RUN_TIMEOUT = 60  # seconds, for any single nubis invocation


@dataclass
class Result:
    status: int
    stdout: bytes
    stderr: str
    elapsed: float
    argv: list

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def kv(self) -> dict:
        """stdout `key=value` lines as a dict."""
        return parse_kv(self.out)

    def describe(self) -> str:
        """For assertion messages."""
        out = self.out
        if len(out) > 2000:
            out = out[:2000] + f"... [{len(self.stdout)} bytes]"
        err = self.stderr if len(self.stderr) < 3000 else self.stderr[:3000] + "..."
        return (f"\n$ {' '.join(map(str, self.argv))[:500]}\nstatus={self.status}"
                f"\n--- stdout\n{out}\n--- stderr\n{err}")


def parse_kv(text: str) -> dict:
    d = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            d[k] = v
    return d


def nubis(*args, input=None, cwd=None, env=None, timeout=RUN_TIMEOUT) -> Result:
    """Run `build/nubis ARGS...` (ARGS normally start with "run")."""
    argv = [str(NUBIS)] + [str(a) for a in args]
    if isinstance(input, str):
        input = input.encode()
    t0 = time.monotonic()
    p = subprocess.run(argv, input=input if input is not None else b"",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       cwd=cwd, env=env, timeout=timeout)
    return Result(p.returncode, p.stdout, p.stderr.decode("utf-8", errors="replace"),
                  time.monotonic() - t0, argv)


def run(*args, **kw) -> Result:
    """`nubis run ARGS...`"""
    return nubis("run", *args, **kw)


def nubis_lines(stderr: str) -> list:
    """The monitor's own lines on stderr."""
    return [l for l in stderr.splitlines() if l.startswith("nubis")]


def assert_one_message(r: Result, prog, *needles):
    """Exactly one `nubis: PROGRAM: ...` line, mentioning every needle."""
    lines = [l for l in r.stderr.splitlines() if l.startswith("nubis: ")]
    assert len(lines) == 1, "expected one nubis: line" + r.describe()
    prefix = f"nubis: {prog}: "
    assert lines[0].startswith(prefix), f"message does not start with {prefix!r}" + r.describe()
    for n in needles:
        if isinstance(n, re.Pattern):
            assert n.search(lines[0]), f"message does not match {n.pattern!r}" + r.describe()
        else:
            assert n in lines[0], f"message does not mention {n!r}" + r.describe()
    return lines[0]


def _kvm_usable() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


# pvm (issue 4): the Debian-kernel boot test (tests/e2e/test_linux.py) is selectable
def pytest_configure(config):
    config.addinivalue_line("markers", "slow_linux: boots the Debian kernel (minutes on kvm_pvm)")


def pytest_collection_modifyitems(config, items):
    if not _kvm_usable():
        skip = pytest.mark.skip(reason="/dev/kvm is not usable here")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _built():
    missing = [p for p in [NUBIS] + [BUILD / "tests" / "guest" / f"nubis-test-{l}" for l in LIBCS]
               if not p.exists()]
    if missing:
        pytest.fail(f"not built: {', '.join(map(str, missing))} (run: ninja -C {BUILD})",
                    pytrace=False)


@pytest.fixture(params=LIBCS)
def libc(request):
    return request.param


def guest_path(libc: str) -> Path:
    """build/tests/guest/nubis-test-LIBC"""
    return BUILD / "tests" / "guest" / f"nubis-test-{libc}"


@pytest.fixture
def prog(libc) -> Path:
    """nubis-test built with the parametrized libc."""
    return guest_path(libc)


@pytest.fixture
def musl_prog() -> Path:
    return guest_path("musl")


@pytest.fixture
def glibc_prog() -> Path:
    return guest_path("glibc")


@pytest.fixture(scope="session")
def lua() -> Path:
    p = BUILD / "guest" / "lua" / "lua"
    if not p.exists():
        pytest.fail(f"not built: {p}", pytrace=False)
    return p


@pytest.fixture(scope="session")
def examples() -> Path:
    return EXAMPLES


@pytest.fixture
def hello_example():
    def get(libc: str) -> Path:
        p = BUILD / "guest" / "examples" / f"hello-{libc}"
        if not p.exists():
            pytest.fail(f"not built: {p}", pytrace=False)
        return p
    return get


# ---- built guest test programs (dedupe: shared by the test_svc_* files) ----
def guest_program(name: str) -> Path:
    """BUILD/tests/guest/NAME; fails the test when it has not been built."""
    p = BUILD / "tests" / "guest" / name
    if not p.exists():
        pytest.fail(f"not built: {p}", pytrace=False)
    return p


def install_guest_programs(bindir: Path, names) -> None:
    """Copies the built guest programs NAMES into BINDIR, executable."""
    for name in names:
        dst = bindir / name
        dst.write_bytes(guest_program(name).read_bytes())
        dst.chmod(0o755)
# ---- end of built guest test programs ----

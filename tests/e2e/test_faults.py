"""Faults in the guest end the run with 128+signal and a one-line message."""

import pytest

from conftest import SIGFPE, SIGILL, SIGSEGV, assert_one_message, run

FAULTS = [
    # behaviour, signal, what the message must say
    ("jump", SIGSEGV, ["SIGSEGV", "page fault", "0xdeadbeef000", "instruction fetch"]),
    ("null", SIGSEGV, ["SIGSEGV", "page fault", "at address 0 ", "write"]),
    ("priv", SIGSEGV, ["SIGSEGV", "privileged instruction hlt"]),
    ("ud2", SIGILL, ["SIGILL", "invalid opcode"]),
    ("div0", SIGFPE, ["SIGFPE", "divide error"]),
]


@pytest.mark.parametrize("behaviour,sig,needles", FAULTS, ids=[f[0] for f in FAULTS])
def test_fault(prog, behaviour, sig, needles):
    r = run(prog, behaviour)
    assert r.status == 128 + sig, r.describe()
    assert r.stdout == b""
    assert_one_message(r, prog, *needles)
    # the host is fine: the next run works
    ok = run(prog, "hello")
    assert ok.status == 0 and ok.out == "hello from nubis\n", ok.describe()


def test_fault_after_output(prog):
    r = run(prog, "fault-after-output")
    assert r.status == 128 + SIGSEGV, r.describe()
    assert r.out == "output before fault\n", r.describe()
    assert_one_message(r, prog, "page fault")


def test_fault_message_names_rip_in_program(musl_prog):
    """The reported rip is inside the program (0x400000...), not in a stub."""
    r = run(musl_prog, "ud2")
    line = assert_one_message(r, musl_prog, "rip=0x4")
    assert "rsp=0x" in line


def test_faults_back_to_back(musl_prog):
    for b, sig, _ in FAULTS * 2:
        r = run(musl_prog, b)
        assert r.status == 128 + sig, r.describe()
    assert run(musl_prog, "exit", "5").status == 5

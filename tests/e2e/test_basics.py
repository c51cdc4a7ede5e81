"""Hello world, arguments, environment, exit statuses, standard input."""

import os

import pytest

from conftest import BUILD, guest_path, run


@pytest.mark.parametrize("libc", ["musl", "glibc"])
def test_hello_example(hello_example, libc):
    r = run(hello_example(libc))
    assert r.status == 0, r.describe()
    assert r.out == f"hello from nubis ({libc})\n", r.describe()
    assert r.stderr == "", r.describe()


def test_hello(prog):
    r = run(prog, "hello")
    assert r.status == 0, r.describe()
    assert r.out == "hello from nubis\n", r.describe()
    assert r.stderr == ""


def test_args_and_env(prog):
    r = run("--env", "A=1", "--env", "B=x=y", "--env", "EMPTY=", prog,
            "args", "a b", "", "--not-an-option", "ünïcode")
    assert r.status == 0, r.describe()
    assert r.out.splitlines() == [
        "argc=6",
        f"argv[0]={prog}",
        "argv[1]=args",
        "argv[2]=a b",
        "argv[3]=",
        "argv[4]=--not-an-option",
        "argv[5]=ünïcode",
        "env=A=1",
        "env=B=x=y",
        "env=EMPTY=",
    ], r.describe()


def test_environment_empty_by_default(prog):
    """The host's environment does not reach the guest."""
    env = dict(os.environ, NUBIS_E2E_HOST_SECRET="do-not-leak")
    r = run(prog, "args", env=env)
    assert r.status == 0, r.describe()
    assert r.out.splitlines() == ["argc=2", f"argv[0]={prog}", "argv[1]=args"], r.describe()


def test_argv0_is_program_as_given(libc):
    """argv[0] is PROGRAM exactly as written on the command line (relative here)."""
    rel = f"tests/guest/nubis-test-{libc}"
    r = run(rel, "args", cwd=BUILD)
    assert r.status == 0, r.describe()
    assert r.kv["argv[0]"] == rel


def test_options_after_double_dash_go_to_the_program(prog):
    r = run(prog, "args", "--", "--memory", "3M", "--env", "X=1")
    assert r.status == 0, r.describe()
    assert "argv[2]=--memory" in r.out.splitlines()
    assert "env=X=1" not in r.out


@pytest.mark.parametrize("code,want", [(0, 0), (1, 1), (7, 7), (255, 255), (256, 0), (300, 44)])
def test_exit_status(prog, code, want):
    r = run(prog, "exit", str(code))
    assert r.status == want, r.describe()
    assert r.stderr == "", "a normal exit prints nothing" + r.describe()


def test_guest_usage_error_status(musl_prog):
    r = run(musl_prog, "no-such-behaviour")
    assert r.status == 64, r.describe()
    assert "unknown behaviour" in r.stderr


def test_stdin_cat(prog):
    data = bytes(range(256)) * 4096 + b"tail without newline"  # 1 MiB + a bit, NULs included
    r = run(prog, "cat", input=data)
    assert r.status == 0, r.describe()
    assert r.stdout == data


def test_stdin_empty(prog):
    r = run(prog, "cat", input=b"")
    assert r.status == 0, r.describe()
    assert r.stdout == b""


def test_stderr_passthrough(musl_prog):
    """The guest's stderr is nubis's stderr, separate from stdout."""
    r = run(musl_prog, "copy", "/nonexistent-in", "/out")
    assert r.status == 2, r.describe()
    assert r.stdout == b""
    assert "open /nonexistent-in: No such file or directory" in r.stderr


def test_help():
    r = run("--help")
    assert r.status == 0
    assert "usage: nubis run" in r.out


def test_many_runs_in_a_row():
    """Each run is a fresh VM; a burst of them all behave the same."""
    p = guest_path("musl")
    for i in range(20):
        r = run(p, "exit", str(i))
        assert r.status == i, r.describe()


def test_info_reports_flavour_and_measures():
    import re
    import subprocess
    from conftest import NUBIS
    p = subprocess.run([str(NUBIS), "info", "--measure"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = dict(line.split(": ", 1) for line in p.stdout.splitlines() if ": " in line)
    assert out["kvm.flavour"] in ("vmx", "svm", "pvm")
    assert out["kvm.cap.sync_regs"] == "yes"
    for key in ("measured.vm_cycle_us", "measured.exit_to_monitor_us",
                "measured.ring3_ns_per_insn", "measured.ring0_ns_per_insn"):
        assert re.fullmatch(r"[0-9.]+", out[key]) and float(out[key]) > 0, key
    # guest kernel mode is never faster than user mode
    assert float(out["measured.ring0_ns_per_insn"]) >= float(out["measured.ring3_ns_per_insn"])
    bad = subprocess.run([str(NUBIS), "info", "--bogus"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 125 and "unknown option" in bad.stderr


def test_options_after_program_and_double_dash(musl_prog):
    """nubis options may follow PROGRAM (as in `nubis run PROGRAM ARGS --timeout 2s`);
    other arguments and everything after "--" stay the program's."""
    r = run(musl_prog, "args", "-x", "--env", "A=1", "--timeout", "5s", "--", "--seed", "3")
    assert r.status == 0, r.describe()
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "argc=5"
    assert lines[3:5] == ["argv[2]=-x", "argv[3]=--seed"]
    assert "env=A=1" in lines
    # an option after PROGRAM is applied: the limit ends the run
    r = run(musl_prog, "spin", "--timeout", "300ms")
    assert r.status == 124, r.describe()

"""Programs nubis must refuse, and bad command lines."""

import os
import shutil
import struct
import subprocess

import pytest

from conftest import (NUBIS, ST_BAD_PROGRAM, ST_CHANNEL, ST_NOT_FOUND, ST_USAGE, assert_one_message,
                      guest_path, run)


def patched(src, dst, offset, data: bytes):
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as f:
        f.seek(offset)
        f.write(data)
    os.chmod(dst, 0o755)
    return dst


def test_random_bytes(tmp_path):
    p = tmp_path / "random.bin"
    p.write_bytes(bytes((i * 7919 + 13) % 251 for i in range(4096)))
    r = run(p)
    assert r.status == ST_BAD_PROGRAM, r.describe()
    assert_one_message(r, p, "bad magic")


def test_empty_file(tmp_path):
    p = tmp_path / "empty"
    p.write_bytes(b"")
    r = run(p)
    assert r.status == ST_BAD_PROGRAM, r.describe()
    assert_one_message(r, p, "not an ELF file")


def test_shell_script(tmp_path):
    p = tmp_path / "script.sh"
    p.write_text("#!/bin/sh\necho hi\n")
    p.chmod(0o755)
    r = run(p)
    assert r.status == ST_BAD_PROGRAM, r.describe()
    assert r.stdout == b""


def loaded_end(data: bytes) -> int:
    """End of the file range of the last PT_LOAD segment (the section
    headers after it are not needed to run, so cutting them is harmless)."""
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    end = 0
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data,
                                                               phoff + i * phentsize)
        if p_type == 1:
            end = max(end, p_offset + p_filesz)
    return end


@pytest.mark.parametrize("size", [3, 40, 64, 200, 3000, "half", "load_end-1"])
def test_truncated_binary(prog, tmp_path, size):
    data = prog.read_bytes()
    n = {"half": len(data) // 2, "load_end-1": loaded_end(data) - 1}.get(size, size)
    p = tmp_path / "truncated"
    p.write_bytes(data[:n])
    r = run(p, "hello")
    assert r.status == ST_BAD_PROGRAM, r.describe()
    assert r.stdout == b""
    assert_one_message(r, p)


def test_dynamically_linked():
    true = shutil.which("true") or "/bin/true"
    with open(true, "rb") as f:
        head = f.read(4096)
    if b"ld-linux" not in head and b"/lib" not in head:
        pytest.skip(f"{true} does not look dynamically linked")
    r = run(true)
    assert r.status == ST_BAD_PROGRAM, r.describe()
    assert_one_message(r, true, "dynamically linked", "ld-linux")


def test_dynamically_linked_built_here(tmp_path):
    """A dynamically linked program compiled on the spot, if gcc is around."""
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("no gcc")
    src = tmp_path / "dyn.c"
    src.write_text("int main(void) { return 0; }\n")
    exe = tmp_path / "dyn"
    subprocess.run([gcc, "-o", str(exe), str(src)], check=True)
    r = run(exe)
    assert r.status == ST_BAD_PROGRAM, r.describe()
    assert_one_message(r, exe, "dynamically linked")


def test_aarch64_elf(prog, tmp_path):
    p = patched(prog, tmp_path / "arm64", 18, struct.pack("<H", 183))  # e_machine = EM_AARCH64
    r = run(p)
    assert r.status == ST_BAD_PROGRAM, r.describe()
    assert_one_message(r, p, "aarch64", "x86-64")


def test_32bit_elf(musl_prog, tmp_path):
    p = patched(musl_prog, tmp_path / "elf32", 4, b"\x01")  # EI_CLASS = ELFCLASS32
    r = run(p)
    assert r.status == ST_BAD_PROGRAM, r.describe()
    assert_one_message(r, p, "64-bit")


def test_big_endian_elf(musl_prog, tmp_path):
    p = patched(musl_prog, tmp_path / "elfbe", 5, b"\x02")  # EI_DATA = ELFDATA2MSB
    r = run(p)
    assert r.status == ST_BAD_PROGRAM, r.describe()
    assert_one_message(r, p, "little-endian")


def test_relocatable_object(musl_prog, tmp_path):
    p = patched(musl_prog, tmp_path / "rel", 16, struct.pack("<H", 1))  # e_type = ET_REL
    r = run(p)
    assert r.status == ST_BAD_PROGRAM, r.describe()
    assert_one_message(r, p, "not an executable")


def test_entry_outside_text(musl_prog, tmp_path):
    p = patched(musl_prog, tmp_path / "badentry", 24, struct.pack("<Q", 0x10))  # e_entry
    r = run(p)
    assert r.status == ST_BAD_PROGRAM, r.describe()
    assert_one_message(r, p, "entry point")


def test_missing_program(tmp_path):
    p = tmp_path / "no-such-program"
    r = run(p, "arg")
    assert r.status == ST_NOT_FOUND, r.describe()
    assert_one_message(r, p, "No such file or directory")


def test_missing_program_bare_name():
    """PROGRAM is a path, never looked up in $PATH."""
    r = run("nubis-test-musl", "hello")
    assert r.status == ST_NOT_FOUND, r.describe()


def test_directory_as_program(tmp_path):
    r = run(tmp_path)
    assert r.status == ST_BAD_PROGRAM, r.describe()
    assert_one_message(r, tmp_path, "not a regular file")


@pytest.mark.parametrize("args", [
    ["--memory", "3M"],       # below 4M
    ["--memory", "5M"],       # not a multiple of 2M
    ["--memory", "65G"],      # above 64G
    ["--memory", "lots"],
    ["--memory", ""],
    ["--timeout", "abc"],
    ["--timeout", "-1s"],
    ["--channel", "nonsense"],
    ["--env", "NOEQUALS"],
    ["--env", "=value"],
    ["--bogus-option"],
])
def test_bad_options(musl_prog, args):
    r = run(*args, musl_prog, "hello")
    assert r.status == ST_USAGE, r.describe()
    assert r.stdout == b"", "the program must not run"
    assert r.stderr.strip() != ""


def test_missing_program_argument():
    r = run()
    assert r.status == ST_USAGE, r.describe()
    assert "missing PROGRAM" in r.stderr


def test_memory_too_small_for_program(glibc_prog):
    """Accepted by option parsing, refused once the program is known."""
    r = run("--memory", "4M", glibc_prog, "hello")
    assert r.status == ST_USAGE, r.describe()
    assert_one_message(r, glibc_prog, "too small")


def test_unknown_subcommand():
    r = subprocess.run([str(NUBIS), "no-such-subcommand"], capture_output=True, timeout=60)
    assert r.returncode != 0


# ------------------------------------------------- a failed start has no side effects


@pytest.mark.parametrize("bad", ["missing", "dynamic"])
def test_failed_start_leaves_write_channel_alone(tmp_path, bad):
    out = tmp_path / "precious.txt"
    out.write_text("important data\n")
    p = tmp_path / "no-such-program" if bad == "missing" else shutil.which("true")
    r = run("--channel", f"/out={out}:w", p)
    assert r.status in (ST_NOT_FOUND, ST_BAD_PROGRAM), r.describe()
    assert out.read_text() == "important data\n"


def _huge_argv(slack: int):
    """PROGRAM and arguments whose strings end `slack` bytes above the
    bottom of the 1 MiB initial-stack buffer program.c uses for the default
    --memory 64M. argc + envc is even, so the argv/envp/auxv vector has an
    odd number of words and needs 8 bytes of padding: slack 0..15 once made
    fnvm_stack_build write below its buffer and crash nubis (SIGSEGV)."""
    prog = str(guest_path("musl"))
    cap = 1 << 20
    # end marker, execfn (= argv[0]), "x86_64", AT_RANDOM, argv[0], "args"
    fixed = 8 + (len(prog) + 1) + 7 + 16 + (len(prog) + 1) + len("args") + 1
    rest = cap - slack - fixed
    n = 8  # argc = 10
    each = rest // n - 1
    last = rest - (n - 1) * (each + 1) - 1
    return prog, ["args"] + ["x" * each] * (n - 1) + ["y" * last]


def test_huge_argv_that_does_not_fit():
    """Arguments too large for the initial stack: a clean usage error."""
    prog, args = _huge_argv(-16)
    r = run(prog, *args)
    assert r.status == ST_USAGE, r.describe()
    assert_one_message(r, prog, "do not fit")


def test_huge_argv_that_fits():
    prog, args = _huge_argv(1024)
    r = run(prog, *args)
    assert r.status == 0, r.describe()
    assert r.kv["argc"] == "10"
    assert r.kv["argv[9]"] == args[-1]


@pytest.mark.parametrize("slack", [0, 1, 8, 15, 16, 24])
def test_huge_argv_at_the_edge(slack):
    """Strings that leave no room for the vector: refused cleanly, never a
    crash of the monitor."""
    prog, args = _huge_argv(slack)
    r = run(prog, *args)
    assert r.status == ST_USAGE, r.describe()
    assert_one_message(r, prog, "do not fit")


def test_failed_channel_removes_created_files_and_keeps_others(tmp_path):
    keep = tmp_path / "keep.txt"
    keep.write_text("important data\n")
    new = tmp_path / "new.txt"
    r = run("--channel", f"/a={keep}:w", "--channel", f"/b={new}:w",
            "--channel", f"/c={tmp_path / 'missing'}:r", guest_path("musl"), "hello")
    assert r.status == ST_CHANNEL, r.describe()
    assert keep.read_text() == "important data\n"
    assert not new.exists()

"""Channels: the only host files a program can reach."""

import os

import pytest

from conftest import ST_CHANNEL, ST_NOT_FOUND, ST_OUTPUT_LIMIT, ST_USAGE, assert_one_message, run


@pytest.fixture
def payload():
    # binary, NULs included, not a multiple of the 64 KiB copy buffer
    return os.urandom(300_001)


def test_copy_read_to_write(prog, tmp_path, payload):
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    src.write_bytes(payload)
    r = run("--channel", f"/in={src}:r", "--channel", f"/out={dst}:w", prog, "copy", "/in", "/out")
    assert r.status == 0, r.describe()
    assert r.out == f"copied={len(payload)}\n"
    assert dst.read_bytes() == payload
    assert src.read_bytes() == payload  # input untouched


def test_write_channel_truncates(musl_prog, tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.write_bytes(b"short\n")
    dst.write_bytes(b"a much longer previous content\n" * 100)
    r = run("--channel", f"/in={src}:r", "--channel", f"/out={dst}:w", musl_prog,
            "copy", "/in", "/out")
    assert r.status == 0, r.describe()
    assert dst.read_bytes() == b"short\n"


def test_write_channel_creates_file(musl_prog, tmp_path):
    src, dst = tmp_path / "in", tmp_path / "new-out"
    src.write_bytes(b"x" * 10)
    r = run("--channel", f"/in={src}:r", "--channel", f"/out={dst}:w", musl_prog,
            "copy", "/in", "/out")
    assert r.status == 0, r.describe()
    assert dst.read_bytes() == b"x" * 10


def test_append_channel(prog, tmp_path):
    src, dst = tmp_path / "in", tmp_path / "log"
    src.write_bytes(b"line\n")
    dst.write_bytes(b"before\n")
    args = ["--channel", f"/in={src}:r", "--channel", f"/log={dst}:a", prog, "copy", "/in", "/log",
            "append"]
    for _ in range(2):
        r = run(*args)
        assert r.status == 0, r.describe()
    assert dst.read_bytes() == b"before\nline\nline\n"


def test_channel_guest_path_normalized(musl_prog, tmp_path):
    """Declared and opened paths are compared after normalization."""
    src, dst = tmp_path / "in", tmp_path / "out"
    src.write_bytes(b"abc")
    r = run("--channel", f"/data/../in//={src}:r", "--channel", f"/o/./out={dst}:w", musl_prog,
            "copy", "/x/../../in", "//o/out/.")
    assert r.status == 0, r.describe()
    assert dst.read_bytes() == b"abc"


@pytest.mark.parametrize("path", ["/etc/passwd", "/proc/self/maps", "/dev/null", "/bin/sh",
                                  "/tmp", "relative/file"])
def test_host_files_invisible(prog, path):
    r = run(prog, "open", path)
    assert r.status == 0, r.describe()
    assert r.out == "errno=ENOENT\n", r.describe()


def test_host_file_invisible_even_if_it_is_a_channel_host_path(musl_prog, tmp_path):
    """Only the guest path of a channel opens it, not its host path."""
    f = tmp_path / "visible"
    f.write_text("data")
    r = run("--channel", f"/in={f}:r", musl_prog, "open", str(f))
    assert r.out == "errno=ENOENT\n", r.describe()
    r = run("--channel", f"/in={f}:r", musl_prog, "open", "/in")
    assert r.out == "ok\n", r.describe()


def test_read_channel_not_writable(prog, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"A")
    b.write_bytes(b"keep me")
    r = run("--channel", f"/a={a}:r", "--channel", f"/b={b}:r", prog, "copy", "/a", "/b")
    assert r.status == 2, r.describe()
    assert "open /b: Permission denied" in r.stderr, r.describe()
    assert b.read_bytes() == b"keep me"


def test_write_channel_not_readable(musl_prog, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r = run("--channel", f"/a={a}:w", "--channel", f"/b={b}:w", musl_prog, "copy", "/a", "/b")
    assert r.status == 2, r.describe()
    assert "open /a: Permission denied" in r.stderr, r.describe()


def test_cannot_create_undeclared_file(musl_prog, tmp_path):
    src = tmp_path / "in"
    src.write_bytes(b"data")
    r = run("--channel", f"/in={src}:r", musl_prog, "copy", "/in", "/newfile", cwd=tmp_path)
    assert r.status == 2, r.describe()
    assert "open /newfile: Permission denied" in r.stderr, r.describe()
    assert sorted(os.listdir(tmp_path)) == ["in"]


def test_channel_output_limit(musl_prog, tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.write_bytes(b"z" * 300_000)
    r = run("--output-limit", "100K", "--channel", f"/in={src}:r", "--channel", f"/out={dst}:w",
            musl_prog, "copy", "/in", "/out")
    assert r.status == ST_OUTPUT_LIMIT, r.describe()
    assert_one_message(r, musl_prog, "output limit", "/out")
    assert dst.read_bytes() == b"z" * 102400


@pytest.mark.parametrize("spec", [
    "nonsense", "/in", "/in=", "/in=x", "/in=/tmp/x:q", "/in=/tmp/x:rw", "in=/tmp/x:r",
    "=/tmp/x:r", "/in=:r", "/=/tmp/x:r", "/..=/tmp/x:r",
])
def test_bad_channel_spec(musl_prog, spec):
    r = run("--channel", spec, musl_prog, "hello")
    assert r.status == ST_USAGE, r.describe()
    assert r.stdout == b""
    assert "--channel" in r.stderr or "channel" in r.stderr, r.describe()


def test_channel_declared_twice(musl_prog, tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    r = run("--channel", f"/in={f}:r", "--channel", f"/x/../in={f}:r", musl_prog, "hello")
    assert r.status == ST_USAGE, r.describe()
    assert_one_message(r, musl_prog, "declared twice")


@pytest.mark.parametrize("guest", ["/dev/stdin", "/dev/stdout", "/dev/stderr"])
def test_channel_reserved_path(musl_prog, tmp_path, guest):
    f = tmp_path / "f"
    f.write_text("")
    r = run("--channel", f"{guest}={f}:r", musl_prog, "hello")
    assert r.status == ST_USAGE, r.describe()
    assert_one_message(r, musl_prog, "reserved")


def test_channel_host_directory(musl_prog, tmp_path):
    r = run("--channel", f"/in={tmp_path}:r", musl_prog, "hello")
    assert r.status == ST_CHANNEL, r.describe()
    assert_one_message(r, musl_prog, "is a directory")


def test_missing_read_channel_file(musl_prog, tmp_path):
    """A missing host file for a read channel stops the run before it starts,
    with its own status (119, not 127: that one is a missing PROGRAM) and a
    message naming the channel and the host file."""
    missing = tmp_path / "does-not-exist"
    r = run("--channel", f"/in={missing}:r", musl_prog, "hello")
    assert r.stdout == b"", "the program must not run"
    assert r.status == ST_CHANNEL, r.describe()
    assert_one_message(r, musl_prog, "channel /in", str(missing), "No such file")


def test_write_channel_in_missing_directory(musl_prog, tmp_path):
    missing = tmp_path / "no-dir" / "out"
    r = run("--channel", f"/out={missing}:w", musl_prog, "hello")
    assert r.stdout == b""
    assert r.status == ST_CHANNEL, r.describe()
    assert_one_message(r, musl_prog, "channel /out", str(missing))

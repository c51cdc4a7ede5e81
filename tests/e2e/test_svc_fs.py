"""Root filesystem and file descriptors of service VMs (src/svc/vfs.c, fs.c,
io.c, fdtab.c): real guests (musl and glibc builds of tests/guest/fs-test.c)
in `nubis run --rootfs LOWER... --upper DIR`.

- every family of file-system calls, checked inside the guest against
  Linux's behaviour (files, dirs, pipes/poll/epoll/eventfd/timerfd, locks,
  /dev and /proc);
- the union seen from inside: whiteouts and opaque directories of image
  layers, copy-up leaving the layers untouched, a whiteout written for a
  deleted lower file, the writable layer surviving a second run;
- volumes read-write and read-only, the disk quota (ENOSPC);
- confinement: `..`, absolute and relative symlinks (from the image and made
  by the guest), /proc/self/root, and a guest thread swapping a directory for
  a symlink while another resolves through it, never reach a host file;
- bad configurations: a clear message, no crash.

Every test runs with the normal monitor and, if built, the ASan/UBSan one
(build-asan, `make asan`).
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, NUBIS, REPO, guest_program

ASAN_BUILD = Path(os.environ.get("NUBIS_ASAN_BUILD", REPO / "build-asan"))
MONITORS = [NUBIS] + ([ASAN_BUILD / "nubis"] if (ASAN_BUILD / "nubis").exists() else [])
FS_LIBCS = ["musl", "glibc"]
SECRET = "HOSTSECRET-fs-e2e"


def fs_test(libc: str) -> Path:
    return guest_program(f"fs-test-{libc}")


@pytest.fixture(params=MONITORS, ids=lambda p: p.parent.name)
def monitor(request) -> Path:
    return request.param


@pytest.fixture(params=FS_LIBCS)
def libc(request) -> str:
    return request.param


@pytest.fixture
def layers(tmp_path, libc):
    """Two image layers as an OCI unpacker leaves them (top first), with
    whiteouts and an opaque directory, plus a host secret outside them."""
    top, bottom = tmp_path / "l1", tmp_path / "l2"
    for d in ["bin", "etc", "data", "opq", "tmp"]:
        (bottom / d).mkdir(parents=True)
    for d in ["data", "opq", "etc"]:
        (top / d).mkdir(parents=True)
    shutil.copy(fs_test(libc), bottom / "bin" / "fs-test")
    (bottom / "etc" / "passwd").write_text("GUEST\n")
    (top / "etc" / "passwd").write_text("GUEST\n")
    (bottom / "data" / "a.txt").write_text("a-bottom")
    (bottom / "data" / "b.txt").write_text("b-bottom")
    (bottom / "data" / "c.txt").write_text("c-bottom")
    (bottom / "opq" / "keep").write_text("hidden")
    (top / "data" / "a.txt").write_text("a-top")
    (top / "data" / ".wh.b.txt").write_text("")
    (top / "opq" / ".wh..wh..opq").write_text("")
    (top / "opq" / "new").write_text("new")
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    return {"top": top, "bottom": bottom, "upper": tmp_path / "upper", "secret": secret,
            "tmp": tmp_path}


def run_fs(monitor, L, args, opts=(), timeout=120, upper=True):
    argv = [str(monitor), "run", "--rootfs", str(L["top"]), "--rootfs", str(L["bottom"])]
    if upper:
        argv += ["--upper", str(L["upper"])]
    argv += [str(o) for o in opts] + ["/bin/fs-test"] + [str(a) for a in args]
    env = dict(os.environ, ASAN_OPTIONS="abort_on_error=1:detect_leaks=0",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                       env=env)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    assert p.returncode >= 0, f"monitor killed by signal {-p.returncode}\n{err}"
    assert "Sanitizer" not in err and "runtime error" not in err, err
    assert SECRET not in out, f"host secret reached:\n{out}"
    return p.returncode, out, err


def kv(out: str) -> dict:
    d = {}
    for line in out.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            d[k] = v
    return d


@pytest.mark.parametrize("family", ["files", "dirs", "pipes", "locks", "dev"])
def test_family(monitor, layers, family):
    st, out, err = run_fs(monitor, layers, [family])
    assert st == 0 and f"fs-test {family}: ok" in out, f"status {st}\n{out}\n{err}"


def test_union_view_and_copy_up(monitor, layers):
    L = layers
    st, out, err = run_fs(monitor, L, ["ls", "/data", "/opq", "/"])
    v = kv(out)
    assert v["/data"] == "a.txt,c.txt", out  # .wh.b.txt hides b.txt
    assert v["/opq"] == "new", out  # opaque: keep is hidden
    assert v["/"].split(",") == sorted(["bin", "data", "dev", "etc", "opq", "proc", "tmp"]), out
    st, out, err = run_fs(monitor, L, ["cat", "/data/a.txt", "/data/b.txt", "/opq/keep"])
    assert "/data/a.txt=a-top" in out, out
    assert "/data/b.txt: error No such file or directory" in out, out
    assert "/opq/keep: error No such file or directory" in out, out
    # a write copies up; the layers stay as they were
    st, out, err = run_fs(monitor, L, ["write", "/data/c.txt", "changed"])
    assert st == 0, out + err
    assert (L["bottom"] / "data" / "c.txt").read_text() == "c-bottom"
    assert (L["upper"] / "data" / "c.txt").read_text() == "changed"
    names = sorted(os.listdir(L["upper"]))
    assert not [n for n in names if n.startswith(".wh..wh..cu")], names  # no copy-up leftovers


def test_upper_survives_and_whiteout(monitor, layers):
    L = layers
    st, out, err = run_fs(monitor, L, ["write", "/data/new.txt", "kept across runs"])
    assert st == 0, out + err
    st, out, err = run_fs(monitor, L, ["rm", "/data/a.txt", "/data/c.txt"])
    assert "/data/a.txt=removed" in out and "/data/c.txt=removed" in out, out
    # second run with the same writable layer
    st, out, err = run_fs(monitor, L, ["cat", "/data/new.txt", "/data/a.txt"])
    assert "/data/new.txt=kept across runs" in out, out
    assert "/data/a.txt: error No such file or directory" in out, out
    st, out, err = run_fs(monitor, L, ["ls", "/data"])
    assert kv(out)["/data"] == "new.txt", out
    assert (L["upper"] / "data" / ".wh.a.txt").exists()
    assert (L["upper"] / "data" / ".wh.c.txt").exists()
    assert (L["top"] / "data" / "a.txt").read_text() == "a-top"
    assert (L["bottom"] / "data" / "c.txt").read_text() == "c-bottom"
    # rmdir + mkdir over a lower directory: the new one is opaque
    st, out, err = run_fs(monitor, L, ["rm", "/data/new.txt", "/data"])
    assert "/data=removed" in out, out
    st, out, err = run_fs(monitor, L, ["mkdir", "/data"])
    st, out, err = run_fs(monitor, L, ["ls", "/data"])
    assert kv(out)["/data"] == "", out
    assert (L["upper"] / "data" / ".wh..wh..opq").exists()
    # without --upper the root is read-only
    st, out, err = run_fs(monitor, L, ["write", "/x", "y"], upper=False)
    assert st != 0 and "Read-only file system" in out, out


def test_volumes(monitor, layers):
    L = layers
    rw, ro = L["tmp"] / "vol-rw", L["tmp"] / "vol-ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "r.txt").write_text("read only")
    opts = ["--volume", f"{rw}:/srv/rw", "--volume", f"{ro}:/srv/ro:ro"]
    st, out, err = run_fs(monitor, L, ["write", "/srv/rw/w.txt", "to the host"], opts)
    assert st == 0, out + err
    assert (rw / "w.txt").read_text() == "to the host"
    st, out, err = run_fs(monitor, L, ["write", "/srv/ro/w.txt", "no"], opts)
    assert st != 0 and "Read-only file system" in out, out
    assert not (ro / "w.txt").exists()
    st, out, err = run_fs(monitor, L, ["cat", "/srv/ro/r.txt"], opts)
    assert "/srv/ro/r.txt=read only" in out, out
    st, out, err = run_fs(monitor, L, ["ls", "/srv"], opts)
    assert kv(out)["/srv"] == "ro,rw", out
    # a symlink inside a volume cannot leave it
    os.symlink(f"../../../../../../{L['secret']}", rw / "out")
    os.symlink(str(L["secret"]), rw / "abs")
    st, out, err = run_fs(monitor, L, ["cat", "/srv/rw/out", "/srv/rw/abs"], opts)
    assert "error No such file or directory" in out, out


def test_quota(monitor, layers):
    st, out, err = run_fs(monitor, layers, ["quota", "/big"], ["--disk-quota", "4M"])
    assert st == 0 and "fs-test quota: ok" in out, out + err
    v = kv(out)
    assert int(v["errno"]) == 28  # ENOSPC
    assert 3 * 1024 * 1024 <= int(v["written"]) <= 4 * 1024 * 1024, out
    assert int(v["statfs_total"]) == 4 * 1024 * 1024, out
    assert 7000 < int(v["names"]) <= 8192, out  # max(4M / 512, 1024) names
    usage = sum(f.stat().st_blocks * 512 for f in layers["upper"].rglob("*") if f.is_file())
    assert usage <= 4 * 1024 * 1024 + 65536


def test_confinement(monitor, layers):
    L = layers
    # symlinks planted in an image layer, pointing at the host's files
    os.symlink(str(L["secret"]), L["top"] / "abs-secret")
    os.symlink("../../../../../../../../" + str(L["secret"]), L["top"] / "rel-secret")
    os.symlink("/", L["top"] / "rootlink")
    os.symlink("/proc/self/root/../../..", L["top"] / "procroot")
    st, out, err = run_fs(monitor, L, ["cat", "/abs-secret", "/rel-secret",
                                       f"/rootlink/..{L['secret']}",
                                       f"/procroot{L['secret']}", "/procroot/etc/passwd",
                                       "/rootlink/../../etc/passwd"])
    v = kv(out)
    assert v.get("/procroot/etc/passwd") == "GUEST", out
    assert v.get("/rootlink/../../etc/passwd") == "GUEST", out
    # from inside: .., symlinks the guest makes, and a racing thread
    st, out, err = run_fs(monitor, L, ["escape", L["secret"]], timeout=300)
    assert st == 0 and "fs-test escape: ok" in out, out + err
    assert int(kv(out)["race_ok"]) > 0, out
    # nothing was written outside the writable layer
    assert sorted(p.name for p in L["tmp"].iterdir()) == ["l1", "l2", "outside", "upper"]
    assert (L["secret"]).read_text() == SECRET + "\n"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hostile_calls(monitor, layers, seed):
    """Random, mostly invalid fs calls: the monitor survives, reports no
    sanitizer error, and writes nothing outside the writable layer."""
    L = layers
    before = {p: p.stat().st_mtime_ns for p in list(L["top"].rglob("*")) +
              list(L["bottom"].rglob("*"))}
    st, out, err = run_fs(monitor, L, ["fuzz", "4000", seed], ["--disk-quota", "16M"],
                          timeout=300)
    assert st == 0 and "fs-test fuzz: ok" in out, f"status {st}\n{out[-2000:]}\n{err[-3000:]}"
    after = {p: p.stat().st_mtime_ns for p in list(L["top"].rglob("*")) +
             list(L["bottom"].rglob("*"))}
    assert before == after, "an image layer changed"
    assert sorted(p.name for p in L["tmp"].iterdir()) == ["l1", "l2", "outside", "upper"]
    usage = sum(f.stat().st_blocks * 512 for f in L["upper"].rglob("*") if f.is_file())
    assert usage <= 16 * 1024 * 1024 + 65536


def test_stdio_flags_not_leaked(monitor, layers):
    """The monitor makes its fds non-blocking; the caller's pipes and
    terminal (shared open file descriptions) must stay as they were."""
    L = layers
    check = ("import fcntl, os, sys; "
             "print('stdin', 'nonblock' if fcntl.fcntl(0, fcntl.F_GETFL) & os.O_NONBLOCK "
             "else 'blocking', 'stdout', 'nonblock' if fcntl.fcntl(1, fcntl.F_GETFL) & "
             "os.O_NONBLOCK else 'blocking', file=sys.stderr)")
    script = (f"'{monitor}' run --rootfs '{L['top']}' --rootfs '{L['bottom']}' /bin/fs-test "
              f"cat /etc/passwd; /usr/bin/python3 -c \"{check}\"")
    p = subprocess.run(["sh", "-c", script], input=b"", capture_output=True, timeout=120)
    err = p.stderr.decode(errors="replace")
    assert "/etc/passwd=GUEST" in p.stdout.decode(), p.stdout
    assert "stdin blocking stdout blocking" in err, err


@pytest.mark.parametrize("opts,needle", [
    (["--volume", "/nonexistent-nubis-dir:/v"], "/nonexistent-nubis-dir"),
    (["--volume", "/tmp:relative"], "relative"),
    (["--workdir", "/no/such/dir"], "/no/such/dir"),
])
def test_bad_config(monitor, layers, opts, needle):
    st, out, err = run_fs(monitor, layers, ["ls", "/"], opts)
    assert st != 0, out
    assert needle in err, err
    assert "fs-test" not in out


def test_missing_layer(monitor, tmp_path):
    argv = [str(monitor), "run", "--rootfs", str(tmp_path / "missing"), "/bin/x"]
    p = subprocess.run(argv, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    err = p.stderr.decode(errors="replace")
    assert p.returncode not in (0,) and p.returncode > 0, err
    assert "missing" in err and "Sanitizer" not in err, err


def test_mmap_shared_and_private(monitor, layers):
    """File mappings (tests/guest/fs-test.c t_mmap): MAP_SHARED stores reach
    the host file and other mappings, file writes show in mappings,
    MAP_PRIVATE stays private, msync, munmap/MAP_FIXED/mremap over shared
    mappings, access modes, truncation under a mapping. Then the host file in
    the writable layer holds what the guest stored through a mapping."""
    L = layers
    st, out, err = run_fs(monitor, L, ["mmap", "/tmp"])
    assert st == 0 and "fs-test mmap: ok" in out, f"status {st}\n{out}\n{err}"
    data = (L["upper"] / "tmp" / "mapped").read_bytes()
    assert data[:19] == b"HOST-CHECK-VIA-MMAP", data[:32]
    assert len(data) == 4096

"""Networking of service VMs (src/svc/net.c): real guests (musl and glibc
builds of tests/guest/net-test.c) in `nubis run --rootfs DIR`.

- published TCP (IPv4, IPv6) and UDP listeners reached from the host;
- a guest client reaching an --allow-connect host service;
- everything else refused: other host listeners, other addresses, UDP to
  arbitrary ports, IPv6 and IPv4-mapped forms, another VM's listeners;
- loopback TCP/UDP inside the VM, Unix sockets, SCM_RIGHTS, SIGPIPE,
  options, and a hostile guest (also under the ASan monitor if built).
"""
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import BUILD, NUBIS, REPO, guest_program

ASAN_BUILD = Path(os.environ.get("NUBIS_ASAN_BUILD", REPO / "build-asan"))
NET_LIBCS = ["musl", "glibc"]
START_TIMEOUT = 20


def net_test(libc: str) -> Path:
    return guest_program(f"net-test-{libc}")


@pytest.fixture(params=NET_LIBCS)
def rootfs(request, tmp_path) -> Path:
    """A root filesystem with /net-test and an empty /tmp."""
    root = tmp_path / f"root-{request.param}"
    (root / "tmp").mkdir(parents=True)
    shutil.copy(net_test(request.param), root / "net-test")
    return root


def free_port(kind=socket.SOCK_STREAM, family=socket.AF_INET) -> int:
    with socket.socket(family, kind) as s:
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        return s.getsockname()[1]


def svc_argv(root, opts, args, monitor=None):
    return [str(monitor or NUBIS), "run", "--rootfs", str(root), *map(str, opts), "/net-test",
            *map(str, args)]


def svc_run(root, opts, args, timeout=60, monitor=None, env=None):
    argv = svc_argv(root, opts, args, monitor)
    p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                       env=env)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


class Guest:
    """A service VM running in the background; lines of its stdout."""

    def __init__(self, root, opts, args):
        self.argv = svc_argv(root, opts, args)
        self.p = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL)
        self.lines = []

    def wait_line(self, prefix, timeout=START_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.p.stdout.readline().decode(errors="replace")
            if not line:
                break
            self.lines.append(line)
            if line.startswith(prefix):
                return line.strip()
        self.kill()
        raise AssertionError(f"no {prefix!r} line from {' '.join(self.argv)}: "
                             f"{self.lines} {self.p.stderr.read().decode(errors='replace')}")

    def finish(self, timeout=30):
        out, err = self.p.communicate(timeout=timeout)
        return self.p.returncode, "".join(self.lines) + out.decode(errors="replace"), \
            err.decode(errors="replace")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=10)


def kv(text: str) -> dict:
    d = {}
    for line in text.splitlines():
        for part in line.split():
            if "=" in part:
                k, v = part.split("=", 1)
                d[k] = v
    return d


def echo_roundtrip(family, addr, port, payload: bytes) -> bytes:
    with socket.socket(family, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect((addr, port))
        got = bytearray()

        def reader():
            while True:
                b = c.recv(65536)
                if not b:
                    break
                got.extend(b)

        t = threading.Thread(target=reader)
        t.start()
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        t.join(20)
        return bytes(got)


# ---- inside one VM ---------------------------------------------------------

@pytest.mark.parametrize("mode", ["loopback", "threads", "unix", "sigpipe", "sockopt", "hostile"])
def test_in_vm(rootfs, tmp_path, mode):
    args = [mode, "vm"] if mode == "sockopt" else [mode]
    rc, out, err = svc_run(rootfs, ["--upper", tmp_path / "upper"], args)
    assert rc == 0, f"rc={rc}\n{out}\n{err}"
    assert kv(out).get(mode) == "ok", out + err
    if mode == "unix":
        assert kv(out)["path_file"] == "sock", out  # a socket file in the writable layer


def test_unix_path_readonly_root(rootfs):
    """Without a writable layer, binding a socket path is EROFS, as on Linux."""
    rc, out, err = svc_run(rootfs, [], ["unix"])
    assert kv(out).get("path") == "EROFS", out + err


def test_unix_no_escape(rootfs, tmp_path):
    """A host socket file is not reachable by its host path, a symlink or '..'."""
    hostsock = Path("/tmp") / f"nubis-net-test-{os.getpid()}.sock"
    hostsock.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as h:
        h.bind(str(hostsock))
        h.listen(4)
        h.setblocking(False)
        try:
            rc, out, err = svc_run(rootfs, ["--upper", tmp_path / "upper"],
                                   ["unix-escape", hostsock])
            assert rc == 0, out + err
            d = kv(out)
            for k in ("direct", "symlink", "relative"):
                assert d[k] != "ok", out
            with pytest.raises(BlockingIOError):
                h.accept()
        finally:
            hostsock.unlink(missing_ok=True)


# ---- published ports -------------------------------------------------------

@pytest.mark.parametrize("fam", ["v4", "v6"])
def test_publish_tcp(rootfs, fam):
    family = socket.AF_INET if fam == "v4" else socket.AF_INET6
    hp = free_port(family=family)
    host = "127.0.0.1" if fam == "v4" else "[::1]"
    g = Guest(rootfs, ["--publish", f"{host}:{hp}:80"],
              ["tcp-echo", "80"] + (["v6"] if fam == "v6" else []) + ["2"])
    try:
        line = g.wait_line("listening=")
        assert line.endswith(":80"), line  # the guest sees its own port
        addr = "127.0.0.1" if fam == "v4" else "::1"
        assert echo_roundtrip(family, addr, hp, b"hello") == b"hello"
        big = os.urandom(4 << 20)
        assert echo_roundtrip(family, addr, hp, big) == big
        rc, out, err = g.finish()
    finally:
        g.kill()
    assert rc == 0, out + err
    assert kv(out)["conn1"] == str(len(big))


def test_publish_udp(rootfs):
    hp = free_port(socket.SOCK_DGRAM)
    g = Guest(rootfs, ["--publish", f"127.0.0.1:{hp}:53/udp"], ["udp-echo", "53", "2"])
    try:
        g.wait_line("listening=")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(10)
            for msg in (b"one", b"two"):
                c.sendto(msg, ("127.0.0.1", hp))
                data, src = c.recvfrom(100)
                assert data == msg and src == ("127.0.0.1", hp)
        rc, out, err = g.finish()
    finally:
        g.kill()
    assert rc == 0, out + err
    assert "sent=ok" in out


def test_unpublished_not_reachable(rootfs):
    """Without --publish, a guest listener is not on the guest's port on the host."""
    port = free_port()
    g = Guest(rootfs, [], ["tcp-echo", str(port)])
    try:
        g.wait_line("listening=")
        with socket.socket() as c:
            c.settimeout(2)
            with pytest.raises(OSError):
                c.connect(("127.0.0.1", port))
    finally:
        g.kill()


# ---- --allow-connect and denial --------------------------------------------

class HostEcho:
    """A host TCP echo server; counts accepted connections."""

    def __init__(self, family=socket.AF_INET, addr="127.0.0.1", port=0):
        self.s = socket.socket(family, socket.SOCK_STREAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind((addr, port))
        self.s.listen(16)
        self.port = self.s.getsockname()[1]
        self.accepted = 0
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.accepted += 1
            with c:
                c.settimeout(5)
                try:
                    while True:
                        b = c.recv(4096)
                        if not b:
                            break
                        c.sendall(b)
                except OSError:
                    pass

    def close(self):
        self.s.close()


def test_allow_connect(rootfs):
    srv = HostEcho()
    try:
        rc, out, err = svc_run(rootfs, ["--allow-connect", f"127.0.0.1:{srv.port}"],
                               ["client", "127.0.0.1", srv.port, "hello-host"])
        assert rc == 0, out + err
        d = kv(out)
        assert d["connect"] == "ok" and d["reply"] == "hello-host", out
        assert d["peer"] == f"127.0.0.1:{srv.port}"
        assert srv.accepted == 1
    finally:
        srv.close()


def test_allow_connect_udp(rootfs):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]

        def echo():
            data, src = u.recvfrom(100)
            u.sendto(data.upper(), src)

        t = threading.Thread(target=echo, daemon=True)
        t.start()
        rc, out, err = svc_run(rootfs, ["--allow-connect", f"127.0.0.1:{port}/udp"],
                               ["client", "127.0.0.1", port, "dgram", "udp"])
        assert rc == 0, out + err
        assert kv(out)["reply"] == "DGRAM", out


def test_publish_udp_v6(rootfs):
    hp = free_port(socket.SOCK_DGRAM, socket.AF_INET6)
    g = Guest(rootfs, ["--publish", f"[::1]:{hp}:53/udp"], ["udp-echo", "53", "v6", "1"])
    try:
        g.wait_line("listening=")
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as c:
            c.settimeout(10)
            c.sendto(b"six", ("::1", hp))
            data, src = c.recvfrom(100)
            assert data == b"six" and src[1] == hp
        rc, out, err = g.finish()
    finally:
        g.kill()
    assert rc == 0, out + err


def test_denied_destinations(rootfs):
    allowed = HostEcho()
    other = HostEcho()
    other6 = HostEcho(socket.AF_INET6, "::1", other.port)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    up = udp.getsockname()[1]
    try:
        cases = [
            (["127.0.0.1", other.port], "ECONNREFUSED"),
            (["127.0.0.1", other.port, "tcp", "v6sock"], "ECONNREFUSED"),  # ::ffff:127.0.0.1
            (["::1", other.port], "ECONNREFUSED"),
            (["0.0.0.0", other.port], "ECONNREFUSED"),
            (["127.0.0.2", allowed.port], "ECONNREFUSED"),
            (["::1", allowed.port], "ECONNREFUSED"),
            (["192.0.2.1", 80], "ECONNREFUSED"),
            (["2001:db8::1", 443], "ECONNREFUSED"),
            (["127.0.0.1", up, "udp"], "ENETUNREACH"),
            (["127.0.0.1", up, "udp", "v6sock"], "ENETUNREACH"),
            (["127.0.0.1", allowed.port, "udp"], "ENETUNREACH"),  # allowed for TCP only
            (["8.8.8.8", 53, "udp"], "ENETUNREACH"),
            (["::1", 53, "udp"], "ENETUNREACH"),
            (["127.0.0.1", allowed.port], "ok"),  # the control: the allowed one works
        ]
        for args, want in cases:
            rc, out, err = svc_run(rootfs, ["--allow-connect", f"127.0.0.1:{allowed.port}/tcp"],
                                   ["try", *args])
            assert rc == 0, out + err
            assert kv(out).get("result") == want, (args, out, err)
        udp.settimeout(0.2)
        with pytest.raises(socket.timeout):
            udp.recv(10)
        assert other.accepted == 0 and other6.accepted == 0
        assert allowed.accepted == 1
    finally:
        for s in (allowed, other, other6):
            s.close()
        udp.close()


def host_ports_of(pid: int) -> set:
    """TCP ports the process @pid listens on (from `ss`)."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    ports = set()
    for line in out.splitlines():
        if f"pid={pid}," in line:
            m = re.search(r":(\d+)\s", line.split()[3] + " ")
            if m:
                ports.add(int(m.group(1)))
    return ports


def test_two_vms(rootfs, tmp_path):
    """Two VMs publish the same guest port on different host ports; neither
    reaches the other's published or unpublished listeners."""
    hp1, hp2 = free_port(), free_port()
    a = Guest(rootfs, ["--publish", f"127.0.0.1:{hp1}:80"], ["tcp-echo", "80", "1"])
    b = Guest(rootfs, ["--publish", f"127.0.0.1:{hp2}:80"], ["tcp-echo", "80", "1"])
    c = Guest(rootfs, [], ["hold", "7000"])
    try:
        a.wait_line("listening=")
        b.wait_line("listening=")
        c.wait_line("holding=")
        hidden = host_ports_of(c.p.pid)
        assert hidden, "the holding VM's listener is on some loopback port"
        targets = [(hp1, "a"), (hp2, "b"), (7000, "c")] + [(p, "c-real") for p in hidden]
        for port, what in targets:
            rc, out, err = svc_run(rootfs, [], ["try", "127.0.0.1", port])
            assert kv(out).get("result") == "ECONNREFUSED", (what, out, err)
        assert echo_roundtrip(socket.AF_INET, "127.0.0.1", hp1, b"A") == b"A"
        assert echo_roundtrip(socket.AF_INET, "127.0.0.1", hp2, b"B") == b"B"
        assert a.finish()[0] == 0 and b.finish()[0] == 0
    finally:
        for g in (a, b, c):
            g.kill()


def test_bad_publish_options(rootfs):
    for bad in ["127.0.0.1:80", "127.0.0.1:0:80", "x:80:80", "127.0.0.1:80:99999",
                "127.0.0.1:80:80/sctp"]:
        rc, out, err = svc_run(rootfs, ["--publish", bad], ["loopback"])
        assert rc != 0 and "publish" in err, (bad, rc, err)
    rc, out, err = svc_run(rootfs, ["--allow-connect", "10.0.0.1"], ["loopback"])
    assert rc != 0 and "allow-connect" in err, err


@pytest.mark.skipif(not (ASAN_BUILD / "nubis").exists(), reason="no ASan build of nubis")
def test_hostile_asan(rootfs):
    env = dict(os.environ, ASAN_OPTIONS="abort_on_error=1:detect_leaks=0",
               UBSAN_OPTIONS="halt_on_error=1")
    rc, out, err = svc_run(rootfs, [], ["hostile"], monitor=ASAN_BUILD / "nubis", env=env,
                           timeout=300)
    assert "Sanitizer" not in err and "runtime error" not in err, err
    assert rc == 0 and kv(out).get("hostile") == "ok", out + err

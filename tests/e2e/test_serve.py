"""End-to-end tests of `nubis serve`: HTTP in front of fresh function VMs."""
import hashlib
import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("NUBIS_BUILD", REPO / "build"))
NUBIS = BUILD / "nubis"
TEST_MUSL = BUILD / "tests/guest/nubis-test-musl"
LUA = BUILD / "guest/lua/lua"
EXAMPLES = REPO / "guest/examples"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Server:
    def __init__(self, tmp_path, args, listen=None):
        self.sock = str(tmp_path / "nubis.sock")
        self.listen = listen or f"unix:{self.sock}"
        self.log = open(tmp_path / "serve.log", "w+")
        self.proc = subprocess.Popen([str(NUBIS), "serve", "--listen", self.listen, *args],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.logtext()}")
            if "serving" in self.logtext():
                return
            time.sleep(0.02)
        raise AssertionError("server did not start: " + self.logtext())

    def logtext(self):
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text()

    def conn(self, timeout=30):
        if self.listen.startswith("tcp:"):
            host, port = self.listen[4:].rsplit(":", 1)
            return http.client.HTTPConnection(host, int(port), timeout=timeout)
        return UnixHTTPConnection(self.sock, timeout=timeout)

    def request(self, body=b"", method="POST", timeout=30):
        c = self.conn(timeout)
        c.request(method, "/", body=body)
        r = c.getresponse()
        data = r.read()
        headers = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, headers, data

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def server(tmp_path):
    started = []

    def start(args, listen=None):
        s = Server(tmp_path, args, listen)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lua_function(server):
    s = server(["--channel", f"/app/handler.lua={EXAMPLES / 'handler.lua'}:r", str(LUA), "/app/handler.lua"])
    status, h, body = s.request(b"nubis")
    assert status == 200
    assert h["x-nubis-status"] == "0" and h["x-nubis-outcome"] == "exited"
    text = body.decode()
    assert text.startswith("hello, nubis\n")
    assert "length=5" in text
    assert f"sha256={hashlib.sha256(b'nubis').hexdigest()}" in text
    assert int(h["x-nubis-duration-us"]) > 0


def test_parallel_requests_each_correct(server):
    s = server(["--workers", "2", "--queue", "256", str(TEST_MUSL), "cat"])
    results, errors = {}, []

    def client(k):
        try:
            for i in range(25):
                payload = f"client {k} request {i} ".encode() * (1 + i)
                status, h, body = s.request(payload)
                results[(k, i)] = (status, h.get("x-nubis-status"), body == payload)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(results) == 200
    assert all(v == (200, "0", True) for v in results.values()), \
        [k for k, v in results.items() if v != (200, "0", True)][:5]


def test_no_state_between_requests(server):
    # every request of a server gets a never-used VM: what one request writes
    # into memory is not there for the next one
    w = server([str(TEST_MUSL), "leak-write"])
    assert w.request()[2].strip() == b"wrote"
    w.stop()
    r = server([str(TEST_MUSL), "leak-read"])
    for _ in range(5):
        status, h, body = r.request()
        assert status == 200 and b"found=0" in body


def test_fault_is_reported_and_server_survives(server):
    s = server([str(TEST_MUSL), "fault-after-output"])
    for _ in range(3):
        status, h, body = s.request()
        assert status == 200
        assert h["x-nubis-status"] == "139"
        assert h["x-nubis-outcome"] == "signaled"
        assert "page fault" in h["x-nubis-message"]
        assert body == b"output before fault\n"


def test_timeout_and_queue_full_503(server):
    s = server(["--workers", "1", "--queue", "1", "--timeout", "1500ms", str(TEST_MUSL), "spin"])
    out = []

    def one():
        out.append(s.request(timeout=30))

    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(60)
    statuses = sorted(r[0] for r in out)
    assert len(out) == 5
    assert statuses.count(503) >= 2, statuses
    ran = [r for r in out if r[0] == 200]
    assert ran, statuses
    for _, h, _ in ran:
        assert h["x-nubis-outcome"] == "timeout" and h["x-nubis-status"] == "124"
    for st, _, body in out:
        if st == 503:
            assert b'"busy"' in body


def test_tcp_listener(server):
    port = free_port()
    s = server([str(TEST_MUSL), "hello"], listen=f"tcp:127.0.0.1:{port}")
    status, h, body = s.request(method="GET")
    assert status == 200 and body == b"hello from nubis\n"


def test_body_too_large(server):
    s = server(["--max-body", "1K", str(TEST_MUSL), "cat"])
    status, _, body = s.request(b"x" * 4096)
    assert status == 413 and b"too-large" in body
    status, _, body = s.request(b"y" * 1000)
    assert status == 200 and body == b"y" * 1000


def test_output_limit_in_request(server):
    s = server(["--output-limit", "64K", str(TEST_MUSL), "flood"])
    status, h, body = s.request()
    assert status == 200
    assert h["x-nubis-outcome"] == "output-limit" and h["x-nubis-status"] == "121"
    assert len(body) == 64 * 1024


def test_sigterm_stops_and_removes_socket(tmp_path):
    s = Server(tmp_path, [str(TEST_MUSL), "hello"])
    assert s.request()[0] == 200
    assert s.stop() == 0
    assert not os.path.exists(s.sock)
    assert "requests served" in s.logtext()


@pytest.mark.parametrize("args,needle", [
    (["--listen", "nonsense", str(TEST_MUSL)], "expected unix:PATH"),
    (["--listen", "tcp:127.0.0.1:99999", str(TEST_MUSL)], "bad port"),
    (["--listen", "tcp:999.1.1.1:80", str(TEST_MUSL)], "bad IPv4"),
    (["--listen", "unix:/tmp/x.sock", "--workers", "0", str(TEST_MUSL)], "--workers"),
    (["--listen", "unix:/tmp/x.sock", "--channel", "/o=/tmp/nubis-o:w", str(TEST_MUSL)], "write channels"),
    (["--listen", "unix:/tmp/x.sock"], "need --listen and PROGRAM"),
])
def test_bad_configuration(args, needle):
    p = subprocess.run([str(NUBIS), "serve", *args], capture_output=True, text=True, timeout=30)
    assert p.returncode == 125, (p.returncode, p.stderr)
    assert needle in p.stderr


def test_second_server_on_same_socket_refused(server, tmp_path):
    s = server([str(TEST_MUSL), "hello"])
    p = subprocess.run([str(NUBIS), "serve", "--listen", s.listen, str(TEST_MUSL), "hello"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 125 and "already listening" in p.stderr
    assert s.request()[0] == 200


def test_garbage_http_does_not_crash(server):
    s = server([str(TEST_MUSL), "hello"])
    for junk in [b"\x00\xff" * 100, b"GET / HTTP/9.9\r\n\r\n", b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                 b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]:
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(5)
        c.connect(s.sock)
        c.sendall(junk)
        try:
            c.recv(4096)
        except OSError:
            pass
        c.close()
    status, _, body = s.request()
    assert status == 200 and body == b"hello from nubis\n"
    c = s.conn()
    c.request("DELETE", "/")
    assert c.getresponse().status == 405


def test_server_runs_under_seccomp(server):
    s = server([str(TEST_MUSL), "hello"])
    status = Path(f"/proc/{s.proc.pid}/status").read_text()
    mode = [l.split()[1] for l in status.splitlines() if l.startswith("Seccomp:")][0]
    assert mode == "2"
    # and still serves
    assert s.request()[2] == b"hello from nubis\n"

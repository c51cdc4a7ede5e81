"""nubis-vmm: booting our tiny test guest (guest/tiny) directly from a bzImage.

The guest runs in ring 0 (emulated instruction by instruction on kvm_pvm,
so it is kept small): it prints on the 16550A, reads the zero page (command
line, e820) and the ACPI tables the monitor built, and powers off through
the FADT's PM1a control block.
"""
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("NUBIS_BUILD", REPO / "build"))
VMM = BUILD / "nubis-vmm"
TINY = BUILD / "guest/tiny/tiny.bzImage"


def vmm(*args, timeout=120):
    return subprocess.run([str(VMM), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_tiny_guest_boots_reads_tables_and_powers_off():
    p = vmm("--kernel", TINY, "--cmdline", "console=ttyS0 nubis.test=1", "--memory", "128M",
            "--timeout", "60s")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    lines = p.stdout.splitlines()
    assert "nubis tiny guest: hello" in lines
    assert "cmdline: console=ttyS0 nubis.test=1" in lines
    e820 = [l for l in lines if l.startswith("e820: ")]
    assert e820, lines
    # usable RAM: 128 MiB less the 1 MiB BIOS area's reserved part
    ram = int(e820[0].split("RAM ")[1].split()[0])
    assert 126 <= ram <= 128, e820[0]
    assert any(l.startswith("acpi: FADT ok, PM1a_CNT=0x604") for l in lines), lines
    assert "cpus: 1" in lines


def test_console_to_file(tmp_path):
    out = tmp_path / "console.txt"
    p = vmm("--kernel", TINY, "--console", f"file:{out}", "--timeout", "60s")
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert p.stdout == ""
    assert "nubis tiny guest: hello" in out.read_text()


def test_bad_inputs(tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.write_bytes(TINY.read_bytes()[:700])
    cases = [
        (["--kernel", tmp_path / "missing"], "No such file"),
        (["--kernel", corrupt], "bzImage"),
        (["--kernel", "/bin/true"], "not a usable vmlinux"),  # an ELF: tried as PVH
        (["--kernel", "/etc/passwd"], "bad magic"),
        (["--kernel", TINY, "--memory", "1M"], "--memory"),
        (["--kernel", TINY, "--memory", "nonsense"], "--memory"),
        (["--kernel", TINY, "--cpus", "0"], "--cpus"),
        (["--kernel", TINY, "--console", "bogus"], "--console"),
        (["--kernel", TINY, "--cmdline", "x" * 5000], "command line"),
        ([], "--kernel is required"),
    ]
    for args, needle in cases:
        p = vmm(*args)
        assert p.returncode == 1, (args, p.returncode, p.stderr)
        assert needle.lower() in p.stderr.lower(), (args, p.stderr)
        assert len(p.stderr.strip().splitlines()) >= 1


def test_json_config(tmp_path):
    import json
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({"kernel": str(TINY), "cmdline": "from json", "memory": "64M",
                               "timeout": "30s", "cpus": 1, "console": "stdio", "initrd": None}))
    p = vmm("--config", cfg)
    assert p.returncode == 0, p.stderr
    assert "cmdline: from json" in p.stdout.splitlines()
    # options after --config override it
    p = vmm("--config", cfg, "--cmdline", "override")
    assert "cmdline: override" in p.stdout.splitlines()


def test_bad_json_config(tmp_path):
    cases = {
        '{"kernel": "x", "bogus": 1}': 'unknown field "bogus"',
        '{"kernel": 5}': '"kernel" must be a string',
        '{"kernel": "x", "cpus": 0}': '"cpus" must be 1..254',
        '{"kernel": "x", "memory": 64}': '"memory" must be a string',
        '{"kernel": "x", "timeout": "soon"}': '"timeout" must be a string',
        '{"kernel": "x",': "line",
        '[1, 2]': "not a JSON object",
        '{"kernel": "x", "kernel": "y"}': "duplicate",
    }
    for text, needle in cases.items():
        cfg = tmp_path / "bad.json"
        cfg.write_text(text)
        p = vmm("--config", cfg)
        assert p.returncode == 1, (text, p.returncode, p.stderr)
        assert needle in p.stderr, (text, p.stderr)


def test_smp_madt_and_threads():
    # one thread per vCPU: the APs wait for INIT/SIPI (the tiny guest never
    # sends one) and are stopped when the boot vCPU powers the machine off
    for n in (2, 4):
        p = vmm("--kernel", TINY, "--cpus", n, "--timeout", "30s")
        assert p.returncode == 0, (n, p.stderr)
        assert f"cpus: {n}" in p.stdout.splitlines()


def test_timeout_reset_and_cpus_bounds():
    import time
    t = time.time()
    p = vmm("--kernel", TINY, "--cpus", 2, "--cmdline", "tiny.halt", "--timeout", "500ms")
    assert p.returncode == 5 and "timeout" in p.stderr, (p.returncode, p.stderr)
    assert time.time() - t < 10
    p = vmm("--kernel", TINY, "--cmdline", "tiny.reboot", "--timeout", "30s")
    assert p.returncode == 2, (p.returncode, p.stderr)
    p = vmm("--kernel", TINY, "--cpus", 255)
    assert p.returncode == 1 and "--cpus" in p.stderr


def test_serial_input_echo():
    # The guest clears the UART FIFOs when it sets the port up (as on real
    # hardware), so input is sent once it says it is ready. More than the
    # 16-byte FIFO: the input thread waits for room.
    text = "".join(f"line {i} of serial input\n" for i in range(20))
    proc = subprocess.Popen([str(VMM), "--kernel", str(TINY), "--cmdline", "tiny.echo",
                             "--timeout", "60s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line == "echo: ready\n":
            break
    proc.stdin.write(text + "q")
    proc.stdin.close()
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert "echo: ready\n" in seen
    assert rest == text


def test_ctrl_a_x_quits_on_a_terminal():
    import pty
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([str(VMM), "--kernel", str(TINY), "--cmdline", "tiny.echo",
                                 "--timeout", "60s"], stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        os.write(master, b"ab\x01x")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 6, (proc.returncode, err)


def _start_with_api(sock, cmdline, timeout="60s", **popen):
    """A monitor with a control API on @sock, once the socket exists."""
    import time
    popen.setdefault("stdin", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.PIPE)
    proc = subprocess.Popen([str(VMM), "--kernel", str(TINY), "--cmdline", cmdline,
                             "--api-sock", sock, "--timeout", timeout, "--console", "none"],
                            **popen)
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    return proc


def _api(sock, method, path):
    import http.client
    import socket as so

    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = so.socket(so.AF_UNIX, so.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(sock)

    c = Conn("localhost", timeout=10)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def test_control_api_pause_resume_kill(tmp_path):
    import json
    import select
    import time
    sock = str(tmp_path / "vmm.sock")
    proc = subprocess.Popen([str(VMM), "--kernel", str(TINY), "--cmdline", "tiny.echo",
                             "--api-sock", sock, "--timeout", "60s"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in proc.stdout:
            if line == b"echo: ready\n":
                break
        st, body = _api(sock, "GET", "/vm")
        assert st == 200 and json.loads(body) == {"state": "running", "cpus": 1,
                                                   "memory": 256 << 20, "kernel": str(TINY),
                                                   "cmdline": "tiny.echo", "boots": 1}
        assert _api(sock, "PUT", "/vm/pause")[0] == 204
        assert json.loads(_api(sock, "GET", "/vm")[1])["state"] == "paused"
        assert _api(sock, "PUT", "/vm/pause")[0] == 409
        # input while paused is not echoed: the guest does not run
        proc.stdin.write(b"ping\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        assert not ready, "the guest ran while paused"
        assert _api(sock, "PUT", "/vm/resume")[0] == 204
        assert proc.stdout.readline() == b"ping\n"
        assert _api(sock, "PUT", "/vm/resume")[0] == 409
        assert _api(sock, "GET", "/nope")[0] == 404
        assert _api(sock, "POST", "/vm")[0] == 405
        assert _api(sock, "PUT", "/vm/shutdown")[0] == 204
        assert _api(sock, "PUT", "/vm/kill")[0] == 204
        assert proc.wait(timeout=30) == 7
        assert not os.path.exists(sock)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_control_api_socket_in_use(tmp_path):
    sock = str(tmp_path / "vmm.sock")
    first = _start_with_api(sock, "tiny.halt", "30s")
    try:
        p = vmm("--kernel", TINY, "--api-sock", sock, "--console", "none")
        assert p.returncode == 1 and "already listening" in p.stderr
    finally:
        first.kill()
        first.wait()


OPENAPI = REPO / "src/vmm/openapi.json"


def _check_schema(spec, schema, value, where):
    """The subset of JSON Schema the API document uses."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = spec["components"]["schemas"][name]
    t = schema.get("type")
    if t == "object":
        assert isinstance(value, dict), where
        for k in schema.get("required", []):
            assert k in value, f"{where}: missing {k}"
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(schema["properties"]), f"{where}: extra {set(value) - set(schema['properties'])}"
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                _check_schema(spec, sub, value[k], f"{where}.{k}")
    elif t == "string":
        assert isinstance(value, str), where
        if "enum" in schema:
            assert value in schema["enum"], f"{where}: {value}"
    elif t == "integer":
        assert isinstance(value, int), where
        assert schema.get("minimum", value) <= value <= schema.get("maximum", value), where


def _response_schema(spec, path, method, status):
    resp = spec["paths"][path][method]["responses"].get(str(status))
    assert resp is not None, f"{method.upper()} {path}: status {status} is not in the API document"
    if "$ref" in resp:
        resp = spec["components"]["responses"][resp["$ref"].split("/")[-1]]
    content = resp.get("content", {}).get("application/json")
    return content["schema"] if content else None


def test_responses_match_the_openapi_document(tmp_path):
    """Real responses of a real monitor, checked against src/vmm/openapi.json."""
    import json
    spec = json.loads(OPENAPI.read_text())
    assert spec["openapi"].startswith("3.")
    sock = str(tmp_path / "vmm.sock")
    proc = _start_with_api(sock, "tiny.halt")
    try:
        calls = [("get", "/vm"), ("put", "/vm/pause"), ("get", "/vm"), ("put", "/vm/pause"),
                 ("put", "/vm/resume"), ("put", "/vm/resume"), ("put", "/vm"),
                 ("get", "/vm/pause"), ("put", "/vm/shutdown"), ("put", "/vm/kill")]
        for method, path in calls:
            st, body = _api(sock, method.upper(), path)
            doc_method = method if method in spec["paths"][path] else next(iter(spec["paths"][path]))
            schema = _response_schema(spec, path, doc_method, st)
            if schema:
                _check_schema(spec, schema, json.loads(body), f"{method.upper()} {path} {st}")
            else:
                assert body == b"", f"{method.upper()} {path} {st}: unexpected body"
        # an unknown path: the error shape
        st, body = _api(sock, "GET", "/nothing")
        assert st == 404
        _check_schema(spec, {"$ref": "#/components/schemas/Error"}, json.loads(body), "404")
        assert proc.wait(timeout=30) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

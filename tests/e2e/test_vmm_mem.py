"""nubis-vmm (vmmem): memory above 4 GiB, huge pages, KVM's paravirtual CPUID, PVH boot,
the reboot policy and unclaimed ports / MMIO, with our tiny guest (guest/tiny).

The guest prints what it found (see guest/tiny/tiny.c): the e820 RAM total, a byte it
wrote and read back at the top of the RAM above 4 GiB, the hypervisor CPUID signature,
the PVH start info, and what it read from unclaimed ports and addresses.
"""
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("NUBIS_BUILD", REPO / "build"))
VMM = BUILD / "nubis-vmm"
TINY = BUILD / "guest/tiny/tiny.bzImage"
TINY_PVH = BUILD / "guest/tiny/tiny-pvh.elf"
MIB = 1 << 20
GIB = 1 << 30
BIOS_HOLE = 0x100000 - 0x9fc00  # reserved, below 1 MiB


def vmm(*args, timeout=120):
    return subprocess.run([str(VMM), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def e820_ram_mib(out):
    line = [l for l in out.splitlines() if l.startswith("e820: ")]
    assert line, out
    return int(line[0].split("RAM ")[1].split()[0])


def boot_ok(*args):
    p = vmm("--timeout", "60s", *args)
    assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p


# ---- 1. memory up to 64 GiB, mapped below the PCI hole and from 4 GiB


@pytest.mark.parametrize("size,high_last", [
    ("16G", 4 * GIB + 13 * GIB - 1),
    ("64G", 4 * GIB + 61 * GIB - 1),
    ("3G", None),                      # exactly fills the RAM below the hole
    ("3145732K", 4 * GIB + 4096 - 1),  # 3 GiB + 4 KiB: one page above 4 GiB
])
def test_memory_sizes_e820_and_high_ram(size, high_last):
    p = boot_ok("--kernel", TINY, "--memory", size, "--console", "stdio")
    total = {"16G": 16 * GIB, "64G": 64 * GIB, "3G": 3 * GIB, "3145732K": 3 * GIB + 4096}[size]
    assert e820_ram_mib(p.stdout) == (total - BIOS_HOLE) // MIB, p.stdout
    high = [l for l in p.stdout.splitlines() if l.startswith("high: ")]
    if high_last is None:
        assert not high, p.stdout
    else:
        assert high == [f"high: wrote and read back {high_last:#x}"], p.stdout
    # the monitor maps the memory lazily: a 64 GiB guest costs little host memory
    assert "acpi: FADT ok" in p.stdout
    # ACPI and e820 agree: the MCFG's ECAM window is reserved in e820 and not RAM
    assert "mcfg: ECAM 0xe0000000 buses 0-0, reserved in e820" in p.stdout.splitlines()


def test_memory_out_of_range():
    for size in ["65G", "15M", "1T"]:
        p = vmm("--kernel", TINY, "--memory", size)
        assert p.returncode == 1, (size, p.stderr)
        assert "--memory" in p.stderr and "64 GiB" in p.stderr, p.stderr


# ---- 2. huge pages


def _smaps_vmas(pid):
    vmas, cur = [], None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            cur = {"size": hi - lo, "name": line}
            vmas.append(cur)
        elif ":" in line and cur is not None:
            k, v = line.split(":", 1)
            cur[k] = v.strip()
    return vmas


def _while_running(args, check):
    """Run a halting tiny guest, call check(pid) while it runs, then kill it."""
    proc = subprocess.Popen([str(VMM), "--kernel", str(TINY), "--cmdline", "tiny.halt",
                             "--timeout", "30s", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline() == "nubis tiny guest: hello\n"
        time.sleep(0.2)
        return check(proc.pid)
    finally:
        proc.kill()
        proc.communicate()


def _root():
    return os.geteuid() == 0 and os.access("/proc/sys/vm/nr_hugepages", os.W_OK)


@pytest.mark.skipif(not _root(), reason="needs root to set /proc/sys/vm/nr_hugepages")
def test_hugepages_hugetlb():
    knob = Path("/proc/sys/vm/nr_hugepages")
    saved = knob.read_text().strip()
    try:
        knob.write_text("0\n")
        p = vmm("--kernel", TINY, "--memory", "64M", "--hugepages", "--timeout", "30s")
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert "HugePages_Free" in p.stderr and "32" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        knob.write_text("40\n")
        if int(knob.read_text()) < 32:
            pytest.skip("the host could not allocate 32 huge pages")
        p = boot_ok("--kernel", TINY, "--memory", "64M", "--hugepages=hugetlb")
        assert "acpi: FADT ok" in p.stdout

        def check(pid):
            guest = [v for v in _smaps_vmas(pid) if v["size"] == 64 * MIB]
            assert guest, "no 64 MiB mapping"
            assert guest[0]["KernelPageSize"] == "2048 kB", guest[0]
            assert int(guest[0]["Private_Hugetlb"].split()[0]) > 0, guest[0]
        _while_running(["--memory", "64M", "--hugepages"], check)
        # not a multiple of 2 MiB
        p = vmm("--kernel", TINY, "--memory", "65M", "--hugepages")
        assert p.returncode == 1 and "2 MiB" in p.stderr, p.stderr
    finally:
        knob.write_text(saved + "\n")


def test_hugepages_thp():
    mode = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not mode.exists() or "[never]" in mode.read_text():
        pytest.skip("transparent huge pages are disabled on this host")

    def eligible(pid):
        guest = [v for v in _smaps_vmas(pid) if v["size"] == 64 * MIB]
        assert guest, "no 64 MiB mapping"
        return guest[0].get("THPeligible")
    assert _while_running(["--memory", "64M", "--hugepages=thp"], eligible) == "1"
    if "[madvise]" in mode.read_text():
        # without the option the mapping is not advised (so not eligible in madvise mode)
        assert _while_running(["--memory", "64M"], eligible) == "0"
    p = vmm("--kernel", TINY, "--hugepages=bogus")
    assert p.returncode == 1 and "--hugepages" in p.stderr


# ---- 3. KVM's paravirtual CPUID leaves (kvmclock)


def test_kvm_cpuid_signature_and_kvmclock():
    p = boot_ok("--kernel", TINY, "--cpus", "2")
    line = [l for l in p.stdout.splitlines() if l.startswith("cpuid: ")]
    assert line, p.stdout
    m = re.fullmatch(r'cpuid: hypervisor "(.*)", features 0x([0-9a-f]+)', line[0])
    assert m and m.group(1) == "KVMKVMKVM", line
    # KVM_FEATURE_CLOCKSOURCE (bit 0) or CLOCKSOURCE2 (bit 3): the guest can use kvmclock
    assert int(m.group(2), 16) & 0x9, line


def test_boot_msrs_and_fpu_state():
    """Read back in the guest (rdmsr, fnstcw): MTRRdefType = enabled + write-back (KVM's
    reset value is 0), MISC_ENABLE = fast strings only (KVM's is BTS/PEBS-unavailable,
    0x1800), LSTAR = 0, FCW = 0x37f; on every entry path and vCPU count."""
    want = "msr: MTRRdefType 0x806 MISC_ENABLE 0x1 LSTAR 0x0 FCW 0x37f"
    for kernel in (TINY, TINY_PVH):
        p = boot_ok("--kernel", kernel, "--cmdline", "tiny.state", "--cpus", "2")
        assert want in p.stdout.splitlines(), p.stdout


# ---- 4. PVH boot of an ELF vmlinux


def test_pvh_boot_start_info_memmap_cmdline_initrd(tmp_path):
    rd = tmp_path / "initrd"
    rd.write_bytes(b"x" * 5000)
    p = boot_ok("--kernel", TINY_PVH, "--initrd", rd, "--cmdline", "pvh boot",
                "--memory", "5G")
    lines = p.stdout.splitlines()
    assert lines[0] == "nubis tiny guest: hello"
    assert lines[1] == ("pvh: start_info magic 0x336ec578, version 1, memmap 5 entries, "
                        "modules 1"), lines
    assert "cmdline: pvh boot" in lines
    assert e820_ram_mib(p.stdout) == (5 * GIB - BIOS_HOLE) // MIB
    assert f"high: wrote and read back {4 * GIB + 2 * GIB - 1:#x}" in lines
    assert "cpus: 1" in lines
    assert "mcfg: ECAM 0xe0000000 buses 0-0, reserved in e820" in lines  # PVH memmap too
    # without an initrd: no module; below 3 GiB: four entries (no RAM above 4 GiB)
    p = boot_ok("--kernel", TINY_PVH)
    assert "memmap 4 entries, modules 0" in p.stdout, p.stdout


def test_pvh_elf_without_note_is_refused(tmp_path):
    img = bytearray(TINY_PVH.read_bytes())
    # the note: namesz 4, descsz 4, type 18 (XEN_ELFNOTE_PHYS32_ENTRY), "Xen\0"
    note = (4).to_bytes(4, "little") * 2 + (18).to_bytes(4, "little") + b"Xen\0"
    at = img.find(note)
    assert at > 0
    img[at + 8] = 17  # another Xen note type: no PVH entry
    bad = tmp_path / "nopvh.elf"
    bad.write_bytes(bytes(img))
    p = vmm("--kernel", bad)
    assert p.returncode == 1 and "PVH entry note" in p.stderr, p.stderr
    # a truncated ELF: a one-line error, not a crash
    cut = tmp_path / "cut.elf"
    cut.write_bytes(TINY_PVH.read_bytes()[:200])
    p = vmm("--kernel", cut)
    assert p.returncode == 1 and "vmlinux" in p.stderr, p.stderr


# ---- 5. reboot policy


def test_on_reset_exit_and_restart():
    hello = "nubis tiny guest: hello"
    p = vmm("--kernel", TINY, "--cmdline", "tiny.reboot", "--timeout", "60s")
    assert p.returncode == 2 and p.stdout.count(hello) == 1, (p.returncode, p.stdout)
    p = vmm("--kernel", TINY, "--cmdline", "tiny.reboot", "--on-reset", "exit")
    assert p.returncode == 2 and p.stdout.count(hello) == 1
    p = vmm("--kernel", TINY, "--cmdline", "tiny.reboot", "--on-reset", "restart",
            "--max-restarts", "3", "--timeout", "60s")
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert p.stdout.count(hello) == 4, p.stdout
    assert "after 3 restarts" in p.stderr, p.stderr
    # every boot is a fresh machine: the same output each time
    boots = p.stdout.split(hello + "\n")[1:]
    assert len(set(boots)) == 1, boots
    p = vmm("--kernel", TINY, "--cmdline", "tiny.reboot", "--on-reset", "restart",
            "--max-restarts", "0")
    assert p.returncode == 2 and p.stdout.count(hello) == 1
    # a guest that powers off ends the run at once, restart policy or not
    p = vmm("--kernel", TINY, "--on-reset", "restart")
    assert p.returncode == 0 and p.stdout.count(hello) == 1
    for bad in (["--on-reset", "sometimes"], ["--max-restarts", "-1"]):
        p = vmm("--kernel", TINY, *bad)
        assert p.returncode == 1 and bad[0] in p.stderr, (bad, p.stderr)


def test_restart_with_api_and_timeout(tmp_path):
    """--timeout bounds all the boots together; the API stays up across restarts and a
    kill through it ends the restart loop."""
    import http.client
    import socket as so

    def api(sock, method, path):
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

    t0 = time.monotonic()
    p = vmm("--kernel", TINY, "--cmdline", "tiny.reboot", "--on-reset", "restart",
            "--max-restarts", "1000000", "--timeout", "2s", "--console", "none")
    assert p.returncode == 5, (p.returncode, p.stderr[-500:])
    assert time.monotonic() - t0 < 20

    sock = str(tmp_path / "vmm.sock")
    proc = subprocess.Popen([str(VMM), "--kernel", str(TINY), "--cmdline", "tiny.reboot",
                             "--on-reset", "restart", "--max-restarts", "1000000",
                             "--timeout", "30s", "--console", "none", "--api-sock", sock],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):  # the socket file exists from bind(); wait for listen() too
            try:
                api(sock, "GET", "/vm")
                break
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.05)
        seen = []
        for _ in range(5):
            st, body = api(sock, "GET", "/vm")
            assert st == 200, body
            vm = json.loads(body)
            assert vm["state"] in ("starting", "running", "stopping", "restarting"), vm
            assert (vm["state"] == "starting") == (vm["boots"] == 0), vm
            seen.append(vm["boots"])
            time.sleep(0.1)
        assert seen == sorted(seen) and seen[-1] > max(seen[0], 1), seen
        assert api(sock, "PUT", "/vm/kill")[0] == 204
        assert proc.wait(timeout=20) == 7
    finally:
        proc.kill()
        proc.wait()


# ---- 6. unclaimed ports and unmapped MMIO


def test_unclaimed_port_and_mmio_logged_rate_limited_and_ignored():
    p = boot_ok("--kernel", TINY, "--cmdline", "tiny.poke")
    assert "poke: port 0x" in p.stdout and " mmio 0x" in p.stdout, p.stdout
    warn = [l for l in p.stderr.splitlines()
            if "unclaimed port 0x3e0" in l or "unmapped address 0xd0000000" in l]
    assert 1 <= len(warn) <= 10, p.stderr  # 160 accesses, rate-limited
    assert "160 times (150 not shown" in p.stderr, p.stderr
    assert "acpi: FADT ok" in p.stdout  # it went on and powered off (status 0)


# ---- JSON configuration keys of the options above


def test_json_config_new_keys(tmp_path):
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({"kernel": str(TINY), "cmdline": "tiny.reboot",
                               "memory": "5G", "hugepages": False, "on_reset": "restart",
                               "max_restarts": 2, "timeout": "60s"}))
    p = vmm("--config", cfg)
    assert p.returncode == 2 and p.stdout.count("hello") == 3, (p.returncode, p.stderr)
    assert "high: wrote and read back" in p.stdout
    cfg.write_text(json.dumps({"kernel": str(TINY_PVH), "hugepages": "thp"}))
    p = vmm("--config", cfg)
    assert p.returncode == 0 and "pvh: start_info magic 0x336ec578" in p.stdout, p.stderr
    for bad, needle in [({"hugepages": "big"}, "hugepages"), ({"hugepages": 1}, "hugepages"),
                        ({"on_reset": "never"}, "on_reset"), ({"on_reset": True}, "on_reset"),
                        ({"max_restarts": -1}, "max_restarts"),
                        ({"max_restarts": "3"}, "max_restarts"),
                        ({"max_restart": 3}, "unknown field")]:
        cfg.write_text(json.dumps({"kernel": str(TINY), **bad}))
        p = vmm("--config", cfg)
        assert p.returncode == 1 and needle in p.stderr, (bad, p.stderr)

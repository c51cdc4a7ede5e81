"""Guest memory: the --memory limit and the mmap family."""

from conftest import run


def test_memhog_hits_memory_limit(prog):
    r = run("--memory", "32M", prog, "memhog", "100")
    assert r.status == 0, r.describe()
    kv = r.kv
    assert kv["malloc_failed"] == "1", "malloc never failed in a 32 MiB VM" + r.describe()
    allocated = int(kv["allocated"])
    assert 8 <= allocated < 32, r.describe()


def test_memhog_more_memory_more_room(prog):
    small = run("--memory", "32M", prog, "memhog", "200").kv
    big = run("--memory", "128M", prog, "memhog", "200").kv
    assert big["malloc_failed"] == "1"
    assert int(small["allocated"]) + 64 <= int(big["allocated"]) < 128


def test_memhog_within_limit(prog):
    r = run(prog, "memhog", "24")  # default 64 MiB
    assert r.status == 0, r.describe()
    assert r.kv == {"allocated": "24", "malloc_failed": "0"}


def test_mmaptest(prog):
    r = run(prog, "mmaptest")
    assert r.status == 0, r.describe()
    assert r.out.splitlines()[-1] == "mmap ok", r.describe()
    assert "FAIL" not in r.out


def test_mmaptest_large_vm(musl_prog):
    """With room for the optional 64 MiB mapping, it must work too."""
    r = run("--memory", "256M", musl_prog, "mmaptest")
    assert r.status == 0, r.describe()
    assert r.out == "mmap ok\n", r.describe()
    assert "skipped" not in r.stderr, r.describe()

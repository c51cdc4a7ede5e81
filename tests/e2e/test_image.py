"""End-to-end tests of `nubis image` (src/image/): imports of every format
built by tests/assets/mkimage.py, ls/inspect/rm, and hostile input.

Each test has its own store (NUBIS_HOME=tmp_path/home). No /dev/kvm needed.
"""

import gzip
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("NUBIS_BUILD", REPO / "build")).resolve()
NUBIS = BUILD / "nubis"
sys.path.insert(0, str(REPO / "tests" / "assets"))
import mkimage as mk  # noqa: E402

ST_USAGE, ST_FORMAT, ST_NOT_FOUND = 125, 126, 127


class Store:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.outside = tmp_path / "outside"  # hostile entries aim here
        self.outside.mkdir()

    def run(self, *args, check=None):
        env = dict(os.environ, NUBIS_HOME=str(self.home))
        p = subprocess.run([str(NUBIS), "image", *map(str, args)], env=env,
                           capture_output=True, text=True, timeout=120)
        if check is not None:
            assert p.returncode == check, f"status {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    def imp(self, src, *extra):
        p = self.run("import", src, *extra, check=0)
        return p.stdout.strip()

    def fail(self, src, *extra, status=ST_FORMAT, msg=None):
        p = self.run("import", src, *extra)
        assert p.returncode == status, f"status {p.returncode}\n{p.stdout}\n{p.stderr}"
        if msg:
            assert msg in p.stderr, p.stderr
        self.assert_nothing_recorded()
        return p.stderr

    def assert_nothing_recorded(self):
        for sub in ("images", "layers/sha256", "tmp"):
            d = self.home / sub
            left = sorted(os.listdir(d)) if d.exists() else []
            assert left == [], f"{sub} not empty after a failed import: {left}"
        assert os.listdir(self.outside) == [], "something was written outside the store"

    def inspect(self, ref):
        return json.loads(self.run("inspect", ref, check=0).stdout)

    def ls(self):
        return json.loads(self.run("ls", "--json", check=0).stdout)

    def layer(self, info, i=0):
        """Layer i (top first) of an inspected image."""
        return Path(info["layer_dirs"][i])


@pytest.fixture
def store(tmp_path):
    if not NUBIS.exists():
        pytest.skip(f"{NUBIS} not built")
    return Store(tmp_path)


def rootfs(tmp_path, name="root"):
    r = tmp_path / name
    (r / "bin").mkdir(parents=True)
    (r / "etc").mkdir()
    (r / "etc" / "msg").write_text("hello\n")
    (r / "bin" / "app").write_bytes(b"\x7fELF fake")
    os.chmod(r / "bin" / "app", 0o4755)
    os.symlink("msg", r / "etc" / "link")
    return r


CFG = {"Entrypoint": ["/bin/app"], "Cmd": ["--port", "8080"], "Env": ["A=1", "PATH=/bin"],
       "WorkingDir": "/srv", "ExposedPorts": {"8080/tcp": {}, "53/udp": {}, "9000": {}}}


# ---- formats ---------------------------------------------------------------

@pytest.mark.parametrize("comp", ["none", "gzip", "zstd"])
def test_oci_layout_dir(store, tmp_path, comp):
    info = mk.oci_layout(tmp_path / "oci", [mk.dir_tar(rootfs(tmp_path))], comp, CFG, "demo:1")
    iid = store.imp(tmp_path / "oci")
    assert iid == info["id"]  # image id = sha256 of the config blob
    i = store.inspect("demo:1")
    assert i["id"] == iid and i["name"] == "demo:1"
    assert i["entrypoint"] == ["/bin/app"] and i["cmd"] == ["--port", "8080"]
    assert i["env"] == ["A=1", "PATH=/bin"] and i["workdir"] == "/srv"
    assert sorted(i["exposed_tcp"]) == [8080, 9000]
    lay = store.layer(i)
    assert lay.name == info["diff_ids"][0]
    assert (lay / "etc" / "msg").read_text() == "hello\n"
    assert os.readlink(lay / "etc" / "link") == "msg"
    mode = os.stat(lay / "bin" / "app").st_mode
    assert mode & 0o7777 == 0o755, oct(mode)  # setuid stripped
    assert i["size"] == len("hello\n") + len(b"\x7fELF fake")


def test_multi_layer_order_and_sharing(store, tmp_path):
    base = mk.tar_bytes([mk.entry("etc", "dir"), mk.entry("etc/a", data=b"base")])
    top = mk.tar_bytes([mk.entry("etc", "dir"), mk.entry("etc/.wh.a"),
                        mk.entry("etc/.wh..wh..opq"), mk.entry("etc/b", data=b"top")])
    info = mk.oci_layout(tmp_path / "o1", [base, top], "gzip", {}, "two:layers")
    store.imp(tmp_path / "o1")
    i = store.inspect("two:layers")
    # TOP FIRST
    assert [Path(d).name for d in i["layer_dirs"]] == info["diff_ids"][::-1]
    # whiteouts are kept as plain empty files, not applied across layers
    assert (store.layer(i, 0) / "etc" / ".wh.a").stat().st_size == 0
    assert (store.layer(i, 0) / "etc" / ".wh..wh..opq").exists()
    assert (store.layer(i, 1) / "etc" / "a").read_bytes() == b"base"
    # a second image sharing the base layer reuses it
    mk.oci_layout(tmp_path / "o2", [base], "zstd", {"Cmd": ["x"]}, "one:layer")
    store.imp(tmp_path / "o2")
    j = store.inspect("one:layer")
    assert j["layer_dirs"][0] == i["layer_dirs"][1]
    # rm keeps the shared layer, removes the unshared one
    store.run("rm", "two:layers", check=0)
    assert Path(i["layer_dirs"][1]).is_dir()
    assert not Path(i["layer_dirs"][0]).exists()
    store.run("rm", "one:layer", check=0)
    assert os.listdir(store.home / "layers" / "sha256") == []
    assert os.listdir(store.home / "images") == []
    assert os.listdir(store.home / "blobs" / "sha256") == []


def test_oci_archive_and_nested_index(store, tmp_path):
    layer = mk.dir_tar(rootfs(tmp_path))
    info = mk.oci_archive(tmp_path / "o.tar", [layer], tmp_path / "w1", compression="zstd",
                          config=CFG, name="arch:v2", nested=True, platforms=["arm64"])
    assert store.imp(tmp_path / "o.tar") == info["id"]
    assert store.inspect("arch:v2")["cmd"] == ["--port", "8080"]


def test_oci_bare_tag_names_after_source(store, tmp_path):
    # `skopeo copy docker://alpine oci:Alpine.OCI:3.19` writes ref.name "3.19"
    layer = mk.dir_tar(rootfs(tmp_path))
    mk.oci_layout(tmp_path / "Alpine.OCI", [layer], name="3.19")
    store.imp(tmp_path / "Alpine.OCI")
    assert store.inspect("alpine:3.19")["name"] == "alpine:3.19"
    mk.oci_archive(tmp_path / "web_app.tar.gz", [layer], tmp_path / "w", name="v2",
                   config={"Cmd": ["x"]})
    store.imp(tmp_path / "web_app.tar.gz")
    assert store.inspect("web_app:v2")["cmd"] == ["x"]
    # --name wins over the recorded name
    mk.oci_layout(tmp_path / "o3", [layer], name="full/name:7", config={"Cmd": ["y"]})
    store.imp(tmp_path / "o3", "--name", "other")
    assert store.inspect("other")["cmd"] == ["y"]
    assert store.run("inspect", "full/name:7").returncode == ST_NOT_FOUND


def test_only_other_platforms(store, tmp_path):
    mk.oci_layout(tmp_path / "o", [mk.dir_tar(rootfs(tmp_path))], arch="arm64")
    store.fail(tmp_path / "o", msg="linux/amd64")


@pytest.mark.parametrize("new", [False, True])
def test_docker_save(store, tmp_path, new):
    layer = mk.dir_tar(rootfs(tmp_path))
    extra = mk.tar_bytes([mk.entry("data", "dir"), mk.entry("data/x", data=b"x")])
    # the repeated layer is a symlink in the old format
    info = mk.docker_save(tmp_path / "d.tar", [layer, extra, layer], CFG, ["dock:3"], new)
    assert store.imp(tmp_path / "d.tar") == info["id"]
    i = store.inspect("dock:3")
    assert len(i["layer_dirs"]) == 3
    assert i["layer_dirs"][0] == i["layer_dirs"][2]
    assert (store.layer(i, 1) / "data" / "x").read_bytes() == b"x"


def test_plain_dir_and_tarball(store, tmp_path):
    r = rootfs(tmp_path)
    a = store.imp(r, "--name", "plain")
    i = store.inspect("plain:latest")
    assert i["id"] == a and (store.layer(i) / "etc" / "msg").read_text() == "hello\n"
    assert os.stat(store.layer(i) / "bin" / "app").st_mode & 0o7000 == 0
    assert any(e.startswith("PATH=") for e in i["env"])
    for suffix, comp in [(".tar", "none"), (".tar.gz", "gzip"), (".tar.zst", "zstd")]:
        t = tmp_path / f"p{suffix}"
        t.write_bytes(mk.compress(mk.dir_tar(r), comp))
        b = store.imp(t, "--name", f"tb:{comp}")
        assert (store.layer(store.inspect(b)) / "etc" / "link").is_symlink()


def test_plain_dir_refuses_fifo(store, tmp_path):
    r = rootfs(tmp_path)
    os.mkfifo(r / "etc" / "fifo")
    store.fail(r, status=ST_USAGE, msg="FIFO")


def test_ls_rm_refs(store, tmp_path):
    r = rootfs(tmp_path)
    store.run("ls", check=0)
    a = store.imp(r, "--name", "x:1")
    out = store.run("ls", check=0).stdout
    assert out.splitlines()[0].split() == ["NAME", "ID", "SIZE", "CREATED"]
    assert "x:1" in out and a[:12] in out
    assert store.inspect(a[:4])["id"] == a  # unique prefix
    assert store.inspect("sha256:" + a)["id"] == a
    assert store.run("inspect", "nope").returncode == ST_NOT_FOUND
    assert store.run("rm", "nope").returncode == ST_NOT_FOUND
    assert store.run("inspect", "bad name!").returncode == ST_NOT_FOUND
    assert store.run("import", r, "--name", "Bad Name").returncode == ST_USAGE
    # moving a name: the older image becomes untagged
    (r / "etc" / "msg").write_text("v2\n")
    b = store.imp(r, "--name", "x:1")
    assert b != a
    names = {e["id"]: e["name"] for e in store.ls()}
    assert names == {a: None, b: "x:1"}
    # a service naming the image blocks rm (best effort, $NUBIS_HOME/containers/)
    # (the layout of src/cli/svcstate.h: containers/<64 hex>/config.json)
    c = store.home / "containers" / ("c" * 64)
    c.mkdir(parents=True)
    (c / "config.json").write_text(json.dumps({"name": "web", "image": {"id": b}}))
    p = store.run("rm", "x:1")
    assert p.returncode != 0 and "'web'" in p.stderr, p.stderr
    assert store.inspect("x:1")["id"] == b
    (c / "config.json").unlink()
    store.run("rm", "x:1", check=0)
    store.run("rm", a, check=0)
    assert store.ls() == []


# ---- hostile layers -----------------------------------------------------------

def hostile(store, tmp_path, entries, msg=None, comp="gzip", **kw):
    """An OCI layout whose only layer is the given entries; import must fail."""
    d = tmp_path / "h"
    mk.oci_layout(d, [mk.tar_bytes(entries)], comp)
    return store.fail(d, msg=msg, **kw)


def test_dotdot_and_absolute(store, tmp_path):
    hostile(store, tmp_path, [mk.entry("../outside/x", data=b"x")], "'..'")
    hostile(store, tmp_path, [mk.entry("a/../../outside/x", data=b"x")], "'..'")
    hostile(store, tmp_path, [mk.entry(str(store.outside / "x"), data=b"x")], "absolute")


def test_symlink_write_through(store, tmp_path):
    hostile(store, tmp_path, [mk.entry("a", "symlink", target=str(store.outside)),
                              mk.entry("a/x", data=b"pwned")], "symlink")
    hostile(store, tmp_path, [mk.entry("a", "symlink", target="../../outside"),
                              mk.entry("a/b/x", data=b"pwned")], "symlink")
    # symlink then a regular file of the same name: replaces the link, never follows it
    d = tmp_path / "ok"
    mk.oci_layout(d, [mk.tar_bytes([mk.entry("a", "symlink", target=str(store.outside / "f")),
                                    mk.entry("a", data=b"mine")])])
    i = store.inspect(store.imp(d))
    assert (store.layer(i) / "a").read_bytes() == b"mine"
    assert os.listdir(store.outside) == []


def test_hardlinks(store, tmp_path):
    hostile(store, tmp_path, [mk.entry("h", "hardlink", target="/etc/passwd")], "absolute")
    hostile(store, tmp_path, [mk.entry("h", "hardlink", target="../../../etc/passwd")], "'..'")
    hostile(store, tmp_path, [mk.entry("h", "hardlink", target="later"),
                              mk.entry("later", data=b"x")], "not in the archive before")
    hostile(store, tmp_path, [mk.entry("l", "symlink", target="/etc"),
                              mk.entry("h", "hardlink", target="l/passwd")], "symlink")
    d = tmp_path / "ok"
    mk.oci_layout(d, [mk.tar_bytes([mk.entry("f", data=b"1"),
                                    mk.entry("g", "hardlink", target="f")])])
    lay = store.layer(store.inspect(store.imp(d)))
    assert os.stat(lay / "g").st_ino == os.stat(lay / "f").st_ino


def test_devices_skipped_whiteout_device(store, tmp_path):
    d = tmp_path / "dev"
    mk.oci_layout(d, [mk.tar_bytes([
        mk.entry("dev", "dir"),
        mk.entry("dev/sda", "blk", devmajor=8, devminor=0),
        mk.entry("dev/null", "chr", devmajor=1, devminor=3),
        mk.entry("dev/fifo", "fifo"),
        mk.entry("dev/gone", "chr", devmajor=0, devminor=0),  # overlayfs whiteout
        mk.entry("s", data=b"x", mode=0o6755),
        mk.entry("d", "dir", mode=0o3777)])])
    p = store.run("import", d, check=0)
    assert "skipped 3" in p.stderr
    lay = store.layer(store.inspect(p.stdout.strip()))
    assert sorted(os.listdir(lay / "dev")) == [".wh.gone"]
    assert os.stat(lay / "s").st_mode & 0o7777 == 0o755
    assert os.stat(lay / "d").st_mode & 0o7777 == 0o1777


def test_duplicates_and_long_names(store, tmp_path):
    d = tmp_path / "dup"
    mk.oci_layout(d, [mk.tar_bytes([mk.entry("f", data=b"first"), mk.entry("f", data=b"second"),
                                    mk.entry("x", "dir"), mk.entry("x", "dir")])])
    lay = store.layer(store.inspect(store.imp(d)))
    assert (lay / "f").read_bytes() == b"second"
    store.run("rm", store.ls()[0]["id"], check=0)
    hostile(store, tmp_path, [mk.entry("x", "dir"), mk.entry("x/y", data=b"1"),
                              mk.entry("x", data=b"2")], "replace a directory")
    hostile(store, tmp_path, [mk.entry("a" * 300, data=b"x")], "component")
    hostile(store, tmp_path, [mk.entry("/".join(["b" * 200] * 25), data=b"x")], "bytes")


def test_size_caps(store, tmp_path):
    big = mk.tar_bytes([mk.entry("big", data=b"\0" * (3 << 20))])
    d = tmp_path / "big"
    mk.oci_layout(d, [big])
    store.fail(d, "--max-layer-size", "1M", msg="size cap")
    # a header claiming 1 TiB
    hostile(store, tmp_path, [mk.entry("huge", data=b"x" * 10, size=1 << 40)], "claims")
    # a gzip bomb: 256 MiB of zeros in ~256 KiB; stops at the cap
    bomb = tmp_path / "bomb.tar.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        f.write(mk.tar_bytes([mk.entry("z", data=b"")])[:512])  # a header then zeros
        chunk = b"\0" * (1 << 20)
        for _ in range(256):
            f.write(chunk)
    assert bomb.stat().st_size < (2 << 20)
    store.fail(bomb, "--max-layer-size", "16M", msg="size cap")
    # the per-image cap over two layers
    half = [mk.tar_bytes([mk.entry(f"f{i}", data=b"\1" * (700 << 10))]) for i in range(2)]
    mk.oci_layout(tmp_path / "two", half, "gzip")
    store.fail(tmp_path / "two", "--max-image-size", "1M", msg="image size cap")
    # too many entries
    many = mk.tar_bytes([mk.entry(f"e{i}") for i in range(50)])
    mk.oci_layout(tmp_path / "many", [many])
    store.fail(tmp_path / "many", "--max-entries", "10", msg="more than 10 entries")


def test_truncated(store, tmp_path):
    t = mk.tar_bytes([mk.entry("f", data=os.urandom(100000))])
    for cut in (len(t) // 2, 700, 100):
        p = tmp_path / f"t{cut}.tar"
        p.write_bytes(t[:cut])
        store.fail(p)
    g = mk.compress(t, "gzip")
    p = tmp_path / "t.tar.gz"
    p.write_bytes(g[: len(g) // 2])
    store.fail(p)
    # truncated layer blob inside a docker save archive
    mk.docker_save(tmp_path / "d.tar", [t], {}, ["d:1"])
    raw = (tmp_path / "d.tar").read_bytes()
    (tmp_path / "d2.tar").write_bytes(raw[: len(raw) - 60000])
    store.fail(tmp_path / "d2.tar")


# ---- hostile manifests --------------------------------------------------------

def layout(tmp_path, name="m"):
    d = tmp_path / name
    info = mk.oci_layout(d, [mk.tar_bytes([mk.entry("f", data=b"data")])], "gzip")
    return d, info


def set_manifest(d, man):
    """Replace the (only) manifest with `man` and point index.json at it."""
    b = json.dumps(man).encode() if not isinstance(man, bytes) else man
    h = mk.write_blob(d, b)
    (d / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "manifests": [{"mediaType": mk.MT_MANIFEST,
                                            "digest": f"sha256:{h}", "size": len(b)}]}))


def manifest(d, info):
    return json.loads((d / "blobs" / "sha256" / info["manifest"]).read_bytes())


def test_bad_digests(store, tmp_path):
    # a changed byte in file data: the tar still parses, the digest does not match
    d = tmp_path / "m0"
    info = mk.oci_layout(d, [mk.tar_bytes([mk.entry("f", data=b"data")])], "none")
    blob = d / "blobs" / "sha256" / info["layers"][0]
    data = bytearray(blob.read_bytes())
    at = data.index(b"data")
    data[at] ^= 0x20
    blob.write_bytes(bytes(data))
    err = store.fail(d, msg="digest mismatch")
    assert info["layers"][0] in err
    # a corrupt gzip stream
    d, info = layout(tmp_path)
    blob = d / "blobs" / "sha256" / info["layers"][0]
    data = bytearray(blob.read_bytes())
    data[-12] ^= 0xFF
    blob.write_bytes(bytes(data))
    store.fail(d, msg=info["layers"][0][:12])
    # trailing bytes after the tar: still part of the blob digest
    d = tmp_path / "m1"
    info = mk.oci_layout(d, [mk.tar_bytes([mk.entry("f", data=b"data")])], "none")
    blob = d / "blobs" / "sha256" / info["layers"][0]
    blob.write_bytes(blob.read_bytes() + b"extra")
    store.fail(d, msg="bytes")
    d, info = layout(tmp_path, "m2")
    man = manifest(d, info)
    man["layers"][0]["size"] += 1
    set_manifest(d, man)
    store.fail(d, msg="bytes")
    # diff_id mismatch: a config naming another uncompressed digest
    d, info = layout(tmp_path, "m3")
    man = manifest(d, info)
    cfg = mk.make_config(["0" * 64])
    man["config"] = mk.desc(mk.MT_CONFIG, cfg)
    mk.write_blob(d, cfg)
    set_manifest(d, man)
    store.fail(d, msg="diff_id mismatch")
    # a config blob that does not match its digest
    d, info = layout(tmp_path, "m4")
    (d / "blobs" / "sha256" / info["config"]).write_bytes(b'{"rootfs": {}}' + b" " * 100)
    store.fail(d, msg="config")


def test_digest_path_traversal(store, tmp_path):
    for bad in ["sha256:../../etc/passwd", "sha256:" + "A" * 64, "sha512:" + "a" * 128,
                "sha256:" + "a" * 63, "../../../../etc/passwd"]:
        d, info = layout(tmp_path, "t" + str(abs(hash(bad))))
        man = manifest(d, info)
        man["layers"][0]["digest"] = bad
        set_manifest(d, man)
        store.fail(d, msg="sha256:<64")
    # docker save: a layer path outside the archive
    t = tmp_path / "d.tar"
    mk.docker_save(t, [mk.tar_bytes([mk.entry("f", data=b"1")])], {}, ["d:1"])
    import tarfile, io  # noqa: E401
    with tarfile.open(t) as tf:
        members = [(m, tf.extractfile(m).read() if m.isfile() else None) for m in tf]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        for m, data in members:
            if m.name == "manifest.json":
                mj = json.loads(data)
                mj[0]["Layers"] = ["../../../../../../etc/passwd"]
                data = json.dumps(mj).encode()
                m.size = len(data)
            tf.addfile(m, io.BytesIO(data) if data is not None else None)
    t.write_bytes(out.getvalue())
    store.fail(t, msg="missing or not a file")


@pytest.mark.parametrize("doc", [
    b"not json", b"[]", b'{"manifests": 5}', b'{"manifests": [{"digest": 1}]}',
    b'{"manifests": [{"digest": "sha256:' + b"a" * 64 + b'", "size": "12"}]}',
    b'{"manifests": [{"digest": "sha256:' + b"a" * 64 + b'", "size": -1}]}',
    b'{"manifests": [' + b",".join([b'{"digest": "sha256:' + b"a" * 64 + b'", "size": 1}'] * 5000)
    + b"]}",
    b'{"manifests": []}', b"[" * 100000 + b"]" * 100000, b'{"a": 1, "a": 2}',
], ids=lambda d: f"{len(d)}b-{hash(d) & 0xffff:x}")
def test_malformed_index(store, tmp_path, doc):
    d, _ = layout(tmp_path)
    (d / "index.json").write_bytes(doc)
    store.fail(d)


@pytest.mark.parametrize("mut", ["no-config", "config-type", "layers-type", "huge-layers",
                                 "media-type", "cfg-no-rootfs", "cfg-env-type", "cfg-ports",
                                 "cfg-workdir", "cfg-arch", "index-loop"])
def test_malformed_manifest_and_config(store, tmp_path, mut):
    d, info = layout(tmp_path)
    man = manifest(d, info)
    cfg = json.loads((d / "blobs" / "sha256" / info["config"]).read_bytes())
    if mut == "no-config":
        del man["config"]
    elif mut == "config-type":
        man["config"] = "sha256:" + info["config"]
    elif mut == "layers-type":
        man["layers"] = {"0": man["layers"][0]}
    elif mut == "huge-layers":
        man["layers"] = man["layers"] * 100000
    elif mut == "media-type":
        man["layers"][0]["mediaType"] = "application/x-shell-script"
    elif mut == "index-loop":
        # an index that names itself as a nested index: depth-capped
        idx = {"schemaVersion": 2, "manifests": []}
        for _ in range(8):
            b = json.dumps(idx).encode()
            h = mk.write_blob(d, b)
            idx = {"schemaVersion": 2, "manifests": [
                {"mediaType": mk.MT_INDEX, "digest": f"sha256:{h}", "size": len(b)}]}
        (d / "index.json").write_text(json.dumps(idx))
        store.fail(d)
        return
    else:
        if mut == "cfg-no-rootfs":
            del cfg["rootfs"]
        elif mut == "cfg-env-type":
            cfg["config"] = {"Env": "A=1"}
        elif mut == "cfg-ports":
            cfg["config"] = {"ExposedPorts": {"99999/tcp": {}}}
        elif mut == "cfg-workdir":
            cfg["config"] = {"WorkingDir": 7}
        elif mut == "cfg-arch":
            cfg["architecture"] = "riscv64"
        b = json.dumps(cfg).encode()
        man["config"] = mk.desc(mk.MT_CONFIG, b)
        mk.write_blob(d, b)
    set_manifest(d, man)
    store.fail(d)


def test_hostile_outer_archive(store, tmp_path):
    """An OCI-layout tar whose own entries try to escape."""
    d, _ = layout(tmp_path)
    for extra, msg in [([mk.entry("../outside/x", data=b"x")], "'..'"),
                       ([mk.entry("blobs2", "symlink", target=str(store.outside)),
                         mk.entry("blobs2/x", data=b"x")], "symlink")]:
        t = tmp_path / "o.tar"
        mk.tar_dir(d, t, extra)
        store.fail(t, msg=msg)


def test_not_an_archive(store, tmp_path):
    p = tmp_path / "junk"
    p.write_bytes(os.urandom(5000))
    store.fail(p)
    e = tmp_path / "empty"
    e.write_bytes(b"")
    store.fail(e)
    store.fail(tmp_path / "missing", status=ST_NOT_FOUND)


def _huge_special_header(raw: bytes) -> bytes:
    """Make the first header (a pax or GNU long-name header) claim 8 GiB."""
    b = bytearray(raw)
    field = bytearray(12)
    field[0] = 0x80
    field[4:12] = (8 << 30).to_bytes(8, "big")
    b[124:136] = field
    b[148:156] = b" " * 8
    b[148:156] = b"%06o\0 " % sum(b[:512])
    return bytes(b)


def test_huge_special_headers(store, tmp_path):
    import tarfile
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        raw = mk.tar_bytes([mk.entry("n" * 200, data=b"hi")], fmt=fmt)
        assert raw[156:157] in (b"x", b"L")
        p = tmp_path / f"h{fmt}.tar"
        p.write_bytes(_huge_special_header(raw))
        store.fail(p)


def test_fifo_in_layout_does_not_block(store, tmp_path):
    d, info = layout(tmp_path)
    (d / "index.json").unlink()
    os.mkfifo(d / "index.json")
    store.fail(d, msg="not a regular file")
    d, info = layout(tmp_path, "m2")
    blob = d / "blobs" / "sha256" / info["layers"][0]
    blob.unlink()
    os.mkfifo(blob)
    store.fail(d, msg="not a file")


def test_concurrent_imports(store, tmp_path):
    """Writers serialise on the store lock; every import lands."""
    srcs = []
    for i in range(4):
        r = tmp_path / f"r{i}"
        r.mkdir()
        (r / "f").write_bytes(os.urandom(256 << 10))
        srcs.append(r)
    env = dict(os.environ, NUBIS_HOME=str(store.home))
    procs = [subprocess.Popen([str(NUBIS), "image", "import", str(r), "--name", f"c{i}"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i, r in enumerate(srcs)]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        ids.append(out.decode().strip())
    assert sorted(e["id"] for e in store.ls()) == sorted(ids)
    for i in range(4):
        assert store.inspect(f"c{i}")["id"] == ids[i]
    assert os.listdir(store.home / "tmp") == []


def test_killed_import_leaves_nothing_visible(store, tmp_path):
    """SIGKILL in the middle of an import: no record, no layer; the next
    writer sweeps the debris."""
    import signal
    import time
    r = tmp_path / "big"
    r.mkdir()
    for i in range(64):
        (r / f"f{i}").write_bytes(os.urandom(1 << 20))
    d = tmp_path / "oci"
    mk.oci_layout(d, [mk.dir_tar(r)], "gzip")
    env = dict(os.environ, NUBIS_HOME=str(store.home))
    p = subprocess.Popen([str(NUBIS), "image", "import", str(d)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # wait until it has started writing into tmp/, then kill it
    deadline = time.time() + 30
    while time.time() < deadline and p.poll() is None:
        t = store.home / "tmp"
        if t.exists() and any(t.iterdir()):
            break
        time.sleep(0.002)
    p.send_signal(signal.SIGKILL)
    p.wait()
    if p.returncode == 0:
        pytest.skip("the import finished before the kill")
    assert store.ls() == []
    assert os.listdir(store.home / "layers" / "sha256") == []
    # the next import sweeps tmp/ and succeeds
    store.imp(rootfs(tmp_path), "--name", "after")
    assert os.listdir(store.home / "tmp") == []
    assert [e["name"] for e in store.ls()] == ["after:latest"]


def test_hostile_samples_via_cli(store, tmp_path):
    """Every sample of mkimage.py's hostile_layers(), built by its CLI, in
    each compression, is refused and leaves nothing behind."""
    script = REPO / "tests" / "assets" / "mkimage.py"
    names = subprocess.run([sys.executable, str(script), "hostile", "list", "-"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert len(names) >= 10
    for i, name in enumerate(names):
        comp = ["none", "gzip", "zstd"][i % 3]
        d = tmp_path / f"h-{name}"
        subprocess.run([sys.executable, str(script), "hostile", name, str(d), "--compress", comp],
                       check=True, capture_output=True)
        err = store.fail(d)
        assert "layer 1 of 1" in err, (name, err)


# ---- libarchive and libcrypto are loaded on first import only (src/image/libs.c)

# (libstdc++ came with ICU; it is left out because sanitizer builds link it)
HEAVY = ("libarchive.so", "libcrypto.so", "libxml2.so", "libicu", "libnettle.so")


def test_nubis_does_not_link_image_libraries():
    if not NUBIS.exists():
        pytest.skip(f"{NUBIS} not built")
    out = subprocess.run(["ldd", str(NUBIS)], capture_output=True, text=True, check=True).stdout
    assert not [h for h in HEAVY if h in out], out


def loaded_libs(store, *args):
    """Run `nubis image ARGS` with the loader's trace; return (process, the
    sonames it opened)."""
    env = dict(os.environ, NUBIS_HOME=str(store.home), LD_DEBUG="files")
    p = subprocess.run([str(NUBIS), "image", *map(str, args)], env=env,
                       capture_output=True, text=True, timeout=120)
    opened = {line.split("file=", 1)[1].split()[0] for line in p.stderr.splitlines()
              if "file=" in line and "[0];" in line and "needed by" not in line
              and "dynamically loaded by" in line}
    return p, opened


def test_image_libraries_loaded_by_import_only(store, tmp_path):
    r = rootfs(tmp_path)
    p, opened = loaded_libs(store, "import", r, "--name", "dl:1")
    assert p.returncode == 0, p.stderr[-2000:]
    # the positive control: the trace does show what import dlopen()s
    assert {"libarchive.so.13", "libcrypto.so.3"} <= opened, opened
    img = p.stdout.strip().splitlines()[-1]
    for args in (("ls",), ("ls", "--json"), ("inspect", "dl:1"), ("inspect", img[:8]),
                 ("inspect", "nope"), ("rm", "dl:1")):
        p, opened = loaded_libs(store, *args)
        assert opened == set(), (args, opened)
        assert "libarchive" not in p.stderr and "libcrypto" not in p.stderr, args
    assert store.ls() == []


def _real_path_of(soname):
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.strip().startswith(soname + " ") and "x86-64" in line:
            return os.path.realpath(line.split("=>")[1].strip())
    pytest.skip(f"{soname} not in the loader cache")


@pytest.mark.parametrize("soname", ["libarchive.so.13", "libcrypto.so.3"])
def test_missing_image_library(store, tmp_path, soname):
    """With the library unusable (an empty file bind-mounted over it in a
    private mount namespace), import fails with one line naming it, leaves
    nothing behind, and ls/inspect still work."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a mount namespace")
    real = _real_path_of(soname)
    empty = tmp_path / "empty.so"
    empty.write_bytes(b"")
    r = rootfs(tmp_path)
    script = ('mount --bind "$1" "$2" || exit 99; shift 2; '
              'NUBIS_HOME="$1" "$2" image import "$3" --name gone:1; echo "import=$?"; '
              'NUBIS_HOME="$1" "$2" image ls --json; echo "ls=$?"')
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                        str(empty), real, str(store.home), str(NUBIS), str(r)],
                       capture_output=True, text=True, timeout=60)
    if p.returncode == 99 or "import=" not in p.stdout:
        pytest.skip(f"cannot bind-mount over {real}: {p.stderr.strip()}")
    assert "import=120" in p.stdout, p.stdout + p.stderr
    errs = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(errs) == 1, p.stderr
    assert errs[0].startswith("nubis image import: cannot load " + soname), errs[0]
    assert "images" in errs[0], errs[0]
    assert "ls=0" in p.stdout and "[]" in p.stdout, p.stdout
    store.assert_nothing_recorded()
    # outside the namespace the library is back and the import works
    store.imp(r, "--name", "back:1")

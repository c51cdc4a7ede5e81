#!/usr/bin/env python3
"""Build small container images for the image-store tests (no registry).

As a library (tests/e2e/test_image.py imports it):

    layer = dir_tar(path)              # uncompressed tar of a directory
    layer = tar_bytes([entry(...)])    # hand-made tar, hostile entries allowed
    info = oci_layout(out_dir, [layer], compression="gzip", config={...}, name="x:1")
    oci_archive(out_tar, [layer], ...)         # the same layout as one tar
    docker_save(out_tar, [layer], repotags=["x:1"], new_format=False)

From the command line:

    mkimage.py oci  SRC_DIR OUT_DIR  [--name N] [--compress none|gzip|zstd] [--cmd ...]
    mkimage.py oci-tar SRC_DIR OUT.tar [...]
    mkimage.py docker SRC_DIR OUT.tar [--name N] [--new-format]
    mkimage.py tar  SRC_DIR OUT.tar[.gz]
    mkimage.py hostile NAME|list OUT_DIR   (an OCI layout whose layer is a hostile sample)

Everything is deterministic (fixed mtimes, sorted entries), so the same
input gives the same digests.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
MTIME = 1700000000


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- tar building ---------------------------------------------------------

def entry(name, kind="file", data=b"", target=None, mode=None, size=None,
          devmajor=0, devminor=0):
    """One tar entry: kind is file, dir, symlink, hardlink, chr, blk, fifo.
    `size` overrides the header size (lying headers)."""
    return dict(name=name, kind=kind, data=data, target=target, mode=mode, size=size,
                devmajor=devmajor, devminor=devminor)


_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
          "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
          "fifo": tarfile.FIFOTYPE}


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT) -> bytes:
    """An uncompressed tar of hand-made entries (names are not sanitised)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.type = _TYPES[e["kind"]]
            ti.mtime = MTIME
            ti.mode = e["mode"] if e["mode"] is not None else (
                0o755 if e["kind"] == "dir" else 0o644)
            if e["target"] is not None:
                ti.linkname = e["target"]
            ti.devmajor, ti.devminor = e["devmajor"], e["devminor"]
            data = e["data"] if e["kind"] == "file" else b""
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data else None)
    raw = buf.getvalue()
    # header size overrides: patch after the fact (tarfile refuses to lie)
    for e in entries:
        if e["size"] is not None:
            raw = _patch_size(raw, e["name"], e["size"])
    return raw


def _patch_size(raw: bytes, name: str, size: int) -> bytes:
    """Rewrite the size field of the ustar header named `name`."""
    b = bytearray(raw)
    nm = name.encode()
    for off in range(0, len(b) - 511, 512):
        hdr = b[off:off + 512]
        if hdr[:100].rstrip(b"\0") == nm and hdr[257:262] == b"ustar":
            if size >= 8 ** 11:  # base-256 encoding for huge sizes
                field = bytearray(12)
                field[0] = 0x80
                field[4:12] = size.to_bytes(8, "big")
            else:
                field = b"%011o\0" % size
            b[off + 124:off + 136] = field
            b[off + 148:off + 156] = b" " * 8
            chk = sum(b[off:off + 512])
            b[off + 148:off + 156] = b"%06o\0 " % chk
            return bytes(b)
    raise ValueError(f"no header for {name}")


def dir_tar(path) -> bytes:
    """An uncompressed tar of directory `path` (sorted, fixed mtimes, root-owned)."""
    path = Path(path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(dirs + files):
                full = Path(root) / name
                rel = str(full.relative_to(path))
                ti = tf.gettarinfo(str(full), arcname=rel)
                ti.mtime = MTIME
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = "root"
                if ti.isreg():
                    with open(full, "rb") as f:
                        tf.addfile(ti, f)
                else:
                    tf.addfile(ti)
    return buf.getvalue()


def compress(data: bytes, kind: str) -> bytes:
    if kind == "none":
        return data
    if kind == "gzip":
        return gzip.compress(data, mtime=0)
    if kind == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=data, check=True,
                              stdout=subprocess.PIPE).stdout
    raise ValueError(kind)


# ---- OCI layout -----------------------------------------------------------

def make_config(diff_ids, config=None, created="2024-01-02T03:04:05Z", arch="amd64"):
    cfg = {"created": created, "architecture": arch, "os": "linux",
           "config": config if config is not None else {},
           "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]}}
    return json.dumps(cfg, sort_keys=True).encode()


def write_blob(layout, data: bytes) -> str:
    """Store `data` under blobs/sha256/ of `layout`; returns its hex digest."""
    h = sha256(data)
    p = Path(layout) / "blobs" / "sha256"
    p.mkdir(parents=True, exist_ok=True)
    (p / h).write_bytes(data)
    return h


def desc(mt, data=None, hexd=None, size=None, **extra):
    d = {"mediaType": mt, "digest": f"sha256:{hexd or sha256(data)}",
         "size": size if size is not None else len(data)}
    d.update(extra)
    return d


def oci_layout(out, layers, compression="gzip", config=None, name=None, nested=False,
               platforms=None, arch="amd64", created="2024-01-02T03:04:05Z"):
    """Write an OCI image layout at `out` from uncompressed layer tars
    (bottom first). Returns a dict with the digests (hex) of everything."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    diff_ids = [sha256(t) for t in layers]
    cfg = make_config(diff_ids, config, created=created, arch=arch)
    cfg_hex = write_blob(out, cfg)
    blobs = [compress(t, compression) for t in layers]
    layer_hex = [write_blob(out, b) for b in blobs]
    man = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
           "config": desc(MT_CONFIG, cfg),
           "layers": [desc(MT_LAYER[compression], b) for b in blobs]}
    man_bytes = json.dumps(man).encode()
    man_hex = write_blob(out, man_bytes)
    ann = {"org.opencontainers.image.ref.name": name} if name else None
    mdesc = desc(MT_MANIFEST, man_bytes, platform={"os": "linux", "architecture": "amd64"})
    top = [mdesc]
    if platforms:  # extra manifests for other platforms listed first
        top = [desc(MT_MANIFEST, man_bytes, platform={"os": "linux", "architecture": a})
               for a in platforms] + [mdesc]
    if nested:
        sub = json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": top}).encode()
        write_blob(out, sub)
        top = [desc(MT_INDEX, sub)]
    if ann:
        top[-1]["annotations"] = ann
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": top}
    (out / "index.json").write_text(json.dumps(index))
    return {"config": cfg_hex, "manifest": man_hex, "layers": layer_hex,
            "diff_ids": diff_ids, "id": cfg_hex}


def tar_dir(src, out_tar, extra_entries=()):
    """Tar the directory `src` (a layout) into `out_tar`, names relative."""
    data = dir_tar(src)
    if extra_entries:
        data = _append(data, extra_entries)
    Path(out_tar).write_bytes(data)


def _append(tar_data, entries):
    """Add hand-made entries to the end of an existing tar."""
    extra = tar_bytes(entries)
    # strip the end-of-archive blocks of the first tar
    with tarfile.open(fileobj=io.BytesIO(tar_data)) as tf:
        tf.getmembers()  # read to the end-of-archive marker
        end = tf.offset
    return tar_data[:end] + extra


def oci_archive(out_tar, layers, workdir, **kw):
    """An OCI layout as a tar archive (built in `workdir`)."""
    lay = Path(workdir) / "layout"
    info = oci_layout(lay, layers, **kw)
    tar_dir(lay, out_tar)
    return info


# ---- docker save ----------------------------------------------------------

def docker_save(out_tar, layers, config=None, repotags=("test:latest",), new_format=False,
                created="2024-01-02T03:04:05Z"):
    """A `docker save` archive. Old format: <id>/layer.tar + <hex>.json;
    new format (docker >= 25): an OCI layout with blobs/sha256/ plus
    manifest.json. Returns the digests."""
    diff_ids = [sha256(t) for t in layers]
    cfg = make_config(diff_ids, config, created=created)
    cfg_hex = sha256(cfg)
    ents = []
    if new_format:
        files = {f"blobs/sha256/{cfg_hex}": cfg}
        lpaths = []
        for t in layers:
            files[f"blobs/sha256/{sha256(t)}"] = t
            lpaths.append(f"blobs/sha256/{sha256(t)}")
        man = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
               "config": desc(MT_CONFIG, cfg),
               "layers": [desc(MT_LAYER["none"], t) for t in layers]}
        mb = json.dumps(man).encode()
        files[f"blobs/sha256/{sha256(mb)}"] = mb
        files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
        files["index.json"] = json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX,
                                          "manifests": [desc(MT_MANIFEST, mb)]}).encode()
        mj = [{"Config": f"blobs/sha256/{cfg_hex}", "RepoTags": list(repotags),
               "Layers": lpaths}]
        ents.append(entry("blobs", "dir"))
        ents.append(entry("blobs/sha256", "dir"))
    else:
        files = {f"{cfg_hex}.json": cfg}
        lpaths = []
        for i, t in enumerate(layers):
            lid = sha256(f"{i}:{sha256(t)}".encode())
            if t in layers[:i]:  # a repeated layer: a symlink, as docker does
                j = layers.index(t)
                prev = lpaths[j].split("/")[0]
                ents.append(entry(lid, "dir"))
                ents.append(entry(f"{lid}/layer.tar", "symlink", target=f"../{prev}/layer.tar"))
            else:
                ents.append(entry(lid, "dir"))
                files[f"{lid}/layer.tar"] = t
            lpaths.append(f"{lid}/layer.tar")
        mj = [{"Config": f"{cfg_hex}.json", "RepoTags": list(repotags), "Layers": lpaths}]
        files["repositories"] = b"{}"
    files["manifest.json"] = json.dumps(mj).encode()
    for k, v in files.items():
        ents.append(entry(k, "file", data=v))
    Path(out_tar).write_bytes(tar_bytes(ents))
    return {"config": cfg_hex, "id": cfg_hex, "diff_ids": diff_ids}


# ---- hostile samples ------------------------------------------------------

def hostile_layers(outside="/tmp/nubis-outside"):
    """Named hostile layer tars (uncompressed) that an import must refuse.
    `outside` is a host directory the entries aim at."""
    return {
        "dotdot": tar_bytes([entry("../../outside/x", data=b"x")]),
        "absolute": tar_bytes([entry(outside + "/x", data=b"x")]),
        "symlink-write-through": tar_bytes([entry("a", "symlink", target=outside),
                                            entry("a/x", data=b"pwned")]),
        "symlink-dir-through": tar_bytes([entry("a", "symlink", target="../.."),
                                          entry("a/etc", "dir")]),
        "hardlink-absolute": tar_bytes([entry("h", "hardlink", target="/etc/passwd")]),
        "hardlink-dotdot": tar_bytes([entry("h", "hardlink", target="../../etc/passwd")]),
        "hardlink-forward": tar_bytes([entry("h", "hardlink", target="later"),
                                       entry("later", data=b"x")]),
        "hardlink-through-symlink": tar_bytes([entry("l", "symlink", target="/"),
                                               entry("h", "hardlink", target="l/etc/passwd")]),
        "file-over-dir": tar_bytes([entry("d", "dir"), entry("d/x", data=b"1"),
                                    entry("d", data=b"2")]),
        "long-component": tar_bytes([entry("a" * 300, data=b"x")]),
        "long-path": tar_bytes([entry("/".join(["b" * 200] * 25), data=b"x")]),
        "claims-1tib": tar_bytes([entry("huge", data=b"x" * 10, size=1 << 40)]),
        "truncated": tar_bytes([entry("f", data=b"y" * 100000)])[:50000],
        "not-a-tar": b"\x01garbage" * 100,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["oci", "oci-tar", "docker", "tar", "hostile"],
                    help="hostile: SRC is a sample name from hostile_layers() "
                    "(or 'list'), OUT an OCI layout dir")
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--name")
    ap.add_argument("--compress", default="gzip", choices=["none", "gzip", "zstd"])
    ap.add_argument("--new-format", action="store_true")
    ap.add_argument("--entrypoint", nargs="*")
    ap.add_argument("--cmd", nargs="*")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--workdir")
    ap.add_argument("--expose", action="append", default=[], type=int)
    a = ap.parse_args()
    cfg = {}
    if a.entrypoint is not None:
        cfg["Entrypoint"] = a.entrypoint
    if a.cmd is not None:
        cfg["Cmd"] = a.cmd
    if a.env:
        cfg["Env"] = a.env
    if a.workdir:
        cfg["WorkingDir"] = a.workdir
    if a.expose:
        cfg["ExposedPorts"] = {f"{p}/tcp": {} for p in a.expose}
    if a.kind == "hostile":
        samples = hostile_layers()
        if a.src == "list":
            print("\n".join(samples))
            return
        info = oci_layout(a.out, [samples[a.src]], a.compress)
        print(json.dumps(info))
        return
    layer = dir_tar(a.src)
    if a.kind == "oci":
        info = oci_layout(a.out, [layer], a.compress, cfg, a.name)
    elif a.kind == "oci-tar":
        import tempfile
        with tempfile.TemporaryDirectory() as td:
            info = oci_archive(a.out, [layer], td, compression=a.compress, config=cfg,
                               name=a.name)
    elif a.kind == "docker":
        info = docker_save(a.out, [layer], cfg, [a.name or "image:latest"], a.new_format)
    else:
        Path(a.out).write_bytes(compress(layer, "gzip" if a.out.endswith("gz") else "none"))
        info = {"diff_ids": [sha256(layer)]}
    print(json.dumps(info))


if __name__ == "__main__":
    main()

"""A real registry on a loopback port, and small images built here from busybox-static.

`Registry` runs Debian's `docker-registry` (distribution v2) with filesystem storage in
a temporary directory on 127.0.0.1 and a free port, optionally behind htpasswd basic
auth; its access log is kept so tests can count which blobs were fetched.

`ImageBuilder` makes OCI images with `umoci` from the static busybox binary (no
network, no base image), and `push` sends them with `skopeo copy`. `push_index` writes
a two-platform image index by hand (this machine's platform plus a decoy for another
one) to check that a pull picks the node's platform.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from conftest import free_port

REGISTRY_BIN = "/usr/bin/docker-registry"
BUSYBOX = "/bin/busybox"
TOOLS = (REGISTRY_BIN, "skopeo", "umoci", BUSYBOX)
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def missing_tools() -> list[str]:
    """The registry test tools that are not installed (.ci/run installs them)."""
    return [t for t in TOOLS if shutil.which(t) is None and not os.path.exists(t)]


def htpasswd_line(user: str, password: str) -> str:
    """One bcrypt htpasswd entry (the only scheme docker-registry accepts)."""
    import bcrypt
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"


@dataclass
class Registry:
    """A running docker-registry."""

    dir: Path
    port: int
    proc: subprocess.Popen
    log_path: Path
    users: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, tmp: Path, users: dict[str, str] | None = None) -> Registry:
        """Start a registry storing under `tmp`; with `users`, every request needs basic auth."""
        tmp.mkdir(parents=True, exist_ok=True)
        port = free_port()
        config = {"version": 0.1, "log": {"level": "info", "accesslog": {"disabled": False}},
                  "storage": {"filesystem": {"rootdirectory": str(tmp / "storage")}, "delete": {"enabled": True}},
                  "http": {"addr": f"127.0.0.1:{port}"}}
        if users:
            (tmp / "htpasswd").write_text("".join(htpasswd_line(u, p) for u, p in users.items()))
            config["auth"] = {"htpasswd": {"realm": "kubelite-test", "path": str(tmp / "htpasswd")}}
        (tmp / "config.yml").write_text(json.dumps(config))   # JSON is YAML
        log_path = tmp / "registry.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([REGISTRY_BIN, "serve", str(tmp / "config.yml")], stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        reg = cls(tmp, port, proc, log_path, dict(users or {}))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"docker-registry exited: {log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"http://{reg.host}/v2/", timeout=2):
                    return reg
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    return reg
            except OSError:
                pass
            time.sleep(0.05)
        reg.stop()
        raise AssertionError("docker-registry did not answer in 20 s")

    def stop(self) -> None:
        """Stop the registry process."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def blob_gets(self, repo: str, digest: str) -> int:
        """How many times a blob of `repo` was downloaded (GET in the access log)."""
        needle = f'"GET /v2/{repo}/blobs/{digest} '
        return sum(1 for line in self.log_path.read_text(errors="replace").splitlines() if needle in line)

    def creds(self) -> str:
        """`user:password` of the first user."""
        user, password = next(iter(self.users.items()))
        return f"{user}:{password}"


def run(*argv: str) -> str:
    """Run a tool; its stdout (fail the test with its stderr)."""
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr}")
    return p.stdout


class ImageBuilder:
    """Images in one OCI layout, built with umoci."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.layout = tmp / "layout"
        tmp.mkdir(parents=True, exist_ok=True)
        run("umoci", "init", "--layout", str(self.layout))

    def busybox(self, tag: str, *, entrypoint: list[str], cmd: list[str] | None = None,
                workdir: str = "/", files: dict[str, str] | None = None, base: str | None = None) -> str:
        """An image `tag`: busybox with applet links (a layer of its own), plus `files` (path → text).

        With `base`, the new image is `base` plus one layer of `files` (so the two share layers)."""
        bundle = self.tmp / f"bundle-{tag}"
        if base:
            run("umoci", "tag", "--image", f"{self.layout}:{base}", tag)
        else:
            run("umoci", "new", "--image", f"{self.layout}:{tag}")
        run("umoci", "unpack", "--rootless", "--image", f"{self.layout}:{tag}", str(bundle))
        root = bundle / "rootfs"
        if not base:
            (root / "bin").mkdir(parents=True, exist_ok=True)
            shutil.copy2(BUSYBOX, root / "bin" / "busybox")
            for applet in ("sh", "cat", "echo", "ls", "sleep", "wget", "readlink", "id"):
                os.symlink("busybox", root / "bin" / applet)
            # Absolute, as many real images have them: the unpacker makes them relative.
            os.symlink("/bin/busybox", root / "bin" / "httpd")
        for path, text in (files or {}).items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        run("umoci", "repack", "--image", f"{self.layout}:{tag}", str(bundle))
        args = ["umoci", "config", "--image", f"{self.layout}:{tag}", "--config.workingdir", workdir,
                "--config.env", "PATH=/bin:/usr/bin"]
        for part in entrypoint:
            args += ["--config.entrypoint", part]
        for part in cmd or []:
            args += ["--config.cmd", part]
        run(*args)
        shutil.rmtree(bundle, ignore_errors=True)
        run("umoci", "gc", "--layout", str(self.layout))
        return f"oci:{self.layout}:{tag}"

    def manifest(self, tag: str) -> dict:
        """The manifest of `tag` in the layout."""
        index = json.loads((self.layout / "index.json").read_text())
        desc = next(m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        return json.loads(self._blob(desc["digest"]))

    def _blob(self, digest: str) -> bytes:
        return (self.layout / "blobs" / "sha256" / digest.partition(":")[2]).read_bytes()

    def _put(self, data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (self.layout / "blobs" / "sha256" / digest.partition(":")[2]).write_bytes(data)
        return {"digest": digest, "size": len(data)}

    def broken(self, tag: str) -> str:
        """An image `tag` whose one layer is gzip but not a tar archive (its digests are right)."""
        data = b"this is not a tar archive\n" * 40
        layer = self._put(gzip.compress(data, mtime=0))
        config = self._put(json.dumps({"architecture": _arch(), "os": "linux", "config": {"Cmd": ["/x"]},
                                       "rootfs": {"type": "layers",
                                                  "diff_ids": ["sha256:" + hashlib.sha256(data).hexdigest()]}}).encode())
        manifest = self._put(json.dumps({"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
                                         "config": {"mediaType": MEDIA_CONFIG, **config},
                                         "layers": [{"mediaType": MEDIA_LAYER, **layer}]}).encode())
        index = json.loads((self.layout / "index.json").read_text())
        index["manifests"].append({"mediaType": MEDIA_MANIFEST, **manifest,
                                   "annotations": {"org.opencontainers.image.ref.name": tag}})
        (self.layout / "index.json").write_text(json.dumps(index))
        return f"oci:{self.layout}:{tag}"

    def index_with_decoy(self, tag: str, real: str) -> str:
        """An image index `tag`: image `real` for this machine, and a decoy image for another CPU."""
        arch = _arch()
        other = "arm64" if arch != "arm64" else "amd64"
        index = json.loads((self.layout / "index.json").read_text())
        real_desc = next(m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == real)
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo("decoy")
            info.size = 6
            tar.addfile(info, io.BytesIO(b"decoy\n"))
        layer = self._put(gzip.compress(raw.getvalue(), mtime=0))
        config = self._put(json.dumps({"architecture": other, "os": "linux", "config": {"Cmd": ["/decoy"]},
                                       "rootfs": {"type": "layers",
                                                  "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]}
                                       }).encode())
        decoy = self._put(json.dumps({"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
                                      "config": {"mediaType": MEDIA_CONFIG, **config},
                                      "layers": [{"mediaType": MEDIA_LAYER, **layer}]}).encode())
        # The decoy comes first, so a client that just took the first entry would get it.
        body = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [
            {"mediaType": MEDIA_MANIFEST, **decoy, "platform": {"architecture": other, "os": "linux"}},
            {"mediaType": MEDIA_MANIFEST, "digest": real_desc["digest"], "size": real_desc["size"],
             "platform": {"architecture": arch, "os": "linux"}}]}
        idx = self._put(json.dumps(body).encode())
        index["manifests"].append({"mediaType": MEDIA_INDEX, **idx,
                                   "annotations": {"org.opencontainers.image.ref.name": tag}})
        (self.layout / "index.json").write_text(json.dumps(index))
        return f"oci:{self.layout}:{tag}"


def _arch() -> str:
    """This machine's CPU in OCI's words."""
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def push(src: str, registry: Registry, dest: str, *, all_platforms: bool = False) -> str:
    """Copy `src` (an `oci:` reference) to `registry` as `dest` (repo:tag); the pushed digest."""
    digest_file = registry.dir / f"digest-{os.urandom(4).hex()}"
    argv = ["skopeo", "copy", "--insecure-policy", "--quiet", "--dest-tls-verify=false", "--digestfile", str(digest_file)]
    if registry.users:
        argv += ["--dest-creds", registry.creds()]
    if all_platforms:
        argv.append("--all")
    run(*argv, src, f"docker://{registry.host}/{dest}")
    return digest_file.read_text().strip()


@dataclass
class RegistryImages:
    """An open registry and a private one (htpasswd user alice), with the test images pushed."""

    open: Registry
    private: Registry
    builder: ImageBuilder
    digests: dict[str, str]

    def stop(self) -> None:
        """Stop both registries."""
        self.open.stop()
        self.private.stop()


def start_test_images(tmp: Path) -> RegistryImages:
    """Start the registries and push: test/busybox:1 and :latest (sh -c), test/web:1 (busybox httpd on
    :8080 serving /www, sharing busybox's layer), test/multi:1 (an index with a decoy platform) and
    team/busybox:1 on the private registry."""
    missing = missing_tools()
    assert not missing, f"install {', '.join(missing)} (Debian packages; .ci/run does)"
    open_reg = Registry.start(tmp / "open")
    try:
        private = Registry.start(tmp / "private", users={"alice": "s3cret"})
    except BaseException:
        open_reg.stop()
        raise
    try:
        b = ImageBuilder(tmp / "build")
        sh = b.busybox("sh", entrypoint=["/bin/sh", "-c"], cmd=["echo hello from busybox; sleep 3600"])
        web = b.busybox("web", base="sh", entrypoint=["/bin/httpd", "-f"], cmd=["-p", "8080"], workdir="/www",
                        files={"/www/index.html": "served by busybox httpd\n"})
        b.index_with_decoy("multi", "sh")
        digests = {
            "sh": push(sh, open_reg, "test/busybox:1"),
            "latest": push(sh, open_reg, "test/busybox:latest"),
            "web": push(web, open_reg, "test/web:1"),
            "multi": push(f"oci:{b.layout}:multi", open_reg, "test/multi:1", all_platforms=True),
            "private": push(sh, private, "team/busybox:1"),
            "broken": push(b.broken("broken"), open_reg, "test/broken:1"),
        }
    except BaseException:
        open_reg.stop()
        private.stop()
        raise
    return RegistryImages(open_reg, private, b, digests)

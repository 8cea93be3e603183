"""The local image store: an OCI image layout on disk, plus one unpacked rootfs per image.

Layout under `<data dir>/images`:

    oci-layout                    {"imageLayoutVersion": "1.0.0"}
    index.json                    one manifest descriptor per image name, annotated with
                                  `io.containerd.image.name` (full name) and
                                  `org.opencontainers.image.ref.name` (tag)
    blobs/sha256/<hex>            manifests, configs and gzipped tar layers
    rootfs/<manifest hex>/        the layers applied in order (created on first use)

Several kubelite processes may share one data directory (server plus agents), so
index updates take an exclusive file lock and every file is written to a temporary
name and renamed into place.
"""
from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import builtin, reference, unpack
from .layers import apply_layer, build_layer_from_dir, is_gzip

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
ANNOTATION_NAME = "io.containerd.image.name"
ANNOTATION_REF = "org.opencontainers.image.ref.name"
# The digest the registry knows the image by (an index's, when the pull picked one
# platform from it, or the registry's manifest before skopeo converted it to OCI).
ANNOTATION_REGISTRY_DIGEST = "dev.kubelite.image.registry-digest"

log = logging.getLogger("kubelite.images")


class ImageNotFound(Exception):
    """The reference is not in the store; the message matches containerd's pull failure."""

    def __init__(self, ref: str):
        self.ref = ref
        super().__init__(
            f'failed to pull and unpack image "{ref}": failed to resolve reference '
            f'"{ref}": {ref}: not found'
        )


@dataclass
class ImageConfig:
    """What a runtime needs to start a container from an image."""

    ref: str                                  # normalised name:tag
    digest: str                               # manifest digest, sha256:...
    id: str                                   # config digest (the image ID)
    size: int = 0
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    exposed_ports: list[str] = field(default_factory=list)
    rootfs: str = ""                          # unpacked directory on the host
    registry_digest: str = ""                 # the registry's digest when pulled (see ANNOTATION_REGISTRY_DIGEST)

    @property
    def repo_digest(self) -> str:
        """`docker.io/library/nginx@sha256:…`, what pod status calls imageID."""
        return f"{reference.parse(self.ref).name}@{self.registry_digest or self.digest}"

    def env_dict(self) -> dict[str, str]:
        """Image Env as a mapping (later entries win)."""
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


class ImageStore:
    """An OCI image layout rooted at `root` (normally `<data dir>/images`)."""

    def __init__(self, root: str, *, builtins: bool = True):
        self.root = root
        self.blobs = os.path.join(root, "blobs", "sha256")
        self.rootfs_dir = os.path.join(root, "rootfs")
        self.builtins = builtins
        os.makedirs(self.blobs, exist_ok=True)
        os.makedirs(self.rootfs_dir, exist_ok=True)
        layout = os.path.join(root, "oci-layout")
        if not os.path.exists(layout):
            _atomic_write(layout, json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        if not os.path.exists(self._index_path):
            with self._locked():
                if not os.path.exists(self._index_path):
                    self._write_index({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": []})

    # -- blobs ---------------------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        """Store `data` by content; return its digest."""
        hexd = sha256_hex(data)
        path = os.path.join(self.blobs, hexd)
        if not os.path.exists(path):
            _atomic_write(path, data)
        return "sha256:" + hexd

    def get_blob(self, digest: str) -> bytes:
        """Read a blob by digest."""
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or not hexd.isalnum():
            raise ValueError(f"unsupported digest {digest!r}")
        with open(os.path.join(self.blobs, hexd), "rb") as f:
            return f.read()

    # -- images --------------------------------------------------------------

    def add_image(self, name: str, layers: list[bytes], config: dict) -> ImageConfig:
        """Store an image from tar layers (gzipped or plain) and an OCI `config` section; tag it `name`."""
        ref = reference.parse(name)
        layer_descs, diff_ids = [], []
        for blob in layers:
            gzipped = is_gzip(blob)
            diff_ids.append("sha256:" + sha256_hex(gzip.decompress(blob) if gzipped else blob))
            layer_descs.append({"mediaType": MEDIA_LAYER_GZIP if gzipped else MEDIA_LAYER_TAR,
                                "digest": self.put_blob(blob), "size": len(blob)})
        image_config = {
            "created": "1970-01-01T00:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "kubelite"}],
        }
        config_bytes = _canonical(image_config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": self.put_blob(config_bytes), "size": len(config_bytes)},
            "layers": layer_descs,
        }
        manifest_bytes = _canonical(manifest)
        desc = {
            "mediaType": MEDIA_MANIFEST,
            "digest": self.put_blob(manifest_bytes),
            "size": len(manifest_bytes),
            "annotations": {ANNOTATION_NAME: str(ref), ANNOTATION_REF: ref.tag or ref.digest or ""},
        }
        with self._locked():
            index = self._read_index()
            index["manifests"] = [m for m in index["manifests"]
                                  if m.get("annotations", {}).get(ANNOTATION_NAME) != str(ref)]
            index["manifests"].append(desc)
            self._write_index(index)
        return self._image_from_desc(desc)

    def add_manifest(self, name: str, manifest: dict, registry_digest: str = "") -> ImageConfig:
        """Tag `name` (normalised; `repo@digest` for a digest-only pull) to a manifest whose blobs are stored."""
        ref = reference.parse(name)
        annotations = {ANNOTATION_NAME: name, ANNOTATION_REF: ref.tag or ref.digest or ""}
        if registry_digest:
            annotations[ANNOTATION_REGISTRY_DIGEST] = registry_digest
        desc = {"mediaType": manifest.get("mediaType", MEDIA_MANIFEST), "digest": manifest["digest"],
                "size": manifest["size"], "annotations": annotations}
        with self._locked():
            index = self._read_index()
            index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get(ANNOTATION_NAME) != name]
            index["manifests"].append(desc)
            self._write_index(index)
        return self._image_from_desc(desc)

    def import_dir(self, name: str, directory: str, cmd: list[str], env: dict[str, str] | list[str] | None = None,
                   workdir: str = "/", ports: list[int | str] | None = None,
                   entrypoint: list[str] | None = None) -> ImageConfig:
        """Build a one-layer image from a host directory (its contents become the image root)."""
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"not a directory: {directory}")
        layer = build_layer_from_dir(directory)
        env_list = [f"{k}={v}" for k, v in env.items()] if isinstance(env, dict) else list(env or [])
        config: dict = {"Cmd": list(cmd), "Env": env_list, "WorkingDir": workdir or "/"}
        if entrypoint:
            config["Entrypoint"] = list(entrypoint)
        if ports:
            config["ExposedPorts"] = {_port_key(p): {} for p in ports}
        return self.add_image(name, [layer], config)

    def list_images(self) -> list[ImageConfig]:
        """All tagged images in the store."""
        self._ensure_builtins()
        return [self._image_from_desc(d) for d in self._read_index()["manifests"]]

    def resolve(self, ref: str) -> ImageConfig | None:
        """The image for `ref` (any spelling, or by digest), or None; builtins are built on demand."""
        try:
            parsed = reference.parse(ref)
        except reference.InvalidReference:
            return None
        desc = self._find(parsed)
        if desc is None and self.builtins and builtin.is_builtin(str(parsed)):
            if self._install_builtin(str(parsed)) is None:
                return None
            desc = self._find(parsed)
        return self._image_from_desc(desc) if desc else None

    def pull(self, ref: str) -> ImageConfig:
        """Resolve `ref` and make sure its rootfs is unpacked; raise ImageNotFound otherwise."""
        image = self.resolve(ref)
        if image is None:
            try:
                shown = reference.normalize(ref)
            except reference.InvalidReference:
                shown = ref
            raise ImageNotFound(shown)
        self.unpack(image)
        return image

    def remove(self, ref: str) -> bool:
        """Untag `ref`; unreferenced blobs stay until `gc()`."""
        name = reference.normalize(ref)
        with self._locked():
            index = self._read_index()
            keep = [m for m in index["manifests"] if m.get("annotations", {}).get(ANNOTATION_NAME) != name]
            if len(keep) == len(index["manifests"]):
                return False
            index["manifests"] = keep
            self._write_index(index)
        return True

    def unpack(self, image: ImageConfig) -> str:
        """Apply the image's layers into its rootfs directory (once); return the path.

        Every container start comes through here, so it also records the image's last use
        for the garbage collector."""
        self._mark_used(image.digest)
        target = image.rootfs
        if os.path.isdir(target):
            return target
        # Pods starting together from one image wait for a single unpack instead of each
        # running umoci (many at once crawl on a busy machine).
        with _unpack_lock(target):
            if os.path.isdir(target):
                return target
            return self._unpack_into(image, target)

    def _unpack_into(self, image: ImageConfig, target: str) -> str:
        tmp = tempfile.mkdtemp(prefix=".unpack-", dir=self.rootfs_dir)
        try:
            if unpack.available():
                unpack.unpack(self.root, {"mediaType": MEDIA_MANIFEST, "digest": image.digest,
                                          "size": len(self.get_blob(image.digest))}, tmp)
            else:
                manifest = json.loads(self.get_blob(image.digest))
                for layer in manifest["layers"]:
                    apply_layer(self.get_blob(layer["digest"]), layer["mediaType"], tmp)
            try:
                os.rename(tmp, target)
            except OSError:
                if not os.path.isdir(target):  # lost a race with another unpacker: fine
                    raise
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    # -- garbage collection --------------------------------------------------

    def garbage_collect(self, in_use: Iterable[str], policy: GCPolicy | None = None,
                        usage: Callable[[str], tuple[int, int]] | None = None) -> list[str]:
        """The kubelet's image GC: when the store's filesystem is fuller than the high
        threshold, remove unused images, least recently used first, until it is below the
        low one. `in_use` names the images of the node's pods (any spelling, or digests);
        those are never removed, nor an image used within the minimum age. The names removed."""
        policy = policy or GCPolicy()
        usage = usage or disk_usage
        used, total = usage(self.root)
        if total <= 0 or used * 100 < policy.high_percent * total:
            return []
        keep = self._digests_of(in_use)
        now = time.time()
        candidates: dict[str, list[str]] = {}
        for desc in self._read_index()["manifests"]:
            name = desc.get("annotations", {}).get(ANNOTATION_NAME, "")
            if desc["digest"] not in keep and now - self._last_used(desc["digest"]) >= policy.min_age:
                candidates.setdefault(desc["digest"], []).append(name)
        removed: list[str] = []
        for digest in sorted(candidates, key=self._last_used):
            if used * 100 < policy.low_percent * total:
                break
            with self._locked():
                index = self._read_index()
                index["manifests"] = [m for m in index["manifests"] if m["digest"] != digest]
                self._write_index(index)
            shutil.rmtree(os.path.join(self.rootfs_dir, digest.partition(":")[2]), ignore_errors=True)
            _remove_file(self._used_path(digest))
            self.prune_blobs()
            removed += candidates[digest]
            log.info("image garbage collection: removed %s (%s)", ", ".join(candidates[digest]), digest)
            used, total = usage(self.root)
        return removed

    def prune_blobs(self, min_age: float = 60.0) -> int:
        """Delete blobs no tagged image refers to (older than `min_age`: a pull in progress
        writes its blobs before it tags them); how many."""
        referenced: set[str] = set()
        pending = [d["digest"] for d in self._read_index()["manifests"]]
        while pending:
            digest = pending.pop()
            if digest in referenced:
                continue
            referenced.add(digest)
            try:
                doc = json.loads(self.get_blob(digest))
            except (OSError, ValueError):
                continue
            if not isinstance(doc, dict):
                continue
            children = list(doc.get("manifests") or []) + list(doc.get("layers") or [])
            if isinstance(doc.get("config"), dict):
                children.append(doc["config"])
            pending += [c["digest"] for c in children if isinstance(c, dict) and "digest" in c]
        now, count = time.time(), 0
        for hexd in os.listdir(self.blobs):
            path = os.path.join(self.blobs, hexd)
            if "sha256:" + hexd in referenced or hexd.startswith("."):
                continue
            try:
                if now - os.stat(path).st_mtime < min_age:
                    continue
                os.unlink(path)
                count += 1
            except OSError:
                pass
        return count

    def _digests_of(self, refs: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for ref in refs:
            if ref.startswith("sha256:"):
                out.add(ref)
                continue
            try:
                desc = self._find(reference.parse(ref.split("://", 1)[-1]))
            except reference.InvalidReference:
                continue
            if desc is not None:
                out.add(desc["digest"])
        return out

    def _used_path(self, digest: str) -> str:
        return os.path.join(self.root, "used", digest.partition(":")[2])

    def _mark_used(self, digest: str) -> None:
        path = self._used_path(digest)
        try:
            os.utime(path)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a"):
                pass

    def _last_used(self, digest: str) -> float:
        """When a container last started from the image (else when its manifest was stored)."""
        for path in (self._used_path(digest), os.path.join(self.blobs, digest.partition(":")[2])):
            try:
                return os.stat(path).st_mtime
            except OSError:
                continue
        return 0.0

    # -- internals -----------------------------------------------------------

    @property
    def _index_path(self) -> str:
        return os.path.join(self.root, "index.json")

    def _read_index(self) -> dict:
        with open(self._index_path, "rb") as f:
            return json.loads(f.read())

    def _write_index(self, index: dict) -> None:
        _atomic_write(self._index_path, json.dumps(index, indent=2).encode())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(os.path.join(self.root, ".lock"), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _find(self, ref: reference.Reference) -> dict | None:
        for desc in self._read_index()["manifests"]:
            annotations = desc.get("annotations", {})
            name = annotations.get(ANNOTATION_NAME, "")
            digests = {desc["digest"], annotations.get(ANNOTATION_REGISTRY_DIGEST)}
            if ref.tag and name == str(reference.Reference(ref.domain, ref.path, ref.tag)):
                if ref.digest is None or ref.digest in digests:
                    return desc
            elif not ref.tag and ref.digest in digests and name.startswith((ref.name + ":", ref.name + "@")):
                return desc
        return None

    def _image_from_desc(self, desc: dict) -> ImageConfig:
        manifest = json.loads(self.get_blob(desc["digest"]))
        config_digest = manifest["config"]["digest"]
        cfg = json.loads(self.get_blob(config_digest)).get("config") or {}
        size = sum(layer.get("size", 0) for layer in manifest["layers"]) + manifest["config"]["size"]
        return ImageConfig(
            ref=desc["annotations"][ANNOTATION_NAME],
            digest=desc["digest"],
            id=config_digest,
            size=size,
            entrypoint=list(cfg.get("Entrypoint") or []),
            cmd=list(cfg.get("Cmd") or []),
            env=list(cfg.get("Env") or []),
            working_dir=cfg.get("WorkingDir") or "",
            exposed_ports=sorted((cfg.get("ExposedPorts") or {}).keys()),
            rootfs=os.path.join(self.rootfs_dir, desc["digest"].partition(":")[2]),
            registry_digest=desc["annotations"].get(ANNOTATION_REGISTRY_DIGEST, ""),
        )

    def preload_builtins(self) -> list[ImageConfig]:
        """Build the built-in images that are missing (the node agent does this at start); the
        first pull of each unpacks it."""
        images = []
        for name in builtin.BUILTIN_IMAGES if self.builtins else ():
            image = self.resolve(name)
            if image is not None:
                images.append(image)
        return images

    def _ensure_builtins(self) -> None:
        if self.builtins:
            for name in builtin.BUILTIN_IMAGES:
                if self._find(reference.parse(name)) is None:
                    self._install_builtin(name)

    def _install_builtin(self, name: str) -> ImageConfig | None:
        try:
            with _BUILTIN_BUILD:
                layers, config = builtin.contents(name)
        except builtin.BuildError as e:
            # The image is then simply not there: a pod naming it fails to pull, saying why here.
            log.warning("built-in image %s: %s", name, e)
            return None
        return self.add_image(name, layers, config)


@dataclass
class GCPolicy:
    """When images are garbage-collected: the kubelet's defaults."""

    high_percent: int = 85       # --image-gc-high-threshold
    low_percent: int = 80        # --image-gc-low-threshold
    min_age: float = 120.0       # --minimum-image-ttl-duration (2m)


def disk_usage(path: str) -> tuple[int, int]:
    """(bytes used, bytes in all) of the filesystem holding `path`."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    return total - st.f_bfree * st.f_frsize, total


def _remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# One build of the built-in images' userland at a time (it is cached once built).
_BUILTIN_BUILD = threading.Lock()
_UNPACK_LOCKS: dict[str, threading.Lock] = {}
_UNPACK_LOCKS_GUARD = threading.Lock()


def _unpack_lock(target: str) -> threading.Lock:
    with _UNPACK_LOCKS_GUARD:
        return _UNPACK_LOCKS.setdefault(target, threading.Lock())


def _port_key(port: int | str) -> str:
    text = str(port)
    return text if "/" in text else f"{text}/tcp"


def _canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _atomic_write(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def default_root(data_dir: str) -> str:
    """Where the store lives inside a data directory."""
    return os.path.join(data_dir, "images")


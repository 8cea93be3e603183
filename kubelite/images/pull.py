"""Pulling images from OCI / Docker Registry v2 registries into the local store (our CRI PullImage).

Why skopeo: it is Debian's maintained registry client (the one Podman and CRI-O are
built on). It speaks the v2 API with the bearer-token and basic auth challenges,
resolves an image index to this machine's platform, checks every blob it downloads
against its digest, and writes straight into the store's content-addressed blob
directory (`--dest-shared-blob-dir`), where a layer already present is not fetched
again: images share their layers. kubelite does not talk to registries itself.

One pull, for each endpoint the plan names (mirrors, then the registry; registries.py)
and each credential that matches it (the pod's imagePullSecrets, then the node's
docker config; credentials.py):
1. `skopeo inspect --raw`: the manifest or index the reference names now; its sha256
   is the digest the registry knows the image by (pod status imageID), and must equal
   the reference's digest when it has one;
2. `skopeo copy` of exactly that digest into a scratch OCI layout whose blobs go to
   the store;
3. every blob the manifest names is hashed again in the store, then the image is
   tagged in the store's index and unpacked (unpack.py).

Offline (offline.py), endpoints off this machine are removed from the plan before
step 1, so nothing is resolved or dialled; an image that is already in the store is
then used as it is, and one that is not fails with a reason that says so.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import subprocess
import tarfile
from collections.abc import Iterable
from typing import Any

from . import builtin, reference, registries, skopeo
from .credentials import Credential, Keyring, keyring_from_secrets, node_keyring
from .offline import offline_from_env, offline_reason
from .registries import Endpoint, RegistryConfig
from .store import ImageConfig, ImageNotFound, ImageStore
from .unpack import UnpackError

log = logging.getLogger("kubelite.images")
Obj = dict[str, Any]

INSPECT_TIMEOUT = 120.0
COPY_TIMEOUT = 3600.0
_CHUNK = 1 << 20


class PullError(ImageNotFound):
    """A pull failed; the message has containerd's framing around the registry's own reason."""

    def __init__(self, ref: str, detail: str, *, code: str = "Unknown", resolving: bool = True):
        self.ref = ref
        self.code = code
        where = f'failed to resolve reference "{ref}": ' if resolving else ""
        Exception.__init__(self, f'failed to pull and unpack image "{ref}": {where}{detail}')


def rpc_message(err: ImageNotFound) -> str:
    """The text the kubelet shows for a failed pull: `rpc error: code = … desc = …`."""
    code = err.code if isinstance(err, PullError) else "NotFound"
    return f"rpc error: code = {code} desc = {err}"


def go_duration(seconds: float) -> str:
    """A duration as Go prints time.Duration truncated to milliseconds: `313ms`, `1.594s`, `2m3.5s`."""
    ms = int(seconds * 1000)
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest // 1000}.{rest % 1000:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    if minutes:
        return f"{minutes}m{secs}"
    return secs


class Puller:
    """Pulls references into one image store."""

    def __init__(self, store: ImageStore, *, offline: bool | None = None, config: RegistryConfig | None = None,
                 node_credentials: bool = True):
        self.store = store
        self.offline = offline_from_env() if offline is None else offline
        self.config = config or RegistryConfig()
        self.node_credentials = node_credentials
        self._locks: dict[str, asyncio.Lock] = {}

    def plan(self, ref: reference.Reference) -> tuple[list[Endpoint], list[Endpoint]]:
        """(endpoints to try, endpoints skipped because the node is offline)."""
        endpoints = registries.plan(ref, self.config)
        if not self.offline:
            return endpoints, []
        return [e for e in endpoints if e.loopback], [e for e in endpoints if not e.loopback]

    async def pull(self, image: str, secrets: Iterable[Obj] = ()) -> ImageConfig:
        """Pull `image` (any spelling) with the pod's pull secrets; the stored image, unpacked."""
        try:
            ref = reference.parse(image)
        except reference.InvalidReference as e:
            raise PullError(image, str(e), code="InvalidArgument", resolving=False) from None
        name = str(ref)
        if builtin.is_builtin(name):
            # The tutorial's images are kubelite's own builds, in no registry.
            return await asyncio.to_thread(self.store.pull, name)
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            return await self._pull(ref, name, keyring_from_secrets(secrets))

    async def _pull(self, ref: reference.Reference, name: str, pod_keys: Keyring) -> ImageConfig:
        allowed, skipped = self.plan(ref)
        node_keys = node_keyring() if self.node_credentials else Keyring()
        last: skopeo.RegistryError | None = None
        for endpoint in allowed:
            where = reference.Reference(endpoint.host, endpoint.path)
            creds: list[Credential | None] = []
            for c in ([endpoint.credential] if endpoint.credential else []) + pod_keys.lookup(where) + node_keys.lookup(where):
                if c not in creds:
                    creds.append(c)
            for cred in creds or [None]:
                try:
                    return await self._pull_from(ref, name, endpoint, cred)
                except skopeo.RegistryError as e:
                    log.info("pull %s from %s%s: %s", name, endpoint.host,
                             f" as {cred.username or 'token'} ({cred.source})" if cred else "", e.reason)
                    last = e
                    if not e.unauthorized:
                        break   # another credential would not change a missing tag or a refused connection
        if skipped:
            # Offline: what the store already has is the image; nothing else can be asked.
            local = await asyncio.to_thread(self.store.resolve, name)
            if local is not None:
                await asyncio.to_thread(self.store.unpack, local)
                return local
            why = offline_reason(skipped[-1].host)
            if last is not None:
                raise PullError(name, f"{last.reason}; {why}", code="NotFound" if last.not_found else "Unknown")
            raise PullError(name, f"{name}: not found: {why}", code="NotFound")
        assert last is not None  # the plan always names the registry's own endpoint
        raise PullError(name, last.reason, code="NotFound" if last.not_found else "Unknown")

    async def _pull_from(self, ref: reference.Reference, name: str, endpoint: Endpoint,
                         cred: Credential | None) -> ImageConfig:
        if not skopeo.available():
            raise skopeo.RegistryError("skopeo is not installed (Debian package skopeo): images cannot be pulled")
        session = skopeo.Session.create(os.path.join(self.store.root, "tmp"), endpoint, cred, offline=self.offline)
        try:
            raw = await session.inspect_raw(endpoint.docker_ref(ref), INSPECT_TIMEOUT)
            digest = "sha256:" + hashlib.sha256(raw).hexdigest()
            if ref.digest and ref.digest != digest:
                raise skopeo.RegistryError(f"manifest digest mismatch: the registry sent {digest}, the reference "
                                           f"names {ref.digest}")
            pinned = reference.Reference(endpoint.host, endpoint.path, None, digest)
            layout = os.path.join(session.dir, "layout")
            await session.copy(endpoint.docker_ref(pinned), os.path.join(self.store.root, "blobs"), layout,
                               COPY_TIMEOUT)
            manifest = await asyncio.to_thread(self._verify, layout)
        finally:
            session.close()
        stored = name if ref.tag else f"{ref.name}@{ref.digest}"
        image = await asyncio.to_thread(self.store.add_manifest, stored, manifest, digest)
        try:
            await asyncio.to_thread(self.store.unpack, image)
        except (OSError, tarfile.TarError, subprocess.SubprocessError, UnpackError) as e:
            raise PullError(name, f"failed to extract layers of {image.digest}: {e}", resolving=False) from e
        log.info("pulled %s (%s) from %s", name, digest, endpoint.host)
        return image

    def _verify(self, layout: str) -> Obj:
        """The copied manifest's descriptor, after checking every blob it names against its digest."""
        with open(os.path.join(layout, "index.json"), "rb") as f:
            index = json.load(f)
        manifests = index.get("manifests") or []
        if len(manifests) != 1:
            raise skopeo.RegistryError(f"expected one manifest in the copied image, found {len(manifests)}")
        desc = manifests[0]
        self._check_blob(desc)
        manifest = json.loads(self.store.get_blob(desc["digest"]))
        for blob in [manifest.get("config") or {}, *(manifest.get("layers") or [])]:
            self._check_blob(blob)
        return desc

    def _check_blob(self, desc: Obj) -> None:
        algo, _, hexd = str(desc.get("digest", "")).partition(":")
        if algo != "sha256" or len(hexd) != 64:
            raise skopeo.RegistryError(f"unsupported digest {desc.get('digest')!r}")
        h = hashlib.sha256()
        size = 0
        with open(os.path.join(self.store.blobs, hexd), "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
        if h.hexdigest() != hexd or ("size" in desc and int(desc["size"]) != size):
            os.unlink(os.path.join(self.store.blobs, hexd))   # never leave bad content under a good name
            raise skopeo.RegistryError(f"blob {desc['digest']} failed verification: the stored content does not "
                                       f"match its digest and size")


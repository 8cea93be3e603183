"""A pod's volumes on the node: what the kubelet's volume manager does for one pod.

Set up once before the pod's containers start (a failure leaves the pod in
ContainerCreating with a FailedMount event, and is retried), then kept current:
configMap, secret, downwardAPI and projected volumes are rewritten atomically when the
objects they come from change (the node agent watches exactly those objects through the
API), when the pod's labels or annotations change, and before a projected token needs
its refresh. emptyDir, hostPath and persistentVolumeClaim volumes are made once.

Volumes live under ``<pod dir>/volumes/kubernetes.io~<kind>/<name>`` as on a kubelet, so
removing the pod's directory removes them (a Memory emptyDir's tmpfs is unmounted
first). A container gets its volumeMounts as `Mount`s the runtime binds; a subPath is
resolved at container start, inside the volume, so it does not follow later updates.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

from kubelite.node.runtime.base import Mount, expand_vars

from . import atomic, configmap, downwardapi, emptydir, hostpath, projected, pvc, secret
from .base import Obj, Ref, SetupError, VolumeAPI
from .token import TokenManager

SUPPORTED = ("emptyDir", "configMap", "secret", "downwardAPI", "projected", "hostPath", "persistentVolumeClaim")
ATOMIC = ("configMap", "secret", "downwardAPI", "projected")
KIND_DIRS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
             "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
             "projected": "kubernetes.io~projected"}


def volume_kind(volume: Obj) -> str:
    """The source kind of a volume (`emptyDir`, `nfs`, …); an empty one counts as emptyDir."""
    for k, v in volume.items():
        if k != "name" and v is not None:
            return k
    return "emptyDir"


def failed_mount(volume: str, message: str) -> str:
    """The kubelet's FailedMount event message."""
    return f'MountVolume.SetUp failed for volume "{volume}" : {message}'


def unsupported_message(kind: str) -> str:
    """Why a volume of `kind` cannot be mounted here."""
    return (f"unsupported volume type {kind}: this node provides emptyDir, configMap, secret, downwardAPI, "
            f"projected, hostPath and persistentVolumeClaim volumes only")


def _effective(pod: Obj, container: Obj, key: str) -> object:
    csc = container.get("securityContext") or {}
    if csc.get(key) is not None:
        return csc[key]
    return ((pod.get("spec") or {}).get("securityContext") or {}).get(key)


def fs_user(pod: Obj) -> int | None:
    """The uid every container of the pod runs as, when they all set the same one (upstream's FsUser)."""
    spec = pod.get("spec") or {}
    users = {_effective(pod, c, "runAsUser") for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])}
    if len(users) == 1:
        (only,) = users
        return only if isinstance(only, int) else None
    return None


def fs_group(pod: Obj) -> int | None:
    """The pod's fsGroup."""
    g = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    return g if isinstance(g, int) else None


def fs_group_change_policy(pod: Obj) -> str | None:
    """The pod's fsGroupChangePolicy (None: the default, Always)."""
    p = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroupChangePolicy")
    return p if isinstance(p, str) else None


class PodVolumes:
    """The volumes of one pod, set up under its directory."""

    def __init__(self, pod: Obj, pod_dir: str, api: VolumeAPI):
        self.pod = pod
        self.root = os.path.join(pod_dir, "volumes")
        self.api = api
        self.tokens = TokenManager(api)
        self.paths: dict[str, str] = {}     # volume name -> host path, once set up
        self.kinds: dict[str, str] = {}
        self.read_only: set[str] = set()    # volumes every container gets read-only (a claim's readOnly)

    @property
    def volumes(self) -> list[Obj]:
        """The pod's volumes."""
        return list((self.pod.get("spec") or {}).get("volumes") or [])

    def refs(self) -> set[Ref]:
        """The ConfigMaps and Secrets the volumes read (what the node must watch)."""
        ns = str((self.pod.get("metadata") or {}).get("namespace") or "default")
        out: set[Ref] = set()
        for v in self.volumes:
            if v.get("configMap") is not None:
                out.add(("ConfigMap", ns, str(v["configMap"].get("name", ""))))
            if v.get("secret") is not None:
                out.add(("Secret", ns, str(v["secret"].get("secretName", ""))))
            for src in (v.get("projected") or {}).get("sources") or []:
                if src.get("configMap") is not None:
                    out.add(("ConfigMap", ns, str(src["configMap"].get("name", ""))))
                if src.get("secret") is not None:
                    out.add(("Secret", ns, str(src["secret"].get("name", ""))))
        return out

    def unsupported(self) -> list[tuple[str, str]]:
        """(volume name, kind) of every volume this node cannot provide."""
        return [(str(v.get("name", "")), volume_kind(v)) for v in self.volumes if volume_kind(v) not in SUPPORTED]

    async def setup(self, only: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """Set up (or refresh) every volume (of a kind in `only`); (name, message) of each failure."""
        failures: list[tuple[str, str]] = []
        for v in self.volumes:
            name, kind = str(v.get("name", "")), volume_kind(v)
            if only is not None and kind not in only:
                continue
            if kind not in SUPPORTED:
                failures.append((name, unsupported_message(kind)))
                continue
            try:
                self.paths[name] = await self._setup_one(name, kind, v[kind] or {})
                self.kinds[name] = kind
            except SetupError as e:
                failures.append((name, str(e)))
            except (OSError, atomic.PayloadError) as e:
                failures.append((name, str(e)))
        return failures

    async def refresh(self) -> list[tuple[str, str]]:
        """Rewrite the volumes that follow their sources (configMap, secret, downwardAPI, projected)."""
        return await self.setup(ATOMIC)

    async def _setup_one(self, name: str, kind: str, source: Obj) -> str:
        if kind == "hostPath":
            return hostpath.setup(source)
        if kind == "persistentVolumeClaim":
            if pvc.read_only(source):
                self.read_only.add(name)
            ns = str((self.pod.get("metadata") or {}).get("namespace") or "default")
            return await pvc.setup(source, ns, self.api)
        path = os.path.join(self.root, KIND_DIRS[kind], name)
        group = fs_group(self.pod)
        if kind == "emptyDir":
            emptydir.setup(path, source, fs_group=group, change_policy=fs_group_change_policy(self.pod))
            return path
        ns = str((self.pod.get("metadata") or {}).get("namespace") or "default")
        files: dict[str, atomic.FileProjection]
        if kind == "configMap":
            files = configmap.payload(source, await self.api.get_object("ConfigMap", ns, str(source.get("name", ""))))
        elif kind == "secret":
            files = secret.payload(source, await self.api.get_object("Secret", ns, str(source.get("secretName", ""))))
        elif kind == "downwardAPI":
            files = downwardapi.payload(source, self.pod)
        else:
            files = await projected.payload(source, self.pod, get=self.api.get_object, tokens=self.tokens,
                                            fs_user=fs_user(self.pod), fs_group=group)
        atomic.write(path, files, gid=group)
        return path

    def next_refresh(self) -> float | None:
        """When a projected token is next due (seconds since the epoch), if any."""
        return self.tokens.next_refresh()

    def container_mounts(self, container: Obj, env: dict[str, str]) -> list[Mount]:
        """The container's volumeMounts as host paths; ValueError (a container config
        error) for a subPath that cannot be had."""
        out: list[Mount] = []
        cname = str(container.get("name", ""))
        for m in container.get("volumeMounts") or []:
            name = str(m.get("name", ""))
            src = self.paths.get(name)
            if src is None:
                raise ValueError(f'volume "{name}" of container "{cname}" is not mounted')
            kind = self.kinds.get(name, "")
            sub = str(m.get("subPath") or "")
            if not sub and m.get("subPathExpr"):
                sub = expand_vars(str(m["subPathExpr"]), env)
            if sub:
                src = self._sub_path(src, sub, kind, name, cname)
            readonly = bool(m.get("readOnly")) or kind in ATOMIC or name in self.read_only
            out.append(Mount(source=src, destination=str(m.get("mountPath", "")), readonly=readonly))
        return out

    @staticmethod
    def _sub_path(volume: str, sub: str, kind: str, name: str, container: str) -> str:
        failed = f'failed to prepare subPath for volumeMount "{name}" of container "{container}"'
        if sub.startswith("/") or ".." in sub.split("/"):
            raise ValueError(failed)
        root = os.path.realpath(volume)
        full = os.path.realpath(os.path.join(volume, sub))
        # Resolved through the volume's own symlinks, and never out of the volume.
        if full != root and not full.startswith(root + "/"):
            raise ValueError(failed)
        if not os.path.lexists(full):
            if kind not in ("emptyDir", "hostPath", "persistentVolumeClaim"):
                raise ValueError(failed)
            os.makedirs(full, mode=0o755, exist_ok=True)
        return full


def teardown(pod_dir: str) -> None:
    """Unmount and remove what volumes left under a pod's directory (a Memory emptyDir's tmpfs)."""
    from kubelite.node.runtime.oci import rootfs
    rootfs.remove_tree(os.path.join(pod_dir, "volumes"))

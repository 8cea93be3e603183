"""The volume kinds without a server: the atomic writer's layout and updates, each kind's
files (items, modes, optional, missing keys, upstream's error words), the token manager's
refresh point, the per-pod manager's mounts and subPaths, and the container environment."""
from __future__ import annotations

import base64
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kubelite.node import envvars
from kubelite.node.volumes import atomic, configmap, downwardapi, emptydir, hostpath, projected, secret
from kubelite.node.volumes.atomic import FileProjection
from kubelite.node.volumes.base import Obj, Ref, SetupError, go_quote
from kubelite.node.volumes.manager import PodVolumes, failed_mount, volume_kind
from kubelite.node.volumes.token import Token, TokenManager


def _files(d: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in d.iterdir() if not p.name.startswith("..")}


# -- the atomic writer ------------------------------------------------------------------------

def test_atomic_writer_publishes_through_a_data_link(tmp_path):
    assert atomic.write(str(tmp_path), {"a": FileProjection(b"1"), "sub/b": FileProjection(b"2", 0o600)})
    data = os.readlink(tmp_path / "..data")
    assert data.startswith("..") and (tmp_path / data).is_dir()
    assert os.readlink(tmp_path / "a") == "..data/a"
    assert os.readlink(tmp_path / "sub") == "..data/sub"
    assert (tmp_path / "sub" / "b").read_text() == "2"
    assert stat.S_IMODE(os.stat(tmp_path / "sub" / "b").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o644


def test_atomic_writer_swaps_the_data_and_drops_names_that_went_away(tmp_path):
    atomic.write(str(tmp_path), {"a": FileProjection(b"1"), "gone": FileProjection(b"x")})
    first = os.readlink(tmp_path / "..data")
    with open(tmp_path / "a", "rb") as held:  # a reader holding the old file keeps reading it whole
        assert atomic.write(str(tmp_path), {"a": FileProjection(b"2"), "new": FileProjection(b"n")})
        assert held.read() == b"1"
    second = os.readlink(tmp_path / "..data")
    assert second != first and not (tmp_path / first).exists()
    assert _files(tmp_path) == {"a": "2", "new": "n"}
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith("..")) == sorted(["..data", second])


def test_atomic_writer_leaves_an_unchanged_payload_alone(tmp_path):
    atomic.write(str(tmp_path), {"a": FileProjection(b"1")})
    before = os.readlink(tmp_path / "..data")
    assert atomic.write(str(tmp_path), {"a": FileProjection(b"1")}) is False
    assert os.readlink(tmp_path / "..data") == before
    assert atomic.write(str(tmp_path), {"a": FileProjection(b"1", 0o400)}) is True


@pytest.mark.parametrize("bad", ["/abs", "../up", "a/../../b", "..data", "..x/y", "a//b"])
def test_atomic_writer_refuses_paths_that_could_escape(tmp_path, bad):
    with pytest.raises(atomic.PayloadError):
        atomic.write(str(tmp_path), {bad: FileProjection(b"x")})
    assert not (tmp_path / "..data").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_atomic_writer_gives_files_to_the_fs_group(tmp_path):
    atomic.write(str(tmp_path), {"k": FileProjection(b"v", 0o400)}, gid=1234)
    st = os.stat(tmp_path / "k")
    assert st.st_gid == 1234 and stat.S_IMODE(st.st_mode) == 0o440
    d = os.stat(tmp_path / os.readlink(tmp_path / "..data"))
    assert d.st_gid == 1234 and d.st_mode & stat.S_ISGID


# -- configMap and secret ------------------------------------------------------------------

CM = {"data": {"a": "alpha", "b": "beta"}, "binaryData": {"bin": base64.b64encode(b"\x00\x01").decode()}}


def test_configmap_volume_has_every_key_with_the_default_mode():
    out = configmap.payload({"name": "cm", "defaultMode": 0o400}, CM)
    assert out == {"a": FileProjection(b"alpha", 0o400), "b": FileProjection(b"beta", 0o400),
                   "bin": FileProjection(b"\x00\x01", 0o400)}


def test_configmap_items_map_keys_to_paths_with_their_own_mode():
    out = configmap.payload({"name": "cm", "items": [{"key": "a", "path": "x/y", "mode": 0o600}, {"key": "b",
                                                                                                   "path": "b"}]}, CM)
    assert out == {"x/y": FileProjection(b"alpha", 0o600), "b": FileProjection(b"beta", 0o644)}


def test_configmap_missing_object_and_key_use_upstreams_words():
    with pytest.raises(SetupError, match='^configmap "cm" not found$'):
        configmap.payload({"name": "cm"}, None)
    with pytest.raises(SetupError, match="^configmap references non-existent config key: zz$"):
        configmap.payload({"name": "cm", "items": [{"key": "zz", "path": "z"}]}, CM)
    assert configmap.payload({"name": "cm", "optional": True}, None) == {}
    assert configmap.payload({"name": "cm", "optional": True, "items": [{"key": "zz", "path": "z"}]}, CM) == {}


def test_secret_volume_decodes_data_and_uses_upstreams_words():
    s = {"data": {"pw": base64.b64encode(b"hunter2").decode()}}
    assert secret.payload({"secretName": "s"}, s) == {"pw": FileProjection(b"hunter2", 0o644)}
    with pytest.raises(SetupError, match='^secret "s" not found$'):
        secret.payload({"secretName": "s"}, None)
    with pytest.raises(SetupError, match="^references non-existent secret key: nope$"):
        secret.payload({"secretName": "s", "items": [{"key": "nope", "path": "n"}]}, s)


# -- downwardAPI ---------------------------------------------------------------------------

POD: Obj = {"metadata": {"name": "web", "namespace": "ns", "uid": "u-1", "labels": {"b": "2", "a": 'q"t'},
                         "annotations": {"note": "x\ny"}},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "250m", "memory": "32Mi"},
                                                                 "limits": {"memory": "64Mi"}}}]}}


def test_downward_api_volume_writes_fields_and_resources():
    src = {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                     {"path": "note", "fieldRef": {"fieldPath": "metadata.annotations['note']"}},
                     {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400},
                     {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "requests.cpu",
                                                          "divisor": "1m"}},
                     {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory",
                                                          "divisor": "1Mi"}}]}
    out = {k: v.data.decode() for k, v in downwardapi.payload(src, POD).items()}
    assert out == {"labels": 'a="q\\"t"\nb="2"', "note": "x\ny", "name": "web", "cpu": "250", "mem": "64"}
    assert downwardapi.payload(src, POD)["name"].mode == 0o400


def test_go_quote_escapes_as_go_does():
    assert go_quote('a"b\\c\n\x01') == '"a\\"b\\\\c\\n\\x01"'


# -- hostPath and emptyDir -----------------------------------------------------------------

def test_host_path_types_are_checked_as_upstream(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert hostpath.setup({"path": str(tmp_path), "type": "Directory"}) == str(tmp_path)
    with pytest.raises(SetupError, match=f"^hostPath type check failed: {f} is not a directory$"):
        hostpath.setup({"path": str(f), "type": "Directory"})
    with pytest.raises(SetupError, match="is not a socket file$"):
        hostpath.setup({"path": str(f), "type": "Socket"})
    made = tmp_path / "made" / "deep"
    hostpath.setup({"path": str(made), "type": "DirectoryOrCreate"})
    assert made.is_dir()
    touched = tmp_path / "touched"
    hostpath.setup({"path": str(touched), "type": "FileOrCreate"})
    assert touched.is_file()
    assert hostpath.setup({"path": str(tmp_path / "absent")}) == str(tmp_path / "absent")  # no type: no check


def test_empty_dir_is_world_writable_and_keeps_its_contents(tmp_path):
    d = tmp_path / "e"
    emptydir.setup(str(d), {}, fs_group=None)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o777
    (d / "f").write_text("kept")
    emptydir.setup(str(d), {}, fs_group=None)
    assert (d / "f").read_text() == "kept"
    with pytest.raises(SetupError, match="not supported"):
        emptydir.setup(str(tmp_path / "h"), {"medium": "HugePages"}, fs_group=None)


# -- tokens and projected volumes ------------------------------------------------------------

class FakeAPI:
    """A VolumeAPI over dicts; counts TokenRequests."""

    def __init__(self, objects: dict[Ref, Obj] | None = None, lifetime: int = 3600):
        self.objects = objects or {}
        self.lifetime = lifetime
        self.requests: list[Obj] = []
        self.watched: dict[str, set[Ref]] = {}

    async def get_object(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get((kind, namespace, name))

    async def get_storage(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get((kind, namespace, name))

    async def request_token(self, namespace: str, service_account: str, request: Obj) -> Obj:
        self.requests.append(request)
        exp = time.time() + self.lifetime
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
        return {"spec": dict(request["spec"], expirationSeconds=self.lifetime),
                "status": {"token": f"tok-{len(self.requests)}", "expirationTimestamp": stamp}}

    def watch_objects(self, owner: str, refs: set[Ref], on_change: Callable[[], None]) -> None:
        self.watched[owner] = refs

    def forget(self, owner: str) -> None:
        self.watched.pop(owner, None)


def test_token_refresh_is_due_at_eighty_percent_of_its_lifetime():
    t = Token("x", issued=1000.0, expires=1000.0 + 3600)
    assert t.refresh_at(0) == 1000.0 + 0.8 * 3600
    assert t.refresh_at(10) == 1000.0 + 0.8 * 3600 - 10
    long = Token("y", issued=0.0, expires=10 * 24 * 3600.0)
    assert long.refresh_at(0) == 24 * 3600  # no token is kept past a day


async def test_token_manager_asks_once_bound_to_the_pod_then_again_when_due():
    api = FakeAPI()
    tm = TokenManager(api)
    pod = {"metadata": {"name": "web", "namespace": "ns", "uid": "u-1"}, "spec": {"serviceAccountName": "robot"}}
    first = await tm.token(pod, {"audience": "vault", "expirationSeconds": 7200, "path": "t"})
    again = await tm.token(pod, {"audience": "vault", "expirationSeconds": 7200, "path": "t"})
    assert first.value == again.value == "tok-1"
    assert api.requests[0]["spec"] == {"audiences": ["vault"], "expirationSeconds": 7200,
                                       "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "web",
                                                          "uid": "u-1"}}
    due = tm.next_refresh()
    assert due is not None and time.time() + 0.8 * 3600 - 11 <= due <= time.time() + 0.8 * 3600
    tm._tokens[("robot", "vault", 7200)] = Token("old", issued=time.time() - 3000, expires=time.time() + 600)
    assert (await tm.token(pod, {"audience": "vault", "expirationSeconds": 7200})).value == "tok-2"


async def test_projected_volume_is_the_service_account_token_ca_and_namespace():
    api = FakeAPI({("ConfigMap", "ns", "kube-root-ca.crt"): {"data": {"ca.crt": "PEM"}}})
    pod = {"metadata": {"name": "web", "namespace": "ns", "uid": "u"}, "spec": {}}
    src = {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}
    out = await projected.payload(src, pod, get=api.get_object, tokens=TokenManager(api), fs_user=None, fs_group=None)
    assert {k: (v.data, v.mode) for k, v in out.items()} == {"token": (b"tok-1", 0o644), "ca.crt": (b"PEM", 0o644),
                                                             "namespace": (b"ns", 0o644)}
    with_group = await projected.payload(src, pod, get=api.get_object, tokens=TokenManager(api), fs_user=1000,
                                         fs_group=2000)
    assert (with_group["token"].mode, with_group["token"].uid) == (0o600, 1000)


async def test_projected_volume_reports_every_failing_source_together():
    api = FakeAPI()
    pod = {"metadata": {"name": "web", "namespace": "ns", "uid": "u"}, "spec": {}}
    src = {"sources": [{"configMap": {"name": "a"}}, {"secret": {"name": "b"}}, {"secret": {"name": "c",
                                                                                            "optional": True}}]}
    with pytest.raises(SetupError) as e:
        await projected.payload(src, pod, get=api.get_object, tokens=TokenManager(api), fs_user=None, fs_group=None)
    assert str(e.value) == '[configmap "a" not found, secret "b" not found]'


# -- the per-pod manager -----------------------------------------------------------------------

def _pod(volumes: list[Obj], mounts: list[Obj]) -> Obj:
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "u"},
            "spec": {"volumes": volumes, "containers": [{"name": "c", "volumeMounts": mounts}]}}


async def test_manager_sets_up_volumes_and_gives_mounts(tmp_path):
    api = FakeAPI({("ConfigMap", "ns", "cm"): {"data": {"k": "v"}}})
    pod = _pod([{"name": "cfg", "configMap": {"name": "cm"}}, {"name": "scratch", "emptyDir": {}}],
               [{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "scratch", "mountPath": "/s"},
                {"name": "cfg", "mountPath": "/etc/k", "subPath": "k"},
                {"name": "scratch", "mountPath": "/w", "subPathExpr": "$(POD)/x"}])
    vols = PodVolumes(pod, str(tmp_path), api)
    assert vols.refs() == {("ConfigMap", "ns", "cm")}
    assert await vols.setup() == []
    cfg = tmp_path / "volumes" / "kubernetes.io~configmap" / "cfg"
    scratch = tmp_path / "volumes" / "kubernetes.io~empty-dir" / "scratch"
    assert (cfg / "k").read_text() == "v"
    mounts = vols.container_mounts(pod["spec"]["containers"][0], {"POD": "web"})
    data_dir = cfg / os.readlink(cfg / "..data")
    assert [(m.source, m.destination, m.readonly) for m in mounts] == [
        (str(cfg), "/etc/cfg", True), (str(scratch), "/s", False),
        (str(data_dir / "k"), "/etc/k", True),  # resolved now: a later update does not reach it
        (str(scratch / "web" / "x"), "/w", False)]
    assert (scratch / "web" / "x").is_dir()


async def test_manager_refuses_a_sub_path_leaving_the_volume(tmp_path):
    pod = _pod([{"name": "e", "emptyDir": {}}], [{"name": "e", "mountPath": "/m", "subPath": "link"}])
    vols = PodVolumes(pod, str(tmp_path), FakeAPI())
    assert await vols.setup() == []
    os.symlink("/etc", tmp_path / "volumes" / "kubernetes.io~empty-dir" / "e" / "link")
    with pytest.raises(ValueError, match='^failed to prepare subPath for volumeMount "e" of container "c"$'):
        vols.container_mounts(pod["spec"]["containers"][0], {})


async def test_manager_reports_unsupported_kinds_and_missing_sources(tmp_path):
    pod = _pod([{"name": "share", "nfs": {"server": "s", "path": "/"}}, {"name": "disk",
                                                                         "iscsi": {"targetPortal": "x"}},
                {"name": "cfg", "configMap": {"name": "absent"}}], [])
    vols = PodVolumes(pod, str(tmp_path), FakeAPI())
    assert [k for _, k in vols.unsupported()] == ["nfs", "iscsi"]
    failures = dict(await vols.setup())
    assert failures["cfg"] == 'configmap "absent" not found'
    assert failures["share"].startswith("unsupported volume type nfs: ")
    assert failures["disk"].startswith("unsupported volume type iscsi: ")
    assert failed_mount("cfg", failures["cfg"]) == \
        'MountVolume.SetUp failed for volume "cfg" : configmap "absent" not found'
    assert volume_kind({"name": "x"}) == "emptyDir"


async def test_manager_refresh_follows_a_changed_configmap(tmp_path):
    api = FakeAPI({("ConfigMap", "ns", "cm"): {"data": {"k": "one"}}})
    pod = _pod([{"name": "cfg", "configMap": {"name": "cm"}}], [])
    vols = PodVolumes(pod, str(tmp_path), api)
    await vols.setup()
    api.objects[("ConfigMap", "ns", "cm")] = {"data": {"k": "two", "k2": "new"}}
    assert await vols.refresh() == []
    cfg = tmp_path / "volumes" / "kubernetes.io~configmap" / "cfg"
    assert _files(cfg) == {"k": "two", "k2": "new"}


# -- the environment -----------------------------------------------------------------------

async def test_container_env_from_every_source():
    objects = {("ConfigMap", "ns", "cm"): {"data": {"MODE": "fast", "1bad": "x"}},
               ("Secret", "ns", "s"): {"data": {"pw": base64.b64encode(b"hunter2").decode()}}}

    async def lookup(kind: str, ns: str, name: str) -> Obj | None:
        return objects.get((kind, ns, name))
    pod = {"metadata": {"name": "web", "namespace": "ns", "uid": "u-1", "labels": {"app": "web"}},
           "spec": {"nodeName": "n1", "serviceAccountName": "robot", "enableServiceLinks": False}}
    container = {"name": "c", "resources": {"limits": {"cpu": "1500m"}},
                 "envFrom": [{"configMapRef": {"name": "cm"}}, {"secretRef": {"name": "s"}, "prefix": "S_"},
                             {"configMapRef": {"name": "none", "optional": True}}],
                 "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                         {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                         {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                         {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                         {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                         {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
                         {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "no",
                                                                           "optional": True}}},
                         {"name": "BOTH", "value": "$(MODE)-$(N)"}]}
    warned: list[tuple[str, str]] = []
    env = await envvars.container_env(pod, container, services=[], host_ip="127.0.0.1", pod_ip="10.0.0.5",
                                      lookup=lookup, warn=lambda r, m: warned.append((r, m)))
    assert {k: v for k, v in env.items() if k != "HOSTNAME"} == {
        "MODE": "fast", "S_pw": "hunter2", "N": "web", "APP": "web", "NODE": "n1", "SA": "robot", "IP": "10.0.0.5",
        "HOST": "127.0.0.1", "CPU": "2", "PW": "hunter2", "BOTH": "fast-web"}
    assert warned == [("InvalidEnvironmentVariableNames",
                       "Keys [1bad] from the EnvFrom configMap ns/cm were skipped since they are considered invalid "
                       "environment variable names.")]


async def test_container_env_missing_references_use_upstreams_words():
    async def lookup(kind: str, ns: str, name: str) -> Obj | None:
        return {"data": {}} if name == "there" else None
    pod = {"metadata": {"name": "web", "namespace": "ns"}, "spec": {}}

    async def env_of(ref: Obj) -> None:
        await envvars.container_env(pod, {"name": "c", "env": [{"name": "X", "valueFrom": ref}]}, services=[],
                                    host_ip="", pod_ip="", lookup=lookup)
    with pytest.raises(ValueError, match='^configmap "gone" not found$'):
        await env_of({"configMapKeyRef": {"name": "gone", "key": "k"}})
    with pytest.raises(ValueError, match="^couldn't find key k in ConfigMap ns/there$"):
        await env_of({"configMapKeyRef": {"name": "there", "key": "k"}})
    with pytest.raises(ValueError, match="^couldn't find key k in Secret ns/there$"):
        await env_of({"secretKeyRef": {"name": "there", "key": "k"}})

"""Volumes and env end to end: a real `kubelite server --runtime oci`, a busybox image the
test builds, and the real kubectl 1.33. Everything is read through `kubectl exec` (no pod
address is ever dialled), and the module ends with proof that no mount is left behind.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
from conftest import create_namespace, start_server
from test_runtime_oci import build_busybox_dir

from kubelite.node.runtime.oci import rootfs
from kubelite.node.runtime.oci.runtime import missing

IMAGE = "busybox-vol:1"
EXTRA_APPLETS = ("stat", "readlink", "head", "cut", "tr", "base64")
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """A server with the oci runtime and a busybox image; at the end, no mount left under its data."""
    why = missing()
    assert why is None, f"the oci volume tests need root, runc, conmon and catatonit: {why}"
    tmp = tmp_path_factory.mktemp("vol")
    data = tmp / "data"
    image_dir = build_busybox_dir(tmp / "image")
    for applet in EXTRA_APPLETS:
        os.symlink("busybox", image_dir / "bin" / applet)
    p = _cli("image", "import", IMAGE, str(image_dir), "--cmd", "sh", "--data-dir", str(data))
    assert p.returncode == 0, p.stderr
    server = start_server(tmp, "--runtime", "oci", data_dir=data)
    try:
        yield server
    finally:
        server.stop()
        killed = _cli("killall", "--data-dir", str(data))
        assert killed.returncode == 0, killed.stderr
        assert rootfs.mounts_below(str(data)) == []


@pytest.fixture
def ns(request, srv):
    return create_namespace(srv, request, "v")


def apply(srv, ns: str, *objs: dict) -> None:
    srv.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                 "items": list(objs)}), check=True)


def pod(name: str, containers: list[dict], *, volumes: list[dict] | None = None, **spec: object) -> dict:
    for c in containers:
        c.setdefault("image", IMAGE)
        c.setdefault("command", ["sleep", "3600"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": containers, "volumes": volumes or [],
                     **spec}}


def configmap(name: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def secret(name: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def wait_running(srv, ns: str, name: str) -> None:
    def running() -> bool:
        st = srv.kjson("-n", ns, "get", "pod", name).get("status") or {}
        cs = st.get("containerStatuses") or []
        return bool(cs) and all("running" in (c.get("state") or {}) for c in cs)
    srv.wait_for(running, timeout=90, what=f"pod {ns}/{name} running")


def sh(srv, ns: str, name: str, script: str, container: str = "") -> str:
    args = ["-n", ns, "exec", name] + (["-c", container] if container else []) + ["--", "sh", "-c", script]
    return srv.kubectl(*args, check=True).stdout


def events(srv, ns: str, reason: str) -> list[str]:
    items = srv.kjson("-n", ns, "get", "events").get("items") or []
    return [e.get("message", "") for e in items if e.get("reason") == reason]


def test_should_be_consumable_from_pods_in_volume(srv, ns):
    # [sig-storage] ConfigMap should be consumable from pods in volume
    apply(srv, ns, configmap("cfg", {"data-1": "value-1", "data-2": "value-2"}),
          pod("p", [{"name": "c", "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]}],
              volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}]))
    wait_running(srv, ns, "p")
    assert sh(srv, ns, "p", "cat /etc/cfg/data-1") == "value-1"
    assert sh(srv, ns, "p", "ls /etc/cfg").split() == ["data-1", "data-2"]
    # The atomic writer's layout: user-visible names are links into ..data.
    assert sh(srv, ns, "p", "readlink /etc/cfg/data-1") == "..data/data-1\n"
    assert sh(srv, ns, "p", "stat -L -c %a /etc/cfg/data-1") == "644\n"
    # Read-only, as upstream mounts configMap volumes.
    denied = srv.kubectl("-n", ns, "exec", "p", "--", "touch", "/etc/cfg/new")
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr


def test_updates_should_be_reflected_in_volume(srv, ns):
    # [sig-storage] ConfigMap updates should be reflected in volume; a subPath mount does not follow.
    apply(srv, ns, configmap("live", {"key": "before"}),
          pod("p", [{"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/etc/live"},
                                                   {"name": "v", "mountPath": "/etc/pinned", "subPath": "key"}]}],
              volumes=[{"name": "v", "configMap": {"name": "live"}}]))
    wait_running(srv, ns, "p")
    assert sh(srv, ns, "p", "cat /etc/live/key") == "before"
    srv.kubectl("-n", ns, "patch", "configmap", "live", "-p", '{"data": {"key": "after"}}', check=True)
    srv.wait_for(lambda: sh(srv, ns, "p", "cat /etc/live/key") == "after", timeout=60,
                 what="the update in the container")
    assert sh(srv, ns, "p", "cat /etc/pinned") == "before"


def test_secret_should_be_consumable_in_volume_with_mappings_and_item_mode_set(srv, ns):
    # [sig-storage] Secrets should be consumable from pods in volume with mappings and Item Mode set
    apply(srv, ns, secret("s", {"data-1": "secret-1", "data-2": "secret-2"}),
          pod("p", [{"name": "c", "volumeMounts": [{"name": "s", "mountPath": "/etc/s"}]}],
              volumes=[{"name": "s", "secret": {"secretName": "s", "defaultMode": 0o440,
                                                "items": [{"key": "data-1", "path": "new/path-1", "mode": 0o400}]}}]))
    wait_running(srv, ns, "p")
    assert sh(srv, ns, "p", "cat /etc/s/new/path-1") == "secret-1"
    assert sh(srv, ns, "p", "stat -L -c %a /etc/s/new/path-1") == "400\n"
    assert sh(srv, ns, "p", "ls /etc/s").split() == ["new"]


def test_volumes_are_owned_by_the_fs_group(srv, ns):
    apply(srv, ns, configmap("g", {"k": "v"}),
          pod("p", [{"name": "c", "volumeMounts": [{"name": "g", "mountPath": "/g"}, {"name": "e", "mountPath": "/e"}]}],
              volumes=[{"name": "g", "configMap": {"name": "g"}}, {"name": "e", "emptyDir": {}}],
              securityContext={"runAsUser": 1000, "fsGroup": 2000}))
    wait_running(srv, ns, "p")
    assert sh(srv, ns, "p", "stat -L -c %g /g/k; stat -c %g /e") == "2000\n2000\n"
    assert sh(srv, ns, "p", "cat /g/k; echo hi > /e/f && cat /e/f") == "vhi\n"


def test_emptydir_is_shared_by_the_containers_of_a_pod(srv, ns):
    # [sig-storage] EmptyDir volumes pod should support shared volumes between containers
    apply(srv, ns, pod("p", [
        {"name": "writer", "command": ["sh", "-c", "echo shared-data > /data/f; sleep 3600"],
         "volumeMounts": [{"name": "d", "mountPath": "/data"}]},
        {"name": "reader", "volumeMounts": [{"name": "d", "mountPath": "/in"}, {"name": "m", "mountPath": "/mem"}]},
    ], volumes=[{"name": "d", "emptyDir": {}}, {"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}]))
    wait_running(srv, ns, "p")
    srv.wait_for(lambda: sh(srv, ns, "p", "cat /in/f 2>/dev/null || true", "reader") == "shared-data\n",
                 what="the writer's file in the reader")
    mounts = sh(srv, ns, "p", "cat /proc/mounts", "reader")
    assert any(line.split()[1] == "/mem" and line.split()[2] == "tmpfs" and "size=8192k" in line
               for line in mounts.splitlines()), mounts


def test_should_mount_an_api_token_into_pods(srv, ns):
    # [sig-auth] ServiceAccounts should mount an API token into pods
    apply(srv, ns, pod("p", [{"name": "c"}]))
    wait_running(srv, ns, "p")
    assert sh(srv, ns, "p", f"cat {SA_DIR}/namespace") == ns
    root_ca = srv.kjson("-n", ns, "get", "configmap", "kube-root-ca.crt")["data"]["ca.crt"]
    assert sh(srv, ns, "p", f"cat {SA_DIR}/ca.crt") == root_ca
    token = sh(srv, ns, "p", f"cat {SA_DIR}/token")
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    uid = srv.kjson("-n", ns, "get", "pod", "p")["metadata"]["uid"]
    assert claims["kubernetes.io"]["namespace"] == ns
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "default"
    assert claims["kubernetes.io"]["pod"] == {"name": "p", "uid": uid}
    assert claims["exp"] - claims["iat"] == 3607
    # The API server takes the token the pod was given.
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    out = json.loads(srv.kubectl("create", "--validate=false", "-f", "-", "-o", "json", input=json.dumps(review),
                                 check=True).stdout)
    assert out["status"]["authenticated"] is True
    assert out["status"]["user"]["username"] == f"system:serviceaccount:{ns}:default"


def test_should_provide_container_env_from_configmap_secret_and_fieldref(srv, ns):
    # [sig-node] ConfigMap should be consumable via environment variable / via the environment;
    # Downward API should provide pod name, namespace and IP address as env vars
    apply(srv, ns, configmap("env", {"MODE": "fast", "1bad": "x"}), secret("sec", {"PASSWORD": "hunter2"}),
          pod("p", [{"name": "c", "resources": {"limits": {"memory": "64Mi"}},
                     "envFrom": [{"configMapRef": {"name": "env"}, "prefix": "CM_"}, {"configMapRef": {"name": "env"}}],
                     "env": [{"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "PASSWORD"}}},
                             {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                             {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                             {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                             {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                             {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                                  "divisor": "1Mi"}}}]}]))
    wait_running(srv, ns, "p")
    env = dict(line.split("=", 1) for line in sh(srv, ns, "p", "env").splitlines() if "=" in line)
    ip = srv.kjson("-n", ns, "get", "pod", "p")["status"]["podIP"]
    assert (env["CM_MODE"], env["PASS"], env["POD_NAME"], env["POD_NS"], env["APP"], env["MY_IP"], env["MEM_MI"]) == (
        "fast", "hunter2", "p", ns, "p", ip, "64")
    assert env["CM_1bad"] == "x" and env["MODE"] == "fast" and "1bad" not in env
    assert events(srv, ns, "InvalidEnvironmentVariableNames") == [
        f"Keys [1bad] from the EnvFrom configMap {ns}/env were skipped since they are considered invalid "
        f"environment variable names."]


def _wait_creating(srv, ns: str, name: str) -> None:
    """The pod's container is reported waiting in ContainerCreating (the agent writes a starting
    pod's status up to a second after the event that said why it waits)."""
    def creating() -> bool:
        statuses = srv.kjson("-n", ns, "get", "pod", name)["status"].get("containerStatuses") or []
        return bool(statuses) and (statuses[0]["state"].get("waiting") or {}).get("reason") == "ContainerCreating"
    srv.wait_for(creating, timeout=30, what=f"{name} waiting in ContainerCreating")


def test_a_missing_configmap_keeps_the_pod_creating_until_it_exists(srv, ns):
    apply(srv, ns, pod("p", [{"name": "c", "volumeMounts": [{"name": "late", "mountPath": "/late"}]}],
                       volumes=[{"name": "late", "configMap": {"name": "later"}}]))
    srv.wait_for(lambda: 'MountVolume.SetUp failed for volume "late" : configmap "later" not found'
                 in events(srv, ns, "FailedMount"), timeout=60, what="FailedMount")
    _wait_creating(srv, ns, "p")
    apply(srv, ns, configmap("later", {"k": "arrived"}))
    wait_running(srv, ns, "p")
    assert sh(srv, ns, "p", "cat /late/k") == "arrived"


def test_a_volume_type_the_node_cannot_provide_fails_with_an_event(srv, ns):
    apply(srv, ns, pod("p", [{"name": "c", "volumeMounts": [{"name": "share", "mountPath": "/share"}]}],
                       volumes=[{"name": "share", "nfs": {"server": "127.0.0.1", "path": "/exports"}}]))
    msg = ('MountVolume.SetUp failed for volume "share" : unsupported volume type nfs: this node provides '
           'emptyDir, configMap, secret, downwardAPI, projected, hostPath and persistentVolumeClaim volumes only')
    srv.wait_for(lambda: msg in events(srv, ns, "FailedMount"), timeout=60, what="FailedMount for nfs")
    _wait_creating(srv, ns, "p")


def test_downward_api_volume_should_update_labels_on_modification(srv, ns, tmp_path):
    # [sig-storage] Downward API volume should update labels on modification; plus hostPath.
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "from-host").write_text("host-file")
    apply(srv, ns, pod("p", [{"name": "c", "volumeMounts": [{"name": "info", "mountPath": "/info"},
                                                            {"name": "h", "mountPath": "/h", "readOnly": True}]}],
                       volumes=[{"name": "info", "downwardAPI": {"items": [
                           {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                           {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "requests.cpu",
                                                                "divisor": "1m"}}]}},
                           {"name": "h", "hostPath": {"path": str(host_dir), "type": "Directory"}}]))
    wait_running(srv, ns, "p")
    assert sh(srv, ns, "p", "cat /info/labels") == 'app="p"'
    assert sh(srv, ns, "p", "cat /info/cpu") == "0"
    assert sh(srv, ns, "p", "cat /h/from-host") == "host-file"
    assert srv.kubectl("-n", ns, "exec", "p", "--", "touch", "/h/x").returncode != 0
    srv.kubectl("-n", ns, "label", "pod", "p", "tier=web", check=True)
    srv.wait_for(lambda: sh(srv, ns, "p", "cat /info/labels") == 'app="p"\ntier="web"', timeout=60,
                 what="the new label in the file")


def test_a_deleted_pod_leaves_no_volume_behind(srv, ns):
    apply(srv, ns, pod("p", [{"name": "c", "volumeMounts": [{"name": "m", "mountPath": "/m"}]}],
                       volumes=[{"name": "m", "emptyDir": {"medium": "Memory"}}]))
    wait_running(srv, ns, "p")
    uid = srv.kjson("-n", ns, "get", "pod", "p")["metadata"]["uid"]
    assert [m for m in rootfs.mounts_below(str(srv.data_dir)) if uid in m and m.endswith("/m")]
    srv.kubectl("-n", ns, "delete", "pod", "p", "--wait=true", check=True, timeout=90)
    srv.wait_for(lambda: not [m for m in rootfs.mounts_below(str(srv.data_dir)) if uid in m], timeout=30,
                 what="no mount of the deleted pod")


def test_a_pod_writing_past_its_emptydir_size_limit_is_evicted(srv, ns):
    # [sig-storage] LocalStorageCapacityIsolationEviction: emptyDir over its sizeLimit.
    apply(srv, ns, pod("big", [{"name": "c", "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                                "command": ["sh", "-c", "head -c 3145728 /dev/zero > /scratch/fill; sleep 3600"]}],
                       volumes=[{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}], restartPolicy="Never"),
          pod("small", [{"name": "c", "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                         "command": ["sh", "-c", "head -c 100000 /dev/zero > /scratch/fill; sleep 3600"]}],
              volumes=[{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}], restartPolicy="Never"))

    def status() -> dict:
        return srv.kjson("-n", ns, "get", "pod", "big").get("status") or {}
    st = srv.wait_for(lambda: status() if status().get("phase") == "Failed" else None, timeout=120,
                      what="pod big evicted")
    want = 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
    assert (st.get("reason"), st.get("message")) == ("Evicted", want), st
    cond = next(c for c in st["conditions"] if c["type"] == "DisruptionTarget")
    assert (cond["status"], cond["reason"], cond["message"]) == ("True", "TerminationByKubelet", want), cond
    term = st["containerStatuses"][0]["state"].get("terminated") or {}
    assert term.get("exitCode") == 137, st["containerStatuses"]
    ev = [e for e in srv.kjson("-n", ns, "get", "events").get("items") or []
          if e.get("reason") == "Evicted" and e["involvedObject"]["name"] == "big"]
    assert ev and ev[0]["type"] == "Warning" and ev[0]["message"] == want, ev
    # The pod under its limit was measured too (same check) and keeps running.
    small = srv.kjson("-n", ns, "get", "pod", "small")["status"]
    assert small["phase"] == "Running" and "reason" not in small, small


def test_fs_group_and_supplemental_groups_are_the_processs_groups_and_own_what_it_writes(srv, ns):
    # [sig-node] Security Context should support pod.Spec.SecurityContext.SupplementalGroups,
    # and an emptyDir with fsGroup: what the container creates there belongs to the fsGroup.
    apply(srv, ns, pod("p", [{"name": "c", "volumeMounts": [{"name": "e", "mountPath": "/e"}]}],
                       volumes=[{"name": "e", "emptyDir": {}}],
                       securityContext={"runAsUser": 1000, "runAsGroup": 1500, "fsGroup": 2000,
                                        "supplementalGroups": [3000], "fsGroupChangePolicy": "OnRootMismatch"}))
    wait_running(srv, ns, "p")
    ids = sh(srv, ns, "p", "id -u; id -g; id -G").split("\n")
    assert ids[0] == "1000" and ids[1] == "1500", ids
    assert {"1500", "2000", "3000"} <= set(ids[2].split()), ids
    # exec'd processes have the same groups as the container's first process.
    first = sh(srv, ns, "p", "grep '^Groups:' /proc/1/status").split()[1:]
    assert {"2000", "3000"} <= set(first), first
    out = sh(srv, ns, "p", "mkdir /e/d && echo x > /e/d/f && stat -c '%g %A' /e /e/d /e/d/f")
    assert out.splitlines() == ["2000 drwxrwsrwx", "2000 drwxr-sr-x", "2000 -rw-r--r--"], out

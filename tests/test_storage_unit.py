"""Unit tests of persistent storage: the binding matcher (upstream's findMatchingVolume
cases in pkg/controller/volume/persistentvolume/index_test.go), validation messages,
Table cells, admission, the StatefulSet retention policy's owner references and the
node's persistentVolumeClaim volume."""
from __future__ import annotations

import datetime as _dt
import os
from typing import Any

import pytest

from kubelite.api.printers import rows
from kubelite.api.printers.format import Clock
from kubelite.api.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from kubelite.api.validation import validate
from kubelite.controllers.statefulset import claim_owner_refs
from kubelite.node.volumes.base import SetupError
from kubelite.node.volumes.manager import PodVolumes
from kubelite.storage import util
from kubelite.storage.admission import storage_admission
from kubelite.storage.localpath import default_class, volume_for

Obj = dict[str, Any]


def pv(name: str, size: str, *, modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str = "", labels: dict | None = None,
       claim_ref: Obj | None = None, node: str | None = None, phase: str = "Available") -> Obj:
    spec: Obj = {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": cls,
                 "hostPath": {"path": f"/tmp/{name}"}, "volumeMode": "Filesystem"}
    if claim_ref is not None:
        spec["claimRef"] = claim_ref
    if node is not None:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": util.HOSTNAME_LABEL, "operator": "In", "values": [node]}]}]}}
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec, "status": {"phase": phase}}


def pvc(name: str, size: str, *, modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str | None = "",
        selector: Obj | None = None, uid: str = "uid-1") -> Obj:
    spec: Obj = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, "volumeMode": "Filesystem"}
    if cls is not None:
        spec["storageClassName"] = cls
    if selector is not None:
        spec["selector"] = selector
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid}, "spec": spec}


def node(name: str) -> Obj:
    return {"metadata": {"name": name, "labels": {util.HOSTNAME_LABEL: name}}}


# -- the binding matcher -------------------------------------------------------------------

def test_the_smallest_volume_large_enough_is_chosen():
    vols = [pv("big", "10Gi"), pv("small", "1Gi"), pv("medium", "5Gi")]
    assert util.find_best_match(pvc("c", "2Gi"), vols)["metadata"]["name"] == "medium"
    assert util.find_best_match(pvc("c", "1Gi"), vols)["metadata"]["name"] == "small"
    assert util.find_best_match(pvc("c", "11Gi"), vols) is None


def test_every_requested_access_mode_must_be_offered():
    vols = [pv("rwo", "1Gi"), pv("rwx", "5Gi", modes=("ReadWriteOnce", "ReadWriteMany"))]
    assert util.find_best_match(pvc("c", "1Gi", modes=("ReadWriteMany",)), vols)["metadata"]["name"] == "rwx"
    assert util.find_best_match(pvc("c", "1Gi", modes=("ReadOnlyMany",)), vols) is None


def test_the_class_must_match_and_no_class_matches_only_no_class():
    vols = [pv("plain", "1Gi"), pv("gold", "5Gi", cls="gold")]
    assert util.find_best_match(pvc("c", "1Gi", cls="gold"), vols)["metadata"]["name"] == "gold"
    assert util.find_best_match(pvc("c", "1Gi", cls=""), vols)["metadata"]["name"] == "plain"
    assert util.find_best_match(pvc("c", "1Gi", cls="silver"), vols) is None


def test_the_claim_selector_filters_volumes():
    vols = [pv("a", "1Gi", labels={"tier": "a"}), pv("b", "2Gi", labels={"tier": "b"})]
    claim = pvc("c", "1Gi", selector={"matchLabels": {"tier": "b"}})
    assert util.find_best_match(claim, vols)["metadata"]["name"] == "b"


def test_a_volume_reserved_for_another_claim_is_skipped_and_one_reserved_for_this_claim_wins():
    other = {"namespace": "ns", "name": "other"}
    mine = {"namespace": "ns", "name": "c"}
    vols = [pv("taken", "1Gi", claim_ref=other), pv("reserved", "50Gi", claim_ref=mine), pv("free", "1Gi")]
    assert util.find_best_match(pvc("c", "1Gi"), vols)["metadata"]["name"] == "reserved"
    # A claimRef with another uid is a former claim of the same name: not ours.
    vols = [pv("old", "1Gi", claim_ref={**mine, "uid": "gone"})]
    assert util.find_best_match(pvc("c", "1Gi"), vols) is None


def test_released_volumes_are_not_bound_again():
    assert util.find_best_match(pvc("c", "1Gi"), [pv("r", "1Gi", phase="Released")]) is None


def test_delayed_binding_takes_only_volumes_the_selected_node_reaches():
    vols = [pv("on-a", "1Gi", node="a"), pv("on-b", "2Gi", node="b")]
    claim = pvc("c", "1Gi")
    assert util.find_best_match(claim, vols, delay_binding=True) is None  # no node chosen yet
    assert util.find_best_match(claim, vols, node=node("b"), delay_binding=True)["metadata"]["name"] == "on-b"
    assert util.find_best_match(claim, vols, node=node("c"), delay_binding=True) is None


def test_the_default_class_is_the_newest_default():
    a = {"metadata": {"name": "a", "creationTimestamp": "2024-01-01T00:00:00Z",
                      "annotations": {util.ANN_DEFAULT_CLASS: "true"}}}
    b = {"metadata": {"name": "b", "creationTimestamp": "2024-02-01T00:00:00Z",
                      "annotations": {util.ANN_BETA_DEFAULT_CLASS: "true"}}}
    c = {"metadata": {"name": "c", "creationTimestamp": "2025-01-01T00:00:00Z"}}
    assert util.default_class([a, b, c])["metadata"]["name"] == "b"
    assert util.default_class([c]) is None


# -- validation ------------------------------------------------------------------------------

def _messages(kind: str, api_version: str, obj: Obj, old: Obj | None = None) -> list[str]:
    return [f"{c.field}: {c.message}" for c in validate(kind, api_version, obj, old)]


def test_claim_validation_messages_are_upstreams():
    bad = {"metadata": {"name": "c", "namespace": "ns"},
           "spec": {"accessModes": ["ReadWriteOncePod", "Nope"], "resources": {"requests": {"storage": "-1"}},
                    "volumeMode": "Filesystem"}}
    assert _messages("PersistentVolumeClaim", "v1", bad) == [
        'spec.accessModes: Unsupported value: "Nope": supported values: "ReadOnlyMany", "ReadWriteMany", '
        '"ReadWriteOnce", "ReadWriteOncePod"',
        "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
        'spec.resources[storage]: Invalid value: "-1": must be greater than zero',
    ]
    empty = {"metadata": {"name": "c", "namespace": "ns"}, "spec": {}}
    assert _messages("PersistentVolumeClaim", "v1", empty) == [
        "spec.accessModes: Required value: at least 1 access mode is required",
        "spec.resources[storage]: Required value"]


def test_a_claim_spec_is_immutable_but_its_volume_name_may_be_set_once():
    old = pvc("c", "1Gi")
    old["metadata"]["resourceVersion"] = "1"
    bound = {**old, "spec": {**old["spec"], "volumeName": "v1"}}
    assert _messages("PersistentVolumeClaim", "v1", bound, old) == []
    changed = {**bound, "spec": {**bound["spec"], "accessModes": ["ReadWriteMany"]}}
    assert _messages("PersistentVolumeClaim", "v1", changed, bound) == [
        "spec: Forbidden: spec is immutable after creation except resources.requests and "
        "volumeAttributesClassName for bound claims"]


def test_volume_and_class_validation_messages_are_upstreams():
    no_source = {"metadata": {"name": "v"}, "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                                      "persistentVolumeReclaimPolicy": "Keep"}}
    assert _messages("PersistentVolume", "v1", no_source) == [
        'spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: "Delete", "Recycle", '
        '"Retain"',
        "spec: Required value: must specify a volume type"]
    sc = {"metadata": {"name": "s"}, "provisioner": "x.io/p", "reclaimPolicy": "Delete",
          "volumeBindingMode": "Immediate"}
    assert _messages("StorageClass", "storage.k8s.io/v1", sc) == []
    changed = {**sc, "metadata": {"name": "s", "resourceVersion": "1"}, "provisioner": "y.io/p",
               "volumeBindingMode": "WaitForFirstConsumer"}
    assert _messages("StorageClass", "storage.k8s.io/v1", changed, {**sc, "metadata": changed["metadata"]}) == [
        "provisioner: Forbidden: updates to provisioner are forbidden.",
        'volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable']


# -- Table cells -----------------------------------------------------------------------------

def test_table_cells_are_upstreams():
    clock = Clock(_dt.datetime.now(_dt.UTC))
    vol = pv("v", "1Gi", modes=("ReadWriteMany", "ReadWriteOnce"), cls="gold",
             claim_ref={"namespace": "ns", "name": "c"}, phase="Bound")
    vol["spec"]["persistentVolumeReclaimPolicy"] = "Retain"
    cells = rows.persistentvolume_row(vol, clock)
    assert cells[:9] == ["v", "1Gi", "RWO,RWX", "Retain", "Bound", "ns/c", "gold", "<unset>", ""]
    assert cells[10] == "Filesystem"
    claim = pvc("c", "1Gi", cls="gold")
    claim["status"] = {"phase": "Pending"}
    assert rows.persistentvolumeclaim_row(claim, clock)[:7] == ["c", "Pending", "", "", "", "gold", "<unset>"]
    claim["spec"]["volumeName"] = "v"
    claim["status"] = {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "2Gi"}}
    assert rows.persistentvolumeclaim_row(claim, clock)[:5] == ["c", "Bound", "v", "2Gi", "RWO"]
    sc = default_class()
    assert rows.storageclass_row(sc, clock)[:5] == ["local-path (default)", "kubelite.dev/local-path", "Delete",
                                                    "WaitForFirstConsumer", False]


# -- admission --------------------------------------------------------------------------------

async def test_new_claims_get_the_default_class_and_the_protection_finalizer():
    classes = [default_class() | {"metadata": {"name": "local-path", "creationTimestamp": "2024-01-01T00:00:00Z",
                                               "annotations": {util.ANN_DEFAULT_CLASS: "true"}}}]

    async def list_fn(info: Any, ns: str) -> tuple[list[Obj], int, str, None]:
        return classes, 0, "", None

    from kubelite.storage.admission import Lister
    admit = storage_admission(Lister(list_fn))
    claim = pvc("c", "1Gi", cls=None)
    await admit(PERSISTENTVOLUMECLAIMS, claim, None)
    assert claim["spec"]["storageClassName"] == "local-path"
    assert claim["metadata"]["finalizers"] == [util.PVC_PROTECTION]
    explicit = pvc("d", "1Gi", cls="")
    await admit(PERSISTENTVOLUMECLAIMS, explicit, None)
    assert explicit["spec"]["storageClassName"] == ""  # "" asks for no class: never defaulted
    vol = pv("v", "1Gi")
    await admit(PERSISTENTVOLUMES, vol, None)
    assert vol["metadata"]["finalizers"] == [util.PV_PROTECTION]


# -- StatefulSet retention policy --------------------------------------------------------------

def _sts(when_deleted: str, when_scaled: str) -> Obj:
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "sts-uid"},
            "spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": when_deleted, "whenScaled": when_scaled}}}


@pytest.mark.parametrize(("when_deleted", "when_scaled", "condemned", "owners"), [
    ("Retain", "Retain", False, []),
    ("Retain", "Retain", True, []),
    ("Delete", "Retain", False, ["StatefulSet"]),
    ("Delete", "Retain", True, ["StatefulSet"]),
    ("Retain", "Delete", False, []),
    ("Retain", "Delete", True, ["Pod"]),
    ("Delete", "Delete", False, ["StatefulSet"]),
    ("Delete", "Delete", True, ["Pod"]),
])
def test_claim_owner_references_follow_the_retention_policy(when_deleted, when_scaled, condemned, owners):
    pod = {"metadata": {"name": "web-3", "uid": "pod-uid"}}
    foreign = {"apiVersion": "v1", "kind": "ConfigMap", "name": "keep", "uid": "cm"}
    refs = claim_owner_refs(_sts(when_deleted, when_scaled), pod, [foreign], condemned=condemned)
    assert refs[0] == foreign
    assert [r["kind"] for r in refs[1:]] == owners


# -- the node's persistentVolumeClaim volume -------------------------------------------------------

class StorageAPI:
    """A VolumeAPI holding claims and volumes."""

    def __init__(self, objects: dict[tuple[str, str, str], Obj]):
        self.objects = objects

    async def get_object(self, kind: str, namespace: str, name: str) -> Obj | None:
        return None

    async def get_storage(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get((kind, namespace, name))


def _pod_with_claim(read_only: bool = False) -> Obj:
    return {"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
                     "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "c", "readOnly": read_only}}]}}


async def test_a_bound_claim_mounts_its_volumes_directory(tmp_path):
    claim = pvc("c", "1Gi")
    claim["spec"]["volumeName"] = "v"
    claim["status"] = {"phase": "Bound"}
    vol = volume_for(claim, default_class(), "n1", str(tmp_path / "storage" / "v"))
    api = StorageAPI({("PersistentVolumeClaim", "ns", "c"): claim, ("PersistentVolume", "", "v"): vol})
    vols = PodVolumes(_pod_with_claim(read_only=True), str(tmp_path / "pod"), api)
    assert await vols.setup() == []
    assert os.path.isdir(tmp_path / "storage" / "v")
    (m,) = vols.container_mounts(_pod_with_claim()["spec"]["containers"][0], {})
    assert (m.source, m.destination, m.readonly) == (str(tmp_path / "storage" / "v"), "/data", True)


async def test_an_unbound_or_missing_claim_fails_the_mount_with_the_kubelets_words(tmp_path):
    vols = PodVolumes(_pod_with_claim(), str(tmp_path), StorageAPI({}))
    assert await vols.setup() == [
        ("d", 'failed to fetch PVC from API server: persistentvolumeclaims "c" not found')]
    claim = pvc("c", "1Gi")
    claim["status"] = {"phase": "Pending"}
    vols = PodVolumes(_pod_with_claim(), str(tmp_path), StorageAPI({("PersistentVolumeClaim", "ns", "c"): claim}))
    assert await vols.setup() == [("d", "error processing PVC ns/c: PVC is not bound")]
    assert issubclass(SetupError, Exception)

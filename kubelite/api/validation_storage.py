"""PersistentVolume, PersistentVolumeClaim and StorageClass validation (upstream
``pkg/apis/core/validation`` and ``pkg/apis/storage/validation`` for these kinds; messages
and field paths are upstream's)."""
from __future__ import annotations

import copy
from typing import Any

from kubelite.api import quantity
from kubelite.api.validation_common import (
    Errs,
    child,
    forbidden,
    immutable,
    invalid,
    is_dns1123_subdomain,
    is_qualified_name,
    key,
    name_is_dns_subdomain,
    not_supported,
    required,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")  # sorted, as NotSupported lists them
VOLUME_MODES = ("Block", "Filesystem")
PV_RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
SC_RECLAIM_POLICIES = ("Delete", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
# The volume sources a PersistentVolume may name (exactly one).
PV_SOURCES = ("gcePersistentDisk", "awsElasticBlockStore", "hostPath", "glusterfs", "nfs", "rbd", "iscsi",
              "cinder", "cephfs", "fc", "flocker", "flexVolume", "azureFile", "vsphereVolume", "quobyte",
              "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO", "local", "storageos", "csi")


def _positive_quantity(v: Any, path: str) -> Errs:
    try:
        q = quantity.parse(v)
    except (ValueError, ArithmeticError):
        return [invalid(path, v, "must be a valid quantity")]
    if q <= 0:
        return [invalid(path, v, "must be greater than zero")]
    return []


def _class_name(name: Any, path: str) -> Errs:
    if not name:
        return []
    return [invalid(path, name, m) for m in is_dns1123_subdomain(str(name))]


def _access_modes(modes: Any, path: str, what: str) -> Errs:
    errs: Errs = []
    modes = modes if isinstance(modes, list) else []
    if not modes:
        errs.append(required(path, what))
    for m in modes:
        if m not in ACCESS_MODES:
            errs.append(not_supported(path, m, ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errs.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def _volume_mode(spec: dict, path: str) -> Errs:
    vm = spec.get("volumeMode")
    if vm is not None and vm not in VOLUME_MODES:
        return [not_supported(child(path, "volumeMode"), vm, VOLUME_MODES)]
    return []


# --- PersistentVolumeClaim -------------------------------------------------------------

def validate_pvc_spec(spec: dict, path: str = "spec") -> Errs:
    """ValidatePersistentVolumeClaimSpec."""
    errs = _access_modes(spec.get("accessModes"), child(path, "accessModes"), "at least 1 access mode is required")
    if spec.get("selector") is not None:
        errs += validate_label_selector(spec.get("selector"), child(path, "selector"))
    requests = (spec.get("resources") or {}).get("requests") or {}
    rpath = key(child(path, "resources"), "storage")
    if "storage" not in requests:
        errs.append(required(rpath))
    else:
        errs += _positive_quantity(requests["storage"], rpath)
    errs += _class_name(spec.get("storageClassName"), child(path, "storageClassName"))
    errs += _volume_mode(spec, path)
    return errs


def _bound_claim_spec_rest(spec: dict, old_spec: dict) -> tuple[dict, dict]:
    """Both specs without what an update may change (volumeName once, requests, VAC)."""
    new, old = copy.deepcopy(spec), copy.deepcopy(old_spec)
    if not old.get("volumeName"):
        old["volumeName"] = new.get("volumeName")
    for s in (new, old):
        s.pop("volumeAttributesClassName", None)
        (s.get("resources") or {}).pop("requests", None)
        if s.get("resources") == {}:
            s.pop("resources")
        if not s.get("volumeName"):
            s.pop("volumeName", None)
    return new, old


def validate_pvc(obj: dict, old: dict | None = None) -> Errs:
    """Create or update validation of a PersistentVolumeClaim."""
    spec = obj.get("spec") or {}
    if old is None:
        return validate_object_meta(obj, True, name_is_dns_subdomain) + validate_pvc_spec(spec)
    errs = validate_object_meta_update(obj, old) + validate_pvc_spec(spec)
    ospec = old.get("spec") or {}
    new_rest, old_rest = _bound_claim_spec_rest(spec, ospec)
    bound = (old.get("status") or {}).get("phase") == "Bound"
    requests_changed = ((spec.get("resources") or {}).get("requests") or {}) != \
        ((ospec.get("resources") or {}).get("requests") or {})
    if new_rest != old_rest or (requests_changed and not bound):
        errs.append(forbidden("spec", "spec is immutable after creation except resources.requests and "
                                      "volumeAttributesClassName for bound claims"))
    elif requests_changed:
        new_q = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        cap = ((old.get("status") or {}).get("capacity") or {}).get("storage")
        try:
            smaller = cap is not None and quantity.parse(new_q) < quantity.parse(cap)
        except (ValueError, ArithmeticError):
            smaller = False
        if smaller:
            errs.append(forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"))
    return errs


def validate_pvc_status(obj: dict, old: dict) -> Errs:
    """A /status write: metadata rules, and capacity quantities that parse."""
    errs = validate_object_meta_update(obj, old)
    for k, v in ((obj.get("status") or {}).get("capacity") or {}).items():
        errs += _positive_quantity(v, key("status.capacity", k)) if k == "storage" else []
    return errs


# --- PersistentVolume ------------------------------------------------------------------

def validate_pv_spec(spec: dict, path: str = "spec") -> Errs:
    """ValidatePersistentVolumeSpec (the sources kubelite can act on are checked in depth)."""
    errs = _access_modes(spec.get("accessModes"), child(path, "accessModes"), "")
    cap = spec.get("capacity") or {}
    if not cap:
        errs.append(required(child(path, "capacity")))
    for k, v in cap.items():
        if k != "storage":
            errs.append(not_supported(child(path, "capacity"), k, ("storage",)))
        else:
            errs += _positive_quantity(v, key(child(path, "capacity"), k))
    rp = spec.get("persistentVolumeReclaimPolicy")
    if rp and rp not in PV_RECLAIM_POLICIES:
        errs.append(not_supported(child(path, "persistentVolumeReclaimPolicy"), rp, PV_RECLAIM_POLICIES))
    errs += _class_name(spec.get("storageClassName"), child(path, "storageClassName"))
    errs += _volume_mode(spec, path)
    sources = [s for s in PV_SOURCES if spec.get(s) is not None]
    if not sources:
        errs.append(required(path, "must specify a volume type"))
    for s in sources[1:]:
        errs.append(forbidden(child(path, s), "may not specify more than 1 volume type"))
    if "hostPath" in sources:
        hp = spec.get("hostPath") or {}
        if not hp.get("path"):
            errs.append(required(child(path, "hostPath", "path")))
    if "local" in sources:
        if not (spec.get("local") or {}).get("path"):
            errs.append(required(child(path, "local", "path")))
        if spec.get("nodeAffinity") is None:
            errs.append(required(child(path, "nodeAffinity"), "Local volume requires node affinity"))
    na = spec.get("nodeAffinity")
    if na is not None and (na.get("required") is None or not (na.get("required") or {}).get("nodeSelectorTerms")):
        errs.append(required(child(path, "nodeAffinity", "required"), "must have at least one node selector term")
                    if na.get("required") is not None else
                    required(child(path, "nodeAffinity", "required")))
    ref = spec.get("claimRef")
    if ref is not None and not ref.get("name"):
        errs.append(required(child(path, "claimRef", "name")))
    return errs


def _source(spec: dict) -> dict:
    return {s: spec.get(s) for s in PV_SOURCES if spec.get(s) is not None}


def validate_pv(obj: dict, old: dict | None = None) -> Errs:
    """Create or update validation of a PersistentVolume (cluster-scoped)."""
    spec = obj.get("spec") or {}
    if old is None:
        return validate_object_meta(obj, False, name_is_dns_subdomain) + validate_pv_spec(spec)
    errs = validate_object_meta_update(obj, old) + validate_pv_spec(spec)
    ospec = old.get("spec") or {}
    if _source(spec) != _source(ospec):
        errs.append(forbidden("spec.persistentvolumesource", "spec.persistentvolumesource is immutable after creation"))
    errs += immutable(spec.get("volumeMode"), ospec.get("volumeMode"), "spec.volumeMode")
    if ospec.get("nodeAffinity") is not None:
        errs += immutable(spec.get("nodeAffinity"), ospec.get("nodeAffinity"), "spec.nodeAffinity",
                          shown="core.VolumeNodeAffinity{...}")
    return errs


def validate_pv_status(obj: dict, old: dict) -> Errs:
    """A /status write of a PersistentVolume."""
    return validate_object_meta_update(obj, old)


# --- StorageClass ----------------------------------------------------------------------

def validate_storage_class(obj: dict, old: dict | None = None) -> Errs:
    """ValidateStorageClass / ValidateStorageClassUpdate."""
    errs = validate_object_meta(obj, False, name_is_dns_subdomain) if old is None else \
        validate_object_meta_update(obj, old)
    prov = obj.get("provisioner") or ""
    if not prov:
        errs.append(required("provisioner"))
    else:
        errs += [invalid("provisioner", prov, m) for m in is_qualified_name(prov.lower())]
    params = obj.get("parameters") or {}
    if len(params) > 512:
        errs.append(invalid("parameters", "", "can't have more than 512 parameters"))
    for k in params:
        if not k:
            errs.append(invalid("parameters", "", "field can not be empty."))
    rp = obj.get("reclaimPolicy")
    if rp is not None and rp not in SC_RECLAIM_POLICIES:
        errs.append(not_supported("reclaimPolicy", rp, SC_RECLAIM_POLICIES))
    vbm = obj.get("volumeBindingMode")
    if vbm is None:
        errs.append(required("volumeBindingMode"))
    elif vbm not in BINDING_MODES:
        errs.append(not_supported("volumeBindingMode", vbm, BINDING_MODES))
    if old is not None:
        if (obj.get("parameters") or {}) != (old.get("parameters") or {}):
            errs.append(forbidden("parameters", "updates to parameters are forbidden."))
        if obj.get("provisioner") != old.get("provisioner"):
            errs.append(forbidden("provisioner", "updates to provisioner are forbidden."))
        if obj.get("reclaimPolicy") != old.get("reclaimPolicy"):
            errs.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        errs += immutable(obj.get("volumeBindingMode"), old.get("volumeBindingMode"), "volumeBindingMode")
    return errs

"""Per-kind write strategies, as upstream's pkg/registry/*/strategy.go.

What each hook does:
- ``prepare_for_create``: server-owned fields (status reset, generation 1, pod phase);
- ``prepare_for_update``: main-resource writes keep the old status, /status writes keep
  the old spec (and, for Deployments, the old labels); generation moves only when the
  spec (Deployments: or annotations) changed;
- defaulting, admission and validation run on every write, so a patch result is
  checked exactly like a create.
"""
from __future__ import annotations

import copy
from typing import Any

from kubelite.api import meta
from kubelite.api.defaults import admit_pod, apply_defaults
from kubelite.api.errors import invalid
from kubelite.api.resources import ResourceInfo
from kubelite.api.validation import generation_changed, validate
from kubelite.apiextensions.info import CustomResourceInfo
from kubelite.apiserver.omitempty import drop_false_booleans

Obj = dict[str, Any]

# Kinds whose objects carry metadata.generation (upstream: those with a spec it tracks).
_GENERATION_KINDS = {"Deployment", "ReplicaSet", "ReplicationController", "Service", "Namespace", "Node"}
_GENERATION_TRACKED = {"Deployment", "ReplicaSet", "ReplicationController"}
_GENERATION_TRACKED |= {"Job", "CronJob"}
_GENERATION_TRACKED |= {"StatefulSet", "DaemonSet"}
_GENERATION_TRACKED |= {"NetworkPolicy"}
_GENERATION_TRACKED |= {"Ingress", "IngressClass"}
_GENERATION_TRACKED |= {"PodDisruptionBudget"}
# Admission policies and their bindings count spec changes in metadata.generation; the
# policy's status.observedGeneration says which generation the server has taken in.
_POLICY_KINDS = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
_POLICY_GROUP = "admissionregistration.k8s.io"
# apps/v1 keeps the old extensions spec.templateGeneration as this annotation: 1 on
# create, +1 whenever an update changes the pod template (the DaemonSet strategy).
DS_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def prepare_for_create(info: ResourceInfo, obj: Obj, *, service_account: Obj | None = None) -> None:
    """Reset what clients may not set on create; a Pod is admitted with its ServiceAccount
    (None when it does not exist)."""
    # A custom resource may share a built-in's kind name; none of the built-in rules apply.
    kind = "" if isinstance(info, CustomResourceInfo) else info.kind
    md = obj["metadata"]
    if kind in _GENERATION_TRACKED:
        md["generation"] = 1
        # Go writes the status.replicas of an RC and a ReplicaSet even when 0 (no omitempty);
        # the Python client refuses a ReplicaSet status without it.
        obj["status"] = {"replicas": 0} if kind in ("ReplicationController", "ReplicaSet") else {}
        if kind == "NetworkPolicy":
            del obj["status"]  # no status in its type
        if kind == "StatefulSet":
            obj["status"] = {"replicas": 0, "availableReplicas": 0}  # Go writes both without omitempty
        if kind == "Ingress":
            obj["status"] = {"loadBalancer": {}}
        if kind == "IngressClass":
            obj.pop("status", None)  # IngressClass has no status
        if kind == "DaemonSet":
            obj["status"] = {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                             "numberReady": 0}
            md["annotations"] = dict(md.get("annotations") or {})
            md["annotations"][DS_TEMPLATE_GENERATION] = "1"
        if kind == "PodDisruptionBudget":  # Go writes the four counters without omitempty
            obj["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
    elif kind in _GENERATION_KINDS:
        md.pop("generation", None)
    elif kind in _POLICY_KINDS and info.group == _POLICY_GROUP:
        md["generation"] = 1
        if kind == "ValidatingAdmissionPolicy":
            obj["status"] = {}
    if kind == "Job" and info.group == "batch":
        _generate_job_selector(obj)
    if kind == "HorizontalPodAutoscaler" and info.group == "autoscaling":
        # Create cannot set status; Go writes these counts even when zero.
        obj["status"] = {"desiredReplicas": 0} if info.version == "v2" else {"currentReplicas": 0,
                                                                             "desiredReplicas": 0}
    if kind == "Pod":
        status = obj.setdefault("status", {})
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj)}
        if status.get("nominatedNodeName"):
            obj["status"]["nominatedNodeName"] = status["nominatedNodeName"]
        admit_pod(obj, service_account=service_account, priority=False)
    elif kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    elif kind == "ResourceQuota" and info.group == "":
        obj["status"] = {}  # the quota controller fills it
    elif kind == "PersistentVolume" and not info.group:
        # Upstream's PV strategy: Pending, with the time of that phase.
        obj["status"] = {"phase": "Pending", "lastPhaseTransitionTime": meta.rfc3339()}
    elif kind == "PersistentVolumeClaim" and not info.group:
        obj["status"] = {}
    elif kind == "Service":
        obj["status"] = {"loadBalancer": {}}
    elif kind == "APIService" and info.group == "apiregistration.k8s.io":
        obj["status"] = {}  # the availability controller writes it
    md.pop("deletionTimestamp", None)
    md.pop("deletionGracePeriodSeconds", None)


def prepare_for_update(info: ResourceInfo, new: Obj, old: Obj, subresource: str) -> None:
    """Keep the half of the object this write may not touch; move generation."""
    kind = "" if isinstance(info, CustomResourceInfo) else info.kind
    nmd, omd = new.setdefault("metadata", {}), old["metadata"]
    # Identity and server-owned metadata never change through an update.
    for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "name", "namespace"):
        if f in omd:
            nmd[f] = omd[f]
        else:
            nmd.pop(f, None)
    if "generation" in omd:
        nmd["generation"] = omd["generation"]
    if subresource in ("binding", "finalize"):
        return  # these write exactly the fields they own, nothing else arrives
    if subresource == "status":
        if "spec" in old:
            new["spec"] = copy.deepcopy(old["spec"])
        else:
            new.pop("spec", None)
        if kind == "PersistentVolume" and not info.group:
            # A phase change stamps lastPhaseTransitionTime, as upstream's status strategy.
            nst, ost = new.get("status") or {}, old.get("status") or {}
            if nst.get("phase") != ost.get("phase"):
                new.setdefault("status", {})["lastPhaseTransitionTime"] = meta.rfc3339()
        if kind == "Deployment":
            nmd["labels"] = copy.deepcopy(omd.get("labels")) if omd.get("labels") else None
            if nmd["labels"] is None:
                nmd.pop("labels")
        return
    if info.has_status:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    policy = kind in _POLICY_KINDS and info.group == _POLICY_GROUP
    if (kind in _GENERATION_TRACKED and generation_changed(kind, old, new)) or \
            (policy and _policy_spec_changed(info, new, old)):
        nmd["generation"] = int(omd.get("generation") or 1) + 1
    if kind == "DaemonSet":
        _daemonset_template_generation(new, old)


def _policy_spec_changed(info: ResourceInfo, new: Obj, old: Obj) -> bool:
    """Whether an update changes a policy's (or binding's) spec, compared as stored."""
    defaulted = copy.deepcopy(new)  # upstream compares decoded, hence defaulted, objects
    apply_defaults(info.kind, info.api_version, defaulted, create=False)
    return (defaulted.get("spec") or {}) != (old.get("spec") or {})


def _daemonset_template_generation(new: Obj, old: Obj) -> None:
    """Carry the template generation over; bump it when the pod template changed."""
    try:
        gen = int(meta.annotations_of(old).get(DS_TEMPLATE_GENERATION) or 0)
    except ValueError:
        gen = 0
    defaulted = copy.deepcopy(new)  # compare templates as they will be stored
    apply_defaults("DaemonSet", "apps/v1", defaulted, create=False)
    if (defaulted.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
        gen += 1
    if gen:
        md = new["metadata"]
        md["annotations"] = dict(md.get("annotations") or {})
        md["annotations"][DS_TEMPLATE_GENERATION] = str(gen)


def default_and_validate(info: ResourceInfo, obj: Obj, old: Obj | None, subresource: str = "") -> None:
    """Apply defaults, then raise 422 Invalid with upstream's causes if invalid."""
    custom = isinstance(info, CustomResourceInfo)  # schema defaults and rules ran in admission
    if not custom:
        apply_defaults(info.kind, info.api_version, obj, create=old is None)
    drop_false_booleans(obj)  # what upstream's encoding would omit is never stored
    if old is not None and not obj["metadata"].get("resourceVersion"):
        # An unconditional update is validated as if it carried the stored version.
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
    if subresource == "binding":
        return  # nodeName may be set exactly once, through binding, bypassing pod update rules
    # Custom resources get the generic metadata rules only (an unknown kind's).
    kind = "" if custom else info.kind
    if subresource == "status" and old is not None:  # a status write always updates
        from kubelite.api.validation import validate_status
        causes = validate_status(kind, info.api_version, obj, old)
    else:
        causes = validate(kind, info.api_version, obj, old)
    if causes:
        raise invalid(info.kind, info.group, meta.name(obj), causes)


def _generate_job_selector(job: Obj) -> None:
    """Job PrepareForCreate: unless manualSelector, label the template with the Job's uid and
    name (new and legacy keys) and select on the uid; a conflicting label is left for
    validation to reject."""
    spec = job.setdefault("spec", {})
    if spec.get("manualSelector"):
        return
    md = job["metadata"]
    tmpl = spec.setdefault("template", {})
    tmd = tmpl.get("metadata")
    if not isinstance(tmd, dict):
        tmd = tmpl["metadata"] = {}
    labels = tmd.get("labels")
    if not isinstance(labels, dict):
        labels = tmd["labels"] = {}
    for k in ("job-name", "batch.kubernetes.io/job-name"):
        labels.setdefault(k, md.get("name", ""))
    for k in ("controller-uid", "batch.kubernetes.io/controller-uid"):
        labels.setdefault(k, md.get("uid", ""))
    sel = spec.get("selector")
    if not isinstance(sel, dict):
        sel = spec["selector"] = {}
    ml = sel.get("matchLabels")
    if not isinstance(ml, dict):
        ml = sel["matchLabels"] = {}
    ml.setdefault("batch.kubernetes.io/controller-uid", md.get("uid", ""))


def _qos_class(pod: Obj) -> str:
    """Guaranteed / Burstable / BestEffort from container requests and limits."""
    containers = (pod.get("spec", {}).get("containers") or []) + (pod.get("spec", {}).get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            lv = lim.get(r)
            rv = req.get(r, lv)
            if lv is None or rv != lv:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"

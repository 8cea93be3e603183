"""Per-kind merge metadata: which lists merge by key, which maps are atomic.

Strategic merge patch and server-side apply both need to know, at each path of an
object, what kind of value lives there.  Upstream reads it from Go struct tags
(``patchStrategy``/``patchMergeKey``) and from the OpenAPI ``x-kubernetes-list-type``,
``x-kubernetes-list-map-keys`` and ``x-kubernetes-map-type`` extensions.  This module is
our own copy of those facts for the built-in kinds kubelite serves, written as a small
tree of ``Struct`` / ``MapOf`` / ``ListOf`` nodes.  ``None`` means "untyped": SMP merges
dicts and replaces lists there, SSA treats lists as atomic.

It also holds each kind's *zero object* — the JSON of the Go zero value — because
managed-fields bookkeeping for a create compares against it (non-pointer structs and
non-omitempty fields exist even in an empty object, so they never count as "added").
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

Node = Union["Struct", "MapOf", "ListOf", None]


@dataclass(frozen=True)
class Struct:
    """A Go struct: named fields, each with its own node."""

    fields: Mapping[str, Node] = field(default_factory=dict)
    atomic: bool = False       # +structType=atomic: replaced and owned as one value
    retain_keys: bool = False  # patchStrategy=retainKeys on the field holding this struct


@dataclass(frozen=True)
class MapOf:
    """A Go map[string]X: keys are data, not field names."""

    elem: Node = None
    atomic: bool = False       # +mapType=atomic


@dataclass(frozen=True)
class ListOf:
    """A Go slice, with its SMP strategy and its SSA list type."""

    item: Node = None
    list_type: str = "atomic"                   # atomic | set | map
    keys: tuple[str, ...] = ()                  # x-kubernetes-list-map-keys
    key_defaults: Mapping[str, Any] = field(default_factory=dict)
    merge_key: str = ""                         # patchMergeKey ("" for primitive merge lists)
    merge: bool = False                         # patchStrategy contains "merge"
    retain_keys: bool = False                   # patchStrategy contains "retainKeys" (items)


def child(node: Node, key: str) -> Node:
    """The node for ``key`` inside a struct or map node (None when unknown)."""
    if isinstance(node, Struct):
        return node.fields.get(key)
    if isinstance(node, MapOf):
        return node.elem
    return None


def merge_list(item: Node, key: str, *keys: str, retain: bool = False,
               defaults: Mapping[str, Any] | None = None) -> ListOf:
    """A list merged by ``key`` in SMP and keyed by ``keys`` (default: key) in SSA."""
    return ListOf(item, "map", keys or (key,), defaults or {}, key, True, retain)


def atomic_list(item: Node = None) -> ListOf:
    """+listType=atomic (or no list type): replaced wholesale."""
    return ListOf(item)


SET_MERGE = ListOf(None, "set", merge=True)   # primitive list unioned by SMP (finalizers)
STRING_MAP = MapOf()
ATOMIC = Struct(atomic=True)
ATOMIC_MAP = MapOf(atomic=True)
CONDITIONS = merge_list(None, "type")

# --- metadata -------------------------------------------------------------------------

OBJECT_META = Struct({
    "labels": STRING_MAP,
    "annotations": STRING_MAP,
    "ownerReferences": merge_list(ATOMIC, "uid"),
    "finalizers": SET_MERGE,
    "managedFields": atomic_list(),
})

LABEL_SELECTOR = ATOMIC   # metav1.LabelSelector is +structType=atomic
OBJECT_REFERENCE = ATOMIC  # core/v1 ObjectReference is +structType=atomic

# --- pods -----------------------------------------------------------------------------

RESOURCE_LIST = STRING_MAP
RESOURCES = Struct({"limits": RESOURCE_LIST, "requests": RESOURCE_LIST,
                    "claims": ListOf(None, "map", ("name",))})
ENV_SOURCE = Struct({k: ATOMIC for k in (
    "fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef")})
PROBE = Struct({"exec": Struct({"command": atomic_list()}),
                "httpGet": Struct({"httpHeaders": atomic_list()})})
CONTAINER = Struct({
    "command": atomic_list(),
    "args": atomic_list(),
    "ports": merge_list(None, "containerPort", "containerPort", "protocol",
                        defaults={"protocol": "TCP"}),
    "envFrom": atomic_list(),
    "env": merge_list(Struct({"valueFrom": ENV_SOURCE}), "name"),
    "resources": RESOURCES,
    "resizePolicy": atomic_list(),
    "volumeMounts": merge_list(None, "mountPath"),
    "volumeDevices": merge_list(None, "devicePath"),
    "livenessProbe": PROBE,
    "readinessProbe": PROBE,
    "startupProbe": PROBE,
    "securityContext": Struct({"capabilities": Struct({"add": atomic_list(), "drop": atomic_list()})}),
})
VOLUME = Struct({
    "secret": Struct({"items": atomic_list()}),
    "configMap": Struct({"items": atomic_list()}),
    "downwardAPI": Struct({"items": atomic_list()}),
    "projected": Struct({"sources": atomic_list()}),
    "csi": Struct({"volumeAttributes": STRING_MAP}),
})
NODE_SELECTOR = ATOMIC  # core/v1 NodeSelector is +structType=atomic
AFFINITY = Struct({
    "nodeAffinity": Struct({
        "requiredDuringSchedulingIgnoredDuringExecution": NODE_SELECTOR,
        "preferredDuringSchedulingIgnoredDuringExecution": atomic_list(),
    }),
    "podAffinity": Struct({
        "requiredDuringSchedulingIgnoredDuringExecution": atomic_list(),
        "preferredDuringSchedulingIgnoredDuringExecution": atomic_list(),
    }),
    "podAntiAffinity": Struct({
        "requiredDuringSchedulingIgnoredDuringExecution": atomic_list(),
        "preferredDuringSchedulingIgnoredDuringExecution": atomic_list(),
    }),
})
POD_SPEC = Struct({
    "volumes": merge_list(VOLUME, "name", retain=True),
    "initContainers": merge_list(CONTAINER, "name"),
    "containers": merge_list(CONTAINER, "name"),
    "ephemeralContainers": merge_list(CONTAINER, "name"),
    "nodeSelector": ATOMIC_MAP,
    "securityContext": Struct({"supplementalGroups": atomic_list(), "sysctls": atomic_list()}),
    "imagePullSecrets": merge_list(ATOMIC, "name"),
    "affinity": AFFINITY,
    "tolerations": atomic_list(),
    "hostAliases": merge_list(Struct({"hostnames": atomic_list()}), "ip"),
    "dnsConfig": Struct({"nameservers": atomic_list(), "options": atomic_list(),
                         "searches": atomic_list()}),
    "readinessGates": atomic_list(),
    "overhead": RESOURCE_LIST,
    "topologySpreadConstraints": merge_list(
        Struct({"labelSelector": LABEL_SELECTOR, "matchLabelKeys": atomic_list()}),
        "topologyKey", "topologyKey", "whenUnsatisfiable"),
    "schedulingGates": merge_list(None, "name"),
    "resourceClaims": merge_list(None, "name", retain=True),
    "resources": RESOURCES,
})
POD_STATUS = Struct({
    "conditions": CONDITIONS,
    "podIPs": merge_list(None, "ip"),
    "hostIPs": ListOf(None, "atomic", merge_key="ip", merge=True),
    "containerStatuses": atomic_list(),
    "initContainerStatuses": atomic_list(),
    "ephemeralContainerStatuses": atomic_list(),
    "allocatedResources": RESOURCE_LIST,
})
POD_TEMPLATE = Struct({"metadata": OBJECT_META, "spec": POD_SPEC})


def _kind(**fields: Node) -> Struct:
    return Struct({"metadata": OBJECT_META, **fields})


POD = _kind(spec=POD_SPEC, status=POD_STATUS)
DEPLOYMENT = _kind(
    spec=Struct({"selector": LABEL_SELECTOR, "template": POD_TEMPLATE,
                 "strategy": Struct(retain_keys=True)}),
    status=Struct({"conditions": CONDITIONS}),
)
REPLICASET = _kind(
    spec=Struct({"selector": LABEL_SELECTOR, "template": POD_TEMPLATE}),
    status=Struct({"conditions": CONDITIONS}),
)
REPLICATION_CONTROLLER = _kind(
    spec=Struct({"selector": ATOMIC_MAP, "template": POD_TEMPLATE}),
    status=Struct({"conditions": CONDITIONS}),
)
JOB_SPEC = Struct({"selector": LABEL_SELECTOR, "template": POD_TEMPLATE,
                   "podFailurePolicy": Struct({"rules": atomic_list()}),
                   "successPolicy": Struct({"rules": atomic_list()})})
JOB = _kind(spec=JOB_SPEC, status=Struct({"conditions": CONDITIONS}))
CRONJOB = _kind(spec=Struct({"jobTemplate": Struct({"metadata": OBJECT_META, "spec": JOB_SPEC})}),
                status=Struct({"active": atomic_list()}))
SERVICE = _kind(
    spec=Struct({
        "ports": merge_list(None, "port", "port", "protocol", defaults={"protocol": "TCP"}),
        "selector": ATOMIC_MAP,
        "clusterIPs": atomic_list(),
        "externalIPs": atomic_list(),
        "ipFamilies": atomic_list(),
        "loadBalancerSourceRanges": atomic_list(),
    }),
    status=Struct({"conditions": CONDITIONS,
                   "loadBalancer": Struct({"ingress": atomic_list()})}),
)
ENDPOINTS = _kind(subsets=atomic_list())
ENDPOINT_SLICE = _kind(endpoints=atomic_list(), ports=atomic_list())
NODE = _kind(
    spec=Struct({"podCIDRs": SET_MERGE, "taints": atomic_list()}),
    status=Struct({
        "conditions": CONDITIONS,
        "addresses": merge_list(None, "type"),
        "capacity": RESOURCE_LIST,
        "allocatable": RESOURCE_LIST,
        "images": atomic_list(),
        "volumesInUse": atomic_list(),
        "volumesAttached": atomic_list(),
    }),
)
NAMESPACE = _kind(spec=Struct({"finalizers": atomic_list()}),
                  status=Struct({"conditions": CONDITIONS}))
CONFIG_MAP = _kind(data=STRING_MAP, binaryData=STRING_MAP)
SECRET = _kind(data=STRING_MAP, stringData=STRING_MAP)
EVENT = _kind(involvedObject=OBJECT_REFERENCE, related=OBJECT_REFERENCE,
              regarding=OBJECT_REFERENCE)
SERVICE_ACCOUNT = _kind(secrets=merge_list(OBJECT_REFERENCE, "name"),
                        imagePullSecrets=atomic_list())
GENERIC = _kind()  # built-in kinds without interesting lists (Lease, Scale, Binding…)

# RBAC: rules, selectors and subjects are atomic lists; RoleRef and Subject atomic structs.
_ATOMIC_LIST = ListOf()
ROLE = _kind(rules=_ATOMIC_LIST)
CLUSTER_ROLE = _kind(rules=_ATOMIC_LIST, aggregationRule=Struct({"clusterRoleSelectors": _ATOMIC_LIST}))
ROLE_BINDING = _kind(subjects=ListOf(Struct(atomic=True)), roleRef=Struct(atomic=True))

# Admission webhooks: webhooks and their matchConditions merge by name, rules are atomic.
WEBHOOK_CONFIGURATION = _kind(webhooks=merge_list(Struct({
    "rules": atomic_list(), "admissionReviewVersions": atomic_list(),
    "namespaceSelector": LABEL_SELECTOR, "objectSelector": LABEL_SELECTOR,
    "matchConditions": merge_list(None, "name")}), "name"))
_HPA_RULES = Struct({"policies": atomic_list()})
HPA_V2 = _kind(spec=Struct({"metrics": atomic_list(),
                            "behavior": Struct({"scaleUp": _HPA_RULES, "scaleDown": _HPA_RULES})}),
               status=Struct({"currentMetrics": atomic_list(), "conditions": CONDITIONS}))
# Storage: access modes, mount options and topologies are atomic lists; claim conditions
# merge by type.
PERSISTENT_VOLUME = _kind(spec=Struct({"accessModes": atomic_list(), "claimRef": OBJECT_REFERENCE,
                                       "mountOptions": atomic_list(), "capacity": RESOURCE_LIST,
                                       "nodeAffinity": Struct({"required": NODE_SELECTOR})}))
PERSISTENT_VOLUME_CLAIM = _kind(
    spec=Struct({"accessModes": atomic_list(), "selector": LABEL_SELECTOR}),
    status=Struct({"accessModes": atomic_list(), "conditions": CONDITIONS, "capacity": RESOURCE_LIST}))
STORAGE_CLASS = _kind(mountOptions=atomic_list(), allowedTopologies=atomic_list(), parameters=STRING_MAP)

SCHEMAS: dict[tuple[str, str], Struct] = {
    ("v1", "Pod"): POD,
    ("v1", "Service"): SERVICE,
    ("v1", "Endpoints"): ENDPOINTS,
    ("v1", "Node"): NODE,
    ("v1", "Namespace"): NAMESPACE,
    ("v1", "ConfigMap"): CONFIG_MAP,
    ("v1", "Secret"): SECRET,
    ("v1", "Event"): EVENT,
    ("v1", "ServiceAccount"): SERVICE_ACCOUNT,
    ("v1", "Binding"): GENERIC,
    ("v1", "PodTemplate"): _kind(template=POD_TEMPLATE),
    ("v1", "ReplicationController"): REPLICATION_CONTROLLER,
    ("apps/v1", "Deployment"): DEPLOYMENT,
    ("apps/v1", "ReplicaSet"): REPLICASET,
    ("batch/v1", "Job"): JOB,
    ("batch/v1", "CronJob"): CRONJOB,
    ("apps/v1", "StatefulSet"): REPLICASET,   # same strategic fields: selector, template, conditions
    ("apps/v1", "DaemonSet"): REPLICASET,
    ("apps/v1", "ControllerRevision"): GENERIC,
    ("discovery.k8s.io/v1", "EndpointSlice"): ENDPOINT_SLICE,
    ("coordination.k8s.io/v1", "Lease"): GENERIC,
    # Every Ingress list is atomic (+listType=atomic): no strategic merge keys.
    ("networking.k8s.io/v1", "Ingress"): GENERIC,
    ("networking.k8s.io/v1", "IngressClass"): GENERIC,
    ("events.k8s.io/v1", "Event"): EVENT,
    ("autoscaling/v1", "Scale"): GENERIC,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): HPA_V2,
    ("autoscaling/v1", "HorizontalPodAutoscaler"): GENERIC,
    ("policy/v1", "Eviction"): GENERIC,
    ("networking.k8s.io/v1", "NetworkPolicy"): GENERIC,
    ("policy/v1", "PodDisruptionBudget"): _kind(spec=Struct({"selector": LABEL_SELECTOR}),
                                                status=Struct({"conditions": CONDITIONS})),
    ("rbac.authorization.k8s.io/v1", "Role"): ROLE,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): CLUSTER_ROLE,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ROLE_BINDING,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ROLE_BINDING,
    ("v1", "ResourceQuota"): GENERIC,
    ("v1", "LimitRange"): GENERIC,
    ("scheduling.k8s.io/v1", "PriorityClass"): GENERIC,
    ("v1", "PersistentVolume"): PERSISTENT_VOLUME,
    ("v1", "PersistentVolumeClaim"): PERSISTENT_VOLUME_CLAIM,
    ("storage.k8s.io/v1", "StorageClass"): STORAGE_CLASS,
    # No patch strategies in its Go types; conditions are a map keyed by type for apply.
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): _kind(status=Struct({"conditions": CONDITIONS})),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"): WEBHOOK_CONFIGURATION,
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"): WEBHOOK_CONFIGURATION,
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): _kind(
        spec=Struct({"matchConditions": merge_list(None, "name"), "variables": merge_list(None, "name"),
                     "validations": atomic_list(), "auditAnnotations": atomic_list()}),
        status=Struct({"conditions": CONDITIONS})),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"): _kind(
        spec=Struct({"validationActions": ListOf(None, "set")})),
    ("apiregistration.k8s.io/v1", "APIService"): _kind(status=Struct({"conditions": CONDITIONS})),
}


def schema_for(kind: str, api_version: str) -> Struct | None:
    """The merge schema of a built-in kind, or of a custom resource (from its CRD's
    list and map types), or None (unknown kinds)."""
    known = SCHEMAS.get((api_version, kind))
    if known is not None:
        return known
    from kubelite.api.resources import by_kind
    from kubelite.apiextensions.info import CustomResourceInfo
    info = by_kind(api_version, kind)
    if isinstance(info, CustomResourceInfo) and info.schema is not None:
        return _custom_struct(id(info.schema), info.schema)
    return None


_CUSTOM_CACHE: dict[int, tuple[Mapping[str, Any], Struct]] = {}


def _custom_struct(key: int, schema: Mapping[str, Any]) -> Struct:
    """A custom resource's merge schema, built once per stored schema object."""
    hit = _CUSTOM_CACHE.get(key)
    if hit is not None and hit[0] is schema:
        return hit[1]
    node = from_openapi(schema)
    fields = dict(node.fields) if isinstance(node, Struct) else {}
    root = Struct({**fields, "metadata": OBJECT_META})
    if len(_CUSTOM_CACHE) > 256:
        _CUSTOM_CACHE.clear()
    _CUSTOM_CACHE[key] = (schema, root)  # the schema is kept alive with its id
    return root


def from_openapi(s: Mapping[str, Any]) -> Node:
    """The merge node of a structural schema: x-kubernetes-list-type / -list-map-keys /
    -map-type, as upstream's apply reads them from a CRD."""
    typ = s.get("type")
    if typ == "array":
        items = s.get("items")
        item = from_openapi(items) if isinstance(items, Mapping) else None
        lt = s.get("x-kubernetes-list-type") or "atomic"
        if lt == "map":
            return ListOf(item, "map", tuple(s.get("x-kubernetes-list-map-keys") or ()))
        return ListOf(item, "set") if lt == "set" else atomic_list(item)
    if typ == "object" or isinstance(s.get("properties"), Mapping):
        atomic = s.get("x-kubernetes-map-type") == "atomic"
        addl = s.get("additionalProperties")
        if isinstance(addl, Mapping) and not s.get("properties"):
            return MapOf(from_openapi(addl), atomic=atomic)
        props = s.get("properties")
        if isinstance(props, Mapping):
            return Struct({k: from_openapi(v) for k, v in props.items() if isinstance(v, Mapping)}, atomic=atomic)
        return Struct(atomic=True) if atomic else None
    return None


# --- zero objects ---------------------------------------------------------------------
# JSON of each kind's Go zero value, minus apiVersion/kind.  Only what affects
# managed-fields bookkeeping matters: which containers exist before anything is set.

_META0 = {"creationTimestamp": None}
_TEMPLATE0 = {"metadata": dict(_META0), "spec": {"containers": None}}

ZERO_OBJECTS: dict[tuple[str, str], dict[str, Any]] = {
    ("v1", "Pod"): {"spec": {"containers": None}, "status": {}},
    ("v1", "Service"): {"spec": {}, "status": {"loadBalancer": {}}},
    ("v1", "Node"): {"spec": {}, "status": {
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {k: "" for k in (
            "machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
            "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion",
            "operatingSystem", "architecture")}}},
    ("v1", "Namespace"): {"spec": {}, "status": {}},
    ("v1", "Event"): {"involvedObject": {}, "source": {}, "firstTimestamp": None,
                      "lastTimestamp": None, "eventTime": None,
                      "reportingComponent": "", "reportingInstance": ""},
    ("apps/v1", "Deployment"): {"spec": {"selector": None, "template": _TEMPLATE0,
                                         "strategy": {}}, "status": {}},
    ("apps/v1", "ReplicaSet"): {"spec": {"selector": None, "template": _TEMPLATE0},
                                "status": {"replicas": 0}},
    ("v1", "ReplicationController"): {"spec": {}, "status": {"replicas": 0}},
    ("batch/v1", "Job"): {"spec": {"template": _TEMPLATE0}, "status": {}},
    ("batch/v1", "CronJob"): {"spec": {"schedule": "", "jobTemplate": {"metadata": dict(_META0),
                                                                        "spec": {"template": _TEMPLATE0}}},
                              "status": {}},
    ("apps/v1", "StatefulSet"): {"spec": {"selector": None, "template": _TEMPLATE0, "updateStrategy": {}},
                                 "status": {"replicas": 0, "availableReplicas": 0}},
    ("apps/v1", "DaemonSet"): {"spec": {"selector": None, "template": _TEMPLATE0, "updateStrategy": {}},
                               "status": {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                                          "desiredNumberScheduled": 0, "numberReady": 0}},
    ("apps/v1", "ControllerRevision"): {"revision": 0},
    ("policy/v1", "PodDisruptionBudget"): {"spec": {}, "status": {
        "disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}},
    ("discovery.k8s.io/v1", "EndpointSlice"): {"addressType": "", "endpoints": None},
    ("coordination.k8s.io/v1", "Lease"): {"spec": {}},
    ("networking.k8s.io/v1", "NetworkPolicy"): {"spec": {"podSelector": {}}},
    ("networking.k8s.io/v1", "Ingress"): {"spec": {}, "status": {"loadBalancer": {}}},
    ("networking.k8s.io/v1", "IngressClass"): {"spec": {}},
    ("apiregistration.k8s.io/v1", "APIService"): {"spec": {"groupPriorityMinimum": 0, "versionPriority": 0}},
    ("events.k8s.io/v1", "Event"): {"eventTime": None},
    ("rbac.authorization.k8s.io/v1", "Role"): {"rules": None},
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): {"rules": None},
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): {"roleRef": {"apiGroup": "", "kind": "", "name": ""}},
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): {"roleRef": {"apiGroup": "", "kind": "", "name": ""}},
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"): {},
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"): {},
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): {"spec": {}, "status": {}},
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"): {"spec": {}},
    ("autoscaling/v2", "HorizontalPodAutoscaler"): {"spec": {"scaleTargetRef": {"kind": "", "name": ""},
                                                             "maxReplicas": 0}, "status": {"desiredReplicas": 0}},
    ("autoscaling/v1", "HorizontalPodAutoscaler"): {"spec": {"scaleTargetRef": {"kind": "", "name": ""},
                                                             "maxReplicas": 0},
                                                    "status": {"currentReplicas": 0, "desiredReplicas": 0}},
    ("v1", "ResourceQuota"): {"spec": {}, "status": {}},
    ("v1", "LimitRange"): {"spec": {"limits": None}},
    ("scheduling.k8s.io/v1", "PriorityClass"): {"value": 0},
    ("v1", "PersistentVolume"): {"spec": {}, "status": {}},
    ("v1", "PersistentVolumeClaim"): {"spec": {"resources": {}}, "status": {}},
    ("storage.k8s.io/v1", "StorageClass"): {"provisioner": ""},
}


def zero_object(kind: str, api_version: str) -> dict[str, Any]:
    """A fresh copy of the kind's zero value (what a create is compared against)."""
    import copy
    base = {"metadata": dict(_META0)}
    base.update(copy.deepcopy(ZERO_OBJECTS.get((api_version, kind), {})))
    return base

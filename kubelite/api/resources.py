"""The resource catalogue: every kind kubelite serves, described by data.

Names, short names, categories, verbs and subresources follow upstream's discovery
documents (v1.28+), so `kubectl api-resources` and `kubectl get all` print what a real
cluster prints.  Only what we actually serve is listed: a resource in category ``all``
must answer lists, or `kubectl get all` errors.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Subresource:
    """A subresource such as ``status`` or ``scale`` and the kind it answers with."""

    name: str
    verbs: tuple[str, ...]
    group: str = ""      # responseKind group/version, empty when equal to the parent's
    version: str = ""
    kind: str = ""       # empty: the parent's kind


@dataclass(frozen=True)
class ResourceInfo:
    """What discovery says about one resource, plus what the server needs to serve it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = ()
    list_kind: str = ""
    # Upstream strategies: which writes move metadata.generation, and whether the main
    # resource ignores status (and /status ignores spec).
    has_status: bool = False
    # What DELETE returns: the object (pods, services, namespaces…) or a Status.
    return_deleted_object: bool = False
    # Set when this resource is another API's view of objects stored once in the form of
    # that apiVersion (upstream: events.k8s.io/v1 Events are core/v1 Events in etcd); the
    # registry converts on every read and write (``api.conversion``).
    storage_api_version: str = ""

    @property
    def api_version(self) -> str:
        """``apps/v1`` or ``v1``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        """Discovery's singularResource."""
        return self.kind.lower()

    @property
    def gvr(self) -> tuple[str, str, str]:
        """(group, version, plural)."""
        return (self.group, self.version, self.plural)

    def subresource(self, name: str) -> Subresource | None:
        """The named subresource, if this resource has it."""
        for s in self.subresources:
            if s.name == name:
                return s
        return None

    def store_prefix(self) -> str:
        """Key prefix in the store, e.g. ``/registry/apps/deployments/``."""
        group = self.storage_api_version.rpartition("/")[0] if self.storage_api_version else self.group
        return f"/registry/{group or 'core'}/{self.plural}/"

    def store_key(self, namespace: str, name: str) -> str:
        """The store key of one object."""
        if self.namespaced:
            return f"{self.store_prefix()}{namespace}/{name}"
        return f"{self.store_prefix()}{name}"


_STATUS = Subresource("status", STATUS_VERBS)
_SCALE = Subresource("scale", STATUS_VERBS, "autoscaling", "v1", "Scale")


def _proxy(options_kind: str) -> Subresource:
    """The proxy subresource of pods, services and nodes."""
    return Subresource("proxy", ("create", "delete", "get", "patch", "update"), kind=options_kind)


RESOURCES: tuple[ResourceInfo, ...] = (
    # core/v1
    ResourceInfo("", "v1", "Binding", "bindings", verbs=("create",)),
    ResourceInfo("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    ResourceInfo("", "v1", "Endpoints", "endpoints", short_names=("ep",)),
    ResourceInfo("", "v1", "Event", "events", short_names=("ev",)),
    ResourceInfo("", "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                 subresources=(Subresource("finalize", ("update",)), _STATUS),
                 has_status=True, return_deleted_object=True),
    ResourceInfo("", "v1", "Node", "nodes", namespaced=False, short_names=("no",),
                 subresources=(_proxy("NodeProxyOptions"), _STATUS),
                 has_status=True, return_deleted_object=True),
    ResourceInfo("", "v1", "Pod", "pods", short_names=("po",), categories=("all",),
                 subresources=(
                     Subresource("attach", ("create", "get"), kind="PodAttachOptions"),
                     Subresource("binding", ("create",), kind="Binding"),
                     Subresource("eviction", ("create",), "policy", "v1", "Eviction"),
                     Subresource("exec", ("create", "get"), kind="PodExecOptions"),
                     Subresource("log", ("get",)),
                     Subresource("portforward", ("create", "get"), kind="PodPortForwardOptions"),
                     _proxy("PodProxyOptions"),
                     _STATUS),
                 has_status=True, return_deleted_object=True),
    ResourceInfo("", "v1", "ReplicationController", "replicationcontrollers", short_names=("rc",),
                 categories=("all",), subresources=(_SCALE, _STATUS), has_status=True),
    ResourceInfo("", "v1", "PodTemplate", "podtemplates"),
    ResourceInfo("", "v1", "Secret", "secrets"),
    ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",),
                 subresources=(Subresource("token", ("create",), "authentication.k8s.io", "v1", "TokenRequest"),),
                 return_deleted_object=True),
    ResourceInfo("", "v1", "Service", "services", short_names=("svc",), categories=("all",),
                 subresources=(_proxy("ServiceProxyOptions"), _STATUS),
                 has_status=True, return_deleted_object=True),
    # apps/v1
    ResourceInfo("apps", "v1", "Deployment", "deployments", short_names=("deploy",), categories=("all",),
                 subresources=(_SCALE, _STATUS), has_status=True),
    ResourceInfo("apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=("all",),
                 subresources=(_SCALE, _STATUS), has_status=True),
    # batch/v1
    ResourceInfo("batch", "v1", "CronJob", "cronjobs", short_names=("cj",), categories=("all",),
                 subresources=(_STATUS,), has_status=True),
    ResourceInfo("batch", "v1", "Job", "jobs", categories=("all",), subresources=(_STATUS,), has_status=True),
    ResourceInfo("apps", "v1", "ControllerRevision", "controllerrevisions"),
    ResourceInfo("apps", "v1", "StatefulSet", "statefulsets", short_names=("sts",), categories=("all",),
                 subresources=(_SCALE, _STATUS), has_status=True),
    ResourceInfo("apps", "v1", "DaemonSet", "daemonsets", short_names=("ds",), categories=("all",),
                 subresources=(_STATUS,), has_status=True),
    # core/v1 quotas and limits; scheduling.k8s.io/v1 priority classes
    ResourceInfo("", "v1", "ResourceQuota", "resourcequotas", short_names=("quota",), subresources=(_STATUS,),
                 has_status=True),
    ResourceInfo("", "v1", "LimitRange", "limitranges", short_names=("limits",)),
    ResourceInfo("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", namespaced=False,
                 short_names=("pc",)),
    # discovery.k8s.io/v1
    ResourceInfo("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    # networking.k8s.io/v1: Ingress (status written by the ingress controller) and IngressClass.
    ResourceInfo("networking.k8s.io", "v1", "IngressClass", "ingressclasses", namespaced=False),
    ResourceInfo("networking.k8s.io", "v1", "Ingress", "ingresses", short_names=("ing",),
                 subresources=(_STATUS,), has_status=True),
    # coordination.k8s.io/v1
    ResourceInfo("coordination.k8s.io", "v1", "Lease", "leases"),
    # events.k8s.io/v1: the core/v1 Events, stored once, seen with the new API's field names.
    ResourceInfo("events.k8s.io", "v1", "Event", "events", short_names=("ev",), storage_api_version="v1"),
    # authentication.k8s.io/v1 and authorization.k8s.io/v1: create-only reviews, answered
    # by the API server and never stored (``apiserver/authz/reviews.py``).
    ResourceInfo("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", namespaced=False,
                 verbs=("create",)),
    ResourceInfo("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", namespaced=False, verbs=("create",)),
    ResourceInfo("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
                 verbs=("create",)),
    ResourceInfo("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
                 namespaced=False, verbs=("create",)),
    ResourceInfo("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
                 namespaced=False, verbs=("create",)),
    ResourceInfo("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", namespaced=False,
                 verbs=("create",)),
    # rbac.authorization.k8s.io/v1
    ResourceInfo("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    # core/v1 and storage.k8s.io/v1: persistent storage.
    ResourceInfo("", "v1", "PersistentVolume", "persistentvolumes", namespaced=False, short_names=("pv",),
                 subresources=(_STATUS,), has_status=True),
    ResourceInfo("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",),
                 subresources=(_STATUS,), has_status=True),
    ResourceInfo("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False, short_names=("sc",)),
    # apiextensions.k8s.io/v1: the definitions of the dynamic part below.
    ResourceInfo("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
                 namespaced=False, short_names=("crd", "crds"), categories=("api-extensions",),
                 subresources=(_STATUS,), has_status=True),
    # admissionregistration.k8s.io/v1: admission webhooks (``apiserver/webhooks``).
    ResourceInfo("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration",
                 "mutatingwebhookconfigurations", namespaced=False, categories=("api-extensions",)),
    ResourceInfo("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration",
                 "validatingwebhookconfigurations", namespaced=False, categories=("api-extensions",)),
    # ... and CEL policies (``apiserver/webhooks/policies.py``).
    ResourceInfo("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies",
                 namespaced=False, categories=("api-extensions",), subresources=(_STATUS,), has_status=True),
    ResourceInfo("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding",
                 "validatingadmissionpolicybindings", namespaced=False, categories=("api-extensions",)),
    # autoscaling: HorizontalPodAutoscalers stored once in their v2 form; v1 is a view.
    ResourceInfo("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short_names=("hpa",),
                 categories=("all",), subresources=(_STATUS,), has_status=True),
    ResourceInfo("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short_names=("hpa",),
                 categories=("all",), subresources=(_STATUS,), has_status=True,
                 storage_api_version="autoscaling/v2"),
    # metrics.k8s.io/v1beta1: read-only usage answered from the node agents' summaries
    # (``kubelite.metrics``), never stored, as metrics-server serves it.
    ResourceInfo("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", namespaced=False, verbs=("get", "list")),
    ResourceInfo("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", verbs=("get", "list")),
    # networking.k8s.io/v1
    ResourceInfo("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short_names=("netpol",)),
    # policy/v1
    ResourceInfo("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short_names=("pdb",),
                 subresources=(_STATUS,), has_status=True),
    # apiregistration.k8s.io/v1: which server answers each group/version (API aggregation).
    ResourceInfo("apiregistration.k8s.io", "v1", "APIService", "apiservices", namespaced=False,
                 categories=("api-extensions",), subresources=(_STATUS,), has_status=True),
)

# Upstream's order, from the oracle's /apis: the groups kubelite serves, in the same sequence.
GROUP_ORDER = ("apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io",
               "autoscaling", "batch", "certificates.k8s.io", "networking.k8s.io", "policy",
               "rbac.authorization.k8s.io", "storage.k8s.io", "admissionregistration.k8s.io",
               "apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io",
               "discovery.k8s.io", "flowcontrol.apiserver.k8s.io", "metrics.k8s.io")

_BY_GVR = {r.gvr: r for r in RESOURCES}

# The dynamic part of the catalogue: resources of established CustomResourceDefinitions,
# replaced as a whole by the API server whenever a CRD changes (``apiextensions.manager``).
# A custom resource never shadows a built-in one (upstream refuses such CRD names).
_DYNAMIC: dict[tuple[str, str, str], ResourceInfo] = {}
_generation = 0


def set_dynamic(infos: Iterable[ResourceInfo]) -> None:
    """Replace the dynamic part of the catalogue."""
    global _DYNAMIC, _generation
    # A new dict, swapped in whole: readers on other threads (the OpenAPI builder) see
    # the old or the new catalogue, never one being changed.
    _DYNAMIC = {r.gvr: r for r in infos if r.gvr not in _BY_GVR}
    _generation += 1


def catalogue_generation() -> int:
    """A number that moves whenever the dynamic part changes (caches key on it)."""
    return _generation


def served() -> tuple[ResourceInfo, ...]:
    """Every served resource: the static table, then the dynamic part."""
    dynamic = _DYNAMIC
    return RESOURCES + tuple(dynamic.values()) if dynamic else RESOURCES


def lookup(group: str, version: str, plural: str) -> ResourceInfo | None:
    """The resource served at /apis/<group>/<version>/<plural>, if any."""
    key = (group, version, plural)
    return _BY_GVR.get(key) or _DYNAMIC.get(key)


def by_kind(api_version: str, kind: str) -> ResourceInfo | None:
    """The resource for an apiVersion + kind pair."""
    for r in served():
        if r.api_version == api_version and r.kind == kind:
            return r
    return None


def group_versions() -> dict[str, list[str]]:
    """{group: [versions]} for every group we serve ('' is core)."""
    out: dict[str, list[str]] = {}
    for r in served():
        vs = out.setdefault(r.group, [])
        if r.version not in vs:
            vs.append(r.version)
    return out


def in_group_version(group: str, version: str) -> list[ResourceInfo]:
    """Every resource of one group/version, in catalogue order."""
    return [r for r in served() if r.group == group and r.version == version]


def _served(group: str, version: str, plural: str) -> ResourceInfo:
    """A resource the catalogue above must contain (fails at import when it does not)."""
    info = lookup(group, version, plural)
    if info is None:
        raise LookupError(f"{plural}.{group or 'core'}/{version} is not in the catalogue")
    return info


# Shared by every component: where the per-kind clients live.
DEPLOYMENTS = _served("apps", "v1", "deployments")
REPLICASETS = _served("apps", "v1", "replicasets")
PODS = _served("", "v1", "pods")
SERVICES = _served("", "v1", "services")
ENDPOINTS = _served("", "v1", "endpoints")
ENDPOINTSLICES = _served("discovery.k8s.io", "v1", "endpointslices")
NODES = _served("", "v1", "nodes")
NAMESPACES = _served("", "v1", "namespaces")
EVENTS = _served("", "v1", "events")
LEASES = _served("coordination.k8s.io", "v1", "leases")
SERVICEACCOUNTS = _served("", "v1", "serviceaccounts")
CONFIGMAPS = _served("", "v1", "configmaps")
SECRETS = _served("", "v1", "secrets")
ROLES = _served("rbac.authorization.k8s.io", "v1", "roles")
ROLEBINDINGS = _served("rbac.authorization.k8s.io", "v1", "rolebindings")
CLUSTERROLES = _served("rbac.authorization.k8s.io", "v1", "clusterroles")
CLUSTERROLEBINDINGS = _served("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
JOBS = _served("batch", "v1", "jobs")
CRONJOBS = _served("batch", "v1", "cronjobs")
CONTROLLERREVISIONS = _served("apps", "v1", "controllerrevisions")
STATEFULSETS = _served("apps", "v1", "statefulsets")
DAEMONSETS = _served("apps", "v1", "daemonsets")
HORIZONTALPODAUTOSCALERS = _served("autoscaling", "v2", "horizontalpodautoscalers")
NODEMETRICS = _served("metrics.k8s.io", "v1beta1", "nodes")
PODMETRICS = _served("metrics.k8s.io", "v1beta1", "pods")
INGRESSES = _served("networking.k8s.io", "v1", "ingresses")
INGRESSCLASSES = _served("networking.k8s.io", "v1", "ingressclasses")
CUSTOMRESOURCEDEFINITIONS = _served("apiextensions.k8s.io", "v1", "customresourcedefinitions")
MUTATINGWEBHOOKCONFIGURATIONS = _served("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations")
VALIDATINGWEBHOOKCONFIGURATIONS = _served("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
VALIDATINGADMISSIONPOLICIES = _served("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies")
VALIDATINGADMISSIONPOLICYBINDINGS = _served("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings")
NETWORKPOLICIES = _served("networking.k8s.io", "v1", "networkpolicies")
PODDISRUPTIONBUDGETS = _served("policy", "v1", "poddisruptionbudgets")
REPLICATIONCONTROLLERS = _served("", "v1", "replicationcontrollers")
RESOURCEQUOTAS = _served("", "v1", "resourcequotas")
LIMITRANGES = _served("", "v1", "limitranges")
PRIORITYCLASSES = _served("scheduling.k8s.io", "v1", "priorityclasses")
PERSISTENTVOLUMES = _served("", "v1", "persistentvolumes")
PERSISTENTVOLUMECLAIMS = _served("", "v1", "persistentvolumeclaims")
STORAGECLASSES = _served("storage.k8s.io", "v1", "storageclasses")
APISERVICES = _served("apiregistration.k8s.io", "v1", "apiservices")

"""One valid, minimal object per served resource, for the generic specs.

Keyed by ``<apiVersion>/<plural>`` as discovery names the resource. A served resource
missing here fails ``test_every_served_resource_has_a_sample``: a new kind joins the suite
by adding its entry. Besides the object itself an entry says:

- ``spec_change``: a merge patch that changes the spec and that the main resource
  accepts (status-subresource specs check that /status ignores it);
- ``status_change``: a ``status`` the /status subresource accepts (and the main resource
  ignores);
- ``prereqs``: objects the sample needs in its namespace first (a Binding's pod);
- ``garbage_collected``: whether the garbage collector handles the kind, as owner and as
  dependent (upstream ignores events, and deletes them whatever the propagation policy);
- ``name_suffix``: appended to every name the suite makes (a CRD's name is
  ``<plural>.<group>``).

Custom resources join the same way: the suite's server serves ``WIDGET_CRD`` before
discovery is read, and ``widgets`` has a sample like any built-in kind.

``make(name, namespace)`` builds the object; names come from the suite (unique per test)
and the suite adds its own labels. Addresses
are from TEST-NET-1 (192.0.2.0/24): stored, never dialled.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

NOW = "2024-01-01T00:00:00Z"
RBAC = "rbac.authorization.k8s.io/v1"
_RULE = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}
NOW_MICRO = "2024-01-01T00:00:00.000000Z"


def _no_prereqs(_name: str, _ns: str) -> list[Obj]:
    return []


@dataclass(frozen=True)
class Sample:
    """How to make a valid object of one resource, and what may change on it."""

    make: Callable[[str, str], Obj]
    spec_change: Obj | None = None
    status_change: Obj | None = None
    prereqs: Callable[[str, str], list[Obj]] = _no_prereqs
    garbage_collected: bool = True
    name_suffix: str = ""


def _obj(api_version: str, kind: str, name: str, **rest: Any) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **rest}


def _pod_spec() -> Obj:
    return {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}], "restartPolicy": "Always"}


def _template(name: str) -> Obj:
    # The pod template's labels are the workload's own, never the suite's: pods and
    # ReplicaSets a controller makes from it must not match the suite's selectors.
    return {"metadata": {"labels": {"app": name}}, "spec": _pod_spec()}


def _pod(name: str, ns: str) -> Obj:
    return _obj("v1", "Pod", name, spec=_pod_spec())


def _binding(name: str, ns: str) -> Obj:
    return _obj("v1", "Binding", name, target={"apiVersion": "v1", "kind": "Node", "name": "conformance-node"})


def _core_event(name: str, ns: str) -> Obj:
    return _obj("v1", "Event", name, involvedObject={"apiVersion": "v1", "kind": "Pod", "name": "p", "namespace": ns},
                reason="Tested", message="a conformance event", type="Normal",
                source={"component": "conformance"}, firstTimestamp=NOW, lastTimestamp=NOW, count=1)


def _events_v1_event(name: str, ns: str) -> Obj:
    return _obj("events.k8s.io/v1", "Event", name, eventTime=NOW_MICRO, reportingController="example.com/conformance",
                reportingInstance="conformance-1", action="Testing", reason="Tested", type="Normal",
                regarding={"apiVersion": "v1", "kind": "Pod", "name": "p", "namespace": ns}, note="a conformance event")


def _condition(type_: str) -> Obj:
    return {"type": type_, "status": "True", "lastTransitionTime": NOW, "reason": "Tested", "message": "set by a test"}


CRD_GROUP = "conformance.kubelite.example.com"

# A namespaced custom resource with status and scale subresources, served by the suite's
# server from its start.
WIDGET_CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{CRD_GROUP}"},
    "spec": {"group": CRD_GROUP, "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"]},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                                    "statusReplicasPath": ".status.replicas"}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {
                                   "replicas": {"type": "integer", "minimum": 0},
                                   "color": {"type": "string"}}},
                               "status": {"type": "object", "properties": {
                                   "replicas": {"type": "integer"},
                                   "conditions": {"type": "array", "items": {
                                       "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}}}}]}}


def _crd_versions(description: str) -> list[Obj]:
    # Not served: the suite's CRDs must not add resources to the discovery other specs compare.
    return [{"name": "v1", "served": False, "storage": True,
             "schema": {"openAPIV3Schema": {"type": "object", "description": description,
                                            "x-kubernetes-preserve-unknown-fields": True}}}]


def _crd(name: str, ns: str) -> Obj:
    """A CRD named ``<plural>.<group>``: the plural is the suite's name, the kind made from it."""
    plural = name.split(".", 1)[0]
    kind = "K" + plural.replace("-", "")
    return _obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", name, spec={
        "group": CRD_GROUP, "scope": "Namespaced", "names": {"plural": plural, "kind": kind},
        "versions": _crd_versions("a conformance sample")})


def _webhook_configuration(kind: str) -> Callable[[str, str], Obj]:
    """A webhook configuration whose webhook matches nothing the suite writes."""
    def make(name: str, ns: str) -> Obj:
        hook: Obj = {"name": "never.conformance.kubelite.example.com", "sideEffects": "None",
                     "admissionReviewVersions": ["v1"], "failurePolicy": "Ignore",
                     "clientConfig": {"url": "https://127.0.0.1:9/never"},
                     # scope given: a defaulted field in this atomic list would make a second
                     # applier of the same manifest conflict with the first.
                     "rules": [{"operations": ["CREATE"], "apiGroups": [CRD_GROUP], "apiVersions": ["v1"],
                                "resources": ["nothings"], "scope": "*"}]}
        return _obj("admissionregistration.k8s.io/v1", kind, name, webhooks=[hook])
    return make


SAMPLES: dict[str, Sample] = {
    "v1/bindings": Sample(_binding, prereqs=lambda n, ns: [_pod(n, ns)]),
    "v1/configmaps": Sample(lambda n, ns: _obj("v1", "ConfigMap", n, data={"key": "value"})),
    "v1/endpoints": Sample(lambda n, ns: _obj("v1", "Endpoints", n, subsets=[
        {"addresses": [{"ip": "192.0.2.10"}], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}])),
    "v1/events": Sample(_core_event, garbage_collected=False),
    "v1/namespaces": Sample(lambda n, ns: _obj("v1", "Namespace", n),
                            status_change={"conditions": [{"type": "NamespaceContentRemaining", "status": "False",
                                                           "lastTransitionTime": NOW, "reason": "Tested",
                                                           "message": "set by a test"}]}),
    # With its own pod CIDR (a documentation block, outside the cluster CIDR, never routed: this
    # server runs no agent or proxy) the node IPAM controller leaves the spec alone; otherwise its
    # patch can land between a spec's read and its unconditional update, which then tries to
    # unset podCIDR (seen on a loaded machine).
    "v1/nodes": Sample(lambda n, ns: _obj("v1", "Node", n, spec={"podCIDR": "192.0.2.0/24", "podCIDRs": ["192.0.2.0/24"]}),
                       spec_change={"spec": {"unschedulable": True}},
                       status_change={"addresses": [{"type": "InternalIP", "address": "192.0.2.20"}]}),
    "v1/pods": Sample(_pod, spec_change={"spec": {"activeDeadlineSeconds": 600}},
                      status_change={"conditions": [{"type": "MyStatus", "status": "True"}]}),
    "v1/podtemplates": Sample(lambda n, ns: _obj("v1", "PodTemplate", n, template=_template(n))),
    "v1/replicationcontrollers": Sample(
        lambda n, ns: _obj("v1", "ReplicationController", n,
                       spec={"replicas": 0, "selector": {"app": n}, "template": _template(n)}),
        spec_change={"spec": {"minReadySeconds": 5}},
        status_change={"conditions": [{"type": "ReplicaFailure", "status": "False",
                                                      "lastTransitionTime": NOW, "reason": "Tested"}]}),
    "v1/limitranges": Sample(lambda n, ns: _obj("v1", "LimitRange", n, spec={
        "limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}}]})),
    "v1/resourcequotas": Sample(lambda n, ns: _obj("v1", "ResourceQuota", n, spec={"hard": {"configmaps": "100"}}),
                                spec_change={"spec": {"hard": {"configmaps": "50"}}},
                                # A count the quota controller never computes here (the namespace holds one
                                # ConfigMap, kube-root-ca.crt): its own status must not look like the sample's.
                                status_change={"hard": {"configmaps": "100"}, "used": {"configmaps": "7"}}),
    "v1/secrets": Sample(lambda n, ns: _obj("v1", "Secret", n, type="Opaque", data={"key": "dmFsdWU="})),
    "v1/serviceaccounts": Sample(lambda n, ns: _obj("v1", "ServiceAccount", n)),
    "v1/services": Sample(lambda n, ns: _obj("v1", "Service", n, spec={
        "selector": {"app": n}, "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}),
        spec_change={"spec": {"publishNotReadyAddresses": True}},
        status_change={"conditions": [_condition("Tested")]}),
    "apps/v1/controllerrevisions": Sample(lambda n, ns: _obj("apps/v1", "ControllerRevision", n, revision=1,
                                                         data={"spec": {"template": _template(n)}})),
    "apps/v1/deployments": Sample(
        lambda n, ns: _obj("apps/v1", "Deployment", n, spec={"replicas": 0, "selector": {"matchLabels": {"app": n}},
                                                         "template": _template(n)}),
        spec_change={"spec": {"minReadySeconds": 5}},
        # A condition type of the test's own: the Deployment controller writes Progressing too, and
        # an apply racing its write conflicted with it.
        status_change={"conditions": [
            {"type": "Tested", "status": "True", "lastUpdateTime": NOW, "lastTransitionTime": NOW,
             "reason": "Tested", "message": "set by a test"}]}),
    "apps/v1/replicasets": Sample(
        lambda n, ns: _obj("apps/v1", "ReplicaSet", n, spec={"replicas": 0, "selector": {"matchLabels": {"app": n}},
                                                         "template": _template(n)}),
        spec_change={"spec": {"minReadySeconds": 5}},
        status_change={"conditions": [
            {"type": "ReplicaFailure", "status": "False", "lastTransitionTime": NOW, "reason": "Tested"}]}),
    "batch/v1/jobs": Sample(
        # Suspended: a cluster running the suite's samples starts no pods for it.
        lambda n, ns: _obj("batch/v1", "Job", n, spec={"suspend": True, "template": {
            "metadata": {"labels": {"app": n}}, "spec": {**_pod_spec(), "restartPolicy": "Never"}}}),
        spec_change={"spec": {"activeDeadlineSeconds": 600}},
        status_change={"failed": 1}),
    "batch/v1/cronjobs": Sample(
        lambda n, ns: _obj("batch/v1", "CronJob", n, spec={"schedule": "0 0 1 1 *", "suspend": True, "jobTemplate": {
            "spec": {"template": {"metadata": {"labels": {"app": n}},
                                  "spec": {**_pod_spec(), "restartPolicy": "OnFailure"}}}}}),
        spec_change={"spec": {"schedule": "0 0 2 1 *"}},
        status_change={"lastScheduleTime": NOW}),
    "scheduling.k8s.io/v1/priorityclasses": Sample(
        lambda n, ns: _obj("scheduling.k8s.io/v1", "PriorityClass", n, value=1000, description="conformance")),
    "coordination.k8s.io/v1/leases": Sample(lambda n, ns: _obj("coordination.k8s.io/v1", "Lease", n, spec={
        "holderIdentity": "conformance", "leaseDurationSeconds": 15, "acquireTime": NOW_MICRO, "renewTime": NOW_MICRO})),
    "discovery.k8s.io/v1/endpointslices": Sample(lambda n, ns: _obj(
        "discovery.k8s.io/v1", "EndpointSlice", n, addressType="IPv4",
        endpoints=[{"addresses": ["192.0.2.30"], "conditions": {"ready": True}}],
        ports=[{"name": "http", "port": 80, "protocol": "TCP"}])),
    "networking.k8s.io/v1/ingresses": Sample(lambda n, ns: _obj("networking.k8s.io/v1", "Ingress", n, spec={
        "ingressClassName": "conformance", "rules": [{"host": "conformance.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}),
        spec_change={"spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 8080}}}}},
        status_change={"loadBalancer": {"ingress": [{"ip": "192.0.2.40"}]}}),
    "networking.k8s.io/v1/ingressclasses": Sample(lambda n, ns: _obj(
        "networking.k8s.io/v1", "IngressClass", n, spec={"controller": "conformance.example.com/ingress"}),
        spec_change={"spec": {"parameters": {"kind": "Config", "name": "c", "apiGroup": "conformance.example.com"}}}),
    "events.k8s.io/v1/events": Sample(_events_v1_event, garbage_collected=False),
    "rbac.authorization.k8s.io/v1/roles": Sample(lambda n, ns: _obj(RBAC, "Role", n, rules=[_RULE])),
    "rbac.authorization.k8s.io/v1/clusterroles": Sample(lambda n, ns: _obj(RBAC, "ClusterRole", n, rules=[_RULE])),
    "rbac.authorization.k8s.io/v1/rolebindings": Sample(lambda n, ns: _obj(
        RBAC, "RoleBinding", n, roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        subjects=[{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "conformance"}])),
    "rbac.authorization.k8s.io/v1/clusterrolebindings": Sample(lambda n, ns: _obj(
        RBAC, "ClusterRoleBinding", n,
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        subjects=[{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "conformance"}])),
    "authorization.k8s.io/v1/selfsubjectaccessreviews": Sample(lambda n, ns: _obj(
        "authorization.k8s.io/v1", "SelfSubjectAccessReview", n,
        spec={"resourceAttributes": {"verb": "get", "resource": "pods"}}), garbage_collected=False),
    "authorization.k8s.io/v1/subjectaccessreviews": Sample(lambda n, ns: _obj(
        "authorization.k8s.io/v1", "SubjectAccessReview", n,
        spec={"user": "conformance", "resourceAttributes": {"verb": "get", "resource": "pods"}}),
        garbage_collected=False),
    "authorization.k8s.io/v1/localsubjectaccessreviews": Sample(lambda n, ns: _obj(
        "authorization.k8s.io/v1", "LocalSubjectAccessReview", n,
        spec={"user": "conformance", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": ns}}),
        garbage_collected=False),
    "authorization.k8s.io/v1/selfsubjectrulesreviews": Sample(lambda n, ns: _obj(
        "authorization.k8s.io/v1", "SelfSubjectRulesReview", n, spec={"namespace": ns}), garbage_collected=False),
    "authentication.k8s.io/v1/selfsubjectreviews": Sample(lambda n, ns: _obj(
        "authentication.k8s.io/v1", "SelfSubjectReview", n), garbage_collected=False),
    "authentication.k8s.io/v1/tokenreviews": Sample(lambda n, ns: _obj(
        "authentication.k8s.io/v1", "TokenReview", n, spec={"token": "not-a-valid-token"}), garbage_collected=False),
    # Classes nothing provides, and a different one for each: the samples neither bind to
    # each other (a claim left by one spec would take the next spec's volume) nor get provisioned.
    "v1/persistentvolumes": Sample(
        lambda n, ns: _obj("v1", "PersistentVolume", n, spec={
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "storageClassName": "kubelite-conformance-volumes", "hostPath": {"path": "/tmp/kubelite-conformance"}}),
        spec_change={"spec": {"mountOptions": ["ro"]}},
        # Not the phase: the binder sets it (Available) and owns it, as upstream's would.
        status_change={"reason": "Tested", "message": "tested"}),
    "v1/persistentvolumeclaims": Sample(
        lambda n, ns: _obj("v1", "PersistentVolumeClaim", n, spec={
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "kubelite-conformance-none"}),
        status_change={"conditions": [{"type": "Tested", "status": "True", "lastTransitionTime": NOW}]}),
    "storage.k8s.io/v1/storageclasses": Sample(lambda n, ns: _obj(
        "storage.k8s.io/v1", "StorageClass", n, provisioner="example.com/conformance",
        parameters={"kind": "none"})),
    "apps/v1/statefulsets": Sample(
        lambda n, ns: _obj("apps/v1", "StatefulSet", n, spec={"replicas": 0, "serviceName": n,
                                                          "selector": {"matchLabels": {"app": n}},
                                                          "template": _template(n)}),
        spec_change={"spec": {"minReadySeconds": 5}},
        # collisionCount 0, as the StatefulSet controller writes it on its first sync: an update
        # without it after that sync would decrement it (refused, as upstream refuses it).
        status_change={"replicas": 0, "availableReplicas": 0, "collisionCount": 0, "conditions": [
            {"type": "Tested", "status": "True", "lastTransitionTime": NOW, "reason": "Tested"}]}),
    "apps/v1/daemonsets": Sample(
        # A node selector nothing matches: the sample must not start pods anywhere.
        lambda n, ns: _obj("apps/v1", "DaemonSet", n, spec={
            "selector": {"matchLabels": {"app": n}},
            "template": {**_template(n), "spec": {**_pod_spec(), "nodeSelector": {"kubelite.dev/none": "x"}}}}),
        spec_change={"spec": {"minReadySeconds": 5}},
        status_change={"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                       "numberReady": 0, "conditions": [
                           {"type": "Tested", "status": "True", "lastTransitionTime": NOW, "reason": "Tested"}]}),
    "autoscaling/v2/horizontalpodautoscalers": Sample(
        lambda n, ns: _obj("autoscaling/v2", "HorizontalPodAutoscaler", n, spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": n},
            "minReplicas": 1, "maxReplicas": 3}),
        spec_change={"spec": {"maxReplicas": 4}},
        status_change={"currentReplicas": 2, "desiredReplicas": 2}),
    "autoscaling/v1/horizontalpodautoscalers": Sample(
        lambda n, ns: _obj("autoscaling/v1", "HorizontalPodAutoscaler", n, spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": n},
            "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}),
        spec_change={"spec": {"maxReplicas": 4}},
        status_change={"currentReplicas": 2, "desiredReplicas": 2}),
    # Read-only views of usage (never created): the samples only name their shape.
    "metrics.k8s.io/v1beta1/nodes": Sample(
        lambda n, ns: _obj("metrics.k8s.io/v1beta1", "NodeMetrics", n, timestamp=NOW, window="15s",
                           usage={"cpu": "0", "memory": "0"}), garbage_collected=False),
    "metrics.k8s.io/v1beta1/pods": Sample(
        lambda n, ns: _obj("metrics.k8s.io/v1beta1", "PodMetrics", n, timestamp=NOW, window="15s", containers=[]),
        garbage_collected=False),
    "policy/v1/poddisruptionbudgets": Sample(
        lambda n, ns: _obj("policy/v1", "PodDisruptionBudget", n,
                           spec={"minAvailable": 1, "selector": {"matchLabels": {"app": n}}}),
        spec_change={"spec": {"minAvailable": 2}},
        # The disruption controller keeps conditions of other types, so this one stays.
        status_change={"conditions": [_condition("Tested")]}),
    "apiextensions.k8s.io/v1/customresourcedefinitions": Sample(
        _crd, spec_change={"spec": {"versions": _crd_versions("changed by a test")}},
        status_change={"conditions": [_condition("Tested")]},
        name_suffix="." + CRD_GROUP),
    "admissionregistration.k8s.io/v1/mutatingwebhookconfigurations": Sample(
        _webhook_configuration("MutatingWebhookConfiguration")),
    "admissionregistration.k8s.io/v1/validatingwebhookconfigurations": Sample(
        _webhook_configuration("ValidatingWebhookConfiguration")),
    "admissionregistration.k8s.io/v1/validatingadmissionpolicies": Sample(
        lambda n, ns: _obj("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", n, spec={
            "failurePolicy": "Ignore", "validations": [{"expression": "true"}],
            "matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": [CRD_GROUP],
                                                    "apiVersions": ["v1"], "resources": ["nothings"], "scope": "*"}]}}),
        spec_change={"spec": {"validations": [{"expression": "1 == 1"}]}},
        status_change={"observedGeneration": 5}),
    "admissionregistration.k8s.io/v1/validatingadmissionpolicybindings": Sample(
        lambda n, ns: _obj("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", n, spec={
            "policyName": "no-such-policy.example.com", "validationActions": ["Deny"]}),
        spec_change={"spec": {"validationActions": ["Warn"]}}),
    f"{CRD_GROUP}/v1/widgets": Sample(
        lambda n, ns: _obj(f"{CRD_GROUP}/v1", "Widget", n, spec={"replicas": 1, "color": "blue"}),
        spec_change={"spec": {"color": "red"}},
        status_change={"replicas": 1, "conditions": [_condition("Tested")]}),
    "networking.k8s.io/v1/networkpolicies": Sample(
        lambda n, ns: _obj("networking.k8s.io/v1", "NetworkPolicy", n, spec={
            "podSelector": {"matchLabels": {"app": n}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}},
                                  {"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}],
                         "ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": "http"}]}],
            "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "endPort": 54, "protocol": "UDP"}]}],
            "policyTypes": ["Ingress", "Egress"]}),
        spec_change={"spec": {"policyTypes": ["Ingress"], "egress": None}}),
    # An APIService's name is version.group: the suite's names give both (obj-<token>.<group>).
    "apiregistration.k8s.io/v1/apiservices": Sample(
        lambda n, ns: _obj("apiregistration.k8s.io/v1", "APIService", n, spec={
            "group": n.partition(".")[2], "version": n.partition(".")[0],
            "groupPriorityMinimum": 100, "versionPriority": 10}),
        spec_change={"spec": {"versionPriority": 20}},
        # What the availability controller writes for a local APIService, so it leaves it alone.
        status_change={"conditions": [{"type": "Available", "status": "True", "lastTransitionTime": NOW,
                                       "reason": "Local", "message": "Local APIServices are always available"}]},
        name_suffix=".apiservices.kubelite.example.com"),
}

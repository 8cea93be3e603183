"""The bootstrap policy: the ClusterRoles, Roles and bindings a fresh cluster has (data).

The rule sets are upstream's (``plugin/pkg/auth/authorizer/rbac/bootstrappolicy`` at
v1.33: the cluster roles, the ``system:controller:*`` roles each bound to its controller's
ServiceAccount in kube-system, and the kube-system / kube-public namespace roles), written
down again here in a compact notation: ``rule("get list watch", "pods services")`` is one
PolicyRule of the core group; a third argument lists API groups (``core`` is ``""``),
``names=`` restricts to resourceNames, ``urls=`` makes a non-resource rule.

Three kubelite additions are marked ``kubelite:``; they exist because kubelite does
things upstream's components do not (see the README): agents join with a bootstrap token
and fetch their certificates from ``/v1-kubelite/node-certificates``, and the proxies
and node agents hold the drain handshake over Leases in kube-system.
"""
from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
CONTROLLER_PREFIX = "system:controller:"
NODE_BOOTSTRAP_GROUP = "system:bootstrappers:kubelite:default-node-token"
NODE_CERT_PATH = "/v1-kubelite/node-certificates"


def _words(text: str) -> list[str]:
    return sorted("" if w == "core" else w for w in text.split())


def rule(verbs: str, resources: str = "", groups: str = "core", *, names: str = "", urls: str = "") -> Obj:
    """One PolicyRule; every list sorted, as upstream's rule builder leaves them."""
    if urls:
        return {"verbs": _words(verbs), "nonResourceURLs": sorted(urls.split())}
    out: Obj = {"verbs": _words(verbs), "apiGroups": _words(groups), "resources": sorted(resources.split())}
    if names:
        out["resourceNames"] = sorted(names.split())
    return out


READ = "get list watch"
WRITE = "create delete deletecollection patch update"
READ_WRITE = f"{READ} {WRITE}"
EVENTS = rule("create patch update", "events", "core events.k8s.io")


def _agg(to: str) -> Obj:
    return {"clusterRoleSelectors": [{"matchLabels": {f"rbac.authorization.k8s.io/aggregate-to-{to}": "true"}}]}


# The node agent's rules (upstream NodeRules); the Node authorizer narrows them.
NODE_RULES: list[Obj] = [
    rule("create", "tokenreviews", "authentication.k8s.io"),
    rule("create", "localsubjectaccessreviews subjectaccessreviews", "authorization.k8s.io"),
    rule(READ, "services"),
    rule("create get list watch", "nodes"),
    rule("patch update", "nodes/status"),
    rule("patch update", "nodes"),
    rule("create patch update", "events"),
    rule(READ, "pods"),
    rule("create delete", "pods"),
    rule("patch update", "pods/status"),
    rule("create", "pods/eviction"),
    rule(READ, "configmaps secrets"),
    rule("get", "persistentvolumeclaims persistentvolumes"),
    rule("get", "endpoints"),
    rule("create get list watch", "certificatesigningrequests", "certificates.k8s.io"),
    rule("create delete get patch update", "leases", "coordination.k8s.io"),
    rule("get", "volumeattachments", "storage.k8s.io"),
    rule("create", "serviceaccounts/token"),
    rule("get patch update", "persistentvolumeclaims/status"),
    rule(READ, "csidrivers", "storage.k8s.io"),
    rule("create delete get patch update", "csinodes", "storage.k8s.io"),
    rule(READ, "runtimeclasses", "node.k8s.io"),
    rule("get", "resourceclaims", "resource.k8s.io"),
    rule("deletecollection", "resourceslices", "resource.k8s.io"),
]

# name -> (rules, aggregation rule or None, extra labels)
CLUSTER_ROLES: dict[str, tuple[list[Obj], Obj | None, dict[str, str]]] = {
    "cluster-admin": ([rule("*", "*", "*"), rule("*", urls="*")], None, {}),
    "admin": ([], _agg("admin"), {}),
    "edit": ([], _agg("edit"), {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}),
    "view": ([], _agg("view"), {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}),
    "system:aggregate-to-admin": ([
        rule("create", "localsubjectaccessreviews", "authorization.k8s.io"),
        rule(READ_WRITE, "rolebindings roles", GROUP),
    ], None, {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}),
    "system:aggregate-to-edit": ([
        rule(READ, "pods/attach pods/exec pods/portforward pods/proxy secrets services/proxy"),
        rule("impersonate", "serviceaccounts"),
        rule(WRITE, "pods pods/attach pods/exec pods/portforward pods/proxy"),
        rule("create", "pods/eviction"),
        rule(WRITE, "configmaps events persistentvolumeclaims replicationcontrollers replicationcontrollers/scale "
                    "secrets serviceaccounts services services/proxy"),
        rule("create", "serviceaccounts/token"),
        rule(WRITE, "daemonsets deployments deployments/rollback deployments/scale replicasets replicasets/scale "
                    "statefulsets statefulsets/scale", "apps"),
        rule(WRITE, "horizontalpodautoscalers", "autoscaling"),
        rule(WRITE, "cronjobs jobs", "batch"),
        rule(WRITE, "daemonsets deployments deployments/rollback deployments/scale ingresses networkpolicies "
                    "replicasets replicasets/scale replicationcontrollers/scale", "extensions"),
        rule(WRITE, "poddisruptionbudgets", "policy"),
        rule(WRITE, "ingresses networkpolicies", "networking.k8s.io"),
        rule(READ_WRITE, "leases", "coordination.k8s.io"),
    ], None, {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}),
    "system:aggregate-to-view": ([
        rule(READ, "configmaps endpoints persistentvolumeclaims persistentvolumeclaims/status pods "
                   "replicationcontrollers replicationcontrollers/scale serviceaccounts services services/status"),
        rule(READ, "bindings events limitranges namespaces/status pods/log pods/status replicationcontrollers/status "
                   "resourcequotas resourcequotas/status"),
        rule(READ, "namespaces"),
        rule(READ, "endpointslices", "discovery.k8s.io"),
        rule(READ, "controllerrevisions daemonsets daemonsets/status deployments deployments/scale deployments/status "
                   "replicasets replicasets/scale replicasets/status statefulsets statefulsets/scale "
                   "statefulsets/status", "apps"),
        rule(READ, "horizontalpodautoscalers horizontalpodautoscalers/status", "autoscaling"),
        rule(READ, "cronjobs cronjobs/status jobs jobs/status", "batch"),
        rule(READ, "daemonsets daemonsets/status deployments deployments/scale deployments/status ingresses "
                   "ingresses/status networkpolicies replicasets replicasets/scale replicasets/status "
                   "replicationcontrollers/scale", "extensions"),
        rule(READ, "poddisruptionbudgets poddisruptionbudgets/status", "policy"),
        rule(READ, "ingresses ingresses/status networkpolicies", "networking.k8s.io"),
    ], None, {"rbac.authorization.k8s.io/aggregate-to-view": "true"}),
    # What metrics-server's manifest adds: reading usage, aggregated into view/edit/admin.
    "system:aggregated-metrics-reader": ([
        rule("get list watch", "pods nodes", "metrics.k8s.io"),
    ], None, {"rbac.authorization.k8s.io/aggregate-to-view": "true",
              "rbac.authorization.k8s.io/aggregate-to-edit": "true",
              "rbac.authorization.k8s.io/aggregate-to-admin": "true"}),
    "system:auth-delegator": ([
        rule("create", "tokenreviews", "authentication.k8s.io"),
        rule("create", "subjectaccessreviews", "authorization.k8s.io"),
    ], None, {}),
    "system:basic-user": ([
        rule("create", "selfsubjectaccessreviews selfsubjectrulesreviews", "authorization.k8s.io"),
        rule("create", "selfsubjectreviews", "authentication.k8s.io"),
    ], None, {}),
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient": ([
        rule("create", "certificatesigningrequests/nodeclient", "certificates.k8s.io"),
    ], None, {}),
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient": ([
        rule("create", "certificatesigningrequests/selfnodeclient", "certificates.k8s.io"),
    ], None, {}),
    "system:discovery": ([
        rule("get", urls="/api /api/* /apis /apis/* /healthz /livez /openapi /openapi/* /readyz /version /version/"),
    ], None, {}),
    "system:kube-aggregator": ([rule(READ, "endpoints services")], None, {}),
    "system:kube-controller-manager": ([
        EVENTS,
        rule("create", "leases", "coordination.k8s.io"),
        rule("get update", "leases", "coordination.k8s.io", names="kube-controller-manager"),
        rule("create", "secrets serviceaccounts"),
        rule("delete", "secrets"),
        rule("get", "configmaps namespaces secrets serviceaccounts"),
        rule("update", "secrets serviceaccounts"),
        rule("create", "tokenreviews", "authentication.k8s.io"),
        rule("create", "subjectaccessreviews", "authorization.k8s.io"),
        rule("list watch", "*", "*"),
        rule("create", "serviceaccounts/token"),
    ], None, {}),
    "system:kube-dns": ([rule("list watch", "endpoints services")], None, {}),
    "system:kube-scheduler": ([
        EVENTS,
        rule("create", "leases", "coordination.k8s.io"),
        rule("get list update watch", "leases", "coordination.k8s.io", names="kube-scheduler"),
        rule(READ_WRITE, "leasecandidates", "coordination.k8s.io"),
        rule(READ, "nodes"),
        rule("delete get list watch", "pods"),
        rule("create", "bindings pods/binding"),
        rule("patch update", "pods/status"),
        rule(READ, "replicationcontrollers services"),
        rule(READ, "replicasets", "apps extensions"),
        rule(READ, "statefulsets", "apps"),
        rule(READ, "poddisruptionbudgets", "policy"),
        rule(READ, "persistentvolumeclaims persistentvolumes"),
        rule("create", "tokenreviews", "authentication.k8s.io"),
        rule("create", "subjectaccessreviews", "authorization.k8s.io"),
        rule(READ, "csinodes", "storage.k8s.io"),
        rule(READ, "volumeattachments", "storage.k8s.io"),
        rule(READ, "namespaces"),
        rule(READ, "csidrivers", "storage.k8s.io"),
        rule(READ, "csistoragecapacities", "storage.k8s.io"),
    ], None, {}),
    "system:kubelet-api-admin": ([
        rule(READ, "nodes"),
        rule("proxy", "nodes"),
        rule("*", "nodes/log nodes/metrics nodes/proxy nodes/stats"),
    ], None, {}),
    "system:monitoring": ([
        rule("get", urls="/healthz /healthz/* /livez /livez/* /metrics /metrics/slis /readyz /readyz/*"),
    ], None, {}),
    "system:node": (NODE_RULES, None, {}),
    "system:node-bootstrapper": ([
        rule("create get list watch", "certificatesigningrequests", "certificates.k8s.io"),
    ], None, {}),
    "system:node-problem-detector": ([rule("get", "nodes"), rule("patch", "nodes/status"), EVENTS], None, {}),
    "system:node-proxier": ([
        rule("list watch", "endpoints services"),
        rule(READ, "nodes"),
        EVENTS,
        rule("list watch", "endpointslices", "discovery.k8s.io"),
        # kubelite's own: canary / blue-green traffic weights are annotations on Deployments.
        rule("list watch", "deployments", "apps"),
    ], None, {}),
    "system:persistent-volume-provisioner": ([
        rule("create delete get list watch", "persistentvolumes"),
        rule("get list update watch", "persistentvolumeclaims"),
        rule(READ, "storageclasses", "storage.k8s.io"),
        rule("watch", "events"),
        EVENTS,
    ], None, {}),
    "system:public-info-viewer": ([
        rule("get", urls="/healthz /livez /readyz /version /version/"),
    ], None, {}),
    "system:service-account-issuer-discovery": ([
        rule("get", urls="/.well-known/openid-configuration /.well-known/openid-configuration/ "
                         "/openid/v1/jwks /openid/v1/jwks/"),
    ], None, {}),
    "system:volume-scheduler": ([
        rule("get list patch update watch", "persistentvolumes"),
        rule(READ, "storageclasses", "storage.k8s.io"),
        rule("get list patch update watch", "persistentvolumeclaims"),
    ], None, {}),
    # kubelite: a joining agent trades its bootstrap token for its certificates.
    "kubelite:node-bootstrapper": ([rule("post", urls=NODE_CERT_PATH)], None, {}),
    # kubelite: the drain handshake — agents read the EndpointSlices of a terminating pod.
    "kubelite:node-drain-reader": ([rule("list", "endpointslices", "discovery.k8s.io")], None, {}),
    # kubelite: the NetworkPolicy enforcer (kubelite/netpol) reads policies, pods and namespaces.
    "kubelite:network-policy": ([rule("list watch", "namespaces pods"),
                                 rule("list watch", "networkpolicies", "networking.k8s.io")], None, {}),
}

# (binding name, role name, subjects as (kind, name[, namespace]))
Subject = tuple[str, ...]
CLUSTER_ROLE_BINDINGS: list[tuple[str, str, list[Subject]]] = [
    ("cluster-admin", "cluster-admin", [("Group", "system:masters")]),
    ("system:basic-user", "system:basic-user", [("Group", "system:authenticated")]),
    ("system:discovery", "system:discovery", [("Group", "system:authenticated")]),
    ("system:kube-controller-manager", "system:kube-controller-manager", [("User", "system:kube-controller-manager")]),
    ("system:kube-dns", "system:kube-dns", [("ServiceAccount", "kube-dns", "kube-system")]),
    ("system:kube-scheduler", "system:kube-scheduler", [("User", "system:kube-scheduler")]),
    ("system:monitoring", "system:monitoring", [("Group", "system:monitoring")]),
    ("system:node", "system:node", []),
    ("system:node-proxier", "system:node-proxier", [("User", "system:kube-proxy")]),
    ("system:public-info-viewer", "system:public-info-viewer",
     [("Group", "system:authenticated"), ("Group", "system:unauthenticated")]),
    ("system:service-account-issuer-discovery", "system:service-account-issuer-discovery",
     [("Group", "system:serviceaccounts")]),
    ("system:volume-scheduler", "system:volume-scheduler", [("User", "system:kube-scheduler")]),
    ("kubelite:node-bootstrapper", "kubelite:node-bootstrapper", [("Group", NODE_BOOTSTRAP_GROUP)]),
    ("kubelite:node-drain-reader", "kubelite:node-drain-reader", [("Group", "system:nodes")]),
    # A joined node's proxy runs its NetworkPolicy enforcer too (node/joinnet.py).
    ("kubelite:network-policy", "kubelite:network-policy",
     [("User", "kubelite:network-policy"), ("User", "system:kube-proxy")]),
    # kubelite: the local-path provisioner (kubelite/storage/localpath.py) is an external provisioner.
    ("kubelite:local-path-provisioner", "system:persistent-volume-provisioner",
     [("User", "kubelite:local-path-provisioner")]),
]

# Controller roles: each bound to the ServiceAccount kube-system/<name> (the part after the prefix).
CONTROLLER_ROLES: dict[str, list[Obj]] = {
    "attachdetach-controller": [
        rule("list watch", "persistentvolumeclaims persistentvolumes"), rule(READ, "nodes"),
        rule("patch update", "nodes/status"), rule("list watch", "pods"), EVENTS,
        rule("create delete get list watch", "volumeattachments", "storage.k8s.io"),
        rule(READ, "csidrivers", "storage.k8s.io"), rule(READ, "csinodes", "storage.k8s.io")],
    "certificate-controller": [
        rule("delete get list watch", "certificatesigningrequests", "certificates.k8s.io"),
        rule("update", "certificatesigningrequests/approval certificatesigningrequests/status", "certificates.k8s.io"),
        rule("approve", "signers", "certificates.k8s.io", names="kubernetes.io/kube-apiserver-client-kubelet"),
        rule("sign", "signers", "certificates.k8s.io",
             names="kubernetes.io/kube-apiserver-client kubernetes.io/kube-apiserver-client-kubelet "
                   "kubernetes.io/kubelet-serving kubernetes.io/legacy-unknown"),
        rule("create", "subjectaccessreviews", "authorization.k8s.io"), EVENTS],
    "clusterrole-aggregation-controller": [
        rule("escalate get list patch update watch", "clusterroles", GROUP)],
    "cronjob-controller": [
        rule("get list update watch", "cronjobs", "batch"),
        rule("create delete get list patch update watch", "jobs", "batch"),
        rule("update", "cronjobs/status", "batch"), rule("update", "cronjobs/finalizers", "batch"),
        rule("delete list", "pods"), EVENTS],
    "daemon-set-controller": [
        rule(READ, "daemonsets", "apps extensions"), rule("update", "daemonsets/status", "apps extensions"),
        rule("update", "daemonsets/finalizers", "apps extensions"), rule("list watch", "nodes"),
        rule("create delete list patch watch", "pods"), rule("create", "pods/binding"),
        rule("create delete get list patch update watch", "controllerrevisions", "apps"), EVENTS],
    "deployment-controller": [
        rule("get list update watch", "deployments", "apps extensions"),
        rule("update", "deployments/status", "apps extensions"),
        rule("update", "deployments/finalizers", "apps extensions"),
        rule("create delete get list patch update watch", "replicasets", "apps extensions"),
        rule("get list update watch", "pods"), EVENTS],
    "disruption-controller": [
        rule(READ, "deployments", "apps extensions"), rule(READ, "replicasets", "apps extensions"),
        rule(READ, "replicationcontrollers"), rule(READ, "poddisruptionbudgets", "policy"),
        rule(READ, "statefulsets", "apps"), rule("update", "poddisruptionbudgets/status", "policy"),
        rule("patch update", "pods/status"), rule("get", "*/scale", "*"), EVENTS],
    "endpoint-controller": [
        rule(READ, "pods services"), rule("create delete get list update", "endpoints"),
        rule("create", "endpoints/restricted"), EVENTS],
    "endpointslice-controller": [
        rule(READ, "nodes pods services"), rule("update", "services/finalizers"),
        rule("create delete get list update", "endpointslices", "discovery.k8s.io"), EVENTS],
    "endpointslicemirroring-controller": [
        rule(READ, "endpoints services"), rule("update", "services/finalizers"),
        rule("update", "endpoints/finalizers"),
        rule("create delete get list update", "endpointslices", "discovery.k8s.io"), EVENTS],
    "ephemeral-volume-controller": [
        rule(READ, "pods"), rule("update", "pods/finalizers"),
        rule("create get list watch", "persistentvolumeclaims"), EVENTS],
    "expand-controller": [
        rule("get list patch update watch", "persistentvolumes"),
        rule("patch update", "persistentvolumeclaims/status"), rule(READ, "persistentvolumeclaims"), EVENTS,
        rule("get", "services")],
    "generic-garbage-collector": [rule("delete get list patch update watch", "*", "*"), EVENTS],
    "horizontal-pod-autoscaler": [
        rule(READ, "horizontalpodautoscalers", "autoscaling"),
        rule("update", "horizontalpodautoscalers/status", "autoscaling"),
        rule("get update", "*/scale", "*"), rule("list", "pods"), rule("list", "pods", "metrics.k8s.io"),
        rule("get list", "*", "custom.metrics.k8s.io"), rule("get list", "*", "external.metrics.k8s.io"), EVENTS],
    "job-controller": [
        rule("get list patch update watch", "jobs", "batch"), rule("update", "jobs/status", "batch"),
        rule("update", "jobs/finalizers", "batch"), rule("create delete list patch watch", "pods"), EVENTS],
    "legacy-service-account-token-cleaner": [
        rule("get", "configmaps", names="kube-apiserver-legacy-service-account-token-tracking"),
        rule("delete patch", "secrets")],
    "namespace-controller": [
        rule("delete get list watch", "namespaces"), rule("update", "namespaces/finalize namespaces/status"),
        rule("delete deletecollection get list", "*", "*")],
    "node-controller": [
        rule("delete get list patch update", "nodes"), rule("patch update", "nodes/status"),
        rule("patch update", "pods/status"), rule("delete get list", "pods"), EVENTS],
    "persistent-volume-binder": [
        rule("create delete get list update watch", "persistentvolumes"), rule("update", "persistentvolumes/status"),
        rule("get list update watch", "persistentvolumeclaims"), rule("update", "persistentvolumeclaims/status"),
        rule("create delete get list watch", "pods"), rule(READ, "storageclasses", "storage.k8s.io"),
        rule("list watch", "nodes"), EVENTS, rule("watch", "events"), rule("get", "services")],
    "pod-garbage-collector": [
        rule("delete list watch", "pods"), rule("get list", "nodes"), rule("patch", "pods/status")],
    "pv-protection-controller": [rule("get list update watch", "persistentvolumes"), EVENTS],
    "pvc-protection-controller": [
        rule("get list update watch", "persistentvolumeclaims"), rule(READ, "pods"), EVENTS],
    "replicaset-controller": [
        rule("get list update watch", "replicasets", "apps extensions"),
        rule("update", "replicasets/status", "apps extensions"),
        rule("update", "replicasets/finalizers", "apps extensions"),
        rule("create delete list patch watch", "pods"), EVENTS],
    "replication-controller": [
        rule("get list update watch", "replicationcontrollers"), rule("update", "replicationcontrollers/status"),
        rule("update", "replicationcontrollers/finalizers"), rule("create delete list patch watch", "pods"), EVENTS],
    "resourcequota-controller": [rule("list watch", "*", "*"), rule("update", "resourcequotas/status"), EVENTS],
    "root-ca-cert-publisher": [rule("create update", "configmaps"), EVENTS],
    "route-controller": [rule("list watch", "nodes"), rule("patch", "nodes/status"), EVENTS],
    "service-account-controller": [rule("create", "serviceaccounts"), EVENTS],
    "service-controller": [
        rule(READ, "services"), rule("patch update", "services/status"), rule("list watch", "nodes"), EVENTS],
    "statefulset-controller": [
        rule("list watch", "pods"), rule(READ, "statefulsets", "apps"), rule("update", "statefulsets/status", "apps"),
        rule("update", "statefulsets/finalizers", "apps"), rule("create delete get patch update", "pods"),
        rule("create delete get list patch update watch", "controllerrevisions", "apps"),
        rule("create get list watch", "persistentvolumeclaims"), EVENTS,
        rule("delete update", "persistentvolumeclaims"), rule("update", "pods/finalizers")],
    "taint-eviction-controller": [
        rule("patch", "pods/status"), rule("delete get list", "pods"), EVENTS],
    "ttl-after-finished-controller": [rule("delete get list watch", "jobs", "batch"), EVENTS],
    "ttl-controller": [rule("list patch update watch", "nodes"), EVENTS],
    "validatingadmissionpolicy-status-controller": [
        rule(READ, "validatingadmissionpolicies", "admissionregistration.k8s.io"),
        rule("get patch update", "validatingadmissionpolicies/status", "admissionregistration.k8s.io"), EVENTS],
}

# namespace -> role name -> rules
NAMESPACE_ROLES: dict[str, dict[str, list[Obj]]] = {
    "kube-system": {
        "extension-apiserver-authentication-reader": [
            rule(READ, "configmaps", names="extension-apiserver-authentication")],
        "system::leader-locking-kube-controller-manager": [
            rule("watch", "configmaps"), rule("get update", "configmaps", names="kube-controller-manager")],
        "system::leader-locking-kube-scheduler": [
            rule("watch", "configmaps"), rule("get update", "configmaps", names="kube-scheduler")],
        "system:controller:bootstrap-signer": [rule(READ, "secrets")],
        "system:controller:cloud-provider": [rule("create get list watch", "configmaps")],
        "system:controller:token-cleaner": [rule("delete get list watch", "secrets"), EVENTS],
        # kubelite: the proxy publishes its drain state in a Lease; agents list those Leases.
        "kubelite:proxy-drain": [rule("create delete get patch update", "leases", "coordination.k8s.io")],
        "kubelite:proxy-drain-reader": [rule("list", "leases", "coordination.k8s.io")],
    },
    "kube-public": {
        "system:controller:bootstrap-signer": [
            rule(READ, "configmaps"), rule("patch update", "configmaps", names="cluster-info"), EVENTS],
    },
}

# namespace -> (binding name, role name, subjects)
NAMESPACE_ROLE_BINDINGS: dict[str, list[tuple[str, str, list[Subject]]]] = {
    "kube-system": [
        ("system::extension-apiserver-authentication-reader", "extension-apiserver-authentication-reader",
         [("User", "system:kube-controller-manager"), ("User", "system:kube-scheduler")]),
        ("system::leader-locking-kube-controller-manager", "system::leader-locking-kube-controller-manager",
         [("User", "system:kube-controller-manager"), ("ServiceAccount", "kube-controller-manager", "kube-system")]),
        ("system::leader-locking-kube-scheduler", "system::leader-locking-kube-scheduler",
         [("User", "system:kube-scheduler"), ("ServiceAccount", "kube-scheduler", "kube-system")]),
        ("system:controller:bootstrap-signer", "system:controller:bootstrap-signer",
         [("ServiceAccount", "bootstrap-signer", "kube-system")]),
        ("system:controller:cloud-provider", "system:controller:cloud-provider",
         [("ServiceAccount", "cloud-provider", "kube-system")]),
        ("system:controller:token-cleaner", "system:controller:token-cleaner",
         [("ServiceAccount", "token-cleaner", "kube-system")]),
        ("kubelite:proxy-drain", "kubelite:proxy-drain", [("User", "system:kube-proxy")]),
        ("kubelite:proxy-drain-reader", "kubelite:proxy-drain-reader", [("Group", "system:nodes")]),
    ],
    "kube-public": [
        ("system:controller:bootstrap-signer", "system:controller:bootstrap-signer",
         [("ServiceAccount", "bootstrap-signer", "kube-system")]),
    ],
}


# --- objects ---------------------------------------------------------------------------------

def _metadata(name: str, namespace: str = "", labels: dict[str, str] | None = None) -> Obj:
    md: Obj = {"name": name, "labels": {**BOOTSTRAP_LABELS, **(labels or {})}, "annotations": {AUTOUPDATE: "true"}}
    if namespace:
        md["namespace"] = namespace
    return md


def _subject(s: Subject, binding_ns: str = "") -> Obj:
    if s[0] == "ServiceAccount":
        return {"kind": "ServiceAccount", "name": s[1], "namespace": s[2] if len(s) > 2 else binding_ns}
    return {"apiGroup": GROUP, "kind": s[0], "name": s[1]}


def cluster_roles() -> list[Obj]:
    """Every bootstrap ClusterRole, the controller roles included."""
    out = []
    for name, (rules, agg, labels) in CLUSTER_ROLES.items():
        obj: Obj = {"apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": _metadata(name, labels=labels),
                    "rules": [dict(r) for r in rules]}
        if agg is not None:
            obj["aggregationRule"] = agg
        out.append(obj)
    for name, rules in CONTROLLER_ROLES.items():
        out.append({"apiVersion": API_VERSION, "kind": "ClusterRole",
                    "metadata": _metadata(CONTROLLER_PREFIX + name), "rules": [dict(r) for r in rules]})
    return out


def _binding(kind: str, name: str, role_kind: str, role: str, subjects: list[Subject], namespace: str = "") -> Obj:
    obj: Obj = {"apiVersion": API_VERSION, "kind": kind, "metadata": _metadata(name, namespace),
                "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role}}
    if subjects:
        obj["subjects"] = [_subject(s, namespace) for s in subjects]
    return obj


def cluster_role_bindings() -> list[Obj]:
    """Every bootstrap ClusterRoleBinding, the controller bindings included."""
    out = [_binding("ClusterRoleBinding", n, "ClusterRole", r, subs) for n, r, subs in CLUSTER_ROLE_BINDINGS]
    for name in CONTROLLER_ROLES:
        out.append(_binding("ClusterRoleBinding", CONTROLLER_PREFIX + name, "ClusterRole", CONTROLLER_PREFIX + name,
                            [("ServiceAccount", name, "kube-system")]))
    return out


def namespace_roles() -> list[Obj]:
    """The Roles of kube-system and kube-public."""
    return [{"apiVersion": API_VERSION, "kind": "Role", "metadata": _metadata(name, ns), "rules": [dict(r) for r in rules]}
            for ns, roles in NAMESPACE_ROLES.items() for name, rules in roles.items()]


def namespace_role_bindings() -> list[Obj]:
    """The RoleBindings of kube-system and kube-public."""
    return [_binding("RoleBinding", n, "Role", r, subs, ns)
            for ns, bindings in NAMESPACE_ROLE_BINDINGS.items() for n, r, subs in bindings]

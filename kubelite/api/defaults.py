"""Defaulting, as upstream's ``pkg/apis/*/v1/defaults.go`` plus the create-time parts of
the registry strategies and the pod admission plugins (ServiceAccount,
DefaultTolerationSeconds, Priority).

``apply_defaults`` is what the API server runs on every decoded write body: it only
fills fields that are unset, so running it twice changes nothing.  ``admit_pod`` runs
once, when a Pod is created.
"""
from __future__ import annotations

from typing import Any

from kubelite.api import autoscaling
from kubelite.api.meta import rand_suffix

Obj = dict[str, Any]

SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
SYSTEM_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


def image_tag(image: str) -> str:
    """The tag ParseImageName reports: explicit tag, "latest" when neither tag nor digest."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "" if digest else "latest"


# --- pod spec pieces -------------------------------------------------------------------

def _http_get(h: Obj | None) -> None:
    if h is None:
        return
    if not h.get("path"):
        h["path"] = "/"
    h.setdefault("scheme", "HTTP")
    if not h["scheme"]:
        h["scheme"] = "HTTP"


def _probe(p: Obj | None) -> None:
    if p is None:
        return
    for f, v in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        if not p.get(f):
            p[f] = v
    _http_get(p.get("httpGet"))


def _field_ref(ref: Obj | None) -> None:
    if ref is not None and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


def _container(c: Obj) -> None:
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = "Always" if image_tag(c.get("image") or "") == "latest" else "IfNotPresent"
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    if c.get("resources") is None:
        c["resources"] = {}
    for p in c.get("ports") or []:
        if not p.get("protocol"):
            p["protocol"] = "TCP"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(probe))
    for hook in ((c.get("lifecycle") or {}).get("postStart"), (c.get("lifecycle") or {}).get("preStop")):
        if hook:
            _http_get(hook.get("httpGet"))
    for ev in c.get("env") or []:
        _field_ref((ev.get("valueFrom") or {}).get("fieldRef"))


_VOLUME_SOURCES_WITH_MODE = ("secret", "configMap", "downwardAPI", "projected")


def _volume(v: Obj) -> None:
    sources = [k for k in v if k != "name"]
    if not sources:
        v["emptyDir"] = {}
        return
    for src in _VOLUME_SOURCES_WITH_MODE:
        if isinstance(v.get(src), dict) and v[src].get("defaultMode") is None:
            v[src]["defaultMode"] = 420
    for item in (v.get("downwardAPI") or {}).get("items") or []:
        _field_ref(item.get("fieldRef"))
    for s in (v.get("projected") or {}).get("sources") or []:
        tok = s.get("serviceAccountToken")
        if tok is not None and tok.get("expirationSeconds") is None:
            tok["expirationSeconds"] = 3600
        for item in (s.get("downwardAPI") or {}).get("items") or []:
            _field_ref(item.get("fieldRef"))


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and the container/volume defaults (pods and templates)."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for f in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(f) or []:
            _container(c)
    for v in spec.get("volumes") or []:
        _volume(v)


def default_pod_template(tmpl: Obj | None) -> None:
    """PodTemplateSpec defaults (no Pod-only ones)."""
    if tmpl is None:
        return
    default_pod_spec(tmpl.setdefault("spec", {}))


def _default_pod(pod: Obj) -> None:
    spec = pod.setdefault("spec", {})
    default_pod_spec(spec)
    # SetDefaults_Pod: requests default to limits, service links on, host ports in host network.
    for f in ("containers", "initContainers"):
        for c in spec.get(f) or []:
            res = c.get("resources") or {}
            if res.get("limits"):
                reqs = res.setdefault("requests", {})
                for k, v in res["limits"].items():
                    reqs.setdefault(k, v)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork"):
        for f in ("containers", "initContainers"):
            for c in spec.get(f) or []:
                for p in c.get("ports") or []:
                    if not p.get("hostPort"):
                        p["hostPort"] = p.get("containerPort")


# --- per-kind defaults -----------------------------------------------------------------

def _deployment(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = spec.setdefault("strategy", {})
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if ru is None:
            ru = strategy["rollingUpdate"] = {}
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = "25%"
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    default_pod_template(spec.get("template"))


def _replicaset(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template(spec.get("template"))


def _statefulset(obj: Obj) -> None:
    # SetDefaults_StatefulSet (MaxUnavailableStatefulSet is off by default in 1.33, so
    # rollingUpdate.maxUnavailable stays unset) plus the nested claim-template defaults.
    spec = obj.setdefault("spec", {})
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = spec.get("updateStrategy")
    if strategy is None:
        strategy = spec["updateStrategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        if strategy.get("rollingUpdate") is None:
            strategy["rollingUpdate"] = {}
    ru = strategy.get("rollingUpdate")
    if strategy["type"] == "RollingUpdate" and ru is not None and ru.get("partition") is None:
        ru["partition"] = 0
    policy = spec.get("persistentVolumeClaimRetentionPolicy")
    if policy is None:
        policy = spec["persistentVolumeClaimRetentionPolicy"] = {}
    for f in ("whenDeleted", "whenScaled"):
        if not policy.get(f):
            policy[f] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    for pvc in spec.get("volumeClaimTemplates") or []:
        if isinstance(pvc, dict):
            pspec = pvc.setdefault("spec", {})
            if not pspec.get("volumeMode"):
                pspec["volumeMode"] = "Filesystem"
            pstatus = pvc.setdefault("status", {})
            if not pstatus.get("phase"):
                pstatus["phase"] = "Pending"
    default_pod_template(spec.get("template"))


def _daemonset(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    strategy = spec.get("updateStrategy")
    if strategy is None:
        strategy = spec["updateStrategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if ru is None:
            ru = strategy["rollingUpdate"] = {}
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = 1
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template(spec.get("template"))


def _replication_controller(obj: Obj) -> None:
    # A missing selector or set of object labels is taken from the pod template's labels.
    spec = obj.setdefault("spec", {})
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        md = obj.setdefault("metadata", {})
        if not md.get("labels"):
            md["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template(spec.get("template"))


def _job_spec(spec: Obj) -> None:
    """SetDefaults_Job on a JobSpec (a Job's, or a CronJob's job template's)."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        # With a per-index limit the global one is effectively off (MaxInt32).
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    if not spec.get("completionMode"):
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if not spec.get("podReplacementPolicy"):
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    for rule in (spec.get("podFailurePolicy") or {}).get("rules") or []:
        for pattern in rule.get("onPodConditions") or []:
            if not pattern.get("status"):
                pattern["status"] = "True"
    default_pod_template(spec.get("template"))


def _job(obj: Obj) -> None:
    _job_spec(obj.setdefault("spec", {}))


def _cronjob(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    jt = spec.get("jobTemplate")
    if isinstance(jt, dict):
        # Upstream defaults only the pod template inside a job template: the Job
        # defaults (completions, backoffLimit…) arrive when a Job is made from it.
        default_pod_template((jt.get("spec") or {}).get("template"))


def _service(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        cfg = spec.get("sessionAffinityConfig") or {}
        if ((cfg.get("clientIP") or {}).get("timeoutSeconds")) is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    stype = spec["type"]
    for p in spec.get("ports") or []:
        if not p.get("protocol"):
            p["protocol"] = "TCP"
        if p.get("targetPort") in (None, 0, ""):
            p["targetPort"] = p.get("port")
    if stype in ("NodePort", "LoadBalancer") and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and stype in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if stype != "ExternalName":
        # The registry keeps clusterIPs[0] == clusterIP and fills the families it allocates.
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        if not spec.get("ipFamilies"):
            spec["ipFamilies"] = ["IPv4"]
        if not spec.get("ipFamilyPolicy"):
            spec["ipFamilyPolicy"] = "SingleStack"


def _namespace(obj: Obj, create: bool) -> None:
    name = (obj.get("metadata") or {}).get("name")
    if name:
        md = obj.setdefault("metadata", {})
        if md.get("labels") is None:
            md["labels"] = {}
        md["labels"]["kubernetes.io/metadata.name"] = name
    status = obj.setdefault("status", {})
    if not status.get("phase"):
        status["phase"] = "Active"
    if create:
        fins = obj.setdefault("spec", {}).setdefault("finalizers", [])
        if "kubernetes" not in fins:
            fins.append("kubernetes")


def _node(obj: Obj) -> None:
    status = obj.get("status")
    if status and status.get("capacity") is not None and status.get("allocatable") is None:
        status["allocatable"] = dict(status["capacity"])


def _endpoints(obj: Obj) -> None:
    for ss in obj.get("subsets") or []:
        for p in ss.get("ports") or []:
            if not p.get("protocol"):
                p["protocol"] = "TCP"


def _endpoint_slice(obj: Obj) -> None:
    for p in obj.get("ports") or []:
        if p.get("name") is None:
            p["name"] = ""
        if p.get("protocol") is None:
            p["protocol"] = "TCP"


def _secret(obj: Obj) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"


def _network_policy(obj: Obj) -> None:
    """Ports default to TCP; policyTypes to Ingress, plus Egress when egress rules exist."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("podSelector", {})  # a struct upstream: always there
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in (rule or {}).get("ports") or []:
                if isinstance(port, dict) and port.get("protocol") is None:
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def _limit_range(obj: Obj) -> None:
    """SetDefaults_LimitRangeItem: a Container item's default limit falls back to max, its
    default request to the default limit, then to min."""
    for item in (obj.get("spec") or {}).get("limits") or []:
        if not isinstance(item, dict) or item.get("type") != "Container":
            continue
        default = dict(item.get("default") or {})
        request = dict(item.get("defaultRequest") or {})
        for k, v in (item.get("max") or {}).items():
            default.setdefault(k, v)
        for k, v in default.items():
            request.setdefault(k, v)
        for k, v in (item.get("min") or {}).items():
            request.setdefault(k, v)
        if default:
            item["default"] = default
        if request:
            item["defaultRequest"] = request


def _persistent_volume(obj: Obj) -> None:
    # SetDefaults_PersistentVolume: Pending, Retain, Filesystem.
    spec = obj.setdefault("spec", {})
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    status = obj.setdefault("status", {})
    if not status.get("phase"):
        status["phase"] = "Pending"


def _persistent_volume_claim(obj: Obj) -> None:
    # SetDefaults_PersistentVolumeClaim (+ its spec): Filesystem, Pending.
    spec = obj.setdefault("spec", {})
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    status = obj.setdefault("status", {})
    if not status.get("phase"):
        status["phase"] = "Pending"


def _storage_class(obj: Obj) -> None:
    # SetDefaults_StorageClass: Delete and Immediate when unset.
    if obj.get("reclaimPolicy") is None:
        obj["reclaimPolicy"] = "Delete"
    if obj.get("volumeBindingMode") is None:
        obj["volumeBindingMode"] = "Immediate"


def _apiservice(obj: Obj) -> None:
    """A service reference's port defaults to 443 (SetDefaults_ServiceReference)."""
    svc = (obj.get("spec") or {}).get("service")
    if isinstance(svc, dict) and svc.get("port") is None:
        svc["port"] = 443


def apply_defaults(kind: str, api_version: str, obj: Obj, *, create: bool = True) -> None:
    """Fill unset fields as upstream's defaulters (and create-time strategies) do; mutates ``obj``.

    ``create`` False skips what upstream only sets on create (namespace finalizers).
    """
    if kind == "Deployment":
        _deployment(obj)
    elif kind == "ReplicaSet":
        _replicaset(obj)
    elif kind == "ReplicationController":
        _replication_controller(obj)
    elif kind == "StatefulSet" and api_version == "apps/v1":
        _statefulset(obj)
    elif kind == "DaemonSet" and api_version == "apps/v1":
        _daemonset(obj)
    elif kind == "Pod":
        _default_pod(obj)
    elif kind == "PodTemplate":
        default_pod_template(obj.setdefault("template", {}))  # a struct upstream: always there
    elif kind == "Service":
        _service(obj)
    elif kind == "Job" and api_version == "batch/v1":
        _job(obj)
    elif kind == "CronJob" and api_version == "batch/v1":
        _cronjob(obj)
    elif kind == "HorizontalPodAutoscaler" and api_version == "autoscaling/v2":
        autoscaling.default_v2(obj)
    elif kind == "HorizontalPodAutoscaler" and api_version == "autoscaling/v1":
        autoscaling.default_v1(obj)
    elif kind == "Namespace":
        _namespace(obj, create)
    elif kind == "Node":
        _node(obj)
    elif kind == "Endpoints":
        _endpoints(obj)
    elif kind == "LimitRange" and api_version == "v1":
        _limit_range(obj)
    elif kind == "PriorityClass" and api_version == "scheduling.k8s.io/v1":
        if not obj.get("preemptionPolicy"):
            obj["preemptionPolicy"] = "PreemptLowerPriority"
    elif kind == "EndpointSlice":
        _endpoint_slice(obj)
    elif kind == "Secret":
        _secret(obj)
    elif kind == "NetworkPolicy" and api_version == "networking.k8s.io/v1":
        _network_policy(obj)
    elif kind == "IngressClass" and api_version == "networking.k8s.io/v1":
        from kubelite.api.validation_ingress import default_ingress_class
        default_ingress_class(obj)
    elif kind == "PersistentVolume" and api_version == "v1":
        _persistent_volume(obj)
    elif kind == "PersistentVolumeClaim" and api_version == "v1":
        _persistent_volume_claim(obj)
    elif kind == "StorageClass" and api_version == "storage.k8s.io/v1":
        _storage_class(obj)
    elif kind == "APIService" and api_version == "apiregistration.k8s.io/v1":
        _apiservice(obj)
    elif api_version == "rbac.authorization.k8s.io/v1":
        from kubelite.api.validation_rbac import apply_rbac_defaults
        apply_rbac_defaults(kind, obj)
    elif api_version == "admissionregistration.k8s.io/v1":
        from kubelite.api.validation_webhooks import apply_policy_defaults, apply_webhook_defaults
        apply_webhook_defaults(kind, obj)
        apply_policy_defaults(kind, obj)


# --- pod admission ---------------------------------------------------------------------

def _tolerates(tols: list[Obj], key: str) -> bool:
    return any((t.get("key") in (key, "", None)) and (t.get("effect") in ("NoExecute", "", None)) for t in tols)


def _should_automount(spec: Obj, service_account: Obj | None) -> bool:
    """The pod's automountServiceAccountToken wins when set, then its ServiceAccount's; default true."""
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if service_account is not None and service_account.get("automountServiceAccountToken") is not None:
        return bool(service_account["automountServiceAccountToken"])
    return True


def _token_volume(pod: Obj) -> None:
    """ServiceAccount admission: the projected kube-api-access-xxxxx volume and its mounts."""
    spec = pod["spec"]
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    if any(m.get("mountPath") == SERVICE_ACCOUNT_MOUNT for c in containers for m in c.get("volumeMounts") or []):
        return
    if any(v.get("name", "").startswith("kube-api-access-") for v in spec.get("volumes") or []):
        return
    name = "kube-api-access-" + rand_suffix(5)
    spec.setdefault("volumes", []).append({
        "name": name,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                              "fieldPath": "metadata.namespace"}}]}},
            ],
            "defaultMode": 420,
        },
    })
    for c in containers:
        c.setdefault("volumeMounts", []).append({"name": name, "readOnly": True, "mountPath": SERVICE_ACCOUNT_MOUNT})


def admit_pod(pod: Obj, *, token_volume: bool = True, service_account: Obj | None = None,
              priority: bool = True) -> None:
    """Create-time pod admission defaults (ServiceAccount, DefaultTolerationSeconds, Priority).

    ``token_volume`` False leaves out the projected service-account token volume;
    ``service_account`` is the pod's ServiceAccount when it exists (its
    automountServiceAccountToken and imagePullSecrets apply); ``priority`` False leaves
    priority to the API server's Priority admission.
    """
    spec = pod.setdefault("spec", {})
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    # ServiceAccount plugin; the v1 conversion mirrors the name into the deprecated field.
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
    spec["serviceAccount"] = spec["serviceAccountName"]
    if token_volume and _should_automount(spec, service_account):
        _token_volume(pod)
    if not spec.get("imagePullSecrets") and service_account and service_account.get("imagePullSecrets"):
        spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in service_account["imagePullSecrets"]]
    # DefaultTolerationSeconds plugin.
    tols = spec.get("tolerations") or []
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not _tolerates(tols, key):
            tols.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    spec["tolerations"] = tols
    # Priority plugin stand-in for callers without the API server's PriorityClasses
    # (the API server resolves classes in apiserver/admission/priority.py instead).
    if priority and spec.get("priority") is None:
        spec["priority"] = SYSTEM_PRIORITIES.get(spec.get("priorityClassName") or "", 0)
    if priority and not spec.get("preemptionPolicy"):
        spec["preemptionPolicy"] = "PreemptLowerPriority"

"""Cells of each kind's Table rows, following upstream's printers.go cell rules.

Every function takes the object and the table's ``Clock`` and returns the cells in the
order of the kind's columns (``columns``), wide cells included.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

from kubelite.api import quantity
from kubelite.api.autoscaling import v1_to_v2
from kubelite.api.conversion import event_to_core
from kubelite.api.duration import human_duration
from kubelite.api.metricsformat import cpu_quantity, memory_quantity
from kubelite.api.printers.format import (
    Clock,
    as_int,
    container_cells,
    format_label_selector,
    format_labels,
    join_host_port,
    list_with_more,
    selector_string,
)
from kubelite.api.selectors import selector_from_dict

Obj = dict[str, Any]
Cells = list[Any]
_UTC = _dt.UTC


# --- pods -----------------------------------------------------------------------------

_POD_SUCCEEDED = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}]
_POD_FAILED = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]


def _terminated_reason(term: Obj, prefix: str) -> str:
    if term.get("reason"):
        return prefix + term["reason"]
    if as_int(term.get("signal")):
        return f"{prefix}Signal:{as_int(term.get('signal'))}"
    return f"{prefix}ExitCode:{as_int(term.get('exitCode'))}"


def _condition_true(conditions: list[Obj], type_: str) -> bool:
    for c in conditions:
        if c.get("type") == type_:
            return c.get("status") == "True"
    return False


class _Restarts:
    """Restart count and the latest lastTerminationState.terminated.finishedAt seen."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.count = 0
        self.last: _dt.datetime | None = None

    def add(self, cs: Obj) -> None:
        """Count one container status's restarts and its last termination time."""
        self.count += as_int(cs.get("restartCount"))
        term = (cs.get("lastState") or {}).get("terminated")
        if term:
            t = self.clock.parse(term.get("finishedAt"))
            if t is not None and (self.last is None or self.last < t):
                self.last = t


def pod_row(pod: Obj, clock: Clock) -> tuple[Cells, list[Obj] | None]:
    """printPod: READY, STATUS (the reason ladder), RESTARTS, AGE and the wide cells."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    md = pod.get("metadata") or {}
    conditions = status.get("conditions") or []
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for c in conditions:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    row_conditions = _POD_SUCCEEDED if phase == "Succeeded" else _POD_FAILED if phase == "Failed" else None

    init_specs = spec.get("initContainers") or []
    sidecars = {c.get("name") for c in init_specs if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or []) + sum(1 for c in init_specs if c.get("restartPolicy") == "Always")
    ready = 0
    all_restarts, sidecar_restarts = _Restarts(clock), _Restarts(clock)

    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        all_restarts.add(cs)
        is_sidecar = cs.get("name") in sidecars
        if is_sidecar:
            sidecar_restarts.add(cs)
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term and as_int(term.get("exitCode")) == 0:
            continue
        if is_sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term:
            reason = _terminated_reason(term, "Init:")
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    restarts = all_restarts
    if not initializing or _condition_true(conditions, "Initialized"):
        restarts = sidecar_restarts
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts.add(cs)
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif term:
                reason = _terminated_reason(term, "")
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        # A pod whose last container completed but another still runs is not "Completed".
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    if md.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif md.get("deletionTimestamp"):  # v1.28 says so even for finished pods (1.29+ does not)
        reason = "Terminating"

    restarts_cell = str(restarts.count)
    if restarts.count and restarts.last is not None:
        restarts_cell = f"{restarts.count} ({human_duration((clock.now - restarts.last).total_seconds())} ago)"

    # v1 -> internal conversion: podIP wins over podIPs[0], and fills in for an empty podIPs.
    ips = status.get("podIPs") or []
    pod_ip = status.get("podIP") or (ips[0].get("ip") if ips else "") or "<none>"
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        true_count = sum(1 for g in gates if _condition_true(conditions, g.get("conditionType")))
        gates_cell = f"{true_count}/{len(gates)}"
    cells = [md.get("name", ""), f"{ready}/{total}", reason, restarts_cell, clock.since(md.get("creationTimestamp")),
             pod_ip, spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", gates_cell]
    return cells, row_conditions


# --- workloads ------------------------------------------------------------------------

def deployment_row(d: Obj, clock: Clock) -> Cells:
    """printDeployment: READY as ready/desired, UP-TO-DATE, AVAILABLE, AGE, wide cells."""
    spec, status = d.get("spec") or {}, d.get("status") or {}
    names, images = container_cells(((spec.get("template") or {}).get("spec") or {}).get("containers"))
    sel = selector_string(spec.get("selector"))
    return [d["metadata"].get("name", ""), f"{as_int(status.get('readyReplicas'))}/{as_int(spec.get('replicas'))}",
            as_int(status.get("updatedReplicas")), as_int(status.get("availableReplicas")),
            clock.since(d["metadata"].get("creationTimestamp")), names, images,
            "<invalid>" if sel is None else sel]


def replicaset_row(rs: Obj, clock: Clock) -> Cells:
    """printReplicaSet: DESIRED, CURRENT, READY, AGE, wide cells."""
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    names, images = container_cells(((spec.get("template") or {}).get("spec") or {}).get("containers"))
    return [rs["metadata"].get("name", ""), as_int(spec.get("replicas")), as_int(status.get("replicas")),
            as_int(status.get("readyReplicas")), clock.since(rs["metadata"].get("creationTimestamp")),
            names, images, format_label_selector(spec.get("selector"))]


def replicationcontroller_row(rc: Obj, clock: Clock) -> Cells:
    """printReplicationController: as a ReplicaSet, but the selector is a plain label map."""
    spec, status = rc.get("spec") or {}, rc.get("status") or {}
    names, images = container_cells(((spec.get("template") or {}).get("spec") or {}).get("containers"))
    return [rc["metadata"].get("name", ""), as_int(spec.get("replicas")), as_int(status.get("replicas")),
            as_int(status.get("readyReplicas")), clock.since(rc["metadata"].get("creationTimestamp")),
            names, images, format_labels(spec.get("selector"))]


# --- batch ----------------------------------------------------------------------------

def _has_condition(status: Obj, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in status.get("conditions") or [])


def job_row(job: Obj, clock: Clock) -> Cells:
    """printJob (1.31+): STATUS, COMPLETIONS, DURATION, AGE, wide cells."""
    md, spec, status = job["metadata"], job.get("spec") or {}, job.get("status") or {}
    succeeded = as_int(status.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{as_int(spec['completions'])}"
    elif as_int(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {as_int(spec['parallelism'])}"
    else:
        completions = f"{succeeded}/1"
    start, end = clock.parse(status.get("startTime")), clock.parse(status.get("completionTime"))
    duration = ""
    if start is not None:
        duration = human_duration(((end or clock.now) - start).total_seconds())
    if _has_condition(status, "Complete"):
        state = "Complete"
    elif _has_condition(status, "Failed"):
        state = "Failed"
    elif md.get("deletionTimestamp"):
        state = "Terminating"
    elif _has_condition(status, "Suspended"):
        state = "Suspended"
    elif _has_condition(status, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    names, images = container_cells(((spec.get("template") or {}).get("spec") or {}).get("containers"))
    return [md.get("name", ""), state, completions, duration, clock.since(md.get("creationTimestamp")),
            names, images, format_label_selector(spec.get("selector"))]


def cronjob_row(cj: Obj, clock: Clock) -> Cells:
    """printCronJob: SCHEDULE, TIMEZONE, SUSPEND, ACTIVE, LAST SCHEDULE, AGE, wide cells."""
    md, spec, status = cj["metadata"], cj.get("spec") or {}, cj.get("status") or {}
    last = status.get("lastScheduleTime")
    suspend = spec.get("suspend")
    jspec = (spec.get("jobTemplate") or {}).get("spec") or {}
    names, images = container_cells(((jspec.get("template") or {}).get("spec") or {}).get("containers"))
    return [md.get("name", ""), spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            "<unset>" if suspend is None else ("True" if suspend else "False"),
            len(status.get("active") or []), clock.since(last) if last else "<none>",
            clock.since(md.get("creationTimestamp")), names, images, format_label_selector(jspec.get("selector"))]


def statefulset_row(sts: Obj, clock: Clock) -> Cells:
    """printStatefulSet: READY as ready/desired, AGE, wide cells."""
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    names, images = container_cells(((spec.get("template") or {}).get("spec") or {}).get("containers"))
    return [sts["metadata"].get("name", ""), f"{as_int(status.get('readyReplicas'))}/{as_int(spec.get('replicas'))}",
            clock.since(sts["metadata"].get("creationTimestamp")), names, images]


def daemonset_row(ds: Obj, clock: Clock) -> Cells:
    """printDaemonSet: the five node counts, NODE SELECTOR, AGE, wide cells."""
    spec, status = ds.get("spec") or {}, ds.get("status") or {}
    tspec = (spec.get("template") or {}).get("spec") or {}
    names, images = container_cells(tspec.get("containers"))
    return [ds["metadata"].get("name", ""), as_int(status.get("desiredNumberScheduled")),
            as_int(status.get("currentNumberScheduled")), as_int(status.get("numberReady")),
            as_int(status.get("updatedNumberScheduled")), as_int(status.get("numberAvailable")),
            format_labels(tspec.get("nodeSelector")), clock.since(ds["metadata"].get("creationTimestamp")),
            names, images, format_label_selector(spec.get("selector"))]


def controllerrevision_row(cr: Obj, clock: Clock) -> Cells:
    """printControllerRevision: CONTROLLER as kind.group/name of the controller reference, REVISION."""
    controller = "<none>"
    for ref in (cr.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            group = (ref.get("apiVersion") or "").rpartition("/")[0]
            kind = ref.get("kind") or ""
            gk = f"{kind}.{group}" if group else kind
            controller = f"{gk.lower()}/{ref.get('name', '')}" if kind else ref.get("name", "")
            break
    return [cr["metadata"].get("name", ""), controller, as_int(cr.get("revision")),
            clock.since(cr["metadata"].get("creationTimestamp"))]


# --- storage --------------------------------------------------------------------------

_MODE_SHORT = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
               ("ReadWriteOncePod", "RWOP"))


def access_modes_string(modes: list[str] | None) -> str:
    """GetAccessModesAsString: the short names in a fixed order, each once."""
    present = set(modes or [])
    return ",".join(short for full, short in _MODE_SHORT if full in present)


def _storage_class_of(obj: Obj) -> str:
    # The beta annotation wins over the field, as upstream's helpers read it.
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    beta = ann.get("volume.beta.kubernetes.io/storage-class")
    if beta is not None:
        return str(beta)
    return str((obj.get("spec") or {}).get("storageClassName") or "")


def persistentvolume_row(pv: Obj, clock: Clock) -> Cells:
    """printPersistentVolume."""
    md, spec, status = pv["metadata"], pv.get("spec") or {}, pv.get("status") or {}
    ref = spec.get("claimRef")
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if isinstance(ref, dict) else ""
    phase = "Terminating" if md.get("deletionTimestamp") else status.get("phase", "")
    size = str((spec.get("capacity") or {}).get("storage") or "0")
    vac = spec.get("volumeAttributesClassName")
    return [md.get("name", ""), size, access_modes_string(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy", ""), phase, claim, _storage_class_of(pv),
            "<unset>" if vac is None else vac, status.get("reason", ""),
            clock.since(md.get("creationTimestamp")), spec.get("volumeMode") or "<unset>"]


def persistentvolumeclaim_row(pvc: Obj, clock: Clock) -> Cells:
    """printPersistentVolumeClaim: capacity and access modes only once bound to a volume."""
    md, spec, status = pvc["metadata"], pvc.get("spec") or {}, pvc.get("status") or {}
    phase = "Terminating" if md.get("deletionTimestamp") else status.get("phase", "")
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes_string(status.get("accessModes"))
        capacity = str((status.get("capacity") or {}).get("storage") or "0")
    vac = spec.get("volumeAttributesClassName")
    return [md.get("name", ""), phase, spec.get("volumeName", ""), capacity, modes, _storage_class_of(pvc),
            vac if vac else "<unset>", clock.since(md.get("creationTimestamp")),
            spec.get("volumeMode") or "<unset>"]


def is_default_class(sc: Obj) -> bool:
    """IsDefaultAnnotation: the GA or the beta default-class annotation is "true"."""
    ann = (sc.get("metadata") or {}).get("annotations") or {}
    return ann.get("storageclass.kubernetes.io/is-default-class") == "true" or \
        ann.get("storageclass.beta.kubernetes.io/is-default-class") == "true"


def storageclass_row(sc: Obj, clock: Clock) -> Cells:
    """printStorageClass: ``(default)`` after the default class's name."""
    md = sc["metadata"]
    name = md.get("name", "") + (" (default)" if is_default_class(sc) else "")
    return [name, sc.get("provisioner", ""), sc.get("reclaimPolicy") or "Delete",
            sc.get("volumeBindingMode") or "Immediate", bool(sc.get("allowVolumeExpansion")),
            clock.since(md.get("creationTimestamp"))]


# --- networking -----------------------------------------------------------------------

def _service_external_ip(spec: Obj, status: Obj) -> str:
    """getServiceExternalIP (always the wide form: the server renders wide)."""
    svc_type = spec.get("type") or ""
    external = spec.get("externalIPs") or []
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if svc_type == "LoadBalancer":
        ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        lb = sorted({i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")})
        if external:
            return ",".join(lb + external)
        return ",".join(lb) if lb else "<pending>"
    if svc_type == "ExternalName":
        return spec.get("externalName") or ""
    return "<unknown>"


def service_row(svc: Obj, clock: Clock) -> Cells:
    """printService: TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S) as port[:nodePort]/proto, AGE, SELECTOR."""
    spec, status = svc.get("spec") or {}, svc.get("status") or {}
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    ports = []
    for p in spec.get("ports") or []:
        node_port = as_int(p.get("nodePort"))
        mid = f"{p.get('port', 0)}:{node_port}" if node_port > 0 else f"{p.get('port', 0)}"
        ports.append(f"{mid}/{p.get('protocol', '')}")
    return [svc["metadata"].get("name", ""), spec.get("type") or "", cluster_ips[0] if cluster_ips else "<none>",
            _service_external_ip(spec, status), ",".join(ports) or "<none>",
            clock.since(svc["metadata"].get("creationTimestamp")), format_labels(spec.get("selector"))]


def _ingress_hosts(rules: list[Obj]) -> str:
    """formatHosts: up to three hosts, then " + N more..." counting every further rule."""
    shown = [r["host"] for r in rules[:3] if r.get("host")]
    if not shown:
        return "*"
    ret = ",".join(shown)
    return f"{ret} + {len(rules) - 3} more..." if len(rules) > 3 else ret


def ingress_row(ing: Obj, clock: Clock) -> Cells:
    """printIngress: CLASS, HOSTS, ADDRESS (wide: never shortened), PORTS, AGE."""
    spec, status = ing.get("spec") or {}, ing.get("status") or {}
    points = (status.get("loadBalancer") or {}).get("ingress") or []
    address = ",".join(sorted({p.get("ip") or p.get("hostname") for p in points if p.get("ip") or p.get("hostname")}))
    cls = spec.get("ingressClassName")
    return [ing["metadata"].get("name", ""), "<none>" if cls is None else cls, _ingress_hosts(spec.get("rules") or []),
            address, "80, 443" if spec.get("tls") else "80", clock.since(ing["metadata"].get("creationTimestamp"))]


def ingressclass_row(ic: Obj, clock: Clock) -> Cells:
    """printIngressClass: CONTROLLER, PARAMETERS as Kind[.group]/name, AGE."""
    spec = ic.get("spec") or {}
    params = spec.get("parameters")
    shown = "<none>"
    if params is not None:
        shown = params.get("kind") or ""
        if params.get("apiGroup") is not None:
            shown += "." + params["apiGroup"]
        shown += "/" + (params.get("name") or "")
    return [ic["metadata"].get("name", ""), spec.get("controller") or "", shown,
            clock.since(ic["metadata"].get("creationTimestamp"))]


def _format_endpoints(subsets: list[Obj]) -> str:
    """formatEndpoints: the first three ip:port pairs, then " + N more..."."""
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for ss in subsets:
        addrs = ss.get("addresses") or []
        ports = ss.get("ports") or []
        if not ports:  # headless services may have no ports
            count += len(addrs)
            shown.extend(a.get("ip", "") for a in addrs[:max(0, 3 - len(shown))])
            continue
        for p in ports:
            count += len(addrs)
            for a in addrs[:max(0, 3 - len(shown))]:
                shown.append(join_host_port(a.get("ip", ""), as_int(p.get("port"))))
    ret = ",".join(shown)
    return f"{ret} + {count - 3} more..." if count > 3 else ret


def endpoints_row(ep: Obj, clock: Clock) -> Cells:
    """printEndpoints: the first ip:port pairs and AGE."""
    return [ep["metadata"].get("name", ""), _format_endpoints(ep.get("subsets") or []),
            clock.since(ep["metadata"].get("creationTimestamp"))]


def endpointslice_row(eps: Obj, clock: Clock) -> Cells:
    """printEndpointSlice: ADDRESSTYPE, the first ports and addresses, AGE."""
    ports = eps.get("ports") or []
    port_strs = []
    for p in ports[:3]:
        if p.get("port") is not None:
            port_strs.append(str(p["port"]))
        elif p.get("name") is not None:
            port_strs.append(p["name"])
        else:
            port_strs.append("*")
    addrs = [a for e in eps.get("endpoints") or [] for a in e.get("addresses") or []]
    return [eps["metadata"].get("name", ""), eps.get("addressType") or "", list_with_more(port_strs, len(ports)),
            list_with_more(addrs[:3], len(addrs)), clock.since(eps["metadata"].get("creationTimestamp"))]


# --- cluster --------------------------------------------------------------------------

_ROLE_PREFIX = "node-role.kubernetes.io/"


def _node_roles(labels: dict[str, str]) -> str:
    """findNodeRoles: node-role.kubernetes.io/<role> keys and kubernetes.io/role values."""
    roles = set()
    for k, v in labels.items():
        if k.startswith(_ROLE_PREFIX) and len(k) > len(_ROLE_PREFIX):
            roles.add(k[len(_ROLE_PREFIX):])
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) or "<none>"


def node_row(node: Obj, clock: Clock) -> Cells:
    """printNode: STATUS (Ready/NotReady/Unknown, SchedulingDisabled), ROLES, AGE, VERSION, wide cells."""
    md, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    state = []
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    if ready:  # the last one wins, as in upstream's map
        state.append("Ready" if ready[-1].get("status") == "True" else "NotReady")
    else:
        state.append("Unknown")
    if spec.get("unschedulable"):
        state.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}

    def address(t: str) -> str:
        return next((a.get("address", "") for a in status.get("addresses") or [] if a.get("type") == t), "<none>")

    return [md.get("name", ""), ",".join(state), _node_roles(md.get("labels") or {}),
            clock.since(md.get("creationTimestamp")), info.get("kubeletVersion") or "",
            address("InternalIP"), address("ExternalIP"), info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>"]


def event_row(ev: Obj, clock: Clock) -> Cells:
    """printEvent: LAST SEEN falls back to FIRST SEEN, then eventTime; series overrides both."""
    first = clock.since(ev.get("firstTimestamp") if clock.parse(ev.get("firstTimestamp")) else ev.get("eventTime"))
    last = clock.since(ev["lastTimestamp"]) if clock.parse(ev.get("lastTimestamp")) else first
    count = as_int(ev.get("count"))
    series = ev.get("series")
    if series:
        last = clock.since(series.get("lastObservedTime"))
        count = as_int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events carry no count in the new API
    inv = ev.get("involvedObject") or {}
    kind = (inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    src = ev.get("source") or {}
    component = src.get("component") or ev.get("reportingComponent") or ""
    host = src.get("host") or ev.get("reportingInstance") or ""
    source = f"{component}, {host}" if host else component
    return [last, ev.get("type") or "", ev.get("reason") or "", target, inv.get("fieldPath") or "", source,
            (ev.get("message") or "").strip(), first, count, (ev.get("metadata") or {}).get("name", "")]


def events_v1_row(ev: Obj, clock: Clock) -> Cells:
    """An events.k8s.io/v1 Event, printed through its core/v1 field names."""
    return event_row(event_to_core(ev), clock)  # upstream prints the internal (core-named) type


def namespace_row(ns: Obj, clock: Clock) -> Cells:
    """printNamespace: STATUS is the phase."""
    return [ns["metadata"].get("name", ""), (ns.get("status") or {}).get("phase") or "",
            clock.since(ns["metadata"].get("creationTimestamp"))]


# --- config and access ----------------------------------------------------------------

def configmap_row(cm: Obj, clock: Clock) -> Cells:
    """printConfigMap: DATA counts data and binaryData keys."""
    return [cm["metadata"].get("name", ""), len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
            clock.since(cm["metadata"].get("creationTimestamp"))]


def secret_row(s: Obj, clock: Clock) -> Cells:
    """printSecret: TYPE and the number of data keys."""
    return [s["metadata"].get("name", ""), s.get("type") or "", len(s.get("data") or {}),
            clock.since(s["metadata"].get("creationTimestamp"))]


def serviceaccount_row(sa: Obj, clock: Clock) -> Cells:
    """printServiceAccount: the number of listed secrets."""
    return [sa["metadata"].get("name", ""), len(sa.get("secrets") or []),
            clock.since(sa["metadata"].get("creationTimestamp"))]


def lease_row(lease: Obj, clock: Clock) -> Cells:
    """printLease: HOLDER is spec.holderIdentity."""
    return [lease["metadata"].get("name", ""), (lease.get("spec") or {}).get("holderIdentity") or "",
            clock.since(lease["metadata"].get("creationTimestamp"))]


def networkpolicy_row(np: Obj, clock: Clock) -> Cells:
    """printNetworkPolicy: POD-SELECTOR is the spec's podSelector as a selector string."""
    return [np["metadata"].get("name", ""), format_label_selector((np.get("spec") or {}).get("podSelector") or {}),
            clock.since(np["metadata"].get("creationTimestamp"))]


def apiservice_row(svc: Obj, clock: Clock) -> Cells:
    """The aggregator's table: SERVICE is namespace/name or Local; AVAILABLE is the
    condition's status, with its reason in parentheses unless True."""
    spec = svc.get("spec") or {}
    ref = spec.get("service")
    service = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if isinstance(ref, dict) else "Local"
    available = "Unknown"
    for c in (svc.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Available":
            st = str(c.get("status") or "")
            available = f"{st} ({c['reason']})" if st != "True" and c.get("reason") else st
            break
    return [svc["metadata"].get("name", ""), service, available, clock.since(svc["metadata"].get("creationTimestamp"))]


# --- RBAC -------------------------------------------------------------------------------

def binding_row(b: Obj, clock: Clock) -> Cells:
    """printRoleBinding / printClusterRoleBinding: ROLE is Kind/name; the wide cells list
    User, Group and ServiceAccount (namespace/name) subjects."""
    ref = b.get("roleRef") or {}
    users: list[str] = []
    groups: list[str] = []
    sas: list[str] = []
    for s in b.get("subjects") or []:
        if not isinstance(s, dict):
            continue
        kind, name = s.get("kind"), s.get("name") or ""
        if kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
        elif kind == "ServiceAccount":
            sas.append(f"{s.get('namespace') or ''}/{name}")
    return [b["metadata"].get("name", ""), f"{ref.get('kind') or ''}/{ref.get('name') or ''}",
            clock.since(b["metadata"].get("creationTimestamp")),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


# --- apiserver's default convertor ----------------------------------------------------

def default_row(obj: Obj, clock: Clock) -> Cells:
    """apiserver's defaultTableConvertor: name and the creation time in UTC RFC3339."""
    md = obj.get("metadata") or {}
    t = clock.parse(md.get("creationTimestamp"))
    created = t.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t else "0001-01-01T00:00:00Z"
    return [md.get("name", ""), created]


def webhook_configuration_row(cfg: Obj, clock: Clock) -> Cells:
    """printMutatingWebhook / printValidatingWebhook: WEBHOOKS counts the webhooks."""
    return [cfg["metadata"].get("name", ""), len(cfg.get("webhooks") or []),
            clock.since(cfg["metadata"].get("creationTimestamp"))]


def validating_admission_policy_row(p: Obj, clock: Clock) -> Cells:
    """printValidatingAdmissionPolicy: VALIDATIONS counts them, PARAMKIND is apiVersion/kind."""
    spec = p.get("spec") or {}
    pk = spec.get("paramKind")
    kind = f"{pk.get('apiVersion', '')}/{pk.get('kind', '')}" if isinstance(pk, dict) else "<unset>"
    return [p["metadata"].get("name", ""), len(spec.get("validations") or []), kind,
            clock.since(p["metadata"].get("creationTimestamp"))]


def validating_admission_policy_binding_row(b: Obj, clock: Clock) -> Cells:
    """printValidatingAdmissionPolicyBinding: PARAMREF is namespace/name (*/name), the selector or <unset>."""
    spec = b.get("spec") or {}
    ref = spec.get("paramRef")
    shown = "<unset>"
    if isinstance(ref, dict):
        if ref.get("name"):
            # Without a namespace the printer cannot tell whether the param kind is namespaced.
            shown = f"{ref.get('namespace') or '*'}/{ref['name']}"
        elif isinstance(ref.get("selector"), dict):
            shown = str(selector_from_dict(ref["selector"]))
    return [b["metadata"].get("name", ""), spec.get("policyName") or "", shown,
            clock.since(b["metadata"].get("creationTimestamp"))]


# --- autoscaling ----------------------------------------------------------------------

def _metric_current(statuses: list, i: int, source: str, field: str) -> Any:
    if i < len(statuses) and isinstance(statuses[i], dict):
        return ((statuses[i].get(source) or {}).get("current") or {}).get(field)
    return None


def _hpa_metric(spec: Obj, statuses: list, i: int) -> str:
    """One metric as printHorizontalPodAutoscaler writes it: ``name: current/target``."""
    mtype = spec.get("type")
    source = {"External": "external", "Pods": "pods", "Object": "object", "Resource": "resource",
              "ContainerResource": "containerResource"}.get(mtype or "")
    if source is None:
        return "<unknown type>"
    src = spec.get(source) or {}
    target = src.get("target") or {}
    if source in ("external", "object"):
        if target.get("averageValue") is not None:
            cur = _metric_current(statuses, i, source, "averageValue")
            return f"{cur if cur is not None else '<unknown>'}/{target['averageValue']} (avg)"
        cur = _metric_current(statuses, i, source, "value")
        return f"{cur if cur is not None else '<unknown>'}/{target.get('value', '0')}"
    if source == "pods":
        cur = _metric_current(statuses, i, source, "averageValue")
        return f"{cur if cur is not None else '<unknown>'}/{target.get('averageValue', '0')}"
    name = src.get("name", "")
    if target.get("averageValue") is not None:
        cur = _metric_current(statuses, i, source, "averageValue")
        return f"{name}: {cur if cur is not None else '<unknown>'}/{target['averageValue']}"
    util = _metric_current(statuses, i, source, "averageUtilization")
    cur_s = f"{util}%" if util is not None else "<unknown>"
    tgt = target.get("averageUtilization")
    return f"{name}: {cur_s}/{f'{tgt}%' if tgt is not None else '<auto>'}"


def format_hpa_metrics(specs: list | None, statuses: list | None) -> str:
    """formatHPAMetrics: the first two metrics, then how many more."""
    if not specs:
        return "<none>"
    cells = [_hpa_metric(m if isinstance(m, dict) else {}, statuses or [], i) for i, m in enumerate(specs)]
    if len(cells) > 2:
        return f"{', '.join(cells[:2])} + {len(cells) - 2} more..."
    return ", ".join(cells)


def hpa_row(hpa: Obj, clock: Clock) -> Cells:
    """printHorizontalPodAutoscaler: REFERENCE, TARGETS, MINPODS, MAXPODS, REPLICAS, AGE."""
    md, spec, status = hpa["metadata"], hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    mn = spec.get("minReplicas")
    return [md.get("name", ""), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            format_hpa_metrics(spec.get("metrics"), status.get("currentMetrics")),
            "<unset>" if mn is None else str(mn), as_int(spec.get("maxReplicas")),
            as_int(status.get("currentReplicas")), clock.since(md.get("creationTimestamp"))]


def hpa_v1_row(hpa: Obj, clock: Clock) -> Cells:
    """The v1 view printed as upstream does: converted to v2 first."""
    return hpa_row(v1_to_v2(hpa), clock)


# --- metrics.k8s.io ---------------------------------------------------------------------

def _usage_cells(usages: list) -> list[str]:
    """cpu and memory summed over usage lists, in canonical quantity form."""
    cpu = mem = 0
    for u in usages:
        if not isinstance(u, dict):
            continue
        try:
            cpu += int(quantity.parse(u.get("cpu")) * 10**9)
            mem += quantity.value(u.get("memory"))
        except ValueError:
            continue
    return [cpu_quantity(cpu), memory_quantity(mem)]


def nodemetrics_row(m: Obj, clock: Clock) -> Cells:
    """metrics-server's row: NAME, cpu, memory, Window."""
    return [m["metadata"].get("name", ""), *_usage_cells([m.get("usage")]), m.get("window", "")]


def podmetrics_row(m: Obj, clock: Clock) -> Cells:
    """metrics-server's row: the containers' usage summed."""
    usages = [c.get("usage") for c in m.get("containers") or [] if isinstance(c, dict)]
    return [m["metadata"].get("name", ""), *_usage_cells(usages), m.get("window", "")]
def poddisruptionbudget_row(pdb: Obj, clock: Clock) -> Cells:
    """printPodDisruptionBudget: each bound as written, N/A when unset."""
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}

    def bound(v: Any) -> str:
        return "N/A" if v is None else str(v)
    return [pdb["metadata"].get("name", ""), bound(spec.get("minAvailable")), bound(spec.get("maxUnavailable")),
            as_int(status.get("disruptionsAllowed")), clock.since(pdb["metadata"].get("creationTimestamp"))]


def resourcequota_row(q: Obj, clock: Clock) -> Cells:
    """printResourceQuota: "name: used/hard" for each status.hard key in name order, limits.* in LIMIT."""
    from kubelite.api.quota import format_quantity
    status = q.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    request: list[str] = []
    limit: list[str] = []
    for name in sorted(hard):
        parts = name.split(".")
        cell = f"{name}: {format_quantity(used.get(name, '0'))}/{format_quantity(hard[name])}"
        (limit if len(parts) > 1 and parts[0] == "limits" else request).append(cell)
    return [q["metadata"].get("name", ""), clock.since(q["metadata"].get("creationTimestamp")),
            ", ".join(request), ", ".join(limit)]


def priorityclass_row(pc: Obj, clock: Clock) -> Cells:
    """printPriorityClass: VALUE, GLOBAL-DEFAULT, AGE and the preemption policy."""
    return [pc["metadata"].get("name", ""), as_int(pc.get("value")), bool(pc.get("globalDefault")),
            clock.since(pc["metadata"].get("creationTimestamp")), pc.get("preemptionPolicy") or ""]

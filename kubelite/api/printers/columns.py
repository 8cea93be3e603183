"""Column definitions of server-side Tables (data): names, types, formats, descriptions.

Names, types, formats, priorities and order are upstream's (v1.28): kubectl and other
clients key on them.  The descriptions are kubelite's own short wording of what each
column shows; they deliberately differ from upstream's text (clients only display
them, e.g. ``kubectl explain``-like tools and dashboards).  Priority 1 marks a wide
column.
"""
from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

DOCS = {
    # object metadata
    "name": "The object's name, unique among objects of its kind in its namespace; fixed once created.",
    "creationTimestamp": "When the server stored the object for the first time (UTC); set by the server only.",
    # pods
    "pod.ready": "Ready containers out of all containers of the pod.",
    "pod.status": "A one-word summary of the pod: its phase, or the reason a container is waiting or ended.",
    "pod.restarts": "How often the pod's containers were restarted in total, and how long ago the latest restart was.",
    "pod.podIP": "The pod's IP address, empty until one is assigned.",
    "pod.nodeName": "The node the pod is bound to, empty while it waits for the scheduler.",
    "pod.nominatedNodeName": "The node the scheduler made room on by preemption; the pod may still land elsewhere.",
    "pod.readinessGates": "Extra pod conditions that must be True, besides ready containers, for the pod to be Ready.",
    # workloads
    "containers": "The container names of the pod template.",
    "images": "The container images of the pod template.",
    "deploy.ready": "Ready pods out of the desired number of pods.",
    "deploy.updatedReplicas": "Pods of this Deployment that already run its current template.",
    "deploy.availableReplicas": "Pods of this Deployment that have been Ready for at least minReadySeconds.",
    "deploy.selector": "The label query that picks the pods (through their ReplicaSets) this Deployment manages.",
    "rs.replicas": "The number of pods wanted (1 when not set).",
    "rs.status.replicas": "The number of pods the controller last counted.",
    "rs.readyReplicas": "How many of the ReplicaSet's pods are Ready.",
    "rs.selector": "The label query a pod must match to count toward this ReplicaSet.",
    "rc.replicas": "The number of pods wanted (1 when not set).",
    "rc.status.replicas": "The number of pods the controller last counted.",
    "rc.readyReplicas": "How many of the ReplicationController's pods are Ready.",
    "rc.selector": "The labels a pod must carry to count toward this ReplicationController.",
    "job.status": "A one-word summary of the Job: Complete, Failed, Terminating, Suspended, FailureTarget or Running.",
    "job.completions": "Pods that succeeded out of the completions wanted.",
    "job.duration": "How long the Job ran, or has been running so far.",
    "job.selector": "The label query that picks the Job's pods.",
    "cj.schedule": "When Jobs are started, in cron syntax.",
    "cj.timeZone": "The time zone the schedule is read in; the controller's own when not set.",
    "cj.suspend": "Whether new Jobs are held back; running ones are left alone.",
    "cj.active": "How many Jobs of this CronJob are running.",
    "cj.lastScheduleTime": "How long ago a Job was last started for this CronJob.",
    "cj.selector": "The label query of the job template (normally empty: each Job gets its own).",
    "hpa.reference": "The object whose scale the autoscaler sets, as kind/name.",
    "hpa.targets": "Each metric's current value and its target (at most two shown).",
    "hpa.minPods": "The fewest replicas the autoscaler scales the target down to.",
    "hpa.maxPods": "The most replicas the autoscaler scales the target up to.",
    "hpa.replicas": "How many replicas the target had when the autoscaler last looked.",
    # storage
    "pv.capacity": "The storage size the volume offers.",
    "pv.accessModes": "How nodes may mount the volume (RWO, ROX, RWX, RWOP).",
    "pv.reclaimPolicy": "What happens to the volume once its claim is gone: Retain, Delete or Recycle.",
    "pv.status": "The volume's phase: Pending, Available, Bound, Released or Failed (Terminating when deleted).",
    "pv.claim": "The namespace/name of the claim the volume is reserved for or bound to.",
    "pv.storageClass": "The class of storage the volume belongs to.",
    "pv.volumeAttributesClass": "The attributes class the volume was given, <unset> when none.",
    "pv.reason": "A short reason for a Failed volume.",
    "pv.volumeMode": "Filesystem or Block.",
    "pvc.status": "The claim's phase: Pending, Bound or Lost (Terminating when deleted).",
    "pvc.volume": "The volume bound to the claim.",
    "pvc.capacity": "The size of the bound volume.",
    "pvc.accessModes": "The access modes of the bound volume.",
    "pvc.storageClass": "The class of storage the claim asks for.",
    "pvc.volumeAttributesClass": "The attributes class the claim asks for, <unset> when none.",
    "pvc.volumeMode": "Filesystem or Block.",
    "sc.provisioner": "The component that creates volumes of this class.",
    "sc.reclaimPolicy": "The reclaim policy given to volumes this class provisions.",
    "sc.volumeBindingMode": "Immediate, or WaitForFirstConsumer (bind once a pod using the claim is scheduled).",
    "sc.allowVolumeExpansion": "Whether claims of this class may grow.",
    # networking
    "svc.type": "How the Service is reached: ClusterIP, NodePort, LoadBalancer or ExternalName.",
    "svc.clusterIP": "The Service's virtual IP address inside the cluster, or None for a headless Service.",
    "svc.externalIPs": "Outside addresses at which the Service is reached: load-balancer ingress or external IPs.",
    "svc.ports": "The Service's ports: port, node port where there is one, and protocol.",
    "svc.selector": "The labels of the pods that receive the Service's traffic; none means endpoints are managed by hand.",
    "ep.subsets": "The first few ready address:port pairs of these Endpoints, and how many more there are.",
    "ing.class": "The IngressClass that serves this Ingress, or <none>.",
    "ing.hosts": "The first few hosts the Ingress's rules match; * when a rule matches every host.",
    "ing.address": "Where the ingress controller receives the traffic: the load balancer's IPs or host names.",
    "ing.ports": "The ports the Ingress is served on: 80, and 443 when it has TLS.",
    "ingc.controller": "The name of the ingress controller that implements this class.",
    "ingc.parameters": "Kind/name of the object holding the controller's settings for this class, or <none>.",
    "eps.addressType": "The kind of every address in this slice: IPv4, IPv6 or FQDN.",
    "eps.ports": "The first few ports every endpoint of this slice serves.",
    "eps.endpoints": "The first few endpoint addresses in this slice, and how many more there are.",
    # cluster
    "node.status": "Whether the node is Ready, plus flags such as SchedulingDisabled.",
    "node.roles": "The roles taken from the node's node-role.kubernetes.io/ labels.",
    "node.kubeletVersion": "The version the node agent reports.",
    "node.internalIP": "The node's first InternalIP address.",
    "node.externalIP": "The node's first ExternalIP address.",
    "node.osImage": "The operating system the node agent reports.",
    "node.kernelVersion": "The kernel release the node agent reports.",
    "node.containerRuntimeVersion": "The container runtime and its version, as the node agent reports them.",
    "ns.status": "The namespace's phase: Active or Terminating.",
    # events
    "ev.lastTimestamp": "How long ago the event last happened.",
    "ev.type": "Normal or Warning.",
    "ev.reason": "A short CamelCase word saying why the event was recorded.",
    "ev.involvedObject": "The kind and name of the object the event is about.",
    "ev.fieldPath": "The part of that object the event is about, such as one container.",
    "ev.source": "The component (and host) that recorded the event.",
    "ev.message": "What happened, in words for people.",
    "ev.firstTimestamp": "How long ago the event first happened.",
    "ev.count": "How many times the event happened.",
    # config and access
    "secret.type": "What the Secret is for, which also fixes the keys it must hold.",
    "secret.data": "The number of keys the Secret holds.",
    "sa.secrets": "The number of Secrets listed in the ServiceAccount.",
    "cm.data": "The number of keys the ConfigMap holds, text and binary together.",
    "lease.holderIdentity": "Who holds the lease now.",
    "netpol.podSelector": "Which pods of the policy's namespace the policy applies to; empty means every pod.",
    "apiservice.service": "Where requests for this group/version go: a Service as namespace/name, or Local.",
    "apiservice.available": "Whether the server behind this group/version answers (its Available condition).",
    # StatefulSets, DaemonSets, ControllerRevisions
    "sts.ready": "Ready pods out of the desired number of pods.",
    "ds.desired": "Nodes that should run one of the DaemonSet's pods.",
    "ds.current": "Nodes that run at least one of the DaemonSet's pods and should.",
    "ds.ready": "Nodes whose DaemonSet pod is Ready.",
    "ds.updated": "Nodes that run a pod of the DaemonSet's current template.",
    "ds.available": "Nodes whose DaemonSet pod has been Ready for at least minReadySeconds.",
    "ds.nodeSelector": "The node labels the pod template asks for.",
    "ds.selector": "The label query a pod must match to count toward this DaemonSet.",
    "cr.controller": "The object (kind.group/name) this revision belongs to.",
    "cr.revision": "The revision number; higher is newer.",
    # PodDisruptionBudgets
    "pdb.minAvailable": "Pods that must stay available, as a number or a percentage (N/A when unset).",
    "pdb.maxUnavailable": "Pods that may be unavailable at once, as a number or a percentage (N/A when unset).",
    "pdb.disruptionsAllowed": "How many more pods may be evicted now without breaking the budget.",
    # quotas and priority classes
    "quota.request": "Used out of hard for each quota'd resource that is not a limit (counts and requests).",
    "quota.limit": "Used out of hard for each limits.* resource of the quota.",
    "pc.value": "The priority pods of this class get; higher is scheduled first.",
    "pc.globalDefault": "Whether pods naming no class get this one.",
    "pc.preemptionPolicy": "Whether pods of this class may evict lower-priority pods: PreemptLowerPriority or Never.",
}


def column(name: str, desc: str, *, type_: str = "string", fmt: str = "", priority: int = 0) -> Obj:
    """One metav1.TableColumnDefinition."""
    return {"name": name, "type": type_, "format": fmt, "description": desc, "priority": priority}


NAME = column("Name", DOCS["name"], fmt="name")
AGE = column("Age", DOCS["creationTimestamp"])

# --- pods -----------------------------------------------------------------------------

POD = [
    NAME,
    column("Ready", DOCS["pod.ready"]),
    column("Status", DOCS["pod.status"]),
    column("Restarts", DOCS["pod.restarts"]),
    AGE,
    column("IP", DOCS["pod.podIP"], priority=1),
    column("Node", DOCS["pod.nodeName"], priority=1),
    column("Nominated Node", DOCS["pod.nominatedNodeName"], priority=1),
    column("Readiness Gates", DOCS["pod.readinessGates"], priority=1),
]

# --- workloads ------------------------------------------------------------------------

DEPLOYMENT = [
    NAME,
    column("Ready", DOCS["deploy.ready"]),
    column("Up-to-date", DOCS["deploy.updatedReplicas"]),
    column("Available", DOCS["deploy.availableReplicas"]),
    AGE,
    column("Containers", DOCS["containers"], priority=1),
    column("Images", DOCS["images"], priority=1),
    column("Selector", DOCS["deploy.selector"], priority=1),
]

REPLICASET = [
    NAME,
    column("Desired", DOCS["rs.replicas"], type_="integer"),
    column("Current", DOCS["rs.status.replicas"], type_="integer"),
    column("Ready", DOCS["rs.readyReplicas"], type_="integer"),
    AGE,
    column("Containers", DOCS["containers"], priority=1),
    column("Images", DOCS["images"], priority=1),
    column("Selector", DOCS["rs.selector"], priority=1),
]
REPLICATIONCONTROLLER = [
    NAME,
    column("Desired", DOCS["rc.replicas"], type_="integer"),
    column("Current", DOCS["rc.status.replicas"], type_="integer"),
    column("Ready", DOCS["rc.readyReplicas"], type_="integer"),
    AGE,
    column("Containers", DOCS["containers"], priority=1),
    column("Images", DOCS["images"], priority=1),
    column("Selector", DOCS["rc.selector"], priority=1),
]

# --- networking -----------------------------------------------------------------------

SERVICE = [
    NAME,
    column("Type", DOCS["svc.type"]),
    column("Cluster-IP", DOCS["svc.clusterIP"]),
    column("External-IP", DOCS["svc.externalIPs"]),
    column("Port(s)", DOCS["svc.ports"]),
    AGE,
    column("Selector", DOCS["svc.selector"], priority=1),
]

ENDPOINTS = [NAME, column("Endpoints", DOCS["ep.subsets"]), AGE]

ENDPOINTSLICE = [
    NAME,
    column("AddressType", DOCS["eps.addressType"]),
    column("Ports", DOCS["eps.ports"]),
    column("Endpoints", DOCS["eps.endpoints"]),
    AGE,
]

INGRESS = [
    NAME,
    column("Class", DOCS["ing.class"]),
    column("Hosts", DOCS["ing.hosts"]),
    column("Address", DOCS["ing.address"]),
    column("Ports", DOCS["ing.ports"]),
    AGE,
]

INGRESSCLASS = [
    NAME,
    column("Controller", DOCS["ingc.controller"]),
    column("Parameters", DOCS["ingc.parameters"]),
    AGE,
]

# --- cluster --------------------------------------------------------------------------

NODE = [
    NAME,
    column("Status", DOCS["node.status"]),
    column("Roles", DOCS["node.roles"]),
    AGE,
    column("Version", DOCS["node.kubeletVersion"]),
    column("Internal-IP", DOCS["node.internalIP"], priority=1),
    column("External-IP", DOCS["node.externalIP"], priority=1),
    column("OS-Image", DOCS["node.osImage"], priority=1),
    column("Kernel-Version", DOCS["node.kernelVersion"], priority=1),
    column("Container-Runtime", DOCS["node.containerRuntimeVersion"], priority=1),
]

EVENT = [
    column("Last Seen", DOCS["ev.lastTimestamp"]),
    column("Type", DOCS["ev.type"]),
    column("Reason", DOCS["ev.reason"]),
    column("Object", DOCS["ev.involvedObject"]),
    column("Subobject", DOCS["ev.fieldPath"], priority=1),
    column("Source", DOCS["ev.source"], priority=1),
    column("Message", DOCS["ev.message"]),
    column("First Seen", DOCS["ev.firstTimestamp"], priority=1),
    column("Count", DOCS["ev.count"], priority=1),
    column("Name", DOCS["name"], fmt="name", priority=1),
]

NAMESPACE = [NAME, column("Status", DOCS["ns.status"]), AGE]

# --- config and access ----------------------------------------------------------------

CONFIGMAP = [NAME, column("Data", DOCS["cm.data"]), AGE]

SECRET = [NAME, column("Type", DOCS["secret.type"]), column("Data", DOCS["secret.data"]), AGE]

SERVICEACCOUNT = [NAME, column("Secrets", DOCS["sa.secrets"]), AGE]

LEASE = [NAME, column("Holder", DOCS["lease.holderIdentity"]), AGE]

NETWORKPOLICY = [NAME, column("Pod-Selector", DOCS["netpol.podSelector"]), AGE]
APISERVICE = [NAME, column("Service", DOCS["apiservice.service"]), column("Available", DOCS["apiservice.available"]),
              AGE]

# --- RBAC -------------------------------------------------------------------------------
# Roles print as apiserver's default convertor does; bindings name their role, and the
# wide columns list the subjects by kind.  The descriptions are our own words.

ROLE = [NAME, column("Created At", DOCS["creationTimestamp"], type_="date")]


def _binding_columns(what: str) -> list[Obj]:
    return [NAME,
            column("Role", f"The Role or ClusterRole this {what} grants, as Kind/name."),
            AGE,
            column("Users", f"Users in the {what}", priority=1),
            column("Groups", f"Groups in the {what}", priority=1),
            column("ServiceAccounts", f"ServiceAccounts in the {what}", priority=1)]


ROLEBINDING = _binding_columns("roleBinding")
CLUSTERROLEBINDING = _binding_columns("clusterRoleBinding")

# --- apiserver's default convertor ----------------------------------------------------

DEFAULT = [NAME, column("Created At", DOCS["creationTimestamp"], type_="date")]

# --- batch ----------------------------------------------------------------------------

JOB = [
    NAME,
    column("Status", DOCS["job.status"]),
    column("Completions", DOCS["job.completions"]),
    column("Duration", DOCS["job.duration"]),
    AGE,
    column("Containers", DOCS["containers"], priority=1),
    column("Images", DOCS["images"], priority=1),
    column("Selector", DOCS["job.selector"], priority=1),
]
CRONJOB = [
    NAME,
    column("Schedule", DOCS["cj.schedule"]),
    column("Timezone", DOCS["cj.timeZone"]),
    column("Suspend", DOCS["cj.suspend"], type_="boolean"),
    column("Active", DOCS["cj.active"], type_="integer"),
    column("Last Schedule", DOCS["cj.lastScheduleTime"]),
    AGE,
    column("Containers", DOCS["containers"], priority=1),
    column("Images", DOCS["images"], priority=1),
    column("Selector", DOCS["cj.selector"], priority=1),
]

# --- StatefulSets, DaemonSets, ControllerRevisions -------------------------------------

STATEFULSET = [
    NAME,
    column("Ready", DOCS["sts.ready"]),
    AGE,
    column("Containers", DOCS["containers"], priority=1),
    column("Images", DOCS["images"], priority=1),
]
DAEMONSET = [
    NAME,
    column("Desired", DOCS["ds.desired"], type_="integer"),
    column("Current", DOCS["ds.current"], type_="integer"),
    column("Ready", DOCS["ds.ready"], type_="integer"),
    column("Up-to-date", DOCS["ds.updated"], type_="integer"),
    column("Available", DOCS["ds.available"], type_="integer"),
    column("Node Selector", DOCS["ds.nodeSelector"]),
    AGE,
    column("Containers", DOCS["containers"], priority=1),
    column("Images", DOCS["images"], priority=1),
    column("Selector", DOCS["ds.selector"], priority=1),
]
CONTROLLERREVISION = [
    NAME,
    column("Controller", DOCS["cr.controller"]),
    column("Revision", DOCS["cr.revision"], type_="integer"),
    AGE,
]

# --- admission webhooks -----------------------------------------------------------------
WEBHOOK_CONFIGURATION = [NAME, column("Webhooks", "How many webhooks the configuration holds.", type_="integer"),
                         AGE]
VALIDATING_ADMISSION_POLICY = [NAME, column("Validations", "How many CEL validations the policy holds.",
                                            type_="integer"),
                               column("ParamKind", "The kind of the policy's parameter objects."), AGE]
VALIDATING_ADMISSION_POLICY_BINDING = [NAME, column("PolicyName", "The policy this binding applies."),
                                       column("ParamRef", "The parameter object the binding passes to the policy."),
                                       AGE]

# --- autoscaling ----------------------------------------------------------------------

HORIZONTALPODAUTOSCALER = [
    NAME,
    column("Reference", DOCS["hpa.reference"]),
    column("Targets", DOCS["hpa.targets"]),
    column("MinPods", DOCS["hpa.minPods"]),
    column("MaxPods", DOCS["hpa.maxPods"], type_="integer"),
    column("Replicas", DOCS["hpa.replicas"], type_="integer"),
    AGE,
]

# --- metrics.k8s.io (metrics-server's Tables) -------------------------------------------

_USAGE = [column("cpu", "CPU in use, in cores.", fmt="quantity"),
          column("memory", "Memory working set, in bytes.", fmt="quantity"),
          column("Window", "How long the usage was averaged over.", fmt="duration")]
NODEMETRICS = [NAME, *_USAGE]
PODMETRICS = [NAME, *_USAGE]
PODDISRUPTIONBUDGET = [
    NAME,
    column("Min Available", DOCS["pdb.minAvailable"]),
    column("Max Unavailable", DOCS["pdb.maxUnavailable"]),
    column("Allowed Disruptions", DOCS["pdb.disruptionsAllowed"], type_="integer"),
    AGE,
]

# --- ResourceQuota, PriorityClass (LimitRange prints as the default convertor does) ------

RESOURCEQUOTA = [NAME, AGE, column("Request", DOCS["quota.request"]), column("Limit", DOCS["quota.limit"])]

PRIORITYCLASS = [NAME, column("Value", DOCS["pc.value"], type_="integer"),
                 column("Global-Default", DOCS["pc.globalDefault"], type_="boolean"), AGE,
                 column("PreemptionPolicy", DOCS["pc.preemptionPolicy"])]

# --- storage --------------------------------------------------------------------------

PERSISTENTVOLUME = [
    NAME,
    column("Capacity", DOCS["pv.capacity"]),
    column("Access Modes", DOCS["pv.accessModes"]),
    column("Reclaim Policy", DOCS["pv.reclaimPolicy"]),
    column("Status", DOCS["pv.status"]),
    column("Claim", DOCS["pv.claim"]),
    column("StorageClass", DOCS["pv.storageClass"]),
    column("VolumeAttributesClass", DOCS["pv.volumeAttributesClass"]),
    column("Reason", DOCS["pv.reason"]),
    AGE,
    column("VolumeMode", DOCS["pv.volumeMode"], priority=1),
]
PERSISTENTVOLUMECLAIM = [
    NAME,
    column("Status", DOCS["pvc.status"]),
    column("Volume", DOCS["pvc.volume"]),
    column("Capacity", DOCS["pvc.capacity"]),
    column("Access Modes", DOCS["pvc.accessModes"]),
    column("StorageClass", DOCS["pvc.storageClass"]),
    column("VolumeAttributesClass", DOCS["pvc.volumeAttributesClass"]),
    AGE,
    column("VolumeMode", DOCS["pvc.volumeMode"], priority=1),
]
STORAGECLASS = [
    NAME,
    column("Provisioner", DOCS["sc.provisioner"]),
    column("ReclaimPolicy", DOCS["sc.reclaimPolicy"]),
    column("VolumeBindingMode", DOCS["sc.volumeBindingMode"]),
    column("AllowVolumeExpansion", DOCS["sc.allowVolumeExpansion"]),
    AGE,
]

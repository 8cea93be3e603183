"""Column definitions of server-side Tables (data): names, types, formats, descriptions.

The descriptions are upstream's swagger docs for the fields the columns show, checked
against the recorded v1.28 Tables and v1.28's ``types_swagger_doc_generated.go``; they are
facts clients display, carried over word for word.  Priority 1 marks a wide column.
"""
from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

DOCS = {
    'name': (
        'Name must be unique within a namespace. Is required when creating resources, although some '
        'resources may allow a client to request the generation of an appropriate name automatically. Name '
        'is primarily intended for creation idempotence and configuration definition. Cannot be updated. '
        'More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names'
    ),
    'creationTimestamp': (
        'CreationTimestamp is a timestamp representing the server time when this object was created. It is '
        'not guaranteed to be set in happens-before order across separate operations. Clients may not set '
        'this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. '
        'Null for lists. More info: '
        'https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata'
    ),
    'pod.podIP': (
        'podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet '
        'allocated.'
    ),
    'pod.nodeName': (
        'NodeName is a request to schedule this pod onto a specific node. If it is non-empty, the scheduler '
        'simply schedules this pod onto that node, assuming that it fits resource requirements.'
    ),
    'pod.nominatedNodeName': (
        'nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be '
        'scheduled right away as preemption victims receive their graceful termination periods. This field '
        'does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the '
        'pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the '
        'resources on this node to a higher priority pod that is created after preemption. As a result, this '
        'field may be different than PodSpec.nodeName when the pod is scheduled.'
    ),
    'pod.readinessGates': (
        'If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its '
        'containers are ready AND all conditions specified in the readiness gates have status equal to '
        '"True" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates'
    ),
    'deploy.updatedReplicas': (
        'Total number of non-terminated pods targeted by this deployment that have the desired template '
        'spec.'
    ),
    'deploy.availableReplicas': (
        'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.'
    ),
    'deploy.selector': (
        'Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones '
        'affected by this deployment.'
    ),
    'rs.replicas': (
        'Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero '
        'and unspecified. Defaults to 1. More info: '
        'https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller'
    ),
    'rs.status.replicas': (
        'Replicas is the most recently observed number of replicas. More info: '
        'https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller'
    ),
    'rs.readyReplicas': 'The number of ready replicas for this replica set.',
    'rs.selector': (
        'Selector is a label query over pods that should match the replica count. If the selector is empty, '
        'it is defaulted to the labels present on the pod template. Label keys and values that must match in '
        'order to be controlled by this replica set. More info: '
        'https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors'
    ),
    'rc.replicas': (
        'Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero '
        'and unspecified. Defaults to 1. More info: '
        'https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller'
    ),
    'rc.status.replicas': (
        'Replicas is the most recently observed number of replicas. More info: '
        'https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller'
    ),
    'rc.readyReplicas': 'The number of ready replicas for this replication controller.',
    'rc.selector': (
        'Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is '
        'defaulted to the labels present on the Pod template. Label keys and values that must match in order to '
        'be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: '
        'https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors'
    ),
    'svc.type': (
        'type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, '
        'ClusterIP, NodePort, and LoadBalancer. "ClusterIP" allocates a cluster-internal IP address for '
        'load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, '
        'by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is "None", no '
        'virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual '
        'IP. "NodePort" builds on ClusterIP and allocates a port on every node which routes to the same '
        'endpoints as the clusterIP. "LoadBalancer" builds on NodePort and creates an external load-balancer '
        '(if supported in the current cloud) which routes to the same endpoints as the clusterIP. '
        '"ExternalName" aliases this service to the specified externalName. Several other fields do not '
        'apply to ExternalName services. More info: '
        'https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types'
    ),
    'svc.clusterIP': (
        'clusterIP is the IP address of the service and is usually assigned randomly. If an address is '
        'specified manually, is in-range (as per system configuration), and is not in use, it will be '
        'allocated to the service; otherwise creation of the service will fail. This field may not be '
        'changed through updates unless the type field is also being changed to ExternalName (which requires '
        'this field to be blank) or the type field is being changed from ExternalName (in which case this '
        'field may optionally be specified, as describe above).  Valid values are "None", empty string (""), '
        'or a valid IP address. Setting this to "None" makes a "headless service" (no virtual IP), which is '
        'useful when direct endpoint connections are preferred and proxying is not required.  Only applies '
        'to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service '
        'of type ExternalName, creation will fail. This field will be wiped when updating a Service to type '
        'ExternalName. More info: '
        'https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies'
    ),
    'svc.externalIPs': (
        'externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for '
        'this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that '
        'traffic arrives at a node with this IP.  A common example is external load-balancers that are not '
        'part of the Kubernetes system.'
    ),
    'svc.ports': (
        'The list of ports that are exposed by this service. More info: '
        'https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies'
    ),
    'svc.selector': (
        'Route service traffic to pods with label keys and values matching this selector. If empty or not '
        'present, the service is assumed to have an external process managing its endpoints, which '
        'Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if '
        'type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/'
    ),
    'ep.subsets': (
        'The set of all endpoints is the union of all subsets. Addresses are placed into subsets according '
        'to the IPs they share. A single address with multiple ports, some of which are ready and some of '
        'which are not (because they come from different containers) will result in the address being '
        'displayed in different subsets for the different ports. No address will appear in both Addresses '
        'and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.'
    ),
    'node.kubeletVersion': 'Kubelet Version reported by the node.',
    'node.addresses': (
        'List of addresses reachable to the node. Queried from cloud provider, if available. More info: '
        'https://kubernetes.io/docs/concepts/nodes/node/#addresses Note: This field is declared as '
        'mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is '
        'merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an '
        'example. Consumers should assume that addresses can change during the lifetime of a Node. However, '
        "there are some exceptions where this may not be possible, such as Pods that inherit a Node's "
        'address in its own status or consumers of the downward API (status.hostIP).'
    ),
    'node.osImage': 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).',
    'node.kernelVersion': "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    'node.containerRuntimeVersion': 'ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).',
    'ev.lastTimestamp': 'The time at which the most recent occurrence of this event was recorded.',
    'ev.type': 'Type of this event (Normal, Warning), new types could be added in the future',
    'ev.reason': (
        'This should be a short, machine understandable string that gives the reason for the transition into '
        "the object's current status."
    ),
    'ev.involvedObject': 'The object that this event is about.',
    'ev.fieldPath': (
        'If referring to a piece of an object instead of an entire object, this string should contain a '
        'valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if '
        'the object reference is to a container within a pod, this would take on a value like: '
        '"spec.containers{name}" (where "name" refers to the name of the container that triggered the event) '
        'or if no container name is specified "spec.containers[2]" (container with index 2 in this pod). '
        'This syntax is chosen only to have some well-defined way of referencing a part of an object.'
    ),
    'ev.source': 'The component reporting this event. Should be a short machine understandable string.',
    'ev.message': 'A human-readable description of the status of this operation.',
    'ev.firstTimestamp': 'The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)',
    'ev.count': 'The number of times this event has occurred.',
    'secret.type': (
        'Used to facilitate programmatic handling of secret data. More info: '
        'https://kubernetes.io/docs/concepts/configuration/secret/#secret-types'
    ),
    'secret.data': (
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. "
        'The serialized form of the secret data is a base64 encoded string, representing the arbitrary '
        '(possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4'
    ),
    'sa.secrets': (
        'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount '
        'are allowed to use. Pods are only limited to this list if this service account has a '
        '"kubernetes.io/enforce-mountable-secrets" annotation set to "true". This field should not be used '
        'to find auto-generated service account token secrets for use outside of pods. Instead, tokens can '
        'be requested directly using the TokenRequest API, or service account token secrets can be manually '
        'created. More info: https://kubernetes.io/docs/concepts/configuration/secret'
    ),
    'cm.data': (
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or "
        "'.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data "
        'must not overlap with the keys in the BinaryData field, this is enforced during validation process.'
    ),
    'lease.holderIdentity': 'holderIdentity contains the identity of the holder of a current lease.',
    'eps.addressType': (
        'addressType specifies the type of address carried by this EndpointSlice. All addresses in this '
        'slice must be the same type. This field is immutable after creation. The following address types '
        'are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * '
        'FQDN: Represents a Fully Qualified Domain Name.'
    ),
    'eps.ports': (
        'ports specifies the list of network ports exposed by each endpoint in this slice. Each port must '
        'have a unique name. When ports is empty, it indicates that there are no defined ports. When a port '
        'is defined with a nil port value, it indicates "all ports". Each slice may include a maximum of 100 '
        'ports.'
    ),
    'eps.endpoints': (
        'endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 '
        'endpoints.'
    ),
}

_CONTAINERS = "Names of each container in the template."
_IMAGES = "Images referenced by each container in the template."


def column(name: str, desc: str, *, type_: str = "string", fmt: str = "", priority: int = 0) -> Obj:
    """One metav1.TableColumnDefinition."""
    return {"name": name, "type": type_, "format": fmt, "description": desc, "priority": priority}


NAME = column("Name", DOCS["name"], fmt="name")
AGE = column("Age", DOCS["creationTimestamp"])

# --- pods -----------------------------------------------------------------------------

POD = [
    NAME,
    column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    column("Status", "The aggregate status of the containers in this pod."),
    column("Restarts", "The number of times the containers in this pod have been restarted and when the "
                     "last container in this pod has restarted."),
    AGE,
    column("IP", DOCS["pod.podIP"], priority=1),
    column("Node", DOCS["pod.nodeName"], priority=1),
    column("Nominated Node", DOCS["pod.nominatedNodeName"], priority=1),
    column("Readiness Gates", DOCS["pod.readinessGates"], priority=1),
]

# --- workloads ------------------------------------------------------------------------

DEPLOYMENT = [
    NAME,
    column("Ready", "Number of the pod with ready state"),
    column("Up-to-date", DOCS["deploy.updatedReplicas"]),
    column("Available", DOCS["deploy.availableReplicas"]),
    AGE,
    column("Containers", _CONTAINERS, priority=1),
    column("Images", _IMAGES, priority=1),
    column("Selector", DOCS["deploy.selector"], priority=1),
]

REPLICASET = [
    NAME,
    column("Desired", DOCS["rs.replicas"], type_="integer"),
    column("Current", DOCS["rs.status.replicas"], type_="integer"),
    column("Ready", DOCS["rs.readyReplicas"], type_="integer"),
    AGE,
    column("Containers", _CONTAINERS, priority=1),
    column("Images", _IMAGES, priority=1),
    column("Selector", DOCS["rs.selector"], priority=1),
]
REPLICATIONCONTROLLER = [
    NAME,
    column("Desired", DOCS["rc.replicas"], type_="integer"),
    column("Current", DOCS["rc.status.replicas"], type_="integer"),
    column("Ready", DOCS["rc.readyReplicas"], type_="integer"),
    AGE,
    column("Containers", _CONTAINERS, priority=1),
    column("Images", _IMAGES, priority=1),
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

# --- cluster --------------------------------------------------------------------------

NODE = [
    NAME,
    column("Status", "The status of the node"),
    column("Roles", "The roles of the node"),
    AGE,
    column("Version", DOCS["node.kubeletVersion"]),
    column("Internal-IP", DOCS["node.addresses"], priority=1),
    column("External-IP", DOCS["node.addresses"], priority=1),
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

NAMESPACE = [NAME, column("Status", "The status of the namespace"), AGE]

# --- config and access ----------------------------------------------------------------

CONFIGMAP = [NAME, column("Data", DOCS["cm.data"]), AGE]

SECRET = [NAME, column("Type", DOCS["secret.type"]), column("Data", DOCS["secret.data"]), AGE]

SERVICEACCOUNT = [NAME, column("Secrets", DOCS["sa.secrets"]), AGE]

LEASE = [NAME, column("Holder", DOCS["lease.holderIdentity"]), AGE]

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

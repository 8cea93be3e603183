"""Descriptions of kinds and fields in the OpenAPI documents, and enum values (data).

Our own short wording, for the fields people ``kubectl explain`` most; fields not listed
here are served without a description.
"""
from __future__ import annotations

KIND_DOCS = {
    "apiregistration.v1.APIService": "An APIService says which server answers one API group/version: this API "
                                     "server itself (Local) or an extension API server behind a Service, to which "
                                     "requests are forwarded.",
    "apiregistration.v1.APIServiceSpec": "The group/version served, where its server is, how to trust it, and "
                                         "where it sorts in discovery.",
    "apiregistration.v1.ServiceReference": "The Service in front of an extension API server.",
    "apiregistration.v1.APIServiceCondition": "One observation about the APIService, such as whether its server "
                                              "answers.",
    "apps.v1.Deployment": "A Deployment keeps a number of identical pods running from one pod "
                          "template, and rolls changes of that template out gradually through ReplicaSets.",
    "apps.v1.DeploymentSpec": "What the Deployment should look like.",
    "apps.v1.DeploymentStrategy": "How old pods are replaced by new ones when the pod template changes.",
    "apps.v1.RollingUpdateDeployment": "Limits that pace a rolling update.",
    "apps.v1.ReplicaSet": "A ReplicaSet keeps a fixed number of pods matching its selector running.",
    "batch.v1.Job": "A Job runs pods until a given number of them finish successfully, retrying "
                    "failed ones up to a limit.",
    "batch.v1.JobSpec": "What the Job should run, how many pods at once, and when to give up.",
    "batch.v1.CronJob": "A CronJob starts a Job from its template at the times its cron schedule names.",
    "batch.v1.CronJobSpec": "When Jobs start, what they look like, and how many old ones to keep.",
    "networking.v1.Ingress": "An Ingress routes outside HTTP(S) traffic to Services by host name and URL path, "
                             "optionally terminating TLS; an ingress controller carries it out.",
    "networking.v1.IngressSpec": "The routing rules, the fallback backend and the TLS settings of an Ingress.",
    "networking.v1.IngressClass": "An IngressClass names the ingress controller that serves the Ingresses "
                                  "referring to it; one class may be marked as the default.",
    "core.v1.ReplicationController": "A ReplicationController keeps a number of pods matching its label selector "
                                     "running; ReplicaSets (through Deployments) are its successor.",
    "core.v1.Pod": "A Pod is a group of containers scheduled together onto one node, sharing "
                   "network and volumes.",
    "core.v1.PodSpec": "What the pod should run and how.",
    "core.v1.PodTemplateSpec": "The pods a controller creates: their metadata and spec.",
    "core.v1.Container": "One container of a pod: the image to run and how to run it.",
    "core.v1.Service": "A Service gives a set of pods, chosen by a label selector, one stable "
                       "virtual address and name.",
    "core.v1.ServiceSpec": "How the Service routes traffic and to which pods.",
    "core.v1.ServicePort": "One port the Service exposes.",
    "meta.v1.ObjectMeta": "Metadata every persisted object carries: name, namespace, labels, "
                          "annotations and bookkeeping written by the server.",
    "meta.v1.LabelSelector": "Selects objects by their labels; all requirements must hold.",
    "rbac.v1.Role": "A Role is a set of permissions (rules) inside one namespace; a RoleBinding gives "
                    "them to users, groups or service accounts.",
    "rbac.v1.ClusterRole": "A ClusterRole is a set of permissions valid cluster-wide, or in one namespace "
                           "when a RoleBinding refers to it.",
    "rbac.v1.RoleBinding": "A RoleBinding grants the rules of a Role or ClusterRole to subjects, inside the "
                           "RoleBinding's namespace.",
    "rbac.v1.ClusterRoleBinding": "A ClusterRoleBinding grants the rules of a ClusterRole to subjects in every "
                                  "namespace and for cluster-scoped resources.",
    "rbac.v1.PolicyRule": "One permission: these verbs on these resources (or non-resource URLs).",
    "rbac.v1.Subject": "Who a binding applies to: a User, a Group or a ServiceAccount.",
    "rbac.v1.RoleRef": "The Role or ClusterRole a binding grants.",
    "rbac.v1.AggregationRule": "Selects the ClusterRoles whose rules are copied into this one by the "
                               "aggregation controller.",
    "apps.v1.StatefulSet": "A StatefulSet runs pods with stable, ordered names (web-0, web-1 …) and rolls "
                           "template changes out one ordinal at a time, highest first.",
    "apps.v1.StatefulSetSpec": "What the StatefulSet should look like.",
    "apps.v1.StatefulSetUpdateStrategy": "How pods are replaced when the pod template changes.",
    "apps.v1.RollingUpdateStatefulSetStrategy": "Limits that pace a StatefulSet rolling update.",
    "apps.v1.DaemonSet": "A DaemonSet runs one copy of a pod on every node that its selector, affinity "
                         "and tolerations allow.",
    "apps.v1.DaemonSetSpec": "What the DaemonSet should look like.",
    "apps.v1.DaemonSetUpdateStrategy": "How a DaemonSet's pods are replaced when its template changes.",
    "apps.v1.RollingUpdateDaemonSet": "Limits that pace a DaemonSet rolling update.",
    "core.v1.PersistentVolume": "A PersistentVolume is a piece of storage in the cluster, made by an administrator "
                                "or a provisioner, that one claim at a time may bind.",
    "core.v1.PersistentVolumeSpec": "The storage the volume offers and how it may be used.",
    "core.v1.PersistentVolumeClaim": "A PersistentVolumeClaim asks for storage of a size, class and access mode; "
                                     "the cluster binds it to a matching PersistentVolume, which pods then mount.",
    "core.v1.PersistentVolumeClaimSpec": "The storage the claim asks for.",
    "storage.v1.StorageClass": "A StorageClass names a kind of storage and the provisioner that creates "
                               "PersistentVolumes of that kind for claims on demand.",
    "apps.v1.ControllerRevision": "An immutable snapshot of a StatefulSet's or DaemonSet's pod template, "
                                  "kept as rollout history for rollbacks.",
    "admissionregistration.v1.MutatingWebhookConfiguration": "Webhooks the API server calls, in order, to change "
                                                             "objects before they are validated and stored.",
    "admissionregistration.v1.ValidatingWebhookConfiguration": "Webhooks the API server calls, in parallel, to "
                                                               "accept or refuse a write after validation.",
    "admissionregistration.v1.ValidatingAdmissionPolicy": "CEL expressions that writes must satisfy, applied to "
                                                          "the writes its bindings select.",
    "admissionregistration.v1.ValidatingAdmissionPolicyBinding": "Applies a ValidatingAdmissionPolicy to some "
                                                                 "resources, with a parameter object and actions.",
    "admissionregistration.v1.ValidatingAdmissionPolicySpec": "What the policy checks, on which requests, and "
                                                              "what happens when it cannot.",
    "admissionregistration.v1.ValidatingAdmissionPolicyBindingSpec": "Which policy applies where, with which "
                                                                     "params and actions.",
    "admissionregistration.v1.ParamKind": "The kind of a policy's parameter objects.",
    "admissionregistration.v1.ParamRef": "How a binding finds the parameter objects of its policy.",
    "admissionregistration.v1.WebhookClientConfig": "Where a webhook listens (a URL or a Service) and the CA "
                                                    "that signed its serving certificate.",
    "autoscaling.v2.HorizontalPodAutoscaler": "A HorizontalPodAutoscaler sets the replica count of a workload "
                                              "from observed metrics, such as CPU use against requests.",
    "autoscaling.v2.HorizontalPodAutoscalerSpec": "What to scale, between which bounds, on which metrics, and "
                                                  "how fast.",
    "autoscaling.v2.HorizontalPodAutoscalerBehavior": "Rate limits and stabilization for scaling up and down.",
    "autoscaling.v2.HPAScalingRules": "How one direction of scaling is paced: a stabilization window and "
                                      "policies limiting change per period.",
    "autoscaling.v2.MetricSpec": "One metric the autoscaler watches, and the value it aims for.",
    "autoscaling.v1.HorizontalPodAutoscaler": "A HorizontalPodAutoscaler sets the replica count of a workload "
                                              "from its pods' CPU use; autoscaling/v2 can say more.",
    "networking.v1.NetworkPolicy": "A NetworkPolicy limits which traffic may reach (ingress) or leave (egress) "
                                   "the pods it selects; pods no policy selects stay open.",
    "networking.v1.NetworkPolicySpec": "Which pods the policy isolates, in which directions, and what it lets through.",
    "networking.v1.NetworkPolicyIngressRule": "Traffic this rule lets in: from any listed peer, to any listed port.",
    "networking.v1.NetworkPolicyEgressRule": "Traffic this rule lets out: to any listed peer, on any listed port.",
    "networking.v1.NetworkPolicyPeer": "The other end of allowed traffic: pods by labels, namespaces by labels, "
                                       "both, or an address range.",
    "networking.v1.NetworkPolicyPort": "A port (or range of ports) and protocol that a rule allows.",
    "networking.v1.IPBlock": "An address range, minus some sub-ranges.",
    "policy.v1.PodDisruptionBudget": "A PodDisruptionBudget limits how many of the pods it selects may be "
                                     "taken down at once by voluntary disruptions such as evictions and drains.",
    "policy.v1.PodDisruptionBudgetSpec": "Which pods the budget covers and how many of them must stay up.",
    "policy.v1.PodDisruptionBudgetStatus": "What the disruption controller last counted for this budget; "
                                           "may lag behind the pods.",
    "policy.v1.Eviction": "A request to evict one pod, refused when it would break a disruption budget.",
    "core.v1.ResourceQuota": "A ResourceQuota caps what the objects of one namespace may use together: "
                             "object counts and compute requests and limits.",
    "core.v1.ResourceQuotaSpec": "The caps, and which pods they apply to.",
    "core.v1.LimitRange": "A LimitRange gives containers, pods and claims of its namespace default resources "
                          "and bounds on what they may ask for.",
    "core.v1.LimitRangeItem": "Bounds and defaults for one kind of thing: Container, Pod or PersistentVolumeClaim.",
    "scheduling.v1.PriorityClass": "A PriorityClass names a priority value that pods ask for by name.",
}

GENERIC_DOCS = {
    "apiVersion": "The versioned schema of this object, as group/version (v1 for the core group).",
    "kind": "The type of this object, in CamelCase.",
    "metadata": "Standard object metadata.",
    "spec": "The desired state, written by the user.",
    "status": "The observed state, written by the system. Read-only for users.",
}

FIELD_DOCS: dict[str, dict[str, str]] = {
    "autoscaling.v2.HorizontalPodAutoscalerSpec": {
        "scaleTargetRef": "The workload to scale (anything with a scale subresource).",
        "minReplicas": "The fewest replicas to scale down to. Defaults to 1.",
        "maxReplicas": "The most replicas to scale up to; at least minReplicas.",
        "metrics": "What to measure; the largest replica count any metric asks for wins. Defaults to CPU at "
                   "80% of requests.",
        "behavior": "How fast scaling may happen in each direction; defaults apply when unset.",
    },
    "autoscaling.v2.HPAScalingRules": {
        "stabilizationWindowSeconds": "Look back this long and use the most conservative recommendation, so "
                                      "short spikes do not cause flapping.",
        "selectPolicy": "Which policy wins when several apply: Max (most change), Min (least) or Disabled.",
        "policies": "Limits on change per period, in pods or percent of the current replica count.",
    },
    "apiregistration.v1.APIServiceSpec": {
        "service": "The Service in front of the server for this group/version; unset means this API server "
                   "answers it itself.",
        "group": "The API group served.",
        "version": "The version of the group served, such as v1beta1.",
        "insecureSkipTLSVerify": "Do not check the server's certificate (discouraged; give caBundle instead).",
        "caBundle": "PEM certificates of the authorities that signed the server's serving certificate.",
        "groupPriorityMinimum": "How early the group comes in discovery; higher first. The highest value of any "
                                "version of the group counts.",
        "versionPriority": "How early this version comes within its group; higher first.",
    },
    "apiregistration.v1.ServiceReference": {
        "namespace": "The Service's namespace.",
        "name": "The Service's name.",
        "port": "The Service port to connect to (1-65535). Defaults to 443.",
    },
    "apiregistration.v1.APIServiceStatus": {
        "conditions": "What is known about the APIService; Available tells whether its server answers.",
    },
    "batch.v1.JobSpec": {
        "parallelism": "How many pods may run at the same time. Defaults to 1; 0 pauses the Job.",
        "completions": "How many pods must succeed for the Job to be complete. Unset: the first success "
                       "(once every pod has ended) completes it.",
        "completionMode": "NonIndexed (any success counts) or Indexed (each index 0..completions-1 must "
                          "succeed once; pods learn their index from JOB_COMPLETION_INDEX).",
        "backoffLimit": "How many pod failures the Job tolerates before it is marked failed. Defaults to 6.",
        "backoffLimitPerIndex": "For Indexed Jobs: how many failures each index tolerates before that "
                                "index is marked failed.",
        "maxFailedIndexes": "For Indexed Jobs with backoffLimitPerIndex: how many failed indexes fail the Job.",
        "activeDeadlineSeconds": "Seconds, counted from the Job's start, after which its pods are stopped "
                                 "and it is marked failed (DeadlineExceeded).",
        "ttlSecondsAfterFinished": "Seconds after the Job finishes before it is deleted with its pods.",
        "suspend": "While true no pods are created and running ones are stopped.",
        "podFailurePolicy": "Rules on exit codes and pod conditions that fail the Job at once, ignore a "
                            "failure, or count it against the back-off limit.",
        "selector": "Label query of the Job's pods; generated from the Job's uid unless manualSelector.",
        "manualSelector": "Set true to write your own selector instead of the generated one.",
        "template": "The pods to run. restartPolicy must be OnFailure or Never.",
    },
    "batch.v1.CronJobSpec": {
        "schedule": "Cron schedule: five fields (minute hour day-of-month month day-of-week) or a "
                    "descriptor such as @hourly.",
        "timeZone": "IANA time zone the schedule is read in; defaults to the controller manager's local zone.",
        "startingDeadlineSeconds": "A start later than this many seconds after its scheduled time is "
                                   "skipped and counted as missed.",
        "concurrencyPolicy": "Allow (default), Forbid (skip a start while a Job runs) or Replace "
                             "(delete the running Job and start the new one).",
        "suspend": "While true, no new Jobs are started.",
        "jobTemplate": "The Job every start creates.",
        "successfulJobsHistoryLimit": "How many finished successful Jobs to keep. Defaults to 3.",
        "failedJobsHistoryLimit": "How many failed Jobs to keep. Defaults to 1.",
    },
    "networking.v1.IngressSpec": {
        "ingressClassName": "The IngressClass whose controller serves this Ingress; filled from the default "
                            "class on create when left empty.",
        "defaultBackend": "Where requests that match no rule go.",
        "tls": "Hosts served over HTTPS and the Secret (type kubernetes.io/tls) holding each one's certificate.",
        "rules": "Host and path rules, each routing to a backend.",
    },
    "networking.v1.HTTPIngressPath": {
        "path": "The URL path to match; must start with '/' for Exact and Prefix.",
        "pathType": "Exact (the whole path), Prefix (whole '/'-separated elements) or ImplementationSpecific.",
        "backend": "The Service (name and port) or resource the matching requests go to.",
    },
    "networking.v1.IngressClassSpec": {
        "controller": "The name of the controller implementing this class, as domain/path; immutable.",
        "parameters": "An object holding extra settings for the controller.",
    },
    "apps.v1.DeploymentSpec": {
        "replicas": "How many pods to run. Defaults to 1; leave it unset when an autoscaler manages it.",
        "selector": "Label selector of the pods this Deployment owns. It must match the labels of "
                    "the pod template and cannot change after creation.",
        "template": "The pod template new pods are made from. Changing it starts a rollout.",
        "strategy": "How to replace existing pods with new ones during a rollout.",
        "minReadySeconds": "Seconds a new pod must be ready, without crashing, before it counts as "
                           "available. Defaults to 0.",
        "revisionHistoryLimit": "How many old ReplicaSets to keep for rollbacks. Defaults to 10.",
        "paused": "While true, template changes do not start a rollout.",
        "progressDeadlineSeconds": "Seconds a rollout may go without progress before the Deployment "
                                   "reports it as failed (ProgressDeadlineExceeded). Defaults to 600.",
    },
    "apps.v1.DeploymentStrategy": {
        "type": "Recreate (stop all old pods first) or RollingUpdate (the default: replace pods "
                "step by step).",
        "rollingUpdate": "Pacing of a RollingUpdate. Only allowed when type is RollingUpdate.",
    },
    "apps.v1.RollingUpdateDeployment": {
        "maxSurge": "How many pods may exist above the desired count during the update: a number or "
                    "a percentage of replicas (rounded up). Defaults to 25%. Cannot be 0 when "
                    "maxUnavailable is 0.",
        "maxUnavailable": "How many pods may be unavailable during the update: a number or a "
                          "percentage of replicas (rounded down). Defaults to 25%. Cannot be 0 when "
                          "maxSurge is 0.",
    },
    "core.v1.PodSpec": {
        "containers": "The containers of the pod. At least one; they cannot be added or removed later.",
        "initContainers": "Containers run one after another, to completion, before the others start.",
        "volumes": "Volumes the containers may mount.",
        "restartPolicy": "Always (the default), OnFailure or Never: when to restart exited containers.",
        "nodeName": "The node this pod runs on; set by the scheduler unless given.",
        "nodeSelector": "Labels a node must have for the pod to be scheduled there.",
        "serviceAccountName": "The service account the pod runs as.",
        "terminationGracePeriodSeconds": "Seconds between the stop signal and a forced kill. Defaults to 30.",
        "affinity": "Scheduling preferences and requirements relative to nodes and other pods.",
        "tolerations": "Taints this pod tolerates.",
        "hostNetwork": "Use the node's network namespace.",
        "imagePullSecrets": "Secrets holding registry credentials for pulling the images.",
    },
    "core.v1.Container": {
        "name": "The container's name, unique within the pod (a DNS label).",
        "image": "The image to run.",
        "command": "Replaces the image's entrypoint.",
        "args": "Arguments to the entrypoint; replace the image's default arguments.",
        "env": "Environment variables set in the container.",
        "envFrom": "Sources whose keys all become environment variables.",
        "ports": "Ports the container listens on. Informational, except for named-port lookups.",
        "resources": "Compute resources requested and limits enforced.",
        "volumeMounts": "Pod volumes mounted into the container's filesystem.",
        "livenessProbe": "Periodic check; the container is restarted when it fails.",
        "readinessProbe": "Periodic check; the pod receives service traffic only while it passes.",
        "startupProbe": "Check that must pass once before the other probes start.",
        "imagePullPolicy": "Always, IfNotPresent or Never. Defaults to Always for :latest, else IfNotPresent.",
        "workingDir": "The working directory; defaults to the image's.",
        "securityContext": "Security options of this container.",
    },
    "core.v1.ServiceSpec": {
        "type": "ClusterIP (the default), NodePort, LoadBalancer or ExternalName.",
        "selector": "Traffic goes to the pods with these labels.",
        "ports": "The ports the Service exposes.",
        "clusterIP": "The virtual IP of the Service; allocated unless given. None makes a headless Service.",
        "clusterIPs": "The virtual IPs, one per IP family; the first equals clusterIP.",
        "externalIPs": "Extra addresses the Service also accepts traffic on.",
        "sessionAffinity": "None (the default) or ClientIP: keep a client on one pod.",
        "externalTrafficPolicy": "Cluster or Local: whether node ports may forward to other nodes.",
    },
    "core.v1.ServicePort": {
        "name": "The port's name; required when there are several ports.",
        "port": "The port the Service listens on.",
        "targetPort": "The pod port traffic goes to, as a number or a container port name. "
                      "Defaults to port.",
        "nodePort": "The port opened on every node for NodePort and LoadBalancer Services.",
        "protocol": "TCP (the default), UDP or SCTP.",
    },
    "meta.v1.ObjectMeta": {
        "name": "Unique name within the namespace. Cannot be changed.",
        "generateName": "Prefix from which the server makes a unique name when name is empty.",
        "namespace": "The namespace the object lives in.",
        "labels": "Key/value pairs used to select and group objects.",
        "annotations": "Key/value pairs for tools and people; not used for selection.",
        "uid": "Unique identifier set by the server.",
        "resourceVersion": "Opaque version of the object, changed on every write.",
        "generation": "Increases when the desired state changes. Set by the server.",
        "creationTimestamp": "When the object was created. Set by the server.",
        "deletionTimestamp": "When deletion was requested. Set by the server.",
        "ownerReferences": "Objects this one depends on; it is garbage collected after them.",
        "finalizers": "Tasks that must finish before the object is removed.",
        "managedFields": "Which manager set which fields (server-side apply bookkeeping).",
    },
    "apps.v1.StatefulSetSpec": {
        "replicas": "How many pods to run, named <set>-0 to <set>-(replicas-1). Defaults to 1.",
        "selector": "Label selector of the pods this StatefulSet owns; must match the template's labels. "
                    "Cannot change after creation.",
        "template": "The pod template. Changing it starts a rollout according to updateStrategy.",
        "serviceName": "The headless Service that gives each pod its DNS name; pods get it as their subdomain.",
        "podManagementPolicy": "OrderedReady (the default: create one pod at a time in order, remove in "
                               "reverse order) or Parallel (all at once).",
        "updateStrategy": "How pods are replaced after a template change.",
        "revisionHistoryLimit": "How many ControllerRevisions to keep for rollbacks. Defaults to 10.",
        "minReadySeconds": "Seconds a pod must be ready before it counts as available. Defaults to 0.",
        "volumeClaimTemplates": "Claims each pod gets, named <claim>-<pod>. Stored; kubelite does not "
                                "create the claims yet.",
        "persistentVolumeClaimRetentionPolicy": "Whether the claims of pods are kept or removed when the "
                                                "set is deleted or scaled down.",
        "ordinals": "Where pod numbering starts (ordinals.start, default 0).",
    },
    "apps.v1.StatefulSetUpdateStrategy": {
        "type": "RollingUpdate (the default: replace pods from the highest ordinal down) or OnDelete "
                "(replace a pod only when someone deletes it).",
        "rollingUpdate": "Pacing of a RollingUpdate.",
    },
    "apps.v1.RollingUpdateStatefulSetStrategy": {
        "partition": "Only pods with an ordinal at or above this number are updated. Defaults to 0.",
        "maxUnavailable": "How many pods may be down at once during the update (number or percentage).",
    },
    "apps.v1.DaemonSetSpec": {
        "selector": "Label selector of the pods this DaemonSet owns; must match the template's labels. "
                    "Cannot change after creation.",
        "template": "The pod template; one pod from it runs on every eligible node.",
        "updateStrategy": "How pods are replaced after a template change.",
        "minReadySeconds": "Seconds a pod must be ready before it counts as available. Defaults to 0.",
        "revisionHistoryLimit": "How many ControllerRevisions to keep for rollbacks. Defaults to 10.",
    },
    "apps.v1.DaemonSetUpdateStrategy": {
        "type": "RollingUpdate (the default) or OnDelete (replace a pod only when it is deleted).",
        "rollingUpdate": "Pacing of a RollingUpdate.",
    },
    "apps.v1.RollingUpdateDaemonSet": {
        "maxUnavailable": "How many nodes may be without an available pod during the update (number or "
                          "percentage of eligible nodes, rounded up). Defaults to 1.",
        "maxSurge": "How many nodes may run an old and a new pod at once during the update (number or "
                    "percentage, rounded up). Defaults to 0.",
    },
    "networking.v1.NetworkPolicySpec": {
        "podSelector": "Which pods of the policy's namespace the policy applies to; an empty selector means every pod.",
        "ingress": "Rules for incoming traffic; the selected pods accept what any rule of any policy selecting "
                   "them allows. Empty: nothing is let in.",
        "egress": "Rules for outgoing traffic; the selected pods may send what any rule of any policy selecting "
                  "them allows. Empty: nothing is let out.",
        "policyTypes": "The directions this policy isolates: Ingress, Egress or both. Unset: Ingress, plus "
                       "Egress when egress rules are given.",
    },
    "networking.v1.NetworkPolicyIngressRule": {
        "ports": "Destination ports the rule opens; empty or unset means every port.",
        "from": "Sources the rule admits; empty or unset means every source.",
    },
    "networking.v1.NetworkPolicyEgressRule": {
        "ports": "Destination ports the rule opens; empty or unset means every port.",
        "to": "Destinations the rule allows; empty or unset means every destination.",
    },
    "networking.v1.NetworkPolicyPeer": {
        "podSelector": "Pods chosen by their labels: in the policy's namespace, or in the namespaces "
                       "namespaceSelector picks when that is set too.",
        "namespaceSelector": "Namespaces chosen by their labels; every pod in them unless podSelector narrows it.",
        "ipBlock": "An address range; cannot be combined with the selectors.",
    },
    "networking.v1.NetworkPolicyPort": {
        "protocol": "TCP, UDP or SCTP. Defaults to TCP.",
        "port": "A port number, or the name of a container port of the selected pod. Unset: every port.",
        "endPort": "With a numeric port: the last port of an inclusive range starting at port.",
    },
    "networking.v1.IPBlock": {
        "cidr": "The range, such as 192.168.1.0/24.",
        "except": "Sub-ranges of cidr that are not included.",
    },
    "apps.v1.ControllerRevision": {
        "data": "The patch that turns the owner's object into this revision's pod template.",
        "revision": "The revision number; higher is newer.",
    },
    "admissionregistration.v1.MutatingWebhook": {
        "name": "The webhook's fully qualified name, used in error messages and metrics.",
        "rules": "Which operations on which resources the webhook is called for.",
        "failurePolicy": "Fail refuses the write when the webhook cannot be reached; Ignore lets it through.",
        "sideEffects": "Whether a call changes anything outside the object; dry-run writes only call None or "
                       "NoneOnDryRun webhooks.",
        "timeoutSeconds": "How long to wait for the answer (1 to 30 seconds, 10 by default).",
        "reinvocationPolicy": "IfNeeded calls the webhook once more when a later webhook changed the object.",
    },
    "admissionregistration.v1.ValidatingWebhook": {
        "name": "The webhook's fully qualified name, used in error messages and metrics.",
        "rules": "Which operations on which resources the webhook is called for.",
        "failurePolicy": "Fail refuses the write when the webhook cannot be reached; Ignore lets it through.",
        "timeoutSeconds": "How long to wait for the answer (1 to 30 seconds, 10 by default).",
    },
    "admissionregistration.v1.ValidatingAdmissionPolicySpec": {
        "paramKind": "The kind of the objects a binding may pass to the expressions as params.",
        "matchConstraints": "The requests the policy can apply to; a binding may narrow them further.",
        "validations": "CEL expressions that must all be true for a write to pass.",
        "failurePolicy": "Fail refuses the write when an expression or the binding's params cannot be "
                         "evaluated; Ignore lets it through.",
        "auditAnnotations": "Keys and CEL values recorded for the request in the audit log.",
        "matchConditions": "CEL expressions that must all be true for the policy to look at the request.",
        "variables": "Named CEL expressions the other expressions can use as variables.<name>.",
    },
    "admissionregistration.v1.ValidatingAdmissionPolicyBindingSpec": {
        "policyName": "The ValidatingAdmissionPolicy this binding applies.",
        "paramRef": "Which objects of the policy's paramKind to evaluate the policy with, once each.",
        "matchResources": "Narrows the requests the policy applies to through this binding.",
        "validationActions": "What a failed validation does: Deny refuses the write, Warn returns a warning, "
                             "Audit records it in the audit log.",
    },
    "admissionregistration.v1.ParamKind": {
        "apiVersion": "The group/version of the parameter objects.",
        "kind": "The kind of the parameter objects.",
    },
    "admissionregistration.v1.ParamRef": {
        "name": "One parameter object, by name.",
        "namespace": "Where namespaced parameter objects are looked up; empty means the request's namespace.",
        "selector": "Every parameter object whose labels match, instead of one by name.",
        "parameterNotFoundAction": "Deny refuses requests when no parameter object is found; Allow lets them pass.",
    },
    "admissionregistration.v1.Validation": {
        "expression": "A CEL expression over object, oldObject, request, params, namespaceObject and variables "
                      "that must be true.",
        "message": "What a refused request is told when the expression is false.",
        "messageExpression": "A CEL expression giving that message; it wins over message when it yields a string.",
        "reason": "The status reason (and HTTP code) of a refusal: Invalid by default, Forbidden or "
                  "RequestEntityTooLarge.",
    },
    "admissionregistration.v1.ValidatingAdmissionPolicyStatus": {
        "observedGeneration": "The generation of the policy the server applies.",
        "typeChecking": "Warnings from checking the expressions' types against the matched resources.",
    },
    "policy.v1.PodDisruptionBudgetSpec": {
        "minAvailable": "Selected pods that must still be healthy after an eviction (number or percentage of "
                        "the expected pods, rounded up). Cannot be set together with maxUnavailable.",
        "maxUnavailable": "Selected pods that may be unhealthy after an eviction (number or percentage of the "
                          "expected pods, rounded up). Cannot be set together with minAvailable.",
        "selector": "Label query of the pods the budget covers. An empty selector covers every pod of the "
                    "namespace; a missing one covers none.",
        "unhealthyPodEvictionPolicy": "When a running but not ready pod may be evicted: IfHealthyBudget (only "
                                      "while the budget is met; the default) or AlwaysAllow.",
    },
    "policy.v1.PodDisruptionBudgetStatus": {
        "observedGeneration": "The generation of the budget these numbers were computed for.",
        "disruptedPods": "Pods evicted through the API but not yet seen deleted by the controller, with the "
                         "time of their eviction; entries older than two minutes are dropped.",
        "disruptionsAllowed": "How many more pods may be evicted now.",
        "currentHealthy": "Selected pods that are ready now.",
        "desiredHealthy": "The fewest ready pods the budget accepts.",
        "expectedPods": "How many pods the budget counts on, from the controllers owning the selected pods.",
        "conditions": "DisruptionAllowed is True when at least one pod may be evicted.",
    },
    "policy.v1.Eviction": {
        "deleteOptions": "Options of the delete the eviction turns into (grace period, preconditions, dry run).",
    },
    "core.v1.ResourceQuotaSpec": {
        "hard": "The cap for each resource name (counts like pods, or compute like requests.cpu).",
        "scopes": "Only pods these scopes describe are charged (Terminating, BestEffort, ...).",
        "scopeSelector": "Like scopes, as requirements on scope names (needed for PriorityClass).",
    },
    "core.v1.ResourceQuotaStatus": {
        "hard": "The caps the quota controller enforces now.",
        "used": "What the namespace's charged objects use now, per capped resource.",
    },
    "core.v1.LimitRangeItem": {
        "type": "What the item bounds: Container, Pod or PersistentVolumeClaim.",
        "max": "The most a container or pod may have as a limit (claims: as a request).",
        "min": "The least a container or pod must request.",
        "default": "The limit a container gets when it sets none.",
        "defaultRequest": "The request a container gets when it sets none.",
        "maxLimitRequestRatio": "The largest allowed limit divided by request.",
    },
    "scheduling.v1.PriorityClass": {
        "value": "The priority pods of this class get; higher values are scheduled first.",
        "globalDefault": "Whether pods naming no class get this one; only one class may be the default.",
        "description": "Free text saying when to use this class.",
        "preemptionPolicy": "PreemptLowerPriority (the default) or Never.",
    },
    "core.v1.PersistentVolumeSpec": {
        "capacity": "How much storage the volume offers (the storage key).",
        "accessModes": "How the volume may be mounted: ReadWriteOnce, ReadOnlyMany, ReadWriteMany or "
                       "ReadWriteOncePod.",
        "claimRef": "The claim this volume is bound to, or reserved for when set before binding.",
        "persistentVolumeReclaimPolicy": "What happens once the claim is deleted: Retain keeps the volume "
                                         "(Released), Delete removes it and its storage. Defaults to Retain.",
        "storageClassName": "The class this volume belongs to; only claims of the same class bind it.",
        "nodeAffinity": "The nodes from which the volume can be reached; pods using it are scheduled there.",
        "hostPath": "A directory on the node's own filesystem.",
    },
    "core.v1.PersistentVolumeClaimSpec": {
        "accessModes": "The access modes the volume must offer.",
        "resources": "The minimum size wanted (requests.storage).",
        "storageClassName": "The class of storage wanted; unset takes the cluster's default class, \"\" "
                            "means volumes without a class.",
        "volumeName": "The volume bound to this claim; set it to ask for one volume in particular.",
        "selector": "Labels a volume must carry to be bound to this claim.",
    },
    "storage.v1.StorageClass": {
        "provisioner": "The name of the provisioner that creates this class's volumes.",
        "parameters": "Provisioner-specific settings for new volumes.",
        "reclaimPolicy": "The reclaim policy of volumes this class provisions. Defaults to Delete.",
        "volumeBindingMode": "Immediate binds or provisions as soon as a claim exists; WaitForFirstConsumer "
                             "waits for a pod using it to be scheduled, and provisions on that pod's node.",
        "allowVolumeExpansion": "Whether claims of this class may ask for more storage later.",
    },
}

# Allowed values of string fields whose set is fixed (explain prints them as ENUM).
ENUMS: dict[tuple[str, str], list[str]] = {
    ("apps.v1.DeploymentStrategy", "type"): ["Recreate", "RollingUpdate"],
    ("core.v1.PodSpec", "restartPolicy"): ["Always", "Never", "OnFailure"],
    ("core.v1.Container", "imagePullPolicy"): ["Always", "IfNotPresent", "Never"],
    ("core.v1.ContainerPort", "protocol"): ["SCTP", "TCP", "UDP"],
    ("core.v1.ServicePort", "protocol"): ["SCTP", "TCP", "UDP"],
    ("core.v1.ServiceSpec", "type"): ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
    ("core.v1.ServiceSpec", "sessionAffinity"): ["ClientIP", "None"],
    ("core.v1.ServiceSpec", "externalTrafficPolicy"): ["Cluster", "Local"],
    ("batch.v1.CronJobSpec", "concurrencyPolicy"): ["Allow", "Forbid", "Replace"],
    ("batch.v1.JobSpec", "completionMode"): ["Indexed", "NonIndexed"],
    ("batch.v1.JobSpec", "podReplacementPolicy"): ["Failed", "TerminatingOrFailed"],
    ("networking.v1.HTTPIngressPath", "pathType"): ["Exact", "ImplementationSpecific", "Prefix"],
    ("apps.v1.StatefulSetSpec", "podManagementPolicy"): ["OrderedReady", "Parallel"],
    ("apps.v1.StatefulSetUpdateStrategy", "type"): ["OnDelete", "RollingUpdate"],
    ("apps.v1.DaemonSetUpdateStrategy", "type"): ["OnDelete", "RollingUpdate"],
    ("admissionregistration.v1.ValidatingAdmissionPolicySpec", "failurePolicy"): ["Fail", "Ignore"],
    ("admissionregistration.v1.ParamRef", "parameterNotFoundAction"): ["Allow", "Deny"],
    ("networking.v1.NetworkPolicyPort", "protocol"): ["SCTP", "TCP", "UDP"],
    ("policy.v1.PodDisruptionBudgetSpec", "unhealthyPodEvictionPolicy"): ["AlwaysAllow", "IfHealthyBudget"],
    ("core.v1.PersistentVolumeSpec", "persistentVolumeReclaimPolicy"): ["Delete", "Recycle", "Retain"],
    ("storage.v1.StorageClass", "reclaimPolicy"): ["Delete", "Recycle", "Retain"],
    ("storage.v1.StorageClass", "volumeBindingMode"): ["Immediate", "WaitForFirstConsumer"],
}

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
    "apps.v1.ControllerRevision": "An immutable snapshot of a StatefulSet's or DaemonSet's pod template, "
                                  "kept as rollout history for rollbacks.",
}

GENERIC_DOCS = {
    "apiVersion": "The versioned schema of this object, as group/version (v1 for the core group).",
    "kind": "The type of this object, in CamelCase.",
    "metadata": "Standard object metadata.",
    "spec": "The desired state, written by the user.",
    "status": "The observed state, written by the system. Read-only for users.",
}

FIELD_DOCS: dict[str, dict[str, str]] = {
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
    "apps.v1.ControllerRevision": {
        "data": "The patch that turns the owner's object into this revision's pod template.",
        "revision": "The revision number; higher is newer.",
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
    ("apps.v1.StatefulSetSpec", "podManagementPolicy"): ["OrderedReady", "Parallel"],
    ("apps.v1.StatefulSetUpdateStrategy", "type"): ["OnDelete", "RollingUpdate"],
    ("apps.v1.DaemonSetUpdateStrategy", "type"): ["OnDelete", "RollingUpdate"],
}

"""Server-side printing: turn objects into a metav1.Table the way kube-apiserver does.

``kubectl get`` asks for ``as=Table`` and prints whatever columns and cells come back, so
these match upstream's ``pkg/printers/internalversion/printers.go`` (v1.28): the column
definitions' names, types, formats and priorities, and every cell rule.  The column
descriptions, which clients only display, are kubelite's own wording.
The server always renders the wide columns (priority 1); kubectl hides them unless
``-o wide``.  Kinds without a printer get apiserver's default convertor: Name and
"Created At".

Everything here is pure and works on plain dicts.  ``now`` is passed in once per table so
a 10,000-pod list costs one clock read, and so tests can pin ages.

The package keeps data and code apart: ``columns`` holds the column definitions (with
our own descriptions), ``rows`` the cell rules of each kind, ``format`` the clock and
small formatters they share; this module pairs columns with rows per kind and builds the
Table.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from kubelite.api.printers import columns, rows
from kubelite.api.printers.format import Clock

Obj = dict[str, Any]
Cells = list[Any]
_UTC = _dt.UTC

RowFn = Callable[[Obj, Clock], Cells]

# (apiVersion, kind) -> (columns, row function).  Pods are special-cased (row conditions).
_PRINTERS: dict[tuple[str, str], tuple[list[Obj], RowFn]] = {
    ("apps/v1", "Deployment"): (columns.DEPLOYMENT, rows.deployment_row),
    ("apps/v1", "ReplicaSet"): (columns.REPLICASET, rows.replicaset_row),
    ("apps/v1", "StatefulSet"): (columns.STATEFULSET, rows.statefulset_row),
    ("apps/v1", "DaemonSet"): (columns.DAEMONSET, rows.daemonset_row),
    ("apps/v1", "ControllerRevision"): (columns.CONTROLLERREVISION, rows.controllerrevision_row),
    ("v1", "ReplicationController"): (columns.REPLICATIONCONTROLLER, rows.replicationcontroller_row),
    ("batch/v1", "Job"): (columns.JOB, rows.job_row),
    ("batch/v1", "CronJob"): (columns.CRONJOB, rows.cronjob_row),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): (columns.HORIZONTALPODAUTOSCALER, rows.hpa_row),
    ("autoscaling/v1", "HorizontalPodAutoscaler"): (columns.HORIZONTALPODAUTOSCALER, rows.hpa_v1_row),
    ("metrics.k8s.io/v1beta1", "NodeMetrics"): (columns.NODEMETRICS, rows.nodemetrics_row),
    ("metrics.k8s.io/v1beta1", "PodMetrics"): (columns.PODMETRICS, rows.podmetrics_row),
    ("v1", "Service"): (columns.SERVICE, rows.service_row),
    ("v1", "Endpoints"): (columns.ENDPOINTS, rows.endpoints_row),
    ("discovery.k8s.io/v1", "EndpointSlice"): (columns.ENDPOINTSLICE, rows.endpointslice_row),
    ("networking.k8s.io/v1", "Ingress"): (columns.INGRESS, rows.ingress_row),
    ("networking.k8s.io/v1", "IngressClass"): (columns.INGRESSCLASS, rows.ingressclass_row),
    ("v1", "Node"): (columns.NODE, rows.node_row),
    ("v1", "Event"): (columns.EVENT, rows.event_row),
    ("events.k8s.io/v1", "Event"): (columns.EVENT, rows.events_v1_row),
    ("v1", "Namespace"): (columns.NAMESPACE, rows.namespace_row),
    ("v1", "ConfigMap"): (columns.CONFIGMAP, rows.configmap_row),
    ("v1", "Secret"): (columns.SECRET, rows.secret_row),
    ("v1", "ServiceAccount"): (columns.SERVICEACCOUNT, rows.serviceaccount_row),
    ("coordination.k8s.io/v1", "Lease"): (columns.LEASE, rows.lease_row),
    ("apiregistration.k8s.io/v1", "APIService"): (columns.APISERVICE, rows.apiservice_row),
    ("rbac.authorization.k8s.io/v1", "Role"): (columns.ROLE, rows.default_row),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): (columns.ROLE, rows.default_row),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): (columns.ROLEBINDING, rows.binding_row),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): (columns.CLUSTERROLEBINDING, rows.binding_row),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"):
        (columns.WEBHOOK_CONFIGURATION, rows.webhook_configuration_row),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"):
        (columns.WEBHOOK_CONFIGURATION, rows.webhook_configuration_row),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"):
        (columns.VALIDATING_ADMISSION_POLICY, rows.validating_admission_policy_row),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"):
        (columns.VALIDATING_ADMISSION_POLICY_BINDING, rows.validating_admission_policy_binding_row),
    ("networking.k8s.io/v1", "NetworkPolicy"): (columns.NETWORKPOLICY, rows.networkpolicy_row),
    ("policy/v1", "PodDisruptionBudget"): (columns.PODDISRUPTIONBUDGET, rows.poddisruptionbudget_row),
    ("v1", "ResourceQuota"): (columns.RESOURCEQUOTA, rows.resourcequota_row),
    ("scheduling.k8s.io/v1", "PriorityClass"): (columns.PRIORITYCLASS, rows.priorityclass_row),
    ("v1", "PersistentVolume"): (columns.PERSISTENTVOLUME, rows.persistentvolume_row),
    ("v1", "PersistentVolumeClaim"): (columns.PERSISTENTVOLUMECLAIM, rows.persistentvolumeclaim_row),
    ("storage.k8s.io/v1", "StorageClass"): (columns.STORAGECLASS, rows.storageclass_row),
}


def columns_for(kind: str, api_version: str) -> list[Obj]:
    """The column definitions upstream serves for a kind (a fresh copy)."""
    if (api_version, kind) == ("v1", "Pod"):
        cols = columns.POD
    else:
        cols = _PRINTERS.get((api_version, kind), (columns.DEFAULT, rows.default_row))[0]
    return [dict(c) for c in cols]


def _row_object(obj: Obj, kind: str, api_version: str, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        if obj.get("kind") and obj.get("apiVersion"):
            return obj
        return {"kind": kind, "apiVersion": api_version, **obj}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def table_for(kind: str, api_version: str, objs: list[Obj], *, include_object: str = "Metadata",
              resource_version: str = "", no_headers: bool = False, now: _dt.datetime | None = None,
              continue_token: str = "", remaining_item_count: int | None = None) -> Obj:
    """A meta.k8s.io/v1 Table for objects of one kind, as kube-apiserver renders it."""
    if include_object not in ("None", "Metadata", "Object"):
        raise ValueError(f"includeObject must be None, Metadata or Object, not {include_object!r}")
    clock = Clock(now or _dt.datetime.now(_UTC))
    is_pod = (api_version, kind) == ("v1", "Pod")
    row_fn = _PRINTERS.get((api_version, kind), (columns.DEFAULT, rows.default_row))[1]
    table_rows = []
    for obj in objs:
        if not isinstance(obj.get("metadata"), dict):
            obj = {**obj, "metadata": {}}
        conditions = None
        if is_pod:
            cells, conditions = rows.pod_row(obj, clock)
        else:
            cells = row_fn(obj, clock)
        row: Obj = {"cells": cells}
        if conditions:
            row["conditions"] = [dict(c) for c in conditions]
        o = _row_object(obj, kind, api_version, include_object)
        if o is not None:
            row["object"] = o
        table_rows.append(row)
    metadata: Obj = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    if remaining_item_count is not None:
        metadata["remainingItemCount"] = remaining_item_count
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": None if no_headers else columns_for(kind, api_version), "rows": table_rows}

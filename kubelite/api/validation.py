"""Validation entry points: one ``validate`` for every kind kubelite serves.

The per-kind rules live in ``validation_pod`` (pods, templates), ``validation_apps``
(Deployment, ReplicaSet) and ``validation_core`` (everything else); the field-error
vocabulary and name rules in ``validation_common``.  Messages and field paths are
upstream's, so kubectl prints ``The Deployment "x" is invalid: spec.replicas: Invalid
value: -1: must be greater than or equal to 0`` exactly as a real cluster does.

``generation_changed`` encodes the registry strategies' rule for metadata.generation.
"""
from __future__ import annotations

from typing import Any

from kubelite.api import autoscaling
from kubelite.api import validation_apiregistration as apiregistration
from kubelite.api import validation_apps as apps
from kubelite.api import validation_batch as batch
from kubelite.api import validation_core as core
from kubelite.api import validation_ingress as ingress
from kubelite.api import validation_netpol as netpol
from kubelite.api import validation_pod as pod
from kubelite.api import validation_policy as policy
from kubelite.api import validation_quota as quota
from kubelite.api import validation_rbac as rbac
from kubelite.api import validation_rc as rc
from kubelite.api import validation_storage as storage
from kubelite.api import validation_webhooks as webhooks
from kubelite.api import validation_workloads as workloads
from kubelite.api.errors import Cause
from kubelite.api.validation_common import name_is_dns_subdomain, validate_object_meta, validate_object_meta_update

__all__ = ["validate", "validate_status", "generation_changed", "node_port_range_errors"]

node_port_range_errors = core.node_port_range_errors


def _dedupe(errs: list[Cause]) -> list[Cause]:
    # ErrorList.ToAggregate drops repeats of the same "field: message".
    seen: set[tuple[str, str]] = set()
    out = []
    for c in errs:
        k = (c.field, c.message)
        if k not in seen:
            seen.add(k)
            out.append(c)
    return out


def validate(kind: str, api_version: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
    """Causes for an invalid create (``old`` None) or update; [] when valid."""
    if kind == "Pod":
        errs = pod.validate_pod_create(obj) if old is None else pod.validate_pod_update(obj, old)
    elif kind == "Deployment":
        errs = apps.validate_deployment(obj, old)
    elif kind == "ReplicaSet":
        errs = apps.validate_replicaset(obj, old)
    elif kind == "ReplicationController":
        errs = rc.validate_replication_controller(obj, old)
    elif kind == "Job" and api_version == "batch/v1":
        errs = batch.validate_job(obj, old)
    elif kind == "CronJob" and api_version == "batch/v1":
        errs = batch.validate_cronjob(obj, old)
    elif kind == "HorizontalPodAutoscaler" and api_version.startswith("autoscaling/"):
        errs = autoscaling.validate_hpa(obj, old, api_version)
    elif kind == "StatefulSet" and api_version == "apps/v1":
        errs = workloads.validate_statefulset(obj, old)
    elif kind == "DaemonSet" and api_version == "apps/v1":
        errs = workloads.validate_daemonset(obj, old)
    elif kind == "ControllerRevision" and api_version == "apps/v1":
        errs = workloads.validate_controller_revision(obj, old)
    elif kind == "Ingress" and api_version == "networking.k8s.io/v1":
        errs = ingress.validate_ingress(obj, old)
    elif kind == "IngressClass" and api_version == "networking.k8s.io/v1":
        errs = ingress.validate_ingress_class(obj, old)
    elif kind == "PodDisruptionBudget" and api_version == "policy/v1":
        errs = policy.validate_pdb(obj, old)
    elif kind == "PersistentVolumeClaim" and api_version == "v1":
        errs = storage.validate_pvc(obj, old)
    elif kind == "PersistentVolume" and api_version == "v1":
        errs = storage.validate_pv(obj, old)
    elif kind == "StorageClass" and api_version == "storage.k8s.io/v1":
        errs = storage.validate_storage_class(obj, old)
    elif kind == "Service":
        errs = core.validate_service(obj, old)
    elif kind == "Namespace":
        errs = core.validate_namespace(obj, old)
    elif kind == "Node":
        errs = core.validate_node(obj, old)
    elif kind == "ConfigMap":
        errs = core.validate_configmap(obj, old)
    elif kind == "Secret":
        errs = core.validate_secret(obj, old)
    elif kind == "ServiceAccount":
        errs = core.validate_service_account(obj, old)
    elif kind == "Endpoints":
        errs = core.validate_endpoints(obj, old)
    elif kind == "EndpointSlice":
        errs = core.validate_endpoint_slice(obj, old)
    elif kind == "Lease":
        errs = core.validate_lease(obj, old)
    elif kind == "Event":
        errs = core.validate_event(obj, api_version, old)
    elif kind in rbac.KINDS and api_version == "rbac.authorization.k8s.io/v1":
        errs = rbac.validate_rbac(kind, obj, old)
    elif kind in webhooks.KINDS and api_version == webhooks.GROUP_VERSION:
        errs = webhooks.validate_webhook_configuration(kind, obj, old)
    elif kind in webhooks.POLICY_KINDS and api_version == webhooks.GROUP_VERSION:
        errs = webhooks.validate_policy(kind, obj, old)
    elif kind == "NetworkPolicy" and api_version == "networking.k8s.io/v1":
        errs = netpol.validate_network_policy(obj, old)
    elif kind == "ResourceQuota" and api_version == "v1":
        errs = quota.validate_resource_quota(obj, old)
    elif kind == "LimitRange" and api_version == "v1":
        errs = quota.validate_limit_range(obj, old)
    elif kind == "PriorityClass" and api_version == "scheduling.k8s.io/v1":
        errs = quota.validate_priority_class(obj, old)
    elif kind == "APIService" and api_version == "apiregistration.k8s.io/v1":
        errs = apiregistration.validate_apiservice(obj, old)
    elif kind == "PodTemplate":
        # ValidatePodTemplate: the template is a struct upstream, so a missing one is empty.
        errs = validate_object_meta(obj, True, name_is_dns_subdomain) if old is None else \
            validate_object_meta_update(obj, old)
        errs += pod.validate_pod_template(obj.get("template") or {}, "template")
    elif old is None:
        errs = validate_object_meta(obj, bool((obj.get("metadata") or {}).get("namespace")), name_is_dns_subdomain)
    else:
        errs = validate_object_meta_update(obj, old)
    return _dedupe(errs)


def validate_status(kind: str, api_version: str, obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """Causes for a write to the /status subresource."""
    if kind in ("Deployment", "ReplicaSet"):
        return _dedupe(apps.validate_apps_status(kind, obj, old))
    if kind == "ReplicationController":
        return _dedupe(rc.validate_rc_status(obj, old))
    if kind in ("StatefulSet", "DaemonSet") and api_version == "apps/v1":
        return _dedupe(workloads.validate_workload_status(kind, obj, old))
    if kind == "Pod":
        return _dedupe(pod.validate_pod_status_update(obj, old))
    if kind == "PersistentVolumeClaim" and api_version == "v1":
        return _dedupe(storage.validate_pvc_status(obj, old))
    if kind == "PersistentVolume" and api_version == "v1":
        return _dedupe(storage.validate_pv_status(obj, old))
    if kind == "Job" and api_version == "batch/v1":
        return _dedupe(batch.validate_job_status(obj, old))
    if kind == "CronJob" and api_version == "batch/v1":
        return _dedupe(batch.validate_cronjob_status(obj, old))
    if kind == "HorizontalPodAutoscaler" and api_version.startswith("autoscaling/"):
        return _dedupe(autoscaling.validate_hpa_status(obj, old))
    if kind == "Ingress" and api_version == "networking.k8s.io/v1":
        return _dedupe(ingress.validate_ingress_status(obj, old))
    if kind == "PodDisruptionBudget" and api_version == "policy/v1":
        return _dedupe(policy.validate_pdb_status(obj, old))
    if kind == "ResourceQuota" and api_version == "v1":
        return _dedupe(quota.validate_resource_quota_status(obj, old))
    if kind == "APIService" and api_version == "apiregistration.k8s.io/v1":
        return _dedupe(apiregistration.validate_apiservice_status(obj, old))
    return _dedupe(validate_object_meta_update(obj, old))


def generation_changed(kind: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether an update (not a /status write) bumps metadata.generation.

    Deployment: spec or annotations changed.  ReplicaSet and the other workload kinds:
    spec changed.
    Kinds whose strategy does not track generation (Service, Pod, ConfigMap…) never bump it.
    """
    spec_changed = (old.get("spec") or {}) != (new.get("spec") or {})
    if kind == "Deployment":
        oa = (old.get("metadata") or {}).get("annotations") or {}
        na = (new.get("metadata") or {}).get("annotations") or {}
        return spec_changed or oa != na
    if kind in ("ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController",
                "Ingress", "IngressClass"):
        return spec_changed
    if kind == "NetworkPolicy":
        return spec_changed
    if kind == "PodDisruptionBudget":
        return spec_changed
    return False

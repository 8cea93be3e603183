"""HorizontalPodAutoscaler API pieces: v1 ↔ v2 conversion, defaults, validation, the TARGETS cell."""
from __future__ import annotations

import json

import pytest

from kubelite.api import autoscaling as a
from kubelite.api.printers.rows import format_hpa_metrics

REF = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}


def v2(**spec) -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "d"}, "spec": {"scaleTargetRef": REF, "maxReplicas": 5, **spec}}


def cpu(util: int) -> dict:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                      "averageUtilization": util}}}


def test_v2_defaults():
    obj = v2()
    a.default_v2(obj)
    assert obj["spec"]["minReplicas"] == 1 and obj["spec"]["metrics"] == [cpu(80)]
    obj = v2(behavior={"scaleDown": {"stabilizationWindowSeconds": 60}})
    a.default_v2(obj)
    b = obj["spec"]["behavior"]
    assert b["scaleUp"] == {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert b["scaleDown"] == {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                              "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def test_v2_to_v1_keeps_what_v1_cannot_say_in_annotations():
    mem = {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                         "averageValue": "100Mi"}}}
    obj = v2(minReplicas=2, metrics=[cpu(60), mem], behavior={"scaleUp": {"selectPolicy": "Min"}})
    cond = {"type": "AbleToScale", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z",
            "reason": "ReadyForNewScale", "message": "m"}
    obj["status"] = {"currentReplicas": 2, "desiredReplicas": 3, "conditions": [cond], "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 42, "averageValue": "42m"}}}]}
    one = a.v2_to_v1(obj)
    assert one["spec"] == {"scaleTargetRef": REF, "minReplicas": 2, "maxReplicas": 5,
                           "targetCPUUtilizationPercentage": 60}
    assert one["status"] == {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 42}
    ann = one["metadata"]["annotations"]
    assert json.loads(ann[a.METRICS_ANNOTATION]) == [mem]
    assert json.loads(ann[a.CONDITIONS_ANNOTATION]) == [cond]
    assert json.loads(ann[a.BEHAVIOR_ANNOTATION]) == {"scaleUp": {"selectPolicy": "Min"}}
    back = a.v1_to_v2(one)
    assert back["spec"]["metrics"] == [cpu(60), mem]
    assert back["spec"]["behavior"]["scaleUp"]["selectPolicy"] == "Min"
    assert back["status"]["conditions"] == [cond]
    assert "annotations" not in back["metadata"]


def test_v1_without_target_gets_the_v2_default():
    one = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
           "spec": {"scaleTargetRef": REF, "maxReplicas": 3}}
    assert a.v1_to_v2(one)["spec"]["metrics"] == [cpu(80)]


@pytest.mark.parametrize("spec,message", [
    ({"minReplicas": 0}, "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"),
    ({"minReplicas": 6}, "spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`"),
    ({"scaleTargetRef": {"kind": "Deployment"}}, "spec.scaleTargetRef.name: Required value"),
    ({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]},
     "spec.metrics[0].resource.target.averageUtilization: Required value: must set averageUtilization when type "
     "is Utilization"),
    ({"metrics": [{"type": "Bogus"}]}, 'spec.metrics[0].type: Unsupported value: "Bogus"'),
    ({"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}}},
     "spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 1801: must be less than or equal to 1800"),
    ({"behavior": {"scaleDown": {"selectPolicy": "Most"}}},
     'spec.behavior.scaleDown.selectPolicy: Unsupported value: "Most"'),
])
def test_validation_messages(spec, message):
    obj = v2(**spec)
    errs = a.validate_hpa(obj, None, "autoscaling/v2")
    texts = [f"{c.field}: {c.message}" for c in errs]
    assert any(t.startswith(message) for t in texts), texts


def test_valid_hpa_has_no_errors():
    obj = v2(minReplicas=1, metrics=[cpu(50)])
    a.default_v2(obj)
    assert a.validate_hpa(obj, None, "autoscaling/v2") == []


@pytest.mark.parametrize("specs,statuses,cell", [
    (None, None, "<none>"),
    ([cpu(80)], None, "cpu: <unknown>/80%"),
    ([cpu(80)], [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 7}}}],
     "cpu: 7%/80%"),
    ([{"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}}],
     [{"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "300Mi"}}}],
     "memory: 300Mi/1Gi"),
    ([{"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}],
     None, "<unknown>/10"),
    ([{"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "AverageValue",
                                                                             "averageValue": "3"}}}],
     None, "<unknown>/3 (avg)"),
    ([cpu(10), cpu(20), cpu(30), cpu(40)], None,
     "cpu: <unknown>/10%, cpu: <unknown>/20% + 2 more..."),
])
def test_targets_cell_as_format_hpa_metrics(specs, statuses, cell):
    assert format_hpa_metrics(specs, statuses) == cell

"""Table tests of the StatefulSet, DaemonSet and ControllerRevision arithmetic, with the
worked examples of upstream's unit and e2e tests (partition and maxUnavailable for
StatefulSets; surge and unavailability for DaemonSets; node eligibility; the revision hash)."""
from __future__ import annotations

import datetime as _dt

import pytest

from kubelite.api.defaults import apply_defaults
from kubelite.api.validation import validate
from kubelite.controllers import daemonset as dsc
from kubelite.controllers import history as hist
from kubelite.controllers import statefulset as ssc

NOW = _dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=_dt.UTC)
LONG_AGO = "2026-01-01T11:00:00Z"


def _pod(name: str, *, revision: str = "", ready: bool = True, phase: str = "Running", node: str = "",
         labels: dict | None = None, created: str = LONG_AGO, deleting: bool = False) -> dict:
    lbl = dict(labels or {})
    if revision:
        lbl[ssc.REVISION_LABEL] = revision
    md: dict = {"name": name, "namespace": "ns", "labels": lbl, "creationTimestamp": created, "uid": name}
    if deleting:
        md["deletionTimestamp"] = LONG_AGO
    status: dict = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": LONG_AGO}]}
    spec: dict = {"nodeName": node} if node else {}
    return {"metadata": md, "spec": spec, "status": status}


def _sts(replicas: int, *, partition: int | None = 0, max_unavailable: int | str | None = None,
         strategy: str = "RollingUpdate", current_replicas: int = 0) -> dict:
    ru: dict | None = None
    if strategy == "RollingUpdate" and (partition is not None or max_unavailable is not None):
        ru = {}
        if partition is not None:
            ru["partition"] = partition
        if max_unavailable is not None:
            ru["maxUnavailable"] = max_unavailable
    us: dict = {"type": strategy}
    if ru is not None:
        us["rollingUpdate"] = ru
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {"replicas": replicas, "updateStrategy": us, "serviceName": "web",
                     "selector": {"matchLabels": {"app": "web"}}},
            "status": {"currentReplicas": current_replicas}}


def _web(n: int, rev: str = "old", **kw) -> list[dict]:
    return [_pod(f"web-{i}", revision=rev, **kw) for i in range(n)]


# --- StatefulSet: partition and maxUnavailable -------------------------------------------

@pytest.mark.parametrize("replicas,partition,max_unavailable,unhealthy,updated,expected", [
    # one at a time, highest ordinal first (the classic RollingUpdate)
    (3, 0, None, set(), set(), ["web-2"]),
    # canary: partition 2 of 3 only ever touches web-2 …
    (3, 2, None, set(), set(), ["web-2"]),
    (3, 2, None, set(), {2}, []),
    # … a partition equal to replicas updates nothing
    (3, 3, None, set(), set(), []),
    # phased roll-out: partition 1 after web-2 is done takes web-1
    (3, 1, None, set(), {2}, ["web-1"]),
    # an unhealthy updated pod above the target halts the roll-out
    (3, 0, None, {2}, {2}, []),
    # maxUnavailable 2 of 5: the two highest ordinals at once
    (5, 0, 2, set(), set(), ["web-4", "web-3"]),
    # one replica already unavailable leaves room for one more
    (5, 0, 2, {4}, {4}, ["web-3"]),
    # as many unavailable as allowed: nothing more
    (5, 0, 2, {4, 3}, {4, 3}, []),
    # percentages round down, never below 1: 40% of 5 is 2, 10% of 5 is 1
    (5, 0, "40%", set(), set(), ["web-4", "web-3"]),
    (5, 0, "10%", set(), set(), ["web-4"]),
    # the partition bounds maxUnavailable too
    (5, 3, 3, set(), set(), ["web-4", "web-3"]),
])
def test_statefulset_rolling_update_victims(replicas, partition, max_unavailable, unhealthy, updated, expected):
    sts = _sts(replicas, partition=partition, max_unavailable=max_unavailable)
    pods = [_pod(f"web-{i}", revision="new" if i in updated else "old", ready=i not in unhealthy)
            for i in range(replicas)]
    victims = ssc.rolling_update_victims(sts, pods, "new", NOW)
    assert [p["metadata"]["name"] for p in victims] == expected


@pytest.mark.parametrize("value,replicas,expected", [(None, 5, 1), (2, 5, 2), ("40%", 5, 2), ("10%", 5, 1),
                                                      ("50%", 3, 1), ("100%", 4, 4), (0, 3, 1)])
def test_statefulset_max_unavailable_scaling(value, replicas, expected):
    assert ssc.max_unavailable(_sts(replicas, max_unavailable=value)) == expected


@pytest.mark.parametrize("partition,ordinal,current", [(2, 0, True), (2, 1, True), (2, 2, False), (0, 0, False)])
def test_statefulset_recreated_pods_keep_the_current_revision_below_the_partition(partition, ordinal, current):
    assert ssc.uses_current_revision(_sts(3, partition=partition), ordinal) is current


def test_statefulset_pod_identity_and_hostname():
    sts = _sts(3)
    tmpl = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    sts["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "www"}, "spec": {}}]
    pod = ssc.new_pod(sts, tmpl, 2, "web-abc")
    assert pod["metadata"]["name"] == "web-2"
    assert pod["metadata"]["labels"] == {"app": "web", ssc.POD_NAME_LABEL: "web-2", ssc.POD_INDEX_LABEL: "2",
                                         ssc.REVISION_LABEL: "web-abc"}
    assert pod["spec"]["hostname"] == "web-2" and pod["spec"]["subdomain"] == "web"
    assert pod["spec"]["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-2"}}]
    assert ssc.identity_matches(sts, pod) and ssc.storage_matches(sts, pod)
    pod["metadata"]["labels"].pop(ssc.POD_NAME_LABEL)
    assert not ssc.identity_matches(sts, pod)
    assert ssc.parent_and_ordinal({"metadata": {"name": "my-web-12"}}) == ("my-web", 12)
    assert ssc.parent_and_ordinal({"metadata": {"name": "web"}}) == ("", -1)


def test_statefulset_status_counts_and_rollout_completion():
    pods = [_pod("web-0", revision="r1"), _pod("web-1", revision="r2"), _pod("web-2", revision="r2", ready=False),
            _pod("web-3", revision="r2", deleting=True)]
    c = ssc.compute_replica_status(pods, 0, "r1", "r2", NOW)
    assert (c.replicas, c.ready, c.available, c.current, c.updated) == (4, 3, 3, 1, 2)
    sts = _sts(2)
    st = {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "currentReplicas": 0,
          "currentRevision": "r1", "updateRevision": "r2"}
    ssc.complete_rolling_update(sts, st)
    assert st["currentRevision"] == "r2" and st["currentReplicas"] == 2
    st = {"replicas": 2, "readyReplicas": 1, "updatedReplicas": 2, "currentRevision": "r1", "updateRevision": "r2"}
    ssc.complete_rolling_update(sts, st)
    assert st["currentRevision"] == "r1"


def test_statefulset_min_ready_seconds_gates_availability():
    just_ready = _pod("web-0", revision="r")
    just_ready["status"]["conditions"][0]["lastTransitionTime"] = "2026-01-01T11:59:55Z"
    c = ssc.compute_replica_status([just_ready], 10, "r", "r", NOW)
    assert (c.ready, c.available) == (1, 0)


# --- ControllerRevision history -----------------------------------------------------------

def test_controller_revision_patch_hash_and_name():
    sts = _sts(1)
    sts["spec"]["template"] = {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "c", "image": "a<b>&c"}]}}
    data = hist.template_patch(sts)
    assert data["spec"]["template"]["$patch"] == "replace"
    raw = hist.go_json(data)
    # Go's encoder: sorted keys, no spaces, HTML characters escaped, zero structs present.
    assert raw.startswith(b'{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,')
    assert b"a\\u003cb\\u003e\\u0026c" in raw and b'"resources":{}' in raw
    # FNV-1 (not 1a) of the bytes, then of the collision count's digits: known vectors.
    assert hist.fnv32(b"") == 0x811C9DC5 and hist.fnv32(b"a") == 0x050C5D7E
    assert hist.hash_revision({}, None) == hist.safe_encode(str(hist.fnv32(b"{}")))
    assert hist.hash_revision({}, 12) == hist.safe_encode(str(hist.fnv32(b"12", hist.fnv32(b"{}"))))
    h0, h1 = hist.hash_revision(data, 0), hist.hash_revision(data, 1)
    assert h0 != h1 and h0 == hist.hash_revision(data, 0)
    assert set(h0) <= set("bcdfghjklmnpqrstvwxz2456789")
    rev = hist.new_revision(sts, "StatefulSet", {"app": "web"}, data, 3, 0)
    assert rev["metadata"]["name"] == f"web-{h0}" and rev["revision"] == 3
    assert rev["metadata"]["labels"] == {"app": "web", hist.HASH_LABEL: h0}
    assert hist.template_of(rev) == sts["spec"]["template"] | {
        "spec": {"containers": [{"name": "c", "image": "a<b>&c", "resources": {}}]}}
    assert hist.revision_name("x" * 300, "h") == "x" * 223 + "-h"


def test_controller_revision_order_and_truncation():
    def rev(name: str, n: int) -> dict:
        return {"metadata": {"name": name, "creationTimestamp": LONG_AGO}, "revision": n, "data": {"n": n}}
    revs = [rev("c", 3), rev("a", 1), rev("b", 2), rev("d", 4)]
    assert [r["metadata"]["name"] for r in hist.sort_revisions(revs)] == ["a", "b", "c", "d"]
    assert hist.next_revision(revs) == 5 and hist.next_revision([]) == 1
    # live revisions (used by pods, current, update) never count against the limit
    gone = hist.revisions_to_truncate(revs, {"d", "a"}, 1)
    assert [r["metadata"]["name"] for r in gone] == ["b"]
    assert hist.find_equal_revisions(revs, rev("x", 9) | {"data": {"n": 2}}) == [revs[2]]


# --- DaemonSet: node eligibility ----------------------------------------------------------

def _node(name: str, labels: dict | None = None, taints: list | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def _ds(*, node_selector: dict | None = None, tolerations: list | None = None, affinity: dict | None = None,
        max_unavailable=1, max_surge=0, strategy: str = "RollingUpdate", min_ready: int = 0) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "x"}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    if affinity:
        spec["affinity"] = affinity
    us: dict = {"type": strategy}
    if strategy == "RollingUpdate":
        us["rollingUpdate"] = {"maxUnavailable": max_unavailable, "maxSurge": max_surge}
    return {"metadata": {"name": "ds", "namespace": "ns", "uid": "u", "annotations": {dsc.TEMPLATE_GENERATION: "2"}},
            "spec": {"selector": {"matchLabels": {"app": "ds"}}, "updateStrategy": us, "minReadySeconds": min_ready,
                     "template": {"metadata": {"labels": {"app": "ds"}}, "spec": spec}}}


@pytest.mark.parametrize("node,ds,expected", [
    (_node("n1"), _ds(), (True, True)),
    (_node("n1", {"disk": "ssd"}), _ds(node_selector={"disk": "ssd"}), (True, True)),
    (_node("n1"), _ds(node_selector={"disk": "ssd"}), (False, False)),
    # an untolerated NoSchedule taint: no new pod, but a running one may stay
    (_node("n1", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]), _ds(), (False, True)),
    # an untolerated NoExecute taint: the pod must go
    (_node("n1", taints=[{"key": "k", "effect": "NoExecute"}]), _ds(), (False, False)),
    (_node("n1", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
     _ds(tolerations=[{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}]), (True, True)),
    # the automatic tolerations: not-ready, unreachable and cordoned nodes still run daemons
    (_node("n1", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]), _ds(), (True, True)),
    (_node("n1", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]), _ds(), (True, True)),
    # network-unavailable is tolerated only by host-network daemons
    (_node("n1", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]), _ds(),
     (False, True)),
    (_node("n1", {"zone": "a"}), _ds(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}),
     (False, False)),
    (_node("n1", {"zone": "b"}), _ds(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}),
     (True, True)),
])
def test_daemonset_node_should_run(node, ds, expected):
    assert dsc.node_should_run(node, ds) == expected


def test_daemonset_pod_is_pinned_to_its_node_by_affinity():
    aff = dsc.node_name_affinity({"podAntiAffinity": {"x": 1}}, "n7")
    assert aff["podAntiAffinity"] == {"x": 1}
    assert aff["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}
    assert dsc.target_node({"spec": {"affinity": aff}}) == "n7"
    assert dsc.target_node({"spec": {"nodeName": "n2", "affinity": aff}}) == "n2"


# --- DaemonSet: surge and unavailability --------------------------------------------------

@pytest.mark.parametrize("max_surge,max_unavailable,desired,expected", [
    (0, 1, 5, (0, 1)),
    (0, "50%", 5, (0, 3)),     # percentages round up
    ("20%", 0, 5, (1, 0)),
    ("30%", 0, 5, (2, 0)),
    (0, 0, 5, (0, 1)),         # impossible configuration: fall back to one unavailable
    (0, 0, 0, (0, 0)),
])
def test_daemonset_surge_and_unavailable_counts(max_surge, max_unavailable, desired, expected):
    ds = _ds(max_surge=max_surge, max_unavailable=max_unavailable)
    assert dsc.surge_and_unavailable(ds, desired) == expected


def _fleet(n: int) -> list[dict]:
    return [_node(f"n{i}") for i in range(n)]


def _node_pods(specs: dict[str, list[tuple[str, bool]]]) -> dict[str, list[dict]]:
    """{node: [(hash, ready), …]} → pods."""
    out = {}
    for node, pods in specs.items():
        out[node] = [_pod(f"p-{node}-{i}", ready=ready, node=node, labels={dsc.HASH_LABEL: h})
                     for i, (h, ready) in enumerate(pods)]
    return out


def test_daemonset_rolling_update_replaces_max_unavailable_old_pods_at_a_time():
    nodes = _fleet(5)
    pods = _node_pods({f"n{i}": [("old", True)] for i in range(5)})
    plan = dsc.rolling_update_plan(_ds(max_unavailable=2), nodes, pods, "new", NOW)
    assert plan.delete == ["p-n0-0", "p-n1-0"] and plan.create_on == []
    # a node still waiting for its new pod counts as unavailable
    pods["n0"] = []
    plan = dsc.rolling_update_plan(_ds(max_unavailable=2), nodes, pods, "new", NOW)
    assert plan.delete == ["p-n1-0"]


def test_daemonset_rolling_update_replaces_every_unavailable_old_pod():
    # upstream: old pods that are not ready are replaced whatever maxUnavailable says
    nodes = _fleet(3)
    pods = _node_pods({f"n{i}": [("old", False)] for i in range(3)})
    plan = dsc.rolling_update_plan(_ds(max_unavailable=1), nodes, pods, "new", NOW)
    assert sorted(plan.delete) == ["p-n0-0", "p-n1-0", "p-n2-0"]


def test_daemonset_surge_starts_new_pods_beside_old_ones_then_deletes_the_old():
    nodes = _fleet(5)
    pods = _node_pods({f"n{i}": [("old", True)] for i in range(5)})
    plan = dsc.rolling_update_plan(_ds(max_surge=2, max_unavailable=0), nodes, pods, "new", NOW)
    assert plan.create_on == ["n0", "n1"] and plan.delete == []
    # n0's new pod is available: its old pod goes; n1's is still starting and holds a surge slot
    pods["n0"] += _node_pods({"n0": [("old", True), ("new", True)]})["n0"][1:]
    pods["n1"] += _node_pods({"n1": [("old", True), ("new", False)]})["n1"][1:]
    plan = dsc.rolling_update_plan(_ds(max_surge=2, max_unavailable=0), nodes, pods, "new", NOW)
    assert plan.delete == ["p-n0-0"] and plan.create_on == ["n2"]


def test_daemonset_manage_creates_missing_and_prunes_extra_pods():
    nodes = _fleet(3)
    pods = _node_pods({"n0": [("h", True)], "n1": [("h", True), ("h", True)], "gone": [("h", True)]})
    pods["gone"][0]["spec"] = {}  # never bound, and its node left
    plan, failed = dsc.manage_plan(_ds(), nodes, pods, "h", NOW)
    assert plan.create_on == ["n2"]
    assert sorted(plan.delete) == ["p-gone-0", "p-n1-1"] and failed == []
    pods = _node_pods({"n0": [("h", True)]})
    pods["n0"][0]["status"]["phase"] = "Failed"
    plan, failed = dsc.manage_plan(_ds(), nodes[:1], pods, "h", NOW)
    assert plan.delete == ["p-n0-0"] and [p["metadata"]["name"] for p in failed] == ["p-n0-0"]


def test_daemonset_status_counts():
    nodes = _fleet(3) + [_node("other", taints=[{"key": "k", "effect": "NoSchedule"}])]
    pods = _node_pods({"n0": [("new", True)], "n1": [("old", False)], "other": [("new", True)]})
    st = dsc.compute_status(_ds(), nodes, pods, "new", NOW)
    assert (st.desired, st.current, st.misscheduled, st.ready, st.updated, st.available) == (3, 2, 1, 1, 1, 1)


def test_daemonset_pod_updated_by_hash_or_template_generation():
    assert dsc.is_pod_updated(_pod("p", labels={dsc.HASH_LABEL: "h"}), "h", 1)
    assert dsc.is_pod_updated(_pod("p", labels={dsc.GENERATION_LABEL: "1"}), "x", 1)
    assert not dsc.is_pod_updated(_pod("p", labels={dsc.GENERATION_LABEL: "1"}), "x", 2)


# --- defaults and validation --------------------------------------------------------------

def test_statefulset_and_daemonset_defaults():
    sts = {"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": []}},
                    "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {}}]}}
    apply_defaults("StatefulSet", "apps/v1", sts)
    s = sts["spec"]
    assert s["podManagementPolicy"] == "OrderedReady" and s["replicas"] == 1 and s["revisionHistoryLimit"] == 10
    assert s["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert s["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert s["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"
    assert s["volumeClaimTemplates"][0]["status"] == {"phase": "Pending"}
    ds = {"spec": {"template": {"spec": {"containers": []}}}}
    apply_defaults("DaemonSet", "apps/v1", ds)
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}


def _valid_sts() -> dict:
    obj = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "7"},
           "spec": {"selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    apply_defaults("StatefulSet", "apps/v1", obj)
    return obj


@pytest.mark.parametrize("change,field,message", [
    ({"podManagementPolicy": "Sometimes"}, "spec.podManagementPolicy", "must be 'OrderedReady' or 'Parallel'"),
    ({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}},
     "spec.updateStrategy.rollingUpdate.partition", "must be greater than or equal to 0"),
    ({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}},
     "spec.updateStrategy.rollingUpdate", "only allowed for updateStrategy 'RollingUpdate'"),
    ({"selector": {"matchLabels": {"app": "other"}}}, "spec.template.metadata.labels",
     "`selector` does not match template `labels`"),
    ({"replicas": -1}, "spec.replicas", "must be greater than or equal to 0"),
])
def test_statefulset_validation_messages(change, field, message):
    obj = _valid_sts()
    obj["spec"].update(change)
    causes = validate("StatefulSet", "apps/v1", obj)
    assert any(c.field == field and message in c.message for c in causes), causes


def test_statefulset_update_may_change_only_upstreams_fields():
    old = _valid_sts()
    new = _valid_sts()
    new["spec"]["replicas"] = 5
    assert validate("StatefulSet", "apps/v1", new, old) == []
    new["spec"]["serviceName"] = "changed"
    causes = validate("StatefulSet", "apps/v1", new, old)
    assert [c.field for c in causes] == ["spec"]
    assert "updates to statefulset spec for fields other than 'replicas'" in causes[0].message


def test_daemonset_failed_pod_backoff_doubles_per_node():
    b = dsc.FailedPodBackoff()
    assert b.in_backoff("ds/n1", 100.0) == 0
    b.next("ds/n1", 100.0)
    assert b.in_backoff("ds/n1", 100.5) == 0.5 and b.in_backoff("ds/n2", 100.5) == 0
    b.next("ds/n1", 101.0)
    assert b.in_backoff("ds/n1", 101.0) == 2.0
    b.next("ds/n1", 101.0 + 3 * b.MAX)  # quiet for long enough: back to the start
    assert b.in_backoff("ds/n1", 101.0 + 3 * b.MAX) == 1.0


def test_statefulset_rolling_update_waits_for_min_ready_seconds():
    sts = _sts(3)
    sts["spec"]["minReadySeconds"] = 10
    pods = _web(3)
    pods[2]["metadata"]["labels"][ssc.REVISION_LABEL] = "new"
    pods[2]["status"]["conditions"][0]["lastTransitionTime"] = "2026-01-01T11:59:55Z"  # ready for 5 s
    assert ssc.rolling_update_victims(sts, pods, "new", NOW) == []
    later = NOW + _dt.timedelta(seconds=10)
    assert [p["metadata"]["name"] for p in ssc.rolling_update_victims(sts, pods, "new", later)] == ["web-1"]

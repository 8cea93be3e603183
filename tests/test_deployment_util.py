"""Table tests for the rollout arithmetic, reproducing upstream's worked examples."""
from __future__ import annotations

import datetime as dt

import pytest

from kubelite.controllers.deployment import history, util


def deployment(replicas: int, surge=0, unavailable=0, *, strategy="RollingUpdate", labels=None) -> dict:
    labels = labels or {"app": "foo"}
    spec = {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)},
                         "spec": {"containers": [{"name": "c", "image": "foo/bar"}]}},
            "strategy": {"type": strategy}}
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "foo", "namespace": "default", "uid": "d-uid", "annotations": {}},
            "spec": spec, "status": {}}


def rs(name: str, replicas: int, created: int, *, available: int | None = None, annotations=None) -> dict:
    ts = dt.datetime(2016, 5, 20, created, 0, 0, tzinfo=dt.UTC)
    return {"metadata": {"name": name, "uid": name + "-uid", "creationTimestamp": util.meta.rfc3339(ts),
                         "annotations": dict(annotations or {})},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "availableReplicas": replicas if available is None else available}}


@pytest.mark.parametrize("surge,unavailable,desired,expected", [
    ("25%", "25%", 10, (3, 2)),       # 2.5 rounds up for surge, down for unavailable
    ("25%", "25%", 4, (1, 1)),
    ("25%", "25%", 1, (1, 0)),
    (0, "1%", 2, (0, 1)),             # both resolve to 0: unavailable becomes 1
    (0, "1%", 1, (0, 1)),
    ("1%", "25%", 2, (1, 0)),
    ("1%", "25%", 1, (1, 0)),
    ("1%", 0, 2, (1, 0)),
    (0, 0, 5, (0, 1)),
    (3, 2, 10, (3, 2)),
    ("50%", "0%", 3, (2, 0)),
])
def test_resolve_fenceposts(surge, unavailable, desired, expected):
    assert util.resolve_fenceposts(surge, unavailable, desired) == expected


def test_max_unavailable_is_capped_and_zero_for_recreate():
    assert util.max_unavailable(deployment(2, 0, 5)) == 2
    assert util.max_unavailable(deployment(0, 0, 1)) == 0
    assert util.max_unavailable(deployment(4, strategy="Recreate")) == 0
    assert util.max_surge(deployment(4, strategy="Recreate")) == 0
    assert util.min_available(deployment(10, "25%", "25%")) == 8


def test_scaled_value_rejects_non_percent_strings():
    with pytest.raises(ValueError):
        util.scaled_value("abc", 10, True)


@pytest.mark.parametrize("d_replicas,surge,new_size,old_size,expected", [
    (1, 5, 1, 5, 1),      # 6 pods already = 1 + 5: cannot scale up
    (6, 4, 1, 5, 5),      # 10 allowed, 6 running: +4 up to 5
    (6, 0, 0, 6, 0),      # no surge and the old RS holds everything
    (10, 3, 0, 10, 3),    # rolling.go: new RS created with 3
    (10, 3, 3, 8, 5),     # then grows to 5 after old 10 -> 8
])
def test_new_rs_new_replicas_rolling(d_replicas, surge, new_size, old_size, expected):
    d = deployment(d_replicas, surge, 1)
    new, old = rs("new", new_size, 2), rs("old", old_size, 1)
    assert util.new_rs_new_replicas(d, [old, new], new) == expected


def test_new_rs_new_replicas_recreate_goes_straight_to_replicas():
    d = deployment(4, strategy="Recreate")
    new = rs("new", 0, 2)
    assert util.new_rs_new_replicas(d, [rs("old", 0, 1), new], new) == 4


def test_rolling_walkthrough_10_replicas():
    """rolling.go's example: 10 replicas, maxSurge 3, maxUnavailable 2.

    The new RS starts at 3 (13 pods); none are available, so old may lose 13-8-3 = 2.
    New grows to 5.  If the new pods crash-loop, 13-8-5 = 0: nothing more goes away.
    Rolling back to the good RS leaves 1 unavailable: 13-8-1 = 4 can go."""
    d = deployment(10, 3, 2)
    old, new = rs("old", 10, 1), rs("new", 0, 2, available=0)
    new["spec"]["replicas"] = util.new_rs_new_replicas(d, [old, new], new)
    assert new["spec"]["replicas"] == 3
    assert util.max_scaled_down(d, [old, new], new) == 2
    old["spec"]["replicas"] = 8
    new["spec"]["replicas"] = util.new_rs_new_replicas(d, [old, new], new)
    assert new["spec"]["replicas"] == 5
    assert util.max_scaled_down(d, [old, new], new) == 0
    new["status"]["availableReplicas"] = 4
    assert util.max_scaled_down(d, [old, new], new) == 13 - 8 - 1


def test_rollover_new_rs_starts_at_zero():
    """Case 2 of the example: a third template while 13 pods exist starts at 0 and the
    two old RSs may shed 13 - 8 - 0 = 5."""
    d = deployment(10, 3, 2)
    a, b, c = rs("a", 8, 1), rs("b", 5, 2, available=0), rs("c", 0, 3)
    assert util.new_rs_new_replicas(d, [a, b, c], c) == 0
    assert util.max_scaled_down(d, [a, b, c], c) == 5


def annotate(d_old: dict, *rss: dict) -> None:
    for r in rss:
        util.set_replicas_annotations(r, util.replicas(d_old), util.replicas(d_old) + util.max_surge(d_old))


def test_proportional_scaling_style_example():
    """10 replicas, maxSurge 3, maxUnavailable 2, old 8 / new 5, scaled to 30 → 20 / 13."""
    before = deployment(10, 3, 2)
    old, new = rs("old", 8, 1), rs("new", 5, 2)
    annotate(before, old, new)
    after = deployment(30, 3, 2)
    branch, targets, op = util.scale_targets(after, new, [old])
    assert branch == "proportional" and op == "up"
    assert {util.meta.name(r): n for r, n in targets} == {"old": 20, "new": 13}


# sync_test.go TestScale: (name, old replicas, new replicas, surge, new RS, old RSs, expected new, expected olds)
SCALE_CASES = [
    ("normal scaling event: 10 -> 12", 10, 12, 0, ("v1", 10), [], 12, []),
    ("normal scaling event: 10 -> 5", 10, 5, 0, ("v1", 10), [], 5, []),
    ("proportional scaling: 5 -> 10", 5, 10, 0, ("v2", 2), [("v1", 3)], 4, [6]),
    ("proportional scaling: 5 -> 3", 5, 3, 0, ("v2", 2), [("v1", 3)], 1, [2]),
    ("proportional scaling: 9 -> 4", 9, 4, 0, ("v2", 8), [("v1", 1)], 4, [0]),
    ("proportional scaling: 7 -> 10", 7, 10, 0, ("v3", 2), [("v2", 3), ("v1", 2)], 3, [4, 3]),
    ("proportional scaling: 13 -> 8", 13, 8, 0, ("v3", 2), [("v2", 8), ("v1", 3)], 1, [5, 2]),
    ("leftover distribution: 3 -> 4", 3, 4, 0, ("v3", 1), [("v2", 1), ("v1", 1)], 2, [1, 1]),
    ("leftover distribution: 3 -> 2", 3, 2, 0, ("v3", 1), [("v2", 1), ("v1", 1)], 1, [1, 0]),
    ("proportional scaling (no new rs): 4 -> 5", 4, 5, 0, None, [("v2", 2), ("v1", 2)], None, [3, 2]),
    ("proportional scaling: 6 -> 0", 6, 0, 0, ("v3", 3), [("v2", 2), ("v1", 1)], 0, [0, 0]),
    ("proportional scaling: 0 -> 6", 6, 6, 0, ("v3", 0), [("v2", 0), ("v1", 0)], 6, [0, 0]),
    ("deployment with surge pods", 10, 20, 2, ("v2", 6), [("v1", 6)], 11, [11]),
]


@pytest.mark.parametrize("name,old_n,new_n,surge,new_spec,old_specs,exp_new,exp_old", SCALE_CASES,
                         ids=[c[0] for c in SCALE_CASES])
def test_scale(name, old_n, new_n, surge, new_spec, old_specs, exp_new, exp_old):
    before, after = deployment(old_n, surge, 0), deployment(new_n, surge, 0)
    new = rs("foo-" + new_spec[0], new_spec[1], 3) if new_spec else None
    olds = [rs("foo-" + n, size, 2 - i) for i, (n, size) in enumerate(old_specs)]
    annotate(before, *([new] if new else []), *olds)
    _, targets, _ = util.scale_targets(after, new, olds)
    sizes = {util.meta.name(r): util.replicas(r) for r in ([new] if new else []) + olds}
    sizes.update({util.meta.name(r): n for r, n in targets})
    if new is not None:
        assert sizes[util.meta.name(new)] == exp_new
    assert [sizes[util.meta.name(o)] for o in olds] == exp_old


def test_replicaset_fraction_without_annotation_and_zero_status_replicas():
    """No max-replicas annotation and status.replicas 0: upstream divides by zero; the RS
    counts as the whole old size, and get_proportion bounds the move."""
    d = deployment(10, 0, 0)
    assert d["status"] == {}
    old = rs("v1", 4, 1)
    assert util.max_replicas_annotation(old) is None
    assert util.replicaset_fraction(old, d) == 6
    assert util.get_proportion(old, d, 6, 0) == 6
    assert util.get_proportion(old, d, 6, 4) == 2
    shrink = deployment(2, 0, 0)
    assert util.replicaset_fraction(old, shrink) == -2
    assert util.get_proportion(old, shrink, -2, 0) == -2
    old["metadata"]["annotations"][util.MAX_REPLICAS] = "0"
    assert util.replicaset_fraction(old, d) == 6


def test_proportional_scaling_survives_missing_annotations_mid_rollout():
    """The sync that used to fail forever: two active RSs, no annotations, status.replicas 0."""
    after = deployment(12, 1, 0)
    new, old = rs("v2", 3, 2), rs("v1", 5, 1)
    branch, targets, _ = util.scale_targets(after, new, [old])
    sizes = {util.meta.name(r): n for r, n in targets}
    assert branch == "proportional"
    assert sum(sizes.get(n, util.replicas(r)) for n, r in (("v2", new), ("v1", old))) == 13


def test_change_both_surge_and_size():
    before, after = deployment(10, 3, 0), deployment(50, 6, 0)
    new, old = rs("v2", 5, 2), rs("v1", 8, 1)
    annotate(before, new, old)
    _, targets, _ = util.scale_targets(after, new, [old])
    assert {util.meta.name(r): n for r, n in targets} == {"v2": 22, "v1": 34}


def test_saturated_but_broken_new_rs_does_not_touch_old_pods():
    d = deployment(2, 1, 1)
    new, old = rs("v2", 2, 2, available=0), rs("v1", 1, 1)
    annotate(d, new, old)
    branch, targets, _ = util.scale_targets(d, new, [old])
    assert {util.meta.name(r): n for r, n in targets} == {"v2": 2, "v1": 1}


def test_saturated_new_rs_scales_old_to_zero():
    d = deployment(2, 1, 1)
    new, old = rs("v2", 2, 2), rs("v1", 1, 1)
    annotate(d, new, old)
    assert util.scale_targets(d, new, [old])[:1] == ("saturated",)
    assert [n for _, n in util.scale_targets(d, new, [old])[1]] == [0]


def test_revisions_and_history_annotation():
    rss = [rs("a", 0, 1, annotations={util.REVISION: "1"}), rs("b", 0, 2, annotations={util.REVISION: "3"}),
           rs("c", 0, 3, annotations={util.REVISION: "2"}), rs("bad", 0, 4, annotations={util.REVISION: "x"})]
    assert util.max_revision(rss) == 3
    assert util.last_revision(rss) == 2
    d = deployment(3)
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "kubectl set image",
                                    util.REVISION: "9", util.LAST_APPLIED: "{}"}
    target = rs("a", 0, 1, annotations={util.REVISION: "1"})
    assert util.set_new_rs_annotations(d, target, "4", exists=True)
    ann = target["metadata"]["annotations"]
    assert ann[util.REVISION] == "4" and ann[util.REVISION_HISTORY] == "1"
    assert ann["kubernetes.io/change-cause"] == "kubectl set image"
    assert util.LAST_APPLIED not in ann
    util.set_new_rs_annotations(d, target, "6", exists=True)
    assert ann[util.REVISION_HISTORY] == "1,4"
    # A lower revision never moves an RS back.
    assert not util.set_new_rs_annotations(d, target, "5", exists=True)


def test_new_rs_annotations_on_create_record_sizes():
    d = deployment(10, "25%", "25%")
    new = rs("n", 0, 1)
    util.set_new_rs_annotations(d, new, "1", exists=False)
    assert new["metadata"]["annotations"][util.DESIRED_REPLICAS] == "10"
    assert new["metadata"]["annotations"][util.MAX_REPLICAS] == "13"


def test_equal_ignore_hash_and_semantic_empties():
    t1 = {"metadata": {"labels": {"app": "a", util.POD_TEMPLATE_HASH: "x"}}, "spec": {"containers": [{"name": "c"}]}}
    t2 = {"metadata": {"labels": {"app": "a"}, "annotations": {}}, "spec": {"containers": [{"name": "c", "env": []}]}}
    assert util.equal_ignore_hash(t1, t2)
    t2["spec"]["containers"][0]["image"] = "other"
    assert not util.equal_ignore_hash(t1, t2)


def test_set_condition_keeps_transition_time_on_same_status():
    st: dict = {}
    t0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    t1 = t0 + dt.timedelta(minutes=1)
    util.set_condition(st, util.new_condition("Progressing", "True", util.NEW_RS_CREATED, "m", t0))
    util.set_condition(st, util.new_condition("Progressing", "True", util.RS_UPDATED, "m2", t1))
    c = util.get_condition(st, "Progressing")
    assert c["reason"] == util.RS_UPDATED and c["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert c["lastUpdateTime"] == "2020-01-01T00:01:00Z"


def test_deployment_timed_out():
    d = deployment(3)
    d["spec"]["progressDeadlineSeconds"] = 20
    t0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    st = {"conditions": [util.new_condition("Progressing", "True", util.RS_UPDATED, "m", t0)]}
    assert not util.deployment_timed_out(d, st, t0 + dt.timedelta(seconds=20))
    assert util.deployment_timed_out(d, st, t0 + dt.timedelta(seconds=21))
    d["spec"]["progressDeadlineSeconds"] = util.MAX_INT32
    assert not util.deployment_timed_out(d, st, t0 + dt.timedelta(days=9999))


def test_pod_template_hash_is_stable_and_safe():
    t = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    h = history.compute_hash(t, None)
    assert h == history.compute_hash({"spec": t["spec"], "metadata": t["metadata"]}, None)
    assert h != history.compute_hash(t, 1)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 6 <= len(h) <= 10
    assert history.fnv32a(b"") == 0x811C9DC5 and history.fnv32a(b"a") == 0xE40C292C
    assert history.safe_encode("123") == "567"  # ord("1") % 27 == 22 → "5"

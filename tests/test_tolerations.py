"""The one toleration rule the scheduler, node lifecycle and DaemonSet controllers share."""
from __future__ import annotations

import pytest

from kubelite.api.nodeselector import requirement_matches
from kubelite.api.tolerations import tolerates

TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


@pytest.mark.parametrize("tol, expected", [
    ({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, True),
    ({"key": "dedicated", "operator": "Equal", "value": "gpu"}, True),      # any effect
    ({"key": "dedicated", "operator": "Exists"}, True),
    ({"operator": "Exists"}, True),                                          # every taint
    ({"operator": "Exists", "effect": "NoExecute"}, False),
    ({"key": "dedicated", "value": "cpu"}, False),
    ({"key": "other", "operator": "Exists"}, False),
    ({"key": "dedicated", "operator": "Gt", "value": "gpu"}, False),         # unknown operator
])
def test_toleration_matches_taint_as_upstream(tol, expected):
    assert tolerates(tol, TAINT) is expected


def test_an_empty_value_equals_a_missing_one():
    assert tolerates({"key": "k", "value": ""}, {"key": "k", "effect": "NoExecute"})


@pytest.mark.parametrize("values, expected", [(["3"], True), (["5"], False), ([], False), (["1", "2"], False),
                                              (["x"], False)])
def test_gt_needs_exactly_one_integer_value(values, expected):
    assert requirement_matches({"key": "n", "operator": "Gt", "values": values}, {"n": "4"}) is expected

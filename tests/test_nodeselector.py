"""Node selector terms as the scheduler's NodeAffinity and the volume binder read them."""
from __future__ import annotations

from kubelite.api.nodeselector import requirement_matches, terms_match

NODE = {"metadata": {"name": "n1", "labels": {"zone": "a", "cores": "8"}}}


def req(key: str, op: str, *values: str) -> dict:
    return {"key": key, "operator": op, "values": list(values)}


def test_requirements():
    labels = NODE["metadata"]["labels"]
    assert requirement_matches(req("zone", "In", "a", "b"), labels)
    assert not requirement_matches(req("zone", "NotIn", "a"), labels)
    assert requirement_matches(req("rack", "NotIn", "x"), labels)
    assert requirement_matches(req("zone", "Exists"), labels)
    assert requirement_matches(req("rack", "DoesNotExist"), labels)
    assert requirement_matches(req("cores", "Gt", "4"), labels) and not requirement_matches(req("cores", "Lt", "4"), labels)
    assert not requirement_matches(req("zone", "Gt", "4"), labels)  # not a number
    assert not requirement_matches(req("zone", "Bogus", "a"), labels)


def test_terms_are_ored_and_their_parts_anded():
    a = {"matchExpressions": [req("zone", "In", "a")], "matchFields": [req("metadata.name", "In", "n1")]}
    b = {"matchExpressions": [req("zone", "In", "b")]}
    assert terms_match([b, a], NODE)
    assert not terms_match([b], NODE)
    assert not terms_match([{"matchExpressions": [req("zone", "In", "a"), req("cores", "Lt", "2")]}], NODE)


def test_empty_terms_and_unknown_fields_match_nothing():
    assert not terms_match([{}], NODE)
    assert not terms_match([{"matchFields": [req("spec.unschedulable", "NotIn", "true")]}], NODE)

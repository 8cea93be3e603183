"""Specs kubelite fails today, each with the defect it shows: run as strict xfails.

``KNOWN[spec][resource id]`` (``"*"``: every resource) is the reason. A strict xfail
turns into a failure the day the defect is fixed, and the entry is then deleted.
"""
from __future__ import annotations

KNOWN: dict[str, dict[str, str]] = {
    "test_protobuf_only_clients_are_answered_in_protobuf": {
        "*": "issue 10: responses are always JSON; a client accepting only application/vnd.kubernetes.protobuf "
             "gets JSON (upstream answers in protobuf)"},
}


def known_failure(spec: str, resource_id: str) -> str | None:
    """The reason a spec is expected to fail on a resource, if it is."""
    reasons = KNOWN.get(spec) or {}
    return reasons.get(resource_id) or reasons.get("*")

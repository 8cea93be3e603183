"""Specs kubelite fails today, each with the defect it shows: run as strict xfails.

``KNOWN[spec][resource id]`` (``"*"``: every resource) is the reason. A strict xfail
turns into a failure the day the defect is fixed, and the entry is then deleted.
"""
from __future__ import annotations

KNOWN: dict[str, dict[str, str]] = {
    "test_protobuf_only_clients_are_answered_in_protobuf": {
        "*": "issue 10: responses are always JSON; a client accepting only application/vnd.kubernetes.protobuf "
             "gets JSON (upstream answers in protobuf)"},
    "test_should_create_in_each_content_type[protobuf]": {
        "apiextensions.k8s.io/v1/customresourcedefinitions": "issue 13: no protobuf layout for CRDs yet "
                                                             "(upstream decodes CRD bodies in protobuf)",
        "conformance.kubelite.example.com/v1/widgets": "as upstream: custom resources have no protobuf form"},
    "test_should_update_in_each_content_type[protobuf]": {
        "apiextensions.k8s.io/v1/customresourcedefinitions": "issue 13: no protobuf layout for CRDs yet "
                                                             "(upstream decodes CRD bodies in protobuf)",
        "conformance.kubelite.example.com/v1/widgets": "as upstream: custom resources have no protobuf form"},
    "test_should_patch_with_each_patch_type[strategic]": {
        "conformance.kubelite.example.com/v1/widgets": "as upstream: strategic merge patch is 415 for custom "
                                                       "resources"},
    "test_get_of_a_missing_object_is_not_found": {
        "metrics.k8s.io/v1beta1/nodes": "as upstream (metrics-server): the NotFound names the resource nodemetrics",
        "metrics.k8s.io/v1beta1/pods": "as upstream (metrics-server): the NotFound names the resource podmetrics "
                                       "and the pod as namespace/name"},
    "test_create_with_generate_name": {
        "apiextensions.k8s.io/v1/customresourcedefinitions": "as upstream: a CRD's name must be <plural>.<group>, "
                                                             "which a generated name never is",
        "apiregistration.k8s.io/v1/apiservices": "as upstream: an APIService's name must be <version>.<group>, "
                                                 "which a generated name never is"},
}


def known_failure(spec: str, resource_id: str, *, wildcard: bool = True) -> str | None:
    """The reason a spec (or ``spec[variant]``) is expected to fail on a resource, if it is."""
    reasons = KNOWN.get(spec) or {}
    return reasons.get(resource_id) or (reasons.get("*") if wildcard else None)

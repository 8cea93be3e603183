"""Specs kubelite fails today, each with the defect it shows: run as strict xfails.

``KNOWN[spec][resource id]`` (``"*"``: every resource) is the reason. A strict xfail
turns into a failure the day the defect is fixed, and the entry is then deleted.
"""
from __future__ import annotations

KNOWN: dict[str, dict[str, str]] = {
    # Strict decoding and apply bodies.
    "test_should_detect_unknown_and_duplicate_fields_of_a_typed_object": {
        "*": 'issue 10: fieldValidation=Strict does not report duplicate JSON keys (duplicate field "metadata.name")'},
    "test_apply_accepts_tab_indented_json": {
        "*": "issue 10: apply-patch bodies are parsed with PyYAML, which refuses tab-indented JSON"},
    "test_field_validation_warn_drops_unknown_fields_with_a_warning": {
        "*": 'issue 10: the Warning header\'s text is not a valid quoted-string (unescaped quotes in unknown field "x"), '
             "so client-go drops it and kubectl prints no warning"},
    # The Accept negotiation.
    "test_unsupported_conversion_is_406": {
        "*": "issue 10: Table 406 for unsupported as= (as=Foo gets a plain JSON list)"},
    "test_a_v1beta1_table_is_answered_as_v1beta1": {
        "*": "issue 10: a Table asked for as v1beta1 comes back as meta.k8s.io/v1 (the Accept negotiation "
             "behind Table 406)"},
    "test_unacceptable_media_type_is_406": {
        "*": "issue 10: Accept negotiation never answers 406 NotAcceptable (Accept: text/html gets JSON); "
             "the same gap as Table 406 for unsupported as="},
    "test_protobuf_only_clients_are_answered_in_protobuf": {
        "*": "issue 10: responses are always JSON; a client accepting only application/vnd.kubernetes.protobuf "
             "gets JSON (upstream answers in protobuf)"},
}


def known_failure(spec: str, resource_id: str) -> str | None:
    """The reason a spec is expected to fail on a resource, if it is."""
    reasons = KNOWN.get(spec) or {}
    return reasons.get(resource_id) or reasons.get("*")

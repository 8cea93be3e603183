"""The four PATCH content types of the API server, as pure functions over dicts.

* ``application/json-patch+json`` → :func:`json_patch` (RFC 6902)
* ``application/merge-patch+json`` → :func:`json_merge_patch` (RFC 7386)
* ``application/strategic-merge-patch+json`` → :func:`strategic_merge_patch`
* ``application/apply-patch+yaml`` → :func:`apply_patch` (server-side apply)

:func:`update_managed_fields` keeps ``metadata.managedFields`` right on every other
write.  Merge metadata per kind lives in :mod:`kubelite.api.patch.patchmeta`.
"""
from kubelite.api.patch.apply import apply_patch
from kubelite.api.patch.jsonpatch import json_patch
from kubelite.api.patch.managedfields import update_managed_fields
from kubelite.api.patch.merge import json_merge_patch
from kubelite.api.patch.strategic import strategic_merge_patch, strip_directives

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}

__all__ = ["PATCH_TYPES", "apply_patch", "json_merge_patch", "json_patch",
           "strategic_merge_patch", "strip_directives", "update_managed_fields"]

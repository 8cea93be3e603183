"""OpenAPI v2 (JSON and gnostic protobuf) and v3 (per group-version JSON) documents.

kubectl reads these for ``explain``, client-side ``apply``/``diff`` patch metadata and to
learn that the server validates fields itself (a ``fieldValidation`` query parameter on
the PATCH operation of a kind).  kubectl 1.27/1.28 only accept v2 as gnostic protobuf;
1.29+ read the v3 root, then the ``?hash=`` URL of one group-version.

Everything is built from our own data, never from upstream's swagger.json, one concern
per module:

* ``fielddocs`` — our short descriptions of kinds and fields, and enum values (data);
* ``schema`` — definitions from ``protoschema`` (fields, JSON names, repeated/map,
  message types), so the documents describe exactly the shapes our protobuf codec and
  storage accept, with patch extensions from ``patch.patchmeta``;
* ``operations`` — paths and operations from the resource catalogue (``resources``);
* ``documents`` — the v2 document, and the v3 documents derived from it;
* ``gnostic`` — the v2 document as a gnostic protobuf message;
* ``serve`` — the HTTP handler: content negotiation, ETags, hashed v3 URLs.
"""
from __future__ import annotations

from kubelite.apiserver.openapi.documents import build_v2, build_v3
from kubelite.apiserver.openapi.gnostic import to_gnostic
from kubelite.apiserver.openapi.operations import Operation, operations
from kubelite.apiserver.openapi.schema import definition_name
from kubelite.apiserver.openapi.serve import (
    V2_PROTO,
    V2_PROTO_REQUESTED,
    Blob,
    Documents,
    documents,
    handle,
    served_group_versions,
)

__all__ = ["V2_PROTO", "V2_PROTO_REQUESTED", "Blob", "Documents", "Operation", "build_v2", "build_v3",
           "definition_name", "documents", "handle", "operations", "served_group_versions", "to_gnostic"]

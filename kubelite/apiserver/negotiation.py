"""Content negotiation: request bodies in, responses out.

Requests: JSON, YAML and Kubernetes protobuf bodies (kubectl ≥1.32 sends protobuf for
typed creates and has no JSON fallback), plus the four patch types.
Responses: JSON by default; YAML when asked; a metav1.Table when the Accept header
asks for ``as=Table`` (kubectl get).  Every client that asks for protobuf also accepts
JSON, so JSON answers are always valid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from aiohttp import web
from aiohttp.typedefs import LooseHeaders

from kubelite.api import errors
from kubelite.api.status_http import respond_error as respond_error  # shared with the node agent's API

MAX_BODY = 3 * 1024 * 1024
PROTOBUF = "application/vnd.kubernetes.protobuf"
BODY_TYPES = ("application/json", "application/yaml", PROTOBUF)


@dataclass
class MediaType:
    """One entry of an Accept header."""

    type: str
    params: dict[str, str]


def parse_accept(header: str) -> list[MediaType]:
    """Split an Accept header into media types with their parameters, in order."""
    out = []
    for part in (header or "").split(","):
        part = part.strip()
        if not part:
            continue
        bits = [b.strip() for b in part.split(";")]
        params = {}
        for b in bits[1:]:
            if "=" in b:
                k, v = b.split("=", 1)
                params[k.strip()] = v.strip()
        out.append(MediaType(bits[0].lower(), params))
    return out


@dataclass
class Wants:
    """What the client wants back."""

    table: bool = False
    yaml: bool = False
    partial_metadata: bool = False
    include_object: str = "Metadata"
    meta_version: str = "v1"  # meta.k8s.io version of a Table or PartialObjectMetadata answer

    def meta_api_version(self) -> str:
        """``meta.k8s.io/v1`` or ``meta.k8s.io/v1beta1``, as negotiated."""
        return f"meta.k8s.io/{self.meta_version}"


# What a resource answers in; a client accepting none of these gets 406.
ACCEPTED = ("application/json", "application/yaml", PROTOBUF)
_META_VERSIONS = ("v1", "v1beta1")
_CONVERSION_PARAMS = ("as", "g", "v", "sv")


def wants(request: web.Request, *, tables: bool = True) -> Wants:
    """Decide the response form from the Accept header and ``includeObject``.

    The first Accept clause the server can answer wins, as upstream negotiates: a
    conversion (``as=``/``g=``/``v=``) must name meta.k8s.io v1 or v1beta1 and a kind it
    converts to (Table only as JSON or YAML and only where ``tables``; PartialObjectMetadata
    and its List); no answerable clause is 406 NotAcceptable."""
    clauses = parse_accept(request.headers.get("Accept", ""))
    w: Wants | None = Wants() if not clauses else None
    for mt in clauses:
        w = _answerable(mt, tables)
        if w is not None:
            break
    if w is None:
        raise errors.not_acceptable(ACCEPTED)
    inc = request.query.get("includeObject")
    if inc:
        if inc not in ("None", "Metadata", "Object"):
            raise errors.bad_request(f'includeObject: Unsupported value: "{inc}": supported values: "None", "Metadata", "Object"')
        w.include_object = inc
    return w


def _answerable(mt: MediaType, tables: bool) -> Wants | None:
    """The answer one Accept clause asks for, or None when the server cannot give it."""
    if mt.type in ("application/json", "application/*", "*/*", PROTOBUF):
        as_yaml = False
    elif mt.type == "application/yaml":
        as_yaml = True
    else:
        return None
    p = mt.params
    if p.get("stream") and p["stream"] != "watch":
        return None
    if not any(k in p for k in _CONVERSION_PARAMS):
        return Wants(yaml=as_yaml)
    kind, group, version = p.get("as", ""), p.get("g", ""), p.get("sv", p.get("v", ""))
    if group != "meta.k8s.io" or version not in _META_VERSIONS:
        return None
    if kind == "Table":
        main, _, sub = mt.type.partition("/")
        if not tables or main != "application" or sub not in ("json", "yaml"):
            return None
        return Wants(table=True, yaml=as_yaml, meta_version=version)
    if kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
        return Wants(partial_metadata=True, yaml=as_yaml, meta_version=version)
    return None


async def read_body(request: web.Request) -> bytes:
    """The raw body, refusing anything over 3 MiB with 413."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise errors.too_large()
    data = bytearray()
    async for chunk in request.content.iter_chunked(65536):
        data += chunk
        if len(data) > MAX_BODY:
            raise errors.too_large()
    return bytes(data)


def decode_body(ctype: str, body: bytes) -> Any:
    """Decode a create/update body (JSON, YAML or protobuf) into a dict."""
    base = (ctype or "application/json").split(";")[0].strip().lower()
    if base == PROTOBUF:
        from kubelite.api import protobuf
        return protobuf.decode(body)
    if base in ("application/json", ""):
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise errors.bad_request(f"Object 'Kind' is missing in '{body[:100].decode(errors='replace')}'"
                                     if not body.strip() else f"couldn't get version/kind; json parse error: {e}") from None
    elif base == "application/yaml":
        try:
            obj = yaml.safe_load(body)
        except yaml.YAMLError as e:
            raise errors.bad_request(f"error converting YAML to JSON: {e}") from None
    else:
        raise errors.unsupported_media_type(base, BODY_TYPES)
    if not isinstance(obj, dict):
        raise errors.bad_request("the body of the request is not a Kubernetes object (expected a JSON object)")
    return obj


def decode_patch_body(ptype: str, body: bytes) -> Any:
    """Decode a PATCH body; json patches are lists, the others objects."""
    try:
        data = _apply_body(body) if ptype == "apply" else orjson.loads(body)
    except (orjson.JSONDecodeError, yaml.YAMLError) as e:
        raise errors.bad_request(f"error decoding patch: {e}") from None
    if ptype == "json" and not isinstance(data, list):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if ptype != "json" and not isinstance(data, dict):
        raise errors.bad_request("error decoding patch: the patch must be a JSON object")
    return data


def _apply_body(body: bytes) -> Any:
    """An apply-patch+yaml body: JSON is YAML, and JSON may be indented with tabs, which
    PyYAML refuses (as YAML forbids), so a body that parses as JSON is taken as JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return yaml.safe_load(body)


def respond(obj: Any, status: int = 200, *, as_yaml: bool = False,
            headers: LooseHeaders | None = None) -> web.Response:
    """Serialize a response body as JSON (or YAML)."""
    if as_yaml:
        return web.Response(status=status, body=yaml.safe_dump(obj, sort_keys=False).encode(),
                            content_type="application/yaml", headers=headers)
    return web.Response(status=status, body=orjson.dumps(obj), content_type="application/json", headers=headers)

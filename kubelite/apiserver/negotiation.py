"""Content negotiation: request bodies in, responses out.

Requests: JSON, YAML and Kubernetes protobuf bodies (kubectl ≥1.32 sends protobuf for
typed creates and has no JSON fallback), plus the four patch types.
Responses: JSON by default; YAML when asked; a metav1.Table when the Accept header
asks for ``as=Table`` (kubectl get).  Every client that asks for protobuf also accepts
JSON, so JSON answers are always valid.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from aiohttp import web
from aiohttp.typedefs import LooseHeaders

from kubelite.api import errors, typeddecode
from kubelite.api.resources import ResourceInfo
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
    body = bytes(data)
    request["body"] = body  # kept for the audit log (audit.py), which cannot read the stream again
    return body


def decode_body(ctype: str, body: bytes, info: ResourceInfo | None = None) -> dict[str, Any]:
    """Decode a create/update body (JSON, YAML or protobuf) into a dict.

    ``info`` is the resource the URL names: its kind words the errors and fills in a
    protobuf envelope that names no kind, as upstream's decoders default it."""
    base = (ctype or "application/json").split(";")[0].strip().lower()
    want = info.kind if info is not None else "Object"
    if base == PROTOBUF:
        from kubelite.api import protobuf
        return protobuf.decode(body, default=(info.api_version, info.kind) if info is not None else None)
    obj: Any
    if base in ("application/json", ""):
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            detail = "unexpected end of JSON input" if not body.strip() else str(e)
            raise _unrecognized(want, f"couldn't get version/kind; json parse error: {detail}", body) from None
    elif base == "application/yaml":
        obj = load_yaml(body)
    else:
        raise errors.unsupported_media_type(base, BODY_TYPES)
    if not isinstance(obj, dict):
        raise _unrecognized(want, "couldn't get version/kind; json parse error: json: cannot unmarshal "
                            f"{_json_kind(obj)} into Go value of type {_FIND_KIND}", body)
    for k in ("apiVersion", "kind"):
        if obj.get(k) is not None and not isinstance(obj[k], str):
            raise _unrecognized(want, "couldn't get version/kind; json parse error: json: cannot unmarshal "
                                f"{_json_kind(obj[k])} into Go struct field .{k} of type string", body)
    return obj


# The anonymous struct upstream's decoders read apiVersion and kind into first.
_FIND_KIND = 'struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }'


def _json_kind(v: Any) -> str:
    """encoding/json's name for a JSON value's type."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object" if isinstance(v, dict) else "null"


def _unrecognized(kind: str, why: str, body: bytes) -> errors.StatusError:
    """The 400 upstream answers when a body is not an object of the URL's kind at all."""
    if not body:
        summary = "<empty>"
    elif body[:1] == b"{":
        summary = body[:30].decode(errors="replace") + (" ..." if len(body) > 30 else "")
    else:
        summary = body[:30].hex() + (" ..." if len(body) > 30 else "")
    return errors.bad_request(f"the object provided is unrecognized (must be of type {kind}): {why} ({summary})")


def decode_patch_body(ptype: str, body: bytes) -> Any:
    """Decode a PATCH body; json patches are lists, the others objects."""
    try:
        data = _apply_body(body) if ptype == "apply" else orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise errors.bad_request(f"error decoding patch: {e}") from None
    if ptype == "json" and not isinstance(data, list):
        raise errors.bad_request(f"json: cannot unmarshal {_json_kind(data)} into Go value of type jsonpatch.Patch")
    if ptype != "json" and not isinstance(data, dict):
        raise errors.bad_request("error decoding patch: json: cannot unmarshal "
                                 f"{_json_kind(data)} into Go value of type map[string]interface {{}}")
    try:
        typeddecode.bounded(data)
    except typeddecode.TooDeep:
        raise errors.bad_request(f"error decoding patch: {too_deep()}") from None
    return data


def _apply_body(body: bytes) -> Any:
    """An apply-patch+yaml body: JSON is YAML, and JSON may be indented with tabs, which
    PyYAML refuses (as YAML forbids), so a body that parses as JSON is taken as JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return load_yaml(body, what="error decoding patch")


def too_deep() -> str:
    """The words for a body nested beyond typeddecode.MAX_DEPTH."""
    return f"exceeded max depth of {typeddecode.MAX_DEPTH}"


# ----------------------------------------------------------------------------- YAML

class _BodyLoader(yaml.SafeLoader):
    """PyYAML read the way upstream turns a YAML body into JSON (go-yaml v2, then JSON).

    go-yaml leaves timestamps as the text written, reads ``1e3`` as a number, turns
    ``!!binary`` into a string and ``!!set`` into a map of nulls; JSON then writes an
    integral float as an integer and has no Inf/NaN; map keys become strings."""

    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Count aliases: a document that uses none cannot expand beyond its own size."""
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Keys become the strings JSON gives them as they are read (Go keeps ``1`` and
        ``true`` apart, so a Python dict may not see them first)."""
        self.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _yaml_key(self.construct_object(key_node, deep=True))
            out[key] = self.construct_object(value_node, deep=deep)
        return out


def _yaml_key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, bool):
        return "true" if k else "false"
    if isinstance(k, int):
        return str(k)
    if isinstance(k, float):
        return format(k, "g") if k == k and k not in (float("inf"), float("-inf")) else \
            {float("inf"): ".inf", float("-inf"): "-.inf"}.get(k, ".nan")
    raise yaml.YAMLError(f"unsupported map key of type: {_go_kind_name(k)}")


def _go_kind_name(v: Any) -> str:
    """reflect's name for what go-yaml decodes a YAML key into."""
    if v is None:
        return "%!s(<nil>)"
    if isinstance(v, dict):
        return "map[interface {}]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    return type(v).__name__


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


def _binary_as_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return bytes(loader.construct_yaml_binary(node)).decode("utf-8", errors="replace")


def _set_as_map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, None]:
    return dict.fromkeys(_yaml_key(k) for k in loader.construct_mapping(node))


def _float_as_json(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | float:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        v = float(text)
    except ValueError:
        v = loader.construct_yaml_float(node)
    if v != v or v in (float("inf"), float("-inf")):
        raise yaml.YAMLError(f"json: unsupported value: {typeddecode.go_number(v)}")
    # Go's JSON writes an integral float below 1e21 as an integer literal.
    return int(v) if v.is_integer() and abs(v) < 1e21 else v


def _int_as_json(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | str:
    text = str(loader.construct_scalar(node))
    if ":" in text:  # go-yaml has no base-60 integers
        return text
    return int(loader.construct_yaml_int(node))


_BodyLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
_BodyLoader.add_constructor("tag:yaml.org,2002:binary", _binary_as_text)
_BodyLoader.add_constructor("tag:yaml.org,2002:set", _set_as_map)
_BodyLoader.add_constructor("tag:yaml.org,2002:float", _float_as_json)
_BodyLoader.add_constructor("tag:yaml.org,2002:int", _int_as_json)
_BodyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)$"),
    list("-+.0123456789"))

# The most values an aliased YAML document may expand to ("billion laughs").
MAX_YAML_NODES = 1_000_000


def load_yaml(body: bytes, *, what: str = "error converting YAML to JSON") -> Any:
    """Parse a YAML body as upstream would see it after YAML→JSON (400 when it cannot be)."""
    loader: _BodyLoader | None = None
    try:
        loader = _BodyLoader(body)  # the reader checks the encoding here already
        obj = loader.get_single_data()
        aliases = loader.aliases
    except yaml.YAMLError as e:
        raise errors.bad_request(f"{what}: {_yaml_error(e)}") from None
    except RecursionError:
        raise errors.bad_request(f"{what}: yaml: {too_deep()}") from None
    finally:
        if loader is not None:
            loader.dispose()
    if aliases and not _expands_within(obj, MAX_YAML_NODES):
        raise errors.bad_request(f"{what}: yaml: document contains excessive aliasing")
    try:
        typeddecode.bounded(obj)
    except typeddecode.TooDeep:
        raise errors.bad_request(f"{what}: yaml: {too_deep()}") from None
    return obj


def _yaml_error(e: yaml.YAMLError) -> str:
    """go-yaml words its errors ``yaml: line N: …``; PyYAML's marks give the line."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None)
    if mark is not None and problem:
        return f"yaml: line {mark.line + 1}: {problem}"
    return str(e) if str(e).startswith(("json:", "yaml:")) else f"yaml: {e}"


def _expands_within(obj: Any, budget: int) -> bool:
    """Whether a parsed document, with every alias expanded, has at most ``budget`` values
    (False too for a document that contains itself)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, bool]] = [(obj, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        key = id(node)
        children = list(node.values()) if isinstance(node, dict) else node
        if done:
            active.discard(key)
            total = 1 + sum(sizes.get(id(c), 1) for c in children)
            if total > budget:
                return False
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in active:
            return False  # a cycle: the document contains itself
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, (dict, list)))
    return True


def respond(obj: Any, status: int = 200, *, as_yaml: bool = False,
            headers: LooseHeaders | None = None) -> web.Response:
    """Serialize a response body as JSON (or YAML)."""
    if as_yaml:
        return web.Response(status=status, body=yaml.safe_dump(obj, sort_keys=False).encode(),
                            content_type="application/yaml", headers=headers)
    return web.Response(status=status, body=orjson.dumps(obj), content_type="application/json", headers=headers)

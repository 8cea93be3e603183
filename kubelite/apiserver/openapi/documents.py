"""The swagger 2.0 document of everything we serve, and the OpenAPI 3.0 documents per
group-version derived from it.

v2 is built first, from the operations and the definitions they reach; each v3 document
takes the v2 paths of one group-version, rewrites parameters, bodies and responses in
v3 form, and copies in only the schemas those paths reach.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubelite.apiserver.discovery import GIT_VERSION
from kubelite.apiserver.openapi.operations import PATCH_TYPES, PRODUCES, QUERY, Operation, operations, path_params
from kubelite.apiserver.openapi.schema import PATCH_DEF, V3_SPECIAL, Definitions, definition_name, to_v3

Obj = dict[str, Any]


def _query_v2(name: str) -> Obj:
    typ, doc = QUERY[name]
    return {"uniqueItems": True, "type": typ, "description": doc, "name": name, "in": "query"}


def _path_v2(name: str, doc: str) -> Obj:
    return {"uniqueItems": True, "type": "string", "description": doc, "name": name,
            "in": "path", "required": True}


def _body_ref(defs: Definitions, message: str) -> Obj:
    if message == PATCH_DEF:
        defs.defs.setdefault(PATCH_DEF, {"type": "object", "description":
                                         "A patch body, in the format its content type names."})
        return {"$ref": f"#/definitions/{PATCH_DEF}"}
    return defs.ref(message)


def _consumes(o: Operation) -> list[str]:
    return list(PATCH_TYPES) if o.action == "patch" else ["*/*"]


def build_v2() -> Obj:
    """The swagger 2.0 document of everything we serve."""
    defs = Definitions()
    paths: dict[str, Obj] = {}
    for o in operations():
        item = paths.setdefault(o.path, {"parameters": [
            *(_path_v2(n, d) for n, d in path_params(o.path)), _query_v2("pretty")]})
        params = []
        if o.body:
            params.append({"name": "body", "in": "body", "required": True,
                           "schema": _body_ref(defs, o.body)})
        params.extend(_query_v2(q) for q in o.query)
        resp = defs.ref(o.response)
        responses = {"200": {"description": "OK", "schema": resp}}
        if o.action in ("post", "put", "patch") and not o.path.endswith(("/status", "/scale")):
            responses["201"] = {"description": "Created", "schema": resp}
        responses["401"] = {"description": "Unauthorized"}
        item[o.method] = {
            "description": o.description, "consumes": _consumes(o), "produces": list(PRODUCES),
            "schemes": ["https"], "tags": [o.tag], "operationId": o.operation_id,
            "parameters": params, "responses": responses,
            "x-kubernetes-action": o.action, "x-kubernetes-group-version-kind": o.gvk,
        }
    for extra in ("meta.v1.Status", "meta.v1.DeleteOptions"):
        defs.ref(extra)
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": GIT_VERSION},
            "paths": paths, "definitions": dict(sorted(defs.defs.items()))}


def _v3_param(p: Obj) -> Obj:
    out = {"name": p["name"], "in": p["in"], "description": p["description"],
           "schema": {"type": p["type"], "uniqueItems": True}}
    if p.get("required"):
        out["required"] = True
    return out


def _v3_content(schema: Obj, types: Iterable[str]) -> Obj:
    return {t: {"schema": to_v3(schema)} for t in types}


def build_v3(v2: Obj) -> dict[str, Obj]:
    """{group-version path ("api/v1", "apis/apps/v1"): its OpenAPI 3.0 document}, from v2."""
    gv_of = {o.path: o.group_version for o in operations()}
    docs: dict[str, Obj] = {}
    for path, item in v2["paths"].items():
        doc = docs.setdefault(gv_of[path], {"openapi": "3.0.0", "info": dict(v2["info"]),
                                           "paths": {}, "components": {"schemas": {}}})
        out: Obj = {"parameters": [_v3_param(p) for p in item["parameters"]]}
        for method, op in item.items():
            if method == "parameters":
                continue
            new = {k: v for k, v in op.items() if k not in ("consumes", "produces", "schemes", "parameters", "responses")}
            new["parameters"] = [_v3_param(p) for p in op["parameters"] if p["in"] != "body"]
            body = [p for p in op["parameters"] if p["in"] == "body"]
            if body:
                new["requestBody"] = {"content": _v3_content(body[0]["schema"], op["consumes"]),
                                      "required": True}
            new["responses"] = {
                code: ({"description": r["description"],
                        "content": _v3_content(r["schema"], op["produces"])} if "schema" in r
                       else {"description": r["description"]})
                for code, r in op["responses"].items()}
            out[method] = new
        doc["paths"][path] = out
    for doc in docs.values():
        _copy_reachable(doc, v2["definitions"])
    return docs


def _copy_reachable(doc: Obj, definitions: Obj) -> None:
    """Copy into the v3 document every definition its paths reach, in v3 form."""
    schemas = doc["components"]["schemas"]
    todo = _refs(doc["paths"])
    while todo:
        name = todo.pop()
        if name in schemas:
            continue
        v3 = to_v3(definitions[name])
        special = next((k for k in V3_SPECIAL if definition_name(k) == name), None)
        if special:
            v3 = {"description": v3.get("description", ""), **V3_SPECIAL[special]}
        schemas[name] = v3
        todo.extend(_refs(v3))
    doc["components"]["schemas"] = dict(sorted(schemas.items()))


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            ref = n.get("$ref")
            if isinstance(ref, str):
                found.append(ref.rsplit("/", 1)[1])
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    return found

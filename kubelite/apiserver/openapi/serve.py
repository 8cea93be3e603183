"""HTTP serving of /openapi/v2, /openapi/v3 and /openapi/v3/<group-version>.

The documents are built once, on first request, off the event loop, then served with
strong ETags (SHA-512 of the body, as kube-openapi does); a hashed v3 URL is marked
immutable and a stale hash is redirected to the current one.
"""
from __future__ import annotations

import asyncio
import email.utils
import hashlib
import time
from dataclasses import dataclass

import orjson
from aiohttp import web

from kubelite.api import errors
from kubelite.api.resources import catalogue_generation, group_versions
from kubelite.apiserver.openapi.documents import build_v2, build_v3
from kubelite.apiserver.openapi.gnostic import to_gnostic

V2_PROTO = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
# What clients ask for; Go's mime parser rejects the '@' form in a response header.
V2_PROTO_REQUESTED = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


@dataclass(frozen=True)
class Blob:
    """A served body with its strong ETag (unquoted, as in ``?hash=``)."""

    body: bytes
    etag: str


def _blob(body: bytes) -> Blob:
    return Blob(body, hashlib.sha512(body).hexdigest().upper())


@dataclass(frozen=True)
class Documents:
    """Everything /openapi serves, built once."""

    v2_json: Blob
    v2_proto: Blob
    v3: dict[str, Blob]       # "apis/apps/v1" -> document
    v3_root: Blob
    built: float


def documents() -> Documents:
    """The served OpenAPI documents of the catalogue as it is now: built once per change
    of its dynamic part (a new CRD changes the documents, and so their ETags)."""
    generation = catalogue_generation()
    cached = _cache.get(generation)
    if cached is None:
        cached = _build()
        _cache.clear()  # only the newest generation is ever asked for again
        _cache[generation] = cached
    return cached


_cache: dict[int, Documents] = {}


def _build() -> Documents:
    """Build every document from the catalogue."""
    v2 = build_v2()
    v3 = {gv: _blob(orjson.dumps(d)) for gv, d in build_v3(v2).items()}
    root = {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={b.etag}"}
                      for gv, b in sorted(v3.items())}}
    return Documents(_blob(orjson.dumps(v2)), _blob(to_gnostic(v2)), v3,
                     _blob(orjson.dumps(root)), time.time())


def served_group_versions() -> list[str]:
    """The v3 document names, "api/v1" and "apis/<group>/<version>"."""
    return [f"apis/{g}/{v}" if g else f"api/{v}" for g, vs in group_versions().items() for v in vs]


def _accepts(header: str) -> list[str]:
    """Media ranges of an Accept header, best first (q=0 dropped; '@' allowed in subtypes)."""
    ranked = []
    for i, part in enumerate(header.split(",")):
        media, *params = [x.strip() for x in part.split(";")]
        q = 1.0
        for p in params:
            k, _, v = p.partition("=")
            if k.strip() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if media and q > 0:
            ranked.append((-q, i, media.lower()))
    return [m for _, _, m in sorted(ranked)]


def _choose(header: str, offers: list[tuple[str, str]]) -> str | None:
    """The first offer's tag (offers: (media type, tag)) that the Accept header allows."""
    for media in _accepts(header or "*/*"):
        kind, _, sub = media.partition("/")
        for offer, tag in offers:
            okind, _, osub = offer.partition("/")
            if kind in ("*", okind) and sub in ("*", osub):
                return tag
    return None


def _not_modified(request: web.Request, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    tags = {t.strip().removeprefix("W/").strip('"') for t in header.split(",")}
    return etag in tags or "*" in tags


def _serve(request: web.Request, blob: Blob, content_type: str, built: float,
           extra: dict[str, str] | None = None) -> web.Response:
    headers = {"ETag": f'"{blob.etag}"', "Vary": "Accept",
               "Last-Modified": email.utils.formatdate(built, usegmt=True), **(extra or {})}
    if _not_modified(request, blob.etag):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = content_type
    return web.Response(body=blob.body, headers=headers)


async def _documents() -> Documents:
    if catalogue_generation() in _cache:
        return documents()
    return await asyncio.get_running_loop().run_in_executor(None, documents)


async def handle(request: web.Request) -> web.StreamResponse:
    """Serve /openapi/v2, /openapi/v3 and /openapi/v3/<group-version>."""
    path = request.path.rstrip("/")
    if not path.startswith("/openapi/v"):
        raise errors.no_such_path()  # /openapi, and the legacy /swagger-2.0.0.pb-v1
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed()
    docs = await _documents()
    if path == "/openapi/v2":
        tag = _choose(request.headers.get("Accept", ""), [
            ("application/json", "json"), (V2_PROTO_REQUESTED, "proto"), (V2_PROTO, "proto")])
        if tag is None:
            raise errors.not_acceptable(["application/json", V2_PROTO])
        if tag == "proto":
            return _serve(request, docs.v2_proto, V2_PROTO, docs.built)
        return _serve(request, docs.v2_json, "application/json", docs.built)
    if path == "/openapi/v3":
        return _serve(request, docs.v3_root, "application/json", docs.built)
    gv = path.removeprefix("/openapi/v3/")
    blob = docs.v3.get(gv) if path.startswith("/openapi/v3/") else None
    if blob is None:
        raise errors.no_such_path()
    if _choose(request.headers.get("Accept", ""), [("application/json", "json")]) is None:
        raise errors.not_acceptable(["application/json"])
    wanted = request.query.get("hash")
    if wanted is None:
        return _serve(request, blob, "application/json", docs.built)
    if wanted != blob.etag:  # a stale hash: point at the current document
        raise web.HTTPMovedPermanently(f"/openapi/v3/{gv}?hash={blob.etag}")
    return _serve(request, blob, "application/json", docs.built, {
        "Cache-Control": "public, immutable",
        "Expires": email.utils.formatdate(time.time() + 365 * 86400, usegmt=True)})

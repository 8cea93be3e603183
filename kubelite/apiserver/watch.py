"""Watch streams: newline-delimited JSON events over a chunked response.

resourceVersion semantics (apiserver's watch cache):
- unset or "0": synthetic ADDED events for what exists now, then changes;
- N: only changes after N; N older than the retained window → one ERROR event with a
  410 Expired Status, then the stream ends (clients re-list);
- with selectors, an object that starts matching arrives as ADDED and one that stops
  matching as DELETED, so a filtered cache stays exact.
Bookmarks (allowWatchBookmarks) go out every minute and just before timeoutSeconds.
"""
from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from typing import Any

import orjson
from aiohttp import web

from kubelite.api import errors, meta
from kubelite.apiserver import handlers as h
from kubelite.apiserver import negotiation as neg
from kubelite.apiserver.handlers import Target
from kubelite.apiserver.verbs import Predicate, make_predicate, negotiate, table

Obj = dict[str, Any]
BOOKMARK_EVERY = 60.0


async def watch(request: web.Request, t: Target) -> web.StreamResponse:
    """Serve ``?watch=true`` (or the legacy /watch/ prefix)."""
    reg = await h.registry_from(request)
    q = request.query
    rv = q.get("resourceVersion", "")
    send_initial = q.get("sendInitialEvents")
    bookmarks = h.qbool(request, "allowWatchBookmarks")
    h.validate_list_options(request, watch=True)
    if send_initial is not None and (q.get("resourceVersionMatch") != "NotOlderThan" or not bookmarks):
        raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.Cause(
            "FieldValueForbidden",
            "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled "
            "and resourceVersionMatch is NotOlderThan with allowWatchBookmarks", "sendInitialEvents")])
    timeout = float(h.query_int(request, "timeoutSeconds") if q.get("timeoutSeconds") else 0) or \
        random.uniform(1800, 3600)
    initial = rv in ("", "0") if send_initial is None else send_initial == "true"
    from_rv: int | None = None
    if rv not in ("", "0"):
        if not rv.isascii() or not rv.isdigit() or int(rv) >= 1 << 64:
            raise errors.bad_request(f'resourceVersion: Invalid value: "{rv}": invalid resource version')
        from_rv = int(rv)
    if initial and rv not in ("", "0"):
        from_rv = None  # sendInitialEvents with NotOlderThan: the current state is newer
    pred = make_predicate(request, t.info)
    if t.name:  # legacy /watch/…/name form
        name_pred = pred

        def pred(o: Obj, _n: str = t.name, _p: Predicate | None = name_pred) -> bool:
            return meta.name(o) == _n and (_p is None or _p(o))
    w = negotiate(request, t.info)
    try:
        events = await reg.open_watch(t.info, t.namespace, from_rv, initial)
    except errors.Gone as e:
        resp = await _start(request)
        await _write(resp, {"type": "ERROR", "object": e.status})
        await resp.write_eof()
        return resp
    resp = await _start(request)
    printer = _Printer(t, w)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_rv = str(reg.store.revision) if from_rv is None else str(from_rv)
    queue: asyncio.Queue = asyncio.Queue()

    async def pump() -> None:
        try:
            async for ev in events:
                await queue.put(ev)
        finally:
            await queue.put(None)

    pump_task = asyncio.create_task(pump())
    # The server closes every watch when it shuts down (clients re-watch elsewhere).
    # asyncio.wait, not wait_for: on 3.11 wait_for can swallow a cancellation that
    # races with a queue item, which left watches running after shutdown.
    closing: asyncio.Event = request.app.get("closing") or asyncio.Event()
    closer = asyncio.ensure_future(closing.wait())
    getter: asyncio.Future | None = None
    next_bookmark = loop.time() + BOOKMARK_EVERY
    try:
        while True:
            now = loop.time()
            if now >= deadline:
                break
            wait_for = min(deadline, next_bookmark) - now
            if getter is None:
                getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, closer}, timeout=max(wait_for, 0.001),
                                         return_when=asyncio.FIRST_COMPLETED)
            if closer in done:
                break
            if getter not in done:
                if bookmarks and loop.time() >= next_bookmark - 0.01:
                    # The rv of the last event this stream has passed, never the store's newest:
                    # events up to that may still be on their way here, and a client that
                    # resumes from a bookmark would never see them.
                    await _write(resp, _bookmark(t, last_rv))
                    next_bookmark = loop.time() + BOOKMARK_EVERY
                continue
            ev, getter = getter.result(), None
            # Whatever else is queued already goes out in the same write: one chunk and one
            # socket send per burst rather than per event (a rollout is bursts of events).
            chunks: list[bytes] = []
            ended = False
            while True:
                if ev is None:
                    ended = True
                    break
                typ, obj, prev = ev
                last_rv = meta.resource_version(obj) or last_rv
                if typ == "INITIAL_END":
                    if send_initial == "true":
                        chunks.append(orjson.dumps(_bookmark(t, last_rv, initial_end=True)) + b"\n")
                elif pred is None or (typ := _filtered(typ, obj, prev, pred)) is not None:
                    chunks.append(printer.encode(typ, obj))
                if len(chunks) >= _BATCH or queue.empty():
                    break
                ev = queue.get_nowait()
            if chunks:
                await resp.write(b"".join(chunks))
            if ended:
                break
        if bookmarks:
            await _write(resp, _bookmark(t, last_rv))
    except ConnectionResetError:
        pass
    finally:
        for task in (pump_task, closer, getter):
            if task is not None:
                task.cancel()
        await asyncio.gather(pump_task, closer, *([getter] if getter else []), return_exceptions=True)
        try:
            await events.aclose()
        except RuntimeError:
            pass
    try:
        await resp.write_eof()
    except (ConnectionResetError, RuntimeError):
        pass
    return resp


def _filtered(typ: str, obj: Obj, prev: Obj | None, pred: Predicate) -> str | None:
    """The event type a selector-filtered watcher sees, or None to skip the event."""
    if typ == "DELETED":
        return typ if pred(obj) else None
    now = pred(obj)
    before = prev is not None and pred(prev)
    if typ == "ADDED":
        return typ if now else None
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    return "DELETED" if before else None


async def _start(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                   "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    return resp


async def _write(resp: web.StreamResponse, ev: Obj) -> None:
    await resp.write(orjson.dumps(ev) + b"\n")


# Events one write may carry: bounds the chunk (and the pause before the client sees the first).
_BATCH = 256

# The JSON line of an event, shared by every watcher that sends the same object as JSON
# (objects come decoded once per change for all watchers: see Registry._decode_shared).
# Keyed by the object's id, with the object kept so the id cannot be reused while cached.
_ENCODED: OrderedDict[tuple[str, int], tuple[Obj, bytes]] = OrderedDict()
_ENCODED_MAX = 2048


def _json_line(typ: str, obj: Obj) -> bytes:
    """``{"type": typ, "object": obj}`` as one newline-terminated JSON line, encoded once."""
    k = (typ, id(obj))
    hit = _ENCODED.get(k)
    if hit is not None and hit[0] is obj:
        return hit[1]
    line = orjson.dumps({"type": typ, "object": obj}) + b"\n"
    _ENCODED[k] = (obj, line)
    if len(_ENCODED) > _ENCODED_MAX:
        _ENCODED.popitem(last=False)
    return line


def _bookmark(t: Target, rv: str, initial_end: bool = False) -> Obj:
    md: Obj = {"resourceVersion": rv}
    if initial_end:
        md["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"type": "BOOKMARK", "object": {"kind": t.info.kind, "apiVersion": t.info.api_version, "metadata": md}}


class _Printer:
    """Turns objects into what the client asked for (a one-row Table for kubectl get -w)."""

    def __init__(self, t: Target, w: neg.Wants):
        self.t = t
        self.w = w
        self.headers_sent = False

    def encode(self, typ: str, obj: Obj) -> bytes:
        """The event's line on this stream."""
        if not self.w.table:
            return _json_line(typ, obj)
        return orjson.dumps({"type": typ, "object": self.render(obj)}) + b"\n"

    def render(self, obj: Obj) -> Obj:
        if not self.w.table:
            return obj
        tbl = table(self.t.info, [obj], self.w, resource_version=meta.resource_version(obj),
                    no_headers=self.headers_sent)
        self.headers_sent = True
        return tbl

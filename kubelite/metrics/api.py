"""``/apis/metrics.k8s.io/v1beta1``: NodeMetrics and PodMetrics, get and list only.

Objects are made on each request from the scraper's points and the labels of the Node or
Pod they measure (label selectors select on those, as metrics-server's do). A node or pod
without a point yet is NotFound on get and absent from lists.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from kubelite.api import errors, meta
from kubelite.api.metricsformat import cpu_quantity, memory_quantity
from kubelite.api.resources import NODES, PODS, ResourceInfo
from kubelite.apiserver import handlers as h
from kubelite.apiserver import negotiation as neg
from kubelite.apiserver import verbs
from kubelite.apiserver.handlers import Target
from kubelite.metrics.scraper import MetricsScraper, Point

__all__ = ["MetricsAPI", "cpu_quantity", "memory_quantity", "window_text"]

Obj = dict[str, Any]
GROUP = "metrics.k8s.io"
API_VERSION = "metrics.k8s.io/v1beta1"


def _stamp(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_text(seconds: float) -> str:
    """A Go duration as metav1.Duration prints it ("15s", "1m0.5s")."""
    ms = int(round(seconds * 1000))
    mins, rest = divmod(ms, 60_000)
    secs = f"{rest // 1000}.{rest % 1000:03d}".rstrip("0").rstrip(".") if rest % 1000 else str(rest // 1000)
    return f"{mins}m{secs}s" if mins else f"{secs}s"


def _usage(p: Point) -> Obj:
    return {"cpu": cpu_quantity(p.cpu_nanocores), "memory": memory_quantity(p.memory)}


def _meta(obj: Obj, now: str, namespaced: bool) -> Obj:
    md = obj.get("metadata") or {}
    out: Obj = {"name": md.get("name", "")}
    if namespaced:
        out["namespace"] = md.get("namespace", "")
    out["creationTimestamp"] = now
    if md.get("labels"):
        out["labels"] = md["labels"]
    return out


class MetricsAPI:
    """Answers the metrics group from a scraper; installed by the API server."""

    def __init__(self, scraper: MetricsScraper):
        self.scraper = scraper

    def node_metrics(self, node: Obj, now: str) -> Obj | None:
        """The NodeMetrics of one Node, if it has a point."""
        p = self.scraper.node_points.get(meta.name(node))
        if p is None:
            return None
        return {"kind": "NodeMetrics", "apiVersion": API_VERSION, "metadata": _meta(node, now, False),
                "timestamp": _stamp(p.time), "window": window_text(p.window), "usage": _usage(p)}

    def pod_metrics(self, pod: Obj, now: str) -> Obj | None:
        """The PodMetrics of one Pod, if it has points."""
        md = pod.get("metadata") or {}
        pp = self.scraper.pod_points.get((md.get("namespace", ""), md.get("name", "")))
        if pp is None:
            return None
        return {"kind": "PodMetrics", "apiVersion": API_VERSION, "metadata": _meta(pod, now, True),
                "timestamp": _stamp(pp.time), "window": window_text(pp.window),
                "containers": [{"name": n, "usage": _usage(p)} for n, p in pp.containers]}

    async def handle(self, request: web.Request, t: Target) -> web.StreamResponse:
        """GET of one NodeMetrics/PodMetrics or a list of them; every other verb is 405."""
        if request.method != "GET" or t.subresource or h.qbool(request, "watch"):
            raise errors.method_not_allowed()
        w = verbs.negotiate(request, t.info)
        reg = await h.registry_from(request)
        now = meta.rfc3339()
        source: ResourceInfo = NODES if t.info.plural == "nodes" else PODS
        build = self.node_metrics if source is NODES else self.pod_metrics
        if t.name:
            found, _rev, _cont, _rem = await reg.list(source, t.namespace,
                                                      predicate=lambda o: meta.name(o) == t.name)
            out = build(found[0], now) if found else None
            if out is None:
                # metrics-server names a pod by namespace/name here.
                # metrics-server's resource names here are podmetrics and nodemetrics.
                raise errors.not_found(t.info.kind.lower(), GROUP, f"{t.namespace}/{t.name}" if t.namespace else t.name)
            return verbs.render_one(request, t.info, out, w=w)
        h.validate_list_options(request, watch=False)
        pred = verbs.make_predicate(request, source)
        # Pages follow the Nodes or Pods measured (a page may be short: unmeasured ones are left out).
        limit = h.query_int(request, "limit") if request.query.get("limit") else 0
        objs, _rev, cont, _rem = await reg.list(source, t.namespace, predicate=pred, limit=max(limit, 0),
                                                continue_=request.query.get("continue", ""))
        items = [m for m in (build(o, now) for o in objs) if m is not None]
        if w.table:
            return neg.respond(verbs.table(t.info, items, w, resource_version="", continue_token=cont),
                               as_yaml=w.yaml)
        lst = {"kind": f"{t.info.kind}List", "apiVersion": API_VERSION,
               "metadata": {"continue": cont} if cont else {}, "items": items}
        return neg.respond(lst, as_yaml=w.yaml)

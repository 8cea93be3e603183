"""Conversion between two APIs that serve the same stored objects.

Upstream stores an Event once and serves it as core/v1 ``events`` and as
``events.k8s.io/v1`` ``events``: an Event created through either API is listed, read and
watched through both.  We do the same: events are stored in their core/v1 form, and a
resource whose catalogue entry names a ``storage_api_version`` is converted from that form
on every read and back to it on every write.

The field mapping is upstream's (``pkg/apis/events/v1`` conversion to the internal type,
whose JSON names are core/v1's):

=========================  ==========================
events.k8s.io/v1           core/v1
=========================  ==========================
regarding                  involvedObject
note                       message
reportingController        reportingComponent
deprecatedSource           source
deprecatedFirstTimestamp   firstTimestamp
deprecatedLastTimestamp    lastTimestamp
deprecatedCount            count
=========================  ==========================

``metadata``, ``eventTime``, ``series``, ``reportingInstance``, ``action``, ``reason``,
``related`` and ``type`` keep their names.  Each output is written as Go's JSON encoder
writes the target type: fields without ``omitempty`` are always present (``{}``,
``null`` or ``""`` when unset), the others only when set, in the struct's field order.
"""
from __future__ import annotations

from typing import Any

from kubelite.api import autoscaling
from kubelite.api.resources import ResourceInfo
from kubelite.apiextensions.info import CustomResourceInfo
from kubelite.apiextensions.schema import apply_defaults

Obj = dict[str, Any]


def _set(out: Obj, key: str, value: Any) -> None:
    """An ``omitempty`` field: written only when it has a non-zero value."""
    if value not in (None, "", 0, {}, []):
        out[key] = value


def event_to_core(ev: Obj) -> Obj:
    """An events.k8s.io/v1 Event in its core/v1 form."""
    out: Obj = {"kind": "Event", "apiVersion": "v1", "metadata": ev.get("metadata") or {},
                "involvedObject": ev.get("regarding") or {}}
    _set(out, "reason", ev.get("reason"))
    _set(out, "message", ev.get("note"))
    out["source"] = ev.get("deprecatedSource") or {}
    out["firstTimestamp"] = ev.get("deprecatedFirstTimestamp")
    out["lastTimestamp"] = ev.get("deprecatedLastTimestamp")
    _set(out, "count", ev.get("deprecatedCount"))
    _set(out, "type", ev.get("type"))
    out["eventTime"] = ev.get("eventTime")
    _set(out, "series", ev.get("series"))
    _set(out, "action", ev.get("action"))
    _set(out, "related", ev.get("related"))
    out["reportingComponent"] = ev.get("reportingController") or ""
    out["reportingInstance"] = ev.get("reportingInstance") or ""
    return out


def event_from_core(ev: Obj) -> Obj:
    """A core/v1 Event in its events.k8s.io/v1 form."""
    out: Obj = {"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": ev.get("metadata") or {},
                "eventTime": ev.get("eventTime")}
    _set(out, "series", ev.get("series"))
    _set(out, "reportingController", ev.get("reportingComponent"))
    _set(out, "reportingInstance", ev.get("reportingInstance"))
    _set(out, "action", ev.get("action"))
    _set(out, "reason", ev.get("reason"))
    out["regarding"] = ev.get("involvedObject") or {}
    _set(out, "related", ev.get("related"))
    _set(out, "note", ev.get("message"))
    _set(out, "type", ev.get("type"))
    out["deprecatedSource"] = ev.get("source") or {}
    out["deprecatedFirstTimestamp"] = ev.get("firstTimestamp")
    out["deprecatedLastTimestamp"] = ev.get("lastTimestamp")
    _set(out, "deprecatedCount", ev.get("count"))
    return out


# (served apiVersion, kind, stored apiVersion) -> (to storage, from storage)
_CONVERTERS = {
    ("events.k8s.io/v1", "Event", "v1"): (event_to_core, event_from_core),
    ("autoscaling/v1", "HorizontalPodAutoscaler", "autoscaling/v2"): (autoscaling.v1_to_v2, autoscaling.v2_to_v1),
}


def to_storage(info: ResourceInfo, obj: Obj) -> Obj:
    """The object as it is stored: converted when ``info`` is a view of another API's storage."""
    if not info.storage_api_version:
        return obj
    conv = _CONVERTERS.get((info.api_version, info.kind, info.storage_api_version))
    if conv is None:
        # Custom resources: the "None" strategy only rewrites apiVersion.
        return {**obj, "apiVersion": info.storage_api_version}
    return conv[0](obj)


def from_storage(info: ResourceInfo, obj: Obj) -> Obj:
    """A stored object as ``info``'s API serves it."""
    if not info.storage_api_version:
        return obj
    conv = _CONVERTERS.get((info.api_version, info.kind, info.storage_api_version))
    if conv is None:
        obj["apiVersion"] = info.api_version
        if isinstance(info, CustomResourceInfo):
            # Upstream defaults on every read, so a default added later shows on old objects.
            apply_defaults(obj, info.schema)
        return obj
    return conv[1](obj)

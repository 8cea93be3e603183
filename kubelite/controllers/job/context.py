"""What one Job sync knows (``SyncContext``) and what its step modules need from the controller.

``manage`` (creating and deleting pods) and ``tracking`` (counting finished pods through
their finalizers, writing status) are the steps of one sync, split as upstream splits
job_controller.go.  They act through ``JobControllerContext``, which ``JobController``
implements, so they never import the controller that imports them.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubelite.client.protocols import Recorder, ResourceAPI
from kubelite.client.workqueue import WorkQueue
from kubelite.controllers.expectations import Expectations
from kubelite.controllers.job import util as ju

Obj = dict[str, Any]


class JobControllerContext(Protocol):
    """The controller as its sync steps see it."""

    job_client: ResourceAPI
    pod_client: ResourceAPI
    recorder: Recorder
    expectations: Expectations
    finalizer_expectations: dict[str, set[str]]
    backoff: dict[str, ju.BackoffRecord]
    backoff_base: float
    backoff_cap: float
    queue: WorkQueue

    def now(self) -> _dt.datetime:
        """The controller's clock (replaceable in tests)."""
        ...


@dataclass
class SyncContext:
    """What one sync learns about a Job (syncJobCtx)."""

    job: Obj
    pods: list[Obj]
    active_pods: list[Obj]
    ready: int
    terminating: int
    uncounted_succeeded: set[str]
    uncounted_failed: set[str]
    expected_rm_finalizers: set[str]
    succeeded: int = 0
    failed: int = 0
    finished_condition: Obj | None = None
    backoff: ju.BackoffRecord = field(default_factory=ju.BackoffRecord)
    prev_succeeded_indexes: list[int] = field(default_factory=list)
    succeeded_indexes: list[int] = field(default_factory=list)
    failed_indexes: list[int] | None = None
    delayed_per_index: dict[int, Obj] = field(default_factory=dict)

def spec(job: Obj) -> Obj:
    """The Job's spec ({} when absent)."""
    return job.get("spec") or {}

def is_indexed(job: Obj) -> bool:
    """completionMode Indexed."""
    return spec(job).get("completionMode") == "Indexed"

def per_index(job: Obj) -> bool:
    """backoffLimitPerIndex is set."""
    return spec(job).get("backoffLimitPerIndex") is not None

def suspended(job: Obj) -> bool:
    """spec.suspend is true."""
    return bool(spec(job).get("suspend"))

def completions(job: Obj) -> int:
    """spec.completions (0 when unset)."""
    return int(spec(job).get("completions") or 0)

"""emptyDir sizeLimit eviction at unit level: measuring, which volumes count, and what an
eviction does to the pod worker (the end-to-end case is in test_volumes_oci.py)."""
from __future__ import annotations

import asyncio
import os

from kubelite.node import emptydir_eviction as ev


def _pod(*volumes: dict) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"volumes": list(volumes)}}


def test_usage_counts_allocated_blocks_and_hard_links_once(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(os.urandom(200_000))
    os.link(tmp_path / "d" / "a", tmp_path / "b")
    (tmp_path / "sparse").open("wb").truncate(50_000_000)  # a hole allocates nothing
    os.symlink("/", tmp_path / "root-link")                # never followed
    used = ev.usage(str(tmp_path))
    assert 200_000 <= used < 400_000, used
    assert ev.usage(str(tmp_path / "missing")) == 0


def test_usage_stops_early_past_a_bound(tmp_path):
    for i in range(20):
        sub = tmp_path / f"d{i}"
        sub.mkdir()
        (sub / "f").write_bytes(b"x" * 100_000)
    full = ev.usage(str(tmp_path))
    partial = ev.usage(str(tmp_path), stop_above=150_000)
    assert 150_000 < partial < full, (partial, full)


def test_only_disk_emptydirs_with_a_size_limit_are_watched():
    pod = _pod({"name": "a", "emptyDir": {"sizeLimit": "1Mi"}}, {"name": "b", "emptyDir": {}},
               {"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
               {"name": "c", "configMap": {"name": "x"}}, {"name": "k", "emptyDir": {"sizeLimit": "2k"}})
    assert ev.limited_volumes(pod) == [("a", "1Mi", 1_048_576), ("k", "2k", 2000)]


def test_the_message_is_the_kubelets():
    assert ev.message("scratch", "1Mi") == 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj, type_, reason, message, *, field_path=""):
        self.events.append((type_, reason, message))


class _Worker:
    def __init__(self, pod: dict, paths: dict[str, str]):
        self.pod = pod
        self.paths = paths
        self.failed: list[tuple[str, str, float | None, dict | None]] = []

    def finished(self) -> bool:
        return bool(self.failed)

    def volume_path(self, name: str) -> str | None:
        return self.paths.get(name)

    async def fail(self, reason, message, *, grace=None, condition=None):
        self.failed.append((reason, message, grace, condition))


def test_a_pod_over_its_limit_is_evicted_without_grace_and_one_under_it_is_not(tmp_path):
    over, under = tmp_path / "over", tmp_path / "under"
    over.mkdir()
    under.mkdir()
    (over / "f").write_bytes(os.urandom(3000))
    (under / "f").write_bytes(os.urandom(500))
    w_over = _Worker(_pod({"name": "scratch", "emptyDir": {"sizeLimit": "2k"}}), {"scratch": str(over)})
    w_under = _Worker(_pod({"name": "scratch", "emptyDir": {"sizeLimit": "8k"}}), {"scratch": str(under)})
    not_set_up = _Worker(_pod({"name": "scratch", "emptyDir": {"sizeLimit": "1"}}), {})
    rec = _Recorder()
    assert asyncio.run(ev.check([w_over, w_under, not_set_up], rec)) == 1
    msg = 'Usage of EmptyDir volume "scratch" exceeds the limit "2k". '
    assert rec.events == [("Warning", "Evicted", msg)]
    ((reason, message, grace, cond),) = w_over.failed
    assert (reason, message, grace) == ("Evicted", msg, 0)
    assert cond is not None and (cond["type"], cond["status"], cond["reason"], cond["message"]) == (
        "DisruptionTarget", "True", "TerminationByKubelet", msg)
    assert w_under.failed == [] and not_set_up.failed == []
    # An evicted (finished) pod is not evicted again.
    assert asyncio.run(ev.check([w_over], rec)) == 0

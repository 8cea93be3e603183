"""Usage readers (cgroups, /proc, fake annotations), the scraper's rates, and the metrics
API's quantity formats."""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import ssl

import pytest

from kubelite.metrics.api import cpu_quantity, memory_quantity, window_text
from kubelite.metrics.scraper import MetricsScraper, NodeLister, Sample, rate
from kubelite.node.runtime.fake import FakeRuntime
from kubelite.node.runtime.usage import cgroup_v1_usage, cgroup_v2_usage, host_usage, session_usage

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _write(d, name: str, text: str) -> None:
    (d / name).write_text(text)


def test_cgroup_v2_working_set_is_usage_minus_inactive_file(tmp_path):
    _write(tmp_path, "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    _write(tmp_path, "memory.current", "10000\n")
    _write(tmp_path, "memory.stat", "anon 5000\nfile 5000\ninactive_file 4000\nactive_file 1000\n")
    u = cgroup_v2_usage(str(tmp_path))
    assert u is not None and (u.cpu_ns, u.memory_bytes) == (1_500_000, 6000)


def test_cgroup_v1_reads_cpuacct_and_memory(tmp_path):
    cpu, mem = tmp_path / "cpu", tmp_path / "mem"
    cpu.mkdir()
    mem.mkdir()
    _write(cpu, "cpuacct.usage", "123456789\n")
    _write(mem, "memory.usage_in_bytes", "8192\n")
    _write(mem, "memory.stat", "cache 4096\ntotal_inactive_file 4096\n")
    u = cgroup_v1_usage(str(cpu), str(mem))
    assert u is not None and (u.cpu_ns, u.memory_bytes) == (123456789, 4096)


def test_gone_cgroup_reads_as_none(tmp_path):
    assert cgroup_v2_usage(str(tmp_path / "gone")) is None
    assert cgroup_v1_usage(None, str(tmp_path / "gone")) is None


def test_session_usage_counts_this_process():
    u = session_usage(os.getsid(0))
    assert u is not None and u.memory_bytes > 0 and u.cpu_ns > 0
    assert session_usage(2**22 + 12345) is None  # no such session


def test_host_usage_is_positive():
    u = host_usage()
    assert u.cpu_ns > 0 and u.memory_bytes > 0


def test_fake_runtime_reports_annotated_usage(tmp_path):
    async def run() -> None:
        rt = FakeRuntime(str(tmp_path))
        pod = {"metadata": {"uid": "u1", "name": "p", "namespace": "d", "annotations": {
            "fake.kubelite.dev/cpu-usage": "500m", "fake.kubelite.dev/memory-usage": "64Mi",
            "fake.kubelite.dev/side.cpu-usage": "1"}}, "spec": {"containers": [{"name": "main"}, {"name": "side"}]}}
        sandbox = await rt.create_sandbox(pod)
        image = await rt.pull("gcr.io/google-samples/kubernetes-bootcamp:v1")
        main = await rt.start_container(sandbox, pod, {"name": "main"}, image, {})
        side = await rt.start_container(sandbox, pod, {"name": "side"}, image, {})
        # Pretend both started ten seconds ago: the counter integrates the rate since then.
        for h in (main, side):
            h.started_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=10)
        u = rt.container_usage(main, pod)
        assert u is not None and u.memory_bytes == 64 * 2**20
        assert 4.9e9 <= u.cpu_ns <= 5.2e9  # 0.5 core × 10 s
        s = rt.container_usage(side, pod)
        assert s is not None and 9.9e9 <= s.cpu_ns <= 10.3e9 and s.memory_bytes == 64 * 2**20
        await rt.stop_container(main, 0)
        assert rt.container_usage(main, pod) is None
        await rt.cleanup_all()
    asyncio.run(run())


def test_rate_from_two_samples():
    p = rate(Sample(T0, 1_000_000_000, 10), Sample(T0 + dt.timedelta(seconds=2), 2_000_000_000, 20))
    assert p is not None and (p.cpu_nanocores, p.memory, p.window) == (500_000_000, 20, 2.0)
    assert rate(Sample(T0, 5, 1), Sample(T0 + dt.timedelta(seconds=1), 4, 1)) is None  # counter reset
    assert rate(Sample(T0, 5, 1), Sample(T0, 6, 1)) is None


class _Scripted(MetricsScraper):
    """A scraper whose node answers come from a list, one per round."""

    def __init__(self, docs: list[dict]):
        async def nodes() -> list[dict]:
            return [{"metadata": {"name": "n1"}}]
        super().__init__(NodeLister(nodes), ssl.create_default_context(), 1.0)
        self.docs = docs

    async def _fetch(self, node: dict) -> dict | None:
        return self.docs.pop(0)


def _doc(t: int, node_cpu: int, containers: dict[str, int]) -> dict:
    when = (T0 + dt.timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cells = lambda cpu: {"cpu": {"time": when, "usageCoreNanoSeconds": cpu},  # noqa: E731
                         "memory": {"time": when, "workingSetBytes": 1024}}
    return {"node": {"nodeName": "n1", **cells(node_cpu)},
            "pods": [{"podRef": {"name": "p", "namespace": "d", "uid": "u"},
                      "containers": [{"name": n, **cells(v)} for n, v in containers.items()]}]}


def test_scraper_publishes_points_after_two_samples():
    s = _Scripted([_doc(0, 0, {"a": 0, "b": 0}), _doc(10, 20 * 10**9, {"a": 10**9, "b": 3 * 10**9})])
    asyncio.run(s.scrape_once())
    assert s.node_points == {} and s.pod_points == {}
    asyncio.run(s.scrape_once())
    assert s.node_points["n1"].cpu_nanocores == 2 * 10**9
    pp = s.pod_points[("d", "p")]
    assert dict((n, p.cpu_nanocores) for n, p in pp.containers) == {"a": 10**8, "b": 3 * 10**8}
    assert pp.window == 10.0


def test_scraper_waits_for_every_container_of_a_pod():
    """A container that restarted (its counter went back) holds the pod out for a round."""
    s = _Scripted([_doc(0, 0, {"a": 5 * 10**9, "b": 0}), _doc(10, 10, {"a": 10**9, "b": 10**9})])
    asyncio.run(s.scrape_once())
    asyncio.run(s.scrape_once())
    assert ("d", "p") not in s.pod_points


@pytest.mark.parametrize("nanocores,text", [(0, "0"), (2_386_046, "2386046n"), (150_000_000, "150m"),
                                            (2_000_000_000, "2"), (1_500_000, "1500u")])
def test_cpu_quantity(nanocores, text):
    assert cpu_quantity(nanocores) == text


@pytest.mark.parametrize("value,text", [(0, "0"), (64 * 2**20, "64Mi"), (34452 * 1024, "34452Ki"), (1000, "1000")])
def test_memory_quantity(value, text):
    assert memory_quantity(value) == text


@pytest.mark.parametrize("seconds,text", [(15, "15s"), (2.004, "2.004s"), (60.5, "1m0.5s"), (90, "1m30s")])
def test_window_is_a_go_duration(seconds, text):
    assert window_text(seconds) == text


def test_pod_cgroups_usage_on_a_v2_root(tmp_path):
    """The oci runtime's reader finds a container's directory under a (fake) unified root."""
    from kubelite.node.runtime.oci.cgroups import PodCgroups
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    cg = PodCgroups("kubelite-x", root=str(tmp_path))
    d = tmp_path / "kubelite-x" / "podu1" / "c1"
    d.mkdir(parents=True)
    _write(d, "cpu.stat", "usage_usec 2000000\n")
    _write(d, "memory.current", "3000\n")
    _write(d, "memory.stat", "inactive_file 1000\n")
    u = cg.usage("u1", "c1")
    assert u is not None and (u.cpu_ns, u.memory_bytes) == (2 * 10**9, 2000)
    assert cg.usage("u1", "gone") is None

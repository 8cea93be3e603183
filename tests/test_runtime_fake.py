"""The fake (kwok-like) runtime: records instead of processes."""
import asyncio
import ipaddress
import os

import pytest

from kubelite.images.store import ImageNotFound
from kubelite.node.runtime import logs
from kubelite.node.runtime.fake import Behaviour, FakeRuntime, behaviour, parse_duration, pod_cidr_for_slot

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
SERVICE_RANGE = ipaddress.ip_network("127.96.0.0/12")  # every userspace service block


def _pod(annotations: dict | None = None, init: list[str] = ()) -> dict:
    return {"metadata": {"name": "f", "namespace": "default", "uid": "f1", "annotations": annotations or {}},
            "spec": {"initContainers": [{"name": n} for n in init], "containers": [{"name": "c"}]}}


async def test_fake_runtime_runs_nothing_but_behaves(tmp_path):
    rt = FakeRuntime(str(tmp_path), delay=0.01)
    with pytest.raises(ImageNotFound):
        await rt.pull("jocatalin/kubernetes-bootcamp:v10")
    image = await rt.pull("jocatalin/kubernetes-bootcamp:v1")
    p = _pod()
    sb = await rt.create_sandbox(p)
    assert ipaddress.ip_address(sb.ip) in LOOPBACK
    handle = await rt.start_container(sb, p, {"name": "c"}, image, {})
    assert rt.is_running(handle)
    assert logs.read_logs(rt.log_path(handle)) == b""
    session = await rt.exec(sb, handle, ["ls"], tty=False)
    assert await session.stdout.read() == b"" and await session.wait() == 0
    assert rt.probe_result(handle, "readiness") == (True, "")
    await rt.stop_container(handle, 30)
    info = await rt.wait(handle)
    assert (info.exit_code, info.reason) == (0, "Completed")
    await rt.cleanup_all()
    assert not os.path.exists(os.path.join(str(tmp_path), "images", "rootfs", image.digest.split(":")[1]))


def test_fake_pod_ranges_are_loopback_and_clear_of_process_pods_and_services():
    process_host_ranges = [ipaddress.ip_network(f"127.{i + 1}.0.0/16") for i in range(90)]
    for slot in range(90):
        net = ipaddress.ip_network(pod_cidr_for_slot(slot))
        assert net.subnet_of(LOOPBACK)
        assert not net.overlaps(SERVICE_RANGE)
        assert not any(net.overlaps(r) for r in process_host_ranges)
        assert not net.overlaps(ipaddress.ip_network("127.0.0.0/16"))  # node and API server addresses


@pytest.mark.parametrize("cidr", ["10.244.0.0/24", "192.168.1.0/24", "::1/128", "not-a-cidr"])
def test_fake_runtime_refuses_a_pod_range_outside_loopback(tmp_path, cidr):
    with pytest.raises(ValueError, match="127.0.0.0/8"):
        FakeRuntime(str(tmp_path), pod_cidr=cidr)


@pytest.mark.parametrize("text,seconds", [("5s", 5.0), ("500ms", 0.5), ("1m30s", 90.0), ("2", 2.0), ("0.25", 0.25),
                                          ("1h", 3600.0)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "s", "-1s", "1s5", "abc"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_behaviour_from_annotations():
    P = "fake.kubelite.dev/"
    assert behaviour(_pod(), "c") == Behaviour()
    assert behaviour(_pod({P + "exit-after": "5s", P + "exit-code": "1"}), "c") == Behaviour(5.0, 1, False)
    assert behaviour(_pod({P + "exit-code": "3"}), "c") == Behaviour(0.0, 3, False)  # code alone: exits at once
    assert behaviour(_pod({P + "never-ready": "true"}), "c").never_ready
    # Per-container keys win; pod-wide keys do not reach init containers, which complete at once.
    pod = _pod({P + "exit-code": "1", P + "c.exit-code": "2", P + "c.exit-after": "1s", P + "i.exit-code": "4"},
               init=["i", "j"])
    assert behaviour(pod, "c") == Behaviour(1.0, 2, False)
    assert behaviour(pod, "i", init=True) == Behaviour(0.0, 4, False)
    assert behaviour(pod, "j", init=True) == Behaviour(0.0, 0, False)
    # Bad values are ignored.
    assert behaviour(_pod({P + "exit-after": "soon", P + "exit-code": "300"}), "c") == Behaviour()


async def test_fake_container_exits_as_annotated_and_again_after_a_restart(tmp_path):
    P = "fake.kubelite.dev/"
    rt = FakeRuntime(str(tmp_path))
    image = await rt.pull("jocatalin/kubernetes-bootcamp:v1")
    p = _pod({P + "exit-after": "50ms", P + "exit-code": "1", P + "never-ready": "true"}, init=["i"])
    sb = await rt.create_sandbox(p)
    init = await rt.start_container(sb, p, {"name": "i"}, image, {})
    assert (await asyncio.wait_for(rt.wait(init), 5)).exit_code == 0
    for _ in range(2):
        h = await rt.start_container(sb, p, {"name": "c"}, image, {})
        assert rt.probe_result(h, "readiness")[0] is False
        assert rt.probe_result(h, "liveness") == (True, "")
        info = await asyncio.wait_for(rt.wait(h), 5)
        assert (info.exit_code, info.reason) == (1, "Error")
        assert not rt.is_running(h)
    await rt.cleanup_all()

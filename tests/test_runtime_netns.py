"""Pod networks: the 127.x host fallback, and one network namespace per pod when we may."""
import asyncio
import os

import pytest

from kubelite.node.runtime import logs
from kubelite.node.runtime.netns import HostNetwork, NetnsNetwork, make_network, netns_supported
from kubelite.node.runtime.process import ProcessRuntime


async def test_host_network_gives_distinct_loopback_addresses():
    net = HostNetwork("127.1.0.0/16")
    ips = {(await net.setup(f"uid-{i}"))[0] for i in range(300)}
    assert len(ips) == 300 and all(ip.startswith("127.1.") for ip in ips)
    assert "127.0.0.1" not in ips and not any(ip.endswith((".0", ".255")) for ip in ips)
    assert (await net.setup("uid-7"))[0] in ips  # idempotent per pod
    with pytest.raises(ValueError):
        HostNetwork("10.0.0.0/24")


def test_mode_selection():
    assert make_network("host").mode == "host"
    assert make_network("auto").mode == ("netns" if netns_supported() else "host")
    with pytest.raises(ValueError):
        make_network("bogus")


async def test_pods_in_namespaces_serve_on_their_own_ip_and_leave_nothing_behind(tmp_path):
    if not netns_supported():
        # Without CAP_NET_ADMIN the only network is the host one; that is what auto picks.
        assert make_network("auto").mode == "host"
        return
    bridge = f"kltb{os.getpid() % 100000}"
    cidr = f"10.251.{os.getpid() % 250}.0/24"
    net = NetnsNetwork(cidr, bridge, prefix="klt")
    rt = ProcessRuntime(str(tmp_path), pod_network=net)
    try:
        p = {"metadata": {"name": "ns-pod", "namespace": "default", "uid": "a1b2c3d4-0000"}, "spec": {}}
        sb = await rt.create_sandbox(p)
        assert sb.netns == "klt-a1b2c3d4" and sb.ip.startswith(cidr.rsplit(".", 1)[0])
        image = await rt.pull("jocatalin/kubernetes-bootcamp:v2")
        handle = await rt.start_container(sb, p, {"name": "app"}, image, {})

        async def banner():
            async for line in logs.follow_logs(handle.log_path, poll=0.02):
                if b"Started At" in line:
                    return
        await asyncio.wait_for(banner(), 20)
        reader, writer = await rt.open_port(sb, 8080)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(), 10)).endswith(b"Running on: ns-pod | v=2\n")
        writer.close()
        session = await rt.exec(sb, handle, ["ip", "-o", "-4", "addr", "show", "eth0"], tty=False)
        assert sb.ip in (await session.stdout.read()).decode() and await session.wait() == 0
    finally:
        await rt.cleanup_all()
    assert not os.path.exists("/run/netns/klt-a1b2c3d4")
    assert not os.path.exists(f"/sys/class/net/{bridge}")
    assert not os.path.exists("/sys/class/net/kltva1b2c3d4")


def _sysfs(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


async def test_concurrent_pod_networks_each_get_address_route_and_hairpin():
    if not netns_supported():
        assert make_network("auto").mode == "host"
        return
    bridge = f"kltc{os.getpid() % 100000}"
    cidr = f"10.252.{os.getpid() % 250}.0/24"
    net = NetnsNetwork(cidr, bridge, prefix="klc")
    uids = [f"c0ffee{i:02d}-0000" for i in range(6)]
    try:
        got = await asyncio.gather(*(net.setup(u) for u in uids))
        assert len({ip for ip, _ in got}) == len(uids)
        assert await net.setup(uids[0]) == got[0]  # idempotent per pod: nothing is configured twice
        for uid, (ip, ns) in zip(uids, got, strict=True):
            veth = net.names(uid)[1]
            assert _sysfs(f"/sys/class/net/{veth}/brport/hairpin_mode") == "1"
            assert os.path.basename(os.readlink(f"/sys/class/net/{veth}/master")) == bridge
            proc = await asyncio.create_subprocess_exec("ip", "-n", ns, "-o", "-4", "addr", "show", "eth0",
                                                        stdout=asyncio.subprocess.PIPE)
            assert f" {ip}/24 " in (await proc.communicate())[0].decode()
            proc = await asyncio.create_subprocess_exec("ip", "-n", ns, "route", "show", "default",
                                                        stdout=asyncio.subprocess.PIPE)
            assert f"via {net.gateway} dev eth0" in (await proc.communicate())[0].decode()
    finally:
        await net.cleanup_all()
    for uid in uids:
        ns, veth = net.names(uid)
        assert not os.path.exists(f"/run/netns/{ns}") and not os.path.exists(f"/sys/class/net/{veth}")
    assert not os.path.exists(f"/sys/class/net/{bridge}")

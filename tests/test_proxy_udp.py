"""UDP Service ports: datagrams reach a ready endpoint, replies come back from the Service
address, a client sticks to its endpoint, and flows move when an endpoint goes away."""
import asyncio
import socket

from kubelite.proxy.balancer import Balancer, Endpoint
from kubelite.proxy.traffic import UDP_QUIET, PodTraffic
from kubelite.proxy.udp import UDPListener


class Echo(asyncio.DatagramProtocol):
    """Answers every datagram with `<name>:<payload>`."""

    def __init__(self, name: str):
        self.name = name.encode()

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(self.name + b":" + data, addr)


async def echo(host: str, name: str):
    loop = asyncio.get_running_loop()
    t, _ = await loop.create_datagram_endpoint(lambda: Echo(name), local_addr=(host, 0))
    return t, Endpoint(host, t.get_extra_info("sockname")[1], pod_uid=name)


async def ask(host: str, port: int, payload: bytes, sock: socket.socket | None = None, timeout: float = 5) -> bytes:
    """Send one datagram and wait for the reply (on the given or a fresh socket)."""
    loop = asyncio.get_running_loop()
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        await loop.sock_sendto(s, payload, (host, port))
        data, src = await asyncio.wait_for(loop.sock_recvfrom(s, 65536), timeout)
        assert src == (host, port), "the reply must come from the Service address"
        return data
    finally:
        if sock is None:
            s.close()


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def test_udp_forwarding_sticks_per_client_and_moves_when_an_endpoint_goes():
    t1, e1 = await echo("127.0.91.1", "a")
    t2, e2 = await echo("127.0.91.2", "b")
    bal = Balancer()
    bal.set_endpoints([e1, e2])
    lst = UDPListener("127.0.91.10", free_udp_port("127.0.91.10"), bal)
    await lst.start()
    try:
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        first = await ask(lst.host, lst.port, b"x", client)
        name = first.split(b":")[0]
        assert first in (b"a:x", b"b:x")
        for i in range(5):  # one client keeps its endpoint (its flow)
            assert await ask(lst.host, lst.port, b"%d" % i, client) == name + b":%d" % i
        # Fresh clients are balanced over both endpoints.
        names = {(await ask(lst.host, lst.port, b"y")).split(b":")[0] for _ in range(10)}
        assert names == {b"a", b"b"}
        # The endpoint of the sticky client goes away: its next datagram moves.
        other = [e for e in (e1, e2) if e.pod_uid.encode() != name]
        bal.set_endpoints(other)
        assert await ask(lst.host, lst.port, b"z", client) == other[0].pod_uid.encode() + b":z"
        client.close()
    finally:
        lst.close()
        t1.close()
        t2.close()


async def test_udp_without_endpoints_drops_and_recovers():
    bal = Balancer()
    lst = UDPListener("127.0.91.11", free_udp_port("127.0.91.11"), bal)
    await lst.start()
    t, e = await echo("127.0.91.3", "c")
    try:
        try:
            await ask(lst.host, lst.port, b"nobody", timeout=0.5)
            raise AssertionError("a datagram with no endpoint must be dropped")
        except TimeoutError:
            pass
        bal.set_endpoints([e])
        assert await ask(lst.host, lst.port, b"hi") == b"c:hi"
        assert lst.active >= 1
    finally:
        lst.close()
        t.close()
    assert lst.active == 0 and not lst.serving


async def test_udp_pod_stays_busy_for_a_moment_after_its_last_datagram():
    now = [1000.0]
    traffic = PodTraffic(clock=lambda: now[0])
    t1, e1 = await echo("127.0.91.4", "d")
    t2, e2 = await echo("127.0.91.5", "e")
    bal = Balancer()
    bal.set_endpoints([e1])
    lst = UDPListener("127.0.91.12", free_udp_port("127.0.91.12"), bal, traffic=traffic)
    await lst.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    try:
        assert await ask(lst.host, lst.port, b"q", client) == b"d:q"
        # d stops being routed: a reply to a datagram it just got may still be on its way.
        bal.set_endpoints([e1._replace(ready=False, terminating=True), e2])
        assert traffic.busy("d")
        now[0] += UDP_QUIET
        assert not traffic.busy("d")
        # The client's next datagram moves to e, and d stays quiet.
        assert await ask(lst.host, lst.port, b"r", client) == b"e:r"
        assert not traffic.busy("d") and traffic.busy("e")
    finally:
        client.close()
        lst.close()
        t1.close()
        t2.close()


UDP_ECHO = ("import socket,os\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.bind((os.environ.get('POD_IP','0.0.0.0'),5353))\n"
            "while True:\n"
            "  d,a=s.recvfrom(65536)\n"
            "  s.sendto(os.environ['HOSTNAME'].encode()+b':'+d,a)\n")


def test_udp_nodeport_service_reaches_the_pod(cluster):
    import json
    ns = "udp-" + __import__("os").urandom(2).hex()
    cluster.kubectl("create", "namespace", ns, check=True)
    cluster.kubectl("run", "echo", "-n", ns, "--image=gcr.io/google-samples/kubernetes-bootcamp:v1",
                    "--command", "--", "python3", "-c", UDP_ECHO, check=True)
    out = cluster.kubectl("expose", "pod", "echo", "-n", ns, "--type=NodePort", "--port=5353",
                          "--protocol=UDP", check=True).stdout
    assert out.strip() == "service/echo exposed"
    svc = json.loads(cluster.kubectl("get", "svc", "echo", "-n", ns, "-o", "json", check=True).stdout)
    port = svc["spec"]["ports"][0]["nodePort"]
    assert svc["spec"]["ports"][0]["protocol"] == "UDP"
    assert f"5353:{port}/UDP" in cluster.kubectl("get", "svc", "echo", "-n", ns, check=True).stdout

    def answered():
        async def once():
            return await ask("127.0.0.1", port, b"ping", timeout=1)
        try:
            return asyncio.run(once())
        except (TimeoutError, OSError):
            return None
    assert cluster.wait_for(answered, timeout=30, what="a UDP reply through the NodePort") == b"echo:ping"

"""Protocol-level tests of kubelite.streams: SPDY framing and sessions, handshakes, channels."""
from __future__ import annotations

import asyncio
import base64
import json
import struct

import aiohttp
import pytest
from aiohttp import web
from test_streams_harness import local_session

from kubelite.streams import serve_exec, serve_portforward, spdy
from kubelite.streams.remotecommand import WEBSOCKET_CLIENT_SETUP, exit_status, resize_events

# -- framing -----------------------------------------------------------------------------


def test_dictionary_is_the_spdy3_dictionary():
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def test_header_blocks_share_one_zlib_stream_per_direction():
    client, server = spdy.HeaderCodec(), spdy.HeaderCodec()
    blocks = [{"streamType": ["error"], "Port": ["80"]}, {"streamtype": ["data"], "port": ["80"]},
              {"x": ["a", "b"]}]
    for block in blocks:
        decoded = server.decode(client.encode(block))
        assert decoded == {k.lower(): v for k, v in block.items()}


def test_parser_reassembles_frames_split_into_single_bytes():
    codec = spdy.HeaderCodec()
    wire = (spdy.encode_syn_stream(codec, 1, {"streamtype": ["error"]})
            + spdy.encode_data(1, b"hello", fin=True) + spdy.encode_ping(7)
            + spdy.encode_window_update(1, 100) + spdy.encode_rst_stream(3, spdy.CANCEL)
            + spdy.encode_settings({spdy.SETTINGS_INITIAL_WINDOW_SIZE: 1000}) + spdy.encode_goaway(5))
    assert wire[:4] == b"\x80\x03\x00\x01"  # what kubectl ≥1.31 splits across WebSocket messages
    parser = spdy.FrameParser(spdy.HeaderCodec())
    frames = [f for i in range(len(wire)) for f in parser.feed(wire[i:i + 1])]
    assert [(f.kind, f.stream_id) for f in frames] == [
        (spdy.SYN_STREAM, 1), (0, 1), (spdy.PING, 0), (spdy.WINDOW_UPDATE, 1),
        (spdy.RST_STREAM, 3), (spdy.SETTINGS, 0), (spdy.GOAWAY, 0)]
    syn, data, ping, wu, rst, settings, goaway = frames
    assert syn.headers == {"streamtype": ["error"]}
    assert data.data == b"hello" and data.flags & spdy.FLAG_FIN
    assert ping.value == 7 and wu.value == 100 and rst.status == spdy.CANCEL
    assert settings.settings == {spdy.SETTINGS_INITIAL_WINDOW_SIZE: 1000}
    assert goaway.value == 5


def test_parser_rejects_other_spdy_versions():
    parser = spdy.FrameParser(spdy.HeaderCodec())
    with pytest.raises(spdy.ProtocolError):
        parser.feed(struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\x00\x00\x00\x01")


# -- sessions over an in-memory pipe ----------------------------------------------------


class Peer:
    """The client end of an in-memory SPDY session."""

    def __init__(self, **kwargs) -> None:
        self.to_server: asyncio.Queue[bytes] = asyncio.Queue()
        self.from_server = bytearray()
        self.codec = spdy.HeaderCodec()
        self.parser = spdy.FrameParser(spdy.HeaderCodec())
        self.frames: list[spdy.Frame] = []
        self.arrived = asyncio.Event()

        async def read() -> bytes:
            return await self.to_server.get()

        async def write(data: bytes) -> None:
            self.frames.extend(self.parser.feed(data))
            self.arrived.set()

        self.session = spdy.Session(read, write, **kwargs)
        self.session.start()

    def send(self, frame: bytes) -> None:
        self.to_server.put_nowait(frame)

    async def wait_for(self, predicate) -> spdy.Frame:
        while True:
            for f in self.frames:
                if predicate(f):
                    self.frames.remove(f)
                    return f
            self.arrived.clear()
            await self.arrived.wait()


async def test_session_replies_echoes_and_finishes_streams():
    peer = Peer()
    peer.send(spdy.encode_syn_stream(peer.codec, 1, {"streamtype": ["stdout"]}))
    stream = await peer.session.accept()
    assert stream.stream_type == "stdout"
    stream.reply()
    reply = await peer.wait_for(lambda f: f.kind == spdy.SYN_REPLY)
    assert reply.stream_id == 1 and reply.headers == {}
    peer.send(spdy.encode_data(1, b"ping?") + spdy.encode_data(1, b"", fin=True))
    assert await stream.readall() == b"ping?"
    await stream.write(b"pong!")
    stream.close()
    data = await peer.wait_for(lambda f: f.kind == 0 and f.data)
    fin = await peer.wait_for(lambda f: f.kind == 0 and f.flags & spdy.FLAG_FIN)
    assert (data.data, fin.stream_id) == (b"pong!", 1)
    assert 1 not in peer.session.streams  # closed both ways
    await peer.session.close()


async def test_session_answers_client_pings_only():
    peer = Peer()
    peer.send(spdy.encode_ping(2) + spdy.encode_ping(3))
    echo = await peer.wait_for(lambda f: f.kind == spdy.PING)
    assert echo.value == 3
    await peer.session.close()
    assert not [f for f in peer.frames if f.kind == spdy.PING]


async def test_session_grants_window_as_data_is_consumed():
    peer = Peer()
    peer.send(spdy.encode_syn_stream(peer.codec, 1, {}))
    stream = await peer.session.accept()
    stream.reply()
    peer.send(spdy.encode_data(1, b"x" * 40000))
    assert len(await stream.read(50000)) == 40000
    granted = {(await peer.wait_for(lambda f: f.kind == spdy.WINDOW_UPDATE)).stream_id for _ in range(2)}
    assert granted == {0, 1}  # the stream and the session
    await peer.session.close()


async def test_enforced_send_window_waits_for_window_update():
    peer = Peer(enforce_send_window=True)
    peer.send(spdy.encode_settings({spdy.SETTINGS_INITIAL_WINDOW_SIZE: 10}))
    peer.send(spdy.encode_syn_stream(peer.codec, 1, {}))
    stream = await peer.session.accept()
    stream.reply()
    writer = asyncio.create_task(stream.write(b"0123456789abcdef"))
    first = await peer.wait_for(lambda f: f.kind == 0)
    assert first.data == b"0123456789" and not writer.done()
    peer.send(spdy.encode_window_update(1, 100))
    await writer
    assert (await peer.wait_for(lambda f: f.kind == 0)).data == b"abcdef"
    await peer.session.close()


async def test_reset_and_goaway_from_peer():
    peer = Peer()
    peer.send(spdy.encode_syn_stream(peer.codec, 1, {}))
    stream = await peer.session.accept()
    stream.reply()
    peer.send(spdy.encode_rst_stream(1, spdy.CANCEL))
    assert await stream.read() == b""
    assert stream.reset_by_peer
    with pytest.raises(spdy.StreamClosed):
        await stream.write(b"late")
    peer.send(spdy.encode_goaway(1))
    assert await peer.session.accept() is None
    await peer.session.done.wait()


# -- over HTTP ---------------------------------------------------------------------------


@pytest.fixture
async def server():
    pod_hits = []

    async def pod_conn(reader, writer):
        pod_hits.append(await reader.readline())
        writer.write(b"pod says hi\n")
        await writer.drain()
        writer.close()

    pod = await asyncio.start_server(pod_conn, "127.0.0.1", 0)
    pod_port = pod.sockets[0].getsockname()[1]

    async def connect(port: int):
        if port != 80:
            raise ConnectionRefusedError("connection refused")
        return await asyncio.open_connection("127.0.0.1", pod_port)

    async def exec_(request):
        return await serve_exec(request, local_session)

    async def portforward(request):
        return await serve_portforward(request, connect)

    app = web.Application()
    app.router.add_route("*", "/api/v1/namespaces/default/pods/{name}/exec", exec_)
    app.router.add_route("*", "/api/v1/namespaces/default/pods/{name}/portforward", portforward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}"
    await runner.cleanup()
    pod.close()


class SpdyClient:
    """Just enough of a SPDY client to drive the server without kubectl."""

    async def connect(self, addr: str, path: str, protocols: list[str]) -> bytes:
        host, port = addr.split(":")
        self.reader, self.writer = await asyncio.open_connection(host, int(port))
        head = "".join(f"X-Stream-Protocol-Version: {p}\r\n" for p in protocols)
        self.writer.write((f"POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\n"
                           f"Upgrade: SPDY/3.1\r\n{head}Content-Length: 0\r\n\r\n").encode())
        response = await self.reader.readuntil(b"\r\n\r\n")
        self.codec, self.parser = spdy.HeaderCodec(), spdy.FrameParser(spdy.HeaderCodec())
        self.data: dict[int, bytes] = {}
        self.fin: set[int] = set()
        return response

    def open(self, sid: int, headers: dict[str, str]) -> None:
        self.writer.write(spdy.encode_syn_stream(self.codec, sid, {k: [v] for k, v in headers.items()}))

    async def run_until_fin(self, sid: int) -> None:
        while sid not in self.fin:
            chunk = await self.reader.read(65536)
            assert chunk, "connection closed early"
            for f in self.parser.feed(chunk):
                if f.kind == 0:
                    self.data[f.stream_id] = self.data.get(f.stream_id, b"") + f.data
                    if f.flags & spdy.FLAG_FIN:
                        self.fin.add(f.stream_id)


async def test_spdy_exec_v4_reports_exit_code_as_status(server):
    c = SpdyClient()
    head = await c.connect(server, "/api/v1/namespaces/default/pods/p/exec?command=sh&command=-c"
                           "&command=echo+o%3Bexit+7&stdout=true&stderr=true", ["v4.channel.k8s.io"])
    assert head.startswith(b"HTTP/1.1 101")
    assert b"X-Stream-Protocol-Version: v4.channel.k8s.io" in head
    c.open(1, {"streamType": "error"})
    c.open(3, {"streamType": "stdout"})
    c.open(5, {"streamType": "stderr"})
    await c.run_until_fin(1)
    assert c.data[3] == b"o\n"
    assert json.loads(c.data[1]) == exit_status(7, ["sh", "-c", "echo o;exit 7"])
    assert json.loads(c.data[1])["details"] == {"causes": [{"reason": "ExitCode", "message": "7"}]}


async def test_spdy_exec_v2_sends_plain_text_error(server):
    c = SpdyClient()
    await c.connect(server, "/api/v1/namespaces/default/pods/p/exec?command=false&stdout=true",
                    ["v2.channel.k8s.io"])
    c.open(1, {"streamType": "error"})
    c.open(3, {"streamType": "stdout"})
    await c.run_until_fin(1)
    assert c.data[1].startswith(b"command terminated with non-zero exit code")


async def test_spdy_handshake_refuses_unknown_protocols(server):
    async with aiohttp.ClientSession() as http:
        url = f"http://{server}/api/v1/namespaces/default/pods/p/exec?command=true&stdout=1"
        hdrs = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
        async with http.post(url, headers={**hdrs, "X-Stream-Protocol-Version": "v9.channel.k8s.io"}) as r:
            assert r.status == 403
            assert r.headers.getall("X-Accepted-Stream-Protocol-Versions")[0] == "v5.channel.k8s.io"
        async with http.post(url, headers=hdrs) as r:
            assert r.status == 400
        async with http.post(url.replace("command=true&", ""),
                             headers={**hdrs, "X-Stream-Protocol-Version": "v4.channel.k8s.io"}) as r:
            assert r.status == 400
            body = await r.json()
            assert body["reason"] == "BadRequest" and "command" in body["message"]


async def test_websocket_base64_exec(server):
    async with aiohttp.ClientSession() as http:
        url = f"http://{server}/api/v1/namespaces/default/pods/p/exec?command=echo&command=hi&stdout=true"
        async with http.ws_connect(url, protocols=["v4.base64.channel.k8s.io"]) as ws:
            assert ws.protocol == "v4.base64.channel.k8s.io"
            msgs = [m.data async for m in ws]
    assert all(isinstance(m, str) for m in msgs)
    assert msgs[0] == "1"  # the empty "connected" message on stdout
    out = b"".join(base64.b64decode(m[1:]) for m in msgs if m[0] == "1")
    assert out == b"hi\n"
    status = [json.loads(base64.b64decode(m[1:])) for m in msgs if m[0] == "3"]
    assert status == [{"metadata": {}, "status": "Success"}]


async def test_websocket_v5_close_signal_ends_stdin(server):
    async with aiohttp.ClientSession() as http:
        url = f"http://{server}/api/v1/namespaces/default/pods/p/exec?command=cat&stdin=true&stdout=true"
        async with http.ws_connect(url, protocols=["v5.channel.k8s.io", "v4.channel.k8s.io"]) as ws:
            assert ws.protocol == "v5.channel.k8s.io"
            await ws.send_bytes(b"\x00abc")
            await ws.send_bytes(b"\xff\x00")
            msgs = [m.data async for m in ws]
    assert b"".join(m[1:] for m in msgs if m[0] == 1) == b"abc"
    assert [json.loads(m[1:]) for m in msgs if m[0] == 3] == [{"metadata": {}, "status": "Success"}]


async def test_websocket_output_waits_for_kubectl_to_register_its_streams(server):
    # client-go drops frames for streams it has not registered yet, and registers them
    # only after the handshake; a command that prints at once must not lose its output.
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        url = f"http://{server}/api/v1/namespaces/default/pods/p/exec?command=echo&command=hi&stdout=true"
        async with http.ws_connect(url, protocols=["v5.channel.k8s.io"]) as ws:
            connected = loop.time()
            arrivals = [(loop.time(), m.data) async for m in ws]
    data = [(t, d) for t, d in arrivals if d[0] in (1, 3) and len(d) > 1]
    assert b"".join(d[1:] for _, d in data if d[0] == 1) == b"hi\n"
    assert data and min(t for t, _ in data) - connected >= WEBSOCKET_CLIENT_SETUP * 0.9


async def test_legacy_websocket_portforward_without_subprotocol(server):
    # kr8s offers no subprotocol at all; upstream treats that as binary channels.
    async with aiohttp.ClientSession() as http:
        url = f"http://{server}/api/v1/namespaces/default/pods/p/portforward?ports=80,81"
        async with http.ws_connect(url) as ws:
            assert ws.protocol is None
            first = [await ws.receive_bytes() for _ in range(4)]
            assert sorted(first) == sorted([b"\x00\x50\x00", b"\x01\x50\x00", b"\x02\x51\x00", b"\x03\x51\x00"])
            await ws.send_bytes(b"\x00GET / HTTP/1.0\r\n")
            rest = [m.data async for m in ws]
    assert b"".join(m[1:] for m in rest if m[0] == 0) == b"pod says hi\n"
    assert b"connection refused" in b"".join(m[1:] for m in rest if m[0] == 3)


async def test_portforward_requires_ports_for_websockets(server):
    async with aiohttp.ClientSession() as http:
        url = f"http://{server}/api/v1/namespaces/default/pods/p/portforward"
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await http.ws_connect(url, protocols=["v4.channel.k8s.io"])
        assert exc.value.status == 400


# -- small pure pieces -------------------------------------------------------------------


async def test_resize_events_decode_concatenated_json():
    reader = asyncio.StreamReader()
    reader.feed_data(b'{"Width":80,"Height":24}{"Width":1')
    reader.feed_data(b'00,"Height":40}\n')
    reader.feed_eof()
    assert [size async for size in resize_events(reader)] == [(80, 24), (100, 40)]


def test_exit_status_shapes():
    assert exit_status(0, ["true"]) == {"metadata": {}, "status": "Success"}
    failed = exit_status(3, ["sh", "-c", "exit 3"])
    assert failed["reason"] == "NonZeroExitCode"
    assert failed["message"].startswith("command terminated with non-zero exit code: ")
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]

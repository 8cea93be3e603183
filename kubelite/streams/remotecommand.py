"""exec and attach: the node agent's side of kubectl's remote-command protocols.

Two transports carry the same five streams (stdin, stdout, stderr, error, resize):

* SPDY/3.1 (kubectl ≤1.29): the client negotiates ``X-Stream-Protocol-Version``
  (v5…v2, channel.k8s.io), then opens one SPDY stream per ``streamType``; we answer
  each and start once all expected streams exist (upstream kubelet
  ``cri/streaming/remotecommand/httpstream.go``).
* WebSocket channels (kubectl ≥1.30, the Python clients): channel 0–4 (+255 in v5),
  see ``channels.py`` (upstream ``remotecommand/websocket.go``).

Whatever the transport, ``_run`` pumps bytes between the client and the ExecSession and
finishes with the error stream: a JSON metav1.Status for v4/v5 (with the exit code as
``details.causes[ExitCode]``), plain text on failure only for older protocols.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from kubelite.api.errors import StatusError, bad_request
from kubelite.streams import channels, upgrade
from kubelite.streams.spdy import Session, Stream

log = logging.getLogger(__name__)

V1, V2, V3 = "channel.k8s.io", "v2.channel.k8s.io", "v3.channel.k8s.io"
V4, V5 = "v4.channel.k8s.io", "v5.channel.k8s.io"
SPDY_PROTOCOLS = [V5, V4, V3, V2, V1]
WEBSOCKET_PROTOCOLS = ["", channels.V1, channels.V1_BASE64, channels.V4, channels.V4_BASE64, channels.V5]
STREAM_CREATION_TIMEOUT = 30.0
# kubectl's WebSocket client (client-go ≥1.30) starts reading frames while it is still
# registering its streams and drops any frame for a stream it has not registered yet
# ("Unknown stream id 1, discarding message"). Nothing on the wire says it is ready, so
# output and the exit status are held back this long after the handshake.
WEBSOCKET_CLIENT_SETUP = 0.15
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4


class ByteReader(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


class ExecSession(Protocol):
    """A running command (or attached container) as the node agent provides it."""

    stdout: ByteReader
    stderr: ByteReader | None

    async def write_stdin(self, data: bytes) -> None: ...

    def close_stdin(self) -> None: ...

    def resize(self, width: int, height: int) -> None: ...

    async def wait(self) -> int: ...


SessionFactory = Callable[[list[str], bool, bool], Awaitable[ExecSession]]


@dataclass
class Options:
    """Which streams the client asked for (query parameters)."""

    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    command: list[str]
    container: str


def _flag(request: web.Request, name: str) -> bool:
    # kubectl sends "true", the API server's rewrite to the kubelet sends "1".
    return request.query.get(name, "").lower() in ("1", "true", "t")


def parse_options(request: web.Request, *, need_command: bool) -> Options:
    """Read and validate stdin/stdout/stderr/tty/command/container."""
    opts = Options(_flag(request, "stdin"), _flag(request, "stdout"), _flag(request, "stderr"),
                   _flag(request, "tty"), request.query.getall("command", []),
                   request.query.get("container", ""))
    if opts.tty and opts.stderr:
        opts.stderr = False  # a terminal merges stderr into stdout
    if not (opts.stdin or opts.stdout or opts.stderr):
        raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
    if need_command and not opts.command:
        raise bad_request("you must specify at least one command for the container")
    return opts


def exit_status(code: int, command: list[str]) -> dict[str, Any]:
    """The metav1.Status written on the error stream when the command ends."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": (f"command terminated with non-zero exit code: error executing command "
                    f"[{' '.join(command)}], exit code {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_status(message: str) -> dict[str, Any]:
    """Status for a failure that is not the command's own exit code."""
    text = f"error executing command in container: {message}"
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {text}",
            "reason": "InternalError", "details": {"causes": [{"message": text}]}, "code": 500}


def encode_status(status: dict[str, Any], json_status: bool) -> bytes:
    """v4+: the Status as JSON; older protocols: the message, and nothing on success."""
    if json_status:
        return json.dumps(status, separators=(",", ":")).encode()
    return b"" if status["status"] == "Success" else status.get("message", "").encode()


def _status_response(err: StatusError) -> web.Response:
    return web.Response(status=err.code, body=json.dumps(err.status).encode(),
                        content_type="application/json")


async def resize_events(reader: ByteReader) -> AsyncIterator[tuple[int, int]]:
    """Decode the concatenated ``{"Width":…,"Height":…}`` objects of the resize stream."""
    decoder, buf = json.JSONDecoder(), ""
    while chunk := await reader.read(4096):
        buf += chunk.decode(errors="replace")
        while buf.strip():
            try:
                obj, end = decoder.raw_decode(buf.lstrip())
            except json.JSONDecodeError:
                break
            buf = buf.lstrip()[end:]
            if isinstance(obj, dict):
                yield int(obj.get("Width", 0)), int(obj.get("Height", 0))


@dataclass
class _Client:
    """The client's side of the streams, whatever the transport."""

    stdin: ByteReader | None
    stdout: Callable[[bytes], Awaitable[None]] | None
    stderr: Callable[[bytes], Awaitable[None]] | None
    resize: ByteReader | None
    close_outputs: Callable[[], Awaitable[None]]
    write_status: Callable[[dict[str, Any]], Awaitable[None]]


async def _copy_out(src: ByteReader, dst: Callable[[bytes], Awaitable[None]] | None) -> None:
    while data := await src.read(32768):
        if dst is not None:
            with contextlib.suppress(Exception):  # a gone client must not block the command
                await dst(data)


async def _copy_in(src: ByteReader, session: ExecSession) -> None:
    try:
        while data := await src.read(32768):
            await session.write_stdin(data)
    finally:
        with contextlib.suppress(Exception):
            session.close_stdin()


async def _apply_resizes(src: ByteReader, session: ExecSession) -> None:
    async for width, height in resize_events(src):
        with contextlib.suppress(Exception):
            session.resize(width, height)


async def _run(client: _Client, session: ExecSession | Exception, opts: Options) -> None:
    """Pump the streams until the command exits, then report its Status."""
    if isinstance(session, Exception):
        await client.close_outputs()
        await client.write_status(internal_status(str(session)))
        return
    side: list[asyncio.Task] = []
    if opts.stdin and client.stdin is not None:
        side.append(asyncio.create_task(_copy_in(client.stdin, session)))
    if client.resize is not None:
        side.append(asyncio.create_task(_apply_resizes(client.resize, session)))
    outputs = [asyncio.create_task(_copy_out(session.stdout, client.stdout))]
    if session.stderr is not None:
        outputs.append(asyncio.create_task(_copy_out(session.stderr, client.stderr)))
    try:
        code = await session.wait()
        await asyncio.gather(*outputs, return_exceptions=True)
        status = exit_status(code, opts.command)
    except Exception as e:  # the runtime failed, not the command
        log.warning("exec failed: %s", e)
        status = internal_status(str(e))
    finally:
        for task in side + outputs:
            task.cancel()
        await asyncio.gather(*side, *outputs, return_exceptions=True)
    await client.close_outputs()
    await client.write_status(status)


async def _start(factory: SessionFactory, opts: Options) -> ExecSession | Exception:
    # A StatusError (no such container…) is reported before the upgrade, as an HTTP
    # error; anything else after it, on the error stream, as the kubelet does.
    try:
        return await factory(opts.command, opts.tty, opts.stdin)
    except StatusError:
        raise
    except Exception as e:
        return e


async def _serve(request: web.Request, factory: SessionFactory, *, need_command: bool) -> web.StreamResponse:
    try:
        opts = parse_options(request, need_command=need_command)
        if channels.is_websocket_request(request):
            return await _serve_websocket(request, factory, opts)
        return await _serve_spdy(request, factory, opts)
    except StatusError as err:
        return _status_response(err)
    except upgrade.HandshakeError as err:
        return err.response


async def serve_exec(request: web.Request, session_factory: SessionFactory) -> web.StreamResponse:
    """Serve ``pods/NAME/exec`` over SPDY or WebSocket."""
    return await _serve(request, session_factory, need_command=True)


async def serve_attach(request: web.Request, session_factory: SessionFactory) -> web.StreamResponse:
    """Serve ``pods/NAME/attach``: exec's protocol without a command."""
    return await _serve(request, session_factory, need_command=False)


# -- WebSocket --------------------------------------------------------------------------


async def _serve_websocket(request: web.Request, factory: SessionFactory, opts: Options) -> web.StreamResponse:
    protocol = channels.negotiate(request, WEBSOCKET_PROTOCOLS)
    if protocol is None:
        raise upgrade.HandshakeError(web.Response(status=403, text=(
            f"requested protocol(s) are not supported: {channels.offered_protocols(request)}; "
            f"supports {WEBSOCKET_PROTOCOLS}\n")))
    session = await _start(factory, opts)
    ws = await channels.accept_websocket(request, protocol)
    conn = channels.ChannelConn(ws, protocol, readable=[STDIN, RESIZE] if opts.stdin else [RESIZE])
    conn.start()
    # Upstream announces the connection with an empty message on the lowest output channel.
    first = STDOUT if opts.stdout else STDERR if opts.stderr else ERROR
    await conn.send(first, b"")
    json_status = protocol in (channels.V4, channels.V4_BASE64, channels.V5)
    loop = asyncio.get_running_loop()
    client_ready_at = loop.time() + WEBSOCKET_CLIENT_SETUP
    in_order = asyncio.Lock()  # FIFO: frames held back leave in the order they came

    async def send_when_ready(channel: int, data: bytes) -> None:
        async with in_order:
            if (wait := client_ready_at - loop.time()) > 0:
                await asyncio.sleep(wait)
            await conn.send(channel, data)

    def send_on(channel: int) -> Callable[[bytes], Awaitable[None]]:
        async def send(data: bytes) -> None:
            await send_when_ready(channel, data)
        return send

    async def write_status(status: dict[str, Any]) -> None:
        payload = encode_status(status, json_status)
        if payload:
            with contextlib.suppress(Exception):
                await send_when_ready(ERROR, payload)

    async def nothing() -> None:
        return None

    client = _Client(
        stdin=conn.reader(STDIN) if opts.stdin else None,
        stdout=send_on(STDOUT) if opts.stdout else None,
        stderr=send_on(STDERR) if opts.stderr else None,
        resize=conn.reader(RESIZE),
        close_outputs=nothing,
        write_status=write_status,
    )
    try:
        await _run(client, session, opts)
    finally:
        await conn.close()
    return ws


# -- SPDY -------------------------------------------------------------------------------


async def _collect_streams(session: Session, expected: int) -> dict[str, Stream]:
    """Accept streams until ``expected`` have arrived; keyed by streamType."""
    streams: dict[str, Stream] = {}
    count = 0
    while count < expected:
        stream = await session.accept()
        if stream is None:
            raise ConnectionResetError("connection closed before all streams were created")
        stream.reply()
        count += 1
        kind = stream.stream_type
        if kind in ("error", "stdin", "stdout", "stderr", "resize"):
            streams[kind] = stream
        else:
            log.warning("unexpected stream type %r", kind)
    return streams


async def _serve_spdy(request: web.Request, factory: SessionFactory, opts: Options) -> web.StreamResponse:
    protocol = upgrade.negotiate_spdy(request, SPDY_PROTOCOLS)
    exec_session = await _start(factory, opts)
    session, resp = await upgrade.upgrade_spdy(request, protocol)
    resizable = protocol not in (V1, V2)
    expected = 1 + opts.stdin + opts.stdout + opts.stderr + (opts.tty and resizable)
    try:
        streams = await asyncio.wait_for(_collect_streams(session, expected), STREAM_CREATION_TIMEOUT)
    except (TimeoutError, ConnectionResetError) as e:
        log.warning("exec: %s", e or "timed out waiting for client to create streams")
        await upgrade.finish_spdy(session, resp)
        return resp
    json_status = protocol in (V4, V5)

    def sender(kind: str) -> Callable[[bytes], Awaitable[None]] | None:
        stream = streams.get(kind)
        return stream.write if stream is not None else None

    async def close_outputs() -> None:
        for kind in ("stdout", "stderr"):
            if kind in streams:
                streams[kind].close()

    async def write_status(status: dict[str, Any]) -> None:
        err = streams.get("error")
        if err is None:
            return
        payload = encode_status(status, json_status)
        with contextlib.suppress(Exception):
            if payload:
                await err.write(payload)
            err.close()

    client = _Client(stdin=streams.get("stdin"), stdout=sender("stdout"), stderr=sender("stderr"),
                     resize=streams.get("resize"), close_outputs=close_outputs, write_status=write_status)
    try:
        await _run(client, exec_session, opts)
    finally:
        await upgrade.finish_spdy(session, resp)
    return resp

"""Copying WebSocket messages between two connections (the ingress and the aggregator proxy)."""
from __future__ import annotations

import aiohttp
from aiohttp import web

WebSocket = aiohttp.ClientWebSocketResponse | web.WebSocketResponse


async def copy_messages(src: WebSocket, dst: WebSocket) -> None:
    """Send each text, binary, ping and pong message of ``src`` on to ``dst`` until ``src`` ends."""
    async for msg in src:
        if msg.type == aiohttp.WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        elif msg.type == aiohttp.WSMsgType.PING:
            await dst.ping(msg.data)
        elif msg.type == aiohttp.WSMsgType.PONG:
            await dst.pong(msg.data)
        else:
            break  # an error: the connection is unusable

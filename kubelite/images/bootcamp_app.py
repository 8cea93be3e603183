"""The Kubernetes Basics tutorial's sample app, rewritten as a stdlib-only Python server.

This file is copied into the built-in kubernetes-bootcamp images as `/app/server.py`
(with VERSION rewritten per image) and run by the host's Python. It behaves like the
original Node.js app: answers every request on port 8080 with
`Hello Kubernetes bootcamp! | Running on: <HOSTNAME> | v=<N>` and logs one line per
request in the same wording. It binds POD_IP when set (the rootless pod network gives
every pod its own 127.x address), else all interfaces. A thread per connection keeps
one slow client from blocking the others.
"""
import datetime
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "1"
PORT = 8080


def js_date(ts: float) -> str:
    """Format like Node's console.log(new Date()): ISO 8601, milliseconds, UTC."""
    dt = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def js_number(value: float) -> str:
    """Format like JavaScript prints a number: no trailing `.0`."""
    text = repr(round(value, 3))
    return text[:-2] if text.endswith(".0") else text


class State:
    """Request counter shared by the handler threads."""

    def __init__(self, host: str):
        self.host = host
        self.started = time.time()
        self.requests = 0
        self.lock = threading.Lock()

    def count(self) -> int:
        """Count one more request; the new total."""
        with self.lock:
            self.requests += 1
            return self.requests


class Handler(BaseHTTPRequestHandler):
    """Answers every method and path the same way, as the original app does."""

    protocol_version = "HTTP/1.1"
    state: State

    def _answer(self) -> None:
        body = f"Hello Kubernetes bootcamp! | Running on: {self.state.host} | v={VERSION}\n".encode()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        n = self.state.count()
        now = time.time()
        uptime = js_number(now - self.state.started)
        print(f"Running On: {self.state.host} | Total Requests: {n} | App Uptime: {uptime} seconds"
              f" | Log Time: {js_date(now)}", flush=True)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Silence the stdlib access log; the app prints its own line per request."""


class Server(ThreadingHTTPServer):
    """One thread per connection, so a slow client does not hold up the others."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse-DNS lookup of the address (socket.getfqdn),
        which stalls for seconds in a pod network with no resolver."""
        import socketserver
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port


def main() -> None:
    """Serve until killed."""
    host = os.environ.get("HOSTNAME") or socket.gethostname()
    bind = os.environ.get("POD_IP") or "0.0.0.0"
    Handler.state = State(host)
    server = Server((bind, PORT), Handler)
    Handler.state.started = time.time()
    # Node's console.log joins its arguments with spaces, hence the double space and the
    # trailing " \n" that leaves an empty line after the banner.
    print(f"Kubernetes Bootcamp App Started At: {js_date(Handler.state.started)} | Running On:  {host} \n",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()

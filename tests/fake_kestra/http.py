"""Put a FakeKestra on the wire: a real HTTP server on 127.0.0.1, or an httpx transport."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import httpx

from .app import DROP, FakeKestra, RequestHeaders


def _handler_for(app: FakeKestra) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            result = app.handle(self.command, self.path, RequestHeaders(self.headers.items()), body)
            if result is DROP:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(result.status)
            for name, value in result.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(result.body)))
            self.end_headers()
            if result.body and self.command != "HEAD":
                self.wfile.write(result.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 64  # a client sending several requests at once is never refused
    daemon_threads = True


@contextlib.contextmanager
def serve(app: FakeKestra) -> Iterator[str]:
    """Serve ``app`` on an ephemeral port of 127.0.0.1 in a thread; yields the base URL."""
    server = _Server(("127.0.0.1", 0), _handler_for(app))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def mock_transport(app: FakeKestra) -> httpx.MockTransport:
    """An httpx transport answering from ``app`` in-process (no socket)."""

    def handler(request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode()
        headers = RequestHeaders((k.decode("latin-1"), v.decode("latin-1"))
                                 for k, v in request.headers.raw)
        result = app.handle(request.method, target, headers, request.read())
        if result is DROP:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.",
                                            request=request)
        return httpx.Response(result.status, headers=result.headers, content=result.body)

    return httpx.MockTransport(handler)

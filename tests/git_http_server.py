"""A real Git server over HTTP for tests: Git's own ``git http-backend`` as a CGI program behind a
small threaded ``http.server`` on 127.0.0.1, with Basic authentication.

Use it through the ``git_http_server`` fixture (conftest.py makes it available to every test)::

    def test_something(git_http_server, repo):
        repo.write("a.yml", "id: a\\n")
        commit = repo.commit()
        url = git_http_server.serve(repo.path)      # a bare copy, served as <base>/flows.git
        ...  # talk to url with git_http_server.username / .password, or with git itself:
        git_http_server.git("flows.git", "cat-file", "-p", "refs/tags/x")   # the server's view

Both fetching (``git-upload-pack``) and pushing (``git-receive-pack``, enabled with
``http.receivepack`` in each served repository) work; requests whose Basic credentials do not
match get 401 and never reach Git. Server-side hooks go in ``path(name) / "hooks"``.
``git_http_server.auth_url(name)`` is the URL with the credentials in it, for a ``git`` client.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

_BACKEND = Path(subprocess.run(["git", "--exec-path"], capture_output=True, text=True,
                               check=True).stdout.strip()) / "git-http-backend"


@dataclass
class GitHttpServer:
    """Bare repositories under ``root``, served at ``base_url``/<name>."""

    root: Path
    base_url: str = ""
    username: str = "git-user"
    password: str = "pw-0f9e8d7c6b5a"
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) as received
    clients: list[str] = field(default_factory=list)  # the User-Agent of each request

    def path(self, name: str = "flows.git") -> Path:
        return self.root / name

    def url(self, name: str = "flows.git") -> str:
        return f"{self.base_url}/{name}"

    def auth_url(self, name: str = "flows.git") -> str:
        parts = urlsplit(self.url(name))
        return f"{parts.scheme}://{self.username}:{self.password}@{parts.netloc}{parts.path}"

    def git(self, name: str, *args: str) -> str:
        """Run git in the served repository ``name``; its output, stripped."""
        return subprocess.run(["git", "--git-dir", str(self.path(name)), *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    def serve(self, source: Path | None = None, name: str = "flows.git") -> str:
        """A bare repository ``name``: a copy of the repository at ``source``, or empty; pushes
        allowed. Its URL."""
        target = self.path(name)
        if source is None:
            subprocess.run(["git", "init", "-q", "--bare", str(target)], check=True)
        else:
            subprocess.run(["git", "clone", "-q", "--bare", str(source), str(target)], check=True)
        self.git(name, "config", "http.receivepack", "true")
        return self.url(name)

    def _authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return header == f"Basic {expected}"


def _handler_for(server: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _serve(self) -> None:
            body = self._body()
            path, _, query = self.path.partition("?")
            server.requests.append((self.command, self.path))
            server.clients.append(self.headers.get("User-Agent", ""))
            if not server._authorized(self.headers.get("Authorization")):
                self._answer(401, {"WWW-Authenticate": 'Basic realm="git"'}, b"")
                return
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(server.root), "GIT_HTTP_EXPORT_ALL": "1",
                "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": self.command,
                "PATH_INFO": path, "QUERY_STRING": query, "REMOTE_USER": server.username,
                "REMOTE_ADDR": self.client_address[0],
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(server.root),
            }
            for name in ("Content-Encoding", "Git-Protocol"):
                if self.headers.get(name):
                    env["HTTP_" + name.upper().replace("-", "_")] = self.headers[name]
            done = subprocess.run([str(_BACKEND)], input=body, capture_output=True, env=env,
                                  check=False, timeout=60)
            head, _, content = done.stdout.partition(b"\r\n\r\n")
            if not _:
                head, _, content = done.stdout.partition(b"\n\n")
            status, headers = 200, {}
            for line in head.decode("latin-1").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers[name] = value.strip()
            self._answer(status if done.returncode == 0 or status != 200 else 500, headers,
                         content)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def git_http_server(tmp_path: Path) -> Iterator[GitHttpServer]:
    """A Git HTTP server for this test, serving bare repositories from a folder of its own."""
    state = GitHttpServer(root=tmp_path / "git-server")
    state.root.mkdir()
    http = _Server(("127.0.0.1", 0), _handler_for(state))
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    host, port = http.server_address[:2]
    state.base_url = f"http://{host}:{port}"
    try:
        yield state
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=5)

"""Serve the fake Kestra on a local port, to try every kestra-promote command without Kestra.

From the project root (with the project installed, e.g. in .venv/)::

    python -m tests.fake_kestra [--port 8080] [--version 2.0|1.3] [--plugins full|slim]
                                [--username U --password P]

It prints its URL, its login and commands to try, then serves until Ctrl-C. Everything lives in
memory: stopping it forgets every flow, file and KV entry.
"""

from __future__ import annotations

import argparse
import re
import shlex
import signal
import sys
from http.server import ThreadingHTTPServer
from typing import Sequence, TextIO

from . import catalog, rules
from .app import FakeKestra
from .http import _handler_for

VERSIONS = {"2.0": "2.0.3", "1.3": "1.3.19"}  # the release each line emulates by default
DEFAULT_USER, DEFAULT_PASSWORD = "admin@kestra.io", "Admin1234!"  # the fake's local login
HOST = "127.0.0.1"
# the plugin types each image knows: a full `kestra/kestra` image, or a slim one's (core,
# plugin-scripts and plugin-git, as the fake's tests use)
PLUGINS = {"full": rules.FULL_IMAGE_PLUGINS, "slim": rules.DEFAULT_PLUGINS}
_PLUGINS_SHOWN = {
    "full": f"a full image's (core, and the {len(catalog.full_image_types())} types of Kestra's "
            "open-source plugins in tests/fake_kestra/full_image_plugins.txt); --plugins slim "
            "for a slim image's",
    "slim": "a slim image's (core, plugin-scripts and plugin-git only)",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_port = False  # a busy port is an error, never shared with another server


def _version(text: str) -> str:
    line = re.fullmatch(r"(2\.0|1\.3)(\.\d+)?", text)
    if line is None:
        raise argparse.ArgumentTypeError(f"{text!r}: choose 2.0 or 1.3 (or a release of them, "
                                         "e.g. 1.3.19)")
    return text if line.group(2) else VERSIONS[text]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_kestra",
        description="Serve a fake Kestra (in memory) on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("--port", type=int, default=8080,
                        help="port to listen on (default 8080; 0: any free port)")
    parser.add_argument("--version", type=_version, default=VERSIONS["2.0"],
                        help="Kestra version to behave as: 2.0 (default) or 1.3")
    parser.add_argument("--plugins", choices=sorted(PLUGINS), default="full",
                        help="plugin types to accept: a full image's (default) or a slim one's")
    parser.add_argument("--username", default=DEFAULT_USER,
                        help=f"basic-auth user (default {DEFAULT_USER})")
    parser.add_argument("--password", default=DEFAULT_PASSWORD,
                        help=f"basic-auth password (default {DEFAULT_PASSWORD})")
    return parser


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _banner(url: str, version: str, username: str, password: str, plugins: str = "full") -> str:
    env = (f"export KESTRA_URL={url} KESTRA_USERNAME={shlex.quote(username)} "
           f"KESTRA_PASSWORD={shlex.quote(password)}")
    lines = [
        f"Fake Kestra {version} (in memory, forgotten when stopped) at {url}",
        f"Login: {username} / {password}",
        f"Plugins: {_PLUGINS_SHOWN[plugins]}",
        "",
        "Try, in another terminal from the project root (with kestra-promote installed):",
        f"  {env}",
        "  kestra-promote plan examples    # what apply would change; writes nothing",
        "  kestra-promote apply examples   # validate on the target, then write",
    ]
    if not version.startswith("2."):
        lines.append("  (on 1.3, examples/flows/dev.company.team/report.yml uses 2.0's dependsOn: "
                     "the target rejects it, as Kestra 1.3 would)")
    lines += ["", "Ctrl-C stops it."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Serve until Ctrl-C or SIGTERM (exit 0); 1 when the port cannot be had, 2 on bad usage."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    args = _parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(f"error: --port {args.port}: give a port from 1 to 65535, or 0 for any free one",
              file=stderr)
        return 2
    if not args.username or not args.password:
        print("error: give both --username and --password (neither may be empty)", file=stderr)
        return 2
    app = FakeKestra(version=args.version, username=args.username, password=args.password,
                     plugins=PLUGINS[args.plugins])
    try:
        server = _Server((HOST, args.port), _handler_for(app))
    except OSError as exc:
        print(f"error: cannot listen on {HOST}:{args.port}: {exc.strerror or exc} "
              "(another --port, or --port 0 for any free one)", file=stderr)
        return 1
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}"
    app.url = url  # Kestra's `kestra.url`, used in the links its answers hold
    # Ctrl-C (even when started in the background, where SIGINT comes ignored) and SIGTERM
    previous = {signum: signal.signal(signum, handler) for signum, handler in (
        (signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, _stop))}
    try:
        print(_banner(url, args.version, args.username, args.password, args.plugins),
              file=stdout, flush=True)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("\nStopped: the fake Kestra and everything it held are gone.", file=stdout,
              flush=True)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

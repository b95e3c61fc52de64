"""Shared fixtures: the target Kestra (fake by default, real when given), Git repositories.

Set KESTRA_PROMOTE_TEST_URL (and KESTRA_PROMOTE_TEST_USERNAME / _PASSWORD or _TOKEN) to run the
integration tests against a real Kestra; tests marked ``fake_only`` (request counting, fault
injection) are then skipped. Each test works in namespaces of its own.
"""

from __future__ import annotations

import io
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml
from fake_kestra import FakeKestra, serve
from git_http_server import git_http_server  # noqa: F401  (a fixture, for every test)
from kestra_promote.cli.main import main
from kestra_promote.target.client import Connection, KestraClient, connect
from kestra_promote.config import Config
from kestra_promote.models import DesiredFlow, FlowKey
from kestra_promote.git.source import Source

ROOT = Path(__file__).resolve().parent.parent  # the repository
FIXTURES = Path(__file__).parent / "fixtures"
REAL_URL = os.environ.get("KESTRA_PROMOTE_TEST_URL")
REAL_AUTH = {
    "username": os.environ.get("KESTRA_PROMOTE_TEST_USERNAME"),
    "password": os.environ.get("KESTRA_PROMOTE_TEST_PASSWORD"),
    "token": os.environ.get("KESTRA_PROMOTE_TEST_TOKEN"),
}
FAKE_USER, FAKE_PASSWORD = "admin@kestra.io", "Admin1234!"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if REAL_URL:
        skip = pytest.mark.skip(reason="needs the fake server (KESTRA_PROMOTE_TEST_URL is set)")
        for item in items:
            if "fake_only" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_kestra_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up the developer's own KESTRA_* settings."""
    for name in list(os.environ):
        if name.startswith("KESTRA_") or name == "GITHUB_STEP_SUMMARY":
            monkeypatch.delenv(name)


@dataclass
class Target:
    """The Kestra instance integration tests talk to, over real HTTP."""

    url: str
    username: str | None
    password: str | None
    token: str | None
    fake: FakeKestra | None

    @property
    def env(self) -> dict[str, str]:
        env = {"KESTRA_URL": self.url}
        for name, key in (("username", "KESTRA_USERNAME"), ("password", "KESTRA_PASSWORD"),
                          ("token", "KESTRA_API_TOKEN")):
            if getattr(self, name):
                env[key] = getattr(self, name)
        return env

    def client(self) -> KestraClient:
        return connect(Connection(self.url, username=self.username, password=self.password,
                                  token=self.token, retries=0))

    def sources(self, namespace_root: str) -> dict[tuple[str, str], str]:
        """(namespace, id) -> source of the live flows under a namespace root."""
        from kestra_promote.target.live import read_live_state

        with self.client() as client:
            live = read_live_state(client, [namespace_root])
        return {(k.namespace, k.id): f.source for k, f in live.flows.items()}


@pytest.fixture
def fake() -> FakeKestra:
    return FakeKestra()


@pytest.fixture
def target(fake: FakeKestra) -> Iterator[Target]:
    if REAL_URL:
        yield Target(REAL_URL, REAL_AUTH["username"], REAL_AUTH["password"], REAL_AUTH["token"],
                     None)
        return
    with serve(fake) as url:
        yield Target(url, FAKE_USER, FAKE_PASSWORD, None, fake)


@pytest.fixture
def root_ns(target: Target) -> Iterator[str]:
    """A namespace root no other test uses; its flows are deleted afterwards on a real server."""
    name = f"kptest{uuid.uuid4().hex[:10]}"
    yield name
    if target.fake is None:
        from kestra_promote.errors import NotFound

        with target.client() as client:
            for namespace, flow_id in target.sources(name):
                client.delete_flow(namespace, flow_id)
            try:  # the inventory the tests' promotions recorded
                client.kv_delete("system", "kestra-promote.default")
            except NotFound:
                pass


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_cli(*argv: str, env: dict[str, str] | None = None) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env=env or {}, stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


class GitRepo:
    """A real Git repository in a temporary folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com",
             "-c", "commit.gpgsign=false", *args],
            cwd=self.path, check=True, capture_output=True, text=True,
        ).stdout.strip()

    def write(self, relative: str, text: str) -> Path:
        path = self.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


def set_policy(target: Target, tmp_path: Path, text: str) -> None:
    """Production's admin stores policy ``text`` on ``target`` (``policy set``)."""
    path = tmp_path / "prod-policy.yml"
    path.write_text(text, encoding="utf-8")
    done = run_cli("policy", "set", str(path), env=target.env)
    assert done.code == 0, done.err


@pytest.fixture
def overtake_leases(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it, and from then on every lease a run takes is overwritten at once by another
    run's ("run b"), as a late write of that run would: the run must notice it no longer
    holds it."""
    from kestra_promote.target import lock

    original = lock.acquire

    def overtaken(client, namespace, holder, **options):
        mine = original(client, namespace, holder, **options)
        lock._write(client, namespace, lock.new_lease("run b", mine.started))
        return mine

    return lambda: monkeypatch.setattr(lock, "acquire", overtaken)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "flows-repo")


def flow_yaml(namespace: str, flow_id: str, message: str = "hello", extra: str = "") -> str:
    return (
        f"id: {flow_id}\n"
        f"namespace: {namespace}\n"
        f"{extra}"
        "tasks:\n"
        "  - id: log\n"
        "    type: io.kestra.plugin.core.log.Log\n"
        f"    message: {message}\n"
    )


def source_from(*flows: tuple[str, str]) -> Source:
    """A Source holding the given (path, text) flows, as read_source would make it."""
    parsed = {}
    for path, text in flows:
        root = yaml.safe_load(text)
        key = FlowKey(root["namespace"], root["id"])
        parsed[key] = DesiredFlow(key, text, path)
    return Source(root="/", config=Config(), flows=parsed)

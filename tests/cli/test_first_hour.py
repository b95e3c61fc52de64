"""What a new user meets first: the local fake Kestra to play with, YAML files that are not
flows, and the Kestra URL written in the ways people copy it."""

from __future__ import annotations

import io
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Mapping

import pytest
from conftest import FAKE_PASSWORD, FAKE_USER, ROOT, GitRepo, Target, flow_yaml, run_cli
from fake_kestra import FakeKestra, serve
from fake_kestra.app import Response
from kestra_promote.target.client import Connection
from kestra_promote.errors import SettingsError, SourceError
from kestra_promote.git.ignore import IgnoreRules
from kestra_promote.git.source import read_source

NOT_A_FLOW = "does not look like a Kestra flow"

# -- the local fake: python -m tests.fake_kestra -----------------------------------------------


class _Fake:
    """``python -m tests.fake_kestra`` run from the project root, as the README says."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KESTRA_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_kestra", "--port", "0", *args], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.banner = self._until("Ctrl-C stops it.")
        except BaseException:
            self.kill()
            raise

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _until(self, last: str) -> str:
        seen: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=20)
            except queue.Empty:
                pytest.fail(f"no {last!r} within 20 s; printed so far: {''.join(seen)!r}")
            if line is None:
                err = self.process.stderr.read() if self.process.stderr else ""
                pytest.fail(f"ended before {last!r}: {''.join(seen)!r} {err!r}")
            seen.append(line)
            if line.strip() == last:
                return "".join(seen)

    @property
    def url(self) -> str:
        match = re.search(r" at (http://127\.0\.0\.1:\d+)\n", self.banner)
        assert match, self.banner
        return match.group(1)

    def command(self, start: str) -> str:
        """The printed example line starting with ``start``, without its comment."""
        line = next(line.strip() for line in self.banner.splitlines()
                    if line.strip().startswith(start))
        return line.split("  #")[0].strip()

    def stop(self, signum: int) -> tuple[int, str]:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=20)
        rest: list[str] = []
        while (line := self.lines.get(timeout=5)) is not None:
            rest.append(line)
        return code, "".join(rest)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _shell(script: str) -> subprocess.CompletedProcess[str]:
    """Runs printed commands verbatim in sh, from the project root, with this interpreter's
    kestra-promote first on PATH."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "kestra-promote").exists():  # not a virtualenv: the same command
        script = script.replace("kestra-promote ",
                                f"{shlex.quote(sys.executable)} -m kestra_promote ")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KESTRA_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(["sh", "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_local_fake_prints_commands_that_work_and_stops_on_ctrl_c():
    fake = _Fake()
    try:
        url = fake.url
        assert f"Login: {FAKE_USER} / {FAKE_PASSWORD}" in fake.banner
        export = fake.command("export KESTRA_URL=")
        assert export.startswith(f"export KESTRA_URL={url} ")
        plan = fake.command("kestra-promote plan")
        assert plan == "kestra-promote plan examples"
        assert fake.command("kestra-promote apply") == "kestra-promote apply examples"

        result = _shell(f"{export}\n{plan}\n")

        assert result.returncode == 0, result.stdout + result.stderr
        assert "+ create    company/orders" in result.stdout
        assert result.stdout.rstrip().endswith("Plan: 6 to create, 0 to update, 0 to delete.")
        assert FAKE_PASSWORD not in result.stdout + result.stderr  # the CLI never prints it
        code, rest = fake.stop(signal.SIGINT)
        assert code == 0
        assert "Stopped" in rest
    finally:
        fake.kill()


def test_the_local_fake_plays_kestra_1_3_with_the_login_given():
    fake = _Fake("--version", "1.3", "--username", "ci@example.com", "--password", "pa ss'word")
    try:
        assert "Fake Kestra 1.3." in fake.banner
        assert "Login: ci@example.com / pa ss'word" in fake.banner
        env = {"KESTRA_URL": fake.url, "KESTRA_USERNAME": "ci@example.com",
               "KESTRA_PASSWORD": "pa ss'word"}
        # 1.3 rejects the 2.0-only example, as the banner warns, before anything is written
        plan = run_cli("plan", str(ROOT / "examples"), env=env)
        assert plan.code == 1
        assert "report.yml" in plan.err and "dependsOn" in plan.err
        assert "report.yml" in fake.banner
        wrong = run_cli("plan", str(ROOT / "examples"), env={**env, "KESTRA_PASSWORD": "other"})
        assert wrong.code == 1 and "HTTP 401" in wrong.err
        code, rest = fake.stop(signal.SIGTERM)
        assert code == 0 and "Stopped" in rest
    finally:
        fake.kill()


def test_the_readme_shows_what_the_local_fake_prints():
    from fake_kestra.__main__ import DEFAULT_PASSWORD, DEFAULT_USER, VERSIONS, _banner

    readme = (ROOT / "README.md").read_text()
    try_it = readme[readme.index("## Try it on your own Kestra, read-only"):
                    readme.index("## Quickstart")]
    assert "kestra-promote plan " in try_it and "writes nothing" in try_it
    assert "python -m tests.fake_kestra" in try_it
    banner = _banner("http://127.0.0.1:8080", VERSIONS["2.0"], DEFAULT_USER, DEFAULT_PASSWORD)
    commands = [line.strip() for line in banner.splitlines()
                if line.strip().startswith(("export ", "kestra-promote "))]
    assert len(commands) == 3
    for command in commands:
        assert f"\n{command}\n" in try_it, command


def test_the_local_fake_names_a_busy_port():
    from fake_kestra.__main__ import main as fake_main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out, err = io.StringIO(), io.StringIO()
        assert fake_main(["--port", str(port)], stdout=out, stderr=err) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err.getvalue()
    assert "--port 0" in err.getvalue()
    assert out.getvalue() == ""


# -- YAML files that are not flows ------------------------------------------------------------

COMPOSE = """\
services:
  kestra:
    image: kestra/kestra:v2.0.0
    command: server local
    ports:
      - "8080:8080"
volumes:
  kestra-data: {}
"""
MANIFESTS = "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: Secret\n"


def _problems(folder: Path) -> list[str]:
    with pytest.raises(SourceError) as caught:
        read_source(folder)
    return [str(p) for p in caught.value.problems]


def test_a_docker_compose_file_is_one_problem_that_says_how_to_leave_it_out(repo: GitRepo):
    repo.write("flows/etl.yml", flow_yaml("company", "etl"))
    repo.write("docker-compose.yml", COMPOSE)
    repo.write("deploy/k8s [old].yaml", MANIFESTS)

    problems = _problems(repo.path)

    assert len(problems) == 2, problems  # one per file, not one per missing key
    manifests, compose = problems  # sorted by path
    assert compose.startswith(f"docker-compose.yml:1:1: {NOT_A_FLOW} (it has none of id, "
                              "namespace and tasks)")
    assert manifests.startswith(f"deploy/k8s [old].yaml:1:1: {NOT_A_FLOW} (2 YAML documents")
    for problem in problems:
        assert "missing required key" not in problem
        assert "kestra-promote.yml (flows: [flows/])" in problem
        assert ".kestraignore" in problem

    # each way out the message gives works: the line it suggests for .kestraignore...
    lines = [re.search(r"add the line '(.+)' to \.kestraignore", p).group(1) for p in problems]
    assert lines == [r"/deploy/k8s \[old].yaml", "/docker-compose.yml"]
    for line, path in zip(lines, ("deploy/k8s [old].yaml", "docker-compose.yml")):
        assert IgnoreRules([line]).ignored(path, is_dir=False)
        assert not IgnoreRules([line]).ignored(f"flows/{path}", is_dir=False)
    repo.write(".kestraignore", "\n".join(lines) + "\n")
    assert [k.id for k in read_source(repo.path).flows] == ["etl"]
    # ...or the flows setting
    (repo.path / ".kestraignore").unlink()
    repo.write("kestra-promote.yml", "flows: [flows/]\n")
    assert [k.id for k in read_source(repo.path).flows] == ["etl"]


def test_a_truncated_flow_keeps_its_precise_errors(tmp_path: Path):
    (tmp_path / "lost-tasks.yml").write_text("id: etl\nnamespace: company\n")
    (tmp_path / "only-id.yml").write_text("id: etl\n")
    (tmp_path / "headless.yml").write_text(
        "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    (tmp_path / "two.yml").write_text(flow_yaml("a", "one") + "---\nkind: Secret\n")

    assert _problems(tmp_path) == [
        "headless.yml: missing required key 'id'",
        "headless.yml: missing required key 'namespace'",
        "lost-tasks.yml: company/etl: missing required key 'tasks'",
        "only-id.yml: missing required key 'namespace'",
        "only-id.yml: missing required key 'tasks'",
        "two.yml: holds 2 YAML documents: put exactly one flow per file",
    ]


def test_a_yaml_file_that_is_not_a_flow_is_never_skipped(repo: GitRepo, target: Target,
                                                         root_ns: str):
    repo.write("flows/etl.yml", flow_yaml(root_ns, "etl"))
    repo.write("docker-compose.yml", COMPOSE)
    repo.commit()

    for command in ("validate", "plan", "apply"):
        result = run_cli(command, str(repo.path), env=target.env)
        assert result.code == 1, result.out
        assert f"docker-compose.yml:1:1: {NOT_A_FLOW}" in result.err
        assert "'/docker-compose.yml' to .kestraignore" in result.err
        assert "Error: 1 problem(s) in 1 file(s)" in result.err
    if target.fake is not None:  # at most the inventories were read
        assert all(r.method == "GET" and "/kv" in r.path for r in target.fake.requests)
    assert target.sources(root_ns) == {}


# -- the Kestra URL ---------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "used"), [
    ("https://kestra.example.com/api/v1", "https://kestra.example.com"),
    ("https://kestra.example.com/api/v1/", "https://kestra.example.com"),
    ("https://kestra.example.com:8443/kestra/api/v1//", "https://kestra.example.com:8443/kestra"),
    ("https://kestra.example.com/kestra/", "https://kestra.example.com/kestra/"),
    ("https://kestra.example.com", "https://kestra.example.com"),
    ("http://localhost:8080/", "http://localhost:8080/"),
])
def test_a_url_ending_in_the_api_path_means_the_server(given: str, used: str):
    assert Connection(given).url == used


@pytest.mark.parametrize(("given", "part", "base"), [
    ("https://kestra.example.com/api/v1/main", "/api/v1/main", "https://kestra.example.com"),
    ("https://kestra.example.com/api/v1/main/", "/api/v1/main", "https://kestra.example.com"),
    ("https://kestra.example.com/kestra/api/v1/main/flows", "/api/v1/main/flows",
     "https://kestra.example.com/kestra"),
])
def test_a_url_into_the_api_is_refused_naming_it(given: str, part: str, base: str):
    with pytest.raises(SettingsError) as caught:
        Connection(given)
    message = str(caught.value)
    assert repr(given) in message
    assert f"includes the API path {part}:" in message
    assert f"give the server's base URL instead, e.g. {base} " in message
    assert "--tenant" in message


@pytest.mark.parametrize("given", [
    "https://kestra.example.com/?token=s3cret", "https://kestra.example.com/kestra?x=s3cret#y",
    "https://kestra.example.com/#s3cret", "https://kestra.example.com/?",
])
def test_a_url_with_a_query_or_fragment_is_refused_without_echoing_it(given: str):
    with pytest.raises(SettingsError) as caught:
        Connection(given)
    message = str(caught.value)
    assert message.startswith("the Kestra URL must not have a query string or fragment")
    assert "e.g. https://kestra.example.com" in message and "s3cret" not in message


@pytest.mark.parametrize("given", [
    "ftp://kestra.example.com/?token=s3cret", "kestra.example.com?token=s3cret",
    "https:///?token=s3cret", "http://[::1?token=s3cret", "http://u:s3cret@host:abc/",
    "https://kestra.example.com:99999/#s3cret",
])
def test_an_invalid_url_is_named_without_its_secrets(given: str):
    with pytest.raises(SettingsError) as caught:  # never a ValueError from the URL parser
        Connection(given)
    assert str(caught.value).startswith("invalid Kestra URL ")
    assert "s3cret" not in str(caught.value)


def test_kestra_url_with_api_v1_works_and_with_a_tenant_is_refused(repo: GitRepo, target: Target,
                                                                  root_ns: str):
    repo.write("flows/etl.yml", flow_yaml(root_ns, "etl"))
    repo.commit()
    base = target.url.rstrip("/")
    for suffix in ("/api/v1", "/api/v1/"):
        result = run_cli("plan", str(repo.path), env={**target.env, "KESTRA_URL": base + suffix})
        assert result.code == 0, result.err
        assert f"+ create    {root_ns}/etl" in result.out
    if target.fake is not None:
        assert target.fake.requests
        assert all(r.path.startswith("/api/v1/main/") or r.path == "/api/v1/configs"
                   for r in target.fake.requests), [r.path for r in target.fake.requests]
        target.fake.requests.clear()

    refused = run_cli("plan", str(repo.path),
                      env={**target.env, "KESTRA_URL": base + "/api/v1/main"})
    assert refused.code == 1
    assert f"'{base}/api/v1/main' includes the API path /api/v1/main" in refused.err
    assert f"e.g. {base} " in refused.err
    assert "Tenant" not in refused.err
    if target.fake is not None:
        assert target.fake.requests == []


class _BehindProxy(FakeKestra):
    """A Kestra a reverse proxy serves under /kestra; anything else is the proxy's 404 page."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen: list[str] = []

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Any:
        self.seen.append(target)
        if not target.startswith("/kestra/"):
            return Response(404, b"<html><title>404 Not Found</title></html>",
                            {"Content-Type": "text/html"})
        return super().handle(method, target[len("/kestra"):], headers, body)


@pytest.mark.fake_only
def test_kestra_behind_a_proxy_path_keeps_working(repo: GitRepo):
    repo.write("flows/etl.yml", flow_yaml("company", "etl"))
    repo.commit()
    proxy = _BehindProxy()
    with serve(proxy) as url:
        auth = {"KESTRA_USERNAME": FAKE_USER, "KESTRA_PASSWORD": FAKE_PASSWORD}
        applied = run_cli("apply", str(repo.path), env={**auth, "KESTRA_URL": f"{url}/kestra"})
        assert applied.code == 0, applied.err
        assert proxy.current() == {("company", "etl"): flow_yaml("company", "etl")}
        assert proxy.seen and all(t.startswith("/kestra/api/v1/") for t in proxy.seen)
        for given in (f"{url}/kestra/", f"{url}/kestra/api/v1", f"{url}/kestra/api/v1/"):
            again = run_cli("plan", str(repo.path), env={**auth, "KESTRA_URL": given})
            assert again.code == 0, again.err
            assert "No changes." in again.out
        assert all(t.startswith("/kestra/api/v1/") for t in proxy.seen)

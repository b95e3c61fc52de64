"""The docker-compose stack: the compose file, its bootstrap service's logic (against fake
Kestra servers and a fake Git server), the example repository and the README's promises."""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FAKE_PASSWORD, FAKE_USER, run_cli
from fake_gitea import FakeGitea
from fake_kestra import FakeKestra, serve

from stack import bootstrap as stack_bootstrap
from stack.gitea import Gitea

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ENV_EXAMPLE = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))

DEV_SIDE = {"kestra-dev", "postgres-dev"}
PROD_SIDE = {"kestra-prod", "postgres-prod"}
# on both networks: the Git server (development pushes, production clones and gets its webhook)
# and the bootstrap (installs both instances, then exits)
BOTH_SIDES = {"gitea", "bootstrap"}


@functools.lru_cache(maxsize=1)
def _resolved() -> dict[str, Any]:
    """The compose file as `docker-compose config` resolves it, with no .env and no variable of
    the calling shell: what `docker compose up -d` starts on a fresh clone."""
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed: .ci/run installs it")
        pytest.skip("docker-compose is not installed here (CI installs it)")
    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty.env"
        empty.write_text("")
        done = subprocess.run(["docker-compose", "-f", "docker-compose.yml", "--env-file",
                               str(empty), "config"], cwd=ROOT, capture_output=True, text=True,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_the_compose_file_is_valid_for_docker_compose():
    assert set(_resolved()["services"]) == set(SERVICES)


def test_every_image_is_pinned_to_an_exact_tag():
    for name, service in SERVICES.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[a-z]+)?", tag), (name, image)
    assert SERVICES["kestra-dev"]["image"] == SERVICES["kestra-prod"]["image"]
    assert SERVICES["kestra-prod"]["image"].startswith("kestra/kestra:v2.0.")


def test_databases_and_servers_have_healthchecks_and_the_bootstrap_waits_for_them():
    for name in ("postgres-dev", "postgres-prod", "kestra-dev", "kestra-prod", "gitea"):
        assert SERVICES[name]["healthcheck"]["test"], name
    waits = SERVICES["bootstrap"]["depends_on"]
    assert waits["kestra-dev"]["condition"] == waits["kestra-prod"]["condition"] == "service_healthy"
    assert SERVICES["kestra-prod"]["depends_on"]["postgres-prod"]["condition"] == "service_healthy"


# -- ports --------------------------------------------------------------------------------------


def _published(port: Any) -> tuple[str, int]:
    """(host address, host port) of one published port as `docker-compose config` writes it:
    "IP:HOST:CONTAINER/tcp", or the long form (compose v2, or v1 without an address)."""
    if isinstance(port, dict):
        return str(port.get("host_ip") or "0.0.0.0"), int(port["published"])
    parts = str(port).split("/")[0].split(":")
    if len(parts) == 3:
        return parts[0], int(parts[1])
    return "0.0.0.0", int(parts[0])


def test_every_port_is_published_on_127_0_0_1_only():
    published = {name: [_published(p) for p in service.get("ports", [])]
                 for name, service in _resolved()["services"].items()}
    assert {name: ports for name, ports in published.items() if ports} == {
        "kestra-dev": [("127.0.0.1", 8080)], "kestra-prod": [("127.0.0.1", 8090)],
        "gitea": [("127.0.0.1", 3000)]}


def _host_ports() -> dict[str, int]:
    ports = {}
    for name, service in SERVICES.items():
        for mapping in service.get("ports", []):
            host = re.match(r"^127\.0\.0\.1:(?:\$\{[A-Z_]+:-(\d+)\}|(\d+)):\d+$", mapping)
            assert host, mapping
            ports[name] = int(host.group(1) or host.group(2))
    return ports


def test_ports_and_volumes_are_distinct():
    ports = _host_ports()
    assert ports == {"kestra-dev": 8080, "kestra-prod": 8090, "gitea": 3000}
    seen: dict[str, str] = {}
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source in COMPOSE["volumes"] and not name.startswith("gitea"):
                assert source not in seen, (source, name, seen.get(source))
                seen[source] = name
    assert set(COMPOSE["volumes"]) == {"postgres-dev-data", "kestra-dev-storage",
                                       "postgres-prod-data", "kestra-prod-storage", "gitea-data"}


# -- networks -----------------------------------------------------------------------------------


def _networks() -> dict[str, set[str]]:
    """Each service's networks; a service without any is on compose's `default` network."""
    out = {}
    for name, service in _resolved()["services"].items():
        if service.get("network_mode") == "none":
            out[name] = set()
        else:
            assert "network_mode" not in service, (name, service["network_mode"])
            out[name] = set(service.get("networks") or {"default": None})
    return out


def test_development_and_production_share_no_network_but_the_git_server():
    networks = _networks()
    members: dict[str, set[str]] = {}
    for name, joined in networks.items():
        for network in joined:
            members.setdefault(network, set()).add(name)
    # a container resolves and reaches exactly the services of its networks
    reach = {name: set().union(*(members[n] for n in joined)) - {name} if joined else set()
             for name, joined in networks.items()}
    for name in DEV_SIDE:
        assert not reach[name] & PROD_SIDE, (name, reach[name] & PROD_SIDE)
        assert reach[name] <= DEV_SIDE | BOTH_SIDES, (name, reach[name])
    for name in PROD_SIDE:
        assert reach[name] <= PROD_SIDE | BOTH_SIDES, (name, reach[name])
    assert members == {"dev": DEV_SIDE | BOTH_SIDES, "prod": PROD_SIDE | BOTH_SIDES}
    # the one-shot service that only touches the Git server's volume has no network at all
    assert networks["gitea-admin"] == set()


def test_the_git_server_calls_production_only_and_runs_nothing_pushed():
    gitea = SERVICES["gitea"]["environment"]
    assert gitea["GITEA__webhook__ALLOWED_HOST_LIST"] == "kestra-prod"
    # only the admin creates repositories or organisations, so only the admin's hold webhooks
    assert gitea["GITEA__repository__MAX_CREATION_LIMIT"] == "0"
    assert gitea["GITEA__service__DEFAULT_ALLOW_CREATE_ORGANIZATION"] == "false"
    assert gitea["GITEA__service__DISABLE_REGISTRATION"] == "true"
    assert gitea["GITEA__actions__ENABLED"] == "false"
    assert gitea["GITEA__server__DISABLE_SSH"] == "true"


def _kestra_config(name: str) -> dict:
    return yaml.safe_load(SERVICES[name]["environment"]["KESTRA_CONFIGURATION"])


def test_each_instance_has_its_own_database_url_and_environment():
    dev, prod = _kestra_config("kestra-dev"), _kestra_config("kestra-prod")
    assert dev["datasources"]["postgres"]["url"].endswith("//postgres-dev:5432/kestra")
    assert prod["datasources"]["postgres"]["url"].endswith("//postgres-prod:5432/kestra")
    assert dev["kestra"]["environment"]["name"] == "development"
    assert prod["kestra"]["environment"]["name"] == "production"
    assert prod["kestra"]["server"]["basic-auth"]["open-urls"] == [
        "/api/v1/main/executions/webhook/"]
    assert "open-urls" not in dev["kestra"]["server"]["basic-auth"]


def test_kestra_can_write_its_storage_volume():
    # the image runs as `kestra` and ships no /app/storage: a new named volume there is owned by
    # root, so Kestra runs as root, as in Kestra's own compose file
    for name in ("kestra-dev", "kestra-prod"):
        storage = _kestra_config(name)["kestra"]["storage"]["local"]["base-path"]
        assert f"{name}-storage:{storage}" in SERVICES[name]["volumes"]
        assert SERVICES[name]["user"] == "root", name


def test_the_dev_instance_reaches_its_own_api_at_kestra_url():
    # PushFlows (plugin-git 3, Kestra 2.0) calls the API at kestra.url from inside the container
    url = _kestra_config("kestra-dev")["kestra"]["url"]
    assert url == "http://localhost:8080/"
    assert SERVICES["kestra-dev"]["ports"] == ["127.0.0.1:${KESTRA_DEV_PORT:-8080}:8080"]


def test_no_secret_value_but_the_documented_local_defaults():
    text = (ROOT / "docker-compose.yml").read_text()
    for name, default in re.findall(r"\$\{([A-Z_]+):-([^}]*)\}", text):
        assert ENV_EXAMPLE.get(name) == default, (name, default)
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "TOKEN")) and key != "KESTRA_CONFIGURATION":
                assert str(value).startswith("${"), (name, key)
    # the promotion writes to production with its admin user: the defaults must agree
    decode = lambda name: base64.b64decode(ENV_EXAMPLE[name]).decode()  # noqa: E731
    assert decode("SECRET_KESTRA_PROMOTE_USERNAME") == ENV_EXAMPLE["KESTRA_ADMIN_USER"]
    assert decode("SECRET_KESTRA_PROMOTE_PASSWORD") == ENV_EXAMPLE["KESTRA_ADMIN_PASSWORD"]
    assert decode("SECRET_KESTRA_PROMOTE_GIT_USERNAME") == ENV_EXAMPLE["GITEA_ADMIN_USER"]


def test_the_readme_names_the_stacks_ports_and_urls():
    readme = (ROOT / "README.md").read_text()
    assert "docker compose up -d" in readme
    named = {int(p) for p in re.findall(r"http://localhost:(\d+)", readme)}
    assert named <= set(_host_ports().values()), named
    assert {8080, 8090, 3000} <= named
    paths = re.findall(r"`((?:examples|flows/prod|flows/dev|stack|scripts|tests|\.ci)/[^`\s]*)`",
                       readme)
    assert len(paths) > 10
    for path in paths + [".env.example", "docker-compose.yml"]:
        assert (ROOT / path.rstrip("/")).exists(), path


# -- the bootstrap service's logic ----------------------------------------------------------


def _env(dev: str, prod: str, gitea: str) -> dict[str, str]:
    return {"KESTRA_DEV_URL": dev, "KESTRA_PROD_URL": prod, "GITEA_URL": gitea,
            "KESTRA_USERNAME": FAKE_USER, "KESTRA_PASSWORD": FAKE_PASSWORD,
            "GITEA_ADMIN_USER": ENV_EXAMPLE["GITEA_ADMIN_USER"],
            **{k: v for k, v in ENV_EXAMPLE.items() if k.startswith("SECRET_")}}


def test_the_stack_bootstrap_installs_everything_once():
    dev, prod, gitea = FakeKestra(), FakeKestra(), FakeGitea()
    with serve(dev) as dev_url, serve(prod) as prod_url, serve(gitea) as gitea_url:  # type: ignore[arg-type]
        env = _env(dev_url, prod_url, gitea_url)
        out = io.StringIO()
        assert stack_bootstrap.main(env, out) == 0, out.getvalue()
        repo = gitea.repos[("kestra", "flows")]
        assert set(repo["files"]) >= {"kestra-promote.yml", "flows/dev.company/orders.yml",
                                      "files/dev.company.team/scripts/etl.py"}
        assert repo["commits"] == [{"message": "Example flows", "branch": "main",
                                    "author": "kestra"}]
        (hook,) = repo["hooks"]
        assert hook["config"]["url"] == (
            f"{prod_url}/api/v1/main/executions/webhook/system/promote/"
            "local-webhook-key-change-me")
        assert hook["secret"] == "local-webhook-secret-change-me" and hook["events"] == ["push"]
        # what the promote flow can check: the secret as a header (never the HMAC signature)
        assert hook["authorization_header"] == "Bearer local-webhook-secret-change-me"
        assert set(prod.current()) == {("system", "promote"), ("system", "promote-check")}
        assert set(dev.current()) == {("system", "commit-to-git")}
        assert prod.kv[("main", "system")]["promote_repo_url"]["value"] == \
            f"{gitea_url}/kestra/flows.git"
        # a request that claims to come from another provider cannot skip Gitea's secret
        assert prod.kv[("main", "system")]["promote_webhook_provider"]["value"] == "gitea"
        assert dev.kv[("main", "system")]["commit_repo_url"]["value"] == \
            f"{gitea_url}/kestra/flows.git"
        assert "The loop is ready" in out.getvalue()

        writes = (len(dev.writes()), len(prod.writes()), len(gitea.writes()))
        hooks_before = [dict(h) for h in repo["hooks"]]
        again = io.StringIO()
        assert stack_bootstrap.main(env, again) == 0, again.getvalue()
        # nothing changes; the hook's secret is set again (Gitea never shows it back)
        assert (len(dev.writes()), len(prod.writes())) == writes[:2]
        assert [(r.method, r.path) for r in gitea.writes()[writes[2]:]] == [
            ("PATCH", "/api/v1/repos/kestra/flows/hooks/1")]
        assert repo["hooks"] == hooks_before
        assert "prod: already installed." in again.getvalue()

        # a new webhook secret and key in .env: the hook follows, the old key's hook goes
        changed = {**env, "SECRET_KESTRA_PROMOTE_WEBHOOK_SECRET": base64.b64encode(b"s2").decode(),
                   "SECRET_KESTRA_PROMOTE_WEBHOOK_KEY": base64.b64encode(b"new-key").decode()}
        assert stack_bootstrap.main(changed, io.StringIO()) == 0
        (hook,) = repo["hooks"]
        assert hook["config"]["url"].endswith("/system/promote/new-key")
        assert (hook["secret"], hook["authorization_header"]) == ("s2", "Bearer s2")
        changed["SECRET_KESTRA_PROMOTE_WEBHOOK_SECRET"] = base64.b64encode(b"s3").decode()
        assert stack_bootstrap.main(changed, io.StringIO()) == 0
        assert [(h["secret"], h["authorization_header"]) for h in repo["hooks"]] == [
            ("s3", "Bearer s3")]

        # the repository the stack created is what production then promotes
        prod_plan = run_cli("plan", str(ROOT / "examples"), "--url", prod_url, "--username",
                            FAKE_USER, "--password", FAKE_PASSWORD, "--format", "json")
        assert prod_plan.code == 0, prod_plan.err


def test_the_gitea_calls_match_gitea_endpoints():
    gitea = FakeGitea()
    with serve(gitea) as url:  # type: ignore[arg-type]
        client = Gitea.connect(url, "kestra", "Gitea-Admin-2026")
        assert client.healthy() and client.repository("kestra", "flows") is None
        assert client.user("someone") is None
        client.create_user("someone", password="password-1", email="someone@example.com")
        client.set_user("someone", password="password-2")
        assert client.user("someone")["is_admin"] is False
        client.create_repository("flows", description="d", branch="main")
        client.commit_files("kestra", "flows", {"a.txt": b"x"}, branch="main", message="m")
        assert client.repository("kestra", "flows")["empty"] is False
        assert client.permission("kestra", "flows", "someone") == "none"
        client.add_collaborator("kestra", "flows", "someone", "write")
        assert client.branch_protection("kestra", "flows", "main") is None
        client.create_branch_protection("kestra", "flows", "main", {"enable_push": False})
        client.edit_branch_protection("kestra", "flows", "main", {"required_approvals": 1})
        assert client.branch_protection("kestra", "flows", "main")["required_approvals"] == 1
        client.close()
    assert [(r.method, r.path) for r in gitea.requests] == [
        ("GET", "/api/healthz"), ("GET", "/api/v1/repos/kestra/flows"),
        ("GET", "/api/v1/users/someone"), ("POST", "/api/v1/admin/users"),
        ("PATCH", "/api/v1/admin/users/someone"), ("GET", "/api/v1/users/someone"),
        ("POST", "/api/v1/user/repos"), ("POST", "/api/v1/repos/kestra/flows/contents"),
        ("GET", "/api/v1/repos/kestra/flows"),
        ("GET", "/api/v1/repos/kestra/flows/collaborators/someone/permission"),
        ("PUT", "/api/v1/repos/kestra/flows/collaborators/someone"),
        ("GET", "/api/v1/repos/kestra/flows/branch_protections/main"),
        ("POST", "/api/v1/repos/kestra/flows/branch_protections"),
        ("PATCH", "/api/v1/repos/kestra/flows/branch_protections/main"),
        ("GET", "/api/v1/repos/kestra/flows/branch_protections/main")]
    bodies = {(r.method, r.path): json.loads(r.body) for r in gitea.requests if r.body}
    # Gitea 1.22's EditUserOption requires login_name and source_id; a new user must not be
    # asked to change its password (Git over HTTP would refuse it)
    edit = bodies[("PATCH", "/api/v1/admin/users/someone")]
    assert edit["login_name"] == "someone" and edit["source_id"] == 0 and edit["admin"] is False
    assert bodies[("POST", "/api/v1/admin/users")]["must_change_password"] is False
    assert bodies[("POST", "/api/v1/repos/kestra/flows/branch_protections")]["rule_name"] == "main"


# -- the example repository --------------------------------------------------------------------


def test_the_examples_are_valid():
    result = run_cli("validate", str(ROOT / "examples"))
    assert result.code == 0
    assert result.out.startswith("Valid: 5 flow(s) and 1 namespace file(s)")


def test_the_examples_plan_against_an_empty_production_creates_exactly_these():
    fake = FakeKestra()
    with serve(fake) as url:
        result = run_cli("plan", str(ROOT / "examples"), "--url", url, "--username", FAKE_USER,
                         "--password", FAKE_PASSWORD, "--format", "json")
    assert result.code == 0, result.err
    data = yaml.safe_load(result.out)
    assert data["summary"]["create"] == 6 and data["summary"]["update"] == 0
    assert [(c["kind"], c["namespace"], c["id"] or c["file"]) for c in data["changes"]] == [
        ("file", "company.team", "/scripts/etl.py"),
        ("flow", "company", "process_order"),
        ("flow", "company", "orders"),
        ("flow", "company.analytics", "daily_kpis"),
        ("flow", "company.team", "etl"),
        ("flow", "company.team", "report"),
    ]
    orders = next(c for c in data["changes"] if c["id"] == "orders")
    assert orders["action"] == "create"


def test_the_git_server_users_command_is_valid_shell():
    # after compose's own interpolation ($$ is a literal $)
    command = SERVICES["gitea-admin"]["command"][0].replace("$$", "$")
    assert subprocess.run(["sh", "-n", "-c", command]).returncode == 0
    assert "change-password" in command  # a password changed in .env reaches an existing user

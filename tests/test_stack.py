"""The docker-compose stack: the compose file (as written and as `docker-compose config` reads
it), the credentials it generates, its bootstrap service's logic (against fake Kestra servers
and a fake Git server), the example repository and the README's promises.

What the stack protects, one test each: development holds no production credential, the two
sides share no network but the Git server's, no port is published beyond 127.0.0.1, no password
has a public default, the Git server's admin is the bootstrap's only, development's Git user
cannot change main (pull requests merged by the reviewer only), production's only reads, and
production expects Gitea's webhooks only."""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FAKE_PASSWORD, FAKE_USER, run_cli
from fake_gitea import FakeGitea
from fake_kestra import FakeKestra, serve
from kestra_promote.gates import seal as kp_seal
from kestra_promote.kestra_task.bootstrap import SECRETS as FLOW_SECRETS

from stack import bootstrap as stack_bootstrap
from stack import credentials as stack_credentials
from stack import seal as stack_seal
from stack.gitea import Gitea, GiteaError

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
ENV_EXAMPLE_TEXT = (ROOT / ".env.example").read_text()
ENV_EXAMPLE = dict(line.split("=", 1) for line in ENV_EXAMPLE_TEXT.splitlines()
                   if line and not line.startswith("#"))

DEV_SIDE = {"kestra-dev", "postgres-dev"}
PROD_SIDE = {"kestra-prod", "postgres-prod"}
# on both networks: the Git server (development pushes, production clones and gets its webhook)
# and the bootstrap (installs both instances, then exits)
BOTH_SIDES = {"gitea", "bootstrap"}
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY")


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
    # nothing that reads a credential starts before the credentials service has written them
    for name in ("postgres-dev", "kestra-dev", "postgres-prod", "kestra-prod", "gitea-admin"):
        assert SERVICES[name]["depends_on"]["credentials"]["condition"] == \
            "service_completed_successfully", name


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
            if source in COMPOSE["volumes"] and not name.startswith("gitea") \
                    and not source.endswith("-credentials"):
                assert source not in seen, (source, name, seen.get(source))
                seen[source] = name
    assert set(COMPOSE["volumes"]) == {
        "postgres-dev-data", "kestra-dev-storage", "dev-credentials", "postgres-prod-data",
        "kestra-prod-storage", "prod-credentials", "bootstrap-credentials", "gitea-data"}


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
    # the one-shot services that only touch volumes have no network at all
    assert networks["credentials"] == networks["gitea-admin"] == set()


def test_the_git_server_calls_production_only_and_runs_nothing_pushed():
    gitea = SERVICES["gitea"]["environment"]
    assert gitea["GITEA__webhook__ALLOWED_HOST_LIST"] == "kestra-prod"
    # only the admin creates repositories or organisations, so only the admin's hold webhooks
    assert gitea["GITEA__repository__MAX_CREATION_LIMIT"] == "0"
    assert gitea["GITEA__service__DEFAULT_ALLOW_CREATE_ORGANIZATION"] == "false"
    assert gitea["GITEA__service__DISABLE_REGISTRATION"] == "true"
    assert gitea["GITEA__actions__ENABLED"] == "false"
    assert gitea["GITEA__server__DISABLE_SSH"] == "true"


# -- credentials in the compose file ------------------------------------------------------------


def _variables(value: Any) -> set[str]:
    return set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", json.dumps(value)))


def test_compose_hands_no_kestra_container_a_credential():
    for name in ("kestra-dev", "kestra-prod", "postgres-dev", "postgres-prod", "gitea",
                 "gitea-admin", "bootstrap"):
        environment = SERVICES[name].get("environment") or {}
        for key, value in environment.items():
            assert not any(word in key for word in SECRET_WORDS) or key.endswith("_FILE"), \
                (name, key)
            # the only variables compose fills in are ports
            assert _variables(value) <= {"KESTRA_DEV_PORT", "KESTRA_PROD_PORT", "GITEA_PORT"}, \
                (name, key, _variables(value))
    for name in ("kestra-dev", "kestra-prod"):
        configuration = SERVICES[name]["environment"]["KESTRA_CONFIGURATION"]
        assert "password" not in configuration.lower(), name


def test_each_party_s_credentials_are_mounted_only_where_they_are_needed():
    mounted: dict[str, set[str]] = {}
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            mounted.setdefault(volume.split(":")[0], set()).add(name)
    assert mounted["dev-credentials"] == {"credentials", "postgres-dev", "kestra-dev", "bootstrap"}
    assert mounted["prod-credentials"] == {"credentials", "postgres-prod", "kestra-prod",
                                           "bootstrap"}
    assert mounted["bootstrap-credentials"] == {"credentials", "gitea-admin", "bootstrap"}
    # development's containers see no volume of production's, and the reverse
    for name in DEV_SIDE:
        assert not {v.split(":")[0] for v in SERVICES[name]["volumes"]} & {
            "prod-credentials", "bootstrap-credentials", "postgres-prod-data",
            "kestra-prod-storage"}, name
    for name in PROD_SIDE:
        assert not {v.split(":")[0] for v in SERVICES[name]["volumes"]} & {
            "dev-credentials", "bootstrap-credentials", "postgres-dev-data",
            "kestra-dev-storage"}, name
    for name in ("credentials", "postgres-dev", "kestra-dev", "postgres-prod", "kestra-prod",
                 "gitea-admin", "bootstrap"):
        for volume in SERVICES[name]["volumes"]:
            if volume.split(":")[0].endswith("-credentials") and name != "credentials":
                assert volume.endswith(":ro"), (name, volume)


def test_no_password_has_a_public_default():
    # compose: ${NAME:-default} of a secret has no default; .env.example leaves secrets empty
    for name, default in re.findall(r"\$\{([A-Z_]+):-([^}]*)\}", COMPOSE_TEXT):
        assert ENV_EXAMPLE.get(name) is not None, f"{name} is not in .env.example"
        if any(word in name for word in SECRET_WORDS):
            assert default == "", (name, default)
        else:
            assert default in ("", ENV_EXAMPLE[name]), (name, default)
    assert not re.search(r"\$\{[A-Z_]+:\?", COMPOSE_TEXT)  # nothing is required: one command starts
    for name, value in ENV_EXAMPLE.items():
        if any(word in name for word in SECRET_WORDS):
            assert value == "", (name, value)
    assert set(stack_credentials.SECRET_NAMES) == {
        name for name in ENV_EXAMPLE if any(word in name for word in SECRET_WORDS)}
    # defaults of user names agree with .env.example
    for item in stack_credentials.ITEMS:
        assert ENV_EXAMPLE[item.name] == (item.default or ""), item.name
    assert set(ENV_EXAMPLE) == {item.name for item in stack_credentials.ITEMS} | {
        "KESTRA_DEV_PORT", "KESTRA_PROD_PORT", "GITEA_PORT"}
    # the credentials service receives every one, as given (empty: generated)
    passed = SERVICES["credentials"]["environment"]
    for item in stack_credentials.ITEMS:
        assert passed[item.name] == f"${{{item.name}:-}}", item.name


def test_every_variable_of_env_example_is_explained():
    # each variable, or group of variables, has a comment of its own above it
    lines = ENV_EXAMPLE_TEXT.splitlines()
    explained = set()
    for index, line in enumerate(lines):
        if line and not line.startswith("#"):
            above = index - 1
            while above >= 0 and lines[above] and not lines[above].startswith("#"):
                above -= 1
            if above >= 0 and lines[above].startswith("#") and not lines[above].startswith("# --"):
                explained.add(line.split("=", 1)[0])
    assert explained == set(ENV_EXAMPLE), set(ENV_EXAMPLE) - explained


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
    assert "server" not in dev["kestra"]
    assert "prod" not in SERVICES["kestra-dev"]["environment"]["KESTRA_CONFIGURATION"]


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


def test_the_readme_names_the_stacks_ports_and_urls():
    readme = (ROOT / "README.md").read_text()
    assert "docker compose up -d" in readme
    named = {int(p) for p in re.findall(r"http://localhost:(\d+)", readme)}
    assert named <= set(_host_ports().values()), named
    assert {8080, 8090, 3000} <= named
    docs = readme + "".join(page.read_text() for page in sorted((ROOT / "docs").glob("*.md")))
    paths = re.findall(r"`((?:examples|flows/prod|flows/dev|stack|scripts|tests|\.ci)/[^`\s]*)`",
                       docs)
    assert len(paths) > 10
    for path in paths + [".env.example", "docker-compose.yml"]:
        assert (ROOT / path.split("::")[0].rstrip("/")).exists(), path  # ::test names a test


# -- the credentials service --------------------------------------------------------------------


def _generate(root: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    out = io.StringIO()
    assert stack_credentials.main(env or {}, root, out) == 0, out.getvalue()
    return stack_credentials.load_all(root)


def _sourced(path: Path) -> dict[str, str]:
    """The variables a POSIX shell exports after sourcing ``path``."""
    done = subprocess.run(["sh", "-c", '. "$1" && env -0', "sh", str(path)], env={},
                          capture_output=True, check=True)
    pairs = (item.split(b"=", 1) for item in done.stdout.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs if k not in (b"PWD", b"SHLVL", b"_")}


def test_credentials_are_generated_once_and_kept(tmp_path):
    values = _generate(tmp_path)
    for name in stack_credentials.SECRET_NAMES:
        value = values[name]
        assert len(value) == 32 and value.isalnum(), name
        assert any(c.isupper() for c in value) and any(c.isdigit() for c in value), name
    assert len({values[n] for n in stack_credentials.SECRET_NAMES}) == \
        len(stack_credentials.SECRET_NAMES)
    assert values["GITEA_ADMIN_USER"] == "kestra" and values["GITEA_DEV_USER"] == "dev-committer"
    # kept on the next start; a value of .env replaces the stored one
    out = io.StringIO()
    assert stack_credentials.main({}, tmp_path, out) == 0
    assert out.getvalue() == "credentials: unchanged\n"
    assert stack_credentials.load_all(tmp_path) == values
    changed = _generate(tmp_path, {"KESTRA_PROD_ADMIN_PASSWORD": "Another1Password"})
    assert changed == {**values, "KESTRA_PROD_ADMIN_PASSWORD": "Another1Password"}
    # an empty variable (compose's ${NAME:-}) keeps the stored value
    assert _generate(tmp_path, {"KESTRA_PROD_ADMIN_PASSWORD": ""}) == changed
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_the_credentials_of_development_hold_nothing_of_production(tmp_path):
    values = _generate(tmp_path)
    secrets = {name: values[name] for name in stack_credentials.SECRET_NAMES}
    mine = {"dev": {"KESTRA_DEV_ADMIN_PASSWORD", "POSTGRES_DEV_PASSWORD", "GITEA_DEV_PASSWORD"},
            "prod": {"KESTRA_PROD_ADMIN_PASSWORD", "POSTGRES_PROD_PASSWORD", "GITEA_PROD_PASSWORD",
                     "PROMOTE_WEBHOOK_KEY", "PROMOTE_WEBHOOK_SECRET"},
            "bootstrap": {"GITEA_ADMIN_PASSWORD", "GITEA_REVIEWER_PASSWORD"}}
    for party in ("dev", "prod", "bootstrap"):
        text = "".join(p.read_text() for p in (tmp_path / party).iterdir())
        for name, value in secrets.items():
            shown = value in text or base64.b64encode(value.encode()).decode() in text
            assert shown == (name in mine[party]), (party, name)
    # what each Kestra container gets: its own login, database, Git user and (production) webhook
    for party, side in (("dev", "DEV"), ("prod", "PROD")):
        env = _sourced(tmp_path / party / "kestra.env")
        decoded = {k.removeprefix("SECRET_"): base64.b64decode(v).decode() for k, v in env.items()
                   if k.startswith("SECRET_")}
        assert env["KESTRA_SERVER_BASIC_AUTH_USERNAME"] == values[f"KESTRA_{side}_ADMIN_USER"]
        assert env["KESTRA_SERVER_BASIC_AUTH_PASSWORD"] == values[f"KESTRA_{side}_ADMIN_PASSWORD"]
        assert env["DATASOURCES_POSTGRES_PASSWORD"] == values[f"POSTGRES_{side}_PASSWORD"]
        assert decoded["KESTRA_PROMOTE_USERNAME"] == values[f"KESTRA_{side}_ADMIN_USER"]
        assert decoded["KESTRA_PROMOTE_PASSWORD"] == values[f"KESTRA_{side}_ADMIN_PASSWORD"]
        assert decoded["KESTRA_PROMOTE_GIT_USERNAME"] == values[f"GITEA_{side}_USER"]
        assert decoded["KESTRA_PROMOTE_GIT_TOKEN"] == values[f"GITEA_{side}_PASSWORD"]
        webhook = {"KESTRA_PROMOTE_WEBHOOK_KEY", "KESTRA_PROMOTE_WEBHOOK_SECRET"}
        assert (webhook <= set(decoded)) == (party == "prod")
        assert (tmp_path / party / "postgres-password").read_text() == \
            values[f"POSTGRES_{side}_PASSWORD"]
    # the secrets each flow reads are the ones its instance gets (kestra-promote bootstrap's list)
    for party in ("dev", "prod"):
        env = _sourced(tmp_path / party / "kestra.env")
        needed = {name for name, _ in FLOW_SECRETS[party]} - {"KESTRA_PROMOTE_NOTIFY_URL",
                                                         "KESTRA_PROMOTE_REVIEW_TOKEN"}
        assert {k.removeprefix("SECRET_") for k in env if k.startswith("SECRET_")} == needed
    admin = _sourced(tmp_path / "bootstrap" / "gitea-admin.env")
    assert admin == {"GITEA_ADMIN_USER": "kestra",
                     "GITEA_ADMIN_PASSWORD": values["GITEA_ADMIN_PASSWORD"]}


@pytest.mark.parametrize("env, refused", [
    ({"KESTRA_DEV_ADMIN_PASSWORD": "Same1Password", "KESTRA_PROD_ADMIN_PASSWORD": "Same1Password"},
     "KESTRA_DEV_ADMIN_PASSWORD and KESTRA_PROD_ADMIN_PASSWORD are equal"),
    ({"GITEA_DEV_PASSWORD": "shared-secret", "GITEA_ADMIN_PASSWORD": "shared-secret"},
     "GITEA_DEV_PASSWORD and GITEA_ADMIN_PASSWORD are equal"),
    ({"KESTRA_PROD_ADMIN_PASSWORD": "Admin1234!x", "PROMOTE_WEBHOOK_SECRET": "Admin1234!x",
      "POSTGRES_DEV_PASSWORD": "Admin1234!x"},
     "POSTGRES_DEV_PASSWORD and KESTRA_PROD_ADMIN_PASSWORD are equal: dev and prod must share no "
     "secret"),
    ({"GITEA_DEV_USER": "kestra"}, "must be four different users"),
    ({"KESTRA_PROD_ADMIN_PASSWORD": "short"}, "KESTRA_PROD_ADMIN_PASSWORD needs 8 characters"),
    ({"KESTRA_DEV_ADMIN_PASSWORD": "alllowercase1"}, "an upper-case letter"),
    ({"KESTRA_DEV_ADMIN_USER": "admin"}, "KESTRA_DEV_ADMIN_USER must be an email address"),
    ({"GITEA_REVIEWER_PASSWORD": "1234567"}, "GITEA_REVIEWER_PASSWORD needs 8 characters"),
    ({"GITEA_PROD_USER": "prod reader"}, "Git user name 'prod reader'"),
    ({"PROMOTE_WEBHOOK_SECRET": "two\nlines"}, "PROMOTE_WEBHOOK_SECRET holds a line break"),
])
def test_credentials_that_would_break_the_separation_are_refused(tmp_path, env, refused):
    out = io.StringIO()
    assert stack_credentials.main(env, tmp_path, out) == 1
    assert refused in out.getvalue()
    assert not list(tmp_path.rglob("*.env"))  # nothing written


def test_a_quote_in_a_password_survives_the_shell(tmp_path):
    values = _generate(tmp_path, {"KESTRA_DEV_ADMIN_PASSWORD": "It's 1 \"quoted\" $HOME `x`"})
    env = _sourced(tmp_path / "dev" / "kestra.env")
    assert env["KESTRA_SERVER_BASIC_AUTH_PASSWORD"] == values["KESTRA_DEV_ADMIN_PASSWORD"]


def test_the_kestra_entrypoint_exports_its_credentials_then_starts_kestra(tmp_path):
    _generate(tmp_path)
    for name, party in (("kestra-dev", "dev"), ("kestra-prod", "prod")):
        shell, flag, script, zero = SERVICES[name]["entrypoint"]
        assert (shell, flag, zero) == ("/bin/sh", "-c", "kestra")
        assert f"{party}-credentials:/run/kestra-promote:ro" in SERVICES[name]["volumes"]
        script = script.replace("$$", "$").replace("/run/kestra-promote/", f"{tmp_path}/{party}/")
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        stub = bin_dir / "docker-entrypoint.sh"  # the image's entrypoint, on its PATH
        stub.write_text('#!/bin/sh\nprintf "%s\\n" "$*"\nenv\n')
        stub.chmod(0o755)
        done = subprocess.run([shell, flag, script, zero, *SERVICES[name]["command"].split()],
                              env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True,
                              text=True, check=True)
        lines = done.stdout.splitlines()
        assert lines[0] == "server standalone"
        env = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
        assert {k: v for k, v in env.items() if k.startswith(("SECRET_", "KESTRA_SERVER",
                                                               "DATASOURCES", "ENV_"))} == \
            _sourced(tmp_path / party / "kestra.env")
        missing = subprocess.run([shell, flag, script.replace("kestra.env", "missing.env"), zero],
                                 env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True)
        assert missing.returncode != 0 and not missing.stdout  # no credentials: Kestra never starts


def test_the_git_server_admin_command_creates_or_updates_the_admin(tmp_path):
    _generate(tmp_path)
    # after compose's own interpolation ($$ is a literal $)
    command = SERVICES["gitea-admin"]["command"][0].replace("$$", "$")
    assert subprocess.run(["sh", "-n", "-c", command]).returncode == 0
    command = command.replace("/run/kestra-promote/", f"{tmp_path}/bootstrap/")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "gitea.log"
    (bin_dir / "gitea").write_text(f"""#!/bin/sh
echo "$*" >> {log}
[ "$3" = list ] && printf 'ID   Username       Email                   IsActive IsAdmin 2FA\\n' \
  && printf '%s\\n' "$USERS"
exit 0
""")
    (bin_dir / "gitea").chmod(0o755)
    password = stack_credentials.load_all(tmp_path)["GITEA_ADMIN_PASSWORD"]

    def run(users: str) -> list[str]:
        log.write_text("")
        subprocess.run(["sh", "-c", command], check=True,
                       env={"PATH": f"{bin_dir}:/usr/bin:/bin", "USERS": users})
        return log.read_text().splitlines()

    # a user whose name or email contains the admin's name is not the admin
    assert run("2    kestra-dev     kestra@example.com      true     false   false") == [
        "admin user list",
        f"admin user create --admin --username kestra --password {password} "
        "--email kestra@example.com --must-change-password=false"]
    assert run("1    kestra         kestra@example.com      true     true    false") == [
        "admin user list", f"admin user change-password --username kestra --password {password}",
        "admin user must-change-password --unset kestra"]


# -- the bootstrap service's logic ----------------------------------------------------------


def _servers(values: dict[str, str]) -> tuple[FakeKestra, FakeKestra, FakeGitea]:
    # each instance accepts its own admin login only
    return (FakeKestra(username=values["KESTRA_DEV_ADMIN_USER"],
                       password=values["KESTRA_DEV_ADMIN_PASSWORD"]),
            FakeKestra(username=values["KESTRA_PROD_ADMIN_USER"],
                       password=values["KESTRA_PROD_ADMIN_PASSWORD"]),
            FakeGitea(values["GITEA_ADMIN_USER"], values["GITEA_ADMIN_PASSWORD"]))


def _env(dev: str, prod: str, gitea: str, credentials: Path) -> dict[str, str]:
    return {"KESTRA_DEV_URL": dev, "KESTRA_PROD_URL": prod, "GITEA_URL": gitea,
            "KESTRA_PROMOTE_CREDENTIALS": str(credentials)}


def test_the_stack_bootstrap_installs_everything_once(tmp_path):
    values = _generate(tmp_path)
    key, secret = values["PROMOTE_WEBHOOK_KEY"], values["PROMOTE_WEBHOOK_SECRET"]
    dev, prod, gitea = _servers(values)
    with serve(dev) as dev_url, serve(prod) as prod_url, serve(gitea) as gitea_url:  # type: ignore[arg-type]
        env = _env(dev_url, prod_url, gitea_url, tmp_path)
        out = io.StringIO()
        assert stack_bootstrap.main(env, out) == 0, out.getvalue()
        repo = gitea.repos[("kestra", "flows")]
        assert set(repo["files"]) >= {"kestra-promote.yml", "flows/dev.company/orders.yml",
                                      "files/dev.company.team/scripts/etl.py"}
        assert repo["commits"] == [{"message": "Example flows", "branch": "main",
                                    "author": "kestra"}]
        (hook,) = repo["hooks"]
        assert hook["config"]["url"] == (
            f"{prod_url}/api/v1/main/executions/webhook/system/promote/{key}")
        assert hook["secret"] == secret and hook["events"] == ["push"]
        # what the promote flow can check: the secret as a header (never the HMAC signature)
        assert hook["authorization_header"] == f"Bearer {secret}"
        assert set(prod.current()) == {("system", "promote"), ("system", "promote-check")}
        assert set(dev.current()) == {("system", "commit-to-git")}
        record = kp_seal.parse_record(prod.kv[("main", "system")][kp_seal.RECORD_KEY]["value"],
                                      "test")
        assert record.settings == {"promote_repo_url": f"{gitea_url}/kestra/flows.git",
                                   "promote_branch": "main", "promote_webhook_provider": "gitea"}
        # the seal the credentials service put in production's environment before it started
        # (standard library only) is the one of the record bootstrap wrote
        assert stack_seal.seal(stack_seal.prod_settings(gitea_url, "kestra")) == record.seal
        dev_kv = {k: v["value"] for k, v in dev.kv[("main", "system")].items()
                  if k.startswith("commit_")}
        assert dev_kv == {"commit_repo_url": f"{gitea_url}/kestra/flows.git"}
        shown = out.getvalue()
        assert "The loop is ready" in shown
        for login in ("KESTRA_DEV_ADMIN", "KESTRA_PROD_ADMIN", "GITEA_DEV", "GITEA_REVIEWER"):
            user = values[f"{login}_USER"]
            assert f"{user} / {values[f'{login}_PASSWORD']}" in shown, login
        # the Git server's admin and production's Git user are nobody's to log in with
        assert values["GITEA_ADMIN_PASSWORD"] not in shown
        assert values["GITEA_PROD_PASSWORD"] not in shown

        writes = (len(dev.writes()), len(prod.writes()), len(gitea.writes()))
        hooks_before = [dict(h) for h in repo["hooks"]]
        again = io.StringIO()
        assert stack_bootstrap.main(env, again) == 0, again.getvalue()
        # nothing changes; passwords and the hook's secret are set again (Gitea never shows them)
        assert (len(dev.writes()), len(prod.writes())) == writes[:2]
        assert [(r.method, r.path) for r in gitea.writes()[writes[2]:]] == [
            ("PATCH", "/api/v1/admin/users/dev-committer"),
            ("PATCH", "/api/v1/admin/users/reviewer"),
            ("PATCH", "/api/v1/admin/users/prod-reader"),
            ("PATCH", "/api/v1/repos/kestra/flows/hooks/1")]
        assert repo["hooks"] == hooks_before
        assert "prod: already installed." in again.getvalue()

        # a new webhook secret and key in .env: the hook follows, the old key's hook goes
        _generate(tmp_path, {"PROMOTE_WEBHOOK_SECRET": "s2", "PROMOTE_WEBHOOK_KEY": "new-key"})
        assert stack_bootstrap.main(env, io.StringIO()) == 0
        (hook,) = repo["hooks"]
        assert hook["config"]["url"].endswith("/system/promote/new-key")
        assert (hook["secret"], hook["authorization_header"]) == ("s2", "Bearer s2")
        _generate(tmp_path, {"PROMOTE_WEBHOOK_SECRET": "s3"})
        assert stack_bootstrap.main(env, io.StringIO()) == 0
        assert [(h["secret"], h["authorization_header"]) for h in repo["hooks"]] == [
            ("s3", "Bearer s3")]

        # the repository the stack created is what production then promotes
        prod_plan = run_cli("plan", str(ROOT / "examples"), "--url", prod_url, "--username",
                            values["KESTRA_PROD_ADMIN_USER"], "--password",
                            values["KESTRA_PROD_ADMIN_PASSWORD"], "--format", "json")
        assert prod_plan.code == 0, prod_plan.err


def test_each_instance_is_installed_with_its_own_login_only(tmp_path):
    values = _generate(tmp_path)
    dev, prod, gitea = _servers(values)
    with serve(dev) as dev_url, serve(prod) as prod_url, serve(gitea) as gitea_url:  # type: ignore[arg-type]
        assert stack_bootstrap.main(_env(dev_url, prod_url, gitea_url, tmp_path), io.StringIO()) == 0
        # production's login opens nothing in development, and the reverse
        for url, user, password in ((dev_url, "KESTRA_PROD_ADMIN_USER", "KESTRA_PROD_ADMIN_PASSWORD"),
                                    (prod_url, "KESTRA_DEV_ADMIN_USER", "KESTRA_DEV_ADMIN_PASSWORD")):
            result = run_cli("plan", str(ROOT / "examples"), "--url", url, "--username",
                             values[user], "--password", values[password])
            assert result.code != 0 and "401" in result.err + result.out, (url, result.err)


def test_git_users_are_not_admins_and_main_takes_reviewed_pull_requests_only(tmp_path):
    values = _generate(tmp_path)
    dev, prod, gitea = _servers(values)
    with serve(dev) as dev_url, serve(prod) as prod_url, serve(gitea) as gitea_url:  # type: ignore[arg-type]
        assert stack_bootstrap.main(_env(dev_url, prod_url, gitea_url, tmp_path), io.StringIO()) == 0
        users = gitea.users
        assert {name for name, user in users.items() if user["is_admin"]} == {"kestra"}
        for name in ("dev-committer", "reviewer", "prod-reader"):
            user = users[name]
            assert not user["must_change_password"] and user["max_repo_creation"] == 0 \
                and not user["allow_create_organization"], name
        repo = gitea.repos[("kestra", "flows")]
        assert repo["collaborators"] == {"dev-committer": "write", "reviewer": "write",
                                         "prod-reader": "read"}
        rule = repo["protections"]["main"]
        assert rule["enable_push"] is False
        assert (rule["enable_merge_whitelist"], rule["merge_whitelist_usernames"]) == (True, ["reviewer"])
        assert rule["required_approvals"] == 1
        assert (rule["enable_approvals_whitelist"], rule["approvals_whitelist_username"]) == \
            (True, ["reviewer"])
        assert rule["dismiss_stale_approvals"] and rule["block_on_rejected_reviews"]

        def as_user(prefix: str) -> Gitea:
            return Gitea.connect(gitea_url, values[f"{prefix}_USER"], values[f"{prefix}_PASSWORD"])

        # development's Git user (what commit-to-git pushes with) writes branches, never main
        developer = as_user("GITEA_DEV")
        developer.commit_files("kestra", "flows", {"flows/dev.company/new.yml": b"id: new\n"},
                               branch="kestra-dev", base="main", message="for review")
        with pytest.raises(GiteaError, match="403"):
            developer.commit_files("kestra", "flows", {"flows/dev.company/x.yml": b"id: x\n"},
                                   branch="main", message="straight to production")
        # nor can it lift the protection, touch the webhook, or make a repository of its own
        with pytest.raises(GiteaError, match="403"):
            developer.edit_branch_protection("kestra", "flows", "main", {"enable_push": True})
        with pytest.raises(GiteaError, match="403"):
            developer.create_push_hook("kestra", "flows", url="http://kestra-prod:8080/x",
                                       secret="x", branch="*")
        with pytest.raises(GiteaError, match="403"):
            developer.create_repository("mine", description="", branch="main")
        with pytest.raises(GiteaError, match="403"):
            developer.set_user("dev-committer", password="Admin-now-1")
        developer.close()
        # production's Git user reads, and writes nothing
        reader = as_user("GITEA_PROD")
        assert reader.repository("kestra", "flows") is not None
        assert reader.permission("kestra", "flows", "prod-reader") == "read"
        with pytest.raises(GiteaError, match="403"):
            reader.commit_files("kestra", "flows", {"a.yml": b"x"}, branch="other", message="m")
        reader.close()
        # the admin's own commit is the only one on main
        assert repo["commits"][-1] == {"message": "for review", "branch": "kestra-dev",
                                       "author": "dev-committer"}
        assert [c for c in repo["commits"] if c["branch"] == "main"] == [
            {"message": "Example flows", "branch": "main", "author": "kestra"}]

        # a protection loosened by hand is restored by the next run
        repo["protections"]["main"]["enable_push"] = True
        out = io.StringIO()
        assert stack_bootstrap.main(_env(dev_url, prod_url, gitea_url, tmp_path), out) == 0
        assert repo["protections"]["main"]["enable_push"] is False
        assert "restored the protection of main" in out.getvalue()
        # and so is a permission raised by hand
        repo["collaborators"]["prod-reader"] = "write"
        assert stack_bootstrap.main(_env(dev_url, prod_url, gitea_url, tmp_path), io.StringIO()) == 0
        assert repo["collaborators"]["prod-reader"] == "read"


def test_the_bootstrap_needs_the_credentials(tmp_path):
    out = io.StringIO()
    assert stack_bootstrap.main(_env("http://x", "http://y", "http://z", tmp_path), out) == 1
    assert "did the credentials service run?" in out.getvalue()


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




def test_production_starts_sealed_with_the_settings_the_bootstrap_will_write(tmp_path):
    values = _generate(tmp_path)
    exported = _sourced(tmp_path / "prod" / "kestra.env")
    assert exported["ENV_KESTRA_PROMOTE_SEAL"] == stack_seal.seal(
        stack_seal.prod_settings("http://gitea:3000", values["GITEA_ADMIN_USER"]))
    assert not any(k.startswith("ENV_") for k in _sourced(tmp_path / "dev" / "kestra.env"))
    service = SERVICES["credentials"]
    assert "./scripts:/project/scripts:ro" in service["volumes"]  # the package it seals
    assert service["environment"]["GITEA_URL"] == "http://gitea:3000"
    assert SERVICES["bootstrap"]["environment"]["GITEA_URL"] == "http://gitea:3000"


def test_the_stack_seal_reads_the_package_as_bootstrap_does(tmp_path):
    from kestra_promote.flows.desired import prepare
    from kestra_promote.git.source import read_source
    from kestra_promote.kestra_task.bootstrap import bootstrap_config

    project = tmp_path / "project"
    shutil.copytree(ROOT / "flows", project / "flows")
    shutil.copytree(ROOT / "scripts", project / "scripts",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / ".kestraignore", project / ".kestraignore")
    package = project / "scripts" / "kestra_promote"
    for name, data in (("legacy.PYO", b"x"), ("old.pyc", b"x"), ("notes.egg-info", b"kept"),
                       ("build.egg-info/PKG-INFO", b"x"), (".hidden", b"x"),
                       ("__PYCACHE__/a.py", b"x"), ("extra/.secret/b.py", b"x"),
                       ("extra/c.py", b"kept")):
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_bytes(data)
    config = bootstrap_config("prod", "system")
    desired = prepare(read_source(project, config=config), config)
    installed = kp_seal.namespace_package({k.path: f.content for k, f in desired.files.items()})
    assert {p for p, _ in stack_seal.package_files(project)} == {p for p, _ in installed}
    assert stack_seal.package_digest(stack_seal.package_files(project)) == \
        kp_seal.package_digest(installed)

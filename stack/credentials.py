"""The demo stack's credentials: `python -m stack.credentials` (the one-shot `credentials`
service of docker-compose.yml), run before anything else starts.

Each value is the one .env sets (the environment of this service) when it is not empty, else
the one an earlier run wrote, else a user name's default or a new random value. They are written
to one folder per party, each a volume mounted only where it is needed:

  dev/        development: its Kestra's admin login and database password, the Git user that
              pushes review branches (no production value at all)
  prod/       production: its Kestra's admin login and database password, the read-only Git user
              it clones with, the webhook key and secret
  bootstrap/  the Git server's admin (the bootstrap's only) and the reviewer (a person's login,
              the only user who may merge into main): held by no Kestra instance

Each folder holds credentials.json (its values; the bootstrap reads all three) and what its
containers read: kestra.env (sourced by the Kestra container's entrypoint: basic-auth login,
database password and the Kestra secrets SECRET_<NAME>, base64), postgres-password
(POSTGRES_PASSWORD_FILE), gitea-admin.env (the gitea-admin service). A secret value shared by
two parties is refused: development must never hold a value that opens production.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, TextIO

from . import seal

PARTIES = ("dev", "prod", "bootstrap")


@dataclass(frozen=True)
class Item:
    name: str              # the .env variable, and the key in credentials.json
    party: str             # the one folder it is written to
    default: str | None    # a user name's default; None: a secret, generated when not given


ITEMS = (
    Item("KESTRA_DEV_ADMIN_USER", "dev", "dev-admin@example.com"),
    Item("KESTRA_DEV_ADMIN_PASSWORD", "dev", None),
    Item("POSTGRES_DEV_PASSWORD", "dev", None),
    Item("GITEA_DEV_USER", "dev", "dev-committer"),
    Item("GITEA_DEV_PASSWORD", "dev", None),
    Item("KESTRA_PROD_ADMIN_USER", "prod", "prod-admin@example.com"),
    Item("KESTRA_PROD_ADMIN_PASSWORD", "prod", None),
    Item("POSTGRES_PROD_PASSWORD", "prod", None),
    Item("GITEA_PROD_USER", "prod", "prod-reader"),
    Item("GITEA_PROD_PASSWORD", "prod", None),
    Item("PROMOTE_WEBHOOK_KEY", "prod", None),
    Item("PROMOTE_WEBHOOK_SECRET", "prod", None),
    Item("GITEA_ADMIN_USER", "bootstrap", "kestra"),
    Item("GITEA_ADMIN_PASSWORD", "bootstrap", None),
    Item("GITEA_REVIEWER_USER", "bootstrap", "reviewer"),
    Item("GITEA_REVIEWER_PASSWORD", "bootstrap", None),
)
SECRET_NAMES = tuple(item.name for item in ITEMS if item.default is None)

# who reads a file besides root: the postgres image's user, the gitea image's `git` user
POSTGRES_UID, GITEA_UID = 999, 1000


class CredentialsError(Exception):
    pass


def generate(length: int = 32) -> str:
    """Letters and digits only (safe in URLs, YAML and shell), with an upper- and a lower-case
    letter and a digit (Kestra's password rule: 8 characters, an upper-case letter, a digit)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.isupper() for c in value) and any(c.islower() for c in value) \
                and any(c.isdigit() for c in value):
            return value


def load(root: Path, party: str) -> dict[str, str]:
    path = root / party / "credentials.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def load_all(root: Path) -> dict[str, str]:
    """Every party's values, for the bootstrap (which mounts the three folders)."""
    values: dict[str, str] = {}
    for party in PARTIES:
        values.update(load(root, party))
    missing = [item.name for item in ITEMS if not values.get(item.name)]
    if missing:
        raise CredentialsError(f"{root}: no value for {', '.join(missing)} (did the credentials "
                               "service run?)")
    return values


def resolve(env: Mapping[str, str], root: Path) -> dict[str, str]:
    """Every item's value: .env's, else the stored one, else the default or a new one."""
    values = {}
    for party in PARTIES:
        stored = load(root, party)
        for item in ITEMS:
            if item.party == party:
                values[item.name] = (env.get(item.name) or stored.get(item.name)
                                     or item.default or generate())
    return values


KESTRA_EMAIL = re.compile(r"[A-Za-z0-9_!#$%&'*+/=?`{|}~^.-]+@[A-Za-z0-9.-]+")
GITEA_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,38}")


def check(values: Mapping[str, str]) -> None:
    problems = []
    for name, value in values.items():
        if any(c in value for c in "\n\r\0"):
            problems.append(f"{name} holds a line break or a NUL")
    for side in ("DEV", "PROD"):
        user, password = values[f"KESTRA_{side}_ADMIN_USER"], values[f"KESTRA_{side}_ADMIN_PASSWORD"]
        if not KESTRA_EMAIL.fullmatch(user):
            problems.append(f"KESTRA_{side}_ADMIN_USER must be an email address (Kestra's rule)")
        if len(password) < 8 or not any(c.isupper() for c in password) \
                or not any(c.isdigit() for c in password):
            problems.append(f"KESTRA_{side}_ADMIN_PASSWORD needs 8 characters or more, an "
                            "upper-case letter and a digit (Kestra's rule)")
    git_users = [values[f"GITEA_{role}_USER"] for role in ("ADMIN", "DEV", "REVIEWER", "PROD")]
    for user in git_users:
        if not GITEA_USER.fullmatch(user):
            problems.append(f"Git user name {user!r}: letters, digits, '.', '_' and '-' only")
    if len({u.lower() for u in git_users}) != len(git_users):
        problems.append("GITEA_ADMIN_USER, GITEA_DEV_USER, GITEA_REVIEWER_USER and GITEA_PROD_USER "
                        "must be four different users")
    for name in SECRET_NAMES:
        if name.startswith("GITEA_") and len(values[name]) < 8:
            problems.append(f"{name} needs 8 characters or more (Gitea's rule)")
    # a value given to two parties would let one act as the other: development as production
    owner: dict[str, str] = {}
    party = {item.name: item.party for item in ITEMS}
    for name in SECRET_NAMES:
        other = owner.setdefault(values[name], name)
        if other != name and party[other] != party[name]:
            problems.append(f"{other} and {name} are equal: {party[other]} and {party[name]} "
                            "must share no secret")
    if problems:
        raise CredentialsError("; ".join(problems))


def b64(value: str) -> str:  # Kestra's open-source secrets: SECRET_<NAME> holds base64
    return base64.b64encode(value.encode()).decode()


def shell_exports(variables: Mapping[str, str]) -> str:
    quote = lambda v: "'" + v.replace("'", "'\\''") + "'"  # noqa: E731
    return "".join(f"export {name}={quote(value)}\n" for name, value in variables.items())


def kestra_environment(values: Mapping[str, str], party: str,
                       gitea_url: str = seal.GITEA_URL) -> dict[str, str]:
    """What one Kestra container's entrypoint exports: its own login (Micronaut maps
    KESTRA_SERVER_BASIC_AUTH_* to kestra.server.basic-auth.*, DATASOURCES_POSTGRES_PASSWORD to
    datasources.postgres.password), the secrets its flows read and, for production, the seal of
    the promotion's settings (ENV_KESTRA_PROMOTE_SEAL: flows read it, none can write it)."""
    side = party.upper()
    variables = {
        "KESTRA_SERVER_BASIC_AUTH_USERNAME": values[f"KESTRA_{side}_ADMIN_USER"],
        "KESTRA_SERVER_BASIC_AUTH_PASSWORD": values[f"KESTRA_{side}_ADMIN_PASSWORD"],
        "DATASOURCES_POSTGRES_PASSWORD": values[f"POSTGRES_{side}_PASSWORD"],
        # promote (production) and commit-to-git (development) call their own instance's API
        "SECRET_KESTRA_PROMOTE_USERNAME": b64(values[f"KESTRA_{side}_ADMIN_USER"]),
        "SECRET_KESTRA_PROMOTE_PASSWORD": b64(values[f"KESTRA_{side}_ADMIN_PASSWORD"]),
        # production clones with the read-only user, development pushes branches with its own
        "SECRET_KESTRA_PROMOTE_GIT_USERNAME": b64(values[f"GITEA_{side}_USER"]),
        "SECRET_KESTRA_PROMOTE_GIT_TOKEN": b64(values[f"GITEA_{side}_PASSWORD"]),
    }
    if party == "prod":
        variables["SECRET_KESTRA_PROMOTE_WEBHOOK_KEY"] = b64(values["PROMOTE_WEBHOOK_KEY"])
        variables["SECRET_KESTRA_PROMOTE_WEBHOOK_SECRET"] = b64(values["PROMOTE_WEBHOOK_SECRET"])
        variables["ENV_KESTRA_PROMOTE_SEAL"] = seal.seal(
            seal.prod_settings(gitea_url, values["GITEA_ADMIN_USER"]))
    return variables


def files(values: Mapping[str, str], gitea_url: str = seal.GITEA_URL
          ) -> dict[tuple[str, str], tuple[str, int | None]]:
    """(party, file name) -> (content, the uid that must read it besides root)."""
    out: dict[tuple[str, str], tuple[str, int | None]] = {}
    for party in PARTIES:
        own = {item.name: values[item.name] for item in ITEMS if item.party == party}
        out[(party, "credentials.json")] = (json.dumps(own, indent=2, sort_keys=True) + "\n", None)
    for party in ("dev", "prod"):
        out[(party, "kestra.env")] = (shell_exports(kestra_environment(values, party, gitea_url)),
                                      None)
        out[(party, "postgres-password")] = (values[f"POSTGRES_{party.upper()}_PASSWORD"],
                                             POSTGRES_UID)
    out[("bootstrap", "gitea-admin.env")] = (shell_exports({
        "GITEA_ADMIN_USER": values["GITEA_ADMIN_USER"],
        "GITEA_ADMIN_PASSWORD": values["GITEA_ADMIN_PASSWORD"]}), GITEA_UID)
    return out


def write(root: Path, values: Mapping[str, str], gitea_url: str = seal.GITEA_URL) -> list[str]:
    """Write every file that changed (mode 0600); the names written."""
    written = []
    for (party, name), (content, uid) in files(values, gitea_url).items():
        path = root / party / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != content:
            temporary = path.with_name(f".{name}.new")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(content)
            temporary.replace(path)
            written.append(f"{party}/{name}")
        path.chmod(0o600)
        if uid is not None and os.geteuid() == 0:  # only root can give a file away
            os.chown(path, uid, uid)
    return written


def main(env: Mapping[str, str] | None = None, root: Path | None = None,
         out: TextIO = sys.stdout) -> int:
    env = os.environ if env is None else env
    root = root or Path(env.get("KESTRA_PROMOTE_CREDENTIALS", "/credentials"))
    try:
        values = resolve(env, root)
        check(values)
    except CredentialsError as exc:
        out.write(f"credentials refused: {exc}\n")
        return 1
    written = write(root, values, env.get("GITEA_URL") or seal.GITEA_URL)
    out.write(f"credentials: {'wrote ' + ', '.join(written) if written else 'unchanged'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

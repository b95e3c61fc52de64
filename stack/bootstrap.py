"""The demo stack's one-shot bootstrap: `python -m stack.bootstrap` (docker-compose.yml).

Waits for the two Kestra instances and the Git server, then, as the Git server's admin (an
account only this bootstrap uses): creates the Git users (development's, which pushes branches;
the reviewer, who alone merges into main; production's, which only reads), the flows repository
from examples/ (one commit), gives each user its access, protects main (no push, merges by
pull request approved and merged by the reviewer), and points the repository's push webhook at
production's promote flow. Then it installs the promotion flows in production and the
commit-to-git flow in development (kestra-promote bootstrap), each with that instance's own
login, and prints where to click. Running it again changes nothing.

Every credential comes from the folders stack.credentials wrote (KESTRA_PROMOTE_CREDENTIALS).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

from kestra_promote.kestra_task import bootstrap
from kestra_promote import report
from kestra_promote.target.client import Connection, connect
from kestra_promote.errors import KestraPromoteError
from kestra_promote.gates import seal as kp_seal

from . import credentials, seal
from .gitea import Gitea, GiteaError
from .seal import BRANCH, OWNER_REPO  # the demo's settings: one place, which the seal uses

PROJECT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Login:
    username: str
    password: str = ""


@dataclass(frozen=True)
class Stack:
    dev_url: str
    prod_url: str
    gitea_url: str
    dev_admin: Login      # development's Kestra
    prod_admin: Login     # production's Kestra
    git_admin: Login      # the Git server's admin: this bootstrap's only
    git_dev: Login        # development's Git user: pushes review branches
    git_reviewer: Login   # a person: approves and merges pull requests into main
    git_prod: Login       # production's Git user: reads the repository
    webhook_key: str
    webhook_secret: str
    public_dev: str
    public_prod: str
    public_gitea: str

    @classmethod
    def from_env(cls, env: Mapping[str, str], values: Mapping[str, str] | None = None) -> Stack:
        if values is None:
            values = credentials.load_all(Path(env.get("KESTRA_PROMOTE_CREDENTIALS",
                                                       "/credentials")))

        def login(prefix: str) -> Login:
            return Login(values[f"{prefix}_USER"], values[f"{prefix}_PASSWORD"])

        return cls(
            dev_url=env["KESTRA_DEV_URL"], prod_url=env["KESTRA_PROD_URL"],
            gitea_url=env["GITEA_URL"],
            dev_admin=login("KESTRA_DEV_ADMIN"), prod_admin=login("KESTRA_PROD_ADMIN"),
            git_admin=login("GITEA_ADMIN"), git_dev=login("GITEA_DEV"),
            git_reviewer=login("GITEA_REVIEWER"), git_prod=login("GITEA_PROD"),
            webhook_key=values["PROMOTE_WEBHOOK_KEY"],
            webhook_secret=values["PROMOTE_WEBHOOK_SECRET"],
            public_dev=env.get("PUBLIC_DEV_URL", env["KESTRA_DEV_URL"]),
            public_prod=env.get("PUBLIC_PROD_URL", env["KESTRA_PROD_URL"]),
            public_gitea=env.get("PUBLIC_GITEA_URL", env["GITEA_URL"]),
        )

    @property
    def owner(self) -> str:  # the repository belongs to the admin: no Kestra can change it
        return self.git_admin.username

    @property
    def repo_url(self) -> str:  # as the Kestra containers reach it
        return f"{self.gitea_url}/{self.owner}/{OWNER_REPO}.git"

    @property
    def webhook_url(self) -> str:  # as the Git server reaches production
        return f"{self.prod_url}/api/v1/main/executions/webhook/system/promote/{self.webhook_key}"

    def access(self) -> tuple[tuple[Login, str], ...]:
        """Each Git user and its permission on the repository."""
        return ((self.git_dev, "write"), (self.git_reviewer, "write"), (self.git_prod, "read"))

    def protection(self) -> dict[str, Any]:
        """main's branch protection (CreateBranchProtectionOption): nobody pushes to it, so it
        changes only by a merged pull request; only the reviewer merges, and only after an
        approval of the reviewer's (development's Git user can neither approve nor merge); a
        push after the approval dismisses it; a rejection blocks the merge; an admin cannot
        merge past the rule (Gitea 1.23 and later; 1.22 ignores the field)."""
        reviewer = [self.git_reviewer.username]
        return {"enable_push": False, "enable_push_whitelist": False,
                "enable_merge_whitelist": True, "merge_whitelist_usernames": reviewer,
                "required_approvals": 1, "enable_approvals_whitelist": True,
                "approvals_whitelist_username": reviewer, "dismiss_stale_approvals": True,
                "block_on_rejected_reviews": True, "block_admin_merge_override": True}


def example_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def wait_until(check: Callable[[], bool], what: str, *, timeout: float, sleep=time.sleep) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {timeout:.0f} s")
        sleep(2)


def ensure_users(gitea: Gitea, stack: Stack, out: TextIO) -> None:
    """Development's, the reviewer's and production's Git users: never admins, passwords of
    the credentials folders (written every run: Gitea never shows one back)."""
    for login, _ in stack.access():
        if gitea.user(login.username) is None:
            gitea.create_user(login.username, password=login.password,
                              email=f"{login.username}@example.com")
            out.write(f"created Git user {login.username}\n")
        gitea.set_user(login.username, password=login.password)


def ensure_repository(gitea: Gitea, stack: Stack, out: TextIO) -> None:
    repo = gitea.repository(stack.owner, OWNER_REPO)
    if repo is None:
        gitea.create_repository(OWNER_REPO, description="Kestra flows, promoted to production "
                                "by kestra-promote", branch=BRANCH)
        repo = {"empty": True}
        out.write(f"created repository {stack.owner}/{OWNER_REPO}\n")
    if repo.get("empty", False):  # before main is protected: afterwards nobody pushes to it
        gitea.commit_files(stack.owner, OWNER_REPO, example_files(PROJECT / "examples"),
                           branch=BRANCH, message="Example flows")
        out.write("committed the example flows\n")


def ensure_access(gitea: Gitea, stack: Stack, out: TextIO) -> None:
    for login, permission in stack.access():
        if gitea.permission(stack.owner, OWNER_REPO, login.username) != permission:
            gitea.add_collaborator(stack.owner, OWNER_REPO, login.username, permission)
            out.write(f"gave {login.username} {permission} access to {stack.owner}/{OWNER_REPO}\n")


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    # a field the server does not return is one its version does not have
    def same(a: Any, b: Any) -> bool:
        if isinstance(a, list) and isinstance(b, list):
            return sorted(str(x).lower() for x in a) == sorted(str(x).lower() for x in b)
        return bool(a == b)
    return any(not same(current[key], value) for key, value in desired.items() if key in current)


def ensure_protection(gitea: Gitea, stack: Stack, out: TextIO) -> None:
    desired = stack.protection()
    current = gitea.branch_protection(stack.owner, OWNER_REPO, BRANCH)
    if current is None:
        gitea.create_branch_protection(stack.owner, OWNER_REPO, BRANCH, desired)
        out.write(f"protected {BRANCH}: pull requests merged by {stack.git_reviewer.username} "
                  "only\n")
    elif _differs(current, desired):
        gitea.edit_branch_protection(stack.owner, OWNER_REPO, BRANCH, desired)
        out.write(f"restored the protection of {BRANCH}\n")


def ensure_hook(gitea: Gitea, stack: Stack, out: TextIO) -> None:
    hooks = gitea.hooks(stack.owner, OWNER_REPO)
    ours = [h for h in hooks if (h.get("config") or {}).get("url") == stack.webhook_url]
    prefix = stack.webhook_url.rsplit("/", 1)[0] + "/"
    for old in hooks:  # a key changed in .env: the hook of the old key calls a dead URL
        if old not in ours and str((old.get("config") or {}).get("url", "")).startswith(prefix):
            gitea.delete_hook(stack.owner, OWNER_REPO, old["id"])
            out.write("removed the push webhook of a previous webhook key\n")
    if ours:  # the secret may have changed in .env: Gitea never shows it, so set it again
        gitea.update_push_hook(stack.owner, OWNER_REPO, ours[0]["id"],
                               url=stack.webhook_url, secret=stack.webhook_secret, branch=BRANCH)
    else:
        gitea.create_push_hook(stack.owner, OWNER_REPO, url=stack.webhook_url,
                               secret=stack.webhook_secret, branch=BRANCH)
        out.write("registered the push webhook of production's promote flow\n")


def install(login: Login, url: str, role: str, settings: Mapping[str, str], out: TextIO,
            transport=None) -> bool:
    connection = Connection(url, username=login.username, password=login.password)
    with connect(connection, transport=transport) as client:
        # the demo states every setting of production each time: nothing is carried over from
        # its KV store, which any flow can write (and the seal was worked out from these)
        sealed_before = kp_seal.read_text(client, "system") if role == "prod" else None
        prepared, result = bootstrap.install(client, PROJECT, role, "system", settings,
                                             sealing=bootstrap.Sealing(reset=True))
    changed = len(result.outcomes) + (prepared.record_changed if prepared.record is not None
                                      else len(prepared.settings))
    out.write(f"{role}: {report.result_summary(result) if changed else 'already installed.'}\n")
    if prepared.record is not None and sealed_before is not None and prepared.record_changed:
        # Kestra reads its environment once, when it starts: an upgrade's new seal (the
        # credentials service wrote it) counts only once production is started again
        out.write(f"production's seal changed ({prepared.record.seal}): start production again "
                  "so that it reads it: docker compose up -d --force-recreate kestra-prod\n")
    return result.ok


def prod_settings(stack: Stack) -> dict[str, str]:
    # the same settings the credentials service sealed production's environment with
    return seal.prod_settings(stack.gitea_url, stack.owner)


def dev_settings(stack: Stack) -> dict[str, str]:
    return {"commit_repo_url": stack.repo_url}


def where_to_click(stack: Stack) -> str:
    def show(login: Login) -> str:
        return f"{login.username} / {login.password}"

    return f"""
The loop is ready:
  development  {stack.public_dev}    write flows here (namespace dev.company), then run
                                          system / commit-to-git to commit them to a branch
  Git server   {stack.public_gitea}    as {stack.git_dev.username}, open a pull request from that
                                          branch into main; as {stack.git_reviewer.username}, approve and merge it
  production   {stack.public_prod}    system / promote runs on the push and promotes the merge;
                                          its Outputs tab shows report.md (Execute it for a plan)
Logins (generated unless set in .env; `docker compose logs bootstrap` shows them again):
  development Kestra   {show(stack.dev_admin)}
  production Kestra    {show(stack.prod_admin)}
  Git, development     {show(stack.git_dev)}
  Git, reviewer        {show(stack.git_reviewer)}
The Git server's admin ({stack.git_admin.username}) is the bootstrap's own account; production
clones as {stack.git_prod.username} (read only).
"""


def main(env: Mapping[str, str] | None = None, out: TextIO = sys.stdout,
         gitea: Gitea | None = None, transports: Mapping[str, object] | None = None,
         timeout: float = 600) -> int:
    env = os.environ if env is None else env
    try:
        stack = Stack.from_env(env)
    except credentials.CredentialsError as exc:
        out.write(f"bootstrap failed: {exc}\n")
        return 1
    transports = transports or {}
    gitea = gitea or Gitea.connect(stack.gitea_url, stack.git_admin.username,
                                   stack.git_admin.password)
    try:
        for name, url in (("development Kestra", stack.dev_url), ("production Kestra", stack.prod_url)):
            connection = Connection(url, retries=0)
            with connect(connection, transport=transports.get(url)) as client:  # type: ignore[arg-type]
                wait_until(lambda c=client: _pings(c), name, timeout=timeout)
        wait_until(gitea.healthy, "the Git server", timeout=timeout)
        ensure_users(gitea, stack, out)
        ensure_repository(gitea, stack, out)
        ensure_access(gitea, stack, out)
        ensure_protection(gitea, stack, out)
        ensure_hook(gitea, stack, out)
        ok = install(stack.prod_admin, stack.prod_url, "prod", prod_settings(stack), out,
                     transports.get(stack.prod_url))
        ok = install(stack.dev_admin, stack.dev_url, "dev", dev_settings(stack), out,
                     transports.get(stack.dev_url)) and ok
    except (KestraPromoteError, GiteaError) as exc:
        out.write(f"bootstrap failed: {exc}\n")
        return 1
    finally:
        gitea.close()
    out.write(where_to_click(stack))
    return 0 if ok else 1


def _pings(client) -> bool:  # type: ignore[no-untyped-def]
    try:
        return client.ping()
    except KestraPromoteError:
        return False


if __name__ == "__main__":
    sys.exit(main())

"""The demo stack's one-shot bootstrap: `python -m stack.bootstrap` (docker-compose.yml).

Waits for the two Kestra instances and the Git server, creates the flows repository from
examples/ (one commit), points its push webhook at production's promote flow, installs the
promotion flows in production and the commit-to-git flow in development (kestra-promote
bootstrap), and prints where to click. Running it again changes nothing.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, TextIO

from kestra_promote.kestra_task import bootstrap
from kestra_promote import report
from kestra_promote.target.client import Connection, connect
from kestra_promote.errors import KestraPromoteError

from .gitea import Gitea, GiteaError

PROJECT = Path(__file__).resolve().parents[1]
OWNER_REPO = "flows"
BRANCH = "main"
PROVIDER = "gitea"  # promote_webhook_provider: a request claiming another provider is refused


@dataclass(frozen=True)
class Stack:
    dev_url: str
    prod_url: str
    gitea_url: str
    kestra_username: str
    kestra_password: str
    git_username: str
    git_password: str
    webhook_key: str
    webhook_secret: str
    public_dev: str
    public_prod: str
    public_gitea: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Stack:
        def secret(name: str) -> str:  # Kestra's convention: SECRET_<NAME>, base64
            return base64.b64decode(env[f"SECRET_{name}"]).decode()

        return cls(
            dev_url=env["KESTRA_DEV_URL"], prod_url=env["KESTRA_PROD_URL"],
            gitea_url=env["GITEA_URL"], kestra_username=env["KESTRA_USERNAME"],
            kestra_password=env["KESTRA_PASSWORD"], git_username=env["GITEA_ADMIN_USER"],
            git_password=secret("KESTRA_PROMOTE_GIT_TOKEN"),
            webhook_key=secret("KESTRA_PROMOTE_WEBHOOK_KEY"),
            webhook_secret=secret("KESTRA_PROMOTE_WEBHOOK_SECRET"),
            public_dev=env.get("PUBLIC_DEV_URL", env["KESTRA_DEV_URL"]),
            public_prod=env.get("PUBLIC_PROD_URL", env["KESTRA_PROD_URL"]),
            public_gitea=env.get("PUBLIC_GITEA_URL", env["GITEA_URL"]),
        )

    @property
    def repo_url(self) -> str:  # as the Kestra containers reach it
        return f"{self.gitea_url}/{self.git_username}/{OWNER_REPO}.git"

    @property
    def webhook_url(self) -> str:  # as the Git server reaches production
        return f"{self.prod_url}/api/v1/main/executions/webhook/system/promote/{self.webhook_key}"


def example_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def wait_until(check: Callable[[], bool], what: str, *, timeout: float, sleep=time.sleep) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {timeout:.0f} s")
        sleep(2)


def ensure_repository(gitea: Gitea, stack: Stack, out: TextIO) -> None:
    repo = gitea.repository(stack.git_username, OWNER_REPO)
    if repo is None:
        gitea.create_repository(OWNER_REPO, description="Kestra flows, promoted to production "
                                "by kestra-promote", branch=BRANCH)
        repo = {"empty": True}
        out.write(f"created repository {stack.git_username}/{OWNER_REPO}\n")
    if repo.get("empty", False):
        gitea.commit_files(stack.git_username, OWNER_REPO, example_files(PROJECT / "examples"),
                           branch=BRANCH, message="Example flows")
        out.write("committed the example flows\n")
    hooks = gitea.hooks(stack.git_username, OWNER_REPO)
    ours = [h for h in hooks if (h.get("config") or {}).get("url") == stack.webhook_url]
    prefix = stack.webhook_url.rsplit("/", 1)[0] + "/"
    for old in hooks:  # a key changed in .env: the hook of the old key calls a dead URL
        if old not in ours and str((old.get("config") or {}).get("url", "")).startswith(prefix):
            gitea.delete_hook(stack.git_username, OWNER_REPO, old["id"])
            out.write("removed the push webhook of a previous webhook key\n")
    if ours:  # the secret may have changed in .env: Gitea never shows it, so set it again
        gitea.update_push_hook(stack.git_username, OWNER_REPO, ours[0]["id"],
                               url=stack.webhook_url, secret=stack.webhook_secret, branch=BRANCH)
    else:
        gitea.create_push_hook(stack.git_username, OWNER_REPO, url=stack.webhook_url,
                               secret=stack.webhook_secret, branch=BRANCH)
        out.write("registered the push webhook of production's promote flow\n")


def install(stack: Stack, url: str, role: str, settings: Mapping[str, str], out: TextIO,
            transport=None) -> bool:
    connection = Connection(url, username=stack.kestra_username, password=stack.kestra_password)
    with connect(connection, transport=transport) as client:
        prepared, result = bootstrap.install(client, PROJECT, role, "system", settings)
    changed = len(result.outcomes) + len(prepared.settings)
    out.write(f"{role}: {report.result_summary(result) if changed else 'already installed.'}\n")
    return result.ok


def where_to_click(stack: Stack) -> str:
    return f"""
The loop is ready:
  development  {stack.public_dev}    write flows here (namespace dev.company), then run
                                          system / commit-to-git to commit them to a branch
  Git server   {stack.public_gitea}    open a pull request from that branch into main; merge it
  production   {stack.public_prod}    system / promote runs on the push and promotes the merge;
                                          its Outputs tab shows report.md (Execute it for a plan)
Credentials: Kestra {stack.kestra_username}, Gitea {stack.git_username} (see .env.example).
"""


def main(env: Mapping[str, str] | None = None, out: TextIO = sys.stdout,
         gitea: Gitea | None = None, transports: Mapping[str, object] | None = None,
         timeout: float = 600) -> int:
    stack = Stack.from_env(env or os.environ)
    transports = transports or {}
    gitea = gitea or Gitea.connect(stack.gitea_url, stack.git_username, stack.git_password)
    try:
        for name, url in (("development Kestra", stack.dev_url), ("production Kestra", stack.prod_url)):
            connection = Connection(url, retries=0)
            with connect(connection, transport=transports.get(url)) as client:  # type: ignore[arg-type]
                wait_until(lambda c=client: _pings(c), name, timeout=timeout)
        wait_until(gitea.healthy, "the Git server", timeout=timeout)
        ensure_repository(gitea, stack, out)
        ok = install(stack, stack.prod_url, "prod",
                     {"promote_repo_url": stack.repo_url, "promote_branch": BRANCH,
                      "promote_webhook_provider": PROVIDER}, out,
                     transports.get(stack.prod_url))
        ok = install(stack, stack.dev_url, "dev", {"commit_repo_url": stack.repo_url}, out,
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

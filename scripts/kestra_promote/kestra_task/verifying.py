"""The promotion flow's apply, with production's checks after it (``engine.verify``): the same
``apply_verified`` the CLI calls, with the task's settings, policy and clone.

A rollback plans an earlier commit of the repository the task cloned. Kestra's Clone is shallow
(plugin-git Clone.java: depth 1 by default), so that commit is fetched first, from the
repository the flows promote (``promote_repo_url``), with the task's Git credentials: passed to
``git`` in its environment, never on its command line, when the worker has ``git``; else (Kestra's
own image) over Git's HTTP protocol in pure Python (``git.treefetch``), when the URL is http(s).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from kestra_promote.config import Config
from kestra_promote.engine.marking import marker
from kestra_promote.engine.promotion import open_promotion
from kestra_promote.engine.verify import Mark, SourceAt, apply_verified
from kestra_promote.errors import SettingsError
from kestra_promote.gates.verification import Verify
from kestra_promote.gates.stages import TAGGER
from kestra_promote.git import gitref, tagpush, treefetch
from kestra_promote.git.blobs import Committed
from kestra_promote.git.origin import origin
from kestra_promote.git.source import read_settings
from kestra_promote.kestra_task import settings
from kestra_promote.kestra_task.rights import repo_tags
from kestra_promote.kestra_task.envvalues import flag as _flag
from kestra_promote.kestra_task.envvalues import text as _text
from kestra_promote.models import ApplyResult, Plan
from kestra_promote.target.client import KestraClient


def task_config(env: Mapping[str, str], folder: Path) -> Config:
    """The settings of the clone at ``folder``, with the run's overrides (KP_PRUNE, KP_DRIFT,
    KP_ALLOW_DELETIONS)."""
    allow = _text(env, "KP_ALLOW_DELETIONS")
    return read_settings(folder, _text(env, "KP_CONFIG")).with_overrides(
        prune=_flag(env, "KP_PRUNE"), drift=_text(env, "KP_DRIFT"),
        allow_deletions=int(allow) if allow else None)


def apply(env: Mapping[str, str], workdir: Path, client: KestraClient, plan: Plan,
          **options: Any) -> tuple[Plan, ApplyResult]:
    """``apply_locked``'s options, then the checks of production's policy, and a rollback."""
    def verify() -> Verify | None:
        stored = settings.read_policy(client, env)
        return stored.policy.verify if stored.policy is not None else None

    return apply_verified(client, plan, verify=verify,
                          source_at=_source_at(env, workdir, client), mark=_marker(env),
                          **options)


def _marker(env: Mapping[str, str]) -> Mark:
    """Marks a verified commit for the next stage: an annotated tag pushed to the repository
    the flows promote (``promote_repo_url``) with the promotion's Git credentials, over Git's
    HTTP protocol (Kestra's image has no ``git``)."""
    def create(name: str, commit: str, message: str) -> None:
        url = _text(env, "KP_REPO_URL")
        if not url:
            raise SettingsError("KP_REPO_URL is not set: the flows read it from promote_repo_url")
        tagpush.create_tag(url, name, commit, message, tagger_name=TAGGER[0],
                           tagger_email=TAGGER[1], username=_text(env, "KP_GIT_USERNAME"),
                           password=_text(env, "KP_GIT_PASSWORD"))
    return marker(functools.partial(repo_tags, env), create,
                  run=_text(env, "KP_HOLDER") or "")


def _source_at(env: Mapping[str, str], workdir: Path, client: KestraClient) -> SourceAt:
    folder = workdir / (_text(env, "KP_SOURCE") or "repo")

    @contextlib.contextmanager
    def at(commit: str) -> Iterator[Callable[[], Plan]]:
        with _checked_out(env, workdir, folder, commit) as (tree, full, committed):
            promotion = open_promotion(
                client, tree, task_config(env, Path(tree)), commit=full,
                origin=origin(folder), policy=functools.partial(settings.read_policy, client, env),
                committed=committed, stage_tags=functools.partial(repo_tags, env))
            yield promotion.plan
    return at


def _checked_out(env: Mapping[str, str], workdir: Path, folder: Path, commit: str
                 ) -> contextlib.AbstractContextManager[tuple[str, str, Committed | None]]:
    """The files of ``commit`` in the same folder as ``folder`` in the clone: fetched into the
    clone and checked out with ``git`` when the worker has it, else fetched over Git's HTTP
    protocol in pure Python (Kestra's own image has no ``git``)."""
    url = _text(env, "KP_REPO_URL") or ""
    if shutil.which("git") is not None:
        fetch(env, workdir / "repo", commit)
        return gitref.checkout(str(folder), commit)
    if not url.startswith(("http://", "https://")):
        raise SettingsError(
            f"reading commit {commit[:12]} needs `git`, which this worker does not have, or an "
            f"http(s) promote_repo_url: roll back with `kestra-promote apply --ref "
            f"{commit[:12]}` (or a manual run of this flow with that ref), or run the "
            "promotion on an image with git")
    under = folder.relative_to(workdir / "repo").as_posix()
    return treefetch.checked_out(url, commit, "" if under == "." else under,
                                 shown_as=str(folder), username=_text(env, "KP_GIT_USERNAME"),
                                 password=_text(env, "KP_GIT_PASSWORD"))


def fetch(env: Mapping[str, str], clone: Path, commit: str) -> None:
    """Make ``commit`` readable in the (shallow) clone, fetching it when it is not there."""
    def git(*args: str, extra: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(clone), *args], capture_output=True, text=True,
                              check=False, env={**os.environ, "GIT_TERMINAL_PROMPT": "0",
                                                **(extra or {})})

    if git("cat-file", "-e", f"{commit}^{{commit}}").returncode == 0:
        return
    url = _text(env, "KP_REPO_URL")
    if not url:
        raise SettingsError(f"commit {commit[:12]} is not in the clone, and KP_REPO_URL "
                            "(promote_repo_url) is not set to fetch it from")
    extra: dict[str, str] = {}
    user, password = _text(env, "KP_GIT_USERNAME"), _text(env, "KP_GIT_PASSWORD")
    if password:  # an HTTP header from git's environment: no argument shows it
        token = base64.b64encode(f"{user or 'git'}:{password}".encode()).decode()
        extra = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                 "GIT_CONFIG_VALUE_0": f"Authorization: Basic {token}"}
    done = git("fetch", "--quiet", "--depth", "1", "--", url, commit, extra=extra)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = lines[-1] if lines else "failed"
        for secret in (password, url):
            why = why.replace(secret, "***") if secret else why
        raise SettingsError(f"fetching commit {commit[:12]} from the repository failed: {why}")

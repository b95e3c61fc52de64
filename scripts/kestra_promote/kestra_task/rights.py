"""What a run started by hand may do: executing the promote flow is not administering production.

A person who may only execute ``promote`` chooses inputs; production's settings and Git's
history decide what those inputs may reach:

- a ``ref`` given by hand is a commit of the followed branch's history (``in_history``), or,
  when following tags, a tag the promotion would follow (``followable_tag``);
- the approval production or the followed branch's head requires (``approval_required``) holds
  for any commit chosen by hand: an older commit's settings cannot switch it off;
- overrides of ``prune``, the deletion limit and the sync windows (``asked_overrides``) are
  recorded with who asked, and go through the approval when it is on;
- which tags are followed comes from production's policy (``followed``): its tag rule, or, on a
  stage after another, the previous stage's verification tags.

What started a run is never an input: the flows derive it from Kestra's own ``trigger``
variables.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any, Mapping

from kestra_promote.errors import KestraError, SettingsError
from kestra_promote.gates import stages, webhook
from kestra_promote.gates.policy import TagRule
from kestra_promote.git import gitremote, history
from kestra_promote.git.gitinfo import read_commit
from kestra_promote.git.source import read_settings
from kestra_promote.kestra_task import settings
from kestra_promote.target.client import Connection, connect
from kestra_promote.textsafe import safe_text

APPROVAL_VALUES = ("required", "off")  # promote_approval; unset is off


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    return value or None


_COMMIT = re.compile(r"[0-9a-fA-F]{7,40}")


def classify_ref(ref: str, target: webhook.Target) -> tuple[str, str]:
    """(kind, name) of a ref given by hand: ``commit`` for a SHA, ``branch`` for refs/heads/NAME
    or the followed branch, ``tag`` for refs/tags/NAME and any other name (releases are tags).

    Kestra's git Clone needs to be told which one it gets (``branch``, ``tag`` or ``commit``)."""
    if not webhook.valid_ref_name(ref):
        raise SettingsError(f"{ref!r} is not a valid Git ref name")
    # one ref, as typed and seen: Git refuses a branch or tag name starting with "-" (it would
    # read as an option), and a character that is not visible is not what the person saw
    short = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
    if short.startswith("-") or not ref.isprintable():
        raise SettingsError(f"{ref!r} is not a branch, tag or commit name a person can give: "
                            "no leading '-', only visible characters")
    if _COMMIT.fullmatch(ref):
        return "commit", ref.lower()
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix):
            return kind, ref[len(prefix):]
    if ref.startswith("refs/"):
        raise SettingsError(f"{ref!r}: give a branch as refs/heads/NAME, a tag, or a commit SHA")
    return ("branch", ref) if ref == target.branch else ("tag", ref)


def repo_tags(env: Mapping[str, str]) -> dict[str, str]:
    """The tags the repository lists now (name -> commit), valid ref names only."""
    url = _text(env, "KP_REPO_URL")
    if not url:
        raise SettingsError("KP_REPO_URL is not set: the flows read it from promote_repo_url")
    tags = gitremote.list_tags(url, username=_text(env, "KP_GIT_USERNAME"),
                               password=_text(env, "KP_GIT_PASSWORD"))
    return {t: sha for t, sha in tags.items() if webhook.valid_ref_name(t)}


def approval_setting(env: Mapping[str, str]) -> bool:
    """production's ``promote_approval`` (KP_APPROVAL): ``required`` or ``off``, or unset (off).
    Anything else is an error naming the setting: a value meant to turn approval on (``true``,
    ``yes``) never silently leaves it off."""
    value = (_text(env, "KP_APPROVAL") or "off").lower()
    if value not in APPROVAL_VALUES:
        raise SettingsError(f"promote_approval must be 'required' or 'off' (or unset), not "
                            f"{safe_text(value[:40])!r}: nothing was done")
    return value == "required"


def followed(env: Mapping[str, str], connection: Connection | None
             ) -> tuple[webhook.Target, TagRule | None]:
    """What the promotion follows and production's rule for tags (the policy's ``tags``).

    The settings name a branch (``promote_branch``) or a tag pattern (``promote_tags``); on a
    stage after another (the policy's ``stages``), the previous stage's verification tags
    (``kestra-promote/verified/<stage>/*``) whatever the settings say. The policy is read where
    the promotion reads it, when the task has a target; one that does not match its pin is an
    error: what it says cannot be trusted."""
    tags = _text(env, "KP_TAGS")
    target = webhook.Target(branch=None, tags=tags) if tags else \
        webhook.Target(branch=_text(env, "KP_BRANCH") or "main")
    if connection is None:
        return target, None
    try:
        with connect(connection) as client:
            stored = settings.read_policy(client, env)
    except KestraError:
        if target.tags:
            raise
        # a task without the target's credentials (promote-check's decide): the branch; the
        # promote task, which reads the policy, still refuses a commit the stage may not take
        return target, None
    if stored.mismatch:
        raise SettingsError(f"production's policy is refused: {stored.mismatch}")
    policy = stored.policy
    if policy is not None and policy.stages is not None and policy.stages.previous is not None:
        previous = policy.stages.previous
        return webhook.Target(branch=None, tags=stages.tag_pattern(previous)), \
            TagRule(version=stages.tag_rule(previous))
    return target, policy.tags if policy is not None else None


def newest_tag(tags: Mapping[str, str] | list[str], pattern: str,
               rule: TagRule | None) -> str | None:
    """The newest tag the promotion follows: matching ``pattern`` (promote_tags) and, with a
    policy, the policy's pattern, version rule and pre-release choice."""
    names = [t for t in tags if rule is None or not rule.pattern
             or fnmatch.fnmatchcase(t, rule.pattern)]
    return gitremote.newest_tag(names, pattern, version=rule.version if rule else None,
                                prereleases=bool(rule and rule.prereleases))


def followable_tag(tag: str, pattern: str, rule: TagRule | None) -> bool:
    """Whether the promotion could follow ``tag`` at all (it need not be the newest)."""
    return newest_tag([tag], pattern, rule) == tag


def in_history(workdir: Path, branch: str) -> None:
    """Refuse, before anything is written, a checkout (``repo``) whose commit is not in the
    history of the followed branch (cloned whole beside it, in ``followed``)."""
    commit = read_commit(workdir / "repo")
    if commit is None:
        raise SettingsError("the clone of the ref given by hand has no commit")
    try:
        found = history.contains(workdir / "followed", commit)
    except history.HistoryError as why:
        raise SettingsError(f"cannot tell whether commit {commit} is in the history of branch "
                            f"{branch!r} ({why}): nothing was written") from None
    if not found:
        raise SettingsError(f"commit {commit} is not in the history of branch {branch!r}, which "
                            "this promotion follows: a ref given by hand may only name a commit "
                            f"that was merged into {branch!r}; nothing was written")


def followed_requires_approval(workdir: Path, source: str, config_path: str | None) -> bool:
    """Whether the followed branch's head (or newest followed tag), cloned in ``followed``,
    requires approval: a person choosing an older commit cannot leave it behind."""
    relative = Path(source).relative_to("repo") if Path(source).is_relative_to("repo") \
        else Path()
    folder = workdir / "followed" / relative
    if not folder.is_dir():
        return False
    return read_settings(folder, config_path).approval == "required"


def check_by_hand(env: Mapping[str, str], workdir: Path) -> bool:
    """For a ref given by hand (KP_FOLLOWED_KIND and KP_FOLLOWED, from the decide task): refuse
    a commit outside the followed branch's history; whether what is followed now requires
    approval. False when no ref was given by hand."""
    kind, name = _text(env, "KP_FOLLOWED_KIND"), _text(env, "KP_FOLLOWED") or "main"
    if kind is None:
        return False
    if kind not in ("branch", "tag"):
        raise SettingsError(f"KP_FOLLOWED_KIND must be branch or tag, not {kind!r}")
    if kind == "branch":
        in_history(workdir, name)
    return followed_requires_approval(workdir, _text(env, "KP_SOURCE") or "repo",
                                      _text(env, "KP_CONFIG"))


def requester(env: Mapping[str, str]) -> str:
    """Who started this run, as Kestra says (KP_REQUESTED_BY, from the execution's
    ``system.username`` label, which only Kestra can set); "someone" when Kestra does not say."""
    named = " ".join((_text(env, "KP_REQUESTED_BY") or "").split())[:100]
    return safe_text(named) or "someone (not named)"


def asked_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """The safeguards a run by hand asked to override: prune turned on, a deletion limit of its
    own, the sync windows. Scheduled and webhook runs never override (the flow passes their
    defaults); an empty mapping when nothing was asked."""
    if (_text(env, "KP_TRIGGER") or "manual") != "manual":
        return {}
    asked: dict[str, Any] = {}
    if (_text(env, "KP_PRUNE") or "").lower() in ("true", "1", "yes"):
        asked["prune"] = True
    if (limit := _text(env, "KP_ALLOW_DELETIONS")) is not None:
        asked["allow_deletions"] = int(limit) if limit.isdigit() else limit
    if (_text(env, "KP_OVERRIDE_WINDOWS") or "").lower() in ("true", "1", "yes"):
        asked["windows"] = True
    return asked


def describe(asked: Mapping[str, Any]) -> str:
    parts = []
    if asked.get("prune"):
        parts.append("prune on")
    if "allow_deletions" in asked:
        parts.append(f"up to {asked['allow_deletions']} deletions")
    if asked.get("windows"):
        parts.append("the sync windows")
    return ", ".join(parts)

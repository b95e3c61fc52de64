"""Stages: a commit travels a pipeline of instances (staging, then production), each taking only
what the stage before it applied and verified.

Production's policy names the pipeline and this instance's place in it::

    stages: {pipeline: [staging, production], stage: production}

The stages never talk to each other: Git carries the evidence. After a run on a stage passed
production's checks (``verify:``), that stage's promotion marks the commit with an annotated tag
``kestra-promote/verified/<stage>/<n>`` (n counts up from 1) whose message records what was
checked. The next stage follows those tags like any followed tags, and refuses a plan for any
commit no such tag points to. So production never needs the previous instance's credentials;
what it trusts is whoever may create tags under ``kestra-promote/verified/<stage>/`` in the Git
host, which should be the previous stage's promotion only (a protected tag pattern).

Everything here is pure: the tags come in as a mapping of name to commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Mapping, Sequence

import yaml

from kestra_promote.errors import SettingsError
from kestra_promote.textsafe import safe_text

TAG_ROOT = "kestra-promote/verified"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_KEYS = {"pipeline", "stage"}
TAGGER = ("kestra-promote", "kestra-promote@localhost")
EVIDENCE_MAX = 65536  # characters of a tag's message read for its evidence
SHOWN_MAX = 200  # characters of one of its values shown
NUMBER_MAX = 999_999_999  # a tag's number has at most nine digits (``numbered``, ``tag_rule``)


@dataclass(frozen=True)
class Stages:
    """The pipeline (in the order commits travel) and this instance's stage in it."""

    pipeline: tuple[str, ...]
    stage: str

    @property
    def previous(self) -> str | None:
        """The stage whose verified commits this one takes (None for the first)."""
        at = self.pipeline.index(self.stage)
        return self.pipeline[at - 1] if at > 0 else None

    @property
    def next(self) -> str | None:
        """The stage that takes this one's verified commits (None for the last)."""
        at = self.pipeline.index(self.stage)
        return self.pipeline[at + 1] if at + 1 < len(self.pipeline) else None

    def describe(self) -> dict[str, Any]:
        return {"pipeline": list(self.pipeline), "stage": self.stage}


def parse_stages(data: Any) -> tuple[Stages | None, list[str]]:
    """``stages`` of a policy, or the problems with it (each naming the key)."""
    if not isinstance(data, Mapping):
        return None, ["'stages' must be a mapping of pipeline (a list of stage names) and stage "
                      "(this instance's)"]
    problems = [f"stages: unknown key {str(key)!r} (expected pipeline, stage)"
                for key in data if key not in _KEYS]
    pipeline, stage = data.get("pipeline"), data.get("stage")
    if not isinstance(pipeline, list) or len(pipeline) < 2:
        problems.append("stages.pipeline must list at least two stage names, in the order "
                        "commits travel (for example [staging, production])")
        pipeline = []
    names = [str(name) for name in pipeline]
    for name in names:
        if not _NAME.fullmatch(name):
            problems.append(f"stages.pipeline: {safe_text(name[:60])!r} is not a stage name "
                            "(lower-case letters, digits, '-' and '_'; it becomes a Git tag's "
                            "path segment)")
    if len(set(names)) != len(names):
        problems.append("stages.pipeline names a stage twice")
    if not isinstance(stage, str) or not stage:
        problems.append("stages.stage is required: this instance's stage in the pipeline")
    elif names and stage not in names:
        problems.append(f"stages.stage {safe_text(stage[:60])!r} is not in stages.pipeline "
                        f"({', '.join(names)})")
    if problems:
        return None, problems
    assert isinstance(stage, str)
    return Stages(tuple(names), stage), []


def tag_prefix(stage: str) -> str:
    return f"{TAG_ROOT}/{stage}/"


def tag_pattern(stage: str) -> str:
    """The followed-tags pattern that takes ``stage``'s verified commits (its tags are numbered:
    a version's major number, so the usual tag-following orders them)."""
    return tag_prefix(stage) + "*"


def tag_rule(stage: str) -> str:
    """The version rule (a regular expression on the whole name, its number the major version)
    that admits exactly ``stage``'s verification tags: those ``numbered`` counts."""
    return re.escape(tag_prefix(stage)) + r"(?P<major>[1-9][0-9]{0,8})"


def numbered(tags: Mapping[str, str], stage: str) -> list[tuple[int, str, str]]:
    """``stage``'s verification tags as (n, name, commit), oldest first. Only names the
    promotion makes count: the prefix, then a number without leading zeros."""
    prefix = tag_prefix(stage)
    found = []
    for name, commit in tags.items():
        number = name[len(prefix):] if name.startswith(prefix) else ""
        if re.fullmatch(r"[1-9][0-9]{0,8}", number):
            found.append((int(number), name, commit))
    return sorted(found)


def next_tag(tags: Mapping[str, str], stage: str) -> str:
    """The name of ``stage``'s next verification tag. SettingsError when the newest took the
    last number that still counts (nine digits: a greater one would be no tag of ours)."""
    found = numbered(tags, stage)
    number = found[-1][0] + 1 if found else 1
    if number > NUMBER_MAX:
        raise SettingsError(f"no tag number is left for stage {stage!r}: "
                            f"{found[-1][1]} is the last one the next stage reads (remove the "
                            "tags made by hand under this pattern)")
    return tag_prefix(stage) + str(number)


def marked(tags: Mapping[str, str], stage: str, commit: str) -> str | None:
    """The newest of ``stage``'s verification tags that points to ``commit``, or None."""
    found = [name for _, name, at in numbered(tags, stage) if at == commit]
    return found[-1] if found else None


def refusal(stages: Stages, commit: str | None, dirty: bool,
            tags: Mapping[str, str] | str) -> tuple[str | None, str | None]:
    """(why this stage may not take ``commit``, or None; the previous stage's tag that marks it).
    ``tags``: the repository's tags, or why they could not be listed."""
    previous = stages.previous
    if previous is None:
        return None, None
    first = (f"production's policy makes this instance stage {stages.stage!r}, after "
             f"{previous!r}: it takes only a commit that {previous!r} applied and verified "
             f"(a tag {tag_pattern(previous)} points to it)")
    if commit is None:
        return f"{first}, and this run promotes no commit", None
    if dirty:
        return f"{first}, and this run promotes uncommitted changes (--allow-dirty)", None
    if isinstance(tags, str):
        return f"{first}, and the repository's tags could not be listed: {tags}", None
    tag = marked(tags, previous, commit)
    if tag is None:
        return f"{first}; no such tag points to commit {commit[:12]}", None
    return None, tag


# -- the evidence a tag carries ------------------------------------------------------------------


def evidence(stage: str, commit: str, when: datetime, checks: Sequence[Mapping[str, Any]],
             *, source: str, run: str = "") -> str:
    """A verification tag's message: one line for people, then the facts as YAML."""
    facts: dict[str, Any] = {"stage": stage, "commit": commit,
                             "verified": when.isoformat(timespec="seconds"), "source": source}
    if run:
        facts["run"] = run
    facts["checks"] = [{key: check[key] for key in ("check", "passed", "execution", "state",
                                                     "seconds", "message") if key in check}
                       for check in checks]
    return (f"kestra-promote: {stage} verified {commit[:12]}\n\n"
            + yaml.safe_dump(facts, sort_keys=False, allow_unicode=True, width=100))


def read_evidence(message: str) -> dict[str, Any]:
    """The facts of a verification tag's message ({} when it has none: a tag made by hand, or
    a message longer than any the promotion writes)."""
    if len(message) > EVIDENCE_MAX:
        return {}
    _, _, body = message.partition("\n\n")
    try:
        facts = yaml.safe_load(body) if body.strip() else None
    except yaml.YAMLError:
        return {}
    return dict(facts) if isinstance(facts, Mapping) else {}


# -- where each stage stands ---------------------------------------------------------------------


def _plain(value: Any) -> str | None:
    """A value of a tag's evidence as short plain text; None for anything else (a mapping, a
    list: whoever may write the tag wrote them, maybe as a huge repeated alias)."""
    if isinstance(value, (str, int, float, datetime, date)):
        text = str(value)
        return text if len(text) <= SHOWN_MAX else text[:SHOWN_MAX - 1] + "…"
    return None


def _checks(checks: Any) -> list[dict[str, Any]]:
    if not isinstance(checks, list):
        return []
    return [{"check": _plain(c.get("check")) or "", "passed": c.get("passed") is True}
            for c in checks[:50] if isinstance(c, Mapping)]


def _marked_row(stage: str, marks: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """A stage seen from here: the newest commit it marked verified in Git, with its evidence."""
    found = numbered({name: commit for name, (commit, _) in marks.items()}, stage)
    if not found:
        return {"stage": stage, "from": "git", "commit": None, "verified": None, "when": None,
                "checks": [], "tag": None, "marked": 0}
    _, name, commit = found[-1]
    facts = read_evidence(marks[name][1])
    return {"stage": stage, "from": "git", "commit": commit, "verified": True,
            "when": _plain(facts.get("verified")) or None,
            "checks": _checks(facts.get("checks")), "tag": name, "marked": len(found)}


def status(pipeline: Stages, marks: Mapping[str, tuple[str, str]],
           history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each stage of the pipeline, in order: this instance's from its history (the commit it
    holds, whether that run was verified, when, by which checks), the others from the tags they
    marked in Git (``marks``: tag name -> (commit, message)). The stages never read each other's
    instances, so a last stage other than this one is only known by what it marks (nothing)."""
    rows = []
    for stage in pipeline.pipeline:
        if stage != pipeline.stage:
            rows.append(_marked_row(stage, marks))
            continue
        last = history[-1] if history else {}
        row: dict[str, Any] = {
            "stage": stage, "from": "history", "commit": last.get("commit"),
            "verified": last.get("verified") if "verified" in last else None,
            "when": last.get("time"), "checks": _checks(last.get("checks")),
            "tag": last.get("marked") or (last.get("stage") or {}).get("tag"),
            "trigger": last.get("trigger")}
        if pipeline.previous is not None:
            before = _marked_row(pipeline.previous, marks)
            if before["commit"] and before["commit"] != row["commit"]:
                row["pending"] = {"tag": before["tag"], "commit": before["commit"]}
        rows.append(row)
    return rows

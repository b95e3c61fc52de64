"""Stages from the CLI, over HTTP against two fake Kestras (staging, production) and a real Git
remote: staging marks the commits that passed its checks with a tag, production takes those and
no other, and a commit that failed on staging never reaches production."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
from conftest import (
    FAKE_PASSWORD,
    FAKE_USER,
    GitRepo,
    Target,
    flow_yaml,
    run_cli,
    set_policy,
)
from fake_kestra import FakeKestra, serve
from kestra_promote.engine import verify
from kestra_promote.engine.marking import marker
from kestra_promote.errors import SettingsError, SourceError
from kestra_promote.gates import stages
from kestra_promote.gates.policy import parse_policy
from kestra_promote.models import Plan
from kestra_promote.target import inventory as inv
from kestra_promote.target.client import KestraClient

pytestmark = pytest.mark.fake_only  # the smoke flow's outcome is chosen through the fake

SMOKE = flow_yaml("company", "smoke")
PIPELINE = "stages: {pipeline: [staging, production], stage: %s}\n"
CHECKS = "verify:\n  checks:\n    - run: {namespace: company, flow: smoke, timeout: 2s}\n"


@pytest.fixture(params=["2.0.3", "1.3.19"])
def instances(request: pytest.FixtureRequest) -> Iterator[tuple[Target, Target]]:
    staging, production = FakeKestra(version=request.param), FakeKestra(version=request.param)
    with serve(staging) as one, serve(production) as two:
        yield (Target(one, FAKE_USER, FAKE_PASSWORD, None, staging),
               Target(two, FAKE_USER, FAKE_PASSWORD, None, production))


@pytest.fixture
def pushed(repo: GitRepo, tmp_path: Path) -> GitRepo:
    """The flows repository, with a remote ``origin`` (a bare repository) it pushes to."""
    remote = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    repo.git("remote", "add", "origin", str(remote))
    repo.origin = remote  # type: ignore[attr-defined]
    return repo


def _commit(repo: GitRepo, message: str) -> str:
    repo.write("kestra-promote.yml", "name: team\n")
    repo.write("flows/smoke.yml", SMOKE)
    repo.write("flows/a.yml", flow_yaml("company", "a", message))
    commit = repo.commit(message)
    repo.git("push", "-q", "origin", "main")
    return commit


def _remote_tags(repo: GitRepo) -> dict[str, str]:
    out = repo.git("ls-remote", "--tags", "origin")
    refs = dict(reversed(line.split("\t")) for line in out.splitlines())
    return {name[len("refs/tags/"):-3]: sha for name, sha in refs.items() if name.endswith("^{}")}


def _history(target: Target) -> list[dict]:
    assert target.fake is not None
    return target.fake.kv[("main", "system")][inv.kv_key("team")]["value"]["history"]


def _pipeline(staging: Target, production: Target, tmp_path: Path) -> None:
    set_policy(staging, tmp_path, PIPELINE % "staging" + CHECKS)
    set_policy(production, tmp_path, PIPELINE % "production")


def test_production_takes_only_what_staging_verified(pushed, instances, tmp_path):
    staging, production = instances
    _pipeline(staging, production, tmp_path)
    one = _commit(pushed, "one")

    refused = run_cli("apply", str(pushed.path), env=production.env)
    assert refused.code != 0
    assert "after 'staging': it takes only a commit that 'staging' applied and verified" \
        in refused.out + refused.err
    assert f"no such tag points to commit {one[:12]}" in refused.out + refused.err
    assert production.sources("company") == {}

    done = run_cli("apply", str(pushed.path), env=staging.env)
    assert done.code == 0, done.out + done.err
    assert "marked kestra-promote/verified/staging/1 for the next stage" in done.out
    assert _remote_tags(pushed) == {"kestra-promote/verified/staging/1": one}
    message = pushed.git("for-each-ref", "--format=%(contents)",
                         "refs/tags/kestra-promote/verified/staging/1")
    facts = stages.read_evidence(message)
    assert facts["stage"] == "staging" and facts["commit"] == one and facts["source"] == "team"
    assert facts["checks"][0]["check"] == "run company.smoke" and facts["checks"][0]["passed"]
    run = _history(staging)[-1]
    assert run["verified"] is True and run["marked"] == "kestra-promote/verified/staging/1"
    assert run["stage"] == {"stage": "staging", "next": "production"}

    taken = run_cli("apply", str(pushed.path), "--format", "json", env=production.env)
    assert taken.code == 0, taken.out + taken.err
    assert production.sources("company") == staging.sources("company")
    assert _history(production)[-1]["stage"] == {
        "stage": "production", "after": "staging", "tag": "kestra-promote/verified/staging/1"}


def test_a_commit_that_fails_on_staging_never_reaches_production(pushed, instances, tmp_path):
    staging, production = instances
    _pipeline(staging, production, tmp_path)
    one = _commit(pushed, "one")
    assert run_cli("apply", str(pushed.path), env=staging.env).code == 0
    assert run_cli("apply", str(pushed.path), env=production.env).code == 0
    before = {"staging": staging.sources("company"), "production": production.sources("company")}

    _commit(pushed, "two")
    staging.fake.runs.outcome[("company", "smoke")] = "FAILED"
    failed = run_cli("apply", str(pushed.path), "--format", "json", env=staging.env)
    assert failed.code == 1
    report = json.loads(failed.out)["verification"]
    assert report["rolled_back"] and report["rollback_to"] == one and report["marked"] is None
    assert staging.sources("company") == before["staging"]  # byte for byte
    assert _remote_tags(pushed) == {"kestra-promote/verified/staging/1": one}  # no tag for two

    refused = run_cli("apply", str(pushed.path), env=production.env)
    assert refused.code != 0 and "no such tag points to commit" in refused.out + refused.err
    assert production.sources("company") == before["production"]


def test_a_commit_verified_again_keeps_its_tag(pushed, instances, tmp_path):
    staging, production = instances
    _pipeline(staging, production, tmp_path)
    one = _commit(pushed, "one")
    assert run_cli("apply", str(pushed.path), env=staging.env).code == 0
    two = _commit(pushed, "two")
    assert run_cli("apply", str(pushed.path), env=staging.env).code == 0
    pushed.git("checkout", "-q", one)  # back to one: verified again, not marked again
    again = run_cli("apply", str(pushed.path), env=staging.env)
    assert again.code == 0 and "marked kestra-promote/verified/staging/1 " in again.out
    assert _remote_tags(pushed) == {"kestra-promote/verified/staging/1": one,
                                    "kestra-promote/verified/staging/2": two}


def test_a_tag_that_cannot_be_pushed_fails_the_run_and_says_so(pushed, instances, tmp_path):
    staging, production = instances
    _pipeline(staging, production, tmp_path)
    hook = pushed.origin / "hooks" / "pre-receive"  # type: ignore[attr-defined]
    hook.write_text("#!/bin/sh\nwhile read old new ref; do case $ref in refs/tags/*)\n"
                    "echo 'tags under kestra-promote/ are protected' >&2; exit 1;; esac; done\n")
    hook.chmod(0o755)
    one = _commit(pushed, "one")
    done = run_cli("apply", str(pushed.path), env=staging.env)
    assert done.code == 1
    assert "is verified, but NOT marked for the next stage" in done.out
    assert "protected" in done.out
    assert _remote_tags(pushed) == {}
    assert pushed.git("tag", "--list") == ""  # nothing left behind in the clone either
    assert _history(staging)[-1]["verified"] is True and "marked" not in _history(staging)[-1]
    assert one


# -- the policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "problem"), [
    ("stages: {pipeline: [staging, production], stage: staging}\n",
     "'staging' comes before 'production'"),
    ("stages: {pipeline: [staging, production], stage: production}\ntags: 'v*'\n",
     "'tags' cannot choose others"),
    ("stages: {pipeline: [staging], stage: staging}\n", "at least two stage names"),
    ("stages: {pipeline: [staging, production], stage: prod}\n", "is not in stages.pipeline"),
    ("stages: {pipeline: [Staging, production], stage: production}\n", "is not a stage name"),
    ("stages: {pipeline: [a, a], stage: a}\n", "names a stage twice"),
    ("stages: {pipeline: [a, b], stage: b, after: a}\n", "unknown key 'after'"),
])
def test_a_bad_stages_section_is_refused_naming_the_problem(text, problem):
    with pytest.raises(SourceError) as raised:
        parse_policy(text, "prod-policy.yml")
    assert any(problem in p.message for p in raised.value.problems), raised.value.problems


def test_a_repository_cannot_name_its_own_stage(repo, target):
    repo.write("kestra-promote.yml", "stages: {pipeline: [a, b], stage: b}\n")
    repo.write("flows/a.yml", flow_yaml("company", "a"))
    repo.commit()
    done = run_cli("plan", str(repo.path), env=target.env)
    assert done.code != 0 and "'stages' is set by production's policy only" in done.err


def test_stage_tags_count_up_and_only_well_formed_ones_count():
    tags = {"kestra-promote/verified/staging/1": "a", "kestra-promote/verified/staging/10": "b",
            "kestra-promote/verified/staging/02": "c", "kestra-promote/verified/staging/x": "d",
            "kestra-promote/verified/qa/40": "e"}
    assert stages.next_tag(tags, "staging") == "kestra-promote/verified/staging/11"
    assert stages.marked(tags, "staging", "b") == "kestra-promote/verified/staging/10"
    assert stages.marked(tags, "staging", "c") is None  # a leading zero: not one of ours
    assert stages.next_tag({}, "qa") == "kestra-promote/verified/qa/1"


def test_a_taken_number_is_skipped_and_a_refusal_is_not_retried():
    remote: dict[str, str] = {}
    plan = Plan((), commit="c" * 40, name="team", stage={"stage": "staging", "next": "prod"})

    def create(name: str, commit: str, message: str) -> None:
        if name.endswith("/1") and name not in remote:  # another run takes 1 meanwhile
            remote[name] = "other"
            raise SettingsError("tag exists")
        remote[name] = commit

    mark = marker(lambda: dict(remote), create)
    when = datetime(2026, 12, 7, tzinfo=timezone.utc)
    assert mark(plan, [], when) == "kestra-promote/verified/staging/2"

    def refuse(name: str, commit: str, message: str) -> None:
        raise SettingsError("denied")

    with pytest.raises(SettingsError, match="denied"):
        marker(lambda: {}, refuse)(plan, [], when)
    last = Plan((), commit="c" * 40, name="team", stage={"stage": "prod"})
    assert marker(lambda: {}, refuse)(last, [], when) == ""  # the last stage marks nothing


def test_stages_shows_each_stage_from_its_history_or_from_git(pushed, instances, tmp_path):
    staging, production = instances
    _pipeline(staging, production, tmp_path)
    one = _commit(pushed, "one")
    assert run_cli("apply", str(pushed.path), env=staging.env).code == 0
    assert run_cli("apply", str(pushed.path), env=production.env).code == 0
    two = _commit(pushed, "two")
    assert run_cli("apply", str(pushed.path), env=staging.env).code == 0

    shown = run_cli("stages", str(pushed.path), "--format", "json", env=production.env)
    assert shown.code == 0, shown.err
    data = json.loads(shown.out)
    assert data["pipeline"] == ["staging", "production"] and data["stage"] == "production"
    first, second = data["stages"]
    assert first["stage"] == "staging" and first["from"] == "git" and first["commit"] == two
    assert first["verified"] is True and first["tag"] == "kestra-promote/verified/staging/2"
    assert first["checks"] == [{"check": "run company.smoke", "passed": True}] and first["when"]
    assert second["from"] == "history" and second["commit"] == one
    assert second["tag"] == "kestra-promote/verified/staging/1"
    assert second["pending"] == {"tag": "kestra-promote/verified/staging/2", "commit": two}

    text = run_cli("stages", str(pushed.path), env=staging.env).out
    assert "Pipeline: staging -> production (this instance: staging)" in text
    assert f"staging (this instance, from its history): {two[:12]} verified" in text
    assert "production (from Git): - nothing marked verified" in text
    table = run_cli("stages", str(pushed.path), "--format", "markdown", env=production.env).out
    assert "| **production** (this instance) |" in table


def test_stages_without_a_pipeline_says_so(repo, target):
    repo.write("flows/a.yml", flow_yaml("company", "a"))
    repo.commit()
    done = run_cli("stages", str(repo.path), env=target.env)
    assert done.code != 0 and "names no stages" in done.err


def test_a_commit_replaced_on_staging_while_its_checks_ran_is_not_marked(
        pushed, instances, tmp_path, monkeypatch):
    """Two staging runs at once: one applies commit one, and while its smoke run goes, another
    applies commit two (the lease is not held during the checks). What the first run's checks
    saw was two's flows: one is not marked, so production never goes back to it."""
    staging, production = instances
    _pipeline(staging, production, tmp_path)
    one = _commit(pushed, "one")
    two = _commit(pushed, "two")
    pushed.git("worktree", "add", "-q", "--detach", str(tmp_path / "two"), two)
    pushed.git("checkout", "-q", one)
    trigger = KestraClient.trigger_execution
    started: list[str] = []

    def meanwhile(self, *args, **kwargs):
        started.append("check")
        if len(started) == 1:  # the first run's check: the second run applies two now
            done = run_cli("apply", str(tmp_path / "two"), env=staging.env)
            assert done.code == 0 and "marked kestra-promote/verified/staging/1" in done.out
        return trigger(self, *args, **kwargs)

    monkeypatch.setattr(KestraClient, "trigger_execution", meanwhile)
    first = run_cli("apply", str(pushed.path), env=staging.env)
    assert first.code == 1, first.out + first.err
    assert "the target changed while its checks ran" in first.out + first.err
    assert _remote_tags(pushed) == {"kestra-promote/verified/staging/1": two}
    taken = run_cli("apply", str(tmp_path / "two"), env=production.env)
    assert taken.code == 0 and _history(production)[-1]["commit"] == two


def test_a_tag_messages_evidence_is_shown_as_short_plain_values_only():
    """Whoever wrote a tag under the pattern wrote its message: a value that is no plain text
    (a mapping, an alias repeated into a huge list) or a very long one is not rendered as is."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 5)]
    message = ("kestra-promote: staging verified 1234\n\n" + "\n".join(levels) + "\n"
               "verified: *a4\nchecks:\n  - {check: *a4, passed: true}\n"
               "  - {check: {run: x}, passed: true}\n  - {check: '" + "y" * 5000 + "'}\n")
    pipeline = stages.Stages(("staging", "production"), "production")
    marks = {"kestra-promote/verified/staging/1": ("c" * 40, message)}
    first, _ = stages.status(pipeline, marks, ())
    assert first["commit"] == "c" * 40 and first["when"] is None
    assert [len(c["check"]) for c in first["checks"]] == [0, 0, stages.SHOWN_MAX]
    assert all(c["passed"] is False for c in first["checks"][2:])


def test_a_tag_number_past_the_last_one_production_reads_is_never_made():
    """The numbers production follows have at most nine digits: a tag at 999999999 (made by
    hand under the pattern) leaves no number a mark could take, and marking says so at once."""
    last = {"kestra-promote/verified/staging/999999999": "a"}
    plan = Plan((), commit="c" * 40, name="team", stage={"stage": "staging", "next": "prod"})
    made: list[str] = []
    with pytest.raises(SettingsError, match="no tag number is left"):
        marker(lambda: last, lambda name, commit, message: made.append(name))(
            plan, [], datetime(2026, 12, 7, tzinfo=timezone.utc))
    assert made == []


def test_a_tag_created_though_its_push_seemed_to_fail_is_not_made_twice():
    """The Git server stored the tag, but its answer was lost (a timeout): the tag listed
    again marks this commit, so no second tag is made for it."""
    remote: dict[str, str] = {}
    plan = Plan((), commit="c" * 40, name="team", stage={"stage": "staging", "next": "prod"})

    def lost(name: str, commit: str, message: str) -> None:
        remote[name] = commit
        raise SettingsError("cannot create tag: ReadTimeout talking to the Git server")

    mark = marker(lambda: dict(remote), lost)
    assert mark(plan, [], datetime(2026, 12, 7, tzinfo=timezone.utc)) == \
        "kestra-promote/verified/staging/1"
    assert remote == {"kestra-promote/verified/staging/1": "c" * 40}


def test_a_commit_that_failed_on_staging_while_a_run_of_it_waited_is_not_marked(
        pushed, instances, tmp_path, monkeypatch):
    """Two staging runs of commit two at once: the first applies it, its checks fail and it
    is rolled back, while the second waits for the lease with a plan made before. The
    second's checks then pass (a flaky smoke run): two failed once, so it is not verified nor
    marked, as a commit that failed before never is."""
    staging, production = instances
    _pipeline(staging, production, tmp_path)
    one = _commit(pushed, "one")
    assert run_cli("apply", str(pushed.path), env=staging.env).code == 0
    _commit(pushed, "two")
    apply_locked = verify.apply_locked
    calls: list[str] = []

    def other_run_first(*args, **kwargs):
        calls.append(kwargs.get("trigger", ""))
        if len(calls) == 1:  # the second run holds its plan; the first runs and fails
            staging.fake.runs.outcome[("company", "smoke")] = "FAILED"
            failed = run_cli("apply", str(pushed.path), env=staging.env)
            assert failed.code == 1 and "rolled back" in failed.out, failed.out
            staging.fake.runs.outcome[("company", "smoke")] = "SUCCESS"
        return apply_locked(*args, **kwargs)

    monkeypatch.setattr(verify, "apply_locked", other_run_first)
    second = run_cli("apply", str(pushed.path), env=staging.env)
    assert second.code == 0, second.out + second.err
    assert _remote_tags(pushed) == {"kestra-promote/verified/staging/1": one}
    assert _history(staging)[-1]["verified"] is False and "marked" not in _history(staging)[-1]

"""Execute rights are not admin rights: what a person who may only execute the promote flow can
reach with its inputs, run through the flows (emulated) against the fake Kestra and real Git
repositories."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, flow_yaml
from kestra_flows.emulator import Emulator
from kestra_promote.kestra_task.emit import Emitter
from kestra_promote.kestra_task.runtime import task_decide
from test_flows import (  # noqa: F401 - production is a fixture
    FREEZE,
    SECRET_VALUES,
    _policy,
    _promotion_writes,
    _set,
    _user_writes,
    production,
    target_history,
)

KEY = "hook-key-0123456789"


def _errors(execution) -> str:
    return " ".join(execution.messages("ERROR"))


def _unmerged(repo) -> str:
    """A branch nobody reviewed, with a flow of its own."""
    repo.git("checkout", "-q", "-b", "kestra-dev", "master")
    repo.write("flows/spike.yml", flow_yaml("company.team", "spike"))
    head = repo.commit("work in progress")
    repo.git("checkout", "-q", "master")
    return head


# -- (a) a ref given by hand stays in the followed branch's history ------------------------------


@pytest.mark.parametrize("how", ["branch", "commit", "tag"])
def test_an_unmerged_branch_commit_or_tag_is_refused_before_anything_is_written(production,
                                                                                  how: str):
    fake, repo, emulator = production
    head = _unmerged(repo)
    repo.git("tag", "spike-1", head)
    ref = {"branch": "refs/heads/kestra-dev", "commit": head, "tag": "spike-1"}[how]
    execution = emulator.execute({"mode": "apply", "ref": ref})
    assert execution.state == "FAILED"
    assert execution.states["promote"] == "FAILED"
    assert f"commit {head} is not in the history of branch 'master'" in _errors(execution)
    assert _user_writes(fake) == []
    planned = emulator.execute({"ref": ref})  # not even planned
    assert planned.state == "FAILED" and _user_writes(fake) == []


def test_a_merged_commit_a_tag_of_it_and_the_followed_branch_are_promoted(production):
    fake, repo, emulator = production
    repo.git("checkout", "-q", "master")
    first = repo.git("rev-parse", "HEAD")
    repo.git("tag", "v1", first)  # lightweight
    repo.write("flows/later.yml", flow_yaml("company.team", "later"))
    repo.commit("later")
    for ref in (first[:10], "v1", "refs/heads/master", "master"):
        execution = emulator.execute({"mode": "apply", "ref": ref})
        assert execution.state == "SUCCESS", (ref, execution.logs)
    assert execution.states["clone_followed_branch"] == "SKIPPED"  # the branch itself
    assert ("company.team", "later") in fake.current()


def test_a_branch_merged_into_the_followed_one_is_in_its_history(production):
    fake, repo, emulator = production
    head = _unmerged(repo)
    repo.git("checkout", "-q", "master")
    repo.git("merge", "-q", "--no-ff", "-m", "reviewed", "kestra-dev")
    execution = emulator.execute({"mode": "apply", "ref": head})
    assert execution.state == "SUCCESS", execution.logs
    assert execution.states["clone_followed_branch"] == "SUCCESS"
    assert ("company.team", "spike") in fake.current()


@pytest.mark.parametrize("name", ["fix#123", "user's-branch", "feature/über",
                                  "{{secret('KESTRA_PROMOTE_GIT_TOKEN')}}"])
def test_a_branch_name_git_allows_is_cloned_as_data(production, name: str):
    """Quotes, "#" and braces in a name Git allows reach the Clone's ``branch`` through the
    decide task's outputs, rendered once: the name is cloned as it is, never evaluated."""
    fake, repo, emulator = production
    repo.git("branch", name, "master")
    execution = emulator.execute({"ref": f"refs/heads/{name}"})
    assert execution.state == "SUCCESS", execution.logs
    assert execution.outputs["decide"]["vars"]["checkout"] == name
    assert execution.states["clone_branch"] == "SUCCESS"
    cloned = emulator._git("rev-parse", "--abbrev-ref", "HEAD",
                           cwd=Path(execution.outputs["clone_branch"]["directory"]))
    assert cloned == name
    token = SECRET_VALUES["KESTRA_PROMOTE_GIT_TOKEN"]
    assert not any(token in message for message in execution.messages())
    assert token not in json.dumps(execution.outputs["decide"])


# -- (b) an older commit cannot leave an approval behind ----------------------------------------


def test_an_older_commit_cannot_dodge_the_approval_the_branch_requires(production):
    fake, repo, emulator = production
    repo.git("checkout", "-q", "master")
    before = repo.git("rev-parse", "HEAD")  # its kestra-promote.yml says nothing of approval
    repo.write("kestra-promote.yml", "name: demo\napproval: required\n")
    repo.commit("approval required")
    execution = emulator.execute({"mode": "apply", "ref": before})  # nobody approves
    assert execution.state == "CANCELLED", execution.logs
    assert execution.outputs["promote"]["vars"]["action"] == "awaiting-approval"
    assert _user_writes(fake) == []
    approved = emulator.execute({"mode": "apply", "ref": before},
                                resume={"decision": "approve", "approver": "carol"})
    assert approved.flow_outputs["action"] == "applied", approved.logs
    assert approved.flow_outputs["commit"] == before


def test_the_approval_production_s_policy_requires_holds_in_the_flow(production):
    fake, repo, emulator = production
    _policy(fake, "approval: required\n")  # the repository's settings say nothing
    execution = emulator.execute({"mode": "apply"})
    assert execution.state == "CANCELLED", execution.logs
    assert execution.outputs["promote"]["vars"]["action"] == "awaiting-approval"
    assert ("company.team", "hello") not in fake.current()


# -- (c) overrides wait for approval when it is on, and are recorded with who asked --------------


def _seven_to_delete(fake, repo, emulator) -> None:
    repo.git("checkout", "-q", "master")
    for number in range(7):
        repo.write(f"flows/old{number}.yml", flow_yaml("company.team", f"old{number}"))
    repo.commit("seven flows")
    assert emulator.execute({"mode": "apply"}).state == "SUCCESS"
    for number in range(7):
        (repo.path / f"flows/old{number}.yml").unlink()
    repo.write("kestra-promote.yml", FREEZE + "prune: false\nmax_deletions: 2\n")
    repo.commit("seven flows leave Git; a freeze")


OVERRIDES = {"mode": "apply", "prune": "true", "allow_deletions": "99999",
             "override_windows": "yes"}


def test_overrides_wait_for_approval_when_production_requires_it(production):
    fake, repo, emulator = production
    _seven_to_delete(fake, repo, emulator)
    _set(fake, "promote_approval", "required")
    writes = len(_user_writes(fake))
    paused = emulator.execute(OVERRIDES, labels={"system.username": "mallory@example.com"})
    assert paused.state == "CANCELLED", paused.logs  # nobody approved: nothing written
    assert len(_user_writes(fake)) == writes
    waiting = paused.outputs["promote"]["outputFiles"]["report.md"].read_text()
    assert ("mallory@example.com asked to override prune on, up to 99999 deletions, the sync "
            "windows") in waiting
    execution = emulator.execute(OVERRIDES, labels={"system.username": "mallory@example.com"},
                                 resume={"decision": "approve", "approver": "alice"})
    assert execution.flow_outputs["action"] == "applied", execution.logs
    assert not [k for k in fake.current() if k[1].startswith("old")]
    with target_history(fake) as runs:
        record = runs[-1]
    assert record["overrides"] == {"prune": True, "allow_deletions": 99999, "windows": True}
    assert (record["requested_by"], record["approved_by"]) == ("mallory@example.com", "alice")


def test_overrides_by_hand_without_approval_still_work_and_are_recorded(production):
    fake, repo, emulator = production
    _seven_to_delete(fake, repo, emulator)
    execution = emulator.execute(OVERRIDES)
    assert execution.state == "SUCCESS", execution.logs
    assert execution.outputs["promote"]["vars"]["action"] == "applied"
    assert any("someone (not named) asked to override" in m for m in execution.messages("WARN"))
    with target_history(fake) as runs:
        record = runs[-1]
    assert record["overrides"] == {"prune": True, "allow_deletions": 99999, "windows": True}
    assert record["requested_by"] == "someone (not named)"
    assert record["window_override"].startswith("denied by window 'freeze'")


# -- (d) what started a run comes from Kestra, not from an input ---------------------------------


def test_a_run_by_hand_is_recorded_as_manual_whatever_its_inputs_say(production):
    fake, repo, emulator = production
    for path in ("flows/prod/promote.yml", "flows/prod/promote-check.yml"):
        flow = Emulator(ROOT / path, {}, emulator.kv, emulator.namespace_files).flow
        assert "started_by" not in {spec["id"] for spec in flow["inputs"]}, path
    repo.git("checkout", "-q", "master")
    repo.write("kestra-promote.yml", FREEZE)
    repo.commit("freeze")
    execution = emulator.execute({"mode": "apply", "started_by": "schedule",
                                  "override_windows": "yes"})  # ignored, as Kestra does
    assert execution.state == "SUCCESS", execution.logs
    assert execution.outputs["decide"]["vars"]["trigger"] == "manual"
    with target_history(fake) as runs:
        assert runs[-1]["trigger"] == "manual" and runs[-1]["window_override"]
    scheduled = emulator.schedule()  # a Schedule run never overrides, whatever it is given
    assert scheduled.outputs["decide"]["vars"]["trigger"] == "schedule"
    assert scheduled.outputs["promote"]["vars"]["action"] in ("denied", "no-changes")


def test_the_check_flow_tells_a_schedule_from_a_run_by_hand(production):
    fake, repo, emulator = production
    check = Emulator(ROOT / "flows/prod/promote-check.yml", SECRET_VALUES, emulator.kv,
                     emulator.namespace_files, emulator.workspace, envs=emulator.envs)
    assert check.execute().outputs["decide"]["vars"]["trigger"] == "manual"
    assert check.schedule().outputs["decide"]["vars"]["trigger"] == "schedule"


# -- production's approval setting fails closed ------------------------------------------------


@pytest.mark.parametrize("value", ["true", "yes", "on", "Required please"])
def test_an_approval_setting_that_is_not_required_or_off_is_an_error(production, value: str):
    fake, repo, emulator = production
    _set(fake, "promote_approval", value)
    execution = emulator.execute({"mode": "apply"})
    assert execution.state == "FAILED"
    assert "promote_approval must be 'required' or 'off'" in _errors(execution)
    assert ("company.team", "hello") not in fake.current()


@pytest.mark.parametrize("value", ["off", "OFF", "", "required"])
def test_the_documented_approval_settings_are_accepted(production, value: str):
    fake, repo, emulator = production
    _set(fake, "promote_approval", value)
    execution = emulator.execute({"mode": "apply"})
    assert execution.state == ("CANCELLED" if value == "required" else "SUCCESS"), execution.logs


# -- a webhook secret requires the provider setting ---------------------------------------------


def test_with_a_webhook_secret_the_provider_must_be_set(production):
    fake, repo, emulator = production
    body = (FIXTURES / "webhooks/github/push-7.json").read_bytes()
    digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    claims_github = {"X-GitHub-Event": ["push"], "X-Hub-Signature-256": ["sha256=" + digest]}
    # the emulator's own webhook entry: production has no promote_webhook_provider
    execution = Emulator.webhook(emulator, KEY, claims_github, body)
    assert execution is not None and execution.state == "FAILED"
    assert "promote_webhook_provider is not" in _errors(execution)
    assert _user_writes(fake) == []
    _set(fake, "promote_webhook_provider", "gitea")  # set: only Gitea's token proves a request
    assert Emulator.webhook(emulator, KEY, claims_github, body).state == "FAILED"
    assert ("company.team", "hello") not in fake.current()


def test_without_a_webhook_secret_no_provider_is_needed(tmp_path):
    (tmp_path / "h.json").write_text(json.dumps({"X-GitHub-Event": ["push"]}))
    (tmp_path / "b.json").write_text(json.dumps({"ref": "refs/heads/main", "after": "a" * 40}))
    out = io.StringIO()
    code = task_decide({"KP_TRIGGER": "webhook", "KP_WEBHOOK_HEADERS": str(tmp_path / "h.json"),
                        "KP_WEBHOOK_BODY": str(tmp_path / "b.json")}, Emitter(out))
    assert code == 0 and '"decision":"sync"' in out.getvalue().replace(" ", "")


# -- tags: production's policy decides which tags are followed ----------------------------------


def _tags(repo) -> None:
    repo.git("checkout", "-q", "master")
    for number, tag in enumerate(["v1.9.0", "v1.10.0", "v2.0.0", "v2.1.0-rc.1"]):
        repo.write("flows/hello.yml", flow_yaml("company.team", "hello", tag))
        repo.commit(f"release {number}")
        repo.git("tag", "-a", tag, "-m", tag)
    repo.write("flows/hello.yml", flow_yaml("company.team", "hello", "spike"))
    repo.commit("a spike")
    repo.git("tag", "vscode-spike")  # lightweight, on the newest commit
    repo.git("tag", "vnext")


def _decided(execution) -> str:
    assert execution.state in ("SUCCESS", "CANCELLED"), execution.logs
    return execution.outputs["decide"]["vars"]["checkout"]


def test_the_decide_task_follows_the_policys_tag_rule(production):
    fake, repo, emulator = production
    _tags(repo)
    _set(fake, "promote_tags", "v*")
    assert _decided(emulator.execute()) == "v2.0.0"  # no spike, no vnext, no pre-release
    _policy(fake, "tags:\n  pattern: 'v*'\n  prereleases: true\n")
    assert _decided(emulator.execute()) == "v2.1.0-rc.1"
    _policy(fake, "tags:\n  pattern: 'v1.*'\n")  # production follows the 1.x line only
    assert _decided(emulator.execute()) == "v1.10.0"
    _policy(fake, "tags:\n  pattern: 'v*'\n  version: 'v(?P<major>[0-9]+)\\.(?P<minor>[0-9]+)"
                  "\\.(?P<patch>[0-9]+)'\n")
    assert _decided(emulator.execute()) == "v2.0.0"


def test_following_tags_a_ref_by_hand_must_be_a_followed_tag(production):
    fake, repo, emulator = production
    _tags(repo)
    _set(fake, "promote_tags", "v*")
    for ref in ("vscode-spike", "vnext", "v2.1.0-rc.1", "refs/heads/master",
                repo.git("rev-parse", "HEAD")):
        execution = emulator.execute({"mode": "apply", "ref": ref})
        assert execution.state == "FAILED" and execution.states["decide"] == "FAILED", ref
        assert "is not a tag this promotion follows" in _errors(execution), ref
    assert _promotion_writes(fake) == []
    rollback = emulator.execute({"mode": "apply", "ref": "v1.9.0"})
    assert rollback.state == "SUCCESS", rollback.logs
    assert rollback.outputs["decide"]["vars"]["followed"] == "v2.0.0"
    assert fake.current()[("company.team", "hello")] == flow_yaml("company.team", "hello",
                                                                   "v1.9.0")

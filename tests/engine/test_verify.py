"""Verification after apply and rollback when a check fails, over HTTP against the fake Kestra
1.3 and 2.0: production's policy starts a smoke flow or soaks the promoted flows, records the
outcome in the history, and rolls back to the last verified commit (or holds)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli, set_policy
from fake_kestra import FakeKestra
from kestra_promote.engine.verify import is_verified, rollback_target
from kestra_promote.errors import SourceError
from kestra_promote.gates.policy import parse_policy
from kestra_promote.target import inventory as inv

pytestmark = pytest.mark.fake_only  # outcomes of executions are chosen through the fake

SMOKE = flow_yaml("company", "smoke", extra="inputs:\n  - id: release\n    type: STRING\n")
RUN = ("verify:\n  checks:\n    - run: {namespace: company, flow: smoke, "
       "inputs: {release: v2}, timeout: 2s}\n")


@pytest.fixture(params=["1.3.19", "2.0.3"])
def fake(request: pytest.FixtureRequest) -> FakeKestra:
    return FakeKestra(version=request.param)


def _commit(repo: GitRepo, message: str) -> str:
    repo.write("kestra-promote.yml", "name: team\n")
    repo.write("flows/smoke.yml", SMOKE)
    repo.write("flows/a.yml", flow_yaml("company", "a", message))
    return repo.commit(message)


def _history(target: Target) -> list[dict]:
    assert target.fake is not None
    stored = target.fake.kv[("main", "system")][inv.kv_key("team")]["value"]
    return stored["history"]


def _apply(repo: GitRepo, target: Target, *extra: str):
    return run_cli("apply", str(repo.path), *extra, env=target.env)


def test_a_smoke_flow_that_succeeds_marks_the_run_verified(repo, target, tmp_path):
    set_policy(target, tmp_path, RUN)
    commit = _commit(repo, "one")
    done = _apply(repo, target)
    assert done.code == 0, done.err
    assert "passed run company.smoke" in done.out and f"commit {commit[:12]} is verified" in done.out
    run = _history(target)[-1]
    assert run["commit"] == commit and run["verified"] is True
    check = run["checks"][0]
    assert check["passed"] and check["state"] == "SUCCESS" and check["check"] == "run company.smoke"
    started = [e for e in target.fake.executions if e["id"] == check["execution"]]
    assert started and started[0]["inputs"] == {"release": "v2"}


def test_a_failing_smoke_flow_rolls_back_to_the_previous_verified_commit(repo, target, tmp_path):
    set_policy(target, tmp_path, RUN)
    good = _commit(repo, "one")
    assert _apply(repo, target).code == 0
    before = target.sources("company")
    bad = _commit(repo, "two")
    target.fake.runs.outcome[("company", "smoke")] = "FAILED"
    done = _apply(repo, target, "--format", "json")
    assert done.code == 1
    report = json.loads(done.out)
    assert report["verification"]["rolled_back"] and report["verification"]["rollback_to"] == good
    assert report["verification"]["checks"][0]["state"] == "FAILED"
    # byte for byte what the verified commit holds
    assert target.sources("company") == before
    assert before[("company", "a")] == (repo.path / "flows/a.yml").read_text().replace("two", "one")
    failed, rollback = _history(target)[-2:]
    assert failed["commit"] == bad and failed["verified"] is False
    assert failed["checks"][0]["passed"] is False and failed["on_failure"] == "rollback"
    assert rollback["trigger"] == "rollback" and rollback["commit"] == good
    assert rollback["rollback"]["from"] == bad and "FAILED" in rollback["rollback"]["reason"]
    shown = run_cli("history", str(repo.path), env=target.env).out
    assert "rollback from" in shown and "checks passed: verified" in shown


def test_hold_keeps_the_new_commit_and_fails(repo, target, tmp_path):
    set_policy(target, tmp_path, RUN + "  on_failure: hold\n")
    assert _commit(repo, "one") and _apply(repo, target).code == 0
    bad = _commit(repo, "two")
    target.fake.runs.outcome[("company", "smoke")] = "FAILED"
    done = _apply(repo, target)
    assert done.code == 1
    assert "held: the target keeps commit" in done.out
    assert "message: two" in target.sources("company")[("company", "a")]
    last = _history(target)[-1]
    assert last["commit"] == bad and last["verified"] is False and last["trigger"] == "cli"


def test_without_a_verified_run_there_is_no_automatic_rollback(repo, target, tmp_path):
    _commit(repo, "one")
    assert _apply(repo, target).code == 0  # before any policy: applied, never verified
    set_policy(target, tmp_path, RUN)
    _commit(repo, "two")
    target.fake.runs.outcome[("company", "smoke")] = "FAILED"
    done = _apply(repo, target)
    assert done.code == 1
    assert "NOT rolled back" in done.out and "not rolled back automatically" in done.out
    assert "message: two" in target.sources("company")[("company", "a")]


def test_a_commit_that_failed_its_checks_is_never_verified_nor_rolled_back_to():
    checked = [{"passed": False}]
    history = [{"commit": "a" * 40, "verified": True, "checks": [{"passed": True}]},
               {"commit": "b" * 40, "verified": True, "checks": [{"passed": True}]},
               {"commit": "b" * 40, "verified": False, "checks": checked},
               {"commit": "c" * 40, "verified": True, "dirty": True, "checks": []},
               {"commit": "d" * 40}]  # applied before any check: not verified
    assert rollback_target(history, "e" * 40) == ("a" * 40, "")
    assert not is_verified(True, "b" * 40, history, dirty=False)  # it failed once
    assert not is_verified(True, "e" * 40, history, dirty=True)
    assert not is_verified(True, None, history, dirty=False)
    assert is_verified(True, "e" * 40, history, dirty=False)
    assert rollback_target(history[1:], None)[0] is None
    assert "not rolled back automatically" in rollback_target([], None)[1]


def test_a_soak_sees_a_failed_execution_of_a_promoted_flow(repo, target, tmp_path):
    set_policy(target, tmp_path, "verify:\n  checks:\n    - soak: {duration: 2s, interval: 1s}\n"
                              "  on_failure: hold\n")
    _commit(repo, "one")

    def fail_later() -> None:
        target.fake.runs.add("company", "a", "FAILED", started=datetime.now(timezone.utc),
                             execution_id="bad1")
    timer = threading.Timer(0.5, fail_later)
    timer.start()
    try:
        done = _apply(repo, target)
    finally:
        timer.cancel()
    assert done.code == 1
    assert "company.a execution bad1 ended in FAILED during the soak" in done.out
    assert _history(target)[-1]["checks"][0]["execution"] == "bad1"


def test_a_soak_without_failures_passes(repo, target, tmp_path):
    set_policy(target, tmp_path, "verify:\n  checks:\n    - soak: {duration: 1s, interval: 1s}\n")
    before = datetime.now(timezone.utc).replace(year=2020)
    target.fake.runs.add("company", "a", "FAILED", started=before)  # long before the apply
    _commit(repo, "one")
    done = _apply(repo, target)
    assert done.code == 0, done.out + done.err
    assert _history(target)[-1]["verified"] is True


def test_a_smoke_flow_that_does_not_end_in_time_fails_clearly(repo, target, tmp_path):
    set_policy(target, tmp_path, RUN.replace("2s", "1s") + "  on_failure: hold\n")
    target.fake.runs.delay = 60
    _commit(repo, "one")
    done = _apply(repo, target)
    assert done.code == 1
    assert "company.smoke did not end within 1s" in done.out and "killed" in done.out
    execution = _history(target)[-1]["checks"][0]["execution"]
    assert target.fake.runs.find(execution)["state"]["current"] == "KILLED"


@pytest.mark.parametrize(("text", "message"), [
    ("verify: [x]\n", "'verify' must be a mapping"),
    ("verify:\n  checks: []\n", "verify.checks must be a list of at least one check"),
    ("verify:\n  checks:\n    - run: {flow: smoke}\n", "'namespace' is required"),
    ("verify:\n  checks:\n    - run: {namespace: a, flow: b, timeout: soon}\n",
     "'soon' is not a duration"),
    ("verify:\n  checks:\n    - soak: {}\n", "'duration' is required"),
    ("verify:\n  checks:\n    - soak: {duration: 7h}\n", "at most 6h"),
    ("verify:\n  checks:\n    - soak: {duration: 1m, fail_on: [RUNNING]}\n", "'fail_on' must"),
    ("verify:\n  checks:\n    - test: {}\n", "must be one of {run:"),
    ("verify:\n  checks:\n    - soak: {duration: 1m}\n  on_failure: ignore\n",
     "on_failure: 'ignore' must be one of rollback, hold"),
])
def test_a_bad_verify_section_is_refused_with_its_problem(text, message):
    with pytest.raises(SourceError) as caught:
        parse_policy(text, "prod-policy.yml")
    shown = "\n".join(str(p) for p in caught.value.problems)
    assert message in shown and "prod-policy.yml" in shown


def test_a_commit_cannot_configure_verify(repo, target):
    _commit(repo, "one")
    repo.write("kestra-promote.yml", "name: team\nverify:\n  on_failure: hold\n")
    repo.commit("settings")
    done = _apply(repo, target)
    assert done.code == 1
    assert "'verify' is set by production's policy only" in done.err
    assert target.sources("company") == {}


def test_verify_runs_the_checks_on_demand(repo, target, tmp_path):
    set_policy(target, tmp_path, RUN)
    _commit(repo, "one")
    assert _apply(repo, target).code == 0
    done = run_cli("verify", str(repo.path), "--format", "json", env=target.env)
    assert done.code == 0, done.err
    data = json.loads(done.out)
    assert data["passed"] and data["checks"][0]["state"] == "SUCCESS"
    target.fake.runs.outcome[("company", "smoke")] = "FAILED"
    failed = run_cli("verify", str(repo.path), env=target.env)
    assert failed.code == 1 and "FAILED run company.smoke" in failed.out


def test_a_policy_that_cannot_be_read_after_the_apply_fails_the_run_and_holds(
        repo, target, tmp_path):
    set_policy(target, tmp_path, RUN)
    _commit(repo, "one")
    # the plan reads the policy first; the second read, once applied, fails however often retried
    target.fake.inject("GET", "kestra_promote_policy", nth=2, times=20, status=500)
    done = _apply(repo, target)
    assert done.code == 1
    assert "reading production's checks failed" in done.out
    assert "message: one" in target.sources("company")[("company", "a")]
    assert "verified" not in _history(target)[-1]

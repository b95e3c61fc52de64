"""What a pull request shows of production, and what production logs of a pull request: no
unmanaged object in a posted or public plan (neither named nor counted), no diff of an
inventory that does not record the repository as its origin, and no base branch name (the
payload's text) in a decision's reason or its log line."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Iterator

import pytest
from conftest import FIXTURES, GitRepo, Target, flow_yaml, run_cli
from fake_git_provider import FakeProvider
from fake_kestra import serve
from kestra_promote.gates import review, webhook
from kestra_promote.kestra_task.emit import Emitter
from kestra_promote.kestra_task.runtime import task_decide
from kestra_promote.models import Action, Change, FlowKey, Inventory, Managed, Plan, Reason

TOKEN = "t0ken-of-the-bot"
PRIVATE_FLOW = "quarterly_bonus_run"  # production's own, in the namespace a request names
PRIVATE_FILE = "/private/bonus_rates.sql"
BASE = "release/acquisition-of-initech"  # a base branch name, as a payload carries it


@pytest.fixture
def github() -> Iterator[tuple[FakeProvider, str]]:
    fake = FakeProvider("github")
    with serve(fake) as url:  # type: ignore[arg-type]
        yield fake, url


@pytest.mark.fake_only
@pytest.mark.parametrize("how", ["post", "public"])
def test_a_request_naming_a_namespace_learns_nothing_else_production_holds_there(
        repo: GitRepo, target: Target, github: tuple[FakeProvider, str], how: str):
    assert target.fake is not None
    target.fake.seed_flow(flow_yaml("company.team", PRIVATE_FLOW))
    with target.client() as client:
        client.upload_namespace_file("company.team", PRIVATE_FILE, b"select 1\n")
    repo.write("kestra-promote.yml", "name: analytics\nnamespace_files:\n"
                                     "  - {source: files, namespace: company.team}\n")
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine"))
    repo.write("files/mine.sql", "select 2\n")
    sha = repo.commit()
    plain = run_cli("plan", str(repo.path), env=target.env)
    assert PRIVATE_FLOW in plain.out and PRIVATE_FILE in plain.out  # in a terminal: listed
    posting = (["--post", "github", "--post-api", github[1], "--post-repo", "acme/flows",
                "--post-request", "7", "--post-sha", sha] if how == "post" else ["--public"])
    for fmt in ("text", "markdown", "json"):
        result = run_cli("plan", str(repo.path), "--format", fmt, *posting,
                         env={**target.env, "KESTRA_PROMOTE_REVIEW_TOKEN": TOKEN})
        assert result.code == 0, result.err
        published = result.out + result.err + "".join(c["body"] for c in github[0].comments)
        assert PRIVATE_FLOW not in published and "bonus_rates" not in published
        assert "unmanaged (never touched)" not in published and "unmanaged object" not in published
        if fmt == "json":
            data = json.loads(result.out)
            assert data["summary"]["unmanaged"] == 0
            assert [c["id"] for c in data["changes"] if c["kind"] == "flow"] == ["mine"]
        else:  # the request's own objects are listed
            assert "company.team/mine" in published


def _plan(inventory: Inventory | None, origin: str | None) -> Plan:
    key, gone = FlowKey("company.team", "mine"), FlowKey("company.team", "gone")
    return Plan(changes=(
        Change(key, Action.UPDATE, Reason.CHANGED_IN_GIT, "a", "b", "flows/mine.yml",
               "--- target\n+++ git\n-production's words\n+new words\n"),
        Change(gone, Action.ORPHANED, Reason.PRUNE_OFF, "x", None, "flows/gone.yml")),
        name="analytics", inventory_before=inventory, origin=origin)


def _managing(origin: str | None) -> Inventory:
    managed = Managed("h", "flows/mine.yml")
    return Inventory("analytics", {FlowKey("company.team", "mine"): managed,
                                   FlowKey("company.team", "gone"): managed}, origin=origin)


def test_only_an_inventory_recording_this_repository_shows_diffs_and_its_objects():
    here = "git.example.com/acme/flows"
    shown, hidden = review.public(_plan(_managing(here), here))
    assert hidden == 0 and [c.key.id for c in shown.changes] == ["mine", "gone"]
    for inventory, origin in ((_managing(None), here), (_managing(here), None),
                              (_managing("git.example.com/acme/payroll"), here)):
        shown, hidden = review.public(_plan(inventory, origin))
        assert hidden == 1 and shown.changes[0].diff == ""
        assert [c.key.id for c in shown.changes] == ["mine"]  # not the inventory's others
        body = review.comment_body(_plan(inventory, origin), (), None, 60_000, None)
        assert "production's words" not in body and "company.team/gone" not in body


def test_a_public_plan_has_no_unmanaged_rows_nor_counts():
    plan = dataclasses.replace(_plan(_managing("r"), "r"), changes=(Change(
        FlowKey("company.team", PRIVATE_FLOW), Action.UNMANAGED, Reason.NOT_MANAGED, "x"),))
    shown, _ = review.public(plan)
    assert shown.changes == () and shown.summary["unmanaged"] == 0


def _request(base: str) -> bytes:
    body = json.loads((FIXTURES / "webhooks/github/pull_request-1.json").read_text())
    body["pull_request"]["base"]["ref"] = base
    return json.dumps(body).encode()


@pytest.mark.parametrize("followed", ["main", BASE])
def test_the_base_branch_is_not_written_into_a_decisions_reason(followed: str):
    decision = webhook.decide({"X-GitHub-Event": "pull_request"}, None, raw=_request(BASE),
                              target=webhook.Target(followed), pull_requests=True)
    assert decision.decision == ("review" if followed == BASE else "ignore")
    if followed == "main":
        assert BASE not in decision.reason and "acquisition" not in decision.reason
        assert "pull request #2 into another branch" in decision.reason


def test_the_decide_task_logs_no_base_branch(tmp_path: Path):
    (tmp_path / "headers.json").write_text(json.dumps({"X-GitHub-Event": ["pull_request"]}))
    (tmp_path / "body.json").write_bytes(_request(BASE))
    out = io.StringIO()
    code = task_decide({"KP_TRIGGER": "webhook", "KP_BRANCH": "main",
                        "KP_PULL_REQUESTS": "true",
                        "KP_WEBHOOK_HEADERS": str(tmp_path / "headers.json"),
                        "KP_WEBHOOK_BODY": str(tmp_path / "body.json")}, Emitter(out))
    assert code == 0
    assert "acquisition" not in out.getvalue()
    assert '"decision": "ignore"' in out.getvalue()

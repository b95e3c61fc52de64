"""Applying a plan: validation first, writes in order, outcomes as data."""

from __future__ import annotations

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli
from fake_kestra import FakeKestra
from kestra_promote.apply import apply_plan
from kestra_promote.errors import TargetRejected
from kestra_promote.live import in_namespace_tree, namespace_roots, read_live_state
from kestra_promote.models import Status
from kestra_promote.plan import plan
from kestra_promote.source import read_source

pytestmark = pytest.mark.fake_only


def _repo_with(repo: GitRepo, count: int, namespace: str = "company.team") -> None:
    for i in range(count):
        repo.write(f"f{i:02}.yml", flow_yaml(namespace, f"f{i:02}"))
    repo.commit()


def test_a_failed_write_stops_the_run_and_reports_each_outcome(repo: GitRepo, target: Target):
    fake = target.fake
    assert fake is not None
    _repo_with(repo, 4)
    fake.inject("POST", r"/api/v1/main/flows$", nth=3, status=500)

    result = run_cli("apply", str(repo.path), env=target.env)

    assert result.code == 1
    assert "  created company.team/f00\n  created company.team/f01\n" in result.out
    assert "  failed company.team/f02: POST /api/v1/main/flows failed with HTTP 500" in result.out
    assert "  skipped company.team/f03: not attempted: an earlier write failed" in result.out
    assert "Apply failed: 1 change(s) failed, 1 not attempted; 2 created" in result.out
    assert sorted(fake.current()) == [("company.team", "f00"), ("company.team", "f01")]


def test_a_flow_created_by_someone_else_since_the_plan_is_not_overwritten(repo: GitRepo,
                                                                         target: Target):
    fake = target.fake
    assert fake is not None
    _repo_with(repo, 1)
    source = read_source(repo.path)
    with target.client() as client:
        the_plan = plan(source.flows, read_live_state(client, ["company"]).flows)
        fake.seed_flow(flow_yaml("company.team", "f00", "made in the UI"))
        result = apply_plan(client, the_plan)
    (outcome,) = result.outcomes
    assert outcome.status is Status.FAILED
    assert "was created on the target after the plan was made; plan again" in outcome.message
    assert fake.current()[("company.team", "f00")].endswith("message: made in the UI\n")


def test_validation_failure_raises_before_any_write(repo: GitRepo, target: Target):
    fake = target.fake
    assert fake is not None
    repo.write("a.yml", flow_yaml("company", "a"))
    repo.write("b.yml", flow_yaml("company", "b", extra="pluginDefaults: []\n"))
    repo.commit()
    source = read_source(repo.path)
    with target.client() as client:
        with pytest.raises(TargetRejected) as caught:
            apply_plan(client, plan(source.flows, {}))
    assert [str(p) for p in caught.value.problems] == [
        'b.yml: company/b: pluginDefaults: Unrecognized field "pluginDefaults"']
    assert fake.writes() == []


def test_long_applies_show_progress_on_stderr(repo: GitRepo, target: Target):
    _repo_with(repo, 12)
    result = run_cli("apply", str(repo.path), env=target.env)
    assert result.code == 0
    lines = result.err.splitlines()
    assert lines[0] == "[1/12] created company.team/f00"
    assert lines[-1] == "[12/12] created company.team/f11"
    assert "[" not in result.out


def test_live_state_reads_one_export_per_namespace_root(target: Target, fake: FakeKestra):
    for namespace in ("company", "company.team", "companyx", "other.deep"):
        fake.seed_flow(flow_yaml(namespace, "x"))
    with target.client() as client:
        live = read_live_state(client, ["company.team.a", "company.b", "other.deep"])
    assert sorted((k.namespace, k.id) for k in live.flows) == [
        ("company", "x"), ("company.team", "x"), ("other.deep", "x")]
    exports = [r for r in fake.requests if r.path.endswith("/export/by-query")]
    assert [r.query["filters[namespace][PREFIX]"] for r in exports] == [["company"], ["other"]]


def test_namespace_helpers():
    assert namespace_roots(["a.b", "a.c.d", "b"]) == ("a", "b")
    assert in_namespace_tree("a.b", "a") and in_namespace_tree("a", "a")
    assert not in_namespace_tree("ab", "a")

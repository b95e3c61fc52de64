"""A pull request's plan (``plan --post`` and ``plan --public``) cannot be steered by the
request's own settings: it is made as production knows the repository
(``engine.promotion.review_identity``), and shows nothing of production that did not come from
it, whatever ``name`` or ``state_namespace`` the request's kestra-promote.yml gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli
from fake_git_provider import FakeProvider
from fake_kestra import serve
from kestra_promote.gates.review import marker

pytestmark = pytest.mark.fake_only
TOKEN = "t0ken-of-the-bot"
SECRET = "s3cr3t-dsn"  # only in production's copy of another source's flow


@pytest.fixture
def github() -> Iterator[tuple[FakeProvider, str]]:
    fake = FakeProvider("github")
    with serve(fake) as url:  # type: ignore[arg-type]
        yield fake, url


def _review(repo: GitRepo, target: Target, github: tuple[FakeProvider, str], how: str,
            sha: str, *extra: str):
    posting = (["--post", "github", "--post-api", github[1], "--post-repo", "acme/flows",
                "--post-request", "7", "--post-sha", sha] if how == "post" else ["--public"])
    return run_cli("plan", str(repo.path), *posting, *extra,
                   env={**target.env, "KESTRA_PROMOTE_REVIEW_TOKEN": TOKEN})


def _published(result, github: tuple[FakeProvider, str]) -> str:
    return result.out + result.err + "".join(c["body"] for c in github[0].comments)


def _from_a_build_folder(tmp_path: Path, target: Target) -> None:
    """Production's "payroll" source, promoted from a build folder outside Git: its inventory
    records no origin."""
    folder = tmp_path / "build"
    (folder / "flows").mkdir(parents=True)
    (folder / "kestra-promote.yml").write_text("name: payroll\n", encoding="utf-8")
    (folder / "flows/salaries.yml").write_text(
        flow_yaml("company.payroll", "salaries", f"'{SECRET}'"), encoding="utf-8")
    assert run_cli("apply", str(folder), env=target.env).code == 0
    assert target.fake is not None
    stored = target.fake.kv[("main", "system")]["kestra-promote.payroll"]["value"]
    assert "origin" not in stored


@pytest.mark.parametrize("how", ["post", "public"])
def test_a_request_naming_a_source_without_origin_gets_none_of_its_flows(
        repo: GitRepo, target: Target, github: tuple[FakeProvider, str], tmp_path: Path,
        how: str):
    _from_a_build_folder(tmp_path, target)
    repo.write("kestra-promote.yml", "name: payroll\n")  # the request claims its name
    repo.write("flows/salaries.yml", flow_yaml("company.payroll", "salaries", "mine now"))
    result = _review(repo, target, github, how, repo.commit())
    published = _published(result, github)
    assert SECRET not in published
    assert "the name 'payroll' is another source's on production" in published
    assert result.code == 1  # refused: not a plan production would make of this repository
    if how == "post":
        assert github[0].statuses[-1]["state"] == "failure"


def test_a_request_naming_the_bootstraps_inventory_gets_none_of_its_objects(
        repo: GitRepo, target: Target, github: tuple[FakeProvider, str]):
    assert run_cli("bootstrap", env=target.env).code == 0  # the promotion's own flows
    repo.write("kestra-promote.yml", "name: kestra-promote-prod\n")
    repo.write("flows/promote.yml", flow_yaml("system", "promote", "mine now"))
    result = _review(repo, target, github, "post", repo.commit())
    published = _published(result, github)
    assert "kestra_promote task decide" not in published  # production's promote flow
    assert "is another source's on production" in published
    assert github[0].statuses[-1]["state"] == "failure"


def test_a_request_is_planned_under_the_name_production_knows_its_repository_by(
        repo: GitRepo, target: Target, github: tuple[FakeProvider, str]):
    repo.write("kestra-promote.yml", "name: analytics\n")
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine", "'first words'"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    repo.write("kestra-promote.yml", "name: renamed\n")
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine", "'second words'"))
    result = _review(repo, target, github, "post", repo.commit())
    assert result.code == 0, result.err
    (comment,) = github[0].comments
    assert comment["body"].startswith(marker("analytics"))
    assert "first words" in comment["body"]  # its own flow, as it deployed it
    assert "'name' 'renamed' is not used in a review" in comment["body"]
    assert github[0].statuses[-1]["context"] == "kestra-promote/analytics"


@pytest.mark.parametrize("how", ["post", "public"])
def test_a_request_cannot_hide_from_the_other_sources_by_moving_the_state_namespace(
        repo: GitRepo, target: Target, github: tuple[FakeProvider, str], tmp_path: Path,
        how: str):
    payroll = GitRepo(tmp_path / "payroll-repo")
    payroll.write("kestra-promote.yml", "name: payroll\n")
    payroll.write("flows/salaries.yml", flow_yaml("company.payroll", "salaries"))
    payroll.commit()
    assert run_cli("apply", str(payroll.path), env=target.env).code == 0
    repo.write("kestra-promote.yml", "name: mine\nstate_namespace: hideout\n")
    repo.write("flows/salaries.yml", flow_yaml("company.payroll", "salaries", "mine now"))
    result = _review(repo, target, github, how, repo.commit(), "--format", "json")
    data = json.loads(result.out)
    assert result.code == 1
    assert any("managed by the promotion source 'payroll'" in r for r in data["refusals"])
    assert any("'state_namespace' 'hideout' is not used in a review" in w["message"]
               for w in data["warnings"])
    if how == "post":
        assert github[0].statuses[-1]["state"] == "failure"


def test_a_review_outside_git_shows_no_diff_of_an_inventory_without_origin(
        target: Target, tmp_path: Path):
    _from_a_build_folder(tmp_path, target)
    folder = tmp_path / "build"
    (folder / "flows/salaries.yml").write_text(
        flow_yaml("company.payroll", "salaries", "'new words'"), encoding="utf-8")
    result = run_cli("plan", str(folder), "--public", env=target.env)
    assert SECRET not in result.out + result.err
    plain = run_cli("plan", str(folder), env=target.env)  # in a terminal: everything
    assert plain.code == 0 and SECRET in plain.out


def test_a_request_loosening_productions_policy_gets_a_refused_review(
        repo: GitRepo, target: Target, github: tuple[FakeProvider, str], tmp_path: Path):
    policy = tmp_path / "policy.yml"
    policy.write_text("drift: fail\n", encoding="utf-8")
    assert run_cli("policy", "set", str(policy), env=target.env).code == 0
    repo.write("kestra-promote.yml", "name: analytics\ndrift: overwrite\n")
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine"))
    result = _review(repo, target, github, "post", repo.commit())
    assert result.code == 1
    assert "'drift' 'overwrite' keeps fewer of production's edits" in github[0].comments[0]["body"]
    assert github[0].statuses[-1]["state"] == "failure"

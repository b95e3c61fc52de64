"""A pull request's plan (``plan --post ...`` or ``plan --public``) shows on stdout and in the
job summary only what its comment shows: no diff of production's copy that did not come from
this repository, in every format. A plain ``plan`` still shows everything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli
from fake_git_provider import FakeProvider
from fake_kestra import serve

pytestmark = pytest.mark.fake_only
TOKEN = "t0ken-of-the-bot"
OTHERS = "s3cr3t-dsn"  # only in another source's flow in production
HOTFIX = "hotfix-pw"  # only in production's edited copy of this repository's flow
NOT_SHOWN = "diff(s) not shown: production's copy did not come from this repository"


@pytest.fixture
def github() -> Iterator[tuple[FakeProvider, str]]:
    fake = FakeProvider("github")
    with serve(fake) as url:  # type: ignore[arg-type]
        yield fake, url


def _request(repo: GitRepo, target: Target, drift: str) -> str:
    """A pull request that claims another source's flow, changes a flow edited in production
    and one that is as this repository deployed it; returns its head commit."""
    assert target.fake is not None
    target.fake.seed_flow(flow_yaml("company.payroll", "salaries", f"'{OTHERS}'"))
    repo.write("kestra-promote.yml", f"name: analytics\ndrift: {drift}\n")
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine"))
    repo.write("flows/ours.yml", flow_yaml("company.team", "ours", "'deployed words'"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    with target.client() as client:  # a hotfix made in production's UI
        client.update_flow("company.team", "mine",
                           flow_yaml("company.team", "mine", f"'{HOTFIX}'"))
    repo.write("flows/salaries.yml", flow_yaml("company.payroll", "salaries", "mine now"))
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine", "v2"))
    repo.write("flows/ours.yml", flow_yaml("company.team", "ours", "'new words'"))
    return repo.commit()


def _posting(github: tuple[FakeProvider, str], sha: str) -> list[str]:
    return ["--post", "github", "--post-api", github[1], "--post-repo", "acme/flows",
            "--post-request", "7", "--post-sha", sha]


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
@pytest.mark.parametrize("how", ["post", "public"])
# refused (drift: fail): no diff at all; overwritten: ours only
@pytest.mark.parametrize("drift, hidden", [("fail", 3), ("overwrite", 2)])
def test_a_pull_requests_plan_shows_nowhere_what_its_comment_withholds(
        repo: GitRepo, target: Target, github: tuple[FakeProvider, str], tmp_path: Path,
        fmt: str, how: str, drift: str, hidden: int):
    sha = _request(repo, target, drift)
    summary = tmp_path / "summary.md"
    env = {**target.env, "GITHUB_STEP_SUMMARY": str(summary)}
    plain = run_cli("plan", str(repo.path), "--format", fmt, env=env)
    assert OTHERS in plain.out and HOTFIX in plain.out  # what the log showed until now
    assert OTHERS in summary.read_text() and HOTFIX in summary.read_text()
    summary.unlink()

    extra = _posting(github, sha) if how == "post" else ["--public"]
    result = run_cli("plan", str(repo.path), "--format", fmt, *extra,
                     env={**env, "KESTRA_PROMOTE_REVIEW_TOKEN": TOKEN})
    assert result.code == plain.code
    published = result.out + result.err + summary.read_text()
    assert OTHERS not in published and HOTFIX not in published
    assert "company.payroll/salaries" in published and "company.team/mine" in published
    assert f"{hidden} {NOT_SHOWN}" in summary.read_text()
    # what this repository deployed, unedited: its diff is shown unless the plan is refused
    assert ("deployed words" in result.out) is (drift == "overwrite")
    if fmt == "json":
        data = json.loads(result.out)
        assert data["diffs_not_shown"] == hidden
        assert [c["id"] for c in data["changes"] if c["diff"]] == (
            ["ours"] if drift == "overwrite" else [])
    else:
        assert f"{hidden} {NOT_SHOWN}" in result.out
    if how == "post":
        (comment,) = github[0].comments
        assert OTHERS not in comment["body"] and HOTFIX not in comment["body"]


def test_a_public_plan_still_shows_the_diffs_of_what_this_repository_deployed(
        repo: GitRepo, target: Target, tmp_path: Path):
    repo.write("kestra-promote.yml", "name: analytics\n")
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine", "'first words'"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine", "'second words'"))
    repo.commit()
    summary = tmp_path / "summary.md"
    for fmt in ("text", "markdown", "json"):
        result = run_cli("plan", str(repo.path), "--public", "--format", fmt,
                         env={**target.env, "GITHUB_STEP_SUMMARY": str(summary)})
        assert result.code == 0, result.err
        assert "first words" in result.out and "second words" in result.out
        assert "not shown" not in result.out
        if fmt == "json":
            assert json.loads(result.out)["diffs_not_shown"] == 0
    assert "first words" in summary.read_text() and "not shown" not in summary.read_text()


def test_a_plan_that_withholds_nothing_in_json_says_nothing_of_it(repo: GitRepo,
                                                                  target: Target):
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine"))
    repo.commit()
    result = run_cli("plan", str(repo.path), "--format", "json", env=target.env)
    assert result.code == 0, result.err
    assert "diffs_not_shown" not in json.loads(result.out)  # a plain plan withholds nothing


def test_public_refuses_to_save_the_plan(repo: GitRepo, target: Target, tmp_path: Path):
    repo.write("flows/mine.yml", flow_yaml("company.team", "mine"))
    repo.commit()
    saved = tmp_path / "plan.json"
    result = run_cli("plan", str(repo.path), "--public", "--out", str(saved), env=target.env)
    assert result.code == 1
    assert "--public cannot save the plan (--out)" in result.err
    assert not saved.exists()
    assert target.fake is not None and target.fake.writes(lease=True) == []

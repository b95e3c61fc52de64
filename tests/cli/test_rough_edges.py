"""The rough edges a newcomer meets: counts said twice, messages that blame the wrong thing or
name what no longer exists."""

from __future__ import annotations

import json

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli


@pytest.mark.fake_only
def test_the_unmanaged_count_is_said_once(repo: GitRepo, target: Target):
    assert target.fake is not None
    target.fake.seed_flow(flow_yaml("company.team", "made-in-the-ui"))
    repo.write("a.yml", flow_yaml("company.team", "ours"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0

    plan = run_cli("plan", str(repo.path), env=target.env)

    assert plan.code == 0, plan.err
    assert plan.out.count("1 unmanaged") == 1, plan.out


def test_a_failed_validate_in_json_names_the_commit(repo: GitRepo):
    repo.write("bad.yml", flow_yaml("company.team", "bad").replace("id: bad\n", "id: 'b a d'\n"))
    sha = repo.commit()

    result = run_cli("validate", str(repo.path), "--format", "json")

    assert result.code == 1
    data = json.loads(result.out)
    assert data["error"] and data["commit"] == sha

    at_ref = run_cli("validate", str(repo.path), "--ref", "main", "--format", "json")
    assert at_ref.code == 1
    assert json.loads(at_ref.out)["commit"] == sha


def test_errors_at_a_ref_name_the_repository_and_the_ref(repo: GitRepo):
    repo.write("bad.yml", flow_yaml("company.team", "bad").replace("id: bad\n", "id: 'b a d'\n"))
    sha = repo.commit()

    result = run_cli("validate", str(repo.path), "--ref", "main")

    assert result.code == 1
    assert "kestra-promote-" not in result.err, result.err
    assert f"under {repo.path} at main ({sha[:12]}); nothing was written" in result.err


def _three_in_dev(repo: GitRepo) -> None:
    repo.write("kestra-promote.yml", "name: edges\n")
    for flow_id in ("a", "b", "c"):
        repo.write(f"{flow_id}.yml", flow_yaml("dev", flow_id))
    repo.commit()


def test_an_invalid_rename_flag_is_blamed_on_the_flag(repo: GitRepo):
    _three_in_dev(repo)

    result = run_cli("validate", str(repo.path), "--rename", "dev=Prod")

    assert result.code == 1
    assert "kestra-promote.yml" not in result.err, result.err
    assert "--rename dev=Prod: namespace 'Prod' is invalid" in result.err


def test_a_rename_flag_leaving_no_namespace_is_told_once(repo: GitRepo):
    _three_in_dev(repo)

    result = run_cli("validate", str(repo.path), "--rename", "dev=")

    assert result.code == 1
    assert result.err.count("namespace is empty") == 1, result.err
    assert "--rename dev=" in result.err and "a.yml, b.yml, c.yml" in result.err


@pytest.mark.fake_only
def test_another_folder_of_the_same_repository_is_told_to_adopt(repo: GitRepo, target: Target):
    repo.git("remote", "add", "origin", "https://git.example.com/acme/flows.git")
    repo.write("a.yml", flow_yaml("company.team", "a"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    (repo.path / "a.yml").unlink()  # the flows move into a folder
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.commit("move")

    refused = run_cli("apply", str(repo.path / "flows"), env=target.env)

    assert refused.code == 1
    assert ("holds objects promoted from git.example.com/acme/flows, and this run promotes "
            "git.example.com/acme/flows:flows, another folder of the same repository: pass "
            "--adopt to take these objects over") in refused.err, refused.err
    assert "`name`" not in refused.err


@pytest.mark.fake_only
def test_a_repository_without_a_commit_is_uncommitted(repo: GitRepo, target: Target):
    repo.write("a.yml", flow_yaml("company.team", "a"))  # never committed

    refused = run_cli("apply", str(repo.path), env=target.env)

    assert refused.code == 1
    assert ("1 file(s) the promotion reads are not committed: the repository has no commit yet "
            "(a.yml): commit them, or pass --allow-dirty") in refused.err, refused.err
    assert target.fake is not None and target.fake.writes() == []
    allowed = run_cli("apply", str(repo.path), "--allow-dirty", env=target.env)
    assert allowed.code == 0, allowed.err
    assert "promoting 1 uncommitted file(s) (a.yml)" in allowed.err

"""Approval: with `approval: required`, nothing is applied that a person has not approved (the
Kestra flow's Pause is tested in test_flows.py, emulated)."""

from __future__ import annotations

from conftest import GitRepo, Target, flow_yaml, run_cli


def test_with_approval_required_the_cli_applies_only_a_saved_plan(repo: GitRepo, target: Target,
                                                                   tmp_path):
    repo.write("kestra-promote.yml", "name: analytics\napproval: required\n")
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.commit()
    direct = run_cli("apply", str(repo.path), env=target.env)
    assert direct.code == 1 and "the settings require approval" in direct.err
    assert target.sources("company") == {}
    saved = tmp_path / "plan.json"
    assert run_cli("plan", str(repo.path), "--out", str(saved), env=target.env).code == 0
    assert run_cli("apply", str(saved), env=target.env).code == 0
    assert list(target.sources("company")) == [("company.team", "a")]


def test_approval_takes_off_or_required(repo: GitRepo):
    repo.write("kestra-promote.yml", "approval: maybe\n")
    repo.commit()
    result = run_cli("validate", str(repo.path), "--offline")
    assert result.code == 1 and "'approval' must be one of off, required, not 'maybe'" in result.err

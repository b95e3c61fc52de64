"""The promote flow's apply runs production's checks too (emulated flow, fake Kestra, real Git):
a smoke flow that succeeds verifies the run; one that fails rolls production back to the last
verified commit, fetched into the task's shallow clone."""

from __future__ import annotations

from conftest import flow_yaml
from test_flows import (  # noqa: F401 - production is a fixture
    _policy,
    production,
    target_history,
)

SMOKE = "verify:\n  checks:\n    - run: {namespace: company.team, flow: hello, timeout: 2s}\n"


def test_the_promote_flow_verifies_then_rolls_back_a_failing_commit(production):
    fake, repo, emulator = production
    _policy(fake, SMOKE)
    repo.write("flows/hello.yml", flow_yaml("company.team", "hello", "checked"))
    good = repo.commit("checked")
    repo.git("branch", "-f", "master")
    first = emulator.execute({"mode": "apply"})
    assert first.state == "SUCCESS", first.logs
    before = {k: v for k, v in fake.current().items()}
    with target_history(fake) as runs:
        assert runs[-1]["commit"] == good and runs[-1]["verified"] is True

    repo.write("flows/hello.yml", flow_yaml("company.team", "hello", "broken"))
    bad = repo.commit("broken")
    repo.git("branch", "-f", "master")
    fake.runs.outcome[("company.team", "hello")] = "FAILED"
    second = emulator.execute({"mode": "apply"})
    assert second.state == "FAILED"
    assert second.outputs["promote"]["vars"]["action"] == "failed"
    report = second.files["report.md"].read_text()
    assert f"rolled back to commit {good[:12]}" in report
    assert fake.current() == before  # byte for byte the verified commit's flows
    with target_history(fake) as runs:
        failed, rollback = runs[-2:]
    assert failed["commit"] == bad and failed["verified"] is False
    assert rollback["trigger"] == "rollback" and rollback["commit"] == good
    assert rollback["rollback"]["from"] == bad
    # the branch still points at the rolled-back commit: the hourly run does not promote it again
    hourly = emulator.schedule()
    assert "was rolled back: a schedule run does not promote it again" in \
        " ".join(m for _, _, m in hourly.logs)
    assert fake.current() == before


def test_a_worker_without_git_nor_an_http_url_names_the_manual_rollback(monkeypatch, tmp_path):
    """Without `git`, a rollback fetches its commit over Git's HTTP protocol (see
    test_pipeline_flow.py); a repository reached otherwise (SSH) cannot be read there: the
    automatic rollback then says how to roll back by hand instead of failing with a traceback
    (engine.verify reports it and holds)."""
    import pytest

    from kestra_promote.errors import SettingsError
    from kestra_promote.kestra_task import verifying

    monkeypatch.setattr(verifying.shutil, "which", lambda name: None)
    env = {"KP_REPO_URL": "git@github.com:company/flows.git"}
    at = verifying._source_at(env, tmp_path, client=None)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match=r"needs `git`.*or an http\(s\) promote_repo_url.*"
                       r"apply --ref 0123456789ab"):
        with at("0123456789abcdef"):
            pass

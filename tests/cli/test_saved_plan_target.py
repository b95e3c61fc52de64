"""Applying a saved plan without a URL names the target the plan was made for, and sends the
credentials nowhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FAKE_PASSWORD, FAKE_USER, GitRepo, flow_yaml, run_cli
from fake_kestra import FakeKestra, serve

pytestmark = pytest.mark.fake_only
NS = "company.team"


def _saved(repo: GitRepo, tmp_path: Path, url: str, *extra: str) -> Path:
    repo.write("kestra-promote.yml", "name: analytics\n")
    repo.write("flows/hello.yml", flow_yaml(NS, "hello"))
    repo.commit("first")
    saved = tmp_path / "plan.json"
    env = {"KESTRA_URL": url, "KESTRA_USERNAME": FAKE_USER, "KESTRA_PASSWORD": FAKE_PASSWORD}
    made = run_cli("plan", str(repo.path), "--out", str(saved), *extra, env=env)
    assert made.code in (0, 2), made.out + made.err
    return saved


@pytest.mark.parametrize("tenant", ["main", "team-a"])
def test_a_saved_plan_without_a_url_names_its_target_and_sends_nothing(
        repo: GitRepo, tmp_path: Path, tenant: str):
    fake = FakeKestra(edition="ee", tenants=("main", "team-a"))
    with serve(fake) as url:
        saved = _saved(repo, tmp_path, url, "--tenant", tenant)
        before = len(fake.requests)
        result = run_cli("apply", str(saved),
                         env={"KESTRA_USERNAME": FAKE_USER, "KESTRA_PASSWORD": FAKE_PASSWORD})
        assert result.code == 1, result.out + result.err
        assert f"was made for {url} (tenant {tenant})" in result.err, result.err
        flags = f"--url {url}" + (f" --tenant {tenant}" if tenant != "main" else "")
        assert f"pass {flags} or set KESTRA_URL" in result.err, result.err
        assert FAKE_PASSWORD not in result.out + result.err
        assert len(fake.requests) == before  # the credentials went nowhere
        assert fake.current(tenant) == {}
        # what the error says to do applies the plan
        again = run_cli("apply", str(saved), *flags.split(),
                        env={"KESTRA_USERNAME": FAKE_USER, "KESTRA_PASSWORD": FAKE_PASSWORD})
        assert again.code == 0, again.out + again.err
        assert len(fake.current(tenant)) == 1


def test_a_source_folder_without_a_url_keeps_the_plain_error(repo: GitRepo):
    repo.write("flows/hello.yml", flow_yaml(NS, "hello"))
    repo.commit("first")
    result = run_cli("apply", str(repo.path), env={})
    assert result.code == 1 and "no target: pass --url or set KESTRA_URL" in result.err

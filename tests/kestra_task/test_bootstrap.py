"""`kestra-promote bootstrap`: the promotion installs itself, once."""

from __future__ import annotations

import pytest
from conftest import Target, run_cli
from kestra_promote.gates import seal
from kestra_promote.target import lock

pytestmark = pytest.mark.fake_only


def test_bootstrap_deploys_flows_and_package_then_changes_nothing(target: Target):
    fake = target.fake
    assert fake is not None
    first = run_cli("bootstrap", "--set", "promote_repo_url=https://git.example.com/flows.git",
                    env=target.env)
    assert first.code == 0, first.err
    flows = fake.current()
    assert set(flows) == {("system", "promote"), ("system", "promote-check")}
    files = fake.files[("main", "system")]
    assert "/kestra_promote/cli/main.py" in files and "/kestra_promote/__main__.py" in files
    assert not [p for p in files if "__pycache__" in p or p.endswith(".pyc") or "egg-info" in p]
    record = seal.parse_record(fake.kv[("main", "system")][seal.RECORD_KEY]["value"], "test")
    assert record.settings == {"promote_repo_url": "https://git.example.com/flows.git"}
    assert "promote_repo_url" not in fake.kv[("main", "system")]  # only the record is read
    assert f"Set ENV_KESTRA_PROMOTE_SEAL={record.seal} " in first.out
    assert "/api/v1/main/executions/webhook/system/promote/<KESTRA_PROMOTE_WEBHOOK_KEY>" in first.out
    assert "KESTRA_PROMOTE_WEBHOOK_SECRET" in first.out

    writes = len(fake.writes())
    second = run_cli("bootstrap", "--set", "promote_repo_url=https://git.example.com/flows.git",
                     env={**target.env, "KESTRA_PROMOTE_SEAL": record.seal})
    assert second.code == 0 and "No changes." in second.out
    assert len(fake.writes()) == writes


def test_bootstrap_into_another_namespace_and_the_dev_role(target: Target):
    fake = target.fake
    assert fake is not None
    assert run_cli("bootstrap", "--namespace", "ops.promotion", env=target.env).code == 0
    assert set(fake.current()) == {("ops.promotion", "promote"), ("ops.promotion", "promote-check")}
    assert "/kestra_promote/engine/plan.py" in fake.files[("main", "ops.promotion")]
    assert "kestra-promote.kestra-promote-prod" in fake.kv[("main", "ops.promotion")]
    # development's flow calls the API with the same secrets: never beside production's
    shared = run_cli("bootstrap", "--role", "dev", "--namespace", "ops.promotion", env=target.env)
    assert shared.code == 1 and "production's sealed promotion" in shared.err
    assert ("ops.promotion", "commit-to-git") not in fake.current()
    dev = run_cli("bootstrap", "--role", "dev", "--namespace", "ops.dev", env=target.env)
    assert dev.code == 0, dev.err
    assert ("ops.dev", "commit-to-git") in fake.current()
    assert "Webhook URL" not in dev.out
    prod = run_cli("bootstrap", "--namespace", "ops.dev", env=target.env)
    assert prod.code == 1 and "holds the development role" in prod.err


def test_plan_only_writes_nothing(target: Target):
    fake = target.fake
    assert fake is not None
    result = run_cli("bootstrap", "--plan-only", "--set", "promote_branch=release", env=target.env)
    assert result.code == 0
    assert "+ create    system/promote" in result.out
    assert "~ setting   system/promote_branch = release" in result.out
    assert fake.writes() == []


def test_bad_bootstrap_arguments():
    assert run_cli("bootstrap", "--url", "http://k", "--namespace", "Bad").code == 1
    bad_setting = run_cli("bootstrap", "--url", "http://127.0.0.1:9", "--set", "nope=1")
    assert bad_setting.code == 1 and "unknown setting(s) nope for the prod role" in bad_setting.err


@pytest.mark.parametrize(("version", "loop"), [("1.3.19", "ForEach"), ("2.0.3", "Loop")])
def test_the_dev_role_installs_the_flow_of_the_targets_version(version: str, loop: str):
    from conftest import FAKE_PASSWORD, FAKE_USER
    from fake_kestra import FakeKestra, serve

    fake = FakeKestra(version=version)
    with serve(fake) as url:
        result = run_cli("bootstrap", "--role", "dev", "--url", url, "--username", FAKE_USER,
                         "--password", FAKE_PASSWORD)
    assert result.code == 0, result.err
    source = fake.current()[("system", "commit-to-git")]
    assert f"type: io.kestra.plugin.core.flow.{loop}\n" in source
    # development's copy of the package, apart from production's (see the flow's `cd dev`)
    assert "/dev/kestra_promote/kestra_task/runtime.py" in fake.files[("main", "system")]
    assert "/kestra_promote/kestra_task/runtime.py" not in fake.files[("main", "system")]
    assert "KESTRA_PROMOTE_USERNAME" in result.out


def test_the_project_is_found_from_the_installed_package_wherever_the_command_runs(
        tmp_path, monkeypatch):
    from kestra_promote.kestra_task.bootstrap import project_root

    monkeypatch.chdir(tmp_path)  # not the project folder
    root = project_root()
    assert (root / "flows" / "prod" / "promote.yml").is_file()
    assert (root / "scripts" / "kestra_promote" / "kestra_task" / "bootstrap.py").is_file()


def test_bootstrap_waits_for_the_lease_of_a_running_promotion(target: Target):
    fake = target.fake
    assert fake is not None
    with target.client() as client:
        running = lock.acquire(client, "system", "apply by alice@ci-1 (pid 7)", settle=0)
    waited = run_cli("bootstrap", "--lock-wait", "0.2", env=target.env)
    assert waited.code != 0 and "Traceback" not in waited.err
    assert "another promotion holds the lock" in waited.err
    assert "apply by alice@ci-1 (pid 7)" in waited.err
    assert not fake.writes()  # nothing installed, no setting written
    with target.client() as client:
        assert lock.read(client, "system") == running
        lock.release(client, "system", running)
    done = run_cli("bootstrap", env=target.env)
    assert done.code == 0, done.err
    assert fake.current()  # installed once the lease was free
    with target.client() as client:
        assert lock.read(client, "system") is None  # and given back

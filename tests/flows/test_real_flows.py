"""Kestra's own test flows (tests/fixtures/flows): read, validate, apply, re-apply."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, GitRepo, run_cli
from fake_kestra import FakeKestra, rules, serve
from kestra_promote.errors import SourceError
from kestra_promote.git.source import read_source

VALID = FIXTURES / "flows/kestra-tests/valid"
INVALID = FIXTURES / "flows/kestra-tests/invalid"
EXAMPLES = FIXTURES / "flows/kestra-examples"
DUPLICATED = {
    ("io.kestra.unittest", "test-flow"),
    ("io.kestra.tests", "sequential"),
    ("io.kestra.tests", "datetime"),
}
# Plugin types that exist only in Kestra's own test suite, where these flows come from.
TEST_PLUGINS = frozenset({
    "io.kestra.core.runners.ListenersTestTask",
    "io.kestra.core.runners.PluginDefaultsCaseTest$DefaultSequential1",
    "io.kestra.core.runners.PluginDefaultsCaseTest$DefaultSequential2",
    "io.kestra.core.runners.PluginDefaultsCaseTest$DefaultSequential3",
    "io.kestra.core.runners.test.TaskThatFail", "io.kestra.core.runners.test.TaskWithAlias",
    "io.kestra.core.runners.test.WorkerTaskResultTooLarge", "io.kestra.core.runners.test.task.Alias",
    "io.kestra.core.runners.test.trigger.Alias", "io.kestra.core.tasks.test.BadExecutable",
    "io.kestra.core.tasks.test.BadSequential", "io.kestra.core.tasks.test.DynamicTask",
    "io.kestra.core.tasks.test.Encrypted", "io.kestra.core.tasks.test.NullOutputTask",
    "io.kestra.core.tasks.test.Read",
})


# These December 2024 flows are no longer valid for Kestra 1.3 (Kestra changed them or the rule since).
REJECTED_BY_1_3 = {
    # InputValidator.java: an input with defaults must stay required (Kestra's 1.3 copy drops
    # `required: false`)
    "core/src/test/resources/flows/valids/kv.yaml":
        "inputs[0]: Inputs with a default value must be required, since the default is always applied.",
    # FlowValidator.RESERVED_FLOW_IDS (Kestra renamed its flow)
    "core/src/test/resources/flows/valids/pause.yaml": "id: Flow id is a reserved keyword: pause.",
    # PluginDefaultService.validateDefault: the flow tests invalid task defaults
    "core/src/test/resources/flows/tests/invalid-task-defaults.yaml":
        "taskDefaults[0]: Invalid Plugin Default: No property 'invalid' exists in plugin "
        "'io.kestra.plugin.core.log.Log'",
}
# Kestra dropped the worker group validation in July 2025 (kestra-io/kestra bf8d47f19, issue #9808):
# 1.3 accepts this flow; 2.0 has no `workerGroup` property any more (`workerSelector`).
NO_LONGER_INVALID = {"worker-group.yaml"}


def _kestra_test_server() -> FakeKestra:
    """Kestra 1.3 with Kestra's test plugins installed: where these flows are valid."""
    return FakeKestra(version="1.3.4", plugins=rules.DEFAULT_PLUGINS | TEST_PLUGINS)


def _without_duplicates(tmp_path: Path) -> Path:
    """A copy of the valid flows keeping the first file of each duplicated identity."""
    folder = tmp_path / "valid"
    shutil.copytree(VALID, folder)
    for relative in (
        "webserver/src/test/resources/flows/simpleflowUpdate.yaml",
        "core/src/test/resources/tasks/flows/sequentials/flow.yaml",
        "core/src/test/resources/flows/tests/trigger-empty.yaml",
    ):
        (folder / relative).unlink()
    return folder


def test_every_valid_flow_reads_and_only_the_real_duplicates_are_reported():
    with pytest.raises(SourceError) as caught:
        read_source(VALID)
    problems = caught.value.problems
    assert {(p.flow.namespace, p.flow.id) for p in problems if p.flow} == DUPLICATED
    assert len(problems) == 6  # each duplicate named in both of its files
    assert all("the same flow is defined in 2 files" in p.message for p in problems)


def test_valid_flows_without_duplicates_read_cleanly(tmp_path: Path):
    source = read_source(_without_duplicates(tmp_path))
    assert len(source.flows) == 209
    assert len(read_source(EXAMPLES).flows) == 6


def _accepted_by_1_3(tmp_path: Path) -> Path:
    """The flows of `_without_duplicates` that Kestra 1.3 accepts."""
    folder = _without_duplicates(tmp_path)
    for relative in REJECTED_BY_1_3:
        (folder / relative).unlink()
    return folder


# Valid flows that the default check (the sealed promotion namespace, checks.md) refuses to
# promote: they could act on the promotion's own flows, whatever namespace they end up naming
SEALED_REFUSED = {
    # execution.Resume with an executionId: Kestra finds the execution by id alone
    "core/src/test/resources/flows/valids/resume-execution.yaml": "task 'resume'",
    # Subflow into "{{inputs.namespace}}": any namespace, the promotion's included
    "core/src/test/resources/flows/valids/task-flow-dynamic.yaml": "task 'launch'",
}


def _promotable(tmp_path: Path) -> Path:
    """The flows of `_accepted_by_1_3` that a promotion may write (the default check passes)."""
    folder = _accepted_by_1_3(tmp_path)
    for relative in SEALED_REFUSED:
        (folder / relative).unlink()
    return folder


@pytest.mark.fake_only
def test_the_default_check_refuses_exactly_the_flows_that_could_act_on_the_promotion(
        tmp_path: Path):
    folder = _accepted_by_1_3(tmp_path)
    fake = _kestra_test_server()
    with serve(fake) as url:
        result = run_cli("plan", str(folder), "--url", url, "--username", "admin@kestra.io",
                         "--password", "Admin1234!")
    refused = [line.strip() for line in result.out.splitlines()
               if "[sealed promotion namespace]" in line]
    assert len(refused) == len(SEALED_REFUSED)
    for relative, task in SEALED_REFUSED.items():
        assert any(f"{relative}:" in line and task in line for line in refused), relative


@pytest.mark.parametrize("relative", sorted(REJECTED_BY_1_3))
def test_flows_kestra_1_3_no_longer_accepts_are_rejected_for_that_reason(relative: str):
    flow, errors = rules.check((VALID / relative).read_text(), version="1.3.4",
                               plugins=rules.DEFAULT_PLUGINS | TEST_PLUGINS)
    assert flow is not None
    assert any(f"{path}: {message}".startswith(REJECTED_BY_1_3[relative]) for path, message in errors)


def test_the_worker_group_flow_is_valid_on_1_3_and_unknown_on_2_0():
    (path,) = [p for p in INVALID.rglob("worker-group.yaml")]
    assert rules.check(path.read_text(), version="1.3.4")[1] == []
    assert rules.check(path.read_text(), version="2.0.3")[1] == [
        ("tasks[0].workerGroup", 'Unrecognized field "workerGroup"')]


def _invalid_files() -> list[Path]:
    return sorted(p for p in INVALID.rglob("*") if p.suffix in (".yml", ".yaml")
                  and p.name not in NO_LONGER_INVALID)


@pytest.mark.parametrize("path", _invalid_files(), ids=lambda p: p.name)
def test_every_invalid_flow_is_rejected_with_a_message_naming_it(path: Path, tmp_path: Path):
    folder = tmp_path / "src"
    folder.mkdir()
    shutil.copy(path, folder / path.name)
    fake = _kestra_test_server()
    with serve(fake) as url:
        result = run_cli("validate", str(folder), "--url", url, "--username", "admin@kestra.io",
                         "--password", "Admin1234!")
    assert result.code == 1
    problems = [line for line in result.err.splitlines() if line.startswith("  ")]
    assert problems, result.err
    assert all(line.strip().startswith(path.name) for line in problems), result.err
    assert fake.writes() == []


@pytest.mark.fake_only
def test_apply_204_real_flows_byte_identical_then_no_writes_then_one_update(tmp_path: Path):
    folder = _promotable(tmp_path)
    repo = GitRepo(folder)
    repo.commit("Kestra's test flows")
    fake = _kestra_test_server()
    with serve(fake) as url:
        auth = ["--url", url, "--username", "admin@kestra.io", "--password", "Admin1234!"]
        first = run_cli("apply", str(folder), *auth)
        assert first.code == 0, first.err
        assert "Apply complete: 204 created, 0 updated, 0 deleted." in first.out
        source = read_source(folder)
        live = fake.current()
        assert len(live) == 204
        # byte-identical: Kestra stores a source as sent, a `revision:` line too (two files
        # have one; AbstractJdbcFlowRepository.save), and ignores that line when comparing
        with_revision = {k for k, f in source.flows.items()
                         if any(line.startswith("revision:") for line in f.source.splitlines())}
        assert len(with_revision) == 2
        for key, flow in source.flows.items():
            assert live[(key.namespace, key.id)] == flow.source, key

        writes_before = len(fake.writes())
        second = run_cli("apply", str(folder), *auth)
        assert second.code == 0, second.err
        assert "No changes." in second.out
        assert len(fake.writes()) == writes_before

        target = folder / "core/src/test/resources/flows/valids/minimal.yaml"
        target.write_text(target.read_text() + "# reviewed\n")
        repo.commit("touch one flow")
        third = run_cli("apply", str(folder), *auth)
        assert third.code == 0, third.err
        new_writes = fake.writes()[writes_before:]
        assert [(w.method, w.path) for w in new_writes] == [
            ("PUT", "/api/v1/main/flows/io.kestra.tests/minimal"),
            ("PUT", "/api/v1/main/namespaces/system/kv/kestra-promote.default"),
        ]


@pytest.mark.fake_only
def test_one_real_invalid_flow_among_204_valid_ones_blocks_every_write(tmp_path: Path):
    folder = _promotable(tmp_path)
    shutil.copy(INVALID / "core/src/test/resources/flows/invalids/invalid-property.yaml",
                folder / "invalid-property.yaml")
    fake = _kestra_test_server()
    with serve(fake) as url:
        result = run_cli("apply", str(folder), "--url", url, "--username", "admin@kestra.io",
                         "--password", "Admin1234!")
    assert result.code == 1
    assert result.err.splitlines() == [
        '  invalid-property.yaml: io.kestra.tests/duplicate: tasks[0].invalid: '
        'Unrecognized field "invalid"',
        "Error: the target rejected 1 of 205 flow(s); nothing was written",
    ]
    assert fake.writes() == [] and fake.current() == {}

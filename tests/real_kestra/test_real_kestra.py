"""Kestra's own engine, embedded (tests/real_kestra, docs/real-kestra.md), against the fake server.

Every flow this repository holds (flows/, examples/flows/, tests/fixtures/flows/) is validated by
Kestra's FlowService, as its API's flow validation does, and by the fake server's rules, with the
plugins the embedded engine has: the two agree on every flow but the differences recorded below.
Then executions run on the engine (executor, worker, scheduler, indexer) with inputs.

Opt-in: `pytest -m real_kestra`. Needs Maven and a JDK 21+ (Kestra 1.3) or 25+ (Kestra 2.0); the
first build downloads the engine's modules from Maven Central into ~/.m2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from fake_kestra import rules

from real_kestra import harness

pytestmark = pytest.mark.real_kestra

LINES = ("1.3", "2.0")
FLOW_FOLDERS = ("flows", "examples/flows", "tests/fixtures/flows")

# The plugins of the embedded engine: Kestra's core (with the io.kestra.plugin.fs.http aliases of its
# HTTP tasks: core/src/main/java/io/kestra/plugin/core/http/*.java) and the script module.
# plugin-script-python and plugin-git are not served by Maven Central (docs/real-kestra.md).
EMBEDDED_PLUGINS = frozenset(
    kind for kind in rules.DEFAULT_PLUGINS
    if kind.startswith(("io.kestra.plugin.core.", "io.kestra.core.", "io.kestra.plugin.fs.http."))
) | {"io.kestra.plugin.scripts.runner.docker.Docker"}

_DUPLICATE_KEY = ("Kestra's YamlParserTest rejects a duplicate key, but the API's validation "
                  "(FlowService.validate) accepts the flow: the fake rejects it")
_TEMPLATES = ("Kestra rejects the Template task unless kestra.templates.enabled is set (off by "
              "default): the fake accepts it")
_MAX_ATTEMPT = ("2.0.0 knows `maxAttempts` only in a retry (Unrecognized field \"maxAttempt\"): the "
                "fake accepts the old spelling in 2.0 mode")
# Where Kestra's verdict differs from the fake's: path -> what differs.
KNOWN_DIFFERENCES = {
    "1.3": {
        "tests/fixtures/flows/kestra-1.3/invalid/duplicate-key.yaml": _DUPLICATE_KEY,
        "tests/fixtures/flows/kestra-tests/invalid/core/src/test/resources/flows/invalids/"
        "duplicate-key.yaml": _DUPLICATE_KEY,
        "tests/fixtures/flows/kestra-tests/valid/core/src/test/resources/flows/templates/"
        "with-failed-template.yaml": _TEMPLATES,
        "tests/fixtures/flows/kestra-tests/valid/core/src/test/resources/flows/templates/"
        "with-template.yaml": _TEMPLATES,
    },
    "2.0": {
        "tests/fixtures/flows/kestra-2.0/invalid/duplicate-key.yaml": _DUPLICATE_KEY,
        "tests/fixtures/flows/kestra-2.0/valid/flow-trigger-fire-once-true-flow-listen.yaml":
            "2.0.0's trigger window has no `fireOnce` (Unrecognized field): the fake accepts it",
        "tests/fixtures/flows/kestra-2.0/valid/logs.yaml":
            "2.0.0's flow has no `pluginDefaults` (Unrecognized field): the fake accepts it",
        "tests/fixtures/flows/kestra-tests/valid/core/src/test/resources/flows/valids/"
        "retry-failed-flow-attempts.yml": _MAX_ATTEMPT,
        "tests/fixtures/flows/kestra-tests/valid/core/src/test/resources/flows/valids/"
        "retry-new-execution-flow-attempts.yml": _MAX_ATTEMPT,
        "tests/fixtures/flows/kestra-tests/valid/core/src/test/resources/flows/valids/"
        "retry-subflow.yaml": _MAX_ATTEMPT,
    },
}


@pytest.fixture(scope="module", params=LINES)
def engine(request) -> tuple[str, list[str]]:
    """(Kestra line, the command that runs the launcher), built once per line."""
    try:
        return request.param, harness.build(request.param)
    except harness.Unavailable as exc:
        pytest.skip(str(exc))


def _flow_files(line: str) -> list[str]:
    """The repository's flows, relative to its root; each version's fixtures in its own mode."""
    other = "kestra-2.0" if line == "1.3" else "kestra-1.3"
    return sorted(
        path.relative_to(ROOT).as_posix()
        for folder in FLOW_FOLDERS for path in (ROOT / folder).rglob("*")
        if path.suffix in (".yml", ".yaml") and other not in path.parts
    )


# What a task of every type keeps when a core task stands in for it (models/tasks/Task.java)
_TASK_KEYS = frozenset({"id", "description", "runIf", "timeout", "retry", "disabled",
                        "allowFailure", "allowWarning", "logLevel", "workerGroup"})
_NOT_SERVED = ("io.kestra.plugin.scripts.python.", "io.kestra.plugin.git.")
STAND_IN = "stand-in:"


def _stand_in(node):
    """The flow with a Return task in place of each Python or Git task (same id, runIf...)."""
    if isinstance(node, list):
        return [_stand_in(item) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if isinstance(kind, str) and kind.startswith(_NOT_SERVED):
        return {**{k: v for k, v in node.items() if k in _TASK_KEYS},
                "type": "io.kestra.plugin.core.debug.Return", "format": f"in place of {kind}"}
    return {key: _stand_in(value) for key, value in node.items()}


# The rules the fake tells apart by version (tests/test_fake_rules.py), each in a small flow: name ->
# (source, Kestra 1.3.31 accepts it, Kestra 2.0.0 accepts it)
_HEAD = "id: report\nnamespace: company.team\n"
_LOG = "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
_FLOW_TRIGGER = "triggers:\n  - id: after\n    type: io.kestra.plugin.core.trigger.Flow\n"
_UPSTREAM = "- namespace: company.team\n        flowId: etl\n        states: [SUCCESS]\n"
_DEFAULTS = "Defaults:\n  - type: io.kestra.plugin.core.log.Log\n    values:\n      level: WARN\n"
PROBES = {
    "preconditions": (_HEAD + _LOG + _FLOW_TRIGGER + "    preconditions:\n      id: done\n"
                      "      flows:\n        - namespace: company.team\n          flowId: etl\n",
                      True, False),
    "depends-on": (_HEAD + _LOG + _FLOW_TRIGGER + "    dependsOn:\n      " + _UPSTREAM, False, True),
    "when": (_HEAD + _LOG + _FLOW_TRIGGER + "    when: \"{{ true }}\"\n    dependsOn:\n      "
             + _UPSTREAM, False, True),
    "schedule-without-an-optional-input": (
        _HEAD + "inputs:\n  - id: ref\n    type: STRING\n    required: false\n" + _LOG
        + "triggers:\n  - id: hourly\n    type: io.kestra.plugin.core.trigger.Schedule\n"
          "    cron: \"@hourly\"\n", True, True),
    "defaults-not-required": (_HEAD + "inputs:\n  - id: mode\n    type: STRING\n    defaults: plan\n"
                              "    required: false\n" + _LOG, False, False),
    "plugin-defaults": (_HEAD + _LOG + "plugin" + _DEFAULTS, True, False),
    "task-defaults": (_HEAD + _LOG + "task" + _DEFAULTS, True, False),
    "reserved-flow-id": ("id: pause\nnamespace: company\n" + _LOG, False, True),
    "echo": (_HEAD + "tasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Echo\n    format: hi\n",
             True, False),
    "bad-cron": (_HEAD + _LOG + "triggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n"
                 "    cron: \"0 25 * * *\"\n", False, False),
    "typo-in-log": (_HEAD + "tasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
                    "    message: hi\n    levle: WARN\n", False, False),
}
PROBE = "probe:"
# Where the fake's verdict on a probe differs from Kestra's
KNOWN_PROBE_DIFFERENCES = {
    "1.3": set(),
    "2.0": {"schedule-without-an-optional-input",  # the fake wants every input without defaults
            "plugin-defaults"},  # the fake keeps 2.0's flow-level pluginDefaults
}


@pytest.fixture(scope="module")
def verdicts(engine, tmp_path_factory) -> dict[str, dict]:
    """Kestra's verdict on every flow of the repository, on the shipped flows with their Python
    and Git tasks stood in for, and on the probes: path (or stand-in:path, probe:name) -> verdict.
    One launch per line."""
    line, java = engine
    files = _flow_files(line)
    folder = tmp_path_factory.mktemp("stand-ins")
    paths = {file: ROOT / file for file in files}
    for file in (f for f in files if f.startswith("flows/")):
        stood_in = folder / file.replace("/", "_")
        stood_in.write_text(yaml.safe_dump(_stand_in(yaml.safe_load(paths[file].read_text()))))
        paths[STAND_IN + file] = stood_in
    for name, (source, *_) in PROBES.items():
        paths[PROBE + name] = folder / f"probe-{name}.yml"
        paths[PROBE + name].write_text(source)
    answer = harness.launch(java, "validate", *map(str, paths.values()), timeout=600)
    assert [Path(v["file"]) for v in answer] == list(paths.values())
    return dict(zip(paths, answer))


EXAMPLES = ROOT / "examples/flows/dev.company"


@pytest.fixture(scope="module")
def runs(engine) -> dict:
    """One engine, three executions: with inputs, through a subflow, and with an input left out."""
    _, java = engine
    answer = harness.launch(
        java, "run",
        "--flow", str(EXAMPLES / "process_order.yml"), "--flow", str(EXAMPLES / "orders.yml"),
        "--flow", str(ROOT / f"tests/fixtures/flows/kestra-{engine[0]}/invalid/duplicate-key.yaml"),
        "--execute", "dev.company.process_order", "--input", 'order={"id": 7, "amount": 12}',
        "--execute", "dev.company.orders",
        "--execute", "dev.company.process_order")
    assert isinstance(answer, dict)
    return answer


def test_kestras_verdicts_are_the_fakes_but_the_recorded_differences(engine, verdicts):
    line, _ = engine
    differences = {}
    for file, verdict in verdicts.items():
        if file.startswith((STAND_IN, PROBE)):
            continue
        flow, errors = rules.check((ROOT / file).read_text(encoding="utf-8"),
                                   version=line, plugins=EMBEDDED_PLUGINS)
        fake_accepts = flow is not None and not errors
        if fake_accepts != verdict["valid"]:
            differences[file] = (verdict.get("constraints"), [m for _, m in errors])
    print(json.dumps(differences, indent=1))
    assert sorted(differences) == sorted(KNOWN_DIFFERENCES[line])


def test_the_shipped_flows_need_only_the_python_and_git_plugins(verdicts):
    shipped = {file: v for file, v in verdicts.items() if file.startswith("flows/")}  # as written
    assert len(shipped) == 4
    for file, verdict in shipped.items():
        # every shipped flow runs Python or Git tasks: the first type Kestra cannot resolve is
        # one of those two plugins', never a type of Kestra's core
        assert not verdict["valid"], file
        assert any(f"Invalid type: io.kestra.plugin.{kind}" in verdict["constraints"]
                   for kind in ("scripts.python.", "git.")), (file, verdict["constraints"])


def test_the_rules_that_differ_between_the_versions_on_kestra(engine, verdicts):
    line, _ = engine
    accepted = {name: verdicts[PROBE + name]["valid"] for name in PROBES}
    assert accepted == {name: expected[LINES.index(line)]
                        for name, (_, *expected) in PROBES.items()}
    fake = {name: not rules.check(source, version=line)[1] for name, (source, *_) in PROBES.items()}
    assert {name for name in PROBES if fake[name] != accepted[name]} == KNOWN_PROBE_DIFFERENCES[line]


SHIPPED_FOR = {"flows/prod/promote.yml": ("1.3", "2.0"), "flows/prod/promote-check.yml": ("1.3", "2.0"),
               "flows/dev/commit-to-git.yml": ("2.0",), "flows/dev-1.3/commit-to-git.yml": ("1.3",)}


def test_the_shipped_flows_are_valid_on_their_kestra_lines_but_for_the_missing_plugins(engine, verdicts):
    line, _ = engine
    stood_in = {file.removeprefix(STAND_IN): v for file, v in verdicts.items()
                if file.startswith(STAND_IN)}
    assert sorted(stood_in) == sorted(SHIPPED_FOR)
    for file, verdict in stood_in.items():
        if line in SHIPPED_FOR[file]:
            assert verdict["valid"], (file, verdict["constraints"])
        else:
            # the development flow of the other line loops with the task this line lacks
            lacking = "flow.Loop" if line == "1.3" else "flow.ForEach"
            assert verdict["constraints"] == (
                f"Validation error: Invalid type: io.kestra.plugin.core.{lacking}"), file


def test_a_duplicate_key_passes_kestras_validation_but_not_its_flow_creation(verdicts, runs, engine):
    fixture = f"tests/fixtures/flows/kestra-{engine[0]}/invalid/duplicate-key.yaml"
    assert verdicts[fixture]["valid"]
    assert "Duplicate field" in runs["flows"][2]["error"]


def test_a_flow_runs_with_its_inputs_and_logs(runs):
    run = runs["executions"][0]
    assert run["state"] == "SUCCESS"
    assert [(t["taskId"], t["state"]) for t in run["taskRuns"]] == [("log", "SUCCESS")]
    assert [log["message"] for log in run["logs"] if log["taskId"] == "log"] == [
        'Processing order {"id":7,"amount":12}']


def test_a_flow_calls_its_subflow_on_the_engine(runs):
    run = runs["executions"][1]
    assert run["state"] == "SUCCESS"
    assert [(t["taskId"], t["state"]) for t in run["taskRuns"]] == [("process", "SUCCESS")]


def test_a_required_input_left_out_is_refused_before_an_execution_starts(runs):
    assert runs["executions"][2] == {
        "flow": "dev.company.process_order",
        "error": "io.kestra.core.exceptions.InputOutputValidationException: "
                 "Missing required input:order"}

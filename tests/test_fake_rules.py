"""The fake server's flow rules conform to Kestra 1.3 and 2.0: Kestra's own test flows of each version.

Every flow of a version's `valid/` set is accepted in that version's mode and every flow of its
`invalid/` set rejected, with the error Kestra's own tests expect, except the files named below, each
with its reason. Then the rules that differ between the versions, where a promotion meets them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES
from fake_kestra import rules

VERSIONS = ("1.3", "2.0")

# Valid flows that use task or trigger types of Kestra's test suite only (no stock image has them):
# the fake rejects them for that type alone, and accepts them once those types are installed.
TEST_ONLY_TYPES = {
    "additional-plugin.yaml": {"io.kestra.core.plugins.AdditionalPluginTest$AdditionalPluginTestTask"},
    "alias-task.yaml": {"io.kestra.core.runners.test.TaskWithAlias",
                        "io.kestra.core.runners.test.task.Alias"},
    "alias-trigger.yaml": {"io.kestra.core.runners.test.trigger.Alias"},
    "cache.yaml": {"io.kestra.core.runners.TaskCacheTest$CounterTask"},
    "dynamic-task.yaml": {"io.kestra.core.tasks.test.DynamicTask"},
    "encrypted-string.yaml": {"io.kestra.core.tasks.test.Encrypted"},
    "exception-with-output.yaml": {"io.kestra.core.runners.test.TaskThatFail"},
    "executable-fail.yml": {"io.kestra.core.tasks.test.BadExecutable"},
    "flowable-fail.yaml": {"io.kestra.core.tasks.test.BadSequential"},
    "null-output.yaml": {"io.kestra.core.tasks.test.NullOutputTask"},
    "retry-dynamic-task.yaml": {"io.kestra.core.tasks.test.DynamicTask"},
    "webhook-plugin.yaml": {"io.kestra.core.tasks.test.Encrypted",
                            "io.kestra.plugin.core.trigger.WebhookTestPlugin"},
    "workertask-result-too-large.yaml": {"io.kestra.core.runners.test.WorkerTaskResultTooLarge"},
    "working-directory-namespace-files.yaml": {"io.kestra.core.tasks.test.Read"},
    "working-directory-namespace-files-with-namespaces.yaml": {"io.kestra.core.tasks.test.Read"},
    "working-directory-taskrun-encrypted.yml": {"io.kestra.core.tasks.test.Encrypted"},
}
_LOCAL_FILES_2_0 = {"io.kestra.plugin.core.flow.WorkingDirectoryTest$LocalFiles"}
TEST_ONLY_TYPES_2_0 = {
    name: _LOCAL_FILES_2_0 for name in ("working-directory-cache.yml", "working-directory-inputs.yml",
                                        "working-directory-loop.yaml", "working-directory-outputs.yml",
                                        "working-directory.yaml")}
VALID_EXCEPTIONS = {"1.3": TEST_ONLY_TYPES, "2.0": {**TEST_ONLY_TYPES, **TEST_ONLY_TYPES_2_0}}

# Invalid flows that Kestra accepts when they are saved: its tests load them and the failure comes later.
_RUNS_TO_A_FAILURE = "Kestra's RunContextTest executes it: the Switch fails at run time, not at validation"
_INPUT_VALUES = ("Kestra's InputsTest loads it (@LoadFlows): its violations are about the input values "
                 "of an execution, not about the flow")
INVALID_EXCEPTIONS = {
    "1.3": {"foreach-switch-failed.yaml": _RUNS_TO_A_FAILURE,
            "inputs-with-multiple-constraint-violations.yaml": _INPUT_VALUES},
    "2.0": {"loop-switch-failed.yaml": _RUNS_TO_A_FAILURE,
            "inputs-with-multiple-constraint-violations.yaml": _INPUT_VALUES},
}

# What Kestra's own tests (FlowTest, YamlParserTest, FlowValidationTest, DagTest) expect of each
# invalid flow: a part of the message.
_DASHES = "keys with dashes require bracket notation"
EXPECTED_ERROR = {
    "dag-cyclicdependency.yaml": "Cyclic dependency detected: task1, task2",
    "dag-notexist-task.yaml": "Not existing task id in dependency: taskX",
    "duplicate-inputs.yaml": "Duplicate input with name [first_input]",
    "duplicate-key.yaml": "Duplicate field",
    "duplicate-parallel.yaml": "Duplicate task id with name [t3]",
    "duplicate-preconditions.yaml": "Duplicate preconditions with id [flows]",
    "duplicate.yaml": "Duplicate trigger id with name [trigger]",
    "empty.yaml": "must not be empty",
    "if-without-condition.yaml": "must not be null",
    "inputs-bad-type.yaml": "Invalid type: FOO",
    "inputs-bad-validator-syntax.yaml": "invalid pattern [\\]",
    "inputs-key-with-subtraction-symbol-validation.yaml": f"{_DASHES}, offending tasks: [hello]",
    "inputs-validation.yaml": "`itemType` cannot be MULTISELECT",
    "inputs.yaml": "missing type id property 'type'",
    "invalid-parallel.yaml": "must not be empty",
    "invalid-property.yaml": 'Unrecognized field "invalid"',
    "invalid-task.yaml": "Invalid type: io.kestra.plugin.core.debug.MissingTwo",
    "invalid.yaml": "must match",
    "listener.yaml": "must not be empty",
    "outputs-key-with-subtraction-symbol-validation.yaml": f"{_DASHES}, offending outputs: [final]",
    "recursive-flow.yaml": "Recursive call to flow [io.kestra.tests.recursive-flow]",
    "scheduled-missing-inputs-defaults.yaml":
        "Missing inputs for Schedule Trigger 'every_minute', missing inputs: 'user2'",
    "scheduled-missing-inputs-defaults-2.yaml":
        "Missing inputs for Schedule Trigger 'every_minute', missing inputs: 'user2'",
    "switch-invalid.yaml": "No task defined, neither cases or default have any tasks",
    "system-labels.yaml": "offending label: system.label=system_key",
    "workingdirectory-invalid.yaml": "Only runnable tasks are allowed as children of a WorkingDirectory",
    "workingdirectory-no-tasks.yaml": "The 'tasks' property cannot be empty",
}
EXPECTED_ERROR_BY_VERSION = {
    ("1.3", "duplicate.yaml"): "Duplicate task id with name [date, listen]",
    ("2.0", "duplicate.yaml"): "Duplicate task id with name [date]",
}

# The counts these sets give, asserted so that a change in either shows.
EXPECTED_COUNTS = {
    # version: (valid accepted, valid total, invalid rejected, invalid total)
    "1.3": (278, 294, 24, 26),
    "2.0": (282, 303, 25, 27),
}


def _files(version: str, kind: str) -> list[Path]:
    folder = FIXTURES / f"flows/kestra-{version}/{kind}"
    return sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml"))


def _check(path: Path, version: str, plugins: frozenset[str] = rules.DEFAULT_PLUGINS):
    return rules.check(path.read_text(), version=version, plugins=plugins)


def _cases(kind: str) -> list:
    return [pytest.param(version, path, id=f"{version}-{path.name}")
            for version in VERSIONS for path in _files(version, kind)]


@pytest.mark.parametrize("version, path", _cases("valid"))
def test_every_valid_flow_is_accepted(version: str, path: Path):
    test_types = VALID_EXCEPTIONS[version].get(path.name)
    flow, errors = _check(path, version)
    if test_types is None:
        assert flow is not None and errors == []
        return
    # rejected for its test-only types and nothing else; accepted once they are installed
    assert errors and {m.removeprefix("Invalid type: ") for _, m in errors} == test_types
    assert _check(path, version, rules.DEFAULT_PLUGINS | test_types)[1] == []


@pytest.mark.parametrize("version, path", _cases("invalid"))
def test_every_invalid_flow_is_rejected_with_kestras_error(version: str, path: Path):
    flow, errors = _check(path, version)
    if path.name in INVALID_EXCEPTIONS[version]:
        assert errors == []
        return
    assert errors
    expected = EXPECTED_ERROR_BY_VERSION.get((version, path.name), EXPECTED_ERROR[path.name])
    assert any(expected in message for _, message in errors), errors


@pytest.mark.parametrize("version", VERSIONS)
def test_conformance_counts(version: str):
    valid, invalid = _files(version, "valid"), _files(version, "invalid")
    accepted = [p.name for p in valid if _check(p, version)[1] == []]
    rejected = [p.name for p in invalid if _check(p, version)[1]]
    counts = (len(accepted), len(valid), len(rejected), len(invalid))
    print(f"Kestra {version}: valid accepted {counts[0]}/{counts[1]}, "
          f"invalid rejected {counts[2]}/{counts[3]}")
    assert counts == EXPECTED_COUNTS[version]
    assert sorted({p.name for p in valid} - set(accepted)) == sorted(VALID_EXCEPTIONS[version])
    assert sorted({p.name for p in invalid} - set(rejected)) == sorted(INVALID_EXCEPTIONS[version])


# -- the rules that differ between 1.3 and 2.0 ------------------------------------------------------

LOG = "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
HEAD = "id: report\nnamespace: company.team\n"
PRECONDITIONS = HEAD + LOG + """triggers:
  - id: after_etl
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: etl_done
      flows:
        - namespace: company.team
          flowId: etl
          states: [SUCCESS]
"""
DEPENDS_ON = HEAD + LOG + """triggers:
  - id: after_etl
    type: io.kestra.plugin.core.trigger.Flow
    dependsOn:
      - namespace: company.team
        flowId: etl
        states: [SUCCESS]
"""
SCHEDULE_INPUTS = HEAD + """inputs:
  - id: mode
    type: STRING
    defaults: plan
  - id: ref
    type: STRING
    required: false
""" + LOG + """triggers:
  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "@hourly"
    inputs:
      mode: apply
"""
DEFAULTS_NOT_REQUIRED = HEAD + """inputs:
  - id: mode
    type: STRING
    defaults: plan
    required: false
""" + LOG


def _messages(source: str, version: str) -> list[str]:
    flow, errors = rules.check(source, version=version)
    assert flow is not None
    return [f"{path}: {message}" for path, message in errors]


def test_preconditions_are_1_3_and_depends_on_is_2_0():
    assert _messages(PRECONDITIONS, "1.3.4") == []
    assert _messages(PRECONDITIONS, "2.0.3") == [
        'triggers[0].preconditions: Unrecognized field "preconditions"']
    assert _messages(DEPENDS_ON, "2.0.3") == []
    assert _messages(DEPENDS_ON, "1.3.4") == ['triggers[0].dependsOn: Unrecognized field "dependsOn"']


def test_every_schedule_gives_the_inputs_without_defaults_on_2_0_only():
    assert _messages(SCHEDULE_INPUTS, "1.3.19") == []
    assert _messages(SCHEDULE_INPUTS, "2.0.0") == [
        "triggers[0].inputs: Missing inputs for Schedule Trigger 'hourly', missing inputs: 'ref'"]
    given = SCHEDULE_INPUTS.replace("      mode: apply\n", "      mode: apply\n      ref: main\n")
    assert _messages(given, "2.0.0") == []


def test_an_input_with_defaults_must_stay_required_on_both():
    expected = ["inputs[0]: Inputs with a default value must be required, since the default is "
                "always applied."]
    assert _messages(DEFAULTS_NOT_REQUIRED, "1.3.4") == expected
    assert _messages(DEFAULTS_NOT_REQUIRED, "2.0.3") == expected
    assert _messages(DEFAULTS_NOT_REQUIRED.replace("    required: false\n", ""), "2.0.3") == []


def test_trigger_conditions_and_when_belong_to_one_version_each():
    conditions = DEPENDS_ON.replace("    dependsOn:", "    conditions:\n      - type: "
                                    "io.kestra.plugin.core.condition.ExecutionFlow\n"
                                    "        namespace: company.team\n        flowId: etl\n"
                                    "    dependsOn:")
    assert 'triggers[0].conditions: Unrecognized field "conditions"' in _messages(conditions, "2.0")
    one_three = conditions.replace("    dependsOn:\n      - namespace: company.team\n"
                                   "        flowId: etl\n        states: [SUCCESS]\n", "")
    assert _messages(one_three, "1.3") == []
    when = DEPENDS_ON.replace("    dependsOn:", "    when: \"{{ true }}\"\n    dependsOn:")
    assert _messages(when, "2.0") == []
    assert 'triggers[0].when: Unrecognized field "when"' in _messages(when, "1.3")


def test_a_typo_in_a_property_of_the_shipped_task_types_is_caught():
    cases = {
        "io.kestra.plugin.core.trigger.Schedule": 'cron: "@daily"\n    recoverMissedSchedule: NONE',
        "io.kestra.plugin.core.trigger.Webhook": "key: abc\n    returnOutput: true",
    }
    for kind, body in cases.items():
        source = HEAD + LOG + f"triggers:\n  - id: t\n    type: {kind}\n    {body}\n"
        for version in VERSIONS:
            assert any("Unrecognized field" in m for m in _messages(source, version)), (kind, version)
    tasks = {
        "io.kestra.plugin.scripts.python.Commands": "commands: [python3 x.py]\n    warningOnStdErrr: false",
        "io.kestra.plugin.git.Clone": "url: https://example.com/r.git\n    brnach: main",
        "io.kestra.plugin.git.PushFlows": "url: https://example.com/r.git\n    gitDirectroy: flows",
        "io.kestra.plugin.git.PushNamespaceFiles": "url: https://example.com/r.git\n    file: '**'",
        "io.kestra.plugin.core.flow.Subflow": "namespace: a\n    flowId: b\n    wiat: true",
        "io.kestra.plugin.core.flow.Pause": "pauseDurration: PT1M",
        "io.kestra.plugin.core.log.Log": "message: hi\n    levle: WARN",
    }
    for kind, body in tasks.items():
        source = HEAD + f"tasks:\n  - id: t\n    type: {kind}\n    {body}\n"
        for version in VERSIONS:
            messages = _messages(source, version)
            assert len(messages) == 1 and "Unrecognized field" in messages[0], (kind, version, messages)


def test_python_and_git_properties_of_both_versions():
    python = HEAD + ("tasks:\n  - id: t\n    type: io.kestra.plugin.scripts.python.Commands\n"
                     "    commands: [python3 x.py]\n    warningOnStdErr: false\n"
                     "    dependencies: [httpx]\n    dependencyCacheEnabled: true\n")
    clone = HEAD + ("tasks:\n  - id: t\n    type: io.kestra.plugin.git.Clone\n"
                    "    url: https://example.com/r.git\n    tag: v1\n    commit: abc123\n")
    for version in VERSIONS:
        assert _messages(python, version) == []
        assert _messages(clone, version) == []


def test_plugin_defaults_are_kept_in_2_0_without_forced():
    defaults = HEAD + LOG + ("pluginDefaults:\n  - type: io.kestra.plugin.core.log.Log\n"
                             "    forced: true\n    values:\n      level: WARN\n")
    assert _messages(defaults, "1.3") == []
    assert _messages(defaults, "2.0") == ['pluginDefaults[0].forced: Unrecognized field "forced"']
    assert _messages(defaults.replace("    forced: true\n", ""), "2.0") == []
    unknown = defaults.replace("      level: WARN", "      colour: red")
    assert "pluginDefaults[0]: Invalid Plugin Default: No property 'colour' exists in plugin " \
           "'io.kestra.plugin.core.log.Log'" in _messages(unknown, "1.3")


def test_the_types_2_0_removed_are_invalid_there():
    for kind in ("io.kestra.plugin.core.flow.ForEach", "io.kestra.plugin.core.debug.Echo",
                 "io.kestra.core.tasks.log.Log"):
        source = HEAD + f"tasks:\n  - id: t\n    type: {kind}\n    values: [1]\n    tasks: []\n"
        assert f"tasks[0].type: Invalid type: {kind}" in _messages(source, "2.0"), kind
    condition = PRECONDITIONS.replace(
        "    preconditions:", "    conditions:\n      - type: io.kestra.plugin.core.condition."
        "ExecutionNamespace\n        namespace: company\n    preconditions:")
    assert _messages(condition, "1.3") == []
    assert 'triggers[0].conditions: Unrecognized field "conditions"' in _messages(condition, "2.0")


def test_the_schedule_cron_and_timezone_are_checked():
    schedule = HEAD + LOG + ("triggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n"
                             "    cron: \"{cron}\"\n    timezone: {zone}\n")
    for version in VERSIONS:
        assert _messages(schedule.format(cron="0 7 * * MON-FRI", zone="Europe/Paris"), version) == []
        assert _messages(schedule.format(cron="*/15 0-23 1,15 JAN *", zone="+02:00"), version) == []
        assert any("invalid cron expression" in m for m in
                   _messages(schedule.format(cron="0 25 * * *", zone="UTC"), version))
        assert any("invalid cron expression" in m for m in
                   _messages(schedule.format(cron="0 7 * *", zone="UTC"), version))
        assert any("is not a valid time-zone ID" in m for m in
                   _messages(schedule.format(cron="@daily", zone="Mars/Olympus"), version))


def test_flow_ids_reserved_on_1_3_only():
    source = "id: pause\nnamespace: company\n" + LOG
    assert any("Flow id is a reserved keyword: pause" in m for m in _messages(source, "1.3"))
    assert _messages(source, "2.0") == []

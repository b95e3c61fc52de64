"""The default check: no promoted flow writes into the promotion's namespace (or one whose name
starts with it), starts, resumes or listens to flows there, or reads the promotion's secrets. On
without a policy; a policy can seal more namespaces, never fewer."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import ROOT, GitRepo, Target, flow_yaml, run_cli
from kestra_promote.errors import SettingsError
from kestra_promote.gates.checks import (
    DEFAULT_CHECK, Violation, default_checks, describe, evaluate, parse_checks,
)
from kestra_promote.gates.sealed_namespace import reaches
from kestra_promote.models import DesiredFlow, FlowKey


def _flow(text: str, path: str = "flows/f.yaml") -> DesiredFlow:
    root = yaml.safe_load(text)
    return DesiredFlow(FlowKey(root["namespace"], root["id"]), text, path)


def _default(text: str, namespace: str = "system") -> tuple[Violation, ...]:
    return evaluate(default_checks(namespace), [_flow(text)], source_name="main", changes=0)


def _task(kind: str, props: str = "", namespace: str = "company.team") -> str:
    body = "".join(f"    {line}\n" for line in props.splitlines())
    return (f"id: f\nnamespace: {namespace}\ntasks:\n  - id: t\n    type: {kind}\n{body}")


def _line_of(text: str, fragment: str) -> int:
    found = [n for n, line in enumerate(text.splitlines(), 1) if fragment in line]
    assert len(found) == 1, (fragment, found)
    return found[0]


KV = "io.kestra.plugin.core.kv."
NS = "io.kestra.plugin.core.namespace."


@pytest.mark.parametrize(("kind", "props"), [
    (KV + "Set", "key: promote_repo_url\nvalue: https://evil.example/flows.git\nnamespace: system"),
    (KV + "Put", "key: k\nvalue: v\nnamespace: system.x"),
    (KV + "Delete", "key: kestra_promote_policy\nnamespace: systemops"),
    (NS + "UploadFiles", "namespace: system\nfilesMap:\n  kestra_promote/__init__.py: x"),
    (NS + "DeleteFiles", "namespace: system\nfiles: ['**']"),
    ("io.kestra.plugin.core.flow.Subflow", "namespace: system\nflowId: promote"),
    ("io.kestra.core.tasks.flows.Subflow", "namespace: system\nflowId: promote"),
    ("io.kestra.core.tasks.flows.Flow", "namespace: system\nflowId: promote"),
    ("io.kestra.plugin.core.flow.ForEachItem", "namespace: system\nflowId: promote\nitems: x"),
    ("io.kestra.plugin.core.trigger.Toggle", "namespace: system\nflowId: promote\ntrigger: t"),
    ("io.kestra.plugin.core.execution.Resume", "namespace: system\nflowId: promote"),
])
def test_tasks_acting_on_the_promotion_namespace_are_refused(kind: str, props: str):
    text = _task(kind, props)
    [violation] = _default(text)
    assert violation.check == DEFAULT_CHECK and violation.rule == "sealed_namespaces"
    assert violation.flow == FlowKey("company.team", "f")
    assert violation.path == "flows/f.yaml"
    assert violation.line == _line_of(text, "namespace: sys")
    assert f"task 't' ({kind})" in violation.message and "sealed" in violation.message


def test_the_message_names_rule_flow_file_and_line():
    text = _task(KV + "Set", "key: promote_repo_url\nvalue: x\nnamespace: systemops")
    assert str(_default(text)[0]) == (
        "flows/f.yaml:8: company.team/f: [sealed promotion namespace] task 't' "
        "(io.kestra.plugin.core.kv.Set) writes the KV store of 'systemops', sealed: its name "
        "starts with 'system'")


@pytest.mark.parametrize("kind", [KV + "Set", KV + "Delete", NS + "UploadFiles",
                                  "io.kestra.plugin.core.trigger.Toggle"])
def test_without_a_namespace_the_task_acts_on_its_flows_own(kind: str):
    assert _default(_task(kind, "key: k\nvalue: v", namespace="system.team"))
    assert _default(_task(kind, "key: k\nvalue: v", namespace="company")) == ()


@pytest.mark.parametrize("value", ["'{{ flow.namespace }}'", "'{{flow.namespace}}.x'"])
def test_the_flows_namespace_written_as_an_expression_is_known(value: str):
    assert _default(_task(KV + "Set", f"key: k\nvalue: v\nnamespace: {value}",
                          namespace="system"))
    assert _default(_task(KV + "Set", f"key: k\nvalue: v\nnamespace: {value}")) == ()


@pytest.mark.parametrize("value", ["'{{ inputs.ns }}'", "'sys{{ inputs.x }}'",
                                   "'system.{{ inputs.x }}'"])
def test_a_namespace_computed_at_run_time_cannot_be_checked(value: str):
    [violation] = _default(_task(KV + "Set", f"key: k\nvalue: v\nnamespace: {value}"))
    assert "given by an expression, which cannot be checked" in violation.message


@pytest.mark.parametrize("kind", [KV + "Set", "io.kestra.plugin.core.flow.Subflow"])
def test_a_computed_namespace_that_cannot_be_sealed_passes(kind: str):
    # whatever the expression gives, the name starts with "company.": never a sealed one
    props = "key: k\nvalue: v\nflowId: x\nnamespace: 'company.{{ inputs.team }}'"
    assert _default(_task(kind, props)) == ()


def test_other_namespaces_and_other_tasks_pass():
    text = _task(KV + "Set", "key: k\nvalue: v\nnamespace: company.sys")
    assert _default(text) == ()
    assert _default(_task("io.kestra.plugin.core.flow.Subflow",
                          "namespace: company.team\nflowId: child")) == ()
    assert _default(flow_yaml("company", "plain")) == ()
    # reading the promotion's KV is no write (and kv() reads are everywhere)
    assert _default(_task(KV + "Get", "key: promote_branch\nnamespace: system")) == ()


@pytest.mark.parametrize(("props", "refused"), [
    ("", True),  # every namespace
    ("namespaces: [company]", False),
    ("namespaces: [sys]", True),  # children by name prefix: system among them
    ("namespaces: [sys]\nincludeChildNamespaces: false", False),
    ("namespaces: [system.team]\nincludeChildNamespaces: false", True),
    ("namespacePattern: 'comp*'", False),
    ("namespacePattern: 's*'", True),
    ("namespacePattern: '*ops'", True),  # systemops
    ("namespacePattern: 'sy?tem'", True),
    ("namespacePattern: 'syx*'", False),
    ("namespaces: ['{{ inputs.ns }}']", True),
])
@pytest.mark.parametrize("kind", [KV + "PurgeKV", NS + "PurgeFiles"])
def test_purges(kind: str, props: str, refused: bool):
    assert bool(_default(_task(kind, props))) is refused


@pytest.mark.parametrize(("pattern", "prefix", "expected"), [
    ("*", "system", True), ("system", "system", True), ("systemx", "system", True),
    ("syst", "system", False), ("s?s*", "system", True), ("a*", "system", False),
    ("*.team", "system", True), ("", "system", False),
])
def test_a_glob_reaching_names_starting_with_a_prefix(pattern: str, prefix: str, expected: bool):
    assert reaches(pattern, prefix) is expected


def test_resuming_an_execution_by_id_is_refused_anywhere():
    [violation] = _default(_task("io.kestra.plugin.core.execution.Resume",
                                 "executionId: '{{ trigger.executionId }}'"))
    assert "Kestra finds by id alone" in violation.message
    assert _default(_task("io.kestra.plugin.core.execution.Resume")) == ()  # its own execution


FLOW_TRIGGER_2_0 = """\
id: listener
namespace: company.team
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: heard
triggers:
  - id: after
    type: io.kestra.plugin.core.trigger.Flow
    dependsOn:
      - namespace: system
        flowId: promote
"""
FLOW_TRIGGER_1_3 = """\
id: listener
namespace: company.team
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: heard
triggers:
  - id: after
    type: io.kestra.core.models.triggers.types.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionNamespace
        namespace: sys
        prefix: true
"""


@pytest.mark.parametrize("text", [FLOW_TRIGGER_2_0, FLOW_TRIGGER_1_3])
def test_a_flow_trigger_on_the_promotions_executions_is_refused(text: str):
    [violation] = _default(text)
    assert violation.line == _line_of(text, "namespace: sys")
    assert "trigger 'after'" in violation.message
    assert _default(text.replace("namespace: sys", "namespace: company")) == ()


NESTED = """\
id: nested
namespace: company.team
tasks:
  - id: branch
    type: io.kestra.plugin.core.flow.If
    condition: "{{ true }}"
    then:
      - id: ok
        type: io.kestra.plugin.core.log.Log
        message: fine
errors:
  - id: reset
    type: io.kestra.plugin.core.kv.Delete
    key: kestra_promote_policy
    namespace: system
"""


def test_tasks_at_any_depth_and_in_error_handlers():
    [violation] = _default(NESTED)
    assert violation.line == _line_of(NESTED, "namespace: system")


def test_plugin_defaults_that_point_a_task_type_at_the_promotion_namespace():
    text = _task(KV + "Set", "key: k\nvalue: v") + (
        "pluginDefaults:\n  - type: io.kestra.plugin.core.kv\n    values:\n"
        "      namespace: system\n")
    [violation] = _default(text)
    assert "pluginDefaults for 'io.kestra.plugin.core.kv'" in violation.message


@pytest.mark.parametrize("expression", [
    "{{ secret('KESTRA_PROMOTE_PASSWORD') }}",
    "{{ secret(\"kestra_promote_git_token\") }}",  # Kestra looks secrets up without case
    "{{ secret(key='KESTRA_PROMOTE_USERNAME') }}",
    "Bearer {{ secret('KESTRA_PROMOTE_REVIEW_TOKEN', namespace='system') }}",
    "$SECRET_KESTRA_PROMOTE_PASSWORD",  # the server's environment, which scripts inherit
])
def test_reading_the_promotions_secrets_is_refused(expression: str):
    text = _task("io.kestra.plugin.scripts.shell.Commands",
                 f"env:\n  X: \"{expression.replace(chr(34), chr(92) + chr(34))}\"\n"
                 "commands: [echo]")
    [violation] = _default(text)
    assert violation.line == _line_of(text, "X:")
    assert "promotion's own credentials" in violation.message or \
        "promotion's own" in violation.message


def test_other_secrets_pass_and_computed_names_cannot_be_checked():
    fine = _task("io.kestra.plugin.core.log.Log", "message: \"{{ secret('API_TOKEN') }}\"")
    assert _default(fine) == ()
    computed = _task("io.kestra.plugin.core.log.Log",
                     "message: \"{{ secret('KESTRA_' ~ 'PROMOTE_PASSWORD') }}\"")
    [violation] = _default(computed)
    assert "secret named by an expression" in violation.message


def test_the_check_follows_the_promotion_namespace():
    text = _task(KV + "Set", "key: k\nvalue: v\nnamespace: ops.promotion")
    assert _default(text, "ops.promotion") and _default(text) == ()


# -- the policy can seal more, never less -------------------------------------------------------

def test_a_policy_seals_more_namespaces_and_secrets():
    checks = parse_checks([{"rule": "sealed_namespaces", "protect": ["company.core"],
                            "secrets": ["CORE_"]}])
    text = _task(KV + "Set", "key: k\nvalue: \"{{ secret('CORE_DB') }}\"\nnamespace: company.core")
    found = evaluate(checks, [_flow(text)], source_name="main", changes=0)
    assert [v.check for v in found] == ["sealed_namespaces #1"] * 2
    assert describe(checks)[0]["summary"] == (
        "flows may not write into, start or resume flows in, or listen to company.core (nor "
        "namespaces whose names start with them), nor read the secrets CORE_*")


@pytest.mark.parametrize(("item", "problem"), [
    ({"rule": "sealed_namespaces"}, "'protect' is missing"),
    ({"rule": "sealed_namespaces", "protect": ["company.*"]}, "'protect'"),
    ({"rule": "sealed_namespaces", "protect": ["a"], "secrets": ["BAD-NAME"]}, "'secrets'"),
    ({"rule": "sealed_namespaces", "protect": ["a"], "namespaces": ["b"]},
     "unknown key 'namespaces'"),
    ({"rule": "sealed_namespaces", "protect": ["a"], "enabled": False}, "unknown key 'enabled'"),
])
def test_a_sealed_namespaces_check_is_read_strictly(item: dict, problem: str):
    with pytest.raises(SettingsError) as caught:
        parse_checks([item])
    assert problem in str(caught.value)


# -- in a promotion -------------------------------------------------------------------------------

WRITER = """\
id: writer
namespace: company.team
tasks:
  - id: repoint
    type: io.kestra.plugin.core.kv.Set
    key: promote_repo_url
    value: https://git.example.com/attacker/flows.git
    namespace: system
"""


@pytest.mark.fake_only
def test_the_default_check_refuses_a_plan_without_any_policy(repo: GitRepo, target: Target):
    repo.write("kestra-promote.yml", "name: team\n")
    repo.write("flows/writer.yml", WRITER)
    repo.commit("repoint production's promotion")
    assert target.fake is not None
    result = run_cli("apply", str(repo.path), env=target.env)
    assert result.code != 0
    assert ("flows/writer.yml:8: company.team/writer: [sealed promotion namespace] task "
            "'repoint' (io.kestra.plugin.core.kv.Set) writes the KV store of 'system', sealed"
            ) in result.out + result.err
    assert target.fake.writes() == []


@pytest.mark.fake_only
def test_the_promotions_own_flows_are_refused_from_a_repository(repo: GitRepo, target: Target):
    # bootstrap installs them (its own configuration, from the installed project); a repository
    # carrying a copy of them is refused: they read the promotion's secrets
    repo.write("kestra-promote.yml", "name: team\n")
    repo.write("flows/promote.yml", (ROOT / "flows/prod/promote.yml").read_text())
    repo.commit("a copy of the promote flow")
    result = run_cli("plan", str(repo.path), env=target.env)
    assert "[sealed promotion namespace]" in result.out
    assert "reads the secret 'KESTRA_PROMOTE_GIT_USERNAME'" in result.out


@pytest.mark.fake_only
def test_bootstrap_installs_the_promotions_own_flows(target: Target):
    assert target.fake is not None
    result = run_cli("bootstrap", env=target.env)
    assert result.code == 0, result.err
    assert ("system", "promote") in target.fake.current()


def test_every_flow_of_the_project_fails_the_check_only_as_the_promotion_itself():
    # what bootstrap installs would be refused as a promoted flow: that is why it has its own
    # configuration and never goes through a promotion
    flows = [_flow(p.read_text(), str(p.relative_to(ROOT))) for p in
             sorted(Path(ROOT / "flows").glob("*/*.yml"))]
    found = evaluate(default_checks("system"), flows, source_name="main", changes=0)
    assert {v.flow for v in found} == {f.key for f in flows}


def test_the_documented_sealed_namespaces_examples_read():
    for page in ("checks.md", "policy.md"):
        text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        blocks = [b for b in text.split("```yaml\n")[1:] if "sealed_namespaces" in b.split("```")[0]]
        assert blocks, page
        for block in blocks:
            policy = yaml.safe_load(block.split("```")[0])
            parsed = parse_checks(policy["checks"])
            assert any(c.rule == "sealed_namespaces" and "company.core" in c.protect
                       for c in parsed), page

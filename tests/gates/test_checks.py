"""Production's checks: parsing the policy's list, each rule on flows that pass and fail, where a
violation points, and Kestra's own flows going through every rule."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURES, ROOT
from kestra_promote import yamlnodes
from kestra_promote.errors import SettingsError
from kestra_promote.gates.checks import Check, Violation, describe, evaluate, parse_checks
from kestra_promote.gates.credentials import is_clear_text, is_credential_key
from kestra_promote.models import DesiredFlow, FlowKey


def _flow(text: str, path: str = "flows/f.yaml") -> DesiredFlow:
    root = yaml.safe_load(text)
    return DesiredFlow(FlowKey(root["namespace"], root["id"]), text, path)


def _run(rules: list[dict], *flows: DesiredFlow, source: str = "main",
         changes: int = 0) -> tuple[Violation, ...]:
    return evaluate(parse_checks(rules), flows, source_name=source, changes=changes)


def _lines(violations: tuple[Violation, ...]) -> list[int | None]:
    return [v.line for v in violations]


def _line_of(text: str, fragment: str) -> int:
    """The 1-based line of the only line of ``text`` holding ``fragment``."""
    found = [n for n, line in enumerate(text.splitlines(), 1) if fragment in line]
    assert len(found) == 1, (fragment, found)
    return found[0]


# -- required_label ----------------------------------------------------------------------------

LABELLED_MAP = """\
id: billing
namespace: company.finance
labels:
  team: data-eng
  env: prod
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
"""

LABELLED_LIST = """\
id: billing
namespace: company.finance
labels:
  - key: env
    value: prod
  - key: team
    value: Data Eng
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
"""

UNLABELLED = """\
# a comment first
id: billing
namespace: company.finance
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


@pytest.mark.parametrize("text", [LABELLED_MAP, LABELLED_LIST])
def test_a_required_label_present_in_either_form_passes(text: str):
    assert _run([{"rule": "required_label", "key": "team"}], _flow(text)) == ()
    assert _run([{"rule": "required_label", "key": "env", "value": "prod|staging"}],
                _flow(text)) == ()


@pytest.mark.parametrize("text", [LABELLED_MAP, LABELLED_LIST])
def test_a_missing_label_points_at_the_labels(text: str):
    [violation] = _run([{"name": "owner", "rule": "required_label", "key": "owner"}], _flow(text))
    assert (violation.check, violation.rule) == ("owner", "required_label")
    assert (violation.flow, violation.path, violation.line) == (
        FlowKey("company.finance", "billing"), "flows/f.yaml", 3)
    assert violation.message == "the label 'owner' is missing"


def test_a_flow_without_labels_is_pointed_at_from_its_first_key():
    [violation] = _run([{"rule": "required_label", "key": "team"}], _flow(UNLABELLED))
    assert violation.line == 2
    assert violation.check == "required_label #1"


def test_a_label_value_must_match_whole():
    rules = [{"rule": "required_label", "key": "team", "value": "[a-z]+(-[a-z]+)*"}]
    assert _run(rules, _flow(LABELLED_MAP)) == ()
    [violation] = _run(rules, _flow(LABELLED_LIST))  # "Data Eng"
    assert violation.line == _line_of(LABELLED_LIST, "Data Eng")
    assert violation.message == ("the label 'team' is 'Data Eng', which does not match "
                                 "'[a-z]+(-[a-z]+)*'")
    # a match at the start is not enough
    [violation] = _run([{"rule": "required_label", "key": "team", "value": "data"}],
                       _flow(LABELLED_MAP))
    assert violation.line == 4


def test_a_label_without_value_fails_a_value_pattern():
    text = LABELLED_LIST.replace("    value: Data Eng\n", "")
    [violation] = _run([{"rule": "required_label", "key": "team", "value": ".*"}], _flow(text))
    assert violation.line == _line_of(text, "key: team")
    assert "has no value" in violation.message


def test_a_required_label_applies_only_to_its_namespaces():
    rules = [{"rule": "required_label", "key": "owner", "namespaces": ["company.sales"]}]
    assert _run(rules, _flow(LABELLED_MAP)) == ()
    rules = [{"rule": "required_label", "key": "owner", "namespaces": "company"}]
    assert len(_run(rules, _flow(LABELLED_MAP))) == 1  # company covers company.finance


# -- task_types and trigger_types --------------------------------------------------------------

NESTED = """\
id: nested
namespace: company.ops
inputs:
  - id: name
    type: STRING
variables:
  fake: {id: x, type: io.kestra.plugin.scripts.shell.Commands}
pluginDefaults:
  - type: io.kestra.plugin.scripts.shell.Commands
    values: {containerImage: ubuntu}
tasks:
  - id: check
    type: io.kestra.plugin.core.flow.If
    condition: "{{ inputs.name == 'x' }}"
    then:
      - id: parallel
        type: io.kestra.plugin.core.flow.Parallel
        tasks:
          - id: shell
            type: io.kestra.plugin.scripts.shell.Commands
            commands: [echo hi]
          - id: dag
            type: io.kestra.plugin.core.flow.Dag
            tasks:
              - task:
                  id: in-dag
                  type: io.kestra.plugin.scripts.python.Script
                  script: print(1)
    else:
      - id: switch
        type: io.kestra.plugin.core.flow.Switch
        value: a
        cases:
          a:
            - id: in-case
              type: io.kestra.plugin.scripts.shell.Script
              script: echo
    errors:
      - id: on-error
        type: io.kestra.plugin.scripts.shell.Commands
        commands: [echo error]
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: answer
        type: STRING
errors:
  - id: alert
    type: io.kestra.plugin.core.log.Log
    message: failed
finally:
  - id: cleanup
    type: io.kestra.plugin.core.log.Log
    message: done
afterExecution:
  - id: after
    type: io.kestra.plugin.scripts.node.Script
    script: ""
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 2 * * *"
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: "{{ secret('HOOK_KEY') }}"
"""


def test_denied_task_types_are_found_at_any_depth():
    violations = _run([{"name": "no shell", "rule": "task_types",
                        "deny": ["io.kestra.plugin.scripts.shell.*"]}], _flow(NESTED))
    assert _lines(violations) == [_line_of(NESTED, f"- id: {task}") + 1
                                  for task in ("shell", "in-case", "on-error")]
    assert [v.message for v in violations] == [
        "task 'shell' has the type 'io.kestra.plugin.scripts.shell.Commands', denied by "
        "'io.kestra.plugin.scripts.shell.*'",
        "task 'in-case' has the type 'io.kestra.plugin.scripts.shell.Script', denied by "
        "'io.kestra.plugin.scripts.shell.*'",
        "task 'on-error' has the type 'io.kestra.plugin.scripts.shell.Commands', denied by "
        "'io.kestra.plugin.scripts.shell.*'",
    ]
    assert {(v.check, v.rule, v.flow, v.path) for v in violations} == {
        ("no shell", "task_types", FlowKey("company.ops", "nested"), "flows/f.yaml")}


def test_every_task_counts_and_nothing_else():
    # deny everything: one violation per task, at its type
    violations = _run([{"rule": "task_types", "deny": ["*"]}], _flow(NESTED))
    named = [re.match(r"task '([^']+)'", v.message).group(1) for v in violations]
    assert named == ["check", "parallel", "shell", "dag", "in-dag", "switch", "in-case",
                     "on-error", "pause", "alert", "cleanup", "after"]
    lines = _lines(violations)
    assert all(NESTED.splitlines()[line - 1].lstrip().startswith("type: io.kestra.plugin.")
               for line in lines)


def test_allowed_task_types():
    allow = [{"rule": "task_types", "allow": ["io.kestra.plugin.core.*"]}]
    violations = _run(allow, _flow(NESTED))
    assert [re.match(r"task '([^']+)'", v.message).group(1) for v in violations] == [
        "shell", "in-dag", "in-case", "on-error", "after"]
    assert violations[0].message == ("task 'shell' has the type "
                                     "'io.kestra.plugin.scripts.shell.Commands', which is not "
                                     "among the allowed types")
    both = [{"rule": "task_types", "allow": ["io.kestra.plugin.*"],
             "deny": ["io.kestra.plugin.scripts.python.*", "*.node.Scrip?"]}]
    assert [v.line for v in _run(both, _flow(NESTED))] == [
        _line_of(NESTED, "python.Script"), _line_of(NESTED, "node.Script")]
    assert _run([{"rule": "task_types", "allow": ["io.kestra.*"]}], _flow(NESTED)) == ()


def test_task_types_apply_only_to_their_namespaces():
    rules = [{"rule": "task_types", "deny": ["*"], "namespaces": ["company.finance"]}]
    assert _run(rules, _flow(NESTED)) == ()


def test_trigger_types():
    [violation] = _run([{"rule": "trigger_types", "deny": ["*.Webhook"]}], _flow(NESTED))
    assert violation.line == _line_of(NESTED, "trigger.Webhook")
    assert violation.message == ("trigger 'hook' has the type "
                                 "'io.kestra.plugin.core.trigger.Webhook', denied by '*.Webhook'")
    [violation] = _run([{"rule": "trigger_types", "allow": ["io.kestra.plugin.core.trigger.Sch*"]}],
                       _flow(NESTED))
    assert violation.rule == "trigger_types" and "'hook'" in violation.message
    assert _run([{"rule": "trigger_types", "deny": ["*.Flow"]}], _flow(NESTED)) == ()
    # tasks are not triggers, and triggers are not tasks
    assert _run([{"rule": "trigger_types", "deny": ["*.Log"]},
                 {"rule": "task_types", "deny": ["*.Schedule"]}], _flow(NESTED)) == ()


# -- namespaces and max_changes ----------------------------------------------------------------

def test_namespaces_flows_may_be_written_to():
    rules = [{"name": "teams", "rule": "namespaces", "allow": ["company.finance", "sandbox.*"]}]
    assert _run(rules, _flow(LABELLED_MAP)) == ()
    [violation] = _run(rules, _flow(NESTED, "ops/nested.yaml"))
    assert (violation.check, violation.rule, violation.flow, violation.path, violation.line) == (
        "teams", "namespaces", FlowKey("company.ops", "nested"), "ops/nested.yaml", 2)
    assert violation.message == ("flows may not be written to the namespace 'company.ops'; "
                                 "allowed: company.finance, sandbox.*")


def test_a_namespaces_check_applies_to_its_sources_only():
    rules = [{"rule": "namespaces", "allow": ["sandbox"], "sources": ["experiments"]}]
    assert _run(rules, _flow(NESTED), source="main") == ()
    assert len(_run(rules, _flow(NESTED), source="experiments")) == 1


def test_max_changes():
    rules = [{"name": "small runs", "rule": "max_changes", "max": 3}]
    assert _run(rules, changes=3) == ()
    [violation] = _run(rules, changes=4)
    assert (violation.flow, violation.path, violation.line) == (None, None, None)
    assert str(violation) == ("[small runs] 4 changes (creations, updates and deletions) in one "
                              "run; this policy allows at most 3")
    assert _run([{"rule": "max_changes", "max": 0}], changes=1)[0].rule == "max_changes"


# -- triggers_disabled -------------------------------------------------------------------------

TRIGGERED = """\
id: sync
namespace: staging.crm
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: off
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "@daily"
    disabled: true
  - id: on
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "@hourly"
  - id: explicit
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "@hourly"
    disabled: false
"""


def test_triggers_must_be_disabled_in_the_namespaces_named():
    rules = [{"name": "staging is manual", "rule": "triggers_disabled", "namespaces": ["staging"]}]
    violations = _run(rules, _flow(TRIGGERED))
    assert _lines(violations) == [_line_of(TRIGGERED, "- id: on"),
                                  _line_of(TRIGGERED, "disabled: false")]
    assert violations[0].message.startswith("trigger 'on' is not disabled")
    assert _run([{"rule": "triggers_disabled", "namespaces": ["prod"]}], _flow(TRIGGERED)) == ()
    # a flow without triggers passes; so does one whose triggers are all disabled
    assert _run(rules, _flow(LABELLED_MAP.replace("company.finance", "staging"))) == ()
    all_off = TRIGGERED.replace('"@hourly"\n', '"@hourly"\n    disabled: true\n', 1) \
        .replace("disabled: false", "disabled: true")
    assert _run(rules, _flow(all_off)) == ()


# -- no_clear_credentials ----------------------------------------------------------------------

CREDENTIALS = """\
id: load
namespace: company.data
tasks:
  - id: query
    type: io.kestra.plugin.jdbc.postgresql.Query
    url: jdbc:postgresql://db:5432/app
    username: loader
    password: "{{ secret('DB_PASSWORD') }}"
  - id: literal
    type: io.kestra.plugin.jdbc.postgresql.Query
    username: loader
    password: hunter2
  - id: call
    type: io.kestra.plugin.core.http.Request
    uri: https://api.example.com
    headers:
      Authorization: "Bearer {{ secret('API_TOKEN') }}"
      X-Api-Key: abc123
  - id: shell
    type: io.kestra.plugin.scripts.shell.Commands
    env:
      AWS_SECRET_ACCESS_KEY: "{{ kv('AWS_SECRET') }}"
      GITHUB_TOKEN: "{{ envs.github_token }}"
      SERVICE_TOKEN: "{{ inputs.token }}"
      SESSION_TOKEN: "{{ outputs.login.body }}"
      QUOTED_TOKEN: "{{ 'not-really-hidden' }}"
      VERIFY_TOKEN: true
      EMPTY_PASSWORD: ""
    commands:
      - echo run
  - id: ssh
    type: io.kestra.plugin.fs.ssh.Command
    privateKey: |
      -----BEGIN OPENSSH PRIVATE KEY-----
      b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
      -----END OPENSSH PRIVATE KEY-----
    commands: [uptime]
"""


def test_clear_text_credentials_are_flagged_and_secrets_pass():
    violations = _run([{"name": "no secrets in git", "rule": "no_clear_credentials"}],
                      _flow(CREDENTIALS))
    assert _lines(violations) == [
        _line_of(CREDENTIALS, "password: hunter2"),
        _line_of(CREDENTIALS, "X-Api-Key"),
        _line_of(CREDENTIALS, "QUOTED_TOKEN"),
        _line_of(CREDENTIALS, "BEGIN OPENSSH"),  # the block's first line, not the key's
    ]
    assert violations[0].message == ("'password' holds a clear-text value: read it with "
                                     "{{ secret('NAME') }} instead")
    assert violations[3].message.startswith("holds a clear-text private key (PEM block) under "
                                            "'privateKey'")
    # a message never repeats the credential
    for violation in violations:
        assert not re.search("hunter2|abc123|not-really|b3BlbnNza", str(violation))
        assert {violation.check, violation.rule} == {"no secrets in git", "no_clear_credentials"}


def test_a_pem_block_is_flagged_under_any_key():
    text = CREDENTIALS.replace("privateKey: |", "script: |")
    lines = _lines(_run([{"rule": "no_clear_credentials"}], _flow(text)))
    assert _line_of(text, "BEGIN OPENSSH") in lines
    one_line = LABELLED_MAP.replace("message: hi",
                                    'message: "x -----BEGIN RSA PRIVATE KEY-----\\nMII"')
    [violation] = _run([{"rule": "no_clear_credentials"}], _flow(one_line))
    assert violation.line == _line_of(one_line, "BEGIN RSA")


def test_ignored_keys_and_namespaces_of_no_clear_credentials():
    violations = _run([{"rule": "no_clear_credentials", "ignore_keys": ["x-api-key", "Password"]}],
                      _flow(CREDENTIALS))
    assert _lines(violations) == [_line_of(CREDENTIALS, "QUOTED_TOKEN"),
                                  _line_of(CREDENTIALS, "BEGIN OPENSSH")]
    assert _run([{"rule": "no_clear_credentials", "namespaces": ["company.sales"]}],
                _flow(CREDENTIALS)) == ()


def test_secret_inputs_defaults_and_webhook_keys_are_credentials_too():
    text = """\
id: hooked
namespace: company.data
inputs:
  - id: api
    type: SECRET
    defaults: s3cr3t
  - id: vault
    type: SECRET
    defaults: "{{ secret('VAULT') }}"
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: my-webhook-key
  - id: signed
    type: io.kestra.plugin.core.trigger.Webhook
    key: "{{ secret('HOOK') }}"
"""
    violations = _run([{"rule": "no_clear_credentials"}], _flow(text))
    assert _lines(violations) == [6, 20]
    assert [v.message.split(":")[0] for v in violations] == [
        "the SECRET input's 'defaults' is a clear-text value",
        "the webhook trigger's 'key' is a clear-text value"]


def test_a_literal_reaching_a_credential_key_through_an_alias_is_flagged_once():
    text = """\
id: aliased
namespace: company.data
variables:
  user: &value hunter2
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: *value
    password: *value
    token: *value
"""
    [violation] = _run([{"rule": "no_clear_credentials"}], _flow(text))
    assert violation.line == 4  # where the value is written
    assert violation.message.startswith("'password' holds a clear-text value")


@pytest.mark.parametrize(("key", "credential"), [
    ("password", True), ("dbPassword", True), ("DB_PASSWD", True), ("clientSecret", True),
    ("api_key", True), ("X-Api-Key", True), ("accessKey", True), ("private_key", True),
    ("token", True), ("Authorization", True), ("secretName", False), ("tokenUrl", False),
    ("maxTokens", False), ("username", False), ("key", False),
])
def test_credential_keys(key: str, credential: bool):
    assert is_credential_key(key) is credential


@pytest.mark.parametrize(("value", "clear"), [
    ("hunter2", True), ("{{ secret('X') }}", False), ("{{secret('X')}}", False),
    ("Bearer {{ secret('T') }}", False), ("{{ kv('K') }}", False), ("{{ envs.pw }}", False),
    ("{{ inputs.pw }}", False), ("{{ vars.pw }}", False), ("{{ outputs.auth.token }}", False),
    ("{{ 'literal' }}", True), ("abc{{ now() }}", True), ("   ", False), ("", False),
])
def test_clear_text_values(value: str, clear: bool):
    assert is_clear_text(value) is clear


# -- flows that are not flows, and what a violation looks like ---------------------------------

def test_a_flow_that_does_not_parse_is_skipped_but_its_namespace_is_checked():
    broken = DesiredFlow(FlowKey("company.x", "broken"), "id: broken\ntasks: [\n", "broken.yaml")
    listed = DesiredFlow(FlowKey("company.x", "list"), "- a\n- b\n", "list.yaml")
    rules = [{"rule": r} for r in ("no_clear_credentials",)] + [
        {"rule": "required_label", "key": "team"}, {"rule": "task_types", "deny": ["*"]},
        {"rule": "trigger_types", "deny": ["*"]},
        {"rule": "triggers_disabled", "namespaces": ["*"]}]
    assert _run(rules, broken, listed) == ()
    violations = _run([{"rule": "namespaces", "allow": ["other"]}], broken, listed)
    assert [(v.flow.id, v.line) for v in violations] == [("broken", None), ("list", None)]


def test_a_violation_as_text_and_as_json():
    [violation] = _run([{"name": "owner", "rule": "required_label", "key": "owner"}],
                       _flow(LABELLED_MAP, "finance/billing.yaml"))
    assert str(violation) == ("finance/billing.yaml:3: company.finance/billing: [owner] "
                              "the label 'owner' is missing")
    assert violation.to_dict() == {
        "check": "owner", "rule": "required_label", "path": "finance/billing.yaml", "line": 3,
        "namespace": "company.finance", "id": "billing",
        "message": "the label 'owner' is missing"}
    json.dumps(violation.to_dict())


def test_printed_violations_hold_no_control_characters():
    text = LABELLED_MAP.replace("team: data-eng", 'team: "\\e[31mred\\u202e"')
    [violation] = _run([{"rule": "required_label", "key": "team", "value": "[a-z-]+"}],
                       _flow(text))
    assert "\x1b" not in str(violation) and "\u202e" not in str(violation)


def test_violations_come_check_by_check_then_flow_by_flow():
    flows = [_flow(LABELLED_MAP, "a.yaml"), _flow(NESTED, "b.yaml")]
    violations = _run([{"name": "first", "rule": "required_label", "key": "owner"},
                       {"name": "second", "rule": "task_types", "deny": ["*.Log"]}], *flows)
    assert [(v.check, v.path) for v in violations] == [
        ("first", "a.yaml"), ("first", "b.yaml"),
        ("second", "a.yaml"), ("second", "b.yaml"), ("second", "b.yaml")]


# -- reading the policy ------------------------------------------------------------------------

@pytest.mark.parametrize(("checks", "message"), [
    ("required_label", "prod.yml: 'checks' must be a list of checks, not a text"),
    ([["rule"]],
     "prod.yml: check #1: must be a mapping with 'rule' and the rule's keys, not a list"),
    ([{"key": "team"}], "prod.yml: check #1: 'rule' is missing; use one of: required_label, "),
    ([{"rule": "required_lable", "key": "team"}],
     "prod.yml: check #1: unknown rule 'required_lable' (did you mean 'required_label'?)"),
    ([{"rule": 3}], "prod.yml: check #1: unknown rule a number; use one of: required_label"),
    ([{"rule": "required_label", "key": "team", "vaule": "x"}],
     "prod.yml: check #1 (required_label): unknown key 'vaule' for rule 'required_label' (did "
     "you mean 'value'?)"),
    ([{"rule": "max_changes"}], "prod.yml: check #1 (max_changes): 'max' is missing"),
    ([{"rule": "max_changes", "max": -1}],
     "prod.yml: check #1 (max_changes): 'max' must be a whole number, 0 or more, not -1"),
    ([{"rule": "max_changes", "max": "10"}], "'max' must be a whole number, 0 or more, not a text"),
    ([{"rule": "max_changes", "max": True}], "not true/false"),
    ([{"rule": "task_types"}], "prod.yml: check #1 (task_types): give 'allow', 'deny' or both"),
    ([{"rule": "task_types", "deny": []}], "'deny' must be a non-empty list of texts, not an empty list"),
    ([{"rule": "task_types", "deny": ["io.kestra.[ab]"]}],
     "'deny': pattern 'io.kestra.[ab]' is not a type pattern"),
    ([{"rule": "trigger_types", "allow": [3]}], "'allow' must list non-empty texts, not a number"),
    ([{"rule": "required_label", "key": "team", "value": "(unclosed"}],
     "'value': '(unclosed' is not a valid regular expression: "),
    ([{"rule": "required_label", "key": "Team"}], "'key': label key 'Team' is invalid"),
    ([{"rule": "required_label", "key": "team", "namespaces": ["Company"]}],
     "'namespaces': pattern 'Company' is invalid"),
    ([{"rule": "namespaces", "allow": ["company"], "sources": ["a b"]}],
     "'sources': source name 'a b' must use letters, digits, '_' and '-'"),
    ([{"rule": "triggers_disabled"}], "'namespaces' is missing (rule 'triggers_disabled')"),
    ([{"rule": "no_clear_credentials", "ignore_keys": {"a": 1}}],
     "'ignore_keys' must be a non-empty list of texts, not a mapping"),
    ([{"name": "", "rule": "max_changes", "max": 1}],
     "check #1 (max_changes): 'name' must be a non-empty text, not an empty text"),
    ([{"name": "limit", "rule": "max_changes", "max": 1},
      {"name": "limit", "rule": "max_changes", "max": 2}],
     "prod.yml: check #2 'limit': the name 'limit' is already the name of check #1"),
])
def test_a_wrong_check_is_refused_naming_the_policy_and_the_check(checks: object, message: str):
    with pytest.raises(SettingsError) as caught:
        parse_checks(checks, "prod.yml")
    assert message in str(caught.value)


def test_every_wrong_check_is_reported_at_once():
    with pytest.raises(SettingsError) as caught:
        parse_checks([{"name": "owner", "rule": "required_label"},
                      {"rule": "max_changes", "max": 5},
                      {"rule": "task_types", "alow": ["*"]}])
    assert str(caught.value).splitlines() == [
        "policy: check #1 'owner': 'key' is missing (rule 'required_label')",
        "policy: check #3 (task_types): unknown key 'alow' for rule 'task_types' (did you mean "
        "'allow'?)",
        "policy: check #3 (task_types): give 'allow', 'deny' or both (rule 'task_types')",
    ]


def test_no_checks():
    assert parse_checks(None) == ()
    assert parse_checks([]) == ()
    assert evaluate((), [_flow(NESTED)], source_name="main", changes=100) == ()


def test_checks_are_named_and_described():
    checks = parse_checks([
        {"name": "owner", "rule": "required_label", "key": "team", "value": "[a-z-]+",
         "namespaces": "company"},
        {"rule": "task_types", "allow": ["io.kestra.plugin.core.*"], "deny": ["*.Pause"]},
        {"rule": "namespaces", "allow": ["company"], "sources": ["main"]},
        {"rule": "max_changes", "max": 20},
        {"rule": "triggers_disabled", "namespaces": ["staging"]},
        {"rule": "no_clear_credentials", "ignore_keys": ["token"]},
    ])
    assert checks[0] == Check("owner", "required_label", namespaces=("company",), key="team",
                              value="[a-z-]+")
    assert [c.name for c in checks[1:]] == ["task_types #2", "namespaces #3", "max_changes #4",
                                            "triggers_disabled #5", "no_clear_credentials #6"]
    described = describe(checks)
    assert json.loads(json.dumps(described)) == described
    assert described[0] == {"name": "owner", "rule": "required_label", "key": "team",
                            "value": "[a-z-]+", "namespaces": ["company"],
                            "summary": "flows in company must have the label 'team' with a "
                                       "value matching '[a-z-]+'"}
    assert [d["summary"] for d in described[1:]] == [
        "tasks of flows must have a type matching io.kestra.plugin.core.* and must not have a "
        "type matching *.Pause",
        "flows from the source(s) main may only be written to company",
        "at most 20 changes (creations, updates and deletions) in one run",
        "every trigger of flows in staging must be disabled",
        "no clear-text credentials in flows, keys token aside",
    ]
    # what describe gives is a policy again
    again = parse_checks([{k: v for k, v in d.items() if k != "summary"} for d in described])
    assert again == checks


def test_the_documented_example_policy_reads_and_finds_what_the_page_says():
    page = (ROOT / "docs/checks.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", page, re.DOTALL)
    policy = next(yaml.safe_load(b) for b in blocks if b.startswith("checks:"))
    checks = parse_checks(policy["checks"])
    assert {c.rule for c in checks} == {"required_label", "task_types", "trigger_types",
                                        "namespaces", "max_changes", "triggers_disabled",
                                        "no_clear_credentials"}
    flow = next(b for b in blocks if b.startswith("id: nightly-export"))
    violations = evaluate(checks, [_flow(flow, "flows/finance/nightly-export.yaml")],
                          source_name="main", changes=3)
    text = next(b for b in re.findall(r"```text\n(.*?)```", page, re.DOTALL)
                if "nightly-export" in b)
    assert "\n".join(str(v) for v in violations) == text.rstrip("\n")
    shown = next(b for b in re.findall(r"```json\n(.*?)```", page, re.DOTALL)
                 if "nightly-export" in b)
    assert json.loads(shown) == violations[0].to_dict()


# -- Kestra's own flows ------------------------------------------------------------------------

FLOWS = FIXTURES / "flows"


def _fixture(path: Path) -> DesiredFlow:
    text = path.read_text(encoding="utf-8", errors="replace")
    found = yamlnodes.identity(text) or {}
    key = FlowKey(found.get("namespace", "?"), found.get("id", path.stem))
    return DesiredFlow(key, text, path.relative_to(FLOWS).as_posix())


def _fixtures() -> list[DesiredFlow]:
    return [_fixture(p) for p in sorted(FLOWS.rglob("*")) if p.suffix in (".yaml", ".yml")]


EVERY_RULE = [
    {"rule": "required_label", "key": "team", "value": "[a-z]+"},
    {"rule": "task_types", "allow": ["io.kestra.*"], "deny": ["*.Pause", "*.scripts.*"]},
    {"rule": "trigger_types", "deny": ["*.Webhook"]},
    {"rule": "namespaces", "allow": ["io.kestra"]},
    {"rule": "max_changes", "max": 10},
    {"rule": "triggers_disabled", "namespaces": ["*"]},
    {"rule": "no_clear_credentials"},
]


def test_kestras_flows_go_through_every_rule():
    flows = _fixtures()
    assert len(flows) > 800
    violations = evaluate(parse_checks(EVERY_RULE), flows, source_name="main",
                          changes=len(flows))
    by_rule: dict[str, list[Violation]] = {}
    for violation in violations:
        by_rule.setdefault(violation.rule, []).append(violation)
    assert set(by_rule) == {c["rule"] for c in EVERY_RULE}
    for violation in violations:
        str(violation), json.dumps(violation.to_dict())
        if violation.rule != "max_changes":
            assert violation.path is not None
        if violation.line is not None:  # the line is in the file
            source = (FLOWS / violation.path).read_text(encoding="utf-8", errors="replace")
            assert 1 <= violation.line <= len(source.splitlines())
    # every flagged trigger is written where the violation says
    for violation in by_rule["trigger_types"]:
        source = (FLOWS / violation.path).read_text(encoding="utf-8")
        assert source.splitlines()[violation.line - 1].strip().endswith("Webhook")


def test_the_clear_text_credentials_in_kestras_flows_are_the_ones_found_by_hand():
    flows = {flow.path: flow for flow in _fixtures()}
    checks = parse_checks([{"rule": "no_clear_credentials"}])

    def lines(path: str) -> list[int | None]:
        return _lines(evaluate(checks, [flows[path]], source_name="main", changes=0))

    # two SECRET inputs with `defaults: password`; a webhook `key: a-secret-key`
    assert lines("kestra-2.0/valid/input-log-secret.yaml") == [7, 11]
    assert lines("kestra-2.0/valid/webhook.yaml") == [16]
    # secrets read with secret(), and a SECRET input with no default: nothing
    assert lines("kestra-2.0/valid/secrets.yaml") == []
    assert lines("kestra-2.0/valid/webhook-secret-key.yaml") == []
    assert lines("kestra-2.0/valid/pause_on_resume.yaml") == []
    # Kestra 2.0's valid flows: the webhooks with a literal key, and input-log-secret
    flagged = {flow.path.rpartition("/")[2] for flow in flows.values()
               if flow.path.startswith("kestra-2.0/valid/")
               and evaluate(checks, [flow], source_name="main", changes=0)}
    assert flagged == {"input-log-secret.yaml", "webhook.yaml", "webhook-inputs.yaml",
                       "webhook-plaintext.yaml", "webhook-routing-test.yaml",
                       "webhook-wait.yaml", "webhook-with-condition.yaml"}


def test_the_tasks_of_kestras_flows_are_the_ones_found_by_hand():
    flows = {flow.path: flow for flow in _fixtures()}
    checks = parse_checks([{"rule": "task_types", "deny": ["*"]}])

    def tasks(path: str) -> list[str]:
        found = evaluate(checks, [flows[path]], source_name="main", changes=0)
        return [re.match(r"task '([^']+)'", v.message).group(1) for v in found]

    # Loop, Sequential, Switch cases and defaults, local and global errors
    assert tasks("kestra-2.0/valid/all-flowable.yaml") == [
        "1-each", "1-each-1", "1-each-2", "1-each-2-1", "1-each-seq-error", "1-each-seq-error-1",
        "2-simple-task", "3-sequential", "3-sequential-1", "3-sequential-2", "3-sequential-2-1",
        "3-sequential-2-2", "3-sequential-2-2-1", "3-sequential-2-3", "3-sequential-3",
        "3-sequential-local-errors", "4-switch", "4-sequential-case-1", "4-sequential-case-2",
        "4-sequential-default", "error-1st", "error-2nd"]
    # Dag tasks under `task:`, If's then/else, errors and finally; not the input
    assert tasks("kestra-2.0/valid/finally-dag.yaml")[:8] == [
        "dag", "t1", "t2", "t3", "ok", "ko", "e1", "e2"]
    # a Pause's onResume inputs are not tasks
    assert tasks("kestra-2.0/valid/pause_on_resume.yaml") == ["pause", "last"]

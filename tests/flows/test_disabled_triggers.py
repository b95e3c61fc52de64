"""A preview turns every trigger off: ``disabled: true`` set in the text, nothing else changed."""

from __future__ import annotations

import pytest
import yaml
from conftest import source_from
from kestra_promote.config import Config
from kestra_promote.errors import SourceError
from kestra_promote.flows.desired import prepare
from kestra_promote.models import FlowKey

OFF = Config(disable_triggers=True)

FLOW = """\
id: nightly
namespace: company.team   # owned by the data team
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.date }}"
triggers:
  - id: every-night
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 2 * * *"   # 2 am
  - id: already
    type: io.kestra.plugin.core.trigger.Schedule
    disabled: true
    cron: "0 3 * * *"
  - id: was-on
    type: io.kestra.plugin.core.trigger.Webhook
    disabled: false
    key: abc
  - {id: inline, type: io.kestra.plugin.core.trigger.Schedule, cron: "@daily"}
"""


def _sent(text: str, config: Config = OFF) -> str:
    desired = prepare(source_from(("flows/f.yml", text)), config)
    (flow,) = desired.flows.values()
    return flow.source


def test_every_trigger_is_disabled_and_nothing_else_changes():
    sent = _sent(FLOW)
    assert sent == FLOW.replace(
        '    cron: "0 2 * * *"   # 2 am\n',
        '    cron: "0 2 * * *"   # 2 am\n    disabled: true\n').replace(
        "    disabled: false\n", "    disabled: true\n").replace(
        'cron: "@daily"}', 'cron: "@daily", disabled: true}')
    triggers = yaml.safe_load(sent)["triggers"]
    assert [t["disabled"] for t in triggers] == [True] * 4


def test_a_trigger_ending_the_file_without_a_line_break_and_crlf_lines():
    text = FLOW.split("  - id: already")[0].rstrip("\n")
    assert _sent(text).endswith('cron: "0 2 * * *"   # 2 am\n    disabled: true\n')
    crlf = FLOW.replace("\n", "\r\n")
    assert _sent(crlf) == _sent(FLOW).replace("\n", "\r\n")


def test_a_flow_without_triggers_is_sent_as_written():
    text = FLOW.split("triggers:")[0]
    assert _sent(text) == text


def test_disabling_goes_with_renaming():
    text = FLOW.replace("  - id: already", "  - id: after\n"
                        "    type: io.kestra.plugin.core.trigger.Flow\n"
                        "    dependsOn:\n      - namespace: company.team\n        flowId: x\n"
                        "  - id: already")
    config = Config(disable_triggers=True, rename={"company": "preview.42.company"})
    sent = _sent(text, config)
    root = yaml.safe_load(sent)
    assert root["namespace"] == "preview.42.company.team"
    assert root["triggers"][1] == {"id": "after", "type": "io.kestra.plugin.core.trigger.Flow",
                                   "dependsOn": [{"namespace": "preview.42.company.team",
                                                  "flowId": "x"}], "disabled": True}
    key = FlowKey("preview.42.company.team", "nightly")
    assert key in prepare(source_from(("flows/f.yml", text)), config).flows


def test_a_disabled_value_that_is_not_a_value_is_named():
    text = FLOW.replace("    disabled: false\n", "    disabled: {a: b}\n")
    with pytest.raises(SourceError) as caught:
        _sent(text)
    assert "trigger 'was-on': 'disabled' (line 17) is not true or false" in str(
        caught.value.problems[0])

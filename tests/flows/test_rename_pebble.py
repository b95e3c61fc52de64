"""Renaming the namespaces given to Pebble functions (``subflow``, ``kv``, ``secret``, ``read``,
``fileExists``, ...) inside expressions: literals are rewritten in place, by keyword or by
position, in any quoting; other expressions are reported."""

from __future__ import annotations

import pytest
from conftest import source_from
from kestra_promote.config import Config
from kestra_promote.errors import SourceError
from kestra_promote.flows.desired import prepare
from kestra_promote.models import FlowKey

RENAME = {"dev.company": "company"}

# a flow as people write them: a KV lookup in a Python script, a secret in an HTTP header, a file
# of another namespace, and (Kestra 2.0) a subflow called from an expression
NIGHTLY = """id: nightly
namespace: dev.company.sales
inputs:
  - id: region
    type: STRING
    defaults: eu
tasks:
  - id: fetch
    type: io.kestra.plugin.core.http.Request
    uri: "{{ kv('API_URL', namespace='dev.company') }}/orders"
    headers:
      Authorization: "Bearer {{ secret('API_TOKEN', namespace=\\"dev.company.shared\\") }}"
  - id: transform
    type: io.kestra.plugin.scripts.python.Script
    script: |
      import json
      # settings shared by every team of dev.company live in its KV store
      limit = int("{{ kv('LIMIT', 'dev.company') }}")
      rules = json.loads('''{{ read('rules.json', namespace='dev.company.shared') }}''')
      helper = '''{{ read('nsfile://dev.company/lib/helper.py') }}'''
      print(limit, rules, {{ fileExists('x.csv', "dev.company") }})
  - id: score
    type: io.kestra.plugin.core.debug.Return
    format: '{{ subflow(namespace=''dev.company.ml'', id=''score'', inputs={''region'': inputs.region}).outputs.score }}'
  - id: other
    type: io.kestra.plugin.core.log.Log
    message: >-
      {{ kv('K', namespace='prod.other') }} {{ secret('S') }} {{ kv('L', namespace=flow.namespace) }}
      and {{ subflow('dev.company.ml', 'report') }}
"""


def _prepared(text: str, rename=RENAME):
    desired = prepare(source_from(("nightly.yml", text)), Config(rename=rename))
    flow = desired.flows[FlowKey("company.sales", "nightly")]
    return flow.source, [str(w) for w in desired.warnings]


def test_literal_namespaces_given_to_pebble_functions_are_renamed_in_place():
    source, warnings = _prepared(NIGHTLY)

    assert warnings == []
    expected = (NIGHTLY
                .replace("namespace: dev.company.sales", "namespace: company.sales")
                .replace("namespace='dev.company')", "namespace='company')")
                .replace('namespace=\\"dev.company.shared\\"', 'namespace=\\"company.shared\\"')
                .replace("kv('LIMIT', 'dev.company')", "kv('LIMIT', 'company')")
                .replace("namespace='dev.company.shared')", "namespace='company.shared')")
                .replace("nsfile://dev.company/", "nsfile://company/")
                .replace('"dev.company")', '"company")')
                .replace("namespace=''dev.company.ml''", "namespace=''company.ml''")
                .replace("subflow('dev.company.ml'", "subflow('company.ml'"))
    assert source == expected
    # free text naming the namespace (the script's comment) is not a reference: left as written
    assert "# settings shared by every team of dev.company live" in source


def test_a_namespace_given_to_a_pebble_function_through_an_expression_is_reported():
    text = NIGHTLY.replace("namespace='dev.company')", "namespace=inputs.ns)", 1)

    source, warnings = _prepared(text)

    assert "kv('API_URL', namespace=inputs.ns)" in source
    assert warnings == [
        "nightly.yml:10: company.sales/nightly: tasks[0].uri: kv() is given namespace inputs.ns "
        "through an expression: not rewritten; check it resolves in every environment"]


@pytest.mark.parametrize("written", [
    "'dev' ~ '.company'",              # built from pieces
    "\"dev.#{'company'}\"",            # string interpolation
])
def test_a_namespace_built_by_an_expression_is_reported_not_rewritten(written):
    text = ("id: nightly\nnamespace: dev.company.sales\ntasks:\n  - id: t\n"
            "    type: io.kestra.plugin.core.log.Log\n"
            f"    message: >-\n      {{{{ kv('K', namespace={written}) }}}}\n")

    source, warnings = _prepared(text)

    assert source == text.replace("namespace: dev.company.sales", "namespace: company.sales")
    assert len(warnings) == 1 and "kv() is given namespace " in warnings[0]


def test_a_literal_written_with_yaml_escapes_is_reported_not_guessed():
    text = ("id: nightly\nnamespace: dev.company.sales\ntasks:\n  - id: t\n"
            "    type: io.kestra.plugin.core.log.Log\n"
            "    message: \"{{ kv('K', namespace='dev.compan\\x79') }}\"\n")

    source, warnings = _prepared(text)

    assert source == text.replace("namespace: dev.company.sales", "namespace: company.sales")
    assert warnings == [
        "nightly.yml:6: company.sales/nightly: tasks[0].message: kv() is given namespace "
        "'dev.company', written in a way kestra-promote cannot rewrite in place: not rewritten "
        "(to 'company'); write the value without escapes"]


def test_a_pebble_namespace_renamed_to_nothing_is_a_problem():
    with pytest.raises(SourceError) as refused:
        prepare(source_from(("nightly.yml", NIGHTLY)),
                Config(rename={"dev.company": "company", "dev.company.ml": ""}))

    assert [str(p) for p in refused.value.problems] == [
        f"nightly.yml:{line}: company.sales/nightly: {path}: the rename turns namespace "
        "'dev.company.ml' given to subflow() into an empty namespace; give 'dev.company.ml' a "
        "namespace to be renamed to, or change the flow"
        for line, path in ((24, "tasks[2].format"), (27, "tasks[3].message"))]


def test_kestras_own_test_flows_have_their_pebble_namespaces_renamed():
    # Kestra 2.0's own test flows (tests/fixtures/flows/kestra-2.0, see its README)
    from conftest import FIXTURES

    valid = FIXTURES / "flows" / "kestra-2.0" / "valid"
    texts = {name: (valid / name).read_text(encoding="utf-8") for name in (
        "subflow-function-mutual-a.yaml", "secrets.yaml", "kv.yaml",
        "retry-with-flowable-errors.yaml")}
    rename = {"io.kestra.tests": "company.tests", "some.namespace": "company.shared"}

    desired = prepare(source_from(*texts.items()), Config(rename=rename))

    by_path = {flow.path: flow.source for flow in desired.flows.values()}
    assert by_path["subflow-function-mutual-a.yaml"] == texts[
        "subflow-function-mutual-a.yaml"].replace("namespace: io.kestra.tests", "namespace: "
        "company.tests").replace("subflow(namespace='io.kestra.tests'",
                                 "subflow(namespace='company.tests'")
    assert "secret('my_secret', 'company.shared')" in by_path["secrets.yaml"]
    # kv(namespace=flow.namespace) follows the flow: nothing to say; kv.yaml's namespace is an
    # input, whose default is written as a namespace
    assert [str(w) for w in desired.warnings] == [
        "kv.yaml:6: company.tests/kv: written as a renamed namespace but in no property "
        "kestra-promote renames, so left as written: 'io.kestra.tests' (the rename gives "
        "'company.tests') at inputs[0].defaults, line 6; check whether it should follow the rename",
        "kv.yaml:16: company.tests/kv: tasks[1].format: kv() is given namespace "
        "inputs.namespace through an expression: not rewritten; check it resolves in every "
        "environment"]

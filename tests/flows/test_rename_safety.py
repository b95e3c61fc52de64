"""Edits land on exactly the characters meant, whatever the text holds, and a flow is never changed
beyond the renamed namespaces and the added labels: line separators, anchors and aliases, empty
namespaces, JSON-style flows, block scalars, and the check of the edited text against the old."""

from __future__ import annotations

import pytest
import yaml
from conftest import source_from
from kestra_promote.flows import flowdoc, pebble, renaming
from kestra_promote import yamlnodes
from kestra_promote.config import Config
from kestra_promote.flows.desired import dependencies_of, prepare
from kestra_promote.errors import SourceError
from kestra_promote.models import DesiredFlow, FlowKey

RENAME = {"dev.company": "company"}
LABELS = {"system.readOnly": "true"}
SUBFLOW = ("tasks:\n  - id: call\n    type: io.kestra.plugin.core.flow.Subflow\n"
           "    namespace: dev.company.team\n    flowId: b\n")

LOADERS = [pytest.param(yaml.SafeLoader, id="pure-python")]
if hasattr(yaml, "CSafeLoader"):
    LOADERS.insert(0, pytest.param(yaml.CSafeLoader, id="libyaml"))


@pytest.fixture(params=LOADERS)
def loader(request, monkeypatch):
    """Each test runs with both loaders yamlnodes may use (libyaml when PyYAML has it)."""
    monkeypatch.setattr(yamlnodes, "Loader", request.param)
    return request.param


def _edit(text: str, rename=RENAME, labels=None) -> tuple[str, list[str]]:
    root = yamlnodes.compose_documents(text)[0]
    warnings: list[str] = []
    edits = renaming.rename_edits(text, root, rename, lambda ref, msg: warnings.append(msg))
    edits += flowdoc.label_edits(text, root, labels or {})
    new_text = flowdoc.apply_edits(text, edits)
    flowdoc.verify_edits(root, new_text, edits, labels or {})
    return new_text, warnings


def _problems(text: str, **config) -> list[str]:
    with pytest.raises(SourceError) as caught:
        prepare(source_from(("a.yml", text)), Config(**config))
    return [str(p) for p in caught.value.problems]


# -- offsets and lines as the YAML loaders count them -----------------------------------------

BREAKS = ["\u2028", "\u2029", "\x85", "\r", "\r\n"]


@pytest.mark.parametrize("brk", BREAKS, ids=["LS", "PS", "NEL", "CR", "CRLF"])
def test_a_line_separator_before_a_renamed_value_does_not_shift_the_edit(loader, brk):
    # U+2028, U+2029 and NEL end a line for YAML, not for a `\r|\n` count: the edits used to land
    # further on, corrupting the flowId ('bbbcompany.team') or breaking the YAML
    text = f'id: a\ndescription: "line one{brk}still one"\nnamespace: dev.company\n' + SUBFLOW
    new_text, _ = _edit(text)
    assert new_text == text.replace("dev.company", "company")
    flow = yaml.load(new_text, Loader=loader)
    assert flow["tasks"][0]["flowId"] == "b" and flow["description"] == \
        yaml.load(text, Loader=loader)["description"]


@pytest.mark.parametrize("brk", BREAKS, ids=["LS", "PS", "NEL", "CR", "CRLF"])
def test_labels_go_on_the_line_the_yaml_loaders_count(loader, brk):
    text = f"id: a\ndescription: 'one{brk}two'\nnamespace: dev.company\n" + SUBFLOW
    new_text, _ = _edit(text, labels=LABELS)
    nl = "\r\n" if brk == "\r\n" else "\n"  # a text with CRLF gets CRLF
    assert new_text == text.replace("dev.company", "company").replace(
        "namespace: company\n", f'namespace: company\nlabels:{nl}  system.readOnly: "true"{nl}', 1)


def test_marks_give_python_offsets_in_both_loaders(loader):
    # what the edits rely on: yamlnodes.offset(text, mark) indexes the text as Python does, and
    # yamlnodes.line_starts counts the lines the loaders count
    text = ("\ufeffa: \"é😀\u2028x\"\r\nb: plain\x85c: 'q\u2029r'\rd: x\ufeffy\n"
            "e: [f, {g: h}]\nlong: \"one\n  two\"\n")
    root = yamlnodes.compose_documents(text)[0]
    starts = yamlnodes.line_starts(text)
    scalars, stack = [], [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            scalars.append(node)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        else:
            stack.extend(node.value)
    assert len(scalars) == 14
    for node in scalars:
        start = yamlnodes.offset(text, node.start_mark)
        written = text[start:yamlnodes.offset(text, node.end_mark)]
        if not node.style:  # plain: None from PyYAML, "" from libyaml
            assert written == node.value
        else:
            assert written[0] == written[-1] == node.style
            assert yaml.load(written, Loader=loader) == node.value
        assert yamlnodes.line_of(starts, start) == node.start_mark.line
        assert yamlnodes.line_of(starts, yamlnodes.offset(text, node.end_mark)) == \
            node.end_mark.line


def test_a_byte_order_mark_at_the_start_keeps_offsets_right(loader):
    text = "\ufeffid: a\nnamespace: dev.company\n" + SUBFLOW
    new_text, _ = _edit(text, labels=LABELS)
    assert new_text == "\ufeff" + text[1:].replace("dev.company", "company").replace(
        "namespace: company\n", 'namespace: company\nlabels:\n  system.readOnly: "true"\n', 1)


def test_a_flow_with_a_line_separator_is_renamed_end_to_end():
    text = 'id: a\nnamespace: dev.company\ndescription: "first\u2028second"\n' + SUBFLOW.replace(
        "flowId: b", "flowId: bbbbbbbbbbbbbbbbbb")
    desired = prepare(source_from(("a.yml", text)), Config(rename=RENAME, labels=LABELS))
    flow = desired.flows[FlowKey("company", "a")]
    assert yaml.safe_load(flow.source)["tasks"][0] == {
        "id": "call", "type": "io.kestra.plugin.core.flow.Subflow", "namespace": "company.team",
        "flowId": "bbbbbbbbbbbbbbbbbb"}
    assert dependencies_of(flow) == {FlowKey("company.team", "bbbbbbbbbbbbbbbbbb")}


# -- the safety net: the edited flow says what the old one says, but for the intended edits -------

def test_an_edit_that_changes_anything_else_is_refused():
    text = "id: a\nnamespace: dev.company\n" + SUBFLOW
    root = yamlnodes.compose_documents(text)[0]
    edits = renaming.rename_edits(text, root, RENAME, lambda ref, msg: None)
    at = text.index("flowId: b") + len("flowId: ")
    wrong = [*edits, flowdoc.Edit(at, at + 1, "bbb")]  # not a renamed namespace
    with pytest.raises(flowdoc.EditRefused) as caught:
        flowdoc.verify_edits(root, flowdoc.apply_edits(text, wrong), wrong, {})
    assert "tasks[0].flowId would be 'bbb' instead of 'b'" in str(caught.value)
    # the intended edits pass, and give the new flow
    new_root = flowdoc.verify_edits(root, flowdoc.apply_edits(text, edits), edits, {})
    assert yamlnodes.scalar_text(yamlnodes.mapping_get(new_root, "namespace")) == "company"


def test_a_renamed_value_written_wrong_is_refused():
    text = "id: a\nnamespace: dev.company\n" + SUBFLOW
    root = yamlnodes.compose_documents(text)[0]
    edits = renaming.rename_edits(text, root, RENAME, lambda ref, msg: None)
    wrong = [flowdoc.Edit(e.start, e.end, e.text + "x", e.node, e.value) for e in edits]
    with pytest.raises(flowdoc.EditRefused) as caught:
        flowdoc.verify_edits(root, flowdoc.apply_edits(text, wrong), wrong, {})
    assert "namespace would be 'companyx' instead of 'company'" in str(caught.value)
    labels = flowdoc.label_edits(text, root, LABELS)
    with pytest.raises(flowdoc.EditRefused) as caught:  # labels the edits do not add
        flowdoc.verify_edits(root, flowdoc.apply_edits(text, labels), labels, {"team": "data"})
    assert "labels.team would be absent instead of 'data'" in str(caught.value)


def test_misplaced_edits_are_a_problem_naming_the_file_and_nothing_is_written(monkeypatch):
    # as if the offsets were wrong again: prepare refuses the flow instead of corrupting it
    monkeypatch.setattr(yamlnodes, "offset", lambda text, mark, loader=None: mark.index + 1)
    text = "id: a\nnamespace: dev.company\n" + SUBFLOW
    problems = _problems(text, rename=RENAME)
    assert len(problems) == 1 and problems[0].startswith("a.yml: company/a: ")
    assert "left as it is" in problems[0]


# -- empty namespaces --------------------------------------------------------------------------

EMPTIED = """id: a
namespace: dev.company
tasks:
  - id: get
    type: io.kestra.plugin.core.kv.Get
    namespace: dev
    key: k
  - id: purge
    type: io.kestra.plugin.core.log.PurgeLogs
    namespace: dev
  - id: purgekv
    type: io.kestra.plugin.core.kv.PurgeKV
    namespaces: [dev]
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: dev
    flowId: x
"""


def test_a_reference_renamed_to_nothing_is_a_problem_not_an_empty_namespace():
    # `--rename dev=` made these `namespace: ""`, deployed as such
    assert _problems(EMPTIED, rename={"dev": ""}) == [
        f"a.yml:{line}: company/a: {what}: the rename turns namespace 'dev' at {path} into an "
        "empty namespace; give 'dev' a namespace to be renamed to, or change the flow"
        for line, what, path in [(6, "kv.Get task 'get'", "tasks[0].namespace"),
                                 (10, "PurgeLogs task 'purge'", "tasks[1].namespace"),
                                 (13, "PurgeKV task 'purgekv'", "tasks[2].namespaces[0]"),
                                 (16, "Subflow task 'call'", "tasks[3].namespace")]]


# -- anchors and aliases -----------------------------------------------------------------------

def test_an_anchored_namespace_also_used_as_the_flow_id_is_a_problem():
    # `id: &n dev` / `namespace: *n` with dev → prod used to deploy the flow prod/prod
    text = ("id: &n dev\nnamespace: *n\ntasks:\n  - id: log\n"
            "    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    assert _problems(text, rename={"dev": "prod"}) == [
        "a.yml:1: prod/dev: the flow's namespace 'dev' is a YAML anchor (&n, line 1) used through "
        "aliases: renaming it would also change id (line 1), which is not a namespace renamed the "
        "same way; write the namespace out instead of using an alias"]


def test_an_anchored_reference_also_used_in_a_message_is_a_problem():
    text = ("id: a\nnamespace: dev.company\ntasks:\n  - id: call\n"
            "    type: io.kestra.plugin.core.flow.Subflow\n    namespace: &ns dev.company.team\n"
            "    flowId: b\n  - id: call2\n    type: io.kestra.plugin.core.flow.Subflow\n"
            "    namespace: *ns\n    flowId: c\n  - id: log\n"
            "    type: io.kestra.plugin.core.log.Log\n    message: *ns\n  - id: more\n"
            "    type: io.kestra.plugin.core.log.Log\n    message: [*ns]\n")
    assert _problems(text, rename=RENAME) == [
        "a.yml:6: company/a: Subflow task 'call': namespace 'dev.company.team' is a YAML anchor "
        "(&ns, line 6) used through aliases: renaming it would also change tasks[2].message "
        "(line 14), tasks[3].message[0], which are not namespaces renamed the same way; write "
        "the namespace out instead of using an alias"]
    # used only where namespaces are renamed: the aliases follow
    fine = text[:text.index("  - id: log")]
    new_text, warnings = _edit(fine)
    assert new_text == fine.replace("dev.company", "company") and warnings == []


def test_an_anchored_variable_named_as_a_namespace_is_a_problem():
    text = ("id: a\nnamespace: dev.company\nvariables:\n  target: &t dev.company.team\n"
            "tasks:\n  - id: call\n    type: io.kestra.plugin.core.flow.Subflow\n"
            "    namespace: *t\n    flowId: b\n")
    (problem,) = _problems(text, rename=RENAME)
    assert problem.startswith("a.yml:4: company/a: Subflow task 'call': namespace "
                              "'dev.company.team' is a YAML anchor (&t, line 4)")
    assert "would also change variables.target (line 4)" in problem


# -- JSON-style flows and block scalars --------------------------------------------------------

@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param('{"id": "a", "namespace": "dev.company", "tasks": [{"id": "l"}]}\n',
                     '{"id": "a", "namespace": "company", "tasks": [{"id": "l"}], '
                     '"labels": {"system.readOnly": "true"}}\n', id="json"),
        pytest.param("{id: a, namespace: dev.company, tasks: [{id: l}],}\n",
                     '{id: a, namespace: company, tasks: [{id: l}], '
                     'labels: {system.readOnly: "true"}}\n', id="trailing-comma"),
        pytest.param("{id: a, namespace: dev.company,  # the team\n tasks: [{id: l}]  # end\n}\n",
                     "{id: a, namespace: company,  # the team\n tasks: [{id: l}], "
                     'labels: {system.readOnly: "true"}  # end\n}\n', id="comments"),
        pytest.param('{"id": "a", "namespace": "dev.company", "labels": {}, "tasks": []}',
                     '{"id": "a", "namespace": "company", "labels": {"system.readOnly": "true"}, '
                     '"tasks": []}', id="json-empty-labels"),
        pytest.param('{"id": "a", "namespace": "dev.company", "labels": [{"key": "k", '
                     '"value": "v",}], "tasks": []}',
                     '{"id": "a", "namespace": "company", "labels": [{"key": "k", "value": "v",}, '
                     '{"key": "system.readOnly", "value": "true"}], "tasks": []}',
                     id="json-list-labels"),
    ],
)
def test_a_json_style_flow_gets_its_labels_inside_its_braces(loader, before, after):
    # used to stop with "editing the flow broke its YAML ... please report this"
    new_text, _ = _edit(before, labels=LABELS)
    assert new_text == after


def test_a_json_style_flow_is_renamed_and_labelled_end_to_end():
    text = ('{"id": "a", "namespace": "dev.company", "tasks": [{"id": "l", '
            '"type": "io.kestra.plugin.core.log.Log", "message": "hi"}]}\n')
    desired = prepare(source_from(("a.yml", text)), Config(rename=RENAME, labels=LABELS))
    flow = desired.flows[FlowKey("company", "a")]
    assert yaml.safe_load(flow.source)["labels"] == {"system.readOnly": "true"}


@pytest.mark.parametrize("header", [">-", "|-", ">- # the team", ">2-", "&ns !!str >-"])
def test_a_flow_namespace_written_as_a_block_scalar_is_renamed_in_place(loader, header):
    # used to stop with "editing the flow gave namespace 'dev.company'; please report this"
    text = f"id: a\nnamespace: {header}\n  dev.company\n\n" + SUBFLOW
    desired = prepare(source_from(("a.yml", text)), Config(rename=RENAME, labels=LABELS))
    flow = desired.flows[FlowKey("company", "a")]
    assert flow.source == text.replace("dev.company", "company").replace(
        "\n\ntasks:", '\n\nlabels:\n  system.readOnly: "true"\ntasks:', 1)


def test_a_flow_namespace_block_scalar_over_several_lines_is_a_problem():
    text = "id: a\nnamespace: >-\n  dev.company\n  .team\n" + SUBFLOW
    root = yamlnodes.compose_documents(text)[0]
    with pytest.raises(flowdoc.EditRefused) as caught:
        renaming.rename_edits(text, root, {"dev": "prod"}, lambda ref, msg: None)
    assert caught.value.problems == [
        ("the flow's namespace 'dev.company .team' is a block scalar ('|' or '>') kestra-promote "
         "cannot rename: write the namespace on one line", 2)]


# -- labels ------------------------------------------------------------------------------------

def test_label_text_that_yaml_reads_otherwise_is_escaped(loader):
    labels = {"true": "yes", "tëam": "a\u2028b😀\x7f\tc", "q": 'say "hi" \\o/'}
    text = "id: a\nnamespace: n\nlabels: {a: b}\ntasks: []\n"
    new_text, _ = _edit(text, {}, labels)
    assert yaml.load(new_text, Loader=loader)["labels"] == {"a": "b", **labels}


def test_a_label_without_a_text_value_is_a_problem_not_a_duplicate():
    for labels in ("labels:\n  system.readOnly: [x]\n", "labels:\n  - key: system.readOnly\n"):
        text = "id: a\nnamespace: n\n" + labels + "tasks: [{id: t}]\n"
        (problem,) = _problems(text, labels=LABELS)
        assert "label 'system.readOnly'" in problem and "has no text value" in problem


# -- every fixture flow --------------------------------------------------------------------------

def _leaves(value, path: str, out: dict) -> dict:
    if isinstance(value, dict):
        for key, item in value.items():
            _leaves(item, f"{path}.{key}", out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _leaves(item, f"{path}[{i}]", out)
    else:
        out[path] = value
    return out


def _variants(text: str) -> list[tuple[str, str]]:
    found = [("as written", text), ("CRLF", text.replace("\n", "\r\n"))]
    first = text.find("\nid:")
    at = text.find("\n", first + 1) if first >= 0 else (text.find("\n") if text.startswith("id:")
                                                           else -1)
    if at >= 0:  # line separators and astral characters before everything that is edited
        found.append(("separators", text[:at] + '\nx-note: "é\u2028😀\x85\u2029z"  # ok\u2028'
                      + text[at:]))
    return found


def _pebble_renamed(value: str, rename: dict[str, str]) -> str:
    """``value`` with the literal namespaces given to Pebble functions renamed."""
    for arg in reversed(pebble.namespace_arguments(value)):
        if arg.value is not None:
            value = value[:arg.start] + renaming.rename_namespace(arg.value, rename) + \
                value[arg.end:]
    return value


def test_every_fixture_flow_renamed_and_labelled_changes_only_what_is_meant():
    # the edited flow's values differ from the old ones only at renamed namespaces and labels,
    # checked with plain yaml.load, apart from verify_edits
    from conftest import FIXTURES

    checked, failures = 0, []
    for path in sorted((FIXTURES / "flows").rglob("*.y*ml")):
        for variant, text in _variants(path.read_text(encoding="utf-8")):
            try:
                documents = yamlnodes.compose_documents(text)
            except yamlnodes.YamlSyntaxError:
                continue
            if len(documents) != 1:  # not a flow file (the source says so)
                continue
            root = documents[0]
            own = yamlnodes.scalar_text(yamlnodes.mapping_get(root, "namespace"))
            if not isinstance(root, yaml.MappingNode) or not own:
                continue
            rename = {own.split(".")[0]: "renamed"}
            try:
                new_text, _ = _edit(text, rename, {"system.readOnly": "true", "team": "a\u2028b"})
            except flowdoc.EditRefused as exc:
                failures.append((path.name, variant, str(exc)))
                continue
            old, new = (_leaves(yaml.safe_load(t), "", {}) for t in (text, new_text))
            for where in old.keys() | new.keys():
                before, after = old.get(where, "(absent)"), new.get(where, "(absent)")
                if before == after and type(before) is type(after) or where.startswith(".labels"):
                    continue
                if not (isinstance(before, str) and after in (
                        renaming.rename_namespace(before, rename),
                        renaming._rename_pattern(before, rename),
                        _pebble_renamed(before, rename))):
                    failures.append((path.name, variant, where, before, after))
            checked += 1
    assert failures == [] and checked > 2000


@pytest.mark.parametrize(("key", "expected"), [
    ("flowId", {FlowKey("company.team", "b")}),
    ('"flow\\u0049d"', {FlowKey("company.team", "b")}),  # the key spelled with an escape
    ("flow_id", set()),  # no flowId key: calls nothing
])
def test_the_flows_a_flow_calls_are_found_however_the_key_is_written(key: str, expected: set):
    text = ("id: a\nnamespace: company\ntasks:\n  - id: call\n"
            "    type: io.kestra.plugin.core.flow.Subflow\n    namespace: company.team\n"
            f"    {key}: b\n")
    flow = DesiredFlow(FlowKey("company", "a"), text, "a.yml")
    assert dependencies_of(flow) == expected

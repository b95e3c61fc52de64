"""Format-preserving edits of real flows: namespace renaming (with references) and labels."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURES, source_from
from kestra_promote.flows import flowdoc, references, renaming
from kestra_promote import yamlnodes
from kestra_promote.config import Config
from kestra_promote.flows.desired import prepare
from kestra_promote.errors import SourceError
from kestra_promote.models import FlowKey

VALIDS = FIXTURES / "flows/kestra-tests/valid/core/src/test/resources/flows/valids"
RENAME = {"io.kestra": "company"}


def _edit(text: str, rename=RENAME, labels=None) -> tuple[str, list[str]]:
    root = yamlnodes.compose_documents(text)[0]
    warnings: list[str] = []
    edits = renaming.rename_edits(text, root, rename, lambda ref, msg: warnings.append(msg))
    edits += flowdoc.label_edits(text, root, labels or {})
    return flowdoc.apply_edits(text, edits), warnings


def _leaf_differences(old, new, path="") -> list[tuple[str, object, object]]:
    if isinstance(old, dict) and isinstance(new, dict):
        assert old.keys() == new.keys(), path
        return [d for k in old for d in _leaf_differences(old[k], new[k], f"{path}.{k}")]
    if isinstance(old, list) and isinstance(new, list):
        assert len(old) == len(new), path
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True)) for d in
                _leaf_differences(a, b, f"{path}[{i}]")]
    return [] if old == new else [(path, old, new)]


KESTRA_2_0 = FIXTURES / "flows/kestra-2.0/valid"
KESTRA_1_3 = FIXTURES / "flows/kestra-1.3/valid"


def _flows_with_references() -> list[Path]:
    paths = sorted(VALIDS.glob("*.y*ml")) + sorted((FIXTURES / "flows/kestra-examples").rglob("*.y*ml"))
    paths += sorted(KESTRA_2_0.glob("*.y*ml")) + sorted(KESTRA_1_3.glob("*.y*ml"))
    chosen = []
    for path in paths:
        root = yamlnodes.compose_documents(path.read_text())[0]
        if any(not ref.templated for ref in references.references(root)):
            chosen.append(path)
    return chosen


REFERRING = _flows_with_references()


def _id(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.name}" if path.parent.name == "valid" else path.name


def test_the_corpus_covers_every_kind_of_reference():
    kinds = set()
    for path in REFERRING:
        for ref in references.references(yamlnodes.compose_documents(path.read_text())[0]):
            kinds.add(ref.what.split(" ")[0])
    assert {"Subflow", "ForEachItem", "ExecutionFlow", "ExecutionNamespace", "Flow"} <= kinds
    assert len(REFERRING) >= 20


@pytest.mark.parametrize("path", REFERRING, ids=_id)
def test_renaming_changes_exactly_the_namespace_scalars(path: Path):
    old_text = path.read_text()
    new_text, _ = _edit(old_text)
    root = yamlnodes.compose_documents(old_text)[0]
    own = yamlnodes.scalar_text(yamlnodes.mapping_get(root, "namespace")) or ""
    values = [own] + [ref.namespace for ref in references.references(root) if not ref.templated]
    expected = sum(1 for v in values if renaming.rename_namespace(v, RENAME) != v)
    # the structure: every value that changed is a namespace, renamed; nothing else moved
    differences = _leaf_differences(yaml.safe_load(old_text), yaml.safe_load(new_text))
    assert len(differences) == expected, differences
    for where, old, new in differences:
        assert isinstance(old, str) and renaming.rename_namespace(old, RENAME) == new, where
    # the text: same lines, comments included; changed lines differ only by the namespace
    old_lines, new_lines = old_text.splitlines(), new_text.splitlines()
    assert len(old_lines) == len(new_lines)
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert len(changed) == expected
    for a, b in changed:
        assert b == a.replace("io.kestra", "company", 1), (a, b)


def test_a_real_flow_trigger_keeps_its_comments_and_layout():
    text = (VALIDS / "trigger-multiplecondition-listener.yaml").read_text()
    new_text, warnings = _edit(text)
    diff = [line for line in difflib.unified_diff(text.splitlines(), new_text.splitlines(),
                                                  lineterm="", n=0) if line[:1] in "+-@"]
    assert diff == [
        "--- ", "+++ ",
        "@@ -2 +2 @@", "-namespace: io.kestra.tests.trigger", "+namespace: company.tests.trigger",
        "@@ -30 +30 @@", "-            namespace: io.kestra.tests.trigger",
        "+            namespace: company.tests.trigger",
        "@@ -34 +34 @@", "-            namespace: io.kestra.tests.trigger",
        "+            namespace: company.tests.trigger",
    ]
    assert warnings == [] and "#    inputs:" in new_text


def test_every_2_0_depends_on_reference_is_found():
    # 2.0 Flow triggers: dependsOn: [{namespace, flowId, ...}] (plugin/core/trigger/Flow.java)
    found = 0
    for path in sorted(KESTRA_2_0.glob("*.y*ml")):
        flow = yaml.safe_load(path.read_text())
        expected = [dep for trigger in flow.get("triggers") or []
                    if trigger.get("type") == "io.kestra.plugin.core.trigger.Flow"
                    for dep in trigger.get("dependsOn") or [] if dep.get("namespace")]
        refs = [r for r in references.references(yamlnodes.compose_documents(path.read_text())[0])
                if r.what.startswith("Flow trigger")]
        assert [(r.namespace, r.flow_id) for r in refs] == [
            (d["namespace"], d.get("flowId")) for d in expected], path.name
        found += len(refs)
    assert found >= 20


def test_a_2_0_flow_trigger_is_renamed_with_its_comments_and_ordered_after_its_upstream():
    text = (KESTRA_2_0 / "flow-trigger-multiple-depends-on-flow-listen.yaml").read_text()
    new_text, warnings = _edit(text, rename={"io.kestra.tests": "company"})
    assert warnings == []
    assert "io.kestra.tests" not in new_text
    root = yamlnodes.compose_documents(new_text)[0]
    deps = references.dependencies(root)
    assert deps and all(dep.namespace.startswith("company") for dep in deps)
    # dependsOn of a Dag task (task ids) is not a flow reference
    dag = (KESTRA_2_0 / "dag.yaml").read_text()
    assert references.references(yamlnodes.compose_documents(dag)[0]) == []


def test_preconditions_flows_and_namespace_filters_are_renamed():
    text = (VALIDS / "flow-trigger-preconditions-flow-listen.yaml").read_text()
    new_text, _ = _edit(text)
    assert new_text.count("namespace: company.tests.trigger.preconditions") == 3
    assert "value: company.tests.trigger\n" in new_text  # STARTS_WITH filter
    assert "value: trigger.preconditions\n" in new_text  # ENDS_WITH: not a namespace prefix


def test_expressions_are_never_rewritten_and_are_reported():
    text = (VALIDS / "task-flow-dynamic.yaml").read_text()
    new_text, warnings = _edit(text)
    assert 'namespace: "{{inputs.namespace}}"' in new_text
    assert warnings == ["Subflow task 'launch' references namespace '{{inputs.namespace}}' through "
                        "an expression: not rewritten; check it resolves in every environment"]


@pytest.mark.parametrize(
    ("before", "rename", "after"),
    [
        pytest.param("dev.company.team", {"dev.company": "company"}, "company.team", id="prefix"),
        pytest.param("dev.company", {"dev.company": "company"}, "company", id="exact"),
        pytest.param("dev.companyx", {"dev.company": "company"}, "dev.companyx", id="segment-only"),
        pytest.param("dev.company.x", {"dev": "", "dev.company": "acme"}, "acme.x", id="longest"),
        pytest.param("dev.company.x", {"dev": ""}, "company.x", id="drop-leading-segment"),
    ],
)
def test_rename_namespace(before: str, rename: dict, after: str):
    assert renaming.rename_namespace(before, rename) == after


def test_quoting_style_is_kept():
    text = ("id: a\nnamespace: 'dev.x'\ntasks:\n  - id: s\n    type: io.kestra.plugin.core.flow.Subflow\n"
            '    namespace: "dev.y"   # the child\n    flowId: b\n')
    new_text, _ = _edit(text, {"dev": "prod"})
    assert new_text == text.replace("'dev.x'", "'prod.x'").replace('"dev.y"', '"prod.y"')


LABEL = {"system.readOnly": "true"}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param("id: a\nnamespace: n\ntasks: []\n",
                     'id: a\nnamespace: n\nlabels:\n  system.readOnly: "true"\ntasks: []\n',
                     id="no-labels"),
        pytest.param("id: a\nnamespace: n # team\n\ntasks: []\n",
                     'id: a\nnamespace: n # team\nlabels:\n  system.readOnly: "true"\n\ntasks: []\n',
                     id="comment-after-namespace"),
        pytest.param("id: a\nlabels:\n    team: data  # owner\ntasks: []\n",
                     'id: a\nlabels:\n    team: data  # owner\n    system.readOnly: "true"\ntasks: []\n',
                     id="block-mapping"),
        pytest.param("id: a\nlabels: {team: data}\ntasks: []\n",
                     'id: a\nlabels: {team: data, system.readOnly: "true"}\ntasks: []\n',
                     id="flow-mapping"),
        pytest.param("id: a\nlabels: {}\ntasks: []\n",
                     'id: a\nlabels: {system.readOnly: "true"}\ntasks: []\n', id="empty-flow-mapping"),
        pytest.param("id: a\nlabels:\ntasks: []\n",
                     'id: a\nlabels: {system.readOnly: "true"}\ntasks: []\n', id="null"),
        pytest.param("id: a\nlabels:\n  system.readOnly: false\ntasks: []\n",
                     'id: a\nlabels:\n  system.readOnly: "true"\ntasks: []\n', id="corrected"),
        pytest.param('id: a\nlabels:\n  system.readOnly: "true"\ntasks: []\n',
                     'id: a\nlabels:\n  system.readOnly: "true"\ntasks: []\n', id="already-there"),
        pytest.param("id: a\nlabels:\n  - key: team\n    value: data\ntasks: []\n",
                     'id: a\nlabels:\n  - key: team\n    value: data\n  - key: "system.readOnly"\n'
                     '    value: "true"\ntasks: []\n', id="list-form"),
        pytest.param("id: a\nnamespace: n\r\ntasks: []\r\n",
                     'id: a\nnamespace: n\r\nlabels:\r\n  system.readOnly: "true"\r\ntasks: []\r\n',
                     id="crlf"),
        pytest.param("id: a\ntasks: []\nnamespace: n",
                     'id: a\ntasks: []\nnamespace: n\nlabels:\n  system.readOnly: "true"\n',
                     id="no-final-newline"),
    ],
)
def test_labels_are_added_without_touching_the_rest(before: str, after: str):
    new_text, _ = _edit(before, {}, LABEL)
    assert new_text == after
    assert yaml.safe_load(new_text)["labels"] in ({"system.readOnly": "true", "team": "data"},
                                                  {"system.readOnly": "true"},
                                                  [{"key": "team", "value": "data"},
                                                   {"key": "system.readOnly", "value": "true"}])


def test_dependencies_are_the_flows_called_or_listened_to():
    text = (VALIDS / "trigger-multiplecondition-listener.yaml").read_text()
    assert references.dependencies(yamlnodes.compose_documents(text)[0]) == {
        FlowKey("io.kestra.tests.trigger", "trigger-multiplecondition-flow-a"),
        FlowKey("io.kestra.tests.trigger", "trigger-multiplecondition-flow-b"),
    }


def test_prepare_renames_labels_and_filters():
    source = source_from(("a.yml", "id: a\nnamespace: dev.company\ntasks: [{id: t}]\n"),
                     ("b.yml", "id: b\nnamespace: dev.other\ntasks: [{id: t}]\n"))
    desired = prepare(source, Config(rename={"dev": ""}, labels=LABEL, include=("company",)))
    (flow,) = desired.flows.values()
    assert flow.key == FlowKey("company", "a")
    assert flow.source == ('id: a\nnamespace: company\nlabels:\n  system.readOnly: "true"\n'
                           "tasks: [{id: t}]\n")
    assert desired.excluded == (FlowKey("other", "b"),)


def test_a_rename_that_makes_two_flows_one_is_an_error():
    source = source_from(("a.yml", "id: a\nnamespace: dev.company\ntasks: [{id: t}]\n"),
                     ("b.yml", "id: a\nnamespace: company\ntasks: [{id: t}]\n"))
    with pytest.raises(SourceError) as caught:
        prepare(source, Config(rename={"dev.company": "company"}))
    assert [str(p) for p in caught.value.problems] == [
        "a.yml: company/a: renaming makes 2 flows the same flow company/a: a.yml (dev.company), "
        "b.yml (company)"]


def test_a_rename_to_an_invalid_namespace_is_an_error():
    source = source_from(("a.yml", "id: a\nnamespace: dev\ntasks: [{id: t}]\n"))
    with pytest.raises(SourceError) as caught:
        prepare(source, Config(rename={"dev": ""}))
    assert "a.yml: dev/a: after renaming 'dev': namespace is empty" in [
        str(p) for p in caught.value.problems]


def test_a_rename_that_leaves_a_namespace_file_no_namespace_is_an_error():
    from kestra_promote.models import DesiredFile, FileKey

    source = source_from(("a.yml", "id: a\nnamespace: dev.company\ntasks: [{id: t}]\n"))
    key = FileKey("dev", "/x.py")
    source.files[key] = DesiredFile(key, b"x", "files/dev/x.py")
    with pytest.raises(SourceError) as caught:
        prepare(source, Config(rename={"dev": ""}))
    assert any(str(p).startswith("files/dev/x.py: after renaming 'dev': namespace is empty")
               for p in caught.value.problems)


def test_namespace_files_outside_include_are_left_out():
    from kestra_promote.models import DesiredFile, FileKey

    source = source_from(("a.yml", "id: a\nnamespace: company\ntasks: [{id: t}]\n"))
    inside, outside = FileKey("company", "/x.py"), FileKey("other", "/secret-tool.py")
    for key in (inside, outside):
        source.files[key] = DesiredFile(key, b"x", f"files/{key.namespace}{key.path}")
    desired = prepare(source, Config(include=("company",)))
    assert list(desired.files) == [inside] and outside in desired.excluded

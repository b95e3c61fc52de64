"""Renaming every namespace property of Kestra's core plugins (references.NAMESPACE_PROPERTIES), in
the plugins and in pluginDefaults; the one warning per flow about namespace-like values left as
written; YAML anchors and aliases."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import FIXTURES, source_from
from kestra_promote.flows import flowdoc, references, renaming
from kestra_promote import yamlnodes
from kestra_promote.config import Config
from kestra_promote.flows.desired import dependencies_of, prepare
from kestra_promote.errors import SourceError
from kestra_promote.models import FlowKey

from benchmarks import rename_references

RENAME = {"dev.company": "company"}
VALUE = "dev.company.team"
RENAMED = "company.team"
COMMENT = "  # the namespace it works on"


def _edit(text: str, rename=RENAME) -> tuple[str, list[str]]:
    root = yamlnodes.compose_documents(text)[0]
    warnings: list[str] = []
    edits = renaming.rename_edits(text, root, rename, lambda ref, message: warnings.append(message))
    return flowdoc.apply_edits(text, edits), warnings


def _nested(path: str, value: str, indent: int) -> list[str]:
    """YAML lines putting ``value`` at ``path`` (``a.b[]``: each item of list b)."""
    head, _, rest = path.partition(".")
    pad = " " * indent
    if head.endswith("[]"):
        key = head[:-2]
        if not rest:
            return [f"{pad}{key}:", f"{pad}  - {value}"]
        inner = _nested(rest, value, indent + 4)
        return [f"{pad}{key}:", f"{pad}  - {inner[0].lstrip()}"] + inner[1:]
    if not rest:
        return [f"{pad}{head}: {value}"]
    return [f"{pad}{head}:"] + _nested(rest, value, indent + 2)


def _plugin_lines(prop: references.NamespaceProperty, value: str, indent: int) -> list[str]:
    if prop.kind == references.FILTER:  # 1.3 preconditions.where[].filters[]
        filter_lines = ["field: NAMESPACE", "type: EQUAL_TO", f"value: {value}"]
        lines = _nested(prop.path, filter_lines[0], indent)
        pad = " " * (len(lines[-1]) - len(lines[-1].lstrip(" -")))
        return lines + [pad + line for line in filter_lines[1:]]
    lines = _nested(prop.path, value, indent)
    if prop.calls and prop.path.endswith("namespace"):
        last = lines[-1]
        pad = " " * (len(last) - len(last.lstrip(" -")))
        lines.append(f"{pad}flowId: child")
    return lines


def _flow(prop: references.NamespaceProperty, plugin_type: str, value: str) -> str:
    """A flow using ``plugin_type`` (a task, a trigger, or a condition of a Schedule trigger)
    with ``value`` at ``prop.path``."""
    header = "id: parent\nnamespace: dev.company  # the flow's own\n"
    body = _plugin_lines(prop, value, 4)
    if prop.name.endswith("trigger"):
        return (header + "tasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n"
                "    message: hi\ntriggers:\n  - id: plugin\n"
                f"    type: {plugin_type}\n" + "\n".join(body) + "\n")
    if "ondition" in prop.name:
        return (header + "tasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n"
                "    message: hi\ntriggers:\n  - id: on-schedule\n"
                "    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '0 * * * *'\n"
                f"    conditions:\n      - type: {plugin_type}\n"
                + "\n".join("    " + line for line in body) + "\n")
    return (header + "tasks:\n  - id: plugin\n"
            f"    type: {plugin_type}\n" + "\n".join(body) + "\n")


def _cases() -> list:
    cases = []
    for prop in references.NAMESPACE_PROPERTIES:
        for plugin_type in prop.types or ("io.kestra.plugin.core.flow.WorkingDirectory",):
            name = plugin_type.removeprefix("io.kestra.")
            cases.append(pytest.param(prop, plugin_type, id=f"{name}:{prop.path}"))
    return cases


@pytest.mark.parametrize(("prop", "plugin_type"), _cases())
def test_each_property_of_the_table_is_renamed_in_place(prop, plugin_type):
    text = _flow(prop, plugin_type, VALUE + COMMENT)
    new_text, warnings = _edit(text)
    assert warnings == []
    # exactly the two namespaces changed, comments and layout kept
    assert new_text == text.replace("dev.company", "company")
    assert new_text.count(COMMENT) == 1 and "# the flow's own" in new_text
    assert yaml.safe_load(new_text) == yaml.safe_load(text.replace(VALUE, RENAMED).replace(
        "namespace: dev.company ", "namespace: company "))


@pytest.mark.parametrize(("prop", "plugin_type"), _cases())
def test_each_property_keeps_its_quoting(prop, plugin_type):
    text = _flow(prop, plugin_type, f"'{VALUE}'")
    new_text, _ = _edit(text)
    assert f"'{RENAMED}'" in new_text and VALUE not in new_text


@pytest.mark.parametrize("prop", [p for p in references.NAMESPACE_PROPERTIES if p.types],
                         ids=lambda p: f"{p.types[0].removeprefix('io.kestra.')}:{p.path}")
def test_each_property_is_renamed_in_plugin_defaults(prop):
    values = _plugin_lines(prop, VALUE + COMMENT, 6)
    text = ("id: parent\nnamespace: dev.company\ntasks:\n  - id: hello\n"
            "    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
            f"pluginDefaults:\n  - type: {prop.types[0]}\n    values:\n" + "\n".join(values) + "\n")
    new_text, warnings = _edit(text)
    assert warnings == []
    assert new_text == text.replace("dev.company", "company")


def _renamed_to_nothing(text: str) -> tuple[int, str, object]:
    """The one problem renaming ``VALUE`` to nothing gives: (line, where, the problem)."""
    with pytest.raises(SourceError) as caught:
        prepare(source_from(("a.yml", text)), Config(rename={VALUE: ""}))
    (problem,) = caught.value.problems
    where = re.search(r"the rename turns namespace '[^']*' at (\S+) into an empty namespace",
                      problem.message)
    assert where, problem
    return problem.line, re.sub(r"\[\d+\]", "[]", where.group(1)), problem


@pytest.mark.parametrize(("prop", "plugin_type"), _cases())
def test_each_property_renamed_to_nothing_is_a_problem_not_an_empty_namespace(prop, plugin_type):
    # `--rename dev=` used to deploy `namespace: ""` (exact, prefix and list properties alike)
    text = _flow(prop, plugin_type, VALUE + COMMENT)
    line, where, problem = _renamed_to_nothing(text)
    assert line == text[:text.index(VALUE)].count("\n") + 1
    assert where.endswith("filters[].value" if prop.kind == references.FILTER else prop.path)
    assert problem.path == "a.yml" and problem.flow == FlowKey("dev.company", "parent")


@pytest.mark.parametrize("prop", [p for p in references.NAMESPACE_PROPERTIES if p.types],
                         ids=lambda p: f"{p.types[0].removeprefix('io.kestra.')}:{p.path}")
def test_each_property_renamed_to_nothing_in_plugin_defaults_is_a_problem(prop):
    values = _plugin_lines(prop, VALUE, 6)
    text = ("id: parent\nnamespace: dev.company\ntasks:\n  - id: hello\n"
            "    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
            f"pluginDefaults:\n  - type: {prop.types[0]}\n    values:\n" + "\n".join(values) + "\n")
    line, where, _ = _renamed_to_nothing(text)
    assert line == text[:text.index(VALUE)].count("\n") + 1 and where.startswith("pluginDefaults")


def test_a_subflow_namespace_set_once_in_plugin_defaults():
    # a common pattern in public flow repositories
    text = """id: parent
namespace: dev.company
tasks:
  - id: first
    type: io.kestra.plugin.core.flow.Subflow
    flowId: child-a
  - id: second
    type: io.kestra.plugin.core.flow.Subflow
    flowId: child-b
pluginDefaults:
  - type: io.kestra.plugin.core.flow.Subflow
    values:
      namespace: dev.company.children   # where every subflow lives
      wait: true
"""
    new_text, warnings = _edit(text)
    assert warnings == []
    assert new_text == text.replace("dev.company", "company")
    # the flows it calls, for the order of writes, take the namespace from the defaults too
    assert references.dependencies(yamlnodes.compose_documents(new_text)[0]) == {
        FlowKey("company.children", "child-a"), FlowKey("company.children", "child-b")}


@pytest.mark.parametrize(
    ("section", "plugin_type"),
    [
        pytest.param("pluginDefaults", "io.kestra.plugin.core.kv", id="type-prefix"),
        pytest.param("pluginDefaults", "io.kestra.plugin.core", id="core-prefix"),
        pytest.param("taskDefaults", "io.kestra.plugin.core.kv.Get", id="1.3-taskDefaults"),
        pytest.param("pluginDefaults", "io.kestra.core.tasks.flows.Subflow", id="older-name"),
    ],
)
def test_plugin_defaults_match_types_by_prefix_and_older_names(section, plugin_type):
    text = (f"id: a\nnamespace: dev.company\ntasks:\n  - id: t\n    type: {plugin_type}.X\n"
            f"{section}:\n  - type: {plugin_type}\n    values:\n      namespace: {VALUE}\n")
    new_text, warnings = _edit(text)
    assert (new_text, warnings) == (text.replace("dev.company", "company"), [])


def test_a_plugin_default_of_a_type_without_namespace_property_is_reported():
    text = ("id: a\nnamespace: dev.company\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
            "pluginDefaults:\n  - type: io.kestra.plugin.core.log.Log\n    values:\n"
            f"      message: {VALUE}\n")
    new_text, warnings = _edit(text)
    assert new_text == text.replace("namespace: dev.company\n", "namespace: company\n")
    assert warnings == [
        "written as a renamed namespace but in no property kestra-promote renames, so left as "
        "written: 'dev.company.team' (the rename gives 'company.team') at "
        "pluginDefaults[0].values.message, line 9; check whether it should follow the rename"]


# -- prefixes, patterns, comparisons and filters --------------------------------------------

def _task(plugin_type: str, lines: str) -> str:
    return f"id: a\nnamespace: dev.company\ntasks:\n  - id: t\n    type: {plugin_type}\n{lines}"


@pytest.mark.parametrize(
    ("pattern", "renamed"),
    [
        pytest.param("dev.company.*", "company.*", id="children"),
        pytest.param("dev.company.te?m*", "company.te?m*", id="inside"),
        pytest.param("dev.company", "company", id="no-wildcard"),
        pytest.param("dev.other*", "dev.other*", id="outside"),
    ],
)
def test_namespace_patterns_are_renamed_when_that_keeps_what_they_match(pattern, renamed):
    text = _task("io.kestra.plugin.core.kv.PurgeKV", f"    namespacePattern: '{pattern}'\n")
    new_text, warnings = _edit(text)
    assert f"namespacePattern: '{renamed}'" in new_text and warnings == []


@pytest.mark.parametrize("pattern", ["dev.comp*", "*.team", "dev*"])
def test_a_pattern_that_may_match_renamed_namespaces_otherwise_is_reported(pattern):
    text = _task("io.kestra.plugin.core.namespace.PurgeFiles", f"    namespacePattern: '{pattern}'\n")
    new_text, warnings = _edit(text)
    assert f"namespacePattern: '{pattern}'" in new_text
    assert warnings == [f"PurgeFiles task 't' matches namespaces with the pattern {pattern!r}, "
                        "which may match renamed namespaces: not rewritten"]


def test_a_prefix_covering_renamed_namespaces_partly_is_reported():
    text = _task("io.kestra.plugin.core.log.PurgeLogs", "    namespace: dev\n    endDate: x\n")
    new_text, warnings = _edit(text)
    assert "    namespace: dev\n" in new_text
    assert warnings == ["PurgeLogs task 't' filters on namespace prefix 'dev', which covers "
                        "renamed namespaces only partly: not rewritten"]


@pytest.mark.parametrize(
    ("lines", "renamed"),
    [
        pytest.param("", True, id="equals-by-default"),
        pytest.param("        comparison: EQUALS\n", True, id="equals"),
        pytest.param("        comparison: PREFIX\n", True, id="prefix"),
        pytest.param("        prefix: true\n", True, id="prefix-flag"),
        pytest.param("        comparison: SUFFIX\n", False, id="suffix"),
    ],
)
def test_execution_namespace_conditions_follow_their_comparison(lines, renamed):
    text = ("id: a\nnamespace: dev.company\ntasks: [{id: t, type: io.kestra.plugin.core.log.Log, "
            "message: hi}]\ntriggers:\n  - id: f\n    type: io.kestra.plugin.core.trigger.Flow\n"
            "    conditions:\n      - type: io.kestra.plugin.core.condition.ExecutionNamespace\n"
            f"        namespace: {VALUE}\n" + lines)
    new_text, warnings = _edit(text)
    assert (f"namespace: {RENAMED}\n" in new_text) is renamed
    # a suffix is not a namespace: left as written, and reported since it reads as one
    assert len(warnings) == (0 if renamed else 1)


@pytest.mark.parametrize(
    ("operator", "renamed"),
    [("EQUAL_TO", True), ("NOT_EQUAL_TO", True), ("STARTS_WITH", True), ("ENDS_WITH", False),
     ("CONTAINS", False), ("REGEX", False)],
)
def test_precondition_filters_on_the_namespace_follow_their_operator(operator, renamed):
    text = ("id: a\nnamespace: dev.company\ntasks: [{id: t, type: io.kestra.plugin.core.log.Log, "
            "message: hi}]\ntriggers:\n  - id: f\n    type: io.kestra.plugin.core.trigger.Flow\n"
            "    preconditions:\n      id: p\n      where:\n        - id: w\n          filters:\n"
            f"            - field: NAMESPACE\n              type: {operator}\n"
            f"              value: {VALUE}\n")
    new_text, _ = _edit(text)
    assert (f"value: {RENAMED}\n" in new_text) is renamed


def test_in_filters_rename_each_value():
    text = ("id: a\nnamespace: dev.company\ntasks: [{id: t, type: io.kestra.plugin.core.log.Log, "
            "message: hi}]\ntriggers:\n  - id: f\n    type: io.kestra.plugin.core.trigger.Flow\n"
            "    preconditions:\n      where:\n        - id: w\n          filters:\n"
            "            - field: NAMESPACE\n              type: NOT_IN\n"
            "              values: [dev.company.a, 'dev.company.b', other]  # not these\n")
    new_text, warnings = _edit(text)
    assert "values: [company.a, 'company.b', other]  # not these\n" in new_text and warnings == []


# -- expressions and values left as written -------------------------------------------------

@pytest.mark.parametrize("expression", ["{{ flow.namespace }}", "{{flow.namespace}}.archive",
                                        "{{- flow.namespace -}}"])
def test_flow_namespace_expressions_follow_the_rename_without_warning(expression):
    text = _task("io.kestra.plugin.core.kv.Get", f'    namespace: "{expression}"\n    key: k\n')
    assert _edit(text) == (text.replace("namespace: dev.company\n", "namespace: company\n"), [])


def test_other_expressions_in_a_property_of_the_table_are_reported():
    text = _task("io.kestra.plugin.core.kv.Set", '    namespace: "{{ inputs.ns }}"\n    key: k\n'
                 "    value: v\n")
    new_text, warnings = _edit(text)
    assert '"{{ inputs.ns }}"' in new_text
    assert warnings == ["kv.Set task 't' references namespace '{{ inputs.ns }}' through an "
                        "expression: not rewritten; check it resolves in every environment"]


FLOW_WITH_LEFT_VALUES = """id: a
namespace: dev.company
description: runs dev.company.team jobs every night   # free text: not a namespace
variables:
  target: dev.company.team
  site: https://dev.company.team/
  other: dev.companyx
  templated: "{{ 'dev.company.team' }}"
inputs:
  - id: ns
    type: STRING
    defaults: dev.company
tasks:
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: hi
  - id: dev.company
    type: io.kestra.plugin.core.flow.Subflow
    namespace: dev.company.team
    flowId: dev.company.b
"""


def test_values_written_as_a_renamed_namespace_are_reported_once_per_flow():
    desired = prepare(source_from(("a.yml", FLOW_WITH_LEFT_VALUES),
                              ("b.yml", "id: b\nnamespace: dev.company\ntasks: [{id: t}]\n")),
                      Config(rename=RENAME))
    assert [str(w) for w in desired.warnings] == [  # the flow named as the plan names it
        "a.yml:5: company/a: written as a renamed namespace but in no property "
        "kestra-promote renames, so left as written: 'dev.company.team' (the rename gives "
        "'company.team') at variables.target, line 5, 'dev.company' (the rename gives 'company') "
        "at inputs[0].defaults, line 12; check whether they should follow the rename"]
    # nothing but the namespace and the Subflow's target changed
    flow = desired.flows[FlowKey("company", "a")]
    assert flow.source == FLOW_WITH_LEFT_VALUES.replace(
        "namespace: dev.company\n", "namespace: company\n").replace(
        "namespace: dev.company.team\n", "namespace: company.team\n")


def test_a_value_left_as_written_keeps_the_flow_unchanged_and_is_a_warning_only():
    text = _task("io.kestra.plugin.core.debug.Return", "    format: dev.company.x\n")
    new_text, warnings = _edit(text)
    assert new_text == text.replace("namespace: dev.company\n", "namespace: company\n")
    assert len(warnings) == 1 and "'dev.company.x' (the rename gives 'company.x') at " \
        "tasks[0].format, line 6" in warnings[0]


# -- anchors and aliases --------------------------------------------------------------------

ANCHORED = """id: parent
namespace: &ns dev.company   # anchored here
variables:
  other: hello
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: *ns
    flowId: child
  - id: purge
    type: io.kestra.plugin.core.log.PurgeLogs
    namespace: *ns
  - id: read
    type: io.kestra.plugin.core.kv.Get
    namespace: &kv !!str dev.company.kv
    key: k
  - id: write
    type: io.kestra.plugin.core.kv.Set
    namespace: *kv
    key: k
    value: v
"""


def test_an_anchored_namespace_is_edited_once_and_its_aliases_follow():
    # used to corrupt the text ("namespace: prod.companysks:") and crash with a YAML error
    desired = prepare(source_from(("a.yml", ANCHORED)), Config(rename={"dev": "prod"},
                                                           labels={"team": "data"}))
    flow = desired.flows[FlowKey("prod.company", "parent")]
    assert flow.source == ANCHORED.replace("&ns dev.company", "&ns prod.company").replace(
        "&kv !!str dev.company.kv", "&kv !!str prod.company.kv").replace(
        "variables:", 'labels:\n  team: "data"\nvariables:')
    assert desired.warnings == ()
    loaded = yaml.safe_load(flow.source)
    assert loaded["namespace"] == loaded["tasks"][0]["namespace"] == "prod.company"
    assert loaded["tasks"][1]["namespace"] == "prod.company"
    assert loaded["tasks"][3]["namespace"] == "prod.company.kv"
    assert dependencies_of(flow) == {FlowKey("prod.company", "child")}


def test_an_anchor_with_a_comment_before_its_value_keeps_both():
    text = ("id: a\nnamespace: dev.company\ntasks:\n  - id: t\n"
            "    type: io.kestra.plugin.core.flow.Subflow\n    flowId: b\n"
            "    namespace: &target # the child\n      dev.company.child\n"
            "  - id: u\n    type: io.kestra.plugin.core.flow.Subflow\n    flowId: c\n"
            "    namespace: *target\n")
    new_text, warnings = _edit(text)
    assert new_text == text.replace("dev.company", "company") and warnings == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param("labels:\n  team: &t data\n  system.readOnly: &ro false\ntasks: []\n",
                     'labels:\n  team: &t data\n  system.readOnly: &ro "true"\ntasks: []\n',
                     id="anchored-value-corrected"),
        pytest.param("variables:\n  t: &t data\nlabels:\n  team: *t\ntasks: []\n",
                     'variables:\n  t: &t data\nlabels:\n  team: *t\n  system.readOnly: "true"\n'
                     "tasks: []\n", id="alias-last"),
        pytest.param("variables:\n  t: &t data\nlabels:\n  team:\n    *t\n# end\ntasks: []\n",
                     'variables:\n  t: &t data\nlabels:\n  team:\n    *t\n  system.readOnly: "true"\n'
                     "# end\ntasks: []\n", id="alias-on-the-next-line"),
        pytest.param("labels: &l\ntasks: []\n", 'labels: &l {system.readOnly: "true"}\ntasks: []\n',
                     id="anchored-null"),
    ],
)
def test_labels_are_added_next_to_anchors_and_aliases(before, after):
    text = "id: a\nnamespace: n\n" + before
    root = yamlnodes.compose_documents(text)[0]
    new_text = flowdoc.apply_edits(text, flowdoc.label_edits(text, root, {"system.readOnly": "true"}))
    assert new_text == "id: a\nnamespace: n\n" + after
    assert yaml.safe_load(new_text)["labels"]["system.readOnly"] == "true"


def test_labels_shared_through_an_anchor_are_a_problem_not_a_silent_change():
    text = ("id: a\nnamespace: n\nlabels: &l {team: data}\ntasks:\n  - id: t\n"
            "    type: io.kestra.plugin.core.flow.Subflow\n    namespace: n\n    flowId: b\n"
            "    labels: *l\n")
    with pytest.raises(SourceError) as caught:
        prepare(source_from(("a.yml", text)), Config(labels={"system.readOnly": "true"}))
    assert [str(p) for p in caught.value.problems] == [
        "a.yml: n/a: 'labels' (line 3) is a YAML anchor also used through an alias: adding "
        "labels would change it there too; write it out"]
    # labels already there: nothing to change, no problem
    same = text.replace("{team: data}", '{team: data, system.readOnly: "true"}')
    assert prepare(source_from(("a.yml", same)), Config(labels={"system.readOnly": "true"})).flows


# -- the table, the docs and Kestra's own test flows ----------------------------------------

def test_the_docs_list_every_property_of_the_table():
    page = (FIXTURES.parent.parent / "docs" / "how-it-works.md").read_text()
    rows = set(re.findall(r"^ *\| (`[^|]+`) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", page, re.M))
    for prop in references.NAMESPACE_PROPERTIES:
        types = f"`{prop.types[0].removeprefix(references.CORE)}`" if prop.types else "any task"
        assert any(path == f"`{prop.path}`" and where.startswith(types)
                   and all(f"`{older}`" in where for older in prop.types[1:])
                   and versions.strip() == prop.versions
                   and kind.strip().split(",")[0].split(" (")[0].split(" on ")[0] == prop.kind
                   for path, where, versions, kind in rows), (prop.name, prop.path)


EXPECTED_COUNTS = {
    "2.0": {
        ("(no property of the table) defaults", "reported"): 1,  # kv.yaml: an input's default
        ("(no property of the table) namespace", "reported"): 1,  # a test-only task type
        ("Flow trigger: dependsOn[].namespace", "rewritten"): 26,
        ("PurgeLogs task: namespace", "untouched"): 1,
        ("Subflow task: namespace", "reported"): 1,  # through an expression
        ("Subflow task: namespace", "rewritten"): 22,
        ("Subflow task: namespace", "untouched"): 1,
        ("namespaceFiles: namespaceFiles.namespaces[]", "rewritten"): 3,
    },
    "1.3": {
        ("(no property of the table) defaults", "reported"): 1,
        ("(no property of the table) namespace", "reported"): 1,
        ("ExecutionFlow condition: namespace", "rewritten"): 12,
        ("ExecutionNamespace condition: namespace", "rewritten"): 1,
        ("Flow trigger: preconditions.flows[].namespace", "rewritten"): 8,
        ("Flow trigger: preconditions.where[].filters[]", "rewritten"): 1,
        ("ForEachItem task: namespace", "rewritten"): 11,
        ("PurgeLogs task: namespace", "untouched"): 1,
        ("Subflow task: namespace", "reported"): 1,
        ("Subflow task: namespace", "rewritten"): 19,
        ("Subflow task: namespace", "untouched"): 2,
        ("namespaceFiles: namespaceFiles.namespaces[]", "rewritten"): 3,
    },
}


def test_kestra_test_flows_renamed_by_their_top_segment():
    # counts of benchmarks/rename_references.py: stable unless the table or the rules change
    counts = {version: dict(rename_references.measure(folder))
              for version, folder in rename_references.CORPORA.items()}
    assert counts == EXPECTED_COUNTS

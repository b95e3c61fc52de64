"""One flow document: its references to other flows and namespaces, and format-preserving edits.

Edits replace exactly the characters of the scalars that change (found through node positions
from ``yaml.compose``) or insert new lines, so comments, quoting and layout survive and the diff a
reviewer sees is the smallest possible. Expressions (``{{ ... }}``) are never rewritten.

Which properties hold a namespace is one table, ``NAMESPACE_PROPERTIES``, read from Kestra's own
plugins; a flow's ``pluginDefaults`` are looked up in the same table. Any other value written as
a namespace that a rename covers is left as it is and reported, once per flow.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import yaml

from . import yamlnodes
from .models import FlowKey

# -- which properties hold a namespace -------------------------------------------------------

# How a property uses its namespace, hence when a rename may rewrite it:
EXACT = "exact"    # a namespace: rewritten when the rename covers it
PREFIX = "prefix"  # a namespace and the ones below it: rewritten when the rename covers it;
                   # reported when it is a parent of a renamed namespace (it covers it only partly)
GLOB = "glob"      # a pattern, `*` and `?` wildcards: rewritten when written without wildcards, or
                   # when the text before the first wildcard is inside one renamed namespace
                   # (`dev.company.*`); reported when it may match renamed namespaces otherwise
COMPARISON = "exact or prefix"  # by the plugin's `comparison` (EQUALS, PREFIX; SUFFIX is not a
                                # namespace) or its `prefix: true`
FILTER = "filter"  # 1.3 `preconditions.where` filter on the NAMESPACE field: `value` / `values`,
                   # exact for EQUAL_TO, NOT_EQUAL_TO, IN, NOT_IN, prefix for STARTS_WITH
                   # (ENDS_WITH, CONTAINS, REGEX compare text, not namespaces)

CORE = "io.kestra.plugin.core."


@dataclass(frozen=True)
class NamespaceProperty:
    """A property of a Kestra plugin that holds a namespace."""

    name: str             # how messages name the plugin
    types: tuple[str, ...]  # the type, then the older names Kestra 1.3 still accepts; () = any
    path: str             # below the plugin: `a.b` nested keys, `a[]` each item of the list `a`
    kind: str             # EXACT, PREFIX, GLOB, COMPARISON or FILTER
    versions: str         # the Kestra versions that have it
    source: str           # where Kestra defines it, under core/src/main/java/io/kestra/
    calls: bool = False   # with a `flowId` beside it, a flow this one calls or listens to


_P = NamespaceProperty
_SUBFLOW = (CORE + "flow.Subflow", "io.kestra.core.tasks.flows.Subflow",
            "io.kestra.core.tasks.flows.Flow")
_FLOW_TRIGGER = (CORE + "trigger.Flow", "io.kestra.core.models.triggers.types.Flow")
_BOTH, _V13, _V20 = "1.3, 2.0", "1.3", "2.0"

# Every namespace property of Kestra's core plugins (kestra-io/kestra, core/src/main/java/io/kestra/
# plugin/core/, Kestra 2.0 at 8ecd8337 and 1.3 at releases/v1.3.x). 2.0 dropped conditions, the
# 1.3-only tasks below and the older `io.kestra.core...` type names. A namespace in a
# `pluginDefaults` (or 1.3 `taskDefaults`) entry is found through the same rows: those whose type
# is the entry's `type` or starts with it (PluginDefaultService, both versions).
NAMESPACE_PROPERTIES: tuple[NamespaceProperty, ...] = (
    _P("Subflow task", _SUBFLOW, "namespace", EXACT, _BOTH, "plugin/core/flow/Subflow.java",
       calls=True),
    _P("ForEachItem task", (CORE + "flow.ForEachItem", "io.kestra.core.tasks.flows.ForEachItem"),
       "namespace", EXACT, _V13, "plugin/core/flow/ForEachItem.java", calls=True),
    _P("Flow trigger", _FLOW_TRIGGER, "dependsOn[].namespace", EXACT, _V20,
       "plugin/core/trigger/Flow.java (Dependency)", calls=True),
    _P("Flow trigger", _FLOW_TRIGGER, "preconditions.flows[].namespace", EXACT, _V13,
       "plugin/core/trigger/Flow.java (UpstreamFlow)", calls=True),
    _P("Flow trigger", _FLOW_TRIGGER, "preconditions.where[].filters[]", FILTER, _V13,
       "plugin/core/trigger/Flow.java (Filter)"),
    _P("ExecutionFlow condition", (
        CORE + "condition.ExecutionFlow", CORE + "condition.ExecutionFlowCondition",
        "io.kestra.core.models.conditions.types.ExecutionFlowCondition"),
       "namespace", EXACT, _V13, "plugin/core/condition/ExecutionFlow.java", calls=True),
    _P("ExecutionNamespace condition", (
        CORE + "condition.ExecutionNamespace", CORE + "condition.ExecutionNamespaceCondition",
        "io.kestra.core.models.conditions.types.ExecutionNamespaceCondition"),
       "namespace", COMPARISON, _V13, "plugin/core/condition/ExecutionNamespace.java"),
    _P("FlowCondition", (CORE + "condition.FlowCondition",
                         "io.kestra.core.models.conditions.types.FlowCondition"),
       "namespace", EXACT, _V13, "plugin/core/condition/FlowCondition.java"),
    _P("FlowNamespaceCondition", (CORE + "condition.FlowNamespaceCondition",
                                  "io.kestra.core.models.conditions.types.FlowNamespaceCondition"),
       "namespace", COMPARISON, _V13, "plugin/core/condition/FlowNamespaceCondition.java"),
    _P("kv.Get task", (CORE + "kv.Get",), "namespace", EXACT, _BOTH, "plugin/core/kv/Get.java"),
    _P("kv.GetKeys task", (CORE + "kv.GetKeys",), "namespace", EXACT, _BOTH,
       "plugin/core/kv/GetKeys.java"),
    _P("kv.Set task", (CORE + "kv.Set",), "namespace", EXACT, _BOTH, "plugin/core/kv/Set.java"),
    _P("kv.Put task", (CORE + "kv.Put",), "namespace", EXACT, _BOTH, "plugin/core/kv/Put.java"),
    _P("kv.Delete task", (CORE + "kv.Delete",), "namespace", EXACT, _BOTH,
       "plugin/core/kv/Delete.java"),
    _P("PurgeKV task", (CORE + "kv.PurgeKV",), "namespaces[]", PREFIX, _BOTH,
       "plugin/core/kv/PurgeKV.java, purge/PurgeTask.java"),
    _P("PurgeKV task", (CORE + "kv.PurgeKV",), "namespacePattern", GLOB, _BOTH,
       "plugin/core/kv/PurgeKV.java, purge/PurgeTask.java"),
    _P("UploadFiles task", (CORE + "namespace.UploadFiles",), "namespace", EXACT, _BOTH,
       "plugin/core/namespace/UploadFiles.java"),
    _P("DownloadFiles task", (CORE + "namespace.DownloadFiles",), "namespace", EXACT, _BOTH,
       "plugin/core/namespace/DownloadFiles.java"),
    _P("DeleteFiles task", (CORE + "namespace.DeleteFiles",), "namespace", EXACT, _BOTH,
       "plugin/core/namespace/DeleteFiles.java"),
    _P("PurgeFiles task", (CORE + "namespace.PurgeFiles",), "namespaces[]", PREFIX, _BOTH,
       "plugin/core/namespace/PurgeFiles.java, purge/PurgeTask.java"),
    _P("PurgeFiles task", (CORE + "namespace.PurgeFiles",), "namespacePattern", GLOB, _BOTH,
       "plugin/core/namespace/PurgeFiles.java, purge/PurgeTask.java"),
    _P("PurgeExecutions task", (CORE + "execution.PurgeExecutions",
                                "io.kestra.core.tasks.storages.Purge", CORE + "storage.Purge"),
       "namespace", PREFIX, _BOTH, "plugin/core/execution/PurgeExecutions.java"),
    _P("PurgeLogs task", (CORE + "log.PurgeLogs",), "namespace", PREFIX, _BOTH,
       "plugin/core/log/PurgeLogs.java"),
    _P("PurgeStorage task", (CORE + "storage.PurgeStorage",), "namespace", PREFIX, _V20,
       "plugin/core/storage/PurgeStorage.java"),
    _P("Count task", (CORE + "execution.Count", "io.kestra.core.tasks.executions.Counts"),
       "flows[].namespace", EXACT, _V13, "plugin/core/execution/Count.java"),
    _P("Count task", (CORE + "execution.Count", "io.kestra.core.tasks.executions.Counts"),
       "namespaces[]", EXACT, _V13, "plugin/core/execution/Count.java"),
    _P("Resume task", (CORE + "execution.Resume",), "namespace", EXACT, _V13,
       "plugin/core/execution/Resume.java"),
    _P("Fetch task", (CORE + "log.Fetch", "io.kestra.core.tasks.log.Fetch"), "namespace", EXACT,
       _V13, "plugin/core/log/Fetch.java"),
    _P("Toggle task", (CORE + "trigger.Toggle", "io.kestra.core.tasks.trigger.Toggle"),
       "namespace", EXACT, _V13, "plugin/core/trigger/Toggle.java"),
    _P("Template task", (CORE + "flow.Template", "io.kestra.core.tasks.flows.Template"),
       "namespace", EXACT, _V13, "plugin/core/flow/Template.java"),
    _P("namespaceFiles", (), "namespaceFiles.namespaces[]", EXACT, _BOTH,
       "core/models/tasks/NamespaceFiles.java (any task, e.g. WorkingDirectory and scripts)"),
)

_BY_TYPE: dict[str, tuple[NamespaceProperty, ...]] = {}
for _prop in NAMESPACE_PROPERTIES:
    for _type in _prop.types:
        _BY_TYPE[_type] = _BY_TYPE.get(_type, ()) + (_prop,)
_ANY_TYPE = tuple(p for p in NAMESPACE_PROPERTIES if not p.types)
_DEFAULTS_SECTIONS = ("pluginDefaults", "taskDefaults")  # taskDefaults: 1.3's older name
_FILTER_KINDS = {"EQUAL_TO": EXACT, "NOT_EQUAL_TO": EXACT, "IN": EXACT, "NOT_IN": EXACT,
                 "STARTS_WITH": PREFIX}
_COMPARISON_KINDS = {"EQUALS": EXACT, "PREFIX": PREFIX}
# values that are never namespaces, whatever they look like: plugin types and ids
_NOT_NAMESPACES = frozenset({"type", "id", "flowId"})
_NAMESPACE_SHAPE = re.compile(r"[a-z0-9][a-z0-9._-]*")
_ONLY_FLOW_NAMESPACE = re.compile(r"\{\{-?\s*flow\.namespace\s*-?\}\}")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9._/-]*$")
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class Reference:
    """A namespace written in a flow that points at another flow or namespace."""

    what: str  # e.g. "Subflow task 'call'", "Flow trigger 'on-upstream'"
    node: yaml.ScalarNode
    flow_id: str | None = None  # the referenced flow, when the reference names one it calls
    kind: str = EXACT  # EXACT, PREFIX or GLOB
    path: str = ""  # where in the flow, e.g. "tasks[2].namespace"
    prop: NamespaceProperty | None = None  # the table row that found it

    @property
    def namespace(self) -> str:
        return str(self.node.value)

    @property
    def prefix_only(self) -> bool:
        """A namespace filter (prefix or pattern), not an exact namespace."""
        return self.kind != EXACT

    @property
    def templated(self) -> bool:
        return "{{" in self.namespace or "{%" in self.namespace

    @property
    def relative(self) -> bool:
        """An expression made only of ``{{ flow.namespace }}``: it follows the renamed flow."""
        rest = _ONLY_FLOW_NAMESPACE.sub("", self.namespace)
        return self.templated and "{{" not in rest and "{%" not in rest

    @property
    def line(self) -> int:
        return yamlnodes.position(self.node)[0]


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str


def _type_of(node: yaml.MappingNode) -> str | None:
    return yamlnodes.scalar_text(yamlnodes.mapping_get(node, "type"))


def _label(node: yaml.MappingNode, kind: str) -> str:
    name = yamlnodes.scalar_text(yamlnodes.mapping_get(node, "id"))
    return f"{kind} {name!r}" if name else kind


def _walk(root: yaml.Node) -> Iterator[tuple[yaml.Node, str, str | None]]:
    """(node, path, key holding it) for every value node, each once: an alias is the anchored node
    it names, met where it is first reached (aliases can make the graph cyclic)."""
    stack: list[tuple[yaml.Node, str, str | None]] = [(root, "", None)]
    seen: set[int] = set()
    while stack:
        node, path, key = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node, path, key
        if isinstance(node, yaml.MappingNode):
            for key_node, value in reversed(node.value):
                name = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                stack.append((value, f"{path}.{name}" if path else name, name))
        elif isinstance(node, yaml.SequenceNode):
            items = list(enumerate(node.value))
            stack.extend((item, f"{path}[{i}]", None) for i, item in reversed(items))


def _scalar(node: yaml.Node | None) -> yaml.ScalarNode | None:
    return node if isinstance(node, yaml.ScalarNode) and yamlnodes.scalar_text(node) else None


def _items(node: yaml.Node | None) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _at(owner: yaml.Node, path: str, where: str
        ) -> Iterator[tuple[yaml.MappingNode, yaml.Node, str]]:
    """(mapping holding the value, value, its path) for each value at ``path`` below ``owner``."""
    head, _, rest = path.partition(".")
    each = head.endswith("[]")
    key = head[:-2] if each else head
    value = yamlnodes.mapping_get(owner, key)
    if value is None:
        return
    assert isinstance(owner, yaml.MappingNode)
    here = f"{where}.{key}" if where else key
    found = [(value, here)]
    if each and isinstance(value, yaml.SequenceNode):  # else an expression giving the list
        found = [(item, f"{here}[{i}]") for i, item in enumerate(value.value)]
    for node, node_path in found:
        if rest:
            yield from _at(node, rest, node_path)
        else:
            yield owner, node, node_path


def _comparison_kind(owner: yaml.MappingNode) -> str | None:
    comparison = yamlnodes.scalar_text(yamlnodes.mapping_get(owner, "comparison"))
    if comparison is not None:
        return _COMPARISON_KINDS.get(comparison)
    prefix = yamlnodes.scalar_text(yamlnodes.mapping_get(owner, "prefix"))
    if prefix is None or prefix.lower() == "false":
        return EXACT
    return PREFIX if prefix.lower() == "true" else None


def _collect(prop: NamespaceProperty, plugin: yaml.Node, where: str, what: str,
             found: dict[int, Reference]) -> None:
    def add(node: yaml.Node, owner: yaml.MappingNode, path: str, kind: str | None,
            detail: str = "") -> None:
        scalar = _scalar(node)
        if scalar is None or kind is None or id(scalar) in found:
            return
        flow_id = yamlnodes.scalar_text(yamlnodes.mapping_get(owner, "flowId"))
        found[id(scalar)] = Reference(what + detail, scalar, flow_id if prop.calls else None, kind,
                                      path, prop)

    for owner, node, path in _at(plugin, prop.path, where):
        if prop.kind == FILTER:
            if yamlnodes.scalar_text(yamlnodes.mapping_get(node, "field")) != "NAMESPACE":
                continue
            assert isinstance(node, yaml.MappingNode)
            op = yamlnodes.scalar_text(yamlnodes.mapping_get(node, "type")) or ""
            for filter_owner, value, value_path in [*_at(node, "value", path),
                                                    *_at(node, "values[]", path)]:
                add(value, filter_owner, value_path, _FILTER_KINDS.get(op), f" filter {op}")
        elif prop.kind == COMPARISON:
            add(node, owner, path, _comparison_kind(owner))
        else:
            add(node, owner, path, prop.kind)


def _defaults_properties(plugin_type: str) -> tuple[NamespaceProperty, ...]:
    """The table rows a plugin default of ``plugin_type`` applies to (its type, or a prefix)."""
    return tuple(p for p in NAMESPACE_PROPERTIES
                 if not p.types or any(t.startswith(plugin_type) for t in p.types))


def references(root: yaml.Node) -> list[Reference]:
    """Every reference to another namespace written in the flow, in document order: the values of
    the properties of ``NAMESPACE_PROPERTIES``, in the plugins and in ``pluginDefaults``."""
    found: dict[int, Reference] = {}
    for section in _DEFAULTS_SECTIONS:
        for i, entry in enumerate(_items(yamlnodes.mapping_get(root, section))):
            plugin_type = yamlnodes.scalar_text(yamlnodes.mapping_get(entry, "type"))
            values = yamlnodes.mapping_get(entry, "values")
            if plugin_type and isinstance(values, yaml.MappingNode):
                for prop in _defaults_properties(plugin_type):
                    _collect(prop, values, f"{section}[{i}].values",
                             f"{section} of {plugin_type}", found)
    for node, path, _ in _walk(root):
        if not isinstance(node, yaml.MappingNode):
            continue
        kind = _type_of(node)
        for prop in _BY_TYPE.get(kind or "", ()):
            _collect(prop, node, path, _label(node, prop.name), found)
        for prop in _ANY_TYPE:
            owner = _label(node, f"{kind.rsplit('.', 1)[-1]} task") if kind else prop.name
            _collect(prop, node, path, f"{owner} namespaceFiles" if kind else owner, found)
    return sorted(found.values(), key=lambda r: (r.node.start_mark.line, r.node.start_mark.column))


def _default_value(root: yaml.Node, prop: NamespaceProperty, key: str) -> str | None:
    """The value the flow's plugin defaults give ``key`` of a plugin of ``prop``'s types: the
    first entry whose type is one of them or a prefix of one."""
    for section in _DEFAULTS_SECTIONS:
        for entry in _items(yamlnodes.mapping_get(root, section)):
            plugin_type = yamlnodes.scalar_text(yamlnodes.mapping_get(entry, "type"))
            if plugin_type and any(t.startswith(plugin_type) for t in prop.types):
                value = yamlnodes.scalar_text(
                    yamlnodes.mapping_get(yamlnodes.mapping_get(entry, "values"), key))
                if value is not None:
                    return value
    return None


def dependencies(root: yaml.Node) -> set[FlowKey]:
    """The flows this flow calls (Subflow, ForEachItem) or listens to (Flow trigger: 2.0
    ``dependsOn`` or 1.3 ``preconditions``, with a flowId; ExecutionFlow conditions), the
    namespace written in the plugin or given by the flow's ``pluginDefaults``."""
    keys = {
        FlowKey(ref.namespace, ref.flow_id)
        for ref in references(root)
        if ref.flow_id and not ref.templated and not ref.prefix_only and "{{" not in ref.flow_id
    }
    for node, _, _ in _walk(root):
        if not isinstance(node, yaml.MappingNode) or yamlnodes.mapping_get(node, "namespace"):
            continue
        for prop in _BY_TYPE.get(_type_of(node) or "", ()):
            if prop.calls and prop.path == "namespace":
                namespace = _default_value(root, prop, "namespace")
                flow_id = yamlnodes.scalar_text(yamlnodes.mapping_get(node, "flowId"))
                if namespace and flow_id and "{{" not in namespace + flow_id:
                    keys.add(FlowKey(namespace, flow_id))
    return keys


# -- edits ------------------------------------------------------------------------------------

# what a node's start mark includes before its value: an anchor (`&name`), a tag (`!!str`,
# `!<...>`), with the spaces, line breaks and comments after them
_NODE_PROPERTIES = re.compile(r"(?:(?:&[^\s,\[\]{}]+|!<[^>]*>|![^\s,\[\]{}]*)"
                              r"(?:\s+(?:#[^\r\n]*)?)*)*")


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for match in re.finditer(r"\r\n|\n|\r", text):
        starts.append(match.end())
    return starts


def _offset(starts: list[int], mark: yaml.Mark) -> int:
    return starts[mark.line] + mark.column


def _span(text: str, starts: list[int], node: yaml.Node) -> tuple[int, int]:
    """Where the value of ``node`` is written: after its anchor and tag, which stay."""
    start, end = _offset(starts, node.start_mark), _offset(starts, node.end_mark)
    match = _NODE_PROPERTIES.match(text, start, end)
    return (match.end() if match else start), end


def _render_scalar(value: str, style: str | None) -> str:
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or yaml.resolver.Resolver().resolve(yaml.ScalarNode, value, (True, False)) != _STR_TAG:
        return json.dumps(value)
    return value


def replace_scalar(text: str, starts: list[int], node: yaml.ScalarNode, value: str) -> Edit:
    """An edit giving ``node`` the text ``value``, keeping its quoting style, anchor and tag."""
    start, end = _span(text, starts, node)
    return Edit(start, end, _render_scalar(value, node.style if node.style in ("'", '"') else None))


def apply_edits(text: str, edits: list[Edit]) -> str:
    """``text`` with ``edits`` made; edits must not overlap (each node is edited once)."""
    done: list[Edit] = []
    for edit in sorted(set(edits), key=lambda e: (e.start, e.end), reverse=True):
        if done and (edit.end > done[-1].start or edit.start == done[-1].start == done[-1].end):
            raise ValueError(f"overlapping edits at offset {edit.start}")
        text = text[: edit.start] + edit.text + text[edit.end :]
        done.append(edit)
    return text


def rename_namespace(namespace: str, rename: Mapping[str, str]) -> str:
    """``namespace`` with the longest matching prefix of ``rename`` replaced (segment-wise)."""
    for old in sorted(rename, key=len, reverse=True):
        if namespace == old or namespace.startswith(old + "."):
            new, rest = rename[old], namespace[len(old):]
            return (new + rest) if new else rest.lstrip(".")
    return namespace


def _rename_pattern(pattern: str, rename: Mapping[str, str]) -> str:
    """A glob (``*``, ``?``) renamed when that keeps what it matches, else unchanged: its text
    before the first wildcard lies inside one renamed namespace and no other renamed namespace
    can match it."""
    head = re.split(r"[*?]", pattern, maxsplit=1)[0]
    if head == pattern:
        return rename_namespace(pattern, rename)
    inside = [old for old in rename if head.startswith(old + ".")]
    if not inside:
        return pattern
    old = max(inside, key=len)
    if any(other != old and other.startswith(head) for other in rename):
        return pattern
    new_head = rename_namespace(head[:-1] if head.endswith(".") else head, rename)
    if not new_head:  # `dev.*` with dev → '': would match every namespace
        return pattern
    return new_head + ("." if head.endswith(".") else "") + pattern[len(head):]


def _covers_partly(ref: Reference, rename: Mapping[str, str]) -> bool:
    """A prefix or pattern left as written that may still match renamed namespaces."""
    value = ref.namespace
    if ref.kind == PREFIX:
        return bool(value) and any(old.startswith(value) for old in rename)
    if ref.kind == GLOB:
        head = re.split(r"[*?]", value, maxsplit=1)[0]
        return any((old + ".").startswith(head) or head.startswith(old + ".") for old in rename)
    return False


def _key_text(key: str) -> str:
    return key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _not_shared(node: yaml.Node, shared: set[int], what: str) -> None:
    if id(node) in shared:
        line = yamlnodes.position(node)[0]
        raise ValueError(f"{what} (line {line}) is a YAML anchor also used through an alias: "
                         "adding labels would change it there too; write it out")


_ALIAS_AFTER_KEY = re.compile(r"[ \t]*:(?:\s+(?:#[^\r\n]*)?)*\*[^\s,\[\]{}]+")


def _line_after(text: str, starts: list[int], node: yaml.Node, owner: yaml.Node,
                key: yaml.Node | None) -> int:
    """The line after ``node``, the last entry of ``owner`` (its value, ``key`` given). An alias is
    the node written where its anchor is, earlier: it ends at its own ``*name`` after the key."""
    if key is not None and node.start_mark.index < key.end_mark.index:
        match = _ALIAS_AFTER_KEY.match(text, _offset(starts, key.end_mark))
        if match is None:
            raise ValueError(f"line {yamlnodes.position(key)[0]}: cannot find the alias after "
                             f"{key.value!r}")
        return bisect.bisect_right(starts, match.end() - 1)
    if key is None and (node.start_mark.index < owner.start_mark.index
                        or sum(item is node for item in owner.value) > 1):
        raise ValueError(f"'labels' (line {yamlnodes.position(owner)[0]}) ends with an alias: "
                         "write its last entry out to add labels")
    return node.end_mark.line + (1 if node.end_mark.column > 0 else 0)


def label_edits(text: str, root: yaml.MappingNode, labels: Mapping[str, str]) -> list[Edit]:
    """Edits that make the flow carry ``labels`` (added or corrected, others kept)."""
    if not labels:
        return []
    starts, nl = _line_starts(text), _newline(text)
    shared = yamlnodes.shared_nodes(root)
    node = yamlnodes.mapping_get(root, "labels")
    pairs = {k: json.dumps(str(v)) for k, v in labels.items()}
    if node is None or (isinstance(node, yaml.ScalarNode) and yamlnodes.scalar_text(node) is None):
        if node is not None:  # `labels:` with no value: give it a flow mapping
            _not_shared(node, shared, "'labels'")
            start, end = _span(text, starts, node)
            body = ", ".join(f"{_key_text(k)}: {v}" for k, v in pairs.items())
            space = "" if start > 0 and text[start - 1] in " \t" else " "
            return [Edit(start, end, f"{space}{{{body}}}")]
        anchor = yamlnodes.mapping_get(root, "namespace") or root.value[-1][1]
        anchor_key = next(k for k, v in root.value if v is anchor)
        indent = " " * root.value[0][0].start_mark.column
        line = _line_after(text, starts, anchor, root, anchor_key)
        block = f"{indent}labels:{nl}" + "".join(
            f"{indent}  {_key_text(k)}: {v}{nl}" for k, v in pairs.items())
        if line >= len(starts):
            return [Edit(len(text), len(text), ("" if text.endswith(("\n", "\r")) else nl) + block)]
        return [Edit(starts[line], starts[line], block)]
    existing: dict[str, yaml.Node | None]
    last_key: yaml.Node | None = None
    if isinstance(node, yaml.MappingNode):
        existing = {str(k.value): v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        last = node.value[-1][1] if node.value else None
        last_key = node.value[-1][0] if node.value else None
        column = node.value[0][0].start_mark.column if node.value else 0

        def inline_entry(key: str, value: str) -> str:
            return f"{_key_text(key)}: {value}"

        def block_entry(key: str, value: str) -> str:
            return f"{' ' * column}{_key_text(key)}: {value}{nl}"
    elif isinstance(node, yaml.SequenceNode):
        existing = {}
        for item in node.value:
            name = yamlnodes.scalar_text(yamlnodes.mapping_get(item, "key"))
            if name is not None:
                existing[name] = yamlnodes.mapping_get(item, "value")
        last = node.value[-1] if node.value else None
        column = node.value[0].start_mark.column if node.value else 0

        def inline_entry(key: str, value: str) -> str:
            return f"{{key: {json.dumps(key)}, value: {value}}}"

        def block_entry(key: str, value: str) -> str:
            dash = " " * max(0, column - 2)
            return f"{dash}- key: {json.dumps(key)}{nl}{' ' * column}value: {value}{nl}"
    else:
        raise ValueError("'labels' must be a mapping or a list of {key, value}")
    edits: list[Edit] = []
    missing: dict[str, str] = {}
    for key, value in pairs.items():
        current = existing.get(key)
        if isinstance(current, yaml.ScalarNode):
            if current.value != labels[key]:  # present with another value: correct it
                _not_shared(node, shared, "'labels'")
                _not_shared(current, shared, f"label {key!r}")
                start, end = _span(text, starts, current)
                edits.append(Edit(start, end, value))
        else:
            missing[key] = value
    if not missing:
        return edits
    _not_shared(node, shared, "'labels'")
    if node.flow_style or last is None:  # {a: b} or [..]: insert before the closing bracket
        close = _offset(starts, node.end_mark) - 1
        body = ", ".join(inline_entry(k, v) for k, v in missing.items())
        return edits + [Edit(close, close, (", " if last is not None else "") + body)]
    line = _line_after(text, starts, last, node, last_key)
    at = starts[line] if line < len(starts) else len(text)
    prefix = "" if at < len(text) or text.endswith(("\n", "\r")) else nl
    return edits + [Edit(at, at, prefix + "".join(block_entry(k, v) for k, v in missing.items()))]


# -- renaming ---------------------------------------------------------------------------------

REWRITTEN = "rewritten"
EXPRESSION = "expression"  # through an expression other than {{ flow.namespace }}: reported
FOLLOWS = "follows"  # {{ flow.namespace }}: resolves to the renamed namespace, nothing to do
PARTLY = "partly"  # a prefix or pattern covering renamed namespaces only partly: reported
BLOCK = "block scalar"  # a `|` or `>` scalar: not rewritten, reported
LEFT = "left"  # a value written as a renamed namespace, not in a property of the table: reported


@dataclass(frozen=True)
class Finding:
    """What renaming does with one namespace-like value of a flow."""

    outcome: str  # REWRITTEN, FOLLOWS, EXPRESSION, PARTLY, BLOCK or LEFT
    node: yaml.ScalarNode
    path: str
    new: str | None = None  # the value after renaming (REWRITTEN, BLOCK, LEFT)
    reference: Reference | None = None  # None: the flow's own namespace, or LEFT

    @property
    def old(self) -> str:
        return str(self.node.value)


def rename_findings(root: yaml.MappingNode, rename: Mapping[str, str]) -> list[Finding]:
    """What applying ``rename`` does to each namespace of the flow: its own, every reference
    (``references``), and any other value written as a namespace the rename covers. Each node
    once: an alias follows its anchor."""
    if not rename:
        return []
    findings: list[Finding] = []
    judged: set[int] = set()
    own = _scalar(yamlnodes.mapping_get(root, "namespace"))
    targets: list[tuple[yaml.ScalarNode, Reference | None]] = [(own, None)] if own else []
    targets += [(ref.node, ref) for ref in references(root)]
    for node, ref in targets:
        if id(node) in judged:
            continue
        judged.add(id(node))
        value, path = str(node.value), ref.path if ref else "namespace"
        if ref is not None and ref.templated:
            findings.append(Finding(FOLLOWS if ref.relative else EXPRESSION, node, path, None, ref))
            continue
        new = _rename_pattern(value, rename) if ref and ref.kind == GLOB else \
            rename_namespace(value, rename)
        if new != value:
            outcome = BLOCK if node.style in ("|", ">") else REWRITTEN
            findings.append(Finding(outcome, node, path, new, ref))
        elif ref is not None and _covers_partly(ref, rename):
            findings.append(Finding(PARTLY, node, path, None, ref))
    for node, path, key in _walk(root):
        if (isinstance(node, yaml.ScalarNode) and id(node) not in judged and node.tag == _STR_TAG
                and key not in _NOT_NAMESPACES and _NAMESPACE_SHAPE.fullmatch(node.value)):
            new = rename_namespace(node.value, rename)
            if new != node.value:
                findings.append(Finding(LEFT, node, path, new))
    return sorted(findings, key=lambda f: (f.node.start_mark.line, f.node.start_mark.column))


RenameWarning = Callable[[Reference, str], None]


def rename_edits(text: str, root: yaml.MappingNode, rename: Mapping[str, str],
                 warn: RenameWarning) -> list[Edit]:
    """Edits applying ``rename`` to the flow's namespace and every reference in it; ``warn``
    hears of each reference not rewritten and, once, of other values left as renamed namespaces."""
    starts = _line_starts(text)
    edits: list[Edit] = []
    left: list[Finding] = []
    for finding in rename_findings(root, rename):
        ref = finding.reference or Reference("namespace", finding.node, path=finding.path)
        value = finding.old
        if finding.outcome == REWRITTEN:
            assert finding.new is not None
            edits.append(replace_scalar(text, starts, finding.node, finding.new))
        elif finding.outcome == EXPRESSION:
            warn(ref, f"{ref.what} references namespace {value!r} through an expression: "
                      "not rewritten; check it resolves in every environment")
        elif finding.outcome == BLOCK:
            warn(ref, f"{ref.what}: namespace {value!r} is a block scalar: not rewritten "
                      f"(to {finding.new!r})")
        elif finding.outcome == PARTLY and ref.kind == GLOB:
            warn(ref, f"{ref.what} matches namespaces with the pattern {value!r}, which may match "
                      "renamed namespaces: not rewritten")
        elif finding.outcome == PARTLY:
            warn(ref, f"{ref.what} filters on namespace prefix {value!r}, which covers renamed "
                      "namespaces only partly: not rewritten")
        elif finding.outcome == LEFT:
            left.append(finding)
    if left:
        listed = ", ".join(f"{f.old!r} (the rename gives {f.new!r}) at {f.path}, line "
                           f"{yamlnodes.position(f.node)[0]}" for f in left)
        warn(Reference("namespace-like value", left[0].node, path=left[0].path),
             f"written as a renamed namespace but in no property kestra-promote renames, so left "
             f"as written: {listed}; check whether {'it' if len(left) == 1 else 'they'} should "
             "follow the rename")
    return edits

"""One flow document: its references to other flows and namespaces, and format-preserving edits.

Edits replace exactly the characters of the scalars that change (found through node positions
from ``yaml.compose``) or insert new lines, so comments, quoting and layout survive and the diff a
reviewer sees is the smallest possible. Expressions (``{{ ... }}``) are never rewritten.

Edits never change a flow beyond what they mean: renaming an anchored namespace that an alias
also names somewhere else than a namespace property, or a reference to nothing, is refused
(``EditRefused``), and ``verify_edits`` checks the edited text against the old one, node by node.

Which properties hold a namespace is one table, ``NAMESPACE_PROPERTIES``, read from Kestra's own
plugins; a flow's ``pluginDefaults`` are looked up in the same table. Any other value written as
a namespace that a rename covers is left as it is and reported, once per flow.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import yaml

from kestra_promote import yamlnodes
from kestra_promote.models import FlowKey

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
    """Replace ``text[start:end]`` with ``text``. A rename also names the scalar it changes and the
    value it gives it, which ``verify_edits`` checks the edited flow against."""

    start: int
    end: int
    text: str
    node: yaml.ScalarNode | None = field(default=None, compare=False)
    value: str | None = field(default=None, compare=False)


class EditRefused(ValueError):
    """The flow cannot be edited as asked without changing something else: ``problems`` holds
    each reason as (message, 1-based line or None)."""

    def __init__(self, problems: list[tuple[str, int | None]]) -> None:
        super().__init__("; ".join(message for message, _ in problems))
        self.problems = problems


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


# where a value is written: (id() of the mapping or list holding it, its index there, a key?)
Slot = tuple[int, int, bool]


def _get(owner: yaml.Node, key: str) -> tuple[yaml.Node | None, int]:
    """The value of ``key`` in the mapping ``owner`` and the index of its entry (-1: none)."""
    if isinstance(owner, yaml.MappingNode):
        for index, (key_node, value) in enumerate(owner.value):
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return value, index
    return None, -1


def _at(owner: yaml.Node, path: str, where: str
        ) -> Iterator[tuple[yaml.MappingNode, yaml.Node, str, Slot]]:
    """(mapping holding the value, value, its path, where it is written) for each value at
    ``path`` below ``owner``."""
    head, _, rest = path.partition(".")
    each = head.endswith("[]")
    key = head[:-2] if each else head
    value, index = _get(owner, key)
    if value is None:
        return
    assert isinstance(owner, yaml.MappingNode)
    here = f"{where}.{key}" if where else key
    found = [(value, here, (id(owner), index, False))]
    if each and isinstance(value, yaml.SequenceNode):  # else an expression giving the list
        found = [(item, f"{here}[{i}]", (id(value), i, False)) for i, item in enumerate(value.value)]
    for node, node_path, slot in found:
        if rest:
            yield from _at(node, rest, node_path)
        else:
            yield owner, node, node_path, slot


def _comparison_kind(owner: yaml.MappingNode) -> str | None:
    comparison = yamlnodes.scalar_text(yamlnodes.mapping_get(owner, "comparison"))
    if comparison is not None:
        return _COMPARISON_KINDS.get(comparison)
    prefix = yamlnodes.scalar_text(yamlnodes.mapping_get(owner, "prefix"))
    if prefix is None or prefix.lower() == "false":
        return EXACT
    return PREFIX if prefix.lower() == "true" else None


def _collect(prop: NamespaceProperty, plugin: yaml.Node, where: str, what: str,
             found: dict[int, Reference], slots: dict[Slot, Reference]) -> None:
    def add(node: yaml.Node, owner: yaml.MappingNode, path: str, slot: Slot, kind: str | None,
            detail: str = "") -> None:
        scalar = _scalar(node)
        if scalar is None or kind is None:
            return
        flow_id = yamlnodes.scalar_text(yamlnodes.mapping_get(owner, "flowId"))
        ref = Reference(what + detail, scalar, flow_id if prop.calls else None, kind, path, prop)
        slots.setdefault(slot, ref)
        found.setdefault(id(scalar), ref)

    for owner, node, path, slot in _at(plugin, prop.path, where):
        if prop.kind == FILTER:
            if yamlnodes.scalar_text(yamlnodes.mapping_get(node, "field")) != "NAMESPACE":
                continue
            assert isinstance(node, yaml.MappingNode)
            op = yamlnodes.scalar_text(yamlnodes.mapping_get(node, "type")) or ""
            for filter_owner, value, value_path, value_slot in [*_at(node, "value", path),
                                                                *_at(node, "values[]", path)]:
                add(value, filter_owner, value_path, value_slot, _FILTER_KINDS.get(op),
                    f" filter {op}")
        elif prop.kind == COMPARISON:
            add(node, owner, path, slot, _comparison_kind(owner))
        else:
            add(node, owner, path, slot, prop.kind)


def _defaults_properties(plugin_type: str) -> tuple[NamespaceProperty, ...]:
    """The table rows a plugin default of ``plugin_type`` applies to (its type, or a prefix)."""
    return tuple(p for p in NAMESPACE_PROPERTIES
                 if not p.types or any(t.startswith(plugin_type) for t in p.types))


def references(root: yaml.Node) -> list[Reference]:
    """Every reference to another namespace written in the flow, in document order: the values of
    the properties of ``NAMESPACE_PROPERTIES``, in the plugins and in ``pluginDefaults``."""
    return _references(root, {})


def _references(root: yaml.Node, slots: dict[Slot, Reference]) -> list[Reference]:
    """``references``, each node once; ``slots`` gets every place one is written (a node
    anchored and named again through aliases is written in several places)."""
    found: dict[int, Reference] = {}
    for section in _DEFAULTS_SECTIONS:
        for i, entry in enumerate(_items(yamlnodes.mapping_get(root, section))):
            plugin_type = yamlnodes.scalar_text(yamlnodes.mapping_get(entry, "type"))
            values = yamlnodes.mapping_get(entry, "values")
            if plugin_type and isinstance(values, yaml.MappingNode):
                for prop in _defaults_properties(plugin_type):
                    _collect(prop, values, f"{section}[{i}].values",
                             f"{section} of {plugin_type}", found, slots)
    for node, path, _ in _walk(root):
        if not isinstance(node, yaml.MappingNode):
            continue
        kind = _type_of(node)
        for prop in _BY_TYPE.get(kind or "", ()):
            _collect(prop, node, path, _label(node, prop.name), found, slots)
        for prop in _ANY_TYPE:
            owner = _label(node, f"{kind.rsplit('.', 1)[-1]} task") if kind else prop.name
            _collect(prop, node, path, f"{owner} namespaceFiles" if kind else owner, found, slots)
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

# Offsets in the text are Python indexes, from each mark's `index` (`yamlnodes.offset`), and lines
# are counted as the YAML loaders count them (`yamlnodes.line_starts`: `\r`, `\n`, `\r\n`, NEL,
# U+2028 and U+2029 each end a line), so edits land on exactly the characters meant whatever
# the text holds.
_BREAKS = yamlnodes.LINE_BREAKS
_SPACE = f"[ \t{_BREAKS}]"
_COMMENT = f"#[^{_BREAKS}]*"
# what a node's start mark includes before its value: an anchor (`&name`), a tag (`!!str`,
# `!<...>`), with the spaces, line breaks and comments after them
_NODE_PROPERTIES = re.compile(rf"(?:(?:&[^\s,\[\]{{}}]+|!<[^>]*>|![^\s,\[\]{{}}]*)"
                              rf"(?:{_SPACE}+(?:{_COMMENT})?)*)*")
_ANCHOR = re.compile(r"&([^\s,\[\]{}]+)")
_RESOLVER = yaml.resolver.Resolver()


def _offset(text: str, mark: yaml.Mark) -> int:
    return yamlnodes.offset(text, mark)


def _span(text: str, node: yaml.Node) -> tuple[int, int]:
    """Where the value of ``node`` is written: after its anchor and tag, which stay."""
    start, end = _offset(text, node.start_mark), _offset(text, node.end_mark)
    match = _NODE_PROPERTIES.match(text, start, end)
    return (match.end() if match else start), end


def _check_span(text: str, node: yaml.ScalarNode, start: int, end: int) -> None:
    """A check that ``text[start:end]`` is where ``node`` is written: quotes around a quoted
    scalar, the value itself for a plain scalar on one line."""
    written = text[start:end]
    if node.style in ("'", '"'):
        found = len(written) >= 2 and written[0] == written[-1] == node.style
    elif node.style in ("|", ">"):
        found = written[:1] == node.style
    else:
        found = written == node.value or any(c in written for c in _BREAKS)
    if not found:
        raise ValueError(f"line {yamlnodes.position(node)[0]}: cannot find where {node.value!r} is "
                         "written in the text, so the flow is left as it is; please report this")


def _resolves_to_str(value: str) -> bool:
    return _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG


def _double_quoted(value: str) -> str:
    """``value`` as a YAML double-quoted scalar: escapes for what a double-quoted scalar cannot
    hold as written (line breaks would fold, control characters are not allowed)."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code <= 0x7E or (0xA0 <= code <= 0xFFFD and not 0xD800 <= code <= 0xDFFF
                                       and ch not in "\u2028\u2029\ufeff") or code >= 0x10000:
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out) + '"'


def _render_scalar(value: str, style: str | None) -> str:
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or not _resolves_to_str(value):
        return _double_quoted(value)
    return value


def replace_scalar(text: str, node: yaml.ScalarNode, value: str) -> Edit:
    """An edit giving ``node`` the text ``value``, keeping its quoting style, anchor and tag."""
    start, end = _span(text, node)
    _check_span(text, node, start, end)
    rendered = _render_scalar(value, node.style if node.style in ("'", '"') else None)
    return Edit(start, end, rendered, node, value)


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


def _key_text(key: str, quoted: bool = False) -> str:
    """``key`` as a mapping key: plain when that reads back as the same text, else quoted."""
    if not quoted and _PLAIN_KEY.fullmatch(key) and _resolves_to_str(key):
        return key
    return _double_quoted(key)


def _quoted_keys(node: yaml.Node) -> bool:
    """Whether the mapping ``node`` writes its keys in double quotes (as JSON does)."""
    return (isinstance(node, yaml.MappingNode) and bool(node.value)
            and isinstance(node.value[0][0], yaml.ScalarNode) and node.value[0][0].style == '"')


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _not_shared(node: yaml.Node, shared: set[int], what: str) -> None:
    if id(node) in shared:
        line = yamlnodes.position(node)[0]
        raise ValueError(f"{what} (line {line}) is a YAML anchor also used through an alias: "
                         "adding labels would change it there too; write it out")


_ALIAS_AFTER_KEY = re.compile(rf"[ \t]*:(?:{_SPACE}+(?:{_COMMENT})?)*\*[^\s,\[\]{{}}]+")


def _next_line(starts: list[int], offset: int) -> int:
    """The first line starting at or after ``offset`` (``len(starts)``: none)."""
    line = yamlnodes.line_of(starts, offset)
    return line if starts[line] == offset else line + 1


def _line_after(text: str, starts: list[int], node: yaml.Node, owner: yaml.Node,
                key: yaml.Node | None) -> int:
    """The line after ``node``, the last entry of ``owner`` (its value, ``key`` given). An alias is
    the node written where its anchor is, earlier: it ends at its own ``*name`` after the key."""
    if key is not None and node.start_mark.index < key.end_mark.index:
        match = _ALIAS_AFTER_KEY.match(text, _offset(text, key.end_mark))
        if match is None:
            raise ValueError(f"line {yamlnodes.position(key)[0]}: cannot find the alias after "
                             f"{key.value!r}")
        return _next_line(starts, match.end())
    if key is None and (node.start_mark.index < owner.start_mark.index
                        or sum(item is node for item in owner.value) > 1):
        raise ValueError(f"'labels' (line {yamlnodes.position(owner)[0]}) ends with an alias: "
                         "write its last entry out to add labels")
    return _next_line(starts, _offset(text, node.end_mark))


def _flow_insert(text: str, node: yaml.Node, entry: str) -> Edit:
    """An edit adding ``entry`` as the last entry of the flow collection (``{...}``, ``[...]``)
    ``node``: right after its last entry, with a comma unless one is written there already."""
    start, close = _offset(text, node.start_mark), _offset(text, node.end_mark) - 1
    last: yaml.Token | None = None
    for token in yamlnodes.tokens(text):
        at = _offset(text, token.start_mark)
        if at >= close:
            break
        if at >= start:
            last = token
    if last is None or text[close:close + 1] not in ("}", "]"):
        raise ValueError(f"line {yamlnodes.position(node)[0]}: cannot find where the "
                         f"{'mapping' if text[close:close + 1] == '}' else 'list'} ends")
    at = _offset(text, last.end_mark)
    if isinstance(last, (yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)):
        return Edit(at, at, entry)
    return Edit(at, at, (" " if isinstance(last, yaml.FlowEntryToken) else ", ") + entry)


def _value_edit(text: str, start: int, end: int, value: str) -> Edit:
    """An edit writing ``value`` where an empty or null value is, apart from the ``:``."""
    space = "" if start > 0 and text[start - 1] in " \t" else " "
    return Edit(start, end, space + value)


def label_edits(text: str, root: yaml.MappingNode, labels: Mapping[str, str]) -> list[Edit]:
    """Edits that make the flow carry ``labels`` (added or corrected, others kept)."""
    if not labels:
        return []
    starts, nl = yamlnodes.line_starts(text), _newline(text)
    shared = yamlnodes.shared_nodes(root)
    node = yamlnodes.mapping_get(root, "labels")
    pairs = {k: _double_quoted(str(v)) for k, v in labels.items()}
    if node is None or (isinstance(node, yaml.ScalarNode) and yamlnodes.scalar_text(node) is None):
        quoted = _quoted_keys(root)
        body = ", ".join(f"{_key_text(k, quoted)}: {v}" for k, v in pairs.items())
        if node is not None:  # `labels:` with no value: give it a flow mapping
            _not_shared(node, shared, "'labels'")
            start, end = _span(text, node)
            return [_value_edit(text, start, end, f"{{{body}}}")]
        if root.flow_style:  # {id: .., namespace: ..}: one more entry
            return [_flow_insert(text, root, f"{_key_text('labels', quoted)}: {{{body}}}")]
        anchor = yamlnodes.mapping_get(root, "namespace") or root.value[-1][1]
        anchor_key = next(k for k, v in root.value if v is anchor)
        indent = " " * root.value[0][0].start_mark.column
        line = _line_after(text, starts, anchor, root, anchor_key)
        block = f"{indent}labels:{nl}" + "".join(
            f"{indent}  {_key_text(k)}: {v}{nl}" for k, v in pairs.items())
        if line >= len(starts):
            ending = "" if text.endswith(tuple(_BREAKS)) else nl
            return [Edit(len(text), len(text), ending + block)]
        return [Edit(starts[line], starts[line], block)]
    existing: dict[str, yaml.Node | None]
    last_key: yaml.Node | None = None
    if isinstance(node, yaml.MappingNode):
        existing = {str(k.value): v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        last = node.value[-1][1] if node.value else None
        last_key = node.value[-1][0] if node.value else None
        column = node.value[0][0].start_mark.column if node.value else 0
        quoted = _quoted_keys(node if node.value else root)

        def inline_entry(key: str, value: str) -> str:
            return f"{_key_text(key, quoted)}: {value}"

        def block_entry(key: str, value: str) -> str:
            return f"{' ' * column}{_key_text(key, quoted)}: {value}{nl}"
    elif isinstance(node, yaml.SequenceNode):
        existing = {}
        for item in node.value:
            name = yamlnodes.scalar_text(yamlnodes.mapping_get(item, "key"))
            if name is not None:
                existing[name] = yamlnodes.mapping_get(item, "value")
        last = node.value[-1] if node.value else None
        column = node.value[0].start_mark.column if node.value else 0
        quoted = any(_quoted_keys(item) for item in node.value or [root])

        def inline_entry(key: str, value: str) -> str:
            return f"{{{_key_text('key', quoted)}: {_double_quoted(key)}, " \
                   f"{_key_text('value', quoted)}: {value}}}"

        def block_entry(key: str, value: str) -> str:
            dash = " " * max(0, column - 2)
            return f"{dash}- key: {_double_quoted(key)}{nl}{' ' * column}value: {value}{nl}"
    else:
        raise ValueError("'labels' must be a mapping or a list of {key, value}")
    edits: list[Edit] = []
    missing: dict[str, str] = {}
    for key, value in pairs.items():
        if key not in existing:
            missing[key] = value
            continue
        current = existing[key]
        if not isinstance(current, yaml.ScalarNode):
            where = f" (line {yamlnodes.position(current)[0]})" if current is not None else ""
            raise ValueError(f"label {key!r}{where} has no text value: write one (kestra-promote "
                             f"sets it to {str(labels[key])!r})")
        if current.value != labels[key]:  # present with another value: correct it
            _not_shared(node, shared, "'labels'")
            _not_shared(current, shared, f"label {key!r}")
            start, end = _span(text, current)
            edits.append(_value_edit(text, start, end, value) if start == end else
                         Edit(start, end, value))
    if not missing:
        return edits
    _not_shared(node, shared, "'labels'")
    if node.flow_style or last is None:  # {a: b} or [..]: one more entry before the bracket
        body = ", ".join(inline_entry(k, v) for k, v in missing.items())
        return edits + [_flow_insert(text, node, body)]
    line = _line_after(text, starts, last, node, last_key)
    at = starts[line] if line < len(starts) else len(text)
    prefix = "" if at < len(text) or text.endswith(tuple(_BREAKS)) else nl
    return edits + [Edit(at, at, prefix + "".join(block_entry(k, v) for k, v in missing.items()))]


# -- renaming ---------------------------------------------------------------------------------

REWRITTEN = "rewritten"
EXPRESSION = "expression"  # through an expression other than {{ flow.namespace }}: reported
FOLLOWS = "follows"  # {{ flow.namespace }}: resolves to the renamed namespace, nothing to do
PARTLY = "partly"  # a prefix or pattern covering renamed namespaces only partly: reported
BLOCK = "block scalar"  # a `|` or `>` scalar: not rewritten, reported (the flow's own namespace
                        # is rewritten in place when it holds one line, else a problem)
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


def _uses(root: yaml.Node, shared: set[int]) -> dict[int, list[tuple[Slot, str, int | None]]]:
    """For each node, every place it is written (the anchor, then each alias): its slot, a path
    there and the line of the key beside it (None in a list, or when the key is an alias too)."""
    uses: dict[int, list[tuple[Slot, str, int | None]]] = defaultdict(list)
    for node, path, _ in _walk(root):
        if isinstance(node, yaml.MappingNode):
            for i, (key, value) in enumerate(node.value):
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                line = None if id(key) in shared else yamlnodes.position(key)[0]
                uses[id(key)].append(((id(node), i, True), f"a key of {path or 'the flow'}", line))
                uses[id(value)].append(((id(node), i, False),
                                        f"{path}.{name}" if path else name, line))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                uses[id(item)].append(((id(node), i, False), f"{path}[{i}]", None))
    return uses


def _alias_problems(text: str, root: yaml.MappingNode, renamed: list[Finding],
                    rename: Mapping[str, str]) -> list[tuple[str, int | None]]:
    """A renamed scalar written once with an anchor (``&n``) and named elsewhere through aliases
    (``*n``) changes in every place: fine when each place is a namespace property renamed the
    same way, a problem otherwise (an id, a message, another kind of property)."""
    shared = yamlnodes.shared_nodes(root)
    if not any(id(f.node) in shared for f in renamed):
        return []
    slots: dict[Slot, Reference] = {}
    _references(root, slots)
    _, own_index = _get(root, "namespace")
    own_slot = (id(root), own_index, False)
    uses = _uses(root, shared)
    problems: list[tuple[str, int | None]] = []
    for finding in renamed:
        if id(finding.node) not in shared:
            continue
        others = []
        for slot, path, line in uses[id(finding.node)]:
            ref = slots.get(slot)
            if slot == own_slot:
                new = rename_namespace(finding.old, rename)
            elif ref is not None and not ref.templated:
                new = _rename_pattern(finding.old, rename) if ref.kind == GLOB else \
                    rename_namespace(finding.old, rename)
            else:
                new = None
            if new != finding.new:
                others.append(path + (f" (line {line})" if line is not None else ""))
        if others:
            what = f"{finding.reference.what}: namespace" if finding.reference else \
                "the flow's namespace"
            start = _offset(text, finding.node.start_mark)
            anchor = _ANCHOR.search(text, start, _span(text, finding.node)[0])
            name = f"&{anchor.group(1)}, " if anchor else ""
            line = yamlnodes.position(finding.node)[0]
            one = len(others) == 1
            problems.append((
                f"{what} {finding.old!r} is a YAML anchor ({name}line {line}) used through "
                f"aliases: renaming it would also change {', '.join(others)}, which "
                f"{'is' if one else 'are'} not {'a namespace' if one else 'namespaces'} renamed "
                "the same way; write the namespace out instead of using an alias", line))
    return problems


_LINE_TEXT = re.compile(f"[^{_BREAKS}]+")


def _block_scalar_edit(text: str, node: yaml.ScalarNode, value: str) -> Edit | None:
    """An edit giving a block scalar (``>-`` and the namespace on the next line) the value
    ``value``, when it holds one line, else None."""
    start, end = _span(text, node)
    header = re.compile(f"[^{_BREAKS}]*(?:\r\n|[{_BREAKS}])").match(text, start, end)
    if header is None:
        return None
    lines = [m for m in _LINE_TEXT.finditer(text, header.end(), end) if m.group().strip(" ")]
    if len(lines) != 1:
        return None
    content = lines[0].group().lstrip(" ")
    suffix = node.value[len(content):]
    if not node.value.startswith(content) or suffix.strip("\n") or not value.endswith(suffix):
        return None
    new = value[:len(value) - len(suffix)]
    if not new or new != new.strip() or any(c in new for c in _BREAKS):
        return None
    at = lines[0].end() - len(content)
    return Edit(at, at + len(content), new, node, value)


def rename_edits(text: str, root: yaml.MappingNode, rename: Mapping[str, str],
                 warn: RenameWarning) -> list[Edit]:
    """Edits applying ``rename`` to the flow's namespace and every reference in it; ``warn``
    hears of each reference not rewritten and, once, of other values left as renamed namespaces.
    EditRefused when a reference would become empty or an anchored namespace is also used
    somewhere else than a namespace property."""
    edits: list[Edit] = []
    renamed: list[Finding] = []
    problems: list[tuple[str, int | None]] = []
    left: list[Finding] = []
    for finding in rename_findings(root, rename):
        ref = finding.reference or Reference("namespace", finding.node, path=finding.path)
        value = finding.old
        if finding.outcome == REWRITTEN:
            assert finding.new is not None
            if finding.reference is not None and not finding.new:
                problems.append((f"{ref.what}: the rename turns namespace {value!r} at "
                                 f"{ref.path} into an empty namespace; give {value!r} a namespace to "
                                 "be renamed to, or change the flow", ref.line))
                continue
            edits.append(replace_scalar(text, finding.node, finding.new))
            renamed.append(finding)
        elif finding.outcome == BLOCK and finding.reference is None:  # the flow's own namespace
            assert finding.new is not None
            edit = _block_scalar_edit(text, finding.node, finding.new)
            if edit is None:
                problems.append((f"the flow's namespace {value!r} is a block scalar ('|' or '>') "
                                 "kestra-promote cannot rename: write the namespace on one line",
                                 ref.line))
                continue
            edits.append(edit)
            renamed.append(finding)
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
    problems += _alias_problems(text, root, renamed, rename)
    if problems:
        raise EditRefused(problems)
    if left:
        listed = ", ".join(f"{f.old!r} (the rename gives {f.new!r}) at {f.path}, line "
                           f"{yamlnodes.position(f.node)[0]}" for f in left)
        warn(Reference("namespace-like value", left[0].node, path=left[0].path),
             f"written as a renamed namespace but in no property kestra-promote renames, so left "
             f"as written: {listed}; check whether {'it' if len(left) == 1 else 'they'} should "
             "follow the rename")
    return edits


# -- checking the edited text -----------------------------------------------------------------

_MAP_TAG = "tag:yaml.org,2002:map"


def _text_node(value: str) -> yaml.ScalarNode:
    return yaml.ScalarNode(_STR_TAG, value)


def _intended_labels(root: yaml.MappingNode, labels: Mapping[str, str]) -> dict[int, yaml.Node]:
    """What ``label_edits`` means to change, as nodes standing in for the nodes they replace (by
    ``id()``): the labels, or the whole flow when it has none."""
    if not labels:
        return {}
    node = yamlnodes.mapping_get(root, "labels")
    wanted = {k: str(v) for k, v in labels.items()}
    if node is None or (isinstance(node, yaml.ScalarNode) and yamlnodes.scalar_text(node) is None):
        new = yaml.MappingNode(_MAP_TAG, [(_text_node(k), _text_node(v)) for k, v in wanted.items()])
        if node is not None:
            return {id(node): new}
        return {id(root): yaml.MappingNode(root.tag, [*root.value, (_text_node("labels"), new)])}
    if isinstance(node, yaml.MappingNode):
        pairs = list(node.value)
        where = {str(k.value): i for i, (k, _) in enumerate(pairs) if isinstance(k, yaml.ScalarNode)}
        for key, value in wanted.items():
            if key not in where:
                pairs.append((_text_node(key), _text_node(value)))
            elif not (isinstance(pairs[where[key]][1], yaml.ScalarNode)
                      and pairs[where[key]][1].value == labels[key]):
                pairs[where[key]] = (pairs[where[key]][0], _text_node(value))
        return {id(node): yaml.MappingNode(node.tag, pairs)}
    if isinstance(node, yaml.SequenceNode):
        items = list(node.value)
        where = {}
        for i, item in enumerate(items):
            name = yamlnodes.scalar_text(yamlnodes.mapping_get(item, "key"))
            if name is not None:
                where[name] = i
        for key, value in wanted.items():
            if key not in where:
                items.append(yaml.MappingNode(_MAP_TAG, [(_text_node("key"), _text_node(key)),
                                                         (_text_node("value"), _text_node(value))]))
                continue
            item = items[where[key]]
            current, index = _get(item, "value")
            if not (isinstance(current, yaml.ScalarNode) and current.value == labels[key]):
                entries = list(item.value)
                entries[index] = (entries[index][0], _text_node(value))
                items[where[key]] = yaml.MappingNode(item.tag, entries)
        return {id(node): yaml.SequenceNode(node.tag, items)}
    return {}


def _shown(node: yaml.Node | None) -> str:
    if node is None:
        return "absent"
    if isinstance(node, yaml.ScalarNode):
        return repr(node.value)
    if isinstance(node, yaml.SequenceNode):
        return f"a list of {len(node.value)}"
    return f"a mapping of {len(node.value)}"


def _differences(expected: yaml.Node, actual: yaml.Node, replaced: dict[int, yaml.Node],
                 loose: set[int]) -> list[tuple[str, yaml.Node | None, yaml.Node | None]]:
    """Where ``actual`` differs from ``expected`` (with the nodes of ``replaced`` standing in for
    theirs): (path, expected, actual) for each scalar, list or mapping that differs. Scalars
    compare by tag and text (a renamed one of ``loose`` may also read as plain text)."""
    found: list[tuple[str, yaml.Node | None, yaml.Node | None]] = []
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[yaml.Node, yaml.Node, str]] = [(expected, actual, "")]
    while stack:
        exp, act, path = stack.pop()
        exp = replaced.get(id(exp), exp)
        if (id(exp), id(act)) in seen:  # aliases: compared once
            continue
        seen.add((id(exp), id(act)))
        if type(exp) is not type(act):
            found.append((path, exp, act))
        elif isinstance(exp, yaml.ScalarNode):
            if exp.value != act.value or (exp.tag != act.tag and not (
                    id(exp) in loose and act.tag == _STR_TAG)):
                found.append((path, exp, act))
        elif isinstance(exp, yaml.SequenceNode):
            if len(exp.value) != len(act.value):
                found.append((path, exp, act))
                continue
            stack.extend((e, a, f"{path}[{i}]")
                         for i, (e, a) in enumerate(zip(exp.value, act.value)))
        else:
            def entries(node: yaml.MappingNode) -> dict[object, list[tuple[yaml.Node, yaml.Node]]]:
                by_key: dict[object, list[tuple[yaml.Node, yaml.Node]]] = defaultdict(list)
                for n, (key, value) in enumerate(node.value):
                    key = replaced.get(id(key), key)
                    name = (key.tag, key.value) if isinstance(key, yaml.ScalarNode) else ("?", n)
                    by_key[name].append((key, value))
                return by_key

            exp_entries, act_entries = entries(exp), entries(act)
            for name in [*exp_entries, *(n for n in act_entries if n not in exp_entries)]:
                e, a = exp_entries.get(name, []), act_entries.get(name, [])
                here = f"{path}.{name[1]}" if path else str(name[1])
                if len(e) != len(a):
                    found.append((here, e[0][1] if e else None, a[0][1] if a else None))
                    continue
                for (e_key, e_value), (a_key, a_value) in zip(e, a):
                    if not isinstance(e_key, yaml.ScalarNode):
                        stack.append((e_key, a_key, f"{here} (key)"))
                    stack.append((e_value, a_value, here))
    return found


def verify_edits(root: yaml.MappingNode, new_text: str, edits: list[Edit],
                 labels: Mapping[str, str]) -> yaml.MappingNode:
    """The root of ``new_text``, the flow ``root`` after ``edits``, once checked to say exactly
    what ``root`` says but for the changes the edits mean: each renamed scalar its new value
    (wherever aliases name it) and the ``labels`` added or corrected. EditRefused otherwise: a
    safety net for the text surgery, so that it can never change a flow silently."""
    try:
        documents = yamlnodes.compose_documents(new_text)
    except yamlnodes.YamlSyntaxError as exc:
        raise EditRefused([(f"editing the flow would break its YAML ({exc}), so it is left as it "
                            "is; please report this", None)]) from exc
    if len(documents) != 1 or not isinstance(documents[0], yaml.MappingNode):
        raise EditRefused([("editing the flow would change how many YAML documents it holds, so "
                            "it is left as it is; please report this", None)])
    replaced = _intended_labels(root, labels)
    loose: set[int] = set()
    for edit in edits:
        if edit.node is not None and edit.value is not None:
            replaced[id(edit.node)] = yaml.ScalarNode(edit.node.tag, edit.value)
            loose.add(id(replaced[id(edit.node)]))
    differences = _differences(root, documents[0], replaced, loose)
    if differences:
        listed = "; ".join(f"{path or 'the flow'} would be {_shown(act)} instead of {_shown(exp)}"
                           for path, exp, act in differences[:3])
        more = f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""
        raise EditRefused([(f"editing the flow would change more than the settings ask: {listed}"
                            f"{more}; it is left as it is; please report this", None)])
    return documents[0]

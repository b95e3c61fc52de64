"""Where a flow names other flows and namespaces: the reference table, and the references it finds.

Which properties hold a namespace is one table, ``NAMESPACE_PROPERTIES``, read from Kestra's own
plugins; a flow's ``pluginDefaults`` are looked up in the same table. ``references`` gives every
value of those properties written in a flow (in the plugins and in ``pluginDefaults``), each a
``Reference`` to the node holding it, and ``dependencies`` the flows a flow calls or listens to.
Reading only: ``renaming`` rewrites what is found here, through the edits of ``flowdoc``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

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
_ONLY_FLOW_NAMESPACE = re.compile(r"\{\{-?\s*flow\.namespace\s*-?\}\}")


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


def _type_of(node: yaml.MappingNode) -> str | None:
    return yamlnodes.scalar_text(yamlnodes.mapping_get(node, "type"))


def _label(node: yaml.MappingNode, kind: str) -> str:
    name = yamlnodes.scalar_text(yamlnodes.mapping_get(node, "id"))
    return f"{kind} {name!r}" if name else kind


def walk(root: yaml.Node) -> Iterator[tuple[yaml.Node, str, str | None]]:
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


def text_scalar(node: yaml.Node | None) -> yaml.ScalarNode | None:
    return node if isinstance(node, yaml.ScalarNode) and yamlnodes.scalar_text(node) else None


def _items(node: yaml.Node | None) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


# where a value is written: (id() of the mapping or list holding it, its index there, a key?)
Slot = tuple[int, int, bool]


def _at(owner: yaml.Node, path: str, where: str
        ) -> Iterator[tuple[yaml.MappingNode, yaml.Node, str, Slot]]:
    """(mapping holding the value, value, its path, where it is written) for each value at
    ``path`` below ``owner``."""
    head, _, rest = path.partition(".")
    each = head.endswith("[]")
    key = head[:-2] if each else head
    value, index = yamlnodes.mapping_entry(owner, key)
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
        scalar = text_scalar(node)
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
    return collect_references(root, {})


def collect_references(root: yaml.Node, slots: dict[Slot, Reference]) -> list[Reference]:
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
    for node, path, _ in walk(root):
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
    for node, _, _ in walk(root):
        if not isinstance(node, yaml.MappingNode) or yamlnodes.mapping_get(node, "namespace"):
            continue
        for prop in _BY_TYPE.get(_type_of(node) or "", ()):
            if prop.calls and prop.path == "namespace":
                namespace = _default_value(root, prop, "namespace")
                flow_id = yamlnodes.scalar_text(yamlnodes.mapping_get(node, "flowId"))
                if namespace and flow_id and "{{" not in namespace + flow_id:
                    keys.add(FlowKey(namespace, flow_id))
    return keys

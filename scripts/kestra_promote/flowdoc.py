"""One flow document: its references to other flows and namespaces, and format-preserving edits.

Edits replace exactly the characters of the scalars that change (found through node positions
from ``yaml.compose``) or insert new lines, so comments, quoting and layout survive and the diff a
reviewer sees is the smallest possible. Expressions (``{{ ... }}``) are never rewritten.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import yaml

from . import yamlnodes
from .models import FlowKey

SUBFLOW_TYPES = frozenset({
    "io.kestra.plugin.core.flow.Subflow", "io.kestra.core.tasks.flows.Subflow",
    "io.kestra.core.tasks.flows.Flow",
})
FOREACHITEM_TYPES = frozenset({
    "io.kestra.plugin.core.flow.ForEachItem", "io.kestra.core.tasks.flows.ForEachItem",
})
FLOW_TRIGGER_TYPES = frozenset({
    "io.kestra.plugin.core.trigger.Flow", "io.kestra.core.models.triggers.types.Flow",
})
EXECUTION_FLOW_CONDITIONS = frozenset({
    "io.kestra.plugin.core.condition.ExecutionFlow",
    "io.kestra.plugin.core.condition.ExecutionFlowCondition",
    "io.kestra.core.models.conditions.types.ExecutionFlowCondition",
})
EXECUTION_NAMESPACE_CONDITIONS = frozenset({
    "io.kestra.plugin.core.condition.ExecutionNamespace",
    "io.kestra.plugin.core.condition.ExecutionNamespaceCondition",
    "io.kestra.core.models.conditions.types.ExecutionNamespaceCondition",
})
_RENAMABLE_FILTERS = frozenset({"EQUAL_TO", "STARTS_WITH", "IN"})
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9._/-]*$")
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class Reference:
    """A namespace written in a flow that points at another flow or namespace."""

    what: str  # e.g. "Subflow task 'call'", "Flow trigger 'on-upstream'"
    node: yaml.ScalarNode
    flow_id: str | None = None  # the referenced flow, when the reference names one
    prefix_only: bool = False  # a namespace filter (prefix), not an exact namespace

    @property
    def namespace(self) -> str:
        return str(self.node.value)

    @property
    def templated(self) -> bool:
        return "{{" in self.namespace or "{%" in self.namespace

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


def _walk(node: yaml.Node) -> Iterator[yaml.Node]:
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, yaml.MappingNode):
            stack.extend(value for _, value in reversed(current.value))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(reversed(current.value))


def _scalar(node: yaml.Node | None) -> yaml.ScalarNode | None:
    return node if isinstance(node, yaml.ScalarNode) and yamlnodes.scalar_text(node) else None


def _items(node: yaml.Node | None) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def references(root: yaml.Node) -> list[Reference]:
    """Every reference to another namespace written in the flow, in document order."""
    found: list[Reference] = []

    def add(what: str, owner: yaml.MappingNode, *, prefix_only: bool = False,
            with_flow: bool = True) -> None:
        node = _scalar(yamlnodes.mapping_get(owner, "namespace"))
        if node is not None:
            flow_id = yamlnodes.scalar_text(yamlnodes.mapping_get(owner, "flowId")) if with_flow else None
            found.append(Reference(what, node, flow_id, prefix_only))

    for node in _walk(root):
        if not isinstance(node, yaml.MappingNode):
            continue
        kind = _type_of(node)
        if kind in SUBFLOW_TYPES:
            add(_label(node, "Subflow task"), node)
        elif kind in FOREACHITEM_TYPES:
            add(_label(node, "ForEachItem task"), node)
        elif kind in EXECUTION_FLOW_CONDITIONS:
            add(_label(node, "ExecutionFlow condition"), node)
        elif kind in EXECUTION_NAMESPACE_CONDITIONS:
            add(_label(node, "ExecutionNamespace condition"), node, prefix_only=True, with_flow=False)
        elif kind in FLOW_TRIGGER_TYPES:
            what = _label(node, "Flow trigger")
            # 2.0: `dependsOn: [{namespace, flowId, states, labels, when}]`, the namespace compared
            # for equality, flowId optional (plugin/core/trigger/Flow.java, Dependency)
            for upstream in _items(yamlnodes.mapping_get(node, "dependsOn")):
                if isinstance(upstream, yaml.MappingNode):
                    add(what, upstream)
            # 1.3: `preconditions: {flows: [{namespace, flowId, ...}], where: [{filters}]}`
            # (releases/v1.3.x plugin/core/trigger/Flow.java, Preconditions); removed in 2.0
            pre = yamlnodes.mapping_get(node, "preconditions")
            for upstream in _items(yamlnodes.mapping_get(pre, "flows") if pre else None):
                if isinstance(upstream, yaml.MappingNode):
                    add(what, upstream)
            for where in _items(yamlnodes.mapping_get(pre, "where") if pre else None):
                for item in _items(yamlnodes.mapping_get(where, "filters")):
                    if yamlnodes.scalar_text(yamlnodes.mapping_get(item, "field")) != "NAMESPACE":
                        continue
                    op = yamlnodes.scalar_text(yamlnodes.mapping_get(item, "type")) or ""
                    values = [yamlnodes.mapping_get(item, "value")] + _items(
                        yamlnodes.mapping_get(item, "values"))
                    for value in values:
                        if _scalar(value) is not None:
                            found.append(Reference(f"{what} filter {op}", value, None,
                                                   prefix_only=op != "EQUAL_TO"))
        files = yamlnodes.mapping_get(node, "namespaceFiles")
        if isinstance(files, yaml.MappingNode):
            owner = _label(node, f"{kind.rsplit('.', 1)[-1]} task") if kind else "namespaceFiles"
            for item in _items(yamlnodes.mapping_get(files, "namespaces")):
                if _scalar(item) is not None:
                    found.append(Reference(f"{owner} namespaceFiles", item, None))
    return sorted(found, key=lambda r: (r.node.start_mark.line, r.node.start_mark.column))


def dependencies(root: yaml.Node) -> set[FlowKey]:
    """The flows this flow calls (Subflow, ForEachItem) or listens to (Flow trigger: 2.0
    ``dependsOn`` or 1.3 ``preconditions``, with a flowId)."""
    return {
        FlowKey(ref.namespace, ref.flow_id)
        for ref in references(root)
        if ref.flow_id and not ref.templated and not ref.prefix_only and "{{" not in ref.flow_id
    }


# -- edits ------------------------------------------------------------------------------------


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for match in re.finditer(r"\r\n|\n|\r", text):
        starts.append(match.end())
    return starts


def _offset(starts: list[int], mark: yaml.Mark) -> int:
    return starts[mark.line] + mark.column


def _render_scalar(value: str, style: str | None) -> str:
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or yaml.resolver.Resolver().resolve(yaml.ScalarNode, value, (True, False)) != _STR_TAG:
        return json.dumps(value)
    return value


def replace_scalar(starts: list[int], node: yaml.ScalarNode, value: str) -> Edit:
    """An edit giving ``node`` the text ``value``, keeping its quoting style."""
    start, end = _offset(starts, node.start_mark), _offset(starts, node.end_mark)
    return Edit(start, end, _render_scalar(value, node.style if node.style in ("'", '"') else None))


def apply_edits(text: str, edits: list[Edit]) -> str:
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text


def rename_namespace(namespace: str, rename: Mapping[str, str]) -> str:
    """``namespace`` with the longest matching prefix of ``rename`` replaced (segment-wise)."""
    for old in sorted(rename, key=len, reverse=True):
        if namespace == old or namespace.startswith(old + "."):
            new, rest = rename[old], namespace[len(old):]
            return (new + rest) if new else rest.lstrip(".")
    return namespace


def _key_text(key: str) -> str:
    return key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def label_edits(text: str, root: yaml.MappingNode, labels: Mapping[str, str]) -> list[Edit]:
    """Edits that make the flow carry ``labels`` (added or corrected, others kept)."""
    if not labels:
        return []
    starts, nl = _line_starts(text), _newline(text)
    node = yamlnodes.mapping_get(root, "labels")
    pairs = {k: json.dumps(str(v)) for k, v in labels.items()}
    if node is None or (isinstance(node, yaml.ScalarNode) and yamlnodes.scalar_text(node) is None):
        if node is not None:  # `labels:` with no value: give it a flow mapping
            start, end = _offset(starts, node.start_mark), _offset(starts, node.end_mark)
            body = ", ".join(f"{_key_text(k)}: {v}" for k, v in pairs.items())
            return [Edit(start, end, (" " if text[start - 1:start] == ":" else "") + f"{{{body}}}")]
        anchor = yamlnodes.mapping_get(root, "namespace") or root.value[-1][1]
        indent = " " * root.value[0][0].start_mark.column
        line = anchor.end_mark.line + (1 if anchor.end_mark.column > 0 else 0)
        block = f"{indent}labels:{nl}" + "".join(
            f"{indent}  {_key_text(k)}: {v}{nl}" for k, v in pairs.items())
        if line >= len(starts):
            return [Edit(len(text), len(text), ("" if text.endswith(("\n", "\r")) else nl) + block)]
        return [Edit(starts[line], starts[line], block)]
    existing: dict[str, yaml.Node | None]
    if isinstance(node, yaml.MappingNode):
        existing = {str(k.value): v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        last = node.value[-1][1] if node.value else None
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
                edits.append(Edit(_offset(starts, current.start_mark),
                                  _offset(starts, current.end_mark), value))
        else:
            missing[key] = value
    if not missing:
        return edits
    if node.flow_style or last is None:  # {a: b} or [..]: insert before the closing bracket
        close = _offset(starts, node.end_mark) - 1
        body = ", ".join(inline_entry(k, v) for k, v in missing.items())
        return edits + [Edit(close, close, (", " if last is not None else "") + body)]
    line = last.end_mark.line + (1 if last.end_mark.column > 0 else 0)
    at = starts[line] if line < len(starts) else len(text)
    prefix = "" if at < len(text) or text.endswith(("\n", "\r")) else nl
    return edits + [Edit(at, at, prefix + "".join(block_entry(k, v) for k, v in missing.items()))]


RenameWarning = Callable[[Reference, str], None]


def rename_edits(text: str, root: yaml.MappingNode, rename: Mapping[str, str],
                 warn: RenameWarning) -> list[Edit]:
    """Edits applying ``rename`` to the flow's namespace and every reference in it."""
    if not rename:
        return []
    starts = _line_starts(text)
    edits = []
    own = _scalar(yamlnodes.mapping_get(root, "namespace"))
    targets: list[tuple[yaml.ScalarNode, Reference | None]] = [(own, None)] if own else []
    targets += [(ref.node, ref) for ref in references(root)]
    for node, ref in targets:
        value = str(node.value)
        if ref is not None and ref.templated:
            warn(ref, f"{ref.what} references namespace {value!r} through an expression: "
                      "not rewritten; check it resolves in every environment")
            continue
        new = rename_namespace(value, rename)
        if new != value:
            if node.style in ("|", ">"):
                warn(ref or Reference("namespace", node), "block scalar not rewritten")
                continue
            edits.append(replace_scalar(starts, node, new))
        elif ref is not None and ref.prefix_only and any(
                old.startswith(value + ".") or (value and old.startswith(value)) for old in rename):
            warn(ref, f"{ref.what} filters on namespace prefix {value!r}, which covers renamed "
                      "namespaces only partly: not rewritten")
    return edits

"""Renaming namespaces in a flow: what a rename does to each namespace written in it, and the edits.

The flow's own namespace and every reference (``references``) the rename covers are rewritten in
place, through the edits of ``flowdoc``; an expression, a prefix or pattern covering renamed
namespaces only partly, or a block scalar is left as written and reported. Edits never change a
flow beyond what they mean: renaming an anchored namespace that an alias also names somewhere else
than a namespace property, or a reference to nothing, is refused (``EditRefused``). Any other
value written as a namespace that a rename covers is left as it is and reported, once per flow.
A literal namespace given to a Pebble function inside an expression (``pebble``) is rewritten in
place, character by character; one given through another expression is reported.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Mapping

import yaml

from kestra_promote import yamlnodes
from kestra_promote.flows import pebble
from kestra_promote.flows.flowdoc import ANCHOR, STR_TAG, Edit, EditRefused, replace_scalar, span
from kestra_promote.flows.references import (
    GLOB,
    PREFIX,
    Reference,
    Slot,
    collect_references,
    references,
    text_scalar,
    walk,
)

_BREAKS = yamlnodes.LINE_BREAKS
# values that are never namespaces, whatever they look like: plugin types and ids
_NOT_NAMESPACES = frozenset({"type", "id", "flowId"})
_NAMESPACE_SHAPE = re.compile(r"[a-z0-9][a-z0-9._-]*")


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
    own = text_scalar(yamlnodes.mapping_get(root, "namespace"))
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
    for node, path, key in walk(root):
        if (isinstance(node, yaml.ScalarNode) and id(node) not in judged and node.tag == STR_TAG
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
    for node, path, _ in walk(root):
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
    collect_references(root, slots)
    _, own_index = yamlnodes.mapping_entry(root, "namespace")
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
            start = yamlnodes.offset(text, finding.node.start_mark)
            anchor = ANCHOR.search(text, start, span(text, finding.node)[0])
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
    start, end = span(text, node)
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
    if rename:
        edits += _expression_edits(text, root, rename, warn, problems)
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


def _occurrences(text: str, part: str, start: int = 0, end: int | None = None) -> list[int]:
    found, at = [], text.find(part, start, end)
    while at >= 0:
        found.append(at)
        at = text.find(part, at + 1, end)
    return found


def _expression_edits(text: str, root: yaml.MappingNode, rename: Mapping[str, str],
                      warn: RenameWarning, problems: list[tuple[str, int | None]]) -> list[Edit]:
    """Edits renaming the literal namespaces given to Pebble functions (``pebble``) in the
    flow's text values, each edit replacing only the namespace's characters; ``warn`` hears of
    each namespace given through another expression, or written where it cannot be found."""
    skip = {id(ref.node) for ref in references(root)}  # judged as references already
    edits: list[Edit] = []
    for node, path, _ in walk(root):
        if not isinstance(node, yaml.ScalarNode) or node.tag != STR_TAG or id(node) in skip:
            continue
        skip.add(id(node))
        changes: list[tuple[pebble.NamespaceArgument, str]] = []
        for arg in pebble.namespace_arguments(node.value):
            ref = Reference(f"{arg.function}() at {path}", node, path=path)
            if arg.value is None:
                if not arg.follows_flow:
                    warn(ref, f"{path}: {arg.function}() is given namespace {arg.written} through "
                              "an expression: not rewritten; check it resolves in every "
                              "environment")
                continue
            new = rename_namespace(arg.value, rename)
            if new == arg.value:
                continue
            if not new:
                problems.append((f"{path}: the rename turns namespace {arg.value!r} given to "
                                 f"{arg.function}() into an empty namespace; give {arg.value!r} a "
                                 "namespace to be renamed to, or change the flow", ref.line))
                continue
            changes.append((arg, new))
        edits += _literal_edits(text, node, path, changes, warn)
    return edits


def _literal_edits(text: str, node: yaml.ScalarNode, path: str,
                   changes: list[tuple[pebble.NamespaceArgument, str]],
                   warn: RenameWarning) -> list[Edit]:
    """Edits of the characters of each changed namespace where ``text`` writes ``node``: the
    k-th time a namespace appears in the value is the k-th time it is written (a namespace holds
    no character YAML escapes or folds); when the counts differ, nothing is edited and ``warn``
    says so. Every edit carries the scalar's whole new value, which ``verify_edits`` checks."""
    if not changes:
        return []
    value = node.value
    for arg, new in sorted(changes, key=lambda c: c[0].start, reverse=True):
        value = value[:arg.start] + new + value[arg.end:]
    start, end = span(text, node)
    edits: list[Edit] = []
    for arg, new in changes:
        in_value = _occurrences(node.value, arg.value or "")
        in_text = _occurrences(text, arg.value or "", start, end)
        if len(in_value) != len(in_text) or arg.start not in in_value:
            warn(Reference(f"{arg.function}() at {path}", node, path=path),
                 f"{path}: {arg.function}() is given namespace {arg.value!r}, written in a way "
                 f"kestra-promote cannot rewrite in place: not rewritten (to {new!r}); write the "
                 "value without escapes")
            return []
        at = in_text[in_value.index(arg.start)]
        edits.append(Edit(at, at + len(arg.value or ""), new, node, value))
    return edits

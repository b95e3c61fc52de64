"""YAML at the node level: parse once with positions, so problems can point at a line.

Working on ``yaml.compose`` nodes rather than plain values keeps line and column numbers,
lets us see duplicate keys (which plain loading silently collapses, but Kestra rejects),
and later allows format-preserving edits of exactly the scalars that change.
"""

from __future__ import annotations

import bisect
import functools
import re
from typing import Iterator

import yaml

try:  # libyaml is ~10x faster; fall back to the pure-Python loader where it is missing
    Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    Loader = yaml.SafeLoader


class YamlSyntaxError(Exception):
    """The text is not valid YAML; ``line``/``column`` are 1-based when known."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


def compose_documents(text: str) -> list[yaml.Node]:
    """Every document of ``text`` as a node tree (empty documents are dropped)."""
    try:
        return [node for node in yaml.compose_all(text, Loader=Loader) if node is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise YamlSyntaxError(
            f"YAML syntax error: {problem}",
            mark.line + 1 if mark else None,
            mark.column + 1 if mark else None,
        ) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"YAML syntax error: {exc}", None, None) from exc


_IDENTITY = ("id", "namespace")


def identity(text: str) -> dict[str, str] | None:
    """The flow's top-level ``id`` and ``namespace`` as written (the text of each scalar, as
    Kestra reads them), from the first parser events only: no node tree is built, and parsing
    stops once both are found. None when they are not simply written there (not a mapping, an
    alias, a tag, a collection, a repeated key, or missing): the caller then reads the whole
    document."""
    found: dict[str, str] = {}
    depth, is_key, pending = 0, True, None
    try:
        for event in yaml.parse(text, Loader=Loader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if depth == 0 and not isinstance(event, yaml.MappingStartEvent):
                    return None
                if depth == 1 and (is_key or pending in _IDENTITY):
                    return None
                depth += 1
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
                if depth == 0:
                    return None  # the end of the root mapping, and one of them missing
                if depth == 1:
                    is_key = True  # a collection value ended: a key comes next
            elif depth != 1:
                continue
            elif isinstance(event, yaml.AliasEvent):
                if is_key or pending in _IDENTITY:
                    return None
                is_key = True
            elif isinstance(event, yaml.ScalarEvent):
                if is_key:
                    pending, is_key = event.value, False
                    continue
                if pending in _IDENTITY:
                    if pending in found or event.anchor or (event.tag and event.tag != "!"):
                        return None
                    found[pending] = event.value
                    if len(found) == len(_IDENTITY):
                        return found
                is_key = True
    except yaml.YAMLError:
        return None
    return None


# -- where a node is written: offsets in the text, as Python indexes it --------------------------

# What YAML (libyaml and PyYAML alike) counts as a line break: a line, as node marks number
# them, ends at any of these (``\r\n`` being one break).
LINE_BREAKS = "\r\n\x85\u2028\u2029"
_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def line_starts(text: str) -> list[int]:
    """The offset where each line of ``text`` starts, lines counted as the YAML loaders count
    them (so ``line_starts(text)[mark.line]`` is where a mark's line starts)."""
    return [0] + [match.end() for match in _BREAK.finditer(text)]


def line_of(starts: list[int], offset: int) -> int:
    """The 0-based line holding ``offset``, given ``line_starts``."""
    return bisect.bisect_right(starts, offset) - 1


@functools.lru_cache(maxsize=None)
def _bom_shift(loader: type) -> int:
    """How far a mark's index falls short of the Python index when the text starts with a byte
    order mark: libyaml drops it before counting, the pure-Python loader counts it."""
    node = yaml.compose("\ufeffa", Loader=loader)
    return 1 - node.start_mark.index if node is not None else 0


def offset(text: str, mark: yaml.Mark, loader: type | None = None) -> int:
    """The Python index in ``text`` of ``mark`` (of a node composed from ``text``). ``mark.index``
    counts characters, as Python does, in both loaders; line and column do not always add up to it
    (the pure-Python loader does not count a byte order mark in a column)."""
    shift = _bom_shift(loader or Loader) if text.startswith("\ufeff") else 0
    return mark.index + shift


def tokens(text: str) -> list[yaml.Token]:
    """The YAML tokens of ``text`` (their marks read with ``offset``)."""
    return list(yaml.scan(text, Loader=Loader))


def position(node: yaml.Node) -> tuple[int, int]:
    """1-based (line, column) where ``node`` starts."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def mapping_get(node: yaml.Node, key: str) -> yaml.Node | None:
    """The value node for ``key`` in a mapping node, or None."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value_node
    return None


def mapping_entry(owner: yaml.Node, key: str) -> tuple[yaml.Node | None, int]:
    """The value of ``key`` in the mapping ``owner`` and the index of its entry (-1: none)."""
    if isinstance(owner, yaml.MappingNode):
        for index, (key_node, value) in enumerate(owner.value):
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return value, index
    return None, -1


def scalar_text(node: yaml.Node | None) -> str | None:
    """The text of a scalar node (how Kestra reads ids: ``123`` is the string "123")."""
    if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
        return str(node.value)
    return None


def duplicate_keys(node: yaml.Node) -> Iterator[yaml.ScalarNode]:
    """Key nodes that repeat an earlier key of the same mapping, anywhere in the tree."""
    stack = [node]
    seen_ids: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen_ids:  # aliases can make the graph cyclic
            continue
        seen_ids.add(id(current))
        if isinstance(current, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in current.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in keys and key_node.value != "<<":
                        yield key_node
                    keys.add(key_node.value)
                stack.append(value_node)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def shared_nodes(node: yaml.Node) -> set[int]:
    """``id()`` of the nodes met more than once in the tree: anchored (``&name``) and named
    again through an alias (``*name``). Editing such a node changes every place naming it."""
    seen: set[int] = set()
    shared: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            shared.add(id(current))
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                stack.extend((key_node, value_node))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return shared


def load(text: str) -> object:
    """Plain Python value of a single-document text (for server responses and ZIP entries)."""
    return yaml.load(text, Loader=Loader)

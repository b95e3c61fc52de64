"""Format-preserving edits of one flow document, and the check that they change only what they mean.

Edits replace exactly the characters of the scalars that change (found through node positions
from ``yaml.compose``) or insert new lines, so comments, quoting and layout survive and the diff a
reviewer sees is the smallest possible. Expressions (``{{ ... }}``) are never rewritten but for
the literal namespaces given to Pebble functions (``pebble``), character by character. This
module holds the text surgery (``replace_scalar``, ``label_edits``, ``apply_edits``) and
``verify_edits``, which checks the edited text against the old one, node by node; what a rename
rewrites is worked out in ``renaming``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Mapping

import yaml

from kestra_promote import yamlnodes

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9._/-]*$")
STR_TAG = "tag:yaml.org,2002:str"


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
ANCHOR = re.compile(r"&([^\s,\[\]{}]+)")
_RESOLVER = yaml.resolver.Resolver()


def _offset(text: str, mark: yaml.Mark) -> int:
    return yamlnodes.offset(text, mark)


def span(text: str, node: yaml.Node) -> tuple[int, int]:
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
    return _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == STR_TAG


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
    start, end = span(text, node)
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
            start, end = span(text, node)
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
            start, end = span(text, current)
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

# -- checking the edited text -----------------------------------------------------------------

_MAP_TAG = "tag:yaml.org,2002:map"


def _text_node(value: str) -> yaml.ScalarNode:
    return yaml.ScalarNode(STR_TAG, value)


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
            current, index = yamlnodes.mapping_entry(item, "value")
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
                    id(exp) in loose and act.tag == STR_TAG)):
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
                 labels: Mapping[str, str], *, disabled: bool = False) -> yaml.MappingNode:
    """The root of ``new_text``, the flow ``root`` after ``edits``, once checked to say exactly
    what ``root`` says but for the changes the edits mean: each renamed scalar its new value
    (wherever aliases name it), the ``labels`` added or corrected, and with ``disabled`` every
    trigger ``disabled: true`` (``disable_trigger_edits``). EditRefused otherwise: a
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
    if disabled:
        replaced.update(_intended_disabled(root))
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


# -- triggers turned off ----------------------------------------------------------------------

# Every trigger has `disabled` (a plain boolean, default false) in Kestra's AbstractTrigger
# (core/src/main/java/io/kestra/core/models/triggers/AbstractTrigger.java, 2.0 and 1.3): a
# disabled trigger starts nothing; the flow still runs when started by hand.
_BOOL_TAG = "tag:yaml.org,2002:bool"


def _triggers(root: yaml.MappingNode) -> list[yaml.MappingNode]:
    node = yamlnodes.mapping_get(root, "triggers")
    items = node.value if isinstance(node, yaml.SequenceNode) else []
    return [item for item in items if isinstance(item, yaml.MappingNode)]


def _is_true(node: yaml.Node | None) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _BOOL_TAG and \
        node.value.lower() == "true"


def disable_trigger_edits(text: str, root: yaml.MappingNode) -> list[Edit]:
    """Edits that give every trigger ``disabled: true``: set where it is absent, corrected where
    it says anything else; the rest of the text is kept as it is."""
    edits: list[Edit] = []
    shared = yamlnodes.shared_nodes(root)
    starts: list[int] | None = None
    nl = _newline(text)
    for trigger in _triggers(root):
        current, _ = yamlnodes.mapping_entry(trigger, "disabled")
        if _is_true(current):
            continue
        name = yamlnodes.scalar_text(yamlnodes.mapping_get(trigger, "id"))
        what = f"trigger {name!r}" if name else "a trigger"
        if current is not None:
            if not isinstance(current, yaml.ScalarNode):
                raise ValueError(f"{what}: 'disabled' (line {yamlnodes.position(current)[0]}) "
                                 "is not true or false")
            _not_shared(current, shared, f"'disabled' of {what}")
            start, end = span(text, current)
            edits.append(_value_edit(text, start, end, "true") if start == end else
                         Edit(start, end, "true"))
            continue
        _not_shared(trigger, shared, what)
        quoted = _quoted_keys(trigger)
        if trigger.flow_style or not trigger.value:
            edits.append(_flow_insert(text, trigger, f"{_key_text('disabled', quoted)}: true"))
            continue
        starts = starts if starts is not None else yamlnodes.line_starts(text)
        last_key, last = trigger.value[-1]
        end = _innermost_last(last)
        line = _line_after(text, starts, last, trigger, last_key) if end is last else \
            _next_line(starts, _offset(text, end.end_mark))
        at = starts[line] if line < len(starts) else len(text)
        ending = "" if at < len(text) or text.endswith(tuple(_BREAKS)) else nl
        column = trigger.value[0][0].start_mark.column
        edits.append(Edit(at, at, f"{ending}{' ' * column}{_key_text('disabled', quoted)}: "
                                  f"true{nl}"))
    return edits


def _innermost_last(node: yaml.Node) -> yaml.Node:
    """The node written last inside ``node``: a block collection ends where its last item
    does (its own end mark is where the next token starts, maybe on a line of its own)."""
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style \
            and node.value:
        item = node.value[-1][1] if isinstance(node, yaml.MappingNode) else node.value[-1]
        if item.start_mark.index < node.start_mark.index:  # an alias: written before
            break
        node = item
    return node


def _intended_disabled(root: yaml.MappingNode) -> dict[int, yaml.Node]:
    """What ``disable_trigger_edits`` means to change: each trigger not disabled yet, with
    ``disabled: true`` (by ``id()`` of the trigger it stands in for)."""
    replaced: dict[int, yaml.Node] = {}
    for trigger in _triggers(root):
        current, index = yamlnodes.mapping_entry(trigger, "disabled")
        if _is_true(current):
            continue
        pairs = list(trigger.value)
        value = yaml.ScalarNode(_BOOL_TAG, "true")
        if current is None:
            pairs.append((_text_node("disabled"), value))
        else:
            pairs[index] = (pairs[index][0], value)
        replaced[id(trigger)] = yaml.MappingNode(trigger.tag, pairs)
    return replaced

"""Namespaces named inside Pebble expressions: the arguments of the functions that take one.

Kestra's Pebble functions that read another namespace take it as an argument, by name
(``namespace='x'``) or by position (core/src/main/java/io/kestra/core/runners/pebble/functions/,
each class's ``getArgumentNames``, in Kestra 1.3 and 2.0):

- ``subflow(namespace, id, ...)`` (2.0 only, SubflowFunction.java): the namespace comes first;
- ``kv(key, namespace, ...)`` (KvFunction.java) and ``secret(key, namespace, ...)``
  (SecretFunction.java): second;
- ``read``, ``fileExists``, ``fileSize``, ``isFileEmpty``, ``fileURI`` (AbstractFileFunction.java
  and its subclasses): ``(path, namespace, ...)``; a ``path`` written ``nsfile://ns/file`` names
  the namespace as the URI's authority instead.

``namespace_arguments`` finds each of them in a text (a scalar of a flow), with where the literal
namespace is written in it; an argument that is not a plain string literal is found too, without
a value, so that a rename can report it. Reading only: ``renaming`` decides what to rewrite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

# the function, and the position of its namespace argument
NAMESPACE_POSITION = {"subflow": 0, "kv": 1, "secret": 1, "read": 1, "fileExists": 1,
                      "fileSize": 1, "isFileEmpty": 1, "fileURI": 1}
# the functions whose first argument, `path`, may be an nsfile:// URI naming a namespace
_PATH_FIRST = frozenset({"read", "fileExists", "fileSize", "isFileEmpty", "fileURI"})
_NSFILE = re.compile(r"nsfile://([^/?#]+)")

_TAG = re.compile(r"\{\{|\{%|\{#")
_CLOSE = {"{{": "}}", "{%": "%}"}
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<close>-?\}\}|-?%\})
  | (?P<op>==|!=|<=|>=|\?\?|\?:|[-+*/%~<>=!?:.,|(){}\[\]])
""", re.VERBOSE | re.DOTALL)
_OPEN, _SHUT = "([{", ")]}"


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class NamespaceArgument:
    """A namespace given to a Pebble function, in ``text[start:end]`` of the scanned text."""

    function: str   # e.g. "kv"
    call: str       # the whole call as written, for messages
    written: str    # the argument as written, e.g. "'dev.company'" or "inputs.ns"
    value: str | None  # the literal namespace; None when it is an expression
    start: int      # where the namespace (``value``), else the whole argument, is written
    end: int

    @property
    def follows_flow(self) -> bool:
        """``flow.namespace``: the flow's own namespace, which follows a rename by itself."""
        return self.value is None and re.sub(r"\s", "", self.written) == "flow.namespace"


def _tokens(text: str, start: int) -> tuple[list[Token], int]:
    """The tokens of the expression opened just before ``start``, and where it is closed."""
    found: list[Token] = []
    at = start
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:  # a character Pebble would reject: stop reading this expression
            return found, at
        at = match.end()
        kind = match.lastgroup or ""
        if kind == "close":
            return found, at
        if kind != "space":
            found.append(Token(kind, match.group(), match.start(), match.end()))
    return found, at


def _expressions(text: str) -> Iterator[list[Token]]:
    """The tokens of each ``{{ ... }}`` and ``{% ... %}`` of ``text`` (comments skipped)."""
    at = 0
    while (match := _TAG.search(text, at)) is not None:
        if match.group() == "{#":
            end = text.find("#}", match.end())
            at = len(text) if end < 0 else end + 2
            continue
        tokens, at = _tokens(text, match.end())
        yield tokens


def _arguments(tokens: list[Token], open_at: int) -> tuple[list[list[Token]], int]:
    """The arguments of the call whose ``(`` is ``tokens[open_at]``, and the index of its ``)``."""
    args: list[list[Token]] = [[]]
    depth = 0
    for i in range(open_at + 1, len(tokens)):
        token = tokens[i]
        if token.kind == "op" and token.text in _OPEN:
            depth += 1
        elif token.kind == "op" and token.text in _SHUT:
            if depth == 0:
                return ([] if args == [[]] else args), i
            depth -= 1
        elif token.kind == "op" and token.text == "," and depth == 0:
            args.append([])
            continue
        args[-1].append(token)
    return [], -1  # never closed: not a call this module can read


def _literal(tokens: list[Token]) -> str | None:
    """The text of a plain string literal (no escape, no ``#{}`` interpolation), else None."""
    if len(tokens) != 1 or tokens[0].kind != "string":
        return None
    inner = tokens[0].text[1:-1]
    if "\\" in inner or (tokens[0].text[0] == '"' and "#{" in inner):
        return None
    return inner


def _found(text: str, function: str, call: str, arg: list[Token], nsfile: bool
           ) -> NamespaceArgument | None:
    written = text[arg[0].start:arg[-1].end]
    literal = _literal(arg)
    if nsfile:  # the path: a namespace only when it is a literal nsfile://ns/... URI
        match = _NSFILE.match(literal or "")
        if match is None:
            return None
        at = arg[0].start + 1
        return NamespaceArgument(function, call, written, match.group(1),
                                 at + match.start(1), at + match.end(1))
    if literal is None:
        return NamespaceArgument(function, call, written, None, arg[0].start, arg[-1].end)
    return NamespaceArgument(function, call, written, literal, arg[0].start + 1, arg[-1].end - 1)


def namespace_arguments(text: str) -> list[NamespaceArgument]:
    """Every namespace given to a Pebble function in the expressions of ``text``."""
    if "{{" not in text and "{%" not in text:
        return []
    found: list[NamespaceArgument] = []
    for tokens in _expressions(text):
        for i, token in enumerate(tokens[:-1]):
            if (token.kind != "name" or token.text not in NAMESPACE_POSITION
                    or tokens[i + 1].text != "("
                    or (i > 0 and tokens[i - 1].text in (".", "|"))):  # an attribute, a filter
                continue
            args, close = _arguments(tokens, i + 1)
            if close < 0:
                continue
            call = text[token.start:tokens[close].end]
            positional = [a for a in args if not (len(a) > 1 and a[0].kind == "name"
                                                   and a[1].text == "=")]
            named = {a[0].text: a[2:] for a in args if len(a) > 2 and a[0].kind == "name"
                     and a[1].text == "="}
            position = NAMESPACE_POSITION[token.text]
            argument = named.get("namespace") or (
                positional[position] if len(positional) > position else None)
            if argument:
                arg = _found(text, token.text, call, argument, nsfile=False)
                if arg is not None:
                    found.append(arg)
            path = named.get("path") or (positional[0] if positional else None)
            if token.text in _PATH_FIRST and path:
                arg = _found(text, token.text, call, path, nsfile=True)
                if arg is not None:
                    found.append(arg)
    return found

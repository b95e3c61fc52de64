"""A minimal renderer of Kestra's Pebble expressions: exactly what flows/ uses.

Supported: ``{{ expr }}`` in text; paths (``inputs.x``, ``outputs.task.vars.key``); string,
number and null/true/false literals; parentheses; ``??`` (null and undefined coalescing); ``==``;
``~`` (concatenation); ``cond ? a : b`` (only the chosen branch is evaluated, as in Pebble);
filters ``| toJson``, ``| join(sep)`` and ``| endsWith(text)``; functions ``secret('NAME')`` and ``kv('KEY', errorOnMissing=false)``.
Anything else raises, so a flow using more than this is noticed.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Mapping

TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>\?\?|==|[().,|=\[\]?:~])"
                   r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*))")


class Undefined(Exception):
    """A variable that does not exist (Kestra fails the render, unless ?? catches it)."""


class RenderError(Exception):
    pass


class _Parser:
    def __init__(self, text: str, context: Mapping[str, Any], functions: Mapping[str, Callable]):
        self.tokens = self._lex(text)
        self.pos = 0
        self.context, self.functions = context, functions

    @staticmethod
    def _lex(text: str) -> list[tuple[str, str]]:
        tokens, at = [], 0
        while at < len(text.rstrip()):
            match = TOKEN.match(text, at)
            if not match or match.end() == at:
                raise RenderError(f"unsupported expression syntax at {text[at:]!r}")
            kind = match.lastgroup
            assert kind is not None
            tokens.append((kind, match.group(kind)))
            at = match.end()
        return tokens

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise RenderError(f"expected {value!r}, found {token!r}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.ternary()
        if self.peek() is not None:
            raise RenderError(f"unexpected {self.peek()!r}")
        return value

    def ternary(self) -> Any:
        condition = self.coalesce()
        if self.peek() != ("op", "?"):
            return condition
        self.take("?")
        if condition is True or condition == "true":
            value = self.ternary()
            self.take(":")
            self._skip_branch(stop=(")", ","))
        else:
            self._skip_branch(stop=(":",))
            self.take(":")
            value = self.ternary()
        return value

    def _skip_branch(self, stop: tuple[str, ...]) -> None:
        """Move past one operand without evaluating it (Pebble never evaluates the other one)."""
        depth = 0
        while (token := self.peek()) is not None:
            if token[0] == "op" and depth == 0 and token[1] in stop:
                return
            if token[0] == "op":
                depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(token[1], 0)
                if depth < 0:
                    return
            self.pos += 1

    def coalesce(self) -> Any:
        try:
            value = self.compare()
        except Undefined:
            value = None
            self._skip_operand()
        while self.peek() == ("op", "??"):
            self.take("??")
            if value is None:
                try:
                    value = self.compare()
                except Undefined:
                    value = None
                    self._skip_operand()
            else:
                self._skip_operand()
        return value

    def _skip_operand(self) -> None:
        depth = 0
        while (token := self.peek()) is not None:
            if token == ("op", "??") and depth == 0:
                return
            depth += {"(": 1, ")": -1}.get(token[1], 0) if token[0] == "op" else 0
            if depth < 0:
                return
            self.pos += 1

    def compare(self) -> Any:
        left = self.concat()
        if self.peek() == ("op", "=="):
            self.take("==")
            return left == self.concat()
        return left

    def concat(self) -> Any:
        value = self.filtered()
        while self.peek() == ("op", "~"):
            self.take("~")
            value = _text(value) + _text(self.filtered())
        return value

    def filtered(self) -> Any:
        value = self.primary()
        while self.peek() == ("op", "|"):
            self.take("|")
            name = self.take()[1]
            if name == "toJson":
                value = json.dumps(value, separators=(",", ":"))
            elif name == "endsWith":  # EndsWithFilter: input.toString().endsWith(value)
                self.take("(")
                suffix = self.ternary()
                self.take(")")
                value = _text(value).endswith(_text(suffix))
            elif name == "join":
                self.take("(")
                separator = self.ternary()
                self.take(")")
                value = str(separator).join(_text(v) for v in value)
            else:
                raise RenderError(f"unsupported filter {name!r}")
        return value

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("\\'", "'")
        if kind == "num":
            return float(text) if "." in text else int(text)
        if text == "(":
            value = self.ternary()
            self.take(")")
            return value
        if kind != "name":
            raise RenderError(f"unexpected {text!r}")
        if text in ("null", "true", "false"):
            return {"null": None, "true": True, "false": False}[text]
        if self.peek() == ("op", "("):
            return self.call(text)
        value: Any = self.context
        if text not in value:
            raise Undefined(text)
        value = value[text]
        while self.peek() in (("op", "."), ("op", "[")):
            if self.take()[1] == ".":
                key = self.take()[1]
            else:
                key = self.take()[1][1:-1]
                self.take("]")
            if not isinstance(value, Mapping) or key not in value:
                raise Undefined(key)
            value = value[key]
        return value

    def call(self, name: str) -> Any:
        if name not in self.functions:
            raise RenderError(f"unsupported function {name!r}")
        self.take("(")
        args, kwargs = [], {}
        while self.peek() != ("op", ")"):
            if self.peek()[0] == "name" and self.tokens[self.pos + 1] == ("op", "="):  # type: ignore[index]
                key = self.take()[1]
                self.take("=")
                kwargs[key] = self.ternary()
            else:
                args.append(self.ternary())
            if self.peek() == ("op", ","):
                self.take(",")
        self.take(")")
        return self.functions[name](*args, **kwargs)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise RenderError("a map or list rendered as text: use | toJson")
    return str(value)


def render(template: Any, context: Mapping[str, Any], functions: Mapping[str, Callable]) -> Any:
    """Render a property: strings with ``{{ }}``, recursively through lists and maps."""
    if isinstance(template, dict):
        return {k: render(v, context, functions) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, context, functions) for v in template]
    if not isinstance(template, str) or "{{" not in template:
        return template
    if "{%" in template:
        raise RenderError("Pebble tags are not supported")
    parts = re.split(r"\{\{(.*?)\}\}", template, flags=re.S)
    values = [part if i % 2 == 0 else _Parser(part, context, functions).parse()
              for i, part in enumerate(parts)]
    if len(values) == 3 and values[0] == values[2] == "":
        value = values[1]
        return _text(value) if value is not None and not isinstance(value, bool) else value
    return "".join(values[i] if i % 2 == 0 else _text(values[i]) for i in range(len(values)))

"""`kestra-promote.yml`: the optional settings file at the root of the flows repository.

Every key is optional. Unknown keys and wrong types are errors that name the file, the line and
the key, with a suggestion when a key looks misspelt. Command-line flags override the file.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import yamlnodes
from .errors import SourceError
from .models import Problem

CONFIG_FILE = "kestra-promote.yml"
DRIFT_POLICIES = ("overwrite", "fail", "keep")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")


@dataclass(frozen=True)
class NamespaceFiles:
    """A folder of the repository uploaded as namespace files: to ``namespace``, or, with
    ``source: folder/*`` (``per_namespace``), each subfolder to the namespace it is named after
    (the layout the development side's commit-to-git flow writes: files/<namespace>/...)."""

    source: str  # folder, relative to the repository root
    namespace: str  # "*" when per_namespace
    target: str = "/"  # where the folder lands in the namespace
    per_namespace: bool = False


@dataclass(frozen=True)
class Config:
    name: str = "default"
    flows: tuple[str, ...] = (".",)
    namespace_files: tuple[NamespaceFiles, ...] = ()
    include: tuple[str, ...] = ()  # namespace patterns to manage (after renaming); empty: all
    rename: Mapping[str, str] = field(default_factory=dict)
    prune: bool = False
    max_deletions: int = 10
    protected_namespaces: tuple[str, ...] = ("system",)
    drift: str = "overwrite"
    labels: Mapping[str, str] = field(default_factory=dict)
    branch: str = "main"
    tags: str | None = None
    state_namespace: str = "system"
    allow_deletions: int | None = None  # --allow-deletions: this run's own deletion limit
    path: str | None = None  # the file it was read from, if any

    def includes(self, namespace: str) -> bool:
        """Whether this source manages ``namespace`` (``include`` patterns, fnmatch style)."""
        return not self.include or any(fnmatch.fnmatchcase(namespace, p) for p in self.include)

    def is_protected(self, namespace: str) -> bool:
        return any(namespace == p or namespace.startswith(p + ".") for p in self.protected_namespaces)

    def with_overrides(self, **overrides: Any) -> Config:
        """A copy with the given settings replaced (None values are ignored)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        if "rename" in values:
            values["rename"] = {**self.rename, **values["rename"]}
        return replace(self, **values)


_KEYS = {
    "name", "flows", "namespace_files", "namespaces", "prune", "max_deletions",
    "protected_namespaces", "drift", "labels", "branch", "tags", "state_namespace",
}


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def fail(self, node: yaml.Node | None, message: str) -> None:
        line, column = yamlnodes.position(node) if node is not None else (None, None)
        self.problems.append(Problem(message, self.path, line, column))

    def unknown(self, key: yaml.Node, allowed: set[str], where: str) -> None:
        close = difflib.get_close_matches(str(key.value), sorted(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(sorted(allowed))}"
        self.fail(key, f"unknown key {key.value!r} in {where}{hint}")

    def text(self, node: yaml.Node, key: str) -> str | None:
        value = yamlnodes.scalar_text(node)
        if value is None:
            self.fail(node, f"{key!r} must be a text value")
        return value

    def _value(self, node: yaml.Node) -> object:
        return yamlnodes.load(yaml.serialize(node)) if isinstance(node, yaml.ScalarNode) else None

    def boolean(self, node: yaml.Node, key: str) -> bool | None:
        value = self._value(node)
        if not isinstance(value, bool):
            self.fail(node, f"{key!r} must be true or false")
            return None
        return value

    def integer(self, node: yaml.Node, key: str) -> int | None:
        value = self._value(node)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.fail(node, f"{key!r} must be a whole number, 0 or more")
            return None
        return value

    def texts(self, node: yaml.Node, key: str) -> tuple[str, ...] | None:
        if isinstance(node, yaml.ScalarNode) and yamlnodes.scalar_text(node):
            return (str(node.value),)
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{key!r} must be a list of text values")
            return None
        values = [self.text(item, key) for item in node.value]
        return None if None in values else tuple(v for v in values if v is not None)

    def text_map(self, node: yaml.Node, key: str) -> dict[str, str] | None:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{key!r} must be a mapping of text to text")
            return None
        result = {}
        for k, v in node.value:
            name = yamlnodes.scalar_text(k)
            value = yamlnodes.scalar_text(v)
            if name is None or value is None and not (isinstance(v, yaml.ScalarNode) and v.value == ""):
                self.fail(v, f"{key!r} must map text to text")
                continue
            result[name] = value or ""
        return result


def _namespace_files(reader: _Reader, node: yaml.Node) -> tuple[NamespaceFiles, ...] | None:
    if not isinstance(node, yaml.SequenceNode):
        reader.fail(node, "'namespace_files' must be a list of {source, namespace, target}")
        return None
    entries = []
    allowed = {"source", "namespace", "target"}
    for item in node.value:
        if not isinstance(item, yaml.MappingNode):
            reader.fail(item, "each 'namespace_files' entry must be {source, namespace, target}")
            continue
        values: dict[str, str] = {}
        for key, value in item.value:
            if key.value not in allowed:
                reader.unknown(key, allowed, "a namespace_files entry")
            elif (text := reader.text(value, str(key.value))) is not None:
                values[str(key.value)] = text
        per_namespace = values.get("source", "").rstrip("/").endswith("/*") or \
            values.get("source", "").strip("/") == "*"
        missing = [k for k in ("source", "namespace") if k not in values
                   and not (k == "namespace" and per_namespace)]
        if missing:
            reader.fail(item, f"namespace_files entry without {' and '.join(map(repr, missing))}")
            continue
        if per_namespace and "namespace" in values:
            reader.fail(item, f"namespace_files entry {values['source']!r} names its namespaces "
                              "after its folders: remove 'namespace'")
            continue
        target = "/" + values.get("target", "/").strip("/")
        source = values["source"].strip("/")
        if per_namespace:
            source = source[:-1].rstrip("/")
        entries.append(NamespaceFiles(source or ".", values.get("namespace", "*"), target,
                                      per_namespace))
    return tuple(entries)


def parse_config(text: str, path: str) -> Config:
    """Settings from the text of a config file; raise SourceError listing every problem."""
    reader = _Reader(path)
    try:
        documents = yamlnodes.compose_documents(text)
    except yamlnodes.YamlSyntaxError as exc:
        raise SourceError(f"invalid settings file {path}", [
            Problem(str(exc), path, exc.line, exc.column)]) from exc
    if not documents:
        return Config(path=path)
    root = documents[0]
    if len(documents) > 1 or not isinstance(root, yaml.MappingNode):
        raise SourceError(f"invalid settings file {path}",
                          [Problem("expected one mapping of settings", path)])
    for dup in yamlnodes.duplicate_keys(root):
        reader.fail(dup, f"duplicate key {dup.value!r}")
    values: dict[str, Any] = {}
    for key_node, node in root.value:
        key = str(key_node.value)
        if key not in _KEYS:
            reader.unknown(key_node, _KEYS, "the settings")
        elif key in ("name", "drift", "branch", "tags", "state_namespace"):
            values[key] = reader.text(node, key)
        elif key in ("flows", "protected_namespaces"):
            values[key] = reader.texts(node, key)
        elif key == "prune":
            values[key] = reader.boolean(node, key)
        elif key == "max_deletions":
            values[key] = reader.integer(node, key)
        elif key == "labels":
            values[key] = reader.text_map(node, key)
        elif key == "namespace_files":
            values[key] = _namespace_files(reader, node)
        elif key == "namespaces":
            if not isinstance(node, yaml.MappingNode):
                reader.fail(node, "'namespaces' must be a mapping with 'include' and/or 'rename'")
                continue
            for sub_key, sub in node.value:
                if sub_key.value == "include":
                    values["include"] = reader.texts(sub, "namespaces.include")
                elif sub_key.value == "rename":
                    values["rename"] = reader.text_map(sub, "namespaces.rename")
                else:
                    reader.unknown(sub_key, {"include", "rename"}, "'namespaces'")
    if values.get("drift") is not None and values["drift"] not in DRIFT_POLICIES:
        reader.fail(None, f"'drift' must be one of {', '.join(DRIFT_POLICIES)}, not {values['drift']!r}")
        values["drift"] = None
    if values.get("name") is not None and not _NAME.match(values["name"]):
        reader.fail(None, f"'name' {values['name']!r} must use letters, digits, '_' and '-'")
    if "branch" in values and "tags" in values:
        reader.fail(None, "give either 'branch' or 'tags', not both")
    if reader.problems:
        raise SourceError(f"{len(reader.problems)} problem(s) in settings file {path}",
                          reader.problems)
    return Config(path=path, **{k: v for k, v in values.items() if v is not None})


def load_config(root: Path, explicit: str | None = None) -> Config:
    """The settings for a source folder: ``explicit`` file, else its kestra-promote.yml, else defaults."""
    path = Path(explicit) if explicit else root / CONFIG_FILE
    if not path.is_file():
        if explicit:
            raise SourceError(f"settings file {explicit} not found",
                              [Problem("file not found", explicit)])
        return Config()
    shown = path.name if not explicit else explicit
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {shown}", [Problem(str(exc), shown)]) from exc
    return parse_config(text, shown)


def check_name(value: str) -> str:
    if not _NAME.match(value):
        raise SourceError("invalid --name", [Problem(
            f"name {value!r} must use letters, digits, '_' and '-'", "--name")])
    return value

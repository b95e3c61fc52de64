"""`kestra-promote.yml`: the optional settings file at the root of the flows repository.

Every key is optional. Unknown keys and wrong types are errors that name the file, the line and
the key, with a suggestion when a key looks misspelt. Command-line flags override the file.
"""

from __future__ import annotations

import difflib
import errno
import functools
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from kestra_promote import schedule, yamlnodes
from kestra_promote.errors import SettingsError, SourceError
from kestra_promote.keys import Problem
from kestra_promote.schedule import Window

CONFIG_FILE = "kestra-promote.yml"
DRIFT_POLICIES = ("overwrite", "fail", "keep")
APPROVALS = ("off", "required")
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*")
# Kestra's rule for namespaces (the Flow model): lower case, checked against the whole value
NAMESPACE_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
NAMESPACE_MAX = 150
# a namespace pattern: a namespace in which '*' stands for any characters, dots included
_NAMESPACE_GLOB = re.compile(r"[a-z0-9*][a-z0-9._*-]*")
# namespace files under /_flows/ are imported by Kestra as flows (NamespaceFileController)
FLOWS_FOLDER = "_flows"


def check_identity(value: str, what: str, pattern: re.Pattern[str], longest: int,
                   allowed: str) -> str | None:
    """Why ``value`` is not a valid ``what`` (the whole value must match ``pattern``), or None."""
    if not value:
        return f"{what} is empty"
    if len(value) > longest:
        return f"{what} {value!r} is longer than {longest} characters"
    if not pattern.fullmatch(value):
        return f"{what} {value!r} is invalid: use {allowed}, starting with a letter or digit"
    return None


def check_namespace(value: str) -> str | None:
    """Why ``value`` is not a valid namespace, or None."""
    return check_identity(value, "namespace", NAMESPACE_PATTERN, NAMESPACE_MAX,
                          "lower-case letters, digits, '.', '_' and '-'")


def check_namespace_pattern(value: str) -> str | None:
    """Why ``value`` is not a namespace pattern (see ``namespace_matches``), or None."""
    if not value:
        return "pattern is empty"
    if not _NAMESPACE_GLOB.fullmatch(value):
        return (f"pattern {value!r} is invalid: use lower-case letters, digits, '.', '_', '-' "
                "and '*' (any characters), starting with a letter, a digit or '*'")
    return None


@functools.lru_cache(maxsize=256)
def _namespace_regex(pattern: str) -> re.Pattern[str]:
    body = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.compile(rf"(?:{body})(?:\..*)?", re.DOTALL)


def namespace_matches(namespace: str, pattern: str) -> bool:
    """Whether ``pattern`` covers ``namespace``: the pattern matches the namespace or one of its
    parents, ``*`` standing for any characters, dots included. ``company`` covers company and
    company.team; ``company.*`` covers company.team and company.team.x but not company."""
    return _namespace_regex(pattern).fullmatch(namespace) is not None


def check_label_key(key: str) -> str | None:
    """Why ``key`` is not a label key Kestra accepts (models/Label.java), or None."""
    if not key:
        return "label key is empty"
    if not (key[0].isalpha() and key[0].islower()
            and all(c.isalpha() or c in "0123456789._-" for c in key[1:])):
        return (f"label key {key!r} is invalid: use letters, digits, '.', '_' and '-', starting "
                "with a lower-case letter")
    return None


def _above_root(path: str) -> bool:
    """Whether ``path`` climbs above its root once '.', '..', empty segments and backslashes
    are read the way a storage might read them."""
    depth = 0
    for segment in path.replace("\\", "/").split("/"):
        if segment == "..":
            depth -= 1
            if depth < 0:
                return True
        elif segment not in ("", "."):
            depth += 1
    return False


def is_flows_path(path: str) -> bool:
    """Whether the namespace path ``path`` is /_flows or below it, however it is written (case,
    Unicode compatibility forms, '.', '..', '//' or backslashes)."""
    segments: list[str] = []
    for segment in path.replace("\\", "/").split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    return bool(segments) and \
        unicodedata.normalize("NFKC", segments[0]).casefold() == FLOWS_FOLDER


def check_namespace_path(path: str) -> str | None:
    """Why ``path``, a folder or file of a namespace written from its root (``/a/b.py``; the
    leading and a trailing ``/`` optional), is not a plain path there, or None."""
    if "\\" in path:
        return "holds a backslash: separate folders with '/'"
    if _above_root(path):
        return "leads outside the namespace root"
    body = path[1:] if path.startswith("/") else path
    body = body[:-1] if body.endswith("/") else body
    if not body:
        return None
    segments = body.split("/")
    if any(segment in (".", "..") for segment in segments):
        return "holds a '.' or '..' segment: write the path from the namespace root"
    if "" in segments:
        return "holds an empty segment ('//')"
    return None


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
    windows: tuple[Window, ...] = ()  # sync windows: when a promotion may write
    approval: str = "off"  # required: in Kestra, an apply waits for a person to approve its plan
    allow_deletions: int | None = None  # --allow-deletions: this run's own deletion limit
    path: str | None = None  # the file it was read from, if any
    # Set by the run, never read from a settings file or a policy: the namespace the promotion
    # runs from (its package's namespace files are sealed there), and whether this is
    # bootstrap's own installation of that package, the one plan that may write them
    promotion_namespace: str = "system"
    installs_promotion: bool = False
    # set by a preview (``engine.preview``), never read from a file: every trigger disabled
    disable_triggers: bool = False
    # the settings the file gives (not defaults); what a policy may refuse a commit to loosen
    explicit: frozenset[str] = field(default=frozenset(), compare=False)
    # the renamed prefixes given on the command line (--rename), which its messages blame
    rename_flags: frozenset[str] = field(default=frozenset(), compare=False)

    def includes(self, namespace: str) -> bool:
        """Whether this source manages ``namespace``: no ``include``, or a pattern covers it."""
        return not self.include or any(namespace_matches(namespace, p) for p in self.include)

    def is_protected(self, namespace: str) -> bool:
        """Whether a ``protected_namespaces`` pattern covers ``namespace`` (never pruned)."""
        return any(namespace_matches(namespace, p) for p in self.protected_namespaces)

    def with_overrides(self, **overrides: Any) -> Config:
        """A copy with the given settings replaced (None values are ignored); they count as
        given, like the file's own keys."""
        values = {k: v for k, v in overrides.items() if v is not None}
        if "rename" in values:
            for old, new in values["rename"].items():
                for value in (old, new):
                    if value and (why := check_namespace(value)) is not None:
                        raise SettingsError(f"--rename {old}={new}: {why}")
            values["rename"] = {**self.rename, **values["rename"]}
            return replace(self, explicit=self.explicit | set(values),
                           rename_flags=self.rename_flags | set(overrides["rename"]), **values)
        return replace(self, explicit=self.explicit | set(values), **values)


SETTINGS = {
    "name", "flows", "namespace_files", "namespaces", "prune", "max_deletions",
    "protected_namespaces", "drift", "labels", "branch", "tags", "state_namespace", "windows",
    "approval",
}
_WINDOW_KEYS = {"name", "kind", "schedule", "duration", "timezone"}


class Reader:
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

    def patterns(self, node: yaml.Node, key: str) -> tuple[str, ...] | None:
        """A list of namespace patterns, each checked where it is written."""
        values = self.texts(node, key)
        if values is None:
            return None
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        bad = False
        for item, value in zip(items, values):
            if (why := check_namespace_pattern(value)) is not None:
                self.fail(item, f"{key}: {why}")
                bad = True
        return None if bad else values

    def labels(self, node: yaml.Node) -> dict[str, str] | None:
        values = self.text_map(node, "labels")
        if values is None:
            return None
        for key_node, _ in node.value:
            key = yamlnodes.scalar_text(key_node)
            if key is not None and (why := check_label_key(key)) is not None:
                self.fail(key_node, f"'labels': {why}")
        return values

    def rename(self, node: yaml.Node) -> dict[str, str] | None:
        values = self.text_map(node, "namespaces.rename")
        if values is None:
            return None
        for key_node, value_node in node.value:
            old, new = yamlnodes.scalar_text(key_node), yamlnodes.scalar_text(value_node)
            if old is not None and (why := check_namespace(old)) is not None:
                self.fail(key_node, f"namespaces.rename from: {why}")
            if new and (why := check_namespace(new)) is not None:
                self.fail(value_node, f"namespaces.rename to: {why}")
        return values

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


def _windows(reader: Reader, node: yaml.Node) -> tuple[Window, ...] | None:
    """``windows``: a list of {name, kind, schedule, duration, timezone}, each checked."""
    if not isinstance(node, yaml.SequenceNode):
        reader.fail(node, "'windows' must be a list of windows (kind, schedule, duration, "
                          "timezone)")
        return None
    found: list[Window] = []
    bad = False
    for number, item in enumerate(node.value, 1):
        if not isinstance(item, yaml.MappingNode):
            reader.fail(item, "each of 'windows' must be a mapping with kind, schedule, duration "
                              "and timezone")
            bad = True
            continue
        values: dict[str, tuple[yaml.Node, str | None]] = {}
        for key_node, value_node in item.value:
            if key_node.value not in _WINDOW_KEYS:
                reader.unknown(key_node, _WINDOW_KEYS, "a window")
                bad = True
            else:
                values[key_node.value] = (value_node, reader.text(value_node, key_node.value))
        missing = sorted({"kind", "schedule", "duration", "timezone"} - set(values))
        if missing:  # the time zone too: a schedule without one is read differently by people
            reader.fail(item, f"window {number}: missing {', '.join(map(repr, missing))}")
            bad = True
            continue
        parsed = {}
        for key, parse in (("kind", _window_kind), ("schedule", schedule.parse_cron),
                           ("duration", schedule.parse_duration), ("timezone", schedule.parse_zone)):
            where, text = values[key]
            if text is None:
                bad = True
                continue
            try:
                parsed[key] = parse(text)
            except ValueError as exc:
                reader.fail(where, f"window {number}: {key}: {exc}")
                bad = True
        name = values["name"][1] if "name" in values else None
        if len(parsed) == 4:
            found.append(Window(name or f"{parsed['kind']} {parsed['schedule'].text}",
                                parsed["kind"], parsed["schedule"], parsed["duration"],
                                parsed["timezone"]))
    return None if bad else tuple(found)


def _window_kind(text: str) -> str:
    if text not in schedule.KINDS:
        raise ValueError(f"{text!r} must be allow or deny")
    return text


def _namespace_files(reader: Reader, node: yaml.Node) -> tuple[NamespaceFiles, ...] | None:
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
                if key.value == "target" and (why := check_namespace_path(text)) is not None:
                    reader.fail(value, f"namespace_files target {text!r} {why}")
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


def compose_settings(text: str, path: str) -> tuple[Reader, yaml.MappingNode | None]:
    """A settings file's root mapping (None when the file is empty) and the reader that
    collects its problems; raise SourceError when it is not one YAML mapping."""
    reader = Reader(path)
    try:
        documents = yamlnodes.compose_documents(text)
    except yamlnodes.YamlSyntaxError as exc:
        raise SourceError(f"invalid settings file {path}", [
            Problem(str(exc), path, exc.line, exc.column)]) from exc
    if not documents:
        return reader, None
    root = documents[0]
    if len(documents) > 1 or not isinstance(root, yaml.MappingNode):
        raise SourceError(f"invalid settings file {path}",
                          [Problem("expected one mapping of settings", path)])
    for dup in yamlnodes.duplicate_keys(root):
        reader.fail(dup, f"duplicate key {dup.value!r}")
    return reader, root


def read_setting(reader: Reader, key: str, node: yaml.Node, values: dict[str, Any]) -> None:
    """Read the value of the known setting ``key`` (one of SETTINGS) into ``values``."""
    if key in ("name", "drift", "branch", "tags", "state_namespace", "approval"):
        values[key] = reader.text(node, key)
        if key == "state_namespace" and values[key] is not None and \
                (why := check_namespace(values[key])) is not None:
            reader.fail(node, f"'state_namespace': {why}")
    elif key == "flows":
        values[key] = reader.texts(node, key)
    elif key == "protected_namespaces":
        values[key] = reader.patterns(node, key)
    elif key == "prune":
        values[key] = reader.boolean(node, key)
    elif key == "max_deletions":
        values[key] = reader.integer(node, key)
    elif key == "labels":
        values[key] = reader.labels(node)
    elif key == "namespace_files":
        values[key] = _namespace_files(reader, node)
    elif key == "windows":
        values[key] = _windows(reader, node)
    elif key == "namespaces":
        if not isinstance(node, yaml.MappingNode):
            reader.fail(node, "'namespaces' must be a mapping with 'include' and/or 'rename'")
            return
        for sub_key, sub in node.value:
            if sub_key.value == "include":
                values["include"] = reader.patterns(sub, "namespaces.include")
            elif sub_key.value == "rename":
                values["rename"] = reader.rename(sub)
            else:
                reader.unknown(sub_key, {"include", "rename"}, "'namespaces'")


def check_choices(reader: Reader, values: dict[str, Any]) -> None:
    """The settings whose values are one of a few words: a wrong one is a problem, then unset."""
    if values.get("drift") is not None and values["drift"] not in DRIFT_POLICIES:
        reader.fail(None, f"'drift' must be one of {', '.join(DRIFT_POLICIES)}, not {values['drift']!r}")
        values["drift"] = None
    if values.get("approval") is not None and values["approval"] not in APPROVALS:
        reader.fail(None, f"'approval' must be one of {', '.join(APPROVALS)}, not "
                          f"{values['approval']!r}")
        values["approval"] = None


def parse_config(text: str, path: str) -> Config:
    """Settings from the text of a config file; raise SourceError listing every problem."""
    reader, root = compose_settings(text, path)
    if root is None:
        return Config(path=path)
    values: dict[str, Any] = {}
    for key_node, node in root.value:
        key = str(key_node.value)
        if key in ("verify", "stages"):  # production's, never the commit's
            reader.fail(key_node, f"{key!r} is set by production's policy only (kestra-promote "
                                  "policy set), never by a repository's settings")
        elif key not in SETTINGS:
            reader.unknown(key_node, SETTINGS, "the settings")
        else:
            read_setting(reader, key, node, values)
    check_choices(reader, values)
    if values.get("name") is not None and not _NAME.fullmatch(values["name"]):
        reader.fail(None, f"'name' {values['name']!r} must use letters, digits, '_' and '-'")
    if "branch" in values and "tags" in values:
        reader.fail(None, "give either 'branch' or 'tags', not both")
    if reader.problems:
        raise SourceError(f"{len(reader.problems)} problem(s) in settings file {path}",
                          reader.problems)
    given = {k: v for k, v in values.items() if v is not None}
    return Config(path=path, explicit=frozenset(given), **given)


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, for messages."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def read_regular_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the regular file at ``path`` (symlinks followed). Anything else (a folder, a
    FIFO, a socket, a device) raises OSError instead of blocking or reading endlessly."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"{file_kind(mode)}, not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def load_config(root: Path, explicit: str | None = None) -> Config:
    """The settings for a source folder: ``explicit`` file, else its kestra-promote.yml, else defaults."""
    path = Path(explicit) if explicit else root / CONFIG_FILE
    if not os.path.lexists(path):
        if explicit:
            raise SourceError(f"settings file {explicit} not found",
                              [Problem("file not found", explicit)])
        return Config()
    shown = path.name if not explicit else explicit
    try:
        text = read_regular_file(path).decode("utf-8")
    except OSError as exc:
        raise SourceError(f"cannot read {shown}", [
            Problem(f"cannot read the settings file: {exc.strerror or exc}", shown)]) from exc
    except UnicodeDecodeError as exc:
        raise SourceError(f"cannot read {shown}", [
            Problem(f"not UTF-8 text (byte {exc.start}): save the file as UTF-8", shown)]) from exc
    return parse_config(text, shown)


def check_name(value: str, option: str = "--name") -> str:
    if not _NAME.fullmatch(value):
        raise SourceError(f"invalid {option}", [Problem(
            f"name {value!r} must use letters, digits, '_' and '-'", option)])
    return value

"""The promotion's own namespace is sealed: what no promoted repository may write there, and
what no promoted flow may do to it.

Two rules, both pure:

- ``package_refusals``: no plan may create, update or delete the namespace files that hold the
  promotion's package (``kestra_promote/``, and development's copy under ``dev/``) in the
  promotion namespace: the promote task imports the package from there and runs it with
  production's credentials. Only bootstrap's own installation writes them (its configuration
  says so; no settings file or policy can).
- ``find``: the tasks of a flow that write into a sealed namespace (KV entries, namespace files),
  start a flow there, resume or toggle one, a Flow trigger on its executions, and every read of
  the promotion's own secrets. ``gates.checks`` turns what it finds into violations of the
  ``sealed_namespaces`` rule, on by default for the promotion namespace.

A namespace is sealed when its name starts with a protected one, dot or not: Kestra's
KVStoreService counts a namespace as under another when its name merely starts with it
(``systemops`` under ``system``), and the purge tasks include "child" namespaces the same way.
The task types and their properties are Kestra's (core plugins, 2.0 and the 1.3 aliases).
(``gates.seal`` pins the promotion's settings record and package files at run time; this module
keeps promoted repositories and flows out of the namespace in the first place.)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import yaml

from kestra_promote import yamlnodes
from kestra_promote.models import WRITES, Change, FileKey

# Where bootstrap installs the package in the promotion namespace: production's copy at the
# root, development's under dev/ (kestra_task/bootstrap.py)
PACKAGE_FOLDERS = (("kestra_promote",), ("dev", "kestra_promote"))
# The secrets of the promotion's own flows (kestra_task/bootstrap.py lists them)
PROMOTION_SECRETS = "KESTRA_PROMOTE_"

_CORE = "io.kestra.plugin.core."
# plugin/core/kv/{Set,Put,Delete}.java: `namespace`, by default the flow's own
_KV = frozenset({_CORE + "kv.Set", _CORE + "kv.Put", _CORE + "kv.Delete"})
# plugin/core/namespace/UploadFiles.java (`namespace`, by default the flow's), DeleteFiles.java
_FILES = frozenset({_CORE + "namespace.UploadFiles", _CORE + "namespace.DeleteFiles"})
# plugin/core/kv/PurgeKV.java, namespace/PurgeFiles.java, purge/PurgeTask.java: `namespaces` (with
# children by default, by name prefix), `namespacePattern` (a glob), or neither: every namespace
_PURGE = frozenset({_CORE + "kv.PurgeKV", _CORE + "namespace.PurgeFiles"})
# plugin/core/flow/Subflow.java (`namespace`), 1.3's ForEachItem.java, and their 1.3 aliases
_SUBFLOW = frozenset({_CORE + "flow.Subflow", "io.kestra.core.tasks.flows.Subflow",
                      "io.kestra.core.tasks.flows.Flow", _CORE + "flow.ForEachItem",
                      "io.kestra.core.tasks.flows.ForEachItem"})
# 1.3's plugin/core/trigger/Toggle.java (`namespace`, by default the flow's) and its alias
_TOGGLE = frozenset({_CORE + "trigger.Toggle", "io.kestra.core.tasks.trigger.Toggle"})
# 1.3's plugin/core/execution/Resume.java: an `executionId` is looked up by id alone
_RESUME = frozenset({_CORE + "execution.Resume"})
# plugin/core/trigger/Flow.java (2.0 `dependsOn`, 1.3 `preconditions` and `conditions`)
_FLOW_TRIGGER = frozenset({_CORE + "trigger.Flow", "io.kestra.core.models.triggers.types.Flow"})
_WHAT = {**{t: "writes the KV store of" for t in _KV},
         **{t: "writes the namespace files of" for t in _FILES},
         **{t: "starts a flow in" for t in _SUBFLOW},
         **{t: "enables or disables a trigger in" for t in _TOGGLE},
         **{t: "resumes an execution in" for t in _RESUME}}
SEALED_TYPES = frozenset(_WHAT) | _PURGE | _FLOW_TRIGGER

_NOT_TASKS = frozenset({"triggers", "inputs", "outputs", "sla", "variables", "labels",
                        "pluginDefaults", "taskDefaults"})
_FLOW_NAMESPACE = re.compile(r"\{\{-?\s*flow\.namespace\s*-?\}\}")
_EXPRESSION = re.compile(r"\{\{|\{%")
_SECRET_CALL = re.compile(r"\bsecret\s*\(")
_SECRET_NAME = re.compile(r"""\s*(?:key\s*=\s*)?(?:'([^'\\]*)'|"([^"\\]*)")\s*[,)]""")


# -- the package's namespace files ----------------------------------------------------------

def _segments(path: str) -> list[str]:
    """The folders and name of a namespace path as Kestra stores it: '.', '..', '//' and
    backslashes resolved, compared without case or Unicode compatibility forms."""
    segments: list[str] = []
    for segment in path.replace("\\", "/").split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(unicodedata.normalize("NFKC", segment).casefold())
    return segments


def is_package_path(path: str) -> bool:
    """Whether the namespace path ``path`` is in the package's folders, however it is written."""
    segments = _segments(path)
    return any(len(segments) > len(folder) and tuple(segments[:len(folder)]) == folder
               for folder in PACKAGE_FOLDERS)


def package_refusals(changes: Iterable[Change], namespace: str) -> list[str]:
    """Why a plan may not be applied: it writes the package's namespace files in ``namespace``,
    the promotion namespace."""
    found = []
    for change in changes:
        key = change.key
        if change.action in WRITES and isinstance(key, FileKey) and key.namespace == namespace \
                and is_package_path(key.path):
            source = f" (from {change.path})" if change.path else ""
            found.append(f"{key}{source}: the namespace files under kestra_promote/ of the "
                         f"promotion namespace {namespace!r} are the promotion's own code, run "
                         f"with production's credentials; no repository may {change.action.value} "
                         "them (only `kestra-promote bootstrap` installs the package)")
    return found


# -- what a flow does to a sealed namespace ---------------------------------------------------

@dataclass(frozen=True)
class Finding:
    line: int | None  # 1-based, in the flow's source
    message: str


def covered(namespace: str, sealed: Sequence[str]) -> str | None:
    """The sealed namespace ``namespace`` starts with (dot or not), or None."""
    return next((s for s in sealed if namespace.startswith(s)), None)


def reaches(pattern: str, prefix: str) -> bool:
    """Whether the glob ``pattern`` (``*``, ``?``; Commons IO's wildcardMatch) matches some name
    starting with ``prefix``."""
    def close(states: set[int]) -> set[int]:
        out = set(states)
        for index in sorted(states):
            while index < len(pattern) and pattern[index] == "*":
                index += 1
                out.add(index)
        return out

    states = close({0})
    for char in prefix:
        states = close({i if pattern[i] == "*" else i + 1 for i in states
                        if i < len(pattern) and pattern[i] in ("*", "?", char)})
        if not states:
            return False
    return True


def _line(node: yaml.Node | None) -> int | None:
    return yamlnodes.position(node)[0] if node is not None else None


def _namespace(node: yaml.Node | None, flow_namespace: str) -> str | None:
    """The namespace a property names ({{ flow.namespace }} resolved), None when it is an
    expression that cannot be known before the run."""
    text = yamlnodes.scalar_text(node)
    if text is None:
        return None
    text = _FLOW_NAMESPACE.sub(flow_namespace, text)
    return None if _EXPRESSION.search(text) else text


_UNKNOWN = "an expression"  # what _Finder.resolve says of a namespace that might be sealed


class _Finder:
    def __init__(self, flow_namespace: str, sealed: Sequence[str]) -> None:
        self.flow_namespace = flow_namespace
        self.sealed = sealed
        self.found: list[Finding] = []

    def add(self, node: yaml.Node | None, message: str) -> None:
        self.found.append(Finding(_line(node), message))

    def resolve(self, node: yaml.Node) -> str | None:
        """The namespace ``node`` names; ``_UNKNOWN`` for an expression whose value might be
        sealed (its text before the first expression could start a sealed name, or a sealed
        name starts it); None for one that cannot be (``company.{{ inputs.team }}``)."""
        namespace = _namespace(node, self.flow_namespace)
        if namespace is not None:
            return namespace
        text = _FLOW_NAMESPACE.sub(self.flow_namespace, yamlnodes.scalar_text(node) or "")
        match = _EXPRESSION.search(text)
        head = text[:match.start()] if match else ""
        if any(head.startswith(s) or s.startswith(head) for s in self.sealed):
            return _UNKNOWN
        return None

    def _sealed(self, what: str, namespace: str, node: yaml.Node | None) -> None:
        if (by := covered(namespace, self.sealed)) is not None:
            self.add(node, f"{what} {namespace!r}, sealed: its name starts with {by!r}")

    def target(self, what: str, task: yaml.Node, default: bool = True) -> None:
        """A task acting on the one namespace its ``namespace`` names (by default the flow's)."""
        node = yamlnodes.mapping_get(task, "namespace")
        if node is None:
            if default:
                self._sealed(what, self.flow_namespace, task)
            return
        namespace = self.resolve(node)
        if namespace is _UNKNOWN:
            self.add(node, f"{what} a namespace given by an expression, which cannot be checked "
                           "before the run: write the namespace as text")
        elif namespace is not None:
            self._sealed(what, namespace, node)

    def purge(self, named: str, task: yaml.Node) -> None:
        """A purge task: its ``namespaces`` (children by name prefix, unless
        ``includeChildNamespaces: false``), its ``namespacePattern``, or every namespace."""
        names = yamlnodes.mapping_get(task, "namespaces")
        pattern = yamlnodes.mapping_get(task, "namespacePattern")
        children = yamlnodes.scalar_text(yamlnodes.mapping_get(task, "includeChildNamespaces"))
        with_children = (children or "true").strip().lower() != "false"
        what = f"{named} purges"
        if names is None and pattern is None:
            self.add(task, f"{what} every namespace, sealed ones included: name its "
                           "`namespaces`")
            return
        if pattern is not None:
            text = _namespace(pattern, self.flow_namespace)
            if text is None:
                self.add(pattern, f"{what} namespaces matching an expression, which cannot be "
                                  "checked before the run")
            elif (by := next((s for s in self.sealed if reaches(text, s)), None)) is not None:
                self.add(pattern, f"{what} namespaces matching {text!r}, which covers "
                                  f"namespaces starting with {by!r}, sealed")
        if names is None:
            return
        items = names.value if isinstance(names, yaml.SequenceNode) else [names]
        for item in items:
            namespace = self.resolve(item)
            if namespace is _UNKNOWN:
                self.add(item, f"{what} a namespace given by an expression, which cannot be "
                               "checked before the run: write the namespace as text")
            if namespace is None or namespace is _UNKNOWN:
                continue
            self._sealed(what, namespace, item)
            parent = next((s for s in self.sealed if s.startswith(namespace)), None)
            if with_children and parent is not None and covered(namespace, self.sealed) is None:
                self.add(item, f"{what} {namespace!r} with its child namespaces, which Kestra "
                               f"takes by name prefix: {parent!r}, sealed, is one of them")

    def flow_trigger(self, named: str, trigger: yaml.Node) -> None:
        """Every namespace a Flow trigger listens to (dependsOn, preconditions, conditions)."""
        for mapping in _mappings(trigger):
            node = yamlnodes.mapping_get(mapping, "namespace")
            if node is None or mapping is trigger:
                continue
            what = f"{named} starts this flow on executions in"
            comparison = (yamlnodes.scalar_text(yamlnodes.mapping_get(mapping, "comparison"))
                          or "").upper()
            prefix = (yamlnodes.scalar_text(yamlnodes.mapping_get(mapping, "prefix"))
                      or "").lower() == "true"
            namespace = self.resolve(node)
            if namespace is None and (comparison in ("PREFIX", "SUFFIX") or prefix):
                namespace = _namespace(node, self.flow_namespace) or _UNKNOWN
            if namespace is _UNKNOWN:
                self.add(node, f"{what} a namespace given by an expression, which cannot be "
                               "checked before the run")
            if namespace is None or namespace is _UNKNOWN:
                continue
            if comparison == "PREFIX" or (prefix and not comparison):
                reached = next((s for s in self.sealed if s.startswith(namespace)), None)
            elif comparison == "SUFFIX":
                reached = next((s for s in self.sealed if s.endswith(namespace)), None)
            else:
                reached = None
            if reached is not None and covered(namespace, self.sealed) is None:
                how = comparison or "PREFIX"
                self.add(node, f"{what} namespaces matching {namespace!r} ({how}), "
                               f"{reached!r} among them, sealed")
            else:
                self._sealed(what, namespace, node)

    def task(self, named: str, kind: str, task: yaml.Node, *, default: bool = True) -> None:
        """A task of the type ``kind``; ``default``: an absent namespace means the flow's (a
        task), or nothing (plugin defaults, which leave it to the task)."""
        if kind in _PURGE:
            if default or any(yamlnodes.mapping_get(task, k) is not None
                              for k in ("namespaces", "namespacePattern")):
                self.purge(named, task)
        elif kind in _RESUME and yamlnodes.mapping_get(task, "executionId") is not None:
            self.add(yamlnodes.mapping_get(task, "executionId"),
                     f"{named} resumes an execution named by its id, which Kestra finds by id "
                     "alone, in any namespace: sealed ones included (a pending approval)")
        elif kind in _WHAT:
            self.target(f"{named} {_WHAT[kind]}", task, default=default and kind not in _RESUME)


def _mappings(node: yaml.Node) -> Iterator[yaml.MappingNode]:
    stack = [node]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, yaml.MappingNode):
            yield item
            stack.extend(value for _, value in reversed(item.value))
        elif isinstance(item, yaml.SequenceNode):
            stack.extend(reversed(item.value))


def _scalars(node: yaml.Node) -> Iterator[yaml.ScalarNode]:
    """Every scalar value of the document (keys aside)."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, yaml.ScalarNode):
            yield item
        elif isinstance(item, yaml.MappingNode):
            stack.extend(value for _, value in reversed(item.value))
        elif isinstance(item, yaml.SequenceNode):
            stack.extend(reversed(item.value))


def _secrets(finder: _Finder, root: yaml.Node, secrets: Sequence[str]) -> None:
    """Reads of the protected secrets: ``secret('NAME')`` (Kestra looks names up without case)
    and the server's SECRET_NAME environment variables, which a Process task runner's scripts
    inherit; a secret named by an expression cannot be checked."""
    prefixes = [s.upper() for s in secrets]
    for node in _scalars(root):
        text = str(node.value)
        for call in _SECRET_CALL.finditer(text):
            literal = _SECRET_NAME.match(text, call.end())
            if literal is None:
                finder.add(node, "reads a secret named by an expression, which cannot be "
                                 "checked before the run: name the secret in quotes")
                continue
            name = literal.group(1) if literal.group(1) is not None else literal.group(2)
            if any(name.upper().startswith(p) for p in prefixes):
                finder.add(node, f"reads the secret {name!r}, one of the promotion's own "
                                 "credentials (open-source Kestra lets any flow read any secret)")
        upper = text.upper()
        for prefix in prefixes:
            if "SECRET_" + prefix in upper:
                finder.add(node, f"names the server's environment variable SECRET_{prefix}..., "
                                 "which holds one of the promotion's own credentials")


def _tasks(root: yaml.Node) -> Iterator[tuple[str, str, yaml.MappingNode]]:
    """(id, type, mapping) of every task, at any depth (as ``checks``: not under triggers,
    inputs, outputs, SLAs, variables, labels or plugin defaults)."""
    top = [value for key, value in root.value if yamlnodes.scalar_text(key) not in _NOT_TASKS]
    for value in top:
        for mapping in _mappings(value):
            task_id = yamlnodes.scalar_text(yamlnodes.mapping_get(mapping, "id"))
            kind = yamlnodes.scalar_text(yamlnodes.mapping_get(mapping, "type"))
            if task_id is not None and kind is not None:
                yield task_id, kind, mapping


def _defaults(finder: _Finder, root: yaml.Node) -> None:
    """The flow's plugin defaults: an entry whose ``type`` is a sealed type, or a prefix of one
    (PluginDefaultService matches by prefix), gives that type's tasks its namespace."""
    for key in ("pluginDefaults", "taskDefaults"):
        entries = yamlnodes.mapping_get(root, key)
        if not isinstance(entries, yaml.SequenceNode):
            continue
        for entry in entries.value:
            kind = yamlnodes.scalar_text(yamlnodes.mapping_get(entry, "type"))
            values = yamlnodes.mapping_get(entry, "values")
            if kind is None or not isinstance(values, yaml.MappingNode):
                continue
            before = len(finder.found)
            for sealed_type in sorted(SEALED_TYPES - _FLOW_TRIGGER):
                if sealed_type.startswith(kind) and len(finder.found) == before:
                    finder.task(f"{key} for {kind!r} ({sealed_type})", sealed_type, values,
                                default=False)  # once per entry, for the first type it covers


def find(root: yaml.Node, flow_namespace: str, sealed: Sequence[str],
         secrets: Sequence[str]) -> list[Finding]:
    """What the flow ``root`` (a mapping) does to the ``sealed`` namespaces, and its reads of
    the secrets whose names start with one of ``secrets``, by line."""
    finder = _Finder(flow_namespace, sealed)
    for task_id, kind, task in _tasks(root):
        finder.task(f"task {task_id!r} ({kind})", kind, task)
    _defaults(finder, root)
    triggers = yamlnodes.mapping_get(root, "triggers")
    if isinstance(triggers, yaml.SequenceNode):
        for trigger in triggers.value:
            kind = yamlnodes.scalar_text(yamlnodes.mapping_get(trigger, "type"))
            if kind in _FLOW_TRIGGER:
                trigger_id = yamlnodes.scalar_text(yamlnodes.mapping_get(trigger, "id"))
                finder.flow_trigger(f"trigger {trigger_id!r} ({kind})", trigger)
    if secrets:
        _secrets(finder, root, secrets)
    return sorted(finder.found, key=lambda f: f.line or 0)

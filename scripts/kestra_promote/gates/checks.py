"""Production's checks: declarative rules every created or updated flow must pass before anything
is written, such as a required label, allowed task types or no clear-text credentials.

Production's policy lists them under ``checks:``; adding one takes no code. ``parse_checks`` reads
that list (plain data, as loaded from YAML), ``evaluate`` runs the checks over the flows a plan
writes and returns every violation, located at the line of the offending node, and ``describe``
shows them; ``default_checks`` gives the check every plan runs, with or without a policy (the
promotion namespace is sealed: see ``sealed_namespace``). Everything here is pure: the caller
reads the policy and decides what a violation stops. The rule kinds, with an example, are in
docs/checks.md.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import yaml

from kestra_promote import yamlnodes
from kestra_promote.config import (
    check_label_key,
    check_namespace,
    check_namespace_pattern,
    namespace_matches,
)
from kestra_promote.errors import SettingsError
from kestra_promote.gates import credentials, sealed_namespace
from kestra_promote.keys import FlowKey
from kestra_promote.models import DesiredFlow
from kestra_promote.textsafe import safe_text

# Each rule kind, and the keys a check of that kind takes (besides ``rule`` and ``name``)
RULES: Mapping[str, tuple[str, ...]] = {
    "required_label": ("key", "value", "namespaces"),
    "task_types": ("allow", "deny", "namespaces"),
    "trigger_types": ("allow", "deny", "namespaces"),
    "namespaces": ("allow", "sources"),
    "max_changes": ("max",),
    "triggers_disabled": ("namespaces",),
    "no_clear_credentials": ("ignore_keys", "namespaces"),
    "sealed_namespaces": ("protect", "secrets"),
}
# Top-level flow keys whose mappings are not tasks even with an ``id`` and a ``type``
_NOT_TASKS = frozenset({"triggers", "inputs", "outputs", "sla", "variables", "labels",
                        "pluginDefaults", "taskDefaults"})
# A plugin type: a Java class name, with its package (``$`` for nested classes)
_PLUGIN_TYPE = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+")
_TYPE_GLOB = re.compile(r"[A-Za-z0-9_$.*?]+")
_SOURCE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*")  # as config's source names
_SECRET_PREFIX = re.compile(r"[A-Za-z0-9_]+")
# The check every plan passes, with or without a policy: the promotion namespace is sealed
DEFAULT_CHECK = "sealed promotion namespace"
_SHOWN = 80  # the longest value a message quotes whole


@dataclass(frozen=True)
class Check:
    """One check of production's policy. Only the fields of its ``rule`` are set (``RULES``);
    ``namespaces`` empty means every namespace, ``sources`` empty every source."""

    name: str
    rule: str
    namespaces: tuple[str, ...] = ()  # namespace patterns the check applies to
    key: str | None = None  # required_label: the label's key
    value: str | None = None  # required_label: a regular expression its value must match whole
    allow: tuple[str, ...] = ()  # types (globs) or namespaces (patterns) allowed
    deny: tuple[str, ...] = ()  # types (globs) denied
    sources: tuple[str, ...] = ()  # namespaces: the sources it applies to
    max: int | None = None  # max_changes
    ignore_keys: tuple[str, ...] = ()  # no_clear_credentials: keys never flagged
    protect: tuple[str, ...] = ()  # sealed_namespaces: namespaces (and those starting with them)
    secrets: tuple[str, ...] = ()  # sealed_namespaces: prefixes of secret names no flow reads

    def applies_to(self, namespace: str) -> bool:
        return not self.namespaces or any(namespace_matches(namespace, p) for p in self.namespaces)

    def settings(self) -> dict[str, Any]:
        """The keys it was given, JSON-able, as the policy would write them."""
        values = {key: getattr(self, key) for key in RULES[self.rule]}
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in values.items() if value not in (None, ())}


@dataclass(frozen=True)
class Violation:
    """A flow (or the run as a whole: ``flow`` None) that fails a check."""

    check: str  # the check's name
    rule: str
    flow: FlowKey | None
    path: str | None  # the flow's file in the repository
    line: int | None  # 1-based, in the flow's source
    message: str

    def __str__(self) -> str:
        where = self.path or ""
        if where and self.line is not None:
            where += f":{self.line}"
        parts = [part for part in (where, str(self.flow) if self.flow else "") if part]
        return safe_text(": ".join([*parts, f"[{self.check}] {self.message}"]), one_line=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "rule": self.rule,
            "path": self.path,
            "line": self.line,
            "namespace": self.flow.namespace if self.flow else None,
            "id": self.flow.id if self.flow else None,
            "message": self.message,
        }


# -- reading the policy's list -----------------------------------------------------------------

class _Bad(Exception):
    """One problem with one key of a check."""


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str) and not value.strip():
        return "an empty text"
    if isinstance(value, list) and not value:
        return "an empty list"
    return {bool: "true/false", int: "a number", float: "a number", str: "a text",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _text(value: object, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"{key!r} must be a non-empty text, not {_kind(value)}")
    return value


def _texts(value: object, key: str) -> tuple[str, ...]:
    """A list of non-empty texts (one text stands for a list of one)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _Bad(f"{key!r} must be a non-empty list of texts, not {_kind(value)}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise _Bad(f"{key!r} must list non-empty texts, not {_kind(item)}")
    return tuple(value)


def _namespace_patterns(value: object, key: str) -> tuple[str, ...]:
    patterns = _texts(value, key)
    for pattern in patterns:
        if (why := check_namespace_pattern(pattern)) is not None:
            raise _Bad(f"{key!r}: {why}")
    return patterns


def _type_patterns(value: object, key: str) -> tuple[str, ...]:
    patterns = _texts(value, key)
    for pattern in patterns:
        if not _TYPE_GLOB.fullmatch(pattern):
            raise _Bad(f"{key!r}: pattern {_shown(pattern)} is not a type pattern: use letters, "
                       "digits, '.', '_', '$' and the wildcards '*' (any characters) and '?' "
                       "(one character)")
    return patterns


def _regex(value: object, key: str) -> str:
    pattern = _text(value, key)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise _Bad(f"{key!r}: {_shown(pattern)} is not a valid regular expression: {exc}") from None
    return pattern


def _label_key(value: object, key: str) -> str:
    text = _text(value, key)
    if (why := check_label_key(text)) is not None:
        raise _Bad(f"{key!r}: {why}")
    return text


def _count(value: object, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        shown = value if isinstance(value, int) and not isinstance(value, bool) else _kind(value)
        raise _Bad(f"{key!r} must be a whole number, 0 or more, not {shown}")
    return value


def _source_names(value: object, key: str) -> tuple[str, ...]:
    names = _texts(value, key)
    for name in names:
        if not _SOURCE_NAME.fullmatch(name):
            raise _Bad(f"{key!r}: source name {_shown(name)} must use letters, digits, '_' and '-'")
    return names


def _namespace_names(value: object, key: str) -> tuple[str, ...]:
    names = _texts(value, key)
    for name in names:
        if (why := check_namespace(name)) is not None:
            raise _Bad(f"{key!r}: {why} (a namespace name: it covers every namespace whose "
                       "name starts with it)")
    return names


def _secret_prefixes(value: object, key: str) -> tuple[str, ...]:
    prefixes = _texts(value, key)
    for prefix in prefixes:
        if not _SECRET_PREFIX.fullmatch(prefix):
            raise _Bad(f"{key!r}: {_shown(prefix)} is not the start of a secret name: use "
                       "letters, digits and '_'")
    return prefixes


def _type_rule(key: str) -> Callable[[object, str], tuple[str, ...]]:
    return _namespace_patterns if key == "namespaces" else _type_patterns


_READERS: Mapping[str, Mapping[str, Callable[[object, str], Any]]] = {
    "required_label": {"key": _label_key, "value": _regex, "namespaces": _namespace_patterns},
    "task_types": {k: _type_rule(k) for k in RULES["task_types"]},
    "trigger_types": {k: _type_rule(k) for k in RULES["trigger_types"]},
    "namespaces": {"allow": _namespace_patterns, "sources": _source_names},
    "max_changes": {"max": _count},
    "triggers_disabled": {"namespaces": _namespace_patterns},
    "no_clear_credentials": {"ignore_keys": _texts, "namespaces": _namespace_patterns},
    "sealed_namespaces": {"protect": _namespace_names, "secrets": _secret_prefixes},
}
_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "required_label": ("key",), "namespaces": ("allow",), "max_changes": ("max",),
    "triggers_disabled": ("namespaces",), "sealed_namespaces": ("protect",),
}


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; use one of: {', '.join(choices)}"


def _parse_one(item: object, index: int) -> tuple[Check | None, str, list[str]]:
    """The check at ``index`` (1-based), how to name it in a message, and its problems."""
    if not isinstance(item, dict):
        return None, f"check #{index}", [
            f"must be a mapping with 'rule' and the rule's keys, not {_kind(item)}"]
    problems: list[str] = []
    name = item.get("name")
    if "name" in item and (not isinstance(name, str) or not name.strip()):
        problems.append(f"'name' must be a non-empty text, not {_kind(name)}")
        name = None
    rule = item.get("rule")
    label = f"check #{index}" + (f" {_shown(name)}" if name else
                                 f" ({rule})" if isinstance(rule, str) and rule in RULES else "")
    if "rule" not in item:
        return None, label, [*problems, f"'rule' is missing; use one of: {', '.join(RULES)}"]
    if not isinstance(rule, str) or rule not in RULES:
        shown = _shown(rule) if isinstance(rule, str) else _kind(rule)
        return None, label, [*problems, f"unknown rule {shown}"
                             + (_suggest(rule, RULES) if isinstance(rule, str) else
                                f"; use one of: {', '.join(RULES)}")]
    values: dict[str, Any] = {}
    for key, value in item.items():
        if key in ("rule", "name"):
            continue
        readers = _READERS[rule]
        if key not in readers:
            shown = _shown(key) if isinstance(key, str) else repr(key)
            problems.append(f"unknown key {shown} for rule {rule!r}"
                            + _suggest(str(key), readers))
            continue
        try:
            values[key] = readers[key](value, key)
        except _Bad as exc:
            problems.append(str(exc))
    for key in _REQUIRED.get(rule, ()):
        if key not in item:
            problems.append(f"{key!r} is missing (rule {rule!r})")
    if rule in ("task_types", "trigger_types") and "allow" not in item and "deny" not in item:
        problems.append(f"give 'allow', 'deny' or both (rule {rule!r})")
    if problems:
        return None, label, problems
    return Check(name=name or f"{rule} #{index}", rule=rule, **values), label, []


def parse_checks(value: object, where: str = "policy") -> tuple[Check, ...]:
    """The checks of a policy's ``checks:`` list (plain data as loaded from YAML; None: none).

    Raises SettingsError naming ``where``, each faulty check (its number and name) and what is
    wrong with it: an unknown rule or key, a wrong type, a bad pattern or regular expression."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SettingsError(f"{where}: 'checks' must be a list of checks, not {_kind(value)}")
    checks: list[Check] = []
    problems: list[str] = []
    names: dict[str, int] = {}
    for index, item in enumerate(value, 1):
        check, label, found = _parse_one(item, index)
        problems.extend(f"{where}: {label}: {problem}" for problem in found)
        if check is None:
            continue
        if check.name in names:
            problems.append(f"{where}: {label}: the name {_shown(check.name)} is already the "
                            f"name of check #{names[check.name]}")
            continue
        names[check.name] = index
        checks.append(check)
    if problems:
        raise SettingsError("\n".join(problems))
    return tuple(checks)


# -- what a check says of a flow ---------------------------------------------------------------

@dataclass(frozen=True)
class _Flow:
    flow: DesiredFlow
    root: yaml.Node | None  # the flow's mapping; None when its YAML is not one


def _compose(source: str) -> yaml.Node | None:
    try:
        documents = yamlnodes.compose_documents(source)
    except yamlnodes.YamlSyntaxError:
        return None
    if len(documents) != 1 or not isinstance(documents[0], yaml.MappingNode):
        return None
    return documents[0]


def _line(node: yaml.Node | None) -> int | None:
    return yamlnodes.position(node)[0] if node is not None else None


def _entry(mapping: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    """The key node and value node of ``key`` in ``mapping``."""
    if isinstance(mapping, yaml.MappingNode):
        for key_node, value_node in mapping.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return key_node, value_node
    return None


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                              for c in pattern), re.DOTALL)


def _first_match(text: str, patterns: Sequence[str]) -> str | None:
    return next((p for p in patterns if _glob(p).fullmatch(text)), None)


def _tasks(root: yaml.Node) -> Iterator[tuple[str, yaml.Node]]:
    """Every task of a flow, nested ones included, as (id, type node): a mapping with an ``id``
    and a plugin ``type`` anywhere in the document but under the flow's triggers, inputs,
    outputs, SLAs, variables, labels and plugin defaults."""
    seen: set[int] = set()
    stack: list[yaml.Node] = [value for key, value in root.value
                              if yamlnodes.scalar_text(key) not in _NOT_TASKS]
    stack.reverse()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            task_id = yamlnodes.scalar_text(yamlnodes.mapping_get(node, "id"))
            type_node = yamlnodes.mapping_get(node, "type")
            kind = yamlnodes.scalar_text(type_node)
            if task_id is not None and kind is not None and _PLUGIN_TYPE.fullmatch(kind):
                yield task_id, type_node  # type: ignore[misc]
            stack.extend(reversed([value for _, value in node.value]))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))


def _triggers(root: yaml.Node) -> Iterator[yaml.MappingNode]:
    triggers = yamlnodes.mapping_get(root, "triggers")
    if isinstance(triggers, yaml.SequenceNode):
        yield from (t for t in triggers.value if isinstance(t, yaml.MappingNode))


def _described(node: yaml.Node, what: str) -> str:
    found = yamlnodes.scalar_text(yamlnodes.mapping_get(node, "id"))
    return f"{what} {_shown(found)}" if found is not None else f"a {what}"


class _Run:
    """The violations of one check over the flows."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.found: list[Violation] = []

    def add(self, flow: DesiredFlow | None, line: int | None, message: str) -> None:
        self.found.append(Violation(self.check.name, self.check.rule,
                                    flow.key if flow else None, flow.path if flow else None,
                                    line, message))


def _required_label(run: _Run, flow: DesiredFlow, root: yaml.Node) -> None:
    check = run.check
    labels = _entry(root, "labels")
    values: list[yaml.Node] = []
    if labels is not None and isinstance(labels[1], yaml.MappingNode):
        values = [value for key, value in labels[1].value
                  if yamlnodes.scalar_text(key) == check.key]
    elif labels is not None and isinstance(labels[1], yaml.SequenceNode):  # [{key:, value:}]
        values = [yamlnodes.mapping_get(item, "value") or item for item in labels[1].value
                  if yamlnodes.scalar_text(yamlnodes.mapping_get(item, "key")) == check.key]
    if not values:
        run.add(flow, _line(labels[0] if labels else root), f"the label {check.key!r} is missing")
        return
    if check.value is None:
        return
    for node in values:
        text = yamlnodes.scalar_text(node) if node is not None else None
        if text is None:
            run.add(flow, _line(node), f"the label {check.key!r} has no value; it must match "
                                       f"{_shown(check.value)}")
        elif not re.fullmatch(check.value, text):
            run.add(flow, _line(node), f"the label {check.key!r} is {_shown(text)}, which does "
                                       f"not match {_shown(check.value)}")


def _types(run: _Run, flow: DesiredFlow, what: str,
           found: Iterable[tuple[str | None, yaml.Node]]) -> None:
    check = run.check
    for found_id, type_node in found:
        kind = yamlnodes.scalar_text(type_node) or ""
        named = f"{what} {_shown(found_id)}" if found_id is not None else f"a {what}"
        if check.allow and _first_match(kind, check.allow) is None:
            run.add(flow, _line(type_node), f"{named} has the type {_shown(kind)}, which is not "
                                            "among the allowed types")
        elif (denied := _first_match(kind, check.deny)) is not None:
            run.add(flow, _line(type_node), f"{named} has the type {_shown(kind)}, denied by "
                                            f"{_shown(denied)}")


def _task_types(run: _Run, flow: DesiredFlow, root: yaml.Node) -> None:
    _types(run, flow, "task", _tasks(root))


def _trigger_types(run: _Run, flow: DesiredFlow, root: yaml.Node) -> None:
    found = []
    for trigger in _triggers(root):
        type_node = yamlnodes.mapping_get(trigger, "type")
        if type_node is not None and yamlnodes.scalar_text(type_node) is not None:
            found.append((yamlnodes.scalar_text(yamlnodes.mapping_get(trigger, "id")), type_node))
    _types(run, flow, "trigger", found)


def _triggers_disabled(run: _Run, flow: DesiredFlow, root: yaml.Node) -> None:
    for trigger in _triggers(root):
        disabled = yamlnodes.mapping_get(trigger, "disabled")
        if (yamlnodes.scalar_text(disabled) or "").lower() != "true":
            run.add(flow, _line(disabled or trigger),
                    f"{_described(trigger, 'trigger')} is not disabled: set 'disabled: true' "
                    "(flows in these namespaces run only when started by hand)")


def _no_clear_credentials(run: _Run, flow: DesiredFlow, root: yaml.Node) -> None:
    for finding in credentials.find(root, flow.source, run.check.ignore_keys):
        run.add(flow, finding.line, f"{finding.message}: {credentials.SUGGESTION}")


def _sealed_namespaces(run: _Run, flow: DesiredFlow, root: yaml.Node) -> None:
    for finding in sealed_namespace.find(root, flow.key.namespace, run.check.protect,
                                         run.check.secrets):
        run.add(flow, finding.line, finding.message)


_PER_FLOW: Mapping[str, Callable[[_Run, DesiredFlow, yaml.Node], None]] = {
    "required_label": _required_label,
    "task_types": _task_types,
    "trigger_types": _trigger_types,
    "triggers_disabled": _triggers_disabled,
    "no_clear_credentials": _no_clear_credentials,
    "sealed_namespaces": _sealed_namespaces,
}


def _namespaces(run: _Run, flows: Sequence[_Flow], source_name: str) -> None:
    check = run.check
    if check.sources and source_name not in check.sources:
        return
    for item in flows:
        namespace = item.flow.key.namespace
        if not any(namespace_matches(namespace, p) for p in check.allow):
            node = yamlnodes.mapping_get(item.root, "namespace") if item.root else None
            run.add(item.flow, _line(node), f"flows may not be written to the namespace "
                                            f"{_shown(namespace)}; allowed: "
                                            f"{', '.join(check.allow)}")


def evaluate(checks: Iterable[Check], flows: Iterable[DesiredFlow], *, source_name: str,
             changes: int) -> tuple[Violation, ...]:
    """Every violation of ``checks`` by ``flows`` (the flows a plan creates or updates) and by
    the run as a whole (``changes``: its creations, updates and deletions), check by check in
    their order, then flow by flow, then by line. A flow whose source is not one YAML mapping is
    skipped by the rules that read it (validation reports it); ``namespaces`` still reads its
    key."""
    parsed = [_Flow(flow, _compose(flow.source)) for flow in flows]
    violations: list[Violation] = []
    for check in checks:
        run = _Run(check)
        if check.rule == "max_changes":
            if check.max is not None and changes > check.max:
                run.add(None, None, f"{changes} changes (creations, updates and deletions) in "
                                    f"one run; this policy allows at most {check.max}")
        elif check.rule == "namespaces":
            _namespaces(run, parsed, source_name)
        else:
            for item in parsed:
                if item.root is not None and check.applies_to(item.flow.key.namespace):
                    before = len(run.found)
                    _PER_FLOW[check.rule](run, item.flow, item.root)
                    run.found[before:] = sorted(run.found[before:],
                                                key=lambda v: v.line or 0)
        violations.extend(run.found)
    return tuple(violations)


def default_checks(namespace: str) -> tuple[Check, ...]:
    """The checks of every plan, with or without a policy: no flow may write into the promotion
    ``namespace`` (or one whose name starts with it), nor read the promotion's own secrets."""
    return (Check(name=DEFAULT_CHECK, rule="sealed_namespaces", protect=(namespace,),
                  secrets=(sealed_namespace.PROMOTION_SECRETS,)),)


# -- what the checks are -----------------------------------------------------------------------

def _among(patterns: Iterable[str]) -> str:
    return ", ".join(patterns)


def summary(check: Check) -> str:
    """One sentence saying what ``check`` requires."""
    where = f" in {_among(check.namespaces)}" if check.namespaces else ""
    if check.rule == "required_label":
        matching = f" with a value matching {check.value!r}" if check.value else ""
        return f"flows{where} must have the label {check.key!r}{matching}"
    if check.rule in ("task_types", "trigger_types"):
        what = "tasks" if check.rule == "task_types" else "triggers"
        parts = ([f"must have a type matching {_among(check.allow)}"] if check.allow else []) + \
                ([f"must not have a type matching {_among(check.deny)}"] if check.deny else [])
        return f"{what} of flows{where} " + " and ".join(parts)
    if check.rule == "namespaces":
        sources = f" from the source(s) {_among(check.sources)}" if check.sources else ""
        return f"flows{sources} may only be written to {_among(check.allow)}"
    if check.rule == "max_changes":
        return f"at most {check.max} changes (creations, updates and deletions) in one run"
    if check.rule == "triggers_disabled":
        return f"every trigger of flows{where} must be disabled"
    if check.rule == "sealed_namespaces":
        reading = f", nor read the secrets {_among(s + '*' for s in check.secrets)}" \
            if check.secrets else ""
        return (f"flows may not write into, start or resume flows in, or listen to "
                f"{_among(check.protect)} (nor namespaces whose names start with them)"
                f"{reading}")
    ignoring = f", keys {_among(check.ignore_keys)} aside" if check.ignore_keys else ""
    return f"no clear-text credentials in flows{where}{ignoring}"


def describe(checks: Iterable[Check]) -> list[dict[str, Any]]:
    """The checks as JSON-able mappings, for ``policy show``: name, rule, the keys given, and a
    sentence saying what each requires."""
    return [{"name": check.name, "rule": check.rule, **check.settings(),
             "summary": summary(check)} for check in checks]

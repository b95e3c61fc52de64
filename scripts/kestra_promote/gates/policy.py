"""Production's policy: the rules a promoted commit cannot change, and how they meet its settings.

The policy is a YAML file that production's admin stores on the target (``policy set``); it is
never read from the commit being promoted. It may set the repository's safeguards (``windows``,
``approval``, ``protected_namespaces``, ``max_deletions``, ``state_namespace``, ``drift``), with
the same schema as ``kestra-promote.yml``, plus keys of its own: ``tags`` (which tags may be
followed), ``sources`` (which source names and origin repositories may write which namespaces),
``checks`` (declarative rules on every created or updated flow, see ``gates.checks``),
``allowed_overrides`` (the safeguards a commit may set freely), ``previews`` (whether
``preview up`` may deploy a pull request's preview here; default true), ``verify`` (the
checks after an apply, see ``gates.verification``) and ``stages`` (the pipeline this instance
is a stage of, see ``gates.stages``).

``effective`` merges a policy with a commit's settings. A commit may only make a safeguard
stricter; a looser value of a key the policy sets, unless ``allowed_overrides`` names it, is a
refusal naming the key. ``state_namespace`` always comes from the policy when it sets it.
Everything here is pure.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml

from kestra_promote import config as settings
from kestra_promote.config import DRIFT_POLICIES, Config, namespace_matches
from kestra_promote.errors import SettingsError, SourceError
from kestra_promote.gates import checks as rules
from kestra_promote.gates.stages import Stages, parse_stages
from kestra_promote.gates.verification import Verify, parse_verify
from kestra_promote.keys import Problem
from kestra_promote.schedule import Window

POLICY_KEY = "kestra_promote_policy"  # the KV key, in the policy namespace, that holds it
DEFAULT_NAMESPACE = "system"
# the repository's safeguards a policy may set
SAFEGUARDS = ("windows", "approval", "protected_namespaces", "max_deletions", "state_namespace",
              "drift")
OVERRIDABLE = ("windows", "approval", "protected_namespaces", "max_deletions", "drift")
KEYS = frozenset(SAFEGUARDS) | {"tags", "sources", "checks", "allowed_overrides", "previews",
                                 "verify", "stages"}
_TAG_KEYS = {"pattern", "version", "prereleases"}
_SOURCE_KEYS = {"namespaces", "names", "origins"}
_DRIFT_STRICTNESS = {name: rank for rank, name in enumerate(("overwrite", "keep", "fail"))}
assert set(_DRIFT_STRICTNESS) == set(DRIFT_POLICIES)


@dataclass(frozen=True)
class TagRule:
    """Which tags may be followed: a pattern, a version rule (a regular expression) and
    whether pre-releases count."""

    pattern: str | None = None
    version: str | None = None
    prereleases: bool = False


@dataclass(frozen=True)
class SourceRule:
    """Who may write the namespaces ``namespaces`` covers: sources of one of ``names`` (any,
    when empty), from a repository matching one of ``origins`` (any, when empty)."""

    namespaces: tuple[str, ...]
    names: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()

    def admits(self, name: str, origin: str | None) -> bool:
        if self.names and name not in self.names:
            return False
        if self.origins and not (origin and any(fnmatch.fnmatchcase(origin, o)
                                                for o in self.origins)):
            return False
        return True


@dataclass(frozen=True)
class Policy:
    text: str  # as stored: its digest is what a pin names
    safeguards: Mapping[str, Any] = field(default_factory=dict)  # the SAFEGUARDS it sets
    tags: TagRule | None = None
    sources: tuple[SourceRule, ...] | None = None  # None: any source may write anywhere
    checks: tuple[rules.Check, ...] = ()
    allowed_overrides: frozenset[str] = frozenset()
    previews: bool = True  # false: no pull request's preview may be deployed on this instance
    verify: Verify | None = None  # the checks after an apply that wrote something
    stages: Stages | None = None  # the pipeline this instance is a stage of

    @property
    def digest(self) -> str:
        return digest_of(self.text)

    def describe(self) -> dict[str, Any]:
        """The policy as JSON-able data, for ``policy show``."""
        shown: dict[str, Any] = {}
        for key, value in self.safeguards.items():
            shown[key] = [w.to_json() for w in value] if key == "windows" else (
                list(value) if isinstance(value, tuple) else value)
        if self.tags is not None:
            shown["tags"] = dataclasses.asdict(self.tags)
        if self.sources is not None:
            shown["sources"] = [dataclasses.asdict(rule) for rule in self.sources]
        if self.checks:
            shown["checks"] = rules.describe(self.checks)
        if self.allowed_overrides:
            shown["allowed_overrides"] = sorted(self.allowed_overrides)
        if not self.previews:
            shown["previews"] = False
        if self.verify is not None:
            shown["verify"] = self.verify.describe()
        if self.stages is not None:
            shown["stages"] = self.stages.describe()
        return shown


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_policy(text: str, path: str = "policy") -> Policy:
    """A policy from its YAML text; SourceError listing every problem (file, line, key)."""
    reader, root = settings.compose_settings(text, path)
    if root is None:
        return Policy(text)
    values: dict[str, Any] = {}
    own: dict[str, yaml.Node] = {}
    for key_node, node in root.value:
        key = str(key_node.value)
        if key not in KEYS:
            reader.unknown(key_node, set(KEYS), "the policy")
        elif key in SAFEGUARDS:
            settings.read_setting(reader, key, node, values)
        else:
            own[key] = node
    settings.check_choices(reader, values)
    tags = _tags(reader, own["tags"]) if "tags" in own else None
    sources = _sources(reader, own["sources"]) if "sources" in own else None
    overrides = _overrides(reader, own["allowed_overrides"]) if "allowed_overrides" in own \
        else frozenset()
    previews = reader.boolean(own["previews"], "previews") if "previews" in own else True
    checks: tuple[rules.Check, ...] = ()
    if "checks" in own:
        try:
            checks = rules.parse_checks(yaml.load(yaml.serialize(own["checks"]),
                                                  Loader=yaml.SafeLoader), where=path)
        except SettingsError as exc:
            reader.fail(own["checks"], str(exc))
    verify = None
    if "verify" in own:
        verify, problems = parse_verify(yaml.load(yaml.serialize(own["verify"]),
                                                  Loader=yaml.SafeLoader))
        for problem in problems:
            reader.fail(own["verify"], problem)
    stages = _stages(reader, own["stages"], verify, tags) if "stages" in own else None
    if reader.problems:
        raise SourceError(f"{len(reader.problems)} problem(s) in the policy {path}",
                          reader.problems)
    return Policy(text, {k: v for k, v in values.items() if v is not None}, tags, sources,
                  checks, overrides, previews is not False, verify, stages)


def _stages(reader: settings.Reader, node: yaml.Node, verify: Verify | None,
            tags: TagRule | None) -> Stages | None:
    stages, problems = parse_stages(yaml.load(yaml.serialize(node), Loader=yaml.SafeLoader))
    if stages is not None and stages.next is not None and (verify is None or not verify.checks):
        problems.append(f"stages: {stages.stage!r} comes before {stages.next!r}, so its "
                        "verified commits are what the next stage takes; set 'verify' checks "
                        "(without them no run is ever verified)")
    if stages is not None and stages.previous is not None and tags is not None:
        problems.append(f"stages: {stages.stage!r} follows the tags {stages.previous!r} "
                        "verifies; 'tags' cannot choose others (remove it)")
    for problem in problems:
        reader.fail(node, problem)
    return stages if not problems else None


def _tags(reader: settings.Reader, node: yaml.Node) -> TagRule | None:
    if isinstance(node, yaml.ScalarNode):
        pattern = reader.text(node, "tags")
        return TagRule(pattern) if pattern else None
    if not isinstance(node, yaml.MappingNode):
        reader.fail(node, "'tags' must be a pattern or a mapping of pattern, version and "
                          "prereleases")
        return None
    values: dict[str, Any] = {}
    for key_node, value in node.value:
        key = str(key_node.value)
        if key not in _TAG_KEYS:
            reader.unknown(key_node, _TAG_KEYS, "'tags'")
        elif key == "prereleases":
            values[key] = reader.boolean(value, "tags.prereleases")
        else:
            values[key] = reader.text(value, f"tags.{key}")
    if values.get("version"):
        try:
            re.compile(values["version"])
        except re.error as exc:
            reader.fail(node, f"tags.version {values['version']!r} is not a regular expression: "
                              f"{exc}")
    return TagRule(values.get("pattern"), values.get("version"), bool(values.get("prereleases")))


def _sources(reader: settings.Reader, node: yaml.Node) -> tuple[SourceRule, ...] | None:
    if not isinstance(node, yaml.SequenceNode):
        reader.fail(node, "'sources' must be a list of {namespaces, names, origins}")
        return None
    found = []
    for number, item in enumerate(node.value, 1):
        if not isinstance(item, yaml.MappingNode):
            reader.fail(item, f"sources {number}: must be a mapping of namespaces, names and "
                              "origins")
            continue
        values: dict[str, tuple[str, ...] | None] = {}
        for key_node, value in item.value:
            key = str(key_node.value)
            if key not in _SOURCE_KEYS:
                reader.unknown(key_node, _SOURCE_KEYS, f"sources {number}")
            elif key == "namespaces":
                values[key] = reader.patterns(value, f"sources {number}: namespaces")
            else:
                values[key] = reader.texts(value, f"sources {number}: {key}")
        if not values.get("namespaces"):
            reader.fail(item, f"sources {number}: 'namespaces' is required")
            continue
        found.append(SourceRule(values["namespaces"] or (), values.get("names") or (),
                                values.get("origins") or ()))
    return tuple(found)


def _overrides(reader: settings.Reader, node: yaml.Node) -> frozenset[str]:
    keys = reader.texts(node, "allowed_overrides") or ()
    for key in keys:
        if key not in OVERRIDABLE:
            reader.fail(node, f"allowed_overrides: {key!r} is not a safeguard a commit may set "
                              f"(one of {', '.join(OVERRIDABLE)})")
    return frozenset(keys)


# -- merging with a commit's settings -----------------------------------------------------------


@dataclass(frozen=True)
class Effective:
    """The settings a run goes by, where each safeguard came from, and what the commit may not
    do."""

    config: Config
    origins: Mapping[str, str]  # safeguard -> policy | repository | policy and repository | default
    refusals: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = ()


def effective(policy: Policy | None, config: Config) -> Effective:
    """``config`` (a commit's settings, flags applied) under ``policy``."""
    given = config.explicit
    rules_ = policy.safeguards if policy is not None else {}
    overridable = policy.allowed_overrides if policy is not None else frozenset()
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    refusals: list[str] = []
    warnings: list[Problem] = []
    where = config.path or settings.CONFIG_FILE

    for key in SAFEGUARDS:
        mine, theirs = getattr(config, key), rules_.get(key)
        if key not in rules_:
            origins[key] = "repository" if key in given else "default"
            continue
        if key in overridable and key in given:
            origins[key] = "repository"
            continue
        if key not in given:
            values[key], origins[key] = theirs, "policy"
            continue
        if key == "state_namespace":
            values[key], origins[key] = theirs, "policy"
            if mine != theirs:
                warnings.append(Problem(f"'state_namespace' {mine!r} is ignored: production's "
                                        f"policy keeps the state in {theirs!r}", where))
            continue
        merged, why = _tighten(key, theirs, mine)
        if why:
            refusals.append(f"{where} (or a flag of this run): {key!r} {why}, looser than "
                            "production's policy; only a stricter value is allowed (or the "
                            "policy's allowed_overrides)")
            values[key], origins[key] = theirs, "policy"
        else:
            values[key] = merged
            origins[key] = "policy" if merged == theirs else "policy and repository"
    if config.allow_deletions is not None and "max_deletions" in rules_ \
            and "max_deletions" not in overridable \
            and config.allow_deletions > rules_["max_deletions"]:
        refusals.append(f"--allow-deletions {config.allow_deletions} is more than production's "
                        f"policy allows (max_deletions {rules_['max_deletions']})")
    merged_config = dataclasses.replace(config, **values)
    return Effective(merged_config, origins, tuple(refusals), tuple(warnings))


def _tighten(key: str, policy: Any, mine: Any) -> tuple[Any, str | None]:
    """The stricter of a policy's and a commit's value, or why the commit's is looser."""
    if key == "max_deletions":
        return (mine, None) if mine <= policy else (policy, f"{mine} allows more deletions")
    if key == "approval":
        return (mine, None) if mine == "required" or policy == "off" else \
            (policy, f"{mine!r} turns approval off")
    if key == "drift":
        return (mine, None) if _DRIFT_STRICTNESS[mine] >= _DRIFT_STRICTNESS[policy] else \
            (policy, f"{mine!r} keeps fewer of production's edits")
    if key == "protected_namespaces":
        return tuple(dict.fromkeys((*policy, *mine))), None
    if key == "windows":
        return _windows(policy, mine)
    raise AssertionError(key)


def _windows(policy: tuple[Window, ...], mine: tuple[Window, ...]
             ) -> tuple[tuple[Window, ...], str | None]:
    """Deny windows always add up. Allow windows restrict only where the policy has none: with
    allow windows of its own, another allow window would open production at more times."""
    own_allows = [w for w in mine if w.kind == "allow" and w not in policy]
    if own_allows and any(w.kind == "allow" for w in policy):
        names = ", ".join(repr(w.name) for w in own_allows)
        return policy, f"adds allow windows ({names}) that open production more often"
    return tuple(dict.fromkeys((*policy, *mine))), None


# -- who may write where --------------------------------------------------------------------------


def source_refusals(policy: Policy | None, name: str, origin: str | None,
                    namespaces: Iterable[str]) -> tuple[str, ...]:
    """The namespaces this source (``name``, from ``origin``) may not write under the policy's
    ``sources``: a namespace no rule covers is closed, like a destination no project lists."""
    if policy is None or policy.sources is None:
        return ()
    refused = []
    for namespace in sorted(set(namespaces)):
        covering = [r for r in policy.sources if any(namespace_matches(namespace, p)
                                                       for p in r.namespaces)]
        if not any(rule.admits(name, origin) for rule in covering):
            whom = f"source {name!r}" + (f" from {origin}" if origin else " (origin unknown)")
            refused.append(f"production's policy does not let {whom} write namespace "
                           f"{namespace!r}" + ("" if covering else " (no sources rule covers it)"))
    return tuple(refused)


def check_pin(policy_text: str | None, pin: str | None) -> str | None:
    """Why the stored policy does not match production's pin, or None. ``pin`` is the digest
    production's admin recorded where flows cannot write (``none``: no policy); None when no
    pin is set."""
    if pin is None or pin.strip() == "":
        return None
    pin = pin.strip()
    if pin.lower() == "none":
        return None if policy_text is None else \
            "a policy is stored on the target, but production's pin says there is none"
    if policy_text is None:
        return f"production's pin names a policy ({pin}), but none is stored on the target"
    if digest_of(policy_text) != pin:
        return (f"the stored policy ({digest_of(policy_text)}) is not the one production's pin "
                f"names ({pin}): it was changed outside 'kestra-promote policy set'")
    return None

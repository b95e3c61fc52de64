"""A pull request's preview: a source deployed under namespaces of its own on a development or
staging instance, every trigger off, as a promotion source of its own.

Preview ``ID`` puts namespace ``company.team`` at ``<parent>.ID.company.team`` (parent
``preview`` by default): the source's settings are kept, but for a rename that moves every
namespace of the source (and whatever the settings rename it to) under the preview's root, the
``include`` patterns moved there too, ``prune`` on, and no sync window or approval of the
repository's own (those are production's; the instance's policy still applies). Its inventory is
``preview-ID``. Whatever the settings say, a preview's plan is refused when it would write or
delete anything outside its root (``guarded``), and taking one down deletes only objects its
inventory records under that root (``teardown``). Pure: no HTTP, no files, no clock.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

import yaml

from kestra_promote import yamlnodes
from kestra_promote.config import Config, check_namespace
from kestra_promote.engine.plan import plan as make_plan
from kestra_promote.engine.plan import origin_refusal, refusals
from kestra_promote.errors import SettingsError
from kestra_promote.flows.desired import Desired
from kestra_promote.flows.references import GLOB, references
from kestra_promote.gates.policy_store import Stored
from kestra_promote.gates.policy import POLICY_KEY
from kestra_promote.models import Action, FlowKey, Inventory, LiveState, Plan, Problem
from kestra_promote.target.live import in_namespace_tree

PARENT = "preview"  # where previews live by default: preview.<ID>.<namespace>
NAME_PREFIX = "preview-"  # a preview's source name, hence its inventory: preview-<ID>
RECORD_KEY = "preview"  # in each run record of a preview: the namespace root it deployed to
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")
ID_MAX = 40
# settings that are production's: a preview does not take them from the repository
_PRODUCTION_ONLY = frozenset({"windows", "approval", "state_namespace"})


def check_id(value: str) -> str:
    """``value`` when it is a preview id (one namespace segment: a pull request's number)."""
    if not ID_PATTERN.fullmatch(value or "") or len(value) > ID_MAX:
        raise SettingsError(f"--id {value!r} is not a preview id: use lower-case letters, digits, "
                            f"'-' and '_', starting with a letter or digit, at most {ID_MAX} "
                            "characters (a pull request's number works)")
    return value


def root_of(parent: str, preview_id: str) -> str:
    """The namespace every namespace of preview ``preview_id`` goes under."""
    if (why := check_namespace(parent)) is not None:
        raise SettingsError(f"--prefix: {why}")
    root = f"{parent}.{check_id(preview_id)}"
    if (why := check_namespace(root)) is not None:
        raise SettingsError(f"the preview's namespace: {why}")
    return root


def name_of(preview_id: str) -> str:
    return NAME_PREFIX + preview_id


def id_of(name: str) -> str | None:
    """The preview id a source name stands for, None when it is no preview's."""
    rest = name[len(NAME_PREFIX):] if name.startswith(NAME_PREFIX) else ""
    return rest if ID_PATTERN.fullmatch(rest) and len(rest) <= ID_MAX else None


def forbidden(stored: Stored | None) -> str | None:
    """Why the instance's policy forbids previews, or None."""
    if stored is None or stored.policy is None or stored.policy.previews:
        return None
    return (f"this instance's policy forbids previews (previews: false, in KV "
            f"{stored.namespace}/{POLICY_KEY}): deploy previews to a development instance")


def _under(root: str, namespace: str) -> str:
    return f"{root}.{namespace}" if namespace else root


def preview_config(config: Config, root: str, namespaces: Iterable[str], *, name: str,
                   state_namespace: str) -> Config:
    """The settings a preview deploys with: ``config`` (the repository's, for production) with
    every namespace of the source (``namespaces``) and every rename moved under ``root``."""
    rename = {top: _under(root, top) for top in sorted({ns.split(".", 1)[0]
                                                          for ns in namespaces if ns})}
    rename.update({old: _under(root, new) for old, new in config.rename.items()})
    return dataclasses.replace(
        config, name=name, rename=rename, include=tuple(_under(root, p) for p in config.include),
        prune=True, windows=(), approval="off", state_namespace=state_namespace,
        disable_triggers=True, explicit=config.explicit - _PRODUCTION_ONLY)


def guarded(plan: Plan, root: str) -> Plan:
    """``plan`` refused when it writes or deletes outside ``root``; with a warning for each
    reference a written flow makes to a namespace outside it (not renamed: no flow of the source
    is there), which a run started by hand reaches."""
    outside = [f"a preview writes and deletes only under {root}: {c.action.value} {c.key} is "
               "outside it" for c in plan.changes
               if c.writes and not in_namespace_tree(c.key.namespace, root)]
    refused = list(plan.refusals)
    taken = origin_refusal(plan.inventory_before, plan.origin, False)
    if taken is not None and taken in refused:  # its advice (--name, --adopt) is production's
        assert plan.inventory_before is not None
        refused[refused.index(taken)] = (
            f"preview {plan.name[len(NAME_PREFIX):]!r} is held by another repository "
            f"({plan.inventory_before.origin}): give this one's previews ids of their own "
            "(--id NAME-NUMBER)")
    return dataclasses.replace(plan, refusals=(*refused, *outside),
                               warnings=(*plan.warnings, *_references_outside(plan, root)))


def _references_outside(plan: Plan, root: str) -> list[Problem]:
    found = []
    for change in plan.changes:
        if change.action not in (Action.CREATE, Action.UPDATE) or \
                not isinstance(change.key, FlowKey) or not isinstance(change.after, str):
            continue
        try:
            node = yamlnodes.compose_documents(change.after)[0]
        except (yamlnodes.YamlSyntaxError, yaml.YAMLError, IndexError):
            continue
        for ref in references(node):
            if ref.templated:
                continue  # reported by the rename, when it names a renamed namespace
            value = re.split(r"[*?]", ref.namespace)[0].rstrip(".") if ref.kind == GLOB \
                else ref.namespace
            if not in_namespace_tree(value, root):
                found.append(Problem(f"{ref.what} names namespace {ref.namespace!r}, outside the "
                                     f"preview ({root}): left as written; a run started by hand "
                                     "reaches it", change.path, ref.line, flow=change.key))
    return found


def foreign(inventory: Inventory, root: str) -> list[str]:
    """The objects ``inventory`` records outside ``root``: none, unless it was edited."""
    return [str(key) for key in (*inventory.flows, *inventory.files)
            if not in_namespace_tree(key.namespace, root)]


def teardown(live: LiveState, root: str) -> Plan:
    """The plan deleting every object the preview's inventory (``live.inventory``) records and
    the target holds; the inventory itself is left to the caller (``managed_after`` None).
    Refused when the inventory records anything outside ``root``."""
    own = live.inventory
    assert own is not None
    config = Config(name=own.name, prune=True, drift="overwrite", protected_namespaces=(),
                    state_namespace=live.scope.state_namespace, allow_deletions=1 << 30)
    planned = make_plan(Desired(flows={}), live, config, origin=own.origin)
    refused = refusals(planned.changes, source_empty=False, config=config, others=live.others,
                       own=own)
    refused += [f"the inventory of {own.name!r} records {key}, outside the preview's "
                f"namespaces ({root}): it was edited (check it, then remove "
                "it by hand)" for key in foreign(own, root)]
    return dataclasses.replace(planned, refusals=tuple(refused), managed_after=None, config=None)


# -- what previews there are ------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """A preview as its inventory tells it."""

    id: str
    root: str  # where its last run deployed it
    time: datetime | None  # its last apply
    commit: str | None
    flows: int
    files: int
    origin: str | None = None  # the repository it was deployed from, as its inventory records

    def to_json(self, now: datetime) -> dict[str, Any]:
        age = self.age(now)
        return {"id": self.id, "name": name_of(self.id), "namespace": self.root,
                "applied": self.time.isoformat(timespec="seconds") if self.time else None,
                "age_seconds": int(age.total_seconds()) if age is not None else None,
                "commit": self.commit, "flows": self.flows, "files": self.files}

    def age(self, now: datetime) -> timedelta | None:
        return now - self.time if self.time is not None else None


def _time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def previews(inventories: Mapping[str, Inventory]) -> list[Preview]:
    """The previews among ``inventories`` (by source name): named ``preview-<ID>`` and with a
    run that recorded its preview namespace."""
    found = []
    for name, inventory in sorted(inventories.items()):
        preview_id = id_of(name)
        runs = [run for run in inventory.history if isinstance(run.get(RECORD_KEY), str)]
        if preview_id is None or not runs:
            continue
        last: Mapping[str, Any] = runs[-1]
        commit = last.get("commit")
        found.append(Preview(preview_id, str(last[RECORD_KEY]), _time(last.get("time")),
                             commit if isinstance(commit, str) else None,
                             len(inventory.flows), len(inventory.files), inventory.origin))
    return found


def stale(found: Iterable[Preview], now: datetime, older_than: timedelta) -> list[Preview]:
    """The previews last applied more than ``older_than`` ago."""
    return [p for p in found if (age := p.age(now)) is not None and age > older_than]


_AGE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")


def parse_age(text: str, what: str = "--older-than") -> timedelta:
    """``7d``, ``36h``, ``1d12h``, ``90m``: a duration above zero (``what``: the option or
    setting it was given as, for the error)."""
    match = _AGE.fullmatch(text.strip().lower())
    if not text.strip() or match is None:
        raise SettingsError(f"{what} {text!r} is not a duration such as 7d, 36h or 90m")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    if max(days, hours, minutes) > 100_000 or not (days or hours or minutes):
        raise SettingsError(f"{what} {text!r} must be above zero and at most 100000 days")
    return timedelta(days=days, hours=hours, minutes=minutes)


def describe_age(age: timedelta | None) -> str:
    if age is None:
        return "?"
    seconds = max(0, int(age.total_seconds()))
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    return f"{days}d{hours}h" if days else f"{hours}h{minutes}m" if hours else f"{minutes}m"

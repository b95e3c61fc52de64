"""The planner: desired state, live state and inventory in, an ordered Plan out.

Pure: no HTTP, no files, no clock. Each object is decided on its own (``decide``), then the
safeguards are checked (``refusals``) and the writes ordered (``order_changes``).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from typing import Any, Iterable, Iterator, Mapping, Sequence

import yaml

from kestra_promote.flows import references
from kestra_promote import yamlnodes
from kestra_promote.compare import content_hash, line_endings, normalize, source_hash
from kestra_promote.config import Config
from kestra_promote.flows.desired import Desired, dependencies_of
from kestra_promote.target.inventory import kv_key, owner_of, to_json
from kestra_promote.models import (
    Action,
    Change,
    DesiredFile,
    DesiredFlow,
    FileKey,
    FlowKey,
    Inventory,
    LiveFile,
    LiveFlow,
    LiveState,
    Managed,
    ObjectKey,
    Plan,
    Problem,
    Reason,
    sort_key,
)
from kestra_promote.flows.order import topological
from kestra_promote.gates.sealed_namespace import package_refusals
from kestra_promote.git.origin import same_origin, same_repository
from kestra_promote.textsafe import safe_text

PROMOTION_LABEL = "kestra-promote.role"  # carried by the flows that run the promotion itself

__all__ = ["diff", "fingerprint", "live_hashes", "normalize", "pair", "plan"]


def pair(desired: Mapping[Any, object], live: Mapping[Any, object],
         managed: Iterable[Any] = ()) -> Iterator[ObjectKey]:
    """Every identity present in Git, on the target or in the inventory, sorted."""
    yield from sorted(set(desired) | set(live) | set(managed), key=sort_key)


def _unix_lines(text: str) -> list[str]:
    """The lines of ``text``, each line ending (CRLF, CR, ...) written as LF; a last line
    without one stays without."""
    return [line.rstrip("\r\n\x85\u2028\u2029") + "\n"
            if line != line.rstrip("\r\n\x85\u2028\u2029") else line
            for line in text.splitlines(keepends=True)]


def diff(before: str, after: str, *, before_name: str, after_name: str) -> str:
    """A unified diff of two sources (normalised), empty when they compare equal. Lines are
    compared without their line endings; when those differ, a last line says how."""
    old, new = normalize(before), normalize(after)
    if old == new:
        return ""
    lines = difflib.unified_diff(_unix_lines(old), _unix_lines(new),
                                 fromfile=before_name, tofile=after_name)
    out = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                  for line in lines)
    ends = line_endings(old), line_endings(new)
    if ends[0] != ends[1] and "none" not in ends:
        out = out or f"--- {before_name}\n+++ {after_name}\n"
        out += (f"\\ Line endings differ: {before_name} has {ends[0]}, {after_name} has "
                f"{ends[1]}\n")
    return out


def _name(value: object) -> str:
    """A name on one line of a diff header: a newline in a file name must not add a diff line."""
    return safe_text(str(value), one_line=True)


def _file_diff(key: FileKey, before: bytes, after: bytes, path: str | None) -> str:
    try:
        old, new = before.decode("utf-8"), after.decode("utf-8")
    except UnicodeDecodeError:
        return f"Binary file {_name(key)} changed ({len(before)} -> {len(after)} bytes)\n"
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=f"target: {_name(key)}", tofile=f"git: {_name(path)}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _inventory_hash(inventory: Inventory) -> str:
    return content_hash(json.dumps(to_json(inventory), sort_keys=True).encode())


def live_hashes(live: LiveState) -> dict[str, str]:
    """A hash per live object and per inventory: what a saved plan must find unchanged."""
    hashes = {f"flow {k}": source_hash(f.source) for k, f in live.flows.items()}
    hashes.update({f"file {k}": content_hash(f.content) for k, f in live.files.items()})
    hashes["inventory"] = _inventory_hash(live.inventory) if live.inventory else "none"
    for name, other in live.others.items():
        hashes[f"inventory of {name}"] = _inventory_hash(other)
    return dict(sorted(hashes.items()))


def fingerprint(hashes: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(hashes.items()):
        digest.update(f"{key}\0{value}\0".encode())
    return digest.hexdigest()


# -- one object ---------------------------------------------------------------------------------


def _content(obj: DesiredFlow | DesiredFile | LiveFlow | LiveFile) -> str | bytes:
    return obj.source if isinstance(obj, (DesiredFlow, LiveFlow)) else obj.content


def _hash(content: str | bytes) -> str:
    return source_hash(content) if isinstance(content, str) else content_hash(content)


def _update_diff(key: ObjectKey, before: str | bytes, after: str | bytes, path: str | None) -> str:
    if isinstance(before, str) and isinstance(after, str):
        return diff(before, after, before_name=f"target: {_name(key)}",
                    after_name=f"git: {_name(path)}")
    assert isinstance(key, FileKey) and isinstance(before, bytes) and isinstance(after, bytes)
    return _file_diff(key, before, after, path)


def decide(
    key: ObjectKey, want: DesiredFlow | DesiredFile | None, have: LiveFlow | LiveFile | None,
    managed: Managed | None, *, drift: str, prune: bool, in_scope: bool,
) -> Change | None:
    """What to do with one object (None: nothing to report)."""
    after = _content(want) if want is not None else None
    before = _content(have) if have is not None else None
    path = want.path if want is not None else (managed.path if managed else None)
    if want is not None and have is None:
        return Change(key, Action.CREATE, Reason.NEW_IN_GIT, None, after, path)
    if want is not None and have is not None:
        assert after is not None and before is not None
        if _hash(after) == _hash(before):
            return Change(key, Action.UNCHANGED, Reason.IN_SYNC, before, after, path)
        text = _update_diff(key, before, after, path)
        if managed is not None and managed.hash != _hash(before):
            if drift == "keep":
                return Change(key, Action.DRIFTED, Reason.DRIFT_KEPT, before, after, path, text)
            if drift == "fail":
                return Change(key, Action.DRIFTED, Reason.DRIFT_REFUSED, before, after, path, text)
            return Change(key, Action.UPDATE, Reason.DRIFT_OVERWRITTEN, before, after, path, text)
        return Change(key, Action.UPDATE, Reason.CHANGED_IN_GIT, before, after, path, text)
    if have is not None and managed is not None:
        if not prune:
            return Change(key, Action.ORPHANED, Reason.PRUNE_OFF, before, None, path)
        assert before is not None
        if managed.hash != _hash(before):  # hotfixed on the target, then removed from Git
            if drift == "keep":
                return Change(key, Action.DRIFTED, Reason.LEFT_GIT_DRIFT_KEPT, before, None, path)
            if drift == "fail":
                return Change(key, Action.DRIFTED, Reason.LEFT_GIT_DRIFT_REFUSED, before, None,
                              path)
            return Change(key, Action.DELETE, Reason.LEFT_GIT_DRIFTED, before, None, path)
        return Change(key, Action.DELETE, Reason.LEFT_GIT, before, None, path)
    if have is not None and in_scope:
        return Change(key, Action.UNMANAGED, Reason.NOT_MANAGED, before, None, None)
    return None  # only in the inventory (deleted by hand and left Git), or out of scope


# -- safeguards -----------------------------------------------------------------------------------


def _labels(source: str) -> dict[str, object]:
    try:
        value = yamlnodes.load(source)
    except yaml.YAMLError:
        return {}
    labels = value.get("labels") if isinstance(value, dict) else None
    if isinstance(labels, list):
        return {str(i.get("key")): i.get("value") for i in labels if isinstance(i, dict)}
    return labels if isinstance(labels, dict) else {}


def refusals(changes: Sequence[Change], *, source_empty: bool, config: Config,
             others: Mapping[str, Inventory], own: Inventory | None) -> list[str]:
    """Reasons to refuse the whole plan: nothing is written when there is any.

    Checked when a plan is made and again, against the target as it is then, when a saved plan
    is applied: a plan file edited by hand cannot delete what this source does not manage, nor
    write the promotion's own package."""
    found = _sealed(changes, config)
    for change in changes:
        if change.action is Action.DRIFTED and change.reason in (Reason.DRIFT_REFUSED,
                                                                 Reason.LEFT_GIT_DRIFT_REFUSED):
            found.append(f"{change.key} was edited on the target since the last promotion "
                         "(drift: fail): review the diff, then run with --drift overwrite or keep")
        if change.action in (Action.CREATE, Action.UPDATE, Action.UNCHANGED, Action.DELETE):
            owner = owner_of(change.key, others)
            if owner is not None:
                found.append(f"{change.key} is managed by the promotion source {owner!r} "
                             f"(KV {kv_key(owner)}): an object belongs to one source; remove it "
                             "from one of them, or, if this source replaces that one (a new "
                             f"name), take its objects over with `kestra-promote adopt --from "
                             f"{owner}`")
        if change.action is Action.DELETE and (own is None or own.managed(change.key) is None):
            found.append(f"delete refused for {change.key}: this source ({config.name!r}) does "
                         "not manage it")
    deletions = [c for c in changes if c.action is Action.DELETE]
    if not deletions:
        return found
    if source_empty:
        found.append(f"prune refused: the source holds no flows or files, so all {len(deletions)} "
                     "managed object(s) would be deleted; check the checkout and the 'flows' "
                     "setting")
    limit = config.allow_deletions if config.allow_deletions is not None else config.max_deletions
    if len(deletions) > limit:
        found.append(f"prune refused: {len(deletions)} deletions exceed the limit of {limit} "
                     f"(max_deletions); pass --allow-deletions {len(deletions)} to allow them")
    for change in deletions:
        if config.is_protected(change.key.namespace):
            found.append(f"prune refused for {change.key}: namespace {change.key.namespace!r} is "
                         "protected (protected_namespaces); delete it by hand if intended")
        if isinstance(change.before, str) and PROMOTION_LABEL in _labels(change.before):
            found.append(f"prune refused for {change.key}: it runs the promotion itself")
    return found


def _sealed(changes: Sequence[Change], config: Config) -> list[str]:
    """The promotion's package in its own namespace is written by bootstrap alone."""
    return [] if config.installs_promotion else package_refusals(changes,
                                                                 config.promotion_namespace)


# -- order ----------------------------------------------------------------------------------------


def order_changes(changes: list[Change], desired: Desired) -> tuple[list[Change], list[str]]:
    """Writes in a safe order, then the rest by name; plus warnings about dependency cycles.

    Namespace files first (flows may read them), then flows with the flows they call or
    listen to first, then deletions of flows (callers first), then deletions of files.
    """
    by_key = {c.key: c for c in changes}
    files = [c for c in changes if c.kind == "file" and c.action in (Action.CREATE, Action.UPDATE)]
    flow_keys = [c.key for c in changes if isinstance(c.key, FlowKey)
                 and c.action in (Action.CREATE, Action.UPDATE)]
    deps = {k: dependencies_of(desired.flows[k]) for k in flow_keys}  # only what is written
    written, cycle = topological(flow_keys, deps)
    deleted_flows = [c.key for c in changes if isinstance(c.key, FlowKey)
                     and c.action is Action.DELETE]
    live_deps: dict[FlowKey, set[FlowKey]] = {}
    for key in deleted_flows:
        before = by_key[key].before
        try:
            root = yamlnodes.compose_documents(before)[0] if isinstance(before, str) else None
        except yamlnodes.YamlSyntaxError:
            root = None
        live_deps[key] = references.dependencies(root) if root is not None else set()
    removed, removed_cycle = topological(deleted_flows, live_deps)
    file_deletions = [c for c in changes if c.kind == "file" and c.action is Action.DELETE]
    ordered = (sorted(files, key=lambda c: sort_key(c.key))
               + [dataclasses.replace(by_key[k], needs=frozenset(deps[k])) for k in written]
               + [by_key[k] for k in reversed(removed)]
               + sorted(file_deletions, key=lambda c: sort_key(c.key), reverse=True))
    rest = sorted((c for c in changes if not c.writes), key=lambda c: sort_key(c.key))
    warnings = [f"dependency cycle through {', '.join(map(str, keys))}: written in name order"
                for keys in (cycle, removed_cycle) if keys]
    return ordered + rest, warnings


# -- the plan ---------------------------------------------------------------------------------------


def _managed_after(changes: list[Change], before: Inventory | None, name: str,
                   origin: str | None, desired: Desired) -> Inventory:
    flows: dict[FlowKey, Managed] = {}
    files: dict[FileKey, Managed] = {}
    for change in changes:
        table: dict = flows if isinstance(change.key, FlowKey) else files
        old = before.managed(change.key) if before else None
        if change.action in (Action.CREATE, Action.UPDATE, Action.UNCHANGED):
            assert change.after is not None
            wanted = desired.flows.get(change.key) if isinstance(change.key, FlowKey) else None
            source = wanted.origin if wanted is not None else None
            if old is not None and old.hash == _hash(change.after):
                # as deployed: keep when and from where, learn which file text gives it
                table[change.key] = old if old.source == source else dataclasses.replace(
                    old, source=source)
            else:
                table[change.key] = Managed(_hash(change.after), change.path, source)
        elif change.action in (Action.DRIFTED, Action.ORPHANED) and old is not None:
            table[change.key] = old  # still ours, still as it was recorded
    return Inventory(name, flows, files, before.history if before else (),
                     origin or (before.origin if before else None))


def origin_refusal(inventory: Inventory | None, origin: str | None, adopt: bool) -> str | None:
    """Why this run may not use the inventory of another repository (None: it may)."""
    if adopt or inventory is None or not inventory.origin or not origin:
        return None  # a first run, an inventory older than origins, or a folder outside Git
    if same_origin(inventory.origin, origin):
        return None
    if same_repository(inventory.origin, origin):  # a new name would leave these objects
        return (f"the inventory {kv_key(inventory.name)} holds objects promoted from "
                f"{inventory.origin}, and this run promotes {origin}, another folder of the same "
                "repository: pass --adopt to take these objects over")
    return (f"the inventory {kv_key(inventory.name)} holds objects promoted from "
            f"{inventory.origin}, and this run promotes {origin}: give this repository its own "
            "`name` in kestra-promote.yml (or --name), or pass --adopt to take these objects over")


def adopt_origin_refusal(old: Inventory, own: Inventory | None, origin: str | None
                         ) -> str | None:
    """Why ``adopt`` may not merge ``old`` into ``own`` from where this run reads (None: it
    may): either inventory may hold objects another repository promoted, which this one would
    then prune."""
    for inventory, whose in ((old, f"the objects of {old.name!r} were"),
                             (own, "the objects this source's inventory already holds were")):
        if inventory is None or not inventory.origin or not origin:
            continue
        if not same_origin(inventory.origin, origin):
            return (f"{whose} promoted from {inventory.origin}, and this source is {origin}: "
                    "adopting makes this repository their only source (prune deletes what it "
                    "does not hold); pass --other-origin if that is what you want")
    return None


def plan(desired: Desired, live: LiveState, config: Config, *, commit: str | None = None,
         origin: str | None = None, adopt: bool = False) -> Plan:
    """The changes that make the target match ``desired``, under ``config``'s policies.

    ``origin``: where the source comes from (see ``origin.origin``); a run from another origin
    than the inventory records is refused, unless ``adopt``."""
    inventory = live.inventory
    managed_flows = set(inventory.flows) if inventory else set()
    managed_files = set(inventory.files) if inventory else set()
    flow_namespaces = {k.namespace for k in desired.flows} | {k.namespace for k in managed_flows}
    file_namespaces = {k.namespace for k in desired.files} | {k.namespace for k in managed_files}

    def in_scope(key: ObjectKey) -> bool:
        if owner_of(key, live.others) is not None:
            return False
        spaces = flow_namespaces if isinstance(key, FlowKey) else file_namespaces
        return key.namespace in spaces or (
            bool(config.include) and isinstance(key, FlowKey) and config.includes(key.namespace))

    changes: list[Change] = []
    tables: list[tuple[Mapping[Any, Any], Mapping[Any, Any], Mapping[Any, Managed]]] = [
        (desired.flows, live.flows, inventory.flows if inventory else {}),
        (desired.files, live.files, inventory.files if inventory else {}),
    ]
    for wanted, present, recorded in tables:
        for key in pair(wanted, present, recorded):
            if key in recorded and key not in wanted and not config.includes(key.namespace):
                # narrowing the scope lets go of what was managed: it never deletes it
                have = present.get(key)
                changes.append(Change(key, Action.RELEASED, Reason.LEFT_SCOPE,
                                      _content(have) if have else None, None,
                                      recorded[key].path))
                continue
            change = decide(key, wanted.get(key), present.get(key), recorded.get(key),
                            drift=config.drift, prune=config.prune, in_scope=in_scope(key))
            if change is not None:
                changes.append(change)

    refused = refusals(changes, source_empty=not desired.flows and not desired.files,
                       config=config, others=live.others, own=inventory)
    if (why := origin_refusal(inventory, origin, adopt)) is not None:
        refused.insert(0, why)
    ordered, cycle_warnings = order_changes(changes, desired)
    after = _managed_after(ordered, inventory, config.name, origin, desired)
    before = ((inventory.flows, inventory.files, inventory.origin) if inventory
              else ({}, {}, None))
    needs_inventory = any(c.writes for c in ordered) or \
        (after.flows, after.files, after.origin) != before
    hashes = live_hashes(live)
    warnings = (*desired.warnings, *(Problem(w) for w in cycle_warnings),
                *(Problem(f"{c.key}: {c.reason.value}", c.path) for c in ordered
                  if c.reason is Reason.DRIFT_OVERWRITTEN))
    return Plan(
        changes=tuple(ordered), commit=commit, name=config.name,
        live_fingerprint=fingerprint(hashes), live_hashes=hashes, scope=live.scope,
        inventory_before=inventory, managed_after=after if needs_inventory else None,
        refusals=tuple(refused), warnings=tuple(warnings), config=config,
        source_objects=len(desired.flows) + len(desired.files), origin=origin,
    )

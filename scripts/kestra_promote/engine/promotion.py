"""A source folder planned against one target, reading as little as it can.

The order spares work: the settings, then the inventories on the target, then the files (a flow
file whose text this source's inventory knows is not parsed: see ``desired.resolve``), then the
live flows, which fill those files in. Planning again (the target changed meanwhile) reads the
target again, never the files.

When the inventories cannot be read (the target is down, say), every file is parsed anyway:
problems in the files are reported before anything about the target.

A pull request's plan (``review``) is made as production knows the reviewed repository, never as
the request's own settings say: its inventory is the one whose recorded origin is this
repository (``review_identity``), read where production keeps its inventories (the policy's
state namespace, else the default). A request cannot name its way into another source's
inventory, nor move away from the others' by moving the state namespace.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Callable, Mapping

from kestra_promote.target.client import KestraClient
from kestra_promote.target.filenames import name_refusals, stored_path
from kestra_promote.config import CONFIG_FILE, Config
from kestra_promote.flows.desired import Desired, prepare, recogniser, resolve
from kestra_promote.errors import KestraError, KestraPromoteError
from kestra_promote.target.inventory import kv_key
from kestra_promote.target.live import Inventories, read_for, read_inventories
from kestra_promote.engine.plan import plan as make_plan
from kestra_promote.gates import checks, policy_store, stages
from kestra_promote.gates.policy import SAFEGUARDS, Effective, effective, source_refusals
from kestra_promote.gates.policy_store import Stored
from kestra_promote.git.origin import same_origin
from kestra_promote.git.blobs import Committed
from kestra_promote.git.source import Source, read_source
from kestra_promote.models import WRITES, Action, DesiredFlow, Inventory, Plan, Problem


@dataclass(frozen=True)
class Identity:
    """Who a pull request's plan is made as: the name production knows the reviewed repository
    by, and why the review is refused or what of the request's settings it did not use."""

    name: str
    refusal: str | None = None
    warnings: tuple[Problem, ...] = ()


def is_ours(inventory: Inventory, origin: str | None) -> bool:
    """Whether ``inventory`` records that its objects were promoted from ``origin``."""
    return bool(inventory.origin and origin and same_origin(inventory.origin, origin))


def review_identity(inventories: Inventories, name: str, origin: str | None,
                    where: str = CONFIG_FILE) -> Identity:
    """The name a review of the repository at ``origin`` plans as, whatever the request's own
    ``name`` says: the inventory that records this origin (the request's name when several
    do and it is one of them), or, for a source production does not know yet, the request's
    name when no inventory holds it. A name held by an inventory of another repository, or by
    one that records no origin, is refused: the review would plan as that source."""
    own, others = inventories
    every = {**others, **({name: own} if own is not None else {})}
    ours = sorted(other for other, inventory in every.items() if is_ours(inventory, origin))
    if name in ours or (not ours and name not in every):
        return Identity(name)
    if len(ours) == 1:
        return Identity(ours[0], warnings=(Problem(
            f"'name' {name!r} is not used in a review: production knows this repository as "
            f"{ours[0]!r}", where),))
    if ours:
        return Identity(name, f"production holds {len(ours)} inventories of this repository "
                              f"({', '.join(ours)}): set 'name' to the one to plan as")
    held = ("records no origin, so nothing says its objects came from this repository"
            if every[name].origin is None else "holds another repository's objects")
    return Identity(name, f"the name {name!r} is another source's on production: its "
                          f"inventory {kv_key(name)} {held}; a review plans as this "
                          "repository's own inventory only (give the repository its own name)")


def _regroup(inventories: Inventories, read_as: str, name: str,
             origin: str | None) -> Inventories:
    """``inventories`` (read for ``read_as``) as a review plans with them: ``name``'s as its
    own only when it is this repository's, anything else among the others."""
    own, others = inventories
    every = {**others, **({read_as: own} if own is not None else {})}
    mine = every.pop(name, None)
    if mine is not None and not is_ours(mine, origin):
        every[name], mine = mine, None
    return mine, every


@dataclass
class Promotion:
    """What a source holds, ready to be planned against the target."""

    client: KestraClient
    config: Config
    source: Source
    desired: Desired  # without the known files' flows, until a plan fills them in
    origin: str | None  # the repository (and folder) the source comes from
    read_all: Callable[[], Desired]  # everything parsed, as without the inventory
    inventories: Inventories | None = None  # read before the files; used by the first plan
    stored: Stored | None = None  # production's policy, as read from the target
    merged: Effective | None = None  # the repository's settings under that policy
    review: bool = False  # a pull request's plan: made as production knows the repository
    identity: Identity | None = None  # a review's, once the inventories were read
    notes: tuple[Problem, ...] = ()  # a review's: the request's settings it did not use
    # the repository's tags (name -> commit), for a stage that takes the previous one's commits
    stage_tags: Callable[[], Mapping[str, str]] | None = None

    def plan(self, *, adopt: bool = False, dirty: bool = False) -> Plan:
        first, self.inventories = self.inventories, None
        if self.review:
            first = self._identified(first)
        live = read_for(self.client, self.desired, self.config, inventories=first)
        desired = resolve(self.desired, self.config, live.flows, live.inventory, self.read_all)
        planned = make_plan(desired, live, self.config, commit=self.source.commit,
                            origin=self.origin, adopt=adopt)
        planned = dataclasses.replace(planned, dirty=dirty)
        if self.identity is not None:
            refusal = self.identity.refusal
            planned = dataclasses.replace(
                planned, refusals=(*([refusal] if refusal else []), *planned.refusals),
                warnings=(*planned.warnings, *self.notes, *self.identity.warnings))
        planned = self._sealed(planned, desired)
        if renamed := self._renamed_files(desired):
            planned = dataclasses.replace(planned, refusals=(*planned.refusals, *renamed))
        stored = self.stored
        if stored is not None:
            planned = dataclasses.replace(planned, policy_digest=policy_store.digest_of_stored(
                stored))
        if stored is None or (stored.policy is None and stored.mismatch is None):
            return planned  # no policy: the repository's settings, as always
        return self._under_policy(planned, desired)

    def _sealed(self, planned: Plan, desired: Desired) -> Plan:
        """The default check, with or without a policy: no flow written may write into the
        promotion's own namespace nor read its secrets."""
        found = checks.evaluate(checks.default_checks(self.config.promotion_namespace),
                                _written(planned, desired), source_name=self.config.name,
                                changes=0)
        if not found:
            return planned
        return dataclasses.replace(planned, refusals=(*planned.refusals, *map(str, found)))

    def _renamed_files(self, desired: Desired) -> list[str]:
        """The files the target would store under another name (``filenames``); its version
        is asked only when a name could change."""
        odd = [f for f in desired.files.values() if stored_path(f.key.path, None) != f.key.path]
        if not odd:
            return []
        try:
            major = self.client.major_version()
        except KestraError:
            major = None
        return name_refusals(odd, major)

    def _identified(self, inventories: Inventories | None) -> Inventories:
        """A review's inventories, its identity settled on the first read."""
        read_as = self.config.name
        if inventories is None:
            inventories = read_inventories(self.client, self.config.state_namespace, read_as)
        if self.identity is None:
            self.identity = review_identity(inventories, read_as, self.origin,
                                            self.config.path or CONFIG_FILE)
            self.config = dataclasses.replace(self.config, name=self.identity.name)
        return _regroup(inventories, read_as, self.config.name, self.origin)

    def _under_policy(self, planned: Plan, desired: Desired) -> Plan:
        """The plan with production's policy applied: what the commit may not loosen, who may
        write where, and the checks on every created or updated flow, all as refusals."""
        assert self.stored is not None and self.merged is not None
        policy = self.stored.policy
        refused = [f"production's policy: {self.stored.mismatch}"] if self.stored.mismatch else []
        refused += self.merged.refusals
        writes = [c for c in planned.changes if c.action in WRITES]
        refused += source_refusals(policy, self.config.name, self.origin,
                                   {c.key.namespace for c in writes})
        if policy is not None and policy.checks:
            written = _written(planned, desired)
            refused += [str(v) for v in checks.evaluate(policy.checks, written,
                                                        source_name=self.config.name,
                                                        changes=len(writes))]
        stage: dict[str, str] = {}
        if policy is not None and policy.stages is not None and not self.review:
            why, stage = self._stage(policy.stages, planned)
            refused += [why] if why else []
        shown = {key: (_shown(getattr(self.config, key)), self.merged.origins[key])
                 for key in SAFEGUARDS}
        return dataclasses.replace(
            planned, refusals=(*planned.refusals, *refused), stage=stage,
            warnings=(*planned.warnings, *self.merged.warnings),
            policy=self.stored.status(), safeguards=shown)


    def _stage(self, pipeline: stages.Stages, planned: Plan) -> tuple[str | None, dict[str, str]]:
        """Why this stage may not take the plan's commit (only a plan that writes is judged),
        and what the run's history records of its stage."""
        record = {"stage": pipeline.stage, **({"next": pipeline.next} if pipeline.next else {})}
        if pipeline.previous is None or planned.is_empty:
            return None, record
        tags: Mapping[str, str] | str
        try:
            tags = self.stage_tags() if self.stage_tags is not None else \
                "no repository to list them from"
        except KestraPromoteError as exc:
            tags = str(exc)
        why, tag = stages.refusal(pipeline, planned.commit, planned.dirty, tags)
        return why, {**record, "after": pipeline.previous, **({"tag": tag} if tag else {})}


def _written(planned: Plan, desired: Desired) -> list[DesiredFlow]:
    """The flows the plan creates or updates, as they will be sent."""
    return [desired.flows[c.key] for c in planned.changes  # type: ignore[index]
            if c.action in (Action.CREATE, Action.UPDATE) and c.key in desired.flows]


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(w.name if hasattr(w, "name") else str(w) for w in value) or "(none)"
    return str(value)


def _review_settings(merged: Effective) -> tuple[Effective, tuple[Problem, ...]]:
    """A review reads the inventories where production keeps them: the state namespace its
    policy sets, else the default, never the request's own."""
    config = merged.config
    default = Config().state_namespace
    if merged.origins.get("state_namespace") == "policy" or config.state_namespace == default:
        return merged, ()
    note = Problem(f"'state_namespace' {config.state_namespace!r} is not used in a review: "
                   f"production's inventories are read in {default!r} (production's policy "
                   "may set another)", config.path or CONFIG_FILE)
    return dataclasses.replace(merged, config=dataclasses.replace(config, state_namespace=default),
                               origins={**merged.origins, "state_namespace": "default"}), (note,)


def open_promotion(client: KestraClient, folder: str | os.PathLike[str], config: Config, *,
                   commit: str | None = None, origin: str | None = None,
                   policy: Callable[[], Stored] | None = None,
                   review: bool = False, committed: Committed | None = None,
                   stage_tags: Callable[[], Mapping[str, str]] | None = None) -> Promotion:
    """Read ``folder`` (with ``config``, overrides applied) for a plan against ``client``, under
    production's ``policy`` when one was read (its safeguards win over the commit's looser
    ones, and its state namespace is where the inventories are read). ``policy`` reads it.
    ``review``: a pull request's plan, made as production knows the repository at ``origin``
    (see ``review_identity``), whatever name and state namespace the request's settings give.
    ``stage_tags`` lists the repository's tags, for a stage that takes the previous stage's
    verified commits only (``gates.stages``)."""
    try:
        stored = policy() if policy is not None else None
    except KestraError:
        # the files' problems come first
        read_source(folder, commit=commit, config=config, committed=committed)
        raise
    merged = effective(stored.policy if stored else None, config)
    notes: tuple[Problem, ...] = ()
    if review:
        merged, notes = _review_settings(merged)
    config = merged.config
    if stored is not None:  # the promotion runs from the policy namespace: sealed there
        config = dataclasses.replace(config, promotion_namespace=stored.namespace)
        merged = dataclasses.replace(merged, config=config)
    try:
        inventories: Inventories | None = read_inventories(client, config.state_namespace,
                                                           config.name)
    except KestraError:
        inventories = None  # read everything: the files' problems come first
    identity = None
    if review and inventories is not None:
        identity = review_identity(inventories, config.name, origin,
                                   config.path or CONFIG_FILE)
        inventories = _regroup(inventories, config.name, identity.name, origin)
        config = dataclasses.replace(config, name=identity.name)
    own = inventories[0] if inventories is not None else None
    source = read_source(folder, commit=commit, config=config, known=recogniser(config, own),
                         committed=committed)

    def read_all() -> Desired:
        return prepare(read_source(folder, commit=commit, config=config, committed=committed),
                       config)

    return Promotion(client, config, source, prepare(source, config), origin, read_all,
                     inventories, stored, merged, review, identity, notes, stage_tags)

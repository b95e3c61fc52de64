"""A source folder planned against one target, reading as little as it can.

The order spares work: the settings, then the inventories on the target, then the files (a flow
file whose text this source's inventory knows is not parsed: see ``desired.resolve``), then the
live flows, which fill those files in. Planning again (the target changed meanwhile) reads the
target again, never the files.

When the inventories cannot be read (the target is down, say), every file is parsed anyway:
problems in the files are reported before anything about the target.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Callable

from kestra_promote.target.client import KestraClient
from kestra_promote.config import Config
from kestra_promote.flows.desired import Desired, prepare, recogniser, resolve
from kestra_promote.errors import KestraError
from kestra_promote.target.live import Inventories, read_for, read_inventories
from kestra_promote.engine.plan import plan as make_plan
from kestra_promote.gates import checks
from kestra_promote.gates.policy import SAFEGUARDS, Effective, effective, source_refusals
from kestra_promote.gates.policy_store import Stored
from kestra_promote.git.source import Source, read_source
from kestra_promote.models import WRITES, Action, DesiredFlow, Plan


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

    def plan(self, *, adopt: bool = False, dirty: bool = False) -> Plan:
        first, self.inventories = self.inventories, None
        live = read_for(self.client, self.desired, self.config, inventories=first)
        desired = resolve(self.desired, self.config, live.flows, live.inventory, self.read_all)
        planned = make_plan(desired, live, self.config, commit=self.source.commit,
                            origin=self.origin, adopt=adopt)
        planned = dataclasses.replace(planned, dirty=dirty)
        planned = self._sealed(planned, desired)
        stored = self.stored
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
        shown = {key: (_shown(getattr(self.config, key)), self.merged.origins[key])
                 for key in SAFEGUARDS}
        return dataclasses.replace(
            planned, refusals=(*planned.refusals, *refused),
            warnings=(*planned.warnings, *self.merged.warnings),
            policy=self.stored.status(), safeguards=shown)


def _written(planned: Plan, desired: Desired) -> list[DesiredFlow]:
    """The flows the plan creates or updates, as they will be sent."""
    return [desired.flows[c.key] for c in planned.changes  # type: ignore[index]
            if c.action in (Action.CREATE, Action.UPDATE) and c.key in desired.flows]


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(w.name if hasattr(w, "name") else str(w) for w in value) or "(none)"
    return str(value)


def open_promotion(client: KestraClient, folder: str | os.PathLike[str], config: Config, *,
                   commit: str | None = None, origin: str | None = None,
                   policy: Callable[[], Stored] | None = None) -> Promotion:
    """Read ``folder`` (with ``config``, overrides applied) for a plan against ``client``, under
    production's ``policy`` when one was read (its safeguards win over the commit's looser
    ones, and its state namespace is where the inventories are read). ``policy`` reads it."""
    try:
        stored = policy() if policy is not None else None
    except KestraError:
        read_source(folder, commit=commit, config=config)  # the files' problems come first
        raise
    merged = effective(stored.policy if stored else None, config)
    config = merged.config
    if stored is not None:  # the promotion runs from the policy namespace: sealed there
        config = dataclasses.replace(config, promotion_namespace=stored.namespace)
        merged = dataclasses.replace(merged, config=config)
    try:
        inventories: Inventories | None = read_inventories(client, config.state_namespace,
                                                           config.name)
    except KestraError:
        inventories = None  # read everything: the files' problems come first
    own = inventories[0] if inventories is not None else None
    source = read_source(folder, commit=commit, config=config, known=recogniser(config, own))

    def read_all() -> Desired:
        return prepare(read_source(folder, commit=commit, config=config), config)

    return Promotion(client, config, source, prepare(source, config), origin, read_all,
                     inventories, stored, merged)

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
from kestra_promote.models import Plan
from kestra_promote.engine.plan import plan as make_plan
from kestra_promote.git.source import Source, read_source


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

    def plan(self, *, adopt: bool = False, dirty: bool = False) -> Plan:
        first, self.inventories = self.inventories, None
        live = read_for(self.client, self.desired, self.config, inventories=first)
        desired = resolve(self.desired, self.config, live.flows, live.inventory, self.read_all)
        planned = make_plan(desired, live, self.config, commit=self.source.commit,
                            origin=self.origin, adopt=adopt)
        return dataclasses.replace(planned, dirty=dirty)


def open_promotion(client: KestraClient, folder: str | os.PathLike[str], config: Config, *,
                   commit: str | None = None, origin: str | None = None) -> Promotion:
    """Read ``folder`` (with ``config``, overrides applied) for a plan against ``client``."""
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
                     inventories)

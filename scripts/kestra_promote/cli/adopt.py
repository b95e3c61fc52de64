"""``kestra-promote adopt``: this source takes over what another promotion source
manages, moving its inventory under the target's lease. Flows and files are not touched.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Mapping, Sequence

from kestra_promote import report
from kestra_promote.config import check_name
from kestra_promote.engine.plan import adopt_origin_refusal
from kestra_promote.errors import KestraError, KestraPromoteError, SettingsError
from kestra_promote.models import FlowKey, Inventory, ObjectKey, sort_key
from kestra_promote.target import inventory, lock, store
from kestra_promote.target.client import Connection, KestraClient, connect
from kestra_promote.target.live import read_inventories
from kestra_promote.cli.common import EXIT_ERROR, EXIT_OK, load, require
from kestra_promote.cli.output import Output


def cmd_adopt(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    connection = require(connection)
    previous = check_name(args.previous, "--from")
    with load(args) as loaded, connect(connection) as client:
        config = loaded.config
        namespace = config.state_namespace
        if previous == config.name:
            raise SettingsError(f"--from {previous!r} is this source's own name")
        own, others = read_inventories(client, namespace, config.name)
        old = others.get(previous)
        if old is None:
            raise SettingsError(f"no promotion source {previous!r} on this target (no KV "
                                f"{inventory.kv_key(previous)} in namespace {namespace!r})")
        if not args.other_origin and (why := adopt_origin_refusal(old, own, loaded.origin)):
            raise SettingsError(why)
        moving = sorted([*old.flows, *old.files], key=sort_key)
        wanted = {*loaded.desired.flows, *loaded.desired.files}
        shown = {"format_version": report.FORMAT_VERSION, "name": config.name, "from": previous,
                 "objects": [{**report.key_to_dict(key), "in_source": key in wanted}
                             for key in moving], "adopted": False}
        if output.format != "json":
            output.write(_adoption_text(previous, config.name, namespace, moving, wanted))
        if args.plan_only:
            if output.format == "json":
                output.json(shown)
            return EXIT_OK
        run = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "commit": loaded.source.commit, "trigger": "adopt", "result": "adopted",
               "from": previous, "adopted": len(moving)}
        try:
            _move_inventory(client, namespace, previous, old, config.name, run, loaded.origin,
                            lock_wait=args.lock_wait)
        except KestraPromoteError as error:
            if output.format != "json":
                raise
            # one document: what was to move, and why it did not (or not entirely)
            output.json({**shown, **report.problems_to_dict(str(error), (),
                                                            commit=loaded.source.commit)})
            output.note(f"Error: {error}")
            return EXIT_ERROR
    if output.format == "json":
        output.json({**shown, "adopted": True})
    else:
        output.write(f"Adopted: {config.name!r} now manages what {previous!r} did; its "
                     "inventory is gone.\n")
    return EXIT_OK


def _move_inventory(client: KestraClient, namespace: str, old_name: str, old: Inventory,
                    name: str, run: Mapping[str, object], origin: str | None, *,
                    lock_wait: float) -> None:
    """Under the target's lease: ``name``'s inventory takes over ``old``'s, which is deleted."""
    old_key = inventory.kv_key(old_name)
    with lock.held(client, namespace, lock.default_holder("kestra-promote adopt"),
                   wait=lock_wait) as lease:
        own, others = read_inventories(client, namespace, name)  # again, under the lease
        current = others.get(old_name)
        if current is None or current != old:
            raise SettingsError(f"the inventory of {old_name!r} changed meanwhile: run adopt "
                                "again")
        taken = inventory.merged(own, current, name, run, origin=origin)
        lock.ensure_ours(client, namespace, lease)  # before each write
        store.write(client, namespace, taken, previous=own)
        try:
            lock.ensure_ours(client, namespace, lease)
            store.delete(client, namespace, old_name, current)
        except KestraPromoteError as exc:
            # both inventories now claim the objects: running adopt again finishes the move
            raise KestraError(
                f"{name!r} now manages what {old_name!r} did, but deleting the inventory of "
                f"{old_name!r} (KV {namespace}/{old_key}) failed: {exc}; run this adopt again "
                "to finish") from exc


def _adoption_text(previous: str, name: str, namespace: str, moving: Sequence[ObjectKey],
                   wanted: set[ObjectKey]) -> str:
    """The move, each object marked when this source does not hold it: once adopted, it is
    orphaned (kept) or, with prune, deleted by the next apply."""
    outside = [key for key in moving if key not in wanted]
    flows = sum(isinstance(key, FlowKey) for key in moving)
    text = (f"Adopt: {flows} flow(s) and {len(moving) - flows} file(s) move from {previous!r} "
            f"(KV {namespace}/{inventory.kv_key(previous)}) to {name!r} "
            f"(KV {namespace}/{inventory.kv_key(name)}).\n")
    text += "".join(f"  > {key}" + ("   (not in this source)" if key in outside else "") + "\n"
                    for key in moving)
    if outside:
        text += (f"{len(outside)} of them are not in this source: once adopted, the next apply "
                 "keeps them as orphaned, or deletes them if prune is on.\n")
    return text

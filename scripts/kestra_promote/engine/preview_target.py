"""A preview on its target: read a source as a preview's promotion, and take one down.

The rules are ``engine.preview``'s (pure); this module reads the target and writes to it, for
``kestra-promote preview`` and for the promotion flow's pull-request runs alike.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Callable

from kestra_promote.config import Config
from kestra_promote.engine import preview
from kestra_promote.engine.apply import Progress, apply_plan
from kestra_promote.engine.promotion import Promotion, open_promotion
from kestra_promote.errors import PlanRefused
from kestra_promote.gates.policy_store import Stored
from kestra_promote.git.blobs import Committed
from kestra_promote.git.origin import same_origin
from kestra_promote.git.source import read_source
from kestra_promote.models import ApplyResult, Inventory, Plan, Problem
from kestra_promote.target import lock, store
from kestra_promote.target.client import KestraClient
from kestra_promote.target.live import read_inventories, read_live_state


def open_preview(client: KestraClient, folder: str | os.PathLike[str], base: Config,
                 preview_id: str, root: str, *, state_namespace: str, stored: Stored,
                 commit: str | None = None, committed: Committed | None = None,
                 origin: str | None = None) -> Promotion:
    """The promotion of ``folder`` (settings ``base``) as preview ``preview_id`` under ``root``:
    plan it with ``preview.guarded``."""
    scanned = read_source(folder, commit=commit, config=base, committed=committed)
    config = preview.preview_config(
        base, root, [k.namespace for k in (*scanned.flows, *scanned.files)],
        name=preview.name_of(preview_id), state_namespace=state_namespace)
    return open_promotion(client, folder, config, commit=commit, origin=origin,
                          policy=lambda: stored, committed=committed)


def take_down(client: KestraClient, namespace: str, preview_id: str, root: str, *,
              holder: str, lock_wait: float = lock.DEFAULT_WAIT,
              progress: Callable[[Plan], Progress] | None = None, origin: str | None = None
              ) -> tuple[Plan, ApplyResult] | None:
    """Delete what preview ``preview_id``'s inventory (in ``namespace``) records, then the
    inventory, under the lease; None when it has none. Refused, before the lease is taken, when
    the inventory records anything outside ``root``, or, with ``origin`` (the repository whose
    request closed), when it records another repository: the same id, a preview of its own.
    ``progress``: what reports the progress of the teardown's plan."""
    name = preview.name_of(preview_id)
    own, _ = read_inventories(client, namespace, name)
    if own is None:
        return None
    _check_removable(own, preview_id, root, origin)
    with lock.held(client, namespace, holder, wait=lock_wait) as lease:
        own, others = read_inventories(client, namespace, name)  # again, under the lease
        if own is None:
            return None
        _check_removable(own, preview_id, root, origin)
        live = read_live_state(client, (), (), state_namespace=namespace, name=name,
                               inventories=(own, others))
        plan = preview.teardown(live, root)
        result = apply_plan(client, plan, trigger="preview down",
                            on_progress=progress(plan) if progress is not None else None,
                            heartbeat=lock.Keeper(client, namespace, lease))
        if result.ok:
            store.delete(client, namespace, name, own)
    return plan, result


def stale(client: KestraClient, namespace: str, prefix: str, older_than: timedelta,
          now: datetime, *, origin: str | None = None) -> list[str]:
    """The ids of the previews under ``prefix`` (inventories in ``namespace``) last applied
    more than ``older_than`` before ``now``; with ``origin``, only that repository's (another
    repository's previews under the same prefix are its own to remove)."""
    _, every = read_inventories(client, namespace, "")
    return [p.id for p in preview.stale(preview.previews(every), now, older_than)
            if p.root == preview.root_of(prefix, p.id)
            and (origin is None or p.origin is None or same_origin(p.origin, origin))]


def _check_removable(own: Inventory, preview_id: str, root: str, origin: str | None) -> None:
    if bad := preview.foreign(own, root):
        raise PlanRefused(f"preview {preview_id} not removed: its inventory records objects "
                          f"outside {root}", [Problem(f"{key}: outside the preview's namespaces; "
                                                      "the inventory was edited") for key in bad])
    if origin is not None and own.origin is not None and not same_origin(own.origin, origin):
        why = (f"preview {preview_id} not removed: it is another repository's "
               f"({own.origin}); give each repository's previews a prefix of their own "
               "(promote_preview_prefix)")
        raise PlanRefused(why, [Problem(why)])

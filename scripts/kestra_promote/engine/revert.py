"""Undoing what a failed or interrupted apply wrote, newest first, each object as it was before.

Every undo acts on what the target holds now: a step that already happened is seen as done, and
an object someone edited since this run wrote it is left as it is (never overwritten). What may
be transient is tried again; flows are undone in bulk when there are several. Each object's
outcome says whether it was reverted, and why not.

Then every object of the plan is read back (``read_back``): a revert is only called one when each
holds what it held before the run. A server that goes on with a request whose answer was lost
(an import Kestra carries on with after a proxy gave up) can change the target after the undo
read it; what is not as before is named, with what it holds and what it should.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

from kestra_promote.target import bulk
from kestra_promote.target.client import KestraClient
from kestra_promote.compare import same_content
from kestra_promote.errors import ApiError, KestraError, NotFound, TransportError, is_already_exists
from kestra_promote.models import Action, Change, FileKey, FlowKey, Leftover, Outcome, Status

log = logging.getLogger(__name__)


class _NewerOnTarget(Exception):
    """The target holds a version of the object this run did not write: never overwrite it."""


REVERT_ATTEMPTS = 4


def _current(client: KestraClient, key: FlowKey | FileKey) -> str | bytes | None:
    """What the target holds now (None: nothing)."""
    try:
        if isinstance(key, FileKey):
            return client.download_namespace_file(key.namespace, key.path)
        return str(client.get_flow(key.namespace, key.id)["source"])
    except NotFound:
        return None


def _undo_once(client: KestraClient, change: Change) -> None:
    """Make the target hold ``change.before`` again, acting on what it holds now: safe to repeat
    (a step that already happened is seen as done), and never over a version this run did not
    write (someone edited the object since)."""
    key, before, after = change.key, change.before, change.after
    current = _current(client, key)
    if same_content(current, before):
        return  # never landed, or already undone
    if not same_content(current, after):
        raise _NewerOnTarget()
    if before is None:
        if isinstance(key, FileKey):
            client.delete_namespace_file(key.namespace, key.path)
        else:
            client.delete_flow(key.namespace, key.id)
    elif isinstance(key, FileKey):
        assert isinstance(before, bytes)
        client.upload_namespace_file(key.namespace, key.path, before)
    elif current is None:
        assert isinstance(before, str)
        client.create_flow(before)
    else:
        assert isinstance(before, str)
        client.update_flow(key.namespace, key.id, before)


def _transient(exc: KestraError) -> bool:
    return isinstance(exc, TransportError) or (isinstance(exc, ApiError) and (
        exc.status >= 500 or exc.status == 429 or is_already_exists(exc)))


def _undo(client: KestraClient, change: Change, sleep: Callable[[float], None]) -> str | None:
    """Undo one change, retrying what may be transient; None when done, else why not."""
    for attempt in range(REVERT_ATTEMPTS):
        try:
            _undo_once(client, change)
            return None
        except _NewerOnTarget:
            return ("the target now holds a version this run did not write (edited since): left "
                    "as it is")
        except KestraError as exc:
            if not _transient(exc) or attempt == REVERT_ATTEMPTS - 1:
                return f"undoing it failed: {exc}"
            sleep(0.25 * 2 ** attempt)
    return None  # pragma: no cover - the loop always returns


def revert_all(client: KestraClient, results: dict[int, Outcome], applied: list[int],
               uncertain: set[int], show: Callable[[Outcome, int, int], None],
               sleep: Callable[[float], None], prefixes: tuple[str, ...]) -> None:
    """Undo every applied change, newest first, and every failed one that may have landed.
    Flows are undone in bulk when there are several (the target read once, then bulk requests),
    anything left one by one; every undo acts on what the target holds. ``show`` hears of each
    undo as ``apply.Progress`` does, with number 0."""
    maybe = sorted(i for i in uncertain if results[i].status is Status.FAILED)
    targets = [*reversed(applied), *maybe]
    flows = [i for i in targets if isinstance(results[i].change.key, FlowKey)]
    settled: dict[int, str | None] = {}
    if len(flows) >= bulk.BULK_MIN:
        try:
            done = bulk.undo_flows(client, [results[i].change for i in flows], prefixes)
            settled = {flows[position]: why for position, why in done.items()}
        except KestraError as exc:  # reading the target failed: one by one, each read first
            log.warning("reverting in bulk failed (%s): reverting one by one", exc)
    for index in targets:
        change = results[index].change
        why = settled[index] if index in settled else _undo(client, change, sleep)
        if index in maybe:
            if why is not None:
                results[index] = Outcome(change, Status.NOT_REVERTED,
                                         f"{results[index].message}; it may have landed, and "
                                         f"{why}", change.before)
            continue
        if why is None:
            results[index] = Outcome(change, Status.REVERTED,
                                     f"{results[index].message}, then reverted")
        else:
            results[index] = Outcome(change, Status.NOT_REVERTED,
                                     f"{results[index].message}, but not reverted: {why}",
                                     change.before)
            log.error("reverting %s %s: %s", change.action.value, change.key, why)
        show(results[index], 0, len(applied))


def _should_hold(change: Change) -> str:
    return ("nothing (it did not exist before this run)" if change.before is None
            else "its previous content")


def _holds(change: Change, now: str | None) -> str:
    if now is None:
        return "nothing (this run deleted it)" if change.action is Action.DELETE else "nothing"
    if now == bulk.hash_of(change.after):
        return "what this run wrote"
    return "another version (not written by this run)"


def read_back(client: KestraClient, pending: Sequence[Change], results: dict[int, Outcome],
              prefixes: tuple[str, ...]) -> tuple[Leftover, ...]:
    """After a revert: read every object of ``pending`` again (its flows in one request, its
    files in one per namespace) and return those that do not hold what they held before the
    run; each one's outcome then says so (not reverted, with its previous content, for a person
    to restore). When the target cannot be read, every object the run wrote, or tried to, is a
    leftover whose content is unknown."""
    try:
        held = bulk.holding(client, pending, prefixes)
    except KestraError as exc:
        log.error("reading the target back after the revert failed: %s", exc)
        unknown = f"unknown (reading the target back after the revert failed: {exc})"
        return tuple(Leftover(pending[i].key, unknown, _should_hold(pending[i]))
                     for i in sorted(results))
    leftovers = []
    for index, change in enumerate(pending):
        now = held[change.key]
        outcome = results.get(index)
        if now == bulk.hash_of(change.before):
            if outcome is not None and outcome.status is Status.NOT_REVERTED:
                # an undo whose answer was lost, say: the target holds what it held before
                results[index] = Outcome(change, Status.REVERTED, f"{outcome.message}; read "
                                         "back after the revert, it holds its previous content")
            continue
        holds, should = _holds(change, now), _should_hold(change)
        leftovers.append(Leftover(change.key, holds, should))
        if outcome is None or outcome.status is not Status.NOT_REVERTED:
            said = outcome.message if outcome is not None else "not attempted"
            results[index] = Outcome(change, Status.NOT_REVERTED,
                                     f"{said}; read back after the revert, it holds {holds}, "
                                     f"where it should hold {should}", change.before)
            log.error("%s: read back after the revert, it holds %s, where it should hold %s",
                      change.key, holds, should)
    return tuple(leftovers)

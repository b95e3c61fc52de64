"""Sending a plan's writes: in order, runs of flows in bulk requests, and flows that do not
depend on one another several at once (``waves``), until a failure, a signal or a lost lease.

``engine.apply`` around it validates before, records the inventory after, and reverts on a
failure; this module only sends, and says what each change became.
"""

from __future__ import annotations

import logging
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Sequence

from kestra_promote.target import bulk
from kestra_promote.target.client import KestraClient
from kestra_promote.errors import ApiError, KestraError, NotFound, is_already_exists
from kestra_promote.models import Action, Change, FileKey, Outcome, Status
from kestra_promote.engine.waves import waves

log = logging.getLogger(__name__)

# Independent flow writes in flight at once (Kestra 2.0 takes one request per flow): measured
# with benchmarks/bench_scale.py --latency, see docs/performance.md
DEFAULT_PARALLEL = 8

Progress = Callable[[Outcome, int, int], None]  # (outcome, number, total); number 0 = a revert


def write_one(client: KestraClient, change: Change) -> str:
    """Perform one change; returns the past-tense verb for the report."""
    key, action, after = change.key, change.action, change.after
    if action is Action.DELETE:
        try:
            if isinstance(key, FileKey):
                client.delete_namespace_file(key.namespace, key.path)
            else:
                client.delete_flow(key.namespace, key.id)
        except NotFound:
            # already gone: deleted by someone else, or by an earlier attempt whose answer was
            # lost before the client retried; either way the target is as the plan wants it
            pass
        return "deleted"
    if isinstance(key, FileKey):
        assert isinstance(after, bytes)
        client.upload_namespace_file(key.namespace, key.path, after)
        return "created" if action is Action.CREATE else "updated"
    if action is Action.CREATE:
        assert isinstance(after, str)
        try:
            client.create_flow(after)
        except ApiError as exc:
            if is_already_exists(exc):
                raise KestraError(
                    f"{key} was created on the target after the plan was made; plan again"
                ) from exc
            raise
        return "created"
    if action is Action.UPDATE:
        assert isinstance(after, str)
        client.update_flow(key.namespace, key.id, after)
        return "updated"
    raise ValueError(f"nothing to write for {action}")


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def stopped(noted: Sequence[int], written: int, total: int) -> str:
    """The failure a signal makes: which one, and when."""
    return f"interrupted by {signal_name(noted[0])} after {written} of {total} writes"


def write_all(client: KestraClient, pending: Sequence[Change], show: Progress, noted: list[int],
               heartbeat: Callable[[], None], sleep: Callable[[float], None] = time.sleep,
               prefixes: tuple[str, ...] = (), parallel: int = 1
               ) -> tuple[dict[int, Outcome], list[int], str | None, set[int]]:
    """Write in order until a failure or a signal: (outcomes, applied indexes, failure, the
    failed indexes that may have landed anyway). Runs of flows go in bulk requests (``bulk``);
    flows that do not depend on one another, up to ``parallel`` at a time (``waves``)."""
    results: dict[int, Outcome] = {}
    applied: list[int] = []
    steps = bulk.plan_steps(client, pending)
    # one by one, each step is a wave of its own: no dependency is worked out for nothing
    for wave in waves(pending, steps) if parallel > 1 else [[step] for step in steps]:
        if len(wave) == 1:
            failure, uncertain = _write_step(client, pending, wave[0], results, applied, sleep,
                                             prefixes, noted)
            for index in wave[0]:
                show(results[index], index + 1, len(pending))
        else:
            failure, uncertain = _write_wave(client, pending, wave, results, applied, show,
                                             noted, heartbeat, parallel)
        if failure is not None:
            return results, applied, failure, uncertain
        if noted:
            return results, applied, stopped(noted, len(applied), len(pending)), set()
        # before the next step, or the inventory: a lease lost or that cannot be kept stops it
        if (failure := _keep(heartbeat)) is not None:
            return results, applied, failure, set()
    return results, applied, None, set()


def _keep(heartbeat: Callable[[], None]) -> str | None:
    """Check (and renew) the lease: the failure that stops the run, if any; a check that cannot
    be made (any error, a bug say) is no proof the lease is still ours."""
    try:
        heartbeat()
    except Exception as exc:  # a signal (a BaseException) is not caught
        return f"keeping the lock failed: {exc}"
    return None


def quiet_progress(progress: Progress | None) -> Progress:
    """``progress`` for people, whose failure (a closed pipe: ``apply ... | head``) never stops
    the writes half way, nor the revert: it is logged, and the run goes on."""
    def show(outcome: Outcome, number: int, total: int) -> None:
        if progress is None:
            return
        try:
            progress(outcome, number, total)
        except Exception as exc:  # a signal (a BaseException) is not caught
            log.debug("showing progress failed: %s", exc)
    return show


def _write_wave(client: KestraClient, pending: Sequence[Change], wave: Sequence[Sequence[int]],
                results: dict[int, Outcome], applied: list[int], show: Progress,
                noted: list[int], heartbeat: Callable[[], None], parallel: int
                ) -> tuple[str | None, set[int]]:
    """Single flow writes with no order between them, ``parallel`` in flight at a time. After a
    failure, a signal or a lost lease nothing more is sent, and the writes in flight are waited
    for (what they did is then known, and reverted with the rest). The lease is checked again
    after every ``parallel`` writes sent, in one of the slots, while the others go on."""
    failure: str | None = None
    uncertain: set[int] = set()
    queue = iter(wave)
    sent_since_check = 0

    def fence() -> tuple[str | None, set[int]]:
        return _keep(heartbeat), set()

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="write") as pool:
        in_flight: dict[Future[tuple[str | None, set[int]]], Sequence[int]] = {}
        while True:
            while failure is None and not noted and len(in_flight) < parallel:
                if sent_since_check >= parallel:
                    in_flight[pool.submit(fence)] = ()
                    sent_since_check = 0
                    continue
                step = next(queue, None)
                if step is None:
                    break
                in_flight[pool.submit(_write_step, client, pending, step, results,
                                      applied)] = step
                sent_since_check += 1
            if not in_flight:
                return failure, uncertain
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                step = in_flight.pop(future)
                failed, landed = future.result()
                uncertain |= landed
                if failed is not None and failure is None:
                    failure = failed
                for index in step:
                    show(results[index], index + 1, len(pending))


def _write_step(client: KestraClient, pending: Sequence[Change], step: Sequence[int],
                results: dict[int, Outcome], applied: list[int],
                sleep: Callable[[float], None] = time.sleep, prefixes: tuple[str, ...] = (),
                noted: Sequence[int] = ()) -> tuple[str | None, set[int]]:
    """One request's worth of changes: (the failure if any, the indexes that may have landed
    though they failed); an error that is not the target's answer (a bug) fails them too, and
    the run still reverts."""
    try:
        return _send_step(client, pending, step, results, applied, sleep, prefixes, noted)
    except Exception as exc:  # a signal (a BaseException) is not caught
        log.exception("writing %s failed", ", ".join(str(pending[i].key) for i in step))
        unsent = [i for i in step if i not in applied]
        for index in unsent:
            results[index] = Outcome(pending[index], Status.FAILED, f"{type(exc).__name__}: {exc}")
        return (f"{pending[step[0]].action.value} {pending[step[0]].key} failed: "
                f"{type(exc).__name__}: {exc}", set(unsent))


def _send_step(client: KestraClient, pending: Sequence[Change], step: Sequence[int],
               results: dict[int, Outcome], applied: list[int], sleep: Callable[[float], None],
               prefixes: tuple[str, ...], noted: Sequence[int]) -> tuple[str | None, set[int]]:
    if len(step) == 1:
        index, change = step[0], pending[step[0]]
        try:
            results[index] = Outcome(change, Status.APPLIED, write_one(client, change))
            applied.append(index)
            return None, set()
        except KestraError as exc:
            results[index] = Outcome(change, Status.FAILED, str(exc))
            log.error("%s %s failed: %s", change.action.value, change.key, exc)
            # the undo looks before it acts: a write that may have landed is undone if it did
            return (f"{change.action.value} {change.key} failed: {exc}",
                    {index} if bulk.maybe_landed(exc) else set())
    what = {"import": "import of", "delete": "deletion of"}.get(
        str(bulk.kind(pending[step[0]])), "upload of")
    objects = f"{len(step)} {'files' if isinstance(pending[step[0]].key, FileKey) else 'flows'}"
    try:
        refused = bulk.write(client, pending, step)
    except KestraError as exc:
        # a bulk request stopped half way, or its answer was lost: any of it may have landed
        for index in step:
            results[index] = Outcome(pending[index], Status.FAILED, str(exc))
        log.error("%s %s failed: %s", what, objects, exc)
        message = f"{what} {objects} failed: {exc}"
        if bulk.still_running(exc):  # the undo must see all the server did
            try:
                settled = bulk.settle(client, [pending[i] for i in step], prefixes, sleep,
                                      stop=lambda: bool(noted))
            except KestraError as again:
                log.warning("reading the target after the failed %s %s failed: %s", what,
                            objects, again)
                settled = False
            if not settled:
                note = ("; the server may still have been carrying it out when the run was "
                        "reverted: check the target with `plan`")
                message += note
                for index in step:
                    results[index] = Outcome(pending[index], Status.FAILED, str(exc) + note)
        return message, set(step)
    for index in step:
        change = pending[index]
        if index in refused:
            results[index] = Outcome(change, Status.FAILED, "the target's import did not take it "
                                     "(its answer gives no reason)")
        else:
            verb = {Action.CREATE: "created", Action.UPDATE: "updated"}.get(change.action,
                                                                            "deleted")
            results[index] = Outcome(change, Status.APPLIED, verb)
            applied.append(index)
    if refused:
        return (f"the target did not import {len(refused)} of {len(step)} flows "
                f"({', '.join(str(pending[i].key) for i in refused[:5])})"), set()
    return None, set()

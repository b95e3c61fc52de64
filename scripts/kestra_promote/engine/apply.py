"""Execute a plan, all or nothing: validate on the target, write in order, record, or revert.

Nothing is written unless the target accepts every flow the plan creates or updates and no
safeguard refuses the plan. If a write fails (after the client's retries), every change already
made in this run is reverted in reverse order (``revert``), and each object's outcome says what
happened. The inventory is written last, only when everything else succeeded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Sequence

from kestra_promote.target import inventory as inv
from kestra_promote.target import bulk, lock, store
from kestra_promote.target.client import KestraClient
from kestra_promote.target.transport import PART_OVERHEAD
from kestra_promote.compare import same_content
from kestra_promote.errors import (
    KestraError,
    PlanRefused,
    StalePlan,
    TargetRejected,
    WindowDenied,
)
from kestra_promote.target.live import read_live_state
from kestra_promote.models import (
    Action,
    ApplyResult,
    Change,
    DesiredFlow,
    FileKey,
    FlowKey,
    Inventory,
    Leftover,
    LiveFlow,
    LiveState,
    Outcome,
    Plan,
    Problem,
    Status,
)
from kestra_promote.engine.plan import live_hashes, refusals
from kestra_promote.engine.revert import read_back, revert_all
from kestra_promote.engine.writes import (
    DEFAULT_PARALLEL,
    Progress,
    quiet_progress,
    signal_name,
    stopped,
    write_all,
)
from kestra_promote.gates.windows import decide

log = logging.getLogger(__name__)



def validate_on_target(
    client: KestraClient, flows: Sequence[DesiredFlow], *, at_least: int = 0
) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) the target's own validation finds in ``flows`` (``at_least``: see
    ``KestraClient.validate_flows``)."""
    if not flows:
        return [], []
    entries = client.validate_flows([(flow.path, flow.source) for flow in flows],
                                    at_least=at_least)
    problems, warnings = [], []
    for flow, entry in zip(flows, entries, strict=True):
        if entry.get("constraints"):
            # "Validation error: " then one "path: message" per line (FlowService.validate)
            text = str(entry["constraints"]).removeprefix("Validation error: ")
            for line in text.splitlines() or [text]:
                if line.strip():
                    problems.append(Problem(line.strip(), flow.path, flow=flow.key))
        for note in entry.get("warnings") or []:
            warnings.append(Problem(f"warning: {note}", flow.path, flow=flow.key))
        for dep in entry.get("deprecationPaths") or []:
            warnings.append(Problem(f"deprecated: {dep}", flow.path, flow=flow.key))
    return problems, warnings


def check_on_target(client: KestraClient, flows: Sequence[DesiredFlow], *,
                    note: str = "", at_least: int = 0) -> list[Problem]:
    """Raise TargetRejected (its message ending with ``note``) unless the target accepts every
    flow; returns the warnings the target reported, if any."""
    problems, warnings = validate_on_target(client, flows, at_least=at_least)
    if problems:
        rejected = len({p.flow for p in problems})
        raise TargetRejected(f"the target rejected {rejected} of {len(flows)} flow(s){note}",
                             problems)
    return warnings


def ensure_valid(client: KestraClient, changes: Sequence[Change], *, at_least: int = 0
                 ) -> list[Problem]:
    """Raise TargetRejected unless the target accepts every flow written by ``changes``; the
    last validation request is at least ``at_least`` bytes (the probe of the largest body).

    Returns the warnings the target reported, if any.
    """
    flows = [
        DesiredFlow(c.key, c.after, c.path or str(c.key))
        for c in changes
        if isinstance(c.key, FlowKey) and c.action in (Action.CREATE, Action.UPDATE)
        and isinstance(c.after, str)
    ]
    return check_on_target(client, flows, note="; nothing was written", at_least=at_least)


def preflight(client: KestraClient, plan: Plan) -> list[Problem]:
    """Everything that refuses a plan before any write: safeguards, objects too large to send,
    the target's own validation of every flow to create or update, and whether the target (or
    a proxy before it) takes the largest body the run will send. Returns the target's warnings."""
    ensure_allowed(plan)
    ensure_fits(plan, client.max_body)
    largest = largest_body(plan, client.max_body, bulk.plan_steps(client, plan.pending))
    warnings = ensure_valid(client, plan.pending, at_least=largest)
    client.probe(largest)  # already done by the validation, unless it had nothing to validate
    return warnings


def _write_size(change: Change) -> int:
    """The body of the request that writes ``change`` (none for a deletion)."""
    if change.action not in (Action.CREATE, Action.UPDATE) or change.after is None:
        return 0
    data = change.after.encode() if isinstance(change.after, str) else change.after
    return len(data) + (PART_OVERHEAD if isinstance(change.key, FileKey) else 0)


def ensure_fits(plan: Plan, limit: int) -> None:
    """Raise PlanRefused when an object is too large to be sent in one request body."""
    problems = [Problem(f"{size} bytes, more than the request body limit of {limit} "
                        "(--max-request-bytes, KESTRA_MAX_REQUEST_BYTES): it cannot be sent",
                        change.path, flow=change.key if isinstance(change.key, FlowKey) else None)
                for change in plan.pending if (size := _write_size(change)) > limit]
    if problems:
        raise PlanRefused(f"{len(problems)} object(s) too large to send; nothing was written",
                          problems)


def largest_body(plan: Plan, limit: int, steps: Sequence[Sequence[int]] = ()) -> int:
    """The largest request body applying ``plan`` sends: a write, a bulk write, or a value of the
    inventory (with a run record as large as any)."""
    sizes = [_write_size(change) for change in plan.pending]
    sizes += [bulk.body_size(plan.pending, step) for step in steps if len(step) > 1]
    if plan.managed_after is not None:
        sample = {"time": "2026-01-01T00:00:00+00:00", "commit": "0" * 40, "trigger": "x" * 64,
                  "result": "applied", "created": 10**6, "updated": 10**6, "deleted": 10**6,
                  "ref": "x" * 200, "dirty": True}
        head, parts = store.to_values(inv.with_run(plan.managed_after, sample), limit)
        sizes += [store.size_of(value) for value in (head, *parts.values())]
    return min(max(sizes, default=0), limit)


def check_windows(plan: Plan, now: datetime, *, override: bool = False) -> tuple[str, ...]:
    """The sync windows' say on applying ``plan`` at ``now``: PlanRefused while they deny it
    (nothing is written), unless ``override``. Returns what goes into the run's history: the
    denial it overrode, if any. A plan that writes nothing is never denied."""
    windows = plan.config.windows if plan.config is not None else ()
    if not windows or (plan.is_empty and plan.managed_after is None):
        return ()
    verdict = decide(windows, now)
    if verdict.allowed:
        return ()
    if not override:
        raise WindowDenied(f"the plan is {verdict.reason}; nothing was written (an explicit "
                          "override promotes anyway, and is recorded in the history)",
                          [Problem(verdict.reason)])
    return (verdict.reason,)


def ensure_allowed(plan: Plan) -> None:
    if plan.refusals:
        raise PlanRefused(
            f"the plan is refused ({len(plan.refusals)} reason(s)); nothing was written",
            [Problem(reason) for reason in plan.refusals],
        )


class Interrupted(KeyboardInterrupt):
    """A signal asked the run to stop (SIGINT, SIGTERM): what was written is reverted first."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _signals_deferred() -> Iterator[list[int]]:
    """While reverting, a further Ctrl-C or SIGTERM is noted, not obeyed: an interrupted revert
    is exactly the half-applied state the revert exists to prevent."""
    noted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda number, frame: noted.append(number))
    try:
        yield noted
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_record(plan: Plan, *, trigger: str, now: datetime, ref: str | None = None
               ) -> dict[str, Any]:
    counts = plan.summary
    record = {"time": now.isoformat(timespec="seconds"), "commit": plan.commit, "trigger": trigger,
              "result": "applied", "created": counts["create"], "updated": counts["update"],
              "deleted": counts["delete"]}
    if ref:
        record["ref"] = ref
    if plan.stage:
        record["stage"] = dict(plan.stage)
    return record


def _after(plan: Plan, record: Mapping[str, Any]) -> Inventory:
    assert plan.managed_after is not None
    return inv.with_run(plan.managed_after, record)


def _restore_inventory(client: KestraClient, plan: Plan, attempted: Inventory) -> None:
    """Put back what the inventory was before ``attempted`` was (maybe partly) written."""
    written = dataclasses.replace(
        attempted, parts=tuple(store.to_values(attempted, client.max_body)[1]))
    if plan.inventory_before is None:
        store.delete(client, plan.scope.state_namespace, plan.name, written)
    else:
        store.write(client, plan.scope.state_namespace, plan.inventory_before, previous=written)


def check_current(plan: Plan, live: LiveState) -> None:
    """Raise StalePlan, naming what changed, unless the target is as the plan saw it."""
    now = live_hashes(live)
    changed = sorted(k for k in set(plan.live_hashes) | set(now)
                     if plan.live_hashes.get(k) != now.get(k))
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        raise StalePlan(f"the target changed since the plan was made ({shown}); nothing was "
                        "written: run plan again")


def _check_befores(plan: Plan, live: LiveState) -> None:
    """Every change replaces exactly what the target holds: a saved plan's "before" is what a
    failed run would restore, and what the safeguards judge (the promotion-flow label)."""
    for change in plan.pending:
        key = change.key
        have = live.flows.get(key) if isinstance(key, FlowKey) else live.files.get(key)
        now = None if have is None else (have.source if isinstance(have, LiveFlow)
                                          else have.content)
        if not same_content(now, change.before):
            raise StalePlan(f"{key}: the target does not hold what the plan says this change "
                            "replaces; nothing was written: run plan again")


def read_scope(client: KestraClient, plan: Plan) -> LiveState:
    """The target as the plan's own reads saw it: the same requests, read again."""
    scope = plan.scope
    known = {inv.kv_key(plan.name): plan.inventory_before} if plan.inventory_before else {}
    return read_live_state(client, scope.flow_prefixes, scope.file_namespaces,
                           state_namespace=scope.state_namespace, name=plan.name, known=known)


def _inventory_unchanged(client: KestraClient, plan: Plan) -> Inventory | None:
    """Refuse to overwrite an inventory another run wrote since the plan (read right before);
    returns it, as stored."""
    current = store.read(client, plan.scope.state_namespace, inv.kv_key(plan.name),
                         plan.inventory_before)
    if current != plan.inventory_before:
        raise KestraError(f"the inventory {inv.kv_key(plan.name)} was changed by another run "
                          "since the plan was made: not overwritten; plan again")
    return current


def apply_plan(
    client: KestraClient, plan: Plan, *, on_progress: Progress | None = None,
    trigger: str = "cli", ref: str | None = None, now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep, extra: Mapping[str, Any] | None = None,
    checked: Sequence[Problem] | None = None, heartbeat: Callable[[], None] | None = None,
    parallel: int = DEFAULT_PARALLEL,
) -> ApplyResult:
    """Validate, check the target did not change since the plan, then perform every pending
    change in order; all of them, or none. ``extra`` goes into the run's history record;
    ``checked``: the warnings of a ``preflight`` already done for this plan; ``parallel``: how
    many independent flow writes may be in flight at once."""
    pending = plan.pending
    warnings = checked if checked is not None else preflight(client, plan)
    if pending or plan.managed_after is not None:
        # an edit made on the target between the plan and now (in the UI, say) would be
        # overwritten unseen, and reverted to plan-time content on a failure: look again
        live = read_scope(client, plan)
        check_current(plan, live)
        _check_befores(plan, live)
        if plan.config is not None:  # and the safeguards, against the target as it is now
            ensure_allowed(dataclasses.replace(plan, refusals=tuple(refusals(
                plan.changes, source_empty=plan.source_objects == 0, config=plan.config,
                others=live.others, own=live.inventory))))
    show = quiet_progress(on_progress)
    if heartbeat is not None and (pending or plan.managed_after is not None):
        heartbeat()  # the lease is still ours (LeaseLost if not): then nothing was written
    # from the first write to the end of the revert, Ctrl-C and SIGTERM are noted, not obeyed:
    # the write in flight finishes, then the run stops and undoes what it wrote, and says so
    with _signals_deferred() as noted:
        results, applied, failure, uncertain = write_all(client, pending, show, noted,
                                                          heartbeat or (lambda: None), sleep,
                                                          plan.scope.flow_prefixes, parallel)
        interrupted = signal_name(noted[0]) if noted else ""
        inventory_status: Status | None = None
        inventory_message = ""
        if plan.managed_after is not None:
            if failure:
                inventory_status, inventory_message = Status.SKIPPED, (
                    "not written: the run was interrupted" if _by_signal(failure) else
                    "not written: the run failed")
            else:
                record = {**run_record(plan, trigger=trigger, ref=ref,
                                       now=now or datetime.now(timezone.utc)), **(extra or {})}
                inventory_status, inventory_message, failure = _record(client, plan, record)
                if noted and failure is None:  # the signal came with the last write: still stop
                    failure = (stopped(noted, len(applied), len(pending))
                               + " (while recording the inventory)")
                    inventory_status, inventory_message = Status.FAILED, failure
                    try:
                        _restore_inventory(client, plan, _after(plan, record))
                    except KestraError as again:
                        inventory_status = Status.NOT_REVERTED
                        inventory_message += f"; restoring the previous inventory failed: {again}"
                interrupted = signal_name(noted[0]) if noted else ""
        error = _cause(failure, results) if failure else ""
        skipped = "not attempted: " + _why_not(failure, results)
        leftovers: tuple[Leftover, ...] = ()
        if failure:
            revert_all(client, results, applied, uncertain, show, sleep,
                       plan.scope.flow_prefixes)
            # "rolled back" only when true: a request the server goes on with may have
            # changed the target after the undo read it
            leftovers = read_back(client, pending, results, plan.scope.flow_prefixes)
            if inventory_status is Status.NOT_REVERTED and _inventory_as_before(client, plan):
                inventory_status = Status.FAILED
                inventory_message += "; read back, it holds the previous inventory"
    outcomes = [results.get(i) or Outcome(c, Status.SKIPPED, skipped)
                for i, c in enumerate(pending)]
    return ApplyResult(plan=plan, outcomes=tuple(outcomes), warnings=tuple(warnings),
                       inventory=inventory_status, inventory_message=inventory_message,
                       interrupted=interrupted, error=error, leftovers=leftovers)


def _inventory_as_before(client: KestraClient, plan: Plan) -> bool:
    """Whether the target holds the inventory it held before the run (read back)."""
    try:
        return store.read(client, plan.scope.state_namespace, inv.kv_key(plan.name),
                          plan.inventory_before) == plan.inventory_before
    except KestraError:
        return False


def _by_signal(failure: str) -> bool:
    return failure.startswith("interrupted by ")


def _why_not(failure: str | None, results: Mapping[int, Outcome]) -> str:
    """Why the changes after the failure were not attempted."""
    if failure is None:
        return ""
    if _by_signal(failure):
        return "interrupted"
    if any(outcome.status is Status.FAILED for outcome in results.values()):
        return "an earlier write failed"
    return failure.partition(": ")[0]  # keeping the lock failed, say


def _cause(failure: str, results: Mapping[int, Outcome]) -> str:
    """What made the run fail, in a few words: the first change that failed, else the failure
    without its details (the inventory, the lease, a signal)."""
    failed = next((results[i] for i in sorted(results) if results[i].status is Status.FAILED),
                  None)
    if failed is not None and not _by_signal(failure):
        return f"{failed.change.action.value} {failed.change.key} failed"
    return failure.partition(": ")[0]



def _record(client: KestraClient, plan: Plan, record: Mapping[str, Any]
            ) -> tuple[Status, str, str | None]:
    """Write the inventory, last: (status, message, failure if any)."""
    try:
        current = _inventory_unchanged(client, plan)
    except KestraError as exc:  # not written: nothing of ours to put back there
        return Status.FAILED, str(exc), f"writing the inventory failed: {exc}"
    after = _after(plan, record)
    try:
        store.write(client, plan.scope.state_namespace, after, previous=current)
        return Status.APPLIED, "", None
    except KestraError as exc:
        status, message = Status.FAILED, str(exc)
        try:  # the write may have landed before the error: put the old one back
            _restore_inventory(client, plan, after)
        except KestraError as again:
            status = Status.NOT_REVERTED
            message += f"; restoring the previous inventory failed: {again}"
        return status, message, f"writing the inventory failed: {exc}"


def apply_locked(
    client: KestraClient, plan: Plan, *, replan: Callable[[], Plan] | None = None,
    on_replan: Callable[[Plan], None] | None = None, holder: str,
    lock_wait: float = lock.DEFAULT_WAIT, gate: Callable[[Plan], None] | None = None,
    **options: Any,
) -> tuple[Plan, ApplyResult]:
    """``apply_plan`` under the target's lease (when there is anything to write), planning once
    more with ``replan`` when the target changed since ``plan`` was made: another run, or an edit
    in the UI, is then seen (as drift, say) before anything is written. Returns the plan applied.
    """
    checked = preflight(client, plan)  # a refused or invalid plan never takes the lease
    if plan.is_empty:
        return plan, apply_plan(client, plan, checked=checked, **options)
    namespace = plan.scope.state_namespace
    with lock.held(client, namespace, holder, wait=lock_wait) as lease:
        # ``gate`` (the sync windows) is asked again once the lease is held: waiting for
        # another run may have taken the run into a window that denies it
        if gate is not None:
            gate(plan)
        options["heartbeat"] = lock.Keeper(client, namespace, lease)
        try:
            return plan, apply_plan(client, plan, checked=checked, **options)
        except StalePlan:
            if replan is None:
                raise
            plan = replan()
            if on_replan is not None:
                on_replan(plan)
            if gate is not None:
                gate(plan)
            return plan, apply_plan(client, plan, **options)

"""Execute a plan, all or nothing: validate on the target, write in order, record, or revert.

Nothing is written unless the target accepts every flow the plan creates or updates and no
safeguard refuses the plan. If a write fails (after the client's retries), every change already
made in this run is reverted in reverse order, and each object's outcome says what happened.
The inventory is written last, only when everything else succeeded.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from . import inventory as inv
from .client import KestraClient
from .errors import (
    ApiError,
    KestraError,
    NotFound,
    PlanRefused,
    TargetRejected,
    TransportError,
    is_already_exists,
)
from .models import (
    Action,
    ApplyResult,
    Change,
    DesiredFlow,
    FileKey,
    FlowKey,
    Outcome,
    Plan,
    Problem,
    Status,
)

log = logging.getLogger(__name__)

Progress = Callable[[Outcome, int, int], None]  # (outcome, number, total); number 0 = a revert


def validate_on_target(
    client: KestraClient, flows: Sequence[DesiredFlow]
) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) the target's own validation finds in ``flows``."""
    if not flows:
        return [], []
    entries = client.validate_flows([(flow.path, flow.source) for flow in flows])
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
                    note: str = "") -> list[Problem]:
    """Raise TargetRejected (its message ending with ``note``) unless the target accepts every
    flow; returns the warnings the target reported, if any."""
    problems, warnings = validate_on_target(client, flows)
    if problems:
        rejected = len({p.flow for p in problems})
        raise TargetRejected(f"the target rejected {rejected} of {len(flows)} flow(s){note}",
                             problems)
    return warnings


def ensure_valid(client: KestraClient, changes: Sequence[Change]) -> list[Problem]:
    """Raise TargetRejected unless the target accepts every flow written by ``changes``.

    Returns the warnings the target reported, if any.
    """
    flows = [
        DesiredFlow(c.key, c.after, c.path or str(c.key))
        for c in changes
        if isinstance(c.key, FlowKey) and c.action in (Action.CREATE, Action.UPDATE)
        and isinstance(c.after, str)
    ]
    return check_on_target(client, flows, note="; nothing was written")


def ensure_allowed(plan: Plan) -> None:
    if plan.refusals:
        raise PlanRefused(
            f"the plan is refused ({len(plan.refusals)} reason(s)); nothing was written",
            [Problem(reason) for reason in plan.refusals],
        )


def _write(client: KestraClient, change: Change) -> str:
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


def _revert(client: KestraClient, change: Change) -> None:
    """Undo one applied change: put back what the target held before it."""
    key, before = change.key, change.before
    if isinstance(key, FileKey):
        if change.action is Action.CREATE:
            client.delete_namespace_file(key.namespace, key.path)
        else:
            assert isinstance(before, bytes)
            client.upload_namespace_file(key.namespace, key.path, before)
    elif change.action is Action.CREATE:
        client.delete_flow(key.namespace, key.id)
    elif change.action is Action.UPDATE:
        assert isinstance(before, str)
        client.update_flow(key.namespace, key.id, before)
    else:
        assert isinstance(before, str)
        client.create_flow(before)


def _revert_if_landed(client: KestraClient, change: Change) -> None:
    """Undo a write whose outcome is unknown: "not found" or "exists" means it never landed."""
    try:
        _revert(client, change)
    except ApiError as exc:
        if exc.status != 404 and not is_already_exists(exc):
            raise


def run_record(plan: Plan, *, trigger: str, now: datetime, ref: str | None = None
               ) -> dict[str, Any]:
    counts = plan.summary
    record = {"time": now.isoformat(timespec="seconds"), "commit": plan.commit, "trigger": trigger,
              "result": "applied", "created": counts["create"], "updated": counts["update"],
              "deleted": counts["delete"]}
    if ref:
        record["ref"] = ref
    return record


def _write_inventory(client: KestraClient, plan: Plan, record: dict[str, Any]) -> None:
    assert plan.managed_after is not None
    value = inv.to_json(inv.with_run(plan.managed_after, record))
    client.kv_put(plan.scope.state_namespace, inv.kv_key(plan.name), value,
                  description=f"kestra-promote inventory of {plan.name!r}")


def _restore_inventory(client: KestraClient, plan: Plan) -> None:
    key = inv.kv_key(plan.name)
    if plan.inventory_before is None:
        client.kv_delete(plan.scope.state_namespace, key)  # false when already gone: fine
    else:
        client.kv_put(plan.scope.state_namespace, key, inv.to_json(plan.inventory_before),
                      description=f"kestra-promote inventory of {plan.name!r}")


def apply_plan(
    client: KestraClient, plan: Plan, *, on_progress: Progress | None = None,
    trigger: str = "cli", ref: str | None = None, now: datetime | None = None,
) -> ApplyResult:
    """Validate, then perform every pending change in order; all of them, or none."""
    ensure_allowed(plan)
    pending = plan.pending
    warnings = ensure_valid(client, pending)
    show = on_progress or (lambda outcome, number, total: None)
    results: dict[int, Outcome] = {}
    applied: list[int] = []
    failure: str | None = None
    uncertain = False
    for index, change in enumerate(pending):
        try:
            results[index] = Outcome(change, Status.APPLIED, _write(client, change))
            applied.append(index)
        except KestraError as exc:
            failure = f"{change.action.value} {change.key} failed: {exc}"
            # no answer, or a server error: the write may have happened anyway
            uncertain = isinstance(exc, TransportError) or (
                isinstance(exc, ApiError) and exc.status >= 500)
            results[index] = Outcome(change, Status.FAILED, str(exc))
            log.error("%s", failure)
        show(results[index], index + 1, len(pending))
        if failure:
            break
    inventory_status: Status | None = None
    inventory_message = ""
    if plan.managed_after is not None:
        if failure:
            inventory_status, inventory_message = Status.SKIPPED, "not written: the run failed"
        else:
            record = run_record(plan, trigger=trigger, ref=ref, now=now or datetime.now(timezone.utc))
            try:
                _write_inventory(client, plan, record)
                inventory_status = Status.APPLIED
            except KestraError as exc:
                failure = f"writing the inventory failed: {exc}"
                inventory_status, inventory_message = Status.FAILED, str(exc)
                try:  # the write may have landed before the error: put the old one back
                    _restore_inventory(client, plan)
                except KestraError as again:
                    inventory_status = Status.NOT_REVERTED
                    inventory_message += f"; restoring the previous inventory failed: {again}"
    if failure:
        failed_at = next((i for i, o in results.items() if o.status is Status.FAILED), None)
        if failed_at is not None and uncertain:
            # the failed write may have landed before its answer was lost: undo it too
            change = results[failed_at].change
            try:
                _revert_if_landed(client, change)
            except KestraError as exc:
                results[failed_at] = Outcome(change, Status.NOT_REVERTED,
                                             f"{results[failed_at].message}; it may have landed, "
                                             f"and undoing it failed: {exc}")
        for index in reversed(applied):
            change = results[index].change
            try:
                _revert(client, change)
                results[index] = Outcome(change, Status.REVERTED,
                                         f"{results[index].message}, then reverted")
            except KestraError as exc:
                results[index] = Outcome(change, Status.NOT_REVERTED,
                                         f"{results[index].message}, and reverting failed: {exc}")
                log.error("reverting %s %s failed: %s", change.action.value, change.key, exc)
            show(results[index], 0, len(applied))
    outcomes = [results.get(i) or Outcome(c, Status.SKIPPED, "not attempted: an earlier write failed")
                for i, c in enumerate(pending)]
    return ApplyResult(plan=plan, outcomes=tuple(outcomes), warnings=tuple(warnings),
                       inventory=inventory_status, inventory_message=inventory_message)

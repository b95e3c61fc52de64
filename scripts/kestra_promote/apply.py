"""Execute a plan: validate on the target first, then write in the plan's order.

Nothing is written unless the target accepts every flow the plan creates or updates. The
per-change outcomes are returned as data (ApplyResult); the caller decides how to show them.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

from .client import KestraClient
from .errors import ApiError, KestraError, TargetRejected, is_already_exists
from .models import (
    Action,
    ApplyResult,
    Change,
    DesiredFlow,
    Outcome,
    Plan,
    Problem,
    Status,
)

log = logging.getLogger(__name__)

Progress = Callable[[int, int, Outcome], None]


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
            for line in str(entry["constraints"]).splitlines() or [str(entry["constraints"])]:
                problems.append(Problem(line.strip(), flow.path, flow=flow.key))
        for note in entry.get("warnings") or []:
            warnings.append(Problem(f"warning: {note}", flow.path, flow=flow.key))
        for dep in entry.get("deprecationPaths") or []:
            warnings.append(Problem(f"deprecated: {dep}", flow.path, flow=flow.key))
    return problems, warnings


def ensure_valid(client: KestraClient, changes: Sequence[Change]) -> list[Problem]:
    """Raise TargetRejected unless the target accepts every flow written by ``changes``.

    Returns the warnings the target reported, if any.
    """
    flows = [
        DesiredFlow(c.key, c.after, c.path or str(c.key))
        for c in changes
        if c.action in (Action.CREATE, Action.UPDATE) and c.after is not None
    ]
    problems, warnings = validate_on_target(client, flows)
    if problems:
        rejected = len({p.flow for p in problems})
        raise TargetRejected(
            f"the target rejected {rejected} of {len(flows)} flow(s); nothing was written", problems
        )
    return warnings


def _write(client: KestraClient, change: Change) -> str:
    ns, flow_id = change.key.namespace, change.key.id
    if change.action is Action.CREATE:
        assert change.after is not None
        try:
            client.create_flow(change.after)
        except ApiError as exc:
            if is_already_exists(exc):
                raise KestraError(
                    f"{change.key} was created on the target after the plan was made; plan again"
                ) from exc
            raise
        return "created"
    if change.action is Action.UPDATE:
        assert change.after is not None
        client.update_flow(ns, flow_id, change.after)
        return "updated"
    if change.action is Action.DELETE:
        client.delete_flow(ns, flow_id)
        return "deleted"
    raise ValueError(f"nothing to write for {change.action}")


def apply_plan(
    client: KestraClient, plan: Plan, *, on_progress: Progress | None = None
) -> ApplyResult:
    """Validate, then perform every pending change in order; stop at the first failure."""
    pending = plan.pending
    warnings = ensure_valid(client, pending)
    outcomes: list[Outcome] = []
    failed = False
    for number, change in enumerate(pending, start=1):
        if failed:
            outcome = Outcome(change, Status.SKIPPED, "not attempted: an earlier write failed")
        else:
            try:
                outcome = Outcome(change, Status.APPLIED, _write(client, change))
            except KestraError as exc:
                failed = True
                outcome = Outcome(change, Status.FAILED, str(exc))
                log.error("%s %s failed: %s", change.action.value, change.key, exc)
        outcomes.append(outcome)
        if on_progress is not None:
            on_progress(number, len(pending), outcome)
    return ApplyResult(plan=plan, outcomes=tuple(outcomes), warnings=tuple(warnings))

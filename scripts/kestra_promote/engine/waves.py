"""Which writes may be sent at the same time: waves of independent flow writes.

A plan's writes are in a safe order (files, then each flow after the flows it calls or listens
to). Kestra 2.0 takes one request per flow written, so over a real network the wall time of a
large apply is its number of round trips. Flows that do not depend on one another need no order
between them: within a run of single flow writes, a flow goes in the wave after the last flow it
depends on, so every wave can be sent at once and the waves still keep the plan's order where it
matters. Anything else (a bulk request, a file, a deletion) is a wave of its own, in place.

Pure: the caller sends each wave (``engine.apply``).
"""

from __future__ import annotations

from typing import Sequence

from kestra_promote.flows.desired import dependencies_of
from kestra_promote.models import Action, Change, DesiredFlow, FlowKey

Step = list[int]  # the indexes of the pending changes one request writes


def _flow_write(pending: Sequence[Change], step: Step) -> bool:
    """A step that creates or updates one flow, alone in its request."""
    if len(step) != 1:
        return False
    change = pending[step[0]]
    return (isinstance(change.key, FlowKey) and change.action in (Action.CREATE, Action.UPDATE)
            and isinstance(change.after, str))


def waves(pending: Sequence[Change], steps: Sequence[Step]) -> list[list[Step]]:
    """``steps`` grouped into waves: the steps of one wave may be sent together, and each wave
    only after the one before it is done."""
    grouped: list[list[Step]] = []
    run: list[Step] = []

    def close_run() -> None:
        levels: dict[FlowKey, int] = {}
        by_level: dict[int, list[Step]] = {}
        for step in run:
            change = pending[step[0]]
            assert isinstance(change.key, FlowKey) and isinstance(change.after, str)
            needs = change.needs if change.needs is not None else \
                dependencies_of(DesiredFlow(change.key, change.after, change.path or ""))
            # a dependency written earlier in this run sets the wave; one written later can
            # only be a cycle, which the plan already ordered by name: it follows this flow
            level = max((levels[key] + 1 for key in needs if key in levels), default=0)
            levels[change.key] = level
            by_level.setdefault(level, []).append(step)
        grouped.extend(by_level[level] for level in sorted(by_level))
        run.clear()

    for step in steps:
        if _flow_write(pending, step):
            run.append(step)
            continue
        if run:
            close_run()
        grouped.append([step])
    if run:
        close_run()
    return grouped

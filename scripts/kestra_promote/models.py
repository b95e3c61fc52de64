"""Plain records shared by every module: flows, problems, plans and apply outcomes.

All are frozen dataclasses; derived values (totals, emptiness) are computed in one place, here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True, order=True)
class FlowKey:
    """A flow's identity on a Kestra instance (per tenant)."""

    namespace: str
    id: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.id}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located as precisely as we can."""

    message: str
    path: str | None = None
    line: int | None = None
    column: int | None = None
    flow: FlowKey | None = None

    def __str__(self) -> str:
        where = self.path or ""
        if where and self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        parts = [p for p in (where, str(self.flow) if self.flow else "") if p]
        return ": ".join([*parts, self.message])

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "namespace": self.flow.namespace if self.flow else None,
            "id": self.flow.id if self.flow else None,
            "message": self.message,
        }


@dataclass(frozen=True)
class DesiredFlow:
    """A flow as Git wants it: its source text exactly as it will be sent."""

    key: FlowKey
    source: str
    path: str  # relative to the source folder, with forward slashes


@dataclass(frozen=True)
class Source:
    """Everything read from a source folder (a Git checkout)."""

    root: str
    flows: Mapping[FlowKey, DesiredFlow]
    commit: str | None = None


@dataclass(frozen=True)
class LiveFlow:
    """A flow as the target holds it now."""

    key: FlowKey
    source: str


@dataclass(frozen=True)
class LiveState:
    """The target's flows under the namespace prefixes that were read."""

    flows: Mapping[FlowKey, LiveFlow]
    prefixes: tuple[str, ...] = ()


class Action(str, enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"


class Reason(str, enum.Enum):
    NEW_IN_GIT = "new in Git"
    CHANGED_IN_GIT = "source differs from the target"
    IN_SYNC = "matches Git"
    LEFT_GIT = "no longer in Git"


@dataclass(frozen=True)
class Change:
    """What the plan does to one object, and why."""

    key: FlowKey
    action: Action
    reason: Reason
    before: str | None = None  # live source, if any
    after: str | None = None  # desired source, if any
    path: str | None = None  # file in Git
    diff: str = ""  # unified diff of before -> after, for updates
    kind: str = "flow"

    @property
    def writes(self) -> bool:
        return self.action is not Action.UNCHANGED


@dataclass(frozen=True)
class Plan:
    """The ordered changes that make the target match Git, computed without side effects."""

    changes: tuple[Change, ...]
    commit: str | None = None
    live_fingerprint: str = ""

    @property
    def pending(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.writes)

    @property
    def is_empty(self) -> bool:
        return not self.pending

    @property
    def summary(self) -> dict[str, int]:
        counts = {action.value: 0 for action in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        return counts


class Status(str, enum.Enum):
    APPLIED = "applied"
    FAILED = "failed"
    SKIPPED = "skipped"  # not attempted because an earlier write failed


@dataclass(frozen=True)
class Outcome:
    change: Change
    status: Status
    message: str = ""


@dataclass(frozen=True)
class ApplyResult:
    """One outcome per pending change, in the order they were attempted."""

    plan: Plan
    outcomes: tuple[Outcome, ...] = field(default_factory=tuple)
    warnings: tuple[Problem, ...] = field(default_factory=tuple)  # from the target's validation

    @property
    def ok(self) -> bool:
        return all(o.status is Status.APPLIED for o in self.outcomes)

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

"""Plain records shared by every module: objects, problems, inventories, plans and outcomes.

All are frozen dataclasses; derived values (totals, emptiness) are computed in one place, here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

from kestra_promote.config import Config
from kestra_promote.keys import FileKey, FlowKey, ObjectKey, Problem, sort_key  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class DesiredFlow:
    """A flow as Git wants it: its source text exactly as it will be sent."""

    key: FlowKey
    source: str
    path: str  # file in the source folder, with forward slashes
    # the file's text as Git holds it, under the settings that transformed it (see
    # ``desired.origin_hash``); None when it had warnings, which are worked out again each run
    origin: str | None = None


@dataclass(frozen=True)
class KnownFile:
    """A flow file whose text the inventory already knows (its ``origin``): not parsed, since
    what it gives is recorded (see ``desired.resolve``)."""

    path: str
    text: str
    origin: str


@dataclass(frozen=True)
class DesiredFile:
    """A namespace file as Git wants it."""

    key: FileKey
    content: bytes
    path: str  # file in the source folder


@dataclass(frozen=True)
class LiveFlow:
    key: FlowKey
    source: str


@dataclass(frozen=True)
class LiveFile:
    key: FileKey
    content: bytes


@dataclass(frozen=True)
class Managed:
    """What the inventory records of one object: the hash of what was deployed, and from where
    (the commit is the run's, in the history)."""

    hash: str
    path: str | None = None  # the file it was promoted from
    source: str | None = None  # for flows: DesiredFlow.origin, so an unchanged file is not parsed


@dataclass(frozen=True)
class Inventory:
    """What one promotion source manages on a target, and its recent runs."""

    name: str
    flows: Mapping[FlowKey, Managed] = field(default_factory=dict)
    files: Mapping[FileKey, Managed] = field(default_factory=dict)
    history: tuple[Mapping[str, Any], ...] = ()
    origin: str | None = None  # the repository (and folder) its objects are promoted from
    # where it is stored, when in parts (see ``store``): not part of what it says
    parts: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def managed(self, key: ObjectKey) -> Managed | None:
        table: Mapping[Any, Managed] = self.flows if isinstance(key, FlowKey) else self.files
        return table.get(key)


@dataclass(frozen=True)
class Scope:
    """What part of the target a plan read: flows under these prefixes, files of these namespaces."""

    flow_prefixes: tuple[str, ...] = ()
    file_namespaces: tuple[str, ...] = ()
    state_namespace: str = "system"


@dataclass(frozen=True)
class LiveState:
    """The target as read: flows and files in scope, this source's and other sources' inventories."""

    flows: Mapping[FlowKey, LiveFlow] = field(default_factory=dict)
    files: Mapping[FileKey, LiveFile] = field(default_factory=dict)
    inventory: Inventory | None = None
    others: Mapping[str, Inventory] = field(default_factory=dict)
    scope: Scope = field(default_factory=Scope)


class Action(str, enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"
    DRIFTED = "drifted"  # edited on the target since the last promotion, and left as it is
    ORPHANED = "orphaned"  # managed, no longer in Git, kept because prune is off
    UNMANAGED = "unmanaged"  # on the target only, never ours: reported, never touched
    RELEASED = "released"  # managed until now, outside the settings' scope: no longer ours, kept


WRITES = frozenset({Action.CREATE, Action.UPDATE, Action.DELETE})


class Reason(str, enum.Enum):
    NEW_IN_GIT = "new in Git"
    CHANGED_IN_GIT = "source differs from the target"
    IN_SYNC = "matches Git"
    LEFT_GIT = "no longer in Git"
    DRIFT_OVERWRITTEN = "edited on the target since the last promotion; Git wins (drift: overwrite)"
    DRIFT_KEPT = "edited on the target since the last promotion; kept (drift: keep)"
    DRIFT_REFUSED = "edited on the target since the last promotion (drift: fail)"
    PRUNE_OFF = "no longer in Git; would delete (pass --prune)"
    NOT_MANAGED = "on the target only; not managed by this source"
    LEFT_GIT_DRIFTED = ("no longer in Git, and edited on the target since the last promotion; "
                        "deleted (drift: overwrite)")
    LEFT_GIT_DRIFT_KEPT = ("no longer in Git, but edited on the target since the last promotion; "
                           "kept (drift: keep)")
    LEFT_GIT_DRIFT_REFUSED = ("no longer in Git, but edited on the target since the last "
                              "promotion (drift: fail)")
    LEFT_SCOPE = ("outside namespaces.include now: released from management, left on the target "
                  "as it is")


@dataclass(frozen=True)
class Change:
    """What the plan does to one object, and why."""

    key: ObjectKey
    action: Action
    reason: Reason
    before: str | bytes | None = None  # live content, if any
    after: str | bytes | None = None  # desired content, if any
    path: str | None = None  # file in Git
    diff: str = ""  # unified diff of before -> after (text only)
    # a written flow's dependencies (the flows it calls or listens to), as the plan found them
    # when it ordered the writes; None when not known (a saved plan: worked out again)
    needs: frozenset[FlowKey] | None = field(default=None, compare=False)

    @property
    def kind(self) -> str:
        return self.key.kind

    @property
    def writes(self) -> bool:
        return self.action in WRITES


@dataclass(frozen=True)
class Plan:
    """The ordered changes that make the target match Git, computed without side effects.

    ``changes`` holds the writes first, in the order they must happen, then everything else.
    ``managed_after`` is the inventory's new content when it must be written, else None.
    ``refusals`` are reasons not to apply this plan at all (prune safeguards, drift, conflicts).
    """

    changes: tuple[Change, ...]
    commit: str | None = None
    name: str = "default"
    live_fingerprint: str = ""
    live_hashes: Mapping[str, str] = field(default_factory=dict)
    scope: Scope = field(default_factory=Scope)
    inventory_before: Inventory | None = None
    managed_after: Inventory | None = None
    refusals: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = ()
    # the policies it was planned under, checked again against the target right before writing
    config: Config | None = None
    source_objects: int = 0  # flows and files in the source (an empty one never prunes)
    dirty: bool = False  # planned from files that differ from the commit (--allow-dirty)
    # where the planned source comes from (``git.origin``): whether its inventory is its own
    origin: str | None = field(default=None, compare=False)
    policy: str = ""  # production's policy as planned under, in one line ("" where none is read)
    # its digest ("none": no policy was stored; "": none was read), which a saved plan must
    # still match when it is applied
    policy_digest: str = ""
    # each safeguard's effective value, as shown, and where it came from (policy, repository,
    # policy and repository, default)
    safeguards: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # this instance's stage, when production's policy names a pipeline: ``stage``, and for a
    # stage after the first ``after`` (the previous stage) and ``tag`` (its verification tag)
    stage: Mapping[str, str] = field(default_factory=dict)

    @property
    def pending(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.writes)

    @property
    def is_empty(self) -> bool:
        """Nothing to write at all: no object change and no inventory update."""
        return not self.pending and self.managed_after is None

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
    REVERTED = "reverted"  # applied, then undone after a later failure
    NOT_REVERTED = "not reverted"  # applied, and undoing it failed: needs a look


@dataclass(frozen=True)
class Outcome:
    change: Change
    status: Status
    message: str = ""
    # NOT_REVERTED: what the target held before this run, in full, for a person to restore
    previous: str | bytes | None = None


@dataclass(frozen=True)
class Leftover:
    """An object that, read back after a revert, does not hold what it held before the run."""

    key: ObjectKey
    holds: str  # in words: "what this run wrote", "another version", "nothing", "unknown (...)"
    should_hold: str  # in words: "its previous content", "nothing (it did not exist before ...)"

    @property
    def unknown(self) -> bool:
        """The object could not be read back: it may hold anything."""
        return self.holds.startswith("unknown")


@dataclass(frozen=True)
class CheckResult:
    """One check after an apply (``gates.verification``): a flow run or a soak."""

    check: str  # "run company.smoke", "soak 15m"
    passed: bool
    message: str = ""
    execution: str | None = None  # the execution it started, or the one that failed a soak
    state: str | None = None  # that execution's state
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "passed": self.passed, "message": self.message,
                "execution": self.execution, "state": self.state,
                "seconds": round(self.seconds, 1)}


@dataclass(frozen=True)
class Verification:
    """The checks production's policy ran after an apply, and the rollback a failure led to."""

    checks: tuple[CheckResult, ...]
    on_failure: str = "rollback"  # or hold
    rollback_to: str | None = None  # the commit the target was rolled back to
    rollback: "ApplyResult | None" = None  # that rollback's own apply
    rollback_error: str = ""  # why the target was not (or not fully) rolled back
    notes: tuple[str, ...] = ()  # e.g. the history could not be updated
    marked: str = ""  # the verification tag a stage before another pushed for the commit
    mark_error: str = ""  # why a verified commit could not be marked for the next stage

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def rolled_back(self) -> bool:
        return self.rollback is not None and self.rollback.ok and not self.rollback_error


@dataclass(frozen=True)
class ApplyResult:
    """One outcome per pending change, in the order they were attempted, and the inventory's."""

    plan: Plan
    outcomes: tuple[Outcome, ...] = field(default_factory=tuple)
    warnings: tuple[Problem, ...] = field(default_factory=tuple)  # from the target's validation
    inventory: Status | None = None  # None: no inventory write was needed
    inventory_message: str = ""
    interrupted: str = ""  # the signal that stopped the run ("SIGINT", "SIGTERM"), if any
    error: str = ""  # what made the run fail or stop ("interrupted by SIGTERM after 3 of 9 writes")
    # after a revert, every object of the plan is read back: those not as before the run
    leftovers: tuple[Leftover, ...] = field(default_factory=tuple)
    verification: Verification | None = None  # production's checks after the apply, if any

    @property
    def passed(self) -> bool:
        """Applied, and every check after the apply passed (a rollback is still a failure)."""
        return self.ok and (self.verification is None or (
            self.verification.passed and not self.verification.mark_error))

    @property
    def ok(self) -> bool:
        objects_ok = all(o.status is Status.APPLIED for o in self.outcomes)
        return objects_ok and self.inventory in (None, Status.APPLIED)

    @property
    def rolled_back(self) -> bool:
        """Failed, and the target is as it was: every undo done, and every object read back
        holding what it held before the run."""
        return not self.ok and not self.leftovers and not self.count(Status.NOT_REVERTED) \
            and self.inventory is not Status.NOT_REVERTED

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

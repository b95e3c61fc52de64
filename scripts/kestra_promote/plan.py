"""The planner: desired flows and live flows in, an ordered Plan out. Pure: no I/O, no clock.

Three small steps, each tested on its own: ``normalize`` what the server changes in a stored
source, ``pair`` desired with live by identity, ``diff`` the two texts.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from typing import Iterable, Iterator, Mapping

from .models import Action, Change, DesiredFlow, FlowKey, LiveFlow, Plan, Reason

# Kestra drops a top-level `revision:` line from stored sources and ignores it when comparing.
_REVISION_LINE = re.compile(r"^revision:[^\n]*(?:\n|$)", re.MULTILINE)


def normalize(source: str) -> str:
    """A source as Kestra compares it: line endings unified, any ``revision:`` line removed.

    Everything else (whitespace, comments) is significant: Kestra stores a new revision for it,
    so the plan must show it as a change too.
    """
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    return _REVISION_LINE.sub("", text)


def pair(
    desired: Mapping[FlowKey, DesiredFlow], live: Mapping[FlowKey, LiveFlow]
) -> Iterator[tuple[FlowKey, DesiredFlow | None, LiveFlow | None]]:
    """Every identity present on either side, sorted, with what each side holds."""
    for key in sorted(desired.keys() | live.keys()):
        yield key, desired.get(key), live.get(key)


def diff(before: str, after: str, *, before_name: str, after_name: str) -> str:
    """A unified diff of two sources (normalised), empty when they compare equal."""
    lines = difflib.unified_diff(
        normalize(before).splitlines(keepends=True),
        normalize(after).splitlines(keepends=True),
        fromfile=before_name,
        tofile=after_name,
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)


def fingerprint(live: Iterable[LiveFlow]) -> str:
    """A digest of the live sources a plan was computed against (to detect stale plans)."""
    digest = hashlib.sha256()
    for flow in sorted(live, key=lambda f: f.key):
        digest.update(f"{flow.key}\0{normalize(flow.source)}\0".encode())
    return digest.hexdigest()


def _change(key: FlowKey, want: DesiredFlow, have: LiveFlow | None) -> Change:
    if have is None:
        return Change(key, Action.CREATE, Reason.NEW_IN_GIT, after=want.source, path=want.path)
    if normalize(have.source) == normalize(want.source):
        return Change(key, Action.UNCHANGED, Reason.IN_SYNC, have.source, want.source, want.path)
    text = diff(have.source, want.source, before_name=f"target: {key}", after_name=f"git: {want.path}")
    return Change(key, Action.UPDATE, Reason.CHANGED_IN_GIT, have.source, want.source, want.path, text)


def plan(
    desired: Mapping[FlowKey, DesiredFlow],
    live: Mapping[FlowKey, LiveFlow],
    *,
    commit: str | None = None,
) -> Plan:
    """The changes that make ``live`` hold every flow of ``desired``.

    Live flows that Git does not hold are left alone here: deleting them is an explicit,
    separate decision (prune), never a side effect of a plan.
    """
    changes = tuple(
        _change(key, want, have)
        for key, want, have in pair(desired, live)
        if want is not None
    )
    return Plan(changes=changes, commit=commit, live_fingerprint=fingerprint(live.values()))

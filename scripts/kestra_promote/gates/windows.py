"""Sync windows: when a promotion may write, by cron schedule and duration (Argo CD's model).

While any ``deny`` window is open, promotions are denied; when there are ``allow`` windows,
promotions are denied outside all of them. Everything here is pure: the caller gives the time.
The windows themselves are parsed in ``schedule``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence
from zoneinfo import ZoneInfo

from kestra_promote.schedule import Window


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    window: str | None = None  # the window that decided, if any
    until: datetime | None = None  # when a denial ends, if known


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="minutes") + f" ({zone.key})"


def decide(windows: Sequence[Window], now: datetime) -> Verdict:
    """Whether a promotion may write at ``now`` (an aware datetime)."""
    denying = [(w, end) for w in windows if w.kind == "deny"
               if (end := w.open_until(now)) is not None]
    if denying:
        window, end = max(denying, key=lambda pair: pair[1])
        return Verdict(False, f"denied by window {window.name!r} until {_when(end, window.zone)}",
                       window.name, end)
    allows = [w for w in windows if w.kind == "allow"]
    if not allows:
        return Verdict(True, "no sync window applies")
    for window in allows:
        if (end := window.open_until(now)) is not None:
            return Verdict(True, f"inside allow window {window.name!r} until "
                                 f"{_when(end, window.zone)}", window.name, end)
    upcoming = [(w, start) for w in allows if (start := w.next_opening(now)) is not None]
    if not upcoming:
        return Verdict(False, "outside every allow window, and none opens again")
    window, start = min(upcoming, key=lambda pair: pair[1])
    return Verdict(False, f"outside every allow window; the next, {window.name!r}, opens at "
                          f"{_when(start, window.zone)}", window.name, start)

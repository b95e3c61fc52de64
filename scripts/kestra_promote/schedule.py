"""Sync windows as settings: cron schedules, durations, time zones and the ``Window`` they make.

A window opens at every time its five-field cron schedule matches, in its own time zone, and
stays open for its duration. This module only parses and describes windows, so the settings can
hold them; whether a promotion may write now is decided in ``gates.windows``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

KINDS = ("allow", "deny")
MAX_DURATION = timedelta(days=31)  # an open window is looked for this far back, minute by minute
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_DAYS = "sun mon tue wed thu fri sat".split()
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@hourly": "0 * * * *"}
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")


@dataclass(frozen=True)
class Cron:
    """The minutes, hours, days of the month, months and days of the week (0 = Sunday) a
    schedule matches; ``any_day``: whether days of the month or of the week were restricted."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week  # as cron does: either one
        return in_month and in_week

    def matches(self, moment: datetime) -> bool:
        """Whether the schedule fires at ``moment``'s minute (its own wall-clock time)."""
        return moment.minute in self.minutes and moment.hour in self.hours and \
            self.matches_day(moment.date())


def _field(text: str, low: int, high: int, names: Sequence[str] = ()) -> tuple[frozenset[int], bool]:
    """One cron field: ``*``, ``n``, ``a-b``, with ``/step``, comma-separated; names allowed."""
    values: set[int] = set()

    def number(word: str) -> int:
        word = word.lower()
        if word in names:
            return names.index(word) + (low if low == 1 else 0)
        if not (word.isascii() and word.isdigit()):
            raise ValueError(f"{word!r} is not a number")
        return int(word)

    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = int(step_text) if step_text.isascii() and step_text.isdigit() and \
            int(step_text) > 0 else None
        if slash and step is None:
            raise ValueError(f"step {step_text!r} must be a whole number above 0")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = number(first), number(last)
        else:
            start = end = number(base)
            if step is not None:
                end = high
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ValueError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step or 1))
    return frozenset(values), text != "*" and not text.startswith("*/")


def parse_cron(text: str) -> Cron:
    """A five-field cron schedule (minute hour day-of-month month day-of-week), or a macro such
    as ``@daily``; ValueError saying what is wrong."""
    fields = _MACROS.get(text.strip().lower(), text).split()
    if len(fields) != 5:
        raise ValueError(f"{text!r} must have five fields (minute hour day-of-month month "
                         "day-of-week), or be one of " + ", ".join(_MACROS))
    names = ("minute", "hour", "day of the month", "month", "day of the week")
    parsed = []
    for value, name, (low, high, words) in zip(fields, names, (
            (0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, _MONTHS), (0, 7, _DAYS))):
        try:
            parsed.append(_field(value, low, high, words))
        except ValueError as exc:
            raise ValueError(f"{text!r}: {name}: {exc}") from None
    weekdays = frozenset(d % 7 for d in parsed[4][0])  # 7 is Sunday too
    return Cron(text, parsed[0][0], parsed[1][0], parsed[2][0], parsed[3][0], weekdays,
                parsed[2][1], parsed[4][1])


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``1d12h``...: a duration above zero, at most 31 days."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not a duration such as 30m, 2h, 1d12h")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    if max(days, hours, minutes) > 100_000:  # beyond what a timedelta holds, far beyond 31 days
        raise ValueError(f"{text!r} must be above zero and at most 31 days")
    duration = timedelta(days=days, hours=hours, minutes=minutes)
    if not timedelta(0) < duration <= MAX_DURATION:
        raise ValueError(f"{text!r} must be above zero and at most 31 days")
    return duration


def parse_zone(text: str) -> ZoneInfo:
    if text.lower() in ("localtime", "posixrules", "factory") or text.startswith(("/", ".")):
        # the machine's own zone would make the schedule depend on where the run happens
        raise ValueError(f"{text!r} is not a time zone name such as UTC or Europe/Paris")
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{text!r} is not a time zone name such as UTC or Europe/Paris") from None


@dataclass(frozen=True)
class Window:
    name: str
    kind: str  # allow or deny
    schedule: Cron
    duration: timedelta
    zone: ZoneInfo

    def to_json(self) -> dict[str, str]:
        minutes = int(self.duration.total_seconds() // 60)
        return {"name": self.name, "kind": self.kind, "schedule": self.schedule.text,
                "duration": f"{minutes}m", "timezone": self.zone.key}

    @classmethod
    def from_json(cls, value: dict[str, str]) -> Window:
        """A window as ``to_json`` wrote it; ValueError when it is not one."""
        if value.get("kind") not in KINDS:
            raise ValueError(f"window kind {value.get('kind')!r} must be allow or deny")
        return cls(str(value["name"]), str(value["kind"]), parse_cron(str(value["schedule"])),
                   parse_duration(str(value["duration"])), parse_zone(str(value["timezone"])))

    def open_until(self, now: datetime) -> datetime | None:
        """When the opening that covers ``now`` closes (the latest, if several overlap); None
        when the window is closed at ``now``."""
        start = now.astimezone(timezone.utc).replace(second=0, microsecond=0)
        latest = None
        minute = timedelta(minutes=1)
        moment = start
        while now - moment < self.duration:
            if self.schedule.matches(moment.astimezone(self.zone)):
                end = moment + self.duration
                if end > now and (latest is None or end > latest):
                    latest = end
            moment -= minute
        return latest

    def next_opening(self, now: datetime, horizon_days: int = 366 * 4) -> datetime | None:
        """The first time after ``now`` the window opens (None within about four years)."""
        local = now.astimezone(self.zone)
        for offset in range(horizon_days + 1):
            day = local.date() + timedelta(days=offset)
            if not self.schedule.matches_day(day):
                continue
            for hour in sorted(self.schedule.hours):
                for minute in sorted(self.schedule.minutes):
                    # a wall-clock time daylight saving repeats happens twice (fold 0, then 1)
                    for fold in (0, 1):
                        candidate = datetime(day.year, day.month, day.day, hour, minute,
                                             tzinfo=self.zone, fold=fold)
                        if candidate > now and self.schedule.matches(
                                candidate.astimezone(timezone.utc).astimezone(self.zone)):
                            return candidate
        return None

"""The ``verify:`` section of production's policy: the checks run after an apply that wrote
something, and what happens when one fails.

```yaml
verify:
  checks:
    - run: {namespace: company, flow: smoke, inputs: {release: v2}, timeout: 10m}
    - soak: {duration: 15m, interval: 30s, fail_on: [FAILED, KILLED]}
  on_failure: rollback   # or hold
```

Only production's policy sets it: a commit's ``kestra-promote.yml`` cannot, so a commit can
neither switch its own checks off nor choose them. Everything here is pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Mapping

ON_FAILURE = ("rollback", "hold")
# what a soak may fail on: end states of an execution (core models/flows/State.java)
SOAK_STATES = ("FAILED", "KILLED", "WARNING", "CANCELLED")
DEFAULT_TIMEOUT = timedelta(minutes=10)
MAX_WAIT = timedelta(hours=6)
_KEYS = {"checks", "on_failure"}
_RUN_KEYS = {"namespace", "flow", "inputs", "timeout"}
_SOAK_KEYS = {"duration", "interval", "fail_on"}
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


@dataclass(frozen=True)
class RunCheck:
    """Start ``namespace.flow`` with ``inputs``; it must end in SUCCESS within ``timeout``."""

    namespace: str
    flow: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    timeout: timedelta = DEFAULT_TIMEOUT

    @property
    def name(self) -> str:
        return f"run {self.namespace}.{self.flow}"

    def describe(self) -> dict[str, Any]:
        return {"run": {"namespace": self.namespace, "flow": self.flow, "inputs": dict(self.inputs),
                        "timeout": shown(self.timeout)}}


@dataclass(frozen=True)
class SoakCheck:
    """For ``duration`` after the apply, no execution of a flow it created or updated may end
    in one of ``fail_on``; looked for every ``interval``."""

    duration: timedelta
    interval: timedelta = timedelta(seconds=30)
    fail_on: tuple[str, ...] = ("FAILED",)

    @property
    def name(self) -> str:
        return f"soak {shown(self.duration)}"

    def describe(self) -> dict[str, Any]:
        return {"soak": {"duration": shown(self.duration), "interval": shown(self.interval),
                         "fail_on": list(self.fail_on)}}


Check = RunCheck | SoakCheck


@dataclass(frozen=True)
class Verify:
    checks: tuple[Check, ...]
    on_failure: str = "rollback"

    def describe(self) -> dict[str, Any]:
        return {"checks": [c.describe() for c in self.checks], "on_failure": self.on_failure}


def shown(delta: timedelta) -> str:
    """A duration as the policy writes it: 1h30m, 10m, 45s."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + \
        (f"{seconds}s" if seconds else "")
    return text or "0s"


def parse_wait(value: object, key: str) -> tuple[timedelta | None, str | None]:
    """A duration such as 30s, 10m, 1h30m, above zero and at most 6 hours; or why not."""
    text = str(value).strip().lower() if isinstance(value, (str, int)) and \
        not isinstance(value, bool) else ""
    match = _DURATION.fullmatch(text) if text else None
    if match is None or not any(match.groups()):
        return None, f"{key}: {value!r} is not a duration such as 30s, 10m or 1h30m"
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    delta = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if not timedelta(0) < delta <= MAX_WAIT:
        return None, f"{key}: {value!r} must be above zero and at most {shown(MAX_WAIT)}"
    return delta, None


def parse_verify(data: object) -> tuple[Verify | None, list[str]]:
    """The ``verify`` section from its loaded YAML: (the checks, every problem found)."""
    problems: list[str] = []
    if not isinstance(data, Mapping):
        return None, ["'verify' must be a mapping of checks (a list) and on_failure "
                      f"({' or '.join(ON_FAILURE)})"]
    for key in data:
        if key not in _KEYS:
            problems.append(f"verify: unknown key {key!r}; allowed: {', '.join(sorted(_KEYS))}")
    on_failure = data.get("on_failure", "rollback")
    if on_failure not in ON_FAILURE:
        problems.append(f"verify.on_failure: {on_failure!r} must be one of "
                        f"{', '.join(ON_FAILURE)}")
    items = data.get("checks")
    if not isinstance(items, list) or not items:
        problems.append("verify.checks must be a list of at least one check (run or soak)")
        items = []
    checks: list[Check] = []
    for number, item in enumerate(items, 1):
        where = f"verify.checks {number}"
        if not isinstance(item, Mapping) or len(item) != 1 or \
                next(iter(item)) not in ("run", "soak"):
            problems.append(f"{where}: must be one of {{run: {{namespace, flow, inputs, "
                            "timeout}}} or {soak: {duration, interval, fail_on}}")
            continue
        kind, spec = next(iter(item.items()))
        check = (_run if kind == "run" else _soak)(spec, f"{where} ({kind})", problems)
        if check is not None:
            checks.append(check)
    if problems:
        return None, problems
    return Verify(tuple(checks), str(on_failure)), []


def _spec(spec: object, allowed: set[str], where: str, problems: list[str]
          ) -> Mapping[str, Any] | None:
    if not isinstance(spec, Mapping):
        problems.append(f"{where}: must be a mapping of {', '.join(sorted(allowed))}")
        return None
    for key in spec:
        if key not in allowed:
            problems.append(f"{where}: unknown key {key!r}; allowed: "
                            f"{', '.join(sorted(allowed))}")
    return spec


def _run(spec: object, where: str, problems: list[str]) -> RunCheck | None:
    values = _spec(spec, _RUN_KEYS, where, problems)
    if values is None:
        return None
    found = len(problems)
    names = {}
    for key in ("namespace", "flow"):
        value = values.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: '{key}' is required (a text value)")
        names[key] = str(value).strip()
    inputs = values.get("inputs", {})
    if not isinstance(inputs, Mapping) or not all(isinstance(k, str) for k in inputs):
        problems.append(f"{where}: 'inputs' must be a mapping of input names to values")
        inputs = {}
    timeout, why = parse_wait(values.get("timeout", "10m"), f"{where}: timeout")
    if why:
        problems.append(why)
    if len(problems) > found or timeout is None:
        return None
    return RunCheck(names["namespace"], names["flow"], dict(inputs), timeout)


def _soak(spec: object, where: str, problems: list[str]) -> SoakCheck | None:
    values = _spec(spec, _SOAK_KEYS, where, problems)
    if values is None:
        return None
    found = len(problems)
    if "duration" not in values:
        problems.append(f"{where}: 'duration' is required (such as 15m)")
        return None
    duration, why = parse_wait(values["duration"], f"{where}: duration")
    interval, why_interval = parse_wait(values.get("interval", "30s"), f"{where}: interval")
    problems += [w for w in (why, why_interval) if w]
    fail_on = values.get("fail_on", ["FAILED"])
    if isinstance(fail_on, str):
        fail_on = [fail_on]
    if not isinstance(fail_on, list) or not fail_on or \
            any(state not in SOAK_STATES for state in fail_on):
        problems.append(f"{where}: 'fail_on' must list states among {', '.join(SOAK_STATES)}")
    if len(problems) > found or duration is None or interval is None:
        return None
    return SoakCheck(duration, min(interval, duration), tuple(dict.fromkeys(fail_on)))

"""Notifications: a message about a promotion, posted to a Slack-compatible incoming webhook or
as generic JSON. The message is built from the run's outcome (pure); posting is the only side
effect, and its failure is reported, never raised: a notification never fails a promotion.

The webhook URL is a credential (a Slack URL holds its token, some services put it in the host
name): it is never printed, not even its host. Sending has a deadline of its own: a receiver that
answers slowly, or without end, is given up on, so the run ends as it would have.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

import httpx

from kestra_promote.version import __version__
from kestra_promote.verification_report import summary as checked_summary
from kestra_promote.models import Action, ApplyResult, Plan, Reason
from kestra_promote.textsafe import safe_text

FORMATS = ("slack", "json")
WHEN = ("problems", "always")  # problems: failed, refused, denied or drifted runs only
TIMEOUT = 10.0  # for each step (connect, each read)
DEADLINE = 15.0  # for the whole sending, however slowly the receiver answers
MAX_ANSWER = 65_536  # bytes of the answer read at the most: its status is what counts
_DRIFT = (Reason.DRIFT_OVERWRITTEN, Reason.DRIFT_KEPT, Reason.DRIFT_REFUSED,
          Reason.LEFT_GIT_DRIFTED, Reason.LEFT_GIT_DRIFT_KEPT)


@dataclass(frozen=True)
class Notifier:
    url: str = field(repr=False)  # a credential
    format: str = "json"
    when: str = "problems"
    link: str | None = None  # where to read the whole run (a Kestra execution, a CI job)

    def __repr__(self) -> str:
        return f"Notifier(format={self.format!r}, when={self.when!r})"


def notifier_from(url: str | None, format: str | None = None, when: str | None = None,
                  link: str | None = None) -> Notifier | None:
    """The notifier the settings describe (None without a URL); ValueError on bad values."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the notification URL must be an http(s) URL")
    chosen = (format or ("slack" if parts.hostname.endswith("slack.com") else "json")).lower()
    if chosen not in FORMATS:
        raise ValueError(f"the notification format must be one of {', '.join(FORMATS)}, "
                         f"not {format!r}")
    moment = (when or "problems").lower()
    if moment not in WHEN:
        raise ValueError(f"notify when must be one of {', '.join(WHEN)}, not {when!r}")
    return Notifier(url, chosen, moment, link or None)


def safe_target(url: str) -> str:
    """The target's address as a message may show it: no credentials, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(the target)"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


@dataclass(frozen=True)
class Event:
    """What happened, for the message: ``outcome`` is applied, no-changes, failed, refused or
    denied; ``drifted`` counts objects edited on the target since the last promotion."""

    name: str
    outcome: str
    reason: str = ""
    commit: str | None = None
    target: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)
    drifted: int = 0
    rolled_back: bool = False  # writes were made, then undone, and read back as before
    not_as_before: int = 0  # a failed run: objects that do not hold what they held before

    @property
    def problem(self) -> bool:
        """Worth a message: something went wrong, or a person must act."""
        return self.outcome in ("failed", "refused", "denied", "awaiting-approval") \
            or self.drifted > 0


def drifted(plan: Plan | None) -> int:
    if plan is None:
        return 0
    return sum(1 for c in plan.changes if c.reason in _DRIFT or c.action is Action.DRIFTED)


def event_of(plan: Plan, result: ApplyResult, target: str) -> Event:
    counts = {a: sum(1 for o in result.outcomes if o.change.action.value == a
                     and o.status.value == "applied") for a in ("create", "update", "delete")}
    outcome = ("applied" if result.passed and not plan.is_empty else
               "no-changes" if result.passed else "failed")
    reason = "" if result.ok else next(
        (o.message for o in result.outcomes if o.status.value == "failed"),
        result.inventory_message or "")
    checked = result.verification
    if checked is not None and result.ok:  # the checks after the apply: passed or not
        reason = checked_summary(checked, plan.commit)
        if not checked.passed:
            return Event(plan.name, outcome, reason, plan.commit, safe_target(target), counts,
                         drifted(plan), rolled_back=checked.rolled_back)
    stuck = {o.change.key for o in result.outcomes if o.status.value == "not reverted"}
    stuck |= {left.key for left in result.leftovers}
    return Event(plan.name, outcome, reason, plan.commit, safe_target(target), counts,
                 drifted(plan), rolled_back=result.rolled_back and any(
                     o.status.value == "reverted" for o in result.outcomes),
                 not_as_before=0 if result.ok else len(stuck))


def _text(event: Event, link: str | None) -> str:
    verb = {"applied": "promoted", "no-changes": "checked: nothing to change",
            "failed": "FAILED, rolled back" if event.rolled_back else
                      f"FAILED, NOT rolled back: {event.not_as_before} object(s) not as before, "
                      "check the target" if event.not_as_before else "FAILED",
            "refused": "REFUSED, nothing written",
            "denied": "DENIED by a sync window, nothing written",
            "awaiting-approval": "WAITING FOR APPROVAL: resume the execution to apply this plan"
            }.get(event.outcome, event.outcome)
    lines = [f"kestra-promote {event.name}: {verb}"
             + (f" (commit {event.commit[:12]})" if event.commit else "")]
    if any(event.counts.values()):
        lines.append(", ".join(f"{n} {a}d" for a, n in event.counts.items() if n))
    if event.drifted:
        lines.append(f"{event.drifted} object(s) edited on the target since the last promotion")
    if event.reason:
        lines.append(event.reason if len(event.reason) <= 500 else event.reason[:497] + "...")
    if event.target:
        lines.append(f"target: {event.target}")
    if link:
        lines.append(f"details: {link}")
    return safe_text("\n".join(lines))


def _slack_escape(text: str) -> str:
    # Slack reads <...> as links and mentions: names from Git or the target must not form one
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(notifier: Notifier, event: Event) -> dict[str, Any]:
    text = _text(event, notifier.link)
    if notifier.format == "slack":
        return {"text": _slack_escape(text)}
    return {"source": event.name, "outcome": event.outcome, "problem": event.problem,
            "commit": event.commit, "target": event.target, "counts": dict(event.counts),
            "drifted": event.drifted, "reason": event.reason, "link": notifier.link,
            "text": text}


def should_send(notifier: Notifier | None, event: Event) -> bool:
    return notifier is not None and (notifier.when == "always" or event.problem)


def send(notifier: Notifier | None, event: Event,
         transport: httpx.BaseTransport | None = None, deadline: float = DEADLINE) -> str | None:
    """Post the message when ``notifier`` wants this event; None when sent or not wanted, else
    why it failed (naming no part of the URL). Never raises; gives up after ``deadline``
    seconds."""
    if notifier is None or not should_send(notifier, event):
        return None
    outcome: list[str | None] = []

    def post() -> None:
        try:
            with httpx.Client(timeout=TIMEOUT, follow_redirects=False, transport=transport,
                              headers={"User-Agent": f"kestra-promote/{__version__}"}) as client:
                with client.stream("POST", notifier.url,
                                   json=payload(notifier, event)) as response:
                    read = 0
                    for chunk in response.iter_raw():  # a little of it: the status counts
                        read += len(chunk)
                        if read >= MAX_ANSWER:
                            break
                    status = response.status_code
            outcome.append(None if 200 <= status < 300 else
                           f"the notification was answered with HTTP {status}")
        except Exception as exc:  # its message may quote the URL, a credential: the kind only
            outcome.append(f"the notification failed: {type(exc).__name__}")

    worker = threading.Thread(target=post, name="kestra-promote-notify", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive() or not outcome:
        return f"the notification was given up on after {deadline:.0f} s"
    return outcome[0]

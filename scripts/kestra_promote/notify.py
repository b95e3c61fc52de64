"""Notifications: a message about a promotion, posted to a Slack-compatible incoming webhook or
as generic JSON. The message is built from the run's outcome (pure); posting is the only side
effect, and its failure is reported, never raised: a notification never fails a promotion.

The webhook URL is a credential (a Slack URL holds its token): it is never printed, and an error
about it names only its host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

import httpx

from . import __version__
from .models import Action, ApplyResult, Plan, Reason
from .textsafe import safe_text

FORMATS = ("slack", "json")
WHEN = ("problems", "always")  # problems: failed, refused, denied or drifted runs only
TIMEOUT = 10.0
_DRIFT = (Reason.DRIFT_OVERWRITTEN, Reason.DRIFT_KEPT, Reason.DRIFT_REFUSED,
          Reason.LEFT_GIT_DRIFTED, Reason.LEFT_GIT_DRIFT_KEPT)


@dataclass(frozen=True)
class Notifier:
    url: str = field(repr=False)  # a credential
    format: str = "json"
    when: str = "problems"
    link: str | None = None  # where to read the whole run (a Kestra execution, a CI job)

    def __repr__(self) -> str:
        return f"Notifier(host={urlsplit(self.url).hostname!r}, format={self.format!r}, " \
               f"when={self.when!r})"


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

    @property
    def problem(self) -> bool:
        return self.outcome in ("failed", "refused", "denied") or self.drifted > 0


def drifted(plan: Plan | None) -> int:
    if plan is None:
        return 0
    return sum(1 for c in plan.changes if c.reason in _DRIFT or c.action is Action.DRIFTED)


def event_of(plan: Plan, result: ApplyResult, target: str) -> Event:
    counts = {a: sum(1 for o in result.outcomes if o.change.action.value == a
                     and o.status.value == "applied") for a in ("create", "update", "delete")}
    outcome = ("applied" if result.ok and not plan.is_empty else
               "no-changes" if result.ok else "failed")
    reason = "" if result.ok else next(
        (o.message for o in result.outcomes if o.status.value == "failed"),
        result.inventory_message or "")
    return Event(plan.name, outcome, reason, plan.commit, target, counts, drifted(plan))


def _text(event: Event, link: str | None) -> str:
    verb = {"applied": "promoted", "no-changes": "checked: nothing to change",
            "failed": "FAILED, rolled back", "refused": "REFUSED, nothing written",
            "denied": "DENIED by a sync window, nothing written"}.get(event.outcome, event.outcome)
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
         transport: httpx.BaseTransport | None = None) -> str | None:
    """Post the message when ``notifier`` wants this event; None when sent or not wanted, else
    why it failed (with the host only). Never raises."""
    if notifier is None or not should_send(notifier, event):
        return None
    host = urlsplit(notifier.url).hostname or "?"
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False, transport=transport,
                          headers={"User-Agent": f"kestra-promote/{__version__}"}) as client:
            response = client.post(notifier.url, json=payload(notifier, event))
        if not 200 <= response.status_code < 300:
            return f"the notification to {host} was answered with HTTP {response.status_code}"
        return None
    except httpx.HTTPError as exc:
        return f"the notification to {host} failed: {type(exc).__name__}"
    except Exception as exc:  # a notification never fails the promotion; its error may quote
        # the URL, a credential: only the kind of error is told
        return f"the notification to {host} failed: {type(exc).__name__}"

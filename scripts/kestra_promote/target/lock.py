"""One promotion at a time per target: a lease in the target's KV store.

Every run that writes (the CLI's ``apply``, ``adopt``, ``policy set``, the Kestra flows,
``bootstrap``) takes the lease ``kestra-promote-lock`` in the state namespace before it reads the
live state it will plan against, and gives it back when it is done. Another run waits a bounded
time, then fails naming the holder. A run that crashed leaves its lease behind until Kestra drops
it (the KV entry carries a TTL); ``kestra-promote unlock`` breaks it by hand.

Whether a lease is live is the target's call alone, never a run's clock: Kestra answers an entry
past its expiration date (by the server's clock) with 410 and deletes it, so an entry that reads
back is live, whatever the times written in it say. Those times (the holder's clock; one without
a time zone is read as UTC) and the entry's ``updated`` (the server's clock) are for the people
who find the lease.

Kestra's KV store has no compare-and-set, so taking the lease is write, then read back after a
short settling delay (a few request round trips): of two runs that wrote at nearly the same
time, only the one whose lease is still there goes on. A lease write can still land late (a slow
request), over a lease another run already confirmed: so the lease is a fencing token, and a run
checks that the target's lease is still its own before every write step, before its inventory
and before every renewal, and stops (reverting what it wrote) when it is not. What stays open is
the moment between that check and the write it guards. Anything under the key that is not a
lease is never overwritten: the run stops and says ``kestra-promote unlock`` removes it. A run
that has nothing to write takes no lease at all. The policy (is a lease ours) is pure; the KV
calls are at the edge.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from kestra_promote.target.client import KestraClient
from kestra_promote.errors import ApiError, KestraError, KestraPromoteError, NotFound

KEY = "kestra-promote-lock"  # not "kestra-promote.<name>": that is an inventory
DEFAULT_TTL = timedelta(minutes=30)  # a crashed run blocks others at most this long
DEFAULT_WAIT = 120.0  # seconds a run waits for another one to finish


class Locked(KestraPromoteError):
    """Another promotion holds the target's lease: nothing was read or written."""


class LeaseLost(KestraError):
    """The target's lease is no longer this run's (expired, broken, or taken): write no more."""


def _when(text: Any) -> datetime:
    """A time written in a lease; one without a time zone (written by hand, or by another
    tool) is read as UTC rather than refused."""
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Lease:
    holder: str  # who, for people: "cli alice@build-7 (pid 42)", "kestra execution 5x..."
    token: str  # unique per run: what "ours" means (the fencing token)
    started: datetime  # the holder's clock, for people
    expires: datetime  # the holder's clock, for people: the target's TTL decides
    ttl: timedelta | None = None  # the TTL sent with the entry's last write
    updated: datetime | None = field(default=None, compare=False)  # the target's clock, as read

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"holder": self.holder, "token": self.token,
                               "started": self.started.isoformat(timespec="seconds"),
                               "expires": self.expires.isoformat(timespec="seconds")}
        if self.ttl is not None:
            out["ttl"] = int(self.ttl.total_seconds())
        return out

    @classmethod
    def from_json(cls, value: Any) -> Lease | None:
        """A lease read from KV; None for anything of another shape."""
        try:
            holder, token, ttl = value["holder"], value["token"], value.get("ttl")
            if not (isinstance(holder, str) and isinstance(token, str) and token):
                return None
            if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0):
                return None
            return cls(holder, token, _when(value["started"]), _when(value["expires"]),
                       None if ttl is None else timedelta(seconds=ttl))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            return None  # OverflowError: a ttl longer than any date can hold

    def describe(self) -> str:
        text = f"{self.holder}, started {self.started.isoformat(timespec='seconds')}"
        try:
            drop = None if self.updated is None or self.ttl is None else (
                self.updated + self.ttl).isoformat(timespec="seconds")
        except OverflowError:  # a ttl past the end of the calendar: never dropped, in effect
            drop = None
        if self.updated is not None and drop is not None:
            return (f"{text}, last written {self.updated.isoformat(timespec='seconds')} by the "
                    f"target's clock: Kestra drops it at {drop} unless it is renewed")
        return f"{text}, expires {self.expires.isoformat(timespec='seconds')}"


@dataclass(frozen=True)
class Foreign:
    """Something under the lease's key that is not a lease: never overwritten, never shown
    (it may hold anything)."""

    kind: str  # "a JSON object", "text", ...


def _foreign(value: Any) -> Foreign:
    kind = ("a JSON object" if isinstance(value, dict) else "a JSON array" if isinstance(value, list)
            else "text" if isinstance(value, str) else "a JSON value")
    return Foreign(kind)


def _unlock_command(namespace: str) -> str:
    return "kestra-promote unlock" + ("" if namespace == "system"
                                      else f" --state-namespace {namespace}")


def _foreign_error(namespace: str, found: Foreign) -> Locked:
    return Locked(
        f"the key {KEY!r} in the state namespace {namespace!r}, where promotions take their "
        f"lease, holds {found.kind} that is not a kestra-promote lease: it was left as it is and "
        f"nothing was written. If no promotion of this target is running, "
        f"`{_unlock_command(namespace)}` removes it")


def default_holder(what: str) -> str:
    """Who is promoting, for the people who find the lease: no secret in it."""
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "someone"
    return f"{what} by {user}@{socket.gethostname()} (pid {os.getpid()})"


def new_lease(holder: str, now: datetime, ttl: timedelta = DEFAULT_TTL) -> Lease:
    now = now.replace(microsecond=0)  # as stored
    return Lease(holder, uuid.uuid4().hex, now, now + ttl, ttl)


def _iso_duration(delta: timedelta) -> str:
    return f"PT{max(1, int(delta.total_seconds()))}S"


def peek(client: KestraClient, namespace: str) -> Lease | Foreign | None:
    """What the target holds under the lease's key: a live lease, something else, or nothing
    (missing, or expired). Kestra 1.3 and 2.0 judge expiry on read, by the server's clock: an
    entry past its expiration date is deleted and answered 410 Gone
    (core/.../storages/kv/InternalKVStore.java getRawValue, webserver/.../ErrorController.java);
    a live one answers its value with `updated`, the time of its last write
    (webserver/.../controllers/api/KVController.java getKeyValue)."""
    try:
        value, updated = client.kv_entry(namespace, KEY)
    except NotFound:
        return None
    except ApiError as exc:  # Kestra's own JSON error; a proxy's page is UnexpectedResponse
        if exc.status == 410:
            return None
        raise
    lease = Lease.from_json(value)
    if lease is None:
        return _foreign(value)
    try:
        written = None if updated is None else _when(updated)
    except ValueError:
        written = None
    return dataclasses.replace(lease, updated=written)


def read(client: KestraClient, namespace: str) -> Lease | None:
    """The live lease, or None; Locked when the key holds something that is not a lease."""
    current = peek(client, namespace)
    if isinstance(current, Foreign):
        raise _foreign_error(namespace, current)
    return current


def _write(client: KestraClient, namespace: str, lease: Lease) -> None:
    ttl = lease.ttl or lease.expires - lease.started
    client.kv_put(namespace, KEY, lease.to_json(), ttl=_iso_duration(ttl),
                  description="kestra-promote: a promotion is running")


def ensure_ours(client: KestraClient, namespace: str, lease: Lease) -> None:
    """The fencing check, made before every write step: LeaseLost unless the target's lease is
    still ``lease``."""
    current = peek(client, namespace)
    if isinstance(current, Lease) and current.token == lease.token:
        return
    who = ("nobody holds it now (it expired, or `kestra-promote unlock` broke it)"
           if current is None else f"it is held by {current.describe()}"
           if isinstance(current, Lease) else f"the key holds {current.kind} that is not a lease")
    raise LeaseLost(f"the target's lease ({KEY!r} in the state namespace {namespace!r}) is no "
                    f"longer this run's: {who}; this run writes nothing more")


def acquire(client: KestraClient, namespace: str, holder: str, *, wait: float = DEFAULT_WAIT,
            ttl: timedelta = DEFAULT_TTL, settle: float | None = None,
            clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
            sleep: Callable[[float], None] = time.sleep) -> Lease:
    """Take the lease, waiting up to ``wait`` seconds for another run; Locked if it stays."""
    deadline = clock() + timedelta(seconds=wait)
    while True:
        current = read(client, namespace)  # live while the target holds it
        if current is None:
            mine = new_lease(holder, clock(), ttl)
            started = time.monotonic()
            _write(client, namespace, mine)
            try:
                # a run that read "free" just before our write writes within about a round
                # trip: wait a few of them before reading back (settle=None: measured)
                sleep(settle if settle is not None else
                      min(2.0, max(0.05, 4 * (time.monotonic() - started))))
                confirmed = peek(client, namespace)
            except BaseException:  # a failure or a signal: never leave our lease behind
                _release_quietly(client, namespace, mine)
                raise
            if isinstance(confirmed, Foreign):  # written over ours: never overwrite it
                raise _foreign_error(namespace, confirmed)
            if confirmed is not None and confirmed.token == mine.token:
                return mine
            current = confirmed  # another run wrote its lease at the same moment: it goes on
        now = clock()
        if now >= deadline:
            holder_text = current.describe() if current else "another run"
            raise Locked(
                f"another promotion holds the lock of this target ({holder_text}); nothing was "
                f"written. Wait for it to finish, or, if it crashed, wait for its lease to expire "
                f"or break it with `kestra-promote unlock` (state namespace {namespace!r})")
        sleep(min(2.0, max(0.1, (deadline - now).total_seconds())))


def renew(client: KestraClient, namespace: str, lease: Lease, *, ttl: timedelta = DEFAULT_TTL,
          now: datetime | None = None) -> Lease:
    """Push the expiry of our lease back (long runs): a new lease with the same token, written
    only after reading that the target's lease is still ours (LeaseLost if not)."""
    ensure_ours(client, namespace, lease)
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    renewed = Lease(lease.holder, lease.token, lease.started, now + ttl, ttl)
    _write(client, namespace, renewed)
    return renewed


def release(client: KestraClient, namespace: str, lease: Lease) -> None:
    """Give the lease back, if it is still ours (an expired one may have been taken since)."""
    current = peek(client, namespace)
    if isinstance(current, Lease) and current.token == lease.token:
        client.kv_delete(namespace, KEY)


def break_lock(client: KestraClient, namespace: str) -> str | None:
    """Remove whatever is under the lease's key (``kestra-promote unlock``), a lease or not;
    returns what it removed, for people."""
    current = peek(client, namespace)
    deleted = client.kv_delete(namespace, KEY)
    if isinstance(current, Lease):
        return f"the lock held by {current.describe()}"
    if isinstance(current, Foreign):
        return f"{current.kind} stored under {KEY!r}, which was not a kestra-promote lease"
    return "a lock that expired as it was read" if deleted else None


def _release_quietly(client: KestraClient, namespace: str, lease: Lease) -> None:
    try:
        release(client, namespace, lease)
    except KestraError:  # it expires by itself: never hide the run's own outcome
        pass


class Keeper:
    """Checks a held lease is still ours, and renews it when half its time is gone: a long run
    keeps the target to itself, and a run whose lease was taken stops."""

    def __init__(self, client: KestraClient, namespace: str, lease: Lease,
                 ttl: timedelta = DEFAULT_TTL,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.client, self.namespace, self.lease, self.ttl, self.clock = (
            client, namespace, lease, ttl, clock)

    def __call__(self) -> None:
        """Before every write step: LeaseLost unless the lease is still ours; renewed when half
        its time is gone."""
        now = self.clock()
        if now >= self.lease.expires - self.ttl / 2:
            self.lease = renew(self.client, self.namespace, self.lease, ttl=self.ttl, now=now)
        else:
            ensure_ours(self.client, self.namespace, self.lease)


@contextmanager
def held(client: KestraClient, namespace: str, holder: str, **options: Any) -> Iterator[Lease]:
    lease = acquire(client, namespace, holder, **options)
    try:
        yield lease
    finally:
        _release_quietly(client, namespace, lease)

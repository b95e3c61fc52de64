"""One promotion at a time per target: a lease in the target's KV store.

Every run that writes (the CLI's ``apply``, the Kestra flows, ``bootstrap``) takes the lease
``kestra-promote-lock`` in the state namespace before it reads the live state it will plan
against, and gives it back when it is done. Another run waits a bounded time, then fails naming
the holder. A run that crashed leaves its lease behind until it expires (the KV entry also
carries a TTL, so Kestra drops it by itself); ``kestra-promote unlock`` breaks it by hand.

Kestra's KV store has no compare-and-set, so taking the lease is write, then read back after a
short settling delay (a few request round trips): of two runs that wrote at nearly the same
time, only the one whose lease is still there goes on. A run that has nothing to write takes no
lease at all. The policy (is a lease free, is it ours) is pure; the KV calls are at
the edge.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from kestra_promote.target.client import KestraClient
from kestra_promote.errors import KestraError, KestraPromoteError, NotFound

KEY = "kestra-promote-lock"  # not "kestra-promote.<name>": that is an inventory
DEFAULT_TTL = timedelta(minutes=30)  # a crashed run blocks others at most this long
DEFAULT_WAIT = 120.0  # seconds a run waits for another one to finish


class Locked(KestraPromoteError):
    """Another promotion holds the target's lease: nothing was read or written."""


@dataclass(frozen=True)
class Lease:
    holder: str  # who, for people: "cli alice@build-7 (pid 42)", "kestra execution 5x..."
    token: str  # unique per run: what "ours" means
    started: datetime
    expires: datetime

    def to_json(self) -> dict[str, str]:
        return {"holder": self.holder, "token": self.token,
                "started": self.started.isoformat(timespec="seconds"),
                "expires": self.expires.isoformat(timespec="seconds")}

    @classmethod
    def from_json(cls, value: Any) -> Lease | None:
        """A lease read from KV; None for anything unreadable (treated as no lease)."""
        try:
            return cls(str(value["holder"]), str(value["token"]),
                       datetime.fromisoformat(value["started"]),
                       datetime.fromisoformat(value["expires"]))
        except (KeyError, TypeError, ValueError):
            return None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires

    def describe(self, now: datetime) -> str:
        age = int((now - self.started).total_seconds())
        return (f"{self.holder}, started {self.started.isoformat(timespec='seconds')} "
                f"({age} s ago), expires {self.expires.isoformat(timespec='seconds')}")


def default_holder(what: str) -> str:
    """Who is promoting, for the people who find the lease: no secret in it."""
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "someone"
    return f"{what} by {user}@{socket.gethostname()} (pid {os.getpid()})"


def new_lease(holder: str, now: datetime, ttl: timedelta = DEFAULT_TTL) -> Lease:
    now = now.replace(microsecond=0)  # as stored
    return Lease(holder, uuid.uuid4().hex, now, now + ttl)


def _iso_duration(delta: timedelta) -> str:
    return f"PT{max(1, int(delta.total_seconds()))}S"


def read(client: KestraClient, namespace: str) -> Lease | None:
    try:
        return Lease.from_json(client.kv_get(namespace, KEY))
    except NotFound:
        return None
    except KestraError as exc:
        if getattr(exc, "status", None) == 410:  # expired: Kestra drops it
            return None
        raise


def _write(client: KestraClient, namespace: str, lease: Lease) -> None:
    ttl = lease.expires - lease.started
    client.kv_put(namespace, KEY, lease.to_json(), ttl=_iso_duration(ttl),
                  description="kestra-promote: a promotion is running")


def acquire(client: KestraClient, namespace: str, holder: str, *, wait: float = DEFAULT_WAIT,
            ttl: timedelta = DEFAULT_TTL, settle: float | None = None,
            clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
            sleep: Callable[[float], None] = time.sleep) -> Lease:
    """Take the lease, waiting up to ``wait`` seconds for another run; Locked if it stays."""
    deadline = clock() + timedelta(seconds=wait)
    while True:
        now = clock()
        current = read(client, namespace)
        if current is None or current.expired(now):
            mine = new_lease(holder, now, ttl)
            started = time.monotonic()
            _write(client, namespace, mine)
            try:
                # a run that read "free" just before our write writes within about a round
                # trip: wait a few of them before reading back (settle=None: measured)
                sleep(settle if settle is not None else
                      min(2.0, max(0.05, 4 * (time.monotonic() - started))))
                confirmed = read(client, namespace)
            except BaseException:  # a failure or a signal: never leave our lease behind
                _release_quietly(client, namespace, mine)
                raise
            if confirmed is not None and confirmed.token == mine.token:
                return mine
            current = confirmed  # another run wrote its lease at the same moment: it goes on
        now = clock()
        if now >= deadline:
            holder_text = current.describe(now) if current else "another run"
            raise Locked(
                f"another promotion holds the lock of this target ({holder_text}); nothing was "
                f"written. Wait for it to finish, or, if it crashed, wait for its lease to expire "
                f"or break it with `kestra-promote unlock` (state namespace {namespace!r})")
        sleep(min(2.0, max(0.1, (deadline - now).total_seconds())))


def renew(client: KestraClient, namespace: str, lease: Lease, *, ttl: timedelta = DEFAULT_TTL,
          now: datetime | None = None) -> Lease:
    """Push the expiry of our lease back (long runs): a new lease with the same token."""
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    renewed = Lease(lease.holder, lease.token, lease.started, now + ttl)
    _write(client, namespace, renewed)
    return renewed


def release(client: KestraClient, namespace: str, lease: Lease) -> None:
    """Give the lease back, if it is still ours (an expired one may have been taken since)."""
    current = read(client, namespace)
    if current is not None and current.token == lease.token:
        client.kv_delete(namespace, KEY)


def break_lock(client: KestraClient, namespace: str) -> Lease | None:
    """Remove whatever lease is there (``kestra-promote unlock``); returns what it removed."""
    current = read(client, namespace)
    client.kv_delete(namespace, KEY)
    return current


def _release_quietly(client: KestraClient, namespace: str, lease: Lease) -> None:
    try:
        release(client, namespace, lease)
    except KestraError:  # it expires by itself: never hide the run's own outcome
        pass


class Keeper:
    """Renews a held lease when half its time is gone: a long run keeps the target to itself."""

    def __init__(self, client: KestraClient, namespace: str, lease: Lease,
                 ttl: timedelta = DEFAULT_TTL,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.client, self.namespace, self.lease, self.ttl, self.clock = (
            client, namespace, lease, ttl, clock)

    def __call__(self) -> None:
        now = self.clock()
        if now >= self.lease.expires - self.ttl / 2:
            self.lease = renew(self.client, self.namespace, self.lease, ttl=self.ttl, now=now)


@contextmanager
def held(client: KestraClient, namespace: str, holder: str, **options: Any) -> Iterator[Lease]:
    lease = acquire(client, namespace, holder, **options)
    try:
        yield lease
    finally:
        _release_quietly(client, namespace, lease)

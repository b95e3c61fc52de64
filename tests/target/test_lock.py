"""One promotion at a time: the lease in the target's KV store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli
from kestra_promote.errors import KestraError
from kestra_promote.target import lock

pytestmark = pytest.mark.fake_only
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


class Clock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def test_a_second_run_waits_then_fails_naming_the_holder(target: Target):
    clock = Clock()
    with target.client() as client:
        first = lock.acquire(client, "system", "apply by alice@ci-1 (pid 7)", clock=clock,
                             sleep=clock.sleep)
        with pytest.raises(lock.Locked) as caught:
            lock.acquire(client, "system", "apply by bob@ci-2 (pid 8)", wait=10, clock=clock,
                         sleep=clock.sleep)
        assert "apply by alice@ci-1 (pid 7), started 2026-11-26T12:00:00+00:00" in str(caught.value)
        assert "kestra-promote unlock" in str(caught.value)
        assert 10 <= sum(clock.slept) <= 14  # it waited the time it was given, no longer
        lock.release(client, "system", first)
        second = lock.acquire(client, "system", "apply by bob@ci-2 (pid 8)", clock=clock,
                              sleep=clock.sleep)
        assert lock.read(client, "system") == second


def test_a_crashed_runs_lease_expires_by_the_targets_clock(target: Target):
    assert target.fake is not None
    clock = Clock()
    with target.client() as client:
        lock.acquire(client, "system", "crashed run", ttl=timedelta(minutes=5), clock=clock,
                     sleep=clock.sleep)
        clock.now += timedelta(minutes=6)  # only the runs' clocks moved: still live
        with pytest.raises(lock.Locked):
            lock.acquire(client, "system", "next run", wait=5, clock=clock, sleep=clock.sleep)
        target.fake.clock_offset = 6 * 60  # the target's clock: Kestra dropped it (410)
        taken = lock.acquire(client, "system", "next run", clock=clock, sleep=clock.sleep)
        assert taken.holder == "next run"


def test_a_run_whose_clock_is_fast_never_takes_a_live_lease(target: Target):
    with target.client() as client:
        live = lock.acquire(client, "system", "a run on time", settle=0)
        fast = Clock()
        fast.now = datetime.now(timezone.utc) + timedelta(minutes=31)
        with pytest.raises(lock.Locked) as caught:
            lock.acquire(client, "system", "a run 31 minutes ahead", wait=5, clock=fast,
                         sleep=fast.sleep)
        assert "a run on time" in str(caught.value)
        assert lock.read(client, "system") == live


def test_renew_never_overwrites_a_lease_another_run_took(target: Target):
    with target.client() as client:
        mine = lock.acquire(client, "system", "this run", settle=0)
        lock.break_lock(client, "system")  # `kestra-promote unlock`, then another run
        theirs = lock.acquire(client, "system", "next run", settle=0)
        with pytest.raises(KestraError) as caught:
            lock.renew(client, "system", mine)
        assert "next run" in str(caught.value)
        keeper = lock.Keeper(client, "system", mine)
        with pytest.raises(KestraError):
            keeper()  # before each write step: the lease is not ours any more
        assert lock.read(client, "system") == theirs


@pytest.mark.parametrize("value", [{"owner": "the release script"}, {"holder": "x"},
                                   "held by ops", [1, 2], 42])
def test_a_value_that_is_not_our_lease_is_never_overwritten(target: Target, value):
    clock = Clock()
    with target.client() as client:
        client.kv_put("system", lock.KEY, value)
        with pytest.raises(lock.Locked) as caught:
            lock.acquire(client, "system", "run", wait=5, clock=clock, sleep=clock.sleep)
        message = str(caught.value)
        assert "'kestra-promote-lock'" in message and "state namespace 'system'" in message
        assert "`kestra-promote unlock` removes it" in message
        assert client.kv_get("system", lock.KEY) == value  # left as it was
        assert lock.break_lock(client, "system") is not None
        assert lock.read(client, "system") is None


def test_a_lease_with_naive_timestamps_reads_them_as_utc(target: Target):
    clock = Clock()
    with target.client() as client:
        client.kv_put("system", lock.KEY, {"holder": "an older tool", "token": "t0",
                                           "started": "2026-11-26T11:00:00",
                                           "expires": "2026-11-26T11:30:00"})
        with pytest.raises(lock.Locked) as caught:
            lock.acquire(client, "system", "run", wait=1, clock=clock, sleep=clock.sleep)
        assert "an older tool, started 2026-11-26T11:00:00+00:00" in str(caught.value)


def test_two_runs_writing_at_once_only_one_goes_on(target: Target):
    clock = Clock()
    with target.client() as client:
        other = lock.new_lease("the other run", T0)

        def race(seconds: float) -> None:  # the other run writes while we settle
            if not clock.slept:
                lock._write(client, "system", other)
            clock.sleep(seconds)

        with pytest.raises(lock.Locked) as caught:
            lock.acquire(client, "system", "this run", wait=5, clock=clock, sleep=race)
        assert "the other run" in str(caught.value)
        assert lock.read(client, "system") == other  # ours never overwrote theirs afterwards


def test_release_only_removes_our_own_lease_and_unlock_removes_any(target: Target):
    assert target.fake is not None
    clock = Clock()
    with target.client() as client:
        mine = lock.acquire(client, "system", "this run", ttl=timedelta(minutes=1), clock=clock,
                            sleep=clock.sleep)
        target.fake.clock_offset = 2 * 60
        theirs = lock.acquire(client, "system", "next run", clock=clock, sleep=clock.sleep)
        lock.release(client, "system", mine)  # ours expired and was taken: leave theirs
        assert lock.read(client, "system") == theirs
        assert "next run" in str(lock.break_lock(client, "system"))
        assert lock.read(client, "system") is None


def test_the_lease_carries_a_ttl_so_kestra_drops_it(target: Target):
    assert target.fake is not None
    with target.client() as client:
        lock.acquire(client, "system", "run", ttl=timedelta(minutes=30), settle=0)
    put = [r for r in target.fake.requests if r.method == "PUT" and r.path.endswith(lock.KEY)]
    assert put and put[0].headers["ttl"] == "PT1800S"


def test_a_failure_while_taking_the_lease_leaves_none_behind(target: Target):
    clock = Clock()
    with target.client() as client:
        def fail(seconds: float) -> None:
            raise KeyboardInterrupt  # Ctrl-C while settling

        with pytest.raises(KeyboardInterrupt):
            lock.acquire(client, "system", "run", clock=clock, sleep=fail)
        assert lock.read(client, "system") is None


def test_a_long_run_renews_its_lease(target: Target):
    clock = Clock()
    with target.client() as client:
        lease = lock.acquire(client, "system", "long run", ttl=timedelta(minutes=10), clock=clock,
                             sleep=clock.sleep)
        keeper = lock.Keeper(client, "system", lease, ttl=timedelta(minutes=10), clock=clock)
        clock.now += timedelta(minutes=4)
        keeper()  # not yet half gone: nothing written
        assert lock.read(client, "system") == lease
        clock.now += timedelta(minutes=2)
        keeper()
        renewed = lock.read(client, "system")
        assert renewed is not None and renewed.token == lease.token
        assert renewed.expires == (clock.now + timedelta(minutes=10)).replace(microsecond=0)


def test_unlock_removes_a_lease_of_any_shape_and_says_what_it_held(target: Target):
    with target.client() as client:
        client.kv_put("system", lock.KEY, {"holder": "an older tool", "token": "t0",
                                           "started": "2026-11-26T11:00:00",
                                           "expires": "2026-11-26T11:30:00"})
        naive = run_cli("unlock", env=target.env)
        assert naive.code == 0, naive.err
        assert "Removed the lock held by an older tool, started 2026-11-26T11:00:00+00:00" in naive.out
        client.kv_put("system", lock.KEY, "held by ops: do not promote")
        odd = run_cli("unlock", env=target.env)
        assert odd.code == 0, odd.err
        assert "Removed text stored under 'kestra-promote-lock', which was not a" in odd.out
        assert "do not promote" not in odd.out  # never shown: it may hold anything
        assert lock.read(client, "system") is None
        assert "No lock on the target" in run_cli("unlock", env=target.env).out


@pytest.mark.parametrize("value", [
    "held by ops",
    {"holder": "an older tool", "token": "t0", "started": "2026-11-26T11:00:00",
     "expires": "2026-11-26T11:30:00"}])
def test_apply_stops_with_a_clear_error_on_a_lease_it_cannot_take(target: Target, repo: GitRepo,
                                                                  value):
    repo.write("a.yml", flow_yaml("company.team", "a"))
    repo.commit()
    with target.client() as client:
        client.kv_put("system", lock.KEY, value)
    run = run_cli("apply", str(repo.path), "--lock-wait", "0", env=target.env)
    assert run.code != 0 and "Traceback" not in run.err
    assert "'kestra-promote-lock'" in run.err or "an older tool, started" in run.err, run.err
    assert "kestra-promote unlock" in run.err
    assert target.fake is not None and not target.fake.writes()
    with target.client() as client:
        assert client.kv_get("system", lock.KEY) == value  # left as it was


@pytest.mark.parametrize("ttl", [10**12, 10**18])
def test_a_lease_whose_ttl_is_out_of_any_calendar_stops_runs_cleanly(target: Target, ttl: int):
    """A lease-shaped value whose ttl no date can hold (another tool's, or edited by hand): a
    run neither crashes on it nor overwrites it, and `unlock` removes it."""
    clock = Clock()
    value = {"holder": "an older tool", "token": "t0", "started": "2026-11-26T11:00:00",
             "expires": "2026-11-26T11:30:00", "ttl": ttl}
    with target.client() as client:
        client.kv_put("system", lock.KEY, value)
        with pytest.raises(lock.Locked):
            lock.acquire(client, "system", "run", wait=1, clock=clock, sleep=clock.sleep)
        assert client.kv_get("system", lock.KEY) == value  # left as it was
    removed = run_cli("unlock", env=target.env)
    assert removed.code == 0 and "Traceback" not in removed.err, removed.err
    with target.client() as client:
        assert lock.read(client, "system") is None


def test_a_410_page_that_is_not_kestras_never_passes_for_an_expired_lease(target: Target):
    """Kestra answers an expired entry with its JSON error; a proxy's page with status 410 says
    nothing about the lease: a run must not take it for a free target and overwrite a live
    lease, but stop with a clear error."""
    fake = target.fake
    assert fake is not None
    clock = Clock()
    with target.client() as client:
        other = lock.acquire(client, "system", "run b", settle=0)
        fake.inject("GET", r"/kv/kestra-promote-lock$", status=410, times=100,
                    body=b"<html><body>Gone</body></html>", headers={"Content-Type": "text/html"})
        with pytest.raises(KestraError) as caught:
            lock.acquire(client, "system", "run a", wait=5, clock=clock, sleep=clock.sleep)
        assert "not Kestra's" in str(caught.value)
        fake.faults.clear()
        assert lock.read(client, "system") == other  # left as it was

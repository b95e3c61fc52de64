"""Two runs never both write: the lease is checked before every write step (fencing)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from conftest import Target, flow_yaml, source_from
from kestra_promote.engine.apply import apply_locked, apply_plan
from kestra_promote.engine.plan import plan
from kestra_promote.flows.desired import prepare
from kestra_promote.models import Plan, Status
from kestra_promote.target import lock
from kestra_promote.target.client import KestraClient
from kestra_promote.target.live import read_live_state

pytestmark = pytest.mark.fake_only
FLOWS = ("f1", "f2")


def _plan(client: KestraClient, message: str, commit: str) -> Plan:
    source = source_from(*[(f"{f}.yml", flow_yaml("company.team", f, message)) for f in FLOWS])
    live = read_live_state(client, ["company.team"], state_namespace="system",
                           name=source.config.name)
    return plan(prepare(source), live, source.config, commit=commit)


def _run(target: Target, planned: Plan, message: str, commit: str,
         results: dict[str, Any]) -> None:
    with target.client() as client:
        try:  # the command line's way: plan again when the target changed since the plan
            results[message] = apply_locked(
                client, planned, holder=f"run {message}", lock_wait=0.5,
                replan=lambda: _plan(client, message, commit))[1]
        except Exception as exc:  # refused: Locked, StalePlan
            results[message] = exc


def test_a_run_whose_lease_was_overwritten_never_writes_on(target: Target):
    """Run B reads the lease as free, but its write takes 3 s to land. Run A reads it as free
    too, writes and confirms its own, then is slow reading the target: B's lease lands over A's
    and B confirms it too. A must see, before its first write, that the lease is no longer its
    own and stop: the target ends with B's content and B's inventory, only B reports success."""
    fake = target.fake
    assert fake is not None
    for flow in FLOWS:
        fake.seed_flow(flow_yaml("company.team", flow, "v0"))
    with target.client() as client:
        plan_a, plan_b = _plan(client, "a", "aaaa"), _plan(client, "b", "bbbb")
    fake.inject("PUT", r"/kv/kestra-promote-lock$", delay=3.0)  # the first lease write: B's
    fake.inject("GET", r"/api/v1/main/kv$", delay=4.0)  # the first read of the target: A's
    results: dict[str, Any] = {}
    b = threading.Thread(target=_run, args=(target, plan_b, "b", "bbbb", results))
    b.start()
    deadline = time.monotonic() + 10
    while not any(r.method == "PUT" and r.path.endswith(lock.KEY) for r in fake.requests):
        assert time.monotonic() < deadline, "run B never wrote its lease"
        time.sleep(0.01)  # B's lease write is on its way (it lands 3 s later): now A
    _run(target, plan_a, "a", "aaaa", results)
    b.join()

    succeeded = [m for m, r in results.items() if not isinstance(r, Exception) and r.ok]
    assert succeeded == ["b"], results
    # refused before its first write: its lease is not its own any more (or, on a machine so
    # slow that B's lease landed before A read its own back, A never took it)
    assert isinstance(results["a"], (lock.LeaseLost, lock.Locked)), results["a"]
    assert "run b" in str(results["a"])
    assert {fid: src for (ns, fid), src in fake.current().items()} == {
        f: flow_yaml("company.team", f, "b") for f in FLOWS}
    with target.client() as client:
        inventory = client.kv_get("system", "kestra-promote.default")
        assert [h["commit"] for h in inventory["history"]] == ["bbbb"]
        assert lock.read(client, "system") is None  # both gave back what was theirs


@pytest.mark.parametrize("parallel", [1, 8])
def test_a_run_that_loses_its_lease_mid_way_stops_and_reverts_only_its_own(target: Target,
                                                                           parallel: int):
    """After A's first write, another run takes the lease (A's expired, or was broken) and
    writes f1. A's check before its next step stops it; its revert leaves f1, which holds the
    other run's write, as it is: a revert never restores a version older than another run's."""
    fake = target.fake
    assert fake is not None
    for flow in FLOWS:
        fake.seed_flow(flow_yaml("company.team", flow, "v0"))
    with target.client() as client:
        planned = _plan(client, "a", "aaaa")
        lease = lock.acquire(client, "system", "run a", settle=0)
        keeper = lock.Keeper(client, "system", lease)

        def heartbeat() -> None:
            if fake.current()[("company.team", "f1")] == flow_yaml("company.team", "f1", "a") \
                    and not other:
                lock.break_lock(client, "system")  # `kestra-promote unlock`, say
                other.append(lock.acquire(client, "system", "run b", settle=0))
                client.update_flow("company.team", "f1", flow_yaml("company.team", "f1", "b"))
            keeper()

        other: list[lock.Lease] = []
        result = apply_plan(client, planned, heartbeat=heartbeat, parallel=parallel)
    assert not result.ok
    # one by one, A stops before f2; with both flows sent at once, f2 is undone
    assert [o.status for o in result.outcomes] == [
        Status.NOT_REVERTED, Status.SKIPPED if parallel == 1 else Status.REVERTED]
    assert "did not write" in result.outcomes[0].message
    assert fake.current()[("company.team", "f1")] == flow_yaml("company.team", "f1", "b")
    assert fake.current()[("company.team", "f2")] == flow_yaml("company.team", "f2", "v0")
    assert ("main", "system") not in fake.kv or "kestra-promote.default" not in fake.kv[
        ("main", "system")]  # no inventory of A's
    with target.client() as client:
        assert lock.read(client, "system") == other[0]

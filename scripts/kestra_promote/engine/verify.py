"""Verification after apply, and rollback when a check fails.

After an apply that wrote something, the checks of production's policy (``verify:``, see
``gates.verification``) run against the target: a flow started and required to succeed, a soak
during which no execution of a flow the run created or updated may fail. The outcome goes into
the run's history record (``verified: true`` only when every check passed), then:

- ``on_failure: hold``: the target keeps the new commit; the run reports a failure;
- ``on_failure: rollback`` (the default): the target goes back to the last commit whose run
  passed its checks (``rollback_target``), planned from that commit's files and applied by the
  same all-or-nothing apply, recorded in the history as a ``rollback`` run with its reason.

``apply_verified`` is the one entry point: the CLI's ``apply`` and the promotion flow's task
both call it. ``run_checks`` alone is ``kestra-promote verify``.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone
from typing import Any, Callable, ContextManager, Iterable, Mapping, Sequence

from kestra_promote.engine.apply import apply_locked
from kestra_promote.errors import ExecutionTimeout, KestraError, KestraPromoteError, PlanRefused
from kestra_promote.gates.verification import RunCheck, SoakCheck, Verify, shown
from kestra_promote.models import (
    Action,
    ApplyResult,
    CheckResult,
    FlowKey,
    Plan,
    Problem,
    Status,
    Verification,
)
from kestra_promote.target import inventory as inv
from kestra_promote.target import lock, store
from kestra_promote.target.client import KestraClient
from kestra_promote.target.executions import state_of

# a commit's files, planned against the target: how a rollback is made (``--ref``'s reading)
SourceAt = Callable[[str], ContextManager[Callable[[], Plan]]]
# marks a verified commit for the next stage: (plan, its checks as recorded, when) -> the tag
# pushed, or "" when this instance is no stage before another
Mark = Callable[[Plan, Sequence[Mapping[str, Any]], datetime], str]
LABEL = {"kestra-promote": "verify"}  # on every execution a check starts
AUTOMATIC = ("webhook", "schedule")  # triggers that never promote a rolled-back commit again


def written_flows(plan: Plan, result: ApplyResult) -> list[FlowKey]:
    """The flows this run created or updated (as applied)."""
    return [o.change.key for o in result.outcomes if isinstance(o.change.key, FlowKey)
            and o.status is Status.APPLIED and o.change.action in (Action.CREATE, Action.UPDATE)]


def wrote_something(result: ApplyResult) -> bool:
    return any(o.status is Status.APPLIED for o in result.outcomes)


def run_checks(client: KestraClient, verify: Verify, flows: Sequence[FlowKey], since: datetime,
               *, sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> tuple[CheckResult, ...]:
    """Run the checks in order, stopping at the first that fails. ``flows``: those a soak
    watches; ``since``: when the apply ended (a soak looks at executions started since)."""
    results: list[CheckResult] = []
    for check in verify.checks:
        if isinstance(check, RunCheck):
            result = _run(client, check, sleep)
        else:
            result = _soak(client, check, flows, since, sleep, clock)
        results.append(result)
        if not result.passed:
            break
    return tuple(results)


def _run(client: KestraClient, check: RunCheck, sleep: Callable[[float], None]) -> CheckResult:
    began = time.monotonic()
    where = f"{check.namespace}.{check.flow}"
    try:
        started = client.trigger_execution(check.namespace, check.flow, check.inputs,
                                           labels=LABEL)
    except KestraError as exc:
        return CheckResult(check.name, False, f"{where} could not be started: {exc}",
                           seconds=time.monotonic() - began)
    execution = str(started["id"])
    timeout = check.timeout.total_seconds()
    try:
        done = client.wait_for_execution(execution, timeout=timeout,
                                         poll=min(2.0, max(0.1, timeout / 20)))
    except ExecutionTimeout as exc:
        state = state_of(exc.execution) if exc.execution else None
        try:  # a check that does not end is stopped, not left running
            client.kill_execution(execution)
            stopped = "killed"
        except KestraError as again:
            stopped = f"killing it failed ({again}): it may still be running"
        return CheckResult(check.name, False, f"{where} did not end within "
                           f"{shown(check.timeout)} (execution {execution} still "
                           f"{state or 'not started'}; {stopped})", execution, state,
                           time.monotonic() - began)
    except KestraError as exc:
        return CheckResult(check.name, False, f"{where}: reading execution {execution} failed: "
                           f"{exc}", execution, None, time.monotonic() - began)
    state = state_of(done)
    passed = state == "SUCCESS"
    return CheckResult(check.name, passed, f"{where} ended in {state}" + (
        "" if passed else ", not SUCCESS"), execution, state, time.monotonic() - began)


def _soak(client: KestraClient, check: SoakCheck, flows: Sequence[FlowKey], since: datetime,
          sleep: Callable[[float], None], clock: Callable[[], float]) -> CheckResult:
    began = clock()
    elapsed = (datetime.now(timezone.utc) - since).total_seconds()
    deadline = began + max(0.0, check.duration.total_seconds() - elapsed)
    watched: dict[str, set[str]] = {}
    for key in flows:
        watched.setdefault(key.namespace, set()).add(key.id)
    while True:
        for namespace, ids in sorted(watched.items()):
            try:  # one search a namespace, every state the soak fails on
                found = client.search_executions(namespace=namespace, states=check.fail_on,
                                                 since=since)
            except KestraError as exc:
                return CheckResult(check.name, False, f"searching the executions of {namespace} "
                                   f"failed: {exc}", seconds=clock() - began)
            bad = [e for e in found if e.get("flowId") in ids]
            if bad:
                first = bad[0]
                state = state_of(first)
                return CheckResult(check.name, False, f"{namespace}.{first.get('flowId')} "
                                   f"execution {first.get('id')} ended in {state} during the "
                                   f"soak ({len(bad)} such execution(s))", str(first.get("id")),
                                   state, clock() - began)
        left = deadline - clock()
        if left <= 0:
            return CheckResult(check.name, True, f"no execution of {len(flows)} flow(s) ended in "
                               f"{' or '.join(check.fail_on)} for {shown(check.duration)}",
                               seconds=clock() - began)
        sleep(min(check.interval.total_seconds(), left))


# -- the history ---------------------------------------------------------------------------------


def failed_commits(history: Iterable[Mapping[str, Any]]) -> set[str]:
    return {str(run["commit"]) for run in history if run.get("verified") is False
            and run.get("checks") and run.get("commit")}


def is_verified(passed: bool, commit: str | None, history: Iterable[Mapping[str, Any]],
                dirty: bool) -> bool:
    """Whether a run whose checks ``passed`` is recorded verified: a commit promoted as
    committed, that never failed its checks before."""
    return passed and bool(commit) and not dirty and commit not in failed_commits(history)


def rolled_back_from(history: Iterable[Mapping[str, Any]], commit: str | None) -> bool:
    """Whether a rollback undid ``commit`` (its checks failed)."""
    return bool(commit) and any(isinstance(run.get("rollback"), Mapping)
                                and run["rollback"].get("from") == commit for run in history)


def rollback_target(history: Sequence[Mapping[str, Any]], failed: str | None
                    ) -> tuple[str | None, str]:
    """The commit to roll back to: the newest run recorded ``verified: true`` (its checks
    passed), of a commit that never failed its checks and was promoted as committed (not
    dirty); else (None, why not)."""
    refused = failed_commits(history) | ({failed} if failed else set())
    for run in reversed(history):
        commit = run.get("commit")
        if run.get("verified") is True and isinstance(commit, str) and commit \
                and commit not in refused and not run.get("dirty"):
            return commit, ""
    return None, ("no earlier run of this source passed production's checks (only those are "
                  "recorded verified): not rolled back automatically; to go back by hand, "
                  "apply an earlier commit with --ref")


def _record(client: KestraClient, plan: Plan, when: str, fields: Mapping[str, Any],
            holder: str, lock_wait: float,
            also: Callable[[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]],
                           Mapping[str, Any]] | None = None,
            ) -> tuple[tuple[Mapping[str, Any], ...], str]:
    """Add ``fields`` to this run's history record (found by its time and commit), under the
    lease: (the history as written, a note when it could not be). ``also`` adds more, still
    under the lease, from the runs recorded before this one and after it."""
    namespace, key = plan.scope.state_namespace, inv.kv_key(plan.name)
    try:
        with lock.held(client, namespace, holder, wait=lock_wait) as lease:
            current = store.read(client, namespace, key)
            history = list(current.history) if current is not None else []
            for index in range(len(history) - 1, -1, -1):
                run = history[index]
                if run.get("time") == when and run.get("commit") == plan.commit:
                    more = also(history[:index], history[index + 1:]) if also else {}
                    history[index] = {**run, **fields, **more}
                    break
            else:
                return tuple(history), f"the run's record was not found in {key}: the checks' " \
                                       "outcome is not in the history"
            assert current is not None
            lock.ensure_ours(client, namespace, lease)  # the lease is a fencing token
            store.write(client, namespace, dataclasses.replace(current, history=tuple(history)),
                        previous=current)
            return tuple(history), ""
    except KestraError as exc:
        return (), f"recording the checks in {key} failed: {exc}"


def apply_verified(
    client: KestraClient, plan: Plan, *, verify: Callable[[], Verify | None],
    source_at: SourceAt | None, holder: str, lock_wait: float = lock.DEFAULT_WAIT,
    sleep: Callable[[float], None] = time.sleep, mark: Mark | None = None, **options: Any,
) -> tuple[Plan, ApplyResult]:
    """``apply_locked``, then production's checks when it wrote something (``verify`` reads
    them: only then), recorded in the run's history, and a rollback when one fails and the
    policy says so (``source_at``: a commit's plan, None when no repository is at hand). A
    verified commit is marked for the next stage (``mark``) under the lease that records it,
    unless another run wrote the target while its checks ran."""
    before = plan.inventory_before.history if plan.inventory_before else ()
    if options.get("trigger") in AUTOMATIC and not plan.is_empty \
            and rolled_back_from(before, plan.commit):
        assert plan.commit is not None
        why = (f"commit {plan.commit[:12]} failed production's checks and was rolled back: a "
               f"{options['trigger']} run does not promote it again (push a fix, or promote it "
               "by hand); nothing was written")
        raise PlanRefused(why, [Problem(why)])
    when = datetime.now(timezone.utc).replace(microsecond=0)
    options.setdefault("now", when)
    when_text = options["now"].isoformat(timespec="seconds")
    plan, result = apply_locked(client, plan, holder=holder, lock_wait=lock_wait, **options)
    if not result.ok or not wrote_something(result) or plan.managed_after is None:
        return plan, result
    try:
        spec = verify()
    except KestraError as exc:  # applied, but what to check is unknown: held, and said
        failed = CheckResult("policy", False, f"reading production's checks failed: {exc}")
        return plan, dataclasses.replace(result, verification=Verification((failed,), "hold"))
    if spec is None:
        return plan, result
    since = datetime.now(timezone.utc)
    checks = run_checks(client, spec, written_flows(plan, result), since, sleep=sleep)
    passed = all(check.passed for check in checks)
    dirty = bool((options.get("extra") or {}).get("dirty"))
    fields: dict[str, Any] = {"checks": [c.to_json() for c in checks]}
    if not passed:
        fields["on_failure"] = spec.on_failure
    settled: dict[str, Any] = {}

    def settle(earlier: Sequence[Mapping[str, Any]],
               later: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        """Under the lease, from the history as it is now: whether the run is verified (not
        when its commit failed its checks before, even in a run that ended while this one
        waited), and its mark for the next stage, unless another run wrote the target since
        this one (the checks then saw that run's flows, not this commit's)."""
        settled["verified"] = verified = is_verified(passed, plan.commit, earlier, dirty)
        if not verified or mark is None:
            return {"verified": verified}
        if later:
            settled["error"] = _unmarked(
                plan, "the target changed while its checks ran (another run applied "
                f"{str(later[-1].get('commit') or '')[:12] or 'files'} since), so they did not "
                "check this commit alone")
            return {"verified": True}
        settled["tag"], settled["error"] = _mark(mark, plan, fields["checks"])
        return {"verified": True, **({"marked": settled["tag"]} if settled["tag"] else {})}

    history, note = _record(client, plan, when_text, fields, holder, lock_wait, settle)
    if "verified" not in settled and mark is not None and plan.stage.get("next") \
            and is_verified(passed, plan.commit, before, dirty):
        settled["error"] = _unmarked(plan, note)
    marked, mark_error = settled.get("tag", ""), settled.get("error", "")
    verification = Verification(checks, spec.on_failure, notes=(note,) if note else (),
                                marked=marked, mark_error=mark_error)
    if passed or spec.on_failure == "hold":
        return plan, dataclasses.replace(result, verification=verification)
    reason = next(c.message for c in checks if not c.passed)
    verification = _rollback(client, plan, verification, history or before, reason, source_at,
                             holder, lock_wait)
    return plan, dataclasses.replace(result, verification=verification)


def _mark(mark: Mark, plan: Plan, checks: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """(the tag that marks the verified commit for the next stage, why it could not be)."""
    try:
        return mark(plan, checks, datetime.now(timezone.utc).replace(microsecond=0)), ""
    except KestraPromoteError as exc:
        return "", _unmarked(plan, str(exc))


def _unmarked(plan: Plan, why: str) -> str:
    return (f"commit {(plan.commit or '')[:12]} passed its checks but was not marked verified "
            f"for the next stage: {why}")


def _rollback(client: KestraClient, plan: Plan, verification: Verification,
              history: Sequence[Mapping[str, Any]], reason: str, source_at: SourceAt | None,
              holder: str, lock_wait: float) -> Verification:
    commit, why = rollback_target(history, plan.commit)
    if commit is None:
        return dataclasses.replace(verification, rollback_error=why)
    if source_at is None:
        return dataclasses.replace(verification, rollback_to=commit, rollback_error=(
            f"no repository at hand to read commit {commit[:12]} from (a saved plan): not "
            f"rolled back; apply it with --ref {commit[:12]} from the repository"))
    record = {"rollback": {"from": plan.commit, "reason": reason}}
    try:
        with source_at(commit) as replan:
            back = replan()
            _, done = apply_locked(client, back, replan=replan, holder=holder,
                                   lock_wait=lock_wait, trigger="rollback", ref=commit,
                                   extra=record)
    except KestraPromoteError as exc:
        return dataclasses.replace(verification, rollback_to=commit, rollback_error=(
            f"the rollback to {commit[:12]} was not made: {exc}"))
    error = "" if done.ok else f"the rollback to {commit[:12]} failed: {done.error or 'see above'}"
    return dataclasses.replace(verification, rollback_to=commit, rollback=done,
                               rollback_error=error)


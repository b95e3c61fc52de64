"""The bridge to a Kestra script task: settings in through env vars and files, results out
through Kestra's ``::{json}::`` lines (outputs, counters, logs, via the ``kestra`` package: see
``emit``) and files picked up by ``outputFiles``.

Two tasks of the promotion flows run this module (``python -m kestra_promote task ...``):

``decide``   whether this execution promotes: always for a manual or scheduled run, and for a
             webhook when the event is a push to what this promotion follows. Ignored events end
             quickly and successfully, with the reason as an output and a log line; rejected ones
             (bad signature or token) fail the task.
``promote``  plan, apply or status of the cloned repository against the target, writing
             ``report.md`` and ``report.json`` next to it.

Nothing from a webhook reaches code: flows hand the request over in files (``inputFiles``), and
settings in env vars; this module reads them as data.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
import signal
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

from kestra_promote.git import gitremote
from kestra_promote.target import lock
from kestra_promote.gates import notify, review, webhook
from kestra_promote.engine import planfile
from kestra_promote import report
from kestra_promote.engine.apply import (
    Interrupted,
    check_windows,
    ensure_allowed,
    ensure_valid,
)
from kestra_promote.target.client import Connection, KestraClient, connect
from kestra_promote.target.transport import DEFAULT_MAX_BODY
from kestra_promote.errors import (
    KestraPromoteError,
    NotFound,
    PlanRefused,
    SettingsError,
    TargetRejected,
    WindowDenied,
)
from kestra_promote.target.live import namespace_tree
from kestra_promote.models import ApplyResult, Plan
from kestra_promote.git.origin import origin
from kestra_promote.kestra_task import previewing, rights, settings, verifying
from kestra_promote.kestra_task.posting import review_of as posting_of
from kestra_promote.kestra_task.envvalues import flag as _flag
from kestra_promote.kestra_task.envvalues import text as _text
from kestra_promote.kestra_task.rights import classify_ref, repo_tags
from kestra_promote.kestra_task.emit import Emitter, KestraLogHandler
from kestra_promote.engine.promotion import open_promotion
from kestra_promote.git.source import check_namespace
from kestra_promote.textsafe import safe_text


def _read(path: str | None) -> bytes | None:
    if not path or not os.path.isfile(path):
        return None
    data = Path(path).read_bytes()
    return data if data.strip() else None


DELIVERIES_KEY = "kestra-promote-deliveries"
DELIVERIES_KEPT = 200


def _deliveries(client: KestraClient, namespace: str) -> list[str]:
    try:
        seen = client.kv_get(namespace, DELIVERIES_KEY)
    except NotFound:
        return []
    return [s for s in seen if isinstance(s, str)] if isinstance(seen, list) else []


def _replayed(env: Mapping[str, str], delivery: str | None) -> bool:
    """Whether this delivery was promoted before (ids recorded in KV after each promotion)."""
    if delivery is None or not _text(env, "KESTRA_URL"):
        return False
    with connect(_connection(env)) as client:
        return delivery in _deliveries(client, _text(env, "KP_DELIVERIES_NAMESPACE") or "system")


def _record_delivery(env: Mapping[str, str], client: KestraClient) -> None:
    """Remember a delivery once its promotion succeeded: a redelivery of a failed one runs."""
    delivery = _text(env, "KP_DELIVERY")
    if not delivery:
        return
    namespace = _text(env, "KP_DELIVERIES_NAMESPACE") or "system"
    seen = [d for d in _deliveries(client, namespace) if d != delivery]
    client.kv_put(namespace, DELIVERIES_KEY, (seen + [delivery])[-DELIVERIES_KEPT:],
                  description="kestra-promote: webhook deliveries already promoted")


def _followed(env: Mapping[str, str]) -> tuple[webhook.Target, rights.TagRule | None]:
    """What is followed, and production's rule for tags, from the target when the task has one."""
    return rights.followed(env, _connection(env) if _text(env, "KESTRA_URL") else None)


def task_decide(env: Mapping[str, str], emit: Emitter) -> int:
    """Decide whether this execution promotes, and what to clone (``kind`` and ``checkout``).

    A request never chooses what is promoted: a webhook only says "look again"; the promotion
    then takes the followed branch's head (cloning it) or, when following tags, the newest
    matching tag as the repository lists it. Only a person (the ``ref`` input) picks a ref, and
    only within what is followed (see ``rights``): ``followed_kind`` and ``followed`` name what
    to clone beside it to check that."""
    trigger = _text(env, "KP_TRIGGER") or "manual"
    ref = (env.get("KP_REF") or "").strip()  # as typed: "default" may be a tag's name
    target, rule = _followed(env)
    Decision = webhook.Decision
    if trigger == "webhook":
        headers = webhook.parse_json(_read(env.get("KP_WEBHOOK_HEADERS")))
        headers = webhook.normalize_headers(headers if isinstance(headers, dict) else {})
        body = webhook.parse_json(_read(env.get("KP_WEBHOOK_BODY")))
        secret, provider = _text(env, "KP_WEBHOOK_SECRET"), _text(env, "KP_PROVIDER")
        if secret and not provider:
            # the provider is read from headers the sender chooses: without the setting, a
            # request could claim one whose proof Kestra cannot check to skip one it can
            raise SettingsError("a webhook secret is set (KESTRA_PROMOTE_WEBHOOK_SECRET), but "
                                "promote_webhook_provider is not: set it to the one Git provider "
                                "the repository is on (github, gitlab, gitea, forgejo, gogs, "
                                "bitbucket, bitbucket-server)")
        # Kestra passes the parsed body only, never its bytes: signatures cannot be verified here
        decision = webhook.decide(headers, body, target=target, secret=secret,
                                  require_signature=bool(_flag(env, "KP_REQUIRE_SIGNATURE")),
                                  expect=provider,
                                  pull_requests=bool(_flag(env, "KP_PULL_REQUESTS")),
                                  previews=bool(_flag(env, "KP_PREVIEWS")))
        delivery = webhook.delivery_id(headers)
        if decision.decision == "review":
            return _review(env, emit, decision, trigger)
        if decision.decision == "sync" and _replayed(env, delivery):
            decision = Decision("ignore", f"delivery {delivery} was promoted before: a replay "
                                "changes nothing", decision.provider, decision.event)
        emit.outputs({"delivery": delivery or ""})
    elif ref:
        return _by_hand(env, emit, ref, target, rule, trigger)
    else:
        if trigger == "schedule" and _flag(env, "KP_PREVIEWS"):  # stale previews go first
            previewing.expire(env, emit, _connection(env))
        decision = Decision("sync", f"{trigger} run of {target.describe()}", "kestra", trigger)
    if decision.decision != "sync":
        return _decided(emit, decision, trigger, "", "")
    if not target.tags:
        return _decided(emit, decision, trigger, "branch", target.branch or "main")
    newest = rights.newest_tag(repo_tags(env), target.tags, rule)
    if newest is None:
        verdict = "reject" if trigger == "manual" else "ignore"
        return _decided(emit, Decision(verdict, f"no tag of the repository matches "
                                       f"{target.tags!r}: nothing to promote", decision.provider,
                                       decision.event), trigger, "", "")
    note = f"{decision.reason}; the newest tag matching {target.tags!r} is {newest!r}"
    return _decided(emit, Decision("sync", note, decision.provider, decision.event,
                                   f"refs/tags/{newest}", None, decision.verified),
                    trigger, "tag", newest)


def _by_hand(env: Mapping[str, str], emit: Emitter, ref: str, target: webhook.Target,
             rule: rights.TagRule | None, trigger: str) -> int:
    """A ref given by hand: following a branch, any commit, tag or branch, checked once cloned
    to be in the followed branch's history (cloned beside it); following tags, a tag the
    promotion could follow, with the newest one cloned beside it for its settings."""
    kind, checkout = classify_ref(ref, target)
    decision = webhook.Decision("sync", f"{trigger} run of {kind} {checkout!r}", "kestra",
                                trigger, ref)
    if not target.tags:
        branch = target.branch or "main"
        followed = ("", "") if (kind, checkout) == ("branch", branch) else ("branch", branch)
        return _decided(emit, decision, trigger, kind, checkout, followed)
    if kind != "tag" or not rights.followable_tag(checkout, target.tags, rule):
        return _decided(emit, webhook.Decision(
            "reject", f"{ref!r} is not a tag this promotion follows ({target.describe()}, "
            "versions only): a ref given by hand may only name one", "kestra", trigger),
            trigger, "", "")
    tags = repo_tags(env)
    if checkout not in tags:
        return _decided(emit, webhook.Decision(
            "reject", f"the repository has no tag {checkout!r}", "kestra", trigger),
            trigger, "", "")
    newest = rights.newest_tag(tags, target.tags, rule) or checkout
    return _decided(emit, decision, trigger, kind, checkout, ("tag", newest))


def _review(env: Mapping[str, str], emit: Emitter, decision: webhook.Decision,
            trigger: str) -> int:
    """A pull request to plan: its head commit as the repository has it now (the payload's
    number only names the request), cloned and planned against production, never applied."""
    url = _text(env, "KP_REPO_URL")
    if not url:
        raise SettingsError("KP_REPO_URL is not set: the flows read it from promote_repo_url")
    assert decision.ref is not None
    head = gitremote.ref_commit(url, decision.ref, username=_text(env, "KP_GIT_USERNAME"),
                                password=_text(env, "KP_GIT_PASSWORD"))
    if head is None or not re.fullmatch(r"[0-9a-f]{40}", head):
        return _decided(emit, webhook.Decision(
            "ignore", f"{decision.reason}; but the repository has no {decision.ref}",
            decision.provider, decision.event, verified=decision.verified), trigger, "", "")
    request = decision.ref.split("/")[2]
    emit.outputs({"request": request, "post": "gitlab" if decision.provider == "gitlab"
                  else "github" if decision.provider == "github" else "gitea"})
    return _decided(emit, dataclasses.replace(decision, commit=head), trigger, "commit", head)


def _decided(emit: Emitter, decision: webhook.Decision, trigger: str, kind: str,
             checkout: str, followed: tuple[str, str] = ("", "")) -> int:
    synced = decision.decision in ("sync", "review")
    values = {**decision.to_dict(), "trigger": trigger, "kind": kind if synced else "",
              "checkout": checkout if synced else "",
              "followed_kind": followed[0] if synced else "",
              "followed": followed[1] if synced else ""}
    emit.outputs({k: ("" if v is None else v) for k, v in values.items()})
    level = {"sync": "INFO", "review": "INFO", "ignore": "INFO",
             "reject": "ERROR"}[decision.decision]
    if synced and trigger == "webhook" and not decision.verified:
        level = "WARN"  # promoted on the URL key alone: say so where people look
    emit.log(level, f"{decision.decision}: {decision.reason}")
    return 1 if decision.decision == "reject" else 0


def _connection(env: Mapping[str, str]) -> Connection:
    url = _text(env, "KESTRA_URL")
    if not url:
        raise SettingsError("no target: set KESTRA_URL (the flows read it from their settings)")
    limit = _text(env, "KESTRA_MAX_REQUEST_BYTES")
    if limit and not limit.isdigit():
        raise SettingsError(f"KESTRA_MAX_REQUEST_BYTES must be a number of bytes, not {limit!r}")
    return Connection(url=url, tenant=_text(env, "KESTRA_TENANT") or "main",
                      username=_text(env, "KESTRA_USERNAME"), password=_text(env, "KESTRA_PASSWORD"),
                      token=_text(env, "KESTRA_API_TOKEN"),
                      max_body=int(limit) if limit else DEFAULT_MAX_BODY)


def _counts(plan: Plan) -> dict[str, int]:
    return {action: count for action, count in plan.summary.items()}


def _write_reports(folder: Path, markdown: str, data: dict[str, Any]) -> None:
    (folder / "report.md").write_text(markdown, encoding="utf-8")
    (folder / "report.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _execution_link(env: Mapping[str, str]) -> str | None:
    """This execution's page: KP_UI_URL (production's UI) and KP_EXECUTION (its
    tenant/executions/... path), as Kestra's UriProvider builds it; None without a UI URL."""
    ui, execution = _text(env, "KP_UI_URL"), _text(env, "KP_EXECUTION")
    return f"{ui.rstrip('/')}/ui/{execution}" if ui and execution else None


def _notifier(env: Mapping[str, str]) -> notify.Notifier | None:
    """From KP_NOTIFY_URL (a secret), KP_NOTIFY_ON, KP_NOTIFY_FORMAT, linking this execution."""
    try:
        return notify.notifier_from(_text(env, "KP_NOTIFY_URL"), _text(env, "KP_NOTIFY_FORMAT"),
                                    _text(env, "KP_NOTIFY_ON"), _execution_link(env))
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def task_promote(env: Mapping[str, str], emit: Emitter, *, workdir: Path) -> int:
    """Plan, apply or report status of the clone against the target; an apply is notified when
    KP_NOTIFY_URL is set (a failed notification is a warning, never a failure)."""
    notifier = _notifier(env) if (_text(env, "KP_MODE") or "").lower() in (
        "apply", "apply-saved") else None
    seen: list[Plan] = []

    def tell(event: notify.Event) -> None:
        if (why := notify.send(notifier, event)) is not None:
            emit.log("WARN", f"{why} (the promotion itself is not affected)")

    target = notify.safe_target(_text(env, "KESTRA_URL") or "")  # never its credentials
    try:
        code, event = _promote(env, emit, workdir, seen, target)
    except (PlanRefused, TargetRejected) as error:
        plan = seen[-1] if seen else None
        tell(notify.Event(plan.name if plan else "?", "refused", str(error),
                          plan.commit if plan else None, target, drifted=notify.drifted(plan)))
        raise
    except KestraPromoteError as error:
        plan = seen[-1] if seen else None
        tell(notify.Event(plan.name if plan else "?", "failed", str(error),
                          plan.commit if plan else None, target, drifted=notify.drifted(plan)))
        raise
    if event is not None:
        tell(event)
    return code


def _promote(env: Mapping[str, str], emit: Emitter, workdir: Path, seen: list[Plan],
             target: str) -> tuple[int, notify.Event | None]:
    mode = (_text(env, "KP_MODE") or "plan").lower()
    if mode not in ("plan", "apply", "status", "apply-saved"):
        raise SettingsError(f"KP_MODE must be plan, apply, apply-saved or status, not {mode!r}")
    if mode == "apply-saved":
        return _apply_saved(env, emit, workdir, seen, target)
    # production's approval setting fails closed; a ref given by hand is checked before all
    approval = rights.approval_setting(env)
    approval = rights.check_by_hand(env, workdir) or approval
    folder = workdir / (_text(env, "KP_SOURCE") or "repo")
    connection = _connection(env)
    for warning in connection.warnings():  # --insecure and clear-text credentials, as the CLI
        emit.log("WARN", warning)
    # a pull request's plan, posted on it: made as production knows the repository
    posting = posting_of(env, _execution_link(env)) if mode == "plan" else None
    if posting is not None and _flag(env, "KP_PREVIEWS"):  # its preview, up or down, instead
        return previewing.run(env, emit, workdir, folder, connection, posting), None
    config = verifying.task_config(env, folder)
    with connect(connection) as client:
        # production's policy, kept in the promotion's own namespace unless told otherwise
        promotion = open_promotion(client, folder, config, origin=origin(folder),
                                   policy=functools.partial(settings.read_policy, client, env),
                                   review=posting is not None,
                                   stage_tags=functools.partial(repo_tags, env))

        def replan() -> Plan:
            return promotion.plan(adopt=bool(_flag(env, "KP_ADOPT")))

        plan = replan()
        seen.append(plan)
        if mode == "status":
            text = report.render_status_text(plan)
            emit.text(text)
            _write_reports(workdir, report.render_status_markdown(plan), report.plan_to_dict(plan))
            emit.outputs({"action": "status", "ok": True, "commit": plan.commit or "",
                          "out_of_sync": len(report.out_of_sync(plan)), **_counts(plan)})
            return 0, None
        emit.text(report.render_plan_text(plan))
        for warning in plan.warnings:
            emit.log("WARN", str(warning))
        if mode == "plan":
            error: KestraPromoteError | None = None
            try:
                warnings = ensure_valid(client, plan.pending)
                for warning in warnings:
                    emit.log("WARN", str(warning))
                ensure_allowed(plan)
            except (TargetRejected, PlanRefused) as refused:
                error = refused
            _write_reports(workdir, report.render_plan_markdown(plan), report.plan_to_dict(plan))
            if posting is not None:
                try:
                    review.publish(posting, plan, getattr(error, "problems", ()),
                                   str(error) if error is not None else None,
                                   note=lambda text: emit.log("INFO", text))
                except review.ReviewError as exc:
                    emit.log("WARN", f"posting the plan to {posting.provider} failed: {exc}")
            if error is not None:
                raise error
            emit.outputs({"action": "plan" if not plan.is_empty else "no-changes", "ok": True,
                          "commit": plan.commit or "", **_counts(plan)})
            emit.log("INFO", report.summary_line(plan))
            return 0, None
        gate = _gate(env)
        # production's (promote_approval, or its policy's), the commit's or the followed
        # head's: neither a commit nor an older commit chosen by hand can switch it off
        required = approval or promotion.config.approval == "required"
        extra = _overrides(env, emit, required)
        if required and not (plan.is_empty and plan.managed_after is None):
            return _await_approval(client, connection, plan, gate, emit, workdir, target,
                                   extra)

        def planned_again(plan: Plan) -> None:
            emit.log("WARN", "the target changed while the plan was made: planned again")
            emit.text(report.render_plan_text(plan))

        outcome = _apply_gated(emit, workdir, plan, target, gate, lambda extra: verifying.apply(
            env, workdir, client, plan, replan=replan, on_replan=planned_again, gate=gate,
            holder=_text(env, "KP_HOLDER") or lock.default_holder("kestra-promote task"),
            trigger=_text(env, "KP_TRIGGER") or "kestra", ref=_text(env, "KP_REF"),
            extra=extra), extra)
        if isinstance(outcome, notify.Event):
            return 0, outcome
        plan, result = outcome
        seen.append(plan)
        if result.ok:
            _record_delivery(env, client)
    return _applied(emit, workdir, plan, result, target)


def _overrides(env: Mapping[str, str], emit: Emitter, approval: bool) -> dict[str, Any]:
    """The overrides a run by hand asked for, and who asked, for the history (said at WARN)."""
    asked = rights.asked_overrides(env)
    if not asked:
        return {}
    who = rights.requester(env)
    emit.log("WARN", f"{who} asked to override {rights.describe(asked)}: recorded in the history"
             + ("; the apply waits for approval" if approval else ""))
    return {"overrides": asked, "requested_by": who}


def _gate(env: Mapping[str, str]) -> Callable[[Plan], tuple[str, ...]]:
    """The sync windows' check for this run (``KP_OVERRIDE_WINDOWS`` overrides)."""
    override = bool(_flag(env, "KP_OVERRIDE_WINDOWS"))
    return lambda plan: check_windows(plan, datetime.now(timezone.utc), override=override)


def _apply_gated(emit: Emitter, workdir: Path, plan: Plan, target: str,
                 gate: Callable[[Plan], tuple[str, ...]],
                 apply: Callable[[dict[str, Any] | None], tuple[Plan, ApplyResult]],
                 extra: Mapping[str, Any] | None = None
                 ) -> tuple[Plan, ApplyResult] | notify.Event:
    """``apply`` unless the sync windows deny it now (asked again once the lease is held:
    waiting may lead into a window); a denial is no failure: it is said, and nothing written."""
    try:
        overridden = gate(plan)
        for reason in overridden:
            emit.log("WARN", f"{reason}: promoting anyway, as asked (recorded in the history)")
        record = {**(extra or {}), **({"window_override": overridden[0]} if overridden else {})}
        return apply(record or None)
    except WindowDenied as denied:
        return _denied(emit, workdir, plan, target, denied)


def _denied(emit: Emitter, workdir: Path, plan: Plan, target: str, denied: WindowDenied
            ) -> notify.Event:
    emit.log("WARN", str(denied))
    _write_reports(workdir, report.render_problems_markdown(str(denied), denied.problems),
                   report.problems_to_dict(str(denied), denied.problems, commit=plan.commit))
    emit.outputs({"action": "denied", "ok": False, "commit": plan.commit or "",
                  "reason": denied.problems[0].message, **_counts(plan)})
    return notify.Event(plan.name, "denied", str(denied), plan.commit, target,
                        drifted=notify.drifted(plan))


def _await_approval(client: KestraClient, connection: Connection, plan: Plan,
                    gate: Callable[[Plan], tuple[str, ...]], emit: Emitter, workdir: Path,
                    target: str, extra: Mapping[str, Any]) -> tuple[int, notify.Event | None]:
    """``approval: required``: validate the plan on the target and save it (plan.json) for the
    flow's Pause; the approved plan is applied as it is (``apply-saved``). Nothing is written;
    overrides asked by hand (``extra``) are shown to the approver."""
    ensure_allowed(plan)
    for warning in ensure_valid(client, plan.pending):
        emit.log("WARN", str(warning))
    try:
        gate(plan)  # a plan the windows deny now is not put up for approval
    except WindowDenied as denied:
        return 0, _denied(emit, workdir, plan, target, denied)
    saved = workdir / "plan.json"
    planfile.save(plan, str(saved), url=connection.url, tenant=connection.tenant)
    asked = (f"\n**{extra['requested_by']} asked to override {rights.describe(extra['overrides'])}"
             ": approving applies this plan with those overrides.**\n") if extra else ""
    _write_reports(workdir, report.render_plan_markdown(plan) + asked
                   + "\n**Waiting for approval: resume the execution to apply exactly this plan."
                     "**\n", report.plan_to_dict(plan))
    # the digest goes into the execution itself (not the file's storage): the approved task
    # applies that plan.json only
    emit.outputs({"action": "awaiting-approval", "needs_approval": True, "ok": True,
                  "plan_digest": planfile.recorded_digest(str(saved)),
                  "commit": plan.commit or "", **_counts(plan)})
    emit.log("INFO", f"{report.summary_line(plan)} Waiting for approval: nothing is written "
                     "until a person resumes this execution.")
    return 0, notify.Event(plan.name, "awaiting-approval", "", plan.commit, target,
                           dict(_counts(plan)), notify.drifted(plan))


def _apply_saved(env: Mapping[str, str], emit: Emitter, workdir: Path, seen: list[Plan],
                 target: str) -> tuple[int, notify.Event | None]:
    """Apply exactly the approved plan (KP_PLAN), refused if the target changed since; who
    approved and when go into the history."""
    connection = _connection(env)
    path = str(workdir / (_text(env, "KP_PLAN") or "plan.json"))
    expected = _text(env, "KP_PLAN_DIGEST")
    if not expected or planfile.recorded_digest(path) != expected:
        raise SettingsError("the plan to apply is not the one that was put up for approval "
                            "(its digest differs): nothing was written")
    plan, url, tenant = planfile.load(path)
    if (url, tenant) != (connection.url.rstrip("/"), connection.tenant):
        raise SettingsError(f"the approved plan was made for {url} (tenant {tenant}), not for "
                            f"{connection.url} (tenant {connection.tenant})")
    seen.append(plan)
    emit.text(report.render_plan_text(plan))
    named = " ".join((_text(env, "KP_APPROVED_BY") or "").split())[:100]  # one short line
    approval: dict[str, Any] = {"approved_by": safe_text(named) or "someone (not named)",
                                "approved_at": _text(env, "KP_APPROVED_AT")
                                or datetime.now(timezone.utc).isoformat(timespec="seconds")}
    asked = rights.asked_overrides(env)
    if asked:  # asked by hand before the pause: recorded with the approval
        approval.update(overrides=asked, requested_by=rights.requester(env))
    emit.log("INFO", f"approved by {approval['approved_by']}: applying exactly the saved plan")
    with connect(connection) as client:
        def gate(plan: Plan) -> tuple[str, ...]:  # production's rules now, then the windows
            settings.same_policy(client, env, plan.policy_digest)
            return _gate(env)(plan)
        outcome = _apply_gated(emit, workdir, plan, target, gate, lambda extra: verifying.apply(
            env, workdir, client, plan, gate=gate,
            holder=_text(env, "KP_HOLDER") or lock.default_holder("kestra-promote task"),
            trigger=_text(env, "KP_TRIGGER") or "kestra", ref=_text(env, "KP_REF"),
            extra=extra), approval)
        if isinstance(outcome, notify.Event):
            return 0, outcome
        plan, result = outcome
    return _applied(emit, workdir, plan, result, target)


def _applied(emit: Emitter, workdir: Path, plan: Plan, result: ApplyResult, target: str
             ) -> tuple[int, notify.Event | None]:
    emit.text(report.render_result_text(result))
    _write_reports(workdir, report.render_plan_markdown(plan, result=result),
                   report.result_to_dict(result))
    for action in ("create", "update", "delete"):
        emit.counter("kestra_promote.changes", sum(
            1 for o in result.outcomes if o.change.action.value == action and o.status.value == "applied"),
            action=action)
    emit.outputs({"action": "applied" if result.passed and not plan.is_empty else
                  "no-changes" if result.passed else "failed",
                  "ok": result.passed, "commit": plan.commit or "", **_counts(plan)})
    emit.log("INFO" if result.passed else "ERROR", report.result_summary(result))
    event = notify.event_of(plan, result, target)
    if result.interrupted:
        return (143 if result.interrupted == "SIGTERM" else 130), event
    return (0 if result.passed else 1), event


def task_namespaces(env: Mapping[str, str], emit: Emitter) -> int:
    """The namespaces of a development instance to commit to Git: KP_NAMESPACE and those below
    it that hold flows (Kestra's Git tasks push one namespace at a time)."""
    prefix = _text(env, "KP_NAMESPACE") or ""
    if (why := check_namespace(prefix)) is not None:
        raise SettingsError(f"KP_NAMESPACE {prefix!r}: {why}")
    with connect(_connection(env)) as client:
        namespaces = namespace_tree(client, prefix)
    emit.outputs({"namespaces": namespaces})
    emit.log("INFO", f"{len(namespaces)} namespace(s) to commit: {', '.join(namespaces)}")
    return 0


TASKS: dict[str, Callable[..., int]] = {"decide": task_decide, "promote": task_promote,
                                        "namespaces": task_namespaces}


def _on_sigterm(signum: int, frame: object) -> None:
    # Kestra stops a task (kill, timeout) with SIGTERM: let apply revert what it wrote first
    raise Interrupted(signum)


def run_task(name: str, env: Mapping[str, str], out: TextIO | None = None,
             workdir: Path | None = None) -> int:
    """Run one task; errors become an ERROR log, a report and exit code 1 (task FAILED)."""
    emit = Emitter(out or sys.stdout)
    folder = workdir or Path.cwd()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    for handler in saved[0]:
        root.removeHandler(handler)
    root.addHandler(KestraLogHandler(emit))
    root.setLevel(logging.WARNING)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(name, env, emit, folder)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def _run(name: str, env: Mapping[str, str], emit: Emitter, folder: Path) -> int:
    try:
        env, record = settings.for_task(name, env)  # production's: from the sealed record
        if name == "decide" and record is not None:
            emit.outputs(settings.flow_outputs(record))
        if name == "promote":
            return task_promote(env, emit, workdir=folder)
        return TASKS[name](env, emit)
    except KestraPromoteError as error:
        problems = getattr(error, "problems", ())
        emit.text(report.render_problems_text(str(error), problems))
        if name == "promote":
            _write_reports(folder, report.render_problems_markdown(str(error), problems),
                           report.problems_to_dict(str(error), problems))
        emit.outputs({"action": "refused" if "refused" in str(error) else "failed", "ok": False,
                      "error": str(error)})
        emit.log("ERROR", f"kestra-promote: {error}")
        return 1
    except KeyboardInterrupt as interrupt:  # before anything was written
        emit.log("ERROR", "kestra-promote: interrupted before any write; nothing was written")
        return 143 if isinstance(interrupt, Interrupted) and interrupt.signum == 15 else 130

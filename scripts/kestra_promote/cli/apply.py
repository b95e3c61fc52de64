"""``kestra-promote apply``: plan (or load a saved plan), pass the gates (approval,
sync windows), write the changes under the target's lease, and notify.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
from datetime import datetime, timezone
from typing import Callable, Iterator

from kestra_promote import report
from kestra_promote.engine import planfile
from kestra_promote.engine.apply import check_windows
from kestra_promote.engine.marking import marker
from kestra_promote.engine.verify import Mark, SourceAt, apply_verified
from kestra_promote.errors import (
    KestraPromoteError,
    PlanRefused,
    SettingsError,
    TargetRejected,
    WindowDenied,
)
from kestra_promote.gates import notify, policy_store
from kestra_promote.gates.stages import TAG_ROOT, TAGGER
from kestra_promote.gates.verification import Verify
from kestra_promote.git import gitremote
from kestra_promote.models import ApplyResult, Plan, Problem
from kestra_promote.target import lock
from kestra_promote.textsafe import safe_text
from kestra_promote.target.client import Connection, KestraClient, connect
from kestra_promote.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    check_committed,
    compute_plan,
    load,
    policy_reader,
    require,
)
from kestra_promote.cli.output import Output, progress, show_result


def _is_saved(args: argparse.Namespace) -> bool:
    return args.source.endswith(".json") and os.path.isfile(args.source)


def _saved_plan(path: str, connection: Connection) -> Plan:
    plan, url, tenant = planfile.load(path)
    if (url, tenant) != (connection.url.rstrip("/"), connection.tenant):
        raise SettingsError(f"{path} was made for {url} (tenant {tenant}), not for "
                            f"{connection.url} (tenant {connection.tenant}): plan again")
    return plan  # apply_plan reads the target again and checks the plan against it


def _no_target(path: str) -> SettingsError:
    """No URL given for a saved plan: the error names the target the plan was made for. It is
    not taken from the file, which anyone can write: the credentials go only where the user
    (flags, environment) says."""
    _, url, tenant = planfile.load(path)
    shown = safe_text(notify.safe_target(url), one_line=True)
    flags = f"--url {shown}" + (f" --tenant {safe_text(tenant, one_line=True)}"
                                if tenant != "main" else "")
    return SettingsError(f"no target: {path} was made for {shown} (tenant "
                         f"{safe_text(tenant, one_line=True)}); to apply it there, pass {flags} "
                         "or set KESTRA_URL (the target is never taken from the plan file, so "
                         "that credentials go only where you say)")


def cmd_apply(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    if connection is None and _is_saved(args):
        raise _no_target(args.source)
    connection = require(connection)
    env = args.env
    try:
        notifier = notify.notifier_from(
            env.get("KESTRA_PROMOTE_NOTIFY_URL"),
            args.notify_format or env.get("KESTRA_PROMOTE_NOTIFY_FORMAT"),
            args.notify_on or env.get("KESTRA_PROMOTE_NOTIFY_ON"),
            args.notify_link or env.get("KESTRA_PROMOTE_NOTIFY_LINK"))
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    seen: list[Plan] = []

    def tell(event: notify.Event) -> None:
        if (why := notify.send(notifier, event)) is not None:
            output.note(f"Warning: {why} (the promotion itself is not affected)")

    def failed(outcome: str, error: KestraPromoteError) -> notify.Event:
        plan = seen[-1] if seen else None
        return notify.Event(plan.name if plan else (args.name or "default"), outcome, str(error),
                            plan.commit if plan else None, notify.safe_target(connection.url),
                            drifted=notify.drifted(plan))

    try:
        code, plan, result = _apply(args, connection, output, seen)
    except (PlanRefused, TargetRejected) as error:
        tell(failed("denied" if isinstance(error, WindowDenied) else "refused", error))
        raise
    except KestraPromoteError as error:
        tell(failed("failed", error))
        raise
    tell(notify.event_of(plan, result, connection.url))
    return code


def _apply(args: argparse.Namespace, connection: Connection, output: Output,
           seen: list[Plan]) -> tuple[int, Plan, ApplyResult]:
    saved = _is_saved(args)
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(connect(connection))
        replan = None
        def same_policy(plan: Plan) -> None:
            """A saved plan: the rules production holds now, not those it was made under."""
            if saved and (why := policy_store.changed_since(
                    plan.policy_digest, policy_reader(client, args.env)())) is not None:
                raise PlanRefused(why, (Problem(why, args.source),))

        if saved:
            plan = _saved_plan(args.source, connection)
            same_policy(plan)  # before the lease, and again once it is held (gate)
            extra = {"dirty": True} if plan.dirty else {}
        else:
            loaded = stack.enter_context(load(args, client))
            extra = check_committed(args, loaded, output)
            replan = functools.partial(compute_plan, client, loaded, args.adopt,
                                       dirty=bool(extra))
            plan = replan()

        def show(plan: Plan, again: bool = False) -> None:
            if again:  # edited on the target (in the UI, say) while this run planned
                output.note("The target changed while the plan was made: planned again.")
            if output.format == "text":
                output.write_rendered(report.render_plan_text(plan, color=output.color))

        show(plan)
        seen.append(plan)
        if not saved and plan.config is not None and plan.config.approval == "required" and \
                not (plan.is_empty and plan.managed_after is None):
            raise PlanRefused(
                "the settings require approval: save the plan (plan --out FILE), have it "
                "reviewed, then apply that file; nothing was written",
                [Problem("approval: required in the settings")])
        overridden = check_windows(plan, datetime.now(timezone.utc),
                                   override=args.override_windows)
        if overridden:
            output.note(f"Warning: {overridden[0]}; promoting anyway (--override-windows), as the "
                        "history will record")
            extra = {**extra, "window_override": overridden[0]}
        def gate(plan: Plan) -> None:
            same_policy(plan)  # 'policy set' takes the lease too: it may finish while we wait
            check_windows(plan, datetime.now(timezone.utc), override=args.override_windows)

        def verify() -> Verify | None:  # production's checks after the apply, if any
            stored = policy_reader(client, args.env)()
            return stored.policy.verify if stored.policy is not None else None

        plan, result = apply_verified(
            client, plan, replan=replan, on_replan=lambda p: show(p, again=True), gate=gate,
            verify=verify, source_at=None if saved else _source_at(args, client),
            mark=_marker(args),
            holder=lock.default_holder(f"kestra-promote apply ({args.trigger})"),
            lock_wait=args.lock_wait, on_progress=progress(output, len(plan.pending)),
            trigger=args.trigger, ref=args.ref, extra=extra, parallel=args.parallel)
    seen.append(plan)
    show_result(output, plan, result)
    if result.interrupted:
        output.note(f"Interrupted ({result.interrupted}): "
                    + ("every change was reverted; the target is as it was." if
                       result.rolled_back else "the target is NOT as it was: see the objects "
                       "named in the report."))
        return (143 if result.interrupted == "SIGTERM" else 130), plan, result
    return (EXIT_OK if result.passed else EXIT_ERROR), plan, result


def _marker(args: argparse.Namespace) -> Mark:
    """Marks a verified commit for the next stage in SOURCE's repository, pushed to its remote
    ``origin`` with git's own credentials (``gates.stages``). A saved plan's SOURCE is its
    file: the current folder's repository is used."""
    folder = "." if _is_saved(args) else str(args.source)
    run = args.notify_link or args.env.get("KESTRA_PROMOTE_NOTIFY_LINK") or ""
    return marker(functools.partial(gitremote.origin_tags, folder, TAG_ROOT),
                  lambda name, commit, message: gitremote.origin_create_tag(
                      folder, name, commit, message, tagger=TAGGER), run=run)


def _source_at(args: argparse.Namespace, client: KestraClient) -> SourceAt:
    """A rollback's plan: the files of a commit of SOURCE's repository, read as --ref reads
    them, with this run's flags."""
    @contextlib.contextmanager
    def at(commit: str) -> Iterator[Callable[[], Plan]]:
        with load(argparse.Namespace(**{**vars(args), "ref": commit}), client) as loaded:
            yield functools.partial(compute_plan, client, loaded, False)
    return at

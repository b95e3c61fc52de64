"""The `kestra-promote` command: parse arguments, dispatch, map errors to exit codes.

Exit codes: 0 success (and, with ``--detailed-exitcode``, nothing to change); 1 error, invalid
input, refused plan or failed apply (including bad usage); 2 changes pending (``plan`` and
``status`` with ``--detailed-exitcode``); 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import logging
import os
import signal
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence, TextIO

from kestra_promote.version import __version__
from kestra_promote.kestra_task import bootstrap, runtime
from kestra_promote.target import inventory, lock, store
from kestra_promote.gates import notify, review, webhook
from kestra_promote.engine import planfile
from kestra_promote import report
from kestra_promote.engine.apply import (
    Interrupted,
    apply_locked,
    check_windows,
    check_on_target,
    ensure_allowed,
    ensure_valid,
)
from kestra_promote.target.client import Connection, KestraClient, connect
from kestra_promote.config import DRIFT_POLICIES, check_name, check_namespace
from kestra_promote.errors import (
    KestraError,
    KestraPromoteError,
    PlanRefused,
    SettingsError,
    TargetRejected,
    WindowDenied,
)
from kestra_promote.target.live import read_inventories
from kestra_promote.models import (
    ApplyResult,
    FlowKey,
    Inventory,
    ObjectKey,
    Plan,
    Problem,
    Status,
    sort_key,
)
from kestra_promote.engine.plan import adopt_origin_refusal
from kestra_promote.textsafe import safe_text
from kestra_promote.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    check_committed,
    compute_plan,
    connection_from,
    load,
    require,
)
from kestra_promote.cli.output import Output, progress, report_error, show_plan, show_result


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # exit 1, not argparse's 2: 2 means "changes pending" for --detailed-exitcode
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


# -- arguments ----------------------------------------------------------------------------------


def _rename(value: str) -> tuple[str, str]:
    old, sep, new = value.partition("=")
    if not sep or not old:
        raise argparse.ArgumentTypeError(f"expected OLD=NEW, got {value!r}")
    return old, new


def _setting(value: str) -> tuple[str, str]:
    key, sep, text = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key, text


def _target_options() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("target Kestra (flags override environment variables)")
    group.add_argument("--url", help="Kestra base URL, e.g. https://kestra.example.com [KESTRA_URL]")
    group.add_argument("--tenant", help="tenant id (default: main) [KESTRA_TENANT]")
    group.add_argument("--username", help="basic-auth user [KESTRA_USERNAME]")
    group.add_argument("--password", help="basic-auth password; prefer the env var [KESTRA_PASSWORD]")
    group.add_argument("--token", help="API token (Enterprise); prefer the env var [KESTRA_API_TOKEN]")
    group.add_argument("--ca-bundle", metavar="FILE", help="PEM file of CAs to trust for TLS")
    group.add_argument("--insecure", action="store_true",
                       help="do not verify TLS certificates (warns; not with --ca-bundle)")
    group.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                       help="per-request timeout (default: 30)")
    group.add_argument("--max-request-bytes", type=int, metavar="N",
                       help="largest request body to send; batches stay below it (default: "
                            "1000000, under the 1 MiB proxies commonly accept) "
                            "[KESTRA_MAX_REQUEST_BYTES]")
    out = parent.add_argument_group("output")
    out.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                     help="output format (default: text)")
    out.add_argument("-v", "--verbose", action="store_true", help="log HTTP requests on stderr")
    return parent


def _source_options() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("source (flags override kestra-promote.yml)")
    group.add_argument("--config", metavar="FILE", help="settings file (default: SOURCE/kestra-promote.yml)")
    group.add_argument("--name", help="this promotion source's name (setting: name)")
    group.add_argument("--rename", action="append", type=_rename, metavar="OLD=NEW", default=[],
                       help="rename a namespace prefix, e.g. dev.company=company (repeatable)")
    group.add_argument("--ref", help="promote this commit, branch or tag of the Git repository "
                                     "SOURCE is in (e.g. to roll back)")
    return parent


def _policy_options() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("policies (flags override kestra-promote.yml)")
    prune = group.add_mutually_exclusive_group()
    prune.add_argument("--prune", action="store_true", default=None,
                       help="delete managed flows and files that left Git")
    prune.add_argument("--no-prune", dest="prune", action="store_false", help="never delete")
    group.add_argument("--allow-deletions", type=int, metavar="N",
                       help="allow up to N deletions in this run (setting: max_deletions)")
    group.add_argument("--drift", choices=DRIFT_POLICIES,
                       help="what to do with managed objects edited on the target")
    group.add_argument("--adopt", action="store_true",
                       help="take over an inventory that records another repository as its origin")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kestra-promote",
        description="Promote Kestra flows from a Git checkout to a Kestra instance: "
        "validate, plan, apply.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    target, source, policy = _target_options(), _source_options(), _policy_options()
    source_help = "folder holding the flows, usually a Git checkout (default: .)"

    cmd = sub.add_parser("validate", parents=[target, source], help="check the flows (locally, "
                         "and on the target when a URL is given)", description="Check every flow "
                         "of SOURCE: locally, then with the target's own validation when a URL is "
                         "given. Writes nothing.")
    cmd.add_argument("source", nargs="?", default=".", metavar="SOURCE", help=source_help)
    cmd.add_argument("--offline", action="store_true",
                     help="local checks only, even when a URL is given (KESTRA_URL)")

    cmd = sub.add_parser("plan", parents=[target, source, policy], help="show what apply would "
                         "change", description="Compare SOURCE with the target and show what "
                         "apply would change. Writes nothing to the target.")
    cmd.add_argument("source", nargs="?", default=".", metavar="SOURCE", help=source_help)
    cmd.add_argument("--out", metavar="FILE", help="save the plan, to apply exactly it later")
    cmd.add_argument("--allow-dirty", action="store_true",
                     help="with --out: plan files that differ from the commit (applying the plan "
                          "records the run as dirty)")
    cmd.add_argument("--detailed-exitcode", action="store_true",
                     help="exit 2 when changes are pending, 0 when there are none")
    post = cmd.add_argument_group("the plan on a pull request (token: KESTRA_PROMOTE_REVIEW_TOKEN)")
    post.add_argument("--post", choices=review.PROVIDERS,
                      help="post the plan as one comment, updated on every push, and a commit "
                           "status")
    post.add_argument("--post-api", metavar="URL",
                      help="the provider's API (default https://api.github.com, "
                           "https://gitlab.com/api/v4; required for gitea: https://HOST/api/v1)")
    post.add_argument("--post-repo", metavar="OWNER/NAME", help="the repository (GitLab: the "
                                                                "project's path)")
    post.add_argument("--post-request", type=int, metavar="N", help="the pull/merge request")
    post.add_argument("--post-sha", metavar="SHA", help="its head commit, for the status")
    post.add_argument("--post-link", metavar="URL", help="where the whole run can be read")

    cmd = sub.add_parser("apply", parents=[target, source, policy], help="make the target match "
                         "the source", description="Plan (or load a plan saved with plan --out), "
                         "validate every changed flow on the target, then write the changes: all "
                         "of them, or none.")
    cmd.add_argument("source", nargs="?", default=".", metavar="SOURCE|PLAN.json",
                     help=source_help + ", or a plan saved with plan --out")
    cmd.add_argument("--trigger", default="cli", help="what started this run, for the history "
                                                      "(default: cli)")
    cmd.add_argument("--allow-dirty", action="store_true",
                     help="promote files that differ from the commit (the history records the "
                          "run as dirty)")
    cmd.add_argument("--lock-wait", type=float, default=lock.DEFAULT_WAIT, metavar="SECONDS",
                     help="how long to wait for another promotion of the target to finish "
                          f"(default: {lock.DEFAULT_WAIT:.0f})")
    cmd.add_argument("--override-windows", action="store_true",
                     help="promote even while the sync windows deny it (recorded in the "
                          "history)")
    cmd.add_argument("--notify-format", choices=notify.FORMATS,
                     help="the notification's form (default: slack for a hooks.slack.com URL, "
                          "else json); the URL comes from KESTRA_PROMOTE_NOTIFY_URL only")
    cmd.add_argument("--notify-on", choices=notify.WHEN,
                     help="notify on problems (failed, refused, denied, drifted: the default) "
                          "or always")
    cmd.add_argument("--notify-link", metavar="URL",
                     help="where the whole run can be read (a CI job), put in the message")

    cmd = sub.add_parser("adopt", parents=[target, source], help="take over what another "
                         "promotion source manages (e.g. after renaming this source)",
                         description="Move every object the inventory of promotion source "
                         "FROM records into this source's inventory (its name from the settings "
                         "or --name), then delete FROM's inventory. Shows the move first. "
                         "Flows and files are not touched.")
    cmd.add_argument("source", nargs="?", default=".", metavar="SOURCE", help=source_help)
    cmd.add_argument("--from", dest="previous", required=True, metavar="FROM",
                     help="the promotion source whose objects this one takes over")
    cmd.add_argument("--plan-only", action="store_true", help="show the move; write nothing")
    cmd.add_argument("--other-origin", action="store_true",
                     help="adopt even though FROM's objects were promoted from another "
                          "repository or folder")
    cmd.add_argument("--lock-wait", type=float, default=lock.DEFAULT_WAIT, metavar="SECONDS",
                     help="how long to wait for another promotion of the target to finish "
                          f"(default: {lock.DEFAULT_WAIT:.0f})")

    cmd = sub.add_parser("unlock", parents=[target], help="break the lock a crashed promotion "
                         "left on the target", description="Remove the lease a promotion takes "
                         "on the target while it runs, e.g. after a crash (it also expires by "
                         "itself). Prints who held it.")
    cmd.add_argument("--state-namespace", default="system", metavar="NAMESPACE",
                     help="the settings' state_namespace (default: system)")

    cmd = sub.add_parser("status", parents=[target, source, policy], help="per object: in sync, "
                         "out of sync, drifted, unmanaged", description="Show, per object, "
                         "whether the target is in sync with SOURCE, and the last promotion.")
    cmd.add_argument("source", nargs="?", default=".", metavar="SOURCE", help=source_help)
    cmd.add_argument("--detailed-exitcode", action="store_true",
                     help="exit 2 when anything is out of sync or drifted")

    cmd = sub.add_parser("webhook", help="decide what a Git provider's webhook request means",
                         description="Print, as JSON, whether a webhook request asks to promote "
                         "(sync), can be ignored, or must be rejected (bad signature or token). "
                         "The request only decides whether to promote; content always comes "
                         "from Git.")
    cmd.add_argument("--headers", metavar="FILE", required=True,
                     help="JSON object of the request headers (values may be lists)")
    cmd.add_argument("--body", metavar="FILE", required=True, help="the request body, as received")
    cmd.add_argument("--secret", help="webhook secret or token [KESTRA_PROMOTE_WEBHOOK_SECRET]")
    follow = cmd.add_mutually_exclusive_group()
    follow.add_argument("--branch", default="main", help="the branch to follow (default: main)")
    follow.add_argument("--tags", metavar="PATTERN", help="follow tags matching PATTERN, e.g. v*")
    cmd.add_argument("--require-signature", action="store_true",
                     help="reject requests whose signature cannot be checked")
    cmd.set_defaults(format="json", verbose=False)

    cmd = sub.add_parser("task", help="run a step of the Kestra promotion flows (settings from "
                         "KP_* and KESTRA_* env vars)", description="Run inside a Kestra script "
                         "task of the promotion flows: 'decide' whether a run promotes, 'promote' "
                         "to plan, apply or report status. Results are Kestra outputs, metrics "
                         "and logs; report.md and report.json are written to the working folder.")
    cmd.add_argument("step", choices=sorted(runtime.TASKS), help="the step to run")
    cmd.set_defaults(format="text", verbose=False)

    cmd = sub.add_parser("bootstrap", parents=[target], help="install the promotion flows into "
                         "a Kestra instance", description="Deploy this project's own flows (and, "
                         "for production, the helper package as namespace files) with the "
                         "project's own plan and apply, set the given settings, and print the "
                         "webhook URL and the secrets the flows expect. Running it twice changes "
                         "nothing.")
    cmd.add_argument("--namespace", default="system",
                     help="namespace of the promotion flows (default: system)")
    cmd.add_argument("--role", choices=bootstrap.ROLES, default="prod",
                     help="prod: the promote flows (instance that promotes); dev: commit-to-git")
    cmd.add_argument("--project", metavar="DIR", help="the kestra-promote project folder "
                                                      "(default: found from this installation)")
    cmd.add_argument("--set", action="append", default=[], type=_setting, metavar="KEY=VALUE",
                     help="a setting for the flows' KV store, e.g. promote_repo_url=https://... "
                          "(repeatable)")
    cmd.add_argument("--plan-only", action="store_true", help="show what would change; write nothing")

    cmd = sub.add_parser("history", parents=[target, source], help="past promotions recorded "
                         "on the target", description="List the runs recorded in this source's "
                         "inventory on the target, newest first.")
    cmd.add_argument("source", nargs="?", default=".", metavar="SOURCE", help=source_help)
    return parser


def cmd_validate(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    if args.offline:
        connection = None  # nothing leaves this machine, whatever KESTRA_URL says
    with load(args) as loaded:
        flows = list(loaded.desired.flows.values())
        warnings = list(loaded.desired.warnings)
        if connection is not None:
            with connect(connection) as client:
                warnings += check_on_target(client, flows)
    commit = loaded.source.commit
    where = ("locally and by the target" if connection else
             "locally (--offline)" if args.offline else "locally (no target given)")
    files = len(loaded.desired.files)
    if output.format == "json":
        output.json({"format_version": report.FORMAT_VERSION, "commit": commit, "valid": True,
                     "flows": len(flows), "files": files,
                     "checked_by_target": connection is not None,
                     "warnings": [w.to_dict() for w in warnings]})
        return EXIT_OK
    at = f" at {commit[:12]}" if commit else ""
    counted = f"{len(flows)} flow(s)" + (f" and {files} namespace file(s)" if files else "")
    summary = f"Valid: {counted}{at}, checked {where}."
    lines = "".join(f"  {w}\n" for w in warnings)
    output.write(lines + (f"**{summary}**\n" if output.format == "markdown" else summary + "\n"))
    return EXIT_OK


def cmd_plan(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    connection = require(connection)
    posting = _review_of(args) if args.post else None  # before any work: the options are right
    with connect(connection) as client, load(args, client) as loaded:
        # a saved plan is applied later, from no checkout: check the files against the commit
        # now, as apply would
        dirty = bool(check_committed(args, loaded, output)) if args.out else False
        plan = compute_plan(client, loaded, args.adopt, dirty=dirty)
        error: KestraPromoteError | None = None
        warnings: Sequence[Problem] = ()
        try:
            warnings = ensure_valid(client, plan.pending)
            ensure_allowed(plan)
        except (TargetRejected, PlanRefused) as refused:
            error = refused
    # the diff is what someone fixing the flows needs most (moving 1.3 flows to 2.0, say): the
    # plan first, then what refuses it
    show_plan(output, plan, warnings, error)
    if posting is not None:
        _post_plan(posting, output, dataclasses.replace(plan, warnings=(*plan.warnings,
                                                                        *warnings)), error)
    if error is not None:
        if output.format == "json":  # already in the document
            output.note(f"Error: {error}")
            return EXIT_ERROR
        raise error
    if args.out:
        planfile.save(plan, args.out, url=connection.url, tenant=connection.tenant)
        output.note(f"Saved the plan to {args.out}: apply it with `kestra-promote apply {args.out}`.")
    return EXIT_CHANGES if args.detailed_exitcode and not plan.is_empty else EXIT_OK


def _review_of(args: argparse.Namespace) -> review.Review:
    token = args.env.get("KESTRA_PROMOTE_REVIEW_TOKEN")
    missing = [flag for flag, value in (("--post-repo", args.post_repo),
                                        ("--post-request", args.post_request),
                                        ("--post-sha", args.post_sha)) if not value]
    if not token:
        missing.append("the token in KESTRA_PROMOTE_REVIEW_TOKEN")
    api = args.post_api or review.DEFAULT_API.get(args.post)
    if not api:
        missing.append("--post-api")
    if missing:
        raise SettingsError(f"--post {args.post} needs {', '.join(missing)}")
    if (why := review.check_repo(args.post, args.post_repo)) is not None:
        raise SettingsError(f"--post-repo: {why}")
    return review.Review(args.post, api, args.post_repo, args.post_request, args.post_sha,
                         token, args.post_link)


def _post_plan(target: review.Review, output: Output, plan: Plan,
               error: KestraPromoteError | None) -> None:
    """The plan on the pull request; a provider that refuses is a warning (the plan stands)."""
    try:
        review.publish(target, plan, getattr(error, "problems", ()),
                       str(error) if error is not None else None, note=output.note)
    except review.ReviewError as exc:
        output.note(f"Warning: posting the plan to {target.provider} failed: {exc}")


def _saved_plan(path: str, connection: Connection) -> Plan:
    plan, url, tenant = planfile.load(path)
    if (url, tenant) != (connection.url.rstrip("/"), connection.tenant):
        raise SettingsError(f"{path} was made for {url} (tenant {tenant}), not for "
                            f"{connection.url} (tenant {connection.tenant}): plan again")
    return plan  # apply_plan reads the target again and checks the plan against it


def cmd_apply(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
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
    saved = args.source.endswith(".json") and os.path.isfile(args.source)
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(connect(connection))
        replan = None
        if saved:
            plan = _saved_plan(args.source, connection)
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
            check_windows(plan, datetime.now(timezone.utc), override=args.override_windows)

        plan, result = apply_locked(
            client, plan, replan=replan, on_replan=lambda p: show(p, again=True), gate=gate,
            holder=lock.default_holder(f"kestra-promote apply ({args.trigger})"),
            lock_wait=args.lock_wait, on_progress=progress(output, len(plan.pending)),
            trigger=args.trigger, ref=args.ref, extra=extra)
    seen.append(plan)
    show_result(output, plan, result)
    if result.interrupted:
        output.note(f"Interrupted ({result.interrupted}): "
                    + ("every change was reverted; the target is as it was." if
                       not result.count(Status.NOT_REVERTED) else "see what could not be "
                       "reverted above."))
        return (143 if result.interrupted == "SIGTERM" else 130), plan, result
    return (EXIT_OK if result.ok else EXIT_ERROR), plan, result


def cmd_adopt(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    connection = require(connection)
    previous = check_name(args.previous, "--from")
    with load(args) as loaded, connect(connection) as client:
        config = loaded.config
        namespace = config.state_namespace
        if previous == config.name:
            raise SettingsError(f"--from {previous!r} is this source's own name")
        own, others = read_inventories(client, namespace, config.name)
        old = others.get(previous)
        if old is None:
            raise SettingsError(f"no promotion source {previous!r} on this target (no KV "
                                f"{inventory.kv_key(previous)} in namespace {namespace!r})")
        if not args.other_origin and (why := adopt_origin_refusal(old, own, loaded.origin)):
            raise SettingsError(why)
        moving = sorted([*old.flows, *old.files], key=sort_key)
        wanted = {*loaded.desired.flows, *loaded.desired.files}
        shown = {"format_version": report.FORMAT_VERSION, "name": config.name, "from": previous,
                 "objects": [{**report.key_to_dict(key), "in_source": key in wanted}
                             for key in moving], "adopted": False}
        if output.format != "json":
            output.write(_adoption_text(previous, config.name, namespace, moving, wanted))
        if args.plan_only:
            if output.format == "json":
                output.json(shown)
            return EXIT_OK
        run = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "commit": loaded.source.commit, "trigger": "adopt", "result": "adopted",
               "from": previous, "adopted": len(moving)}
        try:
            _move_inventory(client, namespace, previous, old, config.name, run, loaded.origin,
                            lock_wait=args.lock_wait)
        except KestraPromoteError as error:
            if output.format != "json":
                raise
            # one document: what was to move, and why it did not (or not entirely)
            output.json({**shown, **report.problems_to_dict(str(error), (),
                                                            commit=loaded.source.commit)})
            output.note(f"Error: {error}")
            return EXIT_ERROR
    if output.format == "json":
        output.json({**shown, "adopted": True})
    else:
        output.write(f"Adopted: {config.name!r} now manages what {previous!r} did; its "
                     "inventory is gone.\n")
    return EXIT_OK


def _move_inventory(client: KestraClient, namespace: str, old_name: str, old: Inventory,
                    name: str, run: Mapping[str, object], origin: str | None, *,
                    lock_wait: float) -> None:
    """Under the target's lease: ``name``'s inventory takes over ``old``'s, which is deleted."""
    old_key = inventory.kv_key(old_name)
    with lock.held(client, namespace, lock.default_holder("kestra-promote adopt"),
                   wait=lock_wait):
        own, others = read_inventories(client, namespace, name)  # again, under the lease
        current = others.get(old_name)
        if current is None or current != old:
            raise SettingsError(f"the inventory of {old_name!r} changed meanwhile: run adopt "
                                "again")
        taken = inventory.merged(own, current, name, run, origin=origin)
        store.write(client, namespace, taken, previous=own)
        try:
            store.delete(client, namespace, old_name, current)
        except KestraPromoteError as exc:
            # both inventories now claim the objects: running adopt again finishes the move
            raise KestraError(
                f"{name!r} now manages what {old_name!r} did, but deleting the inventory of "
                f"{old_name!r} (KV {namespace}/{old_key}) failed: {exc}; run this adopt again "
                "to finish") from exc


def _adoption_text(previous: str, name: str, namespace: str, moving: Sequence[ObjectKey],
                   wanted: set[ObjectKey]) -> str:
    """The move, each object marked when this source does not hold it: once adopted, it is
    orphaned (kept) or, with prune, deleted by the next apply."""
    outside = [key for key in moving if key not in wanted]
    flows = sum(isinstance(key, FlowKey) for key in moving)
    text = (f"Adopt: {flows} flow(s) and {len(moving) - flows} file(s) move from {previous!r} "
            f"(KV {namespace}/{inventory.kv_key(previous)}) to {name!r} "
            f"(KV {namespace}/{inventory.kv_key(name)}).\n")
    text += "".join(f"  > {key}" + ("   (not in this source)" if key in outside else "") + "\n"
                    for key in moving)
    if outside:
        text += (f"{len(outside)} of them are not in this source: once adopted, the next apply "
                 "keeps them as orphaned, or deletes them if prune is on.\n")
    return text


def cmd_unlock(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    if (why := check_namespace(args.state_namespace)) is not None:
        raise SettingsError(f"--state-namespace: {why}")
    with connect(require(connection)) as client:
        removed = lock.break_lock(client, args.state_namespace)
    if removed is None:
        output.write(f"No lock on the target (state namespace {args.state_namespace!r}).\n")
    else:
        output.write(f"Removed the lock held by {removed.describe(datetime.now(timezone.utc))}.\n")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    connection = require(connection)
    with connect(connection) as client, load(args, client) as loaded:
        plan = compute_plan(client, loaded, args.adopt)
    if output.format == "json":
        output.json({
            "format_version": report.FORMAT_VERSION, "name": plan.name, "commit": plan.commit,
            "objects": [{**report.change_to_dict(c, diff=False), "status": report.status_of(c)}
                        for c in plan.changes],
            "last_promotion": report.last_promotion(plan), "refusals": list(plan.refusals)})
    else:
        text = report.render_status_text(plan)
        output.write(text if output.format == "text" else report.render_status_markdown(plan))
    return EXIT_CHANGES if args.detailed_exitcode and report.out_of_sync(plan) else EXIT_OK


def cmd_history(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    connection = require(connection)
    with load(args) as loaded, connect(connection) as client:
        config = loaded.config
        own, _ = read_inventories(client, config.state_namespace, config.name)
    if output.format == "json":
        runs = list(reversed(own.history)) if own else []
        output.json({"format_version": report.FORMAT_VERSION, "name": config.name, "runs": runs})
    else:
        output.write(report.render_history_markdown(own, config.name)
                     if output.format == "markdown" else
                     report.render_history_text(own, config.name))
    return EXIT_OK


def cmd_webhook(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    try:
        headers = json.loads(Path(args.headers).read_text(encoding="utf-8"))
        raw = Path(args.body).read_bytes()
    except (OSError, ValueError, RecursionError) as exc:
        raise SettingsError(f"cannot read the request: {type(exc).__name__}") from None
    if not isinstance(headers, dict):
        raise SettingsError(f"{args.headers} must hold a JSON object of headers")
    secret = args.secret or args.env.get("KESTRA_PROMOTE_WEBHOOK_SECRET")
    decision = webhook.decide(
        headers, None, raw=raw, secret=secret or None, require_signature=args.require_signature,
        target=webhook.Target(branch=None if args.tags else args.branch, tags=args.tags))
    output.json(decision.to_dict())
    return EXIT_ERROR if decision.decision == "reject" else EXIT_OK


def cmd_bootstrap(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    connection = require(connection)
    project = bootstrap.project_root(args.project)
    with connect(connection) as client:
        if args.plan_only:
            prepared = bootstrap.prepare_bootstrap(client, project, args.role, args.namespace,
                                                   dict(args.set))
        else:
            prepared, result = bootstrap.install(
                client, project, args.role, args.namespace, dict(args.set),
                on_progress=progress(output, 0))
        output.write_rendered(report.render_plan_text(prepared.plan, color=output.color))
        for key, value in prepared.settings.items():
            output.write(f"  ~ setting   {args.namespace}/{key} = {value}\n")
        if args.plan_only:
            return EXIT_OK
        if result.outcomes or result.inventory is not None:
            output.write_rendered("\n" + report.render_result_text(result, color=output.color))
        if not result.ok:
            return EXIT_ERROR
    output.write("\n" + bootstrap.instructions(connection.url, connection.tenant, args.namespace,
                                               args.role))
    return EXIT_OK


def cmd_task(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    return runtime.run_task(args.step, args.env, output.out)


COMMANDS = {"adopt": cmd_adopt, "unlock": cmd_unlock, "bootstrap": cmd_bootstrap, "task": cmd_task, "validate": cmd_validate, "plan": cmd_plan, "apply": cmd_apply, "status": cmd_status,
            "history": cmd_history, "webhook": cmd_webhook}


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    environ = os.environ if env is None else env
    output = Output(stdout or sys.stdout, stderr or sys.stderr, args.format,
                    environ.get("GITHUB_STEP_SUMMARY") or None)
    handler = logging.StreamHandler(output.err)
    handler.setFormatter(_SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        handlers=[handler])
    for noisy in ("httpx", "httpcore"):  # our client logs each request itself, without headers
        logging.getLogger(noisy).setLevel(logging.WARNING)
    restore = None
    if threading.current_thread() is threading.main_thread():
        # a cancelled CI job or a killed task sends SIGTERM: stop like Ctrl-C, so that apply
        # reverts what it wrote before the process ends
        restore = signal.signal(signal.SIGTERM, _terminate)
    try:
        args.env = environ  # for commands that read settings of their own from the environment
        connection = connection_from(args, environ) if hasattr(args, "url") else None
        for warning in connection.warnings() if connection else ():  # --insecure, clear text
            output.note(f"Warning: {warning}")
        return COMMANDS[args.command](args, connection, output)
    except KestraPromoteError as error:
        report_error(output, error)
        return EXIT_ERROR
    except KeyboardInterrupt as interrupt:  # before anything was written, or after the revert
        output.note("Interrupted.")
        return 143 if isinstance(interrupt, Interrupted) and interrupt.signum == 15 else 130
    finally:
        if restore is not None:
            signal.signal(signal.SIGTERM, restore)


class _SafeFormatter(logging.Formatter):
    """Log lines name objects and quote servers: escaped like every other printed text."""

    def format(self, record: logging.LogRecord) -> str:
        return safe_text(super().format(record))


def _terminate(signum: int, frame: object) -> None:
    raise Interrupted(signum)

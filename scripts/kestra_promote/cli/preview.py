"""``kestra-promote preview``: a pull request's preview on a development or staging instance.

``up`` deploys SOURCE under the preview's namespaces (``engine.preview``) through the usual
plan, validation on the target and all-or-nothing apply under the lease; ``down`` deletes what
a preview's inventory records, then the inventory; ``list`` shows the previews.
"""

from __future__ import annotations

import argparse
import contextlib
from datetime import datetime, timezone
from typing import Any

from kestra_promote import report
from kestra_promote.config import check_namespace
from kestra_promote.engine import preview, preview_target
from kestra_promote.engine.apply import apply_locked, check_windows
from kestra_promote.errors import PlanRefused, SettingsError
from kestra_promote.gates.policy_store import Stored
from kestra_promote.git import gitref
from kestra_promote.git.origin import origin
from kestra_promote.git.source import read_settings
from kestra_promote.models import ApplyResult, Plan, Problem, Status
from kestra_promote.target import lock
from kestra_promote.target.client import Connection, KestraClient, connect
from kestra_promote.target.live import read_inventories
from kestra_promote.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    Loaded,
    check_committed,
    policy_reader,
    require,
)
from kestra_promote.cli.output import Output, progress, show_result


def add_parser(sub: Any, target: argparse.ArgumentParser) -> None:
    """The ``preview`` command and its actions, under ``sub`` (``target``: the connection's
    options)."""
    cmd = sub.add_parser("preview", help="a pull request's preview on a development instance: "
                         "up, down, list", description="Deploy a source under namespaces of its "
                         "own (PREFIX.ID.<namespace>), every trigger disabled, as a promotion "
                         "source of its own (preview-ID); take it down; list previews.")
    actions = cmd.add_subparsers(dest="action", metavar="ACTION", parser_class=type(cmd))
    actions.required = True

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--prefix", default=preview.PARENT, metavar="NAMESPACE",
                            help="where previews live: preview ID's namespaces are "
                                 "NAMESPACE.ID.<namespace> (default: preview)")
        parser.add_argument("--state-namespace", default="system", metavar="NAMESPACE",
                            help="where the inventories are kept, unless the instance's policy "
                                 "sets it (default: system)")
        parser.add_argument("--lock-wait", type=float, default=lock.DEFAULT_WAIT,
                            metavar="SECONDS", help="how long to wait for another run on the "
                            f"instance to finish (default: {lock.DEFAULT_WAIT:.0f})")

    up = actions.add_parser("up", parents=[target], help="deploy or update a preview",
                            description="Deploy SOURCE as preview ID: every namespace under "
                            "PREFIX.ID, references rewritten, every trigger disabled; plan, "
                            "validate on the target, apply all or nothing. Run again to update "
                            "it: flows the source no longer has are deleted from the preview.")
    up.add_argument("source", nargs="?", default=".", metavar="SOURCE",
                    help="folder holding the flows, usually a Git checkout (default: .)")
    up.add_argument("--id", required=True, help="the preview's id, e.g. the pull request's "
                                                "number (lower-case letters, digits, '-', '_')")
    up.add_argument("--config", metavar="FILE", help="settings file (default: "
                                                     "SOURCE/kestra-promote.yml)")
    up.add_argument("--ref", help="deploy this commit, branch or tag of SOURCE's repository")
    up.add_argument("--allow-dirty", action="store_true",
                    help="deploy files that differ from the commit")
    up.add_argument("--allow-deletions", type=int, metavar="N",
                    help="allow up to N deletions in this update (setting: max_deletions)")
    common(up)

    down = actions.add_parser("down", parents=[target], help="remove a preview, or the stale "
                              "ones", description="Delete exactly what the preview's inventory "
                              "records (flows, namespace files), then the inventory. Nothing "
                              "else; nothing to remove is not an error.")
    which = down.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", help="the preview to remove")
    which.add_argument("--older-than", metavar="AGE",
                       help="remove every preview last applied more than AGE ago (7d, 36h)")
    common(down)

    shown = actions.add_parser("list", parents=[target], help="show the previews",
                               description="List the previews on the instance: id, age (since "
                               "the last apply), commit, namespace.")
    common(shown)


def cmd_preview(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    connection = require(connection)
    if (why := check_namespace(args.state_namespace)) is not None:
        raise SettingsError(f"--state-namespace: {why}")
    if getattr(args, "id", None) is not None:  # bad input is told before the target is asked
        preview.root_of(args.prefix, args.id)
    if getattr(args, "older_than", None) is not None:
        preview.parse_age(args.older_than)
    with connect(connection) as client:
        stored = policy_reader(client, args.env)()
        if args.action == "up":
            return _up(args, client, stored, output)
        policy = stored.policy
        namespace = policy.safeguards.get("state_namespace", args.state_namespace) if policy \
            else args.state_namespace
        if args.action == "list":
            return _list(client, namespace, output)
        return _down(args, client, namespace, output)


# -- up -----------------------------------------------------------------------------------------


def _up(args: argparse.Namespace, client: KestraClient, stored: Stored, output: Output) -> int:
    preview_id = preview.check_id(args.id)
    root = preview.root_of(args.prefix, preview_id)
    if (why := preview.forbidden(stored)) is not None:
        raise PlanRefused(f"preview refused: {why}", [Problem(why)])
    with contextlib.ExitStack() as stack:
        folder, commit, committed = args.source, None, None
        if args.ref is not None:
            folder, commit, committed = stack.enter_context(
                gitref.checkout(args.source, args.ref or ""))
        base = read_settings(folder, args.config).with_overrides(
            allow_deletions=args.allow_deletions)
        where = origin(args.source)
        promotion = preview_target.open_preview(
            client, folder, base, preview_id, root, state_namespace=args.state_namespace,
            stored=stored, commit=commit, committed=committed, origin=where)
        loaded = Loaded(promotion.source, promotion.config, promotion.desired, where,
                        commit is not None, promotion)
        extra: dict[str, Any] = check_committed(args, loaded, output)

        def replan() -> Plan:
            return preview.guarded(promotion.plan(dirty=bool(extra)), root)

        def show(plan: Plan, again: bool = False) -> None:
            if again:
                output.note("The target changed while the plan was made: planned again.")
            if output.format == "text":  # markdown and JSON: with the result, below
                output.write_rendered(report.render_plan_text(plan, color=output.color))

        plan = replan()
        show(plan)
        check_windows(plan, datetime.now(timezone.utc))  # the instance's policy may set some
        plan, result = apply_locked(
            client, plan, replan=replan, on_replan=lambda p: show(p, again=True),
            gate=lambda p: check_windows(p, datetime.now(timezone.utc)),
            holder=lock.default_holder(f"kestra-promote preview up {preview_id}"),
            lock_wait=args.lock_wait, on_progress=progress(output, len(plan.pending)),
            trigger="preview", ref=args.ref, extra={**extra, preview.RECORD_KEY: root})
    show_result(output, plan, result)
    if result.interrupted:
        output.note(f"Interrupted ({result.interrupted}).")
        return 143 if result.interrupted == "SIGTERM" else 130
    if result.ok and output.format != "json":
        output.write(f"\nPreview {preview_id} is up under {root} (every trigger disabled).\n")
    return EXIT_OK if result.ok else EXIT_ERROR


# -- down ---------------------------------------------------------------------------------------


def _down(args: argparse.Namespace, client: KestraClient, namespace: str,
          output: Output) -> int:
    if args.id is not None:
        chosen = [preview.check_id(args.id)]
    else:
        chosen = preview_target.stale(client, namespace, args.prefix,
                                      preview.parse_age(args.older_than),
                                      datetime.now(timezone.utc))
    removed: list[dict[str, Any]] = []
    absent: list[str] = []
    code = EXIT_OK
    for preview_id in chosen:
        done = _take_down(client, namespace, preview_id, preview.root_of(args.prefix, preview_id),
                          args.lock_wait, output)
        if done is None:
            absent.append(preview_id)
            if output.format != "json":
                output.write(f"No preview {preview_id} on this target: nothing to remove.\n")
            continue
        plan, result = done
        deleted = [str(o.change.key) for o in result.outcomes if o.status is Status.APPLIED]
        removed.append({"id": preview_id, "deleted": deleted, "ok": result.ok})
        if not result.ok:
            code = EXIT_ERROR
            if output.format != "json":
                show_result(output, plan, result)
        elif output.format != "json":
            output.write(f"Preview {preview_id} is down: {len(deleted)} object(s) deleted, its "
                         "inventory removed.\n")
    if output.format == "json":
        output.json({"format_version": report.FORMAT_VERSION, "removed": removed,
                     "absent": absent})
    elif not chosen:
        output.write("No preview to remove.\n")
    return code


def _take_down(client: KestraClient, namespace: str, preview_id: str, root: str,
               lock_wait: float, output: Output) -> tuple[Plan, ApplyResult] | None:
    return preview_target.take_down(
        client, namespace, preview_id, root, lock_wait=lock_wait,
        holder=lock.default_holder(f"kestra-promote preview down {preview_id}"),
        progress=lambda plan: progress(output, len(plan.pending)))


# -- list ---------------------------------------------------------------------------------------


def _list(client: KestraClient, namespace: str, output: Output) -> int:
    _, every = read_inventories(client, namespace, "")
    found = preview.previews(every)
    now = datetime.now(timezone.utc)
    if output.format == "json":
        output.json({"format_version": report.FORMAT_VERSION, "state_namespace": namespace,
                     "previews": [p.to_json(now) for p in found]})
        return EXIT_OK
    if not found:
        output.write(f"No previews (no preview inventory in {namespace!r}).\n")
        return EXIT_OK
    rows = [("ID", "AGE", "COMMIT", "NAMESPACE", "OBJECTS")]
    rows += [(p.id, preview.describe_age(p.age(now)), (p.commit or "-")[:12], p.root,
              str(p.flows + p.files)) for p in found]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        output.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths))
                     + f"  {row[4]}\n")
    return EXIT_OK

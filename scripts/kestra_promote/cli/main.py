"""The `kestra-promote` command: parse arguments, set up logging and signals, dispatch to the
command's module (``cli/<command>.py``), map errors to exit codes.

Exit codes: 0 success (and, with ``--detailed-exitcode``, nothing to change); 1 error, invalid
input, refused plan or failed apply (including bad usage); 2 changes pending (``plan`` and
``status`` with ``--detailed-exitcode``); 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from typing import Mapping, Sequence, TextIO

from kestra_promote.version import __version__
from kestra_promote.kestra_task import bootstrap, runtime
from kestra_promote.target import lock
from kestra_promote.gates import notify, review
from kestra_promote.engine.apply import DEFAULT_PARALLEL, Interrupted
from kestra_promote.config import DRIFT_POLICIES
from kestra_promote.errors import KestraPromoteError
from kestra_promote.git.enclosing import unread_settings
from kestra_promote.textsafe import safe_text
from kestra_promote.cli.common import EXIT_ERROR, connection_from
from kestra_promote.cli.output import Output, report_error
from kestra_promote.cli.adopt import cmd_adopt
from kestra_promote.cli.apply import cmd_apply
from kestra_promote.cli.bootstrap import cmd_bootstrap
from kestra_promote.cli.history import cmd_history
from kestra_promote.cli.plan import cmd_plan
from kestra_promote.cli.policy import cmd_policy
from kestra_promote.cli import preview
from kestra_promote.cli.status import cmd_status
from kestra_promote.cli.task import cmd_task
from kestra_promote.cli.unlock import cmd_unlock
from kestra_promote.cli.validate import cmd_validate
from kestra_promote.cli.stages import cmd_stages
from kestra_promote.cli.verify import cmd_verify
from kestra_promote.cli.webhook import cmd_webhook


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
    post.add_argument("--public", action="store_true",
                      help="show only what a pull request may (as --post does, without posting): "
                           "no diff of production's copy that did not come from this repository")

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
    cmd.add_argument("--parallel", type=_at_least_one, default=DEFAULT_PARALLEL, metavar="N",
                     help="flow writes that do not depend on one another sent at once (Kestra "
                          f"2.0 takes one request per flow; default: {DEFAULT_PARALLEL}; 1: one "
                          "by one)")
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
                     help="a setting of the flows, e.g. promote_repo_url=https://... (repeatable; "
                          "an empty value removes it). Production's are sealed: the settings "
                          "carried over are checked against the server's current seal, given as "
                          "KESTRA_PROMOTE_SEAL")
    cmd.add_argument("--reset-settings", action="store_true",
                     help="production: carry no setting over; seal only those given with --set")
    cmd.add_argument("--migrate-settings", action="store_true",
                     help="production: seal the settings an earlier version kept one per KV key "
                          "(check them first: any flow can write them)")
    cmd.add_argument("--plan-only", action="store_true", help="show what would change; write nothing")
    cmd.add_argument("--lock-wait", type=float, default=lock.DEFAULT_WAIT, metavar="SECONDS",
                     help="how long to wait for a promotion of the target to finish "
                          f"(default: {lock.DEFAULT_WAIT:.0f})")

    cmd = sub.add_parser("policy", parents=[target], help="production's policy: set, show or "
                         "unset the rules a promoted commit cannot change", description="Store "
                         "production's policy on the target (validated, under the lease), show "
                         "it with its digest and whether it matches the pin "
                         "KESTRA_PROMOTE_POLICY_DIGEST, or remove it.")
    cmd.add_argument("action", choices=("set", "show", "unset"), help="what to do")
    cmd.add_argument("file", nargs="?", metavar="FILE", help="with set: the policy's YAML file")
    cmd.add_argument("--namespace", metavar="NAMESPACE", help="where the policy is kept "
                     "(default: $KESTRA_PROMOTE_POLICY_NAMESPACE, else system)")
    cmd.add_argument("--lock-wait", type=float, default=lock.DEFAULT_WAIT, metavar="SECONDS",
                     help="how long to wait for a promotion of the target to finish")

    cmd = sub.add_parser("history", parents=[target, source], help="past promotions recorded "
                         "on the target", description="List the runs recorded in this source's "
                         "inventory on the target, newest first.")
    cmd.add_argument("source", nargs="?", default=".", metavar="SOURCE", help=source_help)

    cmd = sub.add_parser("verify", parents=[target, source], help="run the checks of "
                         "production's policy against the target now", description="Run the "
                         "checks production's policy sets (verify:) against the target as it is: "
                         "start its flows, soak the flows this source manages. Writes nothing.")
    cmd.add_argument("source", nargs="?", default=".", metavar="SOURCE", help=source_help)

    cmd = sub.add_parser("stages", parents=[target, source], help="where each stage of the "
                         "pipeline stands", description="Show each stage of the pipeline "
                         "production's policy names (stages:): this instance's commit from its "
                         "history, the others' verified commits from the tags they marked in "
                         "Git; whether each is verified, when, and by which checks.")
    cmd.add_argument("source", nargs="?", default=".", metavar="SOURCE", help=source_help)

    preview.add_parser(sub, target)
    return parser


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


COMMANDS = {"validate": cmd_validate, "plan": cmd_plan, "apply": cmd_apply, "adopt": cmd_adopt,
            "unlock": cmd_unlock, "status": cmd_status, "webhook": cmd_webhook, "task": cmd_task,
            "bootstrap": cmd_bootstrap, "history": cmd_history, "policy": cmd_policy,
            "preview": preview.cmd_preview, "verify": cmd_verify, "stages": cmd_stages}


def run() -> int:
    """The process's entry point (the ``kestra-promote`` command, ``python -m kestra_promote``,
    the promotion flows). A plan keeps a node tree per flow alive while it checks them: with
    Python's default thresholds the cyclic collector walks those trees again and again, which
    was half of a 10,000-flow plan's CPU time. It runs rarer here; what this tool makes is freed
    by reference counting, cycles included at the next (rarer) collection."""
    gc.set_threshold(100_000, 50, 100)
    return main()


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
        if isinstance(getattr(args, "source", None), str):  # settings a subfolder does not read
            for warning in unread_settings(args.source, getattr(args, "config", None)):
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

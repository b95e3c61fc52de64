"""The `kestra-promote` command: parse arguments, dispatch, map errors to exit codes.

Exit codes: 0 success (and, for ``plan --detailed-exitcode``, no changes); 1 error or invalid
input (including bad usage); 2 changes pending (``plan --detailed-exitcode`` only); 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence, TextIO

from . import __version__, report
from .apply import apply_plan, ensure_valid, validate_on_target
from .client import Connection, connect
from .errors import KestraPromoteError, SettingsError, TargetRejected
from .live import read_live_state
from .models import Outcome, Plan, Problem, Source
from .plan import plan as make_plan
from .source import read_source

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
ENV = {
    "url": "KESTRA_URL",
    "tenant": "KESTRA_TENANT",
    "username": "KESTRA_USERNAME",
    "password": "KESTRA_PASSWORD",
    "token": "KESTRA_API_TOKEN",
}
PROGRESS_THRESHOLD = 10  # progress lines only for applies long enough to want them


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # exit 1, not argparse's 2: 2 means "changes pending" for plan --detailed-exitcode
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


@dataclass
class Output:
    """Where people-facing text goes: results on stdout, diagnostics and progress on stderr."""

    out: TextIO
    err: TextIO
    format: str = "text"

    @property
    def color(self) -> bool:
        return self.format == "text" and self.out.isatty() and "NO_COLOR" not in os.environ

    def write(self, text: str) -> None:
        self.out.write(text)

    def json(self, data: object) -> None:
        self.out.write(json.dumps(data, indent=2, sort_keys=False) + "\n")

    def note(self, text: str) -> None:
        self.err.write(text + "\n")


def _target_options() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("target Kestra (flags override environment variables)")
    group.add_argument("--url", help="Kestra base URL, e.g. https://kestra.example.com [KESTRA_URL]")
    group.add_argument("--tenant", help="tenant id (default: main) [KESTRA_TENANT]")
    group.add_argument("--username", help="basic-auth user [KESTRA_USERNAME]")
    group.add_argument(
        "--password", help="basic-auth password; prefer the env var [KESTRA_PASSWORD]"
    )
    group.add_argument("--token", help="API token (Enterprise); prefer the env var [KESTRA_API_TOKEN]")
    tls = group.add_mutually_exclusive_group()
    tls.add_argument("--ca-bundle", metavar="FILE", help="PEM file of CAs to trust for TLS")
    tls.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    group.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                       help="per-request timeout (default: 30)")
    out = parent.add_argument_group("output")
    out.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                     help="output format (default: text)")
    out.add_argument("-v", "--verbose", action="store_true", help="log HTTP requests on stderr")
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
    common = _target_options()
    source_help = "folder holding the flows, usually a Git checkout (default: .)"

    cmd = sub.add_parser("validate", parents=[common], help="check the flows (locally, and on the "
                         "target when a URL is given)", description="Check every flow of SOURCE: "
                         "locally, then with the target's own validation when a URL is given.")
    cmd.add_argument("source", nargs="?", default=".", metavar="SOURCE", help=source_help)

    cmd = sub.add_parser("plan", parents=[common], help="show what apply would change",
                         description="Compare SOURCE with the target and show what apply would "
                         "change. Writes nothing.")
    cmd.add_argument("source", nargs="?", default=".", metavar="SOURCE", help=source_help)
    cmd.add_argument("--detailed-exitcode", action="store_true",
                     help="exit 2 when changes are pending, 0 when there are none")

    cmd = sub.add_parser("apply", parents=[common], help="make the target match the source",
                         description="Plan, validate every changed flow on the target, then "
                         "write the changes. Nothing is written if any flow is invalid.")
    cmd.add_argument("source", nargs="?", default=".", metavar="SOURCE", help=source_help)
    return parser


def connection_from(args: argparse.Namespace, env: Mapping[str, str]) -> Connection | None:
    """Connection settings from flags, then environment variables; None without a URL."""

    def pick(name: str) -> str | None:
        value = getattr(args, name, None)
        return value if value else env.get(ENV[name]) or None

    url = pick("url")
    if not url:
        return None
    return Connection(
        url=url,
        tenant=pick("tenant") or "main",
        username=pick("username"),
        password=pick("password"),
        token=pick("token"),
        verify=not args.insecure,
        ca_bundle=args.ca_bundle,
        timeout=args.timeout,
    )


def _require(connection: Connection | None) -> Connection:
    if connection is None:
        raise SettingsError("no target: pass --url or set KESTRA_URL")
    return connection


def _progress(output: Output) -> Callable[[int, int, Outcome], None]:
    def show(number: int, total: int, outcome: Outcome) -> None:
        if total >= PROGRESS_THRESHOLD:
            word = outcome.message if outcome.status.value == "applied" else outcome.status.value
            output.note(f"[{number}/{total}] {word} {outcome.change.key}")

    return show


def _namespaces(source: Source) -> set[str]:
    return {key.namespace for key in source.flows}


def cmd_validate(*, source: str, connection: Connection | None, output: Output) -> int:
    src = read_source(source)
    warnings: list[Problem] = []
    if connection is not None:
        with connect(connection) as client:
            problems, warnings = validate_on_target(client, list(src.flows.values()))
        if problems:
            rejected = len({p.flow for p in problems})
            raise TargetRejected(f"the target rejected {rejected} of {len(src.flows)} flow(s)",
                                 problems)
    where = "locally and by the target" if connection else "locally (no target given)"
    if output.format == "json":
        output.json({"format_version": report.FORMAT_VERSION, "commit": src.commit, "valid": True,
                     "flows": len(src.flows), "checked_by_target": connection is not None,
                     "warnings": [w.to_dict() for w in warnings]})
        return EXIT_OK
    lines = [f"  {w}\n" for w in warnings]
    at = f" at {src.commit[:12]}" if src.commit else ""
    summary = f"Valid: {len(src.flows)} flow(s){at}, checked {where}."
    output.write("".join(lines) + (f"**{summary}**\n" if output.format == "markdown" else summary + "\n"))
    return EXIT_OK


def _show_plan(output: Output, plan: Plan, warnings: Sequence[Problem]) -> None:
    if output.format == "json":
        output.json(report.plan_to_dict(plan, warnings=warnings))
    elif output.format == "markdown":
        output.write(report.render_plan_markdown(plan))
    else:
        output.write("".join(f"  {w}\n" for w in warnings))
        output.write(report.render_plan_text(plan, color=output.color))


def cmd_plan(
    *, source: str, connection: Connection | None, output: Output, detailed_exitcode: bool
) -> int:
    connection = _require(connection)
    src = read_source(source)
    with connect(connection) as client:
        live = read_live_state(client, _namespaces(src))
        plan = make_plan(src.flows, live.flows, commit=src.commit)
        warnings = ensure_valid(client, plan.pending)
    _show_plan(output, plan, warnings)
    return EXIT_CHANGES if detailed_exitcode and not plan.is_empty else EXIT_OK


def cmd_apply(*, source: str, connection: Connection | None, output: Output) -> int:
    connection = _require(connection)
    src = read_source(source)
    with connect(connection) as client:
        live = read_live_state(client, _namespaces(src))
        plan = make_plan(src.flows, live.flows, commit=src.commit)
        if output.format == "text":
            output.write(report.render_plan_text(plan, color=output.color))
        result = apply_plan(client, plan, on_progress=_progress(output))
    if output.format == "json":
        output.json(report.result_to_dict(result, warnings=result.warnings))
    elif output.format == "markdown":
        output.write(report.render_plan_markdown(plan, result=result))
    elif result.outcomes:
        output.write("\n" + report.render_result_text(result, color=output.color))
    return EXIT_OK if result.ok else EXIT_ERROR


def _report_error(output: Output, error: KestraPromoteError) -> None:
    problems = getattr(error, "problems", ())
    message = str(error)
    if output.format == "json":
        output.json(report.problems_to_dict(message, problems))
        output.note(f"Error: {message}")
    elif output.format == "markdown":
        output.write(report.render_problems_markdown(message, problems))
        output.note(f"Error: {message}")
    else:
        output.err.write(report.render_problems_text(message, problems))


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    output = Output(stdout or sys.stdout, stderr or sys.stderr, args.format)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=output.err)
    for noisy in ("httpx", "httpcore"):  # our client logs each request itself, without headers
        logging.getLogger(noisy).setLevel(logging.WARNING)
    environ = os.environ if env is None else env
    try:
        connection = connection_from(args, environ)
        if args.command == "validate":
            return cmd_validate(source=args.source, connection=connection, output=output)
        if args.command == "plan":
            return cmd_plan(source=args.source, connection=connection, output=output,
                            detailed_exitcode=args.detailed_exitcode)
        return cmd_apply(source=args.source, connection=connection, output=output)
    except KestraPromoteError as error:
        _report_error(output, error)
        return EXIT_ERROR
    except KeyboardInterrupt:
        output.note("Interrupted.")
        return 130

"""``kestra-promote validate``: check every flow of SOURCE, locally and, given a
target, with the target's own validation. Writes nothing.
"""

from __future__ import annotations

import argparse

from kestra_promote import report
from kestra_promote.engine.apply import check_on_target
from kestra_promote.target.client import Connection, connect
from kestra_promote.cli.common import EXIT_OK, load
from kestra_promote.cli.output import Output


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

"""``kestra-promote status``: per object, whether the target is in sync with
SOURCE, and the last promotion.
"""

from __future__ import annotations

import argparse

from kestra_promote import report
from kestra_promote.target.client import Connection, connect
from kestra_promote.cli.common import EXIT_CHANGES, EXIT_OK, compute_plan, load, require
from kestra_promote.cli.output import Output


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

"""``kestra-promote history``: the runs recorded in this source's inventory on
the target, newest first.
"""

from __future__ import annotations

import argparse

from kestra_promote import report
from kestra_promote.target.client import Connection, connect
from kestra_promote.target.live import read_inventories
from kestra_promote.cli.common import EXIT_OK, load, require
from kestra_promote.cli.output import Output


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

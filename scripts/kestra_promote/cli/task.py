"""``kestra-promote task``: run a step of the Kestra promotion flows inside their
script task.
"""

from __future__ import annotations

import argparse

from kestra_promote.kestra_task import runtime
from kestra_promote.target.client import Connection
from kestra_promote.cli.output import Output


def cmd_task(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    return runtime.run_task(args.step, args.env, output.out)

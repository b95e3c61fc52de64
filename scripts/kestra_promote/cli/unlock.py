"""``kestra-promote unlock``: break the lease a crashed promotion left on the
target, and say who held it; anything else stored under the lease's key is removed too.
"""

from __future__ import annotations

import argparse

from kestra_promote.config import check_namespace
from kestra_promote.errors import SettingsError
from kestra_promote.target import lock
from kestra_promote.target.client import Connection, connect
from kestra_promote.cli.common import EXIT_OK, require
from kestra_promote.cli.output import Output


def cmd_unlock(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    if (why := check_namespace(args.state_namespace)) is not None:
        raise SettingsError(f"--state-namespace: {why}")
    with connect(require(connection)) as client:
        removed = lock.break_lock(client, args.state_namespace)
    if removed is None:
        output.write(f"No lock on the target (state namespace {args.state_namespace!r}).\n")
    else:
        output.write(f"Removed {removed}.\n")
    return EXIT_OK

"""``kestra-promote verify``: run the checks of production's policy (``verify:``) against the
target as it is now, on demand. A soak watches every flow this source manages, from now on.
Nothing is written: the history records checks only for the runs of ``apply``.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from kestra_promote import report, verification_report
from kestra_promote.cli.common import EXIT_ERROR, EXIT_OK, load, policy_and_inventory, require
from kestra_promote.cli.output import Output
from kestra_promote.engine.verify import run_checks
from kestra_promote.errors import SettingsError
from kestra_promote.target.client import Connection, connect


def cmd_verify(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    connection = require(connection)
    with load(args) as loaded, connect(connection) as client:
        policy, config, own = policy_and_inventory(args, client, loaded)
        spec = policy.verify if policy is not None else None
        if spec is None:
            raise SettingsError("production's policy sets no checks (its 'verify' section): "
                                "nothing to run")
        flows = sorted(own.flows) if own is not None else []
        checks = run_checks(client, spec, flows, datetime.now(timezone.utc))
    passed = all(check.passed for check in checks)
    if output.format == "json":
        output.json({"format_version": report.FORMAT_VERSION, "name": config.name,
                     "passed": passed, "checks": [c.to_json() for c in checks]})
    else:
        lines = verification_report.lines(checks)
        verdict = "Checks passed." if passed else "Checks FAILED."
        output.write("".join(f"  {line}\n" for line in lines) + verdict + "\n")
    return EXIT_OK if passed else EXIT_ERROR

"""``kestra-promote bootstrap``: install the promotion flows (and, for
production, this package) into a Kestra instance, then print what is left to set up.
"""

from __future__ import annotations

import argparse

from kestra_promote import report
from kestra_promote.gates import policy_store, seal
from kestra_promote.kestra_task import bootstrap
from kestra_promote.target import lock
from kestra_promote.target.client import Connection, connect
from kestra_promote.target.transport import redact_url
from kestra_promote.cli.common import EXIT_ERROR, EXIT_OK, require
from kestra_promote.cli.output import Output, progress


def cmd_bootstrap(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    connection = require(connection)
    project = bootstrap.project_root(args.project)
    sealing = bootstrap.Sealing(current=args.env.get(seal.SEAL_VARIABLE),
                                reset=args.reset_settings, migrate=args.migrate_settings,
                                policy=args.env.get(policy_store.PIN_VARIABLE))
    with connect(connection) as client:
        if args.plan_only:
            prepared = bootstrap.prepare_bootstrap(client, project, args.role, args.namespace,
                                                   dict(args.set), sealing)
        else:
            prepared, result = bootstrap.install(
                client, project, args.role, args.namespace, dict(args.set),
                on_progress=progress(output, 0), sealing=sealing, lock_wait=args.lock_wait,
                holder=lock.default_holder("kestra-promote bootstrap"))
        output.write_rendered(report.render_plan_text(prepared.plan, color=output.color))
        for key, value in prepared.settings.items():
            output.write(f"  ~ setting   {args.namespace}/{key} = {redact_url(value)}\n")
        for path in prepared.strays:
            output.write(f"  - remove    {args.namespace}:{path}  (in the package's folder, not "
                         "installed by bootstrap)\n")
        for key in prepared.migrated:
            output.write(f"  ~ setting   {args.namespace}/{key}: moved into the sealed record\n")
        if args.plan_only:
            if prepared.record is not None and prepared.record_changed:
                output.write(f"\nThe settings' new seal would be {prepared.record.seal}.\n")
            return EXIT_OK
        if result.outcomes or result.inventory is not None:
            output.write_rendered("\n" + report.render_result_text(result, color=output.color))
        if not result.ok:
            return EXIT_ERROR
    output.write("\n" + bootstrap.instructions(connection.url, connection.tenant, args.namespace,
                                               args.role))
    if prepared.record is not None:
        _tell_sealed(output, prepared)
    return EXIT_OK


def _tell_sealed(output: Output, prepared: bootstrap.Prepared) -> None:
    """Every value sealed, so that the admin sees what they vouch for when setting the seal."""
    record = prepared.record
    assert record is not None
    changed = "changed" if prepared.record_changed else "unchanged"
    lines = [f"\nThe promotion's sealed settings ({changed}):"]
    lines += [f"  {key:<26} {redact_url(value)}"
              for key, value in sorted(record.settings.items())]
    lines += [f"  {'policy':<26} {record.policy}", f"  {'package':<26} {record.package}"]
    lines += [f"Note: {note}" for note in prepared.notes]
    output.write("\n".join(lines) + "\n" + seal.instructions(record))

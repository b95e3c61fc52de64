"""``kestra-promote stages``: where each stage of production's pipeline stands. This instance
from its own history; the other stages from the verification tags they marked in Git (the
stages never read each other's instances)."""

from __future__ import annotations

import argparse
from typing import Any

from kestra_promote import report
from kestra_promote.cli.common import EXIT_OK, load, policy_and_inventory, require
from kestra_promote.cli.output import Output
from kestra_promote.errors import SettingsError
from kestra_promote.gates import stages
from kestra_promote.git import gitremote, tagpush
from kestra_promote.target.client import Connection, connect
from kestra_promote.textsafe import safe_text


def cmd_stages(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    connection = require(connection)
    with load(args) as loaded, connect(connection) as client:
        policy, config, own = policy_and_inventory(args, client, loaded)
    pipeline = policy.stages if policy is not None else None
    if pipeline is None:
        raise SettingsError("this instance's policy names no stages (its 'stages' section): "
                            "there is no pipeline to show")
    folder = str(args.source)
    found = tagpush.read_tags("origin" if gitremote.has_origin(folder) else ".",
                              stages.TAG_ROOT + "/", git_dir=folder)
    marks = {name: (tag.commit, tag.message or "") for name, tag in found.items()}
    rows = stages.status(pipeline, marks, own.history if own is not None else ())
    if output.format == "json":
        output.json({"format_version": report.FORMAT_VERSION, "name": config.name,
                     "pipeline": list(pipeline.pipeline), "stage": pipeline.stage,
                     "stages": rows})
    else:
        output.write(_markdown(rows, pipeline) if output.format == "markdown"
                     else _text(rows, pipeline))
    return EXIT_OK


def _verdict(row: dict[str, Any]) -> str:
    if row["commit"] is None:
        return "nothing marked verified" if row["from"] == "git" else "nothing applied"
    return {True: "verified", False: "FAILED its checks", None: "applied, not verified"}[
        row["verified"]]


def _checks(row: dict[str, Any]) -> str:
    return ", ".join(f"{c['check']} ({'passed' if c['passed'] else 'FAILED'})"
                     for c in row["checks"]) or "-"


def _text(rows: list[dict[str, Any]], pipeline: stages.Stages) -> str:
    out = [f"Pipeline: {' -> '.join(pipeline.pipeline)} (this instance: {pipeline.stage})"]
    for row in rows:
        here = " (this instance, from its history)" if row["from"] == "history" else \
            " (from Git)"
        commit = (row["commit"] or "")[:12] or "-"
        out.append(f"  {row['stage']}{here}: {commit} {_verdict(row)}"
                   + (f" at {row['when']}" if row["when"] else "")
                   + (f", tag {row['tag']}" if row["tag"] else ""))
        if row["checks"]:
            out.append(f"    checks: {_checks(row)}")
        if pending := row.get("pending"):
            out.append(f"    pending: {pending['commit'][:12]} ({pending['tag']}) is verified "
                       "by the stage before and not applied here yet")
    return "\n".join(safe_text(line, one_line=True) for line in out) + "\n"


def _markdown(rows: list[dict[str, Any]], pipeline: stages.Stages) -> str:
    cell = report.markdown_cell
    lines = [f"### Stages: {' → '.join(pipeline.pipeline)}", "",
             "| stage | commit | state | when | checks | tag |", "|---|---|---|---|---|---|"]
    for row in rows:
        name = f"**{cell(row['stage'])}** (this instance)" if row["from"] == "history" \
            else cell(row["stage"])
        lines.append("| " + " | ".join([name, *(cell(v) for v in (
            (row["commit"] or "")[:12] or "-", _verdict(row), row["when"] or "-",
            _checks(row), row["tag"] or "-"))]) + " |")
    return "\n".join(lines) + "\n"

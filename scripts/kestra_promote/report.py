"""Plans, apply results and problems as data, text and Markdown. Pure functions: the CLI prints.

The JSON shape (``*_to_dict``) carries ``format_version``; bump it on incompatible changes. It
holds names, sources and messages as they are: JSON encoding escapes what a reader could trip on.

Text and Markdown show names, diffs and messages from Git and the target, which anyone who can
push there chooses: they go through ``textsafe.safe_text`` (no control characters, no line Kestra
would read as a command), and Markdown escapes them so they cannot split table rows or open or
close HTML elements.
"""

from __future__ import annotations

import base64
import html
import re
from typing import Any, Iterable, Mapping, Sequence

from kestra_promote import verification_report as checked
from kestra_promote.models import (
    Action,
    ApplyResult,
    Change,
    FileKey,
    FlowKey,
    Inventory,
    ObjectKey,
    Outcome,
    Plan,
    Problem,
    Reason,
    Status,
)
from kestra_promote.textsafe import defuse_markers, safe_text

FORMAT_VERSION = "1"

_SYMBOLS = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-", Action.UNCHANGED: "=",
            Action.DRIFTED: "!", Action.ORPHANED: "?", Action.UNMANAGED: "?", Action.RELEASED: ">"}
_COLORS = {Action.CREATE: "32", Action.UPDATE: "33", Action.DELETE: "31", Action.UNCHANGED: "0",
           Action.DRIFTED: "35", Action.ORPHANED: "36", Action.UNMANAGED: "0", Action.RELEASED: "36"}
_PAST = {Action.CREATE: "created", Action.UPDATE: "updated", Action.DELETE: "deleted"}
_DEFAULT_REASON = {Action.CREATE: Reason.NEW_IN_GIT, Action.UPDATE: Reason.CHANGED_IN_GIT,
                   Action.DELETE: Reason.LEFT_GIT}


def _paint(text: str, code: str, color: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if color and code != "0" else text


def _inline(value: object) -> str:
    """A name or value shown within a line: a newline in it must not start a line of its own."""
    return safe_text(str(value), one_line=True)


def _lines(text: str, indent: str) -> str:
    """A message that may span lines: the next lines indented under its first."""
    return safe_text(text.rstrip("\n")).replace("\n", "\n" + indent)


def _finish(text: str, color: bool = False) -> str:
    # every value is escaped where it is put in; this pass is for whole lines (a marker may be
    # assembled from several values) and, without colours, for anything escaped nowhere else
    return defuse_markers(text) if color else safe_text(text)


def short(commit: str | None) -> str:
    return _inline(str(commit)[:12]) if commit else "(no commit)"


def matches(commit: str | None, dirty: bool = False) -> str:
    """What the target now matches: a commit (with the uncommitted changes --allow-dirty let
    through), or a folder that is not a Git checkout."""
    if not commit:
        return "the source folder"
    return f"Git at {short(commit)}" + (" plus uncommitted changes" if dirty else "")


def _commit_cell(run: Mapping[str, Any]) -> str:
    """A history record's commit, marked when the run promoted uncommitted files."""
    return short(run.get("commit")) + ("+dirty" if run.get("dirty") is True else "")


def _count(n: int, what: str) -> str:
    return f"{n} {what}"


def what_holds(plan: Plan) -> str:
    """What is true of the target once the plan is applied: exactly, with every exception."""
    counts = plan.summary
    exceptions = [
        _count(counts["drifted"], "drifted (edited on the target, left as it is)")
        if counts["drifted"] else "",
        _count(counts["orphaned"], "orphaned (no longer in Git, kept: prune is off)")
        if counts["orphaned"] else "",
    ]
    exceptions = [e for e in exceptions if e]
    others = [
        _count(counts["unmanaged"], "unmanaged object(s) in its namespaces are not this "
               "source's (never touched)") if counts["unmanaged"] else "",
        _count(counts["released"], "object(s) left its scope (released, left as they are)")
        if counts["released"] else "",
    ]
    others = [o for o in others if o]
    if not exceptions and not others:
        return f"The target matches {matches(plan.commit, plan.dirty)}."
    text = f"Every object this source manages matches {matches(plan.commit, plan.dirty)}"
    text += f", except {' and '.join(exceptions)}" if exceptions else ""
    return text + "." + "".join(f" {o[0].upper()}{o[1:]}." for o in others)


def summary_line(plan: Plan) -> str:
    counts = plan.summary
    if plan.is_empty:
        if counts["drifted"] or counts["orphaned"]:
            return "No changes to write."  # the details line says what differs
        return f"No changes. {what_holds(plan)}"
    if not plan.pending:
        return ("No changes to flows or files; the inventory will record what this source "
                "manages.")
    return (f"Plan: {counts['create']} to create, {counts['update']} to update, "
            f"{counts['delete']} to delete.")


def details_line(plan: Plan) -> str:
    """The counts that are not writes, when there are any (and the summary line has not told
    them: an empty plan's says what holds, its unmanaged objects included)."""
    counts = plan.summary
    told = plan.is_empty and not counts["drifted"] and not counts["orphaned"]
    parts = [
        _count(counts["unchanged"], "unchanged") if counts["unchanged"] and not plan.is_empty else "",
        _count(counts["drifted"], "drifted (left as is)") if counts["drifted"] else "",
        _count(counts["orphaned"], "would be deleted with --prune") if counts["orphaned"] else "",
        _count(counts["unmanaged"], "unmanaged (never touched)")
        if counts["unmanaged"] and not told else "",
    ]
    return ", ".join(p for p in parts if p)


# -- data -----------------------------------------------------------------------------------


def key_to_dict(key: ObjectKey) -> dict[str, Any]:
    return {
        "kind": key.kind,
        "namespace": key.namespace,
        "id": key.id if isinstance(key, FlowKey) else None,
        "file": key.path if isinstance(key, FileKey) else None,
    }


def change_to_dict(change: Change, *, diff: bool = True) -> dict[str, Any]:
    return {
        **key_to_dict(change.key),
        "action": change.action.value,
        "reason": change.reason.value,
        "path": change.path,
        "diff": (change.diff or None) if diff else None,
    }


def plan_to_dict(plan: Plan, *, warnings: Sequence[Problem] = ()) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "name": plan.name,
        "commit": plan.commit,
        "dirty": plan.dirty,  # uncommitted files promoted with --allow-dirty
        "live_fingerprint": plan.live_fingerprint,
        "summary": plan.summary,
        "changes": [change_to_dict(c) for c in plan.changes],
        "inventory_update": plan.managed_after is not None,
        "refusals": list(plan.refusals),
        "warnings": [w.to_dict() for w in (*plan.warnings, *warnings)],
        "policy": plan.policy or None,
        "safeguards": {key: {"value": value, "from": origin}
                       for key, (value, origin) in plan.safeguards.items()},
    }


def result_to_dict(result: ApplyResult) -> dict[str, Any]:
    data = plan_to_dict(result.plan, warnings=result.warnings)
    data["result"] = {
        "ok": result.ok,
        **{status.value.replace(" ", "_"): result.count(status) for status in Status},
        "inventory": result.inventory.value if result.inventory else None,
        # a failed run: whether every object was read back holding what it held before
        "rolled_back": result.rolled_back,
        "uncertain": [{**key_to_dict(left.key), "holds": left.holds,
                       "should_hold": left.should_hold} for left in result.leftovers],
        "outcomes": [
            {**change_to_dict(o.change, diff=False), "status": o.status.value, "message": o.message,
             **_previous_to_dict(o)}
            for o in result.outcomes
        ],
    }
    if result.verification is not None:
        data["verification"] = checked.to_dict(result.verification, result.plan.commit)
    if not result.passed:  # what stopped it, as an error document says it
        data["error"] = result_summary(result)
    return data


def _previous_to_dict(outcome: Outcome) -> dict[str, Any]:
    """What the target held before the run, for an object the run could not put back."""
    if outcome.status is not Status.NOT_REVERTED:
        return {}
    value = outcome.previous
    if isinstance(value, bytes):
        return {"previous_base64": base64.b64encode(value).decode()}
    return {"previous": value}  # None: the object did not exist before the run


def problems_to_dict(
    message: str, problems: Sequence[Problem], *, commit: str | None = None
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "commit": commit,
        "error": message,
        "problems": [p.to_dict() for p in problems],
    }


# -- text -----------------------------------------------------------------------------------


def _indent(text: str, prefix: str = "      ") -> str:
    return "".join(prefix + line + "\n" for line in text.splitlines())


def _color_diff(text: str, color: bool) -> str:
    if not color:
        return text
    lines = []
    for line in text.splitlines():
        code = "0"
        if line.startswith("+") and not line.startswith("+++"):
            code = "32"
        elif line.startswith("-") and not line.startswith("---"):
            code = "31"
        elif line.startswith("@@"):
            code = "36"
        lines.append(_paint(line, code, color))
    return "\n".join(lines) + "\n"


def _note(change: Change) -> str:
    return "" if _DEFAULT_REASON.get(change.action) is change.reason else change.reason.value


def _policy_lines(plan: Plan) -> list[str]:
    """Production's policy and each safeguard's value with where it came from; nothing when
    no policy was read (the settings are then the repository's, as always)."""
    if not plan.policy:
        return []
    lines = [f"Policy: {_inline(plan.policy)}\n"]
    lines += [f"  {key}: {_inline(value)} (from {origin})\n"
              for key, (value, origin) in plan.safeguards.items()]
    return lines


def render_plan_text(plan: Plan, *, color: bool = False, show_diffs: bool = True) -> str:
    flows = sum(1 for c in plan.changes if c.kind == "flow" and c.after is not None)
    files = sum(1 for c in plan.changes if c.kind == "file" and c.after is not None)
    origin = (f"Git commit {short(plan.commit)}" if plan.commit
              else "Source folder (not a Git checkout)")
    counted = f"{flows} flow(s)" + (f", {files} namespace file(s)" if files else "")
    out = [f"{origin}: {counted}.\n", *_policy_lines(plan)]
    shown = [c for c in plan.changes if c.action is not Action.UNCHANGED]
    if shown:
        width = max(len(_inline(c.key)) for c in shown)
        out.append("\n")
        for change in shown:
            symbol = _paint(_SYMBOLS[change.action], _COLORS[change.action], color)
            where = _inline(change.path or "")
            note = _note(change)
            line = f"  {symbol} {change.action.value:<9} {_inline(change.key):<{width}}  {where}"
            out.append(line.rstrip() + (f"  ({note})" if note else "") + "\n")
            if show_diffs and change.diff and change.action in (Action.UPDATE, Action.DRIFTED):
                # escaped before painting, so the only escape sequences left are the colours
                out.append(_indent(_color_diff(safe_text(change.diff), color)))
    if plan.warnings:
        out.append("\nWarnings:\n" + "".join(f"  {_lines(str(w), '    ')}\n"
                                              for w in plan.warnings))
    if plan.refusals:
        out.append("\nRefused:\n" + "".join(f"  - {_lines(r, '    ')}\n" for r in plan.refusals))
    out.append("\n" + summary_line(plan))
    if details := details_line(plan):
        out.append(f" {details[0].upper()}{details[1:]}.")
    return _finish("".join(out) + "\n", color)


def result_summary(result: ApplyResult) -> str:
    done = {a: 0 for a in _PAST}
    for outcome in result.outcomes:
        if outcome.status is Status.APPLIED:
            done[outcome.change.action] += 1
    counts = ", ".join(f"{n} {_PAST[a]}" for a, n in done.items())
    if result.ok:
        if not result.outcomes and result.inventory is None:
            return summary_line(result.plan)
        checks = result.verification
        if checks is None:
            return f"Apply complete: {counts}. {what_holds(result.plan)}"
        holds = what_holds(result.plan) + " " if checks.passed else ""  # else: rolled back or held
        return f"Apply complete: {counts}. {holds}{checked.summary(checks, result.plan.commit)}"
    failed = next((o for o in result.outcomes if o.status is Status.FAILED), None)
    cause = result.error or (f"{failed.change.action.value} {failed.change.key} failed" if failed
                             else "writing the inventory failed")
    if result.rolled_back:
        return (f"Apply failed ({_inline(cause)}); the run was rolled back: "
                f"{result.count(Status.REVERTED)} change(s) reverted, "
                f"{result.count(Status.SKIPPED)} not attempted.")
    return f"Apply failed ({_inline(cause)}); the run was NOT rolled back: {_not_as_before(result)}"


def _names(keys: Sequence[object]) -> str:
    shown = ", ".join(_inline(key) for key in keys[:10])
    return shown + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")


def _not_as_before(result: ApplyResult) -> str:
    """What keeps a failed run from being rolled back, and what to do."""
    parts = []
    unknown = [left.key for left in result.leftovers if left.unknown]
    known = [left.key for left in result.leftovers if not left.unknown]
    if unknown:
        parts.append(f"reading the target back after the revert failed: {len(unknown)} object(s) "
                     f"may not hold what they held before ({_names(unknown)})")
    if known:
        parts.append(f"read back after the revert, {len(known)} object(s) do not hold what they "
                     f"held before ({_names(known)})")
    stuck = [o.change.key for o in result.outcomes if o.status is Status.NOT_REVERTED
             and o.change.key not in {*unknown, *known}]
    if stuck:
        parts.append(f"{len(stuck)} could NOT be reverted ({_names(stuck)})")
    if result.inventory is Status.NOT_REVERTED:
        parts.append("the previous inventory could NOT be restored")
    return "; ".join(parts) + ": check by hand (`plan` shows what differs)."


def render_result_text(result: ApplyResult, *, color: bool = False) -> str:
    out = []
    for outcome in result.outcomes:
        change = outcome.change
        if outcome.status is Status.APPLIED:
            word = _paint(_inline(outcome.message or change.action.value), _COLORS[change.action],
                          color)
            out.append(f"  {word} {_inline(change.key)}\n")
        else:
            code = "31" if outcome.status in (Status.FAILED, Status.NOT_REVERTED) else "0"
            out.append(f"  {_paint(outcome.status.value, code, color)} {_inline(change.key)}: "
                       f"{_lines(outcome.message, '    ')}\n")
    for outcome in result.outcomes:
        if outcome.status is Status.NOT_REVERTED:
            out.append(_previous_text(outcome))
    if result.inventory is not None:
        after = result.plan.managed_after
        what = (f"{len(after.flows)} flow(s), {len(after.files)} file(s)" if after else "")
        message = (f": {_lines(result.inventory_message, '    ')}" if result.inventory_message
                   else "")
        out.append(f"  inventory {result.inventory.value} ({what} managed by "
                   f"{_inline(repr(result.plan.name))}){message}\n")
    if result.verification is not None:
        out.append(checked.text(result.verification))
    out.append("\n" + result_summary(result) + "\n")
    return _finish("".join(out), color)


def _previous_content(outcome: Outcome) -> str:
    value = outcome.previous
    if value is None:
        return "(it did not exist before this run: delete it to restore the target)\n"
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return f"(binary, {len(value)} bytes: in the JSON report, base64)\n"
    return value if value.endswith("\n") else value + "\n"


def _previous_text(outcome: Outcome) -> str:
    """The content a person needs to restore an object the run could not put back."""
    return (f"\n  What {_inline(outcome.change.key)} held before this run (restore it by hand):\n"
            + _indent(safe_text(_previous_content(outcome)), "    | "))


def render_problems_text(message: str, problems: Iterable[Problem]) -> str:
    lines = [f"  {_lines(str(problem), '    ')}" for problem in problems]
    return _finish("\n".join([*lines, f"Error: {_lines(message, '  ')}"]) + "\n")


def render_history_text(inventory: Inventory | None, name: str) -> str:
    if inventory is None or not inventory.history:
        return _finish(f"No promotion recorded for {_inline(repr(name))} on this target.\n")
    runs = list(reversed(inventory.history))
    width = max(12, *(len(_commit_cell(run)) for run in runs))  # wider with a +dirty run
    rows = [f"{'time':<25} {'commit':<{width}} {'trigger':<9} {'result':<8} created updated "
            "deleted"]
    for run in runs:
        # every field is read back from the target: any of them may hold anything
        rows.append(f"{_inline(run.get('time', '')):<25} {_commit_cell(run):<{width}} "
                    f"{_inline(run.get('trigger', '')):<9} {_inline(run.get('result', '')):<8} "
                    f"{_inline(run.get('created', 0)):>7} {_inline(run.get('updated', 0)):>7} "
                    f"{_inline(run.get('deleted', 0)):>7}")
        if run.get("window_override"):
            rows.append(f"  overrode the sync windows: {_inline(run['window_override'])}")
        if isinstance(run.get("verified"), bool):
            rows.append("  checks passed: verified" if run["verified"] else
                        f"  checks: {'passed, not verified' if _passed(run) else 'FAILED'}")
        if isinstance(run.get("rollback"), Mapping):
            rows.append(f"  rollback from {_inline(short(str(run['rollback'].get('from'))))}: "
                        f"{_inline(run['rollback'].get('reason', ''))}")
        if run.get("approved_by"):
            rows.append(f"  approved by {_inline(run['approved_by'])} at "
                        f"{_inline(run.get('approved_at', ''))}")
    return _finish("\n".join(rows) + "\n")


def _passed(run: Mapping[str, Any]) -> bool:
    checks = run.get("checks")
    return isinstance(checks, list) and all(isinstance(c, Mapping) and c.get("passed") is True
                                            for c in checks)


_STATUS_WORDS = {Action.UNCHANGED: "in sync", Action.CREATE: "out of sync",
                 Action.UPDATE: "out of sync", Action.DELETE: "out of sync",
                 Action.ORPHANED: "out of sync", Action.DRIFTED: "drifted",
                 Action.UNMANAGED: "unmanaged", Action.RELEASED: "released"}


def out_of_sync(plan: Plan) -> list[Change]:
    """Objects the target does not hold as Git wants them (unmanaged ones are not ours)."""
    return [c for c in plan.changes
            if c.action not in (Action.UNCHANGED, Action.UNMANAGED, Action.RELEASED)]


def status_of(change: Change) -> str:
    if change.reason is Reason.DRIFT_OVERWRITTEN:
        return "drifted"
    return _STATUS_WORDS[change.action]


def last_promotion(plan: Plan) -> Mapping[str, Any] | None:
    """The newest run that promoted (an ``adopt`` record moved ownership, nothing else)."""
    history = plan.inventory_before.history if plan.inventory_before else ()
    runs = [run for run in history if isinstance(run, Mapping) and run.get("result") != "adopted"]
    return runs[-1] if runs else None


def render_status_text(plan: Plan) -> str:
    rows = [(status_of(c), _inline(c.key), c.reason.value) for c in plan.changes]
    width = max((len(k) for _, k, _ in rows), default=0)
    out = [f"  {s:<12} {k:<{width}}  {r}\n" for s, k, r in rows]
    last = last_promotion(plan)
    counts: dict[str, int] = {}
    for status, _, _ in rows:
        counts[status] = counts.get(status, 0) + 1
    tally = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing managed"
    out.append(f"\nSource {_inline(repr(plan.name))}: {tally}.\n")
    if last:
        out.append(f"Last promotion: {_commit_cell(last)} at {_inline(last.get('time'))} "
                   f"({_inline(last.get('trigger'))}).\n")
    else:
        out.append("Last promotion: none recorded on this target.\n")
    out += [f"Refused: {_inline(reason)}\n" for reason in plan.refusals]
    return _finish("".join(out))


# -- Markdown -------------------------------------------------------------------------------
#
# Reports are rendered by GitHub and other Markdown readers, which also render some HTML. Each
# value from Git or the target is escaped for where it lands: a code span or fence (inert inside,
# so only its delimiter must stay out of reach), text (Markdown punctuation and HTML escaped), a
# table cell (pipes) or the raw HTML of a <summary>. All of it stays on one line, except diffs.


def _longest_backticks(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text`` (flows may hold fences)."""
    return "`" * max(3, _longest_backticks(text) + 1)


def _md_code(value: object) -> str:
    """A code span showing ``value`` literally, whatever backticks it holds."""
    text = _inline(value)
    if not text:
        return ""
    ticks = "`" * (_longest_backticks(text) + 1)
    # a span drops one space at each end when it has both: pad where a backtick would touch the
    # delimiter, and where the value's own spaces would be dropped
    pad = " " if "`" in (text[0], text[-1]) or (text[0] == text[-1] == " " and text.strip()) else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


_MD_SPECIAL = re.compile(r"[\\`*_\[\]~<>&]")
_MD_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def _md_text(value: object) -> str:
    """``value`` as plain Markdown text: no emphasis, link, code span or HTML can start in it."""
    return _MD_SPECIAL.sub(lambda m: _MD_ENTITIES.get(m[0], "\\" + m[0]), _inline(value))


def _md_cell(markdown: str) -> str:
    # GitHub splits a table row at every pipe not preceded by a backslash, in code spans too
    return markdown.replace("|", "\\|")


def markdown_cell(value: object) -> str:
    """``value`` as plain text in a Markdown table's cell."""
    return _md_cell(_md_text(value))


def _html(value: object) -> str:
    return html.escape(_inline(value), quote=False)


def _md_diff(change: Change) -> str:
    text = safe_text(change.diff)
    text += "" if text.endswith("\n") else "\n"  # or the closing fence would not be one
    fence = _fence(text)
    # the fence keeps the diff's own HTML inert; the summary is raw HTML, hence escaped as such
    return (f"<details><summary>diff of <code>{_html(change.key)}</code></summary>\n\n"
            f"{fence}diff\n{text}{fence}\n\n</details>\n\n")


def render_plan_markdown(plan: Plan, *, result: ApplyResult | None = None) -> str:
    title = "Promotion result" if result is not None else "Promotion plan"
    out = [f"### {title} for {_md_code(short(plan.commit))}\n\n"]
    counts = plan.summary
    out.append("| " + " | ".join(a.value for a in Action) + " |\n"
               "|" + "---:|" * len(Action) + "\n")
    out.append("| " + " | ".join(str(counts[a.value]) for a in Action) + " |\n\n")
    if plan.policy:
        out.append(f"Policy: {_md_text(plan.policy)}\n\n"
                   + "".join(f"- {_md_code(key)}: {_md_text(value)} (from {origin})\n"
                             for key, (value, origin) in plan.safeguards.items()) + "\n")
    statuses = {o.change.key: o for o in result.outcomes} if result else {}
    shown = [c for c in plan.changes if c.action is not Action.UNCHANGED]
    if shown:
        header = "| | object | action | file | note |" + (" status |" if result else "")
        out.append(header + "\n|---|---|---|---|---|" + ("---|" if result else "") + "\n")
        for change in shown:
            row = (f"| {_SYMBOLS[change.action]} | {_md_cell(_md_code(change.key))} | "
                   f"{change.action.value} | {_md_cell(_md_text(change.path or ''))} | "
                   f"{_md_cell(_md_text(_note(change)))} |")
            if result:
                outcome = statuses.get(change.key)
                row += f" {outcome.status.value if outcome else ''} |"
            out.append(row + "\n")
        out.append("\n")
        out.extend(_md_diff(change) for change in shown if change.diff)
    for outcome in result.outcomes if result else ():
        if outcome.status is Status.NOT_REVERTED:
            text = safe_text(_previous_content(outcome))
            fence = _fence(text)
            out.append(f"<details><summary>what <code>{_html(outcome.change.key)}</code> held "
                       "before this run (not reverted: restore it by hand)</summary>\n\n"
                       f"{fence}\n{text}{fence}\n\n</details>\n\n")
    if plan.refusals:
        out.append("**Refused:**\n\n" + "".join(f"- {_md_text(r)}\n" for r in plan.refusals)
                   + "\n")
    if plan.warnings:
        out.append("Warnings:\n\n" + "".join(f"- {_md_code(str(w))}\n" for w in plan.warnings)
                   + "\n")
    if result is not None and result.verification is not None:
        out.append(checked.markdown(result.verification, _md_text))
    closing = result_summary(result) if result is not None else summary_line(plan)
    out.append(f"**{_md_text(closing)}**\n")
    return _finish("".join(out))


def render_status_markdown(plan: Plan) -> str:
    """The status report as a Markdown table, for ``report.md`` and ``status --format
    markdown``."""
    out = [f"### Promotion status of {_md_code(plan.name)}\n\n"]
    if plan.changes:
        out.append("| status | object | file | why |\n|---|---|---|---|\n")
        for change in plan.changes:
            out.append(f"| {status_of(change)} | {_md_cell(_md_code(change.key))} | "
                       f"{_md_cell(_md_text(change.path or ''))} | "
                       f"{_md_cell(_md_text(change.reason.value))} |\n")
        out.append("\n")
    else:
        out.append("Nothing managed yet.\n\n")
    last = last_promotion(plan)
    if last:
        out.append(f"Last promotion: {_md_code(_commit_cell(last))} at "
                   f"{_md_text(last.get('time'))} ({_md_text(last.get('trigger'))}).\n")
    else:
        out.append("Last promotion: none recorded on this target.\n")
    out += [f"\n**Refused:** {_md_text(reason)}\n" for reason in plan.refusals]
    return _finish("".join(out))


def render_history_markdown(inventory: Inventory | None, name: str) -> str:
    """``history --format markdown``: one table row per run, newest first."""
    if inventory is None or not inventory.history:
        return _finish(f"No promotion recorded for {_md_code(name)} on this target.\n")
    out = [f"### Promotions of {_md_code(name)}\n\n",
           "| time | commit | trigger | result | created | updated | deleted |\n",
           "|---|---|---|---|---:|---:|---:|\n"]
    for run in reversed(inventory.history):  # every field is read back from the target
        cells = [_md_text(run.get("time", "")), _md_code(_commit_cell(run)),
                 _md_text(run.get("trigger", "")), _md_text(run.get("result", ""))]
        cells += [_md_text(run.get(key, 0)) for key in ("created", "updated", "deleted")]
        out.append("| " + " | ".join(_md_cell(c) for c in cells) + " |\n")
    return _finish("".join(out))


def render_problems_markdown(message: str, problems: Iterable[Problem]) -> str:
    rows = "".join(f"- {_md_code(str(p))}\n" for p in problems)
    return _finish(f"### Promotion blocked\n\n{rows}\n**Error: {_md_text(message)}**\n")

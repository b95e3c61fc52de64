"""Plans, apply results and problems as data, text and Markdown. Pure functions: the CLI prints.

The JSON shape (``*_to_dict``) carries ``format_version``; bump it on incompatible changes.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from .models import Action, ApplyResult, Change, Plan, Problem, Status

FORMAT_VERSION = "1"

_SYMBOLS = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-", Action.UNCHANGED: "="}
_COLORS = {Action.CREATE: "32", Action.UPDATE: "33", Action.DELETE: "31", Action.UNCHANGED: "0"}
_PAST = {Action.CREATE: "created", Action.UPDATE: "updated", Action.DELETE: "deleted"}


def _paint(text: str, code: str, color: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if color and code != "0" else text


def short(commit: str | None) -> str:
    return commit[:12] if commit else "(no commit)"


def matches(commit: str | None) -> str:
    """What the target now matches: a commit, or a folder that is not a Git checkout."""
    return f"Git at {commit[:12]}" if commit else "the source folder"


def summary_line(plan: Plan) -> str:
    counts = plan.summary
    if plan.is_empty:
        return f"No changes. The target matches {matches(plan.commit)}."
    return (
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete."
    )


# -- data -----------------------------------------------------------------------------------


def change_to_dict(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "namespace": change.key.namespace,
        "id": change.key.id,
        "action": change.action.value,
        "reason": change.reason.value,
        "path": change.path,
        "diff": change.diff or None,
    }


def plan_to_dict(plan: Plan, *, warnings: Sequence[Problem] = ()) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "commit": plan.commit,
        "live_fingerprint": plan.live_fingerprint,
        "summary": plan.summary,
        "changes": [change_to_dict(c) for c in plan.changes],
        "warnings": [w.to_dict() for w in warnings],
    }


def result_to_dict(result: ApplyResult, *, warnings: Sequence[Problem] = ()) -> dict[str, Any]:
    data = plan_to_dict(result.plan, warnings=warnings)
    data["result"] = {
        "ok": result.ok,
        "applied": result.count(Status.APPLIED),
        "failed": result.count(Status.FAILED),
        "skipped": result.count(Status.SKIPPED),
        "outcomes": [
            {**change_to_dict(o.change), "diff": None, "status": o.status.value,
             "message": o.message}
            for o in result.outcomes
        ],
    }
    return data


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


def render_plan_text(plan: Plan, *, color: bool = False, show_diffs: bool = True) -> str:
    origin = f"Git commit {plan.commit[:12]}" if plan.commit else "Source folder (not a Git checkout)"
    out = [f"{origin}: {len(plan.changes)} flow(s).\n"]
    pending = plan.pending
    if pending:
        width = max(len(str(c.key)) for c in pending)
        out.append("\n")
        for change in pending:
            symbol = _paint(_SYMBOLS[change.action], _COLORS[change.action], color)
            out.append(
                f"  {symbol} {change.action.value:<7} {str(change.key):<{width}}  {change.path}\n"
            )
            if show_diffs and change.diff:
                out.append(_indent(_color_diff(change.diff, color)))
    unchanged = plan.summary["unchanged"]
    out.append("\n" + summary_line(plan))
    if unchanged and not plan.is_empty:
        out.append(f" {unchanged} unchanged.")
    return "".join(out) + "\n"


def render_result_text(result: ApplyResult, *, color: bool = False) -> str:
    out = []
    for outcome in result.outcomes:
        change = outcome.change
        if outcome.status is Status.APPLIED:
            word = _paint(_PAST.get(change.action, change.action.value), _COLORS[change.action], color)
            out.append(f"  {word} {change.key}\n")
        else:
            word = _paint(outcome.status.value, "31" if outcome.status is Status.FAILED else "0", color)
            out.append(f"  {word} {change.key}: {outcome.message}\n")
    out.append("\n" + result_summary(result) + "\n")
    return "".join(out)


def result_summary(result: ApplyResult) -> str:
    if not result.outcomes:
        return summary_line(result.plan)
    done = {a: 0 for a in _PAST}
    for outcome in result.outcomes:
        if outcome.status is Status.APPLIED:
            done[outcome.change.action] += 1
    counts = ", ".join(f"{n} {_PAST[a]}" for a, n in done.items())
    if result.ok:
        return f"Apply complete: {counts}. The target matches {matches(result.plan.commit)}."
    return (
        f"Apply failed: {result.count(Status.FAILED)} change(s) failed, "
        f"{result.count(Status.SKIPPED)} not attempted; {counts}."
    )


def render_problems_text(message: str, problems: Iterable[Problem]) -> str:
    lines = [f"  {problem}" for problem in problems]
    return "\n".join([*lines, f"Error: {message}"]) + "\n"


# -- Markdown -------------------------------------------------------------------------------


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text`` (flows may hold fences)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_plan_markdown(plan: Plan, *, result: ApplyResult | None = None) -> str:
    title = "Promotion result" if result is not None else "Promotion plan"
    out = [f"### {title} for `{short(plan.commit)}`\n\n"]
    counts = plan.summary
    out.append("| create | update | delete | unchanged |\n|---:|---:|---:|---:|\n")
    out.append(f"| {counts['create']} | {counts['update']} | {counts['delete']} | "
               f"{counts['unchanged']} |\n\n")
    statuses = {o.change.key: o for o in result.outcomes} if result else {}
    if plan.pending:
        header = "| | flow | action | file |" + (" status |" if result else "")
        out.append(header + "\n|---|---|---|---|" + ("---|" if result else "") + "\n")
        for change in plan.pending:
            row = (f"| {_SYMBOLS[change.action]} | `{change.key}` | {change.action.value} | "
                   f"{_md_escape(change.path or '')} |")
            if result:
                outcome = statuses.get(change.key)
                row += f" {outcome.status.value if outcome else ''} |"
            out.append(row + "\n")
        out.append("\n")
        for change in plan.pending:
            if change.diff:
                fence = _fence(change.diff)
                out.append(f"<details><summary>diff of <code>{change.key}</code></summary>\n\n"
                           f"{fence}diff\n{change.diff}{fence}\n\n</details>\n\n")
    closing = result_summary(result) if result is not None else summary_line(plan)
    out.append(f"**{closing}**\n")
    return "".join(out)


def render_problems_markdown(message: str, problems: Iterable[Problem]) -> str:
    rows = "".join(f"- `{_md_escape(str(p))}`\n" for p in problems)
    return f"### Promotion blocked\n\n{rows}\n**Error: {message}**\n"

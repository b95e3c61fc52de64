"""What the commands print, and where: ``Output`` (results on stdout, diagnostics and progress
on stderr, the CI job summary) and the renderings several commands share: a plan, an apply's
result, its progress lines, an error with its problems.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Callable, Sequence, TextIO

from kestra_promote import report
from kestra_promote.engine.apply import Progress
from kestra_promote.errors import KestraPromoteError
from kestra_promote.gates import review
from kestra_promote.models import ApplyResult, Outcome, Plan, Problem
from kestra_promote.textsafe import safe_text

PROGRESS_THRESHOLD = 10  # progress lines only for applies long enough to want them


@dataclass
class Output:
    """Where people-facing text goes: results on stdout, diagnostics and progress on stderr."""

    out: TextIO
    err: TextIO
    format: str = "text"
    summary_file: str | None = None  # $GITHUB_STEP_SUMMARY: Markdown is appended there too

    @property
    def color(self) -> bool:
        return self.format == "text" and self.out.isatty() and "NO_COLOR" not in os.environ

    def write(self, text: str) -> None:
        self.out.write(safe_text(text))

    def write_rendered(self, text: str) -> None:
        """A report renderer's text: already safe, and its colour codes are to be kept."""
        self.out.write(text if self.color else safe_text(text))

    def json(self, data: object) -> None:
        self.out.write(json.dumps(data, indent=2) + "\n")  # ASCII: no raw control character

    def note(self, text: str) -> None:
        self.err.write(safe_text(text) + "\n")  # messages and names may come from Git

    def step_summary(self, render: Callable[[], str]) -> None:
        """Append a Markdown report to the CI job summary, if there is one. A summary that
        cannot be written is a warning: the run itself (perhaps already applied) is what
        counts, and its result must still be reported."""
        if not self.summary_file:
            return
        try:
            with open(self.summary_file, "a", encoding="utf-8") as handle:
                handle.write(render() + "\n")
        except OSError as exc:
            self.note(f"Warning: cannot write the job summary GITHUB_STEP_SUMMARY "
                      f"({exc.strerror or exc})")


def progress(output: Output, total_hint: int) -> Progress:
    def show(outcome: Outcome, number: int, total: int) -> None:
        if number == 0:
            output.note(f"[revert] {outcome.status.value} {outcome.change.key}")
        elif total_hint >= PROGRESS_THRESHOLD:
            word = outcome.message if outcome.status.value == "applied" else outcome.status.value
            output.note(f"[{number}/{total}] {word} {outcome.change.key}")

    return show


def show_plan(output: Output, plan: Plan, warnings: Sequence[Problem] = (),
              error: KestraPromoteError | None = None, *, public: bool = False) -> None:
    """The plan on stdout and in the job summary. ``public``: only what a pull request may show
    (``review.public``: no diff of production's copy that did not come from this repository),
    saying how many diffs that leaves out, in every format."""
    full = dataclasses.replace(plan, warnings=(*plan.warnings, *warnings))
    hidden = 0
    if public:
        full, hidden = review.public(full)
    withheld = review.withheld(hidden)
    if output.format == "json":  # one document, with the error that stopped the run if any
        data = report.plan_to_dict(full)
        if public:
            data["diffs_not_shown"] = hidden
        if error is not None:
            data.update(report.problems_to_dict(str(error), getattr(error, "problems", ()),
                                                commit=plan.commit))
        output.json(data)
    elif output.format == "markdown":
        output.write(_markdown_plan(full, withheld))
    else:
        output.write_rendered(report.render_plan_text(full, color=output.color))
        if withheld:
            output.write(f"\n{withheld}.\n")
    output.step_summary(lambda: _markdown_plan(full, withheld))


def _markdown_plan(plan: Plan, withheld: str) -> str:
    text = report.render_plan_markdown(plan)
    return text + f"\n_{withheld}_\n" if withheld else text


def show_result(output: Output, plan: Plan, result: ApplyResult) -> None:
    if output.format == "json":
        output.json(report.result_to_dict(result))
    elif output.format == "markdown":
        output.write(report.render_plan_markdown(plan, result=result))
    elif result.outcomes or result.inventory is not None:
        output.write_rendered("\n" + report.render_result_text(result, color=output.color))
    output.step_summary(lambda: report.render_plan_markdown(plan, result=result))


def report_error(output: Output, error: KestraPromoteError) -> None:
    problems = getattr(error, "problems", ())
    message = str(error)
    if output.format == "json":
        output.json(report.problems_to_dict(message, problems, commit=error.commit))
        output.note(f"Error: {message}")
    elif output.format == "markdown":
        output.write(report.render_problems_markdown(message, problems))
        output.note(f"Error: {message}")
    else:
        output.err.write(report.render_problems_text(message, problems))

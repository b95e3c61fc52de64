"""The checks after an apply, and the rollback they led to, in words, Markdown and JSON."""

from __future__ import annotations

from typing import Any, Sequence

from kestra_promote.models import CheckResult, Status, Verification
from kestra_promote.textsafe import safe_text


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "(unknown)"


def summary(verification: Verification, commit: str | None) -> str:
    """One line: passed, or what failed and what became of the target."""
    checks = verification.checks
    if verification.passed:
        line = f"Checks passed ({len(checks)}): commit {_short(commit)} is verified"
        if verification.mark_error:
            return f"{line}, but NOT marked for the next stage: {verification.mark_error}."
        if verification.marked:
            return f"{line} and marked {verification.marked} for the next stage."
        return line + "."
    failed = next(c for c in checks if not c.passed)
    line = f"Checks FAILED ({failed.check}: {failed.message})"
    if verification.on_failure == "hold":
        return f"{line}; held: the target keeps commit {_short(commit)} (on_failure: hold)."
    if verification.rolled_back:
        back = verification.rollback
        assert back is not None
        return (f"{line}; rolled back to commit {_short(verification.rollback_to)} "
                f"({back.count(Status.APPLIED)} change(s) applied).")
    return f"{line}; NOT rolled back: {verification.rollback_error}"


def lines(checks: Sequence[CheckResult]) -> list[str]:
    out = []
    for check in checks:
        where = f" [execution {check.execution}, {check.state}]" if check.execution else ""
        out.append(f"{'passed' if check.passed else 'FAILED'} {check.check}: {check.message}"
                   f"{where} ({check.seconds:.1f} s)")
    return [safe_text(line, one_line=True) for line in out]


def text(verification: Verification) -> str:
    body = "".join(f"  {line}\n" for line in lines(verification.checks))
    notes = "".join(f"  note: {safe_text(n, one_line=True)}\n" for n in verification.notes)
    return f"\nChecks after the apply (production's policy):\n{body}{notes}"


def markdown(verification: Verification, escape: Any) -> str:
    """The checks as a table (the report's closing line says what became of the target)."""
    rows = "".join(f"| {'passed' if c.passed else '**FAILED**'} | {escape(c.check)} | "
                   f"{escape(c.execution or '')} | {escape(c.state or '')} | {c.seconds:.1f} s | "
                   f"{escape(c.message)} |\n" for c in verification.checks)
    return ("#### Checks after the apply\n\n| result | check | execution | state | duration | "
            "message |\n|---|---|---|---|---:|---|\n" + rows + "\n"
            + "".join(f"- {escape(n)}\n" for n in verification.notes) + "\n")


def to_dict(verification: Verification, commit: str | None) -> dict[str, Any]:
    back = verification.rollback
    return {"passed": verification.passed, "on_failure": verification.on_failure,
            "checks": [c.to_json() for c in verification.checks],
            "rolled_back": verification.rolled_back, "rollback_to": verification.rollback_to,
            "rollback_error": verification.rollback_error or None,
            "rollback_changes": back.count(Status.APPLIED) if back is not None else 0,
            "marked": verification.marked or None, "mark_error": verification.mark_error or None,
            "notes": list(verification.notes), "summary": summary(verification, commit)}

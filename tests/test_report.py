"""Rendering plans and results: whole strings, so any change in what users read shows up here."""

from __future__ import annotations

from kestra_promote import report
from kestra_promote.models import (
    Action,
    ApplyResult,
    DesiredFlow,
    FlowKey,
    LiveFlow,
    Outcome,
    Plan,
    Problem,
    Status,
)
from kestra_promote.plan import plan

SHA = "0123456789abcdef0123456789abcdef01234567"
A, B, C = FlowKey("company", "a"), FlowKey("company", "b"), FlowKey("company.team", "c")


def sample_plan() -> Plan:
    return plan(
        {A: DesiredFlow(A, "id: a\nx: 2\n", "flows/a.yml"), B: DesiredFlow(B, "id: b\n", "b.yml"),
         C: DesiredFlow(C, "id: c\n", "c.yml")},
        {A: LiveFlow(A, "id: a\nx: 1\n"), C: LiveFlow(C, "id: c\n")},
        commit=SHA,
    )


def test_text_plan():
    assert report.render_plan_text(sample_plan()) == (
        "Git commit 0123456789ab: 3 flow(s).\n"
        "\n"
        "  ~ update  company/a  flows/a.yml\n"
        "      --- target: company/a\n"
        "      +++ git: flows/a.yml\n"
        "      @@ -1,2 +1,2 @@\n"
        "       id: a\n"
        "      -x: 1\n"
        "      +x: 2\n"
        "  + create  company/b  b.yml\n"
        "\n"
        "Plan: 1 to create, 1 to update, 0 to delete. 1 unchanged.\n"
    )


def test_text_plan_without_changes_or_commit():
    empty = plan({C: DesiredFlow(C, "id: c\n", "c.yml")}, {C: LiveFlow(C, "id: c\n")})
    assert report.render_plan_text(empty) == (
        "Source folder (not a Git checkout): 1 flow(s).\n"
        "\n"
        "No changes. The target matches the source folder.\n"
    )


def test_colour_only_when_asked():
    coloured = report.render_plan_text(sample_plan(), color=True)
    assert "\033[32m+\033[0m create" in coloured and "\033[31m-x: 1\033[0m" in coloured
    assert "\033[" not in report.render_plan_text(sample_plan(), color=False)


def test_markdown_plan():
    assert report.render_plan_markdown(sample_plan()) == (
        "### Promotion plan for `0123456789ab`\n"
        "\n"
        "| create | update | delete | unchanged |\n"
        "|---:|---:|---:|---:|\n"
        "| 1 | 1 | 0 | 1 |\n"
        "\n"
        "| | flow | action | file |\n"
        "|---|---|---|---|\n"
        "| ~ | `company/a` | update | flows/a.yml |\n"
        "| + | `company/b` | create | b.yml |\n"
        "\n"
        "<details><summary>diff of <code>company/a</code></summary>\n"
        "\n"
        "```diff\n"
        "--- target: company/a\n"
        "+++ git: flows/a.yml\n"
        "@@ -1,2 +1,2 @@\n"
        " id: a\n"
        "-x: 1\n"
        "+x: 2\n"
        "```\n"
        "\n"
        "</details>\n"
        "\n"
        "**Plan: 1 to create, 1 to update, 0 to delete.**\n"
    )


def test_markdown_fences_survive_backticks_in_a_diff():
    key = FlowKey("company", "doc")
    tricky = plan({key: DesiredFlow(key, "d: |\n  ```\n", "d.yml")}, {key: LiveFlow(key, "d: 1\n")})
    text = report.render_plan_markdown(tricky)
    assert "````diff\n" in text and "\n````\n" in text


def _result(statuses: list[Status]) -> ApplyResult:
    p = sample_plan()
    messages = {Status.APPLIED: None, Status.FAILED: "PUT /x failed with HTTP 500: boom",
                Status.SKIPPED: "not attempted: an earlier write failed"}
    outcomes = []
    for change, status in zip(p.pending, statuses, strict=False):
        message = messages[status] or ("updated" if change.action is Action.UPDATE else "created")
        outcomes.append(Outcome(change, status, message))
    return ApplyResult(p, tuple(outcomes))


def test_text_result_success_and_failure():
    assert report.render_result_text(_result([Status.APPLIED, Status.APPLIED])) == (
        "  updated company/a\n"
        "  created company/b\n"
        "\n"
        "Apply complete: 1 created, 1 updated, 0 deleted. The target matches Git at 0123456789ab.\n"
    )
    assert report.render_result_text(_result([Status.FAILED, Status.SKIPPED])) == (
        "  failed company/a: PUT /x failed with HTTP 500: boom\n"
        "  skipped company/b: not attempted: an earlier write failed\n"
        "\n"
        "Apply failed: 1 change(s) failed, 1 not attempted; 0 created, 0 updated, 0 deleted.\n"
    )


def test_json_documents():
    data = report.result_to_dict(_result([Status.APPLIED, Status.FAILED]))
    assert data["format_version"] == report.FORMAT_VERSION == "1"
    assert data["commit"] == SHA
    assert data["summary"] == {"create": 1, "update": 1, "delete": 0, "unchanged": 1}
    assert [c["action"] for c in data["changes"]] == ["update", "create", "unchanged"]
    assert data["changes"][0]["diff"].startswith("--- target: company/a")
    assert data["result"]["ok"] is False
    assert [(o["id"], o["status"]) for o in data["result"]["outcomes"]] == [
        ("a", "applied"), ("b", "failed")]
    problem = Problem("bad", "x.yml", 3, 4, A)
    assert report.problems_to_dict("oops", [problem]) == {
        "format_version": "1", "commit": None, "error": "oops",
        "problems": [{"path": "x.yml", "line": 3, "column": 4, "namespace": "company", "id": "a",
                      "message": "bad"}]}


def test_problems_text():
    problems = [Problem("bad thing", "x.yml", 3, 4, A), Problem("other", "y.yml")]
    assert report.render_problems_text("2 problems", problems) == (
        "  x.yml:3:4: company/a: bad thing\n  y.yml: other\nError: 2 problems\n")

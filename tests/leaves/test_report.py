"""Rendering plans and results: whole strings, so any change in what users read shows up here."""

from __future__ import annotations

from kestra_promote import report
from kestra_promote.compare import source_hash
from kestra_promote.config import Config
from kestra_promote.flows.desired import Desired
from kestra_promote.models import (
    Action,
    ApplyResult,
    DesiredFlow,
    FlowKey,
    Inventory,
    Leftover,
    LiveFlow,
    LiveState,
    Managed,
    Outcome,
    Plan,
    Problem,
    Status,
)
from kestra_promote.engine.plan import plan as make_plan


def plan(desired_flows, live_flows, commit=None):
    return make_plan(Desired(desired_flows), LiveState(live_flows), Config(), commit=commit)

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
        "  ~ update    company/a  flows/a.yml\n"
        "      --- target: company/a\n"
        "      +++ git: flows/a.yml\n"
        "      @@ -1,2 +1,2 @@\n"
        "       id: a\n"
        "      -x: 1\n"
        "      +x: 2\n"
        "  + create    company/b  b.yml\n"
        "\n"
        "Plan: 1 to create, 1 to update, 0 to delete. 1 unchanged.\n"
    )


def test_text_plan_without_changes_or_commit():
    recorded = Inventory("default", {C: Managed(source_hash("id: c\n"))})
    empty = make_plan(Desired({C: DesiredFlow(C, "id: c\n", "c.yml")}),
                      LiveState({C: LiveFlow(C, "id: c\n")}, inventory=recorded), Config())
    assert report.render_plan_text(empty) == (
        "Source folder (not a Git checkout): 1 flow(s).\n"
        "\n"
        "No changes. The target matches the source folder.\n"
    )
    adopting = make_plan(Desired({C: DesiredFlow(C, "id: c\n", "c.yml")}),
                         LiveState({C: LiveFlow(C, "id: c\n")}), Config())
    assert report.render_plan_text(adopting).endswith(
        "No changes to flows or files; the inventory will record what this source manages. "
        "1 unchanged.\n")


def test_text_plan_shows_every_kind_of_object():
    gone, stray, drifted = FlowKey("company", "gone"), FlowKey("company", "stray"), FlowKey("company", "d")
    recorded = Inventory("default", {gone: Managed(source_hash("g\n")), drifted: Managed(source_hash("d1\n"))})
    result = make_plan(
        Desired({drifted: DesiredFlow(drifted, "d2\n", "d.yml")}),
        LiveState({gone: LiveFlow(gone, "g\n"), stray: LiveFlow(stray, "s\n"),
                   drifted: LiveFlow(drifted, "d9\n")}, inventory=recorded),
        Config(drift="keep"), commit=SHA)
    assert report.render_plan_text(result) == (
        "Git commit 0123456789ab: 1 flow(s).\n"
        "\n"
        "  ! drifted   company/d      d.yml  (edited on the target since the last promotion; kept "
        "(drift: keep))\n"
        "      --- target: company/d\n"
        "      +++ git: d.yml\n"
        "      @@ -1 +1 @@\n"
        "      -d9\n"
        "      +d2\n"
        "  ? orphaned  company/gone  (no longer in Git; would delete (pass --prune))\n"
        "  ? unmanaged company/stray  (on the target only; not managed by this source)\n"
        "\n"
        "No changes to write. 1 drifted (left as is), "
        "1 would be deleted with --prune, 1 unmanaged (never touched).\n"
    )


def test_colour_only_when_asked():
    coloured = report.render_plan_text(sample_plan(), color=True)
    assert "\033[32m+\033[0m create " in coloured and "\033[31m-x: 1\033[0m" in coloured
    assert "\033[" not in report.render_plan_text(sample_plan(), color=False)


def test_markdown_plan():
    assert report.render_plan_markdown(sample_plan()) == (
        "### Promotion plan for `0123456789ab`\n"
        "\n"
        "| create | update | delete | unchanged | drifted | orphaned | unmanaged | released |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        "| 1 | 1 | 0 | 1 | 0 | 0 | 0 | 0 |\n"
        "\n"
        "| | object | action | file | note |\n"
        "|---|---|---|---|---|\n"
        "| ~ | `company/a` | update | flows/a.yml |  |\n"
        "| + | `company/b` | create | b.yml |  |\n"
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
    p = sample_plan()
    first, second = p.pending
    rolled_back = ApplyResult(p, (
        Outcome(first, Status.REVERTED, "updated, then reverted"),
        Outcome(second, Status.FAILED, "POST /x failed with HTTP 500: boom")))
    assert report.render_result_text(rolled_back) == (
        "  reverted company/a: updated, then reverted\n"
        "  failed company/b: POST /x failed with HTTP 500: boom\n"
        "\n"
        "Apply failed (create company/b failed); the run was rolled back: 1 change(s) reverted, "
        "0 not attempted.\n"
    )
    stuck = ApplyResult(p, (
        Outcome(first, Status.NOT_REVERTED, "updated, and reverting failed: timeout"),
        Outcome(second, Status.FAILED, "boom")))
    assert report.result_summary(stuck) == (
        "Apply failed (create company/b failed); the run was NOT rolled back: 1 could NOT be "
        "reverted (company/a): check by hand (`plan` shows what differs).")


def test_a_failed_run_is_called_rolled_back_only_when_read_back_as_it_was():
    p = sample_plan()
    first, second = p.pending
    outcomes = (Outcome(first, Status.REVERTED, "updated, then reverted"),
                Outcome(second, Status.NOT_REVERTED, "failed; read back after the revert, it "
                        "holds what this run wrote, where it should hold nothing"))
    landed = ApplyResult(p, outcomes, error="interrupted by SIGTERM after 1 of 2 writes",
                         leftovers=(Leftover(second.key, "what this run wrote",
                                             "nothing (it did not exist before this run)"),))
    assert not landed.rolled_back
    summary = ("Apply failed (interrupted by SIGTERM after 1 of 2 writes); the run was NOT rolled "
               "back: read back after the revert, 1 object(s) do not hold what they held before "
               "(company/b): check by hand (`plan` shows what differs).")
    assert report.result_summary(landed) == summary
    data = report.result_to_dict(landed)
    assert data["error"] == summary and data["result"]["rolled_back"] is False
    assert data["result"]["uncertain"] == [
        {"kind": "flow", "namespace": "company", "id": "b", "file": None,
         "holds": "what this run wrote", "should_hold": "nothing (it did not exist before this run)"}]
    unread = ApplyResult(p, outcomes[:1] + (Outcome(second, Status.FAILED, "boom"),),
                         leftovers=(Leftover(first.key, "unknown (reading the target back after "
                                             "the revert failed: timeout)", "its previous content"),))
    assert "the run was NOT rolled back: reading the target back after the revert failed: 1 " \
        "object(s) may not hold what they held before (company/a)" in report.result_summary(unread)
    fine = ApplyResult(p, outcomes[:1] + (Outcome(second, Status.FAILED, "boom"),))
    assert fine.rolled_back and "error" in report.result_to_dict(fine)
    assert "error" not in report.result_to_dict(_result([Status.APPLIED, Status.APPLIED]))


def test_json_documents():
    data = report.result_to_dict(_result([Status.APPLIED, Status.FAILED]))
    assert data["format_version"] == report.FORMAT_VERSION == "1"
    assert data["commit"] == SHA
    assert data["summary"] == {"create": 1, "update": 1, "delete": 0, "unchanged": 1,
                               "drifted": 0, "orphaned": 0, "unmanaged": 0, "released": 0}
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


def test_status_and_history_in_markdown_are_tables():
    from kestra_promote.models import Inventory

    status = report.render_status_markdown(sample_plan())
    assert "| status | object | file | why |\n|---|---|---|---|\n" in status
    assert "| out of sync | `company/a` | flows/a.yml | source differs from the target |" in status
    history = report.render_history_markdown(Inventory("team", history=(
        {"time": "2026-11-26T10:00:00+00:00", "commit": "0123456789abcdef", "trigger": "cli",
         "result": "applied", "created": 2, "updated": 0, "deleted": 1},)), "team")
    assert history == (
        "### Promotions of `team`\n\n"
        "| time | commit | trigger | result | created | updated | deleted |\n"
        "|---|---|---|---|---:|---:|---:|\n"
        "| 2026-11-26T10:00:00+00:00 | `0123456789ab` | cli | applied | 2 | 0 | 1 |\n")

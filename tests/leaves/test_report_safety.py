"""Reports show names, sources and messages that anyone who can push to Git (or write to the
target) chooses. Whatever they hold, a reviewer must see every change, nothing may rewrite the
terminal or the task log, and Kestra must never read a report line as a command."""

from __future__ import annotations

import json
import re

import pytest

from kestra_promote import report
from kestra_promote.models import (
    Action,
    ApplyResult,
    Change,
    FileKey,
    FlowKey,
    Inventory,
    Outcome,
    Plan,
    Problem,
    Reason,
    Status,
)
from kestra_promote.textsafe import defuse_markers, safe_text

SHA = "0123456789abcdef0123456789abcdef01234567"
GONE = FlowKey("company", "gone")
# Kestra reads a task's output line matching this as outputs, metrics or logs
KESTRA_MARKER = re.compile(r"^::(\{.*})::$")
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def file_key(path: str) -> FileKey:
    return FileKey("company", path)


def created(key: FileKey, path: str) -> Change:
    return Change(key, Action.CREATE, Reason.NEW_IN_GIT, None, b"x\n", path)


def updated(key: FileKey | FlowKey, path: str, diff: str) -> Change:
    return Change(key, Action.UPDATE, Reason.CHANGED_IN_GIT, "old", "new", path, diff)


def deleted() -> Change:
    return Change(GONE, Action.DELETE, Reason.LEFT_GIT, "id: gone\n", None, "flows/gone.yml")


def without_counts(markdown: str) -> str:
    """The report below its title and counts table."""
    return markdown.split("\n\n", 2)[2]


def cells(row: str) -> list[str]:
    # as GitHub splits a table row: at every pipe not preceded by a backslash
    return re.split(r"(?<!\\)\|", row)[1:-1]


def html_outside_code(markdown: str) -> list[str]:
    """The <details> tags a Markdown reader acts on: those outside fences and code spans.

    Lines end where CommonMark ends them, at a carriage return too."""
    tags, fence = [], ""
    for line in re.split(r"\r\n|\r|\n", markdown):
        if fence:
            if re.fullmatch(f" {{0,3}}{fence}`* *", line):
                fence = ""
            continue
        if opening := re.match(r" {0,3}(```+)[^`]*$", line):
            fence = opening[1]
            continue
        line = re.sub(r"(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)", "", line)
        tags += re.findall(r"</?details>", line)
    return tags


# -- 1. file names in the Markdown table ------------------------------------------------------


def test_markdown_table_keeps_one_row_and_five_cells_per_change_whatever_the_file_names():
    plan = Plan((
        created(file_key("/a\nb.py"), "files/a\nb.py"),
        created(file_key("/x|y.py"), "files/x|y.py"),
        created(file_key("/`q`.py"), "files/`q`.py"),
        created(file_key("/<b>&.py"), "files/<b>&.py"),
        created(file_key("/a\\"), "files/a\\|b"),
        deleted(),
    ), commit=SHA)
    markdown = report.render_plan_markdown(plan)
    assert without_counts(markdown) == (
        "| | object | action | file | note |\n"
        "|---|---|---|---|---|\n"
        "| + | `company:/a\\nb.py` | create | files/a\\\\nb.py |  |\n"
        "| + | `company:/x\\|y.py` | create | files/x\\|y.py |  |\n"
        "| + | ``company:/`q`.py`` | create | files/\\`q\\`.py |  |\n"
        "| + | `company:/<b>&.py` | create | files/&lt;b&gt;&amp;.py |  |\n"
        "| + | `company:/a\\` | create | files/a\\\\\\|b |  |\n"
        "| - | `company/gone` | delete | flows/gone.yml |  |\n"
        "\n"
        "**Plan: 5 to create, 0 to update, 1 to delete.**\n"
    )
    rows = [line for line in markdown.splitlines() if line.startswith("| + ") or
            line.startswith("| - ")]
    assert [len(cells(row)) for row in rows] == [5] * 6


def test_a_code_span_outlasts_the_backticks_of_its_value():
    problems = [Problem("use ``` or ` to quote", "flows/`a`.yml"), Problem("a | b")]
    assert report.render_problems_markdown("blocked <b>here</b>", problems) == (
        "### Promotion blocked\n"
        "\n"
        "- ````flows/`a`.yml: use ``` or ` to quote````\n"
        "- `a | b`\n"
        "\n"
        "**Error: blocked &lt;b&gt;here&lt;/b&gt;**\n"
    )


# -- 2. HTML in names and content ------------------------------------------------------------


def test_html_in_names_or_diffs_cannot_open_or_close_the_collapsible_diffs():
    html_file = file_key("/<details>.html")
    flow = FlowKey("company", "etl")
    plan = Plan((
        updated(html_file, "files/<details>.html",
                "--- target: company:/<details>.html\n+++ git: files/<details>.html\n"
                "@@ -1 +1 @@\n-<p>\n+<details><summary>unclosed\n"),
        updated(flow, "flows/etl.yml",
                "--- target: company/etl\n+++ git: flows/etl.yml\n@@ -1,2 +1,3 @@\n"
                " id: etl\n-x: 1\n+x: |\n+</details>\n"),
        deleted(),
    ), commit=SHA, refusals=("prune refused for company:/<details>.html: it is not ours",))
    markdown = report.render_plan_markdown(plan)
    # each diff sits in its own block, opened and closed around its fence, and nothing else
    assert html_outside_code(markdown) == ["<details>", "</details>"] * 2
    assert without_counts(markdown) == (
        "| | object | action | file | note |\n"
        "|---|---|---|---|---|\n"
        "| ~ | `company:/<details>.html` | update | files/&lt;details&gt;.html |  |\n"
        "| ~ | `company/etl` | update | flows/etl.yml |  |\n"
        "| - | `company/gone` | delete | flows/gone.yml |  |\n"
        "\n"
        "<details><summary>diff of <code>company:/&lt;details&gt;.html</code></summary>\n"
        "\n"
        "```diff\n"
        "--- target: company:/<details>.html\n"
        "+++ git: files/<details>.html\n"
        "@@ -1 +1 @@\n"
        "-<p>\n"
        "+<details><summary>unclosed\n"
        "```\n"
        "\n"
        "</details>\n"
        "\n"
        "<details><summary>diff of <code>company/etl</code></summary>\n"
        "\n"
        "```diff\n"
        "--- target: company/etl\n"
        "+++ git: flows/etl.yml\n"
        "@@ -1,2 +1,3 @@\n"
        " id: etl\n"
        "-x: 1\n"
        "+x: |\n"
        "+</details>\n"
        "```\n"
        "\n"
        "</details>\n"
        "\n"
        "**Refused:**\n"
        "\n"
        "- prune refused for company:/&lt;details&gt;.html: it is not ours\n"
        "\n"
        "**Plan: 0 to create, 2 to update, 1 to delete.**\n"
    )


def test_line_breaks_in_a_name_or_diff_cannot_end_a_collapsible_block_early():
    # a lone carriage return ends a Markdown line, so two of them make a blank line, which ends
    # the <summary> HTML and lets what follows be read as Markdown
    key = file_key("/a\r\r</details>.py")
    plan = Plan((updated(key, "files/a.py", "@@ -1 +1 @@\n-a\r\r```\r\n+b"), deleted()),
                commit=SHA)
    markdown = report.render_plan_markdown(plan)
    assert html_outside_code(markdown) == ["<details>", "</details>"]
    assert (
        "<details><summary>diff of <code>company:/a\\r\\r&lt;/details&gt;.py</code></summary>\n"
        "\n"
        "````diff\n"
        "@@ -1 +1 @@\n"
        "-a\\r\\r```\\r\n"
        "+b\n"  # the diff's last line ended, or the closing fence would not close
        "````\n"
        "\n"
        "</details>\n"
    ) in markdown


# -- 3. control characters -------------------------------------------------------------------


def test_text_plan_shows_control_characters_instead_of_obeying_them():
    key = file_key("/run\x1b[2K.py")
    diff = ("--- target: company:/run.py\n+++ git: files/run.py\n@@ -1,2 +1,2 @@\n"
            " print('ok')\x1b[1A\x1b[2K\n-x = 1\r+x = 2\n+y\x7f\x9b\u2028\u2029\x85\x00\n")
    plan = Plan((updated(key, "files/run\r.py", diff),), commit=SHA,
                warnings=(Problem("line 1\x1b]0;title\x07\nline 2", "flows/a.yml"),))
    assert report.render_plan_text(plan) == (
        "Git commit 0123456789ab: 0 flow(s), 1 namespace file(s).\n"
        "\n"
        "  ~ update    company:/run\\x1b[2K.py  files/run\\r.py\n"
        "      --- target: company:/run.py\n"
        "      +++ git: files/run.py\n"
        "      @@ -1,2 +1,2 @@\n"
        "       print('ok')\\x1b[1A\\x1b[2K\n"
        "      -x = 1\\r+x = 2\n"
        "      +y\\x7f\\x9b\\u2028\\u2029\\x85\\x00\n"
        "\n"
        "Warnings:\n"
        "  flows/a.yml: line 1\\x1b]0;title\\x07\n"
        "    line 2\n"
        "\n"
        "Plan: 0 to create, 1 to update, 0 to delete.\n"
    )


def test_coloured_text_holds_no_escape_sequence_but_its_colours():
    diff = "@@ -1 +1 @@\n-a\x1b[8m\n+b\x1b]8;;http://x\x1b\\\n"
    plan = Plan((updated(file_key("/\x1b[31mf"), "f", diff),), commit=SHA)
    coloured = report.render_plan_text(plan, color=True)
    assert "\033[33m~\033[0m update" in coloured and "\033[31m-a\\x1b[8m\033[0m" in coloured
    assert re.sub(r"\033\[\d+m", "", coloured) == report.render_plan_text(plan)


def test_result_problems_status_and_history_show_control_characters():
    change = created(file_key("/a\x1bb"), "files/a\x1bb")
    failed = ApplyResult(Plan((change,), commit=SHA), (
        Outcome(change, Status.FAILED, "HTTP 500: boom\r\x1b[2K  + created company/fake"),))
    assert report.render_result_text(failed) == (
        "  failed company:/a\\x1bb: HTTP 500: boom\\r\\x1b[2K  + created company/fake\n"
        "\n"
        "Apply failed (create company:/a\\x1bb failed); the run was rolled back: 0 change(s) "
        "reverted, 0 not attempted.\n"
    )
    problems = [Problem("bad\u2028thing", "x\x1b.yml", 3, 4)]
    assert report.render_problems_text("2 problems\rError: none", problems) == (
        "  x\\x1b.yml:3:4: bad\\u2028thing\nError: 2 problems\\rError: none\n")
    history = Inventory("default", history=(
        {"time": "2024-01-01T00:00:00Z\r", "commit": SHA, "trigger": "cli\x1b[8m",
         "result": "ok", "created": 1, "updated": 0, "deleted": 0},))
    assert report.render_history_text(history, "default") == (
        "time                      commit       trigger   result   created updated deleted\n"
        "2024-01-01T00:00:00Z\\r    0123456789ab cli\\x1b[8m ok             1       0       0\n"
    )
    status = Plan((change,), name="de\x1bfault", inventory_before=history)
    assert report.render_status_text(status) == (
        "  out of sync  company:/a\\x1bb  new in Git\n"
        "\n"
        "Source 'de\\x1bfault': 1 out of sync.\n"
        "Last promotion: 0123456789ab at 2024-01-01T00:00:00Z\\r (cli\\x1b[8m).\n"
    )


# every kind of control character, and two Kestra marker lines
HOSTILE = ('x\x1b[2K\ry\u2028z\x85\x7f\x9b\x00::{"outputs":{"a":1}}::\n'
           '::{"outputs":{"b":2}}::')


def hostile_plan() -> Plan:
    key = file_key(HOSTILE)
    changes = (updated(key, HOSTILE, HOSTILE), created(file_key("/" + HOSTILE), HOSTILE),
               deleted())
    history = ({"time": HOSTILE, "commit": HOSTILE, "trigger": HOSTILE, "result": HOSTILE,
                "created": HOSTILE, "updated": HOSTILE, "deleted": HOSTILE},)
    return Plan(changes, commit=HOSTILE, name=HOSTILE, refusals=(HOSTILE,),
                warnings=(Problem(HOSTILE, HOSTILE),),
                inventory_before=Inventory(HOSTILE, history=history))


def hostile_result() -> ApplyResult:
    plan = hostile_plan()
    outcomes = (Outcome(plan.changes[0], Status.APPLIED, HOSTILE),
                Outcome(plan.changes[1], Status.NOT_REVERTED, HOSTILE),
                Outcome(plan.changes[2], Status.FAILED, HOSTILE))
    return ApplyResult(plan, outcomes, inventory=Status.FAILED, inventory_message=HOSTILE)


RENDERINGS = {
    "plan text": lambda: report.render_plan_text(hostile_plan()),
    "coloured plan text": lambda: re.sub(r"\033\[\d+m", "",
                                         report.render_plan_text(hostile_plan(), color=True)),
    "result text": lambda: report.render_result_text(hostile_result()),
    "problems text": lambda: report.render_problems_text(HOSTILE, [Problem(HOSTILE, HOSTILE)]),
    "history text": lambda: report.render_history_text(hostile_plan().inventory_before, HOSTILE),
    "status text": lambda: report.render_status_text(hostile_plan()),
    "plan markdown": lambda: report.render_plan_markdown(hostile_plan()),
    "result markdown": lambda: report.render_plan_markdown(hostile_plan(), result=hostile_result()),
    "status markdown": lambda: report.render_status_markdown(hostile_plan()),
    "problems markdown": lambda: report.render_problems_markdown(HOSTILE, [Problem(HOSTILE)]),
}


@pytest.mark.parametrize("render", RENDERINGS.values(), ids=RENDERINGS.keys())
def test_no_rendering_holds_a_control_character_or_a_kestra_marker_line(render):
    text = render()
    assert not UNSAFE.findall(text)
    assert not [line for line in text.split("\n") if KESTRA_MARKER.match(line.strip())]


# -- 4. Kestra marker lines ------------------------------------------------------------------


def test_history_fields_cannot_add_up_to_a_kestra_marker_line():
    # each field alone is harmless; the row they make is exactly a valid ::{json}:: line
    history = Inventory("default", history=(
        {"time": '::{"outputs":{"x":"', "commit": "c", "trigger": "t", "result": "r",
         "created": 0, "updated": 0, "deleted": '"}}::'},))
    assert report.render_history_text(history, "default") == (
        "time                      commit       trigger   result   created updated deleted\n"
        '\\x3a:{"outputs":{"x":"       c            t         r              0       0   "}}::\n'
    )


def test_safe_text_escapes_controls_and_defuses_markers():
    assert safe_text("a\x1b[2Kb\rc\x7f\x85\u2028\u2029\td\x00\u202e\n") == (
        "a\\x1b[2Kb\\rc\\x7f\\x85\\u2028\\u2029\td\\x00\\u202e\n")
    assert safe_text("x\ny\tz", one_line=True) == "x\\ny\tz"
    assert safe_text('::{"outputs":{}}::\n  ::{"logs":[]}::\n::{x}:: y\n:: {}::') == (
        '\\x3a:{"outputs":{}}::\n  \\x3a:{"logs":[]}::\n::{x}:: y\n:: {}::')
    # a carriage return would let Kestra read the marker after it as a line of its own
    assert safe_text('progress\r::{"outputs":{"ok":true}}::') == (
        'progress\\r::{"outputs":{"ok":true}}::')


@pytest.mark.parametrize("text", [HOSTILE, "plain\ttext\n", '::{"a":1}::', "\\x1b", ""])
def test_safe_text_leaves_safe_text_as_it_is(text):
    once = safe_text(text)
    assert safe_text(once) == once and defuse_markers(once) == once
    assert safe_text(text, one_line=True) == safe_text(safe_text(text, one_line=True))


# -- JSON stays data ---------------------------------------------------------------------------


def test_json_keeps_names_and_diffs_as_they_are_and_its_encoding_splits_no_line():
    data = report.plan_to_dict(hostile_plan())
    assert data["changes"][0]["file"] == HOSTILE and data["changes"][0]["diff"] == HOSTILE
    encoded = json.dumps(data, indent=2)  # as the CLI writes it
    assert not UNSAFE.findall(encoded) and json.loads(encoded) == data


def test_the_history_shows_approvals_and_overrides_escaped():
    history = Inventory("default", history=(
        {"time": "2026-11-26T10:00:00Z", "commit": SHA, "trigger": "manual", "result": "applied",
         "created": 1, "updated": 0, "deleted": 0, "approved_by": "alice\x1b[2J",
         "approved_at": "2026-11-26T10:05:00", "window_override": "denied by window 'freeze'"},))
    text = report.render_history_text(history, "default")
    assert "  approved by alice\\x1b[2J at 2026-11-26T10:05:00\n" in text
    assert "  overrode the sync windows: denied by window 'freeze'\n" in text

"""The pure planner: normalise, pair, diff, and the Plan they make."""

from __future__ import annotations

import pytest
from kestra_promote.models import Action, DesiredFlow, FlowKey, LiveFlow, Plan, Reason
from kestra_promote.plan import diff, fingerprint, normalize, pair, plan

A, B, C = FlowKey("company", "a"), FlowKey("company", "b"), FlowKey("company.team", "c")


def desired(key: FlowKey, text: str) -> DesiredFlow:
    return DesiredFlow(key, text, f"{key.id}.yml")


def live(key: FlowKey, text: str) -> LiveFlow:
    return LiveFlow(key, text)


@pytest.mark.parametrize(
    ("stored", "wanted", "equal"),
    [
        pytest.param("id: a\n", "id: a\n", True, id="identical"),
        pytest.param("id: a\r\nx: 1\r\n", "id: a\nx: 1\n", True, id="crlf-vs-lf"),
        pytest.param("id: a\nx: 1\n", "id: a\nrevision: 7\nx: 1\n", True, id="revision-line-ignored"),
        pytest.param("revision: 3\nid: a\n", "id: a\n", True, id="revision-first-line"),
        pytest.param("id: a\n", "id: a\n# note\n", False, id="comment-is-a-change"),
        pytest.param("id: a\n", "id:  a\n", False, id="whitespace-is-a-change"),
        pytest.param("id: a\n", "id: a", False, id="final-newline-is-a-change"),
        pytest.param("id: a\n  revision: 2\n", "id: a\n", False, id="nested-revision-kept"),
    ],
)
def test_normalize_compares_like_kestra(stored: str, wanted: str, equal: bool):
    assert (normalize(stored) == normalize(wanted)) is equal


def test_pair_yields_every_identity_once_sorted():
    pairs = list(pair({C: desired(C, "c"), A: desired(A, "a")}, {B: live(B, "b"), A: live(A, "a")}))
    assert [(k, want is not None, have is not None) for k, want, have in pairs] == [
        (A, True, True), (B, False, True), (C, True, False)]


def test_diff_is_a_unified_diff_of_normalised_sources():
    text = diff("id: a\r\nx: 1\r\n", "id: a\nx: 2\n", before_name="target", after_name="git")
    assert text == "--- target\n+++ git\n@@ -1,2 +1,2 @@\n id: a\n-x: 1\n+x: 2\n"
    assert diff("a\n", "a\n", before_name="x", after_name="y") == ""
    assert diff("a\n", "a", before_name="x", after_name="y").endswith(
        "+a\n\\ No newline at end of file\n")


@pytest.mark.parametrize(
    ("want", "have", "action", "reason"),
    [
        pytest.param("id: a\n", None, Action.CREATE, Reason.NEW_IN_GIT, id="create"),
        pytest.param("id: a\n", "id: a\n", Action.UNCHANGED, Reason.IN_SYNC, id="unchanged"),
        pytest.param("id: a\nrevision: 2\n", "id: a\n", Action.UNCHANGED, Reason.IN_SYNC,
                     id="unchanged-revision"),
        pytest.param("id: a\nx: 2\n", "id: a\nx: 1\n", Action.UPDATE, Reason.CHANGED_IN_GIT,
                     id="update"),
    ],
)
def test_plan_decides_per_flow(want: str, have: str | None, action: Action, reason: Reason):
    result = plan({A: desired(A, want)}, {A: live(A, have)} if have is not None else {})
    (change,) = result.changes
    assert (change.action, change.reason, change.after, change.before) == (action, reason, want, have)
    assert bool(change.diff) is (action is Action.UPDATE)


def test_plan_never_touches_live_flows_missing_from_git():
    result = plan({A: desired(A, "id: a\n")}, {A: live(A, "id: a\n"), B: live(B, "id: b\n")})
    assert [c.key for c in result.changes] == [A]
    assert result.is_empty


def test_plan_totals_and_order():
    result = plan(
        {C: desired(C, "c2"), A: desired(A, "a"), B: desired(B, "b")},
        {A: live(A, "a"), C: live(C, "c1")},
        commit="abc",
    )
    assert [c.key for c in result.changes] == [A, B, C]
    assert [c.key for c in result.pending] == [B, C]
    assert result.summary == {"create": 1, "update": 1, "delete": 0, "unchanged": 1}
    assert not result.is_empty and result.commit == "abc"
    assert Plan(()).is_empty and Plan(()).summary["create"] == 0


def test_fingerprint_tracks_live_content_only():
    one = fingerprint([live(A, "x\n"), live(B, "y\n")])
    assert one == fingerprint([live(B, "y\r\n"), live(A, "x\n")])
    assert one != fingerprint([live(A, "x\n"), live(B, "z\n")])
    assert one != fingerprint([live(A, "x\n")])

"""The pure planner: normalise, pair, decide, refuse, order, and the Plan they make."""

from __future__ import annotations

import pytest
from kestra_promote.compare import content_hash, normalize, source_hash
from kestra_promote.config import Config
from kestra_promote.flows.desired import Desired
from kestra_promote.models import (
    Action,
    Change,
    DesiredFile,
    DesiredFlow,
    FileKey,
    FlowKey,
    Inventory,
    LiveFile,
    LiveFlow,
    LiveState,
    Managed,
    Plan,
    Reason,
)
from kestra_promote.flows.order import topological
from kestra_promote.engine.plan import decide, diff, fingerprint, live_hashes, pair, plan, refusals

A, B, C = FlowKey("company", "a"), FlowKey("company", "b"), FlowKey("company.team", "c")
F = FileKey("company", "/scripts/etl.py")


def want(key: FlowKey, text: str, deps: set[FlowKey] = frozenset()) -> DesiredFlow:
    """A flow; with ``deps``, a real one calling each of them (the order reads its text)."""
    if deps:
        text = f"id: {key.id}\nnamespace: {key.namespace}\ntasks:\n" + "".join(
            f"  - id: call{n}\n    type: io.kestra.plugin.core.flow.Subflow\n"
            f"    namespace: {dep.namespace}\n    flowId: {dep.id}\n"
            for n, dep in enumerate(sorted(deps, key=str)))
    return DesiredFlow(key, text, f"{key.id}.yml")


def have(key: FlowKey, text: str) -> LiveFlow:
    return LiveFlow(key, text)


def desired(*flows: DesiredFlow, files: tuple[DesiredFile, ...] = ()) -> Desired:
    return Desired({f.key: f for f in flows}, {f.key: f for f in files})


def live(*flows: LiveFlow, files: tuple[LiveFile, ...] = (), inventory: Inventory | None = None,
         others: dict[str, Inventory] | None = None) -> LiveState:
    return LiveState({f.key: f for f in flows}, {f.key: f for f in files}, inventory, others or {})


def managed(*keys_and_texts: tuple[FlowKey, str], name: str = "default") -> Inventory:
    return Inventory(name, {k: Managed(source_hash(t)) for k, t in keys_and_texts})


@pytest.mark.parametrize(
    ("stored", "wanted", "equal"),
    [
        pytest.param("id: a\n", "id: a\n", True, id="identical"),
        pytest.param("id: a\r\nx: 1\r\n", "id: a\nx: 1\n", False, id="crlf-vs-lf"),
        pytest.param("id: a\r\nx: 1\r\n", "revision: 2\r\nid: a\r\nx: 1\r\n", False,
                     id="crlf-revision-line-keeps-its-cr"),
        pytest.param("id: a\nx: 1\n", "id: a\nrevision: 7\nx: 1\n", True, id="revision-line-ignored"),
        pytest.param("revision: 3\nid: a\n", "id: a\n", True, id="revision-first-line"),
        pytest.param("id: a\n", "revision: 3\nid: a\nrevision: 4\n", False,
                     id="only-the-first-revision-line"),
        pytest.param("id: a\n", "revision: x\nid: a\n", False, id="revision-not-a-number"),
        pytest.param("id: a\n", "id: a\n# note\n", False, id="comment-is-a-change"),
        pytest.param("id: a\n", "id:  a\n", False, id="whitespace-is-a-change"),
        pytest.param("id: a\n", "id: a", False, id="final-newline-is-a-change"),
        pytest.param("id: a\n  revision: 2\n", "id: a\n", False, id="nested-revision-kept"),
    ],
)
def test_normalize_compares_like_kestra(stored: str, wanted: str, equal: bool):
    assert (normalize(stored) == normalize(wanted)) is equal
    assert (source_hash(stored) == source_hash(wanted)) is equal


def test_pair_yields_every_identity_once_sorted():
    assert list(pair({C: 1, A: 1}, {B: 1, A: 1}, [C, FlowKey("x", "y")])) == [
        A, B, C, FlowKey("x", "y")]


def test_diff_is_a_unified_diff_of_normalised_sources():
    text = diff("id: a\nx: 1\n", "id: a\nx: 2\n", before_name="target", after_name="git")
    assert text == "--- target\n+++ git\n@@ -1,2 +1,2 @@\n id: a\n-x: 1\n+x: 2\n"
    crlf = diff("id: a\r\nx: 1\r\n", "id: a\nx: 2\n", before_name="target", after_name="git")
    assert crlf == text + "\\ Line endings differ: target has CRLF, git has LF\n"
    assert diff("id: a\r\n", "id: a\n", before_name="target", after_name="git") == (
        "--- target\n+++ git\n\\ Line endings differ: target has CRLF, git has LF\n")
    assert diff("a\n", "a\n", before_name="x", after_name="y") == ""
    assert diff("a\n", "a", before_name="x", after_name="y").endswith(
        "+a\n\\ No newline at end of file\n")


OLD, NEW, EDITED = "id: a\nx: 1\n", "id: a\nx: 2\n", "id: a\nx: 9\n"


@pytest.mark.parametrize(
    ("git", "target", "recorded", "drift", "prune", "action", "reason"),
    [
        pytest.param(NEW, None, None, "overwrite", False, Action.CREATE, Reason.NEW_IN_GIT,
                     id="new"),
        pytest.param(NEW, None, OLD, "overwrite", False, Action.CREATE, Reason.NEW_IN_GIT,
                     id="managed-but-deleted-by-hand"),
        pytest.param(NEW, NEW, None, "overwrite", False, Action.UNCHANGED, Reason.IN_SYNC,
                     id="same-unmanaged-adopted"),
        pytest.param(NEW, OLD, OLD, "overwrite", False, Action.UPDATE, Reason.CHANGED_IN_GIT,
                     id="changed-in-git"),
        pytest.param(NEW, OLD, None, "overwrite", False, Action.UPDATE, Reason.CHANGED_IN_GIT,
                     id="unmanaged-taken-over"),
        pytest.param(NEW, EDITED, OLD, "overwrite", False, Action.UPDATE,
                     Reason.DRIFT_OVERWRITTEN, id="drift-overwrite"),
        pytest.param(NEW, EDITED, OLD, "keep", False, Action.DRIFTED, Reason.DRIFT_KEPT,
                     id="drift-keep"),
        pytest.param(NEW, EDITED, OLD, "fail", False, Action.DRIFTED, Reason.DRIFT_REFUSED,
                     id="drift-fail"),
        pytest.param(OLD, EDITED, OLD, "keep", False, Action.DRIFTED, Reason.DRIFT_KEPT,
                     id="drift-without-git-change"),
        pytest.param(NEW, NEW, OLD, "fail", False, Action.UNCHANGED, Reason.IN_SYNC,
                     id="edited-to-match-git-is-in-sync"),
        pytest.param(None, OLD, OLD, "overwrite", True, Action.DELETE, Reason.LEFT_GIT,
                     id="left-git-prune"),
        pytest.param(None, OLD, OLD, "overwrite", False, Action.ORPHANED, Reason.PRUNE_OFF,
                     id="left-git-no-prune"),
        pytest.param(None, OLD, None, "overwrite", True, Action.UNMANAGED, Reason.NOT_MANAGED,
                     id="never-ours-never-deleted"),
        # prune follows the drift policy: a hotfix made on the target, then removed from Git
        pytest.param(None, EDITED, OLD, "keep", True, Action.DRIFTED, Reason.LEFT_GIT_DRIFT_KEPT,
                     id="left-git-drifted-keep"),
        pytest.param(None, EDITED, OLD, "fail", True, Action.DRIFTED,
                     Reason.LEFT_GIT_DRIFT_REFUSED, id="left-git-drifted-fail"),
        pytest.param(None, EDITED, OLD, "overwrite", True, Action.DELETE, Reason.LEFT_GIT_DRIFTED,
                     id="left-git-drifted-overwrite"),
        pytest.param(None, EDITED, OLD, "fail", False, Action.ORPHANED, Reason.PRUNE_OFF,
                     id="left-git-drifted-no-prune"),
    ],
)
def test_decide(git, target, recorded, drift, prune, action, reason):
    change = decide(
        A, want(A, git) if git else None, have(A, target) if target else None,
        Managed(source_hash(recorded)) if recorded else None,
        drift=drift, prune=prune, in_scope=True)
    assert change is not None and (change.action, change.reason) == (action, reason)
    assert bool(change.diff) is (git is not None and target is not None and
                                 normalize(git) != normalize(target))


def test_decide_reports_nothing_out_of_scope_or_only_in_the_inventory():
    assert decide(A, None, have(A, OLD), None, drift="overwrite", prune=True, in_scope=False) is None
    assert decide(A, None, None, Managed("sha256:x"), drift="overwrite", prune=True,
                  in_scope=True) is None


def test_files_are_planned_by_content_hash():
    new, old = DesiredFile(F, b"print(2)\n", "scripts/etl.py"), LiveFile(F, b"print(1)\n")
    change = decide(F, new, old, Managed(content_hash(b"print(1)\n")), drift="overwrite",
                    prune=False, in_scope=True)
    assert change is not None and change.action is Action.UPDATE
    assert "-print(1)\n+print(2)\n" in change.diff
    binary = decide(F, DesiredFile(F, b"\xff\x00", "x"), LiveFile(F, b"\xfe"), None,
                    drift="overwrite", prune=False, in_scope=True)
    assert binary is not None and binary.diff == "Binary file company:/scripts/etl.py changed (1 -> 2 bytes)\n"


def test_plan_writes_files_first_then_flows_callee_first_then_deletions_in_reverse():
    caller = want(A, "id: a # calls c\n", {C})
    listener = want(B, "id: b # listens to a\n", {A})
    callee = want(C, "id: c\n")
    gone_caller, gone_callee = FlowKey("company", "z-caller"), FlowKey("company", "m-callee")
    caller_source = ("id: z-caller\nnamespace: company\ntasks:\n  - id: t\n"
                     "    type: io.kestra.plugin.core.flow.Subflow\n"
                     "    namespace: company\n    flowId: m-callee\n")
    old_file = FileKey("company", "/old.txt")
    inventory = Inventory("default", {gone_caller: Managed(source_hash(caller_source)),
                                      gone_callee: Managed(source_hash("id: m-callee\n"))},
                          {old_file: Managed(content_hash(b"x"))})
    result = plan(
        desired(listener, caller, callee, files=(DesiredFile(F, b"code", "etl.py"),)),
        live(have(gone_caller, caller_source), have(gone_callee, "id: m-callee\n"),
             files=(LiveFile(old_file, b"x"),), inventory=inventory),
        Config(prune=True))
    assert [(str(c.key), c.action.value) for c in result.pending] == [
        ("company:/scripts/etl.py", "create"),
        ("company.team/c", "create"), ("company/a", "create"), ("company/b", "create"),
        ("company/z-caller", "delete"), ("company/m-callee", "delete"),
        ("company:/old.txt", "delete"),
    ]


def test_a_dependency_cycle_gives_a_stable_order_and_a_warning():
    result = plan(desired(want(A, "a", {B}), want(B, "b", {A})), live(), Config())
    assert [c.key for c in result.pending] == [A, B]
    assert [w.message for w in result.warnings] == [
        "dependency cycle through company/a: written in name order"]


def test_topological_ties_by_name_and_ignores_outside_dependencies():
    order, cycle = topological(["d", "c", "b", "a"], {"a": ["c", "zz"], "b": ["a"]})
    assert order == ["c", "a", "b", "d"] and cycle == []


def test_unmanaged_is_reported_only_in_managed_namespaces():
    stray, elsewhere = FlowKey("company", "stray"), FlowKey("company.other", "x")
    result = plan(desired(want(A, OLD)), live(have(A, OLD), have(stray, "s"), have(elsewhere, "e")),
                  Config())
    assert [(c.key, c.action) for c in result.changes] == [
        (A, Action.UNCHANGED), (stray, Action.UNMANAGED)]
    included = plan(desired(want(A, OLD)), live(have(A, OLD), have(elsewhere, "e")),
                    Config(include=("company", "company.*")))
    assert (elsewhere, Action.UNMANAGED) in [(c.key, c.action) for c in included.changes]


def test_objects_of_another_source_are_never_touched_and_never_taken():
    theirs = FlowKey("company", "theirs")
    other = managed((theirs, "t"), name="billing")
    result = plan(desired(want(A, OLD)), live(have(A, OLD), have(theirs, "t"),
                                              others={"billing": other}), Config(prune=True))
    assert [c.key for c in result.changes] == [A]
    clash = plan(desired(want(theirs, "mine")), live(have(theirs, "t"), others={"billing": other}),
                 Config())
    assert clash.refusals == (
        "company/theirs is managed by the promotion source 'billing' (KV kestra-promote.billing): "
        "an object belongs to one source; remove it from one of them, or, if this source "
        "replaces that one (a new name), take its objects over with `kestra-promote adopt "
        "--from billing`",)


def test_prune_of_a_drifted_object_follows_the_drift_policy():
    inventory = managed((A, OLD))
    refused = plan(desired(), live(have(A, EDITED), inventory=inventory),
                   Config(prune=True, drift="fail", max_deletions=5))
    assert ("company/a was edited on the target since the last promotion (drift: fail): review "
            "the diff, then run with --drift overwrite or keep") in refused.refusals
    kept = plan(desired(want(B, NEW)), live(have(A, EDITED), inventory=inventory),
                Config(prune=True, drift="keep"))
    assert kept.refusals == () and kept.pending == (kept.changes[0],)
    assert kept.managed_after is not None and A in kept.managed_after.flows  # still ours


def test_narrowing_include_releases_and_never_deletes():
    other = FlowKey("other", "d")  # managed until include was narrowed to company
    inventory = managed((A, OLD), (other, OLD))
    result = plan(desired(want(A, OLD)), live(have(A, OLD), have(other, OLD), inventory=inventory),
                  Config(prune=True, include=("company",)))
    released = [c for c in result.changes if c.action is Action.RELEASED]
    assert [(c.key, c.reason) for c in released] == [(other, Reason.LEFT_SCOPE)]
    assert result.pending == () and result.refusals == ()
    assert result.managed_after is not None and set(result.managed_after.flows) == {A}
    # namespace files follow the scope like the flows that use them
    tool = FileKey("other", "/tool.py")
    inventory = Inventory("default", {A: Managed(source_hash(OLD))},
                          {tool: Managed(content_hash(b"x"))})
    result = plan(desired(want(A, OLD)),
                  live(have(A, OLD), files=(LiveFile(tool, b"x"),), inventory=inventory),
                  Config(prune=True, include=("company",)))
    assert [(c.key, c.action) for c in result.changes if c.key == tool] == [
        (tool, Action.RELEASED)]
    assert result.pending == ()


def test_a_deletion_must_be_this_sources_own():
    theirs = FlowKey("company", "theirs")
    other = managed((theirs, "t"), name="billing")
    forged = Change(theirs, Action.DELETE, Reason.LEFT_GIT, "t", None, "theirs.yml")
    unmanaged = Change(B, Action.DELETE, Reason.LEFT_GIT, "b", None, "b.yml")
    found = refusals([forged, unmanaged], source_empty=False, config=Config(prune=True),
                     others={"billing": other}, own=managed((A, OLD)))
    assert found == [
        "company/theirs is managed by the promotion source 'billing' (KV kestra-promote.billing): "
        "an object belongs to one source; remove it from one of them, or, if this source "
        "replaces that one (a new name), take its objects over with `kestra-promote adopt "
        "--from billing`",
        "delete refused for company/theirs: this source ('default') does not manage it",
        "delete refused for company/b: this source ('default') does not manage it",
    ]


@pytest.mark.parametrize(
    ("config", "git_flows", "refusal"),
    [
        pytest.param(Config(prune=True), 0, "prune refused: the source holds no flows or files, so "
                     "all 4 managed object(s) would be deleted; check the checkout and the 'flows' "
                     "setting", id="empty-source"),
        pytest.param(Config(prune=True, max_deletions=2), 1, "prune refused: 3 deletions exceed the "
                     "limit of 2 (max_deletions); pass --allow-deletions 3 to allow them",
                     id="too-many"),
        pytest.param(Config(prune=True, protected_namespaces=("company.team",)), 1,
                     "prune refused for company.team/c: namespace 'company.team' is protected "
                     "(protected_namespaces); delete it by hand if intended", id="protected"),
    ],
)
def test_prune_safeguards(config: Config, git_flows: int, refusal: str):
    doomed = [(A, "a"), (B, "b"), (C, "c")]
    keep = FlowKey("company", "keep")
    flows = [want(keep, "k")][:git_flows]
    result = plan(desired(*flows), live(*(have(k, t) for k, t in doomed), have(keep, "k"),
                                        inventory=managed(*doomed, (keep, "k"))), config)
    assert refusal in result.refusals
    assert Config(prune=True, max_deletions=2, allow_deletions=3).max_deletions == 2
    allowed = plan(desired(want(keep, "k")), live(*(have(k, t) for k, t in doomed), have(keep, "k"),
                                                  inventory=managed(*doomed, (keep, "k"))),
                   Config(prune=True, max_deletions=2, allow_deletions=3))
    assert allowed.refusals == () and allowed.summary["delete"] == 3


def test_the_promotion_flows_are_never_pruned():
    promote = FlowKey("ops", "promote")
    text = "id: promote\nnamespace: ops\nlabels:\n  kestra-promote.role: promotion\ntasks: []\n"
    result = plan(desired(want(A, OLD)), live(have(A, OLD), have(promote, text),
                                              inventory=managed((A, OLD), (promote, text))),
                  Config(prune=True))
    assert result.refusals == ("prune refused for ops/promote: it runs the promotion itself",)


def test_drift_fail_is_a_refusal_and_overwrite_a_warning():
    args = (desired(want(A, NEW)), live(have(A, EDITED), inventory=managed((A, OLD))))
    assert plan(*args, Config(drift="fail")).refusals == (
        "company/a was edited on the target since the last promotion (drift: fail): review the "
        "diff, then run with --drift overwrite or keep",)
    overwrite = plan(*args, Config())
    assert [w.message for w in overwrite.warnings] == [
        "company/a: edited on the target since the last promotion; Git wins (drift: overwrite)"]


def test_inventory_is_written_when_anything_changes_and_not_on_a_no_op():
    first = plan(desired(want(A, OLD)), live(), Config(name="flows"), commit="c1")
    assert first.managed_after is not None
    assert first.managed_after.flows == {A: Managed(source_hash(OLD), "a.yml")}
    adopted = plan(desired(want(A, OLD)), live(have(A, OLD)), Config(name="flows"))
    assert adopted.pending == () and adopted.managed_after is not None and not adopted.is_empty
    recorded = Inventory("flows", {A: Managed(source_hash(OLD), "a.yml")})
    noop = plan(desired(want(A, OLD)), live(have(A, OLD), inventory=recorded), Config(name="flows"),
                commit="c2")
    assert noop.is_empty and noop.managed_after is None
    kept = plan(desired(want(A, NEW)), live(have(A, EDITED), inventory=recorded),
                Config(name="flows", drift="keep"))
    assert kept.is_empty  # a kept drift stays recorded as it was: still drifted next time
    orphan = plan(desired(), live(have(A, OLD), inventory=recorded), Config(name="flows"))
    assert orphan.is_empty and orphan.summary["orphaned"] == 1


def test_plan_totals():
    result = plan(desired(want(C, "c2"), want(A, "a"), want(B, "b")),
                  live(have(A, "a"), have(C, "c1")), Config(), commit="abc")
    assert result.summary == {"create": 1, "update": 1, "delete": 0, "unchanged": 1,
                              "drifted": 0, "orphaned": 0, "unmanaged": 0, "released": 0}
    assert not result.is_empty and result.commit == "abc"
    assert Plan(()).is_empty


def test_fingerprint_tracks_live_content_and_inventories():
    one = live_hashes(live(have(A, "x\n"), have(B, "y\n")))
    assert one == live_hashes(live(have(B, "y\n"), have(A, "x\n")))
    # Kestra would take an LF source for a change of a CRLF one: so does a saved plan
    assert one != live_hashes(live(have(B, "y\r\n"), have(A, "x\n")))
    assert fingerprint(one) != fingerprint(live_hashes(live(have(A, "x\n"), have(B, "z\n"))))
    assert fingerprint(one) != fingerprint(live_hashes(live(have(A, "x\n"))))
    with_inventory = live_hashes(live(have(A, "x\n"), have(B, "y\n"), inventory=managed((A, "x"))))
    assert fingerprint(one) != fingerprint(with_inventory)


def test_a_newline_in_a_file_name_adds_no_line_to_its_diff():
    key = FileKey("company", "/x\n+evil")
    change = decide(key, DesiredFile(key, b"b\n", "files/x\n+evil"), LiveFile(key, b"a\n"), None,
                    drift="overwrite", prune=False, in_scope=True)
    assert change is not None
    assert change.diff.splitlines() == [
        "--- target: company:/x\\n+evil", "+++ git: files/x\\n+evil", "@@ -1 +1 @@", "-a", "+b"]

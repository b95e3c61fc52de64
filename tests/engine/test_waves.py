"""Which writes go out together: independent flow writes share a wave, dependencies never do."""

from kestra_promote.engine.waves import waves
from kestra_promote.models import Action, Change, FileKey, FlowKey, Reason


def _flow(flow_id: str, calls: str | None = None, action: Action = Action.CREATE) -> Change:
    source = f"id: {flow_id}\nnamespace: company.team\ntasks:\n  - id: t\n"
    if calls:
        source += (f"    type: io.kestra.plugin.core.flow.Subflow\n"
                   f"    namespace: company.team\n    flowId: {calls}\n")
    else:
        source += "    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    return Change(FlowKey("company.team", flow_id), action, Reason.NEW_IN_GIT, None, source)


def _file(path: str) -> Change:
    return Change(FileKey("company.team", path), Action.CREATE, Reason.NEW_IN_GIT, None, b"x")


def test_independent_flows_go_out_in_one_wave():
    pending = [_flow("a"), _flow("b"), _flow("c", action=Action.UPDATE)]
    assert waves(pending, [[0], [1], [2]]) == [[[0], [1], [2]]]


def test_a_flow_waits_for_the_flows_it_calls():
    # child first (the plan's order), its parent in the next wave, an unrelated flow at once
    pending = [_flow("child"), _flow("other"), _flow("parent", calls="child"),
               _flow("grandparent", calls="parent")]
    assert waves(pending, [[0], [1], [2], [3]]) == [[[0], [1]], [[2]], [[3]]]


def test_a_cycle_keeps_the_plans_order():
    pending = [_flow("a", calls="b"), _flow("b", calls="a")]
    assert waves(pending, [[0], [1]]) == [[[0]], [[1]]]


def test_bulk_requests_files_and_deletions_stay_alone_and_in_place():
    deletion = Change(FlowKey("company.team", "old"), Action.DELETE, Reason.NEW_IN_GIT, "id: old", None)
    pending = [_file("/a.sql"), _flow("a"), _flow("b"), _flow("c"), _flow("d"), deletion]
    steps = [[0], [1, 2], [3], [4], [5]]
    assert waves(pending, steps) == [[[0]], [[1, 2]], [[3], [4]], [[5]]]


def test_the_dependencies_the_plan_found_are_used_and_a_saved_plans_worked_out_again(monkeypatch):
    from kestra_promote.engine import plan as planning
    from kestra_promote.engine import waves as module
    from kestra_promote.flows.desired import Desired
    from kestra_promote.models import DesiredFlow

    changes = [_flow("parent", calls="child"), _flow("child"), _flow("other")]
    desired = Desired(flows={c.key: DesiredFlow(c.key, c.after, f"flows/{c.key.id}.yml")
                             for c in changes}, files={})
    ordered, _ = planning.order_changes(changes, desired)
    assert [c.key.id for c in ordered] == ["child", "other", "parent"]
    assert ordered[2].needs == {FlowKey("company.team", "child")} and ordered[0].needs == set()

    def parsed_again(flow):
        raise AssertionError(f"{flow.key} parsed again")

    monkeypatch.setattr(module, "dependencies_of", parsed_again)
    assert waves(ordered, [[0], [1], [2]]) == [[[0], [1]], [[2]]]
    monkeypatch.undo()  # a saved plan carries no dependencies: they are worked out again
    saved = [Change(c.key, c.action, c.reason, c.before, c.after) for c in ordered]
    assert waves(saved, [[0], [1], [2]]) == [[[0], [1]], [[2]]]

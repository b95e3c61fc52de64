"""Promotion behaviours end to end, over real HTTP and real Git repositories.

Drift, unmanaged objects, prune and its safeguards, ownership, ordering, namespace files, saved
plans, --ref rollbacks, status, history and job summaries.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli

pytestmark = pytest.mark.fake_only

CALLER = """id: caller
namespace: {ns}
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: {ns}
    flowId: callee
"""
LISTENER = """id: listener
namespace: {ns}
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: heard
triggers:
  - id: after-caller
    type: io.kestra.plugin.core.trigger.Flow
    dependsOn:
      - namespace: {ns}
        flowId: caller
"""


def _writes(target: Target) -> int:
    assert target.fake is not None
    return len(target.fake.writes())


def _apply(repo: GitRepo, target: Target, *args: str) -> str:
    result = run_cli("apply", str(repo.path), *args, env=target.env)
    assert result.code == 0, result.out + result.err
    return result.out


def _three_flows(repo: GitRepo, settings: str = "name: team\n") -> None:
    repo.write("kestra-promote.yml", settings)
    for name in ("a", "b", "c"):
        repo.write(f"flows/{name}.yml", flow_yaml("company.team", name))
    repo.commit("three flows")


def test_drift_is_shown_and_handled_by_policy(repo: GitRepo, target: Target):
    _three_flows(repo)
    _apply(repo, target)
    with target.client() as client:  # someone edits production by hand
        client.update_flow("company.team", "a", flow_yaml("company.team", "a", "hotfix"))

    plan = run_cli("plan", str(repo.path), env=target.env)
    assert "~ update    company.team/a  flows/a.yml  (edited on the target since the last " \
           "promotion; Git wins (drift: overwrite))" in plan.out
    assert "-    message: hotfix\n" in plan.out.replace("      -", "-")
    assert "Warnings:\n  flows/a.yml: company.team/a: edited on the target" in plan.out

    writes = _writes(target)
    refused = run_cli("apply", str(repo.path), "--drift", "fail", env=target.env)
    assert refused.code == 1
    assert ("company.team/a was edited on the target since the last promotion (drift: fail): "
            "review the diff, then run with --drift overwrite or keep") in refused.err
    kept = run_cli("apply", str(repo.path), "--drift", "keep", env=target.env)
    assert kept.code == 0 and "! drifted   company.team/a" in kept.out
    assert _writes(target) == writes
    assert target.sources("company")[("company.team", "a")].endswith("message: hotfix\n")

    _apply(repo, target)  # overwrite, the default
    assert target.sources("company")[("company.team", "a")] == flow_yaml("company.team", "a")
    assert "No changes." in run_cli("plan", str(repo.path), env=target.env).out


def test_unmanaged_flows_are_reported_and_never_touched(repo: GitRepo, target: Target):
    assert target.fake is not None
    target.fake.seed_flow(flow_yaml("company.team", "made-in-the-ui"))
    _three_flows(repo)
    plan = run_cli("plan", str(repo.path), "--prune", env=target.env)
    assert "? unmanaged company.team/made-in-the-ui  (on the target only; not managed by this " \
           "source)" in plan.out
    _apply(repo, target, "--prune")
    assert ("company.team", "made-in-the-ui") in target.sources("company")


def test_prune_deletes_only_when_asked(repo: GitRepo, target: Target):
    _three_flows(repo)
    _apply(repo, target)
    (repo.path / "flows/c.yml").unlink()
    repo.commit("c leaves Git")

    without = run_cli("apply", str(repo.path), env=target.env)
    assert ("? orphaned  company.team/c  flows/c.yml  (no longer in Git; would delete (pass "
            "--prune))") in without.out
    assert ("company.team", "c") in target.sources("company")

    pruned = _apply(repo, target, "--prune")
    assert "- delete    company.team/c" in pruned and "  deleted company.team/c" in pruned
    assert ("company.team", "c") not in target.sources("company")
    with target.client() as client:
        inventory = client.kv_get("system", "kestra-promote.team")
    assert sorted(inventory["flows"]) == ["company.team/a", "company.team/b"]


def test_prune_limits(repo: GitRepo, target: Target):
    _three_flows(repo, "name: team\nmax_deletions: 1\n")
    _apply(repo, target)
    for name in ("b", "c"):
        (repo.path / f"flows/{name}.yml").unlink()
    repo.commit("two leave")
    writes = _writes(target)
    refused = run_cli("apply", str(repo.path), "--prune", env=target.env)
    assert refused.code == 1
    assert ("prune refused: 2 deletions exceed the limit of 1 (max_deletions); pass "
            "--allow-deletions 2 to allow them") in refused.err
    assert _writes(target) == writes
    _apply(repo, target, "--prune", "--allow-deletions", "2")
    assert list(target.sources("company")) == [("company.team", "a")]


def test_ordering_callee_before_caller_before_listener(repo: GitRepo, target: Target):
    assert target.fake is not None
    repo.write("z-callee.yml", flow_yaml("company", "callee"))
    repo.write("a-caller.yml", CALLER.format(ns="company"))
    repo.write("listener.yml", LISTENER.format(ns="company"))
    repo.commit()
    _apply(repo, target)
    created = [r.body.decode().split("\n")[0]
               for r in target.fake.writes() if r.path == "/api/v1/main/flows"]
    assert created == ["id: callee", "id: caller", "id: listener"]


def test_a_2_0_depends_on_is_renamed_with_its_comments_and_deployed_after_its_upstream(
        repo: GitRepo, target: Target):
    assert target.fake is not None
    listener = ("id: a-report\nnamespace: dev.company.team\n"
                "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
                "triggers:\n  - id: after_etl\n    type: io.kestra.plugin.core.trigger.Flow\n"
                "    dependsOn:\n"
                "      # the upstream flow, renamed with this one\n"
                "      - namespace: dev.company.team  # same team\n"
                "        flowId: z-etl\n        states: [SUCCESS]\n")
    repo.write("flows/a-report.yml", listener)
    repo.write("flows/z-etl.yml", flow_yaml("dev.company.team", "z-etl"))
    repo.commit()
    _apply(repo, target, "--rename", "dev=")
    created = [r.body.decode() for r in target.fake.writes() if r.path == "/api/v1/main/flows"]
    assert [c.split("\n")[0] for c in created] == ["id: z-etl", "id: a-report"]
    assert created[1] == listener.replace("dev.company.team", "company.team")
    assert "      - namespace: company.team  # same team\n" in created[1]


def test_namespace_files_are_promoted_before_flows_and_pruned(repo: GitRepo, target: Target):
    assert target.fake is not None
    repo.write("kestra-promote.yml", "name: team\nnamespace_files:\n"
                                     "  - {source: scripts, namespace: company.team, target: /lib}\n")
    repo.write("scripts/etl.py", "print('v1')\n")
    repo.write("scripts/old.py", "print('old')\n")
    repo.write("flow.yml", flow_yaml("company.team", "etl"))
    repo.commit()
    out = _apply(repo, target)
    assert "+ create    company.team:/lib/etl.py  scripts/etl.py" in out
    kinds = [r.path for r in target.fake.writes()]
    assert kinds[:2] == ["/api/v1/main/namespaces/company.team/files"] * 2
    assert kinds[2] == "/api/v1/main/flows"
    assert target.fake.files[("main", "company.team")] == {
        "/lib/etl.py": b"print('v1')\n", "/lib/old.py": b"print('old')\n"}

    repo.write("scripts/etl.py", "print('v2')\n")
    (repo.path / "scripts/old.py").unlink()
    repo.commit()
    plan = run_cli("plan", str(repo.path), "--prune", env=target.env)
    assert "-print('v1')\n" in plan.out.replace("      -", "-")
    _apply(repo, target, "--prune")
    assert target.fake.files[("main", "company.team")] == {"/lib/etl.py": b"print('v2')\n"}


def test_a_flow_of_another_source_is_refused_naming_both(repo: GitRepo, target: Target,
                                                        tmp_path: Path):
    other = GitRepo(tmp_path / "other")
    other.write("kestra-promote.yml", "name: billing\n")
    other.write("a.yml", flow_yaml("company.team", "a"))
    other.commit()
    _apply(other, target)
    _three_flows(repo)
    writes = _writes(target)
    result = run_cli("apply", str(repo.path), env=target.env)
    assert result.code == 1
    assert ("company.team/a is managed by the promotion source 'billing' (KV kestra-promote.billing)"
            ": an object belongs to one source; remove it from one of them, or, if this source "
            "replaces that one (a new name), take its objects over with `kestra-promote adopt "
            "--from billing`") in result.err
    assert _writes(target) == writes


def test_saved_plans_apply_exactly_and_refuse_when_stale(repo: GitRepo, target: Target,
                                                         tmp_path: Path):
    _three_flows(repo)
    saved = tmp_path / "plan.json"
    plan = run_cli("plan", str(repo.path), "--out", str(saved), env=target.env)
    assert plan.code == 0 and f"Saved the plan to {saved}" in plan.err
    assert target.password is not None and target.password not in saved.read_text()
    repo.write("flows/d.yml", flow_yaml("company.team", "d"))  # not in the saved plan
    repo.commit()
    applied = run_cli("apply", str(saved), env=target.env)
    assert applied.code == 0, applied.err
    assert sorted(target.sources("company")) == [("company.team", n) for n in "abc"]

    run_cli("plan", str(repo.path), "--out", str(saved), env=target.env)
    with target.client() as client:
        client.update_flow("company.team", "b", flow_yaml("company.team", "b", "changed meanwhile"))
    writes = _writes(target)
    stale = run_cli("apply", str(saved), env=target.env)
    assert stale.code == 1
    assert ("Error: the target changed since the plan was made (flow company.team/b); nothing was "
            "written: run plan again") in stale.err
    assert _writes(target) == writes

    elsewhere = run_cli("apply", str(saved), env={**target.env, "KESTRA_URL": "http://other:8080"})
    assert elsewhere.code == 1 and "was made for http://127.0.0.1:" in elsewhere.err


def _reseal(path: Path, data: dict) -> None:
    """Write a plan edited by hand with a digest recomputed as an attacker could."""
    from kestra_promote.engine import planfile

    data["digest"] = planfile._digest(data)
    path.write_text(json.dumps(data))


def test_a_saved_plan_edited_by_hand_is_refused(repo: GitRepo, target: Target, tmp_path: Path):
    assert target.fake is not None
    other = GitRepo(tmp_path / "billing")  # another team's flow, and the promotion flow
    other.write("kestra-promote.yml", "name: billing\n")
    other.write("a.yml", flow_yaml("company.billing", "invoices"))
    other.commit()
    _apply(other, target)
    target.fake.seed_flow(flow_yaml("system", "promote", extra="labels:\n  kestra-promote.role: promotion\n"))
    _three_flows(repo)
    saved = tmp_path / "plan.json"
    assert run_cli("plan", str(repo.path), "--out", str(saved), env=target.env).code == 0
    assert saved.stat().st_mode & 0o777 == 0o600  # it holds flow sources
    data = json.loads(saved.read_text())

    naive = json.loads(saved.read_text())
    naive["changes"][0]["after"]["text"] += "# sneaked in\n"
    saved.write_text(json.dumps(naive))
    writes = _writes(target)
    edited = run_cli("apply", str(saved), env=target.env)
    assert edited.code == 1
    assert "does not match what `plan` wrote (edited since?): nothing was written" in edited.err

    for victim in (("company.billing", "invoices"), ("system", "promote")):
        forged = json.loads(json.dumps(data))
        before = target.sources(victim[0])[victim]
        forged["changes"].append({"kind": "flow", "namespace": victim[0], "id": victim[1],
                                  "action": "delete", "reason": "LEFT_GIT", "path": "x.yml",
                                  "before": {"text": before}, "after": None, "diff": ""})
        forged["policy"]["max_deletions"] = 100
        _reseal(saved, forged)
        refused = run_cli("apply", str(saved), env=target.env)
        assert refused.code == 1, refused.out
        # outside what the plan read (system), or read and not this source's (billing)
        assert (f"delete refused for {victim[0]}/{victim[1]}: this source ('team') does not "
                "manage it" in refused.err) or (
            f"{victim[0]}/{victim[1]}: the target does not hold what the plan says this change "
            "replaces" in refused.err), refused.err
        assert victim in target.sources(victim[0])
    assert _writes(target) == writes

    # what is only printed is checked too: a forged warning or refusal is refused, not rendered
    for field, value in (("warnings", [{"message": "m", "path": 5, "line": None,
                                        "column": None, "namespace": None, "id": None}]),
                         ("warnings", ["just text"]), ("warnings", None),
                         ("refusals", [["nested"]])):
        forged = json.loads(json.dumps(data))
        forged[field] = value
        _reseal(saved, forged)
        for output in ("text", "markdown", "json"):
            refused = run_cli("apply", str(saved), "--format", output, env=target.env)
            assert refused.code == 1 and f"cannot read saved plan {saved}" in refused.err
    assert _writes(target) == writes


def test_rollback_with_ref_and_the_history(repo: GitRepo, target: Target):
    _three_flows(repo)
    first = repo.git("rev-parse", "HEAD")
    _apply(repo, target, "--trigger", "manual")
    repo.write("flows/a.yml", flow_yaml("company.team", "a", "v2"))
    (repo.path / "flows/c.yml").unlink()
    second = repo.commit("v2")
    _apply(repo, target, "--prune")
    assert ("company.team", "c") not in target.sources("company")

    back = run_cli("apply", str(repo.path), "--ref", first[:8], "--prune", env=target.env)
    assert back.code == 0, back.err
    assert f"The target matches Git at {first[:12]}." in back.out
    live = target.sources("company")
    assert live[("company.team", "a")] == flow_yaml("company.team", "a")
    assert ("company.team", "c") in live

    history = run_cli("history", str(repo.path), env=target.env)
    lines = history.out.splitlines()
    assert lines[0].split() == ["time", "commit", "trigger", "result", "created", "updated",
                                "deleted"]
    assert [line.split()[1:4] for line in lines[1:]] == [
        [first[:12], "cli", "applied"], [second[:12], "cli", "applied"],
        [first[:12], "manual", "applied"]]
    data = json.loads(run_cli("history", str(repo.path), "--format", "json", env=target.env).out)
    assert data["runs"][0]["ref"] == first[:8]

    bad = run_cli("plan", str(repo.path), "--ref", "no-such-ref", env=target.env)
    assert bad.code == 1 and "no-such-ref" in bad.err
    for empty in ("--ref=", "--ref=--"):  # a mistake, never "the working tree"
        blank = run_cli("plan", str(repo.path), empty, env=target.env)
        assert blank.code == 1 and "--ref needs a commit, branch or tag name" in blank.err


def test_status_per_object_and_last_promotion(repo: GitRepo, target: Target):
    assert target.fake is not None
    _three_flows(repo)
    assert run_cli("status", str(repo.path), "--detailed-exitcode", env=target.env).code == 2
    sha = repo.git("rev-parse", "HEAD")
    _apply(repo, target)
    clean = run_cli("status", str(repo.path), "--detailed-exitcode", env=target.env)
    assert clean.code == 0
    assert f"Last promotion: {sha[:12]} at " in clean.out
    with target.client() as client:
        client.update_flow("company.team", "a", flow_yaml("company.team", "a", "hotfix"))
    target.fake.seed_flow(flow_yaml("company.team", "stray"))
    repo.write("flows/b.yml", flow_yaml("company.team", "b", "new in git"))
    repo.commit()
    status = run_cli("status", str(repo.path), "--detailed-exitcode", env=target.env)
    assert status.code == 2
    assert "  drifted      company.team/a" in status.out
    assert "  out of sync  company.team/b" in status.out
    assert "  in sync      company.team/c" in status.out
    assert "  unmanaged    company.team/stray" in status.out
    assert "Source 'team': 1 drifted, 1 in sync, 1 out of sync, 1 unmanaged." in status.out


def test_markdown_goes_to_the_github_job_summary(repo: GitRepo, target: Target, tmp_path: Path):
    _three_flows(repo)
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    env = {**target.env, "GITHUB_STEP_SUMMARY": str(summary)}
    assert run_cli("plan", str(repo.path), env=env).code == 0
    assert run_cli("apply", str(repo.path), env=env).code == 0
    text = summary.read_text()
    assert text.startswith("# earlier step\n### Promotion plan for ")
    assert "### Promotion result for " in text and "| + | `company.team/a` | create |" in text

    # a summary that cannot be written never hides the result of what was written
    repo.write("flows/a.yml", flow_yaml("company.team", "a", "v2"))
    repo.commit()
    gone = {**target.env, "GITHUB_STEP_SUMMARY": str(tmp_path / "no-such-folder" / "s.md")}
    applied = run_cli("apply", str(repo.path), env=gone)
    assert applied.code == 0 and "Apply complete: 0 created, 1 updated" in applied.out
    assert "Warning: cannot write the job summary GITHUB_STEP_SUMMARY" in applied.err


def test_renames_and_labels_from_the_settings(repo: GitRepo, target: Target):
    repo.write("kestra-promote.yml", 'namespaces:\n  rename: {dev.company: company}\n'
                                     'labels: {system.readOnly: "true"}\n')
    repo.write("callee.yml", flow_yaml("dev.company", "callee"))
    repo.write("caller.yml", CALLER.format(ns="dev.company"))
    repo.commit()
    _apply(repo, target)
    live = target.sources("company")
    assert live[("company", "caller")] == (
        'id: caller\nnamespace: company\nlabels:\n  system.readOnly: "true"\ntasks:\n'
        '  - id: call\n    type: io.kestra.plugin.core.flow.Subflow\n    namespace: company\n'
        '    flowId: callee\n')
    assert "No changes." in run_cli("plan", str(repo.path), env=target.env).out


# -- bad input: exit 1, a message naming the file or flow and the problem, zero writes ----------


def _managed_then(repo: GitRepo, target: Target, settings: str, change) -> None:
    repo.write("kestra-promote.yml", settings)
    for name in ("a", "b", "c"):
        repo.write(f"flows/{name}.yml", flow_yaml("company.team", name))
    repo.commit()
    _apply(repo, target)
    change(repo, target)
    repo.commit("bad change")


def _remove(*names: str):
    def change(repo: GitRepo, target: Target) -> None:
        for name in names:
            (repo.path / name).unlink()
    return change


def _hand_edit(repo: GitRepo, target: Target) -> None:
    with target.client() as client:
        client.update_flow("company.team", "a", flow_yaml("company.team", "a", "hotfix"))
    repo.write("flows/a.yml", flow_yaml("company.team", "a", "v2"))


def _other_source(repo: GitRepo, target: Target) -> None:
    other = GitRepo(repo.path.parent / "other")
    other.write("kestra-promote.yml", "name: billing\n")
    other.write("x.yml", flow_yaml("company.team", "x"))
    other.commit()
    _apply(other, target)
    repo.write("flows/x.yml", flow_yaml("company.team", "x", "mine"))


def _escaping_symlink(repo: GitRepo) -> None:
    outside = repo.path.parent / "outside.yml"
    outside.write_text(flow_yaml("company", "outside"))
    (repo.path / "link.yml").symlink_to(outside)


GOOD = flow_yaml("company.team", "good")
BAD_INPUTS = [
    ("broken-yaml", {"f.yml": "id: a\nnamespace: b\ntasks: [\n"}, [], "f.yml:4:1: YAML syntax error"),
    ("duplicate-identity", {"a.yml": GOOD, "b.yml": GOOD}, [],
     "a.yml: company.team/good: the same flow is defined in 2 files (a.yml, b.yml)"),
    ("invalid-id", {"f.yml": flow_yaml("company", "bad id")}, [], "f.yml:1:5: company/bad id: flow id"),
    ("invalid-namespace", {"f.yml": flow_yaml("Company", "a")}, [], "namespace 'Company' is invalid"),
    ("missing-tasks", {"f.yml": "id: a\nnamespace: company\n"}, [], "f.yml: company/a: missing required key 'tasks'"),
    ("empty-tasks", {"f.yml": "id: a\nnamespace: company\ntasks: []\n"}, [], "'tasks' must be a non-empty list"),
    ("not-a-mapping", {"f.yml": "- a\n- b\n"}, [], "f.yml:1:1: does not look like a Kestra flow (a list"),
    ("two-documents", {"f.yml": GOOD + "---\n" + GOOD}, [], "f.yml: holds 2 YAML documents"),
    ("duplicate-key", {"f.yml": GOOD + "tasks: []\n"}, [], "duplicate key 'tasks'"),
    ("not-utf8", {"f.yml": b"id: caf\xe9\n"}, [], "f.yml: not UTF-8 text"),
    ("rename-collision", {"kestra-promote.yml": "namespaces: {rename: {dev: prod}}\n",
                          "a.yml": flow_yaml("dev.x", "a"), "b.yml": flow_yaml("prod.x", "a")}, [],
     "renaming makes 2 flows the same flow prod.x/a"),
    ("rename-to-invalid", {"kestra-promote.yml": "namespaces: {rename: {dev: Prod}}\n",
                           "a.yml": flow_yaml("dev.x", "a")}, [], "namespaces.rename to: namespace 'Prod'"),
    ("rename-to-nothing", {"kestra-promote.yml": "namespaces: {rename: {dev: ''}}\n",
                           "a.yml": flow_yaml("dev", "a")}, [], "after renaming 'dev': namespace is empty"),
    ("unknown-config-key", {"kestra-promote.yml": "prnue: true\n", "a.yml": GOOD}, [],
     "kestra-promote.yml:1:1: unknown key 'prnue' in the settings (did you mean 'prune'?)"),
    ("config-wrong-type", {"kestra-promote.yml": "prune: maybe\n", "a.yml": GOOD}, [],
     "kestra-promote.yml:1:8: 'prune' must be true or false"),
    ("config-bad-drift", {"kestra-promote.yml": "drift: sometimes\n", "a.yml": GOOD}, [],
     "'drift' must be one of overwrite, fail, keep"),
    ("config-labels-list", {"kestra-promote.yml": "labels: [a]\n", "a.yml": GOOD}, [],
     "'labels' must be a mapping of text to text"),
    ("flows-folder-missing", {"kestra-promote.yml": "flows: [nope]\n", "a.yml": GOOD}, [],
     "flows folder 'nope' does not exist"),
    ("flows-folder-outside", {"kestra-promote.yml": "flows: [../..]\n", "a.yml": GOOD}, [],
     "flows folder '../..' is outside the source folder"),
    ("files-folder-missing", {"kestra-promote.yml": "namespace_files: [{source: s, namespace: n}]\n",
                              "a.yml": GOOD}, [], "namespace_files folder 's' does not exist"),
    ("files-under-flows", {"kestra-promote.yml":
                           "namespace_files: [{source: s, namespace: n, target: /_flows}]\n",
                           "s/x.py": "x", "a.yml": GOOD}, [],
     "s/x.py: namespace files may not be written under /_flows/"),
    ("target-rejects-type", {"f.yml": GOOD.replace("log.Log", "log.Nope")}, [],
     "f.yml: company.team/good: tasks[0].type: Invalid type: io.kestra.plugin.core.log.Nope"),
    ("target-rejects-property", {"f.yml": GOOD + "    colour: red\n"}, [],
     'f.yml: company.team/good: tasks[0].colour: Unrecognized field "colour"'),
    ("target-rejects-label", {"kestra-promote.yml": "labels: {system.owner: me}\n", "f.yml": GOOD}, [],
     "System labels can only be set by Kestra itself"),
    ("bad-name-flag", {"f.yml": GOOD}, ["--name", "my team"], "name 'my team' must use letters"),
    ("bad-rename-flag", {"f.yml": GOOD}, ["--rename", "dev"], None),
]


@pytest.mark.parametrize(("files", "args", "message"), [
    pytest.param(f, a, m, id=name) for name, f, a, m in BAD_INPUTS])
def test_bad_input_writes_nothing(repo: GitRepo, target: Target, files, args, message,
                                  capsys: pytest.CaptureFixture[str]):
    for name, content in files.items():
        path = repo.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    repo.commit()
    try:
        result = run_cli("apply", str(repo.path), *args, env=target.env)
        code, err = result.code, result.err
    except SystemExit as exc:  # argument errors stop in the parser
        code, err = exc.code, capsys.readouterr().err
    assert code == 1
    assert (message or "expected OLD=NEW") in err, err
    assert _writes(target) == 0


STATEFUL = [
    ("empty-source-with-prune", "name: t\nprune: true\n",
     _remove("flows/a.yml", "flows/b.yml", "flows/c.yml"),
     "prune refused: the source holds no flows or files, so all 3 managed object(s) would be deleted"),
    ("too-many-deletions", "name: t\nprune: true\nmax_deletions: 1\n",
     _remove("flows/b.yml", "flows/c.yml"), "prune refused: 2 deletions exceed the limit of 1"),
    ("protected-namespace", "name: t\nprune: true\nprotected_namespaces: [company.team]\n",
     _remove("flows/c.yml"), "prune refused for company.team/c: namespace 'company.team' is protected"),
    ("drift-fail", "name: t\ndrift: fail\n", _hand_edit,
     "company.team/a was edited on the target since the last promotion (drift: fail)"),
    ("managed-by-another-source", "name: t\n", _other_source,
     "company.team/x is managed by the promotion source 'billing'"),
    ("symlink-escaping", "name: t\n", lambda repo, target: _escaping_symlink(repo),
     "link.yml: symlink points outside the source folder"),
]


@pytest.mark.parametrize(("settings", "change", "message"), [
    pytest.param(s, c, m, id=name) for name, s, c, m in STATEFUL])
def test_refused_runs_write_nothing(repo: GitRepo, target: Target, settings, change, message):
    _managed_then(repo, target, settings, change)
    writes = _writes(target)
    before = target.sources("company")
    result = run_cli("apply", str(repo.path), env=target.env)
    assert result.code == 1
    assert message in result.err, result.err
    assert _writes(target) == writes and target.sources("company") == before
    planned = run_cli("plan", str(repo.path), "--format", "json", env=target.env)
    data = json.loads(planned.out)  # one document, whatever refused the run
    assert planned.code == 1 and data["error"]
    assert any(message in f"{problem['path']}: {problem['message']}" or message in
               problem["message"] for problem in data["problems"]), data


def test_the_bad_input_corpus_is_large_enough():
    assert len(BAD_INPUTS) + len(STATEFUL) >= 25


def _when(fake, predicate, action) -> threading.Thread:
    """Run ``action`` in a thread as soon as the fake has seen a request matching ``predicate``."""
    start = len(fake.requests)

    def watch() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(predicate(r) for r in list(fake.requests)[start:]):
                action()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("drift", ["fail", "overwrite"])
def test_an_edit_made_while_the_plan_is_validated_is_seen_before_any_write(
        repo: GitRepo, target: Target, drift: str):
    fake = target.fake
    assert fake is not None
    _three_flows(repo)
    _apply(repo, target)
    repo.write("flows/a.yml", flow_yaml("company.team", "a", "from Git"))
    repo.commit("a changes in Git")
    edited = flow_yaml("company.team", "a", "edited in the UI while the plan was validated")
    fake.inject("POST", r"/flows/validate$", delay=0.5)

    def edit_in_the_ui() -> None:
        with target.client() as client:
            client.update_flow("company.team", "a", edited)

    thread = _when(fake, lambda r: r.path.endswith("/flows/validate"), edit_in_the_ui)
    writes = len(fake.writes())
    result = run_cli("apply", str(repo.path), "--drift", drift, env=target.env)
    thread.join()
    assert "The target changed while the plan was made: planned again." in result.err
    if drift == "fail":  # the edit is drift now: refused, nothing written, the edit kept
        assert result.code == 1
        assert "company.team/a was edited on the target since the last promotion" in result.err
        assert len(fake.writes()) == writes + 1  # the UI's own edit
        assert target.sources("company")[("company.team", "a")] == edited
    else:  # Git wins, knowingly: the plan shows the edit it overwrites
        assert result.code == 0, result.err
        assert "edited on the target since the last promotion; Git wins" in result.out
        assert target.sources("company")[("company.team", "a")] == \
            flow_yaml("company.team", "a", "from Git")


def test_two_applies_at_once_one_waits_then_fails_naming_the_other(repo: GitRepo, target: Target,
                                                                     tmp_path: Path):
    fake = target.fake
    assert fake is not None
    _three_flows(repo)
    fake.inject("POST", r"/api/v1/main/flows$", delay=3.0)  # the first run's first create
    first: dict[str, object] = {}
    thread = threading.Thread(target=lambda: first.update(
        run=run_cli("apply", str(repo.path), "--trigger", "first", env=target.env)))
    thread.start()
    deadline = time.monotonic() + 10
    while not any(r.path.endswith("/flows") and r.method == "POST" for r in fake.requests):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    second = run_cli("apply", str(repo.path), "--trigger", "second", "--lock-wait", "1",
                     env=target.env)
    thread.join()
    assert second.code == 1
    assert "another promotion holds the lock of this target (kestra-promote apply (first) by" in \
        second.err
    assert first["run"].code == 0  # type: ignore[attr-defined]
    with target.client() as client:
        runs = client.kv_get("system", "kestra-promote.team")["history"]
    assert [r["trigger"] for r in runs] == ["first"]  # one run, one inventory update, none lost


def test_an_inventory_written_by_another_run_meanwhile_is_not_overwritten(repo: GitRepo,
                                                                          target: Target):
    fake = target.fake
    assert fake is not None
    _three_flows(repo)
    fake.inject("POST", r"/api/v1/main/flows$", delay=0.5)
    other = {"format": 1, "name": "team", "flows": {}, "files": {},
             "history": [{"trigger": "a run that took no lease"}]}

    def someone_writes_the_inventory() -> None:
        with target.client() as client:
            client.kv_put("system", "kestra-promote.team", other)

    thread = _when(fake, lambda r: r.path.endswith("/api/v1/main/flows"),
                   someone_writes_the_inventory)
    result = run_cli("apply", str(repo.path), env=target.env)
    thread.join()
    assert result.code == 1
    assert "was changed by another run since the plan was made: not overwritten" in result.out
    assert target.sources("company") == {}  # everything this run wrote was reverted
    with target.client() as client:
        assert client.kv_get("system", "kestra-promote.team") == other


def test_a_saved_plan_whose_before_was_edited_cannot_pass_off_the_promotion_flow(
        repo: GitRepo, target: Target, tmp_path: Path):
    assert target.fake is not None
    promotion = flow_yaml("ops", "promote", extra="labels:\n  kestra-promote.role: promotion\n")
    repo.write("kestra-promote.yml", "name: team\n")
    repo.write("flows/promote.yml", promotion)
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.commit()
    _apply(repo, target)
    (repo.path / "flows/promote.yml").unlink()
    repo.commit("the promotion flow leaves Git")
    saved = tmp_path / "plan.json"
    honest = run_cli("plan", str(repo.path), "--prune", "--out", str(saved), env=target.env)
    assert honest.code == 1 and "it runs the promotion itself" in honest.err
    assert run_cli("plan", str(repo.path), "--out", str(saved), env=target.env).code == 0
    data = json.loads(saved.read_text())
    for change in data["changes"]:
        if change.get("id") == "promote":  # orphaned: made a deletion, its label hidden
            change.update(action="delete", reason="LEFT_GIT",
                          before={"text": flow_yaml("ops", "promote")})
    data["policy"]["prune"] = True
    data["refusals"] = []
    _reseal(saved, data)
    writes = _writes(target)
    refused = run_cli("apply", str(saved), env=target.env)
    assert refused.code == 1
    assert "ops/promote: the target does not hold what the plan says this change replaces" in \
        refused.err
    assert _writes(target) == writes and ("ops", "promote") in target.sources("ops")


def test_the_final_line_says_exactly_what_holds(repo: GitRepo, target: Target):
    assert target.fake is not None
    _three_flows(repo)
    assert "The target matches Git at" in _apply(repo, target)
    target.fake.seed_flow(flow_yaml("company.team", "made-in-the-ui"))
    with target.client() as client:  # a hotfix in production
        client.update_flow("company.team", "a", flow_yaml("company.team", "a", "hotfix"))
    (repo.path / "flows/c.yml").unlink()
    repo.write("flows/d.yml", flow_yaml("company.team", "d"))
    repo.commit()
    out = _apply(repo, target, "--drift", "keep")
    final = out.rstrip().splitlines()[-1]
    assert "The target matches Git" not in final
    assert final.endswith(
        "Every object this source manages matches Git at " + repo.git("rev-parse", "HEAD")[:12]
        + ", except 1 drifted (edited on the target, left as it is) and 1 orphaned (no longer "
        "in Git, kept: prune is off). 1 unmanaged object(s) in its namespaces are not this "
        "source's (never touched).")


def test_a_saved_plan_holds_the_changes_and_only_hashes_of_the_rest(repo: GitRepo,
                                                                    target: Target,
                                                                    tmp_path: Path):
    repo.write("kestra-promote.yml", "name: team\n")
    big = "\n".join(f"# line {i}" for i in range(2000)) + "\n"
    for name in ("a", "b", "c"):
        repo.write(f"flows/{name}.yml", flow_yaml("company.team", name) + big)
    repo.commit()
    _apply(repo, target)
    repo.write("flows/a.yml", flow_yaml("company.team", "a", "changed") + big)
    repo.commit()
    saved = tmp_path / "plan.json"
    assert run_cli("plan", str(repo.path), "--out", str(saved), env=target.env).code == 0
    data = json.loads(saved.read_text())
    unchanged = [c for c in data["changes"] if c["action"] == "unchanged"]
    assert len(unchanged) == 2 and all("before" not in c and c["before_hash"] for c in unchanged)
    assert saved.stat().st_size < 3 * len(big)  # the changed flow, before and after, and a diff
    assert run_cli("apply", str(saved), env=target.env).code == 0
    assert "message: changed" in target.sources("company")[("company.team", "a")]


def test_a_renamed_source_adopts_what_its_old_name_managed(repo: GitRepo, target: Target):
    _three_flows(repo, "name: team\nprune: true\n")
    _apply(repo, target)
    repo.write("kestra-promote.yml", "name: platform\nprune: true\n")  # the source is renamed
    repo.commit("rename the source")
    refused = run_cli("apply", str(repo.path), env=target.env)
    assert refused.code == 1 and "kestra-promote adopt --from team" in refused.err
    preview = run_cli("adopt", str(repo.path), "--from", "team", "--plan-only", env=target.env)
    assert preview.code == 0
    assert preview.out.startswith("Adopt: 3 flow(s) and 0 file(s) move from 'team' (KV "
                                  "system/kestra-promote.team) to 'platform'")
    assert "  > company.team/a\n" in preview.out
    with target.client() as client:
        assert client.kv_get("system", "kestra-promote.team") is not None
    adopted = run_cli("adopt", str(repo.path), "--from", "team", env=target.env)
    assert adopted.code == 0, adopted.err
    with target.client() as client:
        inventory = client.kv_get("system", "kestra-promote.platform")
        assert sorted(inventory["flows"]) == [f"company.team/{n}" for n in "abc"]
        assert inventory["history"][-1]["from"] == "team"
        assert "kestra-promote.team" not in client.list_kv_keys("system")
    (repo.path / "flows/c.yml").unlink()
    repo.commit("c leaves Git")
    pruned = _apply(repo, target)  # the new name prunes what the old one deployed
    assert "- delete    company.team/c" in pruned
    missing = run_cli("adopt", str(repo.path), "--from", "nobody", env=target.env)
    assert missing.code == 1 and "no promotion source 'nobody' on this target" in missing.err

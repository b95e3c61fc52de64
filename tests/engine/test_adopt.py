"""`adopt --from NAME`: a source takes over what another one manages, safely and visibly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli

pytestmark = pytest.mark.fake_only

INVENTORY = "kestra-promote.{}"


def _source(repo: GitRepo, name: str, flows: str = "abc") -> None:
    repo.write("kestra-promote.yml", f"name: {name}\nprune: true\n")
    for flow in flows:
        repo.write(f"flows/{flow}.yml", flow_yaml("company.team", flow))
    repo.commit(f"{name}: {flows}")


def _apply(repo: GitRepo, target: Target) -> None:
    result = run_cli("apply", str(repo.path), env=target.env)
    assert result.code == 0, result.out + result.err


def _inventory(target: Target, name: str) -> dict | None:
    with target.client() as client:
        keys = client.list_kv_keys("system")
        return client.kv_get("system", INVENTORY.format(name)) if INVENTORY.format(name) in keys \
            else None


def test_objects_promoted_from_another_repository_need_an_explicit_flag(
        repo: GitRepo, target: Target, tmp_path: Path):
    _source(repo, "team")
    _apply(repo, target)
    elsewhere = GitRepo(tmp_path / "elsewhere")
    _source(elsewhere, "platform", "ab")

    refused = run_cli("adopt", str(elsewhere.path), "--from", "team", env=target.env)
    assert refused.code == 1
    assert f"the objects of 'team' were promoted from file:{repo.path}" in refused.err
    assert "pass --other-origin if that is what you want" in refused.err
    assert _inventory(target, "team") is not None and _inventory(target, "platform") is None

    preview = run_cli("adopt", str(elsewhere.path), "--from", "team", "--other-origin",
                      "--plan-only", env=target.env)
    assert preview.code == 0, preview.err
    # c is not in the adopting source: the next apply would prune it, and the preview says so
    assert "  > company.team/a\n" in preview.out
    assert "  > company.team/c   (not in this source)\n" in preview.out
    assert ("1 of them are not in this source: once adopted, the next apply keeps them as "
            "orphaned, or deletes them if prune is on.") in preview.out

    adopted = run_cli("adopt", str(elsewhere.path), "--from", "team", "--other-origin",
                      env=target.env)
    assert adopted.code == 0, adopted.err
    taken = _inventory(target, "platform")
    assert taken is not None and taken["origin"] == f"file:{elsewhere.path}"
    assert _inventory(target, "team") is None
    # the new owner plans without an origin refusal: the repository that adopted is the origin
    planned = run_cli("plan", str(elsewhere.path), env=target.env)
    assert planned.code == 0, planned.err
    assert "- delete    company.team/c" in planned.out


def test_both_histories_are_kept_and_status_shows_the_last_real_promotion(repo: GitRepo,
                                                                         target: Target):
    _source(repo, "team")
    _apply(repo, target)
    team_commit = repo.git("rev-parse", "HEAD")
    # another source, in a folder of the same repository, with a history of its own
    repo.write("other/kestra-promote.yml", "name: platform\n")
    repo.write("other/x.yml", flow_yaml("company.team", "x"))
    repo.commit("platform")
    platform_commit = repo.git("rev-parse", "HEAD")
    other = repo.path / "other"
    assert run_cli("apply", str(other), env=target.env).code == 0
    adopted = run_cli("adopt", str(other), "--from", "team", "--other-origin", env=target.env)
    assert adopted.code == 0, adopted.err

    history = _inventory(target, "platform")["history"]
    assert [(run["commit"], run["result"]) for run in history] == [
        (team_commit, "applied"), (platform_commit, "applied"), (platform_commit, "adopted")]
    status = run_cli("status", str(other), env=target.env)
    # the adopt record moved ownership: the last promotion is still the last apply
    assert f"Last promotion: {platform_commit[:12]} at " in status.out
    assert "(cli)." in status.out
    data = json.loads(run_cli("status", str(other), "--format", "json", env=target.env).out)
    assert data["last_promotion"]["result"] == "applied"


def test_a_failed_delete_of_the_old_inventory_says_how_to_finish(repo: GitRepo, target: Target):
    _source(repo, "team")
    _apply(repo, target)
    repo.write("kestra-promote.yml", "name: platform\nprune: true\n")
    repo.commit("rename the source")
    assert target.fake is not None
    target.fake.inject("DELETE", r"/kv/kestra-promote\.team$", status=500, times=5)
    failed = run_cli("adopt", str(repo.path), "--from", "team", env=target.env)
    assert failed.code == 1
    assert ("'platform' now manages what 'team' did, but deleting the inventory of 'team' "
            "(KV system/kestra-promote.team) failed") in failed.err
    assert "run this adopt again to finish" in failed.err
    # both inventories claim the flows: applies are refused, nothing is pruned twice
    status = run_cli("status", str(repo.path), env=target.env)
    assert "Refused: company.team/a is managed by the promotion source 'team'" in status.out
    target.fake.faults.clear()
    again = run_cli("adopt", str(repo.path), "--from", "team", env=target.env)
    assert again.code == 0, again.err
    assert _inventory(target, "team") is None
    taken = _inventory(target, "platform")
    assert sorted(taken["flows"]) == [f"company.team/{n}" for n in "abc"]
    # finishing the move does not copy the old history a second time
    assert [run["result"] for run in taken["history"]] == ["applied", "adopted", "adopted"]
    _apply(repo, target)


def test_this_sources_own_inventory_from_another_repository_is_not_adopted_silently(
        repo: GitRepo, target: Target, tmp_path: Path):
    _source(repo, "team", "a")  # repository X promotes as 'team'
    _apply(repo, target)
    other = GitRepo(tmp_path / "y")
    other.write("kestra-promote.yml", "name: old\nprune: true\n")
    other.write("flows/y.yml", flow_yaml("company.team", "y"))
    other.commit()
    _apply(other, target)  # repository Y promotes as 'old', then is renamed 'team'
    other.write("kestra-promote.yml", "name: team\nprune: true\n")
    other.commit()
    refused = run_cli("adopt", str(other.path), "--from", "old", env=target.env)
    assert refused.code == 1
    assert (f"the objects this source's inventory already holds were promoted from "
            f"file:{repo.path}") in refused.err
    assert _inventory(target, "old") is not None
    assert ("company.team", "a") in target.sources("company")


def test_a_copy_of_an_inventory_under_another_key_is_a_source_of_its_own(repo: GitRepo,
                                                                          target: Target):
    _source(repo, "team")
    _apply(repo, target)
    with target.client() as client:  # someone keeps a backup of the inventory
        client.kv_put("system", "kestra-promote.team-backup", _inventory(target, "team"))
    repo.write("kestra-promote.yml", "name: platform\n")
    repo.commit()
    assert run_cli("adopt", str(repo.path), "--from", "team", env=target.env).code == 0
    # the backup was not what adopt deleted: it is still there, named by its key
    assert _inventory(target, "team-backup") is not None
    again = run_cli("adopt", str(repo.path), "--from", "team", env=target.env)
    assert again.code == 1 and "no promotion source 'team' on this target" in again.err
    planned = run_cli("plan", str(repo.path), env=target.env)
    assert "managed by the promotion source 'team-backup'" in planned.err


def test_options_and_json(repo: GitRepo, target: Target):
    _source(repo, "team")
    _apply(repo, target)
    repo.write("kestra-promote.yml", "name: platform\n")
    repo.commit("rename")
    bad = run_cli("adopt", str(repo.path), "--from", "no such name", env=target.env)
    assert bad.code == 1 and "invalid --from" in bad.err and "--name" not in bad.err

    preview = run_cli("adopt", str(repo.path), "--from", "team", "--plan-only",
                      "--format", "json", env=target.env)
    data = json.loads(preview.out)
    assert data["name"] == "platform" and data["from"] == "team"
    assert [(o["kind"], o["id"], o["in_source"]) for o in data["objects"]] == [
        ("flow", name, True) for name in "abc"]

    with target.client() as client:  # another run holds the lease
        from kestra_promote.target import lock
        with lock.held(client, "system", "someone else", wait=0):
            waited = run_cli("adopt", str(repo.path), "--from", "team", "--lock-wait", "0",
                             env=target.env)
    assert waited.code == 1 and "someone else" in waited.err
    assert _inventory(target, "team") is not None
    with target.client() as client:
        with lock.held(client, "system", "someone else", wait=0):
            failed = run_cli("adopt", str(repo.path), "--from", "team", "--lock-wait", "0",
                             "--format", "json", env=target.env)
    data = json.loads(failed.out)  # one document: the move, and why it did not happen
    assert failed.code == 1 and data["adopted"] is False and "someone else" in data["error"]

    done = run_cli("adopt", str(repo.path), "--from", "team", "--format", "json", env=target.env)
    assert done.code == 0 and json.loads(done.out)["adopted"] is True
    assert json.loads(preview.out)["adopted"] is False


def test_adopt_writes_nothing_once_its_lease_is_not_its_own(repo: GitRepo, target: Target,
                                                            overtake_leases):
    _source(repo, "team")
    _apply(repo, target)
    repo.write("kestra-promote.yml", "name: platform\n")
    repo.commit("rename")
    overtake_leases()
    assert target.fake is not None
    writes = len(target.fake.writes())
    run = run_cli("adopt", str(repo.path), "--from", "team", env=target.env)
    assert run.code == 1 and "no longer this run's" in run.err and "run b" in run.err
    assert len(target.fake.writes()) == writes
    assert _inventory(target, "team") is not None and _inventory(target, "platform") is None

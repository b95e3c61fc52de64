"""`kestra-promote policy`: production owns the rules, and a commit cannot take them away."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli
from kestra_promote.gates.policy import POLICY_KEY, digest_of

FREEZE = """\
windows:
  - {name: year-end, kind: deny, schedule: "* * * * *", duration: 31d, timezone: UTC}
max_deletions: 2
state_namespace: system
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "prod-policy.yml"
    path.write_text(FREEZE, encoding="utf-8")
    return path


def _repo_with_flow(repo: GitRepo, settings: str = "", message: str = "hello") -> None:
    repo.write("kestra-promote.yml", settings or "name: team\n")
    repo.write("flows/a.yml", flow_yaml("company.team", "a", message))
    repo.commit()


def test_set_show_and_unset(target: Target, policy_file: Path):
    done = run_cli("policy", "set", str(policy_file), env=target.env)
    assert done.code == 0, done.err
    assert digest_of(FREEZE) in done.out and "KESTRA_PROMOTE_POLICY_DIGEST" in done.out
    if target.fake is not None:
        assert target.fake.kv[("main", "system")][POLICY_KEY]["value"] == FREEZE
    shown = run_cli("policy", "show", "--format", "json",
                    env={**target.env, "KESTRA_PROMOTE_POLICY_DIGEST": digest_of(FREEZE)})
    data = json.loads(shown.out)
    assert data["pinned"] and data["mismatch"] is None and data["text"] == FREEZE
    assert data["policy"]["max_deletions"] == 2
    assert "NOT pinned" in run_cli("policy", "show", env=target.env).out
    assert run_cli("policy", "unset", env=target.env).code == 0
    assert "no production policy is set" in run_cli("policy", "show", env=target.env).out


def test_a_bad_policy_is_refused_before_anything_is_stored(target: Target, tmp_path: Path):
    bad = tmp_path / "bad.yml"
    bad.write_text("max_deletion: 3\n", encoding="utf-8")
    done = run_cli("policy", "set", str(bad), env=target.env)
    assert done.code == 1
    assert "bad.yml" in done.err and "max_deletion" in done.err
    assert "no production policy is set" in run_cli("policy", "show", env=target.env).out


def test_a_commit_that_deletes_windows_is_still_denied(repo: GitRepo, target: Target,
                                                        policy_file: Path):
    # the attack: the reviewed commit changes a flow and drops `windows:` from its settings
    _repo_with_flow(repo, "name: team\nwindows:\n  - {name: mine, kind: deny, schedule: "
                          "'0 0 1 1 *', duration: 1m, timezone: UTC}\n")
    assert run_cli("policy", "set", str(policy_file), env=target.env).code == 0
    _repo_with_flow(repo, "name: team\n", message="changed")
    done = run_cli("apply", str(repo.path), env=target.env)
    assert done.code == 1
    assert "year-end" in done.out + done.err
    planned = run_cli("plan", str(repo.path), env=target.env)
    assert "Policy: production policy sha256:" in planned.out
    assert "windows: year-end (from policy)" in planned.out
    if target.fake is not None:
        assert ("main", "company.team", "a") not in target.fake.flows


def test_a_commit_cannot_move_the_state_namespace_away(repo: GitRepo, target: Target,
                                                        policy_file: Path, tmp_path: Path):
    # another team owns shared/x: its inventory lives in system
    other = GitRepo(tmp_path / "other")
    other.write("kestra-promote.yml", "name: teama\n")
    other.write("x.yml", flow_yaml("shared", "x", "team a's"))
    other.commit()
    assert run_cli("apply", str(other.path), env=target.env).code == 0
    policy_file.write_text("state_namespace: system\n", encoding="utf-8")
    assert run_cli("policy", "set", str(policy_file), env=target.env).code == 0
    repo.write("kestra-promote.yml", "name: teamb\nstate_namespace: teamb\n")
    repo.write("x.yml", flow_yaml("shared", "x", "team b's"))
    repo.commit()
    done = run_cli("apply", str(repo.path), env=target.env)
    assert done.code == 1
    assert "teama" in done.out + done.err  # the other team's ownership is seen
    assert "'teamb' is ignored" in done.out + done.err
    assert "team a's" in target.sources("shared")[("shared", "x")]


def test_a_looser_setting_is_refused_naming_the_key(repo: GitRepo, target: Target,
                                                    policy_file: Path):
    policy_file.write_text("max_deletions: 2\n", encoding="utf-8")
    assert run_cli("policy", "set", str(policy_file), env=target.env).code == 0
    _repo_with_flow(repo, "name: team\nmax_deletions: 50\n")
    done = run_cli("apply", str(repo.path), env=target.env)
    assert done.code == 1
    assert "'max_deletions' 50 allows more deletions" in done.out


def test_a_policy_changed_behind_the_pin_refuses_every_apply(repo: GitRepo, target: Target,
                                                             policy_file: Path):
    policy_file.write_text("max_deletions: 2\n", encoding="utf-8")
    assert run_cli("policy", "set", str(policy_file), env=target.env).code == 0
    pinned = {**target.env, "KESTRA_PROMOTE_POLICY_DIGEST": digest_of("max_deletions: 2\n")}
    _repo_with_flow(repo)
    # any flow may write any namespace's KV store: one loosens the policy
    with target.client() as client:
        client.kv_put("system", POLICY_KEY, "max_deletions: 999\n")
    done = run_cli("apply", str(repo.path), env=pinned)
    assert done.code == 1 and "changed outside" in done.out
    with target.client() as client:  # or deletes it
        client.kv_delete("system", POLICY_KEY)
    done = run_cli("apply", str(repo.path), env=pinned)
    assert done.code == 1 and "none is stored" in done.out
    # with the pin matching again, the same commit applies
    assert run_cli("policy", "set", str(policy_file), env=target.env).code == 0
    assert run_cli("apply", str(repo.path), env=pinned).code == 0


def test_sources_decide_which_source_writes_which_namespace(repo: GitRepo, target: Target,
                                                            policy_file: Path):
    policy_file.write_text("sources:\n  - {namespaces: [company.team], names: [team]}\n",
                           encoding="utf-8")
    assert run_cli("policy", "set", str(policy_file), env=target.env).code == 0
    repo.write("kestra-promote.yml", "name: intruder\n")
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.commit()
    done = run_cli("apply", str(repo.path), env=target.env)
    assert done.code == 1 and "source 'intruder'" in done.out
    repo.write("kestra-promote.yml", "name: team\n")
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0


def test_without_a_policy_everything_works_as_before(repo: GitRepo, target: Target):
    _repo_with_flow(repo, "name: team\nmax_deletions: 50\n")
    done = run_cli("apply", str(repo.path), env=target.env)
    assert done.code == 0, done.out + done.err
    assert "Policy:" not in done.out


def test_show_says_where_each_promotion_setting_comes_from(target: Target, policy_file: Path):
    from kestra_promote.gates import seal

    boot = run_cli("bootstrap", "--set", "promote_repo_url=https://git.example.com/f.git",
                   env=target.env)
    assert boot.code == 0, boot.err
    record = seal.parse_record(target.fake.kv[("main", "system")][seal.RECORD_KEY]["value"], "t")
    shown = run_cli("policy", "show", env=target.env)
    assert (f"Promotion flows' settings: KV system/kestra_promote_settings, stored record's digest "
            f"{record.seal} (unverified") in shown.out
    assert "promote_repo_url           https://git.example.com/f.git  (sealed record)" in shown.out
    assert "promote_branch             (unset)  (default)" in shown.out
    matching = run_cli("policy", "show", env={**target.env, "KESTRA_PROMOTE_SEAL": record.seal})
    assert "(matches KESTRA_PROMOTE_SEAL: these are the sealed settings)" in matching.out
    # a policy stored behind the record's back (any flow can write KV) is said
    with target.fake._lock:
        target.fake.kv[("main", "system")]["kestra_promote_policy"] = {
            "value": "max_deletions: 3\n", "expires": None, "revision": 1, "description": None,
            "updated": 0}
    changed = run_cli("policy", "show", "--format", "json", env=target.env)
    data = json.loads(changed.out)["promotion_settings"]
    assert data["policy_matches"] is False and data["seal"] == record.seal
    assert data["settings"]["promote_repo_url"] == {"value": "https://git.example.com/f.git",
                                                    "from": "sealed record"}


def test_a_saved_plan_is_applied_only_under_the_policy_it_was_made_under(
        repo: GitRepo, target: Target, tmp_path: Path):
    policy_file = tmp_path / "policy.yml"
    policy_file.write_text("max_deletions: 3\n")
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.commit("a flow")
    saved = tmp_path / "plan.json"
    made = run_cli("plan", str(repo.path), "--out", str(saved), env=target.env)
    assert made.code in (0, 2), made.err
    assert run_cli("policy", "set", str(policy_file), env=target.env).code == 0
    late = run_cli("apply", str(saved), env=target.env)
    assert late.code != 0 and "production's policy changed since this plan was made" in late.err
    assert ("company.team", "a") not in target.fake.current()
    again = tmp_path / "again.json"
    assert run_cli("plan", str(repo.path), "--out", str(again), env=target.env).code in (0, 2)
    done = run_cli("apply", str(again), env=target.env)
    assert done.code == 0, done.err
    assert ("company.team", "a") in target.fake.current()


def test_a_policy_set_while_apply_waits_for_the_lease_refuses_the_saved_plan(
        repo: GitRepo, target: Target, tmp_path: Path, monkeypatch):
    from kestra_promote.gates import policy_store
    from kestra_promote.target import lock

    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.commit("a flow")
    saved = tmp_path / "plan.json"
    assert run_cli("plan", str(repo.path), "--out", str(saved), env=target.env).code in (0, 2)
    original, once = lock.acquire, []

    def policy_set_finishes_first(client, namespace, holder, **options):
        if not once:  # the admin's `policy set` held the lease while this apply waited
            once.append(True)
            policy_store.store(client, "system", FREEZE, "policy.yml")
        return original(client, namespace, holder, **options)

    monkeypatch.setattr(lock, "acquire", policy_set_finishes_first)
    applied = run_cli("apply", str(saved), env=target.env)
    assert applied.code != 0 and "production's policy changed" in applied.err
    assert ("company.team", "a") not in target.fake.current()


def test_policy_set_and_unset_wait_for_a_running_promotions_lease(target: Target, tmp_path: Path):
    from kestra_promote.target import lock

    policy = tmp_path / "policy.yml"
    policy.write_text(FREEZE)
    with target.client() as client, lock.held(client, "system", "apply by alice@ci-1", wait=0):
        for argv in (("set", str(policy)), ("unset",)):
            run = run_cli("policy", *argv, "--lock-wait", "0", env=target.env)
            assert run.code != 0 and "apply by alice@ci-1" in run.err, run.err
    assert target.fake is not None and not target.fake.writes()


def test_policy_set_writes_nothing_once_its_lease_is_not_its_own(target: Target, tmp_path: Path,
                                                                 overtake_leases):
    from kestra_promote.target import lock

    policy = tmp_path / "policy.yml"
    policy.write_text(FREEZE)
    overtake_leases()
    for argv in (("set", str(policy)), ("unset",)):
        run = run_cli("policy", *argv, env=target.env)
        assert run.code != 0 and "no longer this run's" in run.err, run.err
        with target.client() as client:  # run b's lease, left behind
            lock.break_lock(client, "system")
    assert target.fake is not None and not target.fake.writes()

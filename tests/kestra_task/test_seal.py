"""The promotion's sealed settings inside Kestra: any flow may write the promotion namespace's KV
store and files (open source), so a run trusts only what the server's seal names.

Each attack is what a flow of any team could do with a kv.Set or UploadFiles task, reproduced
here by writing through the fake's API, then running the promotion flows in the emulator."""

from __future__ import annotations

import dataclasses
import re

import pytest
from conftest import FAKE_PASSWORD, FAKE_USER, ROOT, GitRepo, flow_yaml, run_cli
from fake_kestra import FakeKestra, serve
from kestra_flows.emulator import Emulator
from kestra_promote.gates import seal
from kestra_promote.kestra_task import settings
from kestra_promote.target.transport import redact_url
from kestra_promote.errors import SettingsError
from test_flows import SECRET_VALUES, _put_kv, _record, _set, production, server  # noqa: F401

pytestmark = pytest.mark.fake_only


@pytest.fixture
def listener():
    """Someone else's server, where a rewritten setting would send production's credentials."""
    other = FakeKestra(username=None, password=None)
    with serve(other) as url:
        yield other, url


def _failed_with(execution, text: str) -> bool:
    return execution.state == "FAILED" and any(text in m for m in execution.messages())


def test_a_flow_rewriting_the_target_url_gets_no_credentials(production, listener):
    fake, repo, emulator = production
    other, url = listener
    _set(fake, "promote_target_url", url, reseal=False)  # a kv.Set of any flow
    execution = emulator.schedule()
    assert _failed_with(execution, "are not the ones ENV_KESTRA_PROMOTE_SEAL seals")
    assert other.requests == []
    assert ("company.team", "hello") not in fake.current()


def test_a_flow_rewriting_the_repository_url_gets_no_git_token(production, tmp_path):
    fake, repo, emulator = production
    elsewhere = GitRepo(tmp_path / "elsewhere")
    elsewhere.write("flows/x.yml", "id: x\nnamespace: company.team\ntasks: []\n")
    elsewhere.commit("not reviewed")
    _set(fake, "promote_repo_url", str(elsewhere.path), reseal=False)
    execution = emulator.execute({"mode": "apply"})
    assert _failed_with(execution, "are not the ones ENV_KESTRA_PROMOTE_SEAL seals")
    assert "workspace" not in execution.states and "clone_branch" not in execution.states
    assert ("company.team", "x") not in fake.current()


def test_settings_kept_one_per_key_are_never_read(production, listener):
    fake, repo, emulator = production
    other, url = listener
    for key, value in (("promote_target_url", url), ("promote_approval", "off"),
                       ("promote_branch", "kestra-dev")):
        _put_kv(fake, key, value)  # as earlier versions kept them
    execution = emulator.execute({"mode": "apply"})
    assert execution.state == "SUCCESS", execution.logs
    assert other.requests == [] and ("company.team", "hello") in fake.current()


def test_clearing_production_approval_is_refused(production):
    fake, repo, emulator = production
    _set(fake, "promote_approval", "required")
    current = _record(fake)
    cleared = dataclasses.replace(current, settings={
        k: v for k, v in current.settings.items() if k != "promote_approval"})
    _put_kv(fake, seal.RECORD_KEY, cleared.text())
    execution = emulator.execute({"mode": "apply"})
    assert _failed_with(execution, "are not the ones ENV_KESTRA_PROMOTE_SEAL seals")
    assert ("company.team", "hello") not in fake.current()


@pytest.mark.parametrize("path", ["/kestra_promote/__pycache__/__init__.cpython-311.pyc",
                                  "/kestra_promote/sitecustomize.py"])
def test_files_added_to_the_package_stop_every_run(production, path):
    fake, repo, emulator = production
    with fake._lock:
        fake.files[("main", "system")][path] = b"import os; os.environ.clear()\n"
    execution = emulator.execute()
    assert _failed_with(execution, "are not the ones bootstrap installed and sealed")
    assert "promote" not in execution.outputs


def test_a_changed_module_stops_every_run(production):
    fake, repo, emulator = production
    path = "/kestra_promote/kestra_task/runtime.py"
    with fake._lock:
        files = fake.files[("main", "system")]
        files[path] = files[path] + b"\nprint('sent elsewhere')\n"
    execution = emulator.execute({"mode": "apply"})
    assert _failed_with(execution, "are not the ones bootstrap installed and sealed")
    assert not any("sent elsewhere" in m for m in execution.messages())
    assert ("company.team", "hello") not in fake.current()


def test_without_a_seal_nothing_runs_and_none_runs_unsealed(production):
    fake, repo, emulator = production
    server[id(fake)].clear()
    execution = emulator.execute()
    assert _failed_with(execution, "this promotion is not sealed: set ENV_KESTRA_PROMOTE_SEAL")
    server[id(fake)]["kestra_promote_seal"] = "none"  # the admin's explicit choice
    execution = emulator.execute({"mode": "apply"})
    assert execution.state == "SUCCESS", execution.logs
    assert ("company.team", "hello") in fake.current()


def test_a_rewritten_policy_refuses_the_apply(production, tmp_path):
    fake, repo, emulator = production
    policy = tmp_path / "policy.yml"
    policy.write_text("max_deletions: 0\n")
    done = run_cli("policy", "set", str(policy), "--url",
                   _record(fake).settings["promote_target_url"], "--username", FAKE_USER,
                   "--password", FAKE_PASSWORD, env={"KESTRA_PROMOTE_SEAL": _record(fake).seal})
    assert done.code == 0, done.err
    server[id(fake)]["kestra_promote_seal"] = _record(fake).seal
    _put_kv(fake, "kestra_promote_policy", "max_deletions: 50\n")  # a flow loosens it
    execution = emulator.execute({"mode": "apply"})
    assert execution.state == "FAILED"
    assert any("not the one production's pin" in m for m in execution.messages())
    assert ("company.team", "hello") not in fake.current()


def test_the_check_flow_is_sealed_too(production, listener):
    fake, repo, emulator = production
    other, url = listener
    _set(fake, "promote_target_url", url, reseal=False)
    check = Emulator(ROOT / "flows/prod/promote-check.yml", SECRET_VALUES, emulator.kv,
                     emulator.namespace_files, emulator.workspace, envs=emulator.envs)
    execution = check.execute()
    assert _failed_with(execution, "are not the ones ENV_KESTRA_PROMOTE_SEAL seals")
    assert other.requests == []


def test_both_flows_carry_the_same_launcher():
    import yaml

    launchers = {yaml.safe_load((ROOT / "flows/prod" / name).read_text())["variables"]["launch"]
                 for name in ("promote.yml", "promote-check.yml")}
    assert len(launchers) == 1 and "{{" not in launchers.pop()


# -- the record -------------------------------------------------------------------------------

def test_bootstrap_migrates_settings_kept_one_per_key_only_when_told(target):
    fake = target.fake
    for key, value in (("promote_repo_url", "https://git.example.com/flows.git"),
                       ("promote_approval", "required")):
        _put_kv(fake, key, value)  # as earlier versions' bootstrap wrote them (or any flow)
    writes = len(fake.writes())
    first = run_cli("bootstrap", "--set", "promote_branch=release", env=target.env)
    assert first.code == 1 and len(fake.writes()) == writes
    assert "promote_approval=required, promote_repo_url=https://git.example.com/flows.git" \
        in first.err and "--migrate-settings" in first.err
    migrated = run_cli("bootstrap", "--migrate-settings", "--set", "promote_branch=release",
                       env=target.env)
    assert migrated.code == 0, migrated.err
    assert "system/promote_approval: moved into the sealed record" in migrated.out
    record = _record(fake)
    assert record.settings == {"promote_repo_url": "https://git.example.com/flows.git",
                               "promote_approval": "required", "promote_branch": "release"}
    assert "  promote_approval           required" in migrated.out  # what the admin seals
    assert "promote_approval" not in fake.kv[("main", "system")]
    assert record.policy == "none" and record.package.startswith("sha256:")
    sealed = {**target.env, "KESTRA_PROMOTE_SEAL": record.seal}
    again = run_cli("bootstrap", env=sealed)
    assert again.code == 0 and "(unchanged)" in again.out and _record(fake) == record
    removed = run_cli("bootstrap", "--set", "promote_branch=", env=sealed)
    assert removed.code == 0 and "promote_branch" not in _record(fake).settings, removed.err


def test_bootstrap_carries_settings_over_only_when_they_are_the_sealed_ones(target, listener):
    fake = target.fake
    other, url = listener
    assert run_cli("bootstrap", "--set", "promote_repo_url=https://git.example.com/f.git",
                   env=target.env).code == 0
    seal_now = _record(fake).seal
    unchecked = run_cli("bootstrap", "--set", "promote_approval=off", env=target.env)
    assert unchecked.code == 1 and "give the server's current seal as KESTRA_PROMOTE_SEAL" \
        in unchecked.err
    # a flow points the target at its listener; the admin's next bootstrap must not seal it
    tampered = dataclasses.replace(_record(fake), settings={
        **_record(fake).settings, "promote_target_url": url})
    _put_kv(fake, seal.RECORD_KEY, tampered.text())
    laundered = run_cli("bootstrap", "--set", "promote_approval=off",
                        env={**target.env, "KESTRA_PROMOTE_SEAL": seal_now})
    assert laundered.code == 1 and "are not the sealed ones" in laundered.err
    assert "promote_target_url" in _record(fake).settings  # untouched: nothing was sealed
    restart = run_cli("bootstrap", "--reset-settings", "--set",
                      "promote_repo_url=https://git.example.com/f.git", env=target.env)
    assert restart.code == 0, restart.err
    assert _record(fake).settings == {"promote_repo_url": "https://git.example.com/f.git"}


def test_a_junk_record_does_not_lock_bootstrap_out(target):
    fake = target.fake
    _put_kv(fake, seal.RECORD_KEY, "junk")
    stuck = run_cli("bootstrap", "--set", "promote_repo_url=https://g.example.com/f.git",
                    env={**target.env, "KESTRA_PROMOTE_SEAL": "sha256:" + "1" * 64})
    assert stuck.code == 1
    done = run_cli("bootstrap", "--reset-settings", "--set",
                   "promote_repo_url=https://g.example.com/f.git", env=target.env)
    assert done.code == 0, done.err and _record(fake).settings


def test_policy_set_seals_only_a_record_that_is_the_sealed_one(target, listener, tmp_path):
    fake = target.fake
    other, url = listener
    assert run_cli("bootstrap", "--set", "promote_repo_url=https://git.example.com/f.git",
                   env=target.env).code == 0
    seal_now = _record(fake).seal
    tampered = dataclasses.replace(_record(fake), settings={
        **_record(fake).settings, "promote_target_url": url})
    _put_kv(fake, seal.RECORD_KEY, tampered.text())
    policy = tmp_path / "policy.yml"
    policy.write_text("max_deletions: 5\n")
    for env in (target.env, {**target.env, "KESTRA_PROMOTE_SEAL": seal_now}):
        done = run_cli("policy", "set", str(policy), env=env)
        assert done.code == 1, done.out
        assert "kestra_promote_policy" not in fake.kv[("main", "system")]
    assert _record(fake) == tampered  # not resealed


def test_bootstrap_keeps_the_sealed_policy_when_a_flow_rewrites_the_stored_one(target, tmp_path):
    fake = target.fake
    assert run_cli("bootstrap", "--set", "promote_repo_url=https://git.example.com/f.git",
                   env=target.env).code == 0
    policy = tmp_path / "policy.yml"
    policy.write_text("max_deletions: 0\n")
    done = run_cli("policy", "set", str(policy),
                   env={**target.env, "KESTRA_PROMOTE_SEAL": _record(fake).seal})
    assert done.code == 0, done.err
    sealed_policy = _record(fake).policy
    _put_kv(fake, "kestra_promote_policy", "max_deletions: 50\n")  # a flow loosens it
    again = run_cli("bootstrap", env={**target.env, "KESTRA_PROMOTE_SEAL": _record(fake).seal})
    assert again.code == 0, again.err
    assert _record(fake).policy == sealed_policy
    assert "is not the sealed one" in again.out


def test_a_poisoned_inventory_does_not_make_bootstrap_delete_other_flows(target):
    from kestra_promote.models import FlowKey, Managed
    from kestra_promote.target import store
    from kestra_promote.target.inventory import kv_key

    fake = target.fake
    assert run_cli("bootstrap", "--set", "promote_repo_url=https://git.example.com/f.git",
                   env=target.env).code == 0
    with target.client() as client:
        client.create_flow(flow_yaml("company.payments", "ledger"))
        inventory = store.read(client, "system", kv_key("kestra-promote-prod"))
        store.write(client, "system", dataclasses.replace(inventory, flows={
            **inventory.flows, FlowKey("company.payments", "ledger"): Managed("sha256:0", None)}))
    again = run_cli("bootstrap", env={**target.env, "KESTRA_PROMOTE_SEAL": _record(fake).seal})
    assert again.code == 1 and "company.payments/ledger, which it never installs" in again.err
    assert ("company.payments", "ledger") in fake.current()


def test_a_repository_url_with_a_login_is_never_sealed(target):
    done = run_cli("bootstrap", "--set",
                   "promote_repo_url=https://oauth2:glpat-SECRET123@git.example.com/f.git",
                   env=target.env)
    assert done.code == 1 and "KESTRA_PROMOTE_GIT_TOKEN" in done.err
    assert "glpat-SECRET123" not in done.err + done.out
    assert seal.RECORD_KEY not in target.fake.kv.get(("main", "system"), {})


def test_policy_set_says_when_no_promotion_is_sealed_in_its_namespace(target, tmp_path):
    assert run_cli("bootstrap", "--namespace", "ops.promotion", "--set",
                   "promote_repo_url=https://git.example.com/f.git", env=target.env).code == 0
    policy = tmp_path / "policy.yml"
    policy.write_text("max_deletions: 5\n")
    done = run_cli("policy", "set", str(policy), env=target.env)  # into system by default
    assert done.code == 0
    assert "no promotion flows are sealed in namespace 'system'" in done.out


def test_the_record_is_verified_before_anything_is_used():
    record = seal.Record({"promote_repo_url": "https://git.example.com/f.git"}, "none", "p")
    text = record.text()
    assert seal.verify(text, record.seal, "KV system/x") == (record, True)
    assert seal.verify(text, "NONE", "KV system/x") == (record, False)
    for bad_seal, why in ((None, "not sealed"), ("sha256:00", "are not the sealed ones")):
        with pytest.raises(SettingsError, match=why):
            seal.verify(text, bad_seal, "KV system/x")
    for bad_text in ("", "[]", '{"version": 2}', text.replace('"p"', "1")):
        with pytest.raises(SettingsError):
            seal.verify(bad_text, "none", "KV system/x")
    with pytest.raises(SettingsError, match="unknown setting"):
        seal.parse_record(seal.Record({"promote_nope": "1"}).text(), "KV system/x")


def test_the_task_takes_settings_from_the_record_only():
    record = seal.Record({"promote_repo_url": "https://git.example.com/f.git",
                          "promote_path": "/prod/", "promote_approval": "required"}, "none", "p")
    env, found = settings.resolve({"KP_SEAL": record.seal, "KP_SETTINGS_RECORD": record.text(),
                                   "KP_FLOWS_GENERATION": settings.FLOWS_GENERATION,
                                   "KESTRA_URL": "https://attacker.example.com",
                                   "KP_APPROVAL": ""})
    assert found == record
    assert env["KESTRA_URL"] == "http://localhost:8080" and env["KP_APPROVAL"] == "required"
    assert env["KP_SOURCE"] == "repo/prod" and env["KESTRA_PROMOTE_POLICY_DIGEST"] == "none"
    by_hand = {"KESTRA_URL": "x", "KP_SETTINGS": "environment"}
    assert settings.resolve(by_hand) == (by_hand, None)
    with pytest.raises(SettingsError, match="no seal was given"):
        settings.resolve({"KESTRA_URL": "x"})  # an earlier revision of the flow
    assert settings.for_task("namespaces", {"KESTRA_URL": "x"}) == ({"KESTRA_URL": "x"}, None)
    without_repo = seal.Record({}, "none", "p")
    with pytest.raises(SettingsError, match="promote_repo_url is not set"):
        settings.resolve({"KP_SEAL": "none", "KP_SETTINGS_RECORD": without_repo.text(),
                          "KP_FLOWS_GENERATION": settings.FLOWS_GENERATION})


def test_the_launcher_reads_nothing_of_the_working_directory_before_its_check(tmp_path):
    import subprocess
    import sys

    import yaml

    flow = yaml.safe_load((ROOT / "flows/prod/promote.yml").read_text())
    task = next(t for t in flow["tasks"] if t["id"] == "decide")
    assert task["commands"] == ['python3 -I -c "$KP_LAUNCH" task decide']
    (tmp_path / "hashlib.py").write_text("print('hijacked')\n")  # would shadow the standard one
    (tmp_path / "kestra_promote").mkdir()
    (tmp_path / "kestra_promote" / "__main__.py").write_text("print('ran the package')\n")
    record = seal.Record({"promote_repo_url": "https://git.example.com/f.git"}, "none",
                         "sha256:" + "0" * 64)  # not the package in this folder
    done = subprocess.run([sys.executable, "-I", "-c", flow["variables"]["launch"], "task",
                           "decide"], cwd=tmp_path, capture_output=True, text=True,
                          env={"KP_SEAL": record.seal, "KP_SETTINGS_RECORD": record.text(),
                               "PYTHONSTARTUP": str(tmp_path / "hashlib.py")})
    assert done.returncode != 0 and "not the ones bootstrap installed and sealed" in done.stderr
    assert "hijacked" not in done.stdout and "ran the package" not in done.stdout


def test_a_namespace_file_cannot_slip_a_flow_into_the_checkout(production):
    # Kestra matches an include that starts with a word character at any depth
    # (PathMatcherPredicate): `kestra_promote/**` would take /repo/kestra_promote/x.yml too, and
    # put it into the clone the promote task shares with it
    fake, repo, emulator = production
    with fake._lock:
        fake.files[("main", "system")]["/repo/kestra_promote/evil.yml"] = \
            flow_yaml("company.team", "evil").encode()
    execution = emulator.execute({"mode": "apply"})
    assert execution.state == "SUCCESS", execution.logs
    assert ("company.team", "hello") in fake.current()
    assert ("company.team", "evil") not in fake.current()


def test_includes_are_matched_as_kestra_matches_them():
    from kestra_flows.emulator import include_matches

    assert include_matches("/repo/kestra_promote/x.yml", "kestra_promote/**")
    assert not include_matches("/repo/kestra_promote/x.yml", "/kestra_promote/**")
    assert include_matches("/kestra_promote/a/b.py", "/kestra_promote/**")
    assert not include_matches("/kestra_promote.py", "/kestra_promote/**")


def test_the_launcher_imports_the_package_it_checked_whatever_pythonpath_holds(tmp_path):
    import os
    import subprocess
    import sys

    import yaml

    launch = yaml.safe_load((ROOT / "flows/prod/promote.yml").read_text())["variables"]["launch"]
    genuine = {"kestra_promote/__init__.py": b"", "kestra_promote/__main__.py": b"print('genuine')\n"}
    for name, data in genuine.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    lib = tmp_path / "lib" / "kestra_promote"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "__main__.py").write_text("print('other')\n")
    (tmp_path / "lib" / "json.py").write_text("print('shadowed')\n")
    record = seal.Record({}, "none", seal.package_digest(genuine.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    for extra in ({"PYTHONSAFEPATH": "1"}, {}):
        done = subprocess.run(
            [sys.executable, "-I", "-c", launch, "task", "decide"], cwd=tmp_path,
            capture_output=True, text=True,
            env={**env, **extra, "KP_SEAL": record.seal, "KP_SETTINGS_RECORD": record.text(),
                 "PYTHONPATH": str(tmp_path / "lib")})
        assert done.stdout.strip() == "genuine", (done.stdout, done.stderr)


def test_an_earlier_revision_of_the_flow_cannot_run_unsealed(production, listener, tmp_path):
    # Kestra keeps every revision and runs one asked for by number (revision=N): the revision
    # before the seal read its settings from KV keys any flow can write, and had no launcher
    fake, repo, emulator = production
    other, url = listener
    earlier = (ROOT / "flows/prod/promote.yml").read_text()
    launch = 'python3 -I -c "$KP_LAUNCH"'
    assert launch in earlier
    earlier = earlier.replace(launch, "python3 -m kestra_promote")
    for name in ("KP_SEAL", "KP_SETTINGS_RECORD", "KP_LAUNCH"):
        earlier = "\n".join(line for line in earlier.splitlines() if f"{name}:" not in line)
    earlier = earlier.replace("KP_DELIVERIES_NAMESPACE:",
                              f"KESTRA_URL: {url}\n      KP_DELIVERIES_NAMESPACE:", 1)
    path = tmp_path / "promote-earlier.yml"
    path.write_text(earlier + "\n")
    previous = Emulator(path, SECRET_VALUES, emulator.kv, emulator.namespace_files,
                        emulator.workspace, envs=emulator.envs)
    execution = previous.execute({"mode": "apply"})
    assert _failed_with(execution, "no seal was given (KP_SEAL)")
    assert other.requests == []


def test_a_policy_changed_during_the_approval_pause_refuses_the_apply(production, tmp_path):
    fake, repo, emulator = production
    _set(fake, "promote_approval", "required")
    policy = tmp_path / "policy.yml"

    def admin_sets_a_policy() -> None:  # production's rules change while a person reads
        policy.write_text("max_deletions: 0\n")
        done = run_cli("policy", "set", str(policy), "--url",
                       _record(fake).settings["promote_target_url"], "--username", FAKE_USER,
                       "--password", FAKE_PASSWORD,
                       env={"KESTRA_PROMOTE_SEAL": server[id(fake)]["kestra_promote_seal"]})
        assert done.code == 0, done.err
        server[id(fake)]["kestra_promote_seal"] = _record(fake).seal

    execution = emulator.execute({"mode": "apply"}, on_pause=admin_sets_a_policy,
                                 resume={"decision": "approve", "approver": "alice"})
    assert execution.state == "FAILED"
    assert any("production's policy changed since this plan was made" in m
               for m in execution.messages())
    assert ("company.team", "hello") not in fake.current()


def test_a_policy_no_admin_sealed_is_refused(production):
    # the record seals "no policy": one a flow stores is not applied (its tags rule, its
    # state namespace...), it refuses the run
    fake, repo, emulator = production
    assert _record(fake).policy == "none"
    _put_kv(fake, "kestra_promote_policy", "state_namespace: elsewhere\n")
    execution = emulator.execute({"mode": "apply"})
    assert execution.state == "FAILED"
    assert ("company.team", "hello") not in fake.current()
    assert ("main", "elsewhere") not in fake.kv


def test_an_earlier_sealed_revision_of_the_flow_is_refused(production, tmp_path):
    # an earlier revision passes the seal, but took every `kestra_promote/**` at any depth
    fake, repo, emulator = production
    current = (ROOT / "flows/prod/promote.yml").read_text()
    now = settings.FLOWS_GENERATION
    earlier = current.replace(f'KP_FLOWS_GENERATION: "{now}"', f'KP_FLOWS_GENERATION: "{int(now) - 1}"')
    earlier = earlier.replace("- /kestra_promote/**", "- kestra_promote/**")
    assert earlier != current
    path = tmp_path / "promote-earlier.yml"
    path.write_text(earlier)
    with fake._lock:
        fake.files[("main", "system")]["/repo/kestra_promote/evil.yml"] = \
            flow_yaml("company.team", "evil").encode()
    previous = Emulator(path, SECRET_VALUES, emulator.kv, emulator.namespace_files,
                        emulator.workspace, envs=emulator.envs)
    execution = previous.execute({"mode": "apply"})
    assert _failed_with(execution, "this is not the current revision of the promotion flows")
    assert ("company.team", "evil") not in fake.current()


# When a flow of flows/prod/ changes, an earlier revision must no longer run the package:
# raise FLOWS_GENERATION (kestra_task/settings.py) and the KP_FLOWS_GENERATION literals of the
# flows together, then record the flows' new fingerprints here.
FLOWS_FINGERPRINT = {
    "2": {"promote.yml": "c482b59ea6d4a4c88a4fcdcc6c2beaecbac1af458991bbbed6748fe72ab39b3b", "promote-check.yml": "11d35b814aa5ac0b59006f648e2d9e6d5faeb966f475b68b2f2edd06bb00cf67"},
}


def test_the_flows_generation_follows_every_change_of_the_flows():
    import hashlib

    generation = settings.FLOWS_GENERATION
    found = {name: hashlib.sha256((ROOT / "flows/prod" / name).read_bytes()).hexdigest()
             for name in ("promote.yml", "promote-check.yml")}
    assert FLOWS_FINGERPRINT.get(generation) == found, (
        "flows/prod changed: raise FLOWS_GENERATION and the flows' KP_FLOWS_GENERATION, and "
        f"record {found}")
    for name in found:
        text = (ROOT / "flows/prod" / name).read_text()
        literals = set(re.findall(r'KP_FLOWS_GENERATION: "([^"]*)"', text))
        assert literals == {generation}, name


# -- what the admin's commands seal -----------------------------------------------------------

REPO = "promote_repo_url=https://git.example.com/f.git"


def _sealed_with_policy(target, tmp_path) -> str:
    fake = target.fake
    assert run_cli("bootstrap", "--set", REPO, "--set", "promote_approval=required",
                   env=target.env).code == 0
    policy = tmp_path / "policy.yml"
    policy.write_text("max_deletions: 0\n")
    done = run_cli("policy", "set", str(policy),
                   env={**target.env, "KESTRA_PROMOTE_SEAL": _record(fake).seal})
    assert done.code == 0, done.err
    return _record(fake).seal


def test_starting_over_does_not_seal_a_policy_a_flow_wrote(target, tmp_path):
    from kestra_promote.gates.policy import digest_of

    fake = target.fake
    seal_now = _sealed_with_policy(target, tmp_path)
    _put_kv(fake, seal.RECORD_KEY, "junk")
    _put_kv(fake, "kestra_promote_policy", "max_deletions: 5000\n")
    refused = run_cli("bootstrap", env={**target.env, "KESTRA_PROMOTE_SEAL": seal_now})
    assert refused.code == 1 and "--reset-settings" in refused.err
    done = run_cli("bootstrap", "--reset-settings", "--set", REPO, env=target.env)
    assert done.code == 0, done.err
    assert _record(fake).policy == "none" != digest_of("max_deletions: 5000\n")
    named = run_cli("bootstrap", "--reset-settings", "--set", REPO,
                    env={**target.env, "KESTRA_PROMOTE_POLICY_DIGEST": digest_of(
                        "max_deletions: 5000\n")})
    assert named.code == 0 and _record(fake).policy == digest_of("max_deletions: 5000\n")


def test_a_deleted_record_is_not_silently_started_over(target, tmp_path):
    fake = target.fake
    seal_now = _sealed_with_policy(target, tmp_path)
    with fake._lock:
        del fake.kv[("main", "system")][seal.RECORD_KEY]
    done = run_cli("bootstrap", "--set", "promote_branch=release",
                   env={**target.env, "KESTRA_PROMOTE_SEAL": seal_now})
    assert done.code == 1 and "is gone, though production's promotion is installed" in done.err


def test_the_seal_none_vouches_for_nothing(target, listener, tmp_path):
    fake = target.fake
    other, url = listener
    assert run_cli("bootstrap", "--set", REPO, env=target.env).code == 0
    _put_kv(fake, seal.RECORD_KEY, dataclasses.replace(_record(fake), settings={
        **_record(fake).settings, "promote_target_url": url}).text())
    policy = tmp_path / "policy.yml"
    policy.write_text("max_deletions: 5\n")
    for argv in (("bootstrap", "--set", "promote_branch=release"),
                 ("policy", "set", str(policy))):
        done = run_cli(*argv, env={**target.env, "KESTRA_PROMOTE_SEAL": "none"})
        assert done.code == 1 and "'none' vouches for nothing" in done.err, argv


def test_no_login_is_printed_or_sealed(target):
    _put_kv(target.fake, "promote_repo_url", "https://oauth2:glpat-SECRET123@git.example.com/f.git")
    for argv in (("bootstrap",), ("bootstrap", "--migrate-settings")):
        done = run_cli(*argv, env=target.env)
        assert done.code == 1 and "glpat-SECRET123" not in done.out + done.err, argv
    review = run_cli("bootstrap", "--reset-settings", "--set", REPO, "--set",
                     "promote_review_api=https://bot:ghp_SECRET456@gitea.example.com/api/v1",
                     env=target.env)
    assert review.code == 1 and "promote_review_api holds a login" in review.err
    assert "ghp_SECRET456" not in review.out + review.err
    assert redact_url("https://a:b@h.example.com/x") == "https://***@h.example.com/x"


def test_policy_show_never_offers_the_stored_records_digest_as_the_seal(target, listener):
    fake = target.fake
    other, url = listener
    assert run_cli("bootstrap", "--set", REPO, env=target.env).code == 0
    _put_kv(fake, seal.RECORD_KEY, dataclasses.replace(_record(fake), settings={
        **_record(fake).settings, "promote_target_url": url}).text())
    shown = run_cli("policy", "show", env=target.env)
    assert "(unverified: any flow can write the record" in shown.out
    assert "must be this" not in shown.out


WATCHER = ("id: promotion-alerts\nnamespace: system\ndescription: \"pages when a run labelled "
           "kestra-promote.role: promotion fails\"\ntasks:\n  - id: page\n"
           "    type: io.kestra.plugin.core.log.Log\n    message: a promotion failed\n")


def test_bootstrap_never_deletes_a_flow_whatever_its_inventory_says(target):
    from kestra_promote.models import FlowKey, Managed
    from kestra_promote.target import store
    from kestra_promote.target.inventory import kv_key

    fake = target.fake
    assert run_cli("bootstrap", "--set", REPO, env=target.env).code == 0
    with target.client() as client:
        client.create_flow(WATCHER)
        inventory = store.read(client, "system", kv_key("kestra-promote-prod"))
        store.write(client, "system", dataclasses.replace(inventory, flows={
            **inventory.flows, FlowKey("system", "promotion-alerts"): Managed("sha256:0", None)}))
    again = run_cli("bootstrap", env={**target.env, "KESTRA_PROMOTE_SEAL": _record(fake).seal})
    assert again.code == 1 and "system/promotion-alerts, which it never installs" in again.err
    assert ("system", "promotion-alerts") in fake.current()


def test_bootstrap_removes_a_file_a_flow_dropped_into_the_package(production):
    fake, repo, emulator = production
    with fake._lock:
        fake.files[("main", "system")]["/kestra_promote/zz_extra.py"] = b"# dropped by a flow\n"
    assert emulator.execute().state == "FAILED"  # the package is not the sealed one
    again = run_cli("bootstrap", "--url", _record(fake).settings["promote_target_url"],
                    "--username", FAKE_USER, "--password", FAKE_PASSWORD,
                    env={"KESTRA_PROMOTE_SEAL": _record(fake).seal})
    assert again.code == 0, again.err
    assert "/kestra_promote/zz_extra.py" not in fake.files[("main", "system")]
    execution = emulator.execute({"mode": "apply"})
    assert execution.state == "SUCCESS", execution.logs


def test_a_deleted_record_is_not_silently_started_over_without_the_seal_either(target):
    fake = target.fake
    assert run_cli("bootstrap", "--set", REPO, "--set", "promote_approval=required",
                   env=target.env).code == 0
    with fake._lock:
        del fake.kv[("main", "system")][seal.RECORD_KEY]  # a kv.Delete of any flow
    done = run_cli("bootstrap", "--set", REPO, "--set", "promote_branch=release", env=target.env)
    assert done.code == 1 and "is gone, though production's promotion is installed" in done.err


def test_a_dev_inventory_a_flow_wrote_is_named_so_production_can_recover(target):
    from kestra_promote.target.inventory import kv_key

    fake = target.fake
    assert run_cli("bootstrap", "--set", REPO, env=target.env).code == 0
    entries = fake.kv[("main", "system")]
    with fake._lock:
        entries[kv_key("kestra-promote-dev")] = dict(entries[kv_key("kestra-promote-prod")])
    refused = run_cli("bootstrap", "--reset-settings", "--set", REPO, env=target.env)
    assert refused.code == 1 and kv_key("kestra-promote-dev") in refused.err


@pytest.mark.parametrize("url", ["https://bot:pa/ss@git.example.com/f.git",
                                 "https://git.example.com/f.git?private_token=glpat-SECRET",
                                 "HTTPS://bot:ghp_SECRET@git.example.com/f.git"])
def test_logins_in_any_url_form_are_refused_and_never_shown(url):
    assert seal.check_settings({"promote_repo_url": url}) is not None
    assert "SECRET" not in redact_url(url) and "pa/ss" not in redact_url(url)
    assert seal.check_settings({"promote_repo_url": "https://git.example.com/f.git?ref=main"}) \
        is None


def test_policy_show_never_prints_a_login_of_an_older_record(target):
    record = seal.Record({"promote_repo_url": "https://git.example.com/f.git",
                          "promote_review_api": "https://bot:ghp_SECRET@gitea.example.com/api"},
                         "none", "sha256:0")
    _put_kv(target.fake, seal.RECORD_KEY, record.text())
    for fmt in ("text", "json", "markdown"):
        shown = run_cli("policy", "show", "--format", fmt, env=target.env)
        assert "ghp_SECRET" not in shown.out + shown.err, fmt


def test_the_policy_named_for_a_new_record_is_a_digest_or_none(target):
    done = run_cli("bootstrap", "--reset-settings", "--set", REPO,
                   env={**target.env, "KESTRA_PROMOTE_POLICY_DIGEST": "sha256:abc"})
    assert done.code == 1 and "is not a policy's digest" in done.err
    assert run_cli("bootstrap", "--set", REPO, env=target.env).code == 0
    other = run_cli("bootstrap", env={**target.env, "KESTRA_PROMOTE_SEAL": _record(target.fake).seal,
                                      "KESTRA_PROMOTE_POLICY_DIGEST": "sha256:" + "a" * 64})
    assert other.code == 0 and "is not the sealed policy" in other.out
    assert _record(target.fake).policy == "none"


def test_bootstrap_says_which_stray_files_it_removes(production):
    fake, repo, emulator = production
    with fake._lock:
        fake.files[("main", "system")]["/kestra_promote/zz_extra.py"] = b"# dropped\n"
    planned = run_cli("bootstrap", "--plan-only", "--url",
                      _record(fake).settings["promote_target_url"], "--username", FAKE_USER,
                      "--password", FAKE_PASSWORD, env={"KESTRA_PROMOTE_SEAL": _record(fake).seal})
    assert "- remove    system:/kestra_promote/zz_extra.py" in planned.out
    assert "/kestra_promote/zz_extra.py" in fake.files[("main", "system")]  # plan only

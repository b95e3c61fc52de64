"""`kestra-promote preview`: a pull request's flows under namespaces of their own on a development
instance, triggers off, and nothing outside them touched; on Kestra 2.0 and 1.3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import FAKE_PASSWORD, FAKE_USER, GitRepo, flow_yaml, run_cli
from fake_kestra import FakeKestra, serve
from kestra_promote.gates.policy import POLICY_KEY

INVENTORY = "kestra-promote.preview-42"

CALLER = """\
id: caller
namespace: company.team
# calls the worker, uploads to a shared namespace, and calls production's billing
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: company.team
    flowId: worker
  - id: upload
    type: io.kestra.plugin.core.namespace.UploadFiles
    namespace: company.shared
    filesMap:
      x.txt: hello
  - id: bill
    type: io.kestra.plugin.core.flow.Subflow
    namespace: billing
    flowId: invoice
  - id: dynamic
    type: io.kestra.plugin.core.namespace.DownloadFiles
    namespace: "{{ inputs.where }}"
    files: [/x.txt]
triggers:
  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 * * * *"   # every hour
"""

LISTENER = {
    "2": """\
id: listener
namespace: company.team
tasks:
  - {id: log, type: io.kestra.plugin.core.log.Log, message: done}
triggers:
  - id: after-caller
    type: io.kestra.plugin.core.trigger.Flow
    dependsOn:
      - namespace: company.team
        flowId: caller
""",
    "1": """\
id: listener
namespace: company.team
tasks:
  - {id: log, type: io.kestra.plugin.core.log.Log, message: done}
triggers:
  - id: after-caller
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: p
      flows:
        - namespace: company.team
          flowId: caller
""",
}


@pytest.fixture(params=["2.0.3", "1.3.19"])
def kestra(request: pytest.FixtureRequest) -> Iterator[tuple[FakeKestra, dict[str, str]]]:
    fake = FakeKestra(version=request.param)
    with serve(fake) as url:
        yield fake, {"KESTRA_URL": url, "KESTRA_USERNAME": FAKE_USER,
                     "KESTRA_PASSWORD": FAKE_PASSWORD}


def _production(fake: FakeKestra) -> None:
    """What the development instance runs already, in the namespaces the previews name."""
    fake.seed_flow(flow_yaml("company.team", "caller", "the instance's own"))
    fake.seed_flow(flow_yaml("billing", "invoice"))
    fake.files[("main", "company.team")] = {"/lib.py": b"print('the instance')\n"}
    fake.kv[("main", "company.team")] = {"k": {
        "value": "v", "expires": None, "revision": 1, "description": None,
        "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z"}}


def _outside(fake: FakeKestra, parent: str = "preview.") -> dict[str, Any]:
    """Everything the fake holds that is not a preview's: what no preview may touch."""
    return {
        "flows": {k: v for k, v in fake.current().items() if not k[0].startswith(parent)},
        "files": {k: dict(v) for k, v in fake.files.items() if not k[1].startswith(parent)},
        "kv": {k: kept for k, v in fake.kv.items()
               if (kept := {name: entry["value"] for name, entry in v.items()
                            if not name.startswith("kestra-promote.preview-")
                            and name != "kestra-promote-lock"})},
    }


def _source(repo: GitRepo, major: str, settings: str = "name: team\n") -> None:
    repo.write("kestra-promote.yml", settings + "namespace_files:\n  - source: files/*\n")
    repo.write("flows/caller.yml", CALLER)
    repo.write("flows/worker.yml", flow_yaml("company.team", "worker"))
    repo.write("flows/listener.yml", LISTENER[major])
    repo.write("files/company.team/lib.py", "print('preview')\n")
    repo.commit()


def test_up_update_list_and_down(kestra: tuple[FakeKestra, dict[str, str]], repo: GitRepo):
    fake, env = kestra
    major = fake.version.split(".")[0]
    _production(fake)
    _source(repo, major)
    before = _outside(fake)

    up = run_cli("preview", "up", str(repo.path), "--id", "42", env=env)
    assert up.code == 0, up.out + up.err
    assert "Preview 42 is up under preview.42" in up.out
    flows = fake.current()
    caller = flows[("preview.42.company.team", "caller")]
    # renamed where it names the source's namespaces, the trigger off, every other byte kept
    assert caller == CALLER.replace("namespace: company.", "namespace: preview.42.company.").replace(
        '    cron: "0 * * * *"   # every hour\n',
        '    cron: "0 * * * *"   # every hour\n    disabled: true\n')
    listener = flows[("preview.42.company.team", "listener")]
    assert "- namespace: preview.42.company.team\n" in listener
    assert listener.endswith("flowId: caller\n    disabled: true\n")
    assert ("preview.42.company.team", "worker") in flows
    assert fake.files[("main", "preview.42.company.team")] == {"/lib.py": b"print('preview')\n"}
    # what a run started by hand would reach outside the preview is reported
    assert "'billing', outside the preview (preview.42)" in up.out
    assert "through an expression: not rewritten" in up.out
    assert _outside(fake) == before
    stored = fake.kv[("main", "system")][INVENTORY]["value"]
    assert stored["name"] == "preview-42" and stored["history"][-1]["preview"] == "preview.42"

    # a new commit of the pull request: the worker is gone, the caller changed
    (repo.path / "flows/worker.yml").unlink()
    repo.write("flows/caller.yml", CALLER.replace("flowId: worker\n", "flowId: listener\n"))
    commit = repo.commit()
    again = run_cli("preview", "up", str(repo.path), "--id", "42", env=env)
    assert again.code == 0, again.out + again.err
    flows = fake.current()
    assert ("preview.42.company.team", "worker") not in flows
    assert "flowId: listener" in flows[("preview.42.company.team", "caller")]
    assert _outside(fake) == before

    listed = run_cli("preview", "list", env=env)
    assert listed.code == 0
    row = listed.out.splitlines()[1].split()
    assert row[:4] == ["42", "0m", commit[:12], "preview.42"]
    data = json.loads(run_cli("preview", "list", "--format", "json", env=env).out)
    (shown,) = data["previews"]
    assert shown["id"] == "42" and shown["commit"] == commit and shown["namespace"] == "preview.42"
    assert shown["flows"] == 2 and shown["files"] == 1 and shown["age_seconds"] < 60

    down = run_cli("preview", "down", "--id", "42", env=env)
    assert down.code == 0, down.out + down.err
    assert "Preview 42 is down: 3 object(s) deleted" in down.out
    assert not [k for k in fake.current() if k[0].startswith("preview.")]
    assert not fake.files.get(("main", "preview.42.company.team"))
    assert INVENTORY not in fake.kv.get(("main", "system"), {})
    assert _outside(fake) == before
    twice = run_cli("preview", "down", "--id", "42", env=env)
    assert twice.code == 0 and "No preview 42 on this target" in twice.out
    assert "No previews" in run_cli("preview", "list", env=env).out


def test_settings_pointing_elsewhere_stay_inside_the_preview(kestra, repo: GitRepo):
    fake, env = kestra
    major = fake.version.split(".")[0]
    _production(fake)
    # production's settings: renamed and filtered to namespaces the instance already has
    _source(repo, major, "name: team\nnamespaces:\n  include: [billing, company.*]\n"
                         "  rename:\n    company.team: billing\n")
    before = _outside(fake, "pr.")
    up = run_cli("preview", "up", str(repo.path), "--id", "pr-7", "--prefix", "pr", env=env)
    assert up.code == 0, up.out + up.err
    assert ("pr.pr-7.billing", "caller") in fake.current()
    assert fake.files[("main", "pr.pr-7.billing")] == {"/lib.py": b"print('preview')\n"}
    assert _outside(fake, "pr.") == before
    # a preview down with another prefix sees objects outside it: refused, nothing deleted
    wrong = run_cli("preview", "down", "--id", "pr-7", env=env)
    assert wrong.code == 1 and "outside preview.pr-7" in wrong.err
    assert ("pr.pr-7.billing", "caller") in fake.current()
    assert run_cli("preview", "down", "--id", "pr-7", "--prefix", "pr", env=env).code == 0
    assert _outside(fake, "pr.") == before
    assert not [k for k in fake.current() if k[0].startswith("pr.")]


def test_an_edited_inventory_never_deletes_outside_the_preview(kestra, repo: GitRepo):
    fake, env = kestra
    _production(fake)
    _source(repo, fake.version.split(".")[0])
    assert run_cli("preview", "up", str(repo.path), "--id", "42", env=env).code == 0
    before = _outside(fake)
    # any flow of the instance can write the KV store: it names a flow outside the preview
    inventory = fake.kv[("main", "system")][INVENTORY]["value"]
    victim = "company.team/caller"
    inventory["flows"][victim] = inventory["flows"]["preview.42.company.team/caller"]
    up = run_cli("preview", "up", str(repo.path), "--id", "42", env=env)
    assert up.code == 1
    assert "a preview writes and deletes only under preview.42: delete company.team/caller" \
        in up.out + up.err
    down = run_cli("preview", "down", "--id", "42", env=env)
    assert down.code == 1 and "company.team/caller: outside the preview's namespaces" in down.err
    assert _outside(fake) == before
    assert ("preview.42.company.team", "caller") in fake.current()


def test_the_instances_policy_can_forbid_previews(kestra, repo: GitRepo, tmp_path: Path):
    fake, env = kestra
    _source(repo, fake.version.split(".")[0])
    policy = tmp_path / "policy.yml"
    policy.write_text("previews: false\n", encoding="utf-8")
    assert run_cli("policy", "set", str(policy), env=env).code == 0
    assert "previews: false" in run_cli("policy", "show", env=env).out
    writes = len(fake.writes())
    up = run_cli("preview", "up", str(repo.path), "--id", "42", env=env)
    assert up.code == 1
    assert "forbids previews (previews: false, in KV system/" + POLICY_KEY in up.err
    assert len(fake.writes()) == writes
    policy.write_text("previews: true\n", encoding="utf-8")
    assert run_cli("policy", "set", str(policy), env=env).code == 0
    assert run_cli("preview", "up", str(repo.path), "--id", "42", env=env).code == 0


def test_stale_previews_are_removed_by_age(kestra, repo: GitRepo):
    fake, env = kestra
    _source(repo, fake.version.split(".")[0])
    for preview_id in ("1", "2"):
        assert run_cli("preview", "up", str(repo.path), "--id", preview_id, env=env).code == 0
    # preview 1 was last applied ten days ago
    old = fake.kv[("main", "system")]["kestra-promote.preview-1"]["value"]
    old["history"][-1]["time"] = "2020-01-01T00:00:00+00:00"
    assert run_cli("preview", "down", "--older-than", "7d", env=env).code == 0
    namespaces = {ns for ns, _ in fake.current()}
    assert "preview.2.company.team" in namespaces and "preview.1.company.team" not in namespaces
    listed = json.loads(run_cli("preview", "list", "--format", "json", env=env).out)
    assert [p["id"] for p in listed["previews"]] == ["2"]
    assert "No preview to remove" in run_cli("preview", "down", "--older-than", "7d",
                                             env=env).out


@pytest.mark.parametrize("bad", ["PR-1", "a.b", "-1", "x" * 41, "feature/x"])
def test_a_bad_preview_id_is_named(bad: str):
    done = run_cli("preview", "down", "--id", bad, "--url", "http://127.0.0.1:9")
    assert done.code == 1 and f"--id {bad!r} is not a preview id" in done.err
    assert "Traceback" not in done.err


def test_another_repository_cannot_take_over_a_preview(kestra, repo: GitRepo, tmp_path: Path):
    fake, env = kestra
    _source(repo, fake.version.split(".")[0])
    repo.git("remote", "add", "origin", "https://git.example.com/team/flows.git")
    assert run_cli("preview", "up", str(repo.path), "--id", "42", env=env).code == 0
    other = GitRepo(tmp_path / "other")
    other.write("a.yml", flow_yaml("web.site", "a"))
    other.commit()
    other.git("remote", "add", "origin", "https://git.example.com/web/flows.git")
    taken = run_cli("preview", "up", str(other.path), "--id", "42", env=env)
    assert taken.code == 1
    assert "preview '42' is held by another repository (git.example.com/team/flows)" \
        in taken.out and "--adopt" not in taken.out + taken.err
    assert ("preview.42.web.site", "a") not in fake.current()
    assert run_cli("preview", "up", str(other.path), "--id", "web-42", env=env).code == 0

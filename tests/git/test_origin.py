"""Where a source comes from (the inventory's origin) and whether it is exactly its commit."""

from __future__ import annotations

import json

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli
from kestra_promote.git.origin import normalize_remote, origin, same_origin, uncommitted


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://github.com/acme/flows.git", "github.com/acme/flows"),
        ("https://bot:t0ken@GitHub.com:443/acme/flows/", "github.com/acme/flows"),
        ("git@github.com:acme/flows.git", "github.com/acme/flows"),
        ("ssh://git@github.com:22/acme/flows", "github.com/acme/flows"),
        ("file:///srv/git/flows.git", "file:/srv/git/flows"),
        ("/srv/git/flows.git", "file:/srv/git/flows"),
        ("https://ci-bot:t0ken@[fd00::10]:3000/acme/flows.git", "[fd00::10]/acme/flows"),
        ("https://us@r:t0ken@host/acme/flows", "host/acme/flows"),
        ("https://u:t0ken@host:/acme/flows", "host/acme/flows"),
        ("https://u:s3c/t0ken@host/acme/flows", "host/acme/flows"),
        ("https://host/acme/flows?private_token=t0ken", "host/acme/flows"),
    ],
)
def test_one_repository_one_origin_whatever_the_url(url: str, normal: str):
    assert normalize_remote(url) == normal
    assert "t0ken" not in normalize_remote(url)


def test_one_repository_under_two_host_names_is_one_origin():
    # the demo stack: production clones http://gitea:3000/..., a person http://localhost:3000/...
    assert same_origin(normalize_remote("http://gitea:3000/kestra/flows.git"),
                       normalize_remote("http://localhost:3000/kestra/Flows"))
    assert not same_origin("host/kestra/flows", "host/kestra/other")
    assert not same_origin("host/kestra/flows:prod", "host/kestra/flows:dev")


def test_the_origin_names_the_folder_inside_the_repository(repo: GitRepo, tmp_path):
    repo.git("remote", "add", "origin", "https://git.example.com/acme/flows.git")
    (repo.path / "prod").mkdir()
    assert origin(repo.path) == "git.example.com/acme/flows"
    assert origin(repo.path / "prod") == "git.example.com/acme/flows:prod"
    assert origin(tmp_path / "elsewhere") is None  # not a Git checkout: not checked


def test_files_that_differ_from_the_commit(repo: GitRepo):
    repo.write(".gitignore", "ignored.yml\n")
    repo.write("a.yml", "id: a\n")
    repo.write("b.yml", "id: b\n")
    repo.commit()
    assert uncommitted(repo.path, ["a.yml", "b.yml"]) == []
    repo.write("a.yml", "id: a\n# edited\n")
    repo.write("new.yml", "id: n\n")
    repo.write("ignored.yml", "id: i\n")
    assert uncommitted(repo.path, ["a.yml", "b.yml", "new.yml", "ignored.yml"]) == [
        "a.yml", "ignored.yml", "new.yml"]


def _repo(tmp_path, name: str, remote: str) -> GitRepo:
    repo = GitRepo(tmp_path / name)
    repo.git("remote", "add", "origin", remote)
    repo.write(f"{name}.yml", flow_yaml("company.team", name))
    repo.commit()
    return repo


@pytest.mark.fake_only
def test_two_repositories_cannot_share_an_inventory_unless_adopted(tmp_path, target: Target):
    first = _repo(tmp_path, "first", "https://git.example.com/acme/first.git")
    second = _repo(tmp_path, "second", "git@git.example.com:acme/second.git")
    assert run_cli("apply", str(first.path), "--prune", env=target.env).code == 0
    assert target.fake is not None
    writes = len(target.fake.writes())
    refused = run_cli("apply", str(second.path), "--prune", env=target.env)
    assert refused.code == 1
    assert ("the inventory kestra-promote.default holds objects promoted from "
            "git.example.com/acme/first, and this run promotes git.example.com/acme/second: give "
            "this repository its own `name` in kestra-promote.yml (or --name), or pass --adopt to "
            "take these objects over") in refused.err
    assert len(target.fake.writes()) == writes  # the first repository's flow was not pruned
    adopted = run_cli("apply", str(second.path), "--adopt", env=target.env)
    assert adopted.code == 0, adopted.err
    with target.client() as client:
        assert client.kv_get("system", "kestra-promote.default")["origin"] == \
            "git.example.com/acme/second"
    # a clone of the same repository over another protocol is the same origin
    again = GitRepo(tmp_path / "again")
    again.git("pull", "-q", str(second.path), "main")
    again.git("remote", "add", "origin", "https://git.example.com/acme/second")
    assert run_cli("apply", str(again.path), env=target.env).code == 0


def test_a_deleted_flow_or_a_new_ignore_file_is_a_difference_too(repo: GitRepo):
    repo.write("flows/a.yml", "id: a\n")
    repo.write("flows/b.yml", "id: b\n")
    repo.write("flows/notes.txt", "x\n")
    repo.commit()
    (repo.path / "flows/b.yml").unlink()
    repo.write(".kestraignore", "flows/a.yml\n")
    repo.write("flows/todo.txt", "not a flow\n")
    scopes = [("flows", (".yml", ".yaml")), ("kestra-promote.yml", ()), (".kestraignore", ())]
    assert uncommitted(repo.path, [], scopes) == [".kestraignore", "flows/b.yml"]


@pytest.mark.fake_only
def test_uncommitted_files_are_refused_unless_allowed_and_then_recorded(repo: GitRepo,
                                                                      target: Target):
    repo.write("a.yml", flow_yaml("company.team", "a"))
    repo.commit()
    repo.write("a.yml", flow_yaml("company.team", "a", "edited, not committed"))
    repo.write("b.yml", flow_yaml("company.team", "b"))
    refused = run_cli("apply", str(repo.path), env=target.env)
    assert refused.code == 1
    assert "2 file(s) the promotion reads differ from commit" in refused.err
    assert "(a.yml, b.yml): commit them, or pass --allow-dirty" in refused.err
    allowed = run_cli("apply", str(repo.path), "--allow-dirty", env=target.env)
    assert allowed.code == 0, allowed.err
    assert "promoting 2 uncommitted file(s) (a.yml, b.yml)" in allowed.err
    commit = repo.git("rev-parse", "HEAD")[:12]
    # the final line never claims the target matches the commit alone
    assert allowed.out.rstrip().endswith(
        f"The target matches Git at {commit} plus uncommitted changes.")
    with target.client() as client:
        history = client.kv_get("system", "kestra-promote.default")["history"]
    assert history[-1]["dirty"] is True
    shown = run_cli("history", str(repo.path), env=target.env).out.splitlines()
    assert shown[1].split()[1] == f"{commit}+dirty"
    table = run_cli("history", str(repo.path), "--format", "markdown", env=target.env).out
    assert f"| `{commit}+dirty` |" in table
    assert f"Last promotion: {commit}+dirty at " in run_cli("status", str(repo.path),
                                                            env=target.env).out
    repo.write("c.yml", flow_yaml("company.team", "c"))
    as_json = run_cli("apply", str(repo.path), "--allow-dirty", "--format", "json",
                      env=target.env)
    assert json.loads(as_json.out)["dirty"] is True


@pytest.mark.fake_only
def test_a_saved_plan_is_checked_against_the_commit_when_it_is_made(repo: GitRepo,
                                                                   target: Target, tmp_path):
    repo.write("a.yml", flow_yaml("company.team", "a"))
    repo.commit()
    repo.write("a.yml", flow_yaml("company.team", "a", "NOT-COMMITTED"))
    saved = tmp_path / "plan.json"
    refused = run_cli("plan", str(repo.path), "--out", str(saved), env=target.env)
    assert refused.code == 1 and "--allow-dirty" in refused.err and not saved.exists()
    assert run_cli("plan", str(repo.path), "--out", str(saved), "--allow-dirty",
                   env=target.env).code == 0
    assert run_cli("apply", str(saved), env=target.env).code == 0
    with target.client() as client:
        assert client.kv_get("system", "kestra-promote.default")["history"][-1]["dirty"] is True

"""commit-to-git cannot write the branch production follows: it commits under a branch prefix
(default kestra-dev/), and refuses production's branch. Emulated runs of both versions' flows,
against a real Git repository; the flows stay valid on Kestra 1.3 and 2.0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, GitRepo, flow_yaml
from fake_kestra import rules
from kestra_flows.emulator import Emulator, TaskFailed

SECRETS = {"KESTRA_PROMOTE_GIT_USERNAME": "dev-committer", "KESTRA_PROMOTE_GIT_TOKEN": "t",
           "KESTRA_PROMOTE_USERNAME": "admin@example.com", "KESTRA_PROMOTE_PASSWORD": "p"}
FLOWS = {"2.0": ROOT / "flows/dev/commit-to-git.yml", "1.3": ROOT / "flows/dev-1.3/commit-to-git.yml"}


def _run(tmp_path: Path, version: str, inputs: dict[str, Any],
         settings: dict[str, str] | None = None) -> tuple[Any, GitRepo]:
    repo = GitRepo(tmp_path / "flows-repo")
    repo.write("README.md", "flows\n")
    repo.commit("production's branch")
    kv = {"commit_repo_url": str(repo.path), **(settings or {})}

    def read_kv(namespace: str, key: str) -> Any:
        return kv[key]

    (tmp_path / "runs").mkdir()
    emulator = Emulator(FLOWS[version], SECRETS, read_kv, lambda ns: {},
                        tmp_path / "runs", flows=lambda ns: {"orders": flow_yaml(ns, "orders")})
    # the namespaces task lists this instance's namespaces: here, the one given
    emulator._commands = _namespaces  # type: ignore[method-assign]
    try:
        return emulator.execute({"namespace": "dev.company", **inputs}), repo
    finally:
        emulator.cleanup()


def _namespaces(task: dict, execution: Any, workdir: Any) -> None:
    execution.outputs[task["id"]] = {"vars": {"namespaces": [execution.inputs["namespace"]]}}


def _branches(repo: GitRepo) -> list[str]:
    return repo.git("for-each-ref", "--format=%(refname:short)", "refs/heads").split()


def _main(repo: GitRepo) -> str:
    default = repo.git("rev-parse", "--abbrev-ref", "HEAD")
    return repo.git("log", "--format=%s", default)


@pytest.mark.parametrize("version", ["2.0", "1.3"])
def test_the_production_branch_is_out_of_reach(tmp_path: Path, version: str):
    # the reproduction: `branch: main` committed to the followed branch, applied unreviewed
    execution, repo = _run(tmp_path, version, {"branch": "main"})
    assert execution.state == "SUCCESS", execution.logs
    assert "kestra-dev/main" in _branches(repo)
    assert _main(repo) == "production's branch"  # nothing landed on it


@pytest.mark.parametrize("version", ["2.0", "1.3"])
@pytest.mark.parametrize("branch", ["team/orders-fix", "v1.2", "refs/heads/main"])
def test_a_branch_under_the_prefix_gets_the_commit(tmp_path: Path, version: str, branch: str):
    execution, repo = _run(tmp_path, version, {"branch": branch})
    assert execution.state == "SUCCESS", execution.logs
    assert f"kestra-dev/{branch}" in _branches(repo)
    assert repo.git("show", f"kestra-dev/{branch}:flows/dev.company/orders.yml")
    assert _main(repo) == "production's branch"


@pytest.mark.parametrize("branch", [
    "../main", "/main", "x/../../main", "a//b", "trailing/", "-x", "x y",
    "a..b", ".hidden", "", "main:main",
])
def test_the_input_refuses_names_that_escape_the_prefix(tmp_path: Path, branch: str):
    # Kestra refuses the execution itself (no execution is created): invalid input
    with pytest.raises(TaskFailed, match="it must match the pattern"):
        _run(tmp_path, "2.0", {"branch": branch})
    repo = GitRepo(tmp_path / "flows-repo")
    assert _branches(repo) == ["main"]


@pytest.mark.parametrize("version", ["2.0", "1.3"])
@pytest.mark.parametrize("prefix", ["", "kestra-dev", "ma"])
def test_a_prefix_that_is_not_a_folder_of_branches_is_refused(tmp_path: Path, version: str,
                                                              prefix: str):
    # a development flow can rewrite the KV setting: "ma" + "in" would be production's branch
    execution, repo = _run(tmp_path, version, {"branch": "in"},
                           {"commit_branch_prefix": prefix})
    assert execution.state == "FAILED"
    assert execution.states.get("check_branch") == "FAILED"
    assert "refused: the branch" in " ".join(execution.messages("ERROR"))
    assert "push_flows" not in execution.states
    assert _main(repo) == "production's branch"


@pytest.mark.parametrize("version", ["2.0", "1.3"])
def test_the_production_branch_is_refused_even_under_the_prefix(tmp_path: Path, version: str):
    execution, repo = _run(tmp_path, version, {"branch": "release"},
                           {"commit_branch_prefix": "deploy/",
                            "commit_production_branch": "deploy/release"})
    assert execution.state == "FAILED"
    assert "'deploy/release' is production's branch" in " ".join(execution.messages("ERROR"))
    assert "deploy/release" not in _branches(repo)


def test_another_prefix_is_used_when_set(tmp_path: Path):
    execution, repo = _run(tmp_path, "2.0", {"branch": "flows"},
                           {"commit_branch_prefix": "review/"})
    assert execution.state == "SUCCESS", execution.logs
    assert "review/flows" in _branches(repo)


@pytest.mark.parametrize(("version", "path"), [("2.0.3", FLOWS["2.0"]), ("1.3.19", FLOWS["1.3"])])
def test_both_flows_stay_valid_and_push_only_to_the_checked_branch(version: str, path: Path):
    text = path.read_text()
    flow, errors = rules.check(text, version=version)
    assert errors == [] and flow is not None
    data = yaml.safe_load(text)
    [spec] = [i for i in data["inputs"] if i["id"] == "branch"]
    assert spec["validator"].startswith("^") and spec["validator"].endswith("$")
    pushes = [t for t in _all_tasks(data) if t["type"].startswith("io.kestra.plugin.git.Push")]
    assert len(pushes) == 2
    assert {t["branch"] for t in pushes} == {
        "{{ outputs.branch_prefix.value }}{{ inputs.branch }}"}
    ids = [t["id"] for t in data["tasks"]]
    assert ids.index("check_branch") < ids.index("each_namespace")


def _all_tasks(flow: dict) -> list[dict]:
    found, stack = [], list(flow["tasks"])
    while stack:
        task = stack.pop()
        found.append(task)
        stack.extend(task.get("tasks") or [])
    return found

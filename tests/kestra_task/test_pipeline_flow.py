"""Staging, then production, end to end inside Kestra: each instance's `promote` flow (emulated,
fake Kestra instances) against one repository served over HTTP by Git itself. Staging applies,
verifies, and marks the commit with a tag pushed over Git's HTTP protocol; production's flow
follows those tags and takes that commit and no other. A commit whose smoke flow fails on
staging is rolled back there, byte for byte, and production does not move."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import pytest
from conftest import FAKE_PASSWORD, FAKE_USER, ROOT, GitRepo, flow_yaml, run_cli
from fake_kestra import FakeKestra, serve
from kestra_flows.emulator import Emulator
from kestra_promote.gates import stages
from preview_hook import previewing, production  # noqa: F401 - fixtures
from test_flows import SECRET_VALUES, _policy, _record, server, target_history

PIPELINE = "stages: {pipeline: [staging, production], stage: %s}\n"
CHECKS = "verify:\n  checks:\n    - run: {namespace: company.team, flow: smoke, timeout: 2s}\n"
TAG_1 = "kestra-promote/verified/staging/1"


@contextlib.contextmanager
def _instance(tmp_path: Path, name: str, git_url: str, secrets: dict[str, str],
              branch: str = "main") -> Iterator[tuple[FakeKestra, Emulator]]:
    """A fake Kestra with the promotion bootstrapped, following ``branch`` of ``git_url``."""
    fake = FakeKestra()
    with serve(fake) as url:
        boot = run_cli("bootstrap", "--url", url, "--username", FAKE_USER, "--password",
                       FAKE_PASSWORD, "--set", f"promote_repo_url={git_url}",
                       "--set", f"promote_branch={branch}", "--set", f"promote_target_url={url}")
        assert boot.code == 0, boot.err
        server[id(fake)] = {"kestra_promote_seal": _record(fake).seal}
        emulator = Emulator(ROOT / "flows/prod/promote.yml", secrets,
                            lambda ns, key: fake.kv[("main", ns)][key]["value"],
                            lambda ns: fake.files.get(("main", ns), {}), tmp_path / name,
                            envs=server[id(fake)])
        yield fake, emulator
        emulator.cleanup()


@pytest.fixture
def pipeline(tmp_path: Path, git_http_server):
    """The flows repository (pushed to a Git server over HTTP), staging and production."""
    repo = GitRepo(tmp_path / "work")
    _change(repo, "one")
    git_url = git_http_server.serve(repo.path)
    repo.git("remote", "add", "origin", git_http_server.auth_url())
    secrets = {**SECRET_VALUES, "KESTRA_PROMOTE_GIT_USERNAME": git_http_server.username,
               "KESTRA_PROMOTE_GIT_TOKEN": git_http_server.password}
    with _instance(tmp_path, "staging", git_url, secrets) as staging, \
            _instance(tmp_path, "production", git_url, secrets) as production:
        _policy(staging[0], PIPELINE % "staging" + CHECKS)
        _policy(production[0], PIPELINE % "production")
        yield repo, git_http_server, staging, production


def _change(repo: GitRepo, message: str) -> str:
    repo.write("kestra-promote.yml", "name: demo\n")
    repo.write("flows/smoke.yml", flow_yaml("company.team", "smoke"))
    repo.write("flows/a.yml", flow_yaml("company.team", "a", message))
    return repo.commit(message)


def _push(repo: GitRepo, message: str) -> str:
    commit = _change(repo, message)
    repo.git("push", "-q", "origin", "main")
    return commit


def _server_tags(git_server) -> dict[str, str]:
    out = git_server.git("flows.git", "for-each-ref", "--format=%(refname:strip=2) %(*objectname)",
                         "refs/tags/")
    return dict(line.split(" ") for line in out.splitlines() if line)


def _flows(fake: FakeKestra) -> dict:
    return {k: v for k, v in fake.current().items() if k[0] == "company.team"}


def _logs(execution) -> str:
    return " ".join(message for _, _, message in execution.logs)


def test_production_takes_the_commit_staging_verified_and_no_other(pipeline):
    repo, git_server, (staging, on_staging), (production, on_production) = pipeline
    one = repo.git("rev-parse", "HEAD")

    applied = on_staging.schedule()
    assert applied.state == "SUCCESS", "\n".join(map(str, applied.logs))
    assert _server_tags(git_server) == {TAG_1: one}  # pushed over HTTP, in pure Python
    message = git_server.git("flows.git", "for-each-ref", "--format=%(contents)",
                             f"refs/tags/{TAG_1}")
    facts = stages.read_evidence(message)
    assert facts["stage"] == "staging" and facts["commit"] == one
    assert facts["run"] == f"promote flow, execution {applied.id}"
    assert facts["checks"][0]["check"] == "run company.team.smoke" and facts["checks"][0]["passed"]
    with target_history(staging) as runs:
        assert runs[-1]["verified"] is True and runs[-1]["marked"] == TAG_1

    taken = on_production.schedule()
    assert taken.state == "SUCCESS", taken.logs
    assert taken.outputs["decide"]["vars"]["checkout"] == TAG_1
    assert _flows(production) == _flows(staging)
    with target_history(production) as runs:
        assert runs[-1]["commit"] == one
        assert runs[-1]["stage"] == {"stage": "production", "after": "staging", "tag": TAG_1}

    # a commit staging has not verified: not by the schedule, not by hand, not by branch
    two = _push(repo, "two")
    assert on_production.schedule().outputs["promote"]["vars"]["action"] == "no-changes"
    for ref in (two, "main", "refs/heads/main"):
        by_hand = on_production.execute({"mode": "apply", "ref": ref})
        assert by_hand.state == "FAILED", ref
        assert "is not a tag this promotion follows" in _logs(by_hand), ref
    assert _flows(production) == _flows(staging)  # still commit one everywhere
    assert "message: one" in _flows(production)[("company.team", "a")]


def test_a_commit_failing_on_staging_is_rolled_back_there_and_never_reaches_production(pipeline):
    repo, git_server, (staging, on_staging), (production, on_production) = pipeline
    one = repo.git("rev-parse", "HEAD")
    assert on_staging.schedule().state == "SUCCESS"
    assert on_production.schedule().state == "SUCCESS"
    before = {"staging": _flows(staging), "production": _flows(production)}

    two = _push(repo, "two")
    staging.runs.outcome[("company.team", "smoke")] = "FAILED"
    failed = on_staging.schedule()
    assert failed.state == "FAILED"
    assert f"rolled back to commit {one[:12]}" in failed.files["report.md"].read_text()
    assert _flows(staging) == before["staging"]  # byte for byte commit one's flows
    assert _server_tags(git_server) == {TAG_1: one}  # two was never marked
    with target_history(staging) as runs:
        assert runs[-2]["commit"] == two and runs[-2]["verified"] is False
        assert "marked" not in runs[-2] and runs[-1]["trigger"] == "rollback"

    moved = on_production.schedule()
    assert moved.outputs["promote"]["vars"]["action"] == "no-changes"
    assert _flows(production) == before["production"]


def test_a_pull_request_from_its_preview_to_production(previewing, tmp_path):
    """The whole way: the request's preview comes up on the development instance and its comment
    links it; merged, the preview goes down; staging applies, verifies and marks the merged
    commit; production's flow takes that commit."""
    hook = previewing("github")
    files = {"flows/smoke.yml": flow_yaml("company.team", "smoke"),
             "flows/a.yml": flow_yaml("company.team", "a", "from the request")}
    opened = hook.opened(7, files)
    assert opened is not None and opened.state == "SUCCESS", opened.logs
    shown = hook.preview(7)
    assert "from the request" in shown[("preview.7.company.team", "a")]
    assert ("preview.7.company.team", "smoke") in shown
    assert "/ui/main/namespaces/edit/preview.7.company.team" in hook.comment(7)

    repo = hook.repo
    repo.git("merge", "-q", "--ff-only", "request-7")  # the request is merged into master
    merged = repo.git("rev-parse", "HEAD")
    closed = hook.closed(7, merged=True)
    assert closed is not None and closed.state == "SUCCESS", closed.logs
    assert hook.preview(7) == {} and "taken down" in hook.comment(7)

    with _instance(tmp_path, "staging", str(repo.path), SECRET_VALUES, "master") as staging, \
            _instance(tmp_path, "production", str(repo.path), SECRET_VALUES, "master") as prod:
        _policy(staging[0], PIPELINE % "staging" + CHECKS)
        _policy(prod[0], PIPELINE % "production")
        assert staging[1].schedule().state == "SUCCESS"
        assert repo.git("rev-parse", f"{TAG_1}^{{commit}}") == merged
        taken = prod[1].schedule()
        assert taken.state == "SUCCESS", taken.logs
        assert taken.flow_outputs["commit"] == merged
        assert ("company.team", "a") in prod[0].current()
        assert _flows(prod[0]) == _flows(staging[0])


def test_a_worker_without_git_rolls_back_over_http_byte_for_byte(pipeline):
    """Kestra's own image has no `git`: the verified commit is fetched over Git's HTTP protocol
    in pure Python, and the rollback restores its flows byte for byte."""
    repo, git_server, (staging, on_staging), _ = pipeline
    on_staging.lacking = frozenset({"git"})
    one = repo.git("rev-parse", "HEAD")
    assert on_staging.schedule().state == "SUCCESS"
    before = _flows(staging)

    _push(repo, "two")
    staging.runs.outcome[("company.team", "smoke")] = "FAILED"
    seen = len(git_server.requests)
    failed = on_staging.schedule()
    assert failed.state == "FAILED"
    assert "needs `git`" not in _logs(failed)
    assert f"rolled back to commit {one[:12]}" in failed.files["report.md"].read_text()
    assert _flows(staging) == before  # byte for byte commit one's flows
    without_git = [request for request, client in zip(git_server.requests[seen:],
                                                      git_server.clients[seen:])
                   if not client.startswith("git/")]
    assert without_git == [("GET", "/flows.git/info/refs?service=git-upload-pack"),
                           ("POST", "/flows.git/git-upload-pack")]  # the rollback's fetch
    with target_history(staging) as runs:
        assert runs[-1]["trigger"] == "rollback" and runs[-1]["commit"] == one

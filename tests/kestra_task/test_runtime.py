"""The Kestra task bridge: what `decide` tells the flow to clone, and how it reports."""

from __future__ import annotations

import io
import json

import pytest
from kestra_promote.errors import SettingsError
from kestra_promote.kestra_task.emit import Emitter
from kestra_promote.kestra_task.runtime import classify_ref, task_decide
from kestra_promote.gates.webhook import Target

MAIN = Target("main")


@pytest.mark.parametrize(
    ("ref", "target", "expected"),
    [
        pytest.param("v1.4.0", MAIN, ("tag", "v1.4.0"), id="a-name-is-a-tag"),
        pytest.param("refs/tags/v1.4.0", MAIN, ("tag", "v1.4.0"), id="full-tag"),
        pytest.param("refs/heads/release", MAIN, ("branch", "release"), id="full-branch"),
        pytest.param("main", MAIN, ("branch", "main"), id="the-followed-branch"),
        pytest.param("3f2a91c", MAIN, ("commit", "3f2a91c"), id="short-sha"),
        pytest.param("3f2a91c04b7e" * 3 + "abcd", MAIN, ("commit", "3f2a91c04b7e" * 3 + "abcd"),
                     id="full-sha"),
        pytest.param("v2", Target(branch=None, tags="v*"), ("tag", "v2"), id="tags-mode"),
    ],
)
def test_a_ref_given_by_hand_is_told_apart(ref: str, target: Target, expected: tuple[str, str]):
    assert classify_ref(ref, target) == expected


@pytest.mark.parametrize("ref", ["v1 2", "v1\n::{}::", "../etc", "a..b", "v1.lock", "x~1",
                                 "a//b", "@{1}", "/v1", "v1/", "\x1b[2Jv1", "v1/.hidden",
                                 "v1.lock/x", "@", "{{ secret('X') }}", "v1.", "a\\b", "x^1",
                                 "a:b", "v?", "v*", "v[1]", "a@{u}", "v1\x7f"])
def test_a_ref_git_cannot_name_is_refused(ref: str):
    with pytest.raises(SettingsError, match="is not a valid Git ref name"):
        classify_ref(ref, MAIN)


def test_a_ref_of_another_kind_is_refused():
    with pytest.raises(SettingsError, match="give a branch as refs/heads/NAME"):
        classify_ref("refs/remotes/origin/main", MAIN)


def _decide(env: dict[str, str], tmp_path) -> tuple[int, dict]:
    out = io.StringIO()
    code = task_decide(env, Emitter(out))
    lines = [json.loads(line[2:-2]) for line in out.getvalue().splitlines()
             if line.startswith("::{")]
    outputs = {k: v for line in lines for k, v in line.get("outputs", {}).items()}
    return code, outputs


def _tagged_repo(tmp_path, *tags: str):
    from conftest import GitRepo

    repo = GitRepo(tmp_path / "tagged")
    repo.write("a.yml", "id: a\n")
    repo.commit("first")
    for tag in tags:
        repo.git("tag", "-a", tag, "-m", tag)
    return repo


def test_a_push_of_a_tag_promotes_the_newest_tag_the_repository_lists(tmp_path):
    repo = _tagged_repo(tmp_path, "v1.9", "v1.10", "v2.0.0-rc.1", "other")
    (tmp_path / "h.json").write_text(json.dumps({"X-Gitlab-Event": ["Tag Push Hook"],
                                                 "X-Gitlab-Token": ["s3cret"]}))
    # the request names an old tag: it only says "look again"
    (tmp_path / "b.json").write_text(json.dumps({"object_kind": "tag_push",
                                                 "ref": "refs/tags/v1.9", "after": "a" * 40}))
    code, outputs = _decide({"KP_TRIGGER": "webhook", "KP_TAGS": "v*", "KP_WEBHOOK_SECRET": "s3cret",
                             "KP_PROVIDER": "gitlab",
                             "KP_REPO_URL": str(repo.path),
                             "KP_WEBHOOK_HEADERS": str(tmp_path / "h.json"),
                             "KP_WEBHOOK_BODY": str(tmp_path / "b.json")}, tmp_path)
    assert code == 0
    assert (outputs["decision"], outputs["kind"], outputs["checkout"]) == (
        "sync", "tag", "v1.10")  # a release candidate is not a release
    assert outputs["verified"] is True
    assert outputs["reason"].endswith("the newest tag matching 'v*' is 'v1.10'")
    repo.git("tag", "-a", "v2.0.0", "-m", "release")  # a release comes after its candidates
    code, outputs = _decide({"KP_TRIGGER": "schedule", "KP_TAGS": "v*",
                             "KP_REPO_URL": str(repo.path)}, tmp_path)
    assert (code, outputs["kind"], outputs["checkout"]) == (0, "tag", "v2.0.0")


def test_manual_and_scheduled_runs_clone_the_branch_and_ignored_events_nothing(tmp_path):
    code, outputs = _decide({"KP_TRIGGER": "schedule", "KP_BRANCH": "main"}, tmp_path)
    assert (code, outputs["kind"], outputs["checkout"]) == (0, "branch", "main")
    empty = _tagged_repo(tmp_path)
    code, outputs = _decide({"KP_TRIGGER": "schedule", "KP_TAGS": "v*",
                             "KP_REPO_URL": str(empty.path)}, tmp_path)
    assert (code, outputs["decision"], outputs["kind"], outputs["checkout"]) == (
        0, "ignore", "", "")
    code, outputs = _decide({"KP_TRIGGER": "manual", "KP_TAGS": "v*",
                             "KP_REPO_URL": str(empty.path)}, tmp_path)
    assert (code, outputs["decision"]) == (1, "reject")


@pytest.mark.parametrize("ref", ["default", "none", "null", "settings"])
def test_a_ref_named_like_a_setting_word_is_still_that_ref(ref: str, tmp_path):
    code, outputs = _decide({"KP_TRIGGER": "manual", "KP_REF": ref}, tmp_path)
    assert (code, outputs["kind"], outputs["checkout"]) == (0, "tag", ref)


def test_an_upper_case_sha_is_a_commit():
    assert classify_ref("ABCDEF1234567", MAIN) == ("commit", "abcdef1234567")

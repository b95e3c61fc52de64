"""Ref names as Git allows them: refs nobody follows are set aside before anything is
validated, the others are held to git check-ref-format's rules, and a ref given by hand is still
one safe ref. Names with quotes or "#" are data only."""

from __future__ import annotations

import copy
import io
import json
import shutil
import subprocess

import pytest
from conftest import FIXTURES
from kestra_promote.errors import SettingsError
from kestra_promote.gates.webhook import Target, decide, valid_ref_name
from kestra_promote.kestra_task.emit import Emitter
from kestra_promote.kestra_task.rights import classify_ref
from kestra_promote.kestra_task.runtime import task_decide

MAIN = Target("main")
SHA = "a" * 40
# names Git allows that a narrower alphabet refused
ALLOWED = ["renovate/@types-node", "fix#123", "feature/über", "user's-branch"]
# names git check-ref-format refuses (--allow-onelevel)
REFUSED = ["a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[1]", "a\\b", "a@{u}", "@", "a.",
           "a/", "/a", "a//b", "a.lock", "a/.b", ".a", "a.lock/b", "a\x7f", "a\x01b", "a\nb", ""]
GITHUB = {"X-GitHub-Event": ["push"]}
BITBUCKET = {"X-Event-Key": ["repo:push"], "X-Hook-UUID": ["u"]}


def _push(ref: str, after: str = SHA) -> dict:
    return {"ref": ref, "before": "0" * 40, "after": after, "deleted": False}


def _bitbucket(*names: str) -> dict:
    """Bitbucket Cloud's published repo:push payload, with one change per branch name."""
    body = json.loads((FIXTURES / "webhooks/bitbucket/repo-push-1.json").read_text())
    change = body["push"]["changes"][0]
    body["push"]["changes"] = []
    for number, name in enumerate(names):
        moved = copy.deepcopy(change)
        moved["new"]["name"] = moved["old"]["name"] = name
        moved["new"]["target"]["hash"] = f"{number + 1:040x}"
        body["push"]["changes"].append(moved)
    return body


@pytest.mark.parametrize("name", ALLOWED)
def test_git_allows_these_names(name: str):
    assert valid_ref_name(name) and valid_ref_name(f"refs/heads/{name}")


@pytest.mark.parametrize("name", REFUSED)
def test_git_refuses_these_names(name: str):
    assert not valid_ref_name(name)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_rules_are_gits_own():
    for name in ALLOWED + REFUSED + ["refs/heads/-x", "a./b", "a/@/b", "x@", "@a",
                                     "{{secret('X')}}", "it's#1"]:
        if not name or "\x00" in name:
            continue
        git = subprocess.run(["git", "check-ref-format", "--allow-onelevel", name],
                             capture_output=True).returncode == 0
        assert valid_ref_name(name) == git, name


@pytest.mark.parametrize("name", ALLOWED)
def test_a_push_to_another_branch_git_allows_is_ignored_not_rejected(name: str):
    decision = decide(GITHUB, _push(f"refs/heads/{name}"), target=MAIN)
    assert decision.decision == "ignore", decision
    assert decision.reason == f"push to refs/heads/{name}: this promotion follows branch 'main'"
    assert decision.ref == f"refs/heads/{name}"


@pytest.mark.parametrize("name", ALLOWED)
def test_a_followed_branch_git_allows_is_synced(name: str):
    decision = decide(GITHUB, _push(f"refs/heads/{name}"), target=Target(name))
    assert (decision.decision, decision.ref, decision.commit) == \
        ("sync", f"refs/heads/{name}", SHA)
    assert decision.checkout == name


@pytest.mark.parametrize("name", ALLOWED)
def test_a_name_git_allows_can_be_given_by_hand(name: str):
    assert classify_ref(name, MAIN) == ("tag", name)
    assert classify_ref(f"refs/heads/{name}", MAIN) == ("branch", name)
    assert classify_ref(name, Target(name)) == ("branch", name)


def test_a_bitbucket_push_of_main_with_fix_12_promotes_main():
    decision = decide(BITBUCKET, _bitbucket("main", "fix#12"), target=MAIN)
    assert (decision.decision, decision.ref, decision.commit) == \
        ("sync", "refs/heads/main", f"{1:040x}"), decision


@pytest.mark.parametrize("other", ["bad..name", "a b", "x\n::{\"outputs\": {}}::", "\x1b[2J"])
def test_a_ref_nobody_follows_is_never_validated_nor_shown(other: str):
    decision = decide(BITBUCKET, _bitbucket(other, "main"), target=MAIN)
    assert (decision.decision, decision.ref) == ("sync", "refs/heads/main"), decision
    alone = decide(BITBUCKET, _bitbucket(other), target=MAIN)
    assert alone.decision == "ignore", alone
    assert other not in alone.reason and alone.ref is None and alone.commit is None
    assert alone.reason == ("push to 1 ref(s) not shown (not valid Git ref names): this "
                            "promotion follows branch 'main'")
    generic = decide({}, _push(f"refs/heads/{other}"), target=MAIN)
    assert generic.decision == "ignore" and other not in generic.reason


def test_a_followed_ref_git_refuses_is_still_rejected():
    decision = decide(GITHUB, _push("refs/tags/v1..2"), target=Target(branch=None, tags="v*"))
    assert decision.decision == "reject"
    assert decision.reason == "the event names a followed ref that is not a valid Git ref name"
    mixed = decide(BITBUCKET, _bitbucket("main", "fix#12"), target=Target("fix#12"))
    assert (mixed.decision, mixed.ref) == ("sync", "refs/heads/fix#12")


def test_a_shown_name_cannot_rewrite_or_split_a_log_line():
    name = "v1\u202e\u2028x"  # Git allows both: a bidi override and a line separator
    decision = decide(GITHUB, _push(f"refs/tags/{name}"), target=MAIN)
    assert decision.decision == "ignore"
    assert "\u202e" not in decision.reason and "\u2028" not in decision.reason
    assert "v1\\u202e\\u2028x" in decision.reason


@pytest.mark.parametrize("ref", ["-x", "--upload-pack=touch", "refs/heads/-x", "refs/tags/-v1",
                                 "v1\u202e", "a\u00a0b", "a\u200bb", "x\u2028y"])
def test_a_ref_given_by_hand_is_still_one_visible_ref(ref: str):
    with pytest.raises(SettingsError, match="no leading '-', only visible characters"):
        classify_ref(ref, MAIN)
    assert classify_ref("feature/-x", MAIN) == ("tag", "feature/-x")  # Git allows it


def _decide(env: dict[str, str]) -> tuple[int, dict]:
    out = io.StringIO()
    code = task_decide(env, Emitter(out))
    lines = [json.loads(line[2:-2]) for line in out.getvalue().splitlines()
             if line.startswith("::{")]
    return code, {k: v for line in lines for k, v in line.get("outputs", {}).items()}


@pytest.mark.parametrize("name", ALLOWED + ["{{secret('KESTRA_PROMOTE_GIT_TOKEN')}}"])
def test_the_name_reaches_the_clone_as_it_was_typed(name: str):
    """What the flow's Clone gets (``checkout``, rendered once into ``branch:``) is the name
    itself, character for character: quotes, "#" and braces are data."""
    code, outputs = _decide({"KP_TRIGGER": "manual", "KP_REF": f"refs/heads/{name}",
                             "KP_BRANCH": "main"})
    assert code == 0, outputs
    assert (outputs["kind"], outputs["checkout"]) == ("branch", name)
    assert (outputs["followed_kind"], outputs["followed"]) == ("branch", "main")


def test_a_webhook_push_of_another_branch_git_allows_ends_quietly(tmp_path):
    headers, body = tmp_path / "headers.json", tmp_path / "body.json"
    headers.write_text(json.dumps({"X-GitHub-Event": ["push"]}))
    body.write_text(json.dumps(_push("refs/heads/user's-branch")))
    code, outputs = _decide({"KP_TRIGGER": "webhook", "KP_BRANCH": "main",
                             "KP_WEBHOOK_HEADERS": str(headers), "KP_WEBHOOK_BODY": str(body)})
    assert code == 0
    assert (outputs["decision"], outputs["kind"], outputs["checkout"]) == ("ignore", "", "")

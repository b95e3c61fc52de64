"""Webhook decisions on real provider payloads (tests/fixtures/webhooks), and signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from conftest import FIXTURES, run_cli
from kestra_promote.gates.webhook import Target, decide, normalize_headers, verify

HOOKS = FIXTURES / "webhooks"
HEADERS = {
    "github": lambda event: {"X-GitHub-Event": [event], "User-Agent": ["GitHub-Hookshot/1"]},
    "gitlab": lambda event: {"X-Gitlab-Event": [event]},
    "gitea": lambda event: {"X-Gitea-Event": [event], "X-GitHub-Event": [event]},
    "forgejo": lambda event: {"X-Forgejo-Event": [event], "X-Gitea-Event": [event]},
    "gogs": lambda event: {"X-Gogs-Event": [event]},
    "bitbucket": lambda event: {"X-Event-Key": [event], "X-Hook-UUID": ["u"],
                                "User-Agent": ["Bitbucket-Webhooks/2.0"]},
    "bitbucket-server": lambda event: {"X-Event-Key": [event], "X-Request-Id": ["r"]},
}


def load(name: str) -> bytes:
    return (HOOKS / name).read_bytes()


CASES = [
    # (fixture, provider, event, target, decision, reason start, ref)
    ("github/push-1.json", "github", "push", Target(tags="*"), "ignore",
     "refs/tags/simple-tag was deleted", "refs/tags/simple-tag"),
    ("github/push-2.json", "github", "push", Target(), "ignore", "refs/tags/simple-tag was deleted",
     "refs/tags/simple-tag"),
    ("github/push-3.json", "github", "push", Target(), "ignore", "refs/tags/simple-tag was deleted",
     "refs/tags/simple-tag"),
    ("github/push-6.json", "github", "push", Target(), "ignore", "refs/tags/simple-tag was deleted",
     "refs/tags/simple-tag"),
    ("github/push-4.json", "github", "push", Target("master"), "sync",
     "push to refs/heads/master matches branch 'master'", "refs/heads/master"),
    ("github/push-5.json", "github", "push", Target("main"), "ignore",
     "push to refs/heads/master: this promotion follows branch 'main'", "refs/heads/master"),
    ("github/push-7.json", "github", "push", Target("master"), "sync",
     "push to refs/heads/master matches branch 'master'", "refs/heads/master"),
    *[(f"github/ping-{i}.json", "github", "ping", Target(), "ignore",
       "ping event: the webhook is configured", None) for i in (1, 2, 3, 4)],
    *[(f"github/pull_request-{i}.json", "github", "pull_request", Target("master"), "ignore",
       "pull request event: only pushes promote", None) for i in range(1, 7)],
    ("gitlab/push-1.json", "gitlab", "Push Hook", Target("master"), "sync",
     "push to refs/heads/master", "refs/heads/master"),
    ("gitlab/push-2.json", "gitlab", "Push Hook", Target("main"), "ignore",
     "push to refs/heads/master: this promotion follows branch 'main'", "refs/heads/master"),
    ("gitlab/system_push-1.json", "gitlab", "System Hook", Target("master"), "sync",
     "push to refs/heads/master", "refs/heads/master"),
    ("gitlab/tag_push-1.json", "gitlab", "Tag Push Hook", Target(tags="v*"), "sync",
     "push to refs/tags/v1.0.0 matches tags matching 'v*'", "refs/tags/v1.0.0"),
    ("gitlab/tag_push-2.json", "gitlab", "Tag Push Hook", Target("master"), "ignore",
     "push to refs/tags/v1.0.0: this promotion follows branch 'master'", "refs/tags/v1.0.0"),
    ("gitea/push-1.json", "gitea", "push", Target("master"), "sync", "push to refs/heads/master",
     "refs/heads/master"),
    ("gitea/push-2.json", "gitea", "push", Target("master"), "ignore",
     "push to refs/heads/develop: this promotion follows branch 'master'", "refs/heads/develop"),
    ("forgejo/push-1.json", "forgejo", "push", Target("develop"), "sync",
     "push to refs/heads/develop", "refs/heads/develop"),
    ("gogs/push-1.json", "gogs", "push", Target("develop"), "sync", "push to refs/heads/develop",
     "refs/heads/develop"),
    ("bitbucket/repo-push-1.json", "bitbucket", "repo:push", Target("name-of-branch"), "sync",
     "push to refs/heads/name-of-branch", "refs/heads/name-of-branch"),
    ("bitbucket/repo-push-2.json", "bitbucket", "repo:push", Target("no-such-branch"), "ignore",
     "push to refs/heads/", None),
    ("bitbucket-server/repo-refs_changed-1.json", "bitbucket-server", "repo:refs_changed",
     Target("feature/wip"), "ignore", "refs/heads/feature/wip was deleted", "refs/heads/feature/wip"),
    ("bitbucket-server/repo-refs_changed-2.json", "bitbucket-server", "repo:refs_changed",
     Target("no-such-branch"), "ignore", "push to refs/", None),
]


@pytest.mark.parametrize(("fixture", "provider", "event", "target", "decision", "reason", "ref"),
                         CASES, ids=[c[0] + "-" + c[4] for c in CASES])
def test_real_payloads_are_decided(fixture, provider, event, target, decision, reason, ref):
    body = json.loads(load(fixture))
    result = decide(HEADERS[provider](event), body, target=target)
    assert (result.provider, result.decision) == (provider, decision), result
    assert result.reason.startswith(reason), result.reason
    if ref is not None:
        assert result.ref == ref
    if decision == "sync":
        assert result.commit and len(result.commit) == 40


def test_a_generic_body_is_enough():
    result = decide({}, {"ref": "refs/heads/main", "after": "a" * 40}, target=Target())
    assert (result.decision, result.provider, result.checkout) == ("sync", "generic", "main")
    assert decide({}, {"hello": "world"}, target=Target()).decision == "ignore"
    assert decide({}, "not json", target=Target()).reason == "the body is not a JSON object"


def test_headers_in_any_case_and_as_lists():
    assert normalize_headers({"X-GitHub-Event": ["push"], "x-other": "a", "Empty": []}) == {
        "x-github-event": "push", "x-other": "a", "empty": ""}
    body = {"ref": "refs/heads/main", "after": "b" * 40}
    assert decide({"x-github-event": "push"}, body, target=Target()).provider == "github"
    assert decide({"X-GITLAB-EVENT": ["Push Hook"]}, {**body, "object_kind": "push"},
                  target=Target()).decision == "sync"


def test_githubs_published_signature_test_vector():
    secret, raw = "It's a Secret to Everybody", b"Hello, World!"
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert verify("github", {"x-hub-signature-256": signature}, raw, secret) == (
        True, "signature matches")
    assert verify("github", {"x-hub-signature-256": signature}, raw + b" ", secret)[0] is False


def _sign(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("provider", ["github", "gitea", "forgejo", "bitbucket"])
def test_signed_pushes_are_verified_and_forgeries_rejected(provider: str):
    fixture = {"github": "github/push-7.json", "gitea": "gitea/push-1.json",
               "forgejo": "forgejo/push-1.json", "bitbucket": "bitbucket/repo-push-1.json"}[provider]
    raw = load(fixture)
    name = {"github": "X-Hub-Signature-256", "gitea": "X-Gitea-Signature",
            "forgejo": "X-Forgejo-Signature", "bitbucket": "X-Hub-Signature"}[provider]
    prefix = "" if provider in ("gitea", "forgejo") else "sha256="
    event = "repo:push" if provider == "bitbucket" else "push"
    target = Target({"github": "master", "gitea": "master", "forgejo": "develop",
                     "bitbucket": "name-of-branch"}[provider])
    good = {**HEADERS[provider](event), name: [prefix + _sign("s3cret", raw)]}
    ok = decide(good, None, raw=raw, target=target, secret="s3cret")
    assert (ok.decision, ok.verified) == ("sync", True)
    forged = {**HEADERS[provider](event), name: [prefix + _sign("guess", raw)]}
    bad = decide(forged, None, raw=raw, target=target, secret="s3cret")
    assert bad.decision == "reject" and "does not match" in bad.reason
    missing = decide(HEADERS[provider](event), None, raw=raw, target=target, secret="s3cret")
    assert missing.decision == "reject" and "is missing but a secret is configured" in missing.reason
    tampered = decide(good, None, raw=raw.replace(b"a", b"b", 1), target=target, secret="s3cret")
    assert tampered.decision == "reject"


def test_gitlab_tokens():
    body = json.loads(load("gitlab/push-1.json"))
    headers = HEADERS["gitlab"]("Push Hook")
    target = Target("master")
    assert decide({**headers, "X-Gitlab-Token": "tok"}, body, target=target, secret="tok").verified
    assert decide({**headers, "X-Gitlab-Token": "nope"}, body, target=target,
                  secret="tok").decision == "reject"
    assert decide(headers, body, target=target, secret="tok").decision == "reject"
    assert decide(headers, body, target=target).decision == "sync"  # no secret: not checked


def test_without_the_raw_body_a_signature_cannot_be_checked():
    raw = load("github/push-7.json")
    headers = {**HEADERS["github"]("push"), "X-Hub-Signature-256": "sha256=" + _sign("s", raw)}
    parsed = json.loads(raw)
    loose = decide(headers, parsed, target=Target("master"), secret="s")
    assert loose.decision == "sync" and not loose.verified
    assert "the webhook URL key is the only protection" in loose.reason
    strict = decide(headers, parsed, target=Target("master"), secret="s", require_signature=True)
    assert strict.decision == "reject"
    assert strict.reason == ("X-Hub-Signature-256 cannot be verified without the raw body, which "
                             "Kestra does not pass to a flow, and verification is required")


# What a flow inside Kestra (parsed body, no raw bytes) can check, per provider, with a secret set:
# (provider, fixture, header carrying the proof, value when right, outcome without raw body)
IN_KESTRA = [
    ("gitlab", "gitlab/push-1.json", "X-Gitlab-Token", "s3cret", True),
    ("gitea", "gitea/push-1.json", "Authorization", "Bearer s3cret", True),
    ("gitea", "gitea/push-1.json", "Authorization", "s3cret", True),
    ("forgejo", "forgejo/push-1.json", "Authorization", "Bearer s3cret", True),
    ("gogs", "gogs/push-1.json", "X-Gogs-Signature", "<hmac>", None),
    ("github", "github/push-7.json", "X-Hub-Signature-256", "sha256=<hmac>", None),
    ("bitbucket", "bitbucket/repo-push-1.json", "X-Hub-Signature", "sha256=<hmac>", None),
]


@pytest.mark.parametrize(("provider", "fixture", "header", "value", "outcome"), IN_KESTRA,
                         ids=[f"{c[0]}-{c[2]}" for c in IN_KESTRA])
def test_what_a_flow_can_check_per_provider(provider, fixture, header, value, outcome):
    raw = load(fixture)
    sent = value.replace("<hmac>", _sign("s3cret", raw))
    flat = normalize_headers({header: [sent]})
    assert verify(provider, flat, None, "s3cret")[0] is outcome
    if outcome is True:  # a header token is checked without the body: a wrong one is rejected
        wrong = normalize_headers({header: [value.replace("s3cret", "guess")]})
        checked, why = verify(provider, wrong, None, "s3cret")
        assert checked is False and why == f"{header} does not match the configured secret"
    else:  # a signature is not verifiable there: accepted on the URL key alone, and said so
        assert "the webhook URL key is the only protection" in verify(provider, flat, None,
                                                                      "s3cret")[1]
        # ... unless verification is required
        assert verify(provider, flat, None, "s3cret", require=True)[0] is False
    # nothing at all while a secret is configured: rejected
    checked, why = verify(provider, {}, None, "s3cret")
    assert checked is False and why.endswith("is missing but a secret is configured")


@pytest.mark.parametrize("provider", ["gitea", "forgejo"])
def test_a_signature_never_stands_in_for_a_token_the_provider_can_send(provider: str):
    # a forged request leaves the Authorization header out and sends any signature: without the
    # raw body that signature proves nothing, so the token is still required
    name = {"gitea": "X-Gitea-Signature", "forgejo": "X-Forgejo-Signature"}[provider]
    for signature in ("x", "0" * 64):
        checked, why = verify(provider, normalize_headers({name: [signature]}), None, "s3cret")
        assert (checked, why) == (False, "Authorization is missing but a secret is configured")
    # with the raw body (the webhook command), the signature is verified instead
    raw = load(f"{provider}/push-1.json")
    good = normalize_headers({name: [_sign("s3cret", raw)]})
    assert verify(provider, good, raw, "s3cret") == (True, "signature matches")


def test_event_names_are_never_echoed_when_they_are_not_plain_words():
    body = {"ref": "refs/heads/main", "after": "a" * 40}
    odd = decide({"X-GitHub-Event": ["push\n::{}::{{ secret('X') }}"]}, body, target=Target())
    assert odd.event == "unknown" and "secret" not in odd.reason


def test_a_request_from_no_known_provider_is_rejected_when_a_secret_is_set():
    body = {"ref": "refs/heads/main", "after": "a" * 40}
    rejected = decide({}, body, target=Target(), secret="s3cret")
    assert rejected.decision == "reject" and rejected.provider == "generic"
    assert "comes from no known Git provider" in rejected.reason
    assert decide({}, body, target=Target()).decision == "sync"  # no secret: the URL key alone


def test_verification_required_without_a_secret_is_a_reject():
    body = json.loads(load("gitlab/push-1.json"))
    result = decide(HEADERS["gitlab"]("Push Hook"), body, target=Target("master"),
                    require_signature=True)
    assert result.decision == "reject"
    assert result.reason == "verification is required but no secret is configured"


def test_the_webhook_command_prints_a_json_decision(tmp_path: Path):
    raw = load("github/push-7.json")
    (tmp_path / "body.json").write_bytes(raw)
    (tmp_path / "headers.json").write_text(json.dumps(
        {"X-GitHub-Event": ["push"], "X-Hub-Signature-256": ["sha256=" + _sign("k", raw)]}))
    args = ["webhook", "--headers", str(tmp_path / "headers.json"), "--body",
            str(tmp_path / "body.json"), "--branch", "master"]
    result = run_cli(*args, "--secret", "k")
    assert result.code == 0
    data = json.loads(result.out)
    assert {k: data[k] for k in ("decision", "provider", "ref", "commit")} == {
        "decision": "sync", "provider": "github", "ref": "refs/heads/master",
        "commit": "fd489864e7642b48eaad6e3f155c10e46810ec72"}
    assert data["reason"] == "push to refs/heads/master matches branch 'master'"
    forged = run_cli(*args, env={"KESTRA_PROMOTE_WEBHOOK_SECRET": "other"})
    assert forged.code == 1 and json.loads(forged.out)["decision"] == "reject"
    other = run_cli(*args[:-1], "main")
    assert other.code == 0 and json.loads(other.out)["decision"] == "ignore"


def test_a_deeply_nested_body_is_a_clean_ignore_not_a_traceback(tmp_path: Path):
    deep = b"[" * 100_000 + b"]" * 100_000
    result = decide({"X-GitHub-Event": ["push"]}, None, raw=deep, target=Target())
    assert (result.decision, result.reason) == ("ignore", "the body is not a JSON object")
    (tmp_path / "body.json").write_bytes(deep)
    (tmp_path / "headers.json").write_bytes(b'{"a":' * 50_000 + b"1" + b"}" * 50_000)
    cli = run_cli("webhook", "--headers", str(tmp_path / "headers.json"), "--body",
                  str(tmp_path / "body.json"))
    assert cli.code == 1 and "cannot read the request: RecursionError" in cli.err
    assert "Traceback" not in cli.err


@pytest.mark.parametrize(("payload", "headers", "expected"), [
    ("github/pull_request-1.json", {"X-GitHub-Event": "pull_request"}, "refs/pull/2/head"),
    ("github/pull_request-2.json", {"X-GitHub-Event": "pull_request"}, "refs/pull/2/head"),
    ("github/pull_request-4.json", {"X-GitHub-Event": "pull_request"}, "refs/pull/2/head"),
    ("github/pull_request-3.json", {"X-GitHub-Event": "pull_request"}, None),  # closed
    ("gitlab/merge_request-1.json", {"X-Gitlab-Event": "Merge Request Hook"},
     "refs/merge-requests/1/head"),
    ("gitea/pull_request-1.json", {"X-Gitea-Event": "pull_request"}, "refs/pull/2/head"),
])
def test_pull_request_events_are_reviewed_by_number_only(payload: str, headers: dict,
                                                         expected: str | None):
    body = json.loads((FIXTURES / "webhooks" / payload).read_text())
    decision = decide(headers, body, target=Target(branch="master"), pull_requests=True)
    if expected is None:
        assert decision.decision == "ignore"
    else:
        # the ref to ask Git for: never the head commit or branch the payload names
        assert (decision.decision, decision.ref, decision.commit) == ("review", expected, None)
    # and without the setting, a pull request is no push: ignored
    off = decide(headers, body, target=Target(branch="master"))
    assert off.decision == "ignore"


def test_a_pull_request_number_that_is_not_one_is_ignored():
    body = json.loads((FIXTURES / "webhooks/github/pull_request-1.json").read_text())
    for number in ("2", -1, True, 10**12, None):
        forged = {**body, "number": number}
        decision = decide({"X-GitHub-Event": "pull_request"}, forged,
                          target=Target(branch="master"), pull_requests=True)
        assert decision.decision == "ignore", number


@pytest.mark.parametrize(("payload", "headers", "action", "expected"), [
    ("github/pull_request-3.json", {"X-GitHub-Event": "pull_request"}, None, "refs/pull/2/head"),
    ("gitea/pull_request-1.json", {"X-Gitea-Event": "pull_request"}, "closed",
     "refs/pull/2/head"),
    ("gitlab/merge_request-1.json", {"X-Gitlab-Event": "Merge Request Hook"}, "close",
     "refs/merge-requests/1/head"),
    ("gitlab/merge_request-1.json", {"X-Gitlab-Event": "Merge Request Hook"}, "merge",
     "refs/merge-requests/1/head"),
])
def test_with_previews_a_closed_or_merged_request_is_a_request_run_too(
        payload: str, headers: dict, action: str | None, expected: str):
    body = json.loads((FIXTURES / "webhooks" / payload).read_text())
    if action is not None:
        (body["object_attributes"] if "object_attributes" in body else body)["action"] = action
    decision = decide(headers, body, target=Target(branch="master"), previews=True)
    assert (decision.decision, decision.ref, decision.commit) == ("review", expected, None)
    assert "preview" in decision.reason
    # planning requests only: a closed one is nothing to plan
    assert decide(headers, body, target=Target(branch="master"),
                  pull_requests=True).decision == "ignore"

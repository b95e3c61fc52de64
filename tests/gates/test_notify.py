"""Notifications: a message on problems (or always), to a Slack-compatible or a JSON webhook;
its failure never fails the promotion, and its URL (a credential) is never shown."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from conftest import GitRepo, Target, flow_yaml, run_cli
from kestra_promote.gates import notify

pytestmark = pytest.mark.fake_only
TOKEN = "T000/B000/XXXXsecretXXXX"


class Receiver:
    """An incoming-webhook endpoint on 127.0.0.1 recording what it is sent."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append(json.loads(body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/{TOKEN}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _env(target: Target, url: str, **more: str) -> dict[str, str]:
    return {**target.env, "KESTRA_PROMOTE_NOTIFY_URL": url, **more}


def _one_flow(repo: GitRepo, extra: str = "") -> None:
    repo.write("kestra-promote.yml", "name: analytics\n")
    repo.write("flows/a.yml", flow_yaml("company.team", "a") + extra)
    repo.commit()


def test_a_rejected_flow_is_notified_with_its_reason_and_the_link(repo: GitRepo, target: Target,
                                                                  receiver: Receiver):
    _one_flow(repo, "    colour: red\n")
    result = run_cli("apply", str(repo.path), "--notify-link", "https://ci.example/run/7",
                     env=_env(target, receiver.url))
    assert result.code == 1
    (post,) = receiver.posts
    assert post["outcome"] == "refused" and post["problem"] is True and post["source"] == "analytics"
    assert "rejected 1 of 1 flow(s)" in post["reason"] and post["link"] == "https://ci.example/run/7"
    assert TOKEN not in result.out + result.err


def test_a_successful_run_is_notified_only_when_asked(repo: GitRepo, target: Target,
                                                      receiver: Receiver):
    _one_flow(repo)
    assert run_cli("apply", str(repo.path), env=_env(target, receiver.url)).code == 0
    assert receiver.posts == []  # by default, problems only
    repo.write("flows/b.yml", flow_yaml("company.team", "b"))
    repo.commit()
    result = run_cli("apply", str(repo.path), "--notify-on", "always",
                     env=_env(target, receiver.url))
    assert result.code == 0
    (post,) = receiver.posts
    assert post["outcome"] == "applied" and post["counts"]["create"] == 1
    assert post["text"].startswith("kestra-promote analytics: promoted (commit ")


def test_a_drifted_object_is_a_problem_worth_a_message(repo: GitRepo, target: Target,
                                                       receiver: Receiver):
    _one_flow(repo)
    assert run_cli("apply", str(repo.path), env=_env(target, receiver.url)).code == 0
    with target.client() as client:
        client.update_flow("company.team", "a", flow_yaml("company.team", "a", "hotfix"))
    assert run_cli("apply", str(repo.path), env=_env(target, receiver.url)).code == 0
    (post,) = receiver.posts
    assert post["drifted"] == 1 and "1 object(s) edited on the target" in post["text"]


def test_a_denying_window_is_notified(repo: GitRepo, target: Target, receiver: Receiver):
    repo.write("kestra-promote.yml", "windows:\n  - {name: freeze, kind: deny, schedule: "
                                     "'* * * * *', duration: 1h, timezone: UTC}\n")
    repo.write("flows/a.yml", flow_yaml("company.team", "a"))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=_env(target, receiver.url)).code == 1
    (post,) = receiver.posts
    assert post["outcome"] == "denied" and "denied by window 'freeze'" in post["reason"]


@pytest.mark.parametrize("trouble", ["500", "unreachable"])
def test_a_failed_notification_never_fails_the_promotion(repo: GitRepo, target: Target,
                                                         receiver: Receiver, trouble: str):
    _one_flow(repo)
    url = receiver.url
    if trouble == "500":
        receiver.status = 500
    else:
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{closed.getsockname()[1]}/services/{TOKEN}"
    result = run_cli("apply", str(repo.path), "--notify-on", "always", env=_env(target, url))
    assert result.code == 0, result.err
    assert "Warning: the notification " in result.err and "127.0.0.1" not in result.err
    assert "the promotion itself is not affected" in result.err
    assert TOKEN not in result.out + result.err


def test_slack_messages_cannot_mention_or_link_from_what_they_quote():
    notifier = notify.notifier_from("https://hooks.slack.com/services/" + TOKEN)
    assert notifier is not None and notifier.format == "slack" and TOKEN not in repr(notifier)
    event = notify.Event("analytics", "failed", "<!channel> see <https://evil.example|here> & go")
    text = notify.payload(notifier, event)["text"]
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt; see &lt;https://evil.example|here&gt; &amp; go" in text


@pytest.mark.parametrize(("url", "fmt", "when", "message"), [
    ("ftp://x/y", None, None, r"an http\(s\) URL"),
    ("https://x/y", "teams", None, "format must be one of slack, json"),
    ("https://x/y", None, "sometimes", "notify when must be one of problems, always"),
])
def test_bad_notification_settings_are_refused(url: str, fmt: str | None, when: str | None,
                                               message: str):
    with pytest.raises(ValueError, match=message):
        notify.notifier_from(url, fmt, when)


def test_a_receiver_that_never_finishes_answering_is_given_up_on():
    # one byte every few seconds keeps each read under its timeout, forever
    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.5)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        notifier = notify.notifier_from(f"http://127.0.0.1:{server.server_port}/x", "json",
                                        "always")
        started = time.monotonic()
        why = notify.send(notifier, notify.Event("analytics", "applied"), deadline=2.0)
        assert why == "the notification was given up on after 2 s"
        assert time.monotonic() - started < 3
    finally:
        server.shutdown()
        server.server_close()


def test_the_target_is_shown_without_its_credentials():
    assert notify.safe_target("https://user:pa55@kestra.example.com:8443/k?api_token=x#y") == \
        "https://kestra.example.com:8443/k"
    event = notify.Event("analytics", "failed", target=notify.safe_target(
        "https://user:pa55@kestra.example.com/?token=s3cr3t"))
    text = notify.payload(notify.Notifier("https://hooks.example/x", "json"), event)["text"]
    assert "pa55" not in text and "s3cr3t" not in text and "rolled back" not in text


def test_the_message_says_rolled_back_only_when_the_target_was_read_back_as_it_was():
    from kestra_promote.models import (Action, ApplyResult, Change, FlowKey, Leftover, Outcome,
                                       Plan, Reason, Status)

    key = FlowKey("company", "a")
    change = Change(key, Action.CREATE, Reason.NEW_IN_GIT, after="id: a\nnamespace: company\n")
    plan = Plan((change,), name="analytics")
    undone = ApplyResult(plan, (Outcome(change, Status.REVERTED, "created, then reverted"),),
                         inventory=Status.FAILED, inventory_message="boom")
    text = notify.payload(notify.Notifier("https://hooks.example/x", "json"),
                          notify.event_of(plan, undone, "https://k.example"))["text"]
    assert text.startswith("kestra-promote analytics: FAILED, rolled back")
    landed = ApplyResult(plan, (Outcome(change, Status.NOT_REVERTED, "landed late"),),
                         inventory=Status.FAILED, inventory_message="boom",
                         leftovers=(Leftover(key, "what this run wrote", "nothing"),))
    text = notify.payload(notify.Notifier("https://hooks.example/x", "json"),
                          notify.event_of(plan, landed, "https://k.example"))["text"]
    assert text.startswith("kestra-promote analytics: FAILED, NOT rolled back: 1 object(s) not "
                           "as before, check the target")


@pytest.mark.fake_only  # the smoke flow's outcome is chosen through the fake
def test_a_check_that_fails_after_the_apply_is_notified_with_its_outcome(
        repo: GitRepo, target: Target, receiver: Receiver, tmp_path):
    policy = tmp_path / "policy.yml"
    policy.write_text("verify:\n  checks:\n    - run: {namespace: company.team, flow: a, "
                      "timeout: 5s}\n  on_failure: hold\n", encoding="utf-8")
    assert run_cli("policy", "set", str(policy), env=target.env).code == 0
    _one_flow(repo)
    target.fake.runs.outcome[("company.team", "a")] = "FAILED"
    result = run_cli("apply", str(repo.path), env=_env(target, receiver.url))
    assert result.code == 1
    (post,) = receiver.posts
    assert post["outcome"] == "failed" and post["problem"] is True
    assert "Checks FAILED (run company.team.a: company.team.a ended in FAILED" in post["reason"]
    assert "held: the target keeps commit" in post["text"]

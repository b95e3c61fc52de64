"""A pull request's life driven through the promote flow of a development instance with
previews on (``promote_previews``): opened, updated, closed or merged, as the Git provider
delivers it to the flow's webhook and answers its API.

Use the fixture ``previewing`` (import it with ``production``, which it builds on, from this
module) and call it with a provider: ``hook = previewing("github")``; then ``hook.opened(2,
{"flows/a.yml": text})``, ``hook.updated(2, ...)``, ``hook.closed(2, merged=True)``, and read
``hook.preview(2)`` (the flows under the preview's namespaces) and ``hook.comment(2)``.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import pytest
from conftest import FIXTURES, GitRepo
from fake_git_provider import FakeProvider
from fake_kestra import FakeKestra, serve
from kestra_flows.emulator import Emulator, Execution
from test_flows import SECRET_VALUES, _record, _set, _signed, production  # noqa: F401 (fixture)

# each provider's "opened" payload (real ones: tests/fixtures/webhooks), and what it calls
# opening, updating, closing and merging a request
PAYLOADS = {"github": "github/pull_request-1.json", "gitea": "gitea/pull_request-1.json",
            "gitlab": "gitlab/merge_request-1.json"}
ACTIONS = {"github": {"opened": "opened", "updated": "synchronize", "closed": "closed",
                      "merged": "closed"},
           "gitea": {"opened": "opened", "updated": "synchronized", "closed": "closed",
                     "merged": "closed"},
           "gitlab": {"opened": "open", "updated": "update", "closed": "close",
                      "merged": "merge"}}
API_PATHS = {"github": "", "gitea": "/api/v1", "gitlab": "/api/v4"}
HOOK_KEY = SECRET_VALUES["KESTRA_PROMOTE_WEBHOOK_KEY"]


def payload(provider: str, number: int, what: str) -> bytes:
    """The provider's request event ``what`` (opened, updated, closed, merged) for request
    ``number`` into ``master``: its published example with the number and action set."""
    body: dict[str, Any] = json.loads((FIXTURES / "webhooks" / PAYLOADS[provider]).read_text())
    action = ACTIONS[provider][what]
    if provider == "gitlab":
        body["object_attributes"].update(iid=number, action=action, target_branch="master")
    else:
        body.update(number=number, action=action)
        body["pull_request"].update(number=number, merged=what == "merged")
        body["pull_request"]["base"]["ref"] = "master"
    return json.dumps(body).encode()


def headers(provider: str, body: bytes) -> dict[str, list[str]]:
    """The headers the provider sends with the webhook secret configured (``s3cret``)."""
    plain = {"Content-Type": ["application/json"]}
    if provider == "github":
        return _signed({**plain, "X-GitHub-Event": ["pull_request"]}, "X-Hub-Signature-256",
                       "sha256=", body)
    if provider == "gitlab":
        return {**plain, "X-Gitlab-Event": ["Merge Request Hook"], "X-Gitlab-Token": ["s3cret"]}
    return {**plain, "X-Gitea-Event": ["pull_request"], "Authorization": ["Bearer s3cret"]}


@dataclass
class PreviewHook:
    """The development instance (``fake``), the repository its promotion follows, the
    emulated promote flow and the fake Git provider the requests live on."""

    fake: FakeKestra
    repo: GitRepo
    emulator: Emulator
    api: FakeProvider

    @property
    def provider(self) -> str:
        return self.api.provider

    @property
    def target(self) -> str:
        """The instance's API address, as the promotion reaches it."""
        return _record(self.fake).settings["promote_target_url"]

    def push(self, number: int, files: Mapping[str, str], message: str) -> str:
        """A commit on request ``number``'s branch writing ``files``; the provider's ref to
        the request's head moves to it. Its SHA."""
        self.repo.git("checkout", "-q", "-B", f"request-{number}", "master")
        for path, text in files.items():
            self.repo.write(path, text)
        head = self.repo.commit(message)
        ref = (f"refs/merge-requests/{number}/head" if self.provider == "gitlab"
               else f"refs/pull/{number}/head")
        self.repo.git("update-ref", ref, head)
        self.repo.git("checkout", "-q", "master")
        return head

    def deliver(self, number: int, what: str, *,
                sign: Callable[[str, bytes], dict[str, list[str]]] = headers
                ) -> Execution | None:
        """The provider's event ``what`` for request ``number`` at the flow's webhook."""
        body = payload(self.provider, number, what)
        return self.emulator.webhook(HOOK_KEY, sign(self.provider, body), body)

    def opened(self, number: int, files: Mapping[str, str], message: str = "opened"
               ) -> Execution | None:
        self.push(number, files, message)
        self.api.closed.discard(number)
        return self.deliver(number, "opened")

    def updated(self, number: int, files: Mapping[str, str], message: str = "updated"
                ) -> Execution | None:
        self.push(number, files, message)
        return self.deliver(number, "updated")

    def closed(self, number: int, *, merged: bool = False) -> Execution | None:
        (self.api.merged if merged else self.api.closed).add(number)
        return self.deliver(number, "merged" if merged else "closed")

    def preview(self, number: int, prefix: str = "preview") -> dict[tuple[str, str], str]:
        """The flows the instance holds under request ``number``'s preview namespaces."""
        root = f"{prefix}.{number}"
        return {key: source for key, source in self.fake.current().items()
                if key[0] == root or key[0].startswith(root + ".")}

    def comments(self, number: int) -> list[str]:
        """The promotion's comments on request ``number`` (the bot's)."""
        return [c["body"] for c in self.api.comments
                if c["request"] == number and c["user"] == "bot"]

    def comment(self, number: int) -> str:
        (body,) = self.comments(number)
        return body


@pytest.fixture
def previewing(production) -> Iterator[Callable[[str], PreviewHook]]:  # noqa: F811
    """A development instance whose promote flow brings pull requests' previews up and down:
    ``previewing(provider)`` sets it up for requests on ``provider`` (github, gitlab, gitea)."""
    fake, repo, emulator = production
    with contextlib.ExitStack() as stack:
        def start(provider: str = "github") -> PreviewHook:
            api = FakeProvider(provider)
            url = stack.enter_context(serve(api))  # type: ignore[arg-type]
            emulator.secrets = {**SECRET_VALUES,
                                "KESTRA_PROMOTE_REVIEW_TOKEN": "t0ken-of-the-bot"}
            _set(fake, "promote_previews", "true")
            _set(fake, "promote_review_repo",
                 "group/flows" if provider == "gitlab" else "acme/flows")
            _set(fake, "promote_review_api", url + API_PATHS[provider])
            return PreviewHook(fake, repo, emulator, api)

        yield start

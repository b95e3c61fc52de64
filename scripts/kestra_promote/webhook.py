"""Git provider webhooks as decisions: sync the configured branch or tag, ignore, or reject.

A push event is a hint, never content: ``sync`` only tells the promotion to clone and promote the
configured branch (or the pushed tag, when it matches the configured tag pattern). Everything
else ends quickly with a reason: other branches, deletions, pings, pull requests, unknown events.

Signatures and tokens are checked in constant time: GitHub, Gitea, Forgejo and Gogs HMAC-SHA256,
Bitbucket's ``X-Hub-Signature`` (SHA-256), GitLab's ``X-Gitlab-Token``. HMACs are computed over
the exact bytes of the body, so they can be checked only when the raw body is available (Kestra
2.0 webhook triggers with ``fetchType: STORE``); otherwise the webhook URL's key is the only
protection, and the decision says so.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from typing import Any, Mapping

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class Decision:
    decision: str  # sync | ignore | reject
    reason: str
    provider: str = "unknown"
    event: str = ""
    ref: str | None = None  # e.g. refs/heads/main
    commit: str | None = None
    verified: bool = False  # a signature or token was checked and matched

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def checkout(self) -> str | None:
        """The branch or tag name to clone for a sync."""
        if self.ref is None:
            return None
        for prefix in ("refs/heads/", "refs/tags/"):
            if self.ref.startswith(prefix):
                return self.ref[len(prefix):]
        return self.ref


@dataclass(frozen=True)
class Target:
    """What this promotion follows: one branch, or tags matching a pattern."""

    branch: str | None = "main"
    tags: str | None = None

    def wants(self, ref: str) -> bool:
        if self.tags is not None:
            return ref.startswith("refs/tags/") and fnmatch.fnmatchcase(ref[10:], self.tags)
        return ref == f"refs/heads/{self.branch}"

    def describe(self) -> str:
        return f"tags matching {self.tags!r}" if self.tags is not None else f"branch {self.branch!r}"


def normalize_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """Lower-case names, first value of lists (Kestra passes each header as a list)."""
    flat = {}
    for name, value in headers.items():
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        flat[str(name).lower()] = "" if value is None else str(value)
    return flat


def detect_provider(headers: Mapping[str, str], body: Any) -> tuple[str, str]:
    """(provider, event name) from the headers (already normalised)."""
    # Gitea, Forgejo and Gogs also send GitHub's headers: look at theirs first
    for provider in ("forgejo", "gitea", "gogs"):
        if f"x-{provider}-event" in headers:
            return provider, headers[f"x-{provider}-event"]
    if "x-github-event" in headers:
        return "github", headers["x-github-event"]
    if "x-gitlab-event" in headers:
        return "gitlab", headers["x-gitlab-event"]
    if "x-event-key" in headers:
        event = headers["x-event-key"]
        server = event == "repo:refs_changed" or "x-request-id" in headers and "x-hook-uuid" not in headers
        return ("bitbucket-server" if server else "bitbucket"), event
    if isinstance(body, Mapping) and "ref" in body:
        return "generic", "push"
    return "unknown", ""


def _hmac_hex(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def _expected_signature(provider: str, headers: Mapping[str, str]) -> tuple[str, str] | None:
    """(header name, prefix) carrying the provider's HMAC-SHA256 signature, if it signs."""
    if provider == "github":
        return "x-hub-signature-256", "sha256="
    if provider in ("gitea", "forgejo", "gogs"):
        for name in (f"x-{provider}-signature", "x-gitea-signature", "x-hub-signature-256"):
            if headers.get(name):
                return name, "sha256=" if name == "x-hub-signature-256" else ""
        return f"x-{provider}-signature", ""
    if provider in ("bitbucket", "bitbucket-server"):
        return "x-hub-signature", "sha256="
    return None


def verify(provider: str, headers: Mapping[str, str], raw: bytes | None,
           secret: str | None, *, require: bool = False) -> tuple[bool | None, str]:
    """(True: verified, False: rejected, None: not checked) and why."""
    if provider == "gitlab":
        token = headers.get("x-gitlab-token")
        if not secret:
            return None, "no secret configured: the token is not checked"
        if token is None:
            return False, "X-Gitlab-Token is missing but a secret is configured"
        if hmac.compare_digest(token.encode(), secret.encode()):
            return True, "token matches"
        return False, "X-Gitlab-Token does not match the configured secret"
    location = _expected_signature(provider, headers)
    if location is None:
        if secret and require:
            return False, f"a signature is required, but {provider} requests carry none"
        return None, "this provider does not sign its requests"
    name, prefix = location
    sent = headers.get(name, "")
    if not secret:
        return None, "no secret configured: the signature is not checked"
    if not sent or sent == prefix:  # Gitea sends an empty digest when it has no secret
        return False, f"{name} is missing but a secret is configured"
    if raw is None:
        if require:
            return False, ("the raw body is not available, so the signature cannot be checked "
                           "(use fetchType: STORE on Kestra 2.0)")
        return None, ("the raw body is not available, so the signature is not checked: the "
                      "webhook URL key is the only protection")
    if hmac.compare_digest(sent.encode(), (prefix + _hmac_hex(secret, raw)).encode()):
        return True, "signature matches"
    return False, f"{name} does not match the body and the configured secret"


def _refs(provider: str, event: str, body: Mapping[str, Any]) -> tuple[str | None, list[tuple[str, str | None, bool]]]:
    """(ignore reason, [(ref, commit, deleted)]) of a push-like event."""
    if provider in ("github", "gitea", "forgejo", "gogs", "generic"):
        if event == "ping":
            return "ping event: the webhook is configured", []
        if event == "pull_request":
            return "pull request event: only pushes promote", []
        if event not in ("push", ""):
            return f"{event!r} event: only pushes promote", []
    elif provider == "gitlab":
        kind = body.get("object_kind") or body.get("event_name")
        if kind not in ("push", "tag_push"):
            return f"{event or kind!r} event: only pushes promote", []
    elif provider == "bitbucket":
        if event != "repo:push":
            return f"{event!r} event: only pushes promote", []
        refs = []
        for change in (body.get("push") or {}).get("changes") or []:
            new, old = change.get("new"), change.get("old")
            item = new or old or {}
            kind = "tags" if item.get("type") == "tag" else "heads"
            ref = f"refs/{kind}/{item.get('name')}"
            commit = ((new or {}).get("target") or {}).get("hash")
            refs.append((ref, commit, new is None))
        return None, refs
    elif provider == "bitbucket-server":
        if event != "repo:refs_changed":
            return f"{event!r} event: only pushes promote", []
        return None, [
            ((c.get("ref") or {}).get("id") or c.get("refId"), c.get("toHash"),
             c.get("type") == "DELETE" or c.get("toHash") == ZERO_SHA)
            for c in body.get("changes") or []]
    else:
        return "unknown event: not a push from a known Git provider", []
    pushed = body.get("ref")
    if not isinstance(pushed, str):
        return "the event names no ref", []
    after = body.get("after") or body.get("checkout_sha")
    deleted = bool(body.get("deleted")) or after == ZERO_SHA
    return None, [(pushed, after, deleted)]


def decide(
    headers: Mapping[str, Any], body: Any, *, target: Target, secret: str | None = None,
    raw: bytes | None = None, require_signature: bool = False,
) -> Decision:
    """What to do with one webhook request (``body`` parsed, or ``raw`` bytes, or both)."""
    flat = normalize_headers(headers)
    if body is None and raw is not None:
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    provider, event = detect_provider(flat, body)
    checked, why = verify(provider, flat, raw, secret, require=require_signature)
    if checked is False:
        return Decision("reject", why, provider, event)
    verified = bool(checked)
    if not isinstance(body, Mapping):
        return Decision("ignore", "the body is not a JSON object", provider, event, verified=verified)
    ignored, refs = _refs(provider, event, body)
    if ignored:
        return Decision("ignore", ignored, provider, event, verified=verified)
    wanted = [(ref, commit) for ref, commit, deleted in refs if ref and target.wants(ref) and not deleted]
    if wanted:
        ref, commit = wanted[-1]
        note = "" if checked is not None or provider in ("generic", "unknown") else f" ({why})"
        return Decision("sync", f"push to {ref} matches {target.describe()}{note}", provider,
                        event, ref, commit, verified)
    deletions = [ref for ref, _, deleted in refs if deleted]
    if deletions and not [r for r, _, d in refs if not d]:
        return Decision("ignore", f"{deletions[0]} was deleted: nothing to promote", provider,
                        event, deletions[0], verified=verified)
    names = ", ".join(ref for ref, _, _ in refs if ref) or "no ref"
    return Decision("ignore", f"push to {names}: this promotion follows {target.describe()}",
                    provider, event, refs[0][0] if refs else None, refs[0][1] if refs else None,
                    verified)

"""Git provider webhooks as decisions: sync the configured branch or tag, ignore, or reject.

A push event is a hint, never content: ``sync`` only tells the promotion to clone and promote the
configured branch (or the pushed tag, when it matches the configured tag pattern). Everything
else ends quickly with a reason: other branches, deletions, pings, pull requests, unknown events.

What can prove that a request comes from the Git provider, per provider (``CHECKS``): a secret
sent as a header (GitLab's ``X-Gitlab-Token``, the ``Authorization`` header Gitea and Forgejo can
send), compared in constant time; or an HMAC-SHA256 signature of the exact body bytes (GitHub,
Gitea, Forgejo, Gogs, Bitbucket). A Kestra Webhook trigger hands a flow the parsed body only, on
1.3 and 2.0 alike (``Webhook.evaluate``), so inside Kestra a signature cannot be verified and the
webhook URL's key is the only protection for providers that only sign; the decision says so.
With the raw body (the ``webhook`` command), signatures are verified.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from kestra_promote.textsafe import safe_text

ZERO_SHA = "0" * 40
# What git check-ref-format refuses anywhere in a name: ASCII control characters, space, ~ ^ : ?
# * [ and backslash, "..", "@{" and "//" (refs.c, check_refname_component). Everything else Git
# allows is allowed here: quotes, "#", "@", braces, non-ASCII letters. A name is only ever data
# (a Kestra output, a property value rendered once): never parsed, quoted or rendered again.
_REF_REFUSED = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
# the longest pushed name a reason shows (Git sets no limit; logs and outputs should)
_SHOWN_MAX = 255


def valid_ref_name(ref: str) -> bool:
    """Whether Git allows ``ref`` as a ref name, full (refs/heads/NAME) or a branch or tag name
    alone: ``git check-ref-format --allow-onelevel``'s rules."""
    if not isinstance(ref, str) or not ref or ref == "@" or _REF_REFUSED.search(ref):
        return False
    try:
        ref.encode("utf-8")  # a lone surrogate (JSON can carry one) names nothing Git has
    except UnicodeEncodeError:
        return False
    if ref.startswith("/") or ref.endswith(("/", ".")):
        return False
    return all(not part.startswith(".") and not part.endswith(".lock")
               for part in ref.split("/"))


def _shown(ref: Any) -> str | None:
    """A pushed ref's name as a reason may show it: a name Git allows, of a sensible length,
    with any character that could rewrite or split a log line escaped; None for anything else
    (a ref nobody follows is never validated, so its name is not shown)."""
    if not isinstance(ref, str) or len(ref) > _SHOWN_MAX or not valid_ref_name(ref):
        return None
    return safe_text(ref, one_line=True)


@dataclass(frozen=True)
class Decision:
    decision: str  # sync | review (plan a pull request and post it) | ignore | reject
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


# The id each provider gives a delivery (kept when it retries or when a person redelivers it)
DELIVERY_HEADERS = ("x-github-delivery", "x-gitea-delivery", "x-forgejo-delivery",
                    "x-gogs-delivery", "idempotency-key", "x-gitlab-event-uuid",
                    "x-request-uuid", "x-request-id")
_DELIVERY = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """The delivery's id (normalised headers), when the provider sends a usable one."""
    for name in DELIVERY_HEADERS:
        value = headers.get(name, "").strip()
        if value and _DELIVERY.fullmatch(value):
            return f"{name}:{value}"
    return None


def parse_json(data: bytes | str | None) -> Any:
    """JSON from a request, or None for anything that is not JSON a promotion could read: bad
    syntax, bad encoding, or nesting deep enough to exhaust the parser (a RecursionError)."""
    if not data:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def normalize_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """Lower-case names, first value of lists (Kestra passes each header as a list)."""
    flat = {}
    for name, value in headers.items():
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        flat[str(name).lower()] = "" if value is None else str(value)
    return flat


_EVENT = re.compile(r"[A-Za-z0-9 :_.-]{1,64}")


def detect_provider(headers: Mapping[str, str], body: Any) -> tuple[str, str]:
    """(provider, event name) from the headers (already normalised); an event name that is not
    a plain word is reported as "unknown", never echoed."""
    provider, event = _detect(headers, body)
    return provider, event if not event or _EVENT.fullmatch(event) else "unknown"


def _detect(headers: Mapping[str, str], body: Any) -> tuple[str, str]:
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


# What each provider can send to prove a request is its own: a header holding the secret itself
# (checkable anywhere), and the header holding an HMAC-SHA256 signature of the body (checkable only
# with the exact body bytes) with the prefix before the hex digest.
TOKEN_HEADERS = {"gitlab": "X-Gitlab-Token", "gitea": "Authorization", "forgejo": "Authorization"}
SIGNATURE_HEADERS = {
    "github": ("X-Hub-Signature-256", "sha256="),
    "gitea": ("X-Gitea-Signature", ""),
    "forgejo": ("X-Forgejo-Signature", ""),
    "gogs": ("X-Gogs-Signature", ""),
    "bitbucket": ("X-Hub-Signature", "sha256="),
    "bitbucket-server": ("X-Hub-Signature", "sha256="),
}


def _hmac_hex(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def _same(sent: str, expected: str) -> bool:
    return hmac.compare_digest(sent.encode(), expected.encode())


def _check_token(name: str, sent: str, secret: str) -> tuple[bool, str]:
    # Gitea and Forgejo send their "Authorization header" setting as it is typed, often "Bearer X"
    accepted = (secret, f"Bearer {secret}") if name == "Authorization" else (secret,)
    if any(_same(sent, value) for value in accepted):
        return True, "token matches"
    return False, f"{name} does not match the configured secret"


def _check_signature(name: str, prefix: str, sent: str, raw: bytes | None, secret: str,
                     require: bool) -> tuple[bool | None, str]:
    if raw is None:
        if require:
            return False, (f"{name} cannot be verified without the raw body, which Kestra does "
                           "not pass to a flow, and verification is required")
        return None, (f"{name} is not verified: Kestra does not pass the raw body to a flow, so "
                      "the webhook URL key is the only protection")
    if _same(sent, prefix + _hmac_hex(secret, raw)):
        return True, "signature matches"
    return False, f"{name} does not match the body and the configured secret"


def _signature(provider: str, headers: Mapping[str, str]) -> tuple[str, str, str] | None:
    """(header, prefix, value) of the signature the request carries, if any."""
    location = SIGNATURE_HEADERS.get(provider)
    if location is None:
        return None
    name, prefix = location
    # Gitea and Forgejo also send GitHub's header; some versions send only that one
    if provider in ("gitea", "forgejo") and not headers.get(name.lower()) and \
            headers.get("x-hub-signature-256"):
        name, prefix = SIGNATURE_HEADERS["github"]
    sent = headers.get(name.lower(), "")
    if not sent or sent == prefix:  # Gitea sends an empty digest when it has no secret
        return None
    return name, prefix, sent


def verify(provider: str, headers: Mapping[str, str], raw: bytes | None,
           secret: str | None, *, require: bool = False) -> tuple[bool | None, str]:
    """(True: verified, False: rejected, None: not checked) and why.

    With a secret configured: a provider that can send the secret as a header (GitLab, Gitea,
    Forgejo) must send it, whatever else it sends, unless the raw body is there to verify a
    signature; a provider that can only sign is verified when the raw body is there, and
    otherwise accepted on the URL key alone (said so), unless ``require``; a request without
    either, or from no known provider, is rejected."""
    if not secret:
        if require:
            return False, "verification is required but no secret is configured"
        return None, "no secret configured: the request is not authenticated beyond the URL key"
    token_name = TOKEN_HEADERS.get(provider)
    if token_name and headers.get(token_name.lower()):
        return _check_token(token_name, headers[token_name.lower()], secret)
    signature = _signature(provider, headers)
    if signature is not None and (raw is not None or token_name is None):
        name, prefix, sent = signature
        return _check_signature(name, prefix, sent, raw, secret, require)
    if provider in ("generic", "unknown"):
        return False, ("a secret is configured, but the request comes from no known Git provider "
                       "and carries nothing to check it against")
    location = SIGNATURE_HEADERS.get(provider)
    expected = token_name or (location[0] if location else "a token")
    return False, f"{expected} is missing but a secret is configured"


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


# what opening, updating (a push to its branch) or reopening a pull request is called
_REVIEW_ACTIONS = {"github": {"opened", "synchronize", "reopened"},
                   "gitea": {"opened", "synchronized", "reopened"},
                   "forgejo": {"opened", "synchronized", "reopened"},
                   "gitlab": {"open", "update", "reopen"}}


# what closing a request is called, merged or not: GitHub, Gitea and Forgejo send "closed" (a
# merge too, with pull_request.merged), GitLab "close" or "merge" (object_attributes.action)
_CLOSE_ACTIONS = {"github": {"closed"}, "gitea": {"closed"}, "forgejo": {"closed"},
                  "gitlab": {"close", "merge"}}


def pull_request(provider: str, event: str, body: Mapping[str, Any], *, closed: bool = False
                 ) -> tuple[int, str] | None:
    """(number, base branch) of a pull/merge request opened, updated or reopened (and, with
    ``closed``, closed or merged); None for any other event. Only the number is used, to ask
    Git for the request's head: never a commit or a branch the payload names."""
    actions = {name: _REVIEW_ACTIONS[name] | (_CLOSE_ACTIONS[name] if closed else set())
               for name in _REVIEW_ACTIONS}
    if provider == "gitlab":
        attributes = body.get("object_attributes") or {}
        if body.get("object_kind") != "merge_request" or not isinstance(attributes, Mapping) \
                or attributes.get("action") not in actions["gitlab"]:
            return None
        number, base = attributes.get("iid"), attributes.get("target_branch")
    elif provider in ("github", "gitea", "forgejo"):
        if event != "pull_request" or body.get("action") not in actions[provider]:
            return None
        request = body.get("pull_request") or {}
        number = body.get("number")
        base = ((request.get("base") or {}) if isinstance(request, Mapping) else {}).get("ref")
    else:
        return None
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 10**9 \
            or not isinstance(base, str):
        return None
    return number, base


def head_ref(provider: str, number: int) -> str:
    """The ref under which the provider keeps a request's head commit."""
    return (f"refs/merge-requests/{number}/head" if provider == "gitlab"
            else f"refs/pull/{number}/head")


def decide(
    headers: Mapping[str, Any], body: Any, *, target: Target, secret: str | None = None,
    raw: bytes | None = None, require_signature: bool = False, expect: str | None = None,
    pull_requests: bool = False, previews: bool = False,
) -> Decision:
    """What to do with one webhook request (``body`` parsed, or ``raw`` bytes, or both).

    ``expect``: the one provider the promotion's repository is on. The provider is read from
    headers the sender chooses, so a forged request could claim one whose proof Kestra cannot
    check (a signature) to avoid one it can (a token): with ``expect``, any other is rejected."""
    flat = normalize_headers(headers)
    if body is None and raw is not None:
        body = parse_json(raw)
    if isinstance(body, str):
        body = parse_json(body)
    provider, event = detect_provider(flat, body)
    if expect and provider != expect:
        return Decision("reject", f"the request comes from {provider}, and this promotion "
                        f"expects {expect} (promote_webhook_provider)", provider, event)
    checked, why = verify(provider, flat, raw, secret, require=require_signature)
    if checked is False:
        return Decision("reject", why, provider, event)
    verified = bool(checked)
    if not isinstance(body, Mapping):
        return Decision("ignore", "the body is not a JSON object", provider, event, verified=verified)
    if (pull_requests or previews) and \
            (request := pull_request(provider, event, body, closed=previews)) is not None:
        number, base = request
        # the base branch is the payload's text, and a request's own business: it is compared,
        # never written into a reason (reasons are logged and kept as outputs)
        if target.branch is None or base != target.branch:
            into = " into another branch" if target.branch is not None else ""
            return Decision("ignore", f"pull request #{number}{into}: this promotion follows "
                            f"{target.describe()}", provider, event, verified=verified)
        what = ("its preview brought up or taken down, as the provider says the request is "
                "open or closed" if previews else "planned against production and posted on the "
                "request")
        return Decision("review", f"pull request #{number} into the followed "
                        f"{target.describe()}: {what}", provider, event,
                        head_ref(provider, number), None, verified)
    ignored, refs = _refs(provider, event, body)
    if ignored:
        return Decision("ignore", ignored, provider, event, verified=verified)
    # refs nobody follows are set aside before anything is validated: a push that also moves a
    # branch Git allows but this check would not (or one no valid name at all) changes nothing
    followed = [(ref, commit, deleted) for ref, commit, deleted in refs
                if isinstance(ref, str) and target.wants(ref)]
    if any(not valid_ref_name(ref) for ref, _, _ in followed):
        return Decision("reject", "the event names a followed ref that is not a valid Git ref "
                        "name", provider, event, verified=verified)
    wanted = [(ref, commit) for ref, commit, deleted in followed if not deleted]
    if wanted:
        ref, commit = wanted[-1]
        note = "" if checked is not None or provider in ("generic", "unknown") else f" ({why})"
        return Decision("sync", f"push to {safe_text(ref, one_line=True)} matches {target.describe()}{note}",
                        provider, event, ref, commit, verified)
    deletions = [ref for ref, _, deleted in refs if deleted]
    if deletions and not [r for r, _, d in refs if not d]:
        shown = _shown(deletions[0])
        return Decision("ignore", f"{shown or 'a ref'} was deleted: nothing to promote",
                        provider, event, shown and deletions[0], verified=verified)
    shown_refs = [_shown(ref) for ref, _, _ in refs if ref]
    names = ", ".join(name for name in shown_refs if name is not None)
    unnamed = sum(name is None for name in shown_refs)
    if unnamed:
        names += f"{' and ' if names else ''}{unnamed} ref(s) not shown (not valid Git ref names)"
    first = _shown(refs[0][0]) if refs else None
    return Decision("ignore", f"push to {names or 'no ref'}: this promotion follows "
                    f"{target.describe()}", provider, event, first and refs[0][0],
                    refs[0][1] if first else None, verified)

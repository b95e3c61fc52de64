"""The plan on the pull request: one comment, updated in place on every push, and a commit
status, through the Git provider's REST API (GitHub, GitLab, Gitea/Forgejo).

The comment is found again by a hidden marker naming the promotion source, and only among the
comments the token's own user wrote: a comment anyone else writes with the marker is never
edited. The body is cut to the provider's limit: diffs first, then the table, saying what was
cut. Nothing here touches the Kestra target. The token is a credential: never printed.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence
from urllib.parse import quote

import httpx

from kestra_promote.version import __version__
from kestra_promote import report
from kestra_promote.git.origin import same_origin
from kestra_promote.models import Action, Plan, Problem, Reason

PROVIDERS = ("github", "gitlab", "gitea")
DEFAULT_API = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}
# the longest comment each accepts (GitHub: 65,536 characters; GitLab: 1,000,000; Gitea keeps
# comments in a TEXT column, 65,535 bytes on MySQL): some room left for the note on what was cut
LIMITS = {"github": 65_000, "gitlab": 999_000, "gitea": 60_000}
SIZES: dict[str, Callable[[str], int]] = {  # how each counts: characters, or bytes (Gitea)
    "github": len, "gitlab": len, "gitea": lambda text: len(text.encode())}
TIMEOUT = 20.0


class ReviewError(Exception):
    """The provider refused or failed a request (the message names no credential)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# GitHub Actions' GITHUB_TOKEN may not read /user (403): its comments are this bot's
ACTIONS_BOT = "github-actions[bot]"
_REPO = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+")


def check_repo(provider: str, repo: str) -> str | None:
    """Why ``repo`` is no repository path of ``provider`` (None when it is one)."""
    segments = repo.split("/")
    if not _REPO.fullmatch(repo) or any(s in (".", "..") for s in segments) or (
            provider != "gitlab" and len(segments) != 2):
        return (f"{repo!r} is not a repository: OWNER/NAME"
                + (" (GitLab: GROUP/.../PROJECT)" if provider == "gitlab" else ""))
    return None


@dataclass(frozen=True)
class Review:
    provider: str
    api: str  # the API's base URL
    repo: str  # owner/name (GitLab: the project's full path)
    number: int  # the pull/merge request
    sha: str  # the head commit the status is for
    token: str = field(repr=False)
    link: str | None = None  # where the whole run can be read


def marker(name: str) -> str:
    return f"<!-- kestra-promote plan: {name} -->"


def quiet(text: str) -> str:
    # names from Git and the target must not notify anyone: @all, @org/team, @user
    return text.replace("@", "@\u2060")


# diffs whose production side came from this repository (what it deployed, unedited since)
_SHOWN = (Reason.CHANGED_IN_GIT, Reason.LEFT_GIT)


def attributable(plan: Plan) -> bool:
    """Whether the plan's inventory is this repository's: it records the origin its objects
    were promoted from, and that is where this plan's source comes from. An inventory without
    an origin (one older than origins, one promoted from a folder outside Git) is nobody's."""
    inventory = plan.inventory_before
    return bool(inventory is not None and inventory.origin and plan.origin
                and same_origin(inventory.origin, plan.origin))


def public(plan: Plan) -> tuple[Plan, int]:
    """``plan`` as a pull request may show it, and how many diffs that leaves out. A diff shows
    production's copy of a flow: whoever reads the request may read it only when that copy came
    from this repository, i.e. for an object this source manages, unedited since it deployed
    it, in a plan nothing refuses, with an inventory that records this repository as its origin
    (a request's own settings could claim another source's name). Anything else (drift, flows
    of others, refused plans) is listed without its diff. Production's objects that are not
    this source's (unmanaged) are not listed at all, nor counted: a request naming a namespace
    must not learn what else production holds there; nor are the objects of an inventory that
    is not this repository's."""
    ours = attributable(plan)
    inventory = plan.inventory_before
    managed = {*inventory.flows, *inventory.files} if inventory is not None and ours else set()
    hidden = 0
    changes = []
    for change in plan.changes:
        if change.action is Action.UNMANAGED or (not ours and change.after is None):
            continue  # production's, not the request's: never named
        if change.diff and (plan.refusals or change.reason not in _SHOWN
                            or change.key not in managed):
            change = dataclasses.replace(change, diff="")
            hidden += 1
        changes.append(change)
    return dataclasses.replace(plan, changes=tuple(changes)), hidden


def withheld(hidden: int) -> str:
    """What a public plan says of the ``hidden`` diffs it leaves out ("" when none)."""
    return (f"{hidden} diff(s) not shown: production's copy did not come from this "
            "repository (edited in production, another source's, an inventory that does not "
            "record this repository, or a refused plan)"
            if hidden else "")


def comment_body(plan: Plan, problems: Sequence[Problem], error: str | None, limit: int,
                 link: str | None, size: Callable[[str], int] = len) -> str:
    """The plan in Markdown, with what refuses it, under ``limit`` (as ``size`` counts)."""
    plan, hidden = public(plan)
    note_withheld = withheld(hidden)
    def render(shown: Plan, note: str = "") -> str:
        text = report.render_plan_markdown(shown)
        if error is not None:
            text += "\n" + report.render_problems_markdown(error, problems)
        for line in (note_withheld, note):
            if line:
                text += f"\n_{line}_\n"
        if link:
            text += f"\n[The whole run]({link})\n"
        return f"{marker(plan.name)}\n{quiet(text)}"

    body = render(plan)
    if size(body) <= limit:
        return body
    without = dataclasses.replace(plan, changes=tuple(dataclasses.replace(c, diff="")
                                                      for c in plan.changes))
    cut = sum(1 for c in plan.changes if c.diff)
    note = f"{cut} diff(s) left out: the comment would be longer than the provider takes"
    body = render(without, note + (" (the whole run has them)" if link else ""))
    if size(body) <= limit:
        return body
    # still too long (thousands of objects): the summary only
    lines = body.splitlines(keepends=True)
    kept, used = [], 0
    tail = f"\n_…cut: {note}, and the list of objects after this point_\n"
    for line in lines:
        if used + size(line) + size(tail) > limit:
            break
        kept.append(line)
        used += size(line)
    return "".join(kept) + tail


def status_of(error: str | None, plan: Plan) -> tuple[str, str]:
    """(success or failure, a description of at most 140 characters)."""
    if error is not None:
        text = error
        state = "failure"
    else:
        text = report.summary_line(plan)
        state = "success"
    return state, text if len(text) <= 140 else text[:137] + "..."


class _Api:
    """One provider's REST calls, over one httpx client."""

    def __init__(self, review: Review, transport: httpx.BaseTransport | None = None) -> None:
        self.review = review
        headers = {"User-Agent": f"kestra-promote/{__version__}", "Accept": "application/json"}
        if review.provider == "github":
            headers.update({"Authorization": f"Bearer {review.token}",
                            "Accept": "application/vnd.github+json"})
        elif review.provider == "gitlab":
            headers["PRIVATE-TOKEN"] = review.token
        else:
            headers["Authorization"] = f"token {review.token}"
        self.http = httpx.Client(base_url=review.api.rstrip("/"), headers=headers,
                                 timeout=TIMEOUT, follow_redirects=False, transport=transport)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except Exception as exc:  # an invalid URL too; the message may quote a header: kind only
            raise ReviewError(f"{method} {path}: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise ReviewError(f"{method} {path} answered HTTP {response.status_code}",
                              response.status_code)
        try:
            return response.json() if response.content else None
        except ValueError:
            raise ReviewError(f"{method} {path} answered something that is not JSON") from None

    # -- where things are, per provider ------------------------------------------------------

    def _repo(self) -> str:
        repo = self.review.repo
        if self.review.provider == "gitlab":
            return f"/projects/{quote(repo, safe='')}"
        owner, _, name = repo.partition("/")
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    def me(self) -> Any:
        try:
            user = self.call("GET", "/user")
        except ReviewError as exc:
            if self.review.provider == "github" and exc.status == 403:
                return ACTIONS_BOT  # an Actions token: it writes as the Actions bot
            raise
        if not isinstance(user, dict):
            raise ReviewError("GET /user answered no user")
        return user.get("id") if self.review.provider == "gitlab" else user.get("login")

    def comments(self) -> list[dict[str, Any]]:
        number = self.review.number
        if self.review.provider == "gitlab":
            path, size = f"{self._repo()}/merge_requests/{number}/notes", "per_page"
        else:
            path, size = f"{self._repo()}/issues/{number}/comments", (
                "per_page" if self.review.provider == "github" else "limit")
        # oldest first (GitLab lists newest first unless asked)
        order = {"sort": "asc", "order_by": "created_at"} if self.review.provider == "gitlab" \
            else {}
        found: dict[Any, dict[str, Any]] = {}
        for page in range(1, 51):  # 5,000 comments at the most
            batch = self.call("GET", path, params={size: 100, "page": page, **order})
            if not isinstance(batch, list):
                raise ReviewError(f"GET {path} answered no list")
            new = {c.get("id"): c for c in batch if isinstance(c, dict) and c.get("id") not in found}
            found.update(new)
            if len(batch) < 100 or not new:  # the last page, or a server that does not page
                break
        return list(found.values())

    def author(self, comment: dict[str, Any]) -> Any:
        user = comment.get("author" if self.review.provider == "gitlab" else "user") or {}
        return user.get("id") if self.review.provider == "gitlab" else user.get("login")

    def create(self, body: str) -> None:
        number = self.review.number
        path = (f"{self._repo()}/merge_requests/{number}/notes"
                if self.review.provider == "gitlab" else f"{self._repo()}/issues/{number}/comments")
        self.call("POST", path, json={"body": body})

    def update(self, comment_id: Any, body: str) -> None:
        if self.review.provider == "gitlab":
            self.call("PUT", f"{self._repo()}/merge_requests/{self.review.number}/notes/"
                             f"{quote(str(comment_id), safe='')}", json={"body": body})
        else:
            self.call("PATCH", f"{self._repo()}/issues/comments/{quote(str(comment_id), safe='')}",
                      json={"body": body})

    def is_open(self) -> bool:
        """Whether the request is open now, as the provider says: GitHub and Gitea answer a
        pull request's ``state`` open or closed, GitLab a merge request's opened, closed, merged
        or locked (locked: being merged, still open)."""
        number = self.review.number
        path = (f"{self._repo()}/merge_requests/{number}" if self.review.provider == "gitlab"
                else f"{self._repo()}/pulls/{number}")
        request = self.call("GET", path)
        state = request.get("state") if isinstance(request, dict) else None
        if state not in ("open", "opened", "locked", "closed", "merged"):
            raise ReviewError(f"GET {path} answered no request state")
        return state in ("open", "opened", "locked")

    def status(self, state: str, description: str, context: str) -> None:
        sha = quote(self.review.sha, safe="")
        link = self.review.link
        if self.review.provider == "gitlab":
            params = {"state": "success" if state == "success" else "failed", "name": context,
                      "description": description, **({"target_url": link} if link else {})}
            self.call("POST", f"{self._repo()}/statuses/{sha}", params=params)
        else:
            self.call("POST", f"{self._repo()}/statuses/{sha}", json={
                "state": state, "context": context, "description": description,
                **({"target_url": link} if link else {})})


def publish(review: Review, plan: Plan, problems: Sequence[Problem] = (),
            error: str | None = None, transport: httpx.BaseTransport | None = None,
            note: Callable[[str], None] = lambda text: None) -> None:
    """Post or update the plan's comment, then set the head commit's status. ReviewError when
    the provider refuses (the caller decides what that means)."""
    body = comment_body(plan, problems, error, LIMITS[review.provider], review.link,
                        SIZES[review.provider])
    post(review, plan.name, body, status_of(error, plan), transport, note, "plan")


def post(review: Review, name: str, body: str, status: tuple[str, str] | None = None,
         transport: httpx.BaseTransport | None = None,
         note: Callable[[str], None] = lambda text: None, what: str = "plan") -> None:
    """Post ``body`` (which starts with ``marker(name)``) as the request's comment, or update
    the one posted before; then, with ``status`` (state, description), set the head commit's
    status ``kestra-promote/NAME``. ReviewError when the provider refuses."""
    api = _Api(review, transport)
    try:
        me = api.me()
        # the marker opens our comment: one quoted in a diff or by someone else is not it
        mine = [c for c in api.comments()
                if str(c.get("body") or "").startswith(marker(name)) and api.author(c) == me]
        if mine:
            api.update(min(mine, key=lambda c: str(c.get("id")).zfill(20))["id"], body)
            note(f"Updated the {what}'s comment on {review.provider} request #{review.number}.")
        else:
            api.create(body)
            note(f"Posted the {what} on {review.provider} request #{review.number}.")
        if status is not None:
            api.status(*status, f"kestra-promote/{name}")
    finally:
        api.close()


def request_open(review: Review, transport: httpx.BaseTransport | None = None) -> bool:
    """Whether the provider says the request is open now. ReviewError when it cannot tell."""
    api = _Api(review, transport)
    try:
        return api.is_open()
    finally:
        api.close()

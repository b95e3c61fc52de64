"""A fake Git provider REST API: the pull-request comment and commit-status endpoints of GitHub,
GitLab and Gitea/Forgejo, as their documentation describes them, with the same serving
conventions as fake_kestra (``handle``; serve it with ``fake_kestra.serve``).

- GitHub: GET /user; GET|POST /repos/{o}/{r}/issues/{n}/comments (``per_page``, ``page``);
  PATCH /repos/{o}/{r}/issues/comments/{id}; POST /repos/{o}/{r}/statuses/{sha}
  (state, context, description of at most 140 characters, target_url); ``Authorization: Bearer``.
- GitLab: GET /user; GET|POST /projects/{path}/merge_requests/{iid}/notes (``per_page``,
  ``page``); PUT /projects/{path}/merge_requests/{iid}/notes/{id}; POST
  /projects/{path}/statuses/{sha}?state=&name=&description=&target_url=; ``PRIVATE-TOKEN``.
- Gitea: as GitHub, but its list of an issue's comments is not paged (every comment, whatever
  ``page`` and ``limit`` say); ``Authorization: token``; its limit is in bytes (a TEXT column).
- The request itself: GET /repos/{o}/{r}/pulls/{n} (GitHub, Gitea: ``state`` open or closed,
  ``merged``), GET /projects/{path}/merge_requests/{iid} (GitLab: ``state`` opened, closed or
  merged); ``closed`` holds the requests closed so far (merged or not: ``merged``).
GitLab lists notes newest first unless ``sort=asc``. GitHub Actions' GITHUB_TOKEN cannot read
/user (403) and comments as ``github-actions[bot]``. Comments longer than the provider's limit
are refused (422, GitLab 400); a comment may be edited by its author only (403).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fake_kestra.app import Response

LIMITS = {"github": 65_536, "gitlab": 1_000_000, "gitea": 65_535}


def _json(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data).encode(), {"Content-Type": "application/json"})


@dataclass
class FakeProvider:
    provider: str  # github, gitlab or gitea
    tokens: dict[str, str] = field(default_factory=lambda: {
        "t0ken-of-the-bot": "bot", "t0ken-of-alice": "alice",
        "t0ken-of-actions": "github-actions[bot]"})
    comments: list[dict[str, Any]] = field(default_factory=list)  # every request's, in order
    statuses: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail: int | None = None  # answer every request with this status
    closed: set[int] = field(default_factory=set)  # requests closed, merged or not
    merged: set[int] = field(default_factory=set)

    def _user(self, headers: dict[str, str]) -> str | None:
        if self.provider == "gitlab":
            token = headers.get("private-token", "")
        else:
            scheme = "Bearer " if self.provider == "github" else "token "
            value = headers.get("authorization", "")
            token = value[len(scheme):] if value.startswith(scheme) else ""
        return self.tokens.get(token)

    def _user_json(self, name: str) -> dict[str, Any]:
        if self.provider == "gitlab":
            return {"id": sorted(self.tokens.values()).index(name) + 1, "username": name}
        return {"login": name, "id": sorted(self.tokens.values()).index(name) + 1}

    def _size(self, text: str) -> int:
        return len(text.encode()) if self.provider == "gitea" else len(text)

    def post_as(self, user: str, request: int, body: str) -> None:
        """Someone else comments on the request."""
        self.comments.append({"id": len(self.comments) + 1, "request": request, "body": body,
                              "user": user})

    def _shown(self, comment: dict[str, Any]) -> dict[str, Any]:
        key = "author" if self.provider == "gitlab" else "user"
        return {"id": comment["id"], "body": comment["body"],
                key: self._user_json(comment["user"])}

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        parts = urlsplit(target)
        path, query = unquote(parts.path), parse_qs(parts.query)
        headers = {k.lower(): v for k, v in headers.items()}
        self.requests.append((method, target))
        if self.fail is not None:
            return _json({"message": "failing"}, self.fail)
        user = self._user(headers)
        if user is None:
            return _json({"message": "Bad credentials"}, 401)
        if method == "GET" and path.endswith("/user"):
            if user == "github-actions[bot]":
                return _json({"message": "Resource not accessible by integration"}, 403)
            return _json(self._user_json(user))
        data = json.loads(body or b"{}") if body else {}
        if self.provider == "gitlab":
            listing = re.fullmatch(r".*/projects/(.+)/merge_requests/(\d+)/notes", path)
            one = re.fullmatch(r".*/projects/(.+)/merge_requests/(\d+)/notes/(\d+)", path)
            status = re.fullmatch(r".*/projects/(.+)/statuses/(\w+)", path)
        else:
            listing = re.fullmatch(r".*/repos/([^/]+/[^/]+)/issues/(\d+)/comments", path)
            one = re.fullmatch(r".*/repos/([^/]+/[^/]+)/issues/comments/(\d+)", path)
            status = re.fullmatch(r".*/repos/([^/]+/[^/]+)/statuses/(\w+)", path)
        request = re.fullmatch(r".*/projects/(.+)/merge_requests/(\d+)" if self.provider ==
                               "gitlab" else r".*/repos/([^/]+/[^/]+)/pulls/(\d+)", path)
        if request and method == "GET":
            number = int(request[2])
            merged = number in self.merged
            if self.provider == "gitlab":
                state = "merged" if merged else "closed" if number in self.closed else "opened"
                return _json({"iid": number, "state": state})
            return _json({"number": number, "merged": merged,
                          "state": "closed" if number in self.closed | self.merged else "open"})
        if listing and method == "GET":
            size = int((query.get("limit" if self.provider == "gitea" else "per_page")
                        or ["30"])[0])
            page = int((query.get("page") or ["1"])[0])
            mine = [self._shown(c) for c in self.comments if c["request"] == int(listing[2])]
            if self.provider == "gitea":
                return _json(mine)
            if self.provider == "gitlab" and (query.get("sort") or ["desc"])[0] != "asc":
                mine.reverse()
            return _json(mine[(page - 1) * size: page * size])
        if listing and method == "POST":
            text = str(data.get("body", ""))
            if self._size(text) > LIMITS[self.provider]:
                return _json({"message": "Body is too long"},
                             400 if self.provider == "gitlab" else 422)
            self.post_as(user, int(listing[2]), text)
            return _json(self._shown(self.comments[-1]), 201)
        if one and method in ("PATCH", "PUT"):
            comment = next((c for c in self.comments if c["id"] == int(one[one.lastindex])),
                           None)
            if comment is None:
                return _json({"message": "Not Found"}, 404)
            if comment["user"] != user:
                return _json({"message": "Forbidden"}, 403)
            text = str(data.get("body", ""))
            if self._size(text) > LIMITS[self.provider]:
                return _json({"message": "Body is too long"}, 422)
            comment["body"] = text
            return _json(self._shown(comment))
        if status and method == "POST":
            values = ({k: v[0] for k, v in query.items()} if self.provider == "gitlab" else data)
            allowed = ("success", "failed", "pending", "running", "canceled") \
                if self.provider == "gitlab" else ("success", "failure", "pending", "error")
            if values.get("state") not in allowed or len(values.get("description", "")) > 140:
                return _json({"message": "Validation Failed"}, 422)
            self.statuses.append({"sha": status[2], **values})
            return _json(values, 201)
        return _json({"message": "Not Found"}, 404)

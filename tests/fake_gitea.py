"""A fake Gitea: the REST endpoints the demo stack's bootstrap calls, as Gitea documents them
(/api/healthz, repos, user/repos, repos/{owner}/{repo}/contents, repos/{owner}/{repo}/hooks).
Same request-log and serving conventions as fake_kestra (FakeGitea.handle)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from fake_kestra.app import RecordedRequest, Response


def _json(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data).encode(), {"Content-Type": "application/json"})


@dataclass
class FakeGitea:
    username: str = "kestra"
    password: str = "Gitea-Admin-2026"
    repos: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)

    def writes(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        path = target.split("?")[0]
        headers = {k.lower(): v for k, v in headers.items()}
        self.requests.append(RecordedRequest(method, path, {}, {}, body))
        if path == "/api/healthz":
            return _json({"status": "pass"})
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if headers.get("authorization") != expected:
            return _json({"message": "user does not exist"}, 401)
        data = json.loads(body) if body else {}
        if path == "/api/v1/user/repos" and method == "POST":
            key = (self.username, data["name"])
            if key in self.repos:
                return _json({"message": "The repository with the same name already exists."}, 409)
            self.repos[key] = {"name": data["name"], "full_name": "/".join(key), "empty": True,
                               "default_branch": data.get("default_branch", "main"),
                               "files": {}, "commits": [], "hooks": []}
            return _json(self._public(key), 201)
        match = re.fullmatch(r"/api/v1/repos/([^/]+)/([^/]+)(/contents|/hooks)?(?:/(\d+))?", path)
        if not match:
            return _json({"message": "not found"}, 404)
        key, suffix, hook_id = (match.group(1), match.group(2)), match.group(3), match.group(4)
        repo = self.repos.get(key)
        if repo is None:
            return _json({"message": "The target couldn't be found."}, 404)
        if suffix == "/hooks" and hook_id is not None:  # EditHookOption; DELETE: 204
            hook = next((h for h in repo["hooks"] if h["id"] == int(hook_id)), None)
            if hook is None:
                return _json({"message": "The target couldn't be found."}, 404)
            if method == "DELETE":
                repo["hooks"].remove(hook)
                return Response(204)
            if method == "PATCH":
                config = dict(data.get("config") or {})
                hook["secret"] = config.pop("secret", hook["secret"])
                hook["config"].update(config)
                for field in ("events", "active", "authorization_header", "branch_filter"):
                    if field in data:
                        hook[field] = data[field]
                return _json({k: v for k, v in hook.items()
                              if k not in ("secret", "authorization_header")})
        if suffix is None and method == "GET":
            return _json(self._public(key))
        if suffix == "/contents" and method == "POST":
            for item in data["files"]:
                if item["operation"] == "create" and item["path"] in repo["files"]:
                    return _json({"message": f"file already exists: {item['path']}"}, 422)
                repo["files"][item["path"]] = base64.b64decode(item["content"])
            repo["commits"].append({"message": data["message"], "branch": data["branch"]})
            repo["empty"] = False
            return _json({"commit": {"message": data["message"]}}, 201)
        if suffix == "/hooks" and method == "GET":
            return _json([{k: v for k, v in h.items() if k not in ("secret", "authorization_header")}
                          for h in repo["hooks"]])
        if suffix == "/hooks" and method == "POST":
            hook = {"id": len(repo["hooks"]) + 1, "type": data["type"], "events": data["events"],
                    "active": data["active"],
                    "config": {k: v for k, v in data["config"].items() if k != "secret"},
                    "secret": data["config"].get("secret"),
                    "authorization_header": data.get("authorization_header", ""),
                    "branch_filter": data.get("branch_filter", "*")}
            repo["hooks"].append(hook)
            hidden = ("secret", "authorization_header")  # Gitea never shows them back
            return _json({k: v for k, v in hook.items() if k not in hidden}, 201)
        return _json({"message": "method not allowed"}, 405)

    def _public(self, key: tuple[str, str]) -> dict[str, Any]:
        repo = self.repos[key]
        return {k: repo[k] for k in ("name", "full_name", "empty", "default_branch")}

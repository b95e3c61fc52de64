"""A fake Gitea: the REST endpoints the demo stack's bootstrap calls, as Gitea 1.22 documents
them (/api/healthz; users/{username}; admin/users; user/repos; repos/{owner}/{repo} with
/contents, /hooks, /collaborators/{user}[/permission], /branch_protections[/{name}]), with
Gitea's access rules for them: basic auth of any user; admin/* for site admins only; a
repository visible to its owner, site admins and collaborators; contents written with write
access, never to a branch whose protection disables push; hooks, collaborators and branch
protections for repository admins. Same request-log and serving conventions as fake_kestra
(FakeGitea.handle)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from fake_kestra.app import RecordedRequest, Response

LEVELS = ("none", "read", "write", "admin", "owner")
# Gitea 1.22's fields (it has no block_admin_merge_override)
PROTECTION_DEFAULTS: dict[str, Any] = {
    "enable_push": False, "enable_push_whitelist": False, "push_whitelist_usernames": [],
    "enable_merge_whitelist": False, "merge_whitelist_usernames": [],
    "required_approvals": 0, "enable_approvals_whitelist": False,
    "approvals_whitelist_username": [], "dismiss_stale_approvals": False,
    "block_on_rejected_reviews": False}


def _json(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data).encode(), {"Content-Type": "application/json"})


def _error(status: int, message: str) -> Response:
    return _json({"message": message}, status)


@dataclass
class FakeGitea:
    username: str = "kestra"          # the site admin the gitea-admin service creates
    password: str = "Gitea-Admin-2026"
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    repos: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.users.setdefault(self.username, {
            "login": self.username, "password": self.password, "is_admin": True,
            "email": f"{self.username}@example.com", "must_change_password": False,
            "max_repo_creation": -1, "allow_create_organization": True})

    def writes(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]

    def _doer(self, headers: dict[str, str]) -> dict[str, Any] | None:
        value = headers.get("authorization", "")
        if not value.startswith("Basic "):
            return None
        name, _, password = base64.b64decode(value[6:]).decode().partition(":")
        user = self.users.get(name)
        return user if user is not None and user["password"] == password else None

    def access(self, key: tuple[str, str], user: dict[str, Any]) -> str:
        """Gitea's access mode of ``user`` on repository ``key``."""
        if user["login"] == key[0]:
            return "owner"
        if user["is_admin"]:
            return "admin"
        return self.repos[key]["collaborators"].get(user["login"], "none")

    def can(self, key: tuple[str, str], user: dict[str, Any], level: str) -> bool:
        return LEVELS.index(self.access(key, user)) >= LEVELS.index(level)

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        path = target.split("?")[0]
        headers = {k.lower(): v for k, v in headers.items()}
        self.requests.append(RecordedRequest(method, path, {}, {}, body))
        if path == "/api/healthz":
            return _json({"status": "pass"})
        doer = self._doer(headers)
        if doer is None:
            return _error(401, "user does not exist")
        data = json.loads(body) if body else {}
        if match := re.fullmatch(r"/api/v1/users/([^/]+)", path):
            user = self.users.get(match.group(1))
            if method != "GET":
                return _error(405, "method not allowed")
            return _json(self._public_user(user)) if user else _error(404, "user does not exist")
        if path.startswith("/api/v1/admin/"):
            if not doer["is_admin"]:
                return _error(403, "user should be the site admin")
            return self._admin(method, path, data)
        if path == "/api/v1/user/repos" and method == "POST":
            return self._create_repo(doer, data)
        match = re.fullmatch(r"/api/v1/repos/([^/]+)/([^/]+)(/[a-z_]+)?(?:/([^/]+))?(/permission)?",
                             path)
        if not match:
            return _error(404, "not found")
        key, suffix, item = (match.group(1), match.group(2)), match.group(3), match.group(4)
        repo = self.repos.get(key)
        if repo is None or not self.can(key, doer, "read"):
            return _error(404, "The target couldn't be found.")
        if suffix is None and method == "GET":
            return _json(self._public(key))
        if suffix == "/contents" and method == "POST":
            return self._commit(key, doer, data)
        if suffix == "/collaborators" and match.group(5) and method == "GET":
            user = self.users.get(item or "")
            if user is None:
                return _error(404, "user does not exist")
            if not (doer["is_admin"] or doer is user or self.can(key, doer, "admin")):
                return _error(403, "Only admins can query all permissions")
            return _json({"permission": self.access(key, user), "user": self._public_user(user)})
        if not self.can(key, doer, "admin"):  # hooks, collaborators, branch protections
            return _error(403, "user should be an owner or a collaborator with admin write")
        if suffix == "/collaborators" and item and method == "PUT":
            if item not in self.users:
                return _error(422, "user does not exist")
            permission = data.get("permission") or "write"
            if permission not in ("read", "write", "admin"):
                return _error(422, "invalid permission")
            repo["collaborators"][item] = permission
            return Response(204)
        if suffix == "/branch_protections":
            return self._protection(repo, method, item, data)
        if suffix == "/hooks":
            return self._hooks(repo, method, item, data)
        return _error(405, "method not allowed")

    # -- admin/users --------------------------------------------------------------------------

    def _admin(self, method: str, path: str, data: dict[str, Any]) -> Response:
        if path == "/api/v1/admin/users" and method == "POST":  # CreateUserOption
            for name in ("username", "email", "password"):
                if not data.get(name):
                    return _error(422, f"[{name.title()}]: Required")
            if data["username"] in self.users:
                return _error(422, "user already exists")
            self.users[data["username"]] = {
                "login": data["username"], "password": data["password"], "is_admin": False,
                "email": data["email"],
                # Gitea 1.22 makes an admin-created user change its password unless told not to
                "must_change_password": data.get("must_change_password", True),
                "max_repo_creation": -1, "allow_create_organization": True}
            return _json(self._public_user(self.users[data["username"]]), 201)
        match = re.fullmatch(r"/api/v1/admin/users/([^/]+)", path)
        if match and method == "PATCH":  # EditUserOption: login_name and source_id required
            user = self.users.get(match.group(1))
            if user is None:
                return _error(404, "user does not exist")
            if "source_id" not in data or not data.get("login_name"):
                return _error(422, "[LoginName]: Required")
            if data.get("password"):
                user["password"] = data["password"]
            for name, key in (("admin", "is_admin"), ("must_change_password", "must_change_password"),
                              ("max_repo_creation", "max_repo_creation"),
                              ("allow_create_organization", "allow_create_organization")):
                if data.get(name) is not None:
                    user[key] = data[name]
            return _json(self._public_user(user))
        return _error(405, "method not allowed")

    # -- repositories ---------------------------------------------------------------------------

    def _create_repo(self, doer: dict[str, Any], data: dict[str, Any]) -> Response:
        if not doer["is_admin"] and doer["max_repo_creation"] == 0:
            return _error(403, "user has reached maximum limit of repositories")
        key = (doer["login"], data["name"])
        if key in self.repos:
            return _error(409, "The repository with the same name already exists.")
        self.repos[key] = {"name": data["name"], "full_name": "/".join(key), "empty": True,
                           "default_branch": data.get("default_branch", "main"),
                           "files": {}, "commits": [], "hooks": [], "collaborators": {},
                           "protections": {}}
        return _json(self._public(key), 201)

    def _commit(self, key: tuple[str, str], doer: dict[str, Any], data: dict[str, Any]) -> Response:
        repo = self.repos[key]
        if not self.can(key, doer, "write"):
            return _error(403, "user does not have write access")
        branch = data.get("new_branch") or data["branch"]
        rule = repo["protections"].get(branch)
        if rule is not None and not (rule["enable_push"] and (
                not rule["enable_push_whitelist"]
                or doer["login"] in rule["push_whitelist_usernames"])):
            return _error(403, f"branch {branch} is protected from changes")
        for item in data["files"]:
            if item["operation"] == "create" and item["path"] in repo["files"]:
                return _error(422, f"file already exists: {item['path']}")
            repo["files"][item["path"]] = base64.b64decode(item["content"])
        repo["commits"].append({"message": data["message"], "branch": branch,
                                "author": doer["login"]})
        repo["empty"] = False
        return _json({"commit": {"message": data["message"]}}, 201)

    def _protection(self, repo: dict[str, Any], method: str, name: str | None,
                    data: dict[str, Any]) -> Response:
        rules = repo["protections"]
        if name is None and method == "GET":
            return _json(list(rules.values()))
        if name is None and method == "POST":
            rule_name = data.get("rule_name") or data.get("branch_name")
            if not rule_name:
                return _error(422, "rule_name is required")
            if rule_name in rules:
                return _error(403, "Branch protection already exist")
            rule = {"rule_name": rule_name, "branch_name": rule_name, **PROTECTION_DEFAULTS}
            error = self._apply_rule(repo, rule, data)
            if error:
                return error
            rules[rule_name] = rule
            return _json(rule, 201)
        rule = rules.get(name or "")
        if rule is None:
            return _error(404, "The target couldn't be found.")
        if method == "GET":
            return _json(rule)
        if method == "PATCH":
            return self._apply_rule(repo, rule, data) or _json(rule)
        if method == "DELETE":
            del rules[rule["rule_name"]]
            return Response(204)
        return _error(405, "method not allowed")

    def _apply_rule(self, repo: dict[str, Any], rule: dict[str, Any],
                    data: dict[str, Any]) -> Response | None:
        key = tuple(repo["full_name"].split("/", 1))
        for field_name in ("merge_whitelist_usernames", "approvals_whitelist_username",
                           "push_whitelist_usernames"):
            for name in data.get(field_name) or []:  # Gitea: whitelisted users need write access
                user = self.users.get(name)
                if user is None or not self.can(key, user, "write"):  # type: ignore[arg-type]
                    return _error(422, f"{name} does not have write access")
        for field_name in PROTECTION_DEFAULTS:
            if data.get(field_name) is not None:
                rule[field_name] = data[field_name]
        return None

    def _hooks(self, repo: dict[str, Any], method: str, hook_id: str | None,
               data: dict[str, Any]) -> Response:
        hidden = ("secret", "authorization_header")  # Gitea never shows them back
        if hook_id is not None:  # EditHookOption; DELETE: 204
            hook = next((h for h in repo["hooks"] if str(h["id"]) == hook_id), None)
            if hook is None:
                return _error(404, "The target couldn't be found.")
            if method == "DELETE":
                repo["hooks"].remove(hook)
                return Response(204)
            if method == "PATCH":
                config = dict(data.get("config") or {})
                hook["secret"] = config.pop("secret", hook["secret"])
                hook["config"].update(config)
                for name in ("events", "active", "authorization_header", "branch_filter"):
                    if name in data:
                        hook[name] = data[name]
                return _json({k: v for k, v in hook.items() if k not in hidden})
            return _error(405, "method not allowed")
        if method == "GET":
            return _json([{k: v for k, v in h.items() if k not in hidden} for h in repo["hooks"]])
        if method == "POST":
            hook = {"id": len(repo["hooks"]) + 1, "type": data["type"], "events": data["events"],
                    "active": data["active"],
                    "config": {k: v for k, v in data["config"].items() if k != "secret"},
                    "secret": data["config"].get("secret"),
                    "authorization_header": data.get("authorization_header", ""),
                    "branch_filter": data.get("branch_filter", "*")}
            repo["hooks"].append(hook)
            return _json({k: v for k, v in hook.items() if k not in hidden}, 201)
        return _error(405, "method not allowed")

    def _public(self, key: tuple[str, str]) -> dict[str, Any]:
        repo = self.repos[key]
        return {k: repo[k] for k in ("name", "full_name", "empty", "default_branch")}

    @staticmethod
    def _public_user(user: dict[str, Any]) -> dict[str, Any]:
        return {"login": user["login"], "email": user["email"], "is_admin": user["is_admin"]}

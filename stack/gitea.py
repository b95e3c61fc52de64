"""The few Gitea API calls the demo stack needs (Gitea's documented REST API, /api/v1, as of
Gitea 1.22). Every call is made as the Git server's admin, the bootstrap's own account."""

from __future__ import annotations

import base64
from typing import Any, Mapping

import httpx


class GiteaError(Exception):
    pass


class Gitea:
    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    @classmethod
    def connect(cls, url: str, username: str, password: str,
                transport: httpx.BaseTransport | None = None) -> Gitea:
        return cls(httpx.Client(base_url=url.rstrip("/"), auth=(username, password), timeout=30,
                                transport=transport))

    def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201),
              **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise GiteaError(f"{method} {path}: {exc}") from exc
        if response.status_code not in ok:
            raise GiteaError(f"{method} {path} failed with HTTP {response.status_code}: "
                             f"{response.text[:300]}")
        return response

    def healthy(self) -> bool:
        try:
            return self._http.get("/api/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    # -- users (admin API) ------------------------------------------------------------------

    def user(self, name: str) -> dict[str, Any] | None:
        """GET /users/{username}: the user, or None when there is none (404)."""
        response = self._call("GET", f"/api/v1/users/{name}", ok=(200, 404))
        return response.json() if response.status_code == 200 else None

    def create_user(self, name: str, *, password: str, email: str) -> None:
        """POST /admin/users (CreateUserOption): a user, never an admin (the option has no
        admin field); must_change_password off, or Git over HTTP refuses the password."""
        self._call("POST", "/api/v1/admin/users", json={
            "username": name, "email": email, "password": password,
            "must_change_password": False, "send_notify": False})

    def set_user(self, name: str, *, password: str) -> None:
        """PATCH /admin/users/{username} (EditUserOption, which requires login_name and
        source_id: a local user is source 0, its login its name): the password of .env (Gitea
        never shows it back, so it is written every time), not an admin, and no repository or
        organisation of its own (such a repository's webhooks could call production)."""
        self._call("PATCH", f"/api/v1/admin/users/{name}", json={
            "login_name": name, "source_id": 0, "password": password,
            "must_change_password": False, "admin": False, "max_repo_creation": 0,
            "allow_create_organization": False})

    # -- repositories -----------------------------------------------------------------------

    def repository(self, owner: str, name: str) -> dict[str, Any] | None:
        response = self._call("GET", f"/api/v1/repos/{owner}/{name}", ok=(200, 404))
        return response.json() if response.status_code == 200 else None

    def create_repository(self, name: str, *, description: str, branch: str) -> dict[str, Any]:
        return self._call("POST", "/api/v1/user/repos", json={
            "name": name, "description": description, "private": True,
            "auto_init": False, "default_branch": branch}).json()

    def commit_files(self, owner: str, name: str, files: Mapping[str, bytes], *, branch: str,
                     message: str, base: str | None = None) -> None:
        """One commit adding ``files`` (path -> content) to ``branch`` (ChangeFilesOptions), a
        new branch from ``base`` when given."""
        self._call("POST", f"/api/v1/repos/{owner}/{name}/contents", json={
            "branch": base or branch, "new_branch": branch, "message": message,
            "files": [{"operation": "create", "path": path,
                       "content": base64.b64encode(content).decode()}
                      for path, content in sorted(files.items())]})

    def permission(self, owner: str, name: str, user: str) -> str:
        """GET /repos/{owner}/{repo}/collaborators/{collaborator}/permission: "none", "read",
        "write", "admin" or "owner" (RepoCollaboratorPermission)."""
        return str(self._call("GET", f"/api/v1/repos/{owner}/{name}/collaborators/{user}/"
                              "permission").json().get("permission", "none"))

    def add_collaborator(self, owner: str, name: str, user: str, permission: str) -> None:
        """PUT /repos/{owner}/{repo}/collaborators/{collaborator} (AddCollaboratorOption): adds
        the user, or changes an existing collaborator's permission; 204."""
        self._call("PUT", f"/api/v1/repos/{owner}/{name}/collaborators/{user}",
                   json={"permission": permission}, ok=(204,))

    def branch_protection(self, owner: str, name: str, rule: str) -> dict[str, Any] | None:
        """GET /repos/{owner}/{repo}/branch_protections/{name}: the rule, or None (404)."""
        response = self._call("GET", f"/api/v1/repos/{owner}/{name}/branch_protections/{rule}",
                              ok=(200, 404))
        return response.json() if response.status_code == 200 else None

    def create_branch_protection(self, owner: str, name: str, rule: str,
                                 options: Mapping[str, Any]) -> None:
        """POST /repos/{owner}/{repo}/branch_protections (CreateBranchProtectionOption)."""
        self._call("POST", f"/api/v1/repos/{owner}/{name}/branch_protections",
                   json={"rule_name": rule, **options})

    def edit_branch_protection(self, owner: str, name: str, rule: str,
                               options: Mapping[str, Any]) -> None:
        """PATCH /repos/{owner}/{repo}/branch_protections/{name} (EditBranchProtectionOption)."""
        self._call("PATCH", f"/api/v1/repos/{owner}/{name}/branch_protections/{rule}",
                   json=dict(options))

    def hooks(self, owner: str, name: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/api/v1/repos/{owner}/{name}/hooks").json()

    @staticmethod
    def _push_hook(url: str, secret: str, branch: str) -> dict[str, Any]:
        # the secret goes in the Authorization header too: a Kestra flow can check a header, not
        # the HMAC signature (it never sees the body's bytes)
        return {"active": True, "events": ["push"], "branch_filter": branch,
                "authorization_header": f"Bearer {secret}",
                "config": {"url": url, "content_type": "json", "secret": secret}}

    def create_push_hook(self, owner: str, name: str, *, url: str, secret: str, branch: str) -> None:
        self._call("POST", f"/api/v1/repos/{owner}/{name}/hooks",
                   json={"type": "gitea", **self._push_hook(url, secret, branch)})

    def update_push_hook(self, owner: str, name: str, hook_id: int, *, url: str, secret: str,
                         branch: str) -> None:
        """Set the hook's secret and Authorization header again: Gitea never shows them back, so
        a changed secret cannot be seen, only written."""
        self._call("PATCH", f"/api/v1/repos/{owner}/{name}/hooks/{hook_id}",
                   json=self._push_hook(url, secret, branch))

    def delete_hook(self, owner: str, name: str, hook_id: int) -> None:
        self._call("DELETE", f"/api/v1/repos/{owner}/{name}/hooks/{hook_id}", ok=(204, 404))

    def close(self) -> None:
        self._http.close()

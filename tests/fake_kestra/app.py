"""The fake Kestra server's state and request handling (framework-free, thread-safe).

Behaviour follows `kestra/API.md`: tenant check, basic/bearer auth, revision semantics,
validation with Kestra's model rules, export/import ZIPs, namespace files, KV, executions,
and both error formats (1.x JSON errors, 2.0 problem+json), selected by `version`.
Every request is recorded; faults can be injected on the Nth request matching a pattern.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote

from . import rules

DROP = object()  # handler result meaning: close the connection without answering
_REVISION_LINE = re.compile(r"^revision:[^\n]*(?:\n|$)", re.MULTILINE)


def _strip_revision(source: str) -> str:
    return _REVISION_LINE.sub("", source)


def _comparable(source: str) -> str:
    return _strip_revision(source.replace("\r\n", "\n").replace("\r", "\n"))


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names; the Authorization value is not kept
    body: bytes
    authorized: bool = False
    status: int = 0

    @property
    def is_write(self) -> bool:
        """Changes server state (validation and exports are POST/GET reads)."""
        if self.method not in ("POST", "PUT", "DELETE"):
            return False
        return not re.search(r"/flows/(validate|export/by-ids)$", self.path)


@dataclass
class Fault:
    method: str  # an HTTP method, or WRITE for any request that changes state
    pattern: str = ""  # regex searched in the path
    nth: int = 1  # first matching request affected (1-based)
    times: int = 1
    status: int | None = None  # answer this status without processing the request
    drop: bool = False  # close the connection without answering
    after: bool = False  # with drop: process the request first, then lose the answer
    delay: float = 0.0  # seconds to wait before handling
    seen: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method == "WRITE":  # any request that changes state
            return RecordedRequest(method, path, {}, {}, b"").is_write
        return method == self.method and re.search(self.pattern, path) is not None


@dataclass
class Revision:
    revision: int
    source: str
    deleted: bool = False
    disabled: bool = False
    updated: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class HttpError(Exception):
    def __init__(self, status: int, message: str = "", errors: tuple = (), kind: str = "",
                 empty: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.errors, self.kind, self.empty = (
            status, message, errors, kind, empty)


_TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict",
           410: "Gone", 422: "Unprocessable Entity", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 429: "Too Many Requests"}


def _json(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data, default=str).encode(), {"Content-Type": "application/json"})


def _parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """(part name, file name, bytes) of each part of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        parts.append((str(name), filename, part.get_payload(decode=True) or b""))
    return parts


class FakeKestra:
    """An in-memory Kestra. Configure the edition, version and credentials to emulate."""

    def __init__(
        self, *, version: str = "2.0.3", edition: str = "oss", tenants: tuple[str, ...] = ("main",),
        username: str | None = "admin@kestra.io", password: str | None = "Admin1234!",
        token: str | None = None, plugins: frozenset[str] = rules.DEFAULT_PLUGINS,
        open_urls: tuple[str, ...] = ("/api/v1/main/executions/webhook/",),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.version, self.edition, self.tenants = version, edition, tenants
        self.username, self.password, self.token = username, password, token
        self.plugins, self.open_urls, self._sleep = plugins, open_urls, sleep
        self.flows: dict[tuple[str, str, str], list[Revision]] = {}
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}
        self.kv: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.executions: list[dict[str, Any]] = []
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self._lock = threading.RLock()

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    # -- helpers for tests ------------------------------------------------------------------

    def inject(self, method: str, pattern: str = "", **kwargs: Any) -> Fault:
        fault = Fault(method, pattern, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def writes(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.is_write]

    def seed_flow(self, source: str, tenant: str = "main") -> None:
        flow, errors = rules.check(source, version=self.version, edition=self.edition,
                                   plugins=self.plugins)
        assert flow is not None and not errors, errors
        self._save(tenant, flow, source)

    def current(self, tenant: str = "main") -> dict[tuple[str, str], str]:
        """(namespace, id) -> source of every non-deleted flow."""
        return {(ns, fid): revs[-1].source for (t, ns, fid), revs in self.flows.items()
                if t == tenant and not revs[-1].deleted}

    def revision_count(self, namespace: str, flow_id: str, tenant: str = "main") -> int:
        return len(self.flows.get((tenant, namespace, flow_id), []))

    # -- entry point --------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        """Answer one request: a Response, or DROP to close the connection silently."""
        path, _, query_string = target.partition("?")
        path = unquote(path)
        query: dict[str, list[str]] = {}
        for key, value in parse_qsl(query_string, keep_blank_values=True):
            query.setdefault(key, []).append(value)
        headers = {k.lower(): v for k, v in headers.items()}
        record = RecordedRequest(method, path, query,
                                 {k: v for k, v in headers.items() if k != "authorization"}, body)
        with self._lock:
            self.requests.append(record)
            fault = next((f for f in self.faults if f.matches(method, path)
                          and f.nth <= f.seen + 1 < f.nth + f.times), None)
            for f in self.faults:
                if f.matches(method, path):
                    f.seen += 1
        if fault is not None and fault.delay:
            self._sleep(fault.delay)
        if fault is not None and fault.drop and not fault.after:
            return DROP
        if fault is not None and fault.status:
            response = self._error(HttpError(fault.status, f"injected fault {fault.status}"), path)
        else:
            with self._lock:
                response = self._dispatch(method, path, query, headers, body, record)
        record.status = response.status
        if fault is not None and fault.drop and fault.after:
            return DROP
        return response

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]],
                  headers: dict[str, str], body: bytes, record: RecordedRequest) -> Response:
        try:
            if path == "/ping" and method == "GET":
                return Response(200, b"pong", {"Content-Type": "text/plain"})
            public = path == "/api/v1/configs" and self.major < 2
            public = public or any(path.startswith(prefix) for prefix in self.open_urls)
            record.authorized = self._authorized(headers)
            if not public and not record.authorized:
                return Response(401, b"", {"WWW-Authenticate": 'Basic realm="Kestra"'})
            if path == "/api/v1/configs" and method == "GET":
                return _json({"version": self.version, "edition": self.edition.upper(),
                              "isBasicAuthEnabled": self.username is not None})
            match = re.match(r"^/api/v1/([^/]+)(/.*)$", path)
            if not match:
                raise HttpError(404, f"Page Not Found: {path}")
            tenant, rest = match.groups()
            self._check_tenant(tenant)
            return self._route(method, tenant, rest, query, headers, body)
        except HttpError as exc:
            return self._error(exc, path)
        except Exception as exc:  # a bug in the fake: answer like a server would, loudly
            return self._error(HttpError(500, f"fake server bug: {exc!r}"), path)

    def _authorized(self, headers: dict[str, str]) -> bool:
        value = headers.get("authorization", "")
        if self.token and value == f"Bearer {self.token}":
            return True
        if self.username is None:
            return not self.token
        if value.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(value[6:]).decode().partition(":")
            except ValueError:
                return False
            return user == self.username and password == self.password
        return False

    def _check_tenant(self, tenant: str) -> None:
        if self.edition == "oss" and tenant != "main":
            raise HttpError(400, f"Tenant '{tenant}' is not supported in the open-source "
                                 "edition: use 'main'")
        if tenant not in self.tenants:
            raise HttpError(404, f"Tenant '{tenant}' not found")

    def _error(self, exc: HttpError, path: str) -> Response:
        if exc.empty:
            return Response(exc.status)
        if self.major < 2:
            body = {"message": exc.message or _TITLES.get(exc.status, "Error"),
                    "_links": {"self": {"href": path, "templated": False}},
                    "_embedded": {"errors": [{"message": m, "path": p} for p, m in exc.errors]}}
            return Response(exc.status, json.dumps(body).encode(),
                            {"Content-Type": "application/json"})
        kind = exc.kind or _TITLES.get(exc.status, "error").lower().replace(" ", "-")
        body = {"type": f"https://kestra.io/problems/{kind}", "title": _TITLES.get(exc.status, "Error"),
                "status": exc.status, "detail": exc.message, "instance": path,
                "errors": [{"detail": m, "pointer": "/" + p.replace(".", "/"), "path": p}
                           for p, m in exc.errors],
                "traceId": uuid.uuid4().hex}
        return Response(exc.status, json.dumps(body).encode(),
                        {"Content-Type": "application/problem+json"})

    # -- routing -----------------------------------------------------------------------------

    def _route(self, method: str, tenant: str, rest: str, query: dict[str, list[str]],
               headers: dict[str, str], body: bytes) -> Response:
        ctype = headers.get("content-type", "")
        one = lambda name, default=None: (query.get(name) or [default])[0]  # noqa: E731
        if rest == "/flows" and method == "POST":
            return self._create_flow(tenant, self._yaml_body(ctype, body))
        if rest == "/flows/validate" and method == "POST":
            return self._validate(ctype, body)
        if rest == "/flows/export/by-query" and method == "GET":
            return self._export_by_query(tenant, query)
        if rest == "/flows/export/by-ids" and method == "POST":
            return self._export_by_ids(tenant, json.loads(body or b"[]"))
        if rest == "/flows/import" and method == "POST":
            return self._import(tenant, ctype, body, one("failOnError", "false") == "true")
        if rest == "/flows/search" and method == "GET":
            return self._search(tenant, query)
        if m := re.fullmatch(r"/flows/([^/]+)/([^/]+)/revisions", rest):
            if method == "GET":
                return self._revisions(tenant, *m.groups())
        elif m := re.fullmatch(r"/flows/([^/]+)/([^/]+)", rest):
            ns, fid = m.groups()
            if method == "GET":
                return self._get_flow(tenant, ns, fid, one("source") == "true",
                                      one("revision"), one("allowDeleted") == "true")
            if method == "PUT":
                return self._update_flow(tenant, ns, fid, self._yaml_body(ctype, body))
            if method == "DELETE":
                return self._delete_flow(tenant, ns, fid)
        elif m := re.fullmatch(r"/flows/([^/]+)", rest):
            if method == "GET":
                return _json([self._flow_json(t, s, revs[-1], source=False)
                              for (t, s, _), revs in sorted(self.flows.items())
                              if t == tenant and s == m.group(1) and not revs[-1].deleted])
        elif m := re.fullmatch(r"/namespaces/([^/]+)/files(/directory|/export|/stats)?", rest):
            return self._files(method, tenant, m.group(1), m.group(2) or "", one("path"), ctype, body)
        elif m := re.fullmatch(r"/namespaces/([^/]+)/kv/([^/]+)", rest):
            return self._kv(method, tenant, m.group(1), m.group(2), headers, body)
        elif rest == "/kv" and method == "GET" and self.major >= 2:
            return self._kv_search(tenant, query)
        elif (m := re.fullmatch(r"/namespaces/([^/]+)/kv", rest)) and method == "GET" and self.major < 2:
            return _json([{"key": k, "description": v.get("description")}
                          for k, v in sorted(self.kv.get((tenant, m.group(1)), {}).items())])
        elif m := re.fullmatch(r"/executions/([^/]+)/([^/]+)", rest):
            if method == "POST":
                return self._execute(tenant, *m.groups(), ctype, body)
        raise HttpError(404, f"Page Not Found: {method} /api/v1/{tenant}{rest}")

    def _yaml_body(self, ctype: str, body: bytes) -> str:
        if not ctype.startswith("application/x-yaml"):
            raise HttpError(415, f"Unsupported Media Type: {ctype or 'none'}; send application/x-yaml")
        return body.decode("utf-8")

    # -- flows --------------------------------------------------------------------------------

    def _checked(self, source: str) -> dict:
        flow, errors = rules.check(source, version=self.version, edition=self.edition,
                                   plugins=self.plugins)
        if errors or flow is None:
            text = ", ".join(f"{p}: {m}" for p, m in errors)
            raise HttpError(422, f"Invalid entity: {text}", tuple(errors), "invalid-entity")
        return flow

    def _flow_json(self, tenant: str, namespace: str, rev: Revision, *, source: bool) -> dict:
        try:
            parsed = rules.parse(rev.source) or {}
        except Exception:  # stored flows always parse; be lenient anyway
            parsed = {}
        data = {k: v for k, v in parsed.items() if k not in ("revision", "deleted")}
        data.update({"namespace": namespace, "revision": rev.revision, "deleted": rev.deleted,
                     "disabled": rev.disabled, "updated": rev.updated})
        if source:
            data["source"] = rev.source
        return data

    def _save(self, tenant: str, flow: dict, source: str) -> Revision:
        key = (tenant, str(flow["namespace"]), str(flow["id"]))
        revisions = self.flows.setdefault(key, [])
        disabled = bool(flow.get("disabled", False))
        stored = _strip_revision(source)
        if revisions and not revisions[-1].deleted and revisions[-1].disabled == disabled and \
                _comparable(revisions[-1].source) == _comparable(stored):
            return revisions[-1]  # identical: no new revision
        number = revisions[-1].revision + 1 if revisions else 1
        revision = Revision(number, stored, disabled=disabled)
        revisions.append(revision)
        return revision

    def _live(self, tenant: str, namespace: str, flow_id: str) -> Revision | None:
        revisions = self.flows.get((tenant, namespace, flow_id))
        return revisions[-1] if revisions and not revisions[-1].deleted else None

    def _create_flow(self, tenant: str, source: str) -> Response:
        flow = self._checked(source)
        if self._live(tenant, str(flow["namespace"]), str(flow["id"])) is not None:
            uid = f"{flow['namespace']}.{flow['id']}"
            if self.major < 2:
                raise HttpError(422, f"Flow id '{uid}' already exists",
                                (("flow.id", "Flow id already exists"),))
            raise HttpError(409, f"Flow '{uid}' already exists", kind="entity-already-exists")
        revision = self._save(tenant, flow, source)
        return _json(self._flow_json(tenant, str(flow["namespace"]), revision, source=True))

    def _update_flow(self, tenant: str, namespace: str, flow_id: str, source: str) -> Response:
        if self._live(tenant, namespace, flow_id) is None:
            raise HttpError(404, empty=True)
        flow = self._checked(source)
        if str(flow["namespace"]) != namespace or str(flow["id"]) != flow_id:
            raise HttpError(422, "Illegal flow id or namespace update: the source's id and "
                                 "namespace must match the path",
                            (("flow.id", "id and namespace are immutable"),))
        revision = self._save(tenant, flow, source)
        return _json(self._flow_json(tenant, namespace, revision, source=True))

    def _delete_flow(self, tenant: str, namespace: str, flow_id: str) -> Response:
        live = self._live(tenant, namespace, flow_id)
        if live is None:
            raise HttpError(404, empty=True)
        revisions = self.flows[(tenant, namespace, flow_id)]
        revisions.append(Revision(live.revision + 1, live.source, deleted=True))
        return Response(204)

    def _get_flow(self, tenant: str, namespace: str, flow_id: str, source: bool,
                  revision: str | None, allow_deleted: bool) -> Response:
        revisions = self.flows.get((tenant, namespace, flow_id)) or []
        if revision is not None:
            found = next((r for r in revisions if r.revision == int(revision)), None)
        else:
            found = revisions[-1] if revisions else None
        if found is None or (found.deleted and not allow_deleted):
            raise HttpError(404, f"Unable to find flow {namespace}.{flow_id}")
        return _json(self._flow_json(tenant, namespace, found, source=source))

    def _revisions(self, tenant: str, namespace: str, flow_id: str) -> Response:
        revisions = self.flows.get((tenant, namespace, flow_id)) or []
        return _json([self._flow_json(tenant, namespace, r, source=True)
                      for r in revisions if not r.deleted])

    def _filtered(self, tenant: str, query: dict[str, list[str]]) -> list[tuple[str, str, Revision]]:
        prefixes = query.get("filters[namespace][PREFIX]", []) + query.get("namespace", [])
        equals = query.get("filters[namespace][EQUALS]", [])
        out = []
        for (t, ns, fid), revisions in sorted(self.flows.items()):
            if t != tenant or revisions[-1].deleted:
                continue
            if any(not (ns == p or ns.startswith(p + ".")) for p in prefixes):
                continue
            if any(ns != e for e in equals):
                continue
            out.append((ns, fid, revisions[-1]))
        return out

    def _export_by_query(self, tenant: str, query: dict[str, list[str]]) -> Response:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for ns, fid, rev in self._filtered(tenant, query):
                archive.writestr(f"{ns}-{fid}.yml", rev.source)
        return Response(200, buffer.getvalue(), {"Content-Type": "application/octet-stream"})

    def _export_by_ids(self, tenant: str, ids: list[dict]) -> Response:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for item in ids:
                live = self._live(tenant, item["namespace"], item["id"])
                if live is None:
                    raise HttpError(404, f"Unable to find flow {item['namespace']}.{item['id']}")
                archive.writestr(f"{item['namespace']}.{item['id']}.yaml", live.source)
        return Response(200, buffer.getvalue(), {"Content-Type": "application/octet-stream"})

    def _search(self, tenant: str, query: dict[str, list[str]]) -> Response:
        page, size = int(query.get("page", ["1"])[0]), int(query.get("size", ["10"])[0])
        rows = [self._flow_json(tenant, ns, rev, source=False)
                for ns, _, rev in self._filtered(tenant, query)]
        return _json({"results": rows[(page - 1) * size: page * size], "total": len(rows)})

    def _import(self, tenant: str, ctype: str, body: bytes, fail_on_error: bool) -> Response:
        parts = [p for p in _parse_multipart(ctype, body) if p[0] == "fileUpload"]
        if not parts:
            raise HttpError(400, "Required part fileUpload is missing")
        _, filename, data = parts[0]
        sources: list[tuple[str, str]] = []
        if (filename or "").endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                sources = [(n, archive.read(n).decode()) for n in archive.namelist()
                           if n.endswith((".yml", ".yaml"))]
        else:
            sources = [(str(i), s) for i, s in enumerate(re.split(r"\n+---\n*?", data.decode()))]
        failed = []
        for name, source in sources:
            try:
                flow = self._checked(source)
                self._save(tenant, flow, source)
            except HttpError:
                failed.append(name)
        if failed and fail_on_error:
            raise HttpError(422, "Following invalid flows were not imported: " + ", ".join(failed))
        return _json(failed)

    def _validate(self, ctype: str, body: bytes) -> Response:
        if ctype.startswith("multipart/form-data"):
            items = [(fn, data.decode().strip()) for name, fn, data in _parse_multipart(ctype, body)
                     if name == "flows"]
        else:
            items = [(None, s) for s in re.split(r"\n+---\n*?", body.decode().strip())]
        results = []
        for index, (filename, source) in enumerate(items):
            flow, errors = rules.check(source, version=self.version, edition=self.edition,
                                       plugins=self.plugins)
            entry: dict[str, Any] = {"index": index, "filename": filename, "warnings": [],
                                     "infos": [], "deprecationPaths": [], "outdated": False}
            if isinstance(flow, dict):
                entry.update(namespace=flow.get("namespace"), flow=flow.get("id"))
            if errors:
                entry["constraints"] = "\n".join(f"{p}: {m}" for p, m in errors)
            results.append(entry)
        return _json(results)

    # -- namespace files ----------------------------------------------------------------------

    def _files(self, method: str, tenant: str, namespace: str, suffix: str, path: str | None,
               ctype: str, body: bytes) -> Response:
        store = self.files.setdefault((tenant, namespace), {})
        norm = "/" + (path or "/").strip("/") if path not in (None, "", "/") else "/"
        if suffix == "/export" and method == "GET":
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                for name, data in sorted(store.items()):
                    archive.writestr(name.lstrip("/"), data)
            return Response(200, buffer.getvalue(), {"Content-Type": "application/octet-stream"})
        if suffix == "/directory" and method == "GET":
            base = "" if norm == "/" else norm
            if base and base not in store and not any(k.startswith(base + "/") for k in store):
                raise HttpError(404, f"Directory not found: {norm}")
            entries: dict[str, dict] = {}
            for name, data in store.items():
                if not name.startswith(base + "/"):
                    continue
                head, _, tail = name[len(base) + 1:].partition("/")
                kind = "Directory" if tail else "File"
                entries[head] = {"fileName": head, "type": kind, "size": 0 if tail else len(data),
                                 "lastModifiedTime": 0, "creationTime": 0}
            return _json([entries[k] for k in sorted(entries)])
        if suffix == "/stats" and method == "GET":
            if norm not in store:
                raise HttpError(404, f"File not found: {norm}")
            return _json({"fileName": norm.rsplit("/", 1)[-1], "type": "File",
                          "size": len(store[norm])})
        if suffix:
            raise HttpError(404, "Page Not Found")
        if method == "GET":
            if norm not in store:
                raise HttpError(404, f"File not found: {norm}")
            return Response(200, store[norm], {"Content-Type": "application/octet-stream"})
        if method == "POST":
            parts = [p for p in _parse_multipart(ctype, body) if p[0] == "fileContent"]
            if not parts:
                raise HttpError(400, "Required part fileContent is missing")
            _, filename, data = parts[0]
            if (filename or "").endswith(".zip"):  # extracted at the root; `path` is ignored
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    for name in archive.namelist():
                        if not name.endswith("/"):
                            store["/" + name.lstrip("/")] = archive.read(name)
                return Response(200)
            if norm.startswith("/_flows/") or norm == "/_flows":
                raise HttpError(400, "Flows must be managed through the flows API, not as files")
            store[norm] = data
            return Response(200)
        if method == "DELETE":
            doomed = [k for k in store if k == norm or k.startswith(norm.rstrip("/") + "/")]
            if not doomed:
                raise HttpError(404, f"File not found: {norm}")
            for name in doomed:
                del store[name]
            return Response(204)
        raise HttpError(404, "Page Not Found")

    # -- KV -----------------------------------------------------------------------------------

    def _kv(self, method: str, tenant: str, namespace: str, key: str, headers: dict[str, str],
            body: bytes) -> Response:
        store = self.kv.setdefault((tenant, namespace), {})
        if method == "PUT":
            text = body.decode()
            try:
                value = json.loads(text)
            except ValueError:
                value = text  # not JSON: stored as the raw string
            kind = ("BOOLEAN" if isinstance(value, bool) else "NUMBER" if isinstance(value, (int, float))
                    else "JSON" if isinstance(value, (dict, list)) else "STRING")
            expires = None
            if ttl := headers.get("ttl"):
                match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", ttl)
                if not match:
                    raise HttpError(422, f"Invalid ttl: {ttl}")
                h, m, s = (int(x or 0) for x in match.groups())
                expires = time.time() + timedelta(hours=h, minutes=m, seconds=s).total_seconds()
            store[key] = {"type": kind, "value": value, "expires": expires,
                          "description": headers.get("description")}
            return Response(200)
        entry = store.get(key)
        if entry is None:
            raise HttpError(404, f"No value found for key '{key}' in namespace '{namespace}'")
        if entry["expires"] is not None and entry["expires"] < time.time():
            raise HttpError(410, f"The requested value has expired: '{key}'")
        if method == "GET":
            return _json({"type": entry["type"], "value": entry["value"]})
        if method == "DELETE":
            del store[key]
            return Response(204)
        raise HttpError(404, "Page Not Found")

    def _kv_search(self, tenant: str, query: dict[str, list[str]]) -> Response:
        page, size = int(query.get("page", ["1"])[0]), int(query.get("size", ["10"])[0])
        equals = query.get("filters[namespace][EQUALS]", [])
        rows = [{"namespace": ns, "key": key, "description": entry.get("description")}
                for (t, ns), store in sorted(self.kv.items()) if t == tenant
                and all(ns == e for e in equals) for key, entry in sorted(store.items())]
        return _json({"results": rows[(page - 1) * size: page * size], "total": len(rows)})

    # -- executions -----------------------------------------------------------------------------

    def _execute(self, tenant: str, namespace: str, flow_id: str, ctype: str,
                 body: bytes) -> Response:
        live = self._live(tenant, namespace, flow_id)
        if live is None:
            raise HttpError(404, f"Flow {namespace}.{flow_id} not found")
        if live.disabled:
            raise HttpError(409, "Cannot execute a disabled flow")
        inputs = {}
        if ctype.startswith("multipart/form-data"):
            inputs = {name: data.decode() for name, _, data in _parse_multipart(ctype, body)}
        execution = {"id": uuid.uuid4().hex[:22], "namespace": namespace, "flowId": flow_id,
                     "flowRevision": live.revision, "inputs": inputs,
                     "state": {"current": "CREATED"}}
        self.executions.append(execution)
        return _json(execution)

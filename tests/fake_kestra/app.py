"""The fake Kestra server's state and request handling (framework-free, thread-safe).

Answers like the open-source web server of Kestra 1.3 or 2.0, selected by `version`: the same
routes, status codes and bodies as the real controllers, and Micronaut's JsonError body
(`{"message", "_links", "_embedded"}`) for every error, on both versions. Flow rules come from
`rules`. Every request is recorded; faults can be injected on the Nth request matching a pattern.
Each behaviour that follows a specific Kestra source file names it in a comment.
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
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qsl, unquote

from . import rules

DROP = object()  # handler result meaning: close the connection without answering
# FlowInterface.sourceWithoutRevision (1.3 and 2.0): the first `revision: <digits>` line
_REVISION_LINE = re.compile("(?:^|(?<=[\n\r\x85\u2028\u2029]))revision: [0-9]+\n?")
YAML = "application/x-yaml"
MULTIPART = "multipart/form-data"
TEXT = "text/plain"
FLOWS_FOLDER = "_flows"
KESTRA_URL = "http://localhost:8080"  # `kestra.url`, used for the execution links in answers
WEBHOOK = "io.kestra.plugin.core.trigger.Webhook"
WEBHOOK_ALIAS = "io.kestra.core.models.triggers.types.Webhook"  # an alias on 1.x only
EXPRESSION_CONDITIONS = {"io.kestra.plugin.core.condition.Expression",
                         "io.kestra.plugin.core.condition.ExpressionCondition",
                         "io.kestra.core.models.conditions.types.VariableCondition"}
KV_KEY = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
KV_DURATION = re.compile(r"^P(?=[^T]|T.)(?:\d*D)?(?:T(?=.)(?:\d*H)?(?:\d*M)?(?:\d*S)?)?$")
ISO_DURATION = re.compile(
    r"([-+]?)P(?:([-+]?\d+)D)?"
    r"(?:T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+)(?:[.,](\d{0,9}))?S)?)?",
    re.IGNORECASE)
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict", 410: "Gone", 415: "Unsupported Media Type",
            422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def _comparable(source: str) -> str:
    """A source as FlowInterface.isSameWithSource compares it: line endings count."""
    return _REVISION_LINE.sub("", source, count=1)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _short_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")[:22]


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
    body: bytes | None = None  # with status: this body instead of the JsonError (e.g. an HTML page)
    headers: dict[str, str] = field(default_factory=dict)  # with status: added to the answer
    echo_headers: bool = False  # with status: the JsonError message lists the request's headers,
    #                             Authorization included, as a debugging proxy's error page does
    truncate: int | None = None  # process the request, then answer only its first N body bytes
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
    updated: str = field(default_factory=_now)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class HttpError(Exception):
    """An error answer: a JsonError body with ``message`` and, if any, ``_embedded.errors``."""

    def __init__(self, status: int, message: str = "", errors: Iterable[tuple[str, str]] = (),
                 *, empty: bool = False, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, tuple(errors)
        self.empty, self.headers = empty, dict(headers or {})


# ErrorController: each exception type maps to a status and a "<reason>: <exception message>" text.
def _not_found(detail: str = "") -> HttpError:  # NotFound/NoSuchElement/FileNotFound, 404 routes
    return HttpError(404, f"Not Found: {detail}" if detail else "Not Found")


def _illegal_argument(detail: str) -> HttpError:  # IllegalArgumentException
    return HttpError(422, f"Illegal argument: {detail}")


def _illegal_state(detail: str) -> HttpError:  # IllegalStateException
    return HttpError(409, f"Illegal state: {detail}")


def _internal(detail: str) -> HttpError:  # any other exception
    return HttpError(500, f"Internal server error: {detail}")


def _invalid_entity(errors: Iterable[tuple[str, str]], *, model: bool = True) -> HttpError:
    """ErrorController for a ConstraintViolationException: 422, one embedded error per violation.

    Model validation (KestraConstraintViolationException) lists "path: message" lines; a plain
    ConstraintViolationException joins them with ", ".
    """
    errors = tuple(errors)
    text = "".join(f"{p}: {m}\n" for p, m in errors) if model else \
        ", ".join(f"{p}: {m}" for p, m in errors)
    return HttpError(422, f"Invalid entity: {text}", errors)


class _RenderError(Exception):
    """Kestra failed to render an expression (a missing variable or secret)."""


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status, json.dumps(data, default=str).encode(),
                    {"Content-Type": "application/json", **(headers or {})})


def _zip(entries: Iterable[tuple[str, bytes | str]], filename: str) -> Response:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return Response(200, buffer.getvalue(), {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f'attachment; filename="{filename}"'})


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


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def _lenient_json(text: str | None) -> Any:
    """The first JSON value of ``text`` (trailing content ignored, as Jackson does), else raises."""
    if text is None:
        raise ValueError("no body")
    value, _ = json.JSONDecoder().raw_decode(text.lstrip())
    return value


def _parse_duration(text: str) -> timedelta:
    """java.time.Duration.parse; raises ValueError with Java's message."""
    match = ISO_DURATION.fullmatch(text.strip())
    if not match or not any(match.group(i) for i in range(2, 6)):
        raise ValueError("Text cannot be parsed to a Duration")
    sign, days, hours, minutes, seconds, fraction = match.groups()
    total = timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
                      seconds=int(seconds or 0))
    if fraction:
        micros = int((fraction + "000000")[:6])
        total += timedelta(microseconds=-micros if (seconds or "").startswith("-") else micros)
    return -total if sign == "-" else total


# -- a small part of Pebble: enough for webhook keys, conditions and inputs ------------------------

_TEMPLATE = re.compile(r"\{\{(.*?)\}\}|\{%.*?%\}", re.DOTALL)
_SECRET = re.compile(r"secret\(\s*(['\"])(.*?)\1\s*\)")
_STRING = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_PATH = re.compile(r"[A-Za-z_]\w*(?:\.\w+|\[\d+\]|\[(?:'[^']*'|\"[^\"]*\")\])*")
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def _operand(expr: str, variables: Mapping[str, Any], secrets: Mapping[str, str]) -> Any:
    expr = expr.strip()
    if match := _SECRET.fullmatch(expr):
        if match.group(2) not in secrets:
            raise _RenderError(f"Cannot find secret for key '{match.group(2)}'.")
        return secrets[match.group(2)]
    if match := _STRING.fullmatch(expr):
        return match.group(1) if match.group(1) is not None else match.group(2)
    if _NUMBER.fullmatch(expr):
        return float(expr) if "." in expr else int(expr)
    if expr in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[expr]
    if _PATH.fullmatch(expr):
        head = re.match(r"[A-Za-z_]\w*", expr)
        assert head is not None
        if head.group(0) not in variables:
            raise _RenderError(f"Missing variable: '{head.group(0)}'")
        value: Any = variables[head.group(0)]
        for step in _STEP.finditer(expr, head.end()):
            key: Any = next(g for g in step.groups() if g is not None)
            try:
                value = value[int(key)] if step.group(2) is not None else value[key]
            except (KeyError, IndexError, TypeError):
                raise _RenderError(f"Missing variable: '{key}' in '{expr}'") from None
        return value
    raise NotImplementedError(f"the fake Kestra cannot evaluate {{{{ {expr} }}}}")


def _pebble_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _render(text: str, variables: Mapping[str, Any], secrets: Mapping[str, str]) -> str:
    """Render ``{{ ... }}``: secret('X'), literals, variable paths, and one == or != test."""
    def evaluate(match: re.Match[str]) -> str:
        if match.group(1) is None:
            raise NotImplementedError(f"the fake Kestra cannot evaluate {match.group(0)}")
        expr = match.group(1).strip()
        test = re.fullmatch(r"(.+?)\s*(==|!=)\s*(.+)", expr)
        if test:
            left = _operand(test.group(1), variables, secrets)
            right = _operand(test.group(3), variables, secrets)
            return _pebble_text((left == right) == (test.group(2) == "=="))
        return _pebble_text(_operand(expr, variables, secrets))

    return _TEMPLATE.sub(evaluate, text)


def _render_value(value: Any, variables: Mapping[str, Any], secrets: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        try:
            return _render(value, variables, secrets)
        except NotImplementedError:
            return value  # beyond this fake's Pebble: passed on as written
    if isinstance(value, dict):
        return {k: _render_value(v, variables, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, variables, secrets) for v in value]
    return value


class RequestHeaders(dict):
    """Request headers: a dict of the names as sent, plus every (name, value) pair in order."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.pairs = list(pairs)
        super().__init__(self.pairs)


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: str
    consumes: tuple[str, ...] | None = None  # None: any content type
    majors: tuple[int, ...] = (1, 2)

    def consumes_type(self, content_type: str) -> bool:
        return (not content_type or self.consumes is None
                or _media_type(content_type) in self.consumes)


def _routes(*table: tuple) -> list[_Route]:
    routes = []
    for method, template, handler, *rest in table:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        regex = regex.replace(r"\{/rest\}", r"(?P<rest>/.*)?")
        routes.append(_Route(method, re.compile(regex), handler, *rest))
    return routes


_T = "/api/v1/{tenant}"
# The routes of the controllers, literal paths before templates (Micronaut prefers the most
# specific match). A route the fake lacks answers a loud 500 rather than a misleading 404/405.
ROUTES = _routes(
    # RootController, MiscController
    ("GET", "/ping", "_ping"),
    ("GET", "/api/v1/configs", "_configs"),
    # FlowController
    ("POST", _T + "/flows/validate", "_validate", (YAML, MULTIPART)),
    ("GET", _T + "/flows/search", "_search"),
    ("GET", _T + "/flows/export/by-query", "_export_by_query"),
    ("POST", _T + "/flows/export/by-ids", "_export_by_ids"),
    ("POST", _T + "/flows/import", "_import", (MULTIPART,)),
    ("POST", _T + "/flows/bulk", "_unimplemented", (YAML,)),
    ("POST", _T + "/flows", "_create_flow", (YAML,)),
    ("POST", _T + "/flows", "_create_flow_json", None, (1,)),  # 1.3: hidden, any content type
    ("GET", _T + "/flows/{namespace}/{id}/revisions", "_revisions"),
    ("GET", _T + "/flows/{namespace}/{id}/dependencies", "_unimplemented"),
    ("GET", _T + "/flows/{namespace}/{id}", "_get_flow"),
    ("PUT", _T + "/flows/{namespace}/{id}", "_update_flow", (YAML,)),
    ("PUT", _T + "/flows/{namespace}/{id}", "_unimplemented", ("application/json",), (1,)),
    ("DELETE", _T + "/flows/delete/by-ids", "_delete_by_ids", ("application/json",)),
    ("DELETE", _T + "/flows/{namespace}/{id}", "_delete_flow"),
    ("GET", _T + "/flows/{namespace}", "_list_namespace_flows"),
    ("POST", _T + "/flows/{namespace}", "_unimplemented", (YAML, MULTIPART)),
    # NamespaceFileController
    ("GET", _T + "/namespaces/{namespace}/files/directory", "_files_directory"),
    ("GET", _T + "/namespaces/{namespace}/files/export", "_files_export"),
    ("GET", _T + "/namespaces/{namespace}/files/stats", "_files_stats"),
    ("GET", _T + "/namespaces/{namespace}/files", "_files_get"),
    ("POST", _T + "/namespaces/{namespace}/files", "_files_post", (MULTIPART,)),
    ("DELETE", _T + "/namespaces/{namespace}/files", "_files_delete"),
    # KVController: 2.0 dropped GET /namespaces/{namespace}/kv (its DELETE remains: a 405)
    ("GET", _T + "/kv", "_kv_search"),
    ("GET", _T + "/namespaces/{namespace}/kv", "_kv_list_namespace", None, (1,)),
    ("DELETE", _T + "/namespaces/{namespace}/kv", "_unimplemented"),
    ("GET", _T + "/namespaces/{namespace}/kv/{key}", "_kv_get"),
    ("PUT", _T + "/namespaces/{namespace}/kv/{key}", "_kv_put", (TEXT,)),
    ("DELETE", _T + "/namespaces/{namespace}/kv/{key}", "_kv_delete"),
    # ExecutionController: webhooks take any content type and optional extra path segments
    ("GET", _T + "/executions/webhook/{namespace}/{id}/{key}{/rest}", "_webhook"),
    ("POST", _T + "/executions/webhook/{namespace}/{id}/{key}{/rest}", "_webhook"),
    ("PUT", _T + "/executions/webhook/{namespace}/{id}/{key}{/rest}", "_webhook"),
    ("GET", _T + "/executions/search", "runs.search"),
    ("GET", _T + "/executions/{executionId}", "runs.get"),
    ("DELETE", _T + "/executions/{executionId}/kill", "runs.kill", None, (1,)),
    ("DELETE", _T + "/executions/{executionId}/actions/kill", "runs.kill", None, (2,)),
    ("POST", _T + "/executions/{namespace}/{id}", "runs.trigger", (MULTIPART,)),
)


@dataclass
class _Call:
    """One routed request, as the handlers see it."""

    method: str
    path: str
    target: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    raw_headers: list[tuple[str, str]]  # as sent, in order
    body: bytes
    params: dict[str, str]

    @property
    def tenant(self) -> str:
        return self.params["tenant"]

    @property
    def ctype(self) -> str:
        return self.headers.get("content-type", "")

    def one(self, name: str, default: str | None = None) -> str | None:
        return (self.query.get(name) or [default])[0]

    def flag(self, name: str) -> bool:
        return (self.one(name) or "false").lower() == "true"


class FakeKestra:
    """An in-memory Kestra. Configure the edition, version and credentials to emulate."""

    def __init__(
        self, *, version: str = "2.0.3", edition: str = "oss", tenants: tuple[str, ...] = ("main",),
        username: str | None = "admin@kestra.io", password: str | None = "Admin1234!",
        token: str | None = None, plugins: frozenset[str] = rules.DEFAULT_PLUGINS,
        open_urls: tuple[str, ...] = ("/api/v1/main/executions/webhook/",),
        secrets: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.version, self.edition, self.tenants = version, edition, tenants
        self.username, self.password, self.token = username, password, token
        self.plugins, self.open_urls, self._sleep = plugins, open_urls, sleep
        self.secrets: dict[str, str] = dict(secrets or {})
        self.url: str | None = KESTRA_URL
        self.flows: dict[tuple[str, str, str], list[Revision]] = {}
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}
        self.kv: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._kv_revisions: dict[tuple[str, str, str], int] = {}
        self.executions: list[dict[str, Any]] = []
        from .executions import Runs  # built on this module's helpers: imported once it is loaded
        self.runs = Runs(self)  # how the executions run: outcomes, outputs, delay; past runs
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.latency = 0.0  # seconds every answer waits: a network's round trip (benchmarks)
        self.clock_offset = 0.0  # seconds the server's clock is ahead (KV expiry and dates)
        self.max_body: int | None = None  # a proxy in front refusing larger bodies (413)
        # flows whose last write reached the database but not Kestra's flow queue: executors
        # and the scheduler keep their old version (or none) until a restart
        self.unannounced: set[tuple[str, str, str]] = set()
        self._stall: tuple[int, str] | None = None  # see stall_import
        self._rest: tuple[str, str, list[tuple[str, str]]] | None = None  # (tenant, resume, entries)
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"FakeKestra(version={self.version!r}, edition={self.edition!r})"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    # -- helpers for tests ------------------------------------------------------------------

    def inject(self, method: str, pattern: str = "", **kwargs: Any) -> Fault:
        fault = Fault(method, pattern, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def stall_import(self, *, lands: int, resume: str) -> None:
        """Fault: the next flow import carries out its first ``lands`` entries, then stalls; its
        answer never reaches the client (a proxy drops it, the client gives up), and the server
        carries out the rest once it has answered a request matching ``resume`` ("METHOD
        path-regex"). Kestra 1.3 imports entry by entry, each one saved on its own, in a blocking
        handler that a client going away does not stop (webserver FlowController.importFlows,
        on the IO executor): what the client reads meanwhile, it may change afterwards."""
        with self._lock:
            self._stall = (lands, resume)
        self.inject("POST", "/flows/import$", drop=True, after=True)

    def writes(self, *, lease: bool = False) -> list[RecordedRequest]:
        """Requests that changed state; the promotion's lease (kestra-promote-lock, taken and
        given back around every run that writes) only with ``lease``."""
        return [r for r in self.requests if r.is_write
                and (lease or not r.path.endswith("/kv/kestra-promote-lock"))]

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

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Any:
        """Answer one request: a Response, or DROP to close the connection silently.

        ``headers`` is a mapping; when it has a ``pairs`` attribute (see `http`), those pairs
        keep every value of a repeated header and the names' case, as a webhook sees them.
        """
        path, _, query_string = target.partition("?")
        path = unquote(path)
        query: dict[str, list[str]] = {}
        for key, value in parse_qsl(query_string, keep_blank_values=True):
            query.setdefault(key, []).append(value)
        raw_headers = list(getattr(headers, "pairs", None) or headers.items())
        lower = {k.lower(): v for k, v in raw_headers}
        record = RecordedRequest(method, path, query,
                                 {k: v for k, v in lower.items() if k != "authorization"}, body)
        if self.latency:  # a network's round trip, for benchmarks (the answer waits)
            self._sleep(self.latency)
        if self.max_body is not None and len(body) > self.max_body:
            # what nginx answers past client_max_body_size: its own page, Kestra never sees it
            with self._lock:
                self.requests.append(record)
            return Response(413, b"<html><head><title>413 Request Entity Too Large</title></head>"
                                 b"<body>nginx</body></html>", {"Content-Type": "text/html"})
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
        if fault is not None and fault.status and fault.body is not None:
            response = Response(fault.status, fault.body, dict(fault.headers))
        elif fault is not None and fault.status:
            message = f"injected fault {fault.status}"
            if fault.echo_headers:
                message += "; request headers: " + ", ".join(f"{k}: {v}" for k, v in raw_headers)
            response = self._error(HttpError(fault.status, message, headers=fault.headers), target)
        else:
            call = _Call(method, path, target, query, lower, raw_headers, body, {})
            with self._lock:
                response = self._dispatch(call, record)
        if fault is not None and fault.truncate is not None:
            response = Response(response.status, response.body[:fault.truncate], response.headers)
        record.status = response.status
        self._resume(method, path)
        if fault is not None and fault.drop and fault.after:
            return DROP
        return response

    def _resume(self, method: str, path: str) -> None:
        """The rest of a stalled import lands, once a request matching its ``resume`` was
        handled (``stall_import``)."""
        with self._lock:
            if self._rest is None:
                return
            tenant, resume, entries = self._rest
            want, _, pattern = resume.partition(" ")
            if method == want and re.search(pattern, path):
                self._rest = None
                self._import_entries(tenant, entries)

    def _dispatch(self, call: _Call, record: RecordedRequest) -> Response:
        record.authorized = self._authorized(call.headers)
        try:
            route, miss = self._find_route(call)
            if route is not None and "tenant" in call.params:
                self._check_tenant(call.tenant)  # TenantValidationFilter runs before the auth one
            if not self._public(call.path) and not record.authorized:
                # AuthenticationFilter: 401, no body, a Basic challenge
                return Response(401, b"", {"WWW-Authenticate": "Basic"})
            if route is None:
                assert miss is not None
                raise miss
            handler: Any = self
            for name in route.handler.split("."):  # "runs.search": a method of self.runs
                handler = getattr(handler, name)
            return handler(call)
        except HttpError as exc:
            return self._error(exc, call.target)
        except Exception as exc:  # a bug or a limit of the fake: answer like a server would, loudly
            return self._error(_internal(f"fake server: {exc!r}"), call.target)

    def _find_route(self, call: _Call) -> tuple[_Route | None, HttpError | None]:
        """The route for a request, or the error Micronaut answers when none matches."""
        candidates = []
        for route in ROUTES:
            if self.major not in route.majors and not (self.major > 2 and 2 in route.majors):
                continue
            if match := route.pattern.fullmatch(call.path):
                candidates.append((route, match))
        if not candidates:
            return None, _not_found()  # the 404 status route of ErrorController
        same_method = [(r, m) for r, m in candidates if r.method == call.method or
                       (call.method == "HEAD" and r.method == "GET")]
        # RequestLifecycle.onRouteMiss (Micronaut): 405 and 415 have no status route in
        # ErrorController, so they get Micronaut's own JsonError
        if not same_method:
            allowed = sorted({r.method for r, _ in candidates})
            return None, HttpError(405, "Method Not Allowed", [(
                "", f"Method [{call.method}] not allowed for URI [{call.target}]. Allowed methods: "
                    f"[{', '.join(allowed)}]")], headers={"Allow": ", ".join(allowed)})
        for route, match in same_method:
            if route.consumes_type(call.ctype):
                call.params = {k: v for k, v in match.groupdict().items() if v is not None}
                return route, None
        accepted = sorted({c for r, _ in same_method for c in r.consumes or ()})
        return None, HttpError(415, "Unsupported Media Type", [(
            "", f"Content Type [{_media_type(call.ctype)}] not allowed. Allowed types: "
                f"[{', '.join(accepted)}]")])

    def _public(self, path: str) -> bool:
        if not path.startswith("/api/v1/"):
            return True  # the auth filter only covers /api/v1/**
        if self.major < 2:  # AuthenticationFilter (1.3): any path ending in /configs is open
            configs = path.endswith("/configs")
        else:  # AuthenticationFilter (2.0): exactly /api/v1/configs is open
            configs = re.sub("/+", "/", path) == "/api/v1/configs"
        return configs or any(path.startswith(prefix) for prefix in self.open_urls)

    def _authorized(self, headers: dict[str, str]) -> bool:
        value = headers.get("authorization", "")
        if self.token and value == f"Bearer {self.token}":
            return True
        if self.username is None:
            return not self.token
        if value[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(value[6:]).decode().partition(":")
            except ValueError:
                return False
            return user == self.username and password == self.password
        return False

    def _check_tenant(self, tenant: str) -> None:
        if self.edition == "oss" and tenant != "main":
            # TenantValidationFilter: an HttpStatusException, rendered by ErrorController
            raise HttpError(400, "Bad Request: Tenant must be 'main' for OSS version")
        if tenant not in self.tenants:
            raise _not_found(f"Tenant '{tenant}' not found")

    def _error(self, exc: HttpError, href: str) -> Response:
        """ErrorController's JsonError body on both versions (2.0 has no problem+json)."""
        if exc.empty:
            return Response(exc.status, b"", dict(exc.headers))
        body: dict[str, Any] = {
            "message": exc.message or _REASONS.get(exc.status, "Error"),
            "_links": {"self": {"href": href, "templated": False}}}
        if exc.errors:
            body["_embedded"] = {"errors": [{"message": m, "path": p} if p else {"message": m}
                                            for p, m in exc.errors]}
        return _json(body, exc.status, exc.headers)

    def _unimplemented(self, call: _Call) -> Response:
        raise NotImplementedError(f"{call.method} {call.path} is a Kestra route this fake lacks")

    # -- misc -----------------------------------------------------------------------------------

    def _ping(self, call: _Call) -> Response:
        # RootController.ping: "pong" through Micronaut's default JSON content type
        return Response(200, b"pong", {"Content-Type": "application/json"})

    def _configs(self, call: _Call) -> Response:
        # MiscController.getConfiguration (a subset of its fields)
        return _json({"uuid": "00000000-0000-0000-0000-000000000000", "version": self.version,
                      "edition": self.edition.upper(), "commitId": "0000000",
                      "isBasicAuthInitialized": self.username is not None,
                      "systemNamespace": "system", "isCustomDashboardsEnabled": True,
                      "isAnonymousUsageEnabled": False, "isUiAnonymousUsageEnabled": False,
                      **({"url": self.url} if self.url else {})})

    # -- flows --------------------------------------------------------------------------------

    def _errors(self, source: str) -> tuple[Any, list[tuple[str, str]]]:
        flow, errors = rules.check(source, version=self.version, edition=self.edition,
                                   plugins=self.plugins)
        return flow, [(str(p), str(m)) for p, m in errors]

    def _checked(self, source: str, *, strict: bool = True) -> dict:
        flow, errors = self._errors(source)
        if not strict:  # a lenient parse ignores unknown properties
            errors = [(p, m) for p, m in errors if not m.startswith("Unrecognized field")]
        if errors or not isinstance(flow, dict):
            raise _invalid_entity(errors or [("flow", "Invalid flow source")])
        return flow

    def _flow_json(self, tenant: str, namespace: str, rev: Revision, *, source: bool) -> dict:
        try:
            parsed = rules.parse(rev.source) or {}
        except Exception:  # stored flows always parse; be lenient anyway
            parsed = {}
        if not isinstance(parsed, dict):
            parsed = {}
        data = {k: v for k, v in parsed.items() if k not in ("revision", "deleted", "tenantId")}
        if isinstance(data.get("labels"), dict):  # Flow.labels serialise as a list
            data["labels"] = [{"key": str(k), "value": str(v)} for k, v in data["labels"].items()]
        data.update({"tenantId": tenant, "namespace": namespace, "revision": rev.revision,
                     "deleted": rev.deleted, "disabled": rev.disabled, "updated": rev.updated})
        if source:
            data["source"] = rev.source
        return data

    def _save(self, tenant: str, flow: dict, source: str) -> Revision:
        # AbstractJdbcFlowRepository.save: an identical source (isSameWithSource) makes no new
        # revision; the source is stored as sent (its source_code column)
        key = (tenant, str(flow["namespace"]), str(flow["id"]))
        self.unannounced.discard(key)  # announced, unless the caller says otherwise
        revisions = self.flows.setdefault(key, [])
        disabled = bool(flow.get("disabled", False))
        stored = source
        if revisions and not revisions[-1].deleted and revisions[-1].disabled == disabled and \
                _comparable(revisions[-1].source) == _comparable(stored):
            return revisions[-1]
        number = revisions[-1].revision + 1 if revisions else 1
        revision = Revision(number, stored, disabled=disabled)
        revisions.append(revision)
        return revision

    def _live(self, tenant: str, namespace: str, flow_id: str) -> Revision | None:
        revisions = self.flows.get((tenant, namespace, flow_id))
        return revisions[-1] if revisions and not revisions[-1].deleted else None

    def _yaml_source(self, call: _Call) -> str:
        return call.body.decode("utf-8", errors="replace")

    def _create_flow(self, call: _Call) -> Response:
        # FlowController.createFlow -> FlowService.create: validate, then the repository refuses
        # an existing id with a ConstraintViolation (422 on 1.3 and 2.0)
        flow = self._checked(self._yaml_source(call))
        if self._live(call.tenant, str(flow["namespace"]), str(flow["id"])) is not None:
            raise _invalid_entity([("flow.id", "Flow id already exists")], model=False)
        revision = self._save(call.tenant, flow, self._yaml_source(call))
        return _json(self._flow_json(call.tenant, str(flow["namespace"]), revision, source=True))

    def _create_flow_json(self, call: _Call) -> Response:
        # FlowController.createFlowFromJson (1.3, consumes any type): a YAML text sent as another
        # type cannot bind to its Flow body
        raise HttpError(422, "Invalid route params: Required Body [flow] not specified")

    def _update_flow(self, call: _Call) -> Response:
        # FlowController.updateFlow: 404 (status route) when absent; 1.3 parses leniently
        # (unknown properties ignored), 2.0 strictly (FlowService.update); then
        # Flow.validateUpdate refuses another id or namespace
        namespace, flow_id = call.params["namespace"], call.params["id"]
        if self._live(call.tenant, namespace, flow_id) is None:
            raise _not_found()
        source = self._yaml_source(call)
        flow = self._checked(source, strict=self.major >= 2)
        moved = []
        if str(flow["id"]) != flow_id:
            moved.append(("flow.id", "Illegal flow id update"))
        if str(flow["namespace"]) != namespace:
            moved.append(("flow.namespace", "Illegal namespace update"))
        if moved:
            raise _invalid_entity(moved, model=False)
        revision = self._save(call.tenant, flow, source)
        return _json(self._flow_json(call.tenant, namespace, revision, source=True))

    def _delete_flow(self, call: _Call) -> Response:
        # FlowController.deleteFlow: 204, or 404 (status route); the deletion is a new revision
        namespace, flow_id = call.params["namespace"], call.params["id"]
        live = self._live(call.tenant, namespace, flow_id)
        if live is None:
            raise _not_found()
        self.flows[(call.tenant, namespace, flow_id)].append(
            Revision(live.revision + 1, live.source, deleted=True, disabled=live.disabled))
        self.unannounced.discard((call.tenant, namespace, flow_id))
        return Response(204)

    def _delete_by_ids(self, call: _Call) -> Response:
        # FlowController.deleteFlowsByIds (1.3 and 2.0): one by one, in order; an id that is not
        # there stops it (NoSuchElementException: 404) with the earlier ones already deleted
        try:
            ids = json.loads(call.body or b"[]")
        except ValueError:
            raise HttpError(422, "Invalid json") from None
        if not isinstance(ids, list) or not all(isinstance(i, dict) for i in ids):
            raise HttpError(422, "Invalid json mapping")
        count = 0
        for item in ids:
            namespace, flow_id = str(item.get("namespace")), str(item.get("id"))
            live = self._live(call.tenant, namespace, flow_id)
            if live is None:
                raise _not_found("No value present")
            self.flows[(call.tenant, namespace, flow_id)].append(
                Revision(live.revision + 1, live.source, deleted=True, disabled=live.disabled))
            self.unannounced.discard((call.tenant, namespace, flow_id))  # FlowService.delete
            count += 1
        return _json({"count": count})

    def _get_flow(self, call: _Call) -> Response:
        # FlowController.getFlow: null (absent, or deleted without allowDeleted) is a 404
        namespace, flow_id = call.params["namespace"], call.params["id"]
        revisions = self.flows.get((call.tenant, namespace, flow_id)) or []
        wanted = call.one("revision")
        if wanted is not None:
            if not re.fullmatch(r"-?\d+", wanted):  # ErrorController: a ConversionErrorException
                raise HttpError(422, f"Internal server error: Failed to convert argument "
                                     f"[revision] for value [{wanted}]")
            found = next((r for r in revisions if r.revision == int(wanted)), None)
        else:
            found = revisions[-1] if revisions else None
        if found is None or (found.deleted and not call.flag("allowDeleted")):
            raise _not_found()
        return _json(self._flow_json(call.tenant, namespace, found, source=call.flag("source")))

    def _revisions(self, call: _Call) -> Response:
        # FlowController.listFlowRevisions: every non-deleted revision, [] for an unknown flow
        namespace, flow_id = call.params["namespace"], call.params["id"]
        revisions = self.flows.get((call.tenant, namespace, flow_id)) or []
        return _json([self._flow_json(call.tenant, namespace, r, source=True)
                      for r in revisions if not r.deleted or call.flag("allowDelete")])

    def _list_namespace_flows(self, call: _Call) -> Response:
        # FlowController.listFlowsByNamespace: that exact namespace, no source
        namespace = call.params["namespace"]
        return _json([self._flow_json(t, s, revs[-1], source=False)
                      for (t, s, _), revs in sorted(self.flows.items())
                      if t == call.tenant and s == namespace and not revs[-1].deleted])

    def _filtered(self, call: _Call) -> list[tuple[str, str, Revision]]:
        prefixes = list(call.query.get("filters[namespace][PREFIX]", []))
        if self.major < 2:  # FlowController (1.3): the deprecated `namespace` prefix parameter
            prefixes += call.query.get("namespace", [])
        equals = call.query.get("filters[namespace][EQUALS]", [])
        # REGEX: jOOQ likeRegex, the database's own regex, which searches (Postgres `~`, MySQL
        # REGEXP, H2 REGEXP_LIKE): AbstractJdbcRepository.defaultHandlers, 1.3 and 2.0
        regexes = []
        for pattern in call.query.get("filters[namespace][REGEX]", []):
            try:
                regexes.append(re.compile(pattern))
            except re.error:
                raise HttpError(500, f"invalid regular expression: {pattern}") from None
        out = []
        for (t, ns, fid), revisions in sorted(self.flows.items()):
            if t != call.tenant or revisions[-1].deleted:
                continue
            if any(not (ns == p or ns.startswith(p + ".")) for p in prefixes):
                continue
            if any(ns != e for e in equals):
                continue
            if any(not r.search(ns) for r in regexes):
                continue
            out.append((ns, fid, revisions[-1]))
        return out

    def _export_by_query(self, call: _Call) -> Response:
        # FlowController.exportFlowsByQuery: a ZIP of "<namespace>-<id>.yml"
        return _zip(((f"{ns}-{fid}.yml", rev.source) for ns, fid, rev in self._filtered(call)),
                    "flows.zip")

    def _export_by_ids(self, call: _Call) -> Response:
        # FlowController.exportFlowsByIds: an unknown id fails the whole export (NoSuchElement)
        try:
            ids = json.loads(call.body or b"[]")
        except ValueError:
            raise HttpError(422, "Invalid json") from None
        entries = []
        for item in ids:
            live = self._live(call.tenant, str(item.get("namespace")), str(item.get("id")))
            if live is None:
                raise _not_found("No value present")
            entries.append((f"{item['namespace']}.{item['id']}.yaml", live.source))
        return _zip(entries, "flows.zip")

    def _search(self, call: _Call) -> Response:
        # FlowController.searchFlows: {results, total}, pages from 1, no source
        page, size = int(call.one("page", "1") or 1), int(call.one("size", "10") or 10)
        rows = [self._flow_json(call.tenant, ns, rev, source=False)
                for ns, _, rev in self._filtered(call)]
        return _json({"results": rows[(page - 1) * size: page * size], "total": len(rows)})

    def _import(self, call: _Call) -> Response:
        # FlowController.importFlows + HasSource.readSourceFile (same on 1.3 and 2.0): the part's
        # file name picks the parser; the answer lists what failed: ZIP entry names, or
        # "<file name>(flow number: N)" for the documents of a YAML file
        parts = [p for p in _parse_multipart(call.ctype, call.body) if p[0] == "fileUpload"]
        if not parts:
            raise _internal("Required Part [fileUpload] not specified")
        _, filename, data = parts[0]
        name = (filename or "").lower()
        sources: list[tuple[str, str]] = []
        if name.endswith((".yml", ".yaml")):
            documents = re.split(r"(?m)^---\s*$", data.decode("utf-8", errors="replace"))
            while documents and documents[-1] == "":  # String.split drops trailing empty strings
                documents.pop()
            sources = [(f"{name}(flow number: {i})", s) for i, s in enumerate(documents)]
        elif name.endswith(".zip"):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    sources = [(info.filename, archive.read(info).decode("utf-8", errors="replace"))
                               for info in archive.infolist() if not info.is_dir()
                               and info.filename.endswith((".yml", ".yaml"))]
            except zipfile.BadZipFile:
                sources = []  # ZipInputStream finds no entry in what is not a ZIP
        elif "." in name:
            raise _illegal_argument(f"Cannot import file of type {name[name.rfind('.'):]}")
        else:
            raise _internal("begin -1, end 0, length 0")  # substring of a missing extension
        if self._stall is not None:  # a fault: the rest lands later (stall_import)
            lands, resume = self._stall
            self._stall = None
            sources, rest = sources[:lands], sources[lands:]
            self._rest = (call.tenant, resume, rest)
        failed = self._import_entries(call.tenant, sources)
        if failed and call.flag("failOnError"):
            raise _illegal_argument(
                "Following invalid flows were not imported: " + ", ".join(failed))
        return _json(failed)

    def _import_entries(self, tenant: str, sources: Iterable[tuple[str, str]]) -> list[str]:
        """Import (entry name, source) pairs one by one; the names of those that failed."""
        failed = []
        for entry_name, source in sources:
            try:
                flow = self._checked(source)
            except HttpError:
                failed.append(entry_name)
                continue
            key = (tenant, str(flow["namespace"]), str(flow["id"]))
            count = len(self.flows.get(key, []))
            self._save(tenant, flow, source)  # FlowService.importFlow: update or create
            if self.major >= 2 and len(self.flows[key]) != count:
                # 2.0: importFlow writes through the repository only, which no longer emits to
                # the flow queue; FlowService.create/update/delete do (impactDownstreamConsumers).
                # 1.3: AbstractJdbcFlowRepository.save emits itself
                self.unannounced.add(key)
        return failed

    def _validate(self, call: _Call) -> Response:
        # FlowController.validateFlows + FlowService.validate (same on 1.3 and 2.0)
        if _media_type(call.ctype) == MULTIPART:
            items = [(fn, data.decode("utf-8", errors="replace").strip())
                     for name, fn, data in _parse_multipart(call.ctype, call.body)
                     if name == "flows"]
        else:
            text = call.body.decode("utf-8", errors="replace").strip()
            items = [(None, s) for s in re.split(r"\n+---\n*?", text)]
        results = []
        for index, (filename, source) in enumerate(items):
            flow, errors = self._errors(source)
            entry: dict[str, Any] = {"index": index, "outdated": False}  # nulls are not serialised
            if filename is not None:
                entry["filename"] = filename
            if isinstance(flow, dict) and flow.get("id") is not None:
                entry.update(namespace=flow.get("namespace"), flow=flow.get("id"),
                             deprecationPaths=[], warnings=[], infos=[])
                sent = flow.get("revision")
                if isinstance(sent, int):  # outdated: not the revision a save would create
                    revisions = self.flows.get(
                        (call.tenant, str(flow.get("namespace")), str(flow.get("id")))) or []
                    entry["outdated"] = sent != (revisions[-1].revision if revisions else 0) + 1
            if errors or not isinstance(flow, dict):
                lines = "".join(f"{p}: {m}\n" for p, m in errors) or "Invalid flow source\n"
                entry["constraints"] = "Validation error: " + lines
            results.append(entry)
        return _json(results)

    # -- namespace files ----------------------------------------------------------------------

    def _file_path(self, path: str) -> str:
        if self.major < 2:
            # NamespaceFileController (1.3) passes the path through URLEncoder, then reads the
            # URI's path back, which decodes every %XX escape: only a space, written as '+'
            # (no escape), changes; 2.0 uses URI's multi-argument constructor: nothing changes
            path = path.replace(" ", "+")
        return path

    @staticmethod
    def _norm(path: str) -> str:
        parts = [p for p in path.split("/") if p not in ("", ".")]
        return "/" + "/".join(parts)

    @staticmethod
    def _guard(path: str) -> None:
        # NamespaceFileController.forbiddenPathsGuard: /_flows and below belong to flows
        if re.fullmatch(r"/" + FLOWS_FOLDER + r"(/.*)?", path):
            raise _illegal_argument(f"Forbidden path: {path}")

    def _store(self, call: _Call) -> dict[str, bytes]:
        return self.files.get((call.tenant, call.params["namespace"]), {})

    def _required_path(self, call: _Call) -> str:
        path = call.one("path")
        if path is None:
            raise HttpError(400, "Bad Request: Required QueryValue [path] not specified")
        return self._file_path(path)

    @staticmethod
    def _file_not_found(call: _Call, path: str) -> HttpError:
        # InternalNamespace.fileNotFound, a FileNotFoundException
        return _not_found(f"File '{path}' was not found in namespace '{call.params['namespace']}'.")

    def _attributes(self, name: str, kind: str, size: int) -> dict[str, Any]:
        return {"fileName": name, "lastModifiedTime": 0, "creationTime": 0, "type": kind,
                "size": size, "metadata": {}}

    def _files_get(self, call: _Call) -> Response:
        # NamespaceFileController.getFileContent: 404 when missing, bytes as octet-stream
        path = self._required_path(call)
        self._guard(path)
        store, norm = self._store(call), self._norm(path)
        if norm not in store:
            raise self._file_not_found(call, norm)
        return Response(200, store[norm], {"Content-Type": "application/octet-stream",
                                           "Cache-Control": "no-cache"})

    def _files_stats(self, call: _Call) -> Response:
        # NamespaceFileController.getFileMetadatas: the root always exists
        path = call.one("path")
        if path:
            path = self._file_path(path)
            self._guard(path)
        store, norm = self._store(call), self._norm(path or "/")
        if norm == "/":
            return _json(self._attributes("_files", "Directory", 0))
        if norm in store:
            return _json(self._attributes(norm.rsplit("/", 1)[-1], "File", len(store[norm])))
        if any(k.startswith(norm + "/") for k in store):
            return _json(self._attributes(norm.rsplit("/", 1)[-1], "Directory", 0))
        raise self._file_not_found(call, norm)

    def _files_directory(self, call: _Call) -> Response:
        # NamespaceFileController.listNamespaceDirectoryFiles: one level; the root always exists
        path = call.one("path")
        if path is not None:
            path = self._file_path(path)
            self._guard(path)
        store, norm = self._store(call), self._norm(path or "/")
        base = "" if norm == "/" else norm
        if base and not any(k.startswith(base + "/") for k in store):
            raise _not_found(f"Directory not found: {norm}")
        entries: dict[str, dict] = {}
        for name, data in store.items():
            if name.startswith(base + "/"):
                head, _, tail = name[len(base) + 1:].partition("/")
                entries[head] = self._attributes(head, "Directory" if tail else "File",
                                                 0 if tail else len(data))
        return _json([entries[k] for k in sorted(entries)])

    def _files_export(self, call: _Call) -> Response:
        # NamespaceFileController.exportNamespaceFiles: the files, then _flows/<id>.yml for each
        # flow of that exact namespace
        namespace = call.params["namespace"]
        entries: list[tuple[str, bytes | str]] = [
            (name.lstrip("/"), data) for name, data in sorted(self._store(call).items())]
        entries += [(f"{FLOWS_FOLDER}/{fid}.yml", revs[-1].source)
                    for (t, ns, fid), revs in sorted(self.flows.items())
                    if t == call.tenant and ns == namespace and not revs[-1].deleted]
        return _zip(entries, f"{namespace}_files.zip")

    def _files_post(self, call: _Call) -> Response:
        # NamespaceFileController.createNamespaceFile: 200 without a body; a part file name ending
        # in .zip is extracted at the root (`path` ignored); /_flows/<name> imports a flow
        path = self._required_path(call)
        parts = [p for p in _parse_multipart(call.ctype, call.body) if p[0] == "fileContent"]
        if not parts:
            raise _internal("Required Part [fileContent] not specified")
        _, filename, data = parts[0]
        if (filename or "").lower().endswith(".zip"):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    for info in archive.infolist():
                        if not info.is_dir():
                            self._put_file(call, self._entry_path(info.filename),
                                           archive.read(info))
            except zipfile.BadZipFile:
                pass  # ZipInputStream finds no entry in what is not a ZIP
            return Response(200)
        self._put_file(call, path, data)
        return Response(200)

    def _entry_path(self, name: str) -> str:
        """The path a ZIP entry is extracted to. 2.0 builds a URI from the path with the
        multi-argument constructor (every character kept); 1.3 parses "/" + name with
        URI.create, which refuses a space and the like (IllegalArgumentException, after the
        earlier entries were written), and whose getPath() drops a query or fragment and
        decodes %XX escapes."""
        path = "/" + name
        if self.major >= 2:
            return path
        if re.search(r'[\x00-\x20"<>\\^`{|}\x7f]|%(?![0-9A-Fa-f]{2})', path):
            raise _illegal_argument(f"Illegal character in path at index 0: {path}")
        return unquote(re.split(r"[?#]", path, maxsplit=1)[0])

    def _put_file(self, call: _Call, path: str, data: bytes) -> None:
        namespace = call.params["namespace"]
        if re.fullmatch(r"/" + FLOWS_FOLDER + r"/.*", path):
            segments = path.split("/")
            while segments and segments[-1] == "":  # as Java's String.split
                segments.pop()
            if len(segments) != 3:
                raise _illegal_argument(f"Invalid flow file path: {path}")
            source = re.sub(r"(?m)^namespace: .*$", f"namespace: {namespace}",
                            data.decode("utf-8", errors="replace"), count=1)
            flow, errors = self._errors(source)
            if errors or not isinstance(flow, dict):
                # FlowService.importFlow wraps the violation in a FlowProcessingException: a 500
                raise _internal("jakarta.validation.ConstraintViolationException: " +
                                ", ".join(f"{p}: {m}" for p, m in errors))
            self._save(call.tenant, flow, source)
            return
        self._guard(path)
        if self.major >= 2 and any(len(part) > 255 for part in path.split("/")):
            raise _illegal_argument("A file or folder name exceeds the maximum length of 255 "
                                    "characters.")
        self.files.setdefault((call.tenant, namespace), {})[self._norm(path)] = data

    def _files_delete(self, call: _Call) -> Response:
        # NamespaceFileController.deleteFileDirectory: 200 without a body, even when nothing
        # matched; a directory goes with its content, emptied parents with it
        path = self._required_path(call)
        if not path.startswith("/"):
            path = "/" + path
        self._guard(path)
        key = (call.tenant, call.params["namespace"])
        store, norm = self.files.get(key, {}), self._norm(path)
        for name in [k for k in store if k == norm or k.startswith(norm.rstrip("/") + "/")]:
            del store[name]
        if key in self.files and not store:
            del self.files[key]
        return Response(200)

    # -- KV -----------------------------------------------------------------------------------

    @staticmethod
    def _check_key(key: str) -> None:
        # KVStore.validateKey
        if not KV_KEY.fullmatch(key):
            raise _illegal_argument(
                "Key must start with an alphanumeric character (uppercase or lowercase) and can "
                "contain alphanumeric characters (uppercase or lowercase), dots (.), underscores "
                "(_), and hyphens (-) only.")

    def _time(self) -> float:
        """The server's clock: KV expiry is judged by it alone (InternalKVStore.getRawValue)."""
        return time.time() + self.clock_offset

    def _stamp(self) -> str:
        return datetime.fromtimestamp(self._time(), timezone.utc) \
            .isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _expired(self, entry: dict[str, Any]) -> bool:
        return entry["expires"] is not None and entry["expires"] < self._time()

    def _kv_entry(self, namespace: str, key: str, entry: dict[str, Any]) -> dict[str, Any]:
        # KVEntry: the revision is called `version` on 1.3; nulls are not serialised
        out: dict[str, Any] = {"namespace": namespace, "key": key,
                               "revision" if self.major >= 2 else "version": entry["revision"],
                               "creationDate": entry["created"], "updateDate": entry["updated"]}
        if entry.get("description") is not None:
            out["description"] = entry["description"]
        if entry["expires"] is not None:
            out["expirationDate"] = datetime.fromtimestamp(entry["expires"], timezone.utc) \
                .isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return out

    def _kv_put(self, call: _Call) -> Response:
        # KVController.setKeyValue: the body is read as ION (JSON is ION), else kept as text;
        # `ttl` goes through Duration.parse; 200 without a body
        namespace, key = call.params["namespace"], call.params["key"]
        self._check_key(key)
        text = call.body.decode("utf-8", errors="replace")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        expires = None
        if (ttl := call.headers.get("ttl")) is not None:
            try:
                expires = self._time() + _parse_duration(ttl).total_seconds()
            except ValueError as exc:  # a DateTimeParseException: no handler but the generic one
                raise _internal(str(exc)) from None
        revision = self._kv_revisions.get((call.tenant, namespace, key), 0) + 1
        self._kv_revisions[(call.tenant, namespace, key)] = revision
        store = self.kv.setdefault((call.tenant, namespace), {})
        created = store[key]["created"] if key in store else self._stamp()
        store[key] = {"value": value, "expires": expires, "revision": revision,
                      "description": call.headers.get("description"), "created": created,
                      "updated": self._stamp()}
        return Response(200)

    def _kv_get(self, call: _Call) -> Response:
        # webserver/.../controllers/api/KVController.java getKeyValue (1.3 and 2.0): 404 missing;
        # 410 when the entry's expiration date is past by the server's clock
        # (core/.../storages/kv/InternalKVStore.java getRawValue deletes it and throws
        # ResourceExpiredException, which ErrorController answers with 410 Gone); else KvDetail:
        # type, value, revision and `updated` (the entry's last write) but no expiration date,
        # which only the listings (KVEntry: updateDate, expirationDate) carry
        namespace, key = call.params["namespace"], call.params["key"]
        self._check_key(key)
        store = self.kv.get((call.tenant, namespace), {})
        entry = store.get(key)
        if entry is None:
            raise _not_found(f"No value found for key '{key}' in namespace '{namespace}'")
        if self._expired(entry):
            self._kv_remove(call.tenant, namespace, key)
            raise HttpError(410, "Resource has expired: The requested value has expired")
        value = entry["value"]
        # KVType.from, after InternalKVStore.getValue turned an ISO duration text into a Duration
        kind = ("BOOLEAN" if isinstance(value, bool)
                else "NUMBER" if isinstance(value, (int, float))
                else "JSON" if isinstance(value, (dict, list))
                else "DURATION" if isinstance(value, str) and KV_DURATION.match(value)
                else "STRING")
        out = {"type": kind, "revision": entry["revision"], "updated": entry["updated"]}
        if value is not None:
            out["value"] = value
        return _json(out)

    def _kv_remove(self, tenant: str, namespace: str, key: str) -> bool:
        store = self.kv.get((tenant, namespace), {})
        found = store.pop(key, None) is not None
        if (tenant, namespace) in self.kv and not store:
            del self.kv[(tenant, namespace)]
        return found

    def _kv_delete(self, call: _Call) -> Response:
        # KVController.deleteKeyValue: 200 with `true`, or `false` when there was nothing
        self._check_key(call.params["key"])
        return _json(self._kv_remove(call.tenant, call.params["namespace"], call.params["key"]))

    def _kv_rows(self, tenant: str) -> list[tuple[str, str, dict[str, Any]]]:
        return [(ns, key, entry) for (t, ns), store in sorted(self.kv.items()) if t == tenant
                for key, entry in sorted(store.items()) if not self._expired(entry)]

    def _kv_search(self, call: _Call) -> Response:
        # KVController.listAllKeys (1.3 and 2.0): paged, non-expired, namespace filters
        page, size = int(call.one("page", "1") or 1), int(call.one("size", "10") or 10)
        equals = call.query.get("filters[namespace][EQUALS]", [])
        prefixes = call.query.get("filters[namespace][PREFIX]", [])
        rows = [self._kv_entry(ns, key, entry) for ns, key, entry in self._kv_rows(call.tenant)
                if all(ns == e for e in equals)
                and all(ns == p or ns.startswith(p + ".") for p in prefixes)]
        return _json({"results": rows[(page - 1) * size: page * size], "total": len(rows)})

    def _kv_list_namespace(self, call: _Call) -> Response:
        # KVController.listKeys (1.3 only, deprecated): that namespace's entries, unpaged
        namespace = call.params["namespace"]
        return _json([self._kv_entry(ns, key, entry)
                      for ns, key, entry in self._kv_rows(call.tenant) if ns == namespace])

    # -- executions -----------------------------------------------------------------------------

    def _execution_url(self, tenant: str, namespace: str, flow_id: str, execution_id: str
                       ) -> str | None:
        # UriProvider.executionUrl: none without `kestra.url`
        if not self.url:
            return None
        return f"{self.url.rstrip('/')}/ui/{tenant}/executions/{namespace}/{flow_id}/{execution_id}"

    def _webhook(self, call: _Call) -> Response:
        # ExecutionController.webhook + Webhook.evaluate + WebhookService.newExecution
        namespace, flow_id, key = call.params["namespace"], call.params["id"], call.params["key"]
        live = self._live(call.tenant, namespace, flow_id)
        if live is None:
            raise _not_found("Flow not found")
        if live.disabled:
            if self.major < 2:  # ExecutionController (1.3): an IllegalStateException
                raise _illegal_state("Cannot execute a disabled flow")
            # ExecutionController (2.0): a ConflictException
            raise HttpError(409, "Conflict: Cannot execute flow: flow is disabled.")
        flow = rules.parse(live.source)
        flow = flow if isinstance(flow, dict) else {}
        flow_vars = {"id": flow_id, "namespace": namespace, "revision": live.revision,
                     "tenantId": call.tenant}
        types = {WEBHOOK} | ({WEBHOOK_ALIAS} if self.major < 2 else set())
        trigger = None
        for candidate in flow.get("triggers") or []:
            # the key is rendered; a key that fails to render is skipped; a disabled trigger is not
            if not isinstance(candidate, dict) or candidate.get("type") not in types:
                continue
            try:
                rendered = _render(_pebble_text(candidate.get("key")), {"flow": flow_vars},
                                   self.secrets)
            except _RenderError:
                continue
            if rendered.strip() == key:
                trigger = candidate
                break
        if trigger is None:
            raise _not_found("Webhook not found")
        if call.params.get("rest") or call.path.endswith("/"):
            raise _not_found()  # Webhook.evaluate: no extra path (a 404 through the status route)
        body = call.body.decode("utf-8", errors="replace") if call.body else None
        try:
            parsed = _lenient_json(body)
            if not isinstance(parsed, (dict, list)):
                raise ValueError("neither a map nor a list")
        except ValueError:
            parsed = body  # not JSON: the raw text
        headers: dict[str, list[str]] = {}
        for name, value in call.raw_headers:
            headers.setdefault(name, []).append(value)
        parameters: dict[str, list[str]] = {k: list(v) for k, v in call.query.items()}
        variables: dict[str, Any] = {"headers": headers, "parameters": parameters}
        if parsed is not None:
            variables = {"body": parsed, **variables}
        execution_id = _short_id()
        context = {"flow": flow_vars, "trigger": variables, "execution": {"id": execution_id}}
        no_execution = Response(409) if self.major < 2 else Response(204)
        if not self._webhook_conditions(trigger, context):
            return no_execution  # conditions not met: 409 on 1.3, 204 on 2.0, without a body
        inputs = trigger.get("inputs")
        if isinstance(inputs, dict):
            try:
                inputs = _render_value(inputs, context, self.secrets)
            except _RenderError:
                # 1.3: no execution, as for unmet conditions; 2.0: WebhookInputRenderException
                return no_execution if self.major < 2 else Response(422)
        labels = [{"key": "system.from", "value": "trigger"}]
        flow_labels = flow.get("labels") or {}
        if isinstance(flow_labels, dict):
            flow_labels = [{"key": str(k), "value": str(v)} for k, v in flow_labels.items()]
        labels += [label for label in flow_labels if isinstance(label, dict)
                   and not str(label.get("key", "")).startswith("system.")]
        labels.append({"key": "system.correlationId", "value": execution_id})
        execution: dict[str, Any] = {
            "tenantId": call.tenant, "id": execution_id, "namespace": namespace,
            "flowId": flow_id, "flowRevision": live.revision,
            "trigger": {"id": trigger.get("id"), "type": trigger.get("type"),
                        "variables": variables},
            "labels": labels,
            "state": {"current": "CREATED", "histories": [{"state": "CREATED", "date": _now()}]}}
        if url := self._execution_url(call.tenant, namespace, flow_id, execution_id):
            execution["url"] = url
        self.executions.append({**execution, "inputs": inputs if isinstance(inputs, dict) else {}})
        return _json(execution)  # WebhookResponse

    def _webhook_conditions(self, trigger: dict, context: Mapping[str, Any]) -> bool:
        if self.major >= 2:
            # ConditionService.isValid (2.0): the trigger's `when`, false when it renders falsy
            try:
                text = _render(_pebble_text(trigger.get("when", "true")), context, self.secrets)
            except _RenderError:
                return False
            return text.strip() not in ("false", "0", "-0", "")
        # WebhookService.newExecution (1.3): every condition of `conditions` must hold
        for condition in trigger.get("conditions") or []:
            kind = condition.get("type") if isinstance(condition, dict) else None
            if kind not in EXPRESSION_CONDITIONS:
                raise NotImplementedError(f"the fake Kestra cannot evaluate a {kind} condition")
            try:
                text = _render(_pebble_text(condition.get("expression")), context, self.secrets)
            except _RenderError:
                return False
            if not text.strip() or text.strip() == "false":  # Expression.test
                return False
        return True

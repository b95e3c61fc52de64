"""A thin client of the Kestra HTTP API: one method per endpoint, no planning logic.

Every tenant-scoped path carries the tenant. Errors become the typed exceptions of ``errors``;
no httpx exception escapes. Requests that are safe to repeat are retried with exponential
backoff and jitter on connection errors, 429 and 502/503/504. Credentials live only inside the
httpx client's auth and never reach a repr, a log line or an exception.
"""

from __future__ import annotations

import html
import json
import logging
import random
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from . import __version__
from .errors import (
    ApiError,
    KestraError,
    SettingsError,
    TransportError,
    api_error_class,
)

log = logging.getLogger(__name__)

VALIDATE_BATCH = 100  # the server validates at most this many flows per request comfortably
RETRY_STATUSES = frozenset({429, 502, 503, 504})
_HINTS = {  # what to do next, appended to the server's own message
    401: " (check the credentials: --username/--password or --token, or KESTRA_USERNAME/"
         "KESTRA_PASSWORD or KESTRA_API_TOKEN)",
    403: " (the credentials lack a permission this needs)",
}
YAML = "application/x-yaml"


@dataclass(frozen=True)
class Connection:
    """Where the target is and how to authenticate. Secrets are hidden from repr."""

    url: str
    tenant: str = "main"
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    verify: bool = True
    ca_bundle: str | None = None
    timeout: float = 30.0
    retries: int = 4

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(
                f"invalid Kestra URL {_redact_url(self.url)!r}: expected http(s)://host[:port]"
            )
        if parts.username or parts.password:
            raise SettingsError(
                "put credentials in --username/--password or KESTRA_USERNAME/KESTRA_PASSWORD, "
                "not in the URL"
            )
        if self.username and not self.password:
            raise SettingsError("a username was given without a password (KESTRA_PASSWORD)")
        if self.timeout <= 0:
            raise SettingsError("--timeout must be a positive number of seconds")

    @property
    def auth_kind(self) -> str:
        return "token" if self.token else "basic" if self.username else "none"

    def __repr__(self) -> str:
        return (
            f"Connection(url={self.url!r}, tenant={self.tenant!r}, auth={self.auth_kind!r}, "
            f"verify={self.verify!r}, ca_bundle={self.ca_bundle!r}, timeout={self.timeout!r})"
        )


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, "***@" + host, parts.path, "", ""))
    return url


def _segment(value: str) -> str:
    return quote(value, safe="")


def _error_text(response: httpx.Response) -> tuple[str, list[str]]:
    """The server's message and per-field errors; anything else becomes a short plain text.

    Kestra 1.3 and 2.0 answer errors with Micronaut's JsonError: ``{"message": "...",
    "_embedded": {"errors": [{"message": "...", "path": "flow.id"}]}}``. Some errors have no
    body (401, a webhook's 409/422); a proxy in front may answer an HTML page or plain text.
    """
    if not response.content.strip():
        return response.reason_phrase or "", []
    try:
        body = response.json()
    except ValueError:
        return _plain_text(response), []
    if not isinstance(body, dict):
        return _shorten(json.dumps(body)), []
    message = body.get("message")
    message = str(message).strip() if message is not None else ""
    details: list[str] = []
    embedded = body.get("_embedded")
    errors = embedded.get("errors") if isinstance(embedded, dict) else None
    for item in errors if isinstance(errors, list) else []:
        if isinstance(item, dict) and str(item.get("message") or "").strip():
            where, text = item.get("path"), " ".join(str(item["message"]).split())
            details.append(_shorten(f"{where}: {text}" if where else text))
    # "Invalid entity: flow.id: Flow id already exists" repeats its embedded errors: keep the
    # head ("Invalid entity") as the message and the errors as details
    starts = [message.find(d) for d in details]
    if details and all(i > 0 for i in starts):
        message = message[: min(starts)].rstrip(" :")
    elif details:
        details = [d for d in details if d not in message]
    message = _shorten(" ".join(message.split())) or response.reason_phrase or ""
    return message, details


def _shorten(text: str, limit: int = 500) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain_text(response: httpx.Response) -> str:
    """A non-JSON body in one line: an HTML page's title, or the start of the text."""
    text = response.content.decode(response.encoding or "utf-8", errors="replace")
    if "html" in response.headers.get("content-type", "").lower() or \
            text.lstrip()[:1] == "<":
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        words = " ".join(html.unescape(title.group(1)).split()) if title else ""
        return f"an HTML page{f' ({_shorten(words, 200)})' if words else ''} instead of JSON"
    return _shorten(" ".join(text.split()))


def _body(response: httpx.Response) -> Any:
    """The JSON of a successful answer; a typed error (naming the status) when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        request = response.request
        raise KestraError(
            f"{request.method} {request.url.path} answered HTTP {response.status_code} with "
            f"{_plain_text(response) if response.content.strip() else 'an empty body'}, "
            "not JSON; is this a Kestra server?"
        ) from None


class _BearerAuth(httpx.Auth):
    """``Authorization: Bearer`` on every request, kept out of the client's default headers."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


class KestraClient:
    """One method per Kestra API endpoint this project uses."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        tenant: str = "main",
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = http
        self.tenant = tenant
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"KestraClient(base_url={str(self._http.base_url)!r}, tenant={self.tenant!r})"

    def __enter__(self) -> KestraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing -------------------------------------------------------------------------

    def _path(self, path: str) -> str:
        return f"/api/v1/{_segment(self.tenant)}{path}"

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("retry-after", "")
            if retry_after.isdigit():
                return min(float(retry_after), self._max_backoff)
        ceiling = min(self._max_backoff, self._backoff * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)  # jitter spreads out concurrent retries

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool | None = None,
        ok: Sequence[int] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; retry what is safe to retry; raise typed errors for the rest.

        ``ok`` lists error statuses the caller handles itself (returned, not raised).
        """
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        attempt = 0
        while True:
            started = time.monotonic()
            response: httpx.Response | None = None
            try:
                response = self._http.request(method, path, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # the request never reached the server: repeating it is always safe
                error: Exception = exc
            except httpx.TransportError as exc:
                if not idempotent:
                    raise TransportError(
                        f"{method} {path}: {type(exc).__name__}: {exc or 'connection lost'} "
                        "(not retried: the server may have processed it)",
                        method=method, path=path,
                    ) from exc
                error = exc
            except httpx.HTTPError as exc:  # invalid URL and the like: not worth retrying
                raise TransportError(f"{method} {path}: {exc}", method=method, path=path) from exc
            else:
                elapsed = (time.monotonic() - started) * 1000
                log.debug("%s %s -> %s (%.0f ms)", method, path, response.status_code, elapsed)
                status = response.status_code
                retryable = status == 429 or (idempotent and status in RETRY_STATUSES)
                if not (retryable and attempt < self._retries):
                    if status >= 400 and status not in ok:
                        message, details = _error_text(response)
                        message = (message + _HINTS.get(status, "")).strip()
                        raise api_error_class(status)(
                            status, method=method, path=path, message=message, details=details
                        )
                    return response
                error = ApiError(status, method=method, path=path, message=response.reason_phrase)
            if attempt >= self._retries:
                raise TransportError(
                    f"{method} {path}: {type(error).__name__}: {error} "
                    f"(gave up after {attempt + 1} attempts)",
                    method=method, path=path,
                ) from error
            delay = self._delay(attempt, response)
            log.info("%s %s: %s; retrying in %.1f s", method, path, type(error).__name__, delay)
            self._sleep(delay)
            attempt += 1

    # -- server ---------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when the web server answers ``/ping`` (no authentication needed)."""
        return self.request("GET", "/ping").status_code == 200

    def configs(self) -> dict[str, Any]:
        """The server's configuration: ``version``, ``edition``, ... (open without credentials)."""
        return _body(self.request("GET", "/api/v1/configs"))

    # -- flows ----------------------------------------------------------------------------

    def get_flow(
        self, namespace: str, flow_id: str, *, revision: int | None = None,
        allow_deleted: bool = False,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"source": "true"}
        if revision is not None:
            params["revision"] = revision
        if allow_deleted:
            params["allowDeleted"] = "true"
        path = self._path(f"/flows/{_segment(namespace)}/{_segment(flow_id)}")
        return _body(self.request("GET", path, params=params))

    def create_flow(self, source: str) -> dict[str, Any]:
        return _body(self.request(
            "POST", self._path("/flows"), content=source.encode(), headers={"Content-Type": YAML}
        ))

    def update_flow(self, namespace: str, flow_id: str, source: str) -> dict[str, Any]:
        path = self._path(f"/flows/{_segment(namespace)}/{_segment(flow_id)}")
        return _body(self.request(
            "PUT", path, content=source.encode(), headers={"Content-Type": YAML}
        ))

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        self.request("DELETE", self._path(f"/flows/{_segment(namespace)}/{_segment(flow_id)}"))

    def flow_revisions(self, namespace: str, flow_id: str) -> list[dict[str, Any]]:
        path = self._path(f"/flows/{_segment(namespace)}/{_segment(flow_id)}/revisions")
        return _body(self.request("GET", path))

    def export_flows(self, namespace_prefix: str | None = None) -> bytes:
        """A ZIP of the sources of every flow under a namespace prefix (all flows if None)."""
        params = {"filters[namespace][PREFIX]": namespace_prefix} if namespace_prefix else {}
        return self.request("GET", self._path("/flows/export/by-query"), params=params).content

    def import_flows(self, data: bytes, *, filename: str = "flows.zip") -> list[str]:
        """Import a ZIP (or a multi-document YAML): what failed, as ZIP entry names or, for a YAML
        file, as ``"<file name>(flow number: N)"``. Existing flows are updated, others created."""
        # the server picks its parser from the file name's extension
        files = {"fileUpload": (filename, data, "application/octet-stream")}
        return _body(self.request(
            "POST", self._path("/flows/import"), params={"failOnError": "false"}, files=files
        ))

    def validate_flows(self, sources: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """Server-side validation of (name, source) pairs, in batches; one entry per source.

        Sent as multipart parts rather than one multi-document body, which the server splits
        on ``---`` lines and would break on a flow holding such a line in a block of text.
        Each entry's ``index`` is the position in ``sources``.
        """
        results: list[dict[str, Any]] = []
        for start in range(0, len(sources), VALIDATE_BATCH):
            batch = sources[start : start + VALIDATE_BATCH]
            files = [("flows", (name, text.encode(), YAML)) for name, text in batch]
            answer = _body(self.request(
                "POST", self._path("/flows/validate"), files=files, idempotent=True
            ))
            if not isinstance(answer, list) or len(answer) != len(batch):
                raise KestraError(
                    f"flows/validate answered {len(answer) if isinstance(answer, list) else 'no'} "
                    f"entries for {len(batch)} flows; is this a Kestra server?"
                )
            for offset, entry in enumerate(answer):
                results.append({**entry, "index": start + offset})
        return results

    # -- namespace files ------------------------------------------------------------------

    def _files_path(self, namespace: str, suffix: str = "") -> str:
        return self._path(f"/namespaces/{_segment(namespace)}/files{suffix}")

    def list_namespace_files(self, namespace: str, path: str = "/") -> list[dict[str, Any]]:
        return _body(self.request(
            "GET", self._files_path(namespace, "/directory"), params={"path": path}
        ))

    def download_namespace_file(self, namespace: str, path: str) -> bytes:
        return self.request("GET", self._files_path(namespace), params={"path": path}).content

    def upload_namespace_file(self, namespace: str, path: str, content: bytes) -> None:
        # a part whose file name ends in .zip would be extracted at the root: keep it neutral
        files = {"fileContent": ("fileContent", content, "application/octet-stream")}
        self.request(
            "POST", self._files_path(namespace), params={"path": path}, files=files,
            idempotent=True,  # uploading the same bytes to the same path twice is harmless
        )

    def delete_namespace_file(self, namespace: str, path: str) -> None:
        self.request("DELETE", self._files_path(namespace), params={"path": path})

    def export_namespace_files(self, namespace: str) -> bytes:
        return self.request("GET", self._files_path(namespace, "/export")).content

    # -- KV store ---------------------------------------------------------------------------

    def _kv_path(self, namespace: str, key: str) -> str:
        return self._path(f"/namespaces/{_segment(namespace)}/kv/{_segment(key)}")

    def kv_get(self, namespace: str, key: str) -> Any:
        """The stored value (decoded). Raises NotFound when missing (and 410 when expired)."""
        answer = _body(self.request("GET", self._kv_path(namespace, key)))
        return answer.get("value") if isinstance(answer, dict) else None

    def kv_put(
        self, namespace: str, key: str, value: Any, *, ttl: str | None = None,
        description: str | None = None,
    ) -> None:
        headers = {"Content-Type": "text/plain"}
        if ttl:
            headers["ttl"] = ttl
        if description:
            headers["description"] = description
        # the body is the JSON text of the value: the server infers the type from it
        self.request(
            "PUT", self._kv_path(namespace, key), content=json.dumps(value).encode(),
            headers=headers,
        )

    def kv_delete(self, namespace: str, key: str) -> bool:
        """Delete a key; False when there was none (the server answers 200 either way)."""
        return _body(self.request("DELETE", self._kv_path(namespace, key))) is True

    def list_kv_keys(self, namespace: str) -> list[str]:
        """The keys stored in one namespace's KV store (not its children's), expired ones left out.

        Uses the tenant-wide listing (Kestra 1.3 and 2.0), filtered on that exact namespace,
        page by page.
        """
        keys: list[str] = []
        page, size = 1, 100
        while True:
            params = {"filters[namespace][EQUALS]": namespace, "page": page, "size": size}
            answer = _body(self.request("GET", self._path("/kv"), params=params))
            if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
                raise KestraError(f"GET {self._path('/kv')} answered no paged results; "
                                  "is this a Kestra server?")
            results = answer["results"]
            keys += [str(e["key"]) for e in results
                     if isinstance(e, dict) and "key" in e and e.get("namespace") == namespace]
            total = answer.get("total")
            if len(results) < size or not isinstance(total, int) or page * size >= total:
                return keys
            page += 1

    # -- executions -------------------------------------------------------------------------

    def create_execution(
        self, namespace: str, flow_id: str, inputs: Mapping[str, str] | None = None,
        *, wait: bool = False,
    ) -> dict[str, Any]:
        path = self._path(f"/executions/{_segment(namespace)}/{_segment(flow_id)}")
        params = {"wait": "true"} if wait else {}
        files = [(name, (None, str(value))) for name, value in (inputs or {}).items()]
        kwargs: dict[str, Any] = {"files": files} if files else {}
        return _body(self.request("POST", path, params=params, **kwargs))


def connect(
    connection: Connection, *, transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> KestraClient:
    """Build a client from connection settings (``transport`` lets tests stay in-process)."""
    verify: bool | ssl.SSLContext = connection.verify
    if urlsplit(connection.url).scheme == "http":
        # plain HTTP never uses TLS (and redirects are not followed): skip loading CA files
        verify = False
    elif connection.verify and connection.ca_bundle:
        try:
            verify = ssl.create_default_context(cafile=connection.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"cannot use CA bundle {connection.ca_bundle!r}: {exc}") from exc
    headers = {"User-Agent": f"kestra-promote/{__version__}"}
    auth: httpx.Auth | None = None
    if connection.token:
        auth = _BearerAuth(connection.token)
    elif connection.username and connection.password:
        auth = httpx.BasicAuth(connection.username, connection.password)
    http = httpx.Client(
        base_url=connection.url.rstrip("/"),
        auth=auth,
        headers=headers,
        verify=verify,
        timeout=httpx.Timeout(connection.timeout, connect=min(connection.timeout, 10.0)),
        transport=transport,
        follow_redirects=False,
    )
    return KestraClient(http, tenant=connection.tenant, retries=connection.retries, sleep=sleep)

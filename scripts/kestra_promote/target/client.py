"""A thin client of the Kestra HTTP API: one method per endpoint, no planning logic.

Every tenant-scoped path carries the tenant. Errors become the typed exceptions of ``errors``;
no httpx exception escapes. Requests that are safe to repeat are retried with exponential
backoff and jitter on connection errors, 429 and 502/503/504. Only the success statuses a Kestra
controller answers count as success: a redirect (never followed), another 2xx, or a body that is
not what the endpoint gives (an HTML page instead of JSON or a ZIP) raises UnexpectedResponse,
never retried. Credentials live only inside the httpx client's auth and never reach a repr, a
log line or an exception: whatever a server echoes back (an ``Authorization`` header, the
password, the token, raw or encoded) is replaced by ``***`` in every message built from it.
"""

from __future__ import annotations

import base64
import html
import io
import ipaddress
import json
import logging
import random
import re
import ssl
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Iterator, Mapping, Sequence, TypeVar
from urllib.parse import quote, quote_plus, urljoin, urlsplit, urlunsplit

import httpx

from kestra_promote.version import __version__
from kestra_promote.errors import (
    ApiError,
    RequestTooLarge,
    SettingsError,
    TransportError,
    UnexpectedResponse,
    api_error_class,
)

log = logging.getLogger(__name__)

# The server answers a bulk request (validation, import, deletion by ids) only once it has
# worked through every entry: thousands of flows in one body take far longer than one flow.
BULK_READ_TIMEOUT = 300.0
DEFAULT_MAX_BODY = 1_000_000  # just under 1 MiB, what nginx and others accept by default
MIN_MAX_BODY = 65_536
PART_OVERHEAD = 256  # a multipart part's boundary and headers, generously
RETRY_STATUSES = frozenset({429, 502, 503, 504})
_HINTS = {  # what to do next, appended to the server's own message
    401: " (check the credentials: --username/--password or --token, or KESTRA_USERNAME/"
         "KESTRA_PASSWORD or KESTRA_API_TOKEN)",
    403: " (the credentials lack a permission this needs)",
    413: " (a proxy or the server refuses a body this large: lower --max-request-bytes, "
         "KESTRA_MAX_REQUEST_BYTES, to what it accepts)",
}
YAML = "application/x-yaml"
NO_BODY = (200, 204)  # what Kestra's void (200) and "no content" (204) controllers answer
_NOT_API = "not a Kestra API answer; check the URL or proxy"
INSECURE_WITH_CA = ("--insecure and --ca-bundle contradict each other: keep --ca-bundle "
                    "(certificates are then checked against it) and drop --insecure")


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
    # the largest request body sent: common reverse proxies refuse more than 1 MiB by default
    max_body: int = DEFAULT_MAX_BODY

    def __post_init__(self) -> None:
        try:
            parts = urlsplit(self.url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises on a port that is no number
        except ValueError:  # a malformed IPv6 address or port
            valid = False
        if not valid:
            raise SettingsError(
                f"invalid Kestra URL {_redact_url(self.url)!r}: expected http(s)://host[:port]"
            )
        if parts.username or parts.password:
            raise SettingsError(
                "put credentials in --username/--password or KESTRA_USERNAME/KESTRA_PASSWORD, "
                "not in the URL"
            )
        if parts.query or parts.fragment or self.url.rstrip().endswith(("?", "#")):
            # requests are built by joining paths to the URL: a query would be lost or end up
            # in the middle of a path, and it may hold a token that then shows in errors
            base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
            raise SettingsError(f"the Kestra URL must not have a query string or fragment "
                                f"(?... or #...): give the server's base URL, e.g. "
                                f"{_redact_url(base)}")
        # the requests add /api/v1/<tenant>/...: a URL that already holds the API path would
        # double it (and Kestra would then read "api" as the tenant)
        object.__setattr__(self, "url", _base_url(self.url))
        if self.username and not self.password:
            raise SettingsError("a username was given without a password (KESTRA_PASSWORD)")
        if not self.verify and self.ca_bundle:
            raise SettingsError(INSECURE_WITH_CA)
        if self.timeout <= 0:
            raise SettingsError("--timeout must be a positive number of seconds")
        if self.max_body < MIN_MAX_BODY:
            raise SettingsError(f"--max-request-bytes must be at least {MIN_MAX_BODY}")

    @property
    def auth_kind(self) -> str:
        return "token" if self.token else "basic" if self.username else "none"

    def warnings(self) -> list[str]:
        """What is unsafe about these settings, in words for people (never a credential)."""
        found = []
        if not self.verify:
            found.append("--insecure: TLS certificates are not verified, so anyone on the network "
                         "path can pose as the target and read the credentials; trust a private "
                         "CA with --ca-bundle FILE instead.")
        parts = urlsplit(self.url)
        if parts.scheme == "http" and self.auth_kind != "none" and \
                not _is_loopback(parts.hostname or ""):
            found.append(f"the credentials travel in clear text over http:// to {parts.hostname}: "
                         "anyone on the network path can read them; use https://.")
        return found

    def __repr__(self) -> str:
        return (
            f"Connection(url={self.url!r}, tenant={self.tenant!r}, auth={self.auth_kind!r}, "
            f"verify={self.verify!r}, ca_bundle={self.ca_bundle!r}, timeout={self.timeout!r})"
        )


_API_PATH = "/api/v1"


def _base_url(url: str) -> str:
    """``url`` without a trailing ``/api/v1`` (or ``/api/v1/``): the server's base URL, which
    may have a path of its own (Kestra behind a reverse proxy under ``/kestra``). A URL naming
    something below ``/api/v1`` (a tenant, an endpoint) is refused: which part is the server's
    and which the tenant's is not for kestra-promote to guess."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith(_API_PATH):
        return urlunsplit(parts._replace(path=path[: -len(_API_PATH)]))
    index = path.find(_API_PATH + "/")
    if index != -1:
        base = urlunsplit((parts.scheme, parts.netloc, path[:index], "", ""))
        raise SettingsError(
            f"the Kestra URL {_redact_url(url)!r} includes the API path {path[index:]}: give the "
            f"server's base URL instead, e.g. {base} (kestra-promote adds /api/v1/<tenant>/... "
            "itself; a tenant goes in --tenant or KESTRA_TENANT)"
        )
    return url


def _is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (or ::ffff:127.x.y.z) or localhost: traffic that stays on this machine."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


class _Redactor:
    """Replaces credentials by ``***`` in text a server sent back: the password and the token
    raw or encoded (base64 ``user:password``, URL, JSON and HTML escapes), and the value of any
    ``Authorization``, ``Cookie`` or ``Basic``/``Bearer`` credential it echoes."""

    _HEADER = re.compile(r"(?i)(\b(?:proxy-)?authorization|\b(?:set-)?cookie)"
                         r"([\"']?\s*[:=]\s*\[?\s*[\"']?)([^\"'\r\n,\]}<]+)")
    _SCHEME = re.compile(r"(?i)\b(basic|bearer)(\s+|%20|\+)"
                         r"(?=[A-Za-z0-9._~+/=-]*[0-9+/=._~-])[A-Za-z0-9._~+/=-]{8,}")

    def __init__(self, username: str | None = None, password: str | None = None,
                 token: str | None = None) -> None:
        forms: set[str] = set()
        for secret in (password, token):
            if secret:
                forms |= self._escapes(secret)
        if token:
            encoded = base64.b64encode(token.encode()).decode()
            forms |= {encoded, encoded.rstrip("=")}
        if username and password:
            pair = f"{username}:{password}"
            forms |= self._escapes(pair)
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                encoded = encode(pair.encode()).decode()
                forms |= {encoded, encoded.rstrip("=")}
        ordered = sorted(forms - {""}, key=len, reverse=True)  # longest first
        self._known = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @staticmethod
    def _escapes(secret: str) -> set[str]:
        return {secret, quote(secret, safe=""), quote_plus(secret), html.escape(secret),
                json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}

    def __call__(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub("***", text)
        text = self._SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
        return self._HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)

    def __repr__(self) -> str:
        return "_Redactor(***)"


def _redact_url(url: str) -> str:
    """``url`` as it may be shown: no user info, query or fragment (any may hold a secret)."""
    url = re.split(r"[?#]", url, maxsplit=1)[0]
    scheme, _, rest = url.rpartition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return (f"{scheme}://" if scheme else "") + authority + slash + path


def _segment(value: str) -> str:
    return quote(value, safe="")


def _error_text(response: httpx.Response, redact: Callable[[str], str]) -> tuple[str, list[str]]:
    """The server's message and per-field errors; anything else becomes a short plain text.

    Kestra 1.3 and 2.0 answer errors with Micronaut's JsonError: ``{"message": "...",
    "_embedded": {"errors": [{"message": "...", "path": "flow.id"}]}}``. Some errors have no
    body (401, a webhook's 409/422); a proxy in front may answer an HTML page or plain text.
    Credentials are redacted before anything is shortened (a cut must not split one).
    """
    if not response.content.strip():
        return response.reason_phrase or "", []
    try:
        body = response.json()
    except ValueError:
        return _plain_text(response, redact), []
    if not isinstance(body, dict):
        return _shorten(redact(json.dumps(body))), []
    message = body.get("message")
    message = redact(str(message)).strip() if message is not None else ""
    details: list[str] = []
    embedded = body.get("_embedded")
    errors = embedded.get("errors") if isinstance(embedded, dict) else None
    for item in errors if isinstance(errors, list) else []:
        if isinstance(item, dict) and str(item.get("message") or "").strip():
            where, text = item.get("path"), " ".join(redact(str(item["message"])).split())
            details.append(_shorten(redact(f"{where}: {text}") if where else text))
    # "Invalid entity: flow.id: Flow id already exists" repeats its embedded errors: keep the
    # head ("Invalid entity") as the message and the errors as details
    starts = [message.find(d) for d in details]
    if details and all(i > 0 for i in starts):
        message = message[: min(starts)].rstrip(" :")
    elif details:
        details = [d for d in details if d not in message]
    message = _shorten(" ".join(message.split())) or response.reason_phrase or ""
    return message, details


def _kestra_error(response: httpx.Response) -> bool:
    """Whether an error answer is Kestra's own JSON error ({"message": ...})."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "message" in body


def _shorten(text: str, limit: int = 500) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_html(response: httpx.Response, text: str) -> bool:
    return "html" in response.headers.get("content-type", "").lower() or text.lstrip()[:1] == "<"


def _html_page(text: str, redact: Callable[[str], str]) -> str:
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    words = " ".join(redact(html.unescape(title.group(1))).split()) if title else ""
    return f"an HTML page{f' ({_shorten(words, 200)})' if words else ''}"


def _plain_text(response: httpx.Response, redact: Callable[[str], str]) -> str:
    """A non-JSON error body in one line: an HTML page's title, or the start of the text."""
    text = response.content.decode(response.encoding or "utf-8", errors="replace")
    if _is_html(response, text):
        return _html_page(text, redact) + " instead of JSON"
    return _shorten(" ".join(redact(text).split()))


def _describe(response: httpx.Response, redact: Callable[[str], str]) -> str:
    """What a successful answer holds, in a few words: for a message saying it is not the
    expected JSON, ZIP or file."""
    content = response.content
    if not content.strip():
        return "an empty body"
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    text = content.decode(response.encoding or "utf-8", errors="replace")
    if _is_html(response, text):
        return _html_page(text, redact)
    if media.startswith("text/") or "json" in media or "\ufffd" not in text:
        return repr(_shorten(" ".join(redact(text).split()), 200))
    return f"{len(content)} bytes of {media or 'an unnamed type'}"


def _shown_location(response: httpx.Response, redact: Callable[[str], str]) -> str:
    """Where a redirect points, without user info, query or fragment (they may hold secrets)."""
    location = response.headers.get("location", "").strip()
    if not location:
        return "a redirect without a Location"
    try:
        parts = urlsplit(urljoin(str(response.request.url), location))
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port:
            host += f":{parts.port}"
    except ValueError:
        return "a redirect to an unreadable Location"
    shown = urlunsplit((parts.scheme, host, parts.path, "", ""))
    if parts.query or parts.fragment:
        shown += "?..."
    return "redirect to " + _shorten(redact(shown), 300)


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
        redact: Callable[[str], str] | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self._http = http
        self._redact = redact or _Redactor()  # connect() passes one that knows the credentials
        self.tenant = tenant
        self.max_body = max_body
        self.largest_sent = 0  # the largest body the target answered (not with a 413)
        self._major: object = _UNKNOWN
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
        success: Collection[int] = (200,),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; retry what is safe to retry; raise typed errors for the rest.

        ``success`` lists the statuses the endpoint answers when it worked; any other status
        below 400 (a redirect, another 2xx) raises UnexpectedResponse, never retried. ``ok``
        lists error statuses the caller handles itself (returned, not raised).
        """
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        size = body_size(kwargs)
        if size > self.max_body:  # every caller batches below it: this is the last guard
            raise RequestTooLarge(
                f"{method} {path} would send {size} bytes, more than the limit of "
                f"{self.max_body} (--max-request-bytes, KESTRA_MAX_REQUEST_BYTES); nothing was "
                "sent", method=method, path=path)
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
                        f"{method} {path}: {type(exc).__name__}: "
                        f"{self._redact(str(exc)) or 'connection lost'} "
                        "(not retried: the server may have processed it)",
                        method=method, path=path,
                    ) from exc
                error = exc
            except httpx.HTTPError as exc:  # invalid URL and the like: not worth retrying
                raise TransportError(f"{method} {path}: {self._redact(str(exc))}",
                                     method=method, path=path) from exc
            else:
                elapsed = (time.monotonic() - started) * 1000
                log.debug("%s %s -> %s (%.0f ms)", method, path, response.status_code, elapsed)
                status = response.status_code
                if status != 413:
                    self.largest_sent = max(self.largest_sent, size)
                retryable = status == 429 or (idempotent and status in RETRY_STATUSES)
                if not (retryable and attempt < self._retries):
                    if status in ok or status in success:
                        return response
                    if status == 404 and not _kestra_error(response):
                        # Kestra answers every 404 with its JSON error (ErrorController): a page
                        # from a proxy says nothing about the object, never "already gone"
                        raise self._unexpected(response, "a page that is not Kestra's")
                    if status >= 400:
                        message, details = _error_text(response, self._redact)
                        message = (message + _HINTS.get(status, "")).strip()
                        raise api_error_class(status)(
                            status, method=method, path=path, message=message, details=details
                        )
                    raise self._unexpected_status(response, method, path)
                error = ApiError(status, method=method, path=path, message=response.reason_phrase)
            if attempt >= self._retries:
                raise TransportError(
                    f"{method} {path}: {type(error).__name__}: {self._redact(str(error))} "
                    f"(gave up after {attempt + 1} attempts)",
                    method=method, path=path,
                ) from error
            delay = self._delay(attempt, response)
            log.info("%s %s: %s; retrying in %.1f s", method, path, type(error).__name__, delay)
            self._sleep(delay)
            attempt += 1

    def _unexpected_status(self, response: httpx.Response, method: str, path: str
                           ) -> UnexpectedResponse:
        status = response.status_code
        if 300 <= status < 400:
            what = f"({_shown_location(response, self._redact)})"
        else:
            reason = response.reason_phrase or "no reason given"
            what = f"({reason}), which this request never answers"
        return UnexpectedResponse(f"{method} {path} answered HTTP {status} {what}: {_NOT_API}",
                                  method=method, path=path, status=status)

    def _unexpected(self, response: httpx.Response, what: str,
                    advice: str = _NOT_API) -> UnexpectedResponse:
        request = response.request
        return UnexpectedResponse(
            f"{request.method} {request.url.path} answered HTTP {response.status_code} with "
            f"{what}: {advice}",
            method=request.method, path=request.url.path, status=response.status_code)

    def _json(self, response: httpx.Response, kind: type | tuple[type, ...] = object,
              expected: str = "") -> Any:
        """The JSON of a successful answer, of the type the endpoint gives; else a typed error."""
        try:
            body = response.json()
        except ValueError as exc:
            raise self._unexpected(
                response, f"{_describe(response, self._redact)}, not JSON") from exc
        if not isinstance(body, kind):
            raise self._unexpected(response, f"JSON that is not {expected}")
        return body

    def _no_body(self, response: httpx.Response) -> None:
        """Check the answer of an endpoint that answers no body (any JSON is tolerated)."""
        if not response.content.strip():
            return
        try:
            response.json()
        except ValueError as exc:
            raise self._unexpected(response, f"{_describe(response, self._redact)}, where "
                                             "this request answers no body") from exc

    def _zip(self, response: httpx.Response) -> bytes:
        """The bytes of a ZIP answer (exports), checked to be a whole ZIP archive."""
        data = response.content
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
            if data.startswith(b"PK"):
                raise self._unexpected(
                    response, f"a damaged or incomplete ZIP archive ({exc})",
                    "it was cut short or altered on the way; try again, or check the proxy",
                ) from exc
            raise self._unexpected(
                response, f"{_describe(response, self._redact)}, not a ZIP archive") from exc
        return data

    def _file(self, response: httpx.Response) -> bytes:
        """A file's bytes: Kestra sends them as application/octet-stream, never as a web page."""
        if "html" in response.headers.get("content-type", "").lower():
            raise self._unexpected(response, f"{_describe(response, self._redact)}, not the "
                                             "file's bytes")
        return response.content

    # -- server ---------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when Kestra's web server answers ``/ping`` (no authentication needed); False
        when something else answers 200 (a proxy's page)."""
        return self.request("GET", "/ping").content.strip().strip(b'"') == b"pong"

    def configs(self) -> dict[str, Any]:
        """The server's configuration: ``version``, ``edition``, ... (open without credentials)."""
        return self._json(self.request("GET", "/api/v1/configs"), dict, "an object")

    def major_version(self) -> int | None:
        """The server's major version (1, 2, ...), asked once per client; None when it does
        not say (or the question failed: raised once, None afterwards)."""
        if self._major is _UNKNOWN:
            self._major = None  # a failure is not asked again either
            match = re.match(r"\s*v?(\d+)\.", str(self.configs().get("version") or ""))
            self._major = int(match.group(1)) if match else None
        return self._major  # type: ignore[return-value]

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
        return self._json(self.request("GET", path, params=params), dict, "a flow")

    def create_flow(self, source: str) -> dict[str, Any]:
        return self._json(self.request(
            "POST", self._path("/flows"), content=source.encode(), headers={"Content-Type": YAML}
        ), dict, "a flow")

    def update_flow(self, namespace: str, flow_id: str, source: str) -> dict[str, Any]:
        path = self._path(f"/flows/{_segment(namespace)}/{_segment(flow_id)}")
        return self._json(self.request(
            "PUT", path, content=source.encode(), headers={"Content-Type": YAML}
        ), dict, "a flow")

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        self._no_body(self.request(
            "DELETE", self._path(f"/flows/{_segment(namespace)}/{_segment(flow_id)}"),
            success=NO_BODY))

    def flow_revisions(self, namespace: str, flow_id: str) -> list[dict[str, Any]]:
        path = self._path(f"/flows/{_segment(namespace)}/{_segment(flow_id)}/revisions")
        return self._json(self.request("GET", path), list, "a list of revisions")

    def export_flows(self, namespace_prefix: str | None = None) -> bytes:
        """A ZIP of the sources of every flow under a namespace prefix (all flows if None)."""
        params = {"filters[namespace][PREFIX]": namespace_prefix} if namespace_prefix else {}
        return self._zip(self.request("GET", self._path("/flows/export/by-query"), params=params))

    def export_flows_matching(self, namespace_regex: str) -> bytes:
        """A ZIP of the sources of every flow whose namespace matches a regular expression: the
        server's REGEX filter (jOOQ ``likeRegex``, so the database's own regex: Postgres, MySQL and
        H2 all search, anchors needed), in both 1.3 and 2.0 (``QueryFilter.Field.NAMESPACE``)."""
        params = {"filters[namespace][REGEX]": namespace_regex}
        return self._zip(self.request("GET", self._path("/flows/export/by-query"), params=params))

    def import_flows(self, data: bytes, *, filename: str = "flows.zip") -> list[str]:
        """Import a ZIP (or a multi-document YAML): what failed, as ZIP entry names or, for a YAML
        file, as ``"<file name>(flow number: N)"``. Existing flows are updated, others created."""
        # the server picks its parser from the file name's extension
        files = {"fileUpload": (filename, data, "application/octet-stream")}
        response = self.request(
            "POST", self._path("/flows/import"), params={"failOnError": "false"}, files=files,
            timeout=self._bulk_timeout())
        failures = self._json(response, list, "a list of failures")
        if not all(isinstance(name, str) for name in failures):
            raise self._unexpected(response, "JSON that is not a list of file names")
        return failures

    def _bulk_timeout(self) -> httpx.Timeout:
        """The client's timeouts, with a read timeout of at least ``BULK_READ_TIMEOUT``."""
        timeout = self._http.timeout
        return httpx.Timeout(timeout.connect, read=max(timeout.read or 0, BULK_READ_TIMEOUT),
                             write=timeout.write, pool=timeout.pool)

    def delete_flows_by_ids(self, ids: Sequence[tuple[str, str]]) -> int:
        """Delete the (namespace, id) flows, in order, in one request; how many were deleted.
        The server stops at the first one that is not there (404), the earlier ones deleted."""
        body = json.dumps([{"namespace": ns, "id": fid} for ns, fid in ids]).encode()
        answer = self._json(self.request(
            "DELETE", self._path("/flows/delete/by-ids"), content=body,
            headers={"Content-Type": "application/json"}, timeout=self._bulk_timeout()),
            dict, "a count")
        count = answer.get("count")
        if not isinstance(count, int):
            raise UnexpectedResponse(f"DELETE {self._path('/flows/delete/by-ids')} answered "
                                     f"without a count: {_NOT_API}",
                                     method="DELETE", path=self._path("/flows/delete/by-ids"),
                                     status=200)
        return count

    def validate_flows(self, sources: Sequence[tuple[str, str]], *, at_least: int = 0
                       ) -> list[dict[str, Any]]:
        """Server-side validation of (name, source) pairs, in batches; one entry per source.

        Sent as multipart parts rather than one multi-document body, which the server splits
        on ``---`` lines and would break on a flow holding such a line in a block of text.
        Each entry's ``index`` is the position in ``sources``. With ``at_least``, the last
        batch is padded with a YAML comment to that many bytes: it is then also the ``probe``
        of the largest body the run will send, in the same request.
        """
        results: list[dict[str, Any]] = []
        encoded = [(name, text.encode()) for name, text in sources]
        grouped = list(batches(encoded, lambda item: len(item[1]) + name_size(item[0])
                               + PART_OVERHEAD, self.max_body))
        start = 0
        for number, batch in enumerate(grouped, 1):
            files = [("flows", (name, data, YAML)) for name, data in batch]
            missing = at_least - body_size({"files": files}) if number == len(grouped) else 0
            if missing > PART_OVERHEAD:
                files.append(("flows", ("probe.yml", _filler(missing - PART_OVERHEAD), YAML)))
            response = self.request(
                "POST", self._path("/flows/validate"), files=files, idempotent=True,
                timeout=self._bulk_timeout())
            answer = self._json(response, list, "a list of validation results")
            if len(answer) != len(files) or not all(isinstance(e, dict) for e in answer):
                raise self._unexpected(
                    response, f"JSON that is not one validation result per flow ({len(answer)} "
                    f"entries for {len(files)} flow(s))")
            for offset, entry in enumerate(answer[:len(batch)]):
                results.append({**entry, "index": start + offset})
            start += len(batch)
        return results

    def probe(self, size: int) -> None:
        """Make sure the target (and any proxy before it) takes a body of ``size`` bytes: one
        validation of a YAML comment that long, which writes nothing. A 413 raises."""
        if size <= self.largest_sent:
            return
        data = _filler(max(0, size - PART_OVERHEAD))
        response = self.request("POST", self._path("/flows/validate"), idempotent=True,
                                files=[("flows", ("probe.yml", data, YAML))], ok=(400, 422))
        if response.status_code == 200:  # Kestra's answer, not a page from a proxy
            self._json(response, list, "a list of validation results")

    # -- namespace files ------------------------------------------------------------------

    def _files_path(self, namespace: str, suffix: str = "") -> str:
        return self._path(f"/namespaces/{_segment(namespace)}/files{suffix}")

    def list_namespace_files(self, namespace: str, path: str = "/") -> list[dict[str, Any]]:
        response = self.request(
            "GET", self._files_path(namespace, "/directory"), params={"path": path})
        entries = self._json(response, list, "a list of files")
        if not all(isinstance(entry, dict) for entry in entries):
            raise self._unexpected(response, "JSON that is not a list of files")
        return entries

    def download_namespace_file(self, namespace: str, path: str) -> bytes:
        return self._file(self.request("GET", self._files_path(namespace), params={"path": path}))

    def upload_namespace_file(self, namespace: str, path: str, content: bytes) -> None:
        # a part whose file name ends in .zip would be extracted at the root: keep it neutral
        files = {"fileContent": ("fileContent", content, "application/octet-stream")}
        self._no_body(self.request(
            "POST", self._files_path(namespace), params={"path": path}, files=files,
            idempotent=True,  # uploading the same bytes to the same path twice is harmless
            success=NO_BODY,
        ))

    def upload_namespace_files(self, namespace: str, archive: bytes) -> None:
        """Upload a ZIP whose entries the server extracts, each at ``/<entry name>``, in order."""
        # the part's file name ending in .zip is what makes the server extract it; ``path`` is
        # required but not used then
        files = {"fileContent": ("files.zip", archive, "application/zip")}
        self._no_body(self.request(
            "POST", self._files_path(namespace), params={"path": "/"}, files=files,
            idempotent=True,  # the same files with the same bytes again: harmless
            success=NO_BODY, timeout=self._bulk_timeout(),
        ))

    def delete_namespace_file(self, namespace: str, path: str) -> None:
        self._no_body(self.request(
            "DELETE", self._files_path(namespace), params={"path": path}, success=NO_BODY))

    def export_namespace_files(self, namespace: str) -> bytes:
        return self._zip(self.request("GET", self._files_path(namespace, "/export")))

    # -- KV store ---------------------------------------------------------------------------

    def _kv_path(self, namespace: str, key: str) -> str:
        return self._path(f"/namespaces/{_segment(namespace)}/kv/{_segment(key)}")

    def kv_get(self, namespace: str, key: str) -> Any:
        """The stored value (decoded). Raises NotFound when missing (and 410 when expired)."""
        response = self.request("GET", self._kv_path(namespace, key))
        answer = self._json(response, dict, "a typed value")
        if "value" not in answer:
            raise self._unexpected(response, "JSON that is not a typed value (no 'value')")
        return answer["value"]

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
        self._no_body(self.request(
            "PUT", self._kv_path(namespace, key),
            content=json.dumps(value, separators=(",", ":")).encode(),
            headers=headers, success=NO_BODY,
        ))

    def kv_delete(self, namespace: str, key: str) -> bool:
        """Delete a key; False when there was none (the server answers 200 either way)."""
        return self._json(self.request("DELETE", self._kv_path(namespace, key)), bool,
                          "true or false")

    def list_kv_keys(self, namespace: str) -> list[str]:
        """The keys stored in one namespace's KV store (not its children's), expired ones left out.

        Uses the tenant-wide listing (Kestra 1.3 and 2.0), filtered on that exact namespace,
        page by page.
        """
        keys: list[str] = []
        page, size = 1, 100
        while True:
            params = {"filters[namespace][EQUALS]": namespace, "page": page, "size": size}
            response = self.request("GET", self._path("/kv"), params=params)
            answer = self._json(response, dict, "paged results")
            if not isinstance(answer.get("results"), list):
                raise self._unexpected(response, "JSON that is not paged results (no 'results')")
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
        return self._json(self.request("POST", path, params=params, **kwargs), dict,
                          "an execution")


_UNKNOWN = object()


def _filler(size: int) -> bytes:
    """``size`` bytes of YAML comment: a body that validates nothing and writes nothing."""
    line = b"# kestra-promote: checking that a body this large is accepted\n"
    return (line * (size // len(line) + 1))[:size]


def name_size(name: str) -> int:
    """The bytes a part's file name takes in its headers: UTF-8, with a quote, a backslash or
    a line break written as three bytes (``%22``)."""
    return len(name.encode()) + 2 * sum(name.count(c) for c in '"\\\r\n')


def body_size(kwargs: Mapping[str, Any]) -> int:
    """About how many bytes a request with these httpx arguments sends in its body."""
    content = kwargs.get("content")
    size = len(content.encode() if isinstance(content, str) else content or b"")
    files = kwargs.get("files") or ()
    for _, part in files.items() if isinstance(files, Mapping) else files:
        name, data = part[0], part[1]
        size += len(data) + name_size(name or "") + PART_OVERHEAD
    if kwargs.get("json") is not None:
        size += len(json.dumps(kwargs["json"]).encode())
    return size


T = TypeVar("T")


def batches(items: Sequence[T], size_of: Callable[[T], int], max_size: int,
            max_count: int | None = None) -> Iterator[list[T]]:
    """``items`` in order, in groups of at most ``max_count`` whose sizes add up to at most
    ``max_size`` (an item larger than that alone: the request guard then refuses it)."""
    batch: list[T] = []
    total = 0
    for item in items:
        size = size_of(item)
        if batch and (total + size > max_size or (max_count and len(batch) >= max_count)):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += size
    if batch:
        yield batch


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
    redact = _Redactor(connection.username, connection.password, connection.token)
    return KestraClient(http, tenant=connection.tenant, retries=connection.retries, sleep=sleep,
                        max_body=connection.max_body,
                        redact=redact)

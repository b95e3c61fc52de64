"""How requests reach Kestra and how its answers are read: the plumbing under the API client.

Errors become the typed exceptions of ``errors``; no httpx exception escapes. Requests that are
safe to repeat are retried with exponential backoff and jitter on connection errors, 429 and
502/503/504. Only the success statuses a Kestra controller answers count as success: a redirect
(never followed), another 2xx, or a body that is not what the endpoint gives (an HTML page instead
of JSON or a ZIP) raises UnexpectedResponse, never retried. Credentials live only inside the httpx
client's auth and never reach a repr, a log line or an exception: whatever a server echoes back
(an ``Authorization`` header, the password, the token, raw or encoded) is replaced by ``***`` in
every message built from it. Also the sizes of request bodies, and batches below a size limit.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import random
import re
import time
import zipfile
from typing import Any, Callable, Collection, Iterator, Mapping, Sequence, TypeVar
from urllib.parse import quote, quote_plus, urljoin, urlsplit, urlunsplit

import httpx

from kestra_promote.errors import (
    ApiError,
    RequestTooLarge,
    TransportError,
    UnexpectedResponse,
    api_error_class,
)

log = logging.getLogger(__name__)

# The server answers a bulk request (validation, import, deletion by ids) only once it has
# worked through every entry: thousands of flows in one body take far longer than one flow.
BULK_READ_TIMEOUT = 300.0
DEFAULT_MAX_BODY = 1_000_000  # just under 1 MiB, what nginx and others accept by default
PART_OVERHEAD = 256  # a multipart part's boundary and headers, generously
RETRY_STATUSES = frozenset({429, 502, 503, 504})
_HINTS = {  # what to do next, appended to the server's own message
    401: " (check the credentials: --username/--password or --token, or KESTRA_USERNAME/"
         "KESTRA_PASSWORD or KESTRA_API_TOKEN)",
    403: " (the credentials lack a permission this needs)",
    413: " (a proxy or the server refuses a body this large: lower --max-request-bytes, "
         "KESTRA_MAX_REQUEST_BYTES, to what it accepts)",
}
NOT_API = "not a Kestra API answer; check the URL or proxy"


class Redactor:
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
        return "Redactor(***)"


def redact_url(url: str) -> str:
    """``url`` as it may be shown: no user info, query or fragment (any may hold a secret). The
    user info ends at the last ``@`` (a password may hold a ``/``): an ``@`` of the path is
    hidden with it, which shows less, never more."""
    url = re.split(r"[?#]", url, maxsplit=1)[0]
    scheme, _, rest = url.rpartition("://")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return (f"{scheme}://" if scheme else "") + rest


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


class Transport:
    """Sends requests (``request``) and reads their answers (``_json``, ``_no_body``, ``_zip``,
    ``_file``) for the API client built on it."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        redact: Callable[[str], str] | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self._http = http
        self._redact = redact or Redactor()  # connect() passes one that knows the credentials
        self.max_body = max_body
        self.largest_sent = 0  # the largest body the target answered (not with a 413)
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep

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
                    if status in (404, 410) and not _kestra_error(response):
                        # Kestra answers every 404, and a KV entry's expiry (410), with its JSON
                        # error (ErrorController): a page from a proxy says nothing about the
                        # object, never "already gone" nor "expired"
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
        return UnexpectedResponse(f"{method} {path} answered HTTP {status} {what}: {NOT_API}",
                                  method=method, path=path, status=status)

    def _unexpected(self, response: httpx.Response, what: str,
                    advice: str = NOT_API) -> UnexpectedResponse:
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

    def _bulk_timeout(self) -> httpx.Timeout:
        """The client's timeouts, with a read timeout of at least ``BULK_READ_TIMEOUT``."""
        timeout = self._http.timeout
        return httpx.Timeout(timeout.connect, read=max(timeout.read or 0, BULK_READ_TIMEOUT),
                             write=timeout.write, pool=timeout.pool)


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

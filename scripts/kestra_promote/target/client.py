"""A thin client of the Kestra HTTP API: one method per endpoint, no planning logic.

Every tenant-scoped path carries the tenant. How requests travel and how answers are checked
(retries, typed errors, credentials redacted from every message) is ``transport``'s; this module
holds the endpoints and the connection settings (where the target is, how to authenticate, TLS),
from which ``connect`` builds a client.
"""

from __future__ import annotations

import ipaddress
import json
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from kestra_promote.version import __version__
from kestra_promote.errors import SettingsError, UnexpectedResponse
from kestra_promote.target.executions import ExecutionCalls
from kestra_promote.target.transport import (
    DEFAULT_MAX_BODY,
    NOT_API,
    PART_OVERHEAD,
    Redactor,
    batches,
    body_size,
    name_size,
    redact_url,
)

MIN_MAX_BODY = 65_536
YAML = "application/x-yaml"
NO_BODY = (200, 204)  # what Kestra's void (200) and "no content" (204) controllers answer
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
                f"invalid Kestra URL {redact_url(self.url)!r}: expected http(s)://host[:port]"
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
                                f"{redact_url(base)}")
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
            f"the Kestra URL {redact_url(url)!r} includes the API path {path[index:]}: give the "
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


def _segment(value: str) -> str:
    return quote(value, safe="")


class _BearerAuth(httpx.Auth):
    """``Authorization: Bearer`` on every request, kept out of the client's default headers."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


class KestraClient(ExecutionCalls):
    """One method per Kestra API endpoint this project uses (the executions ones in
    ``executions``)."""

    def __init__(self, http: httpx.Client, *, tenant: str = "main", **settings: Any) -> None:
        super().__init__(http, **settings)  # retries, backoff, sleep, redact...: see Transport
        self.tenant = tenant
        self._major: object = _UNKNOWN

    def __repr__(self) -> str:
        return f"KestraClient(base_url={str(self._http.base_url)!r}, tenant={self.tenant!r})"

    def __enter__(self) -> KestraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _path(self, path: str) -> str:
        return f"/api/v1/{_segment(self.tenant)}{path}"

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
                                     f"without a count: {NOT_API}",
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
            if missing >= _PROBE_PART:  # the padded body is then exactly ``at_least``
                files.append(_probe_part(missing))
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
        response = self.request("POST", self._path("/flows/validate"), idempotent=True,
                                files=[_probe_part(size)], ok=(400, 422))
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
        return self.kv_entry(namespace, key)[0]

    def kv_entry(self, namespace: str, key: str) -> tuple[Any, str | None]:
        """The stored value and when the server last wrote it (its clock, ISO text, if given).

        Kestra's KVController.getKeyValue answers the value with its type, revision and
        `updated`; an entry past its expiration date by the server's clock answers 410 (and
        is deleted), so an entry that reads is live."""
        response = self.request("GET", self._kv_path(namespace, key))
        answer = self._json(response, dict, "a typed value")
        if "value" not in answer:
            raise self._unexpected(response, "JSON that is not a typed value (no 'value')")
        updated = answer.get("updated")
        return answer["value"], updated if isinstance(updated, str) else None

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


_UNKNOWN = object()


_PROBE_NAME = "probe.yml"
_PROBE_PART = PART_OVERHEAD + name_size(_PROBE_NAME)  # the body of an empty probe part


def _probe_part(size: int) -> tuple[str, tuple[str, bytes, str]]:
    """A multipart part of YAML comment that adds exactly ``size`` bytes to a body, as
    ``body_size`` (the request guard) counts them: its name and framing included (at least
    those, ``_PROBE_PART``)."""
    return ("flows", (_PROBE_NAME, _filler(max(0, size - _PROBE_PART)), YAML))


def _filler(size: int) -> bytes:
    """``size`` bytes of YAML comment: a body that validates nothing and writes nothing."""
    line = b"# kestra-promote: checking that a body this large is accepted\n"
    return (line * (size // len(line) + 1))[:size]


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
    redact = Redactor(connection.username, connection.password, connection.token)
    return KestraClient(http, tenant=connection.tenant, retries=connection.retries, sleep=sleep,
                        max_body=connection.max_body,
                        redact=redact)

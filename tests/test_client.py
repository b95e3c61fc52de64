"""The API client: paths, auth, error mapping, retries, and secrets kept out of sight."""

from __future__ import annotations

import base64
import inspect
import json
from typing import Callable

import httpx
import pytest
from fake_kestra import FakeKestra, mock_transport
from kestra_promote import errors
from kestra_promote.client import Connection, KestraClient, connect

PASSWORD = "Sup3r-Secret-pw"
TOKEN = "kestra-token-0123456789"


def client_for(handler: Callable[[httpx.Request], httpx.Response], *, tenant: str = "main",
               retries: int = 4, sleeps: list[float] | None = None) -> KestraClient:
    http = httpx.Client(base_url="http://kestra.test", transport=httpx.MockTransport(handler))
    record = sleeps if sleeps is not None else []
    return KestraClient(http, tenant=tenant, retries=retries, sleep=record.append)


def fake_client(fake: FakeKestra, **kwargs) -> KestraClient:
    connection = Connection("http://kestra.test", username="admin@kestra.io",
                            password="Admin1234!", **kwargs)
    return connect(connection, transport=mock_transport(fake), sleep=lambda _: None)


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind", "text"),
    [
        pytest.param(422, {"Content-Type": "application/json"},
                     {"message": "Invalid entity: flow.id: must match",
                      "_embedded": {"errors": [{"message": "must match", "path": "flow.id"}]}},
                     errors.Unprocessable, "HTTP 422: Invalid entity: flow.id: must match\n"
                     "  - flow.id: must match", id="1.x-json-error"),
        pytest.param(409, {"Content-Type": "application/problem+json"},
                     {"type": "https://kestra.io/problems/entity-already-exists",
                      "title": "Conflict", "status": 409, "detail": "Flow a.b already exists",
                      "errors": [{"detail": "exists", "pointer": "/id", "path": "id"}]},
                     errors.Conflict, "HTTP 409: Flow a.b already exists\n  - id: exists",
                     id="2.0-problem-json"),
        pytest.param(404, {}, None, errors.NotFound, "HTTP 404: Not Found", id="empty-404"),
        pytest.param(401, {"WWW-Authenticate": "Basic"}, None, errors.Unauthorized,
                     "HTTP 401: Unauthorized (check the credentials", id="401-with-hint"),
        pytest.param(400, {"Content-Type": "text/plain"}, "bad tenant", errors.BadRequest,
                     "HTTP 400: bad tenant", id="plain-text"),
        pytest.param(500, {"Content-Type": "application/json"}, {"message": "boom"},
                     errors.ServerError, "HTTP 500: boom", id="server-error"),
        pytest.param(410, {"Content-Type": "application/json"}, {"message": "expired"},
                     errors.ApiError, "HTTP 410: expired", id="other-status"),
    ],
)
def test_error_responses_become_typed_exceptions(status, headers, body, kind, text):
    def handler(request: httpx.Request) -> httpx.Response:
        content = b"" if body is None else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode())
        return httpx.Response(status, headers=headers, content=content)

    with pytest.raises(kind) as caught:
        client_for(handler).get_flow("a", "b")
    error = caught.value
    assert (error.status, error.method, error.path) == (status, "GET", "/api/v1/main/flows/a/b")
    assert text in str(error)


def test_already_exists_is_recognised_in_both_versions():
    one = errors.Unprocessable(422, method="POST", path="/", message="Flow id 'a.b' already exists")
    two = errors.Conflict(409, method="POST", path="/", message="anything")
    other = errors.Unprocessable(422, method="POST", path="/", message="Invalid entity")
    assert errors.is_already_exists(one) and errors.is_already_exists(two)
    assert not errors.is_already_exists(other)


def test_every_path_carries_the_tenant():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"value": 1})

    client = client_for(handler, tenant="acme")
    client.get_flow("company", "etl")
    client.kv_get("company", "key")
    client.list_namespace_files("company")
    assert seen == ["/api/v1/acme/flows/company/etl", "/api/v1/acme/namespaces/company/kv/key",
                    "/api/v1/acme/namespaces/company/files/directory"]


def test_basic_auth_and_bearer_token_headers():
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={})

    transport = httpx.MockTransport(handler)
    connect(Connection("http://k", username="u@x.io", password=PASSWORD), transport=transport).configs()
    connect(Connection("http://k", token=TOKEN), transport=transport).configs()
    connect(Connection("http://k"), transport=transport).configs()
    assert seen == ["Basic " + base64.b64encode(f"u@x.io:{PASSWORD}".encode()).decode(),
                    f"Bearer {TOKEN}", None]


def test_get_requests_are_retried_with_backoff_then_succeed():
    answers = iter([httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"ok": 1})])
    sleeps: list[float] = []
    result = client_for(lambda r: next(answers), sleeps=sleeps).get_flow("a", "b")
    assert result == {"ok": 1}
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_retry_after_is_honoured_and_429_is_retried_even_for_post():
    answers = iter([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json={})])
    sleeps: list[float] = []
    client_for(lambda r: next(answers), sleeps=sleeps).create_flow("id: a\n")
    assert sleeps == [3.0]


def test_a_post_that_may_have_been_processed_is_not_retried():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    with pytest.raises(errors.ServerError):
        client_for(handler).create_flow("id: a\n")
    assert len(calls) == 1

    def lost(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    calls.clear()
    with pytest.raises(errors.TransportError):
        client_for(lost).create_flow("id: a\n")
    assert len(calls) == 1


def test_a_post_that_never_reached_the_server_is_retried():
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"id": "a"})

    assert client_for(handler).create_flow("id: a\n") == {"id": "a"}
    assert len(attempts) == 3


def test_retries_give_up_with_a_transport_error():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    sleeps: list[float] = []
    with pytest.raises(errors.TransportError) as caught:
        client_for(handler, retries=3, sleeps=sleeps).get_flow("a", "b")
    assert "gave up after 4 attempts" in str(caught.value)
    assert len(sleeps) == 3 and all(s <= 8.0 for s in sleeps)


def test_no_httpx_exception_escapes_any_public_method():
    failures = [
        httpx.ConnectError("x"), httpx.ReadTimeout("x"), httpx.RemoteProtocolError("x"),
        httpx.WriteError("x"), httpx.PoolTimeout("x"), httpx.UnsupportedProtocol("x"),
    ]
    arguments = {"namespace": "a", "flow_id": "b", "source": "id: a\n", "data": b"",
                 "sources": [("a.yml", "id: a\n")], "path": "/x", "content": b"x", "key": "k",
                 "value": 1, "namespace_prefix": "a"}
    for failure in failures:
        def handler(request: httpx.Request, failure=failure) -> httpx.Response:
            failure.request = request
            raise failure

        client = client_for(handler, retries=1)
        for name, method in inspect.getmembers(client, inspect.ismethod):
            if name.startswith("_") or name in ("request", "close"):
                continue
            params = inspect.signature(method).parameters
            kwargs = {p: arguments[p] for p in params if p in arguments}
            with pytest.raises(errors.KestraError):
                method(**kwargs)


def test_validate_sends_batches_of_100_and_returns_one_entry_per_flow(fake: FakeKestra):
    client = fake_client(fake)
    sources = [(f"f{i}.yml", f"id: f{i}\nnamespace: company\ntasks:\n  - id: t\n"
                             f"    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
               for i in range(250)]
    sources[142] = ("bad.yml", "id: bad\nnamespace: company\ntasks: []\n")
    results = client.validate_flows(sources)
    posts = [r for r in fake.requests if r.path.endswith("/flows/validate")]
    assert len(posts) == 3
    assert [r.body.count(b'name="flows"') for r in posts] == [100, 100, 50]
    assert [e["index"] for e in results] == list(range(250))
    assert [e["index"] for e in results if e.get("constraints")] == [142]
    assert results[142]["flow"] == "bad"


def test_a_flow_holding_a_separator_line_is_validated_as_one_flow(fake: FakeKestra):
    text = ("id: doc\nnamespace: company\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
            "    message: |\n      above\n      ---\n      below\n")
    (entry,) = fake_client(fake).validate_flows([("doc.yml", text)])
    assert entry.get("constraints") is None and entry["flow"] == "doc"


def test_kv_values_are_sent_as_json_text(fake: FakeKestra):
    client = fake_client(fake)
    client.kv_put("system", "state", {"flows": ["a"]}, ttl="PT1H", description="inventory")
    request = fake.requests[-1]
    assert request.headers["content-type"] == "text/plain"
    assert json.loads(request.body) == {"flows": ["a"]}
    assert (request.headers["ttl"], request.headers["description"]) == ("PT1H", "inventory")
    assert client.kv_get("system", "state") == {"flows": ["a"]}
    client.kv_delete("system", "state")
    with pytest.raises(errors.NotFound):
        client.kv_get("system", "state")


def test_namespace_files_upload_with_a_neutral_part_name(fake: FakeKestra):
    client = fake_client(fake)
    client.upload_namespace_file("company", "/scripts/archive.zip", b"not really a zip")
    assert b'filename="fileContent"' in fake.requests[-1].body
    assert client.download_namespace_file("company", "/scripts/archive.zip") == b"not really a zip"
    assert client.list_namespace_files("company") == [
        {"fileName": "scripts", "type": "Directory", "size": 0, "lastModifiedTime": 0,
         "creationTime": 0}]
    client.delete_namespace_file("company", "/scripts/archive.zip")
    with pytest.raises(errors.NotFound):
        client.download_namespace_file("company", "/scripts/archive.zip")


def test_connection_settings_are_checked_and_never_show_secrets():
    connection = Connection("https://kestra.example.com", username="u@x.io", password=PASSWORD)
    assert PASSWORD not in repr(connection) and "auth='basic'" in repr(connection)
    assert TOKEN not in repr(Connection("https://k", token=TOKEN))
    client = connect(Connection("https://k", token=TOKEN))
    assert TOKEN not in repr(client) and TOKEN not in repr(client._http.auth)
    with pytest.raises(errors.SettingsError) as caught:
        Connection(f"https://u:{PASSWORD}@kestra.example.com")
    assert PASSWORD not in str(caught.value)
    for bad in ("kestra.example.com", "ftp://k", "http://"):
        with pytest.raises(errors.SettingsError):
            Connection(bad)
    with pytest.raises(errors.SettingsError, match="without a password"):
        Connection("http://k", username="u@x.io")
    with pytest.raises(errors.SettingsError, match="CA bundle"):
        connect(Connection("https://k", ca_bundle="/nonexistent/ca.pem"))
    connect(Connection("https://k", verify=False)).close()


def test_a_wrong_password_error_does_not_echo_it(fake: FakeKestra):
    client = connect(Connection("http://kestra.test", username="admin@kestra.io", password=PASSWORD),
                     transport=mock_transport(fake))
    with pytest.raises(errors.Unauthorized) as caught:
        client.export_flows("company")
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value)

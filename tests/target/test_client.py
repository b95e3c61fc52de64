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
from kestra_promote.target.client import Connection, KestraClient, connect

PASSWORD = "Sup3r-Secret-pw"
VERSIONS = ["1.3.19", "2.0.3"]
FLOW = ("id: etl\nnamespace: company\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
        "    message: hi\n")
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
                     {"message": "Invalid entity: flow.id: Flow id already exists",
                      "_links": {"self": {"href": "/api/v1/main/flows", "templated": False}},
                      "_embedded": {"errors": [{"message": "Flow id already exists",
                                                "path": "flow.id"}]}},
                     errors.Unprocessable, "HTTP 422: Invalid entity\n"
                     "  - flow.id: Flow id already exists", id="json-error-with-violations"),
        pytest.param(422, {"Content-Type": "application/json"},
                     {"message": "Invalid entity: tasks[0].a: bad\ntasks[1].b: worse\n",
                      "_embedded": {"errors": [{"message": "bad", "path": "tasks[0].a"},
                                               {"message": "worse", "path": "tasks[1].b"}]}},
                     errors.Unprocessable, "HTTP 422: Invalid entity\n  - tasks[0].a: bad\n"
                     "  - tasks[1].b: worse", id="json-error-model-violations"),
        pytest.param(409, {"Content-Type": "application/json"},
                     {"message": "Illegal state: Requested Flow is disabled.",
                      "_links": {"self": {"href": "/x", "templated": False}}},
                     errors.Conflict, "HTTP 409: Illegal state: Requested Flow is disabled.",
                     id="json-error-plain"),
        pytest.param(404, {"Content-Type": "application/json"}, {"message": "Not Found"},
                     errors.NotFound, "HTTP 404: Not Found", id="404-status-route"),
        # Kestra answers every 404 with its JSON error: an empty or HTML 404 is not Kestra's,
        # and must never read as "not found" (a delete would count it as already gone)
        pytest.param(404, {}, None, errors.UnexpectedResponse, "answered HTTP 404 with",
                     id="empty-404"),
        pytest.param(404, {"Content-Type": "text/html"}, "<html><title>nginx</title></html>",
                     errors.UnexpectedResponse, "answered HTTP 404 with", id="html-404"),
        pytest.param(409, {}, None, errors.Conflict, "HTTP 409: Conflict", id="empty-409"),
        pytest.param(401, {"WWW-Authenticate": "Basic"}, None, errors.Unauthorized,
                     "HTTP 401: Unauthorized (check the credentials", id="401-with-hint"),
        pytest.param(400, {"Content-Type": "text/plain"}, "bad tenant", errors.BadRequest,
                     "HTTP 400: bad tenant", id="plain-text"),
        pytest.param(502, {"Content-Type": "text/html"},
                     "<html><head><title>502 Bad\n Gateway</title></head><body>nginx</body></html>",
                     errors.ServerError, "HTTP 502: an HTML page (502 Bad Gateway) instead of JSON",
                     id="html-page"),
        pytest.param(403, {"Content-Type": "text/html"}, "<h1>Forbidden</h1>", errors.Unauthorized,
                     "HTTP 403: an HTML page instead of JSON", id="html-without-title"),
        pytest.param(500, {"Content-Type": "application/json"}, "{not json", errors.ServerError,
                     "HTTP 500: {not json", id="broken-json"),
        pytest.param(500, {"Content-Type": "application/json"}, ["a", "list"], errors.ServerError,
                     'HTTP 500: ["a", "list"]', id="json-not-an-object"),
        pytest.param(500, {"Content-Type": "application/json"}, {"unexpected": True},
                     errors.ServerError, "HTTP 500: Internal Server Error", id="json-no-message"),
        pytest.param(410, {"Content-Type": "application/json"},
                     {"message": "Resource has expired: The requested value has expired"},
                     errors.ApiError, "HTTP 410: Resource has expired", id="other-status"),
    ],
)
def test_error_responses_become_typed_exceptions(status, headers, body, kind, text):
    def handler(request: httpx.Request) -> httpx.Response:
        content = b"" if body is None else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode())
        return httpx.Response(status, headers=headers, content=content)

    with pytest.raises(kind) as caught:
        client_for(handler, retries=0).get_flow("a", "b")
    error = caught.value
    assert (error.status, error.method, error.path) == (status, "GET", "/api/v1/main/flows/a/b")
    assert text in str(error)


@pytest.mark.parametrize("body", [b"", b"<html><title>Login</title></html>", b"pong", b"{oops"])
def test_a_successful_answer_that_is_not_json_is_a_typed_error(body: bytes):
    client = client_for(lambda r: httpx.Response(200, content=body))
    with pytest.raises(errors.KestraError, match="answered HTTP 200 with .*not JSON") as caught:
        client.get_flow("a", "b")
    assert not isinstance(caught.value, errors.ApiError)


@pytest.mark.parametrize("version", VERSIONS)
def test_errors_of_a_real_server_shape_read_well(version: str):
    fake = FakeKestra(version=version)
    client = fake_client(fake)
    client.create_flow(FLOW)
    with pytest.raises(errors.Unprocessable) as caught:  # 422 on both versions
        client.create_flow(FLOW)
    assert str(caught.value) == ("POST /api/v1/main/flows failed with HTTP 422: Invalid entity\n"
                                 "  - flow.id: Flow id already exists")
    assert errors.is_already_exists(caught.value)
    with pytest.raises(errors.NotFound, match=r"HTTP 404: Not Found$"):
        client.update_flow("company", "nope", FLOW.replace("etl", "nope"))
    other = fake_client(fake, tenant="acme")
    with pytest.raises(errors.BadRequest, match="Tenant must be 'main' for OSS version"):
        other.get_flow("company", "etl")


def test_other_unprocessable_answers_are_not_already_exists():
    other = errors.Unprocessable(422, method="POST", path="/", message="Invalid entity",
                                 details=["tasks[0].type: Invalid type: x"])
    assert not errors.is_already_exists(other)


def test_every_path_carries_the_tenant():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json=[] if request.url.path.endswith("/directory") else
                              {"value": 1})

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
                 "value": 1, "namespace_prefix": "a", "namespace_regex": "^a$",
                 "size": 100_000, "ids": [("a", "b")], "archive": b"PK", "execution_id": "e",
                 "timeout": 1}
    for failure in failures:
        def handler(request: httpx.Request, failure=failure) -> httpx.Response:
            failure.request = request
            raise failure

        for name, _ in inspect.getmembers(KestraClient, inspect.isfunction):
            if name.startswith("_") or name in ("request", "close"):
                continue
            # a new client each time: major_version asks once, then answers None
            method = getattr(client_for(handler, retries=1), name)
            params = inspect.signature(method).parameters
            kwargs = {p: arguments[p] for p in params if p in arguments}
            with pytest.raises(errors.KestraError):
                method(**kwargs)


def test_validate_sends_batches_bounded_by_size_and_returns_one_entry_per_flow(fake: FakeKestra):
    client = fake_client(fake, max_body=65_536)
    sources = [(f"f{i}.yml", f"id: f{i}\nnamespace: company\ntasks:\n  - id: t\n"
                             f"    type: io.kestra.plugin.core.log.Log\n    message: {'x' * 400}\n")
               for i in range(250)]  # 500 bytes and a part's headers: 3 requests of 64 kB
    sources[142] = ("bad.yml", "id: bad\nnamespace: company\ntasks: []\n")
    results = client.validate_flows(sources)
    posts = [r for r in fake.requests if r.path.endswith("/flows/validate")]
    assert len(posts) == 3 and all(len(r.body) <= 65_536 for r in posts)
    assert sum(r.body.count(b'name="flows"') for r in posts) == 250
    assert [e["index"] for e in results] == list(range(250))
    assert [e["index"] for e in results if e.get("constraints")] == [142]
    assert results[142]["flow"] == "bad"


def test_validation_pads_its_last_request_to_probe_the_largest_body(fake: FakeKestra):
    client = fake_client(fake)
    source = ("id: f\nnamespace: company\ntasks:\n  - id: t\n"
              "    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    (entry,) = client.validate_flows([("f.yml", source)], at_least=300_000)
    (post,) = [r for r in fake.requests if r.path.endswith("/flows/validate")]
    assert 299_000 <= len(post.body) <= 300_000  # one request: the validation and the probe
    assert entry["flow"] == "f" and not entry.get("constraints") and entry["index"] == 0
    client.probe(300_000)  # nothing more to try
    assert len(fake.requests) == 1


def test_a_flow_holding_a_separator_line_is_validated_as_one_flow(fake: FakeKestra):
    text = ("id: doc\nnamespace: company\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
            "    message: |\n      above\n      ---\n      below\n")
    (entry,) = fake_client(fake).validate_flows([("doc.yml", text)])
    assert entry.get("constraints") is None and entry["flow"] == "doc"


@pytest.mark.parametrize("version", VERSIONS)
def test_kv_values_are_sent_as_json_text(version: str):
    fake = FakeKestra(version=version)
    client = fake_client(fake)
    client.kv_put("system", "state", {"flows": ["a"]}, ttl="PT1H", description="inventory")
    request = fake.requests[-1]
    assert request.headers["content-type"] == "text/plain"
    assert json.loads(request.body) == {"flows": ["a"]}
    assert (request.headers["ttl"], request.headers["description"]) == ("PT1H", "inventory")
    assert client.kv_get("system", "state") == {"flows": ["a"]}
    assert client.kv_delete("system", "state") is True
    assert client.kv_delete("system", "state") is False  # the server answers 200 either way
    with pytest.raises(errors.NotFound):
        client.kv_get("system", "state")


@pytest.mark.parametrize("version", VERSIONS)
def test_kv_keys_are_listed_tenant_wide_page_by_page(version: str):
    fake = FakeKestra(version=version)
    client = fake_client(fake)
    for i in range(230):
        client.kv_put("system", f"key{i:03}", i)
    client.kv_put("system.child", "other", 1)
    client.kv_put("systemx", "other", 1)
    fake.requests.clear()
    assert client.list_kv_keys("system") == [f"key{i:03}" for i in range(230)]
    pages = [(r.path, r.query["page"], r.query["filters[namespace][EQUALS]"])
             for r in fake.requests]
    assert pages == [("/api/v1/main/kv", [str(n)], ["system"]) for n in (1, 2, 3)]
    assert client.list_kv_keys("empty") == []


def test_kv_keys_need_the_tenant_wide_listing():
    """No per-namespace fallback: a server without GET /kv is reported, not worked around."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(404, json={"message": "Not Found"})

    with pytest.raises(errors.NotFound):
        client_for(handler).list_kv_keys("system")
    assert seen == ["/api/v1/main/kv"]
    odd = client_for(lambda r: httpx.Response(200, json=[{"key": "a"}]))
    with pytest.raises(errors.UnexpectedResponse, match="with JSON that is not paged results"):
        odd.list_kv_keys("system")


def test_namespace_files_upload_with_a_neutral_part_name(fake: FakeKestra):
    client = fake_client(fake)
    client.upload_namespace_file("company", "/scripts/archive.zip", b"not really a zip")
    assert b'filename="fileContent"' in fake.requests[-1].body
    assert client.download_namespace_file("company", "/scripts/archive.zip") == b"not really a zip"
    assert client.list_namespace_files("company") == [
        {"fileName": "scripts", "type": "Directory", "size": 0, "lastModifiedTime": 0,
         "creationTime": 0, "metadata": {}}]
    client.delete_namespace_file("company", "/scripts/archive.zip")
    client.delete_namespace_file("company", "/scripts/archive.zip")  # nothing left: still fine
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


def test_an_import_answer_that_is_not_a_list_of_names_is_no_kestra_answer(fake: FakeKestra):
    fake.inject("POST", "/flows/import", status=200, body=b'[{"file": "000001.yml"}]',
                headers={"Content-Type": "application/json"})
    with pytest.raises(errors.UnexpectedResponse, match="not a list of file names"):
        fake_client(fake).import_flows(b"PK\x05\x06" + b"\0" * 18)


def test_validation_counts_file_names_in_utf8_against_the_body_limit(fake: FakeKestra):
    client = fake_client(fake, max_body=65_536)
    source = ("id: f\nnamespace: company\ntasks:\n  - id: t\n"
              "    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    name = "flows/" + "日本語のフロー" * 20 + ".yml"  # 426 bytes in UTF-8, 146 characters
    client.validate_flows([(f"{i}{name}", source) for i in range(150)])
    posts = [r for r in fake.requests if r.path.endswith("/flows/validate")]
    assert len(posts) >= 2 and all(len(r.body) <= 65_536 for r in posts)

"""The fake server behaves like Kestra where our tests rely on it (kestra/API.md)."""

from __future__ import annotations

import base64
import io
import time
import zipfile

import httpx
import pytest
from fake_kestra import FakeKestra, serve
from kestra_promote import errors
from kestra_promote.client import Connection, connect

FLOW = ("id: etl\nnamespace: company.team\ntasks:\n  - id: t\n"
        "    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
AUTH = "Basic " + base64.b64encode(b"admin@kestra.io:Admin1234!").decode()


def call(fake: FakeKestra, method: str, path: str, body: bytes = b"", **headers: str):
    headers = {"Authorization": AUTH, **headers}
    return fake.handle(method, path, headers, body)


def yaml_post(fake: FakeKestra, path: str, text: str, method: str = "POST"):
    return call(fake, method, path, text.encode(), **{"Content-Type": "application/x-yaml"})


def test_identical_source_makes_no_new_revision_and_delete_keeps_history(fake: FakeKestra):
    assert yaml_post(fake, "/api/v1/main/flows", FLOW).json["revision"] == 1
    same = yaml_post(fake, "/api/v1/main/flows/company.team/etl", FLOW.replace("\n", "\r\n"), "PUT")
    assert same.json["revision"] == 1
    with_revision = yaml_post(fake, "/api/v1/main/flows/company.team/etl",
                              "revision: 9\n" + FLOW, "PUT")
    assert with_revision.json["revision"] == 1 and "revision:" not in with_revision.json["source"]
    comment = yaml_post(fake, "/api/v1/main/flows/company.team/etl", FLOW + "# c\n", "PUT")
    assert comment.json["revision"] == 2
    assert call(fake, "DELETE", "/api/v1/main/flows/company.team/etl").status == 204
    assert call(fake, "GET", "/api/v1/main/flows/company.team/etl").status == 404
    deleted = call(fake, "GET", "/api/v1/main/flows/company.team/etl?allowDeleted=true")
    assert deleted.json["deleted"] is True and deleted.json["revision"] == 3
    assert yaml_post(fake, "/api/v1/main/flows", FLOW).json["revision"] == 4
    old = call(fake, "GET", "/api/v1/main/flows/company.team/etl?revision=1&source=true")
    assert old.json["source"] == FLOW


def test_create_existing_is_422_on_1x_and_409_problem_on_2x():
    one, two = FakeKestra(version="1.3.4"), FakeKestra(version="2.0.3")
    for fake in (one, two):
        yaml_post(fake, "/api/v1/main/flows", FLOW)
    first, second = yaml_post(one, "/api/v1/main/flows", FLOW), yaml_post(two, "/api/v1/main/flows", FLOW)
    assert first.status == 422 and "already exists" in first.json["message"]
    assert second.status == 409 and second.headers["Content-Type"] == "application/problem+json"
    assert second.json["type"].endswith("entity-already-exists")


def test_update_rules(fake: FakeKestra):
    assert yaml_post(fake, "/api/v1/main/flows/company.team/etl", FLOW, "PUT").status == 404
    yaml_post(fake, "/api/v1/main/flows", FLOW)
    moved = yaml_post(fake, "/api/v1/main/flows/company.team/etl",
                      FLOW.replace("company.team", "company.other"), "PUT")
    assert moved.status == 422
    wrong_type = call(fake, "POST", "/api/v1/main/flows", FLOW.encode(),
                      **{"Content-Type": "application/yaml"})
    assert wrong_type.status == 415


def test_tenant_and_auth():
    fake = FakeKestra()
    assert call(fake, "GET", "/api/v1/acme/flows/a/b").status == 400
    assert fake.handle("GET", "/api/v1/main/flows/a/b", {}, b"").status == 401
    assert fake.handle("GET", "/ping", {}, b"").body == b"pong"
    assert fake.handle("GET", "/api/v1/configs", {}, b"").status == 401  # authenticated in 2.0
    assert FakeKestra(version="1.3.4").handle("GET", "/api/v1/configs", {}, b"").status == 200
    ee = FakeKestra(edition="ee", tenants=("acme",), username=None, password=None, token="t0k")
    assert ee.handle("GET", "/api/v1/acme/flows/a/b", {"Authorization": "Bearer t0k"}, b"").status == 404
    assert ee.handle("GET", "/api/v1/acme/flows/a/b", {"Authorization": "Bearer nope"}, b"").status == 401


def test_export_by_query_filters_on_the_namespace_tree(fake: FakeKestra):
    for namespace in ("company", "company.team", "companyx", "other"):
        fake.seed_flow(FLOW.replace("company.team", namespace))
    response = call(fake, "GET", "/api/v1/main/flows/export/by-query?filters[namespace][PREFIX]=company")
    names = zipfile.ZipFile(io.BytesIO(response.body)).namelist()
    assert names == ["company-etl.yml", "company.team-etl.yml"]


def test_validation_uses_kestra_model_rules(fake: FakeKestra):
    bad = FLOW.replace("message: hi", "message: hi\n    colour: red")
    response = yaml_post(fake, "/api/v1/main/flows/validate", FLOW + "---\n" + bad)
    assert [e.get("constraints") for e in response.json] == [
        None, 'tasks[0].colour: Unrecognized field "colour"']
    assert [e["index"] for e in response.json] == [0, 1]
    assert yaml_post(fake, "/api/v1/main/flows", bad).status == 422
    assert fake.current() == {}


def test_version_specific_rules():
    trigger = FLOW + ("triggers:\n  - id: up\n    type: io.kestra.plugin.core.trigger.Flow\n"
                      "    conditions: []\n")
    assert yaml_post(FakeKestra(version="1.3.4"), "/api/v1/main/flows", trigger).status == 200
    assert yaml_post(FakeKestra(version="2.0.3"), "/api/v1/main/flows", trigger).status == 422
    defaults = FLOW + "pluginDefaults: []\n"
    assert yaml_post(FakeKestra(version="2.0.3"), "/api/v1/main/flows", defaults).status == 422


def test_namespace_files_and_zip_uploads(fake: FakeKestra):
    client = connect(Connection("http://k", username="admin@kestra.io", password="Admin1234!"),
                     transport=httpx.MockTransport(
                         lambda r: httpx.Response(**_to_httpx(fake, r))))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x/y.txt", "zipped")
    files = {"fileContent": ("bundle.zip", buffer.getvalue(), "application/zip")}
    client.request("POST", "/api/v1/main/namespaces/company/files", params={"path": "/ignored"},
                   files=files)
    assert fake.files[("main", "company")] == {"/x/y.txt": b"zipped"}
    with pytest.raises(errors.BadRequest):
        client.upload_namespace_file("company", "/_flows/a.yml", b"x")


def _to_httpx(fake: FakeKestra, request: httpx.Request) -> dict:
    result = fake.handle(request.method, request.url.raw_path.decode(), dict(request.headers),
                         request.read())
    return {"status_code": result.status, "headers": result.headers, "content": result.body}


def test_faults_hit_the_nth_matching_request_only(fake: FakeKestra):
    fake.inject("PUT", r"/flows/", nth=2, status=503)
    fake.seed_flow(FLOW)
    path = "/api/v1/main/flows/company.team/etl"
    statuses = [yaml_post(fake, path, FLOW, "PUT").status for _ in range(3)]
    assert statuses == [200, 503, 200]


def test_a_dropped_connection_reaches_the_client_as_a_transport_error(fake: FakeKestra):
    fake.inject("GET", r"/export/", drop=True, times=10)
    with serve(fake) as url:
        client = connect(Connection(url, username="admin@kestra.io", password="Admin1234!",
                                    retries=1), sleep=lambda _: None)
        with pytest.raises(errors.TransportError, match="gave up after 2 attempts"):
            client.export_flows("company")


def test_a_delay_slows_the_answer(fake: FakeKestra):
    waits: list[float] = []
    slow = FakeKestra(sleep=waits.append)
    slow.inject("GET", r"/ping", delay=1.5)
    started = time.monotonic()
    assert slow.handle("GET", "/ping", {}, b"").status == 200
    assert waits == [1.5] and time.monotonic() - started < 1.0


def test_the_request_log_separates_reads_from_writes(fake: FakeKestra):
    yaml_post(fake, "/api/v1/main/flows/validate", FLOW)
    yaml_post(fake, "/api/v1/main/flows", FLOW)
    call(fake, "GET", "/api/v1/main/flows/export/by-query")
    assert [(r.method, r.path) for r in fake.writes()] == [("POST", "/api/v1/main/flows")]
    assert all("authorization" not in r.headers for r in fake.requests)

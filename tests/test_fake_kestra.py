"""The fake server answers like Kestra 1.3 and 2.0 do (their controllers; kestra/API.md)."""

from __future__ import annotations

import base64
import io
import time
import zipfile

import httpx
import pytest
from fake_kestra import FakeKestra, serve
from kestra_promote import errors
from kestra_promote.target.client import Connection, connect

FLOW = ("id: etl\nnamespace: company.team\ntasks:\n  - id: t\n"
        "    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
AUTH = "Basic " + base64.b64encode(b"admin@kestra.io:Admin1234!").decode()
VERSIONS = ["1.3.19", "2.0.3"]
YAML = {"Content-Type": "application/x-yaml"}


def call(fake: FakeKestra, method: str, path: str, body: bytes = b"", **headers: str):
    headers = {"Authorization": AUTH, **headers}
    return fake.handle(method, path, headers, body)


def yaml_post(fake: FakeKestra, path: str, text: str, method: str = "POST"):
    return call(fake, method, path, text.encode(), **YAML)


def multipart(*parts: tuple[str, str, bytes]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body of (part name, file name, bytes) and its headers."""
    request = httpx.Request("POST", "http://k/", files=[(n, (f, d)) for n, f, d in parts])
    return request.read(), {"Content-Type": request.headers["content-type"]}


def assert_json_error(response, status: int, message: str) -> None:
    """Micronaut's JsonError, as ErrorController answers on 1.3 and 2.0 (never problem+json)."""
    assert response.status == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json["message"] == message
    assert "href" in response.json["_links"]["self"]


@pytest.fixture(params=VERSIONS)
def versioned(request: pytest.FixtureRequest) -> FakeKestra:
    return FakeKestra(version=request.param)


def test_identical_source_makes_no_new_revision_and_delete_keeps_history(versioned: FakeKestra):
    fake = versioned
    # FlowInterface.isSameWithSource: the first `revision: <n>` line aside, sources compare as
    # they are (line endings too), and are stored as sent
    assert yaml_post(fake, "/api/v1/main/flows", FLOW).json["revision"] == 1
    with_revision = yaml_post(fake, "/api/v1/main/flows/company.team/etl",
                              "revision: 9\n" + FLOW, "PUT")
    assert with_revision.json["revision"] == 1 and "revision:" not in with_revision.json["source"]
    crlf = yaml_post(fake, "/api/v1/main/flows/company.team/etl", FLOW.replace("\n", "\r\n"),
                     "PUT")
    assert crlf.json["revision"] == 2 and crlf.json["source"] == FLOW.replace("\n", "\r\n")
    comment = yaml_post(fake, "/api/v1/main/flows/company.team/etl", FLOW + "# c\n", "PUT")
    assert comment.json["revision"] == 3 and comment.json["tenantId"] == "main"
    stored = yaml_post(fake, "/api/v1/main/flows/company.team/etl",
                       "revision: 3\n" + FLOW + "# c\n", "PUT")
    assert stored.json["revision"] == 3 and stored.json["source"] == FLOW + "# c\n"
    deleted = call(fake, "DELETE", "/api/v1/main/flows/company.team/etl")
    assert (deleted.status, deleted.body) == (204, b"")
    assert_json_error(call(fake, "GET", "/api/v1/main/flows/company.team/etl"), 404, "Not Found")
    deleted = call(fake, "GET", "/api/v1/main/flows/company.team/etl?allowDeleted=true")
    assert deleted.json["deleted"] is True and deleted.json["revision"] == 4
    assert yaml_post(fake, "/api/v1/main/flows", FLOW).json["revision"] == 5
    old = call(fake, "GET", "/api/v1/main/flows/company.team/etl?revision=1&source=true")
    assert old.json["source"] == FLOW
    assert "source" not in call(fake, "GET", "/api/v1/main/flows/company.team/etl").json
    revisions = call(fake, "GET", "/api/v1/main/flows/company.team/etl/revisions").json
    assert [r["revision"] for r in revisions] == [1, 2, 3, 5]
    assert call(fake, "GET", "/api/v1/main/flows/company.team/nope/revisions").json == []


def test_creating_an_existing_flow_is_the_same_422_on_both_versions(versioned: FakeKestra):
    # the repository's "Flow id already exists" violation, through ErrorController
    yaml_post(versioned, "/api/v1/main/flows", FLOW)
    response = yaml_post(versioned, "/api/v1/main/flows", FLOW)
    assert_json_error(response, 422, "Invalid entity: flow.id: Flow id already exists")
    assert response.json["_embedded"]["errors"] == [
        {"message": "Flow id already exists", "path": "flow.id"}]


def test_update_and_delete_of_an_absent_flow_are_json_404s(versioned: FakeKestra):
    absent = "/api/v1/main/flows/company.team/etl"
    assert_json_error(yaml_post(versioned, absent, FLOW, "PUT"), 404, "Not Found")
    assert_json_error(call(versioned, "DELETE", absent), 404, "Not Found")


def test_update_refuses_another_id_or_namespace(versioned: FakeKestra):
    yaml_post(versioned, "/api/v1/main/flows", FLOW)
    path = "/api/v1/main/flows/company.team/etl"
    moved = yaml_post(versioned, path, FLOW.replace("company.team", "company.other"), "PUT")
    assert_json_error(moved, 422, "Invalid entity: flow.namespace: Illegal namespace update")
    renamed = yaml_post(versioned, path, FLOW.replace("id: etl", "id: other"), "PUT")
    assert renamed.json["_embedded"]["errors"] == [
        {"message": "Illegal flow id update", "path": "flow.id"}]


@pytest.mark.parametrize(("version", "status"), [("1.3.19", 200), ("2.0.3", 422)])
def test_an_update_ignores_unknown_properties_on_1_3_only(version: str, status: int):
    # 1.3 FlowController.updateFlow parses leniently; 2.0 FlowService.update strictly
    fake = FakeKestra(version=version)
    yaml_post(fake, "/api/v1/main/flows", FLOW)
    unknown = yaml_post(fake, "/api/v1/main/flows/company.team/etl", FLOW + "colour: red\n", "PUT")
    assert unknown.status == status
    assert yaml_post(fake, "/api/v1/main/flows", FLOW.replace("etl", "x") + "colour: red\n"
                     ).status == 422  # creation is strict on both


@pytest.mark.parametrize(("version", "post_status"), [("1.3.19", 422), ("2.0.3", 415)])
def test_flow_sources_must_be_sent_as_x_yaml(version: str, post_status: int):
    fake = FakeKestra(version=version)
    wrong = {"Content-Type": "application/yaml"}
    # 1.3 still has a hidden JSON route taking any content type: the YAML cannot bind to it
    assert call(fake, "POST", "/api/v1/main/flows", FLOW.encode(), **wrong).status == post_status
    fake.seed_flow(FLOW)
    put = call(fake, "PUT", "/api/v1/main/flows/company.team/etl", FLOW.encode(), **wrong)
    assert put.status == 415 and put.json["message"] == "Unsupported Media Type"
    assert "application/yaml" in put.json["_embedded"]["errors"][0]["message"]


def test_tenant_auth_configs_ping_and_unknown_routes(versioned: FakeKestra):
    fake = versioned
    bad_tenant = fake.handle("GET", "/api/v1/acme/flows/a/b", {}, b"")  # checked before auth
    assert_json_error(bad_tenant, 400, "Bad Request: Tenant must be 'main' for OSS version")
    unauthorized = fake.handle("GET", "/api/v1/main/flows/a/b", {}, b"")
    assert (unauthorized.status, unauthorized.body) == (401, b"")
    assert unauthorized.headers["WWW-Authenticate"] == "Basic"
    bad_password = "Basic " + base64.b64encode(b"admin@kestra.io:x").decode()
    wrong = fake.handle("GET", "/api/v1/main/flows/a/b", {"Authorization": bad_password}, b"")
    assert wrong.status == 401
    ping = fake.handle("GET", "/ping", {}, b"")
    assert (ping.status, ping.body) == (200, b"pong")
    configs = fake.handle("GET", "/api/v1/configs", {}, b"")  # open on both versions
    assert configs.status == 200 and configs.json["version"] == fake.version
    assert configs.json["edition"] == "OSS" and configs.json["isBasicAuthInitialized"] is True
    assert fake.handle("GET", "/api/v1/main/nothing/here", {}, b"").status == 401
    assert_json_error(call(fake, "GET", "/api/v1/main/nothing/here"), 404, "Not Found")
    not_allowed = call(fake, "PATCH", "/api/v1/main/flows/a/b")
    assert not_allowed.status == 405 and not_allowed.headers["Allow"] == "DELETE, GET, PUT"


def test_enterprise_tenants_and_tokens():
    ee = FakeKestra(edition="ee", tenants=("acme",), username=None, password=None, token="t0k")
    path = "/api/v1/acme/flows/a/b"
    assert ee.handle("GET", path, {"Authorization": "Bearer t0k"}, b"").status == 404
    assert ee.handle("GET", path, {"Authorization": "Bearer nope"}, b"").status == 401


def test_export_by_query_filters_on_the_namespace_tree(fake: FakeKestra):
    for namespace in ("company", "company.team", "companyx", "other"):
        fake.seed_flow(FLOW.replace("company.team", namespace))
    response = call(fake, "GET",
                    "/api/v1/main/flows/export/by-query?filters[namespace][PREFIX]=company")
    names = zipfile.ZipFile(io.BytesIO(response.body)).namelist()
    assert names == ["company-etl.yml", "company.team-etl.yml"]
    assert response.headers["Content-Disposition"] == 'attachment; filename="flows.zip"'


def test_import_names_what_failed_and_updates_the_rest(versioned: FakeKestra):
    fake = versioned
    fake.seed_flow(FLOW)
    bad = FLOW.replace("etl", "bad").replace("message: hi", "message: hi\n    colour: red")
    text = FLOW + "# updated\n---\n" + bad + "---\n" + FLOW.replace("etl", "new")
    body, headers = multipart(("fileUpload", "Flows.YML", text.encode()))
    answer = call(fake, "POST", "/api/v1/main/flows/import?failOnError=false", body, **headers)
    assert answer.status == 200 and answer.json == ["flows.yml(flow number: 1)"]
    assert fake.revision_count("company.team", "etl") == 2
    assert ("company.team", "new") in fake.current()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("a/bad.yaml", bad)
        out.writestr("notes.txt", "ignored")
    body, headers = multipart(("fileUpload", "flows.zip", archive.getvalue()))
    assert call(fake, "POST", "/api/v1/main/flows/import", body, **headers).json == ["a/bad.yaml"]
    strict = call(fake, "POST", "/api/v1/main/flows/import?failOnError=true", body, **headers)
    assert_json_error(strict, 422,
                      "Illegal argument: Following invalid flows were not imported: a/bad.yaml")
    body, headers = multipart(("fileUpload", "flows.json", b"{}"))
    assert_json_error(call(fake, "POST", "/api/v1/main/flows/import", body, **headers), 422,
                      "Illegal argument: Cannot import file of type .json")


def test_validation_entries_have_kestra_s_shape(versioned: FakeKestra):
    bad = FLOW.replace("message: hi", "message: hi\n    colour: red")
    response = yaml_post(versioned, "/api/v1/main/flows/validate", FLOW + "---\n" + bad)
    good, wrong = response.json
    assert good == {"index": 0, "namespace": "company.team", "flow": "etl", "outdated": False,
                    "deprecationPaths": [], "warnings": [], "infos": []}
    assert wrong["index"] == 1 and "filename" not in wrong
    # FlowService.validate prefixes every message with "Validation error: "
    assert wrong["constraints"].startswith("Validation error: ")
    assert 'tasks[0].colour: Unrecognized field "colour"' in wrong["constraints"]
    assert yaml_post(versioned, "/api/v1/main/flows", bad).status == 422
    assert versioned.current() == {}
    body, headers = multipart(("flows", "a.yml", FLOW.encode()), ("flows", "b.yml", bad.encode()))
    parts = call(versioned, "POST", "/api/v1/main/flows/validate", body, **headers).json
    assert [(e["index"], e["filename"], "constraints" in e) for e in parts] == [
        (0, "a.yml", False), (1, "b.yml", True)]


def test_the_version_selects_the_flow_rules():
    # 2.0 replaced trigger `conditions` with `when`
    trigger = FLOW + ("triggers:\n  - id: up\n    type: io.kestra.plugin.core.trigger.Flow\n"
                      "    conditions: []\n")
    assert yaml_post(FakeKestra(version="1.3.4"), "/api/v1/main/flows", trigger).status == 200
    assert yaml_post(FakeKestra(version="2.0.3"), "/api/v1/main/flows", trigger).status == 422


def test_namespace_files(versioned: FakeKestra):
    fake, base = versioned, "/api/v1/main/namespaces/company.team/files"
    body, headers = multipart(("fileContent", "fileContent", b"print(1)\n"))
    upload = call(fake, "POST", f"{base}?path=/lib/a.py", body, **headers)
    assert (upload.status, upload.body) == (200, b"")
    listing = call(fake, "GET", f"{base}/directory?path=/").json
    assert listing == [{"fileName": "lib", "lastModifiedTime": 0, "creationTime": 0,
                        "type": "Directory", "size": 0, "metadata": {}}]
    lib = call(fake, "GET", f"{base}/directory?path=/lib").json
    assert [e["fileName"] for e in lib] == ["a.py"]
    assert_json_error(call(fake, "GET", f"{base}/directory?path=/nope"), 404,
                      "Not Found: Directory not found: /nope")
    download = call(fake, "GET", f"{base}?path=/lib/a.py")
    assert download.body == b"print(1)\n"
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert_json_error(call(fake, "GET", f"{base}?path=/lib/b.py"), 404,
                      "Not Found: File '/lib/b.py' was not found in namespace 'company.team'.")
    assert call(fake, "GET", base).status == 400  # `path` is required
    missing = call(fake, "DELETE", f"{base}?path=/lib/b.py")  # nothing to delete: still 200
    assert (missing.status, missing.body) == (200, b"")
    assert call(fake, "DELETE", f"{base}?path=/lib").status == 200
    assert fake.files == {}


@pytest.mark.parametrize("path", ["/_flows", "/_flows/x.yml"])
def test_reads_and_deletes_under_flows_are_forbidden(fake: FakeKestra, path: str):
    base = "/api/v1/main/namespaces/company.team/files"
    for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/directory"), ("GET", "/stats")):
        assert_json_error(call(fake, method, f"{base}{suffix}?path={path}"), 422,
                          f"Illegal argument: Forbidden path: {path}")


def test_an_upload_under_flows_imports_a_flow_into_that_namespace(versioned: FakeKestra):
    fake, base = versioned, "/api/v1/main/namespaces/company.team/files"
    body, headers = multipart(("fileContent", "etl.yml", FLOW.replace("company.team", "elsewhere")
                               .encode()))
    assert call(fake, "POST", f"{base}?path=/_flows/etl.yml", body, **headers).status == 200
    assert list(fake.current()) == [("company.team", "etl")] and fake.files == {}
    assert_json_error(call(fake, "POST", f"{base}?path=/_flows/a/etl.yml", body, **headers), 422,
                      "Illegal argument: Invalid flow file path: /_flows/a/etl.yml")
    assert_json_error(call(fake, "POST", f"{base}?path=/_flows", body, **headers), 422,
                      "Illegal argument: Forbidden path: /_flows")


def test_a_zip_upload_is_extracted_at_the_root_and_the_export_holds_the_flows(fake: FakeKestra):
    base = "/api/v1/main/namespaces/company.team/files"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x/y.txt", "zipped")
    body, headers = multipart(("fileContent", "bundle.ZIP", buffer.getvalue()))
    assert call(fake, "POST", f"{base}?path=/ignored", body, **headers).status == 200
    assert fake.files[("main", "company.team")] == {"/x/y.txt": b"zipped"}
    fake.seed_flow(FLOW)
    export = call(fake, "GET", f"{base}/export")
    assert zipfile.ZipFile(io.BytesIO(export.body)).namelist() == ["x/y.txt", "_flows/etl.yml"]
    assert export.headers["Content-Disposition"] == 'attachment; filename="company.team_files.zip"'


@pytest.mark.parametrize(("version", "stored"), [("1.3.19", "/a+b.txt"), ("2.0.3", "/a b.txt")])
def test_a_space_in_a_file_path_becomes_a_plus_on_1_3(version: str, stored: str):
    # 1.3 NamespaceFileController builds the file URI with URLEncoder
    fake = FakeKestra(version=version)
    body, headers = multipart(("fileContent", "fileContent", b"x"))
    call(fake, "POST", "/api/v1/main/namespaces/n/files?path=%2Fa%20b.txt", body, **headers)
    assert list(fake.files[("main", "n")]) == [stored]


@pytest.mark.parametrize("version", ["1.3.19", "2.0.3"])
def test_other_characters_urlencoder_escapes_come_back_on_1_3(version: str):
    # 1.3: URI.getPath() decodes what URLEncoder escaped ('+' is %2B, '%' is %25, ...)
    fake = FakeKestra(version=version)
    body, headers = multipart(("fileContent", "fileContent", b"x"))
    for query in ("%2Fc%2B%2B.txt", "%2F100%25.txt", "%2Fcaf%C3%A9.txt", "%2Fa%26b.txt"):
        call(fake, "POST", f"/api/v1/main/namespaces/n/files?path={query}", body, **headers)
    assert sorted(fake.files[("main", "n")]) == ["/100%.txt", "/a&b.txt", "/c++.txt", "/café.txt"]


def test_kv_put_get_delete(versioned: FakeKestra):
    fake, base = versioned, "/api/v1/main/namespaces/company/kv"
    put = call(fake, "PUT", f"{base}/state", b'{"a": [1]}', **{"Content-Type": "text/plain"})
    assert (put.status, put.body) == (200, b"")
    got = call(fake, "GET", f"{base}/state").json
    assert (got["type"], got["value"], got["revision"]) == ("JSON", {"a": [1]}, 1)
    for text, kind, value in ((b'"PT1H"', "DURATION", "PT1H"), (b"12", "NUMBER", 12),
                              (b"true", "BOOLEAN", True), (b"not json", "STRING", "not json")):
        call(fake, "PUT", f"{base}/v", text, **{"Content-Type": "text/plain"})
        assert call(fake, "GET", f"{base}/v").json["type"] == kind
        assert call(fake, "GET", f"{base}/v").json["value"] == value
    deleted = call(fake, "DELETE", f"{base}/state")
    assert (deleted.status, deleted.json) == (200, True)
    assert call(fake, "DELETE", f"{base}/state").json is False  # nothing to delete: still 200
    assert_json_error(call(fake, "GET", f"{base}/state"), 404,
                      "Not Found: No value found for key 'state' in namespace 'company'")
    assert call(fake, "GET", f"{base}/bad%20key").status == 422
    as_json = call(fake, "PUT", f"{base}/k", b"1", **{"Content-Type": "application/json"})
    assert as_json.status == 415
    bad_ttl = call(fake, "PUT", f"{base}/k", b"1", **{"Content-Type": "text/plain", "ttl": "1h"})
    assert bad_ttl.status == 500  # Duration.parse fails without a dedicated handler


def test_an_expired_kv_value_is_410_once_then_gone(versioned: FakeKestra):
    fake, base = versioned, "/api/v1/main/namespaces/company/kv"
    call(fake, "PUT", f"{base}/k", b"1", **{"Content-Type": "text/plain", "ttl": "PT1H"})
    fake.kv[("main", "company")]["k"]["expires"] = time.time() - 1
    listing = call(fake, "GET", "/api/v1/main/kv").json
    assert listing == {"results": [], "total": 0}  # expired entries are not listed
    assert_json_error(call(fake, "GET", f"{base}/k"), 410,
                      "Resource has expired: The requested value has expired")
    assert call(fake, "GET", f"{base}/k").status == 404


@pytest.mark.parametrize(("version", "field"), [("1.3.19", "version"), ("2.0.3", "revision")])
def test_the_tenant_wide_kv_listing_pages_and_filters(version: str, field: str):
    fake = FakeKestra(version=version)
    for namespace, key in (("company", "b"), ("company", "a"), ("company.team", "c"),
                           ("other", "d")):
        call(fake, "PUT", f"/api/v1/main/namespaces/{namespace}/kv/{key}", b"1",
             **{"Content-Type": "text/plain", "description": "note"})
    query = "/api/v1/main/kv?filters[namespace][EQUALS]=company"
    page = call(fake, "GET", f"{query}&page=1&size=1").json
    assert page["total"] == 2 and len(page["results"]) == 1
    entry = page["results"][0]
    assert (entry["namespace"], entry["key"], entry[field], entry["description"]) == (
        "company", "a", 1, "note")
    second = call(fake, "GET", f"{query}&page=2&size=1")
    assert [e["key"] for e in second.json["results"]] == ["b"]
    prefix = call(fake, "GET", "/api/v1/main/kv?filters[namespace][PREFIX]=company").json
    assert [e["key"] for e in prefix["results"]] == ["a", "b", "c"]


@pytest.mark.parametrize(("version", "status"), [("1.3.19", 200), ("2.0.3", 405)])
def test_the_per_namespace_kv_listing_is_gone_in_2_0(version: str, status: int):
    # 2.0 KVController kept only DELETE on /namespaces/{namespace}/kv
    fake = FakeKestra(version=version)
    call(fake, "PUT", "/api/v1/main/namespaces/company/kv/a", b"1",
         **{"Content-Type": "text/plain"})
    response = call(fake, "GET", "/api/v1/main/namespaces/company/kv")
    assert response.status == status
    if status == 200:
        assert [(e["key"], e["version"]) for e in response.json] == [("a", 1)]


# -- webhooks -------------------------------------------------------------------------------------

HOOK = FLOW.replace("etl", "hook") + (
    "triggers:\n  - id: push\n    type: io.kestra.plugin.core.trigger.Webhook\n"
    "    key: \"{{ secret('HOOK_KEY') }}\"\n")
HOOK_PATH = "/api/v1/main/executions/webhook/company.team/hook/s3cr3t"


def hook(version: str, extra: str = "", **kwargs) -> FakeKestra:
    fake = FakeKestra(version=version, secrets={"HOOK_KEY": "s3cr3t"}, **kwargs)
    fake.seed_flow(HOOK + extra)
    return fake


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_a_webhook_creates_an_execution_without_credentials(version: str, method: str):
    fake = hook(version)
    body = b'{"ref": "refs/heads/main", "n": [1]}' if method != "GET" else b""
    response = fake.handle(method, HOOK_PATH + "?a=1&a=2&b=x",
                           {"X-Gitea-Event": "push", "Content-Type": "application/json"}, body)
    assert response.status == 200 and response.headers["Content-Type"] == "application/json"
    answer = response.json
    assert (answer["namespace"], answer["flowId"], answer["flowRevision"]) == (
        "company.team", "hook", 1)
    assert answer["trigger"]["id"] == "push" and answer["state"]["current"] == "CREATED"
    assert answer["url"].endswith(f"/ui/main/executions/company.team/hook/{answer['id']}")
    variables = answer["trigger"]["variables"]
    assert variables["headers"]["X-Gitea-Event"] == ["push"]
    assert variables["parameters"] == {"a": ["1", "2"], "b": ["x"]}
    if method == "GET":
        assert "body" not in variables
    else:
        assert variables["body"] == {"ref": "refs/heads/main", "n": [1]}
    assert {"key": "system.correlationId", "value": answer["id"]} in answer["labels"]
    assert [e["id"] for e in fake.executions] == [answer["id"]]
    assert fake.executions[0]["trigger"] == answer["trigger"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("body", "expected"), [
    (b"[1, 2]", [1, 2]), (b"plain text", "plain text"), (b"42", "42"), (b'"quoted"', '"quoted"')])
def test_a_webhook_body_is_a_map_or_a_list_else_the_raw_text(version: str, body: bytes, expected):
    fake = hook(version)
    response = fake.handle("POST", HOOK_PATH, {"Content-Type": "text/plain"}, body)
    assert response.json["trigger"]["variables"]["body"] == expected


@pytest.mark.parametrize("version", VERSIONS)
def test_webhook_not_found_answers(version: str):
    fake = hook(version)
    assert_json_error(fake.handle("POST", HOOK_PATH.replace("/hook/", "/nope/"), {}, b""), 404,
                      "Not Found: Flow not found")
    assert_json_error(fake.handle("POST", HOOK_PATH.replace("s3cr3t", "wrong"), {}, b""), 404,
                      "Not Found: Webhook not found")
    assert_json_error(fake.handle("POST", HOOK_PATH + "/more", {}, b""), 404, "Not Found")
    without_secret = FakeKestra(version=version)  # the key cannot render: that trigger is skipped
    without_secret.seed_flow(HOOK)
    assert without_secret.handle("POST", HOOK_PATH, {}, b"").status == 404
    assert fake.executions == []


@pytest.mark.parametrize(("version", "message"), [
    ("1.3.19", "Illegal state: Cannot execute a disabled flow"),
    ("2.0.3", "Conflict: Cannot execute flow: flow is disabled.")])
def test_a_webhook_of_a_disabled_flow_is_409(version: str, message: str):
    fake = hook(version, "disabled: true\n")
    assert_json_error(fake.handle("POST", HOOK_PATH, {}, b""), 409, message)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_disabled_webhook_trigger_still_fires(version: str):
    # neither ExecutionController nor Webhook.evaluate looks at the trigger's `disabled`
    fake = hook(version, "    disabled: true\n")
    assert fake.handle("POST", HOOK_PATH, {}, b"").status == 200


CONDITION = {
    # 1.3: the trigger's `conditions`; 2.0: its `when`
    "1.3.19": ("    conditions:\n"
               "      - type: io.kestra.plugin.core.condition.ExpressionCondition\n"
               "        expression: \"{{ trigger.body.ref == 'refs/heads/main' }}\"\n"),
    "2.0.3": "    when: \"{{ trigger.body.ref == 'refs/heads/main' }}\"\n",
}


@pytest.mark.parametrize(("version", "status"), [("1.3.19", 409), ("2.0.3", 204)])
def test_a_webhook_whose_conditions_fail_creates_nothing(version: str, status: int):
    fake = hook(version, CONDITION[version])
    other = fake.handle("POST", HOOK_PATH, {}, b'{"ref": "refs/heads/dev"}')
    assert (other.status, other.body) == (status, b"")
    missing = fake.handle("POST", HOOK_PATH, {}, b"no json")  # fails to render: not met either
    assert missing.status == status
    assert fake.executions == []
    assert fake.handle("POST", HOOK_PATH, {}, b'{"ref": "refs/heads/main"}').status == 200


@pytest.mark.parametrize(("version", "status"), [("1.3.19", 409), ("2.0.3", 422)])
def test_webhook_inputs_are_rendered_and_a_failure_creates_nothing(version: str, status: int):
    fake = hook(version, "    inputs:\n      ref: \"{{ trigger.body.ref }}\"\n")
    assert fake.handle("POST", HOOK_PATH, {}, b'{"ref": "main"}').status == 200
    assert fake.executions[0]["inputs"] == {"ref": "main"}
    failed = fake.handle("POST", HOOK_PATH, {}, b"{}")
    assert (failed.status, failed.body) == (status, b"")
    assert len(fake.executions) == 1


def test_a_webhook_outside_the_open_urls_needs_credentials():
    fake = hook("2.0.3", open_urls=())
    assert fake.handle("POST", HOOK_PATH, {}, b"").status == 401
    assert call(fake, "POST", HOOK_PATH).status == 200


def test_a_webhook_over_real_http_sees_repeated_headers(fake: FakeKestra):
    fake.secrets["HOOK_KEY"] = "s3cr3t"
    fake.seed_flow(HOOK)
    with serve(fake) as url:
        response = httpx.post(url + HOOK_PATH, headers=[("X-Tag", "a"), ("X-Tag", "b")],
                              content=b'{"x": 1}')
    assert response.status_code == 200
    variables = response.json()["trigger"]["variables"]
    assert variables["headers"]["X-Tag"] == ["a", "b"] and variables["body"] == {"x": 1}


# -- the request log and faults --------------------------------------------------------------------

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

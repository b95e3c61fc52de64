"""Every request the client can send matches an operation of Kestra's 1.3 and 2.0 OpenAPI specs."""

from __future__ import annotations

import inspect
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from fake_kestra import FakeKestra, mock_transport
from kestra_promote.target.bulk import archive
from kestra_promote.target.client import Connection, KestraClient, connect

_ZIP = archive([("a/c.py", b"x")])

FIXTURE = json.loads((Path(__file__).parent / "openapi_operations.json").read_text())
FLOW = ("id: etl\nnamespace: company\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
        "    message: hi\n")


def _capture(version: str) -> list[httpx.Request]:
    """Call every public client method (some twice, with optional arguments) and record.

    Every call must succeed against the fake server of that version: no call is a fallback.
    """
    fake = FakeKestra(version=version)
    fake.runs.add("company", "etl", started=datetime.now(timezone.utc), execution_id="past-run")
    inner = mock_transport(fake)
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        sent.append(request)
        return inner.handle_request(request)

    client = connect(Connection("http://kestra.test", username="admin@kestra.io",
                                password="Admin1234!"), transport=httpx.MockTransport(handler))
    calls = {
        "ping": [{}], "configs": [{}], "major_version": [{}],
        "create_flow": [{"source": FLOW}],
        "get_flow": [{"namespace": "company", "flow_id": "etl"},
                     {"namespace": "company", "flow_id": "etl", "revision": 1,
                      "allow_deleted": True}],
        "update_flow": [{"namespace": "company", "flow_id": "etl", "source": FLOW + "# x\n"}],
        "flow_revisions": [{"namespace": "company", "flow_id": "etl"}],
        "export_flows": [{"namespace_prefix": "company"}, {}],
        "export_flows_matching": [{"namespace_regex": "^(company|billing)([.].*)?$"}],
        "import_flows": [{"data": FLOW.encode(), "filename": "flows.yml"}],
        "validate_flows": [{"sources": [("a.yml", FLOW)]}],
        "probe": [{"size": 100_000}],
        "delete_flows_by_ids": [{"ids": []}],
        "trigger_execution": [{"namespace": "company", "flow_id": "etl", "inputs": {"x": "1"},
                               "labels": {"team": "data"}},
                              {"namespace": "company", "flow_id": "etl"}],
        "get_execution": [{"execution_id": "past-run"}],
        "wait_for_execution": [{"execution_id": "past-run", "timeout": 5}],
        "search_executions": [{"namespace": "company", "flow_id": "etl", "states": ["FAILED"],
                               "since": datetime(2026, 1, 1, tzinfo=timezone.utc)}, {}],
        "kill_execution": [{"execution_id": "past-run"}],
        "delete_flow": [{"namespace": "company", "flow_id": "etl"}],
        "upload_namespace_file": [{"namespace": "company", "path": "/a/b.py", "content": b"x"}],
        "upload_namespace_files": [{"namespace": "company", "archive": _ZIP}],
        "list_namespace_files": [{"namespace": "company", "path": "/a"}],
        "download_namespace_file": [{"namespace": "company", "path": "/a/b.py"}],
        "export_namespace_files": [{"namespace": "company"}],
        "delete_namespace_file": [{"namespace": "company", "path": "/a/b.py"}],
        "kv_put": [{"namespace": "company", "key": "k", "value": {"a": 1}, "ttl": "PT1H",
                    "description": "d"}],
        "kv_get": [{"namespace": "company", "key": "k"}],
        "kv_entry": [{"namespace": "company", "key": "k"}],
        "list_kv_keys": [{"namespace": "company"}],
        "kv_delete": [{"namespace": "company", "key": "k"}],
    }
    public = {name for name, _ in inspect.getmembers(KestraClient, inspect.isfunction)
              if not name.startswith("_") and name not in ("request", "close")}
    assert public == set(calls), "every public client method must be exercised here"
    for name, variants in calls.items():
        for kwargs in variants:
            getattr(client, name)(**kwargs)
    return sent


# the fake server's version for each spec version
SERVERS = {"1.3.0": "1.3.19", "2.0.0-SNAPSHOT": "2.0.3"}
SENT = {spec: _capture(server) for spec, server in SERVERS.items()}


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


def _matches(request: httpx.Request, op: dict) -> list[str]:
    """Why ``request`` does not fit ``op`` (empty when it does)."""
    why = []
    query = {re.sub(r"\[.*$", "", name) for name, _ in request.url.params.multi_items()}
    if not query <= set(op["query_params"]):
        why.append(f"query {sorted(query - set(op['query_params']))} not in {op['query_params']}")
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if request.content and ctype not in op["content_types"]:
        why.append(f"content type {ctype!r} not in {op['content_types']}")
    if ctype == "multipart/form-data" and op["multipart_parts"]:
        parts = set(re.findall(rb'form-data; name="([^"]+)"', request.content))
        declared = {p.encode() for p in op["multipart_parts"]}
        if not parts <= declared:
            why.append(f"parts {parts - declared} not in {declared}")
    return why


CASES = [pytest.param(r, v, id=f"{r.method} {r.url.path} {v}")
         for v in sorted(FIXTURE["specs"]) for r in SENT[v]]


@pytest.mark.parametrize(("request_", "version"), CASES)
def test_request_matches_an_operation_of_the_spec(request_: httpx.Request, version: str):
    path = request_.url.path
    if any(o["method"] == request_.method and o["path"] == path for o in FIXTURE["outside_spec"]):
        return
    candidates = [op for op in FIXTURE["specs"][version]
                  if op["method"] == request_.method and _template_regex(op["path"]).match(path)]
    # a literal path segment wins over a template (flows/export/by-query vs flows/{ns}/{id})
    candidates.sort(key=lambda op: op["path"].count("{"))
    assert candidates, f"no {version} operation for {request_.method} {path}"
    assert _matches(request_, candidates[0]) == [], candidates[0]["operationId"]


def test_the_capture_covers_every_operation_of_the_fixture():
    for version, operations in FIXTURE["specs"].items():
        for op in operations:
            regex = _template_regex(op["path"])
            assert any(r.method == op["method"] and regex.match(r.url.path)
                       for r in SENT[version]), (
                f"{version}: {op['method']} {op['path']} is in the fixture but never sent")

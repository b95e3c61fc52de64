"""What travels between kestra-promote and the target, and what it makes of odd answers.

Redirects, HTML pages and damaged archives where the API answers JSON or a ZIP (an SSO proxy, a
wrong URL), lost connections and server errors: every public method of the client turns each
into a typed error naming the request, an apply treats it as a failed write and rolls back, and
no credential ever shows in a message or a log line. Also the warnings about TLS verification
and clear-text credentials.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import io
import logging
import socket
import threading
import zipfile
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from conftest import FAKE_PASSWORD, FAKE_USER, GitRepo, flow_yaml, run_cli
from fake_kestra import FakeKestra, serve
from kestra_promote.target import bulk
from kestra_promote import errors
from kestra_promote.target.client import Connection, KestraClient, connect

FLOW = flow_yaml("company", "etl")
SSO = "https://sso-user:sso-Pa55@sso.example.com/login?state=s3cr3t-state&rd=%2Fui"
LOGIN_PAGE = (b"<!doctype html><html><head><title>Sign in - Example SSO</title></head>"
              b"<body><form>...</form></body></html>")
HTML = {"Content-Type": "text/html; charset=utf-8"}


def _zip_of(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in entries.items():
            archive.writestr(name, text)
    return buffer.getvalue()


# every public method of the client, with arguments that succeed on a seeded fake
CALLS: dict[str, dict[str, Any]] = {
    "ping": {},
    "configs": {},
    "major_version": {},
    "get_flow": {"namespace": "company", "flow_id": "etl"},
    "create_flow": {"source": flow_yaml("company", "new")},
    "update_flow": {"namespace": "company", "flow_id": "etl",
                    "source": flow_yaml("company", "etl", "changed")},
    "delete_flow": {"namespace": "company", "flow_id": "etl"},
    "flow_revisions": {"namespace": "company", "flow_id": "etl"},
    "export_flows": {"namespace_prefix": "company"},
    "export_flows_matching": {"namespace_regex": "^(company|billing)([.].*)?$"},
    "import_flows": {"data": _zip_of({"company.other.yml": flow_yaml("company", "other")})},
    "validate_flows": {"sources": [("etl.yml", FLOW)]},
    "probe": {"size": 100_000},
    "delete_flows_by_ids": {"ids": [("company", "etl")]},
    "list_namespace_files": {"namespace": "company"},
    "download_namespace_file": {"namespace": "company", "path": "/lib/a.py"},
    "upload_namespace_file": {"namespace": "company", "path": "/lib/b.py", "content": b"print(2)"},
    "upload_namespace_files": {"namespace": "company",
                               "archive": bulk.archive([("lib/c.py", b"print(3)")])},
    "delete_namespace_file": {"namespace": "company", "path": "/lib/a.py"},
    "export_namespace_files": {"namespace": "company"},
    "kv_get": {"namespace": "system", "key": "state"},
    "kv_entry": {"namespace": "system", "key": "state"},
    "kv_put": {"namespace": "system", "key": "state", "value": {"flows": []}},
    "kv_delete": {"namespace": "system", "key": "state"},
    "list_kv_keys": {"namespace": "system"},
    "trigger_execution": {"namespace": "company", "flow_id": "etl", "inputs": {"x": 1},
                          "labels": {"team": "data"}},
    "get_execution": {"execution_id": "past-run"},
    "search_executions": {"namespace": "company", "flow_id": "etl", "states": ["SUCCESS"]},
    "wait_for_execution": {"execution_id": "past-run", "timeout": 5},
    "kill_execution": {"execution_id": "past-run"},
}
SHORT_ANSWERS = {"ping", "delete_flow", "upload_namespace_file", "upload_namespace_files",
                 "delete_namespace_file", "kv_put",
                 "kv_delete", "download_namespace_file", "import_flows",
                 "delete_flows_by_ids"}  # 40 bytes or fewer
# what each fault does on the wire: answer without processing, or process and then spoil
FAULTS: dict[str, dict[str, Any]] = {
    "drop": {"drop": True},
    "500": {"status": 500},
    "302": {"status": 302, "body": b"", "headers": {"Location": SSO}},
    "html-200": {"status": 200, "body": LOGIN_PAGE, "headers": HTML},
    "truncated": {"truncate": 40},
}


def _seeded() -> FakeKestra:
    fake = FakeKestra()
    fake.seed_flow(FLOW)
    fake.runs.add("company", "etl", started=datetime.now(timezone.utc) - timedelta(hours=1),
                  execution_id="past-run")
    with serve(fake) as url, _client(url) as client:
        client.upload_namespace_file("company", "/lib/a.py", b"print(1)")
        client.kv_put("system", "state", {"flows": []})
    fake.requests.clear()
    return fake


@pytest.fixture
def seeded() -> Iterator[tuple[FakeKestra, str]]:
    fake = _seeded()
    with serve(fake) as url:
        yield fake, url


def _client(url: str, **kwargs: Any) -> KestraClient:
    auth = kwargs.pop("auth", {"username": FAKE_USER, "password": FAKE_PASSWORD})
    return connect(Connection(url, **auth, **kwargs), sleep=lambda _: None)


def test_every_public_method_is_exercised():
    public = {name for name, _ in inspect.getmembers(KestraClient, inspect.isfunction)
              if not name.startswith("_")} - {"request", "close"}
    assert public == set(CALLS)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_method_works_without_faults(seeded: tuple[FakeKestra, str], name: str):
    fake, url = seeded
    with _client(url) as client:
        result = getattr(client, name)(**CALLS[name])
    assert all(r.status < 300 for r in fake.requests)
    if name == "ping":
        assert result is True


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_faulty_answer_is_a_typed_error_naming_the_request(seeded: tuple[FakeKestra, str],
                                                             name: str, fault: str):
    """Drop, 500, 302, an HTML 200 page, a truncated answer: a KestraError or a correct result,
    never an httpx, JSON or ZIP exception, never a success the server did not give."""
    fake, url = seeded
    for method in ("GET", "POST", "PUT", "DELETE"):
        fake.inject(method, "", times=99, **FAULTS[fault])
    with _client(url, retries=1) as client:
        try:
            result = getattr(client, name)(**CALLS[name])
        except errors.KestraError as exc:
            text = str(exc)
            assert text.split(" ", 1)[0] in ("GET", "POST", "PUT", "DELETE"), text
            assert fake.requests[-1].path in text
            assert "sso-Pa55" not in text and "s3cr3t-state" not in text
            return
    if name == "ping" and fault == "html-200":
        assert result is False  # something answers, but not Kestra's "pong"
        return
    # only a truncation of an answer that has no body (or a short one) leaves it whole
    assert fault == "truncated", f"{name} accepted the {fault} answer: {result!r}"
    assert name in SHORT_ANSWERS, f"{name} accepted a truncated answer: {result!r}"


@pytest.mark.parametrize(("name", "status"), [
    ("delete_flow", 302), ("delete_namespace_file", 301), ("upload_namespace_file", 307),
    ("kv_put", 308), ("kv_put", 303), ("create_flow", 302), ("get_flow", 302),
    ("export_flows", 302), ("kv_get", 307), ("list_kv_keys", 302), ("configs", 301),
])
def test_a_redirect_is_an_error_not_a_success_and_is_not_retried(
        seeded: tuple[FakeKestra, str], name: str, status: int):
    fake, url = seeded
    for method in ("GET", "POST", "PUT", "DELETE"):
        fake.inject(method, "", times=99, status=status, body=b"", headers={"Location": SSO})
    with _client(url) as client, pytest.raises(errors.UnexpectedResponse) as caught:
        getattr(client, name)(**CALLS[name])
    assert caught.value.status == status
    assert len(fake.requests) == 1  # not retried as if transient
    assert (f"answered HTTP {status} (redirect to https://sso.example.com/login?...): not a "
            "Kestra API answer; check the URL or proxy") in str(caught.value)
    assert "sso-user" not in str(caught.value) and "sso-Pa55" not in str(caught.value)
    assert "s3cr3t-state" not in str(caught.value) and "rd=" not in str(caught.value)


def test_a_relative_redirect_shows_the_absolute_place(seeded: tuple[FakeKestra, str]):
    fake, url = seeded
    fake.inject("DELETE", "", status=302, body=b"", headers={"Location": "/oauth2/start?rd=x"})
    with _client(url) as client, pytest.raises(errors.UnexpectedResponse) as caught:
        client.delete_flow("company", "etl")
    assert f"(redirect to {url}/oauth2/start?...)" in str(caught.value)
    assert list(fake.current()) == [("company", "etl")]


def test_an_html_page_instead_of_json_names_the_request(seeded: tuple[FakeKestra, str]):
    fake, url = seeded
    fake.inject("POST", r"/flows$", status=200, body=LOGIN_PAGE, headers=HTML)
    with _client(url) as client, pytest.raises(errors.UnexpectedResponse) as caught:
        client.create_flow(flow_yaml("company", "new"))
    assert str(caught.value) == (
        "POST /api/v1/main/flows answered HTTP 200 with an HTML page (Sign in - Example SSO), "
        "not JSON: not a Kestra API answer; check the URL or proxy")


@pytest.mark.parametrize("name", ["export_flows", "export_flows_matching",
                                  "export_namespace_files"])
def test_an_export_that_is_not_a_zip_is_a_clean_error(seeded: tuple[FakeKestra, str], name: str):
    fake, url = seeded
    fake.inject("GET", "export", status=200, body=LOGIN_PAGE, headers=HTML)
    with _client(url) as client, pytest.raises(errors.UnexpectedResponse) as caught:
        getattr(client, name)(**CALLS[name])
    assert "answered HTTP 200 with an HTML page (Sign in - Example SSO), not a ZIP archive" \
        in str(caught.value)
    fake.inject("GET", "export", truncate=30)
    with _client(url) as client, pytest.raises(errors.UnexpectedResponse) as caught:
        getattr(client, name)(**CALLS[name])
    assert "with a damaged or incomplete ZIP archive" in str(caught.value)
    assert str(caught.value).startswith(f"GET {fake.requests[-1].path} ")


@contextlib.contextmanager
def _cut_short(body: bytes, promised: int) -> Iterator[str]:
    """A server that promises ``promised`` bytes, sends ``body`` and closes the connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve_forever() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:  # a timeout: look at the stop flag again
                continue
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                   b"Content-Length: %d\r\n\r\n" % promised + body)

    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.mark.parametrize("name", ["export_flows", "export_flows_matching",
                                  "export_namespace_files", "download_namespace_file"])
def test_an_answer_cut_short_on_the_wire_is_a_transport_error(name: str):
    whole = _zip_of({"company.etl.yml": FLOW})
    with _cut_short(whole[:40], len(whole)) as url, _client(url, retries=1) as client:
        with pytest.raises(errors.TransportError, match=r"^GET /api/v1/main/.*gave up after 2 "
                                                        r"attempts"):
            getattr(client, name)(**CALLS[name])


def test_a_download_answered_by_an_html_page_is_an_error(seeded: tuple[FakeKestra, str]):
    fake, url = seeded
    fake.inject("GET", r"/files$", status=200, body=LOGIN_PAGE, headers=HTML)
    with _client(url) as client:
        with pytest.raises(errors.UnexpectedResponse, match=r"^GET /api/v1/main/namespaces/"
                           r"company/files answered HTTP 200 with an HTML page"):
            client.download_namespace_file("company", "/lib/a.py")
        assert client.download_namespace_file("company", "/lib/a.py") == b"print(1)"


@pytest.mark.parametrize(("name", "body"), [
    ("configs", b"[1, 2]"), ("get_flow", b'"a string"'), ("kv_get", b"[]"),
    ("kv_delete", b'{"deleted": true}'), ("list_namespace_files", b"{}"),
    ("flow_revisions", b"null"), ("validate_flows", b'["not an object"]'),
    ("create_flow", b"[]"), ("import_flows", b"{}"),
])
def test_json_of_the_wrong_shape_is_a_clean_error(seeded: tuple[FakeKestra, str], name: str,
                                                  body: bytes):
    fake, url = seeded
    for method in ("GET", "POST", "PUT", "DELETE"):
        fake.inject(method, "", status=200, body=body,
                    headers={"Content-Type": "application/json"})
    with _client(url) as client, pytest.raises(errors.UnexpectedResponse, match="answered HTTP "
                                               "200 with JSON that is not"):
        getattr(client, name)(**CALLS[name])


@pytest.mark.parametrize("name", ["delete_flow", "upload_namespace_file", "kv_put",
                                  "delete_namespace_file"])
def test_a_write_answered_by_a_login_page_is_an_error(seeded: tuple[FakeKestra, str], name: str):
    fake, url = seeded
    for method in ("POST", "PUT", "DELETE"):
        fake.inject(method, "", status=200, body=LOGIN_PAGE, headers=HTML)
    with _client(url) as client, pytest.raises(errors.UnexpectedResponse,
                                               match="answered HTTP 200 with an HTML page"):
        getattr(client, name)(**CALLS[name])


def test_an_unexpected_success_status_is_an_error(seeded: tuple[FakeKestra, str]):
    fake, url = seeded
    fake.inject("PUT", "/kv/", status=202, body=b"")
    with _client(url) as client, pytest.raises(
            errors.UnexpectedResponse, match=r"PUT /api/v1/main/namespaces/system/kv/state "
            r"answered HTTP 202 \(Accepted\), which this request never answers"):
        client.kv_put("system", "state", 1)


# -- apply: an odd answer is a failed write, and the run is rolled back ---------------------------

SETTINGS = """name: analytics
namespace_files:
  - {source: files, namespace: company.team, target: /scripts}
"""


def _deployed(repo: GitRepo, fake: FakeKestra, url: str) -> dict[str, str]:
    repo.write("kestra-promote.yml", SETTINGS)
    for name in ("a", "b", "c"):
        repo.write(f"flows/{name}.yml", flow_yaml("company.team", name))
    repo.write("files/etl.py", "print(1)\n")
    repo.commit()
    env = {"KESTRA_URL": url, "KESTRA_USERNAME": FAKE_USER, "KESTRA_PASSWORD": FAKE_PASSWORD}
    first = run_cli("apply", str(repo.path), env=env)
    assert first.code == 0, first.err
    return env


def _state(fake: FakeKestra) -> tuple:
    kv = {f"{ns}/{key}": entry["value"] for (_, ns), store in fake.kv.items()
          for key, entry in store.items()}
    return fake.current(), {f"{ns}:{path}": data for (_, ns), files in fake.files.items()
                            for path, data in files.items()}, kv


@pytest.mark.parametrize(("what", "method", "pattern", "fault"), [
    ("flow update answered by a login page", "PUT", r"/flows/company.team/b$", FAULTS["html-200"]),
    ("flow create answered by a login page", "POST", r"/flows$", FAULTS["html-200"]),
    ("file upload redirected", "POST", r"/files$", FAULTS["302"]),
    ("deletion redirected", "DELETE", r"/flows/company.team/c$", FAULTS["302"]),
    ("inventory write redirected", "PUT", r"/kv/kestra-promote\.analytics$", FAULTS["302"]),
    ("inventory write answered by a login page", "PUT", r"/kv/kestra-promote\.analytics$",
     FAULTS["html-200"]),
])
def test_apply_rolls_back_when_a_write_gets_a_non_api_answer(repo: GitRepo, what: str,
                                                             method: str, pattern: str,
                                                             fault: dict[str, Any]):
    fake = FakeKestra()
    with serve(fake) as url:
        env = _deployed(repo, fake, url)
        repo.write("flows/a.yml", flow_yaml("company.team", "a", "changed"))
        repo.write("flows/b.yml", flow_yaml("company.team", "b", "changed"))
        repo.write("flows/d.yml", flow_yaml("company.team", "d"))
        (repo.path / "flows" / "c.yml").unlink()
        repo.write("files/etl.py", "print(2)\n")
        repo.commit()
        before = _state(fake)
        fake.inject(method, pattern, **fault)
        result = run_cli("apply", str(repo.path), "--prune", env=env)
        assert result.code == 1, (what, result.out, result.err)
        assert "not a Kestra API answer; check the URL or proxy" in result.out + result.err
        assert "the run was rolled back" in result.out, result.out
        assert "Traceback" not in result.err
        assert _state(fake) == before, what
        assert "sso-Pa55" not in result.out + result.err
        assert "s3cr3t-state" not in result.out + result.err


# -- credentials echoed by a server never reach a message or a log line ----------------------------

PASSWORD = "Echo-Pa55word!"
TOKEN = "tok-echoed-0123456789"


def _encoded(username: str | None, secret: str) -> str:
    """base64 of ``user:password``, or of the token alone."""
    raw = f"{username}:{secret}" if username else secret
    return base64.b64encode(raw.encode()).decode()


def _forms(username: str | None, secret: str) -> list[str]:
    return [secret, _encoded(username, secret), f"Bearer {secret}"]


@pytest.mark.parametrize("auth", ["basic", "token"])
@pytest.mark.parametrize("fault", [
    pytest.param({"status": 500, "echo_headers": True}, id="json-error-echoing-headers"),
    pytest.param({"status": 400, "echo_headers": True}, id="400-echoing-headers"),
    pytest.param({"status": 200, "headers": HTML, "body": (
        "<html><title>Debug</title><pre>Authorization: {header}\npassword={secret}\n"
        "user:pass={pair}</pre></html>")}, id="html-200-debug-page"),
    pytest.param({"status": 502, "headers": {"Content-Type": "text/plain"},
                  "body": "proxy error; forwarded {header} for {secret} ({pair})"},
                 id="plain-text-502"),
    pytest.param({"status": 302, "body": "", "headers": {
        "Location": "https://sso.example.com/{secret}/{pair}?auth={header}"}},
        id="redirect-location"),
])
def test_echoed_credentials_are_redacted_from_errors_and_logs(
        auth: str, fault: dict[str, Any], caplog: pytest.LogCaptureFixture):
    username = FAKE_USER if auth == "basic" else None
    secret = PASSWORD if auth == "basic" else TOKEN
    fake = FakeKestra(password=PASSWORD, token=TOKEN)
    pair = _encoded(username, secret)
    header = f"Basic {pair}" if username else f"Bearer {secret}"
    spec = dict(fault)
    if isinstance(spec.get("body"), str):
        spec["body"] = spec["body"].format(header=header, secret=secret, pair=pair).encode()
    if "Location" in spec.get("headers", {}):
        spec["headers"] = {"Location": spec["headers"]["Location"].format(
            header=header.replace(" ", "%20"), secret=secret, pair=pair)}
    fake.inject("GET", "", times=99, **spec)
    credentials = ({"username": username, "password": secret} if username
                   else {"token": secret})
    caplog.set_level(logging.DEBUG)
    with serve(fake) as url, _client(url, auth=credentials, retries=2) as client:
        with pytest.raises(errors.KestraError) as caught:
            client.get_flow("company", "etl")
    exc = caught.value
    shown = " ".join([str(exc), repr(exc), caplog.text, str(getattr(exc, "server_message", "")),
                      " ".join(getattr(exc, "details", ()))])
    for form in _forms(username, secret) + [pair, header]:
        assert form not in shown, (form, shown)
    assert "GET /api/v1/main/flows/company/etl" in str(exc)
    if fault.get("echo_headers"):
        assert "user-agent: kestra-promote/" in str(exc).lower()  # the rest of the echo stays
        assert "authorization: ***" in str(exc).lower()


def test_an_apply_whose_server_echoes_the_authorization_header_shows_no_credential(
        repo: GitRepo, caplog: pytest.LogCaptureFixture):
    fake = FakeKestra(password=PASSWORD)
    repo.write("a.yml", flow_yaml("company", "a"))
    repo.write("b.yml", flow_yaml("company", "b"))
    repo.commit()
    fake.inject("POST", r"/flows$", nth=2, status=500, echo_headers=True)
    with serve(fake) as url:
        env = {"KESTRA_URL": url, "KESTRA_USERNAME": FAKE_USER, "KESTRA_PASSWORD": PASSWORD}
        result = run_cli("apply", str(repo.path), "-v", env=env)
    assert result.code == 1 and "injected fault 500; request headers:" in result.out
    text = result.out + result.err + caplog.text
    for form in _forms(FAKE_USER, PASSWORD):
        assert form not in text
    assert fake.current() == {}


# -- TLS and clear-text warnings, and the --insecure / --ca-bundle conflict -----------------------


def _warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Warning: ")]


def test_insecure_warns_once_that_tls_verification_is_off(repo: GitRepo):
    fake = FakeKestra()
    repo.write("a.yml", flow_yaml("company", "a"))
    repo.commit()
    with serve(fake) as url:
        env = {"KESTRA_URL": url, "KESTRA_USERNAME": FAKE_USER, "KESTRA_PASSWORD": FAKE_PASSWORD}
        result = run_cli("apply", str(repo.path), "--insecure", env=env)
        quiet = run_cli("plan", str(repo.path), env=env)
    assert result.code == 0, result.err
    assert _warnings(result.err) == [
        "Warning: --insecure: TLS certificates are not verified, so anyone on the network path "
        "can pose as the target and read the credentials; trust a private CA with --ca-bundle "
        "FILE instead."]
    assert _warnings(quiet.err) == []


@pytest.mark.parametrize("url", [["--url", "https://kestra.example.com"], []])
def test_insecure_with_a_ca_bundle_is_bad_usage(tmp_path, url: list[str]):
    result = run_cli("plan", str(tmp_path), *url, "--insecure", "--ca-bundle", "ca.pem")
    assert result.code == 1 and result.out == ""
    assert result.err == ("Error: --insecure and --ca-bundle contradict each other: keep "
                          "--ca-bundle (certificates are then checked against it) and drop "
                          "--insecure\n")
    with pytest.raises(errors.SettingsError, match="--insecure and --ca-bundle"):
        Connection("https://kestra.example.com", verify=False, ca_bundle="ca.pem")


@pytest.mark.parametrize(("url", "auth", "warned"), [
    ("http://kestra.example.com", ["--username", "ci@example.com", "--password", PASSWORD], True),
    ("http://10.0.0.5:8080", ["--username", "ci@example.com", "--password", PASSWORD], True),
    ("http://kestra.example.com", ["--token", TOKEN], True),
    ("https://kestra.example.com", ["--username", "ci@example.com", "--password", PASSWORD],
     False),
    ("http://kestra.example.com", [], False),
    ("http://localhost:8080", ["--username", "ci@example.com", "--password", PASSWORD], False),
    ("http://LOCALHOST.:8080", ["--username", "ci@example.com", "--password", PASSWORD], False),
    ("http://127.0.0.1:8080", ["--username", "ci@example.com", "--password", PASSWORD], False),
    ("http://127.8.9.10", ["--username", "ci@example.com", "--password", PASSWORD], False),
    ("http://[::1]:8080", ["--username", "ci@example.com", "--password", PASSWORD], False),
])
def test_credentials_over_plain_http_to_another_host_are_warned_about(
        tmp_path, url: str, auth: list[str], warned: bool):
    # a missing source folder: the command stops before any request, after the warnings
    result = run_cli("validate", str(tmp_path / "missing"), "--url", url, *auth)
    assert result.code == 1
    warnings = _warnings(result.err)
    if not warned:
        assert warnings == []
        return
    host = url.split("//", 1)[1].split(":", 1)[0]
    assert warnings == [
        f"Warning: the credentials travel in clear text over http:// to {host}: anyone on the "
        "network path can read them; use https://."]
    assert PASSWORD not in result.err and TOKEN not in result.err
    assert "ci@example.com" not in result.err

"""Large change sets go in bulk requests, and keep every promise of one-by-one writes."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile

import pytest
from conftest import FAKE_PASSWORD, FAKE_USER, GitRepo, flow_yaml, run_cli
from fake_kestra import FakeKestra, serve
from fake_kestra.app import HttpError, Response, _parse_multipart
from kestra_promote.target import bulk
from kestra_promote.target.client import Connection, connect
from kestra_promote.errors import KestraError
from kestra_promote.models import Action, Change, FlowKey, Reason

pytestmark = pytest.mark.fake_only
SETTINGS = "name: analytics\nprune: true\nmax_deletions: 20\n"
NS = "company.team"
IMPORTS = "1.3.4"  # flows are imported in bulk on Kestra 1.x only (see bulk.py)


def _first(repo: GitRepo) -> None:
    repo.write("kestra-promote.yml", SETTINGS)
    for i in range(12):
        repo.write(f"flows/u{i:02}.yml", flow_yaml(NS, f"u{i:02}"))
        repo.write(f"flows/d{i:02}.yml", flow_yaml(NS, f"d{i:02}"))
        repo.write(f"flows/k{i:02}.yml", flow_yaml(NS, f"k{i:02}"))  # kept as they are
    repo.commit("first")


def _second(repo: GitRepo) -> None:
    """12 creations, 12 updates, 12 deletions, 12 flows left alone."""
    for i in range(12):
        repo.write(f"flows/u{i:02}.yml", flow_yaml(NS, f"u{i:02}", "updated"))
        repo.write(f"flows/c{i:02}.yml", flow_yaml(NS, f"c{i:02}"))
        (repo.path / f"flows/d{i:02}.yml").unlink()
    repo.commit("second")


def _deployed(repo: GitRepo) -> FakeKestra:
    """A fake server holding the first commit, and the repository at the second."""
    _first(repo)
    fake = FakeKestra(version=IMPORTS)
    with serve(fake) as url:
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
    _second(repo)
    return fake


def _env(url: str) -> dict[str, str]:
    return {"KESTRA_URL": url, "KESTRA_USERNAME": FAKE_USER, "KESTRA_PASSWORD": FAKE_PASSWORD}


def _copy(fake: FakeKestra) -> FakeKestra:
    fresh = FakeKestra(version=IMPORTS)
    fresh.flows = {k: list(v) for k, v in fake.flows.items()}
    fresh.kv = {k: {kk: dict(vv) for kk, vv in v.items()} for k, v in fake.kv.items()}
    return fresh


def _state(fake: FakeKestra) -> tuple[dict, dict]:
    """What a user sees: the flows and the inventory (revision numbers aside)."""
    kv = {key: value["value"] for key, value in fake.kv.get(("main", "system"), {}).items()
          if key != "kestra-promote-lock"}
    return fake.current(), kv


def _write_paths(fake: FakeKestra) -> list[str]:
    return [f"{r.method} {r.path.split('/api/v1/main', 1)[-1]}" for r in fake.writes()]


def test_a_large_change_is_one_import_one_delete_and_the_inventory(repo: GitRepo):
    fake = _deployed(repo)
    with serve(fake) as url:
        before = len(fake.writes())
        result = run_cli("apply", str(repo.path), env=_env(url))
        assert result.code == 0, result.out + result.err
        assert "Apply complete: 12 created, 12 updated, 12 deleted" in result.out
        writes = _write_paths(fake)[before:]
        assert writes[:2] == ["POST /flows/import", "DELETE /flows/delete/by-ids"], writes
        assert all("/kv/" in w for w in writes[2:]), writes  # the inventory
        live = fake.current()
        assert {fid for _, fid in live} == {f"{p}{i:02}" for p in "cuk" for i in range(12)}
        assert "updated" in live[(NS, "u03")]
        # flows the change left alone get no new revision; updated ones exactly one
        assert fake.revision_count(NS, "k05") == 1 and fake.revision_count(NS, "u05") == 2
        # and a second apply writes nothing
        again = len(fake.writes())
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
        assert len(fake.writes()) == again


def test_on_kestra_2_flows_are_written_one_by_one_so_that_kestra_runs_them(repo: GitRepo):
    # 2.0's import skips what tells executors and the scheduler about a flow: never used there
    _first(repo)
    fake = FakeKestra(version="2.0.3")
    with serve(fake) as url:
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
        _second(repo)
        before = len(fake.writes())
        result = run_cli("apply", str(repo.path), env=_env(url))
    assert result.code == 0, result.out + result.err
    writes = _write_paths(fake)[before:]
    assert "POST /flows/import" not in writes
    assert writes.count("POST /flows") == 12 and writes.count("DELETE /flows/delete/by-ids") == 1
    assert len([w for w in writes if w.startswith("PUT /flows/")]) == 12
    assert len(fake.current()) == 36 and not fake.unannounced


def test_an_import_on_kestra_1_reaches_the_rest_of_kestra(repo: GitRepo):
    fake = _deployed(repo)
    with serve(fake) as url:
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
    assert any(r.path.endswith("/flows/import") for r in fake.writes())
    assert not fake.unannounced


def test_each_bulk_request_is_bounded_by_the_body_limit(repo: GitRepo):
    _first(repo)
    for i in range(60):  # about 3 kB each: 180 kB to write, three times the limit
        repo.write(f"flows/big{i:02}.yml", flow_yaml(NS, f"big{i:02}", "x" * 3000))
    repo.commit("big")
    fake = FakeKestra(version=IMPORTS)
    fake.max_body = 65_536  # a proxy in front refuses anything larger with a 413
    with serve(fake) as url:
        result = run_cli("apply", str(repo.path), "--max-request-bytes", "65536", env=_env(url))
        assert result.code == 0, result.out + result.err
        imports = [r for r in fake.writes() if r.path.endswith("/flows/import")]
        assert 3 <= len(imports) <= 5
        assert all(len(r.body) <= 65_536 for r in fake.requests)
        assert len(fake.current()) == 96


def test_validation_and_import_are_bounded_by_size_not_by_count(repo: GitRepo):
    repo.write("kestra-promote.yml", SETTINGS)
    for i in range(500):
        repo.write(f"flows/f{i:03}.yml", flow_yaml(NS, f"f{i:03}"))
    repo.commit("500 small flows")
    fake = FakeKestra(version=IMPORTS)
    with serve(fake) as url:
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
    validations = [r for r in fake.requests if r.path.endswith("/flows/validate")]
    assert len(validations) == 1 and len(_write_paths(fake)) <= 3, _write_paths(fake)
    assert len(fake.current()) == 500


def test_a_slow_bulk_answer_is_waited_for_beyond_the_usual_timeout(repo: GitRepo):
    # the server answers an import once it has imported every entry: far slower than one flow
    _first(repo)
    fake = FakeKestra(version=IMPORTS)
    fake.inject("POST", "/flows/import", delay=2.5)
    with serve(fake) as url:
        result = run_cli("apply", str(repo.path), "--timeout", "1", env=_env(url))
    assert result.code == 0, result.out + result.err
    assert len(fake.current()) == 36


def test_a_proxy_refusing_the_bulk_body_is_found_before_any_write(repo: GitRepo):
    _first(repo)
    fake = FakeKestra(version=IMPORTS)
    with serve(fake) as url:
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
        for i in range(20):  # about 3 kB each: one import of about 60 kB
            repo.write(f"flows/big{i:02}.yml", flow_yaml(NS, f"big{i:02}", "x" * 3000))
        repo.commit("big")
        fake.max_body = 40_000  # each flow passes, their import would not
        before, writes = _state(fake), len(fake.writes())
        result = run_cli("apply", str(repo.path), env=_env(url))
        assert result.code == 1 and "HTTP 413" in result.err, result.out + result.err
        assert _state(fake) == before
        assert not [r for r in fake.writes()[writes:] if "/flows" in r.path]


@pytest.mark.parametrize("fault", ["status", "lost-answer", "html", "revert-fails-once"])
@pytest.mark.parametrize("position", [1, 2, 3], ids=["import", "delete", "inventory"])
def test_a_fault_at_any_bulk_request_leaves_the_target_as_it_was(repo: GitRepo, fault: str,
                                                                 position: int):
    deployed = _deployed(repo)
    fake = _copy(deployed)
    before = _state(fake)
    nth = position + 1  # the lease is the first write
    if fault == "status":
        fake.inject("WRITE", nth=nth, status=500)
    elif fault == "lost-answer":  # the server does it all, the answer never arrives
        fake.inject("WRITE", nth=nth, drop=True, after=True)
    elif fault == "html":  # a proxy's page with a 200
        fake.inject("WRITE", nth=nth, status=200, body=b"<html>Gateway</html>",
                    headers={"Content-Type": "text/html"})
    else:  # the write fails, and so does the first undo request: it is retried
        fake.inject("WRITE", nth=nth, status=500, times=2)
    with serve(fake) as url:
        result = run_cli("apply", str(repo.path), env=_env(url))
    if result.code == 0:
        # only a delete or the inventory's put whose answer was lost: both are idempotent, so
        # retried, and the retry worked
        assert fault == "lost-answer" and position in (2, 3), result.out
        assert "Apply complete: 12 created, 12 updated, 12 deleted" in result.out
        return
    assert _state(fake) == before, (fault, position, result.out)
    assert "the run was rolled back" in result.out, result.out
    # whatever landed was undone: no flow of this run is left behind
    assert not any(fid.startswith("c") for _, fid in fake.current())


def test_the_revert_of_a_bulk_write_is_itself_in_bulk(repo: GitRepo):
    fake = _copy(_deployed(repo))
    before = _state(fake)
    fake.inject("WRITE", nth=3, status=500)  # the delete, after 24 flows were imported
    with serve(fake) as url:
        start = len(fake.requests)
        result = run_cli("apply", str(repo.path), env=_env(url))
    assert result.code == 1 and _state(fake) == before
    assert result.out.count("  reverted ") == 24, result.out
    undo = [r for r in fake.requests[start:] if r.is_write][3:]  # after lease, import, delete
    paths = [f"{r.method} {r.path.rsplit('/api/v1/main', 1)[-1]}" for r in undo]
    # the 12 created flows deleted in one request, the 12 updated ones put back in one import
    assert paths[:2] == ["DELETE /flows/delete/by-ids", "POST /flows/import"], paths
    assert len(undo) <= 4, paths  # and the lease given back


class _RefusingFake(FakeKestra):
    """Accepts every flow at validation, but its import refuses one (a plugin missing on one
    node, a database constraint): the answer names the entry and gives no reason."""

    refuse = "id: c07\n"

    def __init__(self) -> None:
        super().__init__(version=IMPORTS)

    def _import(self, call):
        original = self._checked

        def checked(source: str, *, strict: bool = True) -> dict:
            if self.refuse in source:
                raise HttpError(422, "refused")
            return original(source, strict=strict)

        self._checked = checked  # type: ignore[method-assign]
        try:
            return super()._import(call)
        finally:
            del self._checked


def test_an_entry_the_import_refuses_fails_the_run_names_it_and_reverts_the_rest(repo: GitRepo):
    deployed = _deployed(repo)
    fake = _RefusingFake()
    fake.flows, fake.kv = _copy(deployed).flows, _copy(deployed).kv
    before = _state(fake)
    with serve(fake) as url:
        result = run_cli("apply", str(repo.path), env=_env(url))
    assert result.code == 1
    assert "failed company.team/c07: the target's import did not take it" in result.out
    assert "23 change(s) reverted" in result.out, result.out
    assert _state(fake) == before, result.out


def test_a_bulk_delete_of_a_flow_already_gone_deletes_the_rest(fake: FakeKestra):
    for i in range(12):
        fake.seed_flow(flow_yaml(NS, f"d{i:02}"))
    pending = [Change(FlowKey(NS, f"d{i:02}"), Action.DELETE, Reason.LEFT_GIT, before="x")
               for i in range(12)]
    fake.flows[("main", NS, "d04")].pop()  # deleted by someone else meanwhile: never existed
    del fake.flows[("main", NS, "d04")]
    with serve(fake) as url, connect(Connection(url, username=FAKE_USER, password=FAKE_PASSWORD,
                                                retries=0)) as client:
        bulk.delete_flows(client, pending, list(range(12)))
    assert fake.current() == {}


def test_a_bulk_request_is_only_for_enough_flows_of_one_kind():
    def change(i: int, action: Action) -> Change:
        after = None if action is Action.DELETE else flow_yaml(NS, f"f{i}")
        return Change(FlowKey(NS, f"f{i}"), action, Reason.NEW_IN_GIT, after=after)

    few = [change(i, Action.CREATE) for i in range(bulk.BULK_MIN - 1)]
    assert bulk.steps(few, 1_000_000) == [[i] for i in range(len(few))]
    mixed = [change(i, Action.CREATE if i < 10 else Action.UPDATE) for i in range(20)] + \
        [change(i, Action.DELETE) for i in range(20, 32)]
    assert bulk.steps(mixed, 1_000_000) == [list(range(20)), list(range(20, 32))]


def test_an_answer_about_entries_never_sent_is_no_kestra_answer(fake: FakeKestra):
    pending = [Change(FlowKey(NS, f"c{i:02}"), Action.CREATE, Reason.NEW_IN_GIT,
                      after=flow_yaml(NS, f"c{i:02}")) for i in range(10)]
    fake.inject("POST", "/flows/import", status=200, body=b'["../../etc/passwd"]',
                headers={"Content-Type": "application/json"})
    with serve(fake) as url, connect(Connection(url, username=FAKE_USER, password=FAKE_PASSWORD,
                                                retries=0)) as client:
        with pytest.raises(KestraError, match="not a Kestra API answer"):
            bulk.import_flows(client, pending, list(range(10)))



FILE_SETTINGS = SETTINGS + "namespace_files:\n  - {source: files, namespace: company.team, target: /scripts}\n"
ODD_NAMES = ("a b.py", "100%.txt", "x#y.py")  # what Kestra 1.3 would misread in a ZIP entry


def _files_repo(repo: GitRepo, odd: tuple[str, ...] = ODD_NAMES) -> None:
    repo.write("kestra-promote.yml", FILE_SETTINGS)
    repo.write("flows/f.yml", flow_yaml(NS, "f"))
    for i in range(12):
        repo.write(f"files/lib/m{i:02}.py", f"print({i})\n")
    for name in odd:
        repo.write(f"files/{name}", f"# {name}\n")
    repo.commit("files")


@pytest.mark.parametrize("version", ["2.0.3", "1.3.4"])
def test_many_files_go_in_one_zip_and_odd_names_alone(repo: GitRepo, version: str):
    # a space is refused on 1.3 (tests/cli/test_file_names.py): its API stores it as "+"
    odd = ODD_NAMES if version.startswith("2.") else tuple(n for n in ODD_NAMES if " " not in n)
    _files_repo(repo, odd)
    fake = FakeKestra(version=version)
    with serve(fake) as url:
        result = run_cli("apply", str(repo.path), env=_env(url))
    assert result.code == 0, result.out + result.err
    uploads = [r for r in fake.writes() if r.path.endswith("/namespaces/company.team/files")]
    assert len(uploads) == 1 + len(odd)
    assert sum(b'filename="files.zip"' in r.body for r in uploads) == 1
    files = fake.files[("main", NS)]
    assert {p: files[p] for p in files if p.startswith("/scripts/lib/")} == {
        f"/scripts/lib/m{i:02}.py": f"print({i})\n".encode() for i in range(12)}
    for name in odd:  # uploaded alone, under its own name
        assert files[f"/scripts/{name}"] == f"# {name}\n".encode()


def _change_every_file(repo: GitRepo, fake: FakeKestra, url: str, new: bool = False) -> tuple:
    """Deploy the files, then commit a change to each (and a new one): what the target held."""
    assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
    for i in range(12):
        repo.write(f"files/lib/m{i:02}.py", f"print({i} * 2)\n")
    if new:
        repo.write("files/lib/new.py", "print('new')\n")
    repo.commit("change every file")
    return {k: dict(v) for k, v in fake.files.items()}, _state(fake)


@pytest.mark.parametrize("fault", ["status", "lost-answer", "html"])
def test_a_fault_at_the_zip_upload_leaves_the_files_as_they_were(repo: GitRepo, fault: str):
    _files_repo(repo)
    fake = FakeKestra()
    with serve(fake) as url:
        before = _change_every_file(repo, fake, url, new=True)
        if fault == "status":
            fake.inject("POST", "/files$", status=500)
        elif fault == "lost-answer":  # extracted, then the answer is lost: retried (idempotent)
            fake.inject("POST", "/files$", drop=True, after=True)
        else:
            fake.inject("POST", "/files$", status=200, body=b"<html>proxy</html>",
                        headers={"Content-Type": "text/html"})
        result = run_cli("apply", str(repo.path), env=_env(url))
    if fault == "lost-answer":
        assert result.code == 0, result.out + result.err
        assert fake.files[("main", NS)]["/scripts/lib/new.py"] == b"print('new')\n"
        return
    assert result.code == 1 and "the run was rolled back" in result.out, result.out
    assert ({k: dict(v) for k, v in fake.files.items()}, _state(fake)) == before


class _SlowBehindAProxy(FakeKestra):
    """A proxy gives up on the import (504) while Kestra goes on importing, entry by entry."""

    armed = False
    worker: threading.Thread | None = None

    def _import(self, call):
        if not self.armed:
            return super()._import(call)
        self.armed = False
        data = [p for p in _parse_multipart(call.ctype, call.body) if p[0] == "fileUpload"][0][2]
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            sources = [archive.read(info).decode() for info in archive.infolist()]

        def go_on() -> None:
            for source in sources:
                time.sleep(0.1)
                with self._lock:
                    self._save(call.tenant, self._checked(source), source)

        self.worker = threading.Thread(target=go_on)
        self.worker.start()
        time.sleep(0.3)  # a few entries land before the proxy answers
        return Response(504, b"<html>504 Gateway Time-out</html>", {"Content-Type": "text/html"})


def test_an_import_the_server_goes_on_with_after_a_proxy_504_is_reverted_once_done(repo: GitRepo):
    repo.write("kestra-promote.yml", SETTINGS)
    repo.write("flows/k.yml", flow_yaml(NS, "k"))
    repo.commit("first")
    fake = _SlowBehindAProxy(version=IMPORTS)
    with serve(fake) as url:
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
        for i in range(12):
            repo.write(f"flows/c{i:02}.yml", flow_yaml(NS, f"c{i:02}"))
        repo.commit("12 new flows")
        before = _state(fake)
        fake.armed = True
        result = run_cli("apply", str(repo.path), env=_env(url))
        assert fake.worker is not None
        fake.worker.join()
    assert result.code == 1 and "the run was rolled back" in result.out
    assert _state(fake) == before  # nothing the import did after the 504 is left behind


@pytest.mark.parametrize("form", ["text", "json"])
def test_an_import_that_lands_after_the_revert_is_reported_and_not_called_rolled_back(
        repo: GitRepo, monkeypatch: pytest.MonkeyPatch, form: str):
    # Kestra 1.3 goes on with an import whose answer was lost, and stalls half way: the reads
    # that wait for it to settle agree during the stall, the run undoes the 15 flows it sees,
    # then the other 15 land. The run reads every object back: it must not say "rolled back"
    monkeypatch.setattr(bulk, "SETTLE_QUIET", 0.01)
    repo.write("kestra-promote.yml", SETTINGS)
    repo.write("flows/k.yml", flow_yaml(NS, "k"))
    repo.commit("first")
    fake = FakeKestra(version=IMPORTS)
    with serve(fake) as url:
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
        for i in range(30):
            repo.write(f"flows/c{i:02}.yml", flow_yaml(NS, f"c{i:02}"))
        repo.commit("30 new flows")
        _, inventory = _state(fake)
        fake.stall_import(lands=15, resume="DELETE /flows/delete/by-ids$")
        result = run_cli("apply", str(repo.path), "--format", form, env=_env(url))
    live = sorted(fid for (_, fid) in fake.current() if fid.startswith("c"))
    assert live == [f"c{i:02}" for i in range(15, 30)]  # the second half landed last
    assert _state(fake)[1] == inventory  # which records none of them
    assert result.code == 1 and "the run was rolled back" not in result.out + result.err
    if form == "json":
        data = json.loads(result.out)
        assert data["result"]["rolled_back"] is False
        assert data["error"].startswith("Apply failed (create company.team/c00 failed); the run "
                                        "was NOT rolled back")
        assert [(u["id"], u["holds"], u["should_hold"]) for u in data["result"]["uncertain"]] \
            == [(fid, "what this run wrote", "nothing (it did not exist before this run)")
                for fid in live]
        outcomes = {o["id"]: o["status"] for o in data["result"]["outcomes"]}
        assert {fid for fid, status in outcomes.items() if status == "not reverted"} == set(live)
    else:
        assert ("the run was NOT rolled back: read back after the revert, 15 object(s) do not "
                "hold what they held before (company.team/c15, company.team/c16, ") in result.out
        assert ("  not reverted company.team/c29: ") in result.out
        assert result.out.count("it holds what this run wrote, where it should hold nothing "
                                "(it did not exist before this run)") == 15


class _RegexBlindFake(FakeKestra):
    """A server whose namespace REGEX filter finds nothing (a search engine's anchored regex)."""

    def _filtered(self, call):
        if call.query.get("filters[namespace][REGEX]"):
            return []
        return super()._filtered(call)


def test_the_bulk_revert_reads_root_by_root_where_the_regex_filter_finds_nothing(repo: GitRepo):
    repo.write("kestra-promote.yml", SETTINGS)
    repo.write("flows/a.yml", flow_yaml("alpha", "a"))
    repo.write("flows/b.yml", flow_yaml("beta", "b"))
    repo.commit("first")
    fake = _RegexBlindFake(version=IMPORTS)
    with serve(fake) as url:
        assert run_cli("apply", str(repo.path), env=_env(url)).code == 0
        for i in range(12):
            repo.write(f"flows/c{i:02}.yml", flow_yaml("alpha" if i % 2 else "beta", f"c{i:02}"))
        repo.commit("12 new flows")
        before = _state(fake)
        fake.inject("PUT", "/kv/kestra-promote.analytics$", status=500)  # after the flows
        result = run_cli("apply", str(repo.path), env=_env(url))
    assert result.code == 1 and "12 change(s) reverted" in result.out, result.out
    assert _state(fake) == before


def test_a_saved_plan_of_a_bulk_change_applies_exactly_or_not_at_all(repo: GitRepo, tmp_path):
    fake = _deployed(repo)
    saved = tmp_path / "plan.json"
    with serve(fake) as url:
        assert run_cli("plan", str(repo.path), "--out", str(saved), env=_env(url)).code == 0
        with connect(Connection(url, username=FAKE_USER, password=FAKE_PASSWORD)) as client:
            client.update_flow(NS, "u04", flow_yaml(NS, "u04", "edited meanwhile"))
        writes = len(fake.writes())
        stale = run_cli("apply", str(saved), env=_env(url))
        assert stale.code == 1 and "the target changed since the plan was made" in stale.err
        assert len(fake.writes()) == writes  # nothing written, no lease either

        assert run_cli("plan", str(repo.path), "--out", str(saved), env=_env(url)).code == 0
        applied = run_cli("apply", str(saved), env=_env(url))
        assert applied.code == 0, applied.out + applied.err
        assert any(r.path.endswith("/flows/import") for r in fake.writes())
        assert run_cli("apply", str(repo.path), env=_env(url)).out.count("No changes") == 1


def _creates(count: int, namespace: str = NS) -> list[Change]:
    return [Change(FlowKey(namespace, f"c{i:03}"), Action.CREATE, Reason.NEW_IN_GIT,
                   after=flow_yaml(namespace, f"c{i:03}")) for i in range(count)]


def test_settling_needs_several_agreeing_reads_and_stops_on_a_signal(monkeypatch):
    states = iter([{"a": None}, {"a": None}, {"a": "x"}, {"a": "x"}, {"a": "x"}, {"a": "y"}])
    reads: list[int] = []

    def holding(client, changes, prefixes):
        reads.append(1)
        return next(states)

    monkeypatch.setattr(bulk, "holding", holding)
    changes = _creates(1)
    # "not started yet" (two equal reads) is not taken for "done": three in a row must agree
    assert bulk.settle(None, changes, (NS,), sleep=lambda s: None)  # type: ignore[arg-type]
    assert len(reads) == 5
    reads.clear()
    states = iter([{"a": None}] * 10)
    assert not bulk.settle(None, changes, (NS,), sleep=lambda s: None,  # type: ignore[arg-type]
                           stop=lambda: True)
    assert len(reads) == 1  # a signal: stop waiting at once, so the revert starts
    clock = iter(range(0, 10_000, 100))
    states = iter([{"a": str(n)} for n in range(100)])  # never settles
    assert not bulk.settle(None, changes, (NS,), sleep=lambda s: None,  # type: ignore[arg-type]
                           clock=lambda: next(clock))


def test_settling_reads_the_runs_roots_in_one_request_whatever_the_namespaces(fake: FakeKestra):
    changes = [c for i in range(150) for c in _creates(1, f"company.team{i:03}")]
    with serve(fake) as url, connect(Connection(url, username=FAKE_USER, password=FAKE_PASSWORD,
                                                retries=0)) as client:
        held = bulk.holding(client, changes, ("company",))
    assert set(held.values()) == {None} and len(held) == 150
    assert len(fake.requests) == 1 and len(fake.requests[0].path) < 200


def test_a_damaged_export_while_settling_still_reverts_and_says_it_is_unsure(repo: GitRepo):
    _files_repo(repo)
    fake = FakeKestra()
    with serve(fake) as url:
        before = _change_every_file(repo, fake, url)
        # every upload is carried out but its answer lost, the retries' too: no answer at all
        fake.inject("POST", "/files$", drop=True, after=True, times=10)
        good = bulk.archive([("a.py", b"print(1)\n" * 50)])
        damaged = good.replace(b"print", b"PRINT", 1) if b"print" in good else good[:40] + \
            bytes([good[40] ^ 0xFF]) + good[41:]
        # the plan's read, the read right before the writes, then the one while settling
        fake.inject("GET", "/files/export$", nth=3, status=200, body=damaged,
                    headers={"Content-Type": "application/octet-stream"})
        result = run_cli("apply", str(repo.path), env=_env(url))
    assert result.code == 1 and "Traceback" not in result.err, result.err
    assert "check the target with `plan`" in result.out, result.out
    assert ({k: dict(v) for k, v in fake.files.items()}, _state(fake)) == before


def test_the_version_is_asked_once_even_when_the_question_fails(fake: FakeKestra):
    fake.inject("GET", "/api/v1/configs$", status=500, times=10)
    with serve(fake) as url, connect(Connection(url, username=FAKE_USER, password=FAKE_PASSWORD,
                                                retries=0)) as client:
        assert not bulk.flow_imports_safe(client) and not bulk.flow_imports_safe(client)
    assert len([r for r in fake.requests if r.path.endswith("/configs")]) == 1

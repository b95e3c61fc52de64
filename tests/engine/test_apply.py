"""Applying a plan: validation first, writes in order, all or nothing, outcomes as data."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, GitRepo, Target, flow_yaml, run_cli
from fake_kestra import FakeKestra, serve
from kestra_promote.target import bulk
from kestra_promote.engine.apply import apply_plan
from kestra_promote.target.transport import DEFAULT_MAX_BODY
from kestra_promote.config import Config
from kestra_promote.flows.desired import prepare
from kestra_promote.errors import KestraError, StalePlan, TargetRejected
from kestra_promote.target.live import in_namespace_tree, namespace_roots, read_live_state
from kestra_promote.models import Status
from kestra_promote.engine.plan import plan
from kestra_promote.git.source import read_source

pytestmark = pytest.mark.fake_only
SETTINGS = """name: analytics
prune: true
namespace_files:
  - {source: files, namespace: company.team, target: /scripts}
"""


def _repo_with(repo: GitRepo, count: int, namespace: str = "company.team") -> None:
    for i in range(count):
        repo.write(f"f{i:02}.yml", flow_yaml(namespace, f"f{i:02}"))
    repo.commit()


def _plan_for(folder: Path, target: Target):
    source = read_source(folder)
    desired = prepare(source)
    with target.client() as client:
        live = read_live_state(client, {k.namespace for k in desired.flows},
                               {k.namespace for k in desired.files}, state_namespace="system",
                               name=source.config.name)
    return plan(desired, live, source.config, commit=source.commit)


def snapshot(target: Target) -> dict:
    """Every flow, every namespace file and the inventory, read through the API."""
    with target.client() as client:
        archive = zipfile.ZipFile(io.BytesIO(client.export_namespace_files("company.team")))
        files = {name: archive.read(name) for name in archive.namelist()}
        inventory = client.kv_get("system", "kestra-promote.analytics")
    return {"flows": target.sources("company"), "files": files, "inventory": inventory}


def _twenty_object_change(repo: GitRepo) -> None:
    """Commit 1 deployed; commit 2 mixes 20 writes of every kind (plus the inventory)."""
    repo.write("kestra-promote.yml", SETTINGS)
    for i in range(5):
        repo.write(f"flows/u{i}.yml", flow_yaml("company.team", f"u{i}"))
    for i in range(4):
        repo.write(f"flows/d{i}.yml", flow_yaml("company.team", f"d{i}"))
    for name in ("upd1.py", "upd2.py", "del.py"):
        repo.write(f"files/{name}", f"print('{name} v1')\n")
    repo.commit("first")


def _second_commit(repo: GitRepo) -> None:
    for i in range(5):
        repo.write(f"flows/u{i}.yml", flow_yaml("company.team", f"u{i}", "updated"))
        repo.write(f"flows/c{i}.yml", flow_yaml("company.team", f"c{i}"))
    for i in range(4):
        (repo.path / f"flows/d{i}.yml").unlink()
    for name in ("upd1.py", "upd2.py"):
        repo.write(f"files/{name}", f"print('{name} v2')\n")
    (repo.path / "files/del.py").unlink()
    for name in ("new1.py", "new2.py", "sub/new3.py"):
        repo.write(f"files/{name}", f"print('{name}')\n")
    repo.commit("second")


@pytest.mark.parametrize("version, parallel", [("2.0.3", "1"), ("2.0.3", "8"), ("1.3.4", "1")])
@pytest.mark.parametrize("fault", ["status", "lost-answer", "status-then-revert-fault"])
def test_a_fault_at_every_write_position_leaves_the_target_as_it_was(repo: GitRepo, tmp_path, fault,
                                                                     version, parallel):
    """1.3 imports flows in bulk; 2.0 writes them one request each, several at once unless
    ``--parallel 1``: then a fault stops the writes, those in flight finish, and all are undone."""
    _twenty_object_change(repo)
    fake = FakeKestra(version=version)
    with serve(fake) as url:
        target = Target(url, "admin@kestra.io", "Admin1234!", None, fake)
        assert run_cli("apply", str(repo.path), env=target.env).code == 0
        _second_commit(repo)
        counted = run_cli("plan", str(repo.path), "--format", "json", env=target.env)
        assert '"create": 8' in counted.out and '"update": 7' in counted.out
        assert '"delete": 5' in counted.out
        # the write requests: files one by one, runs of flows in bulk requests, the inventory
        imports = version.startswith("1.")
        steps = bulk.steps(_plan_for(repo.path, target).pending, DEFAULT_MAX_BODY, imports=imports)
        assert sum(map(len, steps)) == 20 and (len(steps) < 20) == imports
        baseline = fake
    positions = len(steps) + 1  # then the inventory (the lease is write number 1)
    for position in range(1, positions + 1):
        fresh = FakeKestra(version=version)
        fresh.flows = {k: list(v) for k, v in baseline.flows.items()}
        fresh.files = {k: dict(v) for k, v in baseline.files.items()}
        fresh.kv = {k: {kk: dict(vv) for kk, vv in v.items()} for k, v in baseline.kv.items()}
        with serve(fresh) as url:
            target = Target(url, "admin@kestra.io", "Admin1234!", None, fresh)
            before = snapshot(target)
            if fault == "status":
                fresh.inject("WRITE", nth=position + 1, status=500)
            elif fault == "status-then-revert-fault":  # the first undo fails too, then is retried
                fresh.inject("WRITE", nth=position + 1, status=500, times=2)
            else:  # the server does the write, but the answer never arrives
                fresh.inject("WRITE", nth=position + 1, drop=True, after=True)
            result = run_cli("apply", str(repo.path), "--parallel", parallel, env=target.env)
            after = snapshot(target)
            if result.code == 0:
                # only an idempotent write whose answer was lost: retried, and it succeeded
                assert fault == "lost-answer", result.out
                assert after != before and "Apply complete: 8 created, 7 updated, 5 deleted" in result.out
                continue
            assert after == before, f"position {position}: {result.out}"
            assert "the run was rolled back" in result.out, result.out
            reverted = result.out.count("  reverted ")
            written_before = sum(map(len, steps[:position - 1]))
            if parallel == "1":
                assert reverted == written_before, (position, result.out)
            else:
                # which write the fault hits depends on the order the writes of a wave arrive
                # in; those in flight with it, or sent before its answer came, finished and
                # were undone too: the target is as before, whatever that order was
                assert reverted >= 1 or position == 1, result.out


def _apply_in_a_process(repo: GitRepo, url: str, *options: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KESTRA_")}
    env.update(KESTRA_URL=url, KESTRA_USERNAME="admin@kestra.io", KESTRA_PASSWORD="Admin1234!",
               PYTHONPATH=str(ROOT / "scripts"))
    return subprocess.Popen([sys.executable, "-m", "kestra_promote", "apply", str(repo.path),
                             *options],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _interrupt_at(repo: GitRepo, signum: int, moment: str, *options: str
                  ) -> tuple[subprocess.Popen, str, str, int, dict, dict]:
    """Apply the 20-object change in a process and send it ``signum`` while the write request
    of ``moment`` is in flight (the fake delays it): (process, stdout, stderr, the changes
    written when the signal came, the target before, the target after)."""
    _twenty_object_change(repo)
    fake = FakeKestra(version="1.3.4")  # where flows are imported in bulk
    with serve(fake) as url:
        target = Target(url, "admin@kestra.io", "Admin1234!", None, fake)
        assert run_cli("apply", str(repo.path), env=target.env).code == 0
        _second_commit(repo)
        steps = bulk.steps(_plan_for(repo.path, target).pending, DEFAULT_MAX_BODY)
        # the write requests, counted from 1: the changes' steps, then the inventory
        position = {"first": 1, "bulk": 1 + next(i for i, s in enumerate(steps) if len(s) > 1),
                    "last": len(steps), "inventory": len(steps) + 1}[moment]
        written = sum(map(len, steps[:position]))  # the write in flight finishes
        before = snapshot(target)
        seen = len(fake.writes(lease=True))
        fake.inject("WRITE", nth=position + 1, delay=1.5)  # counted from here: the lease is 1
        process = _apply_in_a_process(repo, url, *options)
        deadline = time.monotonic() + 30
        while len(fake.writes(lease=True)) < seen + position + 1:
            assert time.monotonic() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.01)
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
        return process, out, err, written, before, snapshot(target)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
@pytest.mark.parametrize("moment", ["first", "bulk", "last", "inventory"])
def test_a_signal_mid_apply_reverts_then_exits(repo: GitRepo, signum: int, moment: str):
    # Ctrl-C in a terminal, a cancelled CI job, Kestra killing the task: the write in flight and
    # everything before it are undone, then the run exits 130 (SIGINT) or 143 (SIGTERM), saying
    # what stopped it, where, and that each change not written was left for that reason
    process, out, err, written, before, after = _interrupt_at(repo, signum, moment)
    name = signal.Signals(signum).name
    assert process.returncode == (130 if signum == signal.SIGINT else 143), out + err
    assert f"Interrupted ({name}): every change was reverted" in err
    during = " (while recording the inventory)" if moment == "inventory" else ""
    assert (f"Apply failed (interrupted by {name} after {written} of 20 writes{during}); the run "
            f"was rolled back: {written} change(s) reverted, {20 - written} not attempted.") in out
    assert out.count(": not attempted: interrupted\n") == 20 - written, out
    assert "an earlier write failed" not in out and "writing the inventory failed" not in out
    assert after == before, out


def test_an_interrupted_apply_says_so_in_its_json_report(repo: GitRepo):
    process, out, err, written, before, after = _interrupt_at(
        repo, signal.SIGTERM, "bulk", "--format", "json")
    assert process.returncode == 143, out + err
    data = json.loads(out)
    assert data["error"] == (f"Apply failed (interrupted by SIGTERM after {written} of 20 "
                             f"writes); the run was rolled back: {written} change(s) reverted, "
                             f"{20 - written} not attempted.")
    assert data["result"]["rolled_back"] is True and data["result"]["uncertain"] == []
    outcomes = data["result"]["outcomes"]
    assert [o["status"] for o in outcomes] == ["reverted"] * written + ["skipped"] * (20 - written)
    assert {o["message"] for o in outcomes[written:]} == {"not attempted: interrupted"}
    assert after == before


def test_a_failed_write_reverts_what_was_done_and_reports_each_outcome(repo: GitRepo,
                                                                       target: Target):
    fake = target.fake
    assert fake is not None
    _repo_with(repo, 4)
    fake.inject("POST", r"/api/v1/main/flows$", nth=3, status=500)

    result = run_cli("apply", str(repo.path), "--parallel", "1", env=target.env)

    assert result.code == 1
    assert "  reverted company.team/f00: created, then reverted\n" in result.out
    assert "  reverted company.team/f01: created, then reverted\n" in result.out
    assert "  failed company.team/f02: POST /api/v1/main/flows failed with HTTP 500" in result.out
    assert "  skipped company.team/f03: not attempted: an earlier write failed" in result.out
    assert ("Apply failed (create company.team/f02 failed); the run was rolled back: "
            "2 change(s) reverted, 1 not attempted.") in result.out
    assert result.err.splitlines() == ["[revert] reverted company.team/f01",
                                       "[revert] reverted company.team/f00"]
    assert fake.current() == {} and fake.kv == {}


def test_a_revert_that_fails_is_reported_loudly(repo: GitRepo, target: Target):
    fake = target.fake
    assert fake is not None
    _repo_with(repo, 3)
    fake.inject("POST", r"/api/v1/main/flows$", nth=3, status=500)
    fake.inject("DELETE", r"/flows/company.team/f01$", status=500, times=99)
    result = run_cli("apply", str(repo.path), "--parallel", "1", env=target.env)
    assert result.code == 1
    assert ("  not reverted company.team/f01: created, but not reverted: undoing it failed: "
            "DELETE") in result.out
    assert ("the run was NOT rolled back: read back after the revert, 1 object(s) do not hold "
            "what they held before (company.team/f01): check by hand") in result.out
    assert list(fake.current()) == [("company.team", "f01")]
    # the revert was retried before giving up: it may have been a passing failure
    deletes = [r for r in fake.requests if r.method == "DELETE" and r.path.endswith("/f01")]
    assert len(deletes) == 4
    # what a person needs to restore it: f01 did not exist before the run
    assert ("  What company.team/f01 held before this run (restore it by hand):\n"
            "    | (it did not exist before this run: delete it to restore the target)\n"
            ) in result.out


def test_a_revert_the_target_cannot_be_read_back_after_is_not_called_rolled_back(
        repo: GitRepo, target: Target):
    fake = target.fake
    assert fake is not None
    _repo_with(repo, 3)
    fake.inject("POST", r"/api/v1/main/flows$", nth=3, status=500)
    # the plan's read, the read right before the writes, then the read back after the revert
    fake.inject("GET", r"/flows/export/by-query$", nth=3, status=500, times=99)
    result = run_cli("apply", str(repo.path), "--format", "json", env=target.env)
    assert result.code == 1 and fake.current() == {}  # undone, but that could not be seen
    data = json.loads(result.out)
    assert data["result"]["rolled_back"] is False
    assert "the run was NOT rolled back: reading the target back after the revert failed: 3 " \
        "object(s) may not hold what they held before" in data["error"]
    assert [(u["id"], u["holds"].split(" (")[0]) for u in data["result"]["uncertain"]] == [
        ("f00", "unknown"), ("f01", "unknown"), ("f02", "unknown")]


def test_what_could_not_be_reverted_is_in_the_report_in_full(repo: GitRepo, target: Target):
    fake = target.fake
    assert fake is not None
    _repo_with(repo, 2)
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    for name in ("f00", "f01"):
        repo.write(f"{name}.yml", flow_yaml("company.team", name, "version 2"))
    repo.commit("v2")
    fake.inject("PUT", r"/flows/company.team/f01$", status=500, times=99)  # update and undo fail
    fake.inject("PUT", r"/flows/company.team/f00$", nth=2, status=500, times=99)  # its undo too
    result = run_cli("apply", str(repo.path), "--format", "json", env=target.env)
    assert result.code == 1
    outcomes = {o["id"]: o for o in json.loads(result.out)["result"]["outcomes"]}
    assert outcomes["f00"]["status"] == "not reverted"
    assert outcomes["f00"]["previous"] == flow_yaml("company.team", "f00")
    assert fake.current()[("company.team", "f00")] == flow_yaml("company.team", "f00", "version 2")


def test_a_flow_created_by_someone_else_since_the_plan_is_not_overwritten(repo: GitRepo,
                                                                         target: Target):
    fake = target.fake
    assert fake is not None
    _repo_with(repo, 1)
    the_plan = _plan_for(repo.path, target)
    fake.seed_flow(flow_yaml("company.team", "f00", "made in the UI"))
    writes = len(fake.writes())
    with target.client() as client, pytest.raises(StalePlan) as caught:
        apply_plan(client, the_plan)
    assert str(caught.value) == ("the target changed since the plan was made (flow "
                                 "company.team/f00); nothing was written: run plan again")
    assert len(fake.writes()) == writes
    assert fake.current()[("company.team", "f00")].endswith("message: made in the UI\n")


def test_validation_failure_raises_before_any_write(repo: GitRepo, target: Target):
    fake = target.fake
    assert fake is not None
    repo.write("a.yml", flow_yaml("company", "a"))
    repo.write("b.yml", flow_yaml("company", "b", extra="taskDefaults: []\n"))  # 1.3 only
    repo.commit()
    with target.client() as client:
        with pytest.raises(TargetRejected) as caught:
            apply_plan(client, _plan_for(repo.path, target))
    assert [str(p) for p in caught.value.problems] == [
        'b.yml: company/b: taskDefaults: Unrecognized field "taskDefaults"']
    assert fake.writes() == []


def test_long_applies_show_progress_on_stderr(repo: GitRepo, target: Target):
    _repo_with(repo, 12)
    result = run_cli("apply", str(repo.path), env=target.env)
    assert result.code == 0
    # flows with no order between them are written several at once: each once, numbered by
    # its place in the plan
    lines = result.err.splitlines()
    assert sorted(lines) == sorted(f"[{n + 1}/12] created company.team/f{n:02}"
                                   for n in range(12))
    assert "[" not in result.out


def test_live_state_reads_one_export_whatever_the_namespace_roots(target: Target,
                                                                   fake: FakeKestra):
    for namespace in ("company", "company.team", "companyx", "other.deep", "xother"):
        fake.seed_flow(flow_yaml(namespace, "x"))
    with target.client() as client:
        live = read_live_state(client, ["company.team.a", "company.b", "other.deep"])
        single = read_live_state(client, ["company.b"])
    assert sorted((k.namespace, k.id) for k in live.flows) == [
        ("company", "x"), ("company.team", "x"), ("other.deep", "x")]
    assert sorted(k.namespace for k in single.flows) == ["company", "company.team"]
    exports = [r.query for r in fake.requests if r.path.endswith("/export/by-query")]
    assert exports == [{"filters[namespace][REGEX]": ["^(company|other)([.].*)?$"]},
                       {"filters[namespace][PREFIX]": ["company"]}]


class _AnchoredRegex(FakeKestra):
    """A server whose REGEX filter matches whole values and reads '^' and '$' as plain
    characters, as search-engine regexes do: the promotion's pattern then finds nothing."""

    def _filtered(self, call):  # type: ignore[no-untyped-def]
        return [] if call.query.get("filters[namespace][REGEX]") else super()._filtered(call)


@pytest.mark.fake_only
def test_a_server_whose_regex_filter_finds_nothing_is_read_root_by_root(repo: GitRepo):
    repo.write("a.yml", flow_yaml("company", "a"))
    repo.write("b.yml", flow_yaml("other", "b"))
    repo.commit()
    server = _AnchoredRegex()
    with serve(server) as url:
        env = {"KESTRA_URL": url, "KESTRA_USERNAME": server.username,
               "KESTRA_PASSWORD": server.password}
        assert run_cli("apply", str(repo.path), env=env).code == 0
        again = run_cli("apply", str(repo.path), env=env)  # the inventory says they are there
        assert again.code == 0, again.err
        assert "No changes." in again.out
        exports = [r.query for r in server.requests if r.path.endswith("/export/by-query")]
        assert {"filters[namespace][PREFIX]": ["other"]} in exports


def test_namespace_helpers():
    assert namespace_roots(["a.b", "a.c.d", "b"]) == ("a", "b")
    assert in_namespace_tree("a.b", "a") and in_namespace_tree("a", "a")
    assert not in_namespace_tree("ab", "a")
    assert Config().state_namespace == "system"


@pytest.mark.parametrize("parallel", [1, 8])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_signal_at_any_moment_of_the_write_loop_is_obeyed_only_after_the_revert(
        repo: GitRepo, target: Target, signum: int, parallel: int):
    # even while a progress line is printed (a blocked stderr), not only during a request
    fake = target.fake
    assert fake is not None
    _repo_with(repo, 5)
    the_plan = _plan_for(repo.path, target)
    seen: list[int] = []
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    def progress(outcome, number: int, total: int) -> None:
        seen.append(number)
        if number == 3:
            os.kill(os.getpid(), signum)  # arrives in the middle of showing progress

    with target.client() as client:
        result = apply_plan(client, the_plan, on_progress=progress, parallel=parallel)
    assert result.interrupted == signal.Signals(signum).name
    statuses = [o.status for o in result.outcomes]
    if parallel == 1:
        assert statuses == [Status.REVERTED] * 3 + [Status.SKIPPED] * 2
    else:  # the writes in flight when the signal came finished, and were undone with the rest
        assert statuses.count(Status.REVERTED) >= 3 and set(statuses) <= {Status.REVERTED,
                                                                          Status.SKIPPED}
    assert fake.current() == {}
    # the handlers are the ones before the run (a test worker may start with SIGINT ignored)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


@pytest.mark.parametrize("parallel", [1, 8])
def test_a_lease_that_cannot_be_kept_stops_the_run_and_says_why(repo: GitRepo, target: Target,
                                                                parallel: int):
    fake = target.fake
    assert fake is not None
    _repo_with(repo, 3)
    the_plan = _plan_for(repo.path, target)

    calls = []

    def heartbeat() -> None:  # the lease is checked before the first write, and after each
        calls.append(1)
        if len(calls) > 1:
            raise KestraError("the lease was taken over")

    with target.client() as client:
        result = apply_plan(client, the_plan, heartbeat=heartbeat, parallel=parallel)
    assert result.error == "keeping the lock failed" and result.rolled_back
    if parallel == 1:
        assert [(o.status, o.message) for o in result.outcomes[1:]] == [
            (Status.SKIPPED, "not attempted: keeping the lock failed")] * 2
    else:  # the three flows went out at once; the lease was checked after them
        assert [o.status for o in result.outcomes] == [Status.REVERTED] * 3
    assert fake.current() == {}


def test_a_damaged_export_is_a_clean_error(repo: GitRepo, target: Target):
    fake = target.fake
    assert fake is not None
    _repo_with(repo, 1)
    fake.seed_flow(flow_yaml("company.team", "other"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("company.team.other.yml", flow_yaml("company.team", "other"))
    damaged = bytearray(buffer.getvalue())
    damaged[damaged.index(b"id: other") + 4] ^= 0xFF  # the content no longer matches its CRC
    fake.inject("GET", r"/flows/export/by-query$", status=200, body=bytes(damaged),
                headers={"Content-Type": "application/octet-stream"})
    result = run_cli("plan", str(repo.path), env=target.env)
    assert result.code == 1 and "is a damaged ZIP archive" in result.err
    assert "Traceback" not in result.err


def test_a_flow_id_that_looks_like_a_number_is_read_back_as_written(repo: GitRepo,
                                                                     target: Target):
    """Kestra reads id and namespace as text: `1e3` stays `1e3`, not the number 1000.0."""
    for flow_id in ("1e3", "0x10", "010"):
        repo.write(f"{flow_id}.yml", flow_yaml("company", flow_id))
    repo.commit()
    assert run_cli("apply", str(repo.path), env=target.env).code == 0
    again = run_cli("plan", str(repo.path), env=target.env)
    assert again.code == 0 and "No changes." in again.out, again.out


@pytest.mark.parametrize("parallel", [1, 8])
def test_an_unexpected_error_in_a_write_still_reverts_what_was_written(
        repo: GitRepo, target: Target, parallel: int, monkeypatch):
    """A write that fails with something other than the target's answer (a bug, a library
    error) is a failure like any other: the writes before it (and in flight) are undone and the
    report names the error, rather than a traceback leaving the target half applied."""
    fake = target.fake
    assert fake is not None
    _repo_with(repo, 5)
    the_plan = _plan_for(repo.path, target)
    with target.client() as client:
        real, calls = client.create_flow, []

        def create_flow(source: str):
            calls.append(source)
            if len(calls) == 3:
                raise RuntimeError("an unexpected error")
            return real(source)

        monkeypatch.setattr(client, "create_flow", create_flow)
        result = apply_plan(client, the_plan, parallel=parallel)
    assert not result.ok and result.rolled_back
    failed = [o for o in result.outcomes if o.status is Status.FAILED]
    assert len(failed) == 1 and "RuntimeError: an unexpected error" in failed[0].message
    assert result.error.endswith("failed")
    assert Status.REVERTED in {o.status for o in result.outcomes}
    assert fake.current() == {}


@pytest.mark.parametrize("parallel", [1, 8])
def test_a_lease_check_that_breaks_unexpectedly_still_reverts(repo: GitRepo, target: Target,
                                                              parallel: int):
    """The lease check between writes failing with something other than the target's answer
    (a lease it cannot read, say) stops the run like a lost lease: what was written is undone."""
    fake = target.fake
    assert fake is not None
    _repo_with(repo, 3)
    the_plan = _plan_for(repo.path, target)
    calls = []

    def heartbeat() -> None:
        calls.append(1)
        if len(calls) > 1:
            raise OverflowError("date value out of range")

    with target.client() as client:
        result = apply_plan(client, the_plan, heartbeat=heartbeat, parallel=parallel)
    assert result.error == "keeping the lock failed" and result.rolled_back
    assert fake.current() == {}


@pytest.mark.parametrize("parallel", [1, 8])
def test_progress_that_cannot_be_shown_never_leaves_the_target_half_applied(
        repo: GitRepo, target: Target, parallel: int):
    """Progress lines going to a closed pipe (``apply ... 2>&1 | head``) fail to print; the
    apply is not stopped half way by it: every write is made and recorded."""
    fake = target.fake
    assert fake is not None
    _repo_with(repo, 5)
    the_plan = _plan_for(repo.path, target)

    def progress(outcome, number: int, total: int) -> None:
        if number >= 2:
            raise BrokenPipeError(32, "Broken pipe")

    with target.client() as client:
        result = apply_plan(client, the_plan, on_progress=progress, parallel=parallel)
    assert result.ok and result.inventory is Status.APPLIED, result
    assert len(fake.current()) == 5

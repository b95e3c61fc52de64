"""Starting flows and reading their executions over HTTP, against Kestra 1.3 and 2.0 fakes."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
from conftest import FAKE_PASSWORD, FAKE_USER, flow_yaml
from fake_kestra import FakeKestra, serve
from kestra_promote import errors
from kestra_promote.target.client import Connection, KestraClient, connect

VERSIONS = ["1.3.19", "2.0.3"]
CHECK = flow_yaml("company", "check", extra=(
    "inputs:\n  - id: release\n    type: STRING\n  - id: rows\n    type: INT\n"
    "    required: false\n"))
NOW = datetime.now(timezone.utc)


@pytest.fixture(params=VERSIONS)
def kestra(request: pytest.FixtureRequest) -> Iterator[tuple[FakeKestra, KestraClient]]:
    fake = FakeKestra(version=request.param)
    fake.seed_flow(CHECK)
    with serve(fake) as url, connect(Connection(url, username=FAKE_USER, password=FAKE_PASSWORD),
                                     sleep=time.sleep) as client:
        yield fake, client


def test_a_triggered_execution_is_waited_for_until_it_succeeds(kestra):
    fake, client = kestra
    fake.runs.outputs[("company", "check")] = {"verdict": "ok"}
    started = client.trigger_execution("company", "check", {"release": "v2", "rows": 12},
                                       labels={"promotion": "abc123"})
    assert started["state"]["current"] == "CREATED"
    done = client.wait_for_execution(started["id"], timeout=5, poll=0.02)
    assert done["state"]["current"] == "SUCCESS" and done["outputs"] == {"verdict": "ok"}
    assert done["inputs"] == {"release": "v2", "rows": 12}
    assert {"key": "promotion", "value": "abc123"} in done["labels"]


def test_the_outcome_the_flow_reached_is_returned_not_raised(kestra):
    fake, client = kestra
    fake.runs.outcome[("company", "check")] = "FAILED"
    started = client.trigger_execution("company", "check", {"release": "v2"})
    assert client.wait_for_execution(started["id"], timeout=5, poll=0.02)["state"]["current"] \
        == "FAILED"


def test_a_missing_required_input_is_refused_by_the_server(kestra):
    fake, client = kestra
    with pytest.raises(errors.Unprocessable) as caught:
        client.trigger_execution("company", "check", {"rows": 1})
    assert "Missing required input:release" in str(caught.value)
    assert fake.executions == []


def test_an_unknown_flow_is_not_found_and_a_disabled_one_a_conflict(kestra):
    fake, client = kestra
    with pytest.raises(errors.NotFound, match="Requested Flow is not found"):
        client.trigger_execution("company", "nope")
    fake.seed_flow(CHECK + "disabled: true\n")
    with pytest.raises(errors.Conflict, match="Requested Flow is disabled"):
        client.trigger_execution("company", "check", {"release": "v2"})


def test_a_trigger_whose_answer_is_lost_is_not_sent_again(kestra):
    fake, client = kestra
    fake.inject("POST", "/executions/", drop=True, after=True)
    with pytest.raises(errors.TransportError, match="not retried: the server may have processed"):
        client.trigger_execution("company", "check", {"release": "v2"}, labels={"run": "r1"})
    assert len(fake.executions) == 1  # created once, and found by a search
    assert [e["id"] for e in client.search_executions(namespace="company", flow_id="check")] \
        == [fake.executions[0]["id"]]


def test_a_label_kestra_would_split_differently_is_refused_before_sending(kestra):
    fake, client = kestra
    with pytest.raises(errors.SettingsError, match="without ':'"):
        client.trigger_execution("company", "check", {"release": "v2"}, labels={"a:b": "c"})
    assert fake.requests == []


def test_waiting_too_long_is_a_clear_timeout(kestra):
    fake, client = kestra
    fake.runs.delay = 3600
    started = client.trigger_execution("company", "check", {"release": "v2"})
    with pytest.raises(errors.ExecutionTimeout) as caught:
        client.wait_for_execution(started["id"], timeout=0.2, poll=0.05)
    assert str(caught.value) == (f"execution {started['id']} of company.check is still RUNNING "
                                 "after 0.2 s; it goes on running in Kestra (kill it there, or "
                                 "wait longer)")
    assert caught.value.execution is not None
    client.kill_execution(started["id"])
    assert client.get_execution(started["id"])["state"]["current"] == "KILLED"


def test_an_execution_not_stored_yet_is_waited_for(kestra):
    # 1.3 answers the trigger before the executor stored the execution: a first read is a 404
    fake, client = kestra
    started = client.trigger_execution("company", "check", {"release": "v2"})
    fake.inject("GET", "/executions/", status=404)
    assert client.wait_for_execution(started["id"], timeout=5, poll=0.02)["state"]["current"] \
        == "SUCCESS"
    with pytest.raises(errors.ExecutionTimeout, match="execution nope was never found after"):
        client.wait_for_execution("nope", timeout=0.1, poll=0.05)
    with pytest.raises(errors.NotFound):
        client.get_execution("nope")


def test_search_by_state_and_start(kestra):
    fake, client = kestra
    failed = fake.runs.add("company", "check", "FAILED", started=NOW - timedelta(hours=2))
    ok = fake.runs.add("company", "check", started=NOW - timedelta(hours=1))
    fake.runs.add("company", "check", "FAILED", started=NOW - timedelta(days=3))
    fake.runs.add("company", "other", "FAILED", started=NOW - timedelta(hours=1))
    fake.runs.add("company.team", "check", "FAILED", started=NOW - timedelta(hours=1))
    since = NOW - timedelta(days=1)
    found = client.search_executions(namespace="company", flow_id="check",
                                     states=["FAILED", "KILLED"], since=since)
    assert [e["id"] for e in found] == [failed["id"]]
    assert [e["id"] for e in client.search_executions(namespace="company", flow_id="check",
                                                      since=since)] == [failed["id"], ok["id"]]
    with pytest.raises(errors.SettingsError, match="time zone"):
        client.search_executions(since=datetime.now())


def test_search_without_a_start_sees_8_days_back_only(kestra):
    fake, client = kestra
    fake.runs.add("company", "check", started=NOW - timedelta(days=9))
    recent = fake.runs.add("company", "check", started=NOW - timedelta(days=7))
    assert [e["id"] for e in client.search_executions(flow_id="check")] == [recent["id"]]
    assert len(client.search_executions(since=NOW - timedelta(days=30))) == 2


def test_search_reads_every_page(kestra):
    fake, client = kestra
    for minutes in range(230):
        fake.runs.add("company", "check", started=NOW - timedelta(minutes=minutes))
    found = client.search_executions(namespace="company")
    assert len(found) == 230 and len({e["id"] for e in found}) == 230
    starts = [e["state"]["startDate"] for e in found]
    assert starts == sorted(starts)  # oldest first
    pages = [r.query["page"] for r in fake.requests if r.path.endswith("/executions/search")]
    assert pages == [["1"], ["2"], ["3"]]

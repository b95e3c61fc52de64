"""The fake server's executions API answers like ExecutionController of Kestra 1.3 and 2.0."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from fake_kestra import FakeKestra
from test_fake_kestra import (FLOW, HOOK_PATH, VERSIONS, assert_json_error, call, hook,
                              multipart)

PATH = "/api/v1/main/executions/company.team/etl"
INPUTS = FLOW + ("inputs:\n  - id: count\n    type: INT\n  - id: greeting\n    type: STRING\n"
                 "    defaults: hello\n  - id: note\n    type: STRING\n    required: false\n"
                 "labels:\n  team: data\n")
NOW = datetime.now(timezone.utc)


def search(fake: FakeKestra, query: str = "") -> dict:
    response = call(fake, "GET", "/api/v1/main/executions/search?" + query)
    assert response.status == 200, response.json
    return response.json


def seeded(version: str, source: str = INPUTS) -> FakeKestra:
    fake = FakeKestra(version=version)
    fake.seed_flow(source)
    return fake


def trigger(fake: FakeKestra, query: str = "", **inputs: str):
    body, headers = multipart(*[(k, "", v.encode()) for k, v in inputs.items()]) if inputs \
        else (b"", {"Content-Type": "multipart/form-data"})
    return call(fake, "POST", PATH + query, body, **headers)


@pytest.mark.parametrize("version", VERSIONS)
def test_an_unknown_or_disabled_flow_cannot_run(version: str):
    # FlowService.getFlowIfExecutableOrThrow (both versions)
    fake = FakeKestra(version=version)
    assert_json_error(trigger(fake), 404, "Not Found: Requested Flow is not found.")
    fake.seed_flow(FLOW + "disabled: true\n")
    assert_json_error(trigger(fake), 409, "Illegal state: Requested Flow is disabled.")
    assert fake.executions == []


@pytest.mark.parametrize("version", VERSIONS)
def test_a_new_execution_has_typed_declared_inputs_and_labels(version: str):
    fake = seeded(version)
    answer = trigger(fake, "?labels=run:check", count="3", stray="x").json
    assert answer["state"]["current"] == "CREATED" and answer["flowRevision"] == 1
    assert answer["inputs"] == {"count": 3, "greeting": "hello", "note": None}  # stray: dropped
    assert answer["url"] == f"http://localhost:8080/ui/main/executions/company.team/etl/{answer['id']}"
    assert answer["labels"] == [
        {"key": "team", "value": "data"}, {"key": "run", "value": "check"},
        {"key": "system.from", "value": "api"},
        {"key": "system.correlationId", "value": answer["id"]}]
    assert answer["originalId"] == answer["id"] and answer["metadata"]["attemptNumber"] == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_inputs_are_checked_when_the_execution_is_created(version: str):
    fake = seeded(version)
    assert_json_error(trigger(fake), 422, "Invalid entity: Missing required input:count")
    assert_json_error(trigger(fake, count="many"), 422,
                      'Invalid entity: Invalid value for input `count`. Cause: For input string: '
                      '"many"')
    assert_json_error(trigger(fake, "?labels=system.x:1", count="1"), 422,
                      "Illegal argument: System labels can only be set by Kestra itself, "
                      "offending label: system.x=1")
    assert fake.executions == []


@pytest.mark.parametrize(("version", "kept"), [("1.3.19", ""), ("2.0.3", None)])
def test_an_empty_optional_value_is_no_value_on_2_0(version: str, kept):
    # FlowInputOutput (2.0): "" counts as absent, except for text types; 1.3 parses "" as given
    fake = seeded(version, FLOW + "inputs:\n  - id: when\n    type: DURATION\n"
                                  "    required: false\n")
    response = trigger(fake, when="")
    if kept is None:
        assert response.json["inputs"] == {"when": None}
    else:  # Duration.parse fails: not an IllegalArgumentException, so no input id
        assert_json_error(response, 422, "Invalid entity:  errors:\n```\nText cannot be parsed "
                                         "to a Duration\n```")


@pytest.mark.parametrize("version", VERSIONS)
def test_an_execution_runs_to_the_outcome_the_test_chose(version: str):
    fake = seeded(version)
    fake.runs.outcome[("company.team", "etl")] = "FAILED"
    fake.runs.outputs[("company.team", "etl")] = {"rows": 12}
    execution_id = trigger(fake, count="1").json["id"]
    path = f"/api/v1/main/executions/{execution_id}"
    assert call(fake, "GET", path).json["state"]["current"] == "RUNNING"
    time.sleep(fake.runs.delay)
    done = call(fake, "GET", path).json
    assert [h["state"] for h in done["state"]["histories"]] == ["CREATED", "RUNNING", "FAILED"]
    assert done["outputs"] == {"rows": 12} and "endDate" in done["state"]
    assert ("deleted" in done) == (version == "1.3.19")  # 2.0: an ApiExecution
    assert_json_error(call(fake, "GET", "/api/v1/main/executions/nope"), 404, "Not Found")


@pytest.mark.parametrize("version", VERSIONS)
def test_wait_answers_the_final_state(version: str):
    fake = seeded(version)
    fake.runs.delay = 3600
    answer = trigger(fake, "?wait=true", count="1").json
    assert answer["state"]["current"] == "SUCCESS"


@pytest.mark.parametrize("version", VERSIONS)
def test_search_filters_by_namespace_flow_state_and_start(version: str):
    fake = seeded(version)
    old = fake.runs.add("company.team", "etl", started=NOW - timedelta(days=9))
    week = fake.runs.add("company.team", "etl", "FAILED", started=NOW - timedelta(days=6))
    day = fake.runs.add("company.team", "etl", started=NOW - timedelta(days=1))
    fake.runs.add("company.team.sub", "etl", started=NOW - timedelta(days=1))
    fake.runs.add("company.team", "other", started=NOW - timedelta(days=1))
    mine = "filters[namespace][EQUALS]=company.team&filters[flowId][EQUALS]=etl"

    def ids(query: str) -> list[str]:
        return [e["id"] for e in search(fake, f"{mine}&{query}")["results"]]

    # TimeLineSearch: without a date, 8 days back only
    assert ids("sort=state.startDate:asc") == [week["id"], day["id"]]
    assert ids("filters[startDate][GREATER_THAN_OR_EQUAL_TO]=" +
               (NOW - timedelta(days=10)).isoformat().replace("+00:00", "Z")) == \
        [old["id"], week["id"], day["id"]]
    assert ids("filters[timeRange][EQUALS]=P2D") == [day["id"]]
    assert ids("filters[state][IN]=FAILED,KILLED") == [week["id"]]
    assert ids("filters[state][NOT_IN]=FAILED&sort=state.startDate:desc") == [day["id"]]
    assert_json_error(
        call(fake, "GET", "/api/v1/main/executions/search?filters[timeRange][EQUALS]=P1D"
                          "&filters[startDate][GREATER_THAN]=2026-01-01T00:00:00Z"), 422,
        "Illegal argument: Parameters 'startDate'/'endDate' and 'timeRange' are mutually "
        "exclusive")


@pytest.mark.parametrize("version", VERSIONS)
def test_search_pages_from_one_and_counts_the_total(version: str):
    fake = seeded(version)
    for hours in range(25):
        fake.runs.add("company.team", "etl", started=NOW - timedelta(hours=hours))
    answer = search(fake, "page=3&size=10")
    assert (len(answer["results"]), answer["total"]) == (5, 25)
    row = answer["results"][0]
    # 2.0 lists ApiLightExecutions: no task runs, variables, metadata
    assert ("metadata" in row) == (version == "1.3.19")


def test_1_3_still_reads_the_deprecated_search_parameters():
    # ExecutionController.searchExecutions (1.3): namespace (a prefix), flowId, state...
    fake = seeded("1.3.19")
    fake.runs.add("company.team.sub", "etl", "FAILED", started=NOW)
    fake.runs.add("company.team", "etl", started=NOW)
    assert [e["namespace"] for e in search(fake, "namespace=company&state=FAILED")["results"]] \
        == ["company.team.sub"]
    # 2.0 reads filters[...] only
    two = seeded("2.0.3")
    two.runs.add("company.team", "etl", started=NOW)
    assert search(two, "namespace=elsewhere")["total"] == 1


@pytest.mark.parametrize(("version", "path", "status"), [
    ("1.3.19", "/kill", 202), ("2.0.3", "/actions/kill", 200)])
def test_kill(version: str, path: str, status: int):
    fake = seeded(version)
    fake.runs.delay = 3600
    execution_id = trigger(fake, count="1").json["id"]
    killed = call(fake, "DELETE", f"/api/v1/main/executions/{execution_id}{path}")
    assert killed.status == status
    state = call(fake, "GET", f"/api/v1/main/executions/{execution_id}").json["state"]
    assert [h["state"] for h in state["histories"]][-2:] == ["KILLING", "KILLED"]
    again = call(fake, "DELETE", f"/api/v1/main/executions/{execution_id}{path}"
                                 "?isOnKillCascade=false")
    assert again.status == 409
    assert call(fake, "DELETE", f"/api/v1/main/executions/nope{path}").status == 404


def test_an_execution_a_webhook_created_is_found_by_search():
    fake = hook("2.0.3")
    assert fake.handle("POST", HOOK_PATH, {}, b"").status == 200
    assert search(fake, "filters[flowId][EQUALS]=hook")["total"] == 1

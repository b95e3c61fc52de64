"""The executions API of the fake Kestra: trigger, get, search and kill executions.

The fake runs no task. A triggered execution answers CREATED, shows RUNNING when next read,
and reaches its final state ``delay`` seconds after it was created: SUCCESS unless the test
chose another outcome for its flow (``fake.runs.outcome[(namespace, flow_id)] = "FAILED"``),
with the outputs the test set (``fake.runs.outputs[(namespace, flow_id)] = {...}``).
``fake.runs.add(...)`` records an execution that happened in the past (for soak checks).

Inputs are resolved against the flow's declared inputs as Kestra does when an execution is
created (required, defaults, types); constraints on values (``validator``, ``min``/``max``, a
SELECT's ``values``) are not checked. Sources: webserver ExecutionController.java,
core FlowInputOutput.java, core QueryFilter.java, webserver QueryFilterFormatBinder.java,
TimeLineSearch.java and QueryFilterUtils.java, jdbc AbstractJdbcExecutionRepository.java, in 1.3
(releases/v1.3.x) and 2.0 (develop).
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from . import rules
from .app import (
    MULTIPART,
    HttpError,
    Response,
    _Call,
    _illegal_argument,
    _illegal_state,
    _internal,
    _json,
    _media_type,
    _not_found,
    _parse_duration,
    _parse_multipart,
    _short_id,
)

if TYPE_CHECKING:
    from .app import FakeKestra

# State.Type.isTerminated (same list on 1.3 and 2.0)
TERMINATED = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED",
                        "SKIPPED", "RESUBMITTED"})
STATES = TERMINATED | {"CREATED", "SUBMITTED", "RUNNING", "PAUSED", "RESTARTED", "KILLING",
                       "QUEUED", "RETRYING", "BREAKPOINT"}
# FlowInputOutput (2.0): an empty text means "no value" except for these types
TEXT_TYPES = {"STRING", "SELECT", "EMAIL", "SECRET"}
# the sort keys AbstractJdbcExecutionRepository.sortMapping accepts, and what each reads
SORTS = {"id": ("id",), "state.startDate": ("state", "startDate"),
         "state.endDate": ("state", "endDate"), "namespace": ("namespace",),
         "flowId": ("flowId",), "state.current": ("state", "current")}
_FILTER = re.compile(r"filters\[([^\]]*)\]\[([^\]]*)\](?:\[(.+)\])?")
DEFAULT_WINDOW = timedelta(days=8)  # TimeLineSearch: searches start 8 days back by default


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def _instant(text: str) -> datetime:
    """ZonedDateTime.parse: an ISO date-time with an offset; anything else is a 500."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        # a DateTimeParseException, which only ErrorController's catch-all handles
        raise _internal(f"Text '{text}' could not be parsed") from None
    return moment


def _java_duration(seconds: float) -> str:
    """java.time.Duration's ISO text, as Jackson writes the state's duration."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if rest or not (hours or minutes):
        text += f"{rest / 1000:g}S"
    return text


class Runs:
    """The executions of one FakeKestra (``fake.executions``) and how they run."""

    def __init__(self, fake: FakeKestra) -> None:
        self.fake = fake
        self.delay = 0.05  # seconds from creation to the final state
        self.outcome: dict[tuple[str, str], str] = {}  # (namespace, flow id) -> final state
        self.outputs: dict[tuple[str, str], dict[str, Any]] = {}  # (namespace, flow id) -> outputs
        self.clock = time.time
        self._due: dict[str, tuple[float, str, dict[str, Any]]] = {}  # id -> (when, state, outputs)

    # -- helpers for tests ----------------------------------------------------------------------

    def add(self, namespace: str, flow_id: str, state: str = "SUCCESS", *,
            started: datetime, ended: datetime | None = None, inputs: Mapping[str, Any] = (),
            outputs: Mapping[str, Any] = (), labels: Mapping[str, str] = (),
            tenant: str = "main", revision: int = 1, execution_id: str | None = None
            ) -> dict[str, Any]:
        """Record an execution that ran in the past (``ended`` defaults to a minute later for a
        terminated state); returns it as stored."""
        assert state in STATES, state
        if ended is None and state in TERMINATED:
            ended = started + timedelta(minutes=1)
        histories = [("CREATED", started)] + ([(state, ended or started)] if state != "CREATED"
                                              else [])
        execution = self._new(tenant, namespace, flow_id, revision, dict(inputs),
                              [{"key": k, "value": v} for k, v in dict(labels).items()], started)
        if execution_id is not None:
            execution["id"] = execution["originalId"] = execution_id
        execution["state"] = self._state(histories)
        if outputs:
            execution["outputs"] = dict(outputs)
        with self.fake._lock:
            self.fake.executions.append(execution)
        return execution

    def find(self, execution_id: str) -> dict[str, Any] | None:
        self._advance()
        return next((e for e in self.fake.executions if e["id"] == execution_id), None)

    # -- the run: CREATED -> RUNNING -> final, computed when read --------------------------------

    def _state(self, histories: list[tuple[str, datetime]]) -> dict[str, Any]:
        # State: startDate is the first history's date; endDate and duration once terminated
        # (or paused)
        current, last = histories[-1]
        state: dict[str, Any] = {
            "current": current, "histories": [{"state": s, "date": _iso(d)} for s, d in histories],
            "startDate": _iso(histories[0][1])}
        if current in TERMINATED or current == "PAUSED":
            state["endDate"] = _iso(last)
            state["duration"] = _java_duration((last - histories[0][1]).total_seconds())
        return state

    def _move(self, execution: dict[str, Any], state: str, when: float) -> None:
        histories = [(h["state"], datetime.fromisoformat(h["date"]))
                     for h in execution["state"]["histories"]]
        histories.append((state, datetime.fromtimestamp(when, timezone.utc)))
        execution["state"] = self._state(histories)

    def _advance(self, *, finish: str | None = None) -> None:
        """Move every execution the fake runs along, up to now (or ``finish`` one at once)."""
        now = self.clock()
        for execution in self.fake.executions:
            plan = self._due.get(execution["id"])
            if plan is None:
                continue
            when, final, outputs = plan
            if execution["state"]["current"] == "CREATED":
                self._move(execution, "RUNNING", min(now, when))
            if now >= when or execution["id"] == finish:
                self._move(execution, final, max(min(now, when), self._last_date(execution)))
                if outputs:
                    execution["outputs"] = dict(outputs)
                del self._due[execution["id"]]

    @staticmethod
    def _last_date(execution: dict[str, Any]) -> float:
        return datetime.fromisoformat(execution["state"]["histories"][-1]["date"]).timestamp()

    def _new(self, tenant: str, namespace: str, flow_id: str, revision: int,
             inputs: dict[str, Any], labels: list[dict[str, str]], created: datetime
             ) -> dict[str, Any]:
        # Execution.newExecution: originalId is the id, metadata counts attempts from 1
        execution_id = _short_id()
        execution: dict[str, Any] = {
            "tenantId": tenant, "id": execution_id, "namespace": namespace, "flowId": flow_id,
            "flowRevision": revision, "labels": labels,
            "state": self._state([("CREATED", created)]), "originalId": execution_id,
            "deleted": False,
            "metadata": {"attemptNumber": 1, "originalCreatedDate": _iso(created)}}
        if inputs:  # NON_EMPTY
            execution["inputs"] = inputs
        return execution

    # -- views -----------------------------------------------------------------------------------

    def _full(self, execution: dict[str, Any]) -> dict[str, Any]:
        # 1.3 answers the Execution itself; 2.0 an ApiExecution: no `deleted`, taskRunList a list
        if self.fake.major < 2:
            return dict(execution)
        view = {k: v for k, v in execution.items() if k != "deleted"}
        view.setdefault("taskRunList", [])
        return view

    def _light(self, execution: dict[str, Any]) -> dict[str, Any]:
        # search: 1.3 pages Executions; 2.0 ApiLightExecution (no task runs, variables, metadata)
        if self.fake.major < 2:
            return dict(execution)
        return {k: v for k, v in execution.items()
                if k not in ("deleted", "taskRunList", "variables", "metadata")}

    # -- handlers ---------------------------------------------------------------------------------

    def trigger(self, call: _Call) -> Response:
        # ExecutionController.createExecution: FlowService.getFlowIfExecutableOrThrow, then the
        # labels, then FlowInputOutput.readExecutionInputs; `wait` answers the final state
        namespace, flow_id = call.params["namespace"], call.params["id"]
        live = self.fake._live(call.tenant, namespace, flow_id)
        if live is None:
            raise _not_found("Requested Flow is not found.")
        if live.disabled:
            raise _illegal_state("Requested Flow is disabled.")
        flow = rules.parse(live.source)
        flow = flow if isinstance(flow, dict) else {}
        if flow.get("checks"):
            raise NotImplementedError("the fake Kestra does not evaluate a flow's checks")
        labels = self._labels(flow, call.query.get("labels", []))
        given: dict[str, str] = {}
        if call.body and _media_type(call.ctype) == MULTIPART:
            given = {name: data.decode("utf-8", errors="replace")
                     for name, _, data in _parse_multipart(call.ctype, call.body)}
        inputs = self._inputs(flow, given)
        created = datetime.fromtimestamp(self.clock(), timezone.utc)
        execution = self._new(call.tenant, namespace, flow_id, live.revision, inputs, labels,
                              created)
        if isinstance(flow.get("variables"), dict):
            execution["variables"] = flow["variables"]
        # Execution.newExecution: a correlation id, the execution's own, once it has an id
        labels.append({"key": "system.correlationId", "value": execution["id"]})
        key = (namespace, flow_id)
        final = self.outcome.get(key, "SUCCESS")
        assert final in TERMINATED, final
        self._due[execution["id"]] = (self.clock() + self.delay, final, self.outputs.get(key, {}))
        self.fake.executions.append(execution)
        if call.flag("wait"):  # the fake's run takes no real time when waited for
            self._advance(finish=execution["id"])
        answer = dict(execution)
        if url := self.fake._execution_url(call.tenant, namespace, flow_id, execution["id"]):
            answer["url"] = url  # ExecutionResponse: the Execution and its UI link
        return _json(answer)

    @staticmethod
    def _labels(flow: dict, pairs: list[str]) -> list[dict[str, str]]:
        # ExecutionController.parseLabels + RequestUtils.toMap, then Execution.newExecution: the
        # flow's labels (system ones left out), then the request's (a same key wins), then
        # system.from=api unless given
        given: dict[str, str] = {}
        for pair in pairs:
            key, sep, value = pair.partition(":")
            if not sep or not key:
                raise HttpError(422, "Unprocessable Entity: Can't split the queryString "
                                     "parameter by ':'")
            key, value = key.strip(), value.strip()
            if not key or not value:
                raise HttpError(422, "Unprocessable Entity: Can't have an empty part of "
                                     "queryString")
            if re.search(r"\s", key):
                raise HttpError(422, "Unprocessable Entity: Key of queryString can't contain a "
                                     "whitespace character")
            if key in given:
                raise HttpError(422, "Unprocessable Entity: The queryString parameter keys "
                                     f"contains duplicities: Duplicate key {key}")
            given[key] = value
        for key, value in given.items():
            if key.startswith("system.") and key not in ("system.correlationId", "system.from"):
                raise _illegal_argument("System labels can only be set by Kestra itself, "
                                        f"offending label: {key}={value}")
        given.setdefault("system.from", "api")
        own = flow.get("labels") or {}
        if isinstance(own, list):
            own = {str(item.get("key")): str(item.get("value")) for item in own
                   if isinstance(item, dict)}
        merged = {str(k): str(v) for k, v in own.items() if not str(k).startswith("system.")}
        merged.update(given)
        return [{"key": k, "value": v} for k, v in merged.items()]

    def _leaves(self, flow: dict) -> Iterable[tuple[str, dict]]:
        # Input.expandToLeaves (2.0): a FORM's inputs become dotted ids; 1.3's `name` fills `id`
        for item in flow.get("inputs") or []:
            if not isinstance(item, dict):
                continue
            input_id = item.get("id") if item.get("id") is not None or self.fake.major >= 2 \
                else item.get("name")
            if self.fake.major >= 2 and item.get("type") == "FORM":
                for child in item.get("inputs") or []:
                    yield f"{input_id}.{child.get('id')}", child
            else:
                yield str(input_id), item

    def _inputs(self, flow: dict, given: Mapping[str, str]) -> dict[str, Any]:
        # FlowInputOutput.resolveInputs: declared inputs only (others are dropped with a warning
        # in the execution's logs); the first input in error fails the whole request
        resolved: dict[str, Any] = {}
        for input_id, item in self._leaves(flow):
            if item.get("dependsOn") is not None:
                raise NotImplementedError("the fake Kestra does not resolve dependsOn")
            kind = str(item.get("type"))
            value: Any = given.get(input_id)
            if value == "" and self.fake.major >= 2 and kind not in TEXT_TYPES:
                value = None
            if value is None and item.get("defaults") is not None:
                value = item["defaults"]
            if value is None:
                if item.get("required", True) is not False:
                    # InputOutputValidationException, ErrorController's "Invalid entity"
                    raise HttpError(422, f"Invalid entity: Missing required input:{input_id}")
                resolved[input_id] = None
                continue
            resolved[input_id] = self._typed(input_id, kind, value)
        nested: dict[str, Any] = {}
        for key, value in resolved.items():  # MapUtils.flattenToNestedMap
            *parents, last = key.split(".")
            node = nested
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        return nested

    @staticmethod
    def _typed(input_id: str, kind: str, value: Any) -> Any:
        # FlowInputOutput.parseType, for the types whose parsing is plain: a number that does
        # not parse is an IllegalArgumentException, reported with the input's id; any other
        # failure is wrapped in an " errors:" block without it
        def invalid(cause: str) -> HttpError:
            return HttpError(422, f"Invalid entity: Invalid value for input `{input_id}`. "
                                  f"Cause: {cause}")

        def failed(cause: str) -> HttpError:
            return HttpError(422, f"Invalid entity:  errors:\n```\n{cause}\n```")
        text = value if isinstance(value, str) else json.dumps(value)
        if kind == "INT":
            if isinstance(value, int) or re.fullmatch(r"[-+]?\d+", text):
                return int(value)
            raise invalid(f'For input string: "{text}"')  # NumberFormatException
        if kind == "FLOAT":
            try:
                return float(value)
            except ValueError:
                raise invalid(f'For input string: "{text}"') from None
        if kind in ("BOOL", "BOOLEAN"):  # Boolean.valueOf: "true" in any case, else false
            return value if isinstance(value, bool) else text.lower() == "true"
        if kind == "JSON" and isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:  # Jackson's message differs in its words
                raise failed(str(exc)) from None
        if kind == "DURATION":
            try:
                _parse_duration(text)
            except ValueError:
                raise failed("Text cannot be parsed to a Duration") from None
        return value

    def get(self, call: _Call) -> Response:
        # ExecutionController.getExecution: null is a 404 (ErrorController's status route)
        execution = self.find(call.params["executionId"])
        if execution is None or execution.get("deleted"):
            raise _not_found()
        return _json(self._full(execution))

    def kill(self, call: _Call) -> Response:
        # ExecutionController.killExecution: 404 without a body for an unknown id; a terminated
        # execution is refused only with isOnKillCascade=false; 1.3 answers 202 without a body,
        # 2.0 the execution once the kill was processed
        execution = self.find(call.params["executionId"])
        if execution is None:
            raise _not_found()
        cascade = (call.one("isOnKillCascade") or "true").lower() != "false"
        if execution["state"]["current"] in TERMINATED:
            if not cascade:
                if self.fake.major < 2:
                    raise _illegal_state("Execution is already finished, can't kill it")
                raise HttpError(409, "Conflict: Cannot kill execution: execution is already "
                                     "terminated.")
        else:
            now = self.clock()
            self._due.pop(execution["id"], None)
            self._move(execution, "KILLING", now)
            self._move(execution, "KILLED", now)
        if self.fake.major < 2:
            return Response(202)
        return _json(self._full(execution))

    def search(self, call: _Call) -> Response:
        # ExecutionController.searchExecutions: {results, total}, pages from 1
        self._advance()
        page, size = int(call.one("page", "1") or 1), int(call.one("size", "10") or 10)
        filters = self._filters(call)
        rows = [e for e in self.fake.executions
                if e["tenantId"] == call.tenant and not e.get("deleted")
                and all(self._keep(e, f) for f in filters)]
        for sort in reversed(call.query.get("sort", [])):  # PageableUtils.sort
            column, sep, direction = sort.partition(":")
            if not sep or ":" in direction:
                raise HttpError(422, "Unprocessable Entity: Invalid sort parameter")
            if column not in SORTS:
                raise HttpError(422, f"Unprocessable Entity: Invalid sort field: {column}")
            rows.sort(key=lambda e, path=SORTS[column]: self._read(e, path) or "",
                      reverse=direction != "asc")
        return _json({"results": [self._light(e) for e in rows[(page - 1) * size: page * size]],
                      "total": len(rows)})

    def _filters(self, call: _Call) -> list[tuple[str, str, Any]]:
        """(field, operation, value) leaves, the time range resolved as Kestra does."""
        if call.one("dateFilter") not in (None, "START_DATE"):
            raise NotImplementedError("the fake Kestra filters executions on their start only")
        filters: list[tuple[str, str, Any]] = []
        for name, values in call.query.items():
            if not name.startswith("filters["):
                continue
            match = _FILTER.fullmatch(name)
            if match is None or match.group(1).lower() in ("and", "or"):
                raise NotImplementedError(f"the fake Kestra cannot read the filter {name}")
            field, op, nested = match.groups()
            for value in values:
                if nested is not None:
                    filters.append((field, op, {nested: value}))
                elif op in ("IN", "NOT_IN"):  # QueryFilterFormatBinder: comma-separated
                    filters.append((field, op, re.sub(r"[\[\]]", "", value).split(",")))
                else:
                    filters.append((field, op, value))
        if not filters and self.fake.major < 2:
            filters = self._legacy(call)  # RequestUtils.getFiltersOrDefaultToLegacyMapping (1.3)
        # TimeLineSearch.extractFrom + QueryFilterUtils.updateFilters: every startDate or
        # timeRange filter becomes startDate at one resolved date; none means 8 days back
        start = end = span = None
        for field, _, value in filters:
            if field == "startDate":
                start = _instant(value)
            elif field == "endDate":
                end = _instant(value)
            elif field == "timeRange":
                try:
                    span = _parse_duration(value)
                except ValueError:
                    raise _illegal_argument(f"Invalid duration: {value}") from None
        if (start or end) and span is not None:
            raise _illegal_argument("Parameters 'startDate'/'endDate' and 'timeRange' are "
                                    "mutually exclusive")
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        if span is not None:
            start = now - span
        start = start or now - DEFAULT_WINDOW
        if end is not None and start > end:
            raise _illegal_argument("Start date must be before End Date")
        dated = [f for f in filters if f[0] not in ("startDate", "timeRange")]
        ops = [("GREATER_THAN_OR_EQUAL_TO" if f[0] == "timeRange" and
                f[1] not in ("NOT_EQUALS", "NOT_IN") else
                "LESS_THAN_OR_EQUAL_TO" if f[0] == "timeRange" else f[1])
               for f in filters if f[0] in ("startDate", "timeRange")]
        return dated + [("startDate", op, start) for op in ops or ["GREATER_THAN_OR_EQUAL_TO"]]

    @staticmethod
    def _legacy(call: _Call) -> list[tuple[str, str, Any]]:
        # ExecutionController.searchExecutions (1.3): the deprecated parameters, used only when
        # no filters[...] is given
        filters: list[tuple[str, str, Any]] = []
        if (namespace := call.one("namespace")) is not None:
            filters.append(("namespace", "PREFIX", namespace))
        if (flow_id := call.one("flowId")) is not None:
            filters.append(("flowId", "EQUALS", flow_id))
        if (start := call.one("startDate")) is not None:
            filters.append(("startDate", "GREATER_THAN", start))
        if (end := call.one("endDate")) is not None:
            filters.append(("endDate", "LESS_THAN", end))
        states = [s for value in call.query.get("state", []) for s in value.split(",")]
        if states:
            filters.append(("state", "IN", states))
        if (span := call.one("timeRange")) is not None:
            filters.append(("timeRange", "EQUALS", span))
        if call.query.get("labels"):
            raise NotImplementedError("the fake Kestra cannot search by the legacy labels")
        return filters

    @staticmethod
    def _read(execution: dict[str, Any], path: tuple[str, ...]) -> Any:
        value: Any = execution
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def _keep(self, execution: dict[str, Any], leaf: tuple[str, str, Any]) -> bool:
        # AbstractJdbcRepository's conditions for the fields of QueryFilter.Resource.EXECUTION
        field, op, value = leaf
        if field in ("startDate", "endDate"):
            seen = self._read(execution, ("state", field)) if field == "endDate" else \
                execution["state"]["histories"][0]["date"]  # a webhook's has no startDate
            if seen is None:  # SQL: a comparison with NULL is never true
                return False
            moment, bound = datetime.fromisoformat(seen), value
            if isinstance(bound, str):
                bound = _instant(bound)
            return {"GREATER_THAN": moment > bound, "GREATER_THAN_OR_EQUAL_TO": moment >= bound,
                    "LESS_THAN": moment < bound, "LESS_THAN_OR_EQUAL_TO": moment <= bound,
                    "EQUALS": moment == bound, "NOT_EQUALS": moment != bound}[op]
        if field == "state":
            states = value if isinstance(value, list) else [value]
            for state in states:
                if state not in STATES:  # State.Type.valueOf
                    raise _illegal_argument("No enum constant io.kestra.core.models.flows.State."
                                            f"Type.{state}")
            if op not in ("EQUALS", "IN", "NOT_EQUALS", "NOT_IN"):
                raise HttpError(400, f"Invalid query filters: Unsupported operation for "
                                     f"State.Type: {op}")
            inside = execution["state"]["current"] in states
            return inside if op in ("EQUALS", "IN") else not inside
        if field == "labels" and op == "EQUALS" and isinstance(value, dict):
            labels = {label["key"]: label["value"] for label in execution.get("labels") or []}
            return all(labels.get(k) == v for k, v in value.items())
        if field in ("namespace", "flowId"):
            seen = execution[field]
            if op in ("IN", "NOT_IN"):
                return (seen in value) == (op == "IN")
            tests = {"EQUALS": seen == value, "NOT_EQUALS": seen != value,
                     "CONTAINS": value in seen, "STARTS_WITH": seen.startswith(value),
                     "ENDS_WITH": seen.endswith(value),
                     # PREFIX: the namespace itself or one below it
                     "PREFIX": seen == value or seen.startswith(value + "."),
                     "REGEX": re.search(value, seen) is not None}
            if op in tests:
                return tests[op]
        raise NotImplementedError(f"the fake Kestra cannot filter executions on {field} {op}")

"""The executions endpoints of the Kestra API: start a flow, read an execution, list executions,
wait for one to end, kill one. Kestra 1.3 and 2.0 alike (webserver ExecutionController.java),
but for the kill path, which 2.0 moved under ``/actions``.

``KestraClient`` inherits these calls; they use its tenant-scoped paths and its transport
(retries, typed errors, credentials redacted).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping
from urllib.parse import quote

from kestra_promote.errors import ExecutionTimeout, NotFound, SettingsError
from kestra_promote.target.transport import Transport

# State.Type.isTerminated (core models/flows/State.java, the same on 1.3 and 2.0): an execution
# in one of these states is over and will not change by itself
TERMINATED = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED",
                        "SKIPPED", "RESUBMITTED"})
PAGE_SIZE = 100
MULTIPART = "multipart/form-data"


def _segment(value: str) -> str:
    return quote(value, safe="")


def _input_text(value: object) -> str:
    """An input value as the text of its multipart part: Kestra parses it by the input's type
    (Boolean.valueOf for BOOL, JSON for JSON inputs...)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _label_params(labels: Mapping[str, str] | None) -> list[tuple[str, str]]:
    # ExecutionController.parseLabels reads `key:value` and splits at the first colon
    params = []
    for key, value in (labels or {}).items():
        if not key.strip() or ":" in key or any(c.isspace() for c in key):
            raise SettingsError(f"invalid execution label key {key!r}: Kestra needs a key "
                                "without ':' or spaces")
        if not str(value).strip():
            raise SettingsError(f"the execution label {key!r} has an empty value")
        params.append(("labels", f"{key}:{value}"))
    return params


def state_of(execution: Mapping[str, Any]) -> str:
    """The current state of an execution as the API gives it (``state.current``)."""
    state = execution.get("state")
    return str(state.get("current")) if isinstance(state, dict) else ""


class ExecutionCalls(Transport):
    """The executions endpoints, on the client's transport."""

    def _path(self, path: str) -> str:  # the client's tenant-scoped path
        raise NotImplementedError

    def major_version(self) -> int | None:  # the client asks the server once
        raise NotImplementedError

    def trigger_execution(
        self, namespace: str, flow_id: str, inputs: Mapping[str, object] | None = None,
        *, labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start the flow's latest revision; the new execution as the server answers it (state
        CREATED, ``url`` its UI page). Inputs go as multipart parts, checked by the server
        against the flow's declared inputs (a missing required one: Unprocessable, 422); an
        unknown flow is NotFound, a disabled one Conflict.

        Sent once: the transport repeats it only when it never reached the server (connection
        refused) or was turned away with a 429. A lost answer or a 502/503/504 is not retried,
        as the execution may have been created (2.0 answers 504 when its executor is slow to
        confirm it): the error says so, and a caller that must know can look for its own
        ``labels`` with ``search_executions`` before triggering again. The server's ``wait``
        is not used either: it holds the request open until the end (up to an hour), past any
        read timeout; ``wait_for_execution`` polls instead.
        """
        path = self._path(f"/executions/{_segment(namespace)}/{_segment(flow_id)}")
        parts = [(name, (None, _input_text(value))) for name, value in (inputs or {}).items()]
        # without inputs, an empty body of the multipart type, as Kestra's own tests send
        body: dict[str, Any] = ({"files": parts} if parts else
                                {"content": b"", "headers": {"Content-Type": MULTIPART}})
        response = self.request("POST", path, params=_label_params(labels), idempotent=False,
                                **body)
        execution = self._json(response, dict, "an execution")
        if not isinstance(execution.get("id"), str):
            raise self._unexpected(response, "JSON that is not an execution (no 'id')")
        return execution

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        """One execution (NotFound when there is none with that id)."""
        response = self.request("GET", self._path(f"/executions/{_segment(execution_id)}"))
        execution = self._json(response, dict, "an execution")
        if not isinstance(execution.get("state"), dict):
            raise self._unexpected(response, "JSON that is not an execution (no 'state')")
        return execution

    def search_executions(
        self, *, namespace: str | None = None, flow_id: str | None = None,
        states: Iterable[str] = (), since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Every execution matching all the given criteria, oldest first: of that exact
        namespace, of that flow id, in one of ``states``, started at or after ``since``
        (timezone-aware). Without ``since`` the server looks 8 days back only (its default,
        webserver TimeLineSearch.java). Read page by page; an execution that shows up on two
        pages (a page boundary moving) is listed once. The entries are 1.3 ``Execution`` or
        2.0 ``ApiLightExecution`` objects: id, namespace, flowId, state, inputs, outputs,
        labels in both.
        """
        # QueryFilter (1.3 and 2.0): EXECUTION filters take the PHP-style filters[field][OP]
        params: list[tuple[str, str]] = [("sort", "state.startDate:asc")]
        if namespace is not None:
            params.append(("filters[namespace][EQUALS]", namespace))
        if flow_id is not None:
            params.append(("filters[flowId][EQUALS]", flow_id))
        wanted = sorted(set(states))
        if wanted:
            params.append(("filters[state][IN]", ",".join(wanted)))
        if since is not None:
            if since.tzinfo is None:
                raise SettingsError("search_executions: 'since' needs a time zone")
            moment = since.astimezone(timezone.utc).isoformat(timespec="milliseconds")
            params.append(("filters[startDate][GREATER_THAN_OR_EQUAL_TO]",
                           moment.replace("+00:00", "Z")))
        found: dict[str, dict[str, Any]] = {}
        page = 1
        while True:
            response = self.request("GET", self._path("/executions/search"),
                                    params=[*params, ("page", str(page)),
                                            ("size", str(PAGE_SIZE))])
            answer = self._json(response, dict, "paged results")
            results = answer.get("results")
            if not isinstance(results, list) or not all(isinstance(e, dict) for e in results):
                raise self._unexpected(response, "JSON that is not paged executions")
            for execution in results:
                found.setdefault(str(execution.get("id")), execution)
            total = answer.get("total")
            if len(results) < PAGE_SIZE or not isinstance(total, int) or \
                    page * PAGE_SIZE >= total:
                return list(found.values())
            page += 1

    def wait_for_execution(self, execution_id: str, *, timeout: float, poll: float = 2.0
                           ) -> dict[str, Any]:
        """The execution once it is over (SUCCESS, FAILED, WARNING, KILLED...), read every
        ``poll`` seconds; ExecutionTimeout when it is not over after ``timeout`` seconds.

        A 404 is taken as "not stored yet" until then: Kestra 1.3 answers a trigger before its
        executor has stored the execution (ExecutionController emits it to a queue).
        """
        deadline = time.monotonic() + timeout
        execution: dict[str, Any] | None = None
        while True:
            try:
                execution = self.get_execution(execution_id)
            except NotFound:
                if execution is not None:
                    raise  # it was there: deleted since
            if execution is not None and state_of(execution) in TERMINATED:
                return execution
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                where = (f" of {execution.get('namespace')}.{execution.get('flowId')} is still "
                         f"{state_of(execution)}" if execution else " was never found")
                raise ExecutionTimeout(
                    f"execution {execution_id}{where} after {timeout:g} s; it goes on running "
                    "in Kestra (kill it there, or wait longer)",
                    execution_id=execution_id, execution=execution)
            self._sleep(min(poll, remaining))

    def kill_execution(self, execution_id: str) -> None:
        """Ask Kestra to kill an execution (and its subflows); one already over is left as it
        is. 1.3 answers 202 without a body, 2.0 the execution once the kill was processed."""
        suffix = "/kill" if self.major_version() == 1 else "/actions/kill"
        self._no_body(self.request(
            "DELETE", self._path(f"/executions/{_segment(execution_id)}{suffix}"),
            success=(200, 202)))

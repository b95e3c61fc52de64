"""The exceptions kestra-promote raises, and nothing else escapes its public functions.

    KestraPromoteError              every error this package raises
    ├── SourceError                 the flows in Git are invalid (carries every Problem found)
    ├── SettingsError               a flag, env var or setting is missing or wrong
    ├── TargetRejected              the target's own validation rejected flows (carries Problems)
    ├── PlanRefused                 a safeguard stops the plan (prune limits, drift, ownership)
    ├── StalePlan                   a saved plan no longer matches the target
    ├── ExecutionTimeout            an execution did not end in the time given
    └── KestraError                 talking to the Kestra API failed
        ├── TransportError          no usable HTTP response (connection refused, timeout, TLS), after retries
        ├── RequestTooLarge         a body over --max-request-bytes: not sent
        ├── UnexpectedResponse      not an API answer (a redirect, an HTML page, a damaged ZIP), never retried
        └── ApiError                the server answered with an error status
            ├── BadRequest          400 (e.g. a wrong tenant on open source)
            ├── Unauthorized        401 / 403
            ├── NotFound            404
            ├── Conflict            409 (illegal state, e.g. a disabled flow)
            ├── Unprocessable       422 (constraint violation, e.g. a flow that already exists)
            └── ServerError         5xx

Foreign exceptions (httpx, yaml, OSError) are translated once, where they happen, with
``raise ... from exc``. Messages name the flow or file and say what to do next; they never
contain credentials.
"""

from __future__ import annotations

from typing import Sequence

from kestra_promote.keys import Problem


class KestraPromoteError(Exception):
    """Base class of every error raised by kestra-promote."""

    commit: str | None = None  # the Git commit the failing command read, when known


class SettingsError(KestraPromoteError):
    """A command-line flag, environment variable or setting is missing or invalid."""


class _WithProblems(KestraPromoteError):
    def __init__(self, message: str, problems: Sequence[Problem]) -> None:
        super().__init__(message)
        self.problems: tuple[Problem, ...] = tuple(problems)


class SourceError(_WithProblems):
    """The source folder holds invalid flows; ``problems`` lists every one found."""


class TargetRejected(_WithProblems):
    """The target Kestra's validation rejected some flows; nothing was written."""


class PlanRefused(_WithProblems):
    """A safeguard refuses the plan as a whole (prune limits, drift policy, ownership)."""


class WindowDenied(PlanRefused):
    """A sync window denies writing now: the plan is fine, the time is not."""


class StalePlan(KestraPromoteError):
    """A saved plan was computed against a target state that has changed since."""


class ExecutionTimeout(KestraPromoteError):
    """An execution was not over when the wait for it ended; ``execution`` is its last state
    read (None when the server never showed it)."""

    def __init__(self, message: str, *, execution_id: str,
                 execution: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.execution_id = execution_id
        self.execution = execution


class KestraError(KestraPromoteError):
    """A request to the Kestra API failed."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class TransportError(KestraError):
    """No usable HTTP response: connection refused, timeout, TLS failure (after retries)."""


class RequestTooLarge(KestraError):
    """A request body would be larger than the configured limit: it was not sent."""


class UnexpectedResponse(KestraError):
    """An answer no Kestra endpoint gives: a redirect (never followed), a success status the
    endpoint never answers, or a body that is not what it gives (an HTML login page instead of
    JSON, a damaged ZIP). Usually a proxy or a wrong URL; never retried. ``status`` is the
    HTTP status received."""

    def __init__(self, message: str, *, method: str = "", path: str = "", status: int = 0) -> None:
        super().__init__(message, method=method, path=path)
        self.status = status


class ApiError(KestraError):
    """The Kestra API answered with an error status.

    ``message`` is the server's own message (1.x ``message`` or 2.0 ``detail``/``title``),
    ``details`` the per-field errors it listed, if any.
    """

    def __init__(
        self,
        status: int,
        *,
        method: str,
        path: str,
        message: str,
        details: Sequence[str] = (),
    ) -> None:
        text = f"{method} {path} failed with HTTP {status}"
        if message:
            text += f": {message}"
        if details:
            text += "".join(f"\n  - {d}" for d in details)
        super().__init__(text, method=method, path=path)
        self.status = status
        self.server_message = message
        self.details: tuple[str, ...] = tuple(details)


class BadRequest(ApiError):
    """HTTP 400."""


class Unauthorized(ApiError):
    """HTTP 401 or 403: missing, wrong or insufficient credentials."""


class NotFound(ApiError):
    """HTTP 404."""


class Conflict(ApiError):
    """HTTP 409."""


class Unprocessable(ApiError):
    """HTTP 422: the server refused the content (constraint violation, already exists on 1.x)."""


class ServerError(ApiError):
    """HTTP 5xx."""


def api_error_class(status: int) -> type[ApiError]:
    """The ApiError subclass for an HTTP status."""
    if status in (401, 403):
        return Unauthorized
    if status >= 500:
        return ServerError
    return {400: BadRequest, 404: NotFound, 409: Conflict, 422: Unprocessable}.get(status, ApiError)


def is_already_exists(error: ApiError) -> bool:
    """A create refused because the object exists: 422 "Flow id already exists" on 1.3 and 2.0
    alike (FlowController.create, ErrorController)."""
    return isinstance(error, Unprocessable) and "already exist" in str(error).lower()

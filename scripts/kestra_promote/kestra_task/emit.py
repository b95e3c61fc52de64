"""What a Kestra script task tells Kestra: outputs, counters and log lines, and text for people.

Outputs, counters and logs travel as Kestra's ``::{json}::`` lines, through the ``kestra``
package on the task's stdout (written directly anywhere else, as in tests); text for people is
written so that it can never pass for such a line. The package's own log records reach Kestra
at their level through ``KestraLogHandler``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Mapping, TextIO

from kestra_promote.textsafe import safe_text


class Emitter:
    """Kestra outputs, counters and logs: through the ``kestra`` package on the task's stdout,
    as the same ``::{json}::`` lines written directly anywhere else (tests, other streams)."""

    _LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
               "ERROR": logging.ERROR}

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._kestra = None
        if out is sys.stdout:
            try:
                from kestra import Kestra  # type: ignore[import-not-found,import-untyped]
            except ImportError:  # pragma: no cover - the flows install it
                Kestra = None
            self._kestra = Kestra
            if Kestra is not None:
                # its logger does not stop propagation: without this, every record would also
                # reach the root logger's handler as a plain line (stderr lines are logged ERROR)
                Kestra.logger().propagate = False

    def _line(self, message: dict[str, Any]) -> None:
        self.out.write("::" + json.dumps(message) + "::\n")

    def outputs(self, values: Mapping[str, Any]) -> None:
        if self._kestra is not None:
            self._kestra.outputs(dict(values))
        else:
            self._line({"outputs": dict(values)})

    def counter(self, name: str, value: int, **tags: str) -> None:
        if self._kestra is not None:
            self._kestra.counter(name, value, tags)
        else:
            self._line({"metrics": [{"name": name, "type": "counter", "value": value,
                                     "tags": tags}]})

    def log(self, level: str, message: str) -> None:
        # the kestra logger writes each record as a ::{"logs": ...}:: line (WARN and ERROR on
        # stderr), which Kestra logs at the record's own level: a warning stays a WARN line
        if self._kestra is not None:
            self._kestra.logger().log(self._LEVELS[level], message)
        else:
            self._line({"logs": [{"level": level, "message": message}]})

    def text(self, text: str) -> None:
        """Lines for people, logged by Kestra as they are: never a marker line, never a control
        character (text from Git or the target must not set outputs or split lines)."""
        text = safe_text(text)
        self.out.write(text if text.endswith("\n") else text + "\n")
        self.out.flush()


class KestraLogHandler(logging.Handler):
    """The package's own log records (``kestra_promote.*``) as Kestra log lines at their level:
    a plain line would be logged by Kestra at INFO (stdout) or ERROR (stderr), whatever it says."""

    _LEVELS = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN",
               logging.ERROR: "ERROR", logging.CRITICAL: "ERROR"}

    def __init__(self, emit: Emitter) -> None:
        super().__init__(level=logging.WARNING)
        self.emit_to = emit

    def emit(self, record: logging.LogRecord) -> None:
        level = self._LEVELS.get(record.levelno, "ERROR" if record.levelno > 40 else "INFO")
        try:
            self.emit_to.log(level, f"{record.name}: {record.getMessage()}")
        except Exception:  # a log line must never fail the task
            self.handleError(record)

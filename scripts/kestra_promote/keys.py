"""The smallest shared records: what identifies a flow or a namespace file, and a located problem.

They sit beneath everything else (settings, errors and the richer records in ``models`` use
them), so this module imports nothing of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True, order=True)
class FlowKey:
    """A flow's identity on a Kestra instance (per tenant)."""

    namespace: str
    id: str

    kind = "flow"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.id}"


@dataclass(frozen=True, order=True)
class FileKey:
    """A namespace file's identity: its namespace and absolute path (``/a/b.py``)."""

    namespace: str
    path: str

    kind = "file"

    def __str__(self) -> str:
        return f"{self.namespace}:{self.path}"


ObjectKey = Union[FlowKey, FileKey]


def sort_key(key: ObjectKey) -> tuple[str, str, str]:
    name = key.id if isinstance(key, FlowKey) else key.path
    return (key.kind, key.namespace, name)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located as precisely as we can."""

    message: str
    path: str | None = None
    line: int | None = None
    column: int | None = None
    flow: FlowKey | None = None

    def __str__(self) -> str:
        where = self.path or ""
        if where and self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        parts = [p for p in (where, str(self.flow) if self.flow else "") if p]
        return ": ".join([*parts, self.message])

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "namespace": self.flow.namespace if self.flow else None,
            "id": self.flow.id if self.flow else None,
            "message": self.message,
        }

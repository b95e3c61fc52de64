"""Read what the target holds now, in a constant number of requests.

One ZIP export per top-level namespace segment of the namespaces we manage (usually one or
two), never one request per flow: a no-op promotion of a thousand flows costs a few requests.
"""

from __future__ import annotations

import io
import zipfile
from typing import Iterable

from . import yamlnodes
from .client import KestraClient
from .errors import KestraError
from .models import FlowKey, LiveFlow, LiveState


def namespace_roots(namespaces: Iterable[str]) -> tuple[str, ...]:
    """The top-level segments that cover ``namespaces``: one export request each."""
    return tuple(sorted({ns.split(".", 1)[0] for ns in namespaces}))


def in_namespace_tree(namespace: str, prefix: str) -> bool:
    """``namespace`` is ``prefix`` or one of its children (``a.b`` is under ``a``, ``ab`` is not)."""
    return namespace == prefix or namespace.startswith(prefix + ".")


def _identity(text: str, entry: str) -> FlowKey:
    try:
        value = yamlnodes.load(text)
    except Exception as exc:  # the server stored it, so this is unexpected: say which entry
        raise KestraError(f"the target's export holds an unreadable flow {entry!r}: {exc}") from exc
    if not isinstance(value, dict) or not value.get("id") or not value.get("namespace"):
        raise KestraError(f"the target's export holds {entry!r}, which has no id or namespace")
    return FlowKey(str(value["namespace"]), str(value["id"]))


def parse_export(data: bytes, *, what: str = "export") -> list[LiveFlow]:
    """The flows of an export ZIP (one YAML source per entry)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise KestraError(f"the target's {what} is not a ZIP archive: {exc}") from exc
    flows = []
    with archive:
        for entry in archive.infolist():
            if entry.is_dir() or not entry.filename.endswith((".yml", ".yaml")):
                continue
            text = archive.read(entry).decode("utf-8")
            flows.append(LiveFlow(_identity(text, entry.filename), text))
    return flows


def read_live_state(client: KestraClient, namespaces: Iterable[str]) -> LiveState:
    """Every live flow in the namespace trees covering ``namespaces``."""
    prefixes = namespace_roots(namespaces)
    flows: dict[FlowKey, LiveFlow] = {}
    for prefix in prefixes:
        for flow in parse_export(client.export_flows(prefix), what=f"export of {prefix!r}"):
            # filtered here too: the server's prefix filter is not guaranteed to stop at a dot
            if in_namespace_tree(flow.key.namespace, prefix):
                flows[flow.key] = flow
    return LiveState(flows=flows, prefixes=prefixes)

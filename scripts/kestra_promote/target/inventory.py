"""The inventory: what a promotion source manages on a target, stored in the target's KV store.

One JSON value per source ``name``, under the key ``kestra-promote.<name>`` in the state
namespace: every managed flow and file with the hash of what was deployed (so edits made on the
target show up as drift), and a bounded history of runs. No state lives anywhere else.
"""

from __future__ import annotations

from typing import Any, Mapping

from kestra_promote.compare import from_legacy
from kestra_promote.errors import KestraError
from kestra_promote.models import FileKey, FlowKey, Inventory, Managed

KEY_PREFIX = "kestra-promote."
FORMAT = 2  # 1: one object per entry, full SHA-256 hashes (still read)
HISTORY_LIMIT = 50


def kv_key(name: str) -> str:
    return KEY_PREFIX + name


# An entry is one line of text, "<hash> <source> <path>": the hash of what was deployed, the
# origin hash of the file text it came from ("-": none), and that file ("": unknown). About 100
# bytes a flow, so that ten thousand fit in one request body.
def _entry(value: Managed) -> str:
    return f"{value.hash} {value.source or '-'} {value.path or ''}"


def _managed(entry: Any) -> Managed:
    if isinstance(entry, Mapping):  # format 1
        source = entry.get("source")
        return Managed(from_legacy(str(entry["hash"])), entry.get("path"),
                       from_legacy(source) if isinstance(source, str) else None)
    digest, source, path = str(entry).split(" ", 2)
    if not digest:
        raise ValueError(f"an entry has no hash: {str(entry)[:80]!r}")
    return Managed(digest, path or None, None if source == "-" else source)


def to_json(inventory: Inventory) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "name": inventory.name,
        **({"origin": inventory.origin} if inventory.origin else {}),
        "flows": {f"{k.namespace}/{k.id}": _entry(v) for k, v in sorted(inventory.flows.items())},
        "files": {f"{k.namespace}:{k.path}": _entry(v) for k, v in sorted(inventory.files.items())},
        "history": list(inventory.history),
    }


def from_json(data: Any, *, where: str) -> Inventory:
    """Read a stored inventory; a value we cannot read is an error, never an empty inventory."""
    try:
        if not isinstance(data, Mapping) or data.get("format") not in (1, FORMAT):
            raise ValueError(f"unknown format {data.get('format') if isinstance(data, Mapping) else data!r}")
        flows = {}
        for text, entry in data.get("flows", {}).items():
            namespace, _, flow_id = text.rpartition("/")
            flows[FlowKey(namespace, flow_id)] = _managed(entry)
        files = {}
        for text, entry in data.get("files", {}).items():
            namespace, _, path = text.partition(":")
            files[FileKey(namespace, path)] = _managed(entry)
        origin = data.get("origin")
        history = data.get("history", [])
        if not isinstance(history, list):
            raise ValueError("its history is not a list")
        # a record that is no mapping says nothing readable: it is left out (and so dropped
        # when the inventory is next written) rather than failing every report
        history = tuple(dict(run) for run in history if isinstance(run, Mapping))
        return Inventory(str(data["name"]), flows, files, history,
                         str(origin) if origin else None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KestraError(
            f"the inventory {where} is not readable ({exc}); fix or delete that KV entry") from exc


def with_run(inventory: Inventory, run: Mapping[str, Any]) -> Inventory:
    """The inventory with ``run`` appended to its history (keeping the newest runs)."""
    history = (*inventory.history, dict(run))[-HISTORY_LIMIT:]
    return Inventory(inventory.name, inventory.flows, inventory.files, history, inventory.origin)


def owner_of(key: FlowKey | FileKey, others: Mapping[str, Inventory]) -> str | None:
    """The name of another source that manages ``key``, if any."""
    for name, other in sorted(others.items()):
        if other.managed(key) is not None:
            return name
    return None


def merged(own: Inventory | None, old: Inventory, name: str, run: Mapping[str, Any], *,
           origin: str | None = None) -> Inventory:
    """``name``'s inventory once it takes over everything ``old`` manages (``adopt``): its own
    records win where both have one; both histories are kept, in time order, and ``run`` is
    added; the origin becomes ``origin`` (where the adopting source is read from) if known."""
    flows = {**old.flows, **(own.flows if own else {})}
    files = {**old.files, **(own.files if own else {})}

    def when(past: Mapping[str, Any]) -> str:  # ISO 8601 UTC times sort as text
        time = past.get("time")
        return time if isinstance(time, str) else ""

    runs = list(old.history)  # an adopt run again after a failed delete: no record twice
    runs += [past for past in (own.history if own else ()) if past not in runs]
    history = sorted(runs, key=when)  # stable: equal times keep their order
    kept = origin or (own.origin if own else None) or old.origin
    return with_run(Inventory(name, flows, files, tuple(history), kept), run)

"""The inventories in the target's KV store, each in values no larger than a request body.

An inventory that fits is one value, ``kestra-promote.<name>``. One that does not (tens of
thousands of flows) is a head under that key, holding the history and the names of its parts,
and parts ``kestra-promote-part.<name>.<digest>``, each holding the entries whose key hashes to
it. A part's name is a digest of its content: an unchanged part is never written again, and a
head always names parts that exist, since they are written before it (old parts are deleted
after). Readers read the head, then its parts; a part missing is an error, never an empty part.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Mapping

from kestra_promote.target import inventory as inv
from kestra_promote.target.client import KestraClient
from kestra_promote.errors import KestraError, NotFound
from kestra_promote.models import Inventory

PART_PREFIX = "kestra-promote-part."
FILL = 0.8  # parts are filled to this share of the limit: room for the entries' unevenness


def size_of(value: Any) -> int:
    """The bytes ``KestraClient.kv_put`` sends for ``value``."""
    return len(json.dumps(value, separators=(",", ":")).encode())


def _part_key(name: str, part: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:20]
    return f"{PART_PREFIX}{name}.{digest}"


def _bucket(entry_key: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(entry_key.encode()).digest()[:4], "big") % count


def to_values(inventory: Inventory, limit: int) -> tuple[dict[str, Any], dict[str, dict]]:
    """The head and the parts (by KV key) storing ``inventory`` in values of at most ``limit``
    bytes; no parts when it fits in one."""
    whole = inv.to_json(inventory)
    if size_of(whole) <= limit:
        return whole, {}
    head = {k: v for k, v in whole.items() if k not in ("flows", "files")}
    entries = size_of(whole) - size_of(head)
    count = 2
    while True:
        parts: list[dict[str, Any]] = [
            {"format": inv.FORMAT, "name": inventory.name, "flows": {}, "files": {}}
            for _ in range(count)]
        for table in ("flows", "files"):
            for key, entry in whole[table].items():
                parts[_bucket(key, count)][table][key] = entry
        if entries / count <= limit * FILL and all(size_of(p) <= limit for p in parts):
            break
        count *= 2
    stored = {_part_key(inventory.name, part): part for part in parts}
    head["parts"] = sorted(stored)
    head["flows"], head["files"] = {}, {}
    return head, stored


def from_values(head: Any, parts: Mapping[str, Any], *, where: str) -> Inventory:
    """The inventory a head and its parts store (the head alone when it has no parts)."""
    if not isinstance(head, Mapping) or not head.get("parts"):
        return inv.from_json(head, where=where)
    whole = {**head, "flows": {}, "files": {}}
    for key in head["parts"]:
        part = parts.get(key)
        if not isinstance(part, Mapping):
            raise KestraError(f"the inventory {where} names part {key!r}, which is missing or "
                              "unreadable: the inventory is incomplete; restore that KV entry, "
                              "or delete the inventory and adopt the flows again")
        for table in ("flows", "files"):
            entries = part.get(table) or {}
            if not isinstance(entries, Mapping):
                raise KestraError(f"the inventory part {key!r} is not readable")
            whole[table].update(entries)
    return inv.from_json(whole, where=where)


def read(client: KestraClient, namespace: str, key: str, known: Inventory | None = None
         ) -> Inventory | None:
    """The inventory under ``key`` (None when there is none). ``known``: the same inventory
    read earlier in this run; when the head names the same parts, they are not read again
    (a part's name is the digest of its content)."""
    try:
        head = client.kv_get(namespace, key)
    except NotFound:
        return None
    names = [str(p) for p in head.get("parts") or ()] if isinstance(head, Mapping) else []
    if names and known is not None and tuple(names) == known.parts:
        entries = inv.to_json(known)
        whole = {**head, "flows": entries["flows"], "files": entries["files"]}
        return dataclasses.replace(inv.from_json(whole, where=f"{namespace}/{key}"),
                                   parts=tuple(names))
    parts = {}
    for part in names:
        try:
            parts[part] = client.kv_get(namespace, part)
        except NotFound:
            pass  # from_values says which one
    inventory = from_values(head, parts, where=f"{namespace}/{key}")
    return dataclasses.replace(inventory, parts=tuple(names))


def write(client: KestraClient, namespace: str, inventory: Inventory,
          previous: Inventory | None = None) -> None:
    """Store ``inventory`` under its name: new parts first, then the head, then the parts it no
    longer names (``previous``: what it replaces, as read)."""
    head, parts = to_values(inventory, client.max_body)
    old = set(previous.parts) if previous is not None else set()
    description = f"kestra-promote inventory of {inventory.name!r}"
    for key, part in parts.items():
        if key not in old:
            client.kv_put(namespace, key, part, description=f"{description} (part)")
    client.kv_put(namespace, inv.kv_key(inventory.name), head, description=description)
    gone = old - set(parts)
    if parts:  # and any part an earlier run left behind (a saved plan knows no parts)
        mine = f"{PART_PREFIX}{inventory.name}."
        gone |= {k for k in client.list_kv_keys(namespace) if k.startswith(mine)} - set(parts)
    for key in sorted(gone):
        _delete_quietly(client, namespace, key)


def delete(client: KestraClient, namespace: str, name: str, inventory: Inventory) -> None:
    """Remove the inventory stored under ``name`` (the head first: then no reader looks for
    its parts)."""
    client.kv_delete(namespace, inv.kv_key(name))
    for key in sorted(inventory.parts):
        _delete_quietly(client, namespace, key)


def _delete_quietly(client: KestraClient, namespace: str, key: str) -> None:
    try:  # a part left behind is only clutter: no head names it
        client.kv_delete(namespace, key)
    except KestraError:
        pass

"""Saved plans: `plan --out plan.json` writes one, `apply plan.json` applies exactly it.

The file holds every change with the content to write and the content it replaces, the hashes
of everything the plan was computed against, and the target it was made for. Applying it first
reads the target again and refuses when anything in scope differs.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Mapping

from . import inventory as inv
from .errors import SettingsError, StalePlan
from .models import (
    Action,
    Change,
    FileKey,
    FlowKey,
    ObjectKey,
    Plan,
    Problem,
    Reason,
    Scope,
)

FORMAT = "kestra-promote/plan/1"


def _encode(value: str | bytes | None) -> dict[str, str] | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    return {"text": value}


def _decode(value: Mapping[str, str] | None) -> str | bytes | None:
    if value is None:
        return None
    return base64.b64decode(value["base64"]) if "base64" in value else value["text"]


def _key(data: Mapping[str, Any]) -> ObjectKey:
    if data["kind"] == "file":
        return FileKey(data["namespace"], data["file"])
    return FlowKey(data["namespace"], data["id"])


def dump(plan: Plan, *, url: str, tenant: str) -> dict[str, Any]:
    changes = []
    for c in plan.changes:
        key = c.key
        changes.append({
            "kind": c.kind, "namespace": key.namespace,
            **({"id": key.id} if isinstance(key, FlowKey) else {"file": key.path}),
            "action": c.action.value, "reason": c.reason.name, "path": c.path,
            "before": _encode(c.before), "after": _encode(c.after), "diff": c.diff,
        })
    return {
        "format": FORMAT,
        "target": {"url": url.rstrip("/"), "tenant": tenant},
        "name": plan.name,
        "commit": plan.commit,
        "scope": {"flow_prefixes": list(plan.scope.flow_prefixes),
                  "file_namespaces": list(plan.scope.file_namespaces),
                  "state_namespace": plan.scope.state_namespace},
        "live_fingerprint": plan.live_fingerprint,
        "live_hashes": dict(plan.live_hashes),
        "inventory_before": inv.to_json(plan.inventory_before) if plan.inventory_before else None,
        "managed_after": inv.to_json(plan.managed_after) if plan.managed_after else None,
        "refusals": list(plan.refusals),
        "warnings": [w.message for w in plan.warnings],
        "changes": changes,
    }


def save(plan: Plan, path: str, *, url: str, tenant: str) -> None:
    Path(path).write_text(json.dumps(dump(plan, url=url, tenant=tenant), indent=1) + "\n",
                          encoding="utf-8")


def load(path: str) -> tuple[Plan, str, str]:
    """(plan, target URL, tenant) from a saved plan file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"not a saved kestra-promote plan (format {data.get('format')!r})")
        changes = tuple(
            Change(_key(c), Action(c["action"]), Reason[c["reason"]], _decode(c["before"]),
                   _decode(c["after"]), c.get("path"), c.get("diff") or "")
            for c in data["changes"])
        scope = Scope(tuple(data["scope"]["flow_prefixes"]), tuple(data["scope"]["file_namespaces"]),
                      data["scope"]["state_namespace"])
        where = f"in saved plan {path}"
        plan = Plan(
            changes=changes, commit=data["commit"], name=data["name"],
            live_fingerprint=data["live_fingerprint"], live_hashes=data["live_hashes"],
            scope=scope,
            inventory_before=inv.from_json(data["inventory_before"], where=where)
            if data["inventory_before"] else None,
            managed_after=inv.from_json(data["managed_after"], where=where)
            if data["managed_after"] else None,
            refusals=tuple(data["refusals"]), warnings=tuple(Problem(w) for w in data["warnings"]),
        )
        return plan, data["target"]["url"], data["target"]["tenant"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SettingsError(f"cannot read saved plan {path}: {exc}") from exc


def check_current(plan: Plan, live_hashes: Mapping[str, str]) -> None:
    """Raise StalePlan, naming what changed, unless the target is as the plan saw it."""
    changed = sorted(k for k in set(plan.live_hashes) | set(live_hashes)
                     if plan.live_hashes.get(k) != live_hashes.get(k))
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        raise StalePlan(f"the target changed since the plan was made ({shown}); nothing was "
                        "written: run plan again")

"""Saved plans: `plan --out plan.json` writes one, `apply plan.json` applies exactly it.

The file holds every change with the content to write and the content it replaces, the hashes
of everything the plan was computed against, the policies it was planned under, the target it
was made for, and a digest of all that. The digest catches a file edited by mistake, not by
intent (anyone who can edit the file can recompute it): what protects the target is that
applying it reads the target again and refuses when anything in scope differs, when a change
does not replace exactly what the target holds, or when a safeguard refuses a change against
the target as it is then (apply_plan).
The file is written readable by its owner only: it holds flow sources.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from kestra_promote.target import inventory as inv
from kestra_promote.compare import content_hash, source_hash
from kestra_promote.config import Config
from kestra_promote.errors import SettingsError
from kestra_promote.models import (
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
from kestra_promote.schedule import Window

FORMAT = "kestra-promote/plan/4"  # 3: 128-bit hashes; 4: the sync windows it must obey
_POLICY = ("name", "prune", "max_deletions", "allow_deletions", "protected_namespaces", "drift",
           "include", "state_namespace", "windows", "promotion_namespace")


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


def _list(data: Any, what: str) -> list[Any]:
    if not isinstance(data, list):
        raise ValueError(f"{what} is not a list")
    return data


def _texts(data: Any, what: str) -> tuple[str, ...]:
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise ValueError(f"{what} is not a list of texts")
    return tuple(data)


def _problem(data: Any) -> Problem:
    """A warning as `dump` wrote it; anything else is refused (it is printed as it is)."""
    fields = {"message": (str,), "path": (str, type(None)), "line": (int, type(None)),
              "column": (int, type(None)), "namespace": (str, type(None)),
              "id": (str, type(None))}
    if not isinstance(data, dict) or set(data) != set(fields) or any(
            not isinstance(data[name], kinds) or isinstance(data[name], bool)
            for name, kinds in fields.items()):
        raise ValueError(f"a warning is not as plan writes it: {str(data)[:80]!r}")
    namespace, flow_id = data["namespace"], data["id"]
    return Problem(data["message"], data["path"], data["line"], data["column"],
                   FlowKey(namespace, flow_id) if namespace and flow_id else None)


def _hash(value: str | bytes | None) -> str | None:
    if value is None:
        return None
    return source_hash(value) if isinstance(value, str) else content_hash(value)


def dump(plan: Plan, *, url: str, tenant: str) -> dict[str, Any]:
    changes = []
    for c in plan.changes:
        key = c.key
        # the content of what is written, and of what it replaces (a failed run puts it back);
        # of everything else, only hashes: a one-line change over hundreds of flows stays small
        content = ({"before": _encode(c.before), "after": _encode(c.after)} if c.writes else
                   {"before_hash": _hash(c.before), "after_hash": _hash(c.after)})
        changes.append({
            "kind": c.kind, "namespace": key.namespace,
            **({"id": key.id} if isinstance(key, FlowKey) else {"file": key.path}),
            "action": c.action.value, "reason": c.reason.name, "path": c.path,
            **content, "diff": c.diff,
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
        "warnings": [w.to_dict() for w in plan.warnings],  # where each one is, as shown
        "policy": _policy(plan.config or Config(name=plan.name)),
        "policy_digest": plan.policy_digest,
        "source_objects": plan.source_objects,
        "dirty": plan.dirty,
        "stage": dict(plan.stage),
        "changes": changes,
    }


def _policy(config: Config) -> dict[str, Any]:
    values = {k: getattr(config, k) for k in _POLICY}
    values["windows"] = [window.to_json() for window in config.windows]
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _digest(data: Mapping[str, Any]) -> str:
    body = {k: v for k, v in data.items() if k != "digest"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def save(plan: Plan, path: str, *, url: str, tenant: str) -> None:
    data = dump(plan, url=url, tenant=tenant)
    data["digest"] = _digest(data)
    text = json.dumps(data, indent=1) + "\n"
    # owner only: the file holds flow sources (and what a reviewer approved)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
        handle.write(text)


def recorded_digest(path: str) -> str | None:
    """The digest a saved plan file records (None when it records none)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    digest = data.get("digest") if isinstance(data, dict) else None
    return digest if isinstance(digest, str) else None


def load(path: str) -> tuple[Plan, str, str]:
    """(plan, target URL, tenant) from a saved plan file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise ValueError(f"not a saved kestra-promote plan of this version (format "
                             f"{found!r}): plan again")
        if data.get("digest") != _digest(data):
            raise ValueError("its content does not match what `plan` wrote (edited since?): "
                             "nothing was written; plan again")
        policy = dict(data["policy"])
        # the sync windows apply to the saved plan too: it is applied when they say
        policy["windows"] = [Window.from_json(w) for w in policy.get("windows") or ()]
        config = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in policy.items()
                           if k in _POLICY})
        changes = tuple(
            Change(_key(c), Action(c["action"]), Reason[c["reason"]], _decode(c.get("before")),
                   _decode(c.get("after")), c.get("path"), c.get("diff") or "")
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
            refusals=_texts(data["refusals"], "refusals"),
            warnings=tuple(_problem(w) for w in _list(data["warnings"], "warnings")),
            config=config, source_objects=int(data["source_objects"]),
            dirty=data["dirty"] is True,
            policy_digest=str(data.get("policy_digest") or ""),
            stage={str(k): str(v) for k, v in (data.get("stage") or {}).items()},
        )
        return plan, data["target"]["url"], data["target"]["tenant"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SettingsError(f"cannot read saved plan {path}: {exc}") from exc

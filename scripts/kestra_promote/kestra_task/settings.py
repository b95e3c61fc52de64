"""The production flows' settings, from the sealed record only.

The flows hand the task two values: the record as the KV store holds it (``KP_SETTINGS_RECORD``)
and the seal from the server's environment (``KP_SEAL``). The record is checked against the seal
(``gates.seal.verify``) and its settings become the task's environment, replacing whatever the
environment held under those names: a setting never comes from anywhere else.

A caller that gives no ``KP_SEAL`` at all is refused: an earlier revision of the promotion
flows, which Kestra keeps and still runs when asked for by number, passes none and reads its
settings from the KV store. Running a task by hand with settings from the environment is said
explicitly (``KP_SETTINGS=environment``), which no revision of the flows does.
"""

from __future__ import annotations

from typing import Mapping

from kestra_promote.errors import PlanRefused, SettingsError
from kestra_promote.gates import policy_store, seal
from kestra_promote.target.client import KestraClient

# a setting of the record → the environment variable the task reads it from, and its default
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "promote_repo_url": ("KP_REPO_URL", ""),
    "promote_branch": ("KP_BRANCH", "main"),
    "promote_tags": ("KP_TAGS", ""),
    "promote_target_url": ("KESTRA_URL", "http://localhost:8080"),
    "promote_tenant": ("KESTRA_TENANT", "main"),
    "promote_webhook_provider": ("KP_PROVIDER", ""),
    "promote_pull_requests": ("KP_PULL_REQUESTS", "false"),
    "promote_previews": ("KP_PREVIEWS", "false"),
    "promote_preview_prefix": ("KP_PREVIEW_PREFIX", "preview"),
    "promote_preview_ttl": ("KP_PREVIEW_TTL", ""),
    "promote_review_api": ("KP_POST_API", ""),
    "promote_review_repo": ("KP_POST_REPO", ""),
    "promote_approval": ("KP_APPROVAL", ""),
    "promote_notify": ("KP_NOTIFY_ON", ""),
    "promote_notify_format": ("KP_NOTIFY_FORMAT", ""),
    "promote_ui_url": ("KP_UI_URL", ""),
}
APPROVAL_TIMEOUT = "P1D"


BY_HAND = ("KP_SETTINGS", "environment")
# The revision of production's flows this package runs with: the flows pass it as a literal
# (KP_FLOWS_GENERATION). Kestra keeps every revision of a flow and runs an earlier one when asked
# for it by number; one from before a fix of the flows would run this package with the hole the
# fix closed. Whenever flows/prod/ changes, this goes up with the literal in the flows (a test
# holds the flows' fingerprint to it).
FLOWS_GENERATION = "2"


def resolve(env: Mapping[str, str]) -> tuple[dict[str, str], seal.Record | None]:
    """The task's environment with the record's settings in it, and the record (None when the
    caller said its settings are the environment's). A bad, missing or unsealed record, or no
    seal at all, is a SettingsError."""
    if "KP_SEAL" not in env:
        if (env.get(BY_HAND[0]) or "").strip() == BY_HAND[1]:
            return dict(env), None
        raise SettingsError(
            "no seal was given (KP_SEAL): this is not a run of the current promotion flows (an "
            "earlier revision of a flow, which reads settings any flow can write?). Nothing was "
            f"done; to run a task by hand with settings from the environment, set "
            f"{BY_HAND[0]}={BY_HAND[1]}")
    generation = (env.get("KP_FLOWS_GENERATION") or "").strip()
    if generation != FLOWS_GENERATION:
        raise SettingsError(
            f"this is not the current revision of the promotion flows (generation "
            f"{generation or 'none'}, the installed package runs with {FLOWS_GENERATION}): an "
            "earlier revision, run by number? Nothing was done; run the current revision")
    namespace = (env.get("KP_DELIVERIES_NAMESPACE") or "").strip() or "system"
    record, _ = seal.verify(env.get("KP_SETTINGS_RECORD"), env.get("KP_SEAL"),
                            seal.where(namespace))
    if not record.settings.get("promote_repo_url"):
        raise SettingsError("the setting promote_repo_url is not set: kestra-promote bootstrap "
                            "--role prod --set promote_repo_url=URL")
    resolved = dict(env)
    for key, (name, default) in ENVIRONMENT.items():
        resolved[name] = record.settings.get(key) or default
    path = record.settings.get("promote_path") or ""
    resolved["KP_SOURCE"] = f"repo/{path.strip('/')}" if path.strip("/") else "repo"
    resolved[policy_store.PIN_VARIABLE] = record.policy
    resolved[policy_store.NAMESPACE_VARIABLE] = namespace
    return resolved, record


def read_policy(client: KestraClient, env: Mapping[str, str]) -> policy_store.Stored:
    """Production's policy where the promotion reads it (its own namespace unless told
    otherwise), checked against the pin the sealed record names (``none`` included: then a
    stored policy is one no admin sealed, and is refused)."""
    return policy_store.read_configured(client, env, env.get("KP_DELIVERIES_NAMESPACE"))


def same_policy(client: KestraClient, env: Mapping[str, str], planned_under: str) -> None:
    """Refuse a saved plan (the one a person approved) unless production's policy is still the
    one it was made under: it may change during the pause, or while the lease is awaited."""
    if (why := policy_store.changed_since(planned_under, read_policy(client, env))) is not None:
        raise PlanRefused(why, ())


def for_task(name: str, env: Mapping[str, str]) -> tuple[dict[str, str], seal.Record | None]:
    """``resolve`` for production's tasks (decide, promote); another task's environment as is."""
    return resolve(env) if name in ("decide", "promote") else (dict(env), None)


def flow_outputs(record: seal.Record | None) -> dict[str, str]:
    """What the later tasks of the flow take from the checked record (never from the KV store
    again): where to clone from, how long an approval waits, whether to notify."""
    if record is None:
        return {}
    settings = record.settings
    return {"repo_url": settings.get("promote_repo_url") or "",
            "approval_timeout": settings.get("promote_approval_timeout") or APPROVAL_TIMEOUT,
            "notify": settings.get("promote_notify") or ""}

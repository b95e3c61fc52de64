"""The promotion's sealed settings: one record that production's admin owns and no flow can
change undetected.

In open-source Kestra any flow may write any namespace's KV store and namespace files
(``NamespaceService.isAllowedNamespace`` always answers yes), so the promotion's settings, the
digest of production's policy and the promotion's own package are worth nothing on their own
there. They are kept together in one record, the JSON text of the KV entry
``kestra_promote_settings`` of the promotion namespace, and the record's digest, the *seal*, is
set in the Kestra server's environment (``ENV_KESTRA_PROMOTE_SEAL``), which no flow can write;
flows read it as ``envs.kestra_promote_seal`` (Kestra exposes the server's ``ENV_``-prefixed
variables as ``envs``: core/runners/RunContextCache.java). A run whose record does not match the
seal refuses before it sends a credential anywhere.

The seal ``none`` runs unsealed, by the admin's explicit choice (the server's environment says
so); no seal at all is an error.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from kestra_promote.errors import NotFound, SettingsError, UnexpectedResponse
from kestra_promote.gates.policy import digest_of
from kestra_promote.target.client import KestraClient

RECORD_KEY = "kestra_promote_settings"
SEAL_VARIABLE = "KESTRA_PROMOTE_SEAL"  # the server's ENV_KESTRA_PROMOTE_SEAL; flows: envs.…
SERVER_VARIABLE = f"ENV_{SEAL_VARIABLE}"
UNSEALED = "none"
PACKAGE = "kestra_promote"  # the package's folder among the promotion namespace's files
NO_POLICY = "none"

# every setting of the production side, with what it means (bootstrap --set KEY=VALUE)
SETTINGS: dict[str, str] = {
    "promote_repo_url": "the flows repository to clone (required)",
    "promote_branch": "the branch followed (default main)",
    "promote_tags": "follow tags matching this pattern (e.g. v*) instead of a branch",
    "promote_path": "the repository's folder to promote (default: all of it)",
    "promote_target_url": "this instance's API, as the promotion reaches it "
                          "(default http://localhost:8080)",
    "promote_tenant": "the tenant (default main)",
    "promote_webhook_provider": "the one Git provider webhooks come from: github, gitlab or "
                                "gitea (required when a webhook secret is set)",
    "promote_pull_requests": "true: plan pull requests and post the plan on them",
    "promote_previews": "true (a development instance): a pull request's preview is brought "
                        "up while it is open, taken down when it closes",
    "promote_preview_prefix": "where previews live: PREFIX.<number>.<namespace> "
                              "(default preview)",
    "promote_preview_ttl": "with promote_previews: a scheduled run removes previews not "
                           "brought up for this long (7d, 36h; default: never)",
    "promote_review_api": "the Git provider's API the plan is posted to (Gitea)",
    "promote_review_repo": "the repository (owner/name) the plan is posted to",
    "promote_approval": "required: a person approves every apply",
    "promote_approval_timeout": "how long an approval waits (ISO 8601, default P1D)",
    "promote_notify": "problems or always: when to notify KESTRA_PROMOTE_NOTIFY_URL",
    "promote_notify_format": "slack, teams, google-chat or json",
    "promote_ui_url": "this instance's UI, to link executions",
}


def package_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """The digest of a package tree: each file's path (relative, with ``/``) and the digest of
    its bytes, in path order. The flows compute the same over the files they run."""
    total = hashlib.sha256()
    for path, data in sorted(files, key=lambda item: item[0]):
        total.update(path.encode("utf-8") + b"\0"
                     + hashlib.sha256(data).hexdigest().encode("ascii") + b"\n")
    return "sha256:" + total.hexdigest()


def namespace_package(files: Mapping[str, bytes]) -> list[tuple[str, bytes]]:
    """The package's files among namespace files given by absolute path (``/kestra_promote/…``)."""
    prefix = f"/{PACKAGE}/"
    return [(path[1:], data) for path, data in files.items() if path.startswith(prefix)]


@dataclass(frozen=True)
class Record:
    """What the seal pins: settings, production's policy digest and the package digest."""

    settings: Mapping[str, str] = field(default_factory=dict)
    policy: str = NO_POLICY
    package: str = ""

    def text(self) -> str:
        """The canonical JSON text stored and sealed."""
        return json.dumps({"version": 1, "settings": dict(sorted(self.settings.items())),
                           "policy": self.policy, "package": self.package},
                          sort_keys=True, separators=(",", ":"))

    @property
    def seal(self) -> str:
        return digest_of(self.text())


def parse_record(text: str, where: str) -> Record:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("version") != 1:
        raise SettingsError(f"{where} is not a kestra-promote settings record: run "
                            "'kestra-promote bootstrap' again")
    settings = data.get("settings")
    policy, package = data.get("policy"), data.get("package")
    if (not isinstance(settings, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in settings.items())
            or not isinstance(policy, str) or not isinstance(package, str)):
        raise SettingsError(f"{where} is not a kestra-promote settings record (settings, policy "
                            "and package must be text): run 'kestra-promote bootstrap' again")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise SettingsError(f"{where} has unknown setting(s) {', '.join(unknown)}; known: "
                            f"{', '.join(SETTINGS)}")
    return Record(dict(settings), policy, package)


def verify(text: str | None, seal: str | None, where: str) -> tuple[Record, bool]:
    """The record ``text`` checked against the server's ``seal``: (record, sealed). Refuses a
    missing seal, a missing record and a record that is not the sealed one."""
    seal = (seal or "").strip()
    if not seal:
        raise SettingsError(
            f"this promotion is not sealed: its settings ({where}) can be rewritten by any flow. "
            f"Set {SERVER_VARIABLE} in the Kestra server's environment to the seal "
            "'kestra-promote bootstrap' prints (or to none, to run unsealed) and restart it")
    if not text:
        raise SettingsError(f"there are no settings ({where} is empty): run "
                            "'kestra-promote bootstrap --role prod' with --set KEY=VALUE")
    if seal.lower() == UNSEALED:
        return parse_record(text, where), False
    if digest_of(text) != seal:
        raise SettingsError(
            f"the settings ({where}) are not the sealed ones: their digest is {digest_of(text)}, "
            f"the server's {SERVER_VARIABLE} is {seal}. Something other than "
            "'kestra-promote bootstrap' changed them; nothing was done")
    return parse_record(text, where), True


def vouched(text: str, current: str | None, where: str, remedy: str) -> Record:
    """The stored record, for an admin's command to carry over: only when it is the one the
    server's current seal (``current``, given by the admin) names. ``remedy`` says what else to
    do."""
    if not (current or "").strip() or current.strip().lower() == UNSEALED:
        raise SettingsError(f"the settings in {where} are carried over only when checked: give "
                            f"the server's current seal as {SEAL_VARIABLE} (any flow can write "
                            f"that KV entry; 'none' vouches for nothing: a production run "
                            f"unsealed gives the stored record's digest, which 'policy show' "
                            f"prints, once its settings are checked), or {remedy}")
    try:
        return verify(text, current, where)[0]
    except SettingsError as error:
        raise SettingsError(f"{error}; {remedy}") from None


def where(namespace: str) -> str:
    return f"KV {namespace}/{RECORD_KEY}"


def read_text(client: KestraClient, namespace: str) -> str | None:
    """The record's text as the target holds it (unchecked: only the server knows the seal)."""
    try:
        value = client.kv_get(namespace, RECORD_KEY)
    except NotFound:
        return None
    if not isinstance(value, str):
        raise UnexpectedResponse(f"the {where(namespace)} entry is not a settings record (a "
                                 "text value): 'kestra-promote bootstrap --reset-settings' "
                                 "writes a new one")
    return value


def read(client: KestraClient, namespace: str) -> Record | None:
    """The record the target holds, parsed (unchecked: only the server knows the seal)."""
    text = read_text(client, namespace)
    return None if text is None else parse_record(text, where(namespace))


_TOKEN_QUERY = re.compile(r"(?i)(?:^|&)[^=&]*(?:token|secret|password|key)[^=&]*=[^&]+")


def _login_end(value: str) -> int:
    """Where a URL's login (``user:token@``) ends, -1 without one: the last ``@`` before the
    host's end (the first of ``?#`` after it, or the path's ``/`` after the ``@``)."""
    if "://" not in value:
        return -1
    start = value.index("://") + 3
    rest = value[start:]
    stop = min([i for i in (rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)])
    at = rest.rfind("@", 0, stop)
    return start + at if at >= 0 else -1


def _has_login(value: str) -> bool:
    query = value.split("?", 1)[1].split("#", 1)[0] if "?" in value else ""
    return _login_end(value) >= 0 or bool(_TOKEN_QUERY.search(query))


def check_settings(settings: Mapping[str, str]) -> str | None:
    """Why these settings cannot be sealed, or None: a credential in a URL would be shown in
    executions' outputs and listings (logins belong in the KESTRA_PROMOTE_* secrets)."""
    for key, value in sorted(settings.items()):
        if _has_login(value):
            return (f"{key} holds a login (user@ or user:token@): give logins as secrets "
                    "(KESTRA_PROMOTE_GIT_USERNAME and KESTRA_PROMOTE_GIT_TOKEN for the "
                    "repository, KESTRA_PROMOTE_REVIEW_TOKEN for the review API)")
    return None


def write(client: KestraClient, namespace: str, record: Record) -> None:
    client.kv_put(namespace, RECORD_KEY, record.text(),
                  description=f"kestra-promote: the promotion's settings (sealed by the server's "
                              f"{SERVER_VARIABLE})")


def legacy_settings(client: KestraClient, namespace: str) -> dict[str, str]:
    """Settings kept one per KV key, as earlier versions did: what bootstrap carries over."""
    found: dict[str, str] = {}
    keys = set(client.list_kv_keys(namespace))
    for key in SETTINGS:
        if key in keys:
            try:
                value = client.kv_get(namespace, key)
            except NotFound:
                continue
            if value is not None and str(value).strip():
                found[key] = value if isinstance(value, str) else json.dumps(value)
    return found


def instructions(record: Record) -> str:
    """What production's admin does with a new record."""
    return (f"Seal: {record.seal}\n"
            f"  Set {SERVER_VARIABLE}={record.seal} in the Kestra server's environment and restart "
            "it;\n  until then every promotion run refuses (its settings are not the sealed ones).")


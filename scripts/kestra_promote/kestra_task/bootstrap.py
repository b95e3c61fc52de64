"""Install the promotion into a Kestra instance, with the promotion itself.

The project's own flows (``flows/prod`` for the instance that promotes, ``flows/dev`` or, on
Kestra 1.x, ``flows/dev-1.3`` for a development instance) and the helper package (``scripts/``,
as namespace files, which both sides run) are promoted like any flows repository: planned, validated on the target, applied all or nothing,
and recorded in an inventory of their own, which records where they came from (``origin``): the
project's repository, or its folder outside Git. Running it twice changes nothing the second
time.

Production's settings are written as one sealed record (``gates.seal``): the settings, the digest
of production's policy and the digest of the package just installed. Settings kept one per KV key
by earlier versions are carried over into it, and those keys removed.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from kestra_promote.engine.apply import Progress, apply_plan
from kestra_promote.target import lock
from kestra_promote.target.client import KestraClient
from kestra_promote.config import Config, NamespaceFiles
from kestra_promote.flows.desired import prepare
from kestra_promote.errors import NotFound, SettingsError
from kestra_promote.gates import policy_store, seal
from kestra_promote.gates.policy import digest_of
from kestra_promote.target.live import read_for
from kestra_promote.target.transport import redact_url
from kestra_promote.keys import FileKey
from kestra_promote.target.inventory import kv_key
from kestra_promote.models import ApplyResult, Plan
from kestra_promote.engine.plan import plan as make_plan
from kestra_promote.git.origin import origin
from kestra_promote.git.source import check_namespace, read_source

ROLES = ("prod", "dev")
SETTINGS = {
    "prod": tuple(seal.SETTINGS),
    "dev": ("commit_repo_url", "commit_author_name", "commit_author_email", "commit_kestra_url",
            "commit_tenant", "commit_branch_prefix", "commit_production_branch"),
}
SECRETS = {
    "prod": (
        ("KESTRA_PROMOTE_GIT_USERNAME", "user that clones the flows repository (read-only access)"),
        ("KESTRA_PROMOTE_GIT_TOKEN", "its token or password"),
        ("KESTRA_PROMOTE_USERNAME", "Kestra user the promotion writes with (this instance)"),
        ("KESTRA_PROMOTE_PASSWORD", "its password"),
        ("KESTRA_PROMOTE_WEBHOOK_KEY", "the key in the webhook URL: long and random"),
        ("KESTRA_PROMOTE_WEBHOOK_SECRET", "the secret the Git provider sends (GitLab token, "
                                          "Gitea/Forgejo Authorization header); webhook runs only"),
        ("KESTRA_PROMOTE_NOTIFY_URL", "the incoming webhook notifications are posted to; read "
                                      "only when the setting promote_notify is set"),
        ("KESTRA_PROMOTE_REVIEW_TOKEN", "a Git provider token that comments on pull requests and "
                                        "sets commit statuses; pull-request runs only"),
    ),
    "dev": (
        ("KESTRA_PROMOTE_GIT_USERNAME", "user that pushes review branches"),
        ("KESTRA_PROMOTE_GIT_TOKEN", "its token or password (write access)"),
        ("KESTRA_PROMOTE_USERNAME", "Kestra user that lists this instance's namespaces"),
        ("KESTRA_PROMOTE_PASSWORD", "its password"),
    ),
}


def project_root(explicit: str | None = None) -> Path:
    """The kestra-promote project folder holding ``flows/`` and ``scripts/``."""
    candidates = [Path(explicit)] if explicit else [Path(__file__).resolve().parents[3], Path.cwd()]
    for folder in candidates:
        if (folder / "flows" / "prod").is_dir() and (folder / "scripts" / "kestra_promote").is_dir():
            return folder.resolve()
    raise SettingsError("cannot find the kestra-promote project (flows/ and scripts/): run from a "
                        "clone of it, or pass --project DIR")


def flows_folder(role: str, version: str) -> str:
    """The project folder holding ``role``'s flows for a Kestra ``version``: the development
    side loops over namespaces, with Loop on 2.0 and ForEach on 1.x (no loop task is in both)."""
    major = version.split(".", 1)[0]
    if role == "dev" and major.isdigit() and int(major) < 2:
        return "flows/dev-1.3"
    return f"flows/{role}"


def bootstrap_config(role: str, namespace: str, version: str = "2.0") -> Config:
    """The settings that promote the project's own flows (and package) into ``namespace`` of a
    Kestra ``version``."""
    if role not in ROLES:
        raise SettingsError(f"--role must be one of {', '.join(ROLES)}")
    if (why := check_namespace(namespace)) is not None:
        raise SettingsError(f"--namespace: {why}")
    # both roles run the package (production promotes, development lists its namespaces), each
    # its own copy, in folders of their own (an object belongs
    # to one promotion source): production's at the root, development's under /dev/
    files = (NamespaceFiles("scripts", "system", "/" if role == "prod" else "/dev"),)
    return Config(
        name=f"kestra-promote-{role}", flows=(flows_folder(role, version),), namespace_files=files,
        rename={"system": namespace} if namespace != "system" else {},
        state_namespace=namespace, protected_namespaces=(), path="(bootstrap)",
        # what an earlier version installed and this one does not is removed: a module left
        # behind would still be importable, and break the package's seal
        prune=True, max_deletions=1000,
        # the one plan that installs the package into the promotion's sealed namespace files
        promotion_namespace=namespace, installs_promotion=True)


@dataclass(frozen=True)
class Prepared:
    plan: Plan
    settings: dict[str, str]  # settings that differ from what the target holds
    record: seal.Record | None = None  # production's sealed record, as it will be
    record_changed: bool = False
    migrated: tuple[str, ...] = field(default_factory=tuple)  # one-per-key settings to remove
    notes: tuple[str, ...] = field(default_factory=tuple)  # what the admin should know
    strays: tuple[str, ...] = ()  # files of the package's folder it does not install: removed


@dataclass(frozen=True)
class Sealing:
    """How production's admin vouches for the settings bootstrap carries over: the server's
    current seal (``current``: the record is checked against it), or ``reset`` (nothing is
    carried over: only the settings given), and whether settings kept one per KV key by earlier
    versions may be moved into the record (``migrate``). Any flow can write the KV store, so
    nothing is carried over on trust."""

    current: str | None = None
    reset: bool = False
    migrate: bool = False
    # the policy the admin seals when none is carried over (its digest, or none): a stored
    # policy is not sealed on trust either
    policy: str | None = None


def prepare_bootstrap(client: KestraClient, project: Path, role: str, namespace: str,
                      settings: Mapping[str, str | None],
                      sealing: Sealing = Sealing()) -> Prepared:
    bootstrap_config(role, namespace)  # bad arguments fail before any request
    unknown = sorted(set(settings) - set(SETTINGS.get(role, ())))
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)} for the {role} role; "
                            f"known: {', '.join(SETTINGS[role])}")
    config = bootstrap_config(role, namespace, str(client.configs().get("version") or "2.0"))
    source = read_source(project, config=config)
    desired = prepare(source, config)
    live = read_for(client, desired, config)
    # the objects are the project's: a pull request of another repository is never planned
    # as this inventory's (see engine.promotion.review_identity); whichever copy of the
    # project installs them owns them (adopt: no refusal when it is another copy)
    planned = make_plan(desired, live, config, commit=source.commit,
                        origin=project_origin(project), adopt=True)
    folder = PACKAGE_FOLDERS[ROLES.index(role)]
    _own_deletions_only(planned, namespace, folder)
    _one_role_per_instance(client, role, namespace)
    # files in the package's folder that this version does not install (put there by a flow, or
    # left by hand): the sealed package is exactly what bootstrap installs, so they go
    strays = tuple(sorted(key.path for key in live.files
                          if key.namespace == namespace and _under(key.path, folder)
                          and key not in desired.files))
    if role == "prod":
        package = seal.package_digest(seal.namespace_package(
            {key.path: file.content for key, file in desired.files.items()
             if key.namespace == namespace}))
        return dataclasses.replace(
            _sealed(client, planned, namespace, settings, package, sealing), strays=strays)
    if (why := seal.check_settings({k: v for k, v in settings.items() if v})) is not None:
        raise SettingsError(why)
    changed = {}
    for key, value in settings.items():
        if value is None:
            continue
        try:
            current = client.kv_get(namespace, key)
        except NotFound:
            current = None
        if current != value:
            changed[key] = value
    return Prepared(planned, changed, strays=strays)


PACKAGE_FOLDERS = ("/kestra_promote/", "/dev/kestra_promote/")  # by role, as ROLES


def _under(path: str, folder: str) -> bool:
    return posixpath.normpath(path) == path and path.startswith(folder)


def _own_deletions_only(planned: Plan, namespace: str, folder: str) -> None:
    """Bootstrap removes the package files an earlier version installed, and nothing else: its
    inventory can be written by any flow, so deleting a flow, or a file outside this role's
    package folder, is refused, whatever the inventory says."""
    foreign = []
    for change in planned.changes:
        if change.action.value != "delete":
            continue
        key = change.key
        if not (isinstance(key, FileKey) and key.namespace == namespace
                and _under(key.path, folder)):
            foreign.append(str(key))
    if foreign:
        raise SettingsError(
            f"bootstrap would delete {', '.join(foreign)}, which it never installs: its "
            f"inventory in {namespace!r} was changed (any flow can write it). Nothing was done; "
            "remove those entries from the inventory, or delete the inventory and run bootstrap "
            "again")


def _installed(client: KestraClient, namespace: str, role: str = "prod") -> bool:
    """Whether ``role``'s promotion was installed in ``namespace`` (its inventory is there)."""
    try:
        client.kv_get(namespace, kv_key(f"kestra-promote-{role}"))
    except NotFound:
        return False
    return True


def _one_role_per_instance(client: KestraClient, role: str, namespace: str) -> None:
    """Development's flow calls the API with the same secrets as production's (open source
    hands any secret to any flow) and reads where from KV: on one instance, a KV setting would
    send production's login anywhere. So the roles never share an instance's namespace."""
    if role == "dev" and seal.read_text(client, namespace) is not None:
        raise SettingsError(f"namespace {namespace!r} holds production's sealed promotion: "
                            "install the development role on the development instance")
    if role == "prod" and _installed(client, namespace, "dev"):
        raise SettingsError(
            f"namespace {namespace!r} holds the development role (its inventory, KV "
            f"{kv_key('kestra-promote-dev')}): install production's promotion on an instance of "
            "its own; if no development role is installed here, delete that KV entry")


def _carried(client: KestraClient, namespace: str, sealing: Sealing
             ) -> tuple[dict[str, str], str | None, tuple[str, ...], list[str]]:
    """What carries over into the new record: (settings, the sealed policy digest or None when
    none is sealed yet, legacy keys to remove, notes)."""
    text = seal.read_text(client, namespace)
    legacy = seal.legacy_settings(client, namespace)
    notes: list[str] = []
    if sealing.reset:
        if text is not None or legacy:
            notes.append("settings reset: only those given with --set are sealed")
        return {}, None, tuple(sorted(legacy)), notes
    current = (sealing.current or "").strip().lower()
    if text is None and ((current and current != seal.UNSEALED)
                         or (not legacy and _installed(client, namespace))):
        raise SettingsError(
            f"{seal.where(namespace)} is gone, though production's promotion is installed in "
            f"{namespace!r} (sealed, or its inventory is there): something deleted it (any flow "
            "can). Nothing was done; start over with --reset-settings and every setting (--set)")
    if text is not None:
        record = seal.vouched(text, sealing.current, seal.where(namespace),
                              "start over with --reset-settings and every setting (--set)")
        return dict(record.settings), record.policy, tuple(sorted(legacy)), notes
    if legacy and not sealing.migrate:
        shown = ", ".join(f"{key}={redact_url(value)}"
                          for key, value in sorted(legacy.items()))
        raise SettingsError(
            f"found settings kept one per KV key by an earlier version: {shown}. Any flow could "
            "have written them: check them, then run again with --migrate-settings to seal them, "
            "or give each with --set and --reset-settings")
    return dict(legacy), None, tuple(sorted(legacy)), notes


def _sealed(client: KestraClient, planned: Plan, namespace: str,
            settings: Mapping[str, str | None], package: str, sealing: Sealing) -> Prepared:
    """Production's record as this bootstrap leaves it: the settings carried over (see
    ``Sealing``) with ``settings`` set on them (an empty value removes one), the sealed policy
    (the stored one when none is sealed yet) and the package being installed."""
    values, sealed_policy, legacy, notes = _carried(client, namespace, sealing)
    changed: dict[str, str] = {}
    for key, value in settings.items():
        if value is None or values.get(key, "") == value:
            continue
        changed[key] = value
        if value:
            values[key] = value
        else:
            values.pop(key, None)
    if (why := seal.check_settings(values)) is not None:
        raise SettingsError(why)
    stored = policy_store.read_text(client, namespace)
    stored_digest = digest_of(stored) if stored is not None else seal.NO_POLICY
    named = (sealing.policy or "").strip()
    if named and not re.fullmatch(r"sha256:[0-9a-f]{64}|none", named):
        raise SettingsError(f"KESTRA_PROMOTE_POLICY_DIGEST {named!r} is not a policy's digest "
                            "(sha256:…, as 'policy set' prints it) nor none")
    if named and sealed_policy and named != sealed_policy:
        notes.append(f"KESTRA_PROMOTE_POLICY_DIGEST ({named}) is not the sealed policy "
                     f"({sealed_policy}), which stays sealed: 'policy set' seals another")
    policy = sealed_policy or named or seal.NO_POLICY
    if policy != stored_digest:
        notes.append(f"the stored policy ({stored_digest}) is not the sealed one ({policy}): the "
                     "sealed one stays, and applies refuse until 'policy set' seals the one wanted")
    record = seal.Record(values, policy, package)
    current = seal.read_text(client, namespace)
    return Prepared(planned, changed, record, current != record.text(), legacy, tuple(notes))


def project_origin(project: Path) -> str:
    """Where the project's objects come from: its repository, or its folder outside Git."""
    return origin(project) or "file:" + str(project.resolve())


def write_settings(client: KestraClient, namespace: str, settings: Mapping[str, str]) -> None:
    for key, value in settings.items():
        client.kv_put(namespace, key, value, description="kestra-promote setting")


def _writes(prepared: Prepared) -> bool:
    """Whether installing ``prepared`` writes anything at all."""
    settings = prepared.record_changed if prepared.record is not None else bool(prepared.settings)
    return (not prepared.plan.is_empty or bool(prepared.strays) or bool(prepared.migrated)
            or settings)


def install(client: KestraClient, project: Path, role: str, namespace: str,
            settings: Mapping[str, str | None], *, on_progress: Progress | None = None,
            sealing: Sealing = Sealing(), holder: str = "kestra-promote bootstrap",
            lock_wait: float = lock.DEFAULT_WAIT) -> tuple[Prepared, ApplyResult]:
    """Plan, apply (all or nothing), then write the settings that differ: under the target's
    lease, as every run that writes (none taken when there is nothing to write)."""
    prepared = prepare_bootstrap(client, project, role, namespace, settings, sealing)
    if not _writes(prepared):
        return prepared, apply_plan(client, prepared.plan, on_progress=on_progress,
                                    trigger="bootstrap")
    state = prepared.plan.scope.state_namespace
    with lock.held(client, state, holder, wait=lock_wait) as lease:
        keeper = lock.Keeper(client, state, lease)
        # planned again under the lease: what a run that held it wrote meanwhile is seen
        prepared = prepare_bootstrap(client, project, role, namespace, settings, sealing)
        result = apply_plan(client, prepared.plan, on_progress=on_progress, trigger="bootstrap",
                            heartbeat=keeper)
        if not result.ok:
            return prepared, result
        keeper()  # the settings, like every write, only while the lease is ours
        _write_rest(client, namespace, prepared)
    return prepared, result


def _write_rest(client: KestraClient, namespace: str, prepared: Prepared) -> None:
    """What follows the plan: strays removed, then the settings (or the sealed record)."""
    for path in prepared.strays:
        client.delete_namespace_file(namespace, path)
    if prepared.record is None:
        write_settings(client, namespace, prepared.settings)
        return
    if prepared.record_changed:
        seal.write(client, namespace, prepared.record)
    for key in prepared.migrated:  # now in the record: never read again
        client.kv_delete(namespace, key)


def instructions(url: str, tenant: str, namespace: str, role: str) -> str:
    """What to do next: the webhook URL to register and the secrets the flows expect."""
    lines = []
    if role == "prod":
        hook = (f"{url.rstrip('/')}/api/v1/{tenant}/executions/webhook/{namespace}/promote/"
                "<KESTRA_PROMOTE_WEBHOOK_KEY>")
        lines += ["Webhook URL to register in the Git provider (push events, JSON; set its secret "
                  "to KESTRA_PROMOTE_WEBHOOK_SECRET):", f"  {hook}", ""]
    lines.append("Secrets the flows expect (open source: environment variables SECRET_<NAME> of "
                 "the Kestra server, base64-encoded):")
    lines += [f"  {name:<32} {meaning}" for name, meaning in SECRETS[role]]
    if role == "prod":
        lines += ["", "Settings (bootstrap --set KEY=VALUE; one record, KV "
                  f"{namespace}/{seal.RECORD_KEY}, sealed by the server's "
                  f"{seal.SERVER_VARIABLE}): " + ", ".join(SETTINGS[role]) + "."]
    else:
        lines += ["", f"Settings (KV store of namespace {namespace!r}): "
                  + ", ".join(SETTINGS[role]) + "."]
    return "\n".join(lines) + "\n"

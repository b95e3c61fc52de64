"""``kestra-promote policy set|show|unset``: production's policy, stored on the target by its
admin, never read from the commit being promoted.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Mapping

from kestra_promote.config import read_regular_file
from kestra_promote.errors import SettingsError
from kestra_promote.gates import policy_store, seal
from kestra_promote.gates.policy import POLICY_KEY
from kestra_promote.target import lock
from kestra_promote.target.client import Connection, KestraClient, connect
from kestra_promote.target.transport import redact_url
from kestra_promote.cli.common import EXIT_OK, require
from kestra_promote.cli.output import Output

_PIN_HINT = (f"Pin it where flows cannot write: in CI, the variable {policy_store.PIN_VARIABLE}; "
             f"the promotion flows read it from their sealed settings (see below, when "
             f"bootstrap installed them here).")


def cmd_policy(args: argparse.Namespace, connection: Connection | None, output: Output) -> int:
    namespace = policy_store.namespace_from(args.namespace or args.env.get(
        policy_store.NAMESPACE_VARIABLE))
    with connect(require(connection)) as client:
        if args.action == "show":
            stored = policy_store.read(client, namespace, args.env.get(policy_store.PIN_VARIABLE))
            settings = _settings(seal.read(client, namespace), stored, namespace,
                                 args.env.get(seal.SEAL_VARIABLE))
            _show(output, stored, settings)
            return EXIT_OK
        holder = lock.default_holder(f"kestra-promote policy {args.action}")
        if args.action == "set":
            if not args.file:
                raise SettingsError("policy set needs the policy's file: kestra-promote policy "
                                    "set FILE")
            text = _read(args.file)
            with lock.held(client, namespace, holder, wait=args.lock_wait) as lease:
                current = _vouched(client, namespace, args.env)
                lock.ensure_ours(client, namespace, lease)  # before each write
                policy = policy_store.store(client, namespace, text, args.file)
                lock.ensure_ours(client, namespace, lease)
                record = _reseal(client, namespace, current, policy.digest)
            output.write(f"Stored production's policy in the KV store of {namespace!r} "
                         f"({POLICY_KEY}).\nDigest: {policy.digest}\n{_PIN_HINT}\n")
            _tell(output, record, namespace)
            return EXIT_OK
        with lock.held(client, namespace, holder, wait=args.lock_wait) as lease:
            current = _vouched(client, namespace, args.env)
            lock.ensure_ours(client, namespace, lease)  # before each write
            removed = policy_store.remove(client, namespace)
            lock.ensure_ours(client, namespace, lease)
            record = _reseal(client, namespace, current, seal.NO_POLICY)
        output.write(("Removed production's policy" if removed else "No policy was stored")
                     + f" (KV {namespace}/{POLICY_KEY}). Set the pin "
                     f"{policy_store.PIN_VARIABLE} to none, or remove it.\n")
        _tell(output, record, namespace)
    return EXIT_OK


def _vouched(client: KestraClient, namespace: str, env: Mapping[str, str]) -> seal.Record | None:
    """The promotion flows' sealed record of this namespace, checked against the server's seal
    the admin gives (any flow can write it: a changed one is never resealed); None when
    bootstrap installed no promotion here."""
    text = seal.read_text(client, namespace)
    if text is None:
        return None
    return seal.vouched(text, env.get(seal.SEAL_VARIABLE), seal.where(namespace),
                        "check it ('policy show') and run 'kestra-promote bootstrap "
                        "--reset-settings' first")


def _reseal(client: KestraClient, namespace: str, record: seal.Record | None,
            policy: str) -> seal.Record | None:
    """``record``, naming ``policy`` (a digest or none) from now on."""
    if record is None or record.policy == policy:
        return record
    record = dataclasses.replace(record, policy=policy)
    seal.write(client, namespace, record)
    return record


def _tell(output: Output, record: seal.Record | None, namespace: str) -> None:
    if record is None:
        output.write(f"Note: no promotion flows are sealed in namespace {namespace!r}: the "
                     "promotion flows read the policy of their own namespace (--namespace).\n")
        return
    output.write("The promotion flows' sealed settings name this policy.\n"
                 + seal.instructions(record))


def _read(path: str) -> str:
    try:
        return read_regular_file(Path(path)).decode("utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read the policy {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"the policy {path} is not UTF-8 text (byte {exc.start})") from exc


def _settings(record: seal.Record | None, stored: policy_store.Stored, namespace: str,
              expected: str | None) -> dict[str, Any] | None:
    """The promotion flows' sealed settings in this namespace, each with where it comes from,
    and whether the record names the stored policy; None when no promotion is installed here."""
    if record is None:
        return None
    policy = stored.policy.digest if stored.policy else seal.NO_POLICY
    expected = (expected or "").strip()
    return {
        "where": seal.where(namespace), "seal": record.seal,
        # only the server knows its seal: compared when the caller gives it
        "seal_matches": None if not expected else expected == record.seal,
        "policy_named": record.policy, "policy_matches": record.policy == policy,
        "package": record.package,
        "settings": {key: {"value": redact_url(record.settings[key])
                           if key in record.settings else None,
                           "from": "sealed record" if key in record.settings else "default"}
                     for key in seal.SETTINGS},
    }


def _settings_lines(settings: dict[str, Any]) -> list[str]:
    lines = [f"Promotion flows' settings: {settings['where']}, stored record's digest "
             f"{settings['seal']}"
             + {None: f" (unverified: any flow can write the record; compare it with the "
                      f"server's own {seal.SERVER_VARIABLE}, or give it as {seal.SEAL_VARIABLE})",
                True: f" (matches {seal.SEAL_VARIABLE}: these are the sealed settings)",
                False: f" (does NOT match {seal.SEAL_VARIABLE}: these are not the sealed "
                       "settings, and every run refuses)"}[settings["seal_matches"]]]
    if not settings["policy_matches"]:
        lines.append(f"  the record names policy {settings['policy_named']}, not the stored one: "
                     "every apply of the flows refuses ('policy set' again to reseal)")
    for key, entry in settings["settings"].items():
        shown = entry["value"] if entry["value"] is not None else "(unset)"
        lines.append(f"  {key:<26} {shown}  ({entry['from']})")
    return lines


def _show(output: Output, stored: policy_store.Stored, settings: dict[str, Any] | None) -> None:
    policy = stored.policy
    if output.format == "json":
        output.json({"namespace": stored.namespace, "key": POLICY_KEY, "status": stored.status(),
                     "digest": policy.digest if policy else None, "pinned": stored.pinned,
                     "mismatch": stored.mismatch,
                     "policy": policy.describe() if policy else None,
                     "text": policy.text if policy else None,
                     "promotion_settings": settings})
        return
    extra = _settings_lines(settings) if settings is not None else []
    if output.format == "markdown":
        body = f"**Production policy:** {stored.status()}\n"
        if policy is not None:
            fence = "````" if "```" in policy.text else "```"
            body += f"\n{fence}yaml\n{policy.text.rstrip()}\n{fence}\n"
        if extra:
            body += "\n```\n" + "\n".join(extra) + "\n```\n"
        output.write(body)
        return
    output.write(f"Production policy: {stored.status()}\n")
    if policy is not None:
        output.write("\n" + policy.text.rstrip() + "\n")
    if extra:
        output.write("\n" + "\n".join(extra) + "\n")

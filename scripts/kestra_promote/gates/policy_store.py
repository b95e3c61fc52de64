"""Production's policy on the target: read, stored and removed in the KV store of the policy
namespace, and checked against production's pin.

Open-source Kestra lets any flow write any namespace's KV store, so a stored policy alone proves
nothing: the pin (its digest, or ``none``) lives where flows cannot write, in a Kestra secret
backed by the server's environment (``KESTRA_PROMOTE_POLICY_DIGEST``) or in the CI system's
settings. A policy that does not match its pin refuses every apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from kestra_promote.config import check_namespace
from kestra_promote.errors import KestraError, NotFound, SettingsError, UnexpectedResponse
from kestra_promote.gates.policy import POLICY_KEY, Policy, check_pin, parse_policy
from kestra_promote.target.client import KestraClient

PIN_VARIABLE = "KESTRA_PROMOTE_POLICY_DIGEST"
NAMESPACE_VARIABLE = "KESTRA_PROMOTE_POLICY_NAMESPACE"


@dataclass(frozen=True)
class Stored:
    """What the target holds, and how far it can be trusted."""

    namespace: str
    policy: Policy | None
    pinned: bool  # production's pin was given (a digest, or none)
    mismatch: str | None = None  # why the stored policy is not the pinned one: refuse to apply

    def status(self) -> str:
        """One line for people: which policy applies and whether it is pinned."""
        if self.mismatch:
            return f"policy REFUSED: {self.mismatch}"
        if self.policy is None:
            return "no production policy is set" + (" (pinned: none)" if self.pinned else "")
        where = f"KV {self.namespace}/{POLICY_KEY}"
        if self.pinned:
            return f"production policy {self.policy.digest}, from {where}, pinned"
        return (f"production policy {self.policy.digest}, from {where}, NOT pinned: any flow "
                f"can change it (set {PIN_VARIABLE})")


def digest_of_stored(stored: Stored) -> str:
    """The stored policy's digest, ``none`` when there is none."""
    return stored.policy.digest if stored.policy is not None else "none"


def changed_since(planned_under: str, stored: Stored) -> str | None:
    """Why a saved plan, made under the policy ``planned_under`` (its digest, ``none``, or ""
    when none was read), may not be applied under the policy stored now; None when it may."""
    now = digest_of_stored(stored)
    if stored.mismatch:
        return f"production's policy: {stored.mismatch}"
    if (planned_under or "none") != now:
        return (f"production's policy changed since this plan was made ({planned_under or 'none'}"
                f" then, {now} now): nothing was written; plan again")
    return None


def read_text(client: KestraClient, namespace: str) -> str | None:
    """The stored policy's text, None when there is none."""
    try:
        value = client.kv_get(namespace, POLICY_KEY)
    except NotFound:
        return None
    if not isinstance(value, str):
        raise UnexpectedResponse(f"the KV entry {namespace}/{POLICY_KEY} is not a policy (a "
                                 f"text value): remove it with 'kestra-promote policy unset'")
    return value


def read(client: KestraClient, namespace: str, pin: str | None) -> Stored:
    """The policy stored on the target, checked against ``pin`` (None: no pin given). A stored
    policy that does not parse is an error; one that does not match its pin is returned with
    ``mismatch`` set, so plans can show it and applies refuse."""
    text = read_text(client, namespace)
    pinned = bool(pin and pin.strip())
    mismatch = check_pin(text, pin)
    if text is None:
        return Stored(namespace, None, pinned, mismatch)
    policy = parse_policy(text, f"the policy stored in {namespace}/{POLICY_KEY}")
    return Stored(namespace, policy, pinned, mismatch)


def store(client: KestraClient, namespace: str, text: str, path: str) -> Policy:
    """Validate ``text`` and store it; read back to be sure the target holds exactly it."""
    policy = parse_policy(text, path)
    client.kv_put(namespace, POLICY_KEY, text,
                  description="kestra-promote: production's policy (pin its digest)")
    if read_text(client, namespace) != text:
        raise KestraError(f"the policy read back from {namespace}/{POLICY_KEY} is not the one "
                          "written: another writer changed it")
    return policy


def remove(client: KestraClient, namespace: str) -> bool:
    return client.kv_delete(namespace, POLICY_KEY)


def read_configured(client: KestraClient, env: Mapping[str, str], home: str | None = None
                    ) -> Stored:
    """The policy where ``env`` says it is: KESTRA_PROMOTE_POLICY_NAMESPACE, else ``home`` (the
    promotion flows' own namespace), else system; checked against KESTRA_PROMOTE_POLICY_DIGEST
    (``none`` included: then a stored policy is refused)."""
    namespace = namespace_from((env.get(NAMESPACE_VARIABLE) or "").strip() or home)
    return read(client, namespace, env.get(PIN_VARIABLE))


def namespace_from(value: str | None) -> str:
    namespace = (value or "").strip() or "system"
    if (why := check_namespace(namespace)) is not None:
        raise SettingsError(f"{NAMESPACE_VARIABLE}: {why}")
    return namespace

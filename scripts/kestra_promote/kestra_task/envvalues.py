"""Settings of the promotion flows' tasks, read from their environment variables: Kestra
renders an unset input as an empty text (or ``null``), and ``default`` / ``settings`` mean
"as the repository's settings say"."""

from __future__ import annotations

from typing import Mapping

from kestra_promote.errors import SettingsError


def flag(env: Mapping[str, str], name: str) -> bool | None:
    value = (env.get(name) or "").strip().lower()
    if value in ("", "default", "settings"):
        return None
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise SettingsError(f"{name} must be true or false, not {value!r}")


def text(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    return value if value and value.lower() not in ("null", "none", "default", "settings") else None

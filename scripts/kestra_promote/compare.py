"""What counts as "the same" on a Kestra target: source normalisation and content hashes."""

from __future__ import annotations

import base64
import functools
import hashlib
import re

# Kestra drops a top-level `revision:` line from stored sources and ignores it when comparing.
_REVISION_LINE = re.compile(r"^revision:[^\n]*(?:\n|$)", re.MULTILINE)


def normalize(source: str) -> str:
    """A source as Kestra compares it: line endings unified, any ``revision:`` line removed.

    Everything else (whitespace, comments) is significant: Kestra stores a new revision for it,
    so a plan must show it as a change too.
    """
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    return _REVISION_LINE.sub("", text)


def _digest(data: bytes) -> str:
    """The first 128 bits of SHA-256, in 22 URL-safe base64 characters: enough to tell any two
    contents apart (no one can make a second text with the same value), and small enough for
    an inventory of ten thousand flows to fit in one request body."""
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()[:16]).decode().rstrip("=")


def from_legacy(value: str) -> str:
    """A hash as inventories before this format wrote it (``sha256:<hex>``), as now."""
    if value.startswith("sha256:") and len(value) == 71:
        raw = bytes.fromhex(value[7:])[:16]
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return value


@functools.lru_cache(maxsize=1 << 15)
def source_hash(text: str) -> str:
    """A plan asks this of the same source several times (planning, the saved plan, the
    inventory): each text is hashed once (a text's own hash, which the lookup needs, is kept by
    Python)."""
    return _digest(normalize(text).encode())


def content_hash(data: bytes) -> str:
    return _digest(data)


def same_content(a: str | bytes | None, b: str | bytes | None) -> bool:
    """Whether two contents are the same object's same version: sources as Kestra compares
    them (``normalize``), file bytes exactly, and None (no object) only with None."""
    if isinstance(a, str) and isinstance(b, str):
        return source_hash(a) == source_hash(b)
    return a == b


def origin_hash(fingerprint: str, text: str) -> str:
    """A flow file's text (as Git holds it) under the settings and code that turn it into what
    is deployed (``fingerprint``): equal hashes give equal results."""
    return _digest(f"{fingerprint}\n{text}".encode())

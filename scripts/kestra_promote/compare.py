"""What counts as "the same" on a Kestra target: source normalisation and content hashes."""

from __future__ import annotations

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


def source_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(normalize(text).encode()).hexdigest()


def content_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def origin_hash(fingerprint: str, text: str) -> str:
    """A flow file's text (as Git holds it) under the settings and code that turn it into what
    is deployed (``fingerprint``): equal hashes give equal results."""
    return "sha256:" + hashlib.sha256(f"{fingerprint}\n{text}".encode()).hexdigest()

"""What counts as "the same" on a Kestra target: source normalisation and content hashes."""

from __future__ import annotations

import base64
import functools
import hashlib
import re

# Kestra stores a flow's source as it was sent, and makes no new revision when the new source
# equals the stored one once the first line reading `revision: <digits>` (and the newline right
# after it) is taken out of both: FlowInterface.isSameWithSource and sourceWithoutRevision
# (core/.../models/flows/FlowInterface.java), used by AbstractJdbcFlowRepository.save, the same
# on 1.3 and 2.0. Java's `(?m)^` starts a line after any of its line terminators; `\d` is ASCII.
_REVISION_LINE = re.compile("(?:^|(?<=[\n\r\x85\u2028\u2029]))revision: [0-9]+\n?")


def normalize(source: str) -> str:
    """A source as Kestra compares it: the first ``revision: <n>`` line taken out.

    Everything else is significant, line endings included (a CRLF source is not an LF one):
    Kestra stores a new revision for any other difference, so a plan shows it as a change too.
    """
    return _REVISION_LINE.sub("", source, count=1)


def line_endings(text: str) -> str:
    """The line endings of ``text``, to name them: "CRLF", "LF", "CR", "mixed" or "none"."""
    crlf = text.count("\r\n")
    lf, cr = text.count("\n") - crlf, text.count("\r") - crlf
    kinds = [name for name, count in (("CRLF", crlf), ("LF", lf), ("CR", cr)) if count]
    return kinds[0] if len(kinds) == 1 else "mixed" if kinds else "none"


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

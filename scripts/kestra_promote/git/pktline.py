"""Git's pkt-line framing, as its smart protocols speak it over HTTP: a 4-hex-digit length
(counting itself), then that many bytes; ``0000`` is a flush, and protocol v2's ``0001``
(delimiter) and ``0002`` (response end) carry no payload either."""

from __future__ import annotations

import re
from typing import Iterator

_HEX4 = re.compile(rb"[0-9a-f]{4}")


def pkt(payload: bytes) -> bytes:
    """``payload`` framed as one pkt-line."""
    return b"%04x" % (len(payload) + 4) + payload


def read_pkt(data: bytes, at: int) -> tuple[bytes | None, int]:
    """(the payload of the pkt-line at ``at``, None for a flush or other special line; where
    the next one starts). ValueError when the bytes there are not one."""
    if at + 4 > len(data):
        raise ValueError("truncated pkt-line")
    if not _HEX4.fullmatch(data[at:at + 4]):
        raise ValueError("not pkt-line framing")
    size = int(data[at:at + 4], 16)
    if size in (0, 1, 2):
        return None, at + 4
    if size < 4 or at + size > len(data):
        raise ValueError("truncated pkt-line")
    return data[at + 4:at + size], at + size


def pkt_lines(data: bytes) -> Iterator[bytes | None]:
    """The payloads of the pkt-lines filling ``data``, None for a flush."""
    at = 0
    while at < len(data):
        line, at = read_pkt(data, at)
        yield line

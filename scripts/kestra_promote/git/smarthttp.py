"""What Git's smart HTTP protocol shares between fetching and pushing: the pkt-line framing (a
4-hex-digit length counting itself, then that many bytes; ``0000`` is a flush, and protocol v2's
``0001`` delimiter and ``0002`` response end carry no payload either), a service's ref
advertisement (``info/refs?service=...``), and URLs shown without their credentials."""

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


_SHA = re.compile(r"[0-9a-f]{40}")


def parse_service_advertisement(data: bytes, service: str
                                ) -> tuple[dict[str, str], dict[str, str]]:
    """(ref name -> id, capability -> value) from what a server answers to GET
    info/refs?service=``service`` (protocol v0). ValueError when it is not such an answer."""
    lines = pkt_lines(data)
    if next(lines, None) != b"# service=" + service.encode() + b"\n":
        raise ValueError(f"not a {service} advertisement")
    refs: dict[str, str] = {}
    capabilities: dict[str, str] = {}
    for line in lines:
        if line is None:
            continue
        text, nul, caps = line.rstrip(b"\n").partition(b"\0")
        if nul and not capabilities:
            for word in caps.decode("utf-8", "replace").split():
                key, _, value = word.partition("=")
                capabilities[key] = value
        sha, _, name = text.decode("utf-8", "replace").partition(" ")
        if _SHA.fullmatch(sha) and name and name != "capabilities^{}":
            refs[name] = sha
    return refs, capabilities


def shown(text: str) -> str:
    """``text`` (a URL, or a message naming one) without any user or password in its URLs."""
    return re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@", r"\1", text)

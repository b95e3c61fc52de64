"""Git's pack format, read in pure Python: object headers, deltas, and a whole pack as a server
sends it (no index: each object is inflated in turn to find where the next one starts).

``history`` reads a repository's packs (with their index) through the same object headers and
deltas; ``treefetch`` reads the pack a server sends for one commit.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

from kestra_promote.errors import SettingsError

TYPES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}
OFS_DELTA, REF_DELTA = 6, 7
_CHUNK = 1 << 16


class PackError(SettingsError):
    """Bytes that are not a pack (or a delta) Git would write."""


def object_id(kind: bytes, body: bytes) -> str:
    """Git's name for an object: the SHA-1 of its header and content."""
    return hashlib.sha1(kind + b" %d\0" % len(body) + body).hexdigest()


def varint(data: bytes, at: int) -> tuple[int, int]:
    """A delta's size: 7 bits a byte, least significant first."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def apply_delta(base: bytes, delta: bytes) -> bytes:
    """Git's delta format: source and target sizes, then copy and insert instructions."""
    size, at = varint(delta, 0)
    if size != len(base):
        raise PackError("a delta of the repository does not fit its base object")
    size, at = varint(delta, at)
    out = bytearray()
    while at < len(delta):
        op = delta[at]
        at += 1
        if op & 0x80:  # copy from the base: offset and size in the bytes the flags name
            offset = length = 0
            for i in range(4):
                if op & (1 << i):
                    offset |= delta[at] << (8 * i)
                    at += 1
            for i in range(3):
                if op & (1 << (4 + i)):
                    length |= delta[at] << (8 * i)
                    at += 1
            out += base[offset:offset + (length or 0x10000)]
        elif op:  # insert the next ``op`` bytes
            out += delta[at:at + op]
            at += op
        else:
            raise PackError("a delta of the repository has an unknown instruction")
    if len(out) != size:
        raise PackError("a delta of the repository does not give its stated size")
    return bytes(out)


def entry_header(data: bytes, offset: int) -> tuple[int, int, int | str | None, int]:
    """(kind, inflated size, base, where the compressed data starts) of the pack entry at
    ``offset``: the base is the offset of an offset delta's base, the id of a ref delta's,
    None for a whole object."""
    byte = data[offset]
    kind, size, shift, at = (byte >> 4) & 7, byte & 0x0F, 4, offset + 1
    while byte & 0x80:
        byte = data[at]
        at += 1
        size |= (byte & 0x7F) << shift
        shift += 7
    base: int | str | None = None
    if kind == OFS_DELTA:
        byte = data[at]
        at += 1
        distance = byte & 0x7F
        while byte & 0x80:
            byte = data[at]
            at += 1
            distance = ((distance + 1) << 7) | (byte & 0x7F)
        base = offset - distance
    elif kind == REF_DELTA:
        base = bytes(data[at:at + 20]).hex()
        at += 20
    elif kind not in TYPES:
        raise PackError("a pack of the repository holds an unknown kind of object")
    return kind, size, base, at


def _inflate(data: memoryview, at: int, end: int, size: int) -> tuple[bytes, int]:
    """The ``size`` bytes deflated at ``at`` (before ``end``), and where their stream ends."""
    stream, parts, got, where = zlib.decompressobj(), [], 0, at
    while not stream.eof:
        if where >= end:
            raise PackError("the pack is truncated")
        chunk = data[where:min(where + _CHUNK, end)]
        part = stream.decompress(chunk, size + 1 - got)  # never more than was announced
        got += len(part)
        parts.append(part)
        if got > size:
            raise PackError("an object of the pack is larger than it says")
        where += len(chunk)
    body = b"".join(parts)
    if len(body) != size:
        raise PackError("an object of the pack is smaller than it says")
    return body, where - len(stream.unused_data)


class PackObjects:
    """The objects of one whole pack, as a server sends it (no thin pack: every delta's base
    is in it), deltas resolved; read like ``history.Objects``."""

    def __init__(self, pack: bytes) -> None:
        if len(pack) < 32 or pack[:4] != b"PACK":
            raise PackError("the server's answer holds no pack")
        version, count = struct.unpack(">II", pack[4:12])
        if version not in (2, 3):
            raise PackError(f"unknown pack version {version}")
        if hashlib.sha1(memoryview(pack)[:-20]).digest() != pack[-20:]:
            raise PackError("the pack's checksum does not match: it was damaged on the way")
        view, end, at = memoryview(pack), len(pack) - 20, 12
        entries: list[tuple[int, int, int | str | None, bytes]] = []
        try:
            for _ in range(count):
                start = at
                kind, size, base, at = entry_header(view, at)
                body, at = _inflate(view, at, end, size)
                entries.append((start, kind, base, body))
        except (IndexError, zlib.error) as exc:
            raise PackError(f"the pack cannot be read: {type(exc).__name__}") from None
        if at != end:
            raise PackError("the pack holds more than its objects")
        self._objects: dict[str, tuple[bytes, bytes]] = {}
        self._resolve(entries)

    def _resolve(self, entries: list[tuple[int, int, int | str | None, bytes]]) -> None:
        at_offset: dict[int, tuple[bytes, bytes]] = {}
        pending = []
        for start, kind, base, body in entries:
            if base is None:
                at_offset[start] = (TYPES[kind], body)
                self._objects[object_id(TYPES[kind], body)] = at_offset[start]
            else:
                pending.append((start, base, body))
        while pending:  # an offset delta's base comes before it; a ref delta's may not
            left = []
            for start, base, delta in pending:
                found = at_offset.get(base) if isinstance(base, int) else self._objects.get(base)
                if found is None:
                    left.append((start, base, delta))
                    continue
                at_offset[start] = (found[0], apply_delta(found[1], delta))
                self._objects[object_id(*at_offset[start])] = at_offset[start]
            if len(left) == len(pending):
                raise PackError("a delta's base is not in the pack")
            pending = left

    def read(self, sha: str) -> tuple[bytes, bytes]:
        """(kind, content) of the object ``sha``; KeyError when the pack lacks it."""
        return self._objects[sha]

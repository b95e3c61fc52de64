"""Whether a commit is in a branch's history, read from `.git` directly: no `git` binary needed.

The promotion flows run in a Kestra worker, whose image has no `git`: Kestra's Clone task (JGit)
writes the repository, and this module reads its commits. It reads loose objects and pack files
(index versions 1 and 2, deltas resolved), the commit headers only (``parent`` lines), and walks
the parents from a branch's head. A shallow clone's history stops at its boundary (``.git/
shallow``): a commit beyond it is not found, so an answer of "not in the history" is never given
for a commit the walk could not see without saying so.
"""

from __future__ import annotations

import mmap
import re
import struct
import zlib
from pathlib import Path
from typing import Callable

from kestra_promote.errors import SettingsError
from kestra_promote.git.gitinfo import read_commit
from kestra_promote.git.packfile import TYPES, PackError, apply_delta, entry_header

_SHA = re.compile(r"[0-9a-f]{40}")
MAX_COMMITS = 1_000_000  # a walk this long is refused rather than left to run for ever


class HistoryError(SettingsError):
    """The repository cannot be read well enough to answer."""


class _Pack:
    """One pack file and its index, mapped rather than read: objects are found by a binary
    search of the index's sorted names, as Git does."""

    def __init__(self, index: Path) -> None:
        with open(index.with_suffix(".pack"), "rb") as handle:
            self.data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        raw = index.read_bytes()
        if raw[:4] == b"\xfftOc":
            if struct.unpack(">I", raw[4:8])[0] != 2:
                raise HistoryError(f"{index.name}: unknown pack index version")
            self.version, fanout = 2, 8
        else:  # version 1: the fan-out table, then (offset, name) pairs
            self.version, fanout = 1, 0
        self.raw, self.count = raw, struct.unpack(">I", raw[fanout + 255 * 4:fanout + 256 * 4])[0]
        self.names = fanout + 256 * 4

    def _name(self, i: int) -> bytes:
        if self.version == 2:
            return self.raw[self.names + i * 20:self.names + (i + 1) * 20]
        return self.raw[self.names + i * 24 + 4:self.names + i * 24 + 24]

    def find(self, name: bytes) -> int | None:
        """The offset of the object ``name`` in the pack, or None."""
        low, high = 0, self.count
        while low < high:
            middle = (low + high) // 2
            if self._name(middle) < name:
                low = middle + 1
            else:
                high = middle
        if low == self.count or self._name(low) != name:
            return None
        if self.version == 1:
            return struct.unpack(">I", self.raw[self.names + low * 24:self.names + low * 24 + 4])[0]
        offsets = self.names + self.count * 24  # after the names and their CRCs
        offset = struct.unpack(">I", self.raw[offsets + low * 4:offsets + low * 4 + 4])[0]
        if offset & 0x80000000:  # a pack past 2 GiB: the offset is in the large-offset table
            slot = offsets + self.count * 4 + (offset & 0x7FFFFFFF) * 8
            offset = struct.unpack(">Q", self.raw[slot:slot + 8])[0]
        return offset

    def _inflate(self, at: int) -> bytes:
        return zlib.decompressobj().decompress(memoryview(self.data)[at:])

    def read(self, offset: int, lookup: Callable[[str], tuple[bytes, bytes]]
             ) -> tuple[bytes, bytes]:
        try:
            kind, size, base, at = entry_header(self.data, offset)
            if isinstance(base, int):
                base_kind, body = self.read(base, lookup)
                return base_kind, apply_delta(body, self._inflate(at))
            if base is not None:
                base_kind, body = lookup(base)
                return base_kind, apply_delta(body, self._inflate(at))
        except PackError as exc:
            raise HistoryError(str(exc)) from None
        return TYPES[kind], self._inflate(at)[:size]


class Objects:
    """The object store of a repository (its ``objects`` folder, and those its
    ``info/alternates`` names): loose objects and packs, read only."""

    def __init__(self, common_dir: Path) -> None:
        config = common_dir / "config"
        if config.is_file() and re.search(r"objectformat\s*=\s*sha256",
                                          config.read_text(errors="replace"), re.I):
            raise HistoryError("repositories with SHA-256 object names cannot be read here")
        self.folders = [common_dir / "objects"]
        alternates = self.folders[0] / "info" / "alternates"
        if alternates.is_file():  # a clone sharing another's objects (--shared, --reference)
            for line in alternates.read_text(errors="replace").splitlines():
                if line.strip() and not line.startswith("#"):
                    self.folders.append((self.folders[0] / line.strip()).resolve())
        self.objects = self.folders[0]
        self.packs = [_Pack(index) for folder in self.folders
                      for index in sorted((folder / "pack").glob("*.idx"))]

    def read(self, sha: str) -> tuple[bytes, bytes]:
        """(kind, content) of the object ``sha``; KeyError when the store lacks it."""
        for folder in self.folders:
            loose = folder / sha[:2] / sha[2:]
            if loose.is_file():
                raw = zlib.decompress(loose.read_bytes())
                header, _, body = raw.partition(b"\0")
                return header.split(b" ")[0], body
        name = bytes.fromhex(sha)
        for pack in self.packs:
            if (offset := pack.find(name)) is not None:
                return pack.read(offset, self.read)
        raise KeyError(sha)


class Repository(Objects):
    """The objects of one repository's `.git` folder (read only, commits on demand)."""

    def __init__(self, folder: Path) -> None:
        git_dir = folder / ".git"
        if not git_dir.is_dir():
            raise HistoryError(f"{folder} is not a clone of the repository")
        super().__init__(git_dir)
        shallow = git_dir / "shallow"
        self.shallow = set(shallow.read_text().split()) if shallow.is_file() else set()
        self.head = read_commit(folder)

    def parents(self, sha: str) -> list[str]:
        kind, body = self.read(sha)
        if kind != b"commit":
            raise HistoryError(f"{sha} is not a commit")
        found = []
        for line in body.split(b"\n"):
            if not line:  # the headers end at the first empty line
                break
            if line.startswith(b"parent "):
                found.append(line[7:].decode("ascii"))
        return found


def contains(folder: Path, commit: str) -> bool:
    """Whether ``commit`` (a full SHA) is the commit checked out in ``folder`` or one of its
    ancestors. HistoryError when the walk cannot tell: a shallow clone whose boundary was
    reached, a missing object, a repository this module cannot read."""
    if not _SHA.fullmatch(commit):
        raise HistoryError(f"{commit!r} is not a full commit id")
    try:
        repo = Repository(folder)
        if repo.head is None:
            raise HistoryError(f"{folder} has no commit checked out")
        seen, todo = {repo.head}, [repo.head]
        cut = False
        while todo:
            sha = todo.pop()
            if sha == commit:
                return True
            if len(seen) > MAX_COMMITS:
                raise HistoryError(f"the history holds more than {MAX_COMMITS} commits")
            if sha in repo.shallow:
                cut = True
                continue
            for parent in repo.parents(sha):
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
    except KeyError as missing:
        raise HistoryError(f"the clone lacks commit {missing.args[0]}: its history is "
                           "incomplete") from None
    except (OSError, ValueError, IndexError, zlib.error, struct.error) as exc:
        raise HistoryError(f"cannot read the clone's history: {exc}") from None
    if cut:
        raise HistoryError("the clone is shallow: its history ends before the commit could be "
                           "found")
    return False



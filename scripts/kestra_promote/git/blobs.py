"""The bytes a commit holds for a file, rather than the ones a checkout wrote.

A checkout converts what Git holds on the way to the working tree: ``core.autocrlf`` and the
``text`` / ``eol`` attributes change line endings, ``ident`` expands ``$Id$``,
``working-tree-encoding`` re-encodes. Two clones of one commit can so hold different bytes, and
promoting the working tree's would make each of them rewrite what the other wrote. So a file the
commit holds, and the working tree does not change (``git status``: clean), is promoted as the
commit's blob. Two exceptions keep the working tree's bytes:

- a file that differs from the commit (edited, staged: only promoted with ``--allow-dirty``),
  which the commit does not hold;
- a file with a ``filter`` attribute (Git LFS, git-crypt): the commit holds a pointer or a
  ciphertext, the filter's output is the content.

A working-tree file whose bytes hash to the commit's blob id is that blob: nothing more is read
or asked. Only the files that differ are looked at: one ``git status`` and one ``git check-attr``
for all of them, and their blobs read from the repository's objects (``history.Objects``, no
``git`` needed for that). Where this cannot be told (no ``git`` command, a repository these
readers do not know, an object missing from a partial clone), the working tree's bytes are
promoted, as a checkout holds them.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from kestra_promote.git.gitinfo import _common_dir, _git_dir, read_commit
from kestra_promote.git.history import HistoryError, Objects
from kestra_promote.git.packfile import PackObjects

_REGULAR = (b"100644", b"100755")
# what the working tree may not be taken for the commit's blob: (changed, filtered) paths
Ask = Callable[[Sequence[str]], "tuple[set[str], set[str]] | None"]


def blob_id(data: bytes) -> str:
    """The id Git gives ``data`` as a blob."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class CommitFiles:
    """The regular files of one commit, by their path from the repository's top."""

    def __init__(self, objects: Objects | PackObjects, commit: str) -> None:
        self.objects = objects
        kind, body = objects.read(commit)
        if kind != b"commit" or not body.startswith(b"tree "):
            raise HistoryError(f"{commit} is not a commit")
        self._trees: dict[str, dict[bytes, tuple[bytes, str]]] = {}
        self.root = body[5:45].decode("ascii")

    def tree(self, sha: str) -> dict[bytes, tuple[bytes, str]]:
        """name -> (mode, id) of the tree ``sha`` (each tree read once)."""
        if sha not in self._trees:
            kind, body = self.objects.read(sha)
            if kind != b"tree":
                raise HistoryError(f"{sha} is not a tree")
            entries, at = {}, 0
            while at < len(body):
                space = body.index(b" ", at)
                nul = body.index(b"\0", space)
                entries[body[space + 1:nul]] = (body[at:space], body[nul + 1:nul + 21].hex())
                at = nul + 21
            self._trees[sha] = entries
        return self._trees[sha]

    def blob(self, path: str) -> str | None:
        """The blob id of the regular file at ``path`` ("a/b.txt"), None when the commit holds
        none there (a symlink, a submodule, a folder, nothing)."""
        tree, parts = self.root, os.fsencode(path).split(b"/")
        for depth, part in enumerate(parts):
            entry = self.tree(tree).get(part)
            if entry is None:
                return None
            mode, sha = entry
            if depth == len(parts) - 1:
                return sha if mode in _REGULAR else None
            if mode != b"40000":
                return None
            tree = sha
        return None

    def read(self, blob: str) -> bytes:
        kind, body = self.objects.read(blob)
        if kind != b"blob":
            raise HistoryError(f"{blob} is not a blob")
        return body


@dataclass
class Committed:
    """Where a source's files were read from: the working tree ``top`` of a checkout of
    ``files``' commit. ``ask`` tells which of some paths (from ``top``) differ from the commit
    and which have a filter, None when it cannot tell."""

    top: Path
    files: CommitFiles
    ask: Ask

    def bytes_of(self, read: Sequence[tuple[Path, bytes]]) -> list[bytes]:
        """The bytes to promote for each (real path, working-tree bytes) of ``read``."""
        out = [data for _, data in read]
        differing: dict[int, tuple[str, str]] = {}
        top = os.path.join(str(self.top), "")
        for index, (path, data) in enumerate(read):
            name = str(path)
            if not name.startswith(top):
                continue  # outside the checkout: as it holds it
            rel = name[len(top):].replace(os.sep, "/")
            try:
                blob = self.files.blob(rel)
            except (KeyError, HistoryError, OSError, ValueError, zlib.error, struct.error,
                    IndexError):
                continue  # not readable here: as the checkout holds it
            if blob is not None and blob != blob_id(data):
                differing[index] = (rel, blob)
        if not differing:
            return out
        answer = self.ask(sorted({rel for rel, _ in differing.values()}))
        if answer is None:
            return out
        changed, filtered = answer
        for index, (rel, blob) in differing.items():
            if rel in changed or rel in filtered:
                continue
            try:
                out[index] = self.files.read(blob)
            except (KeyError, HistoryError, OSError, zlib.error, struct.error, IndexError):
                pass  # a partial clone's missing object: as the checkout holds it
        return out


def _run(top: Path, args: Sequence[str], stdin: bytes | None = None,
         env: Mapping[str, str] | None = None) -> bytes | None:
    try:
        done = subprocess.run(["git", "-C", str(top), *args], input=stdin, capture_output=True,
                              env={**os.environ, "GIT_LITERAL_PATHSPECS": "1", **(env or {})},
                              check=False)
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def filtered(top: Path, paths: Sequence[str], git: Sequence[str] = (),
             env: Mapping[str, str] | None = None) -> set[str] | None:
    """Which of ``paths`` have a ``filter`` attribute (``git check-attr``); None: cannot tell."""
    output = _run(top, [*git, "check-attr", "-z", "--stdin", "filter"],
                  b"".join(os.fsencode(p) + b"\0" for p in paths), env)
    if output is None:
        return None
    fields = output.split(b"\0")
    return {os.fsdecode(fields[i]) for i in range(0, len(fields) - 2, 3)
            if fields[i + 2] not in (b"unspecified", b"unset")}


def changed(top: Path) -> set[str] | None:
    """The tracked files of the checkout at ``top`` that differ from its commit (staged or
    not), by path from ``top``; None: cannot tell."""
    output = _run(top, ["status", "--porcelain=v1", "-z", "--untracked-files=no",
                        "--no-renames", "--ignore-submodules"])
    if output is None:
        return None
    return {os.fsdecode(entry[3:]) for entry in output.split(b"\0") if len(entry) > 3}


def _ask_checkout(top: Path) -> Ask:
    def ask(paths: Sequence[str]) -> tuple[set[str], set[str]] | None:
        modified, with_filter = changed(top), filtered(top, paths)
        if modified is None or with_filter is None:
            return None
        return modified, with_filter
    return ask


def for_checkout(folder: Path) -> Committed | None:
    """How to read the files under ``folder`` as its checkout's commit holds them; None when
    ``folder`` is in no repository this can read (or one without a commit)."""
    try:
        start = Path(os.path.realpath(folder))
        git_dir = _git_dir(start)
        commit = read_commit(start)
        if git_dir is None or commit is None:
            return None
        top = next((p for p in (start, *start.parents) if os.path.lexists(p / ".git")), None)
        if top is None:
            return None
        return Committed(top, CommitFiles(Objects(_common_dir(git_dir)), commit),
                         _ask_checkout(top))
    except (OSError, ValueError, KeyError, HistoryError, zlib.error, struct.error, IndexError):
        return None


def exactly(top: Path, git_dir: Path, commit: str, *, git: Sequence[str] = (),
            env: Mapping[str, str] | None = None) -> Committed | None:
    """How to read the files of a folder ``top`` that holds exactly ``commit`` as written by a
    checkout (``--ref``): nothing differs from the commit; ``git`` and ``env`` make ``git
    check-attr`` read that checkout's attributes. None when the repository cannot be read."""
    def ask(paths: Sequence[str]) -> tuple[set[str], set[str]] | None:
        with_filter = filtered(top, paths, git, env)
        return None if with_filter is None else (set(), with_filter)

    try:
        return Committed(top, CommitFiles(Objects(_common_dir(git_dir)), commit), ask)
    except (OSError, ValueError, KeyError, HistoryError, zlib.error, struct.error, IndexError):
        return None

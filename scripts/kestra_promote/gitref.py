"""`--ref`: promote a given commit, branch or tag of a local Git repository.

The files of that commit are written, byte for byte as committed, to a temporary folder, which is
then read like any checkout: this is how a rollback to an earlier commit is done. `git archive` is
not used: `.gitattributes` may leave files out of it (export-ignore) or rewrite them
(export-subst), and what is promoted must be exactly what was reviewed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path, PurePosixPath
from typing import Iterator

from .errors import SettingsError

_SYMLINK, _SUBMODULE = "120000", "160000"


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], input=stdin,
                              capture_output=True, check=False)
    except OSError as exc:
        raise SettingsError(f"--ref needs the git command: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise SettingsError(f"git {' '.join(args)}: {message[-1] if message else 'failed'}")
    return done.stdout


def _entries(top: Path, commit: str, prefix: str) -> list[tuple[str, str, str]]:
    """(mode, blob id, path) of every file under ``prefix`` in ``commit``."""
    listing = _git(top, "ls-tree", "-r", "-z", "--full-tree", commit)
    entries = []
    for record in listing.split(b"\0"):
        if not record:
            continue
        meta, _, name = record.partition(b"\t")
        mode, kind, blob = meta.decode().split(" ")
        path = os.fsdecode(name)
        if kind == "blob" and (not prefix or path.startswith(prefix)):
            entries.append((mode, blob, path))
    return entries


def _blobs(top: Path, ids: list[str]) -> Iterator[bytes]:
    """The content of each blob, in order, from one `git cat-file --batch`."""
    out = _git(top, "cat-file", "--batch", stdin="".join(f"{i}\n" for i in ids).encode())
    at = 0
    for blob in ids:
        header_end = out.index(b"\n", at)
        name, kind, size = out[at:header_end].decode().split(" ")
        if name != blob or kind != "blob":  # pragma: no cover - git answers in order
            raise SettingsError(f"git cat-file: unexpected answer for {blob}")
        start = header_end + 1
        yield out[start:start + int(size)]
        at = start + int(size) + 1


def _write(root: Path, entries: list[tuple[str, str, str]], top: Path) -> None:
    for (mode, _, path), content in zip(entries, _blobs(top, [blob for _, blob, _ in entries])):
        parts = PurePosixPath(path).parts
        if ".." in parts or not parts:  # pragma: no cover - git refuses such paths
            continue
        target = root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == _SYMLINK:
            # kept as a link: reading the source reports one leading outside the folder, as it
            # would for a checkout
            os.symlink(os.fsdecode(content), target)
        else:
            target.write_bytes(content)


@contextlib.contextmanager
def checkout(repo: str, ref: str) -> Iterator[tuple[str, str]]:
    """Yield (folder holding the files of ``ref``, its full commit id); the folder is temporary.

    ``repo`` may be a subfolder of the repository: the same subfolder of the ref is yielded.
    """
    if not ref.strip():
        raise SettingsError("--ref needs a commit, branch or tag name")
    path = Path(repo).resolve()
    try:
        top = Path(_git(path, "rev-parse", "--show-toplevel").decode().strip())
    except SettingsError:
        raise SettingsError(f"--ref needs SOURCE in a Git repository, and {path} is in none"
                            ) from None
    try:
        commit = _git(path, "rev-parse", "--verify", "--quiet", "--end-of-options",
                      f"{ref}^{{commit}}").decode().strip()
    except SettingsError:
        raise SettingsError(f"no commit, branch or tag named {ref!r} in {top}") from None
    prefix = _git(path, "rev-parse", "--show-prefix").decode().strip()
    entries = _entries(top, commit, prefix)
    if prefix and not entries:
        raise SettingsError(f"{prefix.rstrip('/')} holds no file at {ref} ({commit[:12]}) in {top}")
    with tempfile.TemporaryDirectory(prefix="kestra-promote-") as tmp:
        root = Path(tmp)
        _write(root, entries, top)
        folder = root / prefix
        folder.mkdir(parents=True, exist_ok=True)
        yield str(folder), commit

"""The commit a checkout is at, read from `.git` directly: no `git` binary needed.

Handles a `.git` folder or a `.git` file (worktrees, submodules), symbolic and detached HEAD,
loose refs and `packed-refs`. Returns None when the folder is not in a Git repository or the
branch has no commit yet.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from kestra_promote.config import read_regular_file

_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # a whole value: fullmatch


def _read(path: Path) -> str:
    """A small text file of the repository (never blocks on a FIFO; OSError or ValueError)."""
    return read_regular_file(path).decode("utf-8")


def _git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            text = _read(dot_git).strip()
            if text.startswith("gitdir:"):
                target = Path(text[len("gitdir:") :].strip())
                return target if target.is_absolute() else Path(os.path.realpath(folder / target))
    return None


def _common_dir(git_dir: Path) -> Path:
    pointer = git_dir / "commondir"
    if pointer.is_file():
        target = Path(_read(pointer).strip())
        return target if target.is_absolute() else Path(os.path.realpath(git_dir / target))
    return git_dir


def _resolve_ref(ref: str, git_dir: Path, common: Path) -> str | None:
    for _ in range(10):  # symbolic refs may chain; bound it
        for base in (git_dir, common):
            loose = base / ref
            if loose.is_file():
                value = _read(loose).strip()
                break
        else:
            return _packed_ref(ref, common)
        if value.startswith("ref:"):
            ref = value[4:].strip()
            continue
        return value if _SHA.fullmatch(value) else None
    return None


def _packed_ref(ref: str, common: Path) -> str | None:
    packed = common / "packed-refs"
    if not packed.is_file():
        return None
    for line in _read(packed).splitlines():
        if not line or line[0] in "#^":
            continue
        sha, _, name = line.partition(" ")
        if name.strip() == ref and _SHA.fullmatch(sha):
            return sha
    return None


def read_commit(folder: Path) -> str | None:
    """The full commit id HEAD points to, for ``folder`` or the repository containing it."""
    try:
        git_dir = _git_dir(Path(os.path.realpath(folder)))
        if git_dir is None:
            return None
        head = _read(git_dir / "HEAD").strip()
        if head.startswith("ref:"):
            return _resolve_ref(head[4:].strip(), git_dir, _common_dir(git_dir))
        return head if _SHA.fullmatch(head) else None
    except (OSError, ValueError):  # unreadable, a FIFO, not UTF-8: no commit to tell
        return None

"""The commit a checkout is at, read from `.git` directly: no `git` binary needed.

Handles a `.git` folder or a `.git` file (worktrees, submodules), symbolic and detached HEAD,
loose refs and `packed-refs`. Returns None when the folder is not in a Git repository or the
branch has no commit yet.
"""

from __future__ import annotations

import re
from pathlib import Path

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


def _git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            text = dot_git.read_text(encoding="utf-8").strip()
            if text.startswith("gitdir:"):
                target = Path(text[len("gitdir:") :].strip())
                return target if target.is_absolute() else (folder / target).resolve()
    return None


def _common_dir(git_dir: Path) -> Path:
    pointer = git_dir / "commondir"
    if pointer.is_file():
        target = Path(pointer.read_text(encoding="utf-8").strip())
        return target if target.is_absolute() else (git_dir / target).resolve()
    return git_dir


def _resolve_ref(ref: str, git_dir: Path, common: Path) -> str | None:
    for _ in range(10):  # symbolic refs may chain; bound it
        for base in (git_dir, common):
            loose = base / ref
            if loose.is_file():
                value = loose.read_text(encoding="utf-8").strip()
                break
        else:
            return _packed_ref(ref, common)
        if value.startswith("ref:"):
            ref = value[4:].strip()
            continue
        return value if _SHA.match(value) else None
    return None


def _packed_ref(ref: str, common: Path) -> str | None:
    packed = common / "packed-refs"
    if not packed.is_file():
        return None
    for line in packed.read_text(encoding="utf-8").splitlines():
        if not line or line[0] in "#^":
            continue
        sha, _, name = line.partition(" ")
        if name.strip() == ref and _SHA.match(sha):
            return sha
    return None


def read_commit(folder: Path) -> str | None:
    """The full commit id HEAD points to, for ``folder`` or the repository containing it."""
    try:
        git_dir = _git_dir(folder.resolve())
        if git_dir is None:
            return None
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if head.startswith("ref:"):
            return _resolve_ref(head[4:].strip(), git_dir, _common_dir(git_dir))
        return head if _SHA.match(head) else None
    except OSError:
        return None

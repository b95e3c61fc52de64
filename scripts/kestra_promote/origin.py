"""Where a source comes from, and whether it is exactly a commit.

``origin``: the repository a checkout was cloned from (its ``origin`` remote, without
credentials or scheme, so that an HTTPS and an SSH clone of one repository agree) and the folder
of the repository the flows are read from. The inventory records it: two repositories that left
``name`` at its default must not share one inventory, or one's prune would delete the other's
flows. Read from ``.git`` directly (the Kestra flows run where there may be no ``git`` binary).

``uncommitted``: the files a promotion reads that differ from the commit (edited, new, or
ignored by Git): promoting them would record a commit that does not hold them. This asks the
``git`` binary.
"""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path
from typing import Iterable

from .gitinfo import _common_dir, _git_dir

_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?([^:/]+):(?!/)(.+)$")  # git@host:owner/repo.git
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?([^/:]+)(?::\d+)?(/.*)?$", re.IGNORECASE)


def normalize_remote(url: str) -> str:
    """``host/path`` of a remote URL: no scheme, user, password, port or ``.git`` suffix."""
    url = url.strip()
    if url.lower().startswith("file://"):
        return "file:" + url[len("file://"):].rstrip("/").removesuffix(".git")
    if match := _URL.fullmatch(url):
        host, path = match.group(1).lower(), match.group(2) or ""
    elif match := _SCP_LIKE.fullmatch(url):
        host, path = match.group(1).lower(), "/" + match.group(2)
    else:  # a local path
        return "file:" + str(Path(url).expanduser()).rstrip("/").removesuffix(".git")
    return host + path.rstrip("/").removesuffix(".git")


def _remote_url(common: Path) -> str | None:
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(common / "config", encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    section = 'remote "origin"'
    return parser.get(section, "url", fallback=None) if parser.has_section(section) else None


def origin(folder: str | Path) -> str | None:
    """``host/owner/repo`` (or the repository's folder when it has no remote), then ``:`` and
    the folder the flows are read from when it is not the repository's top; None outside Git."""
    try:
        start = Path(folder).resolve()
        git_dir = _git_dir(start)
        if git_dir is None:
            return None
        top = git_dir.parent if git_dir.name == ".git" else _worktree_top(start)
        url = _remote_url(_common_dir(git_dir))
        where = normalize_remote(url) if url else "file:" + str(top)
        inside = start.relative_to(top).as_posix() if start.is_relative_to(top) else ""
    except OSError:
        return None
    return where if inside in ("", ".") else f"{where}:{inside}"


def _worktree_top(start: Path) -> Path:
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return start


def uncommitted(folder: str | Path, paths: Iterable[str]) -> list[str] | None:
    """Which of ``paths`` (relative to ``folder``) differ from the commit: modified, staged,
    untracked or ignored; None when this cannot be told (no ``git``, not a repository)."""
    wanted = set(paths)
    if not wanted:
        return []
    try:
        prefix = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-prefix"],
                                capture_output=True, text=True, check=False)
        done = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain=v1", "-z", "--ignored=matching",
             "--untracked-files=all", "--no-renames", "--", "."],
            capture_output=True, check=False)
    except OSError:
        return None
    if prefix.returncode != 0 or done.returncode != 0:
        return None
    inside = prefix.stdout.strip()
    changed = set()
    for entry in done.stdout.decode("utf-8", errors="replace").split("\0"):
        path = entry[3:]  # "XY path": paths are relative to the repository's top
        if len(entry) > 3 and path.startswith(inside):
            relative = path[len(inside):]
            # a whole untracked or ignored folder is listed once, with a final "/"
            if relative in wanted or (relative.endswith("/") and
                                      any(w.startswith(relative) for w in wanted)):
                changed.add(relative)
    return sorted(changed)

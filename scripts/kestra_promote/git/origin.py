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

from kestra_promote.git.gitinfo import _common_dir, _git_dir

_SCP_LIKE = re.compile(r"(?:[^@/]+@)?([^:/]+):(?!/)(.+)")  # git@host:owner/repo.git


def normalize_remote(url: str) -> str:
    """``host/path`` of a remote URL: no scheme, user, password, port or ``.git`` suffix (an
    origin is stored and shown: it must never carry a credential)."""
    url = url.strip()
    if "://" in url:
        scheme, _, rest = url.partition("://")
        if scheme.lower() == "file":
            return "file:" + rest.rstrip("/").removesuffix(".git")
        # user info may itself hold "@", ":" or "/": drop up to the last "@" (a path holding
        # one is mangled, a credential is never kept)
        location, slash, path = rest.rpartition("@")[2].partition("/")
        host = location
        if host.startswith("["):  # [IPv6]:port
            host = host[: host.find("]") + 1] if "]" in host else host
        else:
            host = host.partition(":")[0]
        path = (slash + path).split("?", 1)[0].split("#", 1)[0]
        return host.lower() + path.rstrip("/").removesuffix(".git")
    if match := _SCP_LIKE.fullmatch(url):
        return match.group(1).rpartition("@")[2].lower() + "/" + \
            match.group(2).rstrip("/").removesuffix(".git")
    return "file:" + str(Path(url).expanduser()).rstrip("/").removesuffix(".git")


def same_origin(a: str, b: str) -> bool:
    """Whether two origins name one repository folder. The host is left out: one repository is
    often reached under two names (a container's service name, localhost, an internal DNS
    name); the repository's path and the folder in it decide, without case."""
    def key(origin: str) -> str:
        if origin.startswith("file:"):
            return origin.lower()
        return origin.partition("/")[2].lower()

    return key(a) == key(b)


def same_repository(a: str, b: str) -> bool:
    """Whether two origins name one repository, whatever folder of it each is."""
    def repository(origin: str) -> str:
        if origin.startswith("file:"):
            return origin[len("file:"):].partition(":")[0].lower()
        return origin.partition("/")[2].partition(":")[0].lower()

    return repository(a) == repository(b)


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


def uncommitted(folder: str | Path, paths: Iterable[str],
                scopes: Iterable[tuple[str, tuple[str, ...]]] = ()) -> list[str] | None:
    """Which files differ from the commit, of those the promotion reads (``paths``, relative to
    ``folder``: modified, staged, untracked or ignored) and of those it would read in
    ``scopes`` (folder prefix and file suffixes, ``()`` for any: a file deleted or added there,
    or a changed ``.kestraignore``); None when this cannot be told (no ``git``, no repository)."""
    wanted = set(paths)
    areas = [(prefix.strip("/") + "/" if prefix.strip("/") not in ("", ".") else "", suffixes)
             for prefix, suffixes in scopes]
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
        state, path = entry[:2], entry[3:]  # "XY path": relative to the repository's top
        if len(entry) <= 3 or not path.startswith(inside):
            continue
        relative = path[len(inside):]
        # a whole untracked or ignored folder is listed once, with a final "/"
        read = relative in wanted or (relative.endswith("/") and
                                      any(w.startswith(relative) for w in wanted))
        in_scope = state != "!!" and any(
            (relative.startswith(area) or relative == area[:-1])
            and (not suffixes or relative.endswith(suffixes) or relative.endswith("/"))
            for area, suffixes in areas)
        if read or in_scope:
            changed.add(relative)
    return sorted(changed)

"""The source folder as the reader sees it: what is hidden, ignored or compiled, and where
symlinks lead.

What is excluded stays excluded whatever path leads to it: a symlink is judged by where it
really points (inside the folder, not hidden, not ignored, not the settings file, not another
``namespace_files`` folder, not compiled code), and any oddity of the file system (loops, unreadable folders,
FIFOs, files that vanish) is reported as a problem of the path where it was met. ``SourceTree``
walks the folders ``source`` reads flows and namespace files from, and finds the folders the
settings name.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from pathlib import Path
from typing import Callable, Iterable, Iterator

from kestra_promote.config import CONFIG_FILE, file_kind
from kestra_promote.git.ignore import IgnoreRules
from kestra_promote.models import Problem


# Python's compiled code: never read from a source, so neither a promotion nor the bootstrap
# uploads it (a .pyc in the promotion's namespace files would run in place of its source)
COMPILED_FOLDER = "__pycache__"
COMPILED_SUFFIXES = (".pyc", ".pyo")


def is_compiled(name: str, *, is_dir: bool) -> bool:
    """Whether the file or folder ``name`` is Python's compiled code: a ``__pycache__`` folder
    (or file), a ``*.pyc`` or ``*.pyo`` file; in any case."""
    folded = name.casefold()
    return folded == COMPILED_FOLDER or (not is_dir and folded.endswith(COMPILED_SUFFIXES))


def is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def realpath(path: Path) -> Path:
    """``path`` with every symlink resolved as far as it goes; never raises."""
    return Path(os.path.realpath(path))


class SourceTree:
    """The source folder as the reader sees it: what is hidden or ignored, where the settings
    and the namespace_files folders are, and every problem met while walking it."""

    def __init__(self, root: Path, rules: IgnoreRules, settings: Iterable[Path],
                 problems: list[Problem]) -> None:
        self.root = root
        self.rules = rules
        self.settings = frozenset(settings)
        self.problems = problems
        # real folders uploaded as namespace files (set once they are known)
        self.file_folders: frozenset[Path] = frozenset()

    def rel(self, path: Path) -> str:
        """``path`` (inside the root) relative to it, with forward slashes; "" for the root."""
        rel = path.relative_to(self.root).as_posix()
        return "" if rel == "." else rel

    def report(self, message: str, rel: str) -> None:
        self.problems.append(Problem(message, rel or "."))

    def excluded(self, rel: str, *, is_dir: bool) -> str | None:
        """Why the path ``rel`` is never read ("hidden", "compiled", "ignored"), or None. Every
        folder on the way counts, as when walking down to it."""
        parts = rel.split("/") if rel else []
        if any(part.startswith(".") for part in parts):
            return "hidden"
        if any(is_compiled(part, is_dir=is_dir or depth < len(parts))
               for depth, part in enumerate(parts, 1)):
            return "compiled"
        for depth in range(1, len(parts) + 1):
            if self.rules.ignored("/".join(parts[:depth]), is_dir=is_dir or depth < len(parts)):
                return "ignored"
        return None

    def innermost_folder(self, path: Path, folders: Iterable[Path]) -> Path | None:
        """The innermost of ``folders`` holding ``path`` (or equal to it)."""
        best: Path | None = None
        for folder in folders:
            if is_within(path, folder) and (best is None or is_within(folder, best)):
                best = folder
        return best

    # -- symlinks --------------------------------------------------------------------------

    def resolve_link(self, link: Path, rel: str) -> tuple[Path, os.stat_result] | None:
        """Where the symlink ``link`` really leads, and what is there; None (reported) when it
        leads nowhere."""
        try:
            real = Path(os.path.realpath(link, strict=True))
            return real, os.stat(real)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.report("symlink loop; refusing to follow it", rel)
            elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
                self.report("broken symlink", rel)
            else:
                self.report(f"cannot follow symlink: {reason(exc)}", rel)
        except (RuntimeError, ValueError) as exc:  # loops on some versions, odd names
            self.report(f"cannot follow symlink: {exc}", rel)
        return None

    def target_allowed(self, rel: str, holder: Path, real: Path, *, is_dir: bool,
                       own: Path | None, for_flows: bool) -> bool:
        """Whether the symlink at ``rel`` (in the real folder ``holder``) may lead to ``real``;
        when not, the problem is reported. ``own``: the folder being read (flows or
        namespace_files)."""
        if not is_within(real, self.root):
            self.report("symlink to a folder outside the source folder" if is_dir else
                        "symlink points outside the source folder; refusing to read it", rel)
            return False
        target = self.rel(real) or "."
        if is_dir and is_within(holder, real):
            self.report(f"symlink to {target!r}, a folder holding it: a loop; refusing to follow "
                        "it", rel)
            return False
        why = self.excluded(self.rel(real), is_dir=is_dir)
        if why == "hidden":
            self.report(f"symlink to {target!r}, which is hidden; refusing to read it", rel)
            return False
        if why == "compiled":
            self.report(f"symlink to {target!r}, which is compiled Python code; refusing to "
                        "read it", rel)
            return False
        if why == "ignored":
            self.report(f"symlink to {target!r}, which .kestraignore excludes; refusing to read "
                        "it", rel)
            return False
        if real in self.settings:
            self.report(f"symlink to the settings file {target!r}; refusing to read it", rel)
            return False
        if for_flows:
            # a namespace_files folder holding the flows folder itself does not count
            folder = self.innermost_folder(real, (
                f for f in self.file_folders if own is None or not is_within(own, f)))
            if folder is not None:
                self.report(f"symlink to {target!r}, in the namespace_files folder "
                            f"{self.rel(folder)!r}; refusing to read it as a flow", rel)
                return False
        else:
            folder = self.innermost_folder(real, self.file_folders)
            if folder is not None and folder != own:
                self.report(f"symlink to {target!r}, in another namespace_files folder "
                            f"({self.rel(folder) or '.'!r}); refusing to read it", rel)
                return False
        return True

    def resolve_kept(self, link: Path, rel: str) -> tuple[Path, os.stat_result, bool] | None:
        """(real path, its stat, is a folder) of the symlink ``link``, unless the link's own
        path is ignored (or it leads nowhere, reported)."""
        if self.rules.ignored(rel, is_dir=False) and self.rules.ignored(rel, is_dir=True):
            return None
        resolved = self.resolve_link(link, rel)
        if resolved is None:
            return None
        real, info = resolved
        is_dir = stat.S_ISDIR(info.st_mode)
        return None if self.rules.ignored(rel, is_dir=is_dir) else (real, info, is_dir)

    def follow(self, link: Path, rel: str, holder: Path, wanted: Callable[[str], bool], *,
               own: Path | None, for_flows: bool) -> Path | None:
        """The real file the symlink ``link`` leads to, when it is to be read; symlinked
        folders are checked but not followed (their files are read where they really are)."""
        kept = self.resolve_kept(link, rel)
        if kept is None:
            return None
        real, info, is_dir = kept
        if not is_dir and not wanted(rel):
            return None
        if not self.target_allowed(rel, holder, real, is_dir=is_dir, own=own,
                                   for_flows=for_flows):
            return None
        if is_dir:
            return None
        if not stat.S_ISREG(info.st_mode):
            self.report(f"symlink to {self.rel(real)!r}, {file_kind(info.st_mode)}, not a "
                        "regular file; refusing to read it", rel)
            return None
        return real

    # -- walking ---------------------------------------------------------------------------

    def walk(self, start: Path, wanted: Callable[[str], bool], *, skip: frozenset[Path],
             own: Path | None = None, for_flows: bool) -> Iterator[tuple[Path, str]]:
        """(real path to read, path relative to the root) of every file under the real folder
        ``start`` that ``wanted`` accepts (by its path). Hidden files and folders, ignored paths,
        compiled Python code (``__pycache__``, ``*.pyc``, ``*.pyo``), the settings file and folders
        in ``skip`` are left out; every oddity is reported."""
        stack = [start]
        while stack:
            folder = stack.pop()
            prefix = self.rel(folder)
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except OSError as exc:
                self.report(f"cannot read folder: {reason(exc)}", prefix)
                continue
            subfolders = []
            for entry in entries:
                name = entry.name
                if name.startswith(".") or is_compiled(name, is_dir=False):
                    continue  # (a folder named like a compiled file too: nothing to read there)
                rel = f"{prefix}/{name}" if prefix else name
                full = folder / name
                try:
                    is_link = entry.is_symlink()
                    info = None if is_link else entry.stat(follow_symlinks=False)
                except OSError as exc:  # e.g. removed since the folder was listed
                    self.report(f"cannot read: {reason(exc)}", rel)
                    continue
                if info is None:
                    if full in skip:
                        continue
                    real = self.follow(full, rel, folder, wanted, own=own, for_flows=for_flows)
                    if real is not None:
                        yield real, rel
                elif stat.S_ISDIR(info.st_mode):
                    if full not in skip and not self.rules.ignored(rel, is_dir=True):
                        subfolders.append(full)
                elif self.rules.ignored(rel, is_dir=False) or not wanted(rel) \
                        or full in self.settings:
                    continue
                elif not stat.S_ISREG(info.st_mode):
                    self.report(f"{file_kind(info.st_mode)}, not a regular file; refusing to "
                                "read it", rel)
                else:
                    yield full, rel
            stack.extend(reversed(subfolders))

    def folder(self, relative: str, what: str) -> Path | None:
        """The real folder a setting names (relative to the root), or None, reported."""
        logical = self.root / relative
        path = realpath(logical)
        if not is_within(path, self.root):
            self.report_setting(f"{what} folder {relative!r} is outside the source folder")
            return None
        try:
            info = os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.report_setting(f"{what} folder {relative!r} is a symlink loop")
            elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
                self.report_setting(f"{what} folder {relative!r} does not exist")
            else:
                self.report_setting(f"{what} folder {relative!r} cannot be read: {reason(exc)}")
            return None
        if not stat.S_ISDIR(info.st_mode):
            self.report_setting(f"{what} folder {relative!r} does not exist")
            return None
        written = posixpath.normpath(relative.replace(os.sep, "/"))
        written = "" if written == "." or written.startswith("..") else written
        real = self.rel(path)
        for rel in (written, real):
            why = self.excluded(rel, is_dir=True)
            if why is None:
                continue
            leads = f" leads to {real or '.'!r}, which" if rel == real != written else ""
            if why == "hidden":
                self.report_setting(f"{what} folder {relative!r}{leads} is hidden: hidden files "
                                    "and folders are never read")
            elif why == "compiled":
                self.report_setting(f"{what} folder {relative!r}{leads} holds compiled Python "
                                    "code (__pycache__), which is never read")
            else:
                self.report_setting(f"{what} folder {relative!r}{leads} is excluded by "
                                    ".kestraignore")
            return None
        return path

    def report_setting(self, message: str) -> None:
        self.problems.append(Problem(message, CONFIG_FILE))

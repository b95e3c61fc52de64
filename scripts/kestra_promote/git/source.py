"""Read a source folder (a Git checkout) into the flows Git wants, or fail listing every problem.

Every ``*.yml`` / ``*.yaml`` file below the folder is a flow, except hidden files and folders
(``.git``, ``.github``, ...) and paths matched by ``.kestraignore``. Each file holds exactly one
flow; its identity is the ``namespace`` and ``id`` written in it, not its file name.

What is excluded stays excluded whatever path leads to it: a symlink is judged by where it
really points (inside the folder, not hidden, not ignored, not the settings file, not another
``namespace_files`` folder), and any oddity of the file system (loops, unreadable folders,
FIFOs, files that vanish) is reported as a problem of the path where it was met.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import yaml

from kestra_promote import yamlnodes
from kestra_promote.config import (
    CONFIG_FILE,
    NAMESPACE_MAX,
    NAMESPACE_PATTERN,
    Config,
    NamespaceFiles,
    check_identity,
    check_namespace,
    check_namespace_path,
    file_kind,
    is_flows_path,
    load_config,
    read_regular_file,
)
from kestra_promote.errors import SourceError
from kestra_promote.git.gitinfo import read_commit
from kestra_promote.git.ignore import IGNORE_FILE, IgnoreRules
from kestra_promote.models import DesiredFile, DesiredFlow, FileKey, FlowKey, KnownFile, Problem

__all__ = [
    "FLOW_ID_MAX", "FLOW_ID_PATTERN", "NAMESPACE_MAX", "NAMESPACE_PATTERN", "Source",
    "check_flow_id", "check_namespace", "parse_flow", "read_source",
]

# Kestra's own rules for identities (see the Flow model): ids may hold upper case, namespaces not.
# Checked against the whole value (a final newline is not allowed either).
FLOW_ID_PATTERN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
FLOW_ID_MAX = 100
FLOW_SUFFIXES = (".yml", ".yaml")
FLOW_KEYS = ("id", "namespace", "tasks")  # what every flow has; a file with none is no flow


def check_flow_id(value: str) -> str | None:
    """Why ``value`` is not a valid flow id, or None."""
    return check_identity(value, "flow id", FLOW_ID_PATTERN, FLOW_ID_MAX,
                          "letters, digits, '.', '_' and '-'")


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _realpath(path: Path) -> Path:
    """``path`` with every symlink resolved as far as it goes; never raises."""
    return Path(os.path.realpath(path))


class _Tree:
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
        """Why the path ``rel`` is never read ("hidden", "ignored"), or None. Every folder on the
        way counts, as when walking down to it."""
        parts = rel.split("/") if rel else []
        if any(part.startswith(".") for part in parts):
            return "hidden"
        for depth in range(1, len(parts) + 1):
            if self.rules.ignored("/".join(parts[:depth]), is_dir=is_dir or depth < len(parts)):
                return "ignored"
        return None

    def innermost_folder(self, path: Path, folders: Iterable[Path]) -> Path | None:
        """The innermost of ``folders`` holding ``path`` (or equal to it)."""
        best: Path | None = None
        for folder in folders:
            if _is_within(path, folder) and (best is None or _is_within(folder, best)):
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
                self.report(f"cannot follow symlink: {_reason(exc)}", rel)
        except (RuntimeError, ValueError) as exc:  # loops on some versions, odd names
            self.report(f"cannot follow symlink: {exc}", rel)
        return None

    def target_allowed(self, rel: str, holder: Path, real: Path, *, is_dir: bool,
                       own: Path | None, for_flows: bool) -> bool:
        """Whether the symlink at ``rel`` (in the real folder ``holder``) may lead to ``real``;
        when not, the problem is reported. ``own``: the folder being read (flows or
        namespace_files)."""
        if not _is_within(real, self.root):
            self.report("symlink to a folder outside the source folder" if is_dir else
                        "symlink points outside the source folder; refusing to read it", rel)
            return False
        target = self.rel(real) or "."
        if is_dir and _is_within(holder, real):
            self.report(f"symlink to {target!r}, a folder holding it: a loop; refusing to follow "
                        "it", rel)
            return False
        why = self.excluded(self.rel(real), is_dir=is_dir)
        if why == "hidden":
            self.report(f"symlink to {target!r}, which is hidden; refusing to read it", rel)
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
                f for f in self.file_folders if own is None or not _is_within(own, f)))
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
        the settings file and folders in ``skip`` are left out; every oddity is reported."""
        stack = [start]
        while stack:
            folder = stack.pop()
            prefix = self.rel(folder)
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except OSError as exc:
                self.report(f"cannot read folder: {_reason(exc)}", prefix)
                continue
            subfolders = []
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                rel = f"{prefix}/{name}" if prefix else name
                full = folder / name
                try:
                    is_link = entry.is_symlink()
                    info = None if is_link else entry.stat(follow_symlinks=False)
                except OSError as exc:  # e.g. removed since the folder was listed
                    self.report(f"cannot read: {_reason(exc)}", rel)
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
        path = _realpath(logical)
        if not _is_within(path, self.root):
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
                self.report_setting(f"{what} folder {relative!r} cannot be read: {_reason(exc)}")
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
            else:
                self.report_setting(f"{what} folder {relative!r}{leads} is excluded by "
                                    ".kestraignore")
            return None
        return path

    def report_setting(self, message: str) -> None:
        self.problems.append(Problem(message, CONFIG_FILE))


def _problem_at(message: str, rel: str, node: yaml.Node | None, key: FlowKey | None) -> Problem:
    line, column = yamlnodes.position(node) if node is not None else (None, None)
    return Problem(message, rel, line, column, key)


def _has_flow_keys(node: yaml.Node) -> bool:
    """Whether ``node`` is a mapping with at least one of a flow's required keys: a flow, maybe
    a broken or truncated one (reported key by key), rather than some other YAML file."""
    return isinstance(node, yaml.MappingNode) and any(
        yamlnodes.mapping_get(node, name) is not None for name in FLOW_KEYS)


def _ignore_line(rel: str) -> str:
    """The .kestraignore line that excludes exactly the file ``rel`` (anchored at the root,
    wildcard characters escaped)."""
    return "/" + re.sub(r"([\\*?\[])", r"\\\1", rel)


def _leave_out(rel: str) -> str:
    return ("leave it out: name the folders that hold flows in kestra-promote.yml (flows: "
            f"[flows/]), or add the line '{_ignore_line(rel)}' to .kestraignore")


def _not_a_flow(rel: str, found: str) -> str:
    return f"does not look like a Kestra flow ({found}). If it is not a flow, {_leave_out(rel)}"


def parse_flow(text: str, rel: str) -> tuple[DesiredFlow | None, list[Problem]]:
    """One flow file's text into a DesiredFlow, with every problem found in it."""
    try:
        documents = yamlnodes.compose_documents(text)
    except yamlnodes.YamlSyntaxError as exc:
        return None, [Problem(str(exc), rel, exc.line, exc.column)]
    if not documents:  # a flow not written yet, or a placeholder: say how to leave it out too
        return None, [Problem("empty file: a flow needs id, namespace and tasks. If it is not a "
                              f"flow, {_leave_out(rel)}", rel)]
    if len(documents) > 1:
        if not any(_has_flow_keys(document) for document in documents):
            return None, [_problem_at(_not_a_flow(rel, f"{len(documents)} YAML documents, none "
                                                       "with id, namespace or tasks"),
                                      rel, documents[0], None)]
        return None, [
            Problem(f"holds {len(documents)} YAML documents: put exactly one flow per file", rel)
        ]
    root = documents[0]
    if not isinstance(root, yaml.MappingNode):
        kind = ("a list" if isinstance(root, yaml.SequenceNode) else
                "an empty document" if root.tag == "tag:yaml.org,2002:null" else "a single value")
        return None, [_problem_at(_not_a_flow(rel, f"{kind}, not a mapping with id, namespace "
                                                   "and tasks"), rel, root, None)]
    if not _has_flow_keys(root):
        # another tool's YAML (docker-compose.yml, a CI file, Kubernetes manifests) rather than
        # a flow missing three keys: one problem for the file, saying how to leave it out
        return None, [_problem_at(_not_a_flow(rel, "it has none of id, namespace and tasks"), rel,
                                  root, None)]

    id_node, ns_node = yamlnodes.mapping_get(root, "id"), yamlnodes.mapping_get(root, "namespace")
    flow_id, namespace = yamlnodes.scalar_text(id_node), yamlnodes.scalar_text(ns_node)
    key = FlowKey(namespace, flow_id) if flow_id and namespace else None
    problems = [
        _problem_at(f"duplicate key {dup.value!r} (Kestra rejects repeated keys)", rel, dup, key)
        for dup in yamlnodes.duplicate_keys(root)
    ]
    for name, node, value, check in (
        ("id", id_node, flow_id, check_flow_id),
        ("namespace", ns_node, namespace, check_namespace),
    ):
        if node is None:
            problems.append(_problem_at(f"missing required key {name!r}", rel, None, key))
        elif value is None:
            problems.append(_problem_at(f"{name!r} must be a text value", rel, node, key))
        elif (why := check(value)) is not None:
            problems.append(_problem_at(why, rel, node, key))
    tasks = yamlnodes.mapping_get(root, "tasks")
    if tasks is None:
        problems.append(_problem_at("missing required key 'tasks'", rel, None, key))
    elif not isinstance(tasks, yaml.SequenceNode) or not tasks.value:
        problems.append(_problem_at("'tasks' must be a non-empty list of tasks", rel, tasks, key))
    if problems or key is None:
        return None, problems
    return DesiredFlow(key=key, source=text, path=rel), []


def _read_text(path: Path, rel: str) -> tuple[str | None, Problem | None]:
    try:
        data = read_regular_file(path)
    except OSError as exc:
        return None, Problem(f"cannot read file: {_reason(exc)}", rel)
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, Problem(f"not UTF-8 text (byte {exc.start}): save the file as UTF-8", rel)


@dataclass(frozen=True)
class Source:
    """Everything read from a source folder (a Git checkout), exactly as Git holds it."""

    root: str
    config: Config
    flows: Mapping[FlowKey, DesiredFlow]
    files: Mapping[FileKey, DesiredFile] = field(default_factory=dict)
    commit: str | None = None
    known: tuple[KnownFile, ...] = ()  # flow files not parsed: the inventory knows their text

    @property
    def paths(self) -> list[str]:
        """Every file read, in the source folder."""
        return ([f.path for f in self.flows.values()] + [k.path for k in self.known]
                + [f.path for f in self.files.values()])


@dataclass(frozen=True)
class _FileFolder:
    """A real folder whose files go to ``namespace``, as ``entry`` says."""

    entry: NamespaceFiles
    namespace: str
    path: Path


def _is_flow_file(rel: str) -> bool:
    return rel.lower().endswith(FLOW_SUFFIXES)


def _per_namespace_children(tree: _Tree, entry: NamespaceFiles, start: Path,
                            ) -> tuple[list[_FileFolder], list[tuple[Path, str]]]:
    """The namespace folders directly below ``start`` (``source: folder/*``), and the symlinks
    among them, to be judged once every namespace_files folder is known."""
    folders: list[_FileFolder] = []
    links: list[tuple[Path, str]] = []
    try:
        with os.scandir(start) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        tree.report(f"cannot read folder: {_reason(exc)}", tree.rel(start))
        return folders, links
    for child in entries:
        rel = tree.rel(start / child.name)
        if child.name.startswith("."):
            continue
        try:
            is_link = child.is_symlink()
            is_dir = not is_link and child.is_dir(follow_symlinks=False)
        except OSError as exc:
            tree.report(f"cannot read: {_reason(exc)}", rel)
            continue
        if is_link:
            links.append((start / child.name, rel))
        elif tree.rules.ignored(rel, is_dir=is_dir):
            continue
        elif not is_dir:
            tree.report(f"belongs to no namespace: files of {entry.source}/* go in a folder "
                        "named after their namespace", rel)
        elif (why := check_namespace(child.name)) is not None:
            tree.report(f"folder name is not a namespace: {why}", rel)
        else:
            folders.append(_FileFolder(entry, child.name, start / child.name))
    return folders, links


def _linked_namespace_folder(tree: _Tree, entry: NamespaceFiles, link: Path, rel: str,
                             ) -> _FileFolder | None:
    """A namespace folder of ``source: folder/*`` that is a symlink: read where it leads, when
    that is an allowed folder of no other namespace_files entry."""
    kept = tree.resolve_kept(link, rel)
    if kept is None:
        return None
    real, _, is_dir = kept
    if not is_dir:
        tree.report(f"belongs to no namespace: files of {entry.source}/* go in a folder named "
                    "after their namespace", rel)
        return None
    # own=None: any namespace_files folder holding the target is another one
    if not tree.target_allowed(rel, link.parent, real, is_dir=True, own=None, for_flows=False):
        return None
    if (why := check_namespace(link.name)) is not None:
        tree.report(f"folder name is not a namespace: {why}", rel)
        return None
    return _FileFolder(entry, link.name, real)


def _file_folders(tree: _Tree, config: Config) -> tuple[list[_FileFolder], frozenset[Path]]:
    """Every folder uploaded as namespace files, and the paths the flows must not be read
    from (those folders, as written in the settings and as they really are)."""
    origin = config.path or CONFIG_FILE
    folders: list[_FileFolder] = []
    real_folders: set[Path] = set()
    written: set[Path] = set()
    linked: list[tuple[NamespaceFiles, Path, str]] = []
    for entry in config.namespace_files:
        start = tree.folder(entry.source, "namespace_files")
        if start is None:
            continue
        real_folders.add(start)
        written.add(Path(os.path.normpath(tree.root / entry.source)))
        if not entry.per_namespace:
            if (why := check_namespace(entry.namespace)) is not None:
                tree.problems.append(Problem(f"namespace_files: {why}", origin))
                continue
            folders.append(_FileFolder(entry, entry.namespace, start))
            continue
        children, links = _per_namespace_children(tree, entry, start)
        folders += children
        real_folders |= {child.path for child in children}
        linked += [(entry, link, rel) for link, rel in links]
    tree.file_folders = frozenset(real_folders)
    for entry, link, rel in linked:
        folder = _linked_namespace_folder(tree, entry, link, rel)
        if folder is not None:
            folders.append(folder)
    tree.file_folders = frozenset(real_folders | {f.path for f in folders})
    return folders, frozenset(tree.file_folders | written)


def _read_flows(tree: _Tree, config: Config, skip: frozenset[Path],
                known: Callable[[str], str | None]) -> tuple[list[tuple[str, str]], list[KnownFile]]:
    """The (path, text) of every flow file to parse, and the files ``known`` recognises (it
    gives their origin hash) which need no parsing."""
    texts: list[tuple[str, str]] = []
    recognised: list[KnownFile] = []
    seen: set[str] = set()
    skip = skip - {tree.root}
    for relative in config.flows:
        start = tree.folder(relative, "flows")
        if start is None:
            continue
        for path, rel in tree.walk(start, _is_flow_file, skip=skip, own=start, for_flows=True):
            if rel in seen:
                continue
            seen.add(rel)
            text, problem = _read_text(path, rel)
            if problem is not None:
                tree.problems.append(problem)
                continue
            assert text is not None
            if (origin := known(text)) is not None:
                recognised.append(KnownFile(rel, text, origin))
            else:
                texts.append((rel, text))
    return texts, recognised


def parse_flows(texts: Iterable[tuple[str, str]], problems: list[Problem]
                ) -> dict[FlowKey, DesiredFlow]:
    """The flows of (path, text) pairs, by key; every problem (a flow in two files too) is added
    to ``problems``."""
    by_key: dict[FlowKey, list[DesiredFlow]] = defaultdict(list)
    for rel, text in texts:
        flow, found = parse_flow(text, rel)
        problems.extend(found)
        if flow is not None:
            by_key[flow.key].append(flow)
    for key, copies in by_key.items():
        if len(copies) > 1:
            names = ", ".join(c.path for c in copies)
            for copy in copies:
                problems.append(
                    Problem(f"the same flow is defined in {len(copies)} files ({names}): keep one",
                            copy.path, flow=key))
    return {key: copies[0] for key, copies in sorted(by_key.items())}


def _read_files(tree: _Tree, folders: list[_FileFolder], taken: frozenset[Path]
                ) -> dict[FileKey, DesiredFile]:
    files: dict[FileKey, DesiredFile] = {}
    for folder in folders:
        # a namespace_files folder inside this one holds files of its own
        skip = frozenset(p for p in taken if p != folder.path and _is_within(p, folder.path))
        base = tree.rel(folder.path)
        for path, rel in tree.walk(folder.path, lambda _: True, skip=skip, own=folder.path,
                                   for_flows=False):
            inside = rel[len(base) + 1:] if base else rel
            target = folder.entry.target.rstrip("/") + "/" + inside
            if is_flows_path(target):
                tree.report("namespace files may not be written under /_flows/", rel)
                continue
            if (why := check_namespace_path(target)) is not None:
                tree.report(f"namespace file path {target!r} {why}", rel)
                continue
            key = FileKey(folder.namespace, target)
            if key in files:
                tree.report(f"{key} also comes from {files[key].path}: keep one", rel)
                continue
            try:
                files[key] = DesiredFile(key, read_regular_file(path), rel)
            except OSError as exc:
                tree.report(f"cannot read file: {_reason(exc)}", rel)
    return dict(sorted(files.items()))


def _ignore_rules(root: Path, problems: list[Problem]) -> IgnoreRules:
    path = root / IGNORE_FILE
    if not os.path.lexists(path):
        return IgnoreRules([])
    try:
        text = read_regular_file(path).decode("utf-8")
    except OSError as exc:
        problems.append(Problem(f"cannot read file: {_reason(exc)}", IGNORE_FILE))
        return IgnoreRules([])
    except UnicodeDecodeError as exc:
        problems.append(Problem(f"not UTF-8 text (byte {exc.start}): save the file as UTF-8",
                                IGNORE_FILE))
        return IgnoreRules([])
    return IgnoreRules(text.splitlines())


def _source_root(folder: str | os.PathLike[str]) -> Path:
    root = _realpath(Path(folder))
    if not root.is_dir():
        raise SourceError(
            f"source folder {str(folder)!r} does not exist or is not a folder",
            [Problem("not a folder", str(folder))],
        )
    return root


def read_settings(folder: str | os.PathLike[str], config_file: str | None = None) -> Config:
    """The settings of a source folder, before reading the rest (``read_source(config=...)``)."""
    return load_config(_source_root(folder), config_file)


def read_source(
    folder: str | os.PathLike[str], *, commit: str | None = None, config_file: str | None = None,
    config: Config | None = None, known: Callable[[str], str | None] | None = None,
) -> Source:
    """Read the settings, every flow and every namespace file under ``folder``.

    ``known`` gives the origin hash of a flow file's text the inventory knows, None otherwise:
    such files are not parsed (``Source.known``; see ``desired.resolve``).
    Raises SourceError listing every problem found, in every file, before anything is sent.
    """
    root = _source_root(folder)
    config = config or load_config(root, config_file)
    problems: list[Problem] = []
    rules = _ignore_rules(root, problems)
    # settings files are neither flows nor namespace files: the usual one at the root, and one
    # given with --config
    settings = {_realpath(root / CONFIG_FILE)}
    if config.path not in (None, CONFIG_FILE):
        settings.add(_realpath(Path(str(config.path))))
    tree = _Tree(root, rules, settings, problems)
    folders, taken = _file_folders(tree, config)
    texts, recognised = _read_flows(tree, config, taken, known or (lambda text: None))
    flows = parse_flows(texts, problems)
    files = _read_files(tree, folders, taken)
    if problems:
        unique = sorted(set(problems), key=lambda p: (p.path or "", p.line or 0, p.column or 0,
                                                      p.message))
        file_count = len({p.path for p in unique})
        raise SourceError(
            f"{len(unique)} problem(s) in {file_count} file(s) under {folder}; "
            "nothing was written",
            unique,
        )
    return Source(root=str(root), config=config, flows=flows, files=files,
                  commit=commit or read_commit(root), known=tuple(recognised))

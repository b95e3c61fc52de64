"""Read a source folder (a Git checkout) into the flows Git wants, or fail listing every problem.

Every ``*.yml`` / ``*.yaml`` file below the folder is a flow, except hidden files and folders
(``.git``, ``.github``, ...) and paths matched by ``.kestraignore``. Compiled Python code
(``__pycache__`` folders, ``*.pyc`` and ``*.pyo`` files) is never read, as a flow or as a
namespace file. Each file holds exactly one
flow; its identity is the ``namespace`` and ``id`` written in it, not its file name.

What is excluded stays excluded whatever path leads to it (symlinks are judged by where they
really point, see ``sourcetree``), and any oddity of the file system is reported as a problem of
the path where it was met.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, TypeVar

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
    is_flows_path,
    load_config,
    read_regular_file,
)
from kestra_promote.errors import SourceError
from kestra_promote.git import blobs
from kestra_promote.git.blobs import Committed
from kestra_promote.git.gitinfo import read_commit
from kestra_promote.git.ignore import IGNORE_FILE, IgnoreRules
from kestra_promote.git.sourcetree import SourceTree, is_compiled, is_within, realpath, reason
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
_T = TypeVar("_T")


def check_flow_id(value: str) -> str | None:
    """Why ``value`` is not a valid flow id, or None."""
    return check_identity(value, "flow id", FLOW_ID_PATTERN, FLOW_ID_MAX,
                          "letters, digits, '.', '_' and '-'")


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


def _leave_out(rel: str, flows: tuple[str, ...]) -> str:
    """How to leave the file ``rel`` out, read from the folders ``flows`` (the setting)."""
    ignore = f"or add the line '{_ignore_line(rel)}' to .kestraignore"
    if any(folder.strip("/") in ("", ".") for folder in flows):  # all is read: name folders
        return ("leave it out: name the folders that hold flows in kestra-promote.yml (flows: "
                f"[flows/]), {ignore}")
    return ("leave it out: move it out of the folders kestra-promote.yml names for flows "
            f"({', '.join(flows)}), {ignore}")


def _not_a_flow(rel: str, found: str, flows: tuple[str, ...]) -> str:
    return (f"does not look like a Kestra flow ({found}). If it is not a flow, "
            f"{_leave_out(rel, flows)}")


# Other Kestra objects kept as YAML next to flows, which this tool does not promote:
# - a dashboard has `title` and `charts` (core/src/main/java/io/kestra/core/models/dashboards/
#   Dashboard.java, Kestra 1.3 and 2.0), keys no flow has (a flow's keys: models/flows/Flow.java);
# - an app (Enterprise Edition, not in Kestra's open source; its documented form: a top-level
#   `type` of `io.kestra.plugin.ee.apps.`, beside `id`, `namespace`, `flowId` and `layout`).
_APP_TYPES = "io.kestra.plugin.ee.apps."


def _other_kestra_object(root: yaml.MappingNode) -> str | None:
    kind = yamlnodes.scalar_text(yamlnodes.mapping_get(root, "type"))
    if kind is not None and kind.startswith(_APP_TYPES):
        return f"a Kestra app (type {kind})"
    if all(yamlnodes.mapping_get(root, key) is not None for key in ("title", "charts")):
        return "a Kestra dashboard (it has title and charts)"
    return None


def parse_flow(text: str, rel: str, flows: tuple[str, ...] = Config.flows
               ) -> tuple[DesiredFlow | None, list[Problem]]:
    """One flow file's text into a DesiredFlow, with every problem found in it; ``flows``, the
    folders read for flows, is for the hint on leaving out a file that is no flow."""
    try:
        documents = yamlnodes.compose_documents(text)
    except yamlnodes.YamlSyntaxError as exc:
        return None, [Problem(str(exc), rel, exc.line, exc.column)]
    if not documents:  # a flow not written yet, or a placeholder: say how to leave it out too
        return None, [Problem("empty file: a flow needs id, namespace and tasks. If it is not a "
                              f"flow, {_leave_out(rel, flows)}", rel)]
    if len(documents) > 1:
        if not any(_has_flow_keys(document) for document in documents):
            return None, [_problem_at(_not_a_flow(rel, f"{len(documents)} YAML documents, none "
                                                       "with id, namespace or tasks", flows),
                                      rel, documents[0], None)]
        return None, [
            Problem(f"holds {len(documents)} YAML documents: put exactly one flow per file", rel)
        ]
    root = documents[0]
    if not isinstance(root, yaml.MappingNode):
        kind = ("a list" if isinstance(root, yaml.SequenceNode) else
                "an empty document" if root.tag == "tag:yaml.org,2002:null" else "a single value")
        return None, [_problem_at(_not_a_flow(rel, f"{kind}, not a mapping with id, namespace "
                                                   "and tasks", flows), rel, root, None)]
    if (other := _other_kestra_object(root)) is not None:
        leave = _leave_out(rel, flows)
        return None, [_problem_at(f"is {other}, not a flow: kestra-promote promotes flows and "
                                  f"namespace files. {leave[0].upper()}{leave[1:]}", rel, root,
                                  None)]
    if not _has_flow_keys(root):
        # another tool's YAML (docker-compose.yml, a CI file, Kubernetes manifests) rather than
        # a flow missing three keys: one problem for the file, saying how to leave it out
        return None, [_problem_at(_not_a_flow(rel, "it has none of id, namespace and tasks",
                                              flows), rel, root, None)]

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


def _read_all(tree: SourceTree, found: Iterable[tuple[Path, str, _T]],
              committed: Committed | None) -> list[tuple[_T, str, bytes]]:
    """(tag, path, bytes) of each (real path, path, tag) in ``found``: as the commit holds it
    when the working tree only converted it (``blobs``), else as read; unreadable files are
    reported and left out."""
    read: list[tuple[Path, str, _T, bytes]] = []
    for path, rel, tag in found:
        try:
            read.append((path, rel, tag, read_regular_file(path)))
        except OSError as exc:
            tree.report(f"cannot read file: {reason(exc)}", rel)
    datas = [entry[3] for entry in read] if committed is None else \
        committed.bytes_of([(entry[0], entry[3]) for entry in read])
    return [(tag, rel, data) for (_, rel, tag, _), data in zip(read, datas)]


def _decode(data: bytes, rel: str) -> tuple[str | None, Problem | None]:
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


def _per_namespace_children(tree: SourceTree, entry: NamespaceFiles, start: Path,
                            ) -> tuple[list[_FileFolder], list[tuple[Path, str]]]:
    """The namespace folders directly below ``start`` (``source: folder/*``), and the symlinks
    among them, to be judged once every namespace_files folder is known."""
    folders: list[_FileFolder] = []
    links: list[tuple[Path, str]] = []
    try:
        with os.scandir(start) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        tree.report(f"cannot read folder: {reason(exc)}", tree.rel(start))
        return folders, links
    for child in entries:
        rel = tree.rel(start / child.name)
        if child.name.startswith(".") or is_compiled(child.name, is_dir=False):
            continue
        try:
            is_link = child.is_symlink()
            is_dir = not is_link and child.is_dir(follow_symlinks=False)
        except OSError as exc:
            tree.report(f"cannot read: {reason(exc)}", rel)
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


def _linked_namespace_folder(tree: SourceTree, entry: NamespaceFiles, link: Path, rel: str,
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


def _file_folders(tree: SourceTree, config: Config) -> tuple[list[_FileFolder], frozenset[Path]]:
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


def _read_flows(tree: SourceTree, config: Config, skip: frozenset[Path],
                known: Callable[[str], str | None], committed: Committed | None,
                ) -> tuple[list[tuple[str, str]], list[KnownFile]]:
    """The (path, text) of every flow file to parse, and the files ``known`` recognises (it
    gives their origin hash) which need no parsing."""
    texts: list[tuple[str, str]] = []
    recognised: list[KnownFile] = []
    found: dict[str, Path] = {}
    skip = skip - {tree.root}
    for relative in config.flows:
        start = tree.folder(relative, "flows")
        if start is None:
            continue
        for path, rel in tree.walk(start, _is_flow_file, skip=skip, own=start, for_flows=True):
            found.setdefault(rel, path)
    for _, rel, data in _read_all(tree, ((path, rel, None) for rel, path in found.items()),
                                  committed):
        text, problem = _decode(data, rel)
        if problem is not None:
            tree.problems.append(problem)
            continue
        assert text is not None
        if (origin := known(text)) is not None:
            recognised.append(KnownFile(rel, text, origin))
        else:
            texts.append((rel, text))
    return texts, recognised


def parse_flows(texts: Iterable[tuple[str, str]], problems: list[Problem],
                flows: tuple[str, ...] = Config.flows) -> dict[FlowKey, DesiredFlow]:
    """The flows of (path, text) pairs, by key; every problem (a flow in two files too) is added
    to ``problems``. ``flows``: the folders read for flows (``parse_flow``)."""
    by_key: dict[FlowKey, list[DesiredFlow]] = defaultdict(list)
    for rel, text in texts:
        flow, found = parse_flow(text, rel, flows)
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


def _read_files(tree: SourceTree, folders: list[_FileFolder], taken: frozenset[Path],
                committed: Committed | None) -> dict[FileKey, DesiredFile]:
    found: dict[FileKey, tuple[Path, str]] = {}
    for folder in folders:
        # a namespace_files folder inside this one holds files of its own
        skip = frozenset(p for p in taken if p != folder.path and is_within(p, folder.path))
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
            if key in found:
                tree.report(f"{key} also comes from {found[key][1]}: keep one", rel)
                continue
            found[key] = (path, rel)
    read = _read_all(tree, ((path, rel, key) for key, (path, rel) in found.items()), committed)
    return {key: DesiredFile(key, data, rel) for key, rel, data in sorted(read)}


def _ignore_rules(root: Path, problems: list[Problem]) -> IgnoreRules:
    path = root / IGNORE_FILE
    if not os.path.lexists(path):
        return IgnoreRules([])
    try:
        text = read_regular_file(path).decode("utf-8")
    except OSError as exc:
        problems.append(Problem(f"cannot read file: {reason(exc)}", IGNORE_FILE))
        return IgnoreRules([])
    except UnicodeDecodeError as exc:
        problems.append(Problem(f"not UTF-8 text (byte {exc.start}): save the file as UTF-8",
                                IGNORE_FILE))
        return IgnoreRules([])
    return IgnoreRules(text.splitlines())


def _source_root(folder: str | os.PathLike[str]) -> Path:
    root = realpath(Path(folder))
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
    committed: Committed | None = None,
) -> Source:
    """Read the settings, every flow and every namespace file under ``folder``.

    ``known`` gives the origin hash of a flow file's text the inventory knows, None otherwise:
    such files are not parsed (``Source.known``; see ``desired.resolve``). Files are read as
    the commit holds them (``committed``, by default that of the checkout ``folder`` is in),
    unless they differ from it (``blobs``).
    Raises SourceError listing every problem found, in every file, before anything is sent.
    """
    root = _source_root(folder)
    config = config or load_config(root, config_file)
    problems: list[Problem] = []
    rules = _ignore_rules(root, problems)
    # settings files are neither flows nor namespace files: the usual one at the root, and one
    # given with --config
    settings = {realpath(root / CONFIG_FILE)}
    if config.path not in (None, CONFIG_FILE):
        settings.add(realpath(Path(str(config.path))))
    tree = SourceTree(root, rules, settings, problems)
    folders, taken = _file_folders(tree, config)
    committed = committed or blobs.for_checkout(root)
    texts, recognised = _read_flows(tree, config, taken, known or (lambda text: None), committed)
    flows = parse_flows(texts, problems, config.flows)
    files = _read_files(tree, folders, taken, committed)
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

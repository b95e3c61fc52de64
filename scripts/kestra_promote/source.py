"""Read a source folder (a Git checkout) into the flows Git wants, or fail listing every problem.

Every ``*.yml`` / ``*.yaml`` file below the folder is a flow, except hidden files and folders
(``.git``, ``.github``, ...) and paths matched by ``.kestraignore``. Each file holds exactly one
flow; its identity is the ``namespace`` and ``id`` written in it, not its file name.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import yaml

from . import yamlnodes
from .config import CONFIG_FILE, Config, NamespaceFiles, load_config
from .errors import SourceError
from .gitinfo import read_commit
from .ignore import IgnoreRules
from .models import DesiredFile, DesiredFlow, FileKey, FlowKey, Problem

# Kestra's own rules for identities (see the Flow model): ids may hold upper case, namespaces not.
FLOW_ID_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
FLOW_ID_MAX = 100
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
NAMESPACE_MAX = 150
FLOW_SUFFIXES = (".yml", ".yaml")


def _check(value: str, what: str, pattern: re.Pattern[str], longest: int, allowed: str) -> str | None:
    if not value:
        return f"{what} is empty"
    if len(value) > longest:
        return f"{what} {value!r} is longer than {longest} characters"
    if not pattern.match(value):
        return f"{what} {value!r} is invalid: use {allowed}, starting with a letter or digit"
    return None


def check_flow_id(value: str) -> str | None:
    """Why ``value`` is not a valid flow id, or None."""
    return _check(value, "flow id", FLOW_ID_PATTERN, FLOW_ID_MAX,
                  "letters, digits, '.', '_' and '-'")


def check_namespace(value: str) -> str | None:
    """Why ``value`` is not a valid namespace, or None."""
    return _check(value, "namespace", NAMESPACE_PATTERN, NAMESPACE_MAX,
                  "lower-case letters, digits, '.', '_' and '-'")


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _walk_files(
    root: Path, start: Path, problems: list[Problem], rules: IgnoreRules,
    skip: frozenset[Path] = frozenset(),
) -> Iterator[tuple[Path, str]]:
    """(absolute path, posix path relative to ``root``) of every file under ``start``.

    Hidden files and folders, ignored paths and folders in ``skip`` are left out; symlinks
    leading outside ``root`` are reported, never followed.
    """
    for folder, dirnames, filenames in os.walk(start, followlinks=False):
        base = Path(folder)
        rel_base = base.relative_to(root).as_posix()
        rel_base = "" if rel_base == "." else rel_base + "/"
        kept = []
        for name in sorted(dirnames):
            rel = rel_base + name
            full = base / name
            if name.startswith(".") or full in skip or rules.ignored(rel, is_dir=True):
                continue
            if full.is_symlink():
                # not followed (its target is read where it really lives), but one leading out
                # of the folder is reported: its flows would silently be missing otherwise
                if not _is_within(full.resolve(), root):
                    problems.append(Problem("symlink to a folder outside the source folder", rel))
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            rel = rel_base + name
            if name.startswith(".") or rules.ignored(rel, is_dir=False):
                continue
            full = base / name
            if full.is_symlink():
                target = full.resolve()
                if not _is_within(target, root):
                    problems.append(
                        Problem("symlink points outside the source folder; refusing to read it", rel)
                    )
                    continue
                if not target.is_file():
                    problems.append(Problem("broken symlink", rel))
                    continue
            yield full, rel


def _problem_at(message: str, rel: str, node: yaml.Node | None, key: FlowKey | None) -> Problem:
    line, column = yamlnodes.position(node) if node is not None else (None, None)
    return Problem(message, rel, line, column, key)


def parse_flow(text: str, rel: str) -> tuple[DesiredFlow | None, list[Problem]]:
    """One flow file's text into a DesiredFlow, with every problem found in it."""
    try:
        documents = yamlnodes.compose_documents(text)
    except yamlnodes.YamlSyntaxError as exc:
        return None, [Problem(str(exc), rel, exc.line, exc.column)]
    if not documents:
        return None, [Problem("empty file: a flow needs id, namespace and tasks", rel)]
    if len(documents) > 1:
        return None, [
            Problem(f"holds {len(documents)} YAML documents: put exactly one flow per file", rel)
        ]
    root = documents[0]
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        return None, [
            _problem_at(f"not a flow: expected a mapping with id, namespace and tasks, found {kind}",
                        rel, root, None)
        ]

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
        data = path.read_bytes()
    except OSError as exc:
        return None, Problem(f"cannot read file: {exc.strerror or exc}", rel)
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


def _folder(root: Path, relative: str, what: str, problems: list[Problem]) -> Path | None:
    path = (root / relative).resolve()
    if not _is_within(path, root):
        problems.append(Problem(f"{what} folder {relative!r} is outside the source folder",
                                CONFIG_FILE))
        return None
    if not path.is_dir():
        problems.append(Problem(f"{what} folder {relative!r} does not exist", CONFIG_FILE))
        return None
    return path


def _read_flows(root: Path, config: Config, rules: IgnoreRules, problems: list[Problem]
                ) -> dict[FlowKey, DesiredFlow]:
    file_folders = frozenset(
        (root / entry.source).resolve() for entry in config.namespace_files if entry.source != ".")
    by_key: dict[FlowKey, list[DesiredFlow]] = defaultdict(list)
    # settings files are not flows: the usual one at the root, and one given with --config
    settings = {(root / CONFIG_FILE).resolve()}
    if config.path not in (None, CONFIG_FILE):
        settings.add(Path(str(config.path)).resolve())
    seen: set[str] = set()
    for relative in config.flows:
        start = _folder(root, relative, "flows", problems)
        if start is None:
            continue
        for path, rel in _walk_files(root, start, problems, rules, file_folders):
            if rel in seen or not rel.lower().endswith(FLOW_SUFFIXES):
                continue
            if path.resolve() in settings:
                continue
            seen.add(rel)
            text, problem = _read_text(path, rel)
            if problem is not None:
                problems.append(problem)
                continue
            assert text is not None
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


def _file_folders(root: Path, entry: NamespaceFiles, rules: IgnoreRules, origin: str,
                  problems: list[Problem]) -> list[tuple[str, Path]]:
    """(namespace, folder) pairs an entry uploads: its folder, or each subfolder of it."""
    start = _folder(root, entry.source, "namespace_files", problems)
    if start is None:
        return []
    if not entry.per_namespace:
        if (why := check_namespace(entry.namespace)) is not None:
            problems.append(Problem(f"namespace_files: {why}", origin))
            return []
        return [(entry.namespace, start)]
    folders = []
    for child in sorted(start.iterdir()):
        rel = child.relative_to(root).as_posix()
        if child.name.startswith(".") or rules.ignored(rel, is_dir=child.is_dir()):
            continue
        if not child.is_dir():
            problems.append(Problem(f"belongs to no namespace: files of {entry.source}/* go in a "
                                    "folder named after their namespace", rel))
        elif (why := check_namespace(child.name)) is not None:
            problems.append(Problem(f"folder name is not a namespace: {why}", rel))
        else:
            folders.append((child.name, child))
    return folders


def _read_files(root: Path, config: Config, rules: IgnoreRules, problems: list[Problem]
                ) -> dict[FileKey, DesiredFile]:
    files: dict[FileKey, DesiredFile] = {}
    for entry in config.namespace_files:
        origin = config.path or CONFIG_FILE
        for namespace, start in _file_folders(root, entry, rules, origin, problems):
            for path, rel in _walk_files(root, start, problems, rules):
                inside = Path(rel).relative_to(start.relative_to(root)).as_posix()
                target = entry.target.rstrip("/") + "/" + inside
                key = FileKey(namespace, target)
                if target.startswith("/_flows/"):
                    problems.append(Problem("namespace files may not be written under /_flows/",
                                            rel))
                    continue
                if key in files:
                    problems.append(Problem(f"{key} also comes from {files[key].path}: keep one",
                                            rel))
                    continue
                try:
                    files[key] = DesiredFile(key, path.read_bytes(), rel)
                except OSError as exc:
                    problems.append(Problem(f"cannot read file: {exc.strerror or exc}", rel))
    return dict(sorted(files.items()))


def read_source(
    folder: str | os.PathLike[str], *, commit: str | None = None, config_file: str | None = None,
    config: Config | None = None,
) -> Source:
    """Read the settings, every flow and every namespace file under ``folder``.

    Raises SourceError listing every problem found, in every file, before anything is sent.
    """
    root = Path(folder).resolve()
    if not root.is_dir():
        raise SourceError(
            f"source folder {str(folder)!r} does not exist or is not a folder",
            [Problem("not a folder", str(folder))],
        )
    config = config or load_config(root, config_file)
    problems: list[Problem] = []
    rules = IgnoreRules.from_folder(root)
    flows = _read_flows(root, config, rules, problems)
    files = _read_files(root, config, rules, problems)
    if problems:
        file_count = len({p.path for p in problems})
        raise SourceError(
            f"{len(problems)} problem(s) in {file_count} file(s) under {folder}; "
            "nothing was written",
            sorted(problems, key=lambda p: (p.path or "", p.line or 0, p.column or 0)),
        )
    return Source(root=str(root), config=config, flows=flows, files=files,
                  commit=commit or read_commit(root))

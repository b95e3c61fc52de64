"""Read a source folder (a Git checkout) into the flows Git wants, or fail listing every problem.

Every ``*.yml`` / ``*.yaml`` file below the folder is a flow, except hidden files and folders
(``.git``, ``.github``, ...) and paths matched by ``.kestraignore``. Each file holds exactly one
flow; its identity is the ``namespace`` and ``id`` written in it, not its file name.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import yaml

from . import yamlnodes
from .errors import SourceError
from .gitinfo import read_commit
from .ignore import IgnoreRules
from .models import DesiredFlow, FlowKey, Problem, Source

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


def _flow_files(root: Path, problems: list[Problem]) -> Iterator[tuple[Path, str]]:
    """(absolute path, relative posix path) of every flow file, in a stable order."""
    rules = IgnoreRules.from_folder(root)
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(folder)
        rel_base = base.relative_to(root).as_posix()
        rel_base = "" if rel_base == "." else rel_base + "/"
        kept = []
        for name in sorted(dirnames):
            rel = rel_base + name
            if name.startswith(".") or rules.ignored(rel, is_dir=True):
                continue
            full = base / name
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
            if name.startswith(".") or not name.lower().endswith(FLOW_SUFFIXES):
                continue
            if rules.ignored(rel, is_dir=False):
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


def read_source(folder: str | os.PathLike[str], *, commit: str | None = None) -> Source:
    """Read every flow under ``folder``; raise SourceError listing all problems if any."""
    root = Path(folder).resolve()
    if not root.is_dir():
        raise SourceError(
            f"source folder {str(folder)!r} does not exist or is not a folder",
            [Problem("not a folder", str(folder))],
        )
    problems: list[Problem] = []
    by_key: dict[FlowKey, list[DesiredFlow]] = defaultdict(list)
    for path, rel in _flow_files(root, problems):
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
            files = ", ".join(c.path for c in copies)
            for copy in copies:
                problems.append(
                    Problem(f"the same flow is defined in {len(copies)} files ({files}): keep one",
                            copy.path, flow=key)
                )
    if problems:
        file_count = len({p.path for p in problems})
        raise SourceError(
            f"{len(problems)} problem(s) in {file_count} file(s) under {folder}; "
            "nothing was written",
            sorted(problems, key=lambda p: (p.path or "", p.line or 0, p.column or 0)),
        )
    flows = {key: copies[0] for key, copies in sorted(by_key.items())}
    return Source(root=str(root), flows=flows, commit=commit or read_commit(root))

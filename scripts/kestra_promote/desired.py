"""From what Git holds to what the target should hold: pure text transformations.

Applies the settings to the flows read from Git: namespace renaming (of each flow and of the
references inside it), added labels, and the ``namespaces.include`` filter. Edits are
format-preserving (see ``flowdoc``). Also works out which flows a flow depends on, for ordering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import yaml

from . import flowdoc, yamlnodes
from .config import Config
from .errors import SourceError
from .models import DesiredFile, DesiredFlow, FileKey, FlowKey, Problem, sort_key
from .source import Source, check_namespace


@dataclass(frozen=True)
class Desired:
    """The flows and files the target should hold, as they will be sent."""

    flows: Mapping[FlowKey, DesiredFlow]
    files: Mapping[FileKey, DesiredFile] = field(default_factory=dict)
    warnings: tuple[Problem, ...] = ()
    excluded: tuple[FlowKey | FileKey, ...] = ()  # in Git, but outside namespaces.include

    @property
    def namespaces(self) -> set[str]:
        return {k.namespace for k in self.flows} | {k.namespace for k in self.files}


def dependencies_of(flow: DesiredFlow) -> frozenset[FlowKey]:
    """The flows ``flow`` calls or listens to (read when it is written: its order)."""
    root = yamlnodes.compose_documents(flow.source)[0]
    return frozenset(flowdoc.dependencies(root)) - {flow.key}


def _transform(flow: DesiredFlow, config: Config, warnings: list[Problem],
               problems: list[Problem]) -> DesiredFlow | None:
    if not config.rename and not config.labels:
        return flow  # nothing to edit: the text is sent as Git holds it
    root = yamlnodes.compose_documents(flow.source)[0]
    assert isinstance(root, yaml.MappingNode)
    namespace = flowdoc.rename_namespace(flow.key.namespace, config.rename)
    if (why := check_namespace(namespace)) is not None:
        problems.append(Problem(f"after renaming {flow.key.namespace!r}: {why}", flow.path,
                                flow=flow.key))
        return None
    key = FlowKey(namespace, flow.key.id)  # how the plan names the flow: so do its messages

    def warn(ref: flowdoc.Reference, message: str) -> None:
        warnings.append(Problem(message, flow.path, line=ref.line, flow=key))

    try:
        edits = flowdoc.rename_edits(flow.source, root, config.rename, warn)
        edits += flowdoc.label_edits(flow.source, root, config.labels)
        text = flowdoc.apply_edits(flow.source, edits)
        # a safety net for the text surgery: the new text says what the old one says, but for
        # the renamed namespaces and the labels
        new_root = flowdoc.verify_edits(root, text, edits, config.labels) if edits else root
    except flowdoc.EditRefused as exc:
        problems.extend(Problem(message, flow.path, line=line, flow=key)
                        for message, line in exc.problems)
        return None
    except ValueError as exc:
        problems.append(Problem(str(exc), flow.path, flow=key))
        return None
    written = yamlnodes.scalar_text(yamlnodes.mapping_get(new_root, "namespace"))
    if written != namespace:
        problems.append(Problem(f"editing the flow would give it namespace {written!r} instead of "
                                f"{namespace!r}, so it is left as it is; please report this",
                                flow.path, flow=key))
        return None
    return DesiredFlow(key, text, flow.path)


def prepare(source: Source, config: Config | None = None) -> Desired:
    """Apply ``config`` (default: the source's own) to the source; SourceError on problems."""
    config = config or source.config
    warnings: list[Problem] = []
    problems: list[Problem] = []
    for old, new in config.rename.items():
        for label, value in (("from", old), ("to", new)):
            if value and (why := check_namespace(value)) is not None:
                problems.append(Problem(f"namespaces.rename {label}: {why}", config.path))
    flows: dict[FlowKey, DesiredFlow] = {}
    origins: dict[FlowKey, list[str]] = {}
    excluded: list[FlowKey | FileKey] = []
    if not problems:
        for flow in source.flows.values():
            result = _transform(flow, config, warnings, problems)
            if result is None:
                continue
            if not config.includes(result.key.namespace):
                excluded.append(result.key)
                continue
            origins.setdefault(result.key, []).append(f"{flow.path} ({flow.key.namespace})")
            flows[result.key] = result
    for key, paths in origins.items():
        if len(paths) > 1:
            problems.append(Problem(
                f"renaming makes {len(paths)} flows the same flow {key}: {', '.join(paths)}",
                paths[0].split(" ")[0], flow=key))
    files: dict[FileKey, DesiredFile] = {}
    for file in source.files.values():
        file_key = FileKey(flowdoc.rename_namespace(file.key.namespace, config.rename),
                           file.key.path)
        if (why := check_namespace(file_key.namespace)) is not None:
            problems.append(Problem(f"after renaming {file.key.namespace!r}: {why}", file.path))
            continue
        if not config.includes(file_key.namespace):  # files follow the scope, as flows do
            excluded.append(file_key)
            continue
        if file_key in files:
            problems.append(Problem(f"renaming makes two namespace files {file_key}", file.path))
        files[file_key] = DesiredFile(file_key, file.content, file.path)
    if problems:
        raise SourceError(f"{len(problems)} problem(s) applying the settings; nothing was written",
                          problems)
    return Desired(
        flows=dict(sorted(flows.items())), files=dict(sorted(files.items())),
        warnings=tuple(warnings), excluded=tuple(sorted(excluded, key=sort_key)),
    )
